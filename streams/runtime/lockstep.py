"""A cyclic pipeline in one process, with the same output whatever instant it is killed at.

The trading pipeline has cycles: risk reads the fills and order events that matching makes
from risk's own accepted orders, and reconcile's halts come back to risk on ``ops.commands``.
What risk decides therefore depends on how much of matching's output it has seen when an
order arrives. Driven by polling and wall-clock commit intervals that is a matter of
timing; :func:`run_lockstep` makes it a pure function of the inputs:

* event time is cut into **slices** of ``slice_ms``; slice ``k`` ends at horizon
  ``H_k = start_ms + (k + 1) * slice_ms``;
* per slice, each stage in pipeline order processes **every input record before H_k**
  (:meth:`~streams.runtime.runner.Runner.step_to_horizon`): it waits until nothing before the
  horizon can still arrive (everything upstream has committed), then hands the records to its
  tasks in task order and commits them as **one transaction**. So a risk decision at event
  time t has seen exactly the fills of the slices before t's slice, on every run;
* after the last slice, **final rounds** without a horizon repeat until a round in which no
  stage processed anything (late drop-copy reports, cancels caused by feedback...);
* after each slice (and round) a :class:`ScheduleMark` is written to ``runtime.schedule``.

**Broker outages** (on Kafka) are ridden out as ``run`` rides them out (DECISIONS #49): each slice's
steps and its mark go through one :class:`~streams.runtime.outage.OutageGuard`. A retriable error
reopens every runner (each task back at its last commit) and the slice is stepped again: stages
that had committed it find nothing before its horizon, the rest do what they would have done, so
the digest is the uninterrupted run's. Past the policy's limit the run stops with
:class:`~streams.errors.BrokerUnavailableError` and resumes from its last mark when run again.

**Crash safety.** Each stage's slice is one transaction, so after a SIGKILL every stage is at
a slice boundary. The rerun resumes at the slice after the last mark: stages that had
committed that slice find nothing before its horizon (a no-op), the others do exactly what
the uninterrupted run did. Resuming there, and not re-walking from slice 0, matters: a stage
given an earlier horizon could take records a later slice produced with an older timestamp
(a cancel caused by an old operator command) ahead of time. The digest of every output topic
is then the same as an uninterrupted run's (DECISIONS #32).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from streams.errors import ConfigError
from streams.log.base import Log
from streams.runtime.faults import fault
from streams.runtime.outage import OutageGuard, RetryPolicy
from streams.runtime.runner import Runner, open_all
from streams.serde import Serde

SCHEDULE_TOPIC = "runtime.schedule"
MARK_SCHEMA = "hftstream.runtime.ScheduleMark"


@dataclass(frozen=True)
class Schedule:
    """Event time ``[start_ms, end_ms)`` cut into slices of ``slice_ms``."""

    name: str
    start_ms: int
    end_ms: int
    slice_ms: int
    params: dict[str, Any]

    def __post_init__(self) -> None:
        if self.slice_ms <= 0 or self.end_ms < self.start_ms:
            raise ConfigError(f"schedule {self.name!r}: bad slices ({self.start_ms}..{self.end_ms} by {self.slice_ms} ms)")

    @property
    def slices(self) -> int:
        """How many slices cover ``[start_ms, end_ms)``."""
        return max(1, -(-(self.end_ms - self.start_ms) // self.slice_ms))

    def horizon(self, k: int) -> int:
        """Slice ``k``'s horizon (ms, exclusive)."""
        return self.start_ms + (k + 1) * self.slice_ms

    def params_json(self) -> str:
        """The parameters as canonical JSON."""
        return json.dumps(self.params, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Mark:
    """The last slice a schedule finished, as read back from ``runtime.schedule``."""

    slice: int
    slices: int
    params: dict[str, Any]


class MarkStore:
    """The marks of one schedule on ``runtime.schedule`` (key: the schedule's name)."""

    def __init__(self, log: Log, serde: Serde, name: str) -> None:
        self.log, self.serde, self.name = log, serde, name
        self._producer = None

    def last(self) -> Mark | None:
        """The newest mark of this schedule, or None when it never finished a slice."""
        low, high = self.log.watermarks(SCHEDULE_TOPIC, 0)
        found: Mark | None = None
        if high <= low:
            return None
        with self.log.reader([(SCHEDULE_TOPIC, 0, low)]) as reader:
            while reader.position(SCHEDULE_TOPIC, 0) < high:
                batch = reader.poll(1000, timeout=1.0)
                if not batch and reader.position(SCHEDULE_TOPIC, 0) >= (reader.end_offset(SCHEDULE_TOPIC, 0) or high):
                    break
                for rec in batch:
                    if rec.key == self.name.encode() and rec.value is not None:
                        v = self.serde.decode(rec.value).value
                        found = Mark(v["slice"], v["slices"], json.loads(v["params"]))
        return found

    def write(self, schedule: Schedule, k: int, horizon_ms: int | None, busy: bool, ts_ns: int) -> None:
        """Record that slice (or final round) ``k`` is done; flushed before returning."""
        if self._producer is None:
            self._producer = self.log.producer()
        value = {
            "schedule": self.name, "slice": k, "slices": schedule.slices, "horizon_ms": horizon_ms,
            "params": schedule.params_json(), "busy": busy,
        }
        data = self.serde.encode(MARK_SCHEMA, value, topic=SCHEDULE_TOPIC)
        try:
            self._producer.produce(SCHEDULE_TOPIC, data, key=self.name.encode(), timestamp_ns=ts_ns)
            self._producer.flush()
        except Exception:
            self._producer = None  # a retry (broker outage) writes with a new producer; a doubled mark is harmless
            raise

    def close(self) -> None:
        """Close the producer."""
        if self._producer is not None:
            self._producer.close()
            self._producer = None


@dataclass
class LockstepResult:
    """How a lockstep run went."""

    slices_run: int = 0
    rounds: int = 0
    resumed_at: int = 0
    interrupted: bool = False
    stage_seconds: dict[str, float] = field(default_factory=dict)  # wall time inside each stage's steps
    outages: int = 0  # broker outages ridden out during the run
    waiting_s: float = 0.0  # two cores: time this process had no stage it could step (waiting for the other)
    timeline: dict[str, float] = field(default_factory=dict)  # two cores: wall-clock time.time() of call, first step, last step

    @property
    def start_s(self) -> float:
        """Two cores: from the call to its first step (opening the stages, waiting for the other process)."""
        t = self.timeline
        return t["first_step"] - t["called"] if "first_step" in t and "called" in t else 0.0


def run_lockstep(
    runners: Sequence[Runner],
    schedule: Schedule,
    marks: MarkStore,
    *,
    stop: threading.Event | None = None,
    on_slice: Callable[[int, int], None] | None = None,
    max_rounds: int = 1000,
    policy: RetryPolicy | None = None,
) -> LockstepResult:
    """Drive ``runners`` (in pipeline order) slice by slice, then in final rounds, until quiet.

    Resumes after the last mark in ``marks``. ``on_slice(done, total)`` reports progress.
    Opens and closes the runners. With ``stop`` set, returns after the current slice.
    ``policy``: how long to ride out a broker outage (default: the runners' ``outage_limit_s``).
    """
    stop = stop or threading.Event()
    result = LockstepResult()
    guard = OutageGuard(runners, policy or (runners[0].options.retry_policy() if runners else RetryPolicy()), stop)
    try:
        guard.call(lambda: open_all(runners))  # a broker down at start (or while opening) is an outage too
        last = guard.call(marks.last)
        start = 0 if last is None else last.slice + 1
        result.resumed_at = start
        total = schedule.slices
        k = start
        while k < total:
            if stop.is_set():
                result.interrupted = True
                return result
            horizon = schedule.horizon(k)
            retries = guard.retries
            busy = guard.call(lambda h=horizon: _step_all(runners, h, result.stage_seconds))
            busy = busy or guard.retries != retries
            fault("before-mark")
            guard.call(lambda k=k, h=horizon, b=busy: marks.write(schedule, k, h, b, h * 1_000_000))
            result.outages = guard.outages
            result.slices_run += 1
            k += 1
            if on_slice is not None:
                on_slice(k, total)
        while True:  # final rounds: no horizon, until a round changes nothing
            if stop.is_set():
                result.interrupted = True
                return result
            if k - total >= max_rounds:
                raise ConfigError(
                    f"schedule {schedule.name!r}: still busy after {max_rounds} final rounds",
                    hint="a processor keeps answering its own output (a feedback loop that never settles): check its outputs",
                )
            retries = guard.retries
            busy = guard.call(lambda: _step_all(runners, None, result.stage_seconds))
            busy = busy or guard.retries != retries  # work committed before the outage is not seen by the retry
            fault("before-mark")
            guard.call(lambda k=k, b=busy: marks.write(schedule, k, None, b, schedule.horizon(total - 1) * 1_000_000))
            result.outages = guard.outages
            result.rounds += 1
            k += 1
            if not busy:
                return result
    finally:
        for r in reversed(runners):  # closing one that did not finish opening is harmless
            r.close()
        marks.close()


def _step_all(runners: Sequence[Runner], horizon: int | None, seconds: dict[str, float]) -> bool:
    busy = False
    for r in runners:
        t0 = time.perf_counter()
        r.set_horizons({} if horizon is None else {t: horizon for t in r.plan.partitions})
        busy = r.step_to_horizon() or busy
        seconds[r.name] = seconds.get(r.name, 0.0) + time.perf_counter() - t0
    return busy
