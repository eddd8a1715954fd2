"""The deterministic merge of a task's input partitions.

A task reads several partitions (partition ``p`` of each keyed input, every partition of
each global input). The processor sees them as one sequence, in this order:

* within one partition, always offset order (a partition is never reordered);
* across partitions, a k-way merge of the partitions' *next* records by
  ``(timestamp_ms, input rank, topic, partition)``, smallest first.

The timestamp is the log record's, in milliseconds (Kafka stores ms, the embedded log ns:
comparing ms makes the order the same on both logs). The rank is the input's position in
``Processor.inputs``, so reference data at the same millisecond comes before the market
data that needs it.

**Alignment.** The merge can only compare heads it has. A partition with nothing buffered
*that may still hold records* (its reader has not caught up with its end) holds the merge
back, because its next record could sort first. A partition that is caught up does not.
So on input that is already on the log, the order is a pure function of the input and
not of how records happened to be polled or batched; ``hftstream verify`` and recovery
rely on that. Live, an upstream that is late by more than ``max_wait`` is not waited for
(the runtime passes ``force=True``), like Kafka Streams' ``max.task.idle.ms`` -- but only
past a partition *known to be empty at the broker* (KIP-695): the runtime asks the broker
for its stable end (:meth:`Merger.set_broker_end`), and a partition whose reader is below it
has records on the broker and is always waited for, however long fetching them takes.

**Caps.** A partition may also carry a cap (:meth:`Merger.set_cap`, an offset, exclusive): records at
or past it are kept aside, unbuffered, and the partition counts as ending there. The lockstep schedule
run on two cores caps an input written by a stage in the other process at the offsets that stage had
reached when a one-process run would have read it.

**Horizons.** A partition may carry a horizon (:meth:`Merger.set_horizon`, in ms,
exclusive): its records at or past it are kept buffered, and a partition whose next record
is past its horizon no longer holds the merge back. :mod:`streams.runtime.lockstep` drives a
cyclic pipeline slice by slice of event time with them.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Sequence

from streams.log.base import Record, TopicPartition

NS_PER_MS = 1_000_000
NO_HORIZON = 1 << 62  # ms: no record is that late


def runs_of(records: Iterable[Record]) -> dict[TopicPartition, list[Record]]:
    """Records grouped by partition, each group in the order given (offset order, as a reader hands them out)."""
    runs: dict[TopicPartition, list[Record]] = {}
    for r in records:
        run = runs.get((r.topic, r.partition))
        if run is None:
            runs[(r.topic, r.partition)] = [r]
        else:
            run.append(r)
    return runs


class PartitionQueue:
    """Buffered records of one input partition, with where reading has got to."""

    __slots__ = ("tp", "rank", "records", "position", "reader_position", "end", "broker_end", "horizon", "cap", "raw_end", "aside")

    def __init__(self, tp: TopicPartition, rank: int, position: int) -> None:
        self.tp = tp
        self.rank = rank
        self.records: deque[Record] = deque()
        self.position = position  # one past the last record buffered (where a commit resumes once it is handed out)
        self.reader_position = position  # where the reader is (past transaction markers, compacted offsets)
        self.end: int | None = None  # the partition's end as last seen (None: unknown)
        self.broker_end: int | None = None  # its stable end as the broker just said (None: not asked)
        self.horizon = NO_HORIZON  # ms, exclusive: records at or past it are not handed out
        self.cap: int | None = None  # offset, exclusive: records at or past it are kept aside (None: no cap)
        self.raw_end: int | None = None  # the end as the log said it (``end`` is it, capped)
        self.aside: deque[Record] = deque()  # records read at or past the cap, in offset order

    def ready(self) -> bool:
        """A record is buffered and its timestamp is before the horizon."""
        return bool(self.records) and self.records[0].timestamp_ns // NS_PER_MS < self.horizon

    def next_offset(self) -> int:
        """The offset of the first record not yet handed out (where a commit resumes)."""
        if self.records:
            return self.records[0].offset
        if self.aside:
            return self.aside[0].offset
        return max(self.position, self.reader_position)

    def caught_up(self) -> bool:
        """Nothing buffered and the reader has reached the partition's known end."""
        return not self.records and self.end is not None and self.reader_position >= self.end

    def known_empty(self) -> bool:
        """Nothing buffered and the broker said it holds nothing past the reader (KIP-695: may be forced past)."""
        return not self.records and self.broker_end is not None and self.reader_position >= self.broker_end

    def holds_back(self, force: bool) -> bool:
        """An empty partition that may still hold records, unless forced past one known to be empty."""
        return not self.records and not self.caught_up() and not (force and self.known_empty())


