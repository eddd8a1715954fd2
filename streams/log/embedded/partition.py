"""One partition directory: its segments, watermarks, seeks by offset and by time, tail scans.

Layout of ``<root>/<topic>/<partition>/``::

    00000000000000000000.log         segment: records with offsets from 0
    00000000000000000000.index       sparse offset index   (see :mod:`.index`)
    00000000000000000000.timeindex   sparse time index
    00000000000000004096.log         the next segment, and so on; the last one is *active*
    ~lock                            writers' flock, held only while appending one batch
    ~clean.lock                      retention / compaction / repair exclusion
    ~holes                           offset ranges declared lost, and truncations made, by ``hftstream log repair`` (JSON)
    ~lso                             last stable offset (int64); ``~txn``: a transaction's marker (see :mod:`.txn`)

Segments of a ``delete`` topic are contiguous: each one's base is one past the last offset
of the one before (retention only removes the oldest). Offsets between two segments that
no segment holds are a *hole* (someone deleted a segment file): damage, unless declared in
``~holes``. Compacted topics have gaps by design.

Everything here is lock-free and read-only: readers never block writers. Writers live in
:mod:`.writer`, retention and compaction in :mod:`.cleaner`.
"""

from __future__ import annotations

import bisect
import json
import os
from pathlib import Path
from typing import NamedTuple

from streams.errors import LogCorruptionError
from streams.log.embedded.index import (
    TIME_ENTRY,
    entry_count,
    floor_offset,
    floor_time,
    index_path,
    open_index,
    read_entry,
    timeindex_path,
)
from streams.log.embedded.txn import LSO, LSO_NAME
from streams.log.embedded.segment import (
    MIN_TS,
    OK,
    FrameScanner,
    find_valid_after,
    frame_at,
    list_segments,
    segment_name,
)

LOCK_NAME = "~lock"
CLEAN_LOCK_NAME = "~clean.lock"
HOLES_NAME = "~holes"
_START_CANDIDATES = 8  # index entries tried (newest first) before a tail scan starts at byte 0


def segment_path(directory: Path, base: int) -> Path:
    """The ``.log`` file of the segment with ``base``."""
    return directory / segment_name(base)


