"""Appending to one partition, safely from several threads and several processes at once.

Protocol for one batch (:meth:`PartitionWriter.append`):

1. take the partition's ``~lock`` with ``fcntl.flock`` (the kernel drops it if we die);
2. *sync*: list the segments and ``stat`` the last one; if its name, inode or size differ
   from what this writer last wrote, another process appended, rolled or repaired, so
   re-open it and scan its tail from the last index entry (which also truncates a torn
   tail left by a writer that died mid-write, with a warning);
3. encode the batch and write it with one ``os.write`` per segment touched (a batch
   spans segments only when it rolls), then the index entries;
4. fsync according to the policy, release the lock.

A record is on disk (in the page cache) when ``os.write`` returned, so a producer killed
after ``flush()`` returned loses nothing; ``fsync=batch`` also survives a power cut.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from streams.config import EmbeddedSettings
from streams.errors import LogWriteError, UnknownTopicError
from streams.log.base import Headers
from streams.log.embedded.index import (
    OFFSET_ENTRY,
    TIME_ENTRY,
    encode_points,
    entry_count,
    first_entry_where,
    index_path,
    timeindex_path,
)
from streams.log.embedded.partition import LOCK_NAME, scan_tail, segment_path
from streams.log.embedded.segment import MIN_TS, encode_run, list_segments, segment_name

logger = logging.getLogger("streams.log.embedded")

BatchItem = tuple[bytes | None, bytes | None, int, Headers | None]


def fsync_dir(directory: Path) -> None:
    """Make a created/renamed/deleted directory entry durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class PartitionWriter:
    """The appender of one partition for one :class:`~streams.log.embedded.EmbeddedLog` handle."""

    def __init__(self, directory: Path, topic: str, settings: EmbeddedSettings) -> None:
        self.directory = directory
        self.topic = topic
        self._segment_bytes = settings.segment_bytes
        self._interval = settings.index_interval_bytes
        self._fsync = settings.fsync
        self._fsync_interval = settings.fsync_interval_ms / 1000.0
        self._mutex = threading.Lock()
        self._lock_fd: int | None = None
        self._log_fd: int | None = None
        self._idx_fd: int | None = None
        self._tidx_fd: int | None = None
        self._base = -1
        self._ino = 0
        self._size = 0
        self._next = 0
        self._last_index_pos = 0
        self._max_ts = MIN_TS
        self._dirty = False
        self._last_fsync = time.monotonic()

    # -- public ---------------------------------------------------------------------

    def append(self, batch: Sequence[BatchItem]) -> int:
        """Append ``batch`` (``(key, value, timestamp_ns, headers)`` items); return the first offset.

        The records get consecutive offsets. Raises :class:`~streams.errors.LogWriteError`
        when the disk refuses, :class:`~streams.errors.LogCorruptionError` when the tail of
        the partition is corrupt (not merely torn), :class:`~streams.errors.UnknownTopicError`
        when the topic was deleted.
        """
        with self._mutex:
            try:
                lock_fd = self._acquire()
            except OSError as exc:
                raise LogWriteError(f"cannot lock {self.directory / LOCK_NAME}: {exc}") from exc
            try:
                self._sync()
                return self._write(batch)
            except OSError as exc:  # opening, syncing or rolling: typed, named, and re-synced next time
                self._close_segment()
                raise LogWriteError(f"appending to {self.directory} failed: {exc}") from exc
            finally:
                fcntl.flock(lock_fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """fsync what the ``interval`` policy still owes, and close every descriptor."""
        with self._mutex:
            if self._dirty and self._log_fd is not None:
                os.fsync(self._log_fd)
                self._dirty = False
            self._close_segment()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def __del__(self) -> None:  # a log that was never closed must not leak descriptors
        try:
            self.close()
        except (AttributeError, OSError):
            pass

    # -- locking and sync -----------------------------------------------------------

    def _acquire(self) -> int:
        lock_path = self.directory / LOCK_NAME
        while True:
            if self._lock_fd is None:
                try:
                    self._lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
                except FileNotFoundError:
                    raise UnknownTopicError(self.topic) from None
            fd = self._lock_fd
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.stat(lock_path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                return fd
            # the topic was deleted (and maybe re-created): our lock file is not the live one
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            self._lock_fd = None
            self._close_segment()
            if not self.directory.is_dir():
                raise UnknownTopicError(self.topic)

    def _sync(self) -> None:
        try:
            bases = list_segments(self.directory)
        except FileNotFoundError:
            raise UnknownTopicError(self.topic) from None
        if not bases:
            fd = os.open(segment_path(self.directory, 0), os.O_WRONLY | os.O_CREAT, 0o644)
            os.close(fd)
            bases = [0]
        last = bases[-1]
        try:
            st = os.stat(segment_path(self.directory, last))
        except FileNotFoundError:
            if not self.directory.is_dir():
                raise UnknownTopicError(self.topic) from None
            raise
        if self._log_fd is not None and last == self._base and st.st_ino == self._ino and st.st_size == self._size:
            return
        self._open_segment(last)
        self._recover()

    def _open_segment(self, base: int) -> None:
        self._close_segment()
        flags = os.O_RDWR | os.O_APPEND
        self._log_fd = os.open(segment_path(self.directory, base), flags)
        self._idx_fd = os.open(index_path(self.directory, base), flags | os.O_CREAT, 0o644)
        self._tidx_fd = os.open(timeindex_path(self.directory, base), flags | os.O_CREAT, 0o644)
        self._base = base
        self._ino = os.fstat(self._log_fd).st_ino

    def _close_segment(self) -> None:
        for name in ("_log_fd", "_idx_fd", "_tidx_fd"):
            fd = getattr(self, name)
            if fd is not None:
                os.close(fd)
                setattr(self, name, None)
        self._base = -1

    def _recover(self) -> None:
        """Find the end of the active segment; truncate a torn tail; refresh its index tail."""
        assert self._log_fd is not None and self._idx_fd is not None and self._tidx_fd is not None
        size = os.fstat(self._log_fd).st_size
        tail = scan_tail(self._log_fd, self.directory, self._base, size, self._interval)
        if tail.damage is not None:
            if tail.damage.corrupt:
                raise tail.damage.error()
            logger.warning(
                "torn tail in %s: truncated at offset %d (byte %d), dropped %d bytes (%s)",
                tail.damage.path,
                tail.damage.offset,
                tail.damage.position,
                size - tail.end,
                tail.damage.reason or "incomplete record",
            )
            os.ftruncate(self._log_fd, tail.end)
            if self._fsync != "never":
                os.fsync(self._log_fd)
            size = tail.end
        # keep index entries up to the trusted start, then add the points of the scanned region
        keep_t = tail.start_entries * TIME_ENTRY.size
        start = tail.start_pos
        kept = first_entry_where(self._idx_fd, OFFSET_ENTRY, entry_count(self._idx_fd, OFFSET_ENTRY), lambda e: e[1] > start)
        keep_i = kept * OFFSET_ENTRY.size
        if keep_t != os.fstat(self._tidx_fd).st_size or keep_i != os.fstat(self._idx_fd).st_size or tail.points:
            os.ftruncate(self._tidx_fd, keep_t)
            os.ftruncate(self._idx_fd, keep_i)
            if tail.points:
                idx, tidx = encode_points(tail.points)
                os.write(self._idx_fd, idx)
                os.write(self._tidx_fd, tidx)
        self._size = size
        self._next = tail.next_offset
        self._last_index_pos = tail.last_index_pos
        self._max_ts = tail.max_ts

    # -- writing --------------------------------------------------------------------

    def _write(self, batch: Sequence[BatchItem]) -> int:
        first = self._next
        i, n = 0, len(batch)
        while i < n:
            run = encode_run(
                batch, i, self._next, self._size, self._segment_bytes, self._interval, self._last_index_pos, self._max_ts
            )
            if run.data:
                self._write_all(run.data)
                self._size, self._next = run.end_pos, run.next_offset
                self._last_index_pos, self._max_ts = run.last_index_pos, run.max_ts
                if run.index_points:
                    self._write_index(run.index_points)
            i = run.next_item
            if i < n:
                self._roll()
        self._after_write()
        return first

    def _write_all(self, data: bytes) -> None:
        assert self._log_fd is not None
        try:
            done = os.write(self._log_fd, data)
            while done < len(data):  # only after a signal or a full disk; retry the rest
                done += os.write(self._log_fd, memoryview(data)[done:])
        except OSError as exc:
            path = segment_path(self.directory, self._base)
            try:
                os.ftruncate(self._log_fd, self._size)  # leave no partial batch behind
            except OSError:
                pass
            self._close_segment()
            raise LogWriteError(f"writing {len(data)} bytes to {path} failed: {exc}") from exc

    def _write_index(self, points: list[tuple[int, int, int]]) -> None:
        assert self._idx_fd is not None and self._tidx_fd is not None
        idx, tidx = encode_points(points)
        try:
            os.write(self._idx_fd, idx)
            os.write(self._tidx_fd, tidx)
        except OSError as exc:  # indexes are hints: the records are written; rebuild on next sync
            logger.warning("could not write the index of %s: %s", segment_path(self.directory, self._base), exc)
            self._ino = -1  # force a re-sync (and index rebuild) before the next batch

    def _roll(self) -> None:
        """Close the active segment and start a new one whose base is the next offset."""
        if self._log_fd is not None and self._fsync != "never":
            os.fsync(self._log_fd)
        self._dirty = False
        self._close_segment()
        base = self._next
        path = self.directory / segment_name(base)
        try:
            for p in (index_path(self.directory, base), timeindex_path(self.directory, base)):
                os.close(os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
            try:
                fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                if os.stat(path).st_size:  # a stale segment with data at our next offset: refuse to mix
                    raise
                fd = os.open(path, os.O_RDWR | os.O_APPEND)
            os.close(fd)
            if self._fsync != "never":
                fsync_dir(self.directory)
            self._open_segment(base)
        except OSError as exc:
            self._close_segment()
            raise LogWriteError(f"creating segment {path} failed: {exc}") from exc
        self._size, self._last_index_pos, self._max_ts = 0, 0, MIN_TS

    def _after_write(self) -> None:
        if self._fsync == "never" or self._log_fd is None:
            return
        if self._fsync == "batch":
            os.fsync(self._log_fd)
            return
        self._dirty = True
        now = time.monotonic()
        if now - self._last_fsync >= self._fsync_interval:
            os.fsync(self._log_fd)
            self._dirty = False
            self._last_fsync = now
