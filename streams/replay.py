"""Replay: re-read any part of a topic from an offset, decode it, filter it, print or re-publish it.

:func:`replay` is the library function behind ``hftstream replay``; it takes the sink and the clock
as arguments so tests (and backtests) drive it without a terminal or real time.

Order: one partition is replayed in offset order. Several partitions are merged by
(timestamp, partition, offset), so the output is the same on every run.
The end is the high watermark seen when the replay starts, so a replay always terminates.
"""

from __future__ import annotations

import heapq
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from streams.errors import ConfigError, DecodeError, UnknownPartitionError
from streams.lineage import lineage_headers
from streams.log.base import Log, Producer, Record
from streams.serde.codec import SINGLE_OBJECT_MAGIC

_POLL = 2000
TOMBSTONE = "<tombstone>"
_SPEED = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*x\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class ReplayRequest:
    """What to replay. ``to_offset`` is inclusive; ``speed`` ``None`` means as fast as possible."""

    topic: str
    partition: int | None = None
    from_offset: int = 0
    to_offset: int | None = None
    from_time_ns: int | None = None
    filters: tuple[tuple[str, str], ...] = ()
    speed: float | None = None


@dataclass
class ReplayedRecord:
    """One record as replay hands it to a sink: the stored record plus its decoded value."""

    record: Record
    schema: str | None
    value: dict[str, Any] | None
    error: str | None = None


@dataclass
class ReplaySummary:
    """Counts for stderr: ``read == emitted + filtered``."""

    topic: str
    partitions: dict[int, tuple[int, int]] = field(default_factory=dict)  # partition -> (start, end exclusive)
    read: int = 0
    emitted: int = 0
    filtered: int = 0
    undecodable: int = 0
    published: int = 0
    by_type: Counter[str] = field(default_factory=Counter)

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        spans = ", ".join(f"p{p}:{s}..{e - 1}" if e > s else f"p{p}:empty" for p, (s, e) in sorted(self.partitions.items()))
        out = [
            f"replay {self.topic} [{spans}]: read {self.read}, emitted {self.emitted}, filtered {self.filtered}, "
            f"undecodable {self.undecodable}" + (f", published {self.published}" if self.published else "")
        ]
        if self.by_type:
            out.append("by type: " + ", ".join(f"{t}={n}" for t, n in sorted(self.by_type.items())))
        return out


def parse_speed(text: str) -> float | None:
    """``"max"`` -> ``None`` (as fast as possible); ``"2x"`` / ``"0.5x"`` -> the factor over real time."""
    if text.strip().lower() == "max":
        return None
    m = _SPEED.match(text)
    factor = float(m.group(1)) if m else 0.0
    if factor <= 0:
        raise ConfigError(
            f"--speed {text!r} is not max or a positive multiple of real time",
            hint="use --speed max (no pacing), 1x (real time), or any factor such as 2x, 10x, 0.5x",
        )
    return factor


def parse_filters(items: list[str] | None) -> tuple[tuple[str, str], ...]:
    """``["symbol=AAPL", "side=BUY"]`` -> pairs; a missing ``=`` raises :class:`ConfigError` saying how to write it."""
    pairs = []
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError(
                f"--filter {item!r} is not FIELD=VALUE",
                hint="write e.g. --filter symbol=AAPL or --filter type=Trade (FIELD is a value field, key, partition or type)",
            )
        pairs.append((name.strip(), value))
    return tuple(pairs)


def _field(rep: ReplayedRecord, path: str) -> Any:
    rec = rep.record
    if path == "key":
        return rec.key.decode("utf-8", "replace") if rec.key is not None else None
    if path == "partition":
        return rec.partition
    if path == "type":
        return rep.schema
    node: Any = rep.value
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def matches(rep: ReplayedRecord, filters: tuple[tuple[str, str], ...]) -> bool:
    """True when every FIELD=VALUE holds. ``type`` matches the full or short schema name."""
    for name, want in filters:
        got = _field(rep, name)
        if name == "type" and isinstance(got, str) and got.rsplit(".", 1)[-1] == want:
            continue
        if isinstance(got, bytes):
            got = got.decode("utf-8", "replace")
        if got is None or str(got) != want:
            return False
    return True


def plan(log: Log, req: ReplayRequest) -> dict[int, tuple[int, int]]:
    """Per partition, the ``[start, end)`` offsets this replay covers."""
    partitions = log.partitions(req.topic)
    if req.partition is not None and not 0 <= req.partition < partitions:
        raise UnknownPartitionError(req.topic, req.partition, partitions)
    chosen = range(partitions) if req.partition is None else (req.partition,)
    spans = {}
    for p in chosen:
        low, high = log.watermarks(req.topic, p)
        start = max(req.from_offset, low)
        if req.from_time_ns is not None:
            start = max(start, log.offset_for_time(req.topic, p, req.from_time_ns))
        end = high if req.to_offset is None else min(high, req.to_offset + 1)
        spans[p] = (start, max(start, end))
    return spans


