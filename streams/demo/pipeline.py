"""Run every built-in processor over the demo's inputs on the lockstep schedule.

The stages are the registry's processors in pipeline order (normalize, risk, matching,
dropcopy, ledger, reconcile), each a :class:`~streams.runtime.runner.Runner` with its default
configuration (``infra/*.yaml``), driven by :func:`~streams.runtime.lockstep.run_lockstep`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from streams.log.base import Log
from streams.runtime.lockstep import LockstepResult, MarkStore, Schedule, run_lockstep
from streams.runtime.lookup import default_config, registry
from streams.runtime.metrics import RunCounts
from streams.runtime.outage import RetryPolicy
from streams.runtime.runner import Runner, RunOptions
from streams.runtime.codec import dlq_topic
from streams.serde import Serde

# Commits happen at slice ends only (step_to_horizon); the batch and interval never cut a slice.
LOCKSTEP_OPTIONS = RunOptions(batch=1 << 40, commit_interval_ms=1 << 40, instance_id="demo")


@dataclass
class PipelineRun:
    """What the lockstep run did."""

    result: LockstepResult
    counts: dict[str, RunCounts]
    elapsed_s: float
    outputs: list[str] = field(default_factory=list)


def stage_names() -> list[str]:
    """The processors the demo runs, in pipeline order."""
    return list(registry())


def output_topics(log: Log, names: list[str] | None = None) -> list[str]:
    """Every topic the stages write: their outputs and dead-letter topics (not ``state.*``)."""
    out: set[str] = set()
    for name in names or stage_names():
        cls = registry()[name]
        proto = cls(default_config(cls), 0)
        out.update(proto.outputs)
        out.add(dlq_topic(name))
    existing = {t.name for t in log.list_topics()}
    return sorted(t for t in out if t in existing)


def run_pipeline(
    log: Log, serde: Serde, schedule: Schedule, *, stop: threading.Event | None = None,
    on_slice: Callable[[int, int], None] | None = None, outage_limit_s: float | None = None,
) -> PipelineRun:
    """Run the stages to the end of ``schedule`` (resuming after its last mark) and until quiet.

    A broker outage is ridden out for up to ``outage_limit_s`` (default: :data:`~streams.runtime.outage.DEFAULT_LIMIT_S`).
    """
    names = stage_names()
    runners = []
    for name in names:
        cls = registry()[name]
        runners.append(Runner(log, serde, cls, default_config(cls), LOCKSTEP_OPTIONS))
    t0 = time.monotonic()
    policy = RetryPolicy(limit_s=outage_limit_s) if outage_limit_s is not None else None
    result = run_lockstep(runners, schedule, MarkStore(log, serde, schedule.name), stop=stop, on_slice=on_slice, policy=policy)
    elapsed = time.monotonic() - t0
    return PipelineRun(result, {r.name: r.counts for r in runners}, elapsed, output_topics(log, names))
