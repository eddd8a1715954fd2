"""Sparse offset and time indexes beside each segment (``.index`` / ``.timeindex``).

Every ``index_interval_bytes`` of records the writer appends one entry to each file:

* ``.index``      ``(offset int64, position uint64)``
* ``.timeindex``  ``(max_ts_before int64, offset int64, position uint64)`` where
  ``max_ts_before`` is the largest timestamp of the records of the segment *before*
  that position, so every record before it is older than any ``t > max_ts_before``.

Both are sorted, so a lookup is a binary search with one ``pread`` per probe (``O(log n)``),
followed by a scan of at most ``index_interval_bytes`` of the segment. Indexes are hints:
an entry is trusted only after the record at its position checks out with the same offset,
and both files are rebuildable from the segment (:func:`index_points`).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterable
from pathlib import Path

OFFSET_ENTRY = struct.Struct("<qQ")
TIME_ENTRY = struct.Struct("<qqQ")
_WALK_BACK = 8  # entries tried backwards past ones pointing beyond the log's end
INDEX_SUFFIX = ".index"
TIME_SUFFIX = ".timeindex"


def index_path(directory: Path, base: int) -> Path:
    """The offset index of the segment with ``base``."""
    return directory / f"{base:020d}{INDEX_SUFFIX}"


def timeindex_path(directory: Path, base: int) -> Path:
    """The time index of the segment with ``base``."""
    return directory / f"{base:020d}{TIME_SUFFIX}"


def read_entries(path: Path, entry: struct.Struct) -> bytes:
    """The whole index file trimmed to complete entries; ``b""`` if it does not exist."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return b""
    return data[: len(data) - len(data) % entry.size]


def open_index(path: Path) -> int | None:
    """A read-only descriptor on an index file, or ``None`` if it does not exist."""
    try:
        return os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None


def entry_count(fd: int, entry: struct.Struct) -> int:
    """How many complete entries the index file holds right now."""
    return os.fstat(fd).st_size // entry.size


def read_entry(fd: int, entry: struct.Struct, i: int) -> tuple[int, ...] | None:
    """Entry ``i`` (one ``pread``), or ``None`` if the file is shorter now (truncated meanwhile)."""
    raw = os.pread(fd, entry.size, i * entry.size)
    return entry.unpack(raw) if len(raw) == entry.size else None


def first_entry_where(fd: int, entry: struct.Struct, count: int, pred: Callable[[tuple[int, ...]], bool]) -> int:
    """Binary search (``O(log n)`` preads): the first index whose entry satisfies the monotone ``pred``."""
    lo, hi = 0, count
    while lo < hi:
        mid = (lo + hi) // 2
        e = read_entry(fd, entry, mid)
        if e is None or pred(e):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _floor(fd: int | None, entry: struct.Struct, pred: Callable[[tuple[int, ...]], bool], pos_at: int, log_size: int) -> tuple[int, ...] | None:
    if fd is None:
        return None
    i = first_entry_where(fd, entry, entry_count(fd, entry), pred)
    for j in range(i - 1, max(i - 1 - _WALK_BACK, -1), -1):
        e = read_entry(fd, entry, j)
        if e is not None and e[pos_at] < log_size:
            return e
    return None


def floor_offset(fd: int | None, target: int, log_size: int) -> tuple[int, int] | None:
    """The last ``(offset, position)`` with ``offset <= target`` and ``position < log_size``."""
    e = _floor(fd, OFFSET_ENTRY, lambda e: e[0] > target, 1, log_size)
    return (e[0], e[1]) if e is not None else None


def floor_time(fd: int | None, timestamp_ns: int, log_size: int) -> tuple[int, int, int] | None:
    """The last ``(max_ts_before, offset, position)`` with ``max_ts_before < timestamp_ns``.

    Every record before that position is older than ``timestamp_ns``, so the first record
    at or after ``timestamp_ns`` is at or after it.
    """
    e = _floor(fd, TIME_ENTRY, lambda e: e[0] >= timestamp_ns, 2, log_size)
    return (e[0], e[1], e[2]) if e is not None else None


def time_entries(data: bytes) -> list[tuple[int, int, int]]:
    """Every ``(max_ts_before, offset, position)`` of a time index."""
    return [TIME_ENTRY.unpack_from(data, i) for i in range(0, len(data), TIME_ENTRY.size)]


def offset_entries(data: bytes) -> list[tuple[int, int]]:
    """Every ``(offset, position)`` of an offset index."""
    return [OFFSET_ENTRY.unpack_from(data, i) for i in range(0, len(data), OFFSET_ENTRY.size)]


def encode_points(points: Iterable[tuple[int, int, int]]) -> tuple[bytes, bytes]:
    """``(index bytes, timeindex bytes)`` for index points ``(max_ts_before, offset, position)``."""
    pts = list(points)
    return (
        b"".join(OFFSET_ENTRY.pack(off, pos) for _, off, pos in pts),
        b"".join(TIME_ENTRY.pack(ts, off, pos) for ts, off, pos in pts),
    )


def index_points(
    frames: Iterable[tuple[int, int, int]], interval: int, last_index_pos: int = 0, max_ts: int = -(1 << 63)
) -> tuple[list[tuple[int, int, int]], int, int]:
    """Index points the writer would have emitted for ``frames`` of ``(position, offset, timestamp)``.

    Returns ``(points, last_index_pos, max_ts)`` so a caller can continue from the state.
    """
    points = []
    for pos, off, ts in frames:
        if pos - last_index_pos >= interval:
            points.append((max_ts, off, pos))
            last_index_pos = pos
        if ts > max_ts:
            max_ts = ts
    return points, last_index_pos, max_ts


def write_index_files(directory: Path, base: int, points: list[tuple[int, int, int]], *, suffix: str = "") -> None:
    """(Re)write both index files of a segment from ``points`` (``suffix`` for a temporary name)."""
    idx, tidx = encode_points(points)
    for path, data in ((index_path(directory, base), idx), (timeindex_path(directory, base), tidx)):
        with open(f"{path}{suffix}", "wb") as f:
            f.write(data)