@dataclass(frozen=True)
class Removed:
    """Requested offsets that no longer exist: retention (or deletion) moved the low watermark past them."""

    topic: str
    partition: int
    requested: int
    low: int
    high: int

    def describe(self) -> str:
        gone = f"offsets {self.requested}..{self.low - 1}"
        left = "nothing is left to replay there" if self.low >= self.high else f"replaying from {self.low}"
        return (
            f"{self.topic} partition {self.partition}: requested offset {self.requested} is below the low watermark "
            f"{self.low}: {gone} were removed by retention; {left}"
        )


def removed_ranges(log: Log, req: ReplayRequest) -> list[Removed]:
    """Partitions of ``req`` whose requested start offset was removed by retention (low watermark above it).

    Only for offset starts: a ``--from-time`` start names no offset to compare.
    """
    if req.from_time_ns is not None:
        return []
    partitions = log.partitions(req.topic)
    chosen = range(partitions) if req.partition is None else (req.partition,)
    out = []
    for p in chosen:
        if not 0 <= p < partitions:
            continue
        low, high = log.watermarks(req.topic, p)
        if low > req.from_offset:
            out.append(Removed(req.topic, p, req.from_offset, low, high))
    return out


def _partition_stream(log: Log, topic: str, partition: int, start: int, end: int) -> Iterator[Record]:
    if start >= end:
        return
    with log.reader([(topic, partition, start)]) as reader:
        idle = 0
        while True:
            batch = reader.poll(_POLL, timeout=0.5)
            if not batch:
                # The end offset existed when we started; compaction may have removed the tail records.
                if reader.position(topic, partition) >= end or idle >= 10:
                    return
                idle += 1
                continue
            idle = 0
            for rec in batch:
                if rec.offset >= end:
                    return
                yield rec
            if batch[-1].offset >= end - 1:
                return


def records(log: Log, req: ReplayRequest, spans: dict[int, tuple[int, int]]) -> Iterator[Record]:
    """The stored records of ``spans``, merged in the deterministic replay order."""
    return merge_partitions([_partition_stream(log, req.topic, p, s, e) for p, (s, e) in sorted(spans.items())])


def merge_partitions(streams: list[Iterator[Record]]) -> Iterator[Record]:
    """Per-partition streams (each in offset order) merged by (timestamp, partition, offset): the replay order."""
    if len(streams) == 1:
        return streams[0]
    return heapq.merge(*streams, key=lambda r: (r.timestamp_ns, r.partition, r.offset))


class RecordSource(Protocol):
    """Where replay reads records: the log (:class:`LogSource`) or the tape (connectors/clickhouse/replay.py)."""

    def plan(self, req: ReplayRequest) -> dict[int, tuple[int, int]]: ...

    def records(self, req: ReplayRequest, spans: dict[int, tuple[int, int]]) -> Iterator[Record]: ...


class LogSource:
    """Replay from the log itself."""

    def __init__(self, log: Log) -> None:
        self.log = log

    def plan(self, req: ReplayRequest) -> dict[int, tuple[int, int]]:
        return plan(self.log, req)

    def records(self, req: ReplayRequest, spans: dict[int, tuple[int, int]]) -> Iterator[Record]:
        return records(self.log, req, spans)


