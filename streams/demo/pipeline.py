"""Run every built-in processor over the demo's inputs on the lockstep schedule.

The stages are the registry's processors in pipeline order (normalize, risk, matching,
dropcopy, ledger, reconcile), each a :class:`~streams.runtime.runner.Runner` with its default
configuration (``infra/*.yaml``), driven by :func:`~streams.runtime.lockstep.run_lockstep`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from streams.log.base import Log
from streams.errors import HftError
from streams.runtime.dataflow import StageBook, run_dataflow, writers_of
from streams.runtime.lockstep import LockstepResult, MarkStore, Schedule, run_lockstep
from streams.runtime.lookup import default_config, registry
from streams.runtime.metrics import RunCounts
from streams.runtime.outage import RetryPolicy
from streams.runtime.second_process import SECOND_CORE, die_with_parent, received, report_to
from streams.runtime.runner import Runner, RunOptions
from streams.runtime.codec import dlq_topic
from streams.serde import Serde

# Commits happen at slice ends only (step_to_horizon); the batch and interval never cut a slice.
LOCKSTEP_OPTIONS = RunOptions(batch=1 << 40, commit_interval_ms=1 << 40, instance_id="demo", as_of="merged")


@dataclass
class PipelineRun:
    """What the lockstep run did."""

    result: LockstepResult
    counts: dict[str, RunCounts]
    elapsed_s: float
    outputs: list[str] = field(default_factory=list)
    cores: dict[str, dict[str, Any]] = field(default_factory=dict)  # two cores: each process's stages, opening and waiting


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
    cores: int = 1, log_url: str | None = None, settings: Any = None, second_core: SecondCore | None = None,
) -> PipelineRun:
    """Run the stages to the end of ``schedule`` (resuming after its last mark) and until quiet.

    A broker outage is ridden out for up to ``outage_limit_s`` (default: :data:`~streams.runtime.outage.DEFAULT_LIMIT_S`).
    ``cores=2``: the stages of :data:`SECOND_CORE` run in a second process (:mod:`streams.runtime.dataflow`),
    opened on ``log_url`` with ``settings`` (or ``second_core``, started earlier); the outputs are the one-core run's.
    """
    names = stage_names()
    policy = RetryPolicy(limit_s=outage_limit_s) if outage_limit_s is not None else None
    if cores == 2:
        return _run_two_cores(log, serde, schedule, names, stop=stop, on_slice=on_slice, policy=policy,
                              log_url=log_url or log.url, settings=settings, second_core=second_core)  # type: ignore[attr-defined]
    runners = _runners(log, serde, names)
    t0 = time.monotonic()
    result = run_lockstep(runners, schedule, MarkStore(log, serde, schedule.name), stop=stop, on_slice=on_slice, policy=policy)
    elapsed = time.monotonic() - t0
    return PipelineRun(result, {r.name: r.counts for r in runners}, elapsed, output_topics(log, names))


# SECOND_CORE: the stages off the order path: normalize only reads the venues (it runs ahead), the ledger only
# writes what no stage reads (it trails). The order path's feedback loop (risk, matching, dropcopy, reconcile)
# stays in one process, where it needs no waiting (DECISIONS #61).


def _runners(log: Log, serde: Serde, names: Sequence[str]) -> list[Runner]:
    out = []
    for name in names:
        cls = registry()[name]
        out.append(Runner(log, serde, cls, default_config(cls), LOCKSTEP_OPTIONS))
    return out


def _topology(log: Log, names: Sequence[str]) -> tuple[dict[str, str], set[str]]:
    """``({topic: the stage writing it}, {every topic a stage reads})``."""
    from streams.runtime.preflight import plan_inputs

    outputs, consumed = {}, set()
    for name in names:
        cls = registry()[name]
        proto = cls(default_config(cls), 0)
        outputs[name] = tuple(proto.outputs)
        consumed |= set(plan_inputs(log, proto).partitions)
    return writers_of(outputs), consumed


class SecondCore:
    """The pipeline's second process, started ahead of its job: its interpreter and imports (~0.4 s) overlap
    whatever the caller does meanwhile (the demo publishes its inputs). :meth:`close` ends it if it is still there."""

    def __init__(self, log_url: str, settings: Any) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self._conn, theirs = ctx.Pipe()
        self.process = ctx.Process(target=_second_core, name="hftstream-second-core",
                                   args=(log_url, settings, theirs, os.getpid()), daemon=True)
        self.process.start()
        theirs.close()

    def start(self, job: tuple) -> None:
        """Hand it its job (what :func:`_second_core` unpacks)."""
        self._conn.send(job)

    def alive(self) -> bool:
        """Running, or ended well (its marks are all on the log then)."""
        return self.process.is_alive() or self.process.exitcode == 0

    def result(self, stages: list[str], timeout_s: float) -> tuple:
        """What it sent at its end; raises :class:`HftError` with its error, or with how it died."""
        return received(self._conn, self.process, f"the pipeline's second process ({', '.join(stages)})", timeout_s,
                        hint="run the same command again: every stage resumes after its last mark, nothing lost or doubled",
                        ending=" before the schedule was done")

    def close(self) -> None:
        """End the process if it is still running; close the pipe."""
        if self.process.is_alive():
            self.process.kill()
            self.process.join(10)
        self._conn.close()

    def __enter__(self) -> SecondCore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _run_two_cores(
    log: Log, serde: Serde, schedule: Schedule, names: list[str], *, stop: threading.Event | None,
    on_slice: Callable[[int, int], None] | None, policy: RetryPolicy | None, log_url: str, settings: Any,
    second_core: SecondCore | None,
) -> PipelineRun:
    second = [n for n in names if n in SECOND_CORE]
    first = [n for n in names if n not in SECOND_CORE]
    writers, consumed = _topology(log, names)
    t0, wall0 = time.monotonic(), time.time()
    core = second_core or SecondCore(log_url, settings)
    try:
        core.start((schedule, second, names, writers, consumed, policy))
        runners = _runners(log, serde, first)
        try:
            result = run_dataflow(
                runners, schedule, StageBook(log, serde, schedule.name), pipeline=names, writers=writers, consumed=consumed,
                stop=stop, on_slice=on_slice, policy=policy, peer_alive=core.alive,
            )
        except HftError:
            if core.process.is_alive():
                raise
            core.result(second, 5)  # raises the second process's own error, or how it died
            raise
        got = core.result(second, 120)
    finally:
        if second_core is None:
            core.close()
    elapsed, wall_end = time.monotonic() - t0, time.time()
    counts, seconds = got[1], got[2]
    result.stage_seconds.update(seconds)
    by_name = {r.name: r.counts for r in runners} | counts
    cores = {"first": {"stages": first, "opened_s": result.start_s, "waited_s": result.waiting_s,
                       **{k: v - wall0 for k, v in result.timeline.items()}, "ended": wall_end - wall0},
             "second": {"stages": second, "opened_s": got[3], "waited_s": got[4], **{k: v - wall0 for k, v in got[5].items()}}}
    return PipelineRun(result, {n: by_name[n] for n in names}, elapsed, output_topics(log, names), cores)


def _second_core(log_url: str, settings: Any, conn: Any, parent: int) -> None:
    """The second process: wait for the job, run its stages on the dataflow schedule, send back their counts (or the error)."""
    if not die_with_parent(parent):
        return
    from streams.log import open_log
    from streams.runtime.tuning import tune_gc_for_streaming

    tune_gc_for_streaming()
    try:
        job = conn.recv()
    except EOFError:  # the caller never got to the pipeline
        return
    schedule, stages, pipeline, writers, consumed, policy = job

    def work() -> tuple:
        log = open_log(log_url)
        try:
            serde = Serde.from_settings(settings)
            runners = _runners(log, serde, stages)
            result = run_dataflow(runners, schedule, StageBook(log, serde, schedule.name), pipeline=pipeline, writers=writers,
                                  consumed=consumed, policy=policy, peer_alive=lambda: os.getppid() == parent)
            return ({r.name: r.counts for r in runners}, result.stage_seconds, result.start_s, result.waiting_s,
                    result.timeline | {"ended": time.time()})
        finally:
            log.close()

    report_to(conn, work)
