"""The exactly-once read-process-write loop, the same on the embedded log and on Kafka.

One :class:`Runner` is one *instance* of one processor. It owns:

* a group consumer (group ``hftstream.<processor>``) over the keyed inputs; Kafka shares
  their partitions among the group's instances, and partition ``p`` of every keyed input
  is task ``p`` (the range assignor keeps them together);
* per task, a plain reader of every global input, positioned from the task's own commits;
* one transactional producer, ``transactional.id = hftstream.<processor>.<instance id>``:
  stable across restarts of the instance (a restart fences its zombie), unique among
  live instances.

A batch: poll, merge each task's partitions (:mod:`.merge`), decode, process, encode and
produce outputs and dead letters into the open transaction. A commit (every ``batch``
records or ``commit_interval_ms``, whichever first): per task that moved, its manifest (and,
when due, its snapshot) to ``state.<processor>``; then the keyed input positions as the
group's offsets, all in the same transaction. So outputs, dead letters, manifests,
snapshots and offsets commit together or not at all.

Failures: :class:`~streams.errors.TransactionAbortableError` -> abort, rebuild every task
from its last commit (snapshot + manifests), re-process; :class:`~streams.errors.ProducerFencedError`
and processor bugs -> stop with the error (nothing uncommitted becomes visible). A broker outage
(retriable errors escaping a round) -> :class:`~streams.runtime.outage.OutageGuard` retries with
backoff, :meth:`Runner.reopen` (new producer, tasks from their last commit), up to ``outage_limit_s``.
A partition revoked by a rebalance first has its transaction committed, inside the revoke
callback. SIGTERM / SIGINT (the CLI sets ``stop``) finish the batch, commit, return.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from streams.errors import ConfigError, HftError, RetryableError, TransactionAbortableError
from streams.log.base import GroupConsumer, Log, Reader, TopicPartition, TransactionalProducer
from streams.processors.base import Processor
from streams.runtime.codec import Encoded, RuntimeCodec, dlq_topic
from streams.runtime.faults import armed, fault
from streams.runtime.preflight import (  # InputPlan, plan_inputs: re-exported, they were defined here
    HistoryBehindGroup,
    InputPlan,
    check_group_agrees,
    check_inputs_present,
    check_topics,
    plan_inputs,
)
from streams.runtime.globals import GlobalFeed
from streams.runtime.merge import runs_of
from streams.runtime.reset import global_group_of, group_of
from streams.runtime.metrics import RunCounts, RuntimeMetrics
from streams.runtime.outage import DEFAULT_LIMIT_S, FENCE_WINDOW_S, OutageGuard, RetryPolicy
from streams.runtime.runfile import RunFile
from streams.runtime.state import Manifest, StateStore, TaskHistory, ranges_between, state_topic
from streams.runtime.task import SharedDecodes, Task, apply_records, replay_manifests
from streams.serde import Serde
from streams.topics import declared_topics, ensure_topics

logger = logging.getLogger("streams.runtime")


class RunOptions(BaseModel):
    """How a processor instance runs. Frozen; unknown fields are an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    instance_id: str = Field("0", description="Stable id of this instance; part of its transactional id.")
    batch: int = Field(5000, gt=0, description="Most input records per transaction.")
    commit_interval_ms: int = Field(100, gt=0, description="Commit at least this often while records flow.")
    snapshot_every_commits: int = Field(200, gt=0, description="Snapshot each task at least every N of its commits.")
    snapshot_every_records: int = Field(200_000, gt=0, description="...and at least every N of its input records.")
    max_wait_ms: int = Field(500, ge=0, description="How long a late input may hold the merge back (live only).")
    poll_records: int = Field(5000, gt=0, description="Most records per poll.")
    until_idle: bool = Field(False, description="Return once every input is consumed and committed.")
    state_wait_s: float = Field(30.0, ge=0, description="How long recovery waits for state.<processor> to catch up with the group.")
    outage_limit_s: float = Field(DEFAULT_LIMIT_S, ge=0, description="How long to retry through a broker outage before stopping.")
    as_of: Literal["pinned", "merged"] = Field(
        "pinned", description="Live runs: apply as-of inputs (risk's market data) at each transaction's start, never "
        "waiting for them ('pinned'), or merge them by time like the rest ('merged'; until-idle and lockstep runs always do).",
    )

    def retry_policy(self) -> RetryPolicy:
        """The broker-outage retry policy of these options (:mod:`streams.runtime.outage`)."""
        return RetryPolicy(limit_s=self.outage_limit_s)