def create_partition_dir(directory: Path) -> None:
    """Create an empty partition: its directory, an empty first segment and the lock files."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in (segment_name(0), LOCK_NAME, CLEAN_LOCK_NAME):
        fd = os.open(directory / name, os.O_WRONLY | os.O_CREAT, 0o644)
        os.close(fd)
    with open(directory / LSO_NAME, "wb") as f:  # last stable offset 0 (see :mod:`.txn`)
        f.write(LSO.pack(0))


class Damage(NamedTuple):
    """A record that failed its checks: where, which offset it should have had, and why.

    ``corrupt`` is true when a valid record follows it (corruption in the middle); false
    for a torn tail.
    """

    path: str
    offset: int
    position: int
    reason: str
    corrupt: bool

    def error(self) -> LogCorruptionError:
        """The typed error a reader raises for this damage."""
        return LogCorruptionError(self.path, self.offset, self.position, self.reason)


class Tail(NamedTuple):
    """The result of scanning a segment from its last trustworthy index entry to its end."""

    next_offset: int  # one past the last valid record (the segment's base if it has none)
    end: int  # byte position after the last valid record
    max_ts: int  # largest timestamp in the segment (MIN_TS if empty)
    last_index_pos: int  # position of the last index point (existing or in ``points``)
    points: list[tuple[int, int, int]]  # index points the scanned region should have
    start_pos: int  # where the scan started (an index entry's position, or 0)
    start_entries: int  # how many time-index entries precede-or-are the start (to keep)
    damage: Damage | None  # the first bad record found, if any


def _trusted_start(fd: int, directory: Path, base: int, size: int) -> tuple[int, int, int, int]:
    """``(max_ts_before, offset, position, entries_kept)`` of the newest verified time-index entry."""
    ifd = open_index(timeindex_path(directory, base))
    if ifd is None:
        return MIN_TS, base, 0, 0
    try:
        count = entry_count(ifd, TIME_ENTRY)
        for i in range(count - 1, max(count - 1 - _START_CANDIDATES, -1), -1):
            entry = read_entry(ifd, TIME_ENTRY, i)
            if entry is None:
                continue
            mts, off, pos = entry
            if pos < size:
                frame = frame_at(fd, pos, size)
                if frame is not None and frame.offset == off:
                    return mts, off, pos, i + 1
    finally:
        os.close(ifd)
    return MIN_TS, base, 0, 0


def scan_tail(
    fd: int, directory: Path, base: int, size: int, interval: int, *, through_damage: bool = False
) -> Tail:
    """Scan the segment ``base`` (open as ``fd``, ``size`` bytes) from its last index entry.

    Stops at the first bad record and reports it as :class:`Damage` (torn tail or
    corruption). With ``through_damage`` it goes on after corruption to the real end
    (watermarks must not fail because of one bad record in the middle).
    """
    max_ts, expected, start_pos, kept = _trusted_start(fd, directory, base, size)
    last_index_pos, points = start_pos, []
    pos = start_pos
    damage: Damage | None = None
    while True:
        scanner = FrameScanner(fd, pos, size, expected)
        for frame in scanner:
            if frame.pos - last_index_pos >= interval:
                points.append((max_ts, frame.offset, frame.pos))
                last_index_pos = frame.pos
            if frame.timestamp_ns > max_ts:
                max_ts = frame.timestamp_ns
        expected = scanner.expected
        end = scanner.stop_pos
        if scanner.status == OK:
            break
        after = find_valid_after(fd, scanner.stop_pos, size, expected)
        if damage is None:
            damage = Damage(
                str(segment_path(directory, base)), expected, scanner.stop_pos, scanner.reason, after is not None
            )
        if after is None or not through_damage:
            break
        pos = after
    return Tail(expected, end, max_ts, last_index_pos, points, start_pos, kept, damage)


def open_segment(directory: Path, base: int) -> tuple[int, int] | None:
    """``(fd, size)`` of a segment opened read-only, or ``None`` if it was deleted meanwhile."""
    try:
        fd = os.open(segment_path(directory, base), os.O_RDONLY)
    except FileNotFoundError:
        return None
    return fd, os.fstat(fd).st_size


def watermarks(directory: Path, interval: int) -> tuple[int, int]:
    """``(low, high)`` of a partition: the first segment's base and one past the last valid record."""
    for _ in range(10):
        bases = list_segments(directory)
        if not bases:
            return 0, 0
        opened = open_segment(directory, bases[-1])
        if opened is None:
            continue  # rolled or repaired under us: list again
        fd, size = opened
        try:
            tail = scan_tail(fd, directory, bases[-1], size, interval, through_damage=True)
        finally:
            os.close(fd)
        return bases[0], tail.next_offset
    raise RuntimeError(f"segments of {directory} keep disappearing")  # pragma: no cover


def locate(directory: Path, target: int) -> tuple[int, int, int, int] | None:
    """Open the segment holding ``target``: ``(base, fd, position, target)``.

    ``target`` below the low watermark becomes the low watermark; the position comes from
    the offset index (verified) so at most ``index_interval_bytes`` are scanned to reach it.
    ``None`` when the partition has no segment at all.
    """
    for _ in range(10):
        bases = list_segments(directory)
        if not bases:
            return None
        target = max(target, bases[0])
        base = bases[bisect.bisect_right(bases, target) - 1]
        opened = open_segment(directory, base)
        if opened is None:
            continue  # deleted by retention/compaction between listing and opening
        fd, size = opened
        pos = 0
        ifd = open_index(index_path(directory, base))
        try:
            entry = floor_offset(ifd, target, size)
        finally:
            if ifd is not None:
                os.close(ifd)
        if entry is not None:
            frame = frame_at(fd, entry[1], size)
            if frame is not None and frame.offset == entry[0]:
                pos = entry[1]
        return base, fd, pos, target
    raise RuntimeError(f"segments of {directory} keep disappearing")  # pragma: no cover


def offset_for_time(directory: Path, timestamp_ns: int, interval: int) -> int:
    """The first offset whose timestamp is ``>= timestamp_ns``; the high watermark if none.

    Per segment: a binary search of the time index, then a scan of at most one index
    interval (plus the records whose timestamps are out of order).
    """
    bases = list_segments(directory)
    for i, base in enumerate(bases):
        opened = open_segment(directory, base)
        if opened is None:
            continue
        fd, size = opened
        try:
            ifd = open_index(timeindex_path(directory, base))
            try:
                start = floor_time(ifd, timestamp_ns, size)
            finally:
                if ifd is not None:
                    os.close(ifd)
            expected, pos = base, 0
            if start is not None:
                frame = frame_at(fd, start[2], size)
                if frame is not None and frame.offset == start[1]:
                    expected, pos = start[1], start[2]
            scanner = FrameScanner(fd, pos, size, expected)
            for frame in scanner:
                if frame.timestamp_ns >= timestamp_ns:
                    return frame.offset
            if scanner.status != OK:
                after = find_valid_after(fd, scanner.stop_pos, size, scanner.expected)
                if after is not None or i < len(bases) - 1:
                    path = str(segment_path(directory, base))
                    raise LogCorruptionError(path, scanner.expected, scanner.stop_pos, scanner.reason)
        finally:
            os.close(fd)
    return watermarks(directory, interval)[1]


