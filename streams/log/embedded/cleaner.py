"""Retention, compaction and index rebuilds for one partition.

All of them take the partition's ``~clean.lock`` (one cleaner at a time) and never touch
the active (last) segment, so writers go on appending meanwhile. Retention and compaction
stop at the last stable offset: records of a transaction that may still roll back are
neither deleted nor allowed to supersede older records of their key. Readers holding a
segment open keep reading it: a deleted file stays readable through its descriptor, and
compaction replaces a segment by renaming a new file over it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from streams.errors import LogCorruptionError
from streams.log.embedded.index import index_path, index_points, timeindex_path, write_index_files
from streams.log.embedded.partition import (
    CLEAN_LOCK_NAME,
    open_segment,
    remove_segment,
    scan_tail,
    segment_path,
    segment_sizes,
)
from streams.log.embedded.segment import MIN_TS, OK, FrameScanner, find_valid_after, frame_at, list_segments
from streams.log.embedded.txn import stable_offset
from streams.log.embedded.writer import fsync_dir

_TMP = ".cleaned"


@contextmanager
def flocked(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the lock


@dataclass(frozen=True)
class RetentionResult:
    """What retention removed from one partition."""

    deleted_segments: tuple[int, ...]
    bytes_freed: int


@dataclass(frozen=True)
class CompactionResult:
    """What compaction did to one partition."""

    segments_rewritten: int
    segments_removed: int
    records_removed: int
    bytes_before: int
    bytes_after: int


def segment_max_ts(directory: Path, base: int, interval: int) -> int | None:
    """The largest record timestamp in a segment (``MIN_TS`` if empty; ``None`` if it is gone)."""
    opened = open_segment(directory, base)
    if opened is None:
        return None
    fd, size = opened
    try:
        return scan_tail(fd, directory, base, size, interval, through_damage=True).max_ts
    finally:
        os.close(fd)


@dataclass(frozen=True)
class ExpiredSegment:
    """A closed segment retention would delete: what it holds and why it goes."""

    base: int
    last_offset: int  # the last offset it holds (one before the next segment's base)
    first_ts: int | None  # timestamp of its first record (None if it is empty or unreadable)
    max_ts: int | None  # its newest record's timestamp
    bytes: int
    reason: str  # "time" or "size"


def plan_retention(
    directory: Path, retention_ms: int | None, retention_bytes: int | None, now_ns: int, interval: int
) -> list[ExpiredSegment]:
    """The oldest closed segments that are past retention, oldest first (nothing is deleted).

    By time: while the oldest closed segment's newest record is older than
    ``now_ns - retention_ms``. By size: while the partition is larger than
    ``retention_bytes``. The active (last) segment never is.
    """
    bases = list_segments(directory)
    following = dict(zip(bases, bases[1:], strict=False))
    lso = stable_offset(directory)
    closed = [b for b in bases[:-1] if lso is None or following[b] <= lso]  # never an open transaction's records
    sizes = segment_sizes(directory, bases)
    out: list[ExpiredSegment] = []

    def expire(base: int, max_ts: int | None, reason: str) -> None:
        first_ts = None
        opened = open_segment(directory, base)
        if opened is not None:
            fd, size = opened
            try:
                frame = frame_at(fd, 0, size)
                first_ts = frame.timestamp_ns if frame is not None else None
                if max_ts is None:
                    max_ts = scan_tail(fd, directory, base, size, interval, through_damage=True).max_ts
            finally:
                os.close(fd)
        out.append(ExpiredSegment(base, following[base] - 1, first_ts, None if max_ts == MIN_TS else max_ts, sizes.get(base, 0), reason))

    if retention_ms is not None:
        cutoff = now_ns - retention_ms * 1_000_000
        for base in list(closed):
            max_ts = segment_max_ts(directory, base, interval)
            if max_ts is not None and max_ts >= cutoff:
                break
            expire(base, max_ts, "time")
            closed.remove(base)
    if retention_bytes is not None:
        total = sum(size for base, size in sizes.items() if base not in {e.base for e in out})
        for base in list(closed):
            if total <= retention_bytes:
                break
            expire(base, None, "size")
            total -= sizes.get(base, 0)
    return out


def apply_retention(
    directory: Path,
    retention_ms: int | None,
    retention_bytes: int | None,
    now_ns: int,
    interval: int,
    *,
    only: Collection[int] | None = None,
) -> RetentionResult:
    """Delete the segments :func:`plan_retention` names (only those in ``only``, when given).

    ``only`` lets a caller delete exactly what it showed an operator, nothing that expired
    since. The low watermark becomes the base of the first remaining segment.
    """
    deleted: list[int] = []
    freed = 0
    with flocked(directory / CLEAN_LOCK_NAME):
        for seg in plan_retention(directory, retention_ms, retention_bytes, now_ns, interval):
            if only is not None and seg.base not in only:
                break  # keep deletions a prefix: never leave a hole
            remove_segment(directory, seg.base)
            deleted.append(seg.base)
            freed += seg.bytes
    return RetentionResult(tuple(deleted), freed)


def _frames(fd: int, base: int, size: int, path: Path, last: bool) -> Iterator[tuple[int, int, int, int, bytes | None]]:
    """``(pos, end, offset, timestamp, key)`` of every record; corruption raises (a torn active tail ends it)."""
    scanner = FrameScanner(fd, 0, size, base)
    for f in scanner:
        yield f.pos, f.end, f.offset, f.timestamp_ns, f.key
    if scanner.status != OK:
        if last and find_valid_after(fd, scanner.stop_pos, size, scanner.expected) is None:
            return
        raise LogCorruptionError(str(path), scanner.expected, scanner.stop_pos, scanner.reason)


def compact_partition(directory: Path, interval: int, *, durable: bool) -> CompactionResult:
    """Keep only the newest record per key in the closed segments of a partition.

    Offsets are preserved (a compacted segment has gaps); tombstones (null values) are kept
    as the newest record of their key; records without a key are kept. The newest record
    of a key is looked for in every segment, the active one included, but only closed
    segments are rewritten: to ``<base>.log.cleaned`` first, then renamed over the old one.
    A segment left empty is deleted.
    """
    with flocked(directory / CLEAN_LOCK_NAME):
        for name in os.listdir(directory):  # debris of an interrupted compaction
            if name.endswith(_TMP):
                os.unlink(directory / name)
        bases = list_segments(directory)
        if len(bases) < 2:
            return CompactionResult(0, 0, 0, 0, 0)
        lso = stable_offset(directory)
        stable = (1 << 63) if lso is None else lso  # records of an open transaction supersede nothing yet
        latest: dict[bytes, int] = {}
        for i, base in enumerate(bases):
            opened = open_segment(directory, base)
            if opened is None:
                continue
            fd, size = opened
            try:
                for _, _, off, _, key in _frames(fd, base, size, segment_path(directory, base), i == len(bases) - 1):
                    if key is not None and off < stable:
                        latest[key] = off
            finally:
                os.close(fd)
        rewritten = removed_segments = removed = before = after = 0
        for base, following in zip(bases, bases[1:], strict=False):
            if following > stable:
                break  # holds records of an open transaction
            opened = open_segment(directory, base)
            if opened is None:
                continue
            fd, size = opened
            try:
                data = os.pread(fd, size, 0)
                frames = list(_frames(fd, base, size, segment_path(directory, base), False))
            finally:
                os.close(fd)
            kept = [f for f in frames if f[4] is None or latest.get(f[4]) == f[2]]
            before += size
            if len(kept) == len(frames):
                after += size
                continue
            removed += len(frames) - len(kept)
            if not kept:
                remove_segment(directory, base)
                removed_segments += 1
                continue
            new_data = b"".join(data[f[0] : f[1]] for f in kept)
            positions = []
            pos = 0
            for f in kept:
                positions.append((pos, f[2], f[3]))
                pos += f[1] - f[0]
            points, _, _ = index_points(positions, interval)
            _replace_segment(directory, base, new_data, points, durable=durable)
            rewritten += 1
            after += len(new_data)
        return CompactionResult(rewritten, removed_segments, removed, before, after)


def _replace_segment(
    directory: Path, base: int, data: bytes, points: list[tuple[int, int, int]], *, durable: bool
) -> None:
    """Atomically replace a closed segment's bytes and indexes."""
    log = segment_path(directory, base)
    tmp = Path(f"{log}{_TMP}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        if durable:
            os.fsync(f.fileno())
    write_index_files(directory, base, points, suffix=_TMP)
    os.replace(tmp, log)
    os.replace(f"{index_path(directory, base)}{_TMP}", index_path(directory, base))
    os.replace(f"{timeindex_path(directory, base)}{_TMP}", timeindex_path(directory, base))
    if durable:
        fsync_dir(directory)


def rebuild_indexes(directory: Path, base: int, interval: int) -> int:
    """Rewrite a segment's ``.index`` / ``.timeindex`` from its records; return the entry count.

    Scans up to the first bad record. Used by ``hftstream log repair``; writers rebuild the
    active segment's index tail on their own.
    """
    opened = open_segment(directory, base)
    if opened is None:
        return 0
    fd, size = opened
    try:
        scanner = FrameScanner(fd, 0, size, base)
        points, _, _ = index_points(((f.pos, f.offset, f.timestamp_ns) for f in scanner), interval)
    finally:
        os.close(fd)
    write_index_files(directory, base, points, suffix=_TMP)
    os.replace(f"{index_path(directory, base)}{_TMP}", index_path(directory, base))
    os.replace(f"{timeindex_path(directory, base)}{_TMP}", timeindex_path(directory, base))
    return len(points)