class Runner:
    """One instance of one processor on one log (see the module docstring)."""

    def __init__(
        self,
        log: Log,
        serde: Serde,
        processor_cls: type[Processor],
        config: Any = None,
        options: RunOptions | None = None,
        *,
        metrics: RuntimeMetrics | None = None,
        name: str | None = None,
    ) -> None:
        self.log = log
        self.serde = serde
        self.cls = processor_cls
        self.config = config
        self.options = options or RunOptions()
        self.name = name or processor_cls.name  # another name = another group, state and dlq topics
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,200}", self.name):
            raise ConfigError(
                f"processor name {self.name!r} is not usable",
                hint="a processor name is letters, digits, '_' and '-' (it names dlq.<name>, state.<name> and the group)",
            )
        proto = processor_cls(config, 0)
        ensure_topics(log, [dlq_topic(self.name), state_topic(self.name), *declared_topics(proto.outputs)])  # outputs too
        self.plan: InputPlan = check_topics(log, self.name, proto)
        self.outputs: tuple[str, ...] = tuple(proto.outputs)
        # the global records every task reads, decoded once for all of them (emptied at each commit)
        self._shared = SharedDecodes(self.plan.global_) if self.plan.global_ and self.plan.tasks > 1 else None
        self._proto: Processor | None = proto
        self.codec = RuntimeCodec(serde, self.name)
        self.store = StateStore(log, serde, self.name)
        self.metrics = metrics or RuntimeMetrics(self.name)
        self.counts = RunCounts()
        self.tasks: dict[int, Task] = {}
        self._globals: GlobalFeed | None = None  # the global inputs' one reader, shared by the tasks
        self._pending: set[int] = set()
        self._producer: TransactionalProducer | None = None
        self._consumer: GroupConsumer | None = None
        self.opened = False  # open() finished (see open_all)
        self._last_commit = time.monotonic()
        self._revoking = False  # set while closing: the final revoke must not commit again
        self._others_checked = 0.0  # when idle() last asked the group about partitions we do not own
        self._horizons: dict[str, int] = {}  # topic -> ms (exclusive), set by the lockstep schedule
        self._caps: dict[TopicPartition, int] = {}  # offsets (exclusive), set by the lockstep schedule on two cores
        self.idle_wait_s = 0.01  # how long a tick with nothing buffered waits for input (run_all: 0, it waits once a round)
        self.group = group_of(self.name)
        self._globals_published = 0.0  # when the global inputs' positions were last published (see _publish_global_positions)
        self._globals_last: dict[TopicPartition, int] = {}
        self.transactional_id = f"hftstream.{self.name}.{self.options.instance_id}"
        # a live run applies the as-of inputs at each transaction's start (Processor contract, "As-of inputs")
        self.pinned = frozenset(self.plan.as_of) if self.options.as_of == "pinned" and not self.options.until_idle else frozenset()
        self.runfile = RunFile(getattr(log, "url", repr(log)), self.name, self.options.instance_id)

    # -- lifecycle --------------------------------------------------------------------

    def run(self, stop: threading.Event | None = None) -> RunCounts:
        """Process until ``stop`` is set (or, with ``until_idle``, until every input is consumed); commit; return."""
        stop = stop or threading.Event()
        guard = OutageGuard([self], self.options.retry_policy(), stop)

        def round_done() -> bool:
            busy = self.tick()
            return self.options.until_idle and not busy and self.idle()

        try:
            guard.call(lambda: open_all([self]))  # a broker down at start is an outage too
            while not stop.is_set():
                if guard.call(round_done):
                    break
            guard.call(self.commit)
        finally:
            self.close()
        return self.counts

    def open(self) -> None:
        """Open the transactional producer (fencing a zombie of this instance) and join the group.

        What is already open stays open: after a failure half-way (a broker outage while starting), calling
        it again, or :meth:`reopen`, finishes the job.
        """
        if self._producer is None:
            self._producer = self.log.transactional_producer(self.transactional_id)
        if self.plan.keyed:
            if self._consumer is None:
                self._consumer = self.log.group_consumer(
                    self.group, self.plan.keyed, on_assign=self._on_assign, on_revoke=self._on_revoke
                )
        elif not self.tasks:
            self._pending.add(0)
        self.opened = True

    def tick(self) -> bool:
        """One round: recover newly assigned tasks, poll, process, commit when due. True when records were processed."""
        self._init_pending()
        try:
            busy = self._step(self.options)
        except TransactionAbortableError as exc:  # producing into the open transaction failed for good
            logger.warning("%s: transaction aborted (%s); re-processing from the last commit", self.name, exc)
            self.abort_and_rewind()
            return True
        if self._commit_due():
            self.commit()
            busy = True  # a commit makes records visible downstream: not idle this round
        else:
            self.metrics.publish_lag(self.tasks.values())  # throttled: a stalled processor's lag still shows
        return busy

    def commit(self) -> None:
        """Commit what was processed (on an abortable failure: abort and rebuild from the last commit)."""
        try:
            self._commit()
        except TransactionAbortableError as exc:
            logger.warning("%s: transaction aborted (%s); re-processing from the last commit", self.name, exc)
            self.abort_and_rewind()

    def close(self) -> None:
        """Abort anything uncommitted, leave the group, close the producer."""
        try:
            self._publish_global_positions(now=True)
        except Exception as exc:  # informational only: never in the way of closing
            logger.warning("%s: could not publish the global inputs' positions: %s", self.name, exc)
        for task in self.tasks.values():
            task.close()
        self.runfile.remove()
        if self._producer is not None and self._producer.in_transaction:
            try:
                self._producer.abort()
            except HftError as exc:  # broker down: the next init_transactions() of this id aborts it
                logger.warning("%s: could not abort the open transaction (%s); the next start aborts it", self.name, exc)
                self._discard_producer()
        if self._consumer is not None:
            consumer, self._consumer = self._consumer, None
            self._revoking = True
            consumer.close()
        if self._producer is not None:
            self._producer.close()
            self._producer = None
        self.opened = False

    def reopen(self) -> None:
        """After a broker outage: a new producer (its init settles the open transaction), every task from its last commit."""
        for p, task in list(self.tasks.items()):
            task.close()
            self._pending.add(p)
        self.tasks.clear()
        self._discard_producer()
        self.open()  # a new producer, and the group consumer if the outage came before it was made
        self._init_pending()

    def _discard_producer(self) -> None:
        """Drop the producer without aborting (a fenced or unreachable one cannot): the same id re-opened aborts it."""
        producer, self._producer = self._producer, None
        if producer is not None:
            discard = getattr(producer, "discard", None)
            try:
                discard() if discard is not None else producer.close()
            except HftError as exc:
                logger.warning("%s: closing the producer: %s", self.name, exc)

    # -- rebalance callbacks (called inside consumer.poll) ----------------------------

    def _on_assign(self, partitions: list[TopicPartition]) -> None:
        self._pending.update(p for _, p in partitions)

    def _on_revoke(self, partitions: list[TopicPartition]) -> None:
        lost = {p for _, p in partitions}
        if self._revoking:
            return
        if any(t.moved() for t in self.tasks.values()):
            self.commit()
        for p in lost:
            task = self.tasks.pop(p, None)
            if task is not None:
                task.close()
            self._pending.discard(p)
            self.metrics.forget_task(p)

    # -- tasks ------------------------------------------------------------------------

    def _new_processor(self, task: int) -> Processor:
        if task == 0 and self._proto is not None:
            proto, self._proto = self._proto, None
            return proto
        return self.cls(self.config, task)

    def _init_pending(self) -> None:
        for p in sorted(self._pending):
            self.tasks[p] = task = self.recover_task(p)
            self.metrics.task_states(p, task.processor.states())
            if self._horizons:
                self._apply_horizons(task)
            if self._caps:
                task.merger.set_cap({tp: self._caps[tp] for tp in task.merger.queues if tp in self._caps})
        self._pending.clear()

    # -- lockstep (streams.runtime.lockstep) ------------------------------------------

    def set_horizons(self, horizons: dict[str, int]) -> None:
        """Hand out only records before ``horizons[topic]`` (ms, exclusive); unlisted topics have none."""
        self._horizons = dict(horizons)
        for task in self.tasks.values():
            self._apply_horizons(task)

    def set_caps(self, caps: dict[TopicPartition, int]) -> None:
        """Hand out only records below ``caps[tp]`` (offset, exclusive), and wait for the reader to get there;
        unlisted partitions have no cap (streams.runtime.lockstep, two cores)."""
        self._caps = dict(caps)
        for task in self.tasks.values():
            task.merger.set_cap({tp: caps[tp] for tp in task.merger.queues if tp in caps})

    def _apply_horizons(self, task: Task) -> None:
        h = self._horizons
        task.merger.set_horizon({tp: h[tp[0]] for tp in task.merger.queues if tp[0] in h})

    def step_to_horizon(self, timeout_s: float = 60.0) -> bool:
        """Process every input record before the horizons in one transaction, in a fixed order; commit.

        Polls until every task is assigned and settled (nothing before its horizons can still
        arrive), then hands each task's records to its processor, tasks in id order. So what a
        transaction holds, and the order its outputs are produced in, depend only on the log's
        contents and the horizons, never on polling or timing. True when records were processed.
        """
        if self.pinned:
            raise ConfigError(
                f"{self.name}: the lockstep schedule merges every input; this runner pins its as-of inputs ({', '.join(sorted(self.pinned))})",
                hint="build lockstep runners with RunOptions(as_of='merged')",
            )
        deadline = time.monotonic() + timeout_s
        opts = self.options
        while True:
            self._init_pending()
            if self._consumer is not None:
                self._buffer(self._consumer.poll(opts.poll_records, timeout=0.0))
            self._refresh_all()
            if len(self.tasks) == self.plan.tasks and not self._pending and self._settled():
                break
            if time.monotonic() > deadline:
                what = f"{self.name}: inputs did not settle within {timeout_s:.0f} s ({len(self.tasks)} of {self.plan.tasks} tasks assigned)"
                seen = getattr(self.log, "seen_unavailable_within", None)
                if seen is not None and seen(FENCE_WINDOW_S + timeout_s):  # a restarted coordinator still rebuilding the group
                    raise RetryableError(f"{what}, just after the broker was unreachable")
                raise ConfigError(
                    what,
                    hint="another instance of this processor may hold its group or an upstream transaction is open: "
                    "stop other `hftstream run` processes on this log and retry",
                )
            time.sleep(0.0005)
        processed = False
        try:
            for p in sorted(self.tasks):
                task = self.tasks[p]
                while records := task.merger.pop(1 << 62):
                    self._process(task, records)
                    processed = True
            if processed:
                self._commit()
        except TransactionAbortableError as exc:
            logger.warning("%s: transaction aborted (%s); re-processing from the last commit", self.name, exc)
            self.abort_and_rewind()
            return self.step_to_horizon(timeout_s)
        return processed

    def _settled(self) -> bool:
        """Every task settled, judged on ends asked of the log now (not only a reader's cached ones).

        A Kafka reader's end is the high watermark of its last fetch response: right after an
        upstream stage committed a slice it can still say the partition ends where this
        reader is, and settling on it would leave that slice's records for the next one (a
        different digest on every run). So once the cached ends say "settled", the high
        watermarks are asked of the broker (one request) and kept as the ends' floor.
        """
        tasks = self.tasks.values()
        if not all(t.merger.settled() for t in tasks):
            return False
        if not self.log.reader_ends_cached:
            return True
        tps = [tp for t in tasks for tp in t.merger.queues]
        fresh = self.log.end_offsets(tps, read_committed=False)
        for task in tasks:
            for tp in task.merger.queues:
                if tp in fresh and fresh[tp] > task.fresh_ends.get(tp, -1):
                    task.fresh_ends[tp] = fresh[tp]
        self._refresh_all()
        return all(t.merger.settled() for t in tasks)

    def recover_task(self, p: int) -> Task:
        """Task ``p`` at its last commit: snapshot restored, later manifests replayed, inputs positioned."""
        proc = self._new_processor(p)
        partitions = self.plan.task_partitions(p)
        keyed = [tp for tp, _ in partitions[: len(self.plan.keyed)]]
        hist = self._history_matching_group(p, keyed)
        check_inputs_present(self.log, self.name, p, hist)
        if hist.snapshot is not None:
            proc.restore(hist.snapshot)
        base = hist.snapshot_manifest.ends() if hist.snapshot_manifest else {}
        positions = {tp: base[tp] if tp in base else self.log.watermarks(*tp)[0] for tp, _ in partitions}  # the low mark only where asked
        if hist.after:  # replayed inputs were counted by the run that committed them: count them apart
            replayed = RunCounts()
            replay_manifests(self.log, proc, self.codec, partitions, hist.after, replayed)
            self.counts.replayed += replayed.records_in
            positions.update(hist.after[-1].ends())
        last = hist.last
        first = [tp for tp, _ in partitions if tp[0] in self.pinned]
        task = Task(p, proc, partitions, positions, last.seq if last else 0, keyed, first)
        if self._consumer is not None:
            for tp in keyed:
                self._consumer.seek(tp[0], tp[1], positions[tp])
        if task.global_tps:  # one reader of the global inputs for every task (DECISIONS #55)
            if self._globals is None:
                self._globals = GlobalFeed(self.log, task.global_tps)
            task.global_feed = self._globals
            self._globals.attach(p, task.mergers(), positions, task.fresh_ends)
        task.commits_since_snapshot = len(hist.after)
        return task

    def _history_matching_group(self, p: int, keyed: list[TopicPartition]) -> TaskHistory:
        """The task's commit history, once it agrees with the group's committed offsets.

        Both are written in one transaction, but a ``read_committed`` reader of
        ``state.<processor>`` stops at its last stable offset, which another instance's open
        transaction (or the markers of ours, written just after a commit or abort returns) can
        hold back for a moment. So a history that lags the group is read again, up to the
        transaction timeout; one that disagrees otherwise is an error, never a guess.
        """
        consumer = self._consumer
        committed = {tp: consumer.committed(*tp) for tp in keyed} if consumer is not None else {}
        deadline = time.monotonic() + self.options.state_wait_s
        while True:
            hist = self.store.history(p)
            try:
                check_group_agrees(self.name, p, hist, committed, lambda: self.log.group_offsets_damage(self.group))
                return hist
            except HistoryBehindGroup:
                if time.monotonic() >= deadline:
                    raise
            time.sleep(0.1)

    # -- the batch --------------------------------------------------------------------

    def _step(self, opts: RunOptions) -> bool:
        """Poll, merge and process once. True when records were processed."""
        ready = any(t.merger.buffered() for t in self.tasks.values())
        if self._consumer is not None:
            self._buffer(self._consumer.poll(opts.poll_records, timeout=0.0 if ready else self.idle_wait_s))
        elif not ready and self.idle_wait_s:
            time.sleep(min(self.idle_wait_s, 0.001))
        processed = False
        now = time.monotonic()
        room = opts.batch - sum(t.pending.records_in for t in self.tasks.values())
        self._refresh_all()
        for task in self.tasks.values():
            if task.first is not None and not task.took_merged and (first := task.first.drain()):
                self._process(task, first)  # the as-of inputs read so far, before any merged input of this transaction
                processed = True
            force = (
                not opts.until_idle and task.blocked_since is not None
                and (now - task.blocked_since) * 1000 >= opts.max_wait_ms and self._ask_broker_ends(task, now)
            )
            while room > 0:
                records = task.merger.pop(room, force=force)
                if not records:
                    break
                self._process(task, records)
                task.took_merged = True  # as-of records read from now on wait for the next transaction
                room -= len(records)
                processed = True
            if force:
                task.merger.set_broker_end(dict.fromkeys(task.merger.queues))
            if task.merger.buffered() and task.merger.blocked():
                task.blocked_since = task.blocked_since or now
            else:
                task.blocked_since = None
        return processed

    def _ask_broker_ends(self, task: Task, now: float) -> bool:
        """Ask the log where the partitions holding ``task`` back end (KIP-695); True when some is empty there.

        Only a partition the log says holds nothing past the reader may be forced past; one
        with records on the log is waited for. Asked at most every 20 ms per task.
        """
        if now - task.broker_asked < 0.02:
            return False
        task.broker_asked = now
        waiting = task.merger.holding_back()
        if not waiting:
            return False
        ends = self.log.end_offsets(waiting, read_committed=True)
        task.merger.set_broker_end({tp: ends.get(tp) for tp in waiting})
        return any(task.merger.queues[tp].known_empty() for tp in waiting)

    def _buffer(self, records: list) -> None:
        """Hand records polled from the group consumer to their tasks' mergers."""
        tasks = self.tasks
        for tp, run in runs_of(records).items():
            task = tasks.get(tp[1])
            if task is not None:
                task.merger.add_run(tp, run)

    def _refresh_all(self) -> None:
        """Buffer what the global inputs have now (one poll for every task), and note where every input partition ends."""
        if self._globals is not None:
            self._globals.refresh(self.options.poll_records)
        if self._consumer is not None:
            for task in self.tasks.values():
                self._update_ends(task, self._consumer, task.keyed)

    def _update_ends(self, task: Task, reader: Reader, tps: Sequence[TopicPartition]) -> None:
        merger = task.merger
        for tp in tps:
            end = reader.end_offset(*tp)
            if end is None:
                end = self.log.watermarks(*tp)[1]
            fresh = task.fresh_ends.get(tp)
            merger.set_end(tp, end if fresh is None or fresh < end else fresh, reader.position(*tp))

    def _process(self, task: Task, records: list) -> None:
        producer = self._producer
        assert producer is not None
        if not producer.in_transaction:
            producer.begin()
        out: list[Encoded] = []
        if records[0].timestamp_ns < task.oldest_ts_ns:  # records come in merge (time) order
            task.oldest_ts_ns = records[0].timestamp_ns
        t0 = time.perf_counter()
        apply_records(task.processor, self.codec, records, task.pending, out.append, self._shared)
        producer.produce_built(out)  # built by the codec and lineage: no per-record re-checks
        fault("after-produce")
        self.metrics.batch_seconds.observe(time.perf_counter() - t0)

    # -- commits ----------------------------------------------------------------------

    def _commit_due(self) -> bool:
        pending = sum(t.pending.records_in for t in self.tasks.values())
        if pending >= self.options.batch:
            return True
        return pending > 0 and (time.monotonic() - self._last_commit) * 1000 >= self.options.commit_interval_ms

    def abort_and_rewind(self) -> None:
        """Abort the open transaction and rebuild every task from its last commit."""
        assert self._producer is not None
        self._producer.abort()
        self.counts.aborts += 1
        self.metrics.aborts.inc()
        if self._shared is not None:
            self._shared.clear()
        for p, task in list(self.tasks.items()):
            task.close()
            self._pending.add(p)
        self.tasks.clear()
        self._init_pending()

    def _commit(self) -> None:
        if self._shared is not None:
            self._shared.clear()
        producer = self._producer
        moved = [t for t in self.tasks.values() if t.moved()]
        if producer is None or not moved:
            self._last_commit = time.monotonic()
            return
        if not producer.in_transaction:
            producer.begin()
        opts = self.options
        offsets: dict[TopicPartition, int] = {}
        done: list[tuple[Task, dict[TopicPartition, int], bool]] = []
        for task in moved:
            task.processor.check_invariants()
            positions = task.positions()
            seq = task.seq + 1
            due = (
                seq == 1
                or task.commits_since_snapshot + 1 >= opts.snapshot_every_commits
                or task.records_since_snapshot + task.pending.records_in >= opts.snapshot_every_records
            )
            c = task.pending
            manifest = Manifest(
                task.id, seq, ranges_between(task.committed, positions), c.records_in, c.records_out, c.dead_letters,
                0, 0, opts.instance_id, applied_first=task.applied_first,
            )
            producer.produce_built(self.store.commit_records(manifest, task.processor.snapshot() if due else None))
            for tp in task.keyed:
                offsets[tp] = positions[tp]
            done.append((task, positions, due))
        if armed("after-flush"):  # tests: make the open transaction's records reach the log before the fault
            producer.flush()
            fault("after-flush")
        fault("before-commit")
        t0 = time.perf_counter()
        producer.commit(offsets or None, self._consumer if offsets else None)
        fault("after-commit")
        self.metrics.commit_seconds.observe(time.perf_counter() - t0)
        self.metrics.commits.inc()
        self.counts.commits += 1
        for task, positions, snapshotted in done:
            c = task.pending
            self._count(c)
            task.committed = positions
            task.seq += 1
            task.commits_since_snapshot = 0 if snapshotted else task.commits_since_snapshot + 1
            task.records_since_snapshot = 0 if snapshotted else task.records_since_snapshot + c.records_in
            task.pending = RunCounts()
            task.took_merged = False  # the next transaction starts with the as-of inputs read by then
        self.metrics.committed([d[0] for d in done], self.tasks.values())
        self._last_commit = time.monotonic()
        self._publish_global_positions()

    def _publish_global_positions(self, *, now: bool = False) -> None:
        """Publish the global inputs' positions (slowest task) under ``hftstream.<processor>.global``, at most once a second.

        Kafka's group tools see only the keyed inputs of ``hftstream.<processor>``; this member-less
        companion group shows how far behind the global inputs are. Outside the transaction
        and never read back (the positions that count are the commit manifests').
        """
        if not self.plan.global_ or not self.tasks or (not now and time.monotonic() < self._globals_published + 1.0):
            return
        self._globals_published = time.monotonic()
        slowest: dict[TopicPartition, int] = {}
        for task in self.tasks.values():
            for tp in task.global_tps:
                at = task.committed[tp]
                slowest[tp] = min(at, slowest.get(tp, at))
        if slowest != self._globals_last:
            self._globals_last = slowest
            self.log.publish_group_offsets(global_group_of(self.name), slowest)

    def _count(self, c: RunCounts) -> None:
        total, m = self.counts, self.metrics
        total.records_in += c.records_in
        total.with_output += c.with_output
        total.without_output += c.without_output
        total.dead_letters += c.dead_letters
        total.records_out += c.records_out
        for reason, n in c.dlq_by_reason.items():
            total.dlq_by_reason[reason] = total.dlq_by_reason.get(reason, 0) + n
            m.dead_letter(reason, n)
        m.records_in.inc(c.records_in)
        m.records_out.inc(c.records_out)

    def idle(self) -> bool:
        """Every input consumed and committed -- by this instance's tasks *and* by the group's other members.

        A partition this instance does not own (another instance's, or a killed one's that the
        group has not yet taken away) counts only once the group's committed offset reached its
        end: ``--until-idle`` means the whole input is done, not this instance's share of it.
        """
        if self._pending or any(t.moved() for t in self.tasks.values()):
            return False
        if not all(t.idle() for t in self.tasks.values()):
            return False
        return self._others_done()

    def _others_done(self) -> bool:
        consumer = self._consumer
        if consumer is None:
            return True
        now = time.monotonic()
        if now < self._others_checked + 0.5:
            return False
        self._others_checked = now
        for topic in self.plan.keyed:
            for p in range(self.plan.partitions[topic]):
                if p in self.tasks:
                    continue
                committed = consumer.committed(topic, p)
                low, high = self.log.watermarks(topic, p)
                if (committed if committed is not None else low) < high:
                    return False
        return True


