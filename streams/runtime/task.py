"""One task of a processor: its processor object, its input partitions, and what it has done since the last commit.

Also the two ways records reach a processor outside the live loop, shared by recovery
and ``hftstream verify``: :func:`apply_records` (decode, process, encode, in input order)
and :func:`replay_manifests` (read exactly a manifest's ranges, merge, apply).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence

from streams.errors import ConfigError, PoisonError
from streams.lineage import lineage_headers
from streams.log.base import Log, Record, TopicPartition
from streams.processors.base import Message, Processor, Result
from streams.runtime.codec import TOMBSTONE, Encoded, RuntimeCodec
from streams.runtime.globals import GlobalFeed
from streams.runtime.merge import Merger
from streams.runtime.metrics import NO_INPUT_TS, RunCounts
from streams.runtime.preflight import gone_cause
from streams.runtime.state import Manifest

Emit = Callable[[Encoded], None]


class Task:
    """Task ``task_id`` of a processor: partition ``task_id`` of the keyed inputs plus every global partition."""

    def __init__(
        self,
        task_id: int,
        processor: Processor,
        partitions: Sequence[tuple[TopicPartition, int]],
        positions: dict[TopicPartition, int],
        seq: int,
        keyed: Iterable[TopicPartition],
        applied_first: Iterable[TopicPartition] = (),
    ) -> None:
        self.id = task_id
        self.processor = processor
        first = set(applied_first)
        self.merger = Merger([(tp, rank, positions[tp]) for tp, rank in partitions if tp not in first])
        # a live run's as-of inputs: applied at the start of each transaction, before what the merger hands out
        self.first = Merger([(tp, rank, positions[tp]) for tp, rank in partitions if tp in first]) if first else None
        self.applied_first = tuple(sorted({t for t, _ in first}))  # their topics, as the manifest names them
        self.took_merged = False  # merged inputs processed in the open transaction (as-of records now wait for the next)
        self.keyed = tuple(keyed)
        self.global_tps = tuple(tp for tp, _ in partitions if tp not in set(self.keyed))
        self.committed = dict(positions)  # positions at the last commit
        self.seq = seq  # last committed seq
        self.global_feed: GlobalFeed | None = None  # the runner's shared reader of the global inputs
        self.pending = RunCounts()  # since the last commit
        self.oldest_ts_ns = NO_INPUT_TS  # log timestamp of the oldest input since the last commit (metrics)
        self.commits_since_snapshot = 0
        self.records_since_snapshot = 0
        self.blocked_since: float | None = None
        self.broker_asked = 0.0  # when the log was last asked for the ends of the partitions holding the merge back
        self.fresh_ends: dict[TopicPartition, int] = {}  # ends asked of the log (a floor for readers' cached ones)

    def mergers(self) -> tuple[Merger, ...]:
        """Every merger of the task: the merge of its inputs, and the as-of inputs' one in a live run."""
        return (self.merger,) if self.first is None else (self.merger, self.first)

    def positions(self) -> dict[TopicPartition, int]:
        """Where a commit now resumes, for every input partition."""
        out = self.merger.positions()
        if self.first is not None:
            out.update(self.first.positions())
        return out

    def idle(self) -> bool:
        """Every input partition caught up, nothing buffered."""
        return self.merger.idle() and (self.first is None or self.first.idle())

    def moved(self) -> bool:
        """True when records were handed to the processor since the last commit."""
        return self.pending.records_in > 0

    def close(self) -> None:
        """Stop being fed by the shared reader of the global inputs."""
        if self.global_feed is not None:
            self.global_feed.detach(self.id)
            self.global_feed = None


class SharedDecodes:
    """The decoded form of the global records a runner's tasks have in common, decoded by the first task that
    processes them and handed as the same :class:`~streams.processors.base.Message` to the others (issue 13 #1:
    one decoded view of each global input per process). A processor must not change a message it was given
    (the processor contract). Keyed by the record object, which the shared reader hands to every task
    (:class:`~streams.runtime.globals.GlobalFeed`); emptied at each commit."""

    __slots__ = ("topics", "_by_id")

    def __init__(self, topics: Iterable[str]) -> None:
        self.topics = frozenset(topics)
        self._by_id: dict[int, tuple[Record, Message | PoisonError]] = {}  # the record is kept: its id stays its own

    def clear(self) -> None:
        self._by_id.clear()

    def decode(self, codec: RuntimeCodec, records: Sequence[Record]) -> list[Message | PoisonError]:
        """Each record's message (or its decoding error), from the cache where another task decoded it."""
        by_id, topics = self._by_id, self.topics
        out: list[Message | PoisonError | None] = [None] * len(records)
        misses: list[int] = []
        for i, rec in enumerate(records):
            hit = by_id.get(id(rec))
            if hit is not None and hit[0] is rec:
                out[i] = hit[1]
            else:
                misses.append(i)
        if misses:
            todo = [records[i] for i in misses]
            for i, got in zip(misses, _decode(codec, todo)):
                out[i] = got
                rec = records[i]
                if rec.topic in topics:
                    by_id[id(rec)] = (rec, got)
        return out  # type: ignore[return-value]