class _Pacer:
    """Sleeps so records come out at ``speed`` times the rate their timestamps say."""

    def __init__(self, speed: float, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self.speed, self.clock, self.sleep = speed, clock, sleep
        self.origin: tuple[int, float] | None = None

    def wait(self, ts_ns: int) -> None:
        if self.origin is None:
            self.origin = (ts_ns, self.clock())
            return
        due = self.origin[1] + (ts_ns - self.origin[0]) / 1e9 / self.speed
        delay = due - self.clock()
        if delay > 0:
            self.sleep(delay)


def replay(
    log: Log,
    serde: Any,
    req: ReplayRequest,
    sink: Callable[[ReplayedRecord], None],
    *,
    into: str | None = None,
    keep_partition: bool = False,
    on_progress: Callable[[int], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    source: RecordSource | None = None,
) -> ReplaySummary:
    """Replay ``req``: decode each record, apply filters, hand matches to ``sink`` (and re-publish to ``into``).

    Re-published records go to the partition of their key in ``into`` (murmur2, as any keyed
    produce); with ``keep_partition`` they keep their source partition number, which needs the
    same partition count. Unkeyed records are spread round-robin unless ``keep_partition``.
    Undecodable records are never dropped silently: they reach the sink with ``error`` set
    and are counted. Returns the summary; ``read == emitted + filtered``. ``source`` reads the
    records from elsewhere than ``log`` (the tape); ``--into`` still publishes to ``log``.
    """
    src = source or LogSource(log)
    spans = src.plan(req)
    summary = ReplaySummary(topic=req.topic, partitions=spans)
    pacer = _Pacer(req.speed, clock, sleep) if req.speed else None
    producer: Producer | None = None
    if into:
        check_into_target(log, req.topic, into, keep_partition=keep_partition)
        producer = log.producer()
    try:
        for rec in src.records(req, spans):
            summary.read += 1
            rep = _decode(serde, rec)
            if rep.error is not None:
                summary.undecodable += 1
            summary.by_type[rep.schema.rsplit(".", 1)[-1] if rep.schema else "<undecodable>"] += 1
            if req.filters and not matches(rep, req.filters):
                summary.filtered += 1
            else:
                if pacer:
                    pacer.wait(rec.timestamp_ns)
                summary.emitted += 1
                sink(rep)
                if producer is not None:
                    producer.produce(
                        into,
                        rec.value,
                        rec.key,
                        partition=rec.partition if keep_partition else None,
                        timestamp_ns=rec.timestamp_ns,
                        headers=lineage_headers(rec),
                    )
                    summary.published += 1
            if on_progress is not None and summary.read % 1000 == 0:
                on_progress(1000)
        if producer is not None:
            producer.flush()
    finally:
        if producer is not None:
            producer.close()
    if on_progress is not None:
        on_progress(summary.read % 1000)
    return summary


def check_into_target(log: Log, source: str, into: str, *, keep_partition: bool) -> None:
    """Refuse a re-publish that cannot be right: into the source topic, or keeping partitions across different counts."""
    if into == source:
        raise ConfigError(
            f"--into {into} is the topic being replayed: every record would be appended to it again",
            hint=f"re-publish into another topic, e.g. --into {source}.redrive",
        )
    if keep_partition:
        src, dst = log.partitions(source), log.partitions(into)
        if src != dst:
            raise ConfigError(
                f"--keep-partition needs the same partition count: {source} has {src}, {into} has {dst}",
                hint="drop --keep-partition to re-partition by key (murmur2), or replay into a topic with "
                f"{src} partition(s)",
            )


@dataclass
class Misfit:
    """Records a re-publish would write under a schema the target does not declare."""

    schema: str
    count: int
    first: tuple[int, int]  # (partition, offset)


def undeclared_records(
    log: Log, serde: Any, req: ReplayRequest, allowed: tuple[str, ...], spans: dict[int, tuple[int, int]] | None = None
) -> list[Misfit]:
    """Records ``req`` would re-publish whose schema is not in ``allowed`` (undecodable ones as ``<undecodable>``).

    Reads the span once more before anything is written, so a refused ``--into`` writes nothing.
    Tombstones pass: they delete a key whatever its schema. Without filters a single-object
    record's schema comes from its fingerprint alone (no body decode), which makes this pass
    cheap: a record whose fingerprint is known counts as that schema even if its body is damaged.
    """
    found: dict[str, Misfit] = {}
    for rec in records(log, req, plan(log, req) if spans is None else spans):
        name = None if req.filters else _schema_from_fingerprint(serde, rec.value)
        if name is None:
            rep = _decode(serde, rec)
            if req.filters and not matches(rep, req.filters):
                continue
            name = rep.schema or "<undecodable>"
        if name == TOMBSTONE or name in allowed:
            continue
        if name in found:
            found[name].count += 1
        else:
            found[name] = Misfit(name, 1, (rec.partition, rec.offset))
    return list(found.values())


def _schema_from_fingerprint(serde: Any, value: bytes | None) -> str | None:
    """The schema named by a single-object header (``0xC3 0x01`` + fingerprint); ``None``: decode to know."""
    if value is None or value[:2] != SINGLE_OBJECT_MAGIC or len(value) < 10:
        return None
    ver = serde.repo.by_fingerprint(bytes(value[2:10]))
    return ver.name if ver is not None else None


def _decode(serde: Any, rec: Record) -> ReplayedRecord:
    if rec.value is None:
        return ReplayedRecord(rec, TOMBSTONE, None)
    try:
        decoded = serde.decode(rec.value)
    except DecodeError as exc:
        return ReplayedRecord(rec, None, None, error=f"{type(exc).__name__}: {exc}")
    return ReplayedRecord(rec, decoded.schema, decoded.value)