def open_all(runners: Sequence[Runner]) -> None:
    """Open every runner not yet open (run it under an :class:`OutageGuard`: a broker outage while starting is ridden out)."""
    for r in runners:
        if not r.opened:
            r.open()


def run_processor(
    log: Log, serde: Serde, processor_cls: type[Processor], config: Any = None, options: RunOptions | None = None,
    stop: threading.Event | None = None, *, name: str | None = None,
) -> RunCounts:
    """Build a :class:`Runner` and run it."""
    return Runner(log, serde, processor_cls, config, options, name=name).run(stop)


def regenerate(
    log: Log, serde: Serde, processor_cls: type[Processor], config: Any, task: int, manifests: Sequence[Manifest],
    snapshot: bytes | None, *, name: str | None = None,
) -> dict[int, list[Encoded]]:
    """Re-run ``task`` from ``snapshot`` over ``manifests``, into memory: ``{seq: records}`` (verify)."""
    proc = processor_cls(config, task)
    if snapshot is not None:
        proc.restore(snapshot)
    plan = plan_inputs(log, proc)
    out: dict[int, list[Encoded]] = {}
    counts = RunCounts()
    replay_manifests(
        log, proc, RuntimeCodec(serde, name or processor_cls.name), plan.task_partitions(task), manifests, counts,
        emit=lambda m: out.setdefault(m.seq, []).append,
    )
    return out


def apply_batch(processor: Processor, codec: RuntimeCodec, records: list, counts: RunCounts) -> list[Encoded]:
    """Process ``records`` in memory and return the encoded outputs (tests, benchmarks, backtests)."""
    out: list[Encoded] = []
    apply_records(processor, codec, records, counts, out.append)
    return out
