"""The transaction log of an embedded log directory: one CRC-framed record per transaction.

``<root>/__transactions/~txlog.<generation>`` (append-only) holds, for every transaction a
transactional producer commits, **one** record naming the producer (``id``, ``epoch``),
the transaction (``seq``), its commit point (``group``) and every partition it writes with
the partition's end offset before the transaction (``parts``). Each partition the
transaction writes points at that record from its ``~lso`` file while the transaction is
open (see :mod:`.txn`); that pointer, not a scan of this file, is how a later writer, a
reader and ``log check`` find an open transaction. So the file is only ever appended to
and read at a known position.

Frame: ``b"HTX1"``, the body's length (u32 LE), its CRC-32 (u32 LE), the body (compact
JSON). Appends take ``~txlog.lock`` (``flock``), so frames never interleave; a process
killed inside its ``write`` leaves a torn tail, which the next appender (holding the
lock) truncates -- after checking that no valid frame follows it: a bad frame *followed*
by a good one is corruption (:class:`~streams.errors.LogCorruptionError`), as for
segments (DECISIONS #10).

Generations bound the size: the appender that finds the newest generation at
``ROTATE_BYTES`` or more starts the next one, and deletes every generation older than the
previous one that no partition's ``~lso`` points into any more (a dead producer's
unresolved transaction keeps its record alive until it is resolved).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import struct
import threading
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from streams.errors import LogCorruptionError

TXLOG_PREFIX = "~txlog."
LOCK_NAME = "~txlog.lock"
MAGIC = b"HTX1"
HEADER = struct.Struct("<4sII")  # magic, body length, crc32(body)
MAX_BODY = 16 << 20
ROTATE_BYTES = 1 << 20
POS_BITS = 40  # a reference packs (generation, position + 1) into one int64; 0 means "none"
_NAME = re.compile(r"~txlog\.(\d{8})")
_HINT = "see RUNBOOK.md 'Stuck transaction / LSO not advancing'"


def make_ref(generation: int, position: int) -> int:
    """The int64 a partition's ``~lso`` stores to point at a record (never 0)."""
    return (generation << POS_BITS) | (position + 1)


def split_ref(ref: int) -> tuple[int, int]:
    """``(generation, position)`` of a reference made by :func:`make_ref`."""
    return ref >> POS_BITS, (ref & ((1 << POS_BITS) - 1)) - 1


def generation_path(directory: Path, generation: int) -> Path:
    """``__transactions/~txlog.<generation>``."""
    return directory / f"{TXLOG_PREFIX}{generation:08d}"