def _decode(codec: RuntimeCodec, records: list[Record]) -> list[Message | PoisonError]:
    """Each record's message, or the :class:`PoisonError` that says why it has none."""
    pre = codec.decode_batch(records)  # the native core's decode of the batch in one call, or None
    out: list[Message | PoisonError] = []
    for i, rec in enumerate(records):
        msg = pre[i] if pre is not None else None
        if msg is None:
            try:
                msg = codec.decode(rec)
            except PoisonError as exc:
                out.append(exc)
                continue
        out.append(msg)
    return out


def apply_records(
    processor: Processor, codec: RuntimeCodec, records: Sequence[Record], counts: RunCounts, emit: Emit,
    shared: SharedDecodes | None = None,
) -> None:
    """Decode ``records``, run them through ``processor`` in this order, and ``emit`` every resulting record.

    Emission follows input order (an input's outputs, or its dead letter, before the next
    input's), so the bytes written do not depend on where batches were cut. ``shared``: where the
    runner's tasks share the decoded global records.
    """
    msgs = []
    failures: dict[int, PoisonError] = {}
    decoded = shared.decode(codec, records) if shared is not None else _decode(codec, records if records.__class__ is list else list(records))  # type: ignore[arg-type]
    for i, msg in enumerate(decoded):
        if isinstance(msg, PoisonError):
            failures[i] = msg
            continue
        msgs.append(msg)
    batch = processor.process_batch(msgs) if msgs else []
    counts.records_in += len(records)
    if codec.native_encode and batch.__class__ is list and len(batch) == len(msgs) and records.__class__ is list:
        if failures:  # one result per record, the decoding errors in their places
            it = iter(batch)
            batch = [failures[i] if i in failures else next(it) for i in range(len(records))]
        _emit_native(codec, records, batch, counts, emit)  # type: ignore[arg-type]
        return
    results = iter(batch)
    for i, rec in enumerate(records):
        res = failures.get(i)
        if res is None:
            res = next(results)
        _emit_result(codec, rec, res, counts, emit)


def _emit_result(codec: RuntimeCodec, rec: Record, res: Result, counts: RunCounts, emit: Emit) -> None:
    """``emit`` what one input gave: its outputs with lineage, its dead letter, or nothing (a tombstone, no output)."""
    if isinstance(res, PoisonError):
        code = getattr(res, "reason_code", "POISON")
        if code == TOMBSTONE:
            counts.without_output += 1
            return
        emit(codec.dead_letter(rec, res))
        counts.dead_letters += 1
        counts.dlq_by_reason[code] = counts.dlq_by_reason.get(code, 0) + 1
    elif res:
        lineage = lineage_headers(rec)
        for out in res:
            emit(codec.encode(out, rec, lineage))
        counts.with_output += 1
        counts.records_out += len(res)
    else:
        counts.without_output += 1


def _emit_native(codec: RuntimeCodec, records: list[Record], results: list[Result], counts: RunCounts, emit: Emit) -> None:
    """The same as :func:`_emit_result` over the batch, in input order: runs of records the native core encodes in
    one call, and each record it does not take whole handled by :func:`_emit_result` (dead letters, errors)."""
    sink = getattr(emit, "__self__", None)
    direct = sink.__class__ is list and emit == sink.append  # emit is a list's append: the native core appends to it
    out: list[Encoded] = sink if direct else []  # type: ignore[assignment]
    i, n = 0, len(records)
    while i < n:
        stop, with_output, without_output, records_out = codec.encode_outputs(records, results, i, out)
        counts.with_output += with_output
        counts.without_output += without_output
        counts.records_out += records_out
        if not direct:
            for enc in out:
                emit(enc)
            out.clear()
        if stop >= n:
            return
        _emit_result(codec, records[stop], results[stop], counts, emit)
        i = stop + 1


