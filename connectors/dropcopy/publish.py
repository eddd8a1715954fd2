"""Publish the simulated drop copy: read every committed fill, derive the reports, write ``exec.reports``.

The thin, impure shell around :func:`~connectors.dropcopy.simulator.drop_copy`. It reads ``fills`` from
the start to where it ended when the run began (read_committed: what matching committed), so the same
fills and the same config publish the same reports. It refuses a non-empty ``exec.reports`` rather than
append a second copy: publish once per log (the demo publishes after matching has run to idle).
Delivery: at-least-once, like the feed publishers; on a failure part-way, publish into a fresh log.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.dropcopy.simulator import FILLS_TOPIC, REPORT_SCHEMA, REPORTS_TOPIC, DropCopyConfig, drop_copy
from streams.errors import ConfigError
from streams.log.base import Log
from streams.serde import Serde
from streams.topics import ensure_topics

BATCH = 2000


@dataclass(frozen=True)
class DropCopySummary:
    """What a drop-copy run read and wrote."""

    fills: int
    reports: int


def read_fills(log: Log, serde: Serde) -> list[dict[str, Any]]:
    """Every committed fill on the log now, partition by partition in offset order."""
    parts = log.partitions(FILLS_TOPIC)
    ends = {p: log.watermarks(FILLS_TOPIC, p) for p in range(parts)}
    out: list[dict[str, Any]] = []
    todo = {p for p, (low, high) in ends.items() if high > low}
    if not todo:
        return out
    with log.reader([(FILLS_TOPIC, p, ends[p][0]) for p in sorted(todo)]) as reader:
        while todo:
            batch = reader.poll(BATCH, timeout=1.0)
            for rec in batch:
                if rec.value is not None and rec.offset < ends[rec.partition][1]:
                    out.append(serde.decode(rec.value).value)
            for p in list(todo):
                stable = reader.end_offset(FILLS_TOPIC, p)
                target = ends[p][1] if stable is None else min(ends[p][1], stable)
                if reader.position(FILLS_TOPIC, p) >= target:
                    todo.discard(p)
    return out


def publish_drop_copy(log: Log, serde: Serde, config: DropCopyConfig) -> DropCopySummary:
    """Read ``fills``, write their simulated execution reports to ``exec.reports`` (created if missing)."""
    ensure_topics(log, [FILLS_TOPIC, REPORTS_TOPIC])
    existing = sum(high - low for low, high in (log.watermarks(REPORTS_TOPIC, p) for p in range(log.partitions(REPORTS_TOPIC))))
    if existing:
        raise ConfigError(
            f"{REPORTS_TOPIC} already holds {existing} record(s)",
            hint="the drop copy is published once per log: delete and re-create exec.reports, or use a fresh log",
        )
    fills = read_fills(log, serde)
    reports = drop_copy(fills, config)
    producer = log.producer()
    try:
        for i in range(0, len(reports), BATCH):
            chunk = reports[i:i + BATCH]
            encoded = serde.encode_many(REPORT_SCHEMA, [r.value for r in chunk], topic=REPORTS_TOPIC)
            for rep, data in zip(chunk, encoded):
                producer.produce(REPORTS_TOPIC, data, key=rep.key.encode(), timestamp_ns=rep.timestamp_ns)
        producer.flush()
    finally:
        producer.close()
    return DropCopySummary(len(fills), len(reports))
