"""``hftstream verify``: prove that what is on the log is what the processor's code does.

For every task, from the newest snapshot at or before the first commit to check, the
processor is re-run in memory over exactly the input ranges its commit manifests recorded,
in the recorded order (:func:`streams.runtime.runner.regenerate`). Each regenerated record
is compared with what is on the log, matched by lineage (the input's topic, partition and
offset): topic, partition, key, value bytes, headers and timestamp (at millisecond
precision, which is what Kafka keeps). Nothing is excluded by accident: processors take
time only from their inputs, and dead letters carry the input's timestamp, so there is no
wall-clock field to skip.

A record the processor did not write is a divergence too ("foreign"): one that sits in the
verified range of an output partition -- between the first and the last record the checked
commits wrote there (from the partition's start when every commit is checked) -- and whose
lineage does not lead to one of the processor's input partitions (a non-transactional
producer writing into the output, say). Outputs others write by design
(``Processor.shared_outputs``, e.g. operators' commands) accept records without lineage.
The result is "identical" or the first divergence.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from streams.errors import ConfigError
from streams.lineage import source_of
from streams.log.base import Log, Record
from streams.log.partitioner import partition_for
from streams.processors.base import Processor
from streams.runtime.codec import Encoded, dlq_topic
from streams.runtime.runner import plan_inputs, regenerate
from streams.runtime.state import Manifest, StateStore, read_range
from streams.serde import Serde

NS_PER_MS = 1_000_000
Source = tuple[str, int, int]
Row = tuple[str, int, bytes | None, bytes | None, tuple[tuple[str, bytes], ...], int]  # topic, partition, key, value, headers, ts_ms


@dataclass
class Divergence:
    """The first place where the log and the code disagree."""

    task: int
    seq: int
    source: Source  # the input that caused the records; for "foreign": the foreign record's own position
    kind: str  # "different" | "missing" | "unexpected" | "foreign"
    expected: list[Row]
    actual: list[Row]


@dataclass
class VerifyResult:
    """What ``verify`` checked, and the first divergence (``None``: identical)."""

    processor: str
    tasks: int = 0
    commits: int = 0
    inputs: int = 0
    outputs: int = 0
    divergence: Divergence | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        """True when every regenerated record equals the one on the log."""
        return self.divergence is None


def _selected(m: Manifest, from_offset: int | None, since_ns: int | None) -> bool:
    if since_ns is not None and m.committed_ts_ns < since_ns:
        return False
    if from_offset is not None and not any(end > from_offset for _, _, end in m.ranges):
        return False
    return True


def _row(topic: str, partitions: dict[str, int], key: bytes | None, value: bytes | None, headers: Any, ts: int, partition: int | None) -> Row:
    if partition is None:
        partition = partition_for(key, partitions[topic]) if key is not None else -1
    return (topic, partition, key, value, tuple(headers), ts // NS_PER_MS)


def verify(
    log: Log,
    serde: Serde,
    cls: type[Processor],
    config: Any,
    *,
    from_offset: int | None = None,
    since_ns: int | None = None,
    name: str | None = None,
) -> VerifyResult:
    """Re-run ``cls`` over its recorded inputs and compare with the log (see the module docstring)."""
    name = name or cls.name
    proto = cls(config, 0)
    plan = plan_inputs(log, proto)  # fails early, with a hint, when an input is missing
    store = StateStore(log, serde, name)
    result = VerifyResult(name)
    by_task: dict[int, list[Manifest]] = {}
    for m in store.manifests():
        by_task.setdefault(m.task, []).append(m)
    out_topics = list(dict.fromkeys([*proto.outputs, dlq_topic(name)]))
    partitions = {t: log.partitions(t) for t in out_topics}
    expected: dict[Source, list[Row]] = {}
    order: list[tuple[int, int, Source]] = []  # (task, seq, source) in emission order
    ranges: list[tuple[str, int, int, int, int, int]] = []  # topic, partition, start, end, task, seq
    for task in sorted(by_task):
        manifests = by_task[task]
        targets = [m for m in manifests if _selected(m, from_offset, since_ns)]
        if not targets:
            continue
        first = targets[0].seq
        snapshot, start_seq = None, 0  # commit 1 starts from the processor's empty state
        if first > 1:
            hist = store.history(task, before_seq=first)
            if hist.snapshot_manifest is None:
                raise ConfigError(
                    f"verify {name}: task {task} has no snapshot before commit {first}",
                    hint="verify from the start (no --from-offset / --since), or keep state.<processor> longer",
                )
            snapshot, start_seq = hist.snapshot, hist.snapshot_manifest.seq
        replay = [m for m in manifests if m.seq > start_seq]
        if replay and replay[0].seq != start_seq + 1:
            raise ConfigError(f"verify {name}: the commit log of task {task} has a gap after commit {start_seq}")
        regenerated = regenerate(log, serde, cls, config, task, replay, snapshot, name=name)
        result.tasks += 1
        for m in replay:
            if m.seq < first:
                continue
            result.commits += 1
            result.inputs += m.records_in
            ranges += [(t, p, s, e, task, m.seq) for (t, p), s, e in m.ranges if e > s]
            for topic, key, value, ts, headers in regenerated.get(m.seq, []):
                src = source_of(headers)
                assert src is not None
                if src not in expected:
                    expected[src] = []
                    order.append((task, m.seq, src))
                expected[src].append(_row(topic, partitions, key, value, headers, ts, None))
                result.outputs += 1
    if not ranges:
        result.notes.append("no committed batches in the requested range")
        return result
    inputs = {tp for task in by_task for tp, _ in plan.task_partitions(task)}
    everything = from_offset is None and since_ns is None
    actual, foreign = _actual(log, out_topics, partitions, ranges, inputs, set(getattr(proto, "shared_outputs", ())), everything)
    for task, seq, src in order:
        exp = sorted(expected[src], key=_sort_key)
        got = sorted(actual.pop(src, []), key=_sort_key)
        if exp != got:
            kind = "missing" if not got else "different"
            result.divergence = Divergence(task, seq, src, kind, exp, got)
            return result
    if foreign:
        rec = foreign[0]
        result.divergence = Divergence(-1, -1, (rec.topic, rec.partition, rec.offset), "foreign", [], [_record_row(rec)])
        return result
    if actual:
        src = min(actual)
        owner = next(((task, seq) for t, p, s, e, task, seq in ranges if t == src[0] and p == src[1] and s <= src[2] < e), (-1, -1))
        result.divergence = Divergence(owner[0], owner[1], src, "unexpected", [], sorted(actual[src], key=_sort_key))
    return result


def _sort_key(row: Row) -> tuple[Any, ...]:
    return (row[0], row[1], row[2] or b"", row[3] or b"")


def _actual(
    log: Log, topics: Iterable[str], partitions: dict[str, int], ranges: list[tuple[str, int, int, int, int, int]],
    inputs: set[tuple[str, int]], shared: set[str], everything: bool,
) -> tuple[dict[Source, list[Row]], list[Record]]:
    """Every committed output record whose lineage points into ``ranges``, by source; and the foreign
    records in the verified range of each output partition (see the module docstring), in log order."""
    index: dict[tuple[str, int], list[tuple[int, int]]] = {}
    for t, p, s, e, _, _ in ranges:
        index.setdefault((t, p), []).append((s, e))
    out: dict[Source, list[Row]] = {}
    foreign: list[Record] = []
    for topic in topics:
        for p in range(partitions[topic]):
            low, high = log.watermarks(topic, p)
            strangers: list[Record] = []  # records not the processor's, until its last one here is seen
            first = last = -1
            for rec in read_range(log, topic, p, low, high):
                src = source_of(rec.headers)
                if src is not None and _inside(index.get(src[:2]), src[2]):
                    out.setdefault(src, []).append(_record_row(rec))
                    first = rec.offset if first < 0 else first
                    last = rec.offset
                elif src is None and topic in shared:
                    continue
                elif src is None or src[:2] not in inputs:
                    strangers.append(rec)
            foreign += [r for r in strangers if (everything or r.offset > first >= 0) and r.offset < last]
    foreign.sort(key=lambda r: (r.timestamp_ns, r.topic, r.partition, r.offset))
    return out, foreign


def _inside(spans: list[tuple[int, int]] | None, offset: int) -> bool:
    return spans is not None and any(s <= offset < e for s, e in spans)


def _record_row(rec: Record) -> Row:
    return (rec.topic, rec.partition, rec.key, rec.value, tuple(rec.headers), rec.timestamp_ns // NS_PER_MS)


def describe_rows(serde: Serde, rows: list[Row]) -> list[dict[str, Any]]:
    """Rows as readable dicts (decoded values) for the divergence report."""
    out = []
    for topic, partition, key, value, headers, ts_ms in rows:
        try:
            decoded: Any = serde.decode(value).value if value is not None else None
        except Exception as exc:  # show the bytes' problem rather than fail the report
            decoded = f"<undecodable: {exc}>"
        out.append({
            "topic": topic, "partition": partition, "key": key.decode("utf-8", "replace") if key else None,
            "timestamp_ms": ts_ms, "value": decoded,
        })
    return out


__all__ = ["Divergence", "VerifyResult", "describe_rows", "verify", "Encoded"]
