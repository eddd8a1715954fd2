"""Prometheus series of the tape sink (``hftstream tape sink --metrics-port``).

Updated per batch (one insert of one partition's records), never per record; the lag
per partition at most every :data:`LAG_EVERY_S`. Names follow Prometheus conventions
(a ``Counter`` named ``x`` is exposed as ``x_total``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LAG_EVERY_S = 0.5
_INSERT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class SinkMetrics:
    """The sink's counters, histogram and lag gauges, in ``registry`` (default: a registry of its own)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.records = Counter("hftstream_sink_records", "Log records the sink has put on the tape (rows and its own dead letters)", registry=r)
        self.rows = Counter("hftstream_sink_rows_inserted", "Rows inserted, per tape table", ("table",), registry=r)
        self.dead_letters = Counter("hftstream_sink_dead_letters", "Records the sink wrote to tape.dead_letters itself, by reason", ("reason",), registry=r)
        self.already_present = Counter("hftstream_sink_already_present", "Records skipped because the tape already held them (re-sink, restart)", registry=r)
        self.retries = Counter("hftstream_sink_insert_retries", "Inserts or queries retried after a transient ClickHouse failure", registry=r)
        self.batch_seconds = Histogram(
            "hftstream_sink_batch_insert_seconds", "Time of one insert round (the batches cut since the last): rows, dead letters, progress rows",
            buckets=_INSERT_BUCKETS, registry=r,
        )
        self._lag = Gauge("hftstream_sink_lag", "Records on a partition past the sink's position on the tape", ("topic", "partition"), registry=r)
        self._lag_due = 0.0

    def batch(self, records: int, rows: Mapping[str, int], dead_by_reason: Mapping[str, int], present: int, seconds: float) -> None:
        """Count one inserted batch."""
        self.records.inc(records)
        for table, n in rows.items():
            self.rows.labels(table).inc(n)
        for reason, n in dead_by_reason.items():
            self.dead_letters.labels(reason).inc(n)
        if present:
            self.already_present.inc(present)
        self.batch_seconds.observe(seconds)

    def due(self) -> bool:
        """True (and re-armed) when the lag should be published again."""
        now = time.monotonic()
        if now < self._lag_due:
            return False
        self._lag_due = now + LAG_EVERY_S
        return True

    def lag(self, lags: Iterable[tuple[str, int, int]]) -> None:
        """Set ``(topic, partition, lag)`` of each partition."""
        for topic, partition, n in lags:
            self._lag.labels(topic, str(partition)).set(n)
