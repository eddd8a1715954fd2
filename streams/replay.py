"""Replay: re-read any part of a topic from an offset, decode it, filter it, print or re-publish it.

:func:`replay` is the library function behind ``hftstream replay``; it takes the sink and the clock
as arguments so tests (and backtests) drive it without a terminal or real time.

Order: one partition is replayed in offset order. Several partitions are merged by
(timestamp, partition, offset), so the output is the same on every run.
The end is the high watermark seen when the replay starts, so a replay always terminates.
"""

from __future__ import annotations

import heapq
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from streams.errors import DecodeError, UnknownPartitionError
from streams.lineage import lineage_headers
from streams.log.base import Log, Producer, Record

_POLL = 2000


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


def parse_filters(items: list[str] | None) -> tuple[tuple[str, str], ...]:
    """``["symbol=AAPL", "side=BUY"]`` -> pairs; a missing ``=`` raises ValueError saying how to write it."""
    pairs = []
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ValueError(f"filter {item!r} is not FIELD=VALUE (e.g. --filter symbol=AAPL, --filter type=Trade)")
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
    streams = [_partition_stream(log, req.topic, p, s, e) for p, (s, e) in sorted(spans.items())]
    if len(streams) == 1:
        return streams[0]
    return heapq.merge(*streams, key=lambda r: (r.timestamp_ns, r.partition, r.offset))


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
    on_progress: Callable[[int], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ReplaySummary:
    """Replay ``req``: decode each record, apply filters, hand matches to ``sink`` (and re-publish to ``into``).

    Undecodable records are never dropped silently: they reach the sink with ``error`` set
    and are counted. Returns the summary; ``read == emitted + filtered``.
    """
    spans = plan(log, req)
    summary = ReplaySummary(topic=req.topic, partitions=spans)
    pacer = _Pacer(req.speed, clock, sleep) if req.speed else None
    producer: Producer | None = None
    target_partitions = 0
    if into:
        target_partitions = log.partitions(into)
        producer = log.producer()
    try:
        for rec in records(log, req, spans):
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
                        partition=rec.partition if rec.partition < target_partitions else None,
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


def _decode(serde: Any, rec: Record) -> ReplayedRecord:
    if rec.value is None:
        return ReplayedRecord(rec, "<tombstone>", None)
    try:
        decoded = serde.decode(rec.value)
    except DecodeError as exc:
        return ReplayedRecord(rec, None, None, error=f"{type(exc).__name__}: {exc}")
    return ReplayedRecord(rec, decoded.schema, decoded.value)