def segment_sizes(directory: Path, bases: list[int]) -> dict[int, int]:
    """Size in bytes of each segment that still exists."""
    sizes = {}
    for base in bases:
        try:
            sizes[base] = os.stat(segment_path(directory, base)).st_size
        except FileNotFoundError:
            pass
    return sizes


def remove_segment(directory: Path, base: int) -> None:
    """Delete a segment: the ``.log`` first (it vanishes from listings at once), then its indexes."""
    for path in (segment_path(directory, base), index_path(directory, base), timeindex_path(directory, base)):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def gaps_allowed(directory: Path) -> bool:
    """True when the partition's topic is compacted (offsets between segments may be gone by design)."""
    try:
        with open(directory.parent / "topic.json") as f:
            return json.load(f).get("cleanup_policy") == "compact"
    except (OSError, ValueError):
        return False


def _repairs(directory: Path) -> dict:  # type: ignore[type-arg]
    try:
        with open(directory / HOLES_NAME) as f:
            raw = json.load(f)
        if not isinstance(raw, dict):
            raise TypeError("not a JSON object")
        return raw
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, TypeError) as exc:
        raise LogCorruptionError(str(directory / HOLES_NAME), 0, 0, f"unreadable list of declared holes: {exc}") from exc


def declared_holes(directory: Path) -> list[tuple[int, int]]:
    """The ``(first, last)`` offset ranges declared lost in this partition (``hftstream log repair``)."""
    return [(a, b) for a, b, _ in hole_records(directory)]


def hole_records(directory: Path) -> list[tuple[int, int, int]]:
    """``(first, last, ts_ns)`` of every declared hole; ``ts_ns`` 0 when it was declared by an older version."""
    try:
        return [(int(h[0]), int(h[1]), int(h[2]) if len(h) > 2 else 0) for h in _repairs(directory).get("holes", [])]
    except (ValueError, TypeError, IndexError) as exc:
        raise LogCorruptionError(str(directory / HOLES_NAME), 0, 0, f"unreadable list of declared holes: {exc}") from exc


def truncations(directory: Path) -> list[tuple[int, int, int]]:
    """``(offset, old_high, ts_ns)`` of every truncation ``hftstream log repair`` made here: offsets
    ``offset..old_high-1`` were dropped at wall time ``ts_ns`` (later records reuse those offsets)."""
    try:
        return [(int(a), int(b), int(c)) for a, b, c in _repairs(directory).get("truncated", [])]
    except (ValueError, TypeError) as exc:
        raise LogCorruptionError(str(directory / HOLES_NAME), 0, 0, f"unreadable list of truncations: {exc}") from exc


def is_declared(directory: Path, first: int, last: int) -> bool:
    """True when every offset of ``first..last`` lies in a declared hole."""
    return any(a <= first and last <= b for a, b in declared_holes(directory))


def declare_holes(directory: Path, holes: list[tuple[int, int]], ts_ns: int = 0) -> None:
    """Add ``holes`` (declared at wall time ``ts_ns``) to the partition's declared holes (atomically: tmp + fsync + rename)."""
    known = {(a, b): ts for a, b, ts in hole_records(directory)}
    for hole in holes:
        known.setdefault(hole, ts_ns)
    _write_repairs(directory, [(a, b, ts) for (a, b), ts in sorted(known.items())], truncations(directory))


def declare_truncation(directory: Path, offset: int, old_high: int, ts_ns: int) -> None:
    """Record that ``log repair`` dropped offsets ``offset..old_high-1`` at ``ts_ns`` (so a consumer past them can be told why)."""
    _write_repairs(directory, hole_records(directory), [*truncations(directory), (offset, old_high, ts_ns)])


def _write_repairs(directory: Path, holes: list[tuple[int, int, int]], truncated: list[tuple[int, int, int]]) -> None:
    body: dict[str, object] = {"holes": [list(h) if h[2] else list(h[:2]) for h in holes]}
    if truncated:
        body["truncated"] = [list(t) for t in truncated]
    tmp = directory / f"{HOLES_NAME}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(body, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, directory / HOLES_NAME)