def generations(directory: Path) -> list[int]:
    """The generations present, oldest first."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted(int(m.group(1)) for m in map(_NAME.fullmatch, names) if m)


def encode(body: dict[str, Any]) -> bytes:
    """One frame."""
    data = json.dumps(body, separators=(",", ":")).encode()
    return HEADER.pack(MAGIC, len(data), zlib.crc32(data)) + data


def _frame_at(buf: bytes, pos: int) -> int:
    """The end of the valid frame at ``pos`` in ``buf``, or -1."""
    if len(buf) - pos < HEADER.size:
        return -1
    magic, length, crc = HEADER.unpack_from(buf, pos)
    end = pos + HEADER.size + length
    if magic != MAGIC or length > MAX_BODY or end > len(buf) or zlib.crc32(buf[pos + HEADER.size : end]) != crc:
        return -1
    return end


def read_record(directory: Path, ref: int) -> dict[str, Any]:
    """The record ``ref`` points at. Raises :class:`LogCorruptionError` when it is missing or damaged."""
    generation, pos = split_ref(ref)
    path = generation_path(directory, generation)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise _corrupt(path, pos, "transaction record missing (its generation was deleted)") from None
    try:
        head = os.pread(fd, HEADER.size, pos)
        if len(head) == HEADER.size and head[:4] == MAGIC:
            length = HEADER.unpack(head)[1]
            buf = head + os.pread(fd, min(length, MAX_BODY), pos + HEADER.size)
            if _frame_at(buf, 0) > 0:
                return json.loads(buf[HEADER.size :])  # type: ignore[no-any-return]
    finally:
        os.close(fd)
    raise _corrupt(path, pos, "no valid transaction record at this position")


def _corrupt(path: Path, pos: int, reason: str) -> LogCorruptionError:
    err = LogCorruptionError(str(path), -1, pos, reason)
    err.hint = _HINT
    return err


class TxnLog:
    """The appender of one log directory's transaction log (one per :class:`EmbeddedLog` handle; thread-safe).

    ``referenced`` returns the generations some partition's ``~lso`` still points into
    (asked only when a generation fills up).
    """

    def __init__(self, directory: Path, *, durable: bool, referenced: Callable[[], Iterable[int]]) -> None:
        self.directory = directory
        self._durable = durable
        self._referenced = referenced
        self._mutex = threading.Lock()
        self._lock_fd: int | None = None
        self._fd: int | None = None
        self._gen = 0
        self._end = 0  # where this handle knows the valid frames of its generation end

    def append(self, body: dict[str, Any]) -> int:
        """Append one record; return its reference (for the partitions' ``~lso``)."""
        frame = encode(body)
        with self._mutex:
            if self._lock_fd is None:
                self.directory.mkdir(parents=True, exist_ok=True)
                self._lock_fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                self._current()
                assert self._fd is not None
                pos = self._end
                try:
                    done = os.write(self._fd, frame)
                    while done < len(frame):
                        done += os.write(self._fd, memoryview(frame)[done:])
                except OSError:
                    os.ftruncate(self._fd, pos)  # leave no partial frame behind
                    raise
                self._end = pos + len(frame)
                if self._durable:
                    os.fsync(self._fd)
                return make_ref(self._gen, pos)
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close the descriptors."""
        with self._mutex:
            for name in ("_fd", "_lock_fd"):
                fd = getattr(self, name)
                if fd is not None:
                    os.close(fd)
                    setattr(self, name, None)

    def __del__(self) -> None:
        try:
            self.close()
        except (AttributeError, OSError):
            pass

    # -- under the lock -------------------------------------------------------------

    def _current(self) -> None:
        """Make ``_fd``/``_end`` the newest generation's valid end (torn tail truncated); rotate a full one."""
        if self._fd is not None:
            st = os.fstat(self._fd)
            if st.st_nlink and st.st_size < ROTATE_BYTES:
                if st.st_size != self._end:  # another process appended (or died appending): check its frames
                    self._end = self._valid_end(self._end, st.st_size)
                return
            if st.st_nlink and generations(self.directory)[-1:] == [self._gen]:
                self._rotate(self._gen + 1)
                return
        gens = generations(self.directory)
        self._open(gens[-1] if gens else 1)
        if self._end >= ROTATE_BYTES:
            self._rotate(self._gen + 1)

    def _open(self, generation: int) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._fd = os.open(generation_path(self.directory, generation), os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        self._gen = generation
        self._end = self._valid_end(0, os.fstat(self._fd).st_size)

    def _rotate(self, generation: int) -> None:
        self._open(generation)
        if self._durable:
            dfd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        keep = set(self._referenced())
        for old in generations(self.directory):
            if old < generation - 1 and old not in keep:
                try:
                    os.unlink(generation_path(self.directory, old))
                except FileNotFoundError:
                    pass

    def _valid_end(self, pos: int, size: int) -> int:
        """Walk the frames in ``[pos, size)``; truncate a torn tail; raise at corruption."""
        assert self._fd is not None
        if pos >= size:
            return pos
        buf = os.pread(self._fd, size - pos, pos)
        at = 0
        while at < len(buf):
            end = _frame_at(buf, at)
            if end < 0:
                break
            at = end
        if at == len(buf):
            return size
        bad = pos + at
        probe = buf.find(MAGIC, at + 1)
        while probe >= 0:
            if _frame_at(buf, probe) > 0:
                raise _corrupt(generation_path(self.directory, self._gen), bad, "damaged transaction record before valid ones")
            probe = buf.find(MAGIC, probe + 1)
        os.ftruncate(self._fd, bad)  # a torn tail: its writer died inside its write (we hold the lock)
        if self._durable:
            os.fsync(self._fd)
        return bad
