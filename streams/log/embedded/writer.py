"""Appending to one partition, safely from several threads and several processes at once.

Protocol for one batch (:meth:`PartitionWriter.append`):

1. take the partition's ``~lock`` with ``fcntl.flock`` (the kernel drops it if we die);
2. *sync*: read ``~lso`` and list the partition directory. An open transaction there (``~lso``
   points at its record; or a protocol-1 marker ``~txn``) was left by a transactional
   producer that died between marking the partition and its cleanup (nobody else can
   hold the lock meanwhile): if its transaction reached its commit point, roll forward
   (the last stable offset becomes the end); if not, truncate the partition back to the
   transaction's start (see :mod:`.transactional`). Then ``stat`` the last segment; if its
   name, inode or size differ from what this writer last wrote, another process appended,
   rolled or repaired, so re-open it and scan its tail from the last index entry (which
   also truncates a torn tail left by a writer that died mid-write, with a warning);
3. encode the batch and write it with one ``os.write`` per segment touched (a batch
   spans segments only when it rolls), then the index entries;
4. fsync according to the policy; store the new end as the partition's last stable offset
   (``~lso``, one ``pwrite``); release the lock.

A record is on disk (in the page cache) when ``os.write`` returned, so a producer killed
after ``flush()`` returned loses nothing; ``fsync=batch`` also survives a power cut. A
writer killed between steps 3 and 4 leaves records that ``read_committed`` readers see
once the next append to the partition stores its own end (those records were never
acknowledged). Transactions use :meth:`PartitionWriter.locked` to hold the lock across
several partitions and steps.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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
    floor_offset,
    index_path,
    open_index,
    timeindex_path,
)
from streams.log.embedded.partition import LOCK_NAME, remove_segment, scan_tail, segment_path
from streams.log.embedded.segment import (
    MIN_TS,
    SUFFIX,
    FrameScanner,
    encode_run,
    frame_at,
    list_segments,
    parse_segment_name,
    segment_name,
)
from streams.log.embedded.txn import (
    MARKER_NAME,
    Marker,
    is_committed,
    open_lso,
    read_legacy_marker,
    read_lso_state,
    record_marker,
    remove_marker,
    write_lso,
)

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
        self._dir = str(directory)  # str paths on the per-commit path: no pathlib objects per partition and commit
        self._lock_path = os.path.join(self._dir, LOCK_NAME)
        self.topic = topic
        self._segment_bytes = settings.segment_bytes
        self._interval = settings.index_interval_bytes
        self._fsync = settings.fsync
        self._fsync_interval = settings.fsync_interval_ms / 1000.0
        self._mutex = threading.Lock()
        self._lock_fd: int | None = None
        self._lso_fd: int | None = None
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
        with self.locked():
            first = self._write(batch)
            self.set_stable(self._next)
            return first

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold this partition exclusively (thread mutex + ``flock``), synced to its current end.

        Inside, :attr:`end`, :meth:`write`, :meth:`set_stable` and :meth:`truncate_to` may be
        used. An ``OSError`` inside becomes :class:`~streams.errors.LogWriteError`.
        """
        with self._mutex:
            try:
                lock_fd = self._acquire()
            except OSError as exc:
                raise LogWriteError(f"cannot lock {self.directory / LOCK_NAME}: {exc}") from exc
            try:
                self._sync()
                yield
            except OSError as exc:  # opening, syncing or rolling: typed, named, and re-synced next time
                self._close_segment()
                raise LogWriteError(f"appending to {self.directory} failed: {exc}") from exc
            finally:
                fcntl.flock(lock_fd, fcntl.LOCK_UN)

    @property
    def end(self) -> int:
        """The next offset to be written (valid inside :meth:`locked`)."""
        return self._next

    def write(self, batch: Sequence[BatchItem]) -> int:
        """Append ``batch`` without moving the last stable offset (inside :meth:`locked`); return its first offset."""
        return self._write(batch)

    def set_stable(self, offset: int) -> None:
        """Store ``offset`` as the partition's last stable offset, no transaction open (inside :meth:`locked`)."""
        assert self._lso_fd is not None
        write_lso(self._lso_fd, offset)

    def mark(self, start: int, ref: int, *, durable: bool) -> None:
        """Keep the last stable offset at ``start`` and point ``~lso`` at transaction record ``ref`` (inside :meth:`locked`)."""
        assert self._lso_fd is not None
        write_lso(self._lso_fd, start, ref)
        if durable:
            os.fsync(self._lso_fd)

    def truncate_to(self, offset: int) -> None:
        """Drop every record at or after ``offset`` (inside :meth:`locked`): a transaction's rollback."""
        self._close_segment()
        bases = list_segments(self.directory)
        keep = [b for b in bases if b <= offset]
        if not keep:
            raise LogWriteError(
                f"cannot roll {self.directory} back to offset {offset}: no segment holds it any more",
                hint="see RUNBOOK.md 'Stuck transaction / LSO not advancing'",
            )
        for base in reversed(bases):
            if base > offset:
                remove_segment(self.directory, base)
        base = keep[-1]
        fd = os.open(segment_path(self.directory, base), os.O_RDWR)
        try:
            size = os.fstat(fd).st_size
            cut = self._position_of(fd, base, size, offset)
            if cut < size:
                os.ftruncate(fd, cut)
                if self._fsync != "never":
                    os.fsync(fd)
        finally:
            os.close(fd)
        for path, entry, at in ((index_path(self.directory, base), OFFSET_ENTRY, 1), (timeindex_path(self.directory, base), TIME_ENTRY, 2)):
            try:
                ifd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                keep_n = first_entry_where(ifd, entry, entry_count(ifd, entry), lambda e, at=at: e[at] >= cut)  # type: ignore[misc]
                os.ftruncate(ifd, keep_n * entry.size)
            finally:
                os.close(ifd)
        self._sync_segment(list_segments(self.directory))

    def _position_of(self, fd: int, base: int, size: int, offset: int) -> int:
        """Byte position of the record with ``offset`` in segment ``base`` (the end of its valid records if none)."""
        pos, expected = 0, base
        ifd = open_index(index_path(self.directory, base))
        try:
            entry = floor_offset(ifd, offset, size)
        finally:
            if ifd is not None:
                os.close(ifd)
        if entry is not None:
            frame = frame_at(fd, entry[1], size)
            if frame is not None and frame.offset == entry[0]:
                pos, expected = entry[1], entry[0]
        scanner = FrameScanner(fd, pos, size, expected)
        for frame in scanner:
            if frame.offset >= offset:
                return frame.pos
        return scanner.stop_pos

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
            if self._lso_fd is not None:
                os.close(self._lso_fd)
                self._lso_fd = None

    def __del__(self) -> None:  # a log that was never closed must not leak descriptors
        try:
            self.close()
        except (AttributeError, OSError):
            pass

    # -- locking and sync -----------------------------------------------------------

    def _acquire(self) -> int:
        lock_path = self._lock_path
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
                if self._lso_fd is None:
                    self._lso_fd = open_lso(self.directory, create=True)
                return fd
            # the topic was deleted (and maybe re-created): our lock file is not the live one
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            self._lock_fd = None
            if self._lso_fd is not None:
                os.close(self._lso_fd)
                self._lso_fd = None
            self._close_segment()
            if not self.directory.is_dir():
                raise UnknownTopicError(self.topic)

    def _list(self) -> tuple[list[int], bool]:
        """Segment bases, and whether a transaction marker is present (one ``listdir``)."""
        try:
            names = os.listdir(self._dir)
        except FileNotFoundError:
            raise UnknownTopicError(self.topic) from None
        bases = [b for n in names if n.endswith(SUFFIX) and (b := parse_segment_name(n)) is not None]
        bases.sort()
        return bases, MARKER_NAME in names

    def _sync(self) -> None:
        bases, legacy = self._list()
        assert self._lso_fd is not None
        start, ref = read_lso_state(self._lso_fd, strict=False)
        if ref or legacy:
            self._resolve(record_marker(self.directory, ref, start) if ref else read_legacy_marker(self.directory))
            bases, _ = self._list()
        self._sync_segment(bases)

    def _sync_segment(self, bases: list[int]) -> None:
        """Open the last segment and find its end, unless it is exactly as this writer left it."""
        if not bases:
            fd = os.open(segment_path(self.directory, 0), os.O_WRONLY | os.O_CREAT, 0o644)
            os.close(fd)
            bases = [0]
        last = bases[-1]
        try:
            st = os.stat(os.path.join(self._dir, segment_name(last)))
        except FileNotFoundError:
            if not self.directory.is_dir():
                raise UnknownTopicError(self.topic) from None
            raise
        if self._log_fd is not None and last == self._base and st.st_ino == self._ino and st.st_size == self._size:
            return
        self._open_segment(last)
        self._recover()

    def _resolve(self, marker: Marker | None) -> None:
        """Finish the transaction a dead producer left in this partition (we hold the lock, so it is dead)."""
        if marker is None:
            return
        committed = is_committed(self.directory.parent.parent, marker)
        if not committed:
            self.truncate_to(marker.start)  # re-syncs: self._next is the marker's start again
        else:
            self._close_segment()
            self._sync_segment(list_segments(self.directory))
        self.set_stable(self._next)  # clears the pointer to the transaction record
        remove_marker(self.directory)  # a protocol-1 marker, if that is what it was
        logger.warning(
            "%s: %s transaction %d.%d of %r left by a dead producer (marker from offset %d); end offset now %d",
            self.directory,
            "rolled forward the committed" if committed else "rolled back the uncommitted",
            marker.epoch,
            marker.seq,
            marker.transactional_id,
            marker.start,
            self._next,
        )

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
