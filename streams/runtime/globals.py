"""One reader of a processor's global inputs for all its tasks (DECISIONS #18, #55).

Every task reads *all* of each global input (reference data, commands, market data for
marks). Reading them once per task read, CRC-checked and parsed each record once per
task; :class:`GlobalFeed` reads each global partition once per runner and hands every
record to each task's :class:`~streams.runtime.merge.Merger` that has not had it yet.

What a task sees does not change: its merger gets the same records of each partition, in
offset order, from its own position on (a task recovered at an older position makes the
reader seek back; tasks past those records skip them), and the merge order is a function of
the records alone (DECISIONS #19). Each task's partition ends are the shared reader's.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from operator import itemgetter

from streams.log.base import Log, Reader, TopicPartition
from streams.runtime.merge import Merger, runs_of

_offset = itemgetter(2)  # Record.offset


class GlobalFeed:
    """The shared reader of ``tps`` (every global partition of one processor) and the mergers it feeds."""

    def __init__(self, log: Log, tps: Sequence[TopicPartition]) -> None:
        self.log = log
        self.tps = tuple(tps)
        self._reader: Reader | None = None
        self._mergers: dict[int, tuple[Merger, ...]] = {}
        self._floors: dict[int, dict[TopicPartition, int]] = {}

    def attach(self, task_id: int, mergers: Merger | Sequence[Merger], positions: dict[TopicPartition, int],
               floors: dict[TopicPartition, int] | None = None) -> None:
        """Feed the task's ``mergers`` from ``positions`` on (seeking the shared reader back if it is past them).

        Each global partition goes to the merger that has a queue for it (a live run keeps the as-of inputs
        in a merger of their own). ``floors`` (the task's ends asked of the broker, kept up to date by the
        runner) are a floor under the reader's own, possibly cached, ends.
        """
        self._mergers[task_id] = tuple(mergers) if not isinstance(mergers, Merger) else (mergers,)
        self._floors[task_id] = floors if floors is not None else {}
        if self._reader is None:
            self._reader = self.log.reader([(t, p, positions[(t, p)]) for t, p in self.tps])
            return
        for tp in self.tps:
            if positions[tp] < self._reader.position(*tp):
                self._reader.seek(tp[0], tp[1], positions[tp])

    def detach(self, task_id: int) -> None:
        """Stop feeding a task (closed or revoked); the reader closes with the last one."""
        self._mergers.pop(task_id, None)
        self._floors.pop(task_id, None)
        if not self._mergers and self._reader is not None:
            self._reader.close()
            self._reader = None

    def refresh(self, max_records: int) -> None:
        """Poll once; hand each task the records it has not had; note every partition's end in every merger.

        ``max_records`` per task, as when every task polled its own reader: a smaller budget would make the
        lockstep schedule's settle loop sleep more often between polls.
        """
        reader = self._reader
        if reader is None:
            return
        mergers = [m for task in self._mergers.values() for m in task]
        floors = [self._floors[task_id] for task_id, task in self._mergers.items() for _ in task]
        records = reader.poll(max_records * len(self._mergers), timeout=0.0)
        if records:
            runs = runs_of(records)
            for merger in mergers:
                queues = merger.queues
                for tp, run in runs.items():
                    q = queues.get(tp)
                    if q is None or run[-1].offset < q.position:
                        continue  # not this merger's, or a task past these records (recovered ahead of the reader)
                    merger.add_run(tp, run, 0 if run[0].offset >= q.position else bisect_left(run, q.position, key=_offset))
        for tp in self.tps:
            end = reader.end_offset(*tp)
            if end is None:
                end = self.log.watermarks(*tp)[1]
            position = reader.position(*tp)
            for merger, floor in zip(mergers, floors):
                if tp in merger.queues:
                    fresh = floor.get(tp)
                    merger.set_end(tp, end if fresh is None or fresh < end else fresh, position)

    def close(self) -> None:
        """Close the reader."""
        for task_id in list(self._mergers):
            self.detach(task_id)