class Merger:
    """Holds each partition's buffered records and hands them out in the merge order."""

    def __init__(self, partitions: Sequence[tuple[TopicPartition, int, int]]) -> None:
        """``partitions``: ``((topic, partition), rank, start_offset)`` of every input partition of the task."""
        self.queues: dict[TopicPartition, PartitionQueue] = {
            tp: PartitionQueue(tp, rank, start) for tp, rank, start in partitions
        }
        self._ordered = sorted(self.queues.values(), key=lambda q: (q.rank, q.tp))

    def add(self, records: Iterable[Record]) -> None:
        """Buffer records read from the log (any partitions of this task, offset order per partition)."""
        queues = self.queues
        for rec in records:
            q = queues[(rec.topic, rec.partition)]
            if q.cap is not None and (rec.offset >= q.cap or q.aside):
                q.aside.append(rec)
            else:
                q.records.append(rec)
            q.position = rec.offset + 1
            if q.position > q.reader_position:
                q.reader_position = q.position

    def add_run(self, tp: TopicPartition, records: Sequence[Record], start: int = 0) -> None:
        """Buffer ``records[start:]``: consecutive records of partition ``tp``, in offset order (what :meth:`add`
        does with them, in one ``extend``)."""
        if start >= len(records):
            return
        q = self.queues[tp]
        if q.cap is not None:
            self.add(records[start:])
            return
        q.records.extend(records if not start else records[start:])
        q.position = records[-1].offset + 1
        if q.position > q.reader_position:
            q.reader_position = q.position

    def set_end(self, tp: TopicPartition, end: int | None, position: int | None = None) -> None:
        """Record the partition's end (LSO for read_committed readers) and the reader's position.

        The reader's position may be past the last record (transaction markers, compacted
        offsets): once everything read is handed out, a commit resumes there, so a consumer
        of a transactional topic shows no lag of one marker forever.
        """
        q = self.queues[tp]
        q.raw_end = end
        q.end = end if q.cap is None else q.cap
        if position is not None and position > q.reader_position:
            q.reader_position = position

    def set_cap(self, caps: dict[TopicPartition, int] | None) -> None:
        """Cap each listed partition at an offset (exclusive); the others get none.

        A cap is where the partition ends for the merge (it is the end a writer reported after committing,
        so the records below it are on the log): the reader is waited for up to it, and records at or past
        it are kept aside until a later cap lets them in, in offset order.
        """
        caps = caps or {}
        for tp, q in self.queues.items():
            cap = caps.get(tp)
            if cap == q.cap:
                continue
            q.cap = cap
            records, aside = q.records, q.aside
            while records and cap is not None and records[-1].offset >= cap:
                aside.appendleft(records.pop())
            while aside and (cap is None or aside[0].offset < cap):
                records.append(aside.popleft())
            q.end = q.raw_end if cap is None else cap

    def set_broker_end(self, ends: dict[TopicPartition, int | None]) -> None:
        """Record the stable end the broker gave for each listed partition (``None``: forget it).

        Only what the broker said *now* may justify forcing the merge past a partition: the
        caller clears it again once the forced pop is done.
        """
        for tp, end in ends.items():
            self.queues[tp].broker_end = end

    def set_horizon(self, horizons: dict[TopicPartition, int] | None) -> None:
        """Set each listed partition's horizon (ms, exclusive); the others get none."""
        horizons = horizons or {}
        for tp, q in self.queues.items():
            q.horizon = horizons.get(tp, NO_HORIZON)

    def settled(self) -> bool:
        """Every record before the horizons is buffered: each partition's reader is at its end, or
        has buffered a record past the partition's horizon (what follows it waits for a later horizon)."""
        for q in self._ordered:
            if q.end is not None and q.reader_position >= q.end:
                continue
            records = q.records
            if not records or (records[-1].timestamp_ns // NS_PER_MS < q.horizon and q.ready()):
                return False
        return True

    def buffered(self) -> int:
        """Records waiting to be handed out."""
        return sum(len(q.records) for q in self.queues.values())

    def blocked(self, force: bool = False) -> bool:
        """True when an empty partition that may still hold records holds the merge back.

        With ``force``, partitions the broker said are empty (:meth:`set_broker_end`) do not.
        """
        return any(q.holds_back(force) for q in self._ordered)

    def holding_back(self) -> list[TopicPartition]:
        """The empty partitions that may still hold records (what to ask the broker about)."""
        return [q.tp for q in self._ordered if q.holds_back(False)]

    def idle(self) -> bool:
        """Every partition is caught up and nothing is buffered."""
        return all(q.caught_up() for q in self._ordered)

    def pop(self, limit: int, *, force: bool = False) -> list[Record]:
        """Up to ``limit`` records in merge order.

        Stops as soon as a partition runs empty while it may still hold records: the next
        record there could sort before anything still buffered. ``force`` goes on past such
        a partition only when the broker said it is empty (KIP-695), never past known lag.
        """
        out: list[Record] = []
        if limit <= 0:
            return out
        active = [q for q in self._ordered if q.ready()]
        if not active:
            return out
        if len(active) < len(self._ordered) and self.blocked(force):
            return out
        if len(active) == 1:  # the others are caught up, past their horizon (or forced): no comparisons needed
            q = active[0]
            records, horizon = q.records, q.horizon
            if horizon == NO_HORIZON or records[-1].timestamp_ns // NS_PER_MS < horizon:
                for _ in range(min(limit, len(records))):
                    out.append(records.popleft())
            else:
                while records and len(out) < limit and records[0].timestamp_ns // NS_PER_MS < horizon:
                    out.append(records.popleft())
            return out
        heap = [(q.records[0].timestamp_ns // NS_PER_MS, q.rank, q.tp, q) for q in active]
        heapq.heapify(heap)
        while heap and len(out) < limit:
            _, rank, tp, q = heap[0]
            rec = q.records.popleft()
            out.append(rec)
            if q.records:
                ms = q.records[0].timestamp_ns // NS_PER_MS
                if ms < q.horizon:
                    heapq.heapreplace(heap, (ms, rank, tp, q))
                else:
                    heapq.heappop(heap)  # the rest of this partition is past its horizon
            else:
                heapq.heappop(heap)
                if q.holds_back(force):
                    break  # this partition may have more records that sort before the others
        return out

    def drain(self) -> list[Record]:
        """Every buffered record, in the merge order, waiting for no partition.

        The order is the one :meth:`pop` gives once every partition is known to end right after what
        is buffered: so a replay of exactly these records (a manifest's ranges) gives it again. For
        the as-of inputs of a live run, applied at the start of each transaction (streams.runtime.runner).
        """
        heap = [(q.records[0].timestamp_ns // NS_PER_MS, q.rank, q.tp, q) for q in self._ordered if q.records]
        heapq.heapify(heap)
        out: list[Record] = []
        while heap:
            _, rank, tp, q = heap[0]
            records = q.records
            out.append(records.popleft())
            if records:
                heapq.heapreplace(heap, (records[0].timestamp_ns // NS_PER_MS, rank, tp, q))
            else:
                heapq.heappop(heap)
        return out

    def positions(self) -> dict[TopicPartition, int]:
        """``{tp: next offset to hand out}``: where a commit after the records handed out so far resumes."""
        return {tp: q.next_offset() for tp, q in self.queues.items()}
