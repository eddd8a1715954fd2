"""Live runs on two cores: some of the processors in a second process (``run all --cores 2``, the demo's latency phase).

In a live run every processor is its own exactly-once unit (its own group, transactional id, state and
commits: DECISIONS #24), so splitting them between two processes changes nothing they guarantee; what
each decides may depend on what had arrived, as in any live run (issue 13 #6). The second process runs
:func:`~streams.runtime.scheduler.run_all` over its processors until the first one sets the shared stop
event, then commits, closes and sends back its counts. It dies with the first (``PR_SET_PDEATHSIG``).

The lockstep demo's second process is :class:`streams.demo.pipeline.SecondCore`: it also needs the
stage marks that keep the digest (DECISIONS #61).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from typing import Any

from streams.errors import HftError
from streams.runtime.metrics import RunCounts

# The processors off the order path: normalize only reads the venues, the ledger only writes what no stage reads.
SECOND_CORE = ("normalize", "ledger")


class LiveSecondProcess:
    """``names`` (processors, by registry name, default configuration) run live in a second process."""

    def __init__(self, log_url: str, settings: Any, names: list[str], options: Any, *, metrics_port: int = 0) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.names = list(names)
        self._stop = ctx.Event()
        self._conn, theirs = ctx.Pipe(duplex=False)
        self.process = ctx.Process(
            target=_live_child, name="hftstream-second-core", daemon=True,
            args=(log_url, settings, self.names, options, metrics_port, self._stop, theirs, os.getpid()),
        )
        self.process.start()
        theirs.close()

    def alive(self) -> bool:
        return self.process.is_alive()

    def stop(self) -> None:
        """Ask it to finish the batch in flight, commit and exit."""
        self._stop.set()

    def join(self, timeout_s: float = 120.0) -> dict[str, RunCounts]:
        """Stop it and return its counts; raises :class:`HftError` with its error or how it died."""
        self.stop()
        got = received(self._conn, self.process, f"the second process ({', '.join(self.names)})", timeout_s,
                       hint="run the same command again: each processor resumes from its last commit")
        return got[1]

    def close(self) -> None:
        if self.process.is_alive():
            self.process.kill()
            self.process.join(10)
        self._conn.close()


def die_with_parent(parent: int) -> bool:
    """Linux: have the kernel SIGKILL this process when its parent (pid ``parent``) dies. False when it is already
    gone (it died before this process got here: the signal would never come), and the caller should exit."""
    import ctypes
    import os
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # elsewhere the waits notice that the parent's pid changed
    return os.getppid() == parent


def received(conn: Any, process: Any, what: str, timeout_s: float, *, hint: str, ending: str = "") -> tuple:
    """What a second process sent at its end (``("ok", ...)``, see :func:`report_to`); raises :class:`HftError`
    with its own error, or with how it died (``what`` names it, ``ending`` ends that sentence)."""
    try:
        got = conn.recv() if conn.poll(timeout_s) else None
    except EOFError:  # it died without a word (SIGKILL)
        got = None
    if got is not None and got[0] == "ok":
        process.join(30)
        return got
    if got is not None:
        raise HftError(f"{what} failed: {got[1]}", hint=got[2] or None)
    process.join(5)
    code = process.exitcode
    how = ("is still running but sent no result" if code is None else
           f"was killed by signal {-code}" if code < 0 else f"exited with code {code}")
    raise HftError(f"{what} {how}{ending}", hint=hint)


def report_to(conn: Any, work: Callable[[], tuple]) -> None:
    """Run ``work()`` in a second process and send its result as ``("ok", *result)``, or its error as
    ``("error", message, hint)`` (an unexpected one is raised again after it was sent: a traceback for the log)."""
    try:
        conn.send(("ok", *work()))
    except HftError as exc:
        conn.send(("error", str(exc), getattr(exc, "hint", "") or ""))
    except BaseException as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}", ""))
        raise


def _live_child(
    log_url: str, settings: Any, names: list[str], options: Any, metrics_port: int, stop: Any, conn: Any, parent: int,
) -> None:
    import signal

    if not die_with_parent(parent):
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the first process decides
    from streams.log import open_log
    from streams.runtime.lookup import default_config, registry
    from streams.runtime.metrics import RuntimeMetrics, serve_metrics
    from streams.runtime.runner import Runner
    from streams.runtime.scheduler import run_all
    from streams.runtime.tuning import tune_gc_for_streaming
    from streams.serde import Serde

    tune_gc_for_streaming()

    def work() -> tuple:
        from prometheus_client import CollectorRegistry

        log = open_log(log_url)
        try:
            serde = Serde.from_settings(settings)
            registry_ = CollectorRegistry()
            runners = [Runner(log, serde, registry()[n], default_config(registry()[n]), options,
                              metrics=RuntimeMetrics(n, registry_)) for n in names]
            if metrics_port:
                serve_metrics(metrics_port, registry_)
            return (run_all(runners, stop),)
        finally:
            log.close()

    report_to(conn, work)
