"""Runtime metrics as prometheus-client counters and histograms, plus the run's count reconciliation.

Each runtime gets its own :class:`~prometheus_client.CollectorRegistry` (several
processors in one process, and tests, must not collide); ``hftstream run
--metrics-port`` serves it. Names follow Prometheus conventions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class RunCounts:
    """What one run did, reconciled: ``records_in = with_output + without_output + dead_letters``.

    ``without_output`` includes tombstones and inputs the processor consumed silently
    (duplicates suppressed, state updates). ``replayed`` counts inputs re-processed during
    recovery (their outputs were already on the log and were not published again).
    """

    records_in: int = 0
    with_output: int = 0
    without_output: int = 0
    dead_letters: int = 0
    records_out: int = 0
    commits: int = 0
    aborts: int = 0
    replayed: int = 0
    dlq_by_reason: dict[str, int] = field(default_factory=dict)

    def reconciles(self) -> bool:
        """True when every input is accounted for exactly once."""
        return self.records_in == self.with_output + self.without_output + self.dead_letters

    def as_dict(self) -> dict[str, object]:
        """Plain data for ``--json`` output."""
        return {
            "records_in": self.records_in,
            "with_output": self.with_output,
            "without_output": self.without_output,
            "dead_letters": self.dead_letters,
            "records_out": self.records_out,
            "commits": self.commits,
            "aborts": self.aborts,
            "replayed": self.replayed,
            "dlq_by_reason": dict(sorted(self.dlq_by_reason.items())),
            "reconciles": self.reconciles(),
        }


class _Families:
    """The metric families of one registry (several processors in one process share them, by label)."""

    def __init__(self, r: CollectorRegistry) -> None:
        label = ("processor",)
        self.records_in = Counter("hftstream_records_in", "Input records consumed", label, registry=r)
        self.records_out = Counter("hftstream_records_out", "Output records produced (dead letters excluded)", label, registry=r)
        self.dlq = Counter("hftstream_dead_letters", "Inputs routed to the dead-letter topic", ("processor", "reason"), registry=r)
        self.commits = Counter("hftstream_commits", "Committed transactions", label, registry=r)
        self.aborts = Counter("hftstream_transaction_aborts", "Aborted transactions (re-processed from the last commit)", label, registry=r)
        self.batch_seconds = Histogram(
            "hftstream_batch_seconds", "Decode + process + encode time of one batch", label, buckets=_LATENCY_BUCKETS, registry=r
        )
        self.commit_seconds = Histogram(
            "hftstream_commit_seconds", "Time to commit one transaction", label, buckets=_LATENCY_BUCKETS, registry=r
        )
        self.lag = Gauge("hftstream_consumer_lag", "Committed records not yet consumed, per input partition", ("processor", "topic", "partition"), registry=r)


_FAMILIES: dict[int, tuple[CollectorRegistry, _Families]] = {}


def _families(registry: CollectorRegistry) -> _Families:
    entry = _FAMILIES.get(id(registry))
    if entry is None or entry[0] is not registry:
        entry = _FAMILIES[id(registry)] = (registry, _Families(registry))
    return entry[1]


class RuntimeMetrics:
    """The Prometheus series of one processor runtime (``registry`` may be shared by several)."""

    def __init__(self, processor: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        f = self._f = _families(self.registry)
        self.processor = processor
        self.records_in = f.records_in.labels(processor)
        self.records_out = f.records_out.labels(processor)
        self.commits = f.commits.labels(processor)
        self.aborts = f.aborts.labels(processor)
        self.batch_seconds = f.batch_seconds.labels(processor)
        self.commit_seconds = f.commit_seconds.labels(processor)

    def dead_letter(self, reason: str, n: int = 1) -> None:
        """Count ``n`` dead letters with this reason code."""
        self._f.dlq.labels(self.processor, reason).inc(n)

    def lag(self, topic: str, partition: int, value: int) -> None:
        """Set the lag of one input partition."""
        self._f.lag.labels(self.processor, topic, str(partition)).set(value)
