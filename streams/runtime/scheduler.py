"""Several processors in one process, on a fixed schedule (``hftstream run all``, ``hftstream demo``).

The schedule is a plain round robin in pipeline order: each round gives every runner one
:meth:`~streams.runtime.runner.Runner.tick` (at most one batch). With ``until_idle`` it
stops after a round in which no runner processed or committed anything and every runner
is idle: every input consumed and committed, so downstream has seen all of upstream.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from streams.runtime.metrics import RunCounts
from streams.runtime.outage import OutageGuard
from streams.runtime.runner import Runner, open_all


def run_all(
    runners: Sequence[Runner],
    stop: threading.Event | None = None,
    *,
    until_idle: bool = False,
    on_round: Callable[[], None] | None = None,
) -> dict[str, RunCounts]:
    """Drive ``runners`` round-robin until ``stop`` (or idle); commit and close them all; return their counts.

    A broker outage is ridden out for every runner at once (:class:`~streams.runtime.outage.OutageGuard`,
    limit from the first runner's ``outage_limit_s``).
    """
    stop = stop or threading.Event()
    opened: list[Runner] = []
    guard = OutageGuard(runners, runners[0].options.retry_policy(), stop) if runners else None

    def round_done() -> bool:
        busy = False
        for r in runners:
            busy = r.tick() or busy
        if on_round is not None:
            on_round()
        if until_idle and not busy and all(r.idle() for r in runners):
            return True
        if not busy:
            time.sleep(0.001)
        return False

    def commit_all() -> None:
        for r in runners:
            r.commit()

    try:
        for r in runners:
            opened.append(r)  # closing one that did not finish opening is harmless
            r.idle_wait_s = 0.0  # a runner waiting for input would hold up the others: the round waits instead
        assert guard is not None or not runners
        if guard is not None:
            guard.call(lambda: open_all(runners))  # a broker down at start is an outage too
        while not stop.is_set() and guard is not None:
            if guard.call(round_done):
                break
        if guard is not None:
            guard.call(commit_all)
    finally:
        for r in reversed(opened):
            r.close()
    return {r.name: r.counts for r in runners}
