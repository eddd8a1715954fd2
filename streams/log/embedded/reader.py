"""Reading partitions of the embedded log: :class:`EmbeddedReader` and :class:`EmbeddedGroupConsumer`.

Readers take no lock and never block a writer. Each assigned partition has a cursor that
holds the open segment, reads it in 1 MiB chunks and parses records in a tight loop.
An incomplete record at the end of the last segment is a write in progress (or a torn
tail a writer will truncate): the cursor stops there and tries again on the next poll.
A bad record with valid records after it is corruption: :class:`LogCorruptionError`.

``read_committed`` readers (the default) read the partition's last stable offset (``~lso``,
one ``pread`` per partition per poll, which also says whether a transaction is open there)
and return no record at or beyond it; buffered bytes
past it are dropped and read again later, since an uncommitted transaction's records there
may be rolled back and their offsets re-written (see :mod:`.transactional`). A partition
without ``~lso`` (an older log) reads to its end.

When a cursor reaches the end of a segment and a later segment exists, it re-reads once
(a writer finishes a segment before it creates the next, so nothing can follow that
re-read) and moves on to the segment whose base is the next offset; it never jumps over
offsets (see :meth:`_Cursor._successor`: a listing that missed a segment is confirmed by a
second one; a real hole raises :class:`~streams.errors.MissingOffsetsError`). A segment
deleted or replaced under an open cursor (retention, compaction) stays readable through the
cursor's descriptor.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from streams.errors import ConfigError, LogCorruptionError, MissingOffsetsError, UnknownTopicError
from streams.log.base import GroupConsumer, RebalanceCallback, Reader, Record, TopicPartition
from streams.log.embedded.partition import gaps_allowed, is_declared, locate, open_segment, segment_path
from streams.log.embedded.segment import BAD, INCOMPLETE, find_valid_after, list_segments, parse_records
from streams.log.embedded.txn import LSO_NAME, open_lso, read_lso_state

if TYPE_CHECKING:
    from streams.log.embedded.log import EmbeddedLog

CHUNK = 1 << 20
OFFSET = 2  # where a parsed item holds its offset: Record.offset, and the tape scan's rows keep it there too
_IDLE_SLEEP = 0.01
_LIST_INTERVAL = 0.1
# parse_records' signature: (buf, pos, end, topic, partition, min_offset, limit, out) -> (pos, status, reason)
Parse = Callable[[bytes, int, int, str, int, int, int, list[Any]], tuple[int, int, str]]


class _Cursor:
    """The read position in one partition."""

    __slots__ = (
        "topic", "partition", "directory", "next_offset", "base", "fd", "file_pos", "buf", "bpos", "listed_at",
        "committed", "lso_fd", "seen_lso", "seen_open",
    )

    def __init__(self, topic: str, partition: int, directory: Path, offset: int, committed: bool = True) -> None:
        self.topic, self.partition, self.directory = topic, partition, directory
        self.committed = committed
        self.lso_fd: int | None = None
        self.seen_lso = -1  # the last stable offset and open-transaction flag as last read from ~lso
        self.seen_open = False
        self.next_offset = offset
        self.base = -1
        self.fd: int | None = None
        self.file_pos = 0  # file position of buf[0]
        self.buf = b""
        self.bpos = 0
        self.listed_at = 0.0
        self.seek(offset)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def release(self) -> None:
        """Close every descriptor (the segment and ``~lso``)."""
        self.close()
        if self.lso_fd is not None:
            os.close(self.lso_fd)
            self.lso_fd = None

    def __del__(self) -> None:  # a reader that was never closed must not leak descriptors
        try:
            self.release()
        except (AttributeError, OSError):
            pass

    def seek(self, offset: int) -> None:
        """Position at ``offset`` (the low watermark if ``offset`` is below it)."""
        self.close()
        self.buf, self.bpos = b"", 0
        self.next_offset = offset
        try:
            found = locate(self.directory, offset)
        except FileNotFoundError:
            raise UnknownTopicError(self.topic) from None
        if found is None:
            return  # no segment yet: open on a later poll
        self.base, self.fd, self.file_pos, self.next_offset = found

    def read(self, limit: int, out: list[Record], *, waiting: bool = False, parse: Parse = parse_records) -> int:
        """Append up to ``limit`` records to ``out``; return how many.

        ``waiting``: this is a retry inside one poll's wait, so listing the directory (to
        notice changes other than a plain roll) is rate-limited. ``parse``: see :meth:`EmbeddedReader.poll_parsed`.
        """
        if self.fd is None:
            self.seek(self.next_offset)
            if self.fd is None:
                return 0
        stable = self._stable() if self.committed else None
        unlimited_from = len(out) if self.committed and stable is None else -1
        got = 0
        while got < limit:
            buf = self.buf
            before = len(out)
            cap = limit - got
            if stable is not None:
                cap = min(cap, stable - self.next_offset)  # exact when offsets are contiguous
                if cap <= 0:
                    self._rewind()  # bytes past the stable offset may be rolled back: re-read them later
                    break
            bpos = self.bpos
            pos, status, reason = parse(
                buf, bpos, len(buf), self.topic, self.partition, self.next_offset, cap, out
            )
            trimmed = stable is not None and len(out) > before and out[-1][OFFSET] >= stable
            if trimmed:  # an offset gap (compaction) let a record at/after the stable offset in: parse fewer
                keep = sum(1 for r in out[before:] if r[OFFSET] < stable)  # type: ignore[operator]
                del out[before:]
                pos, status, reason = parse(
                    buf, bpos, len(buf), self.topic, self.partition, self.next_offset, keep, out
                )
            self.bpos = pos
            if len(out) > before:
                got += len(out) - before
                self.next_offset = out[-1][OFFSET] + 1
            if trimmed:
                self._rewind()
                break
            if got >= limit:
                break
            if stable is not None and self.next_offset >= stable:
                self._rewind()  # all that is visible is read: no look for more bytes or a later segment (stat, listing)
                break
            if status == BAD:
                if not got:  # records before the damage go out first; the next poll raises
                    self._bad(reason)
                break
            # the buffer is used up (OK) or ends inside a record (INCOMPLETE): read on
            data = os.pread(self.fd, CHUNK, self.file_pos + len(buf))  # type: ignore[arg-type]
            if data:
                self.buf = buf[pos:] + data if pos < len(buf) else data
                self.file_pos += pos
                self.bpos = 0
                continue
            if not self._next_segment(status, waiting):
                break
        if unlimited_from >= 0 and got:
            got -= self._recheck_stable(out, unlimited_from)
        return got

    def _stable(self) -> int | None:
        """The partition's last stable offset (one ``pread``), or ``None`` when it has no ``~lso`` (an older log).

        Notes it, and whether a transaction is open, for :meth:`EmbeddedReader.end_offset`.
        """
        if self.lso_fd is None:
            self.lso_fd = open_lso(self.directory, create=False)
            if self.lso_fd is None:
                return None
        lso, ref = read_lso_state(self.lso_fd, self.directory / LSO_NAME)
        self.seen_lso, self.seen_open = lso, ref != 0
        return lso

    def _recheck_stable(self, out: list[Record], start: int) -> int:
        """After reading without a limit (no ``~lso`` yet): a transaction may have created it meanwhile.

        Drop what it made unstable and seek back; return how many records were dropped.
        """
        stable = self._stable()
        if stable is None or out[-1][OFFSET] < stable:
            return 0
        keep = start + sum(1 for r in out[start:] if r[OFFSET] < stable)
        dropped = len(out) - keep
        first = out[keep][OFFSET]
        del out[keep:]
        self.seek(first)
        return dropped

    def _expected(self) -> int:
        return self.next_offset

    def _bad(self, reason: str) -> None:
        """A bad record at the parse position: corruption (raise) or a torn / in-progress tail (wait)."""
        assert self.fd is not None
        pos = self.file_pos + self.bpos
        size = os.fstat(self.fd).st_size
        last = self._is_last()
        after = find_valid_after(self.fd, pos, size, self._expected())
        if after is None and last:
            self._rewind()  # not yet written (or a torn tail the next writer truncates)
            return
        # re-read once from disk before calling it corruption
        self._rewind()
        probe: list[Record] = []
        data = os.pread(self.fd, CHUNK, self.file_pos)
        _, status, reason2 = parse_records(data, 0, len(data), self.topic, self.partition, 0, 1, probe)
        if probe:
            return  # it reads fine now: pick it up on the next poll
        raise LogCorruptionError(
            str(segment_path(self.directory, self.base)), self._expected(), pos, reason2 or reason
        )

    def _rewind(self) -> None:
        """Drop buffered bytes from the parse position on, so they are read from disk again."""
        self.file_pos += self.bpos
        self.buf, self.bpos = b"", 0

    def _is_last(self) -> bool:
        try:
            bases = list_segments(self.directory)
        except FileNotFoundError:
            return True
        return not bases or bases[-1] <= self.base

    def _later_segments(self, waiting: bool) -> list[int]:
        """Segments after the current one. A roll is seen at once (the new segment is named after
        the next offset); other changes (a compaction gap) by listing, at most every 100 ms."""
        candidate = self.next_offset
        if candidate > self.base and os.path.exists(segment_path(self.directory, candidate)):
            return [candidate]
        now = time.monotonic()
        if waiting and now - self.listed_at < _LIST_INTERVAL:
            return []
        self.listed_at = now
        try:
            return [b for b in list_segments(self.directory) if b > self.base]
        except FileNotFoundError:
            return []

    def _next_segment(self, status: int, waiting: bool = False) -> bool:
        """At the end of the visible data: move to the next segment if there is one."""
        assert self.fd is not None
        later = self._later_segments(waiting)
        leftover = len(self.buf) - self.bpos
        if not later:
            if status == INCOMPLETE and leftover:
                self._bad("incomplete record")  # raises if valid records follow it
            return False
        # the segment was closed before ``later[0]`` was created: one more read sees all of it
        if os.fstat(self.fd).st_size > self.file_pos + len(self.buf):
            return True
        if leftover:
            pos = self.file_pos + self.bpos
            probe: list[Record] = []
            data = os.pread(self.fd, leftover + CHUNK, pos)
            parse_records(data, 0, len(data), self.topic, self.partition, 0, 1, probe)
            if probe:  # our buffered bytes were stale (the tail was rewritten): read again
                self._rewind()
                return True
            raise LogCorruptionError(
                str(segment_path(self.directory, self.base)),
                self._expected(),
                pos,
                f"truncated record at the end of a closed segment ({leftover} bytes)",
            )
        base = self._successor(later)
        if base is None:
            return False
        self.close()
        opened = open_segment(self.directory, base)
        if opened is not None:
            self.fd, self.base = opened[0], base
            self.file_pos, self.buf, self.bpos = 0, b"", 0
            return True
        self.seek(self.next_offset)  # it vanished (retention, compaction): locate afresh
        return self.fd is not None

    def _successor(self, later: list[int]) -> int | None:
        """The segment to read after the current (fully read) one, never skipping an offset that exists.

        The next segment's base must be the next offset. A listing taken while a writer
        creates segments can miss one (``readdir`` is not atomic across its ``getdents``
        calls), so a gap is confirmed by a second listing: it starts after the first one
        ended, so it sees every segment created before the ones the first listing saw. A
        gap that remains is legitimate only if retention removed the current segment
        meanwhile (checked after the listing: retention removes the oldest first), if the
        topic is compacted, or if ``hftstream log repair`` declared it; otherwise it is a
        hole: :class:`~streams.errors.MissingOffsetsError`.
        """
        n = self.next_offset
        if later[0] == n:
            return n
        try:
            bases = list_segments(self.directory)
        except FileNotFoundError:
            raise UnknownTopicError(self.topic) from None
        later = [b for b in bases if b > self.base]
        if not later:
            return None
        upto = [b for b in later if b <= n]
        if upto:
            return upto[-1]  # the segment holding ``n`` (or an overlapping one: records below ``n`` are skipped)
        first = later[0]
        if (
            not os.path.exists(segment_path(self.directory, self.base))
            or gaps_allowed(self.directory)
            or is_declared(self.directory, n, first - 1)
        ):
            return first
        raise MissingOffsetsError(self.topic, self.partition, n, first - 1, str(segment_path(self.directory, first)))


class EmbeddedReader(Reader):
    """Reads assigned partitions from explicit offsets (see :meth:`EmbeddedLog.reader`)."""

    def __init__(self, log: EmbeddedLog, assignments: Sequence[tuple[str, int, int]], *, read_committed: bool = True) -> None:
        self._log = log
        self._committed = read_committed
        self._cursors: dict[TopicPartition, _Cursor] = {}
        self._order: list[_Cursor] = []
        self._rr = 0
        try:
            for topic, partition, offset in assignments:
                self._add(topic, partition, offset)
        except BaseException:
            self.close()
            raise

    def _add(self, topic: str, partition: int, offset: int) -> None:
        directory = self._log.partition_dir(topic, partition)  # validates topic and partition
        if offset < 0:
            raise ConfigError(f"start offset {offset} for {topic}/{partition} is negative", hint="offsets start at 0")
        key = (topic, partition)
        if key in self._cursors:
            self._cursors[key].seek(offset)
            return
        cursor = _Cursor(topic, partition, directory, offset, self._committed)
        self._cursors[key] = cursor
        self._order.append(cursor)

    def poll(self, max_records: int = 1000, timeout: float = 0.0) -> list[Record]:
        """Up to ``max_records`` records across the assigned partitions, waiting up to ``timeout`` s.

        Partitions take turns (the first one polled rotates), so a busy partition cannot
        starve the others; within a partition records come in offset order.
        """
        return self.poll_parsed(parse_records, max_records, timeout)

    def poll_parsed(self, parse: Parse, max_records: int = 1000, timeout: float = 0.0) -> list[Any]:
        """:meth:`poll` with ``parse`` in place of :func:`~.segment.parse_records` (same arguments, same result).

        ``parse`` may append items other than ``Record`` -- tuples with the offset at index :data:`OFFSET` -- for
        records it turns into something else (the tape sink's scan: frames to encoded rows). Probes of damaged
        bytes still use ``parse_records``, so what counts as damage and every error stay the reader's.
        """
        out: list[Any] = []
        if not self._order or max_records <= 0:
            if timeout > 0:
                time.sleep(timeout)
            return out
        deadline = time.monotonic() + timeout
        waiting = False
        while True:
            n = len(self._order)
            start = self._rr
            self._rr = (self._rr + 1) % n
            for i in range(n):
                cursor = self._order[(start + i) % n]
                try:
                    cursor.read(max_records - len(out), out, waiting=waiting, parse=parse)
                except LogCorruptionError:
                    if out:  # hand out what was read; the damaged partition raises again next poll
                        return out
                    raise
                if len(out) >= max_records:
                    break
            if out:
                return out
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return out
            time.sleep(min(_IDLE_SLEEP, remaining))
            waiting = True

    def seek(self, topic: str, partition: int, offset: int) -> None:
        """Continue ``topic``/``partition`` from ``offset`` (the low watermark if below it)."""
        cursor = self._cursors.get((topic, partition))
        if cursor is None:
            raise ConfigError(
                f"{topic}/{partition} is not assigned to this reader",
                hint="create the reader with every (topic, partition, offset) it should read",
            )
        cursor.seek(offset)

    def position(self, topic: str, partition: int) -> int:
        """The offset of the next record :meth:`poll` returns for this partition."""
        cursor = self._cursors.get((topic, partition))
        if cursor is None:
            raise ConfigError(f"{topic}/{partition} is not assigned to this reader")
        return cursor.next_offset

    def end_offset(self, topic: str, partition: int) -> int | None:
        """Where the partition ends now, as :meth:`Reader.end_offset` defines it (cheap: at most one ``pread``).

        No transaction open on the partition: its last stable offset, which is then its end.
        A transaction open (``~lso`` points at its record): the high watermark, which a
        ``read_committed`` reader's position stays below until the transaction ends, so the
        partition is not "caught up" meanwhile (as on Kafka). While the position is below the
        last stable offset the last poll saw, that value is the answer without any system
        call (the partition is not caught up either way); only a reader at that offset reads
        ``~lso`` again. ``None`` for a partition without ``~lso`` (an older log): use
        :meth:`EmbeddedLog.watermarks` there.
        """
        cursor = self._cursors.get((topic, partition))
        if cursor is None:
            raise ConfigError(f"{topic}/{partition} is not assigned to this reader")
        if cursor.next_offset < cursor.seen_lso and not cursor.seen_open:
            return cursor.seen_lso
        stable = cursor._stable()
        if cursor.seen_open:
            return self._log.watermarks(topic, partition)[1]
        return stable

    def assignment(self) -> list[TopicPartition]:
        """The partitions this reader reads, in assignment order."""
        return [(c.topic, c.partition) for c in self._order]

    def close(self) -> None:
        """Close every open segment."""
        for cursor in self._order:
            cursor.release()


class EmbeddedGroupConsumer(EmbeddedReader, GroupConsumer):
    """A consumer in a group: every partition of its topics, resuming from committed offsets.

    The embedded log runs a *single-process* group: there is no rebalancing, so two
    consumers of one group in different processes would each read every partition. Run one
    consumer per group (scale out with Kafka). A committed offset outside the partition's
    current range (after retention or ``log repair``) is clamped into ``[low, high]``.
    ``on_assign`` is called once, with every partition, when the consumer is created;
    ``on_revoke`` once, with every partition, when it is closed (before its files are).
    """

    def __init__(
        self,
        log: EmbeddedLog,
        group: str,
        topics: Sequence[str],
        auto_offset_reset: Literal["earliest", "latest"] = "earliest",
        *,
        read_committed: bool = True,
        on_assign: RebalanceCallback | None = None,
        on_revoke: RebalanceCallback | None = None,
    ) -> None:
        if auto_offset_reset not in ("earliest", "latest"):
            raise ConfigError(
                f"auto_offset_reset {auto_offset_reset!r} is not 'earliest' or 'latest'",
                hint="use auto_offset_reset='earliest' (from the start) or 'latest' (only new records)",
            )
        self.group = group
        self._store = log.offsets_store()
        committed = self._store.load(group)
        assignments = []
        for topic in dict.fromkeys(topics):
            for p in range(log.partitions(topic)):
                low, high = log.watermarks(topic, p)
                start = committed.get((topic, p))
                if start is None:
                    start = low if auto_offset_reset == "earliest" else high
                assignments.append((topic, p, min(max(start, low), high)))
        super().__init__(log, assignments, read_committed=read_committed)
        self._on_revoke = on_revoke
        self._closed = False
        if on_assign is not None:
            on_assign(self.assignment())

    def close(self) -> None:
        """Call ``on_revoke`` with every partition (once), then close."""
        if not getattr(self, "_closed", True):  # a constructor that failed half-way has nothing to revoke
            self._closed = True
            if self._on_revoke is not None:
                self._on_revoke(self.assignment())
        super().close()

    @property
    def store_directory(self) -> Path:
        """Where this consumer's group keeps its committed offsets (a transactional commit checks it)."""
        return self._store.directory

    def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        """Persist ``{(topic, partition): next_offset}`` (``None``: the current positions), atomically."""
        if offsets is None:
            offsets = {(c.topic, c.partition): c.next_offset for c in self._order}
        for (topic, partition), offset in offsets.items():
            if not isinstance(offset, int) or offset < 0:
                raise ConfigError(
                    f"cannot commit offset {offset!r} for {topic}/{partition}",
                    hint="commit the next offset to read: last processed offset + 1",
                )
        self._store.commit(self.group, dict(offsets))

    def committed(self, topic: str, partition: int) -> int | None:
        """The group's committed next offset for a partition, or ``None``."""
        return self._store.load(self.group).get((topic, partition))
