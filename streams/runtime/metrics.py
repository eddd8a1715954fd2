"""Runtime metrics as prometheus-client counters, gauges and histograms, plus the run's count reconciliation.

Each runtime gets its own :class:`~prometheus_client.CollectorRegistry` (several
processors in one process, and tests, must not collide); ``hftstream run
--metrics-port`` serves it. Names follow Prometheus conventions (a ``Counter`` named
``x`` is exposed as ``x_total``). Everything is updated per batch or per commit, never
per record:

* records in / out and dead letters by reason: at each commit (so they count what is
  visible downstream, and an aborted transaction never counts twice);
* ``hftstream_end_to_end_latency_seconds``: per task and commit, the wall clock when the
  commit returned (its outputs became visible) minus the log timestamp of the oldest input
  in the transaction -- the transaction's worst case. Outputs carry their input's
  timestamp, so at any stage this is the latency since the original event, as long as
  the source stamps records with the wall clock (live venues, the paced demo phase); on a
  backlog or a simulated past it reads as the data's age. Only the runtime shell reads
  the clock; processors never do;
* consumer lag per input partition (end of the partition minus the task's committed
  position): after commits and at most every :data:`LAG_EVERY_S` while idle;
* broker outages (:mod:`.outage`): ``hftstream_broker_outage`` is 1 while the processor retries
  through one, ``hftstream_broker_outage_seconds`` how long it has lasted so far (0 outside one),
  ``hftstream_outages_total`` / ``hftstream_outage_retries_total`` count them and their retries;
* trading state and recon status: state sets from :meth:`Processor.states` after each
  commit (1 for the state some task of the processor reports, 0 for the others).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streams.errors import ConfigError

if TYPE_CHECKING:
    from streams.runtime.task import Task

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
E2E_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
LAG_EVERY_S = 0.5
NO_INPUT_TS = 1 << 63  # Task.oldest_ts_ns when nothing was processed since the last commit

# Processor.states() kinds -> (metric, label of the subject, label of the state, every state it can take)
STATE_SETS: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "trading": ("hftstream_trading_state", "scope", "state", ("ACTIVE", "REDUCE_ONLY", "HALTED", "KILL_SWITCH")),
    "recon": ("hftstream_recon_status", "venue", "status", ("IN_SYNC", "DIVERGED", "HALTED")),
}


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
        self.outage = Gauge("hftstream_broker_outage", "1 while retrying through a broker outage", label, registry=r)
        self.outage_seconds = Gauge(
            "hftstream_broker_outage_seconds", "How long the current broker outage has lasted (0: none)", label, registry=r
        )
        self.outages = Counter("hftstream_outages", "Broker outages ridden out (or in progress)", label, registry=r)
        self.outage_retries = Counter("hftstream_outage_retries", "Retries during broker outages", label, registry=r)
        self.batch_seconds = Histogram(
            "hftstream_batch_seconds", "Decode + process + encode time of one batch", label, buckets=_LATENCY_BUCKETS, registry=r
        )
        self.commit_seconds = Histogram(
            "hftstream_commit_seconds", "Time to commit one transaction", label, buckets=_LATENCY_BUCKETS, registry=r
        )
        self.lag = Gauge(
            "hftstream_consumer_lag", "Records on an input partition past the processor's committed position",
            ("processor", "topic", "partition"), registry=r,
        )
        self.end_to_end = Histogram(
            "hftstream_end_to_end_latency_seconds",
            "Per task and commit: commit time minus the log timestamp of the transaction's oldest input",
            label, buckets=E2E_BUCKETS, registry=r,
        )
        self.states = {
            kind: Gauge(metric, f"1 when a task of the processor reports this {what} for the {subject} (state set)",
                        ("processor", subject, what), registry=r)
            for kind, (metric, subject, what, _) in STATE_SETS.items()
        }


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
        self.end_to_end = f.end_to_end.labels(processor)
        self.outage = f.outage.labels(processor)
        self.outage_seconds = f.outage_seconds.labels(processor)
        self.outages = f.outages.labels(processor)
        self.outage_retries = f.outage_retries.labels(processor)
        self._lags: set[tuple[str, str]] = set()
        self._lag_due = 0.0
        self._task_states: dict[int, Mapping[str, Mapping[str, str]]] = {}
        self._published: dict[str, set[tuple[str, str]]] = {kind: set() for kind in STATE_SETS}

    def dead_letter(self, reason: str, n: int = 1) -> None:
        """Count ``n`` dead letters with this reason code."""
        self._f.dlq.labels(self.processor, reason).inc(n)

    def outage_started(self) -> None:
        """A broker outage began."""
        self.outages.inc()
        self.outage.set(1)

    def outage_retry(self, elapsed_s: float) -> None:
        """One more retry, ``elapsed_s`` into the outage."""
        self.outage_retries.inc()
        self.outage_seconds.set(elapsed_s)

    def outage_ended(self) -> None:
        """The outage is over."""
        self.outage.set(0)
        self.outage_seconds.set(0)

    def lag(self, topic: str, partition: int, value: int) -> None:
        """Set the lag of one input partition."""
        self._f.lag.labels(self.processor, topic, str(partition)).set(value)

    def committed(self, done: Iterable[Task], tasks: Iterable[Task]) -> None:
        """After a commit: end-to-end latency and states of the tasks in it (``done``), lag of every task."""
        now = time.time_ns()
        for task in done:
            if task.oldest_ts_ns != NO_INPUT_TS:
                self.end_to_end.observe(max(0, now - task.oldest_ts_ns) / 1e9)
                task.oldest_ts_ns = NO_INPUT_TS
            self.task_states(task.id, task.processor.states())
        self.publish_lag(tasks, force=True)

    def publish_lag(self, tasks: Iterable[Task], *, force: bool = False) -> None:
        """Set every input partition's lag (at most every :data:`LAG_EVERY_S` unless ``force``); drop partitions no longer held.

        A global input is read by every task: its lag is the largest of theirs.
        """
        now = time.monotonic()
        if not force and now < self._lag_due:
            return
        self._lag_due = now + LAG_EVERY_S
        lags: dict[tuple[str, str], int] = {}
        for task in tasks:
            committed = task.committed
            for tp, q in (item for m in task.mergers() for item in m.queues.items()):
                if q.end is None:
                    continue
                key = (tp[0], str(tp[1]))
                lag = max(0, q.end - committed.get(tp, q.end))
                if lag >= lags.get(key, 0):
                    lags[key] = lag
        gauge = self._f.lag
        for key, lag in lags.items():
            gauge.labels(self.processor, *key).set(lag)
        for key in self._lags - lags.keys():
            gauge.remove(self.processor, *key)
        self._lags = set(lags)

    def task_states(self, task: int, states: Mapping[str, Mapping[str, str]]) -> None:
        """Task ``task`` reports ``{kind: {subject: state}}`` (see :data:`STATE_SETS`); republish what changed."""
        before = self._task_states.get(task, {})
        if states == before:
            return
        self._task_states[task] = states
        for kind in set(states) | set(before):
            self._publish_states(kind)

    def forget_task(self, task: int) -> None:
        """The task went to another instance: its states and lags are no longer this instance's."""
        before = self._task_states.pop(task, {})
        for kind in before:
            self._publish_states(kind)

    def _publish_states(self, kind: str) -> None:
        spec = STATE_SETS.get(kind)
        if spec is None:
            return
        gauge, known = self._f.states[kind], spec[3]
        current: dict[str, set[str]] = {}
        for states in self._task_states.values():
            for subject, value in states.get(kind, {}).items():
                current.setdefault(subject, set()).add(value)
        series: set[tuple[str, str]] = set()
        for subject, values in current.items():
            for value in dict.fromkeys((*known, *sorted(values))):
                gauge.labels(self.processor, subject, value).set(1 if value in values else 0)
                series.add((subject, value))
        for subject, value in self._published[kind] - series:
            gauge.remove(self.processor, subject, value)
        self._published[kind] = series


def serve_metrics(port: int, registry: CollectorRegistry) -> None:
    """Serve ``registry`` on ``http://0.0.0.0:PORT/metrics`` from a daemon thread; a port in use is a :class:`ConfigError`."""
    from prometheus_client import start_http_server

    try:
        start_http_server(port, registry=registry)
    except OSError as exc:
        raise ConfigError(
            f"cannot serve metrics on port {port}: {exc.strerror or exc}",
            hint="another process holds the port: pick another --metrics-port (infra/prometheus/prometheus.yml lists the usual ones)",
        ) from None
