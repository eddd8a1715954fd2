"""The lockstep schedule on two cores: each process steps its stages as soon as their inputs are there.

:func:`~streams.runtime.lockstep.run_lockstep` steps every stage through slice ``k`` in pipeline
order, one thread. What stage ``S`` sees of an input at slice ``k`` is then exactly what its
writer ``W`` had committed by then: ``W``'s outputs after *its* slice ``k`` when ``W`` comes
before ``S`` in the pipeline, after its slice ``k - 1`` when it comes after (a feedback input:
risk reads the fills matching makes). :func:`run_dataflow` keeps that rule and drops the
thread: the stages are split between processes (DECISIONS #61), and

* after each slice a stage writes a **stage mark** (``runtime.schedule``, key ``<schedule>/<stage>``)
  with where each of its output partitions ended after its commit;
* stage ``S`` may step slice ``k`` once every writer of its inputs has marked the slice the rule
  names, and it is **capped** at those ends (:meth:`~streams.runtime.merge.Merger.set_cap`): records a
  writer made later, even with older timestamps, wait for a later slice as they would have;
* a process steps whichever of its stages can go (normalize runs ahead of the order path, the
  ledger trails it), and waits only when none can;
* final rounds (no horizon) go on until a round in which no stage, in either process, was busy; a
  stage starts final round ``r + 1`` once every stage has marked round ``r``.

So every stage's inputs, slice by slice, are the one-process run's, and so are its outputs: the
digest is the same (tested). **Crash safety** is per stage: each slice is one transaction and its
mark follows the commit; a rerun resumes each stage after its own last mark (a stage killed between
its commit and its mark steps the slice again and finds nothing before its horizon). A stage's
mark for "slice -1" (its ends before it stepped anything) is written before its first step.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from streams.errors import ConfigError, HftError
from streams.log.base import Log
from streams.runtime.faults import fault
from streams.runtime.lockstep import MARK_SCHEMA, SCHEDULE_TOPIC, LockstepResult, Schedule
from streams.runtime.outage import OutageGuard, RetryPolicy
from streams.runtime.runner import Runner, open_all
from streams.serde import Serde

Ends = dict[str, list[int]]  # topic -> end offset per partition
MIN_PAUSE_S, MAX_PAUSE_S = 0.0002, 0.004  # waiting for the other process: first pause, doubling up to this


@dataclass(frozen=True)
class StageMark:
    """Stage ``stage`` finished slice ``slice`` (-1: before its first) with its outputs ending at ``ends``."""

    stage: str
    slice: int
    ends: Ends
    busy: bool


class StageBook:
    """The stage marks of one schedule: this process's, as it writes them, and the other process's, as read."""

    def __init__(self, log: Log, serde: Serde, name: str) -> None:
        self.log, self.serde, self.name = log, serde, name
        self.marks: dict[str, dict[int, StageMark]] = {}
        self._reader = None
        self._producer = None
        self._prefix = f"{name}/".encode()

    def last(self, stage: str) -> int | None:
        """The last slice ``stage`` marked, or None."""
        done = self.marks.get(stage)
        return max(done) if done else None

    def get(self, stage: str, k: int) -> StageMark | None:
        """``stage``'s mark of slice ``k``, if written."""
        return self.marks.get(stage, {}).get(k)

    def refresh(self) -> bool:
        """Read the marks written since the last call; True when there were any."""
        if self._reader is None:
            low, _ = self.log.watermarks(SCHEDULE_TOPIC, 0)
            self._reader = self.log.reader([(SCHEDULE_TOPIC, 0, low)])
        new = False
        while batch := self._reader.poll(10_000, timeout=0.0):
            for rec in batch:
                if rec.value is None or rec.key is None or not rec.key.startswith(self._prefix):
                    continue
                v = self.serde.decode(rec.value).value
                if v.get("stage") is None or v.get("ends") is None:
                    continue
                self._note(StageMark(v["stage"], v["slice"], json.loads(v["ends"]), v["busy"]))
                new = True
        return new

    def write(self, schedule: Schedule, mark: StageMark, ts_ns: int) -> None:
        """Record ``mark`` on the log (flushed) and here."""
        if self._producer is None:
            self._producer = self.log.producer()
        k = mark.slice
        value = {
            "schedule": self.name, "slice": k, "slices": schedule.slices,
            "horizon_ms": schedule.horizon(k) if 0 <= k < schedule.slices else None,
            "params": schedule.params_json(), "busy": mark.busy, "stage": mark.stage,
            "ends": json.dumps(mark.ends, sort_keys=True, separators=(",", ":")),
        }
        data = self.serde.encode(MARK_SCHEMA, value, topic=SCHEDULE_TOPIC)
        try:
            self._producer.produce(SCHEDULE_TOPIC, data, key=self._prefix + mark.stage.encode(), timestamp_ns=ts_ns)
            self._producer.flush()
        except Exception:
            self._producer = None
            raise
        self._note(mark)

    def _note(self, mark: StageMark) -> None:
        self.marks.setdefault(mark.stage, {})[mark.slice] = mark

    def close(self) -> None:
        """Close the reader and the producer."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._producer is not None:
            self._producer.close()
            self._producer = None


def writers_of(runners_by_name: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """``{topic: stage}`` for every output topic of the pipeline's stages (``{stage: outputs}``).

    Raises :class:`ConfigError` when two stages write one topic: which of them a reader waits for
    would be undefined.
    """
    out: dict[str, str] = {}
    for stage, outputs in runners_by_name.items():
        for t in outputs:
            if t in out and out[t] != stage:
                raise ConfigError(f"topics {t!r} is written by both {out[t]!r} and {stage!r}",
                                  hint="run the pipeline on one core (--cores 1)")
            out[t] = stage
    return out


def run_dataflow(
    runners: Sequence[Runner],
    schedule: Schedule,
    book: StageBook,
    *,
    pipeline: Sequence[str],
    writers: dict[str, str],
    consumed: set[str],
    stop: threading.Event | None = None,
    on_slice: Callable[[int, int], None] | None = None,
    peer_alive: Callable[[], bool] = lambda: True,
    max_rounds: int = 1000,
    policy: RetryPolicy | None = None,
) -> LockstepResult:
    """Step ``runners`` (this process's stages) through ``schedule`` and its final rounds (module docstring).

    ``pipeline``: every stage of the pipeline (both processes) in pipeline order; ``writers``: which stage
    writes each topic (:func:`writers_of`); ``consumed``: every topic some stage of the pipeline reads. ``peer_alive()`` is asked while waiting: False stops the run
    with an error (the other process died). Opens and closes the runners and ``book``.
    """
    stop = stop or threading.Event()
    result = LockstepResult()
    order = {name: i for i, name in enumerate(pipeline)}
    guard = OutageGuard(runners, policy or (runners[0].options.retry_policy() if runners else RetryPolicy()), stop)
    total = schedule.slices
    try:
        guard.call(lambda: open_all(runners))
        guard.call(book.refresh)
        nxt: dict[str, int] = {}
        # the outputs some stage reads (only they are capped), with their partition counts: fixed during a run
        read = {r.name: [(t, r.log.partitions(t)) for t in r.outputs if t in writers and writers[t] == r.name and t in consumed]
                for r in runners}
        deps: dict[str, list[tuple[str, str, int]]] = {}  # stage -> (input topic, writer, slice lag)
        for r in runners:
            last = book.last(r.name)
            if last is None:
                guard.call(lambda r=r: book.write(schedule, StageMark(r.name, -1, _ends(r, read[r.name]), False), schedule.start_ms * 1_000_000))
                last = -1
            nxt[r.name] = last + 1
            deps[r.name] = [(t, w, 0 if order[w] < order[r.name] else 1)
                            for t in r.plan.partitions if (w := writers.get(t)) is not None]
        result.resumed_at = min(nxt.values(), default=0)
        lead = runners[0].name if runners else ""
        pause = MIN_PAUSE_S
        result.timeline["called"] = time.time()
        while True:
            if stop.is_set():
                result.interrupted = True
                return result
            stepped = False
            for r in runners:
                k = nxt[r.name]
                if k - total >= max_rounds:
                    raise ConfigError(
                        f"schedule {schedule.name!r}: still busy after {max_rounds} final rounds",
                        hint="a processor keeps answering its own output (a feedback loop that never settles): check its outputs",
                    )
                if k > total and any(book.get(s, k - 1) is None for s in pipeline):
                    continue  # a final round starts once every stage has done the one before (a stage with no inputs from the others would run on forever)
                needed = [(t, book.get(w, k - lag)) for t, w, lag in deps[r.name]]
                if any(m is None for _, m in needed):
                    continue
                caps = {(t, p): end for t, m in needed for p, end in enumerate(m.ends[t])}  # type: ignore[union-attr]
                horizon = schedule.horizon(k) if k < total else None
                retries = guard.retries
                result.timeline.setdefault("first_step", time.time())
                busy = guard.call(lambda r=r, c=caps, h=horizon: _step(r, c, h, result.stage_seconds))
                busy = busy or guard.retries != retries
                ts_ns = (horizon if horizon is not None else schedule.horizon(total - 1)) * 1_000_000
                fault("before-stage-mark")
                guard.call(lambda r=r, k=k, b=busy, t=ts_ns: book.write(schedule, StageMark(r.name, k, _ends(r, read[r.name]), b), t))
                nxt[r.name] = k + 1
                stepped = True
                if r.name == lead and k < total:
                    result.slices_run += 1
                    if on_slice is not None:
                        on_slice(k + 1, total)
            result.outages = guard.outages
            if stepped:
                result.timeline["last_step"] = time.time()
                pause = MIN_PAUSE_S
            quiet = _quiet_round(book, pipeline, total)
            if quiet is not None:
                result.rounds = quiet - total + 1  # as one core counts them (a stage may have stepped a no-op round past it)
                return result
            if not stepped:
                t_wait = time.monotonic()
                new = guard.call(book.refresh)
                result.waiting_s += time.monotonic() - t_wait
                if new:
                    continue
                if not peer_alive():
                    raise HftError(
                        "the pipeline's other process stopped before the schedule was done",
                        hint="see its error above; run the same command again: every stage resumes after its last mark",
                    )
                time.sleep(pause)
                pause = min(pause * 2, MAX_PAUSE_S)  # a stage that trails (the ledger) need not spin on the other core
                result.waiting_s += time.monotonic() - t_wait
    finally:
        for r in reversed(runners):
            r.close()
        book.close()


def _quiet_round(book: StageBook, pipeline: Sequence[str], total: int) -> int | None:
    """The first final round that every stage marked, none of them busy (None: not yet)."""
    rounds = [k for k, m in book.marks.get(pipeline[0], {}).items() if k >= total and not m.busy] if pipeline else []
    for k in sorted(rounds):
        marks = [book.get(s, k) for s in pipeline]
        if all(m is not None and not m.busy for m in marks):
            return k
    return None


def _ends(r: Runner, topics: Sequence[tuple[str, int]]) -> Ends:
    """Where each partition of ``topics`` (``r``'s outputs that a stage reads, with their partition counts) ends
    (read_committed: after its commit, its records are below)."""
    log = r.log
    ask = getattr(log, "quiet_ends", None) or log.end_offsets
    out: Ends = {}
    for t, n in topics:
        ends = ask([(t, p) for p in range(n)])
        out[t] = [ends[(t, p)] for p in range(n)]
    return out


def _step(r: Runner, caps: dict, horizon: int | None, seconds: dict[str, float]) -> bool:
    t0 = time.perf_counter()
    r.set_caps(caps)
    r.set_horizons({} if horizon is None else {t: horizon for t in r.plan.partitions})
    busy = r.step_to_horizon()
    seconds[r.name] = seconds.get(r.name, 0.0) + time.perf_counter() - t0
    return busy