class ManifestFeeder:
    """Reads consecutive manifests' input ranges with one reader, as merged batches."""

    def __init__(self, log: Log, partitions: Sequence[tuple[TopicPartition, int]], starts: dict[TopicPartition, int]) -> None:
        self._log = log
        self._ranks = dict(partitions)
        self._reader = log.reader([(t, p, starts[(t, p)]) for (t, p), _ in partitions])
        self._carry: dict[TopicPartition, deque[Record]] = {tp: deque() for tp, _ in partitions}
        self._seen: dict[TopicPartition, int] = {tp: starts[tp] for tp, _ in partitions}

    def batch(self, manifest: Manifest) -> list[Record]:
        """Every record of ``manifest``'s ranges, in the merge order the live run used."""
        ranges = [(tp, start, end) for tp, start, end in manifest.ranges if tp in self._ranks]
        for tp, start, _ in ranges:
            if self._seen[tp] < start and not self._carry[tp]:
                self._reader.seek(tp[0], tp[1], start)
                self._seen[tp] = start
        need = {tp: end for tp, start, end in ranges if end > start}
        merger = Merger([(tp, self._ranks[tp], start) for tp, start, _ in ranges])
        idle = 0
        while True:
            done = True
            for tp, end in need.items():
                carry = self._carry[tp]
                while carry and carry[0].offset < end:
                    merger.add((carry.popleft(),))
                if merger.queues[tp].position < end and self._reader.position(tp[0], tp[1]) < end:
                    done = False
            if done:
                break
            got = self._reader.poll(5000, timeout=0.2)
            if not got:
                idle += 1
                if idle > 50:
                    missing = {f"{t}/{p}": end for (t, p), end in need.items() if merger.queues[(t, p)].position < end}
                    causes = [gone_cause(self._log, tp, start, end, manifest.committed_ts_ns) for tp, start, end in ranges]
                    raise ConfigError(
                        f"cannot read the input ranges of commit {manifest.seq} of task {manifest.task}: "
                        f"records before {missing} are gone: {next((c for c in causes if c), 'cause unknown')}",
                        hint="recovery and verify need every input since the last snapshot; see RUNBOOK.md "
                        "'Processor state lost or damaged'",
                    )
                continue
            idle = 0
            for rec in got:
                tp = (rec.topic, rec.partition)
                self._seen[tp] = rec.offset + 1
                if rec.offset < need.get(tp, -1):
                    merger.add((rec,))
                else:
                    self._carry[tp].append(rec)
        for tp, start, end in ranges:
            merger.set_end(tp, end, end)
        if not manifest.applied_first:
            return merger.pop(1 << 62)
        # a live run applied its as-of inputs' records at the transaction's start, merged among themselves (Merger.drain)
        first = set(manifest.applied_first)
        ahead = Merger([(tp, self._ranks[tp], start) for tp, start, _ in ranges if tp[0] in first])
        ahead.add(r for tp, _, _ in ranges if tp[0] in first for r in _take_all(merger.queues[tp].records))
        return ahead.drain() + merger.pop(1 << 62)

    def close(self) -> None:
        """Release the reader."""
        self._reader.close()


def replay_manifests(
    log: Log,
    processor: Processor,
    codec: RuntimeCodec,
    partitions: Sequence[tuple[TopicPartition, int]],
    manifests: Sequence[Manifest],
    counts: RunCounts,
    emit: Callable[[Manifest], Emit] | None = None,
) -> None:
    """Run ``processor`` over exactly the inputs of ``manifests`` (consecutive, oldest first).

    ``emit(manifest)`` returns where that commit's regenerated records go (``None``: discarded).
    """
    if not manifests:
        return
    feeder = ManifestFeeder(log, partitions, manifests[0].starts() | _missing(partitions, manifests[0]))
    try:
        for m in manifests:
            records = feeder.batch(m)
            sink = emit(m) if emit is not None else _discard
            apply_records(processor, codec, records, counts, sink)
    finally:
        feeder.close()


def _take_all(records: deque[Record]) -> list[Record]:
    out = list(records)
    records.clear()
    return out


def _missing(partitions: Sequence[tuple[TopicPartition, int]], m: Manifest) -> dict[TopicPartition, int]:
    starts = m.starts()
    return {tp: 0 for tp, _ in partitions if tp not in starts}


def _discard(_: Encoded) -> None:
    pass
