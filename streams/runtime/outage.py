"""Riding out a broker outage: retry with backoff up to a limit, resume exactly-once, then give up clearly.

A broker restart (a SIGKILL, a rolling upgrade, a leader election) makes the runtime's Kafka
calls fail with retriable errors: a commit that timed out, an offset send to a coordinator that
is not there, a delivery that expired. :class:`OutageGuard` wraps one round of work (a
:meth:`~streams.runtime.runner.Runner.tick`, a round of ``run all``, the final commit):

* an *outage error* (:func:`is_outage`) starts or continues an outage: it is logged, counted
  in the metrics (``hftstream_broker_outage``, ``hftstream_broker_outage_seconds``,
  ``hftstream_outage_retries_total``, ``hftstream_outages_total``) and written to the
  processor's run file (:mod:`streams.runtime.runfile`, read by ``hftstream status``);
* it waits (:class:`RetryPolicy`: exponential backoff, capped, no wall-clock reads outside
  the shell), then *reopens* every runner: a new transactional producer with the same
  transactional id (its ``init_transactions()`` aborts the transaction the outage left open,
  or settles a commit whose outcome was unknown) and every task rebuilt from its last commit
  (snapshot + manifests, inputs re-positioned at the group's committed offsets). Nothing
  uncommitted was visible, so re-processing it doubles nothing (DECISIONS #24, #49);
* the first round that succeeds ends the outage (logged, gauge back to 0);
* past :attr:`RetryPolicy.limit_s` the last error is raised as a
  :class:`~streams.errors.BrokerUnavailableError` with a hint: the CLI exits 2.

A fenced producer or a fatal client error is an outage error only while the broker is, or was
within :data:`FENCE_WINDOW_S`, unreachable: a transaction the outage held open past
``transaction.timeout.ms`` is aborted by the coordinator, which fences its producer. Fenced
with the broker healthy means another instance opened the same transactional id: that still
stops the process, as before (re-opening would fence the other one and start a ping-pong).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from streams.errors import (
    BrokerUnavailableError,
    HftError,
    KafkaClientError,
    LogLockedError,
    ProducerFencedError,
    RetryableError,
)

if TYPE_CHECKING:
    from streams.runtime.runner import Runner

logger = logging.getLogger("streams.runtime")
T = TypeVar("T")
DEFAULT_LIMIT_S = 300.0
FENCE_WINDOW_S = 60.0  # transaction.timeout.ms (20 s) + the coordinator's abort check (10 s) + margin
LIMIT_ENV = "HFTSTREAM_OUTAGE_LIMIT_S"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long and how often to retry through an outage: ``first_s * factor**(n-1)``, capped at ``max_s``."""

    limit_s: float = DEFAULT_LIMIT_S
    first_s: float = 0.5
    max_s: float = 5.0
    factor: float = 2.0

    def delay(self, attempt: int) -> float:
        """The wait before retry ``attempt`` (1-based), without the limit."""
        return min(self.max_s, self.first_s * self.factor ** max(0, attempt - 1))

    def next_wait(self, attempt: int, elapsed_s: float) -> float | None:
        """The wait before retry ``attempt`` of an outage ``elapsed_s`` old; ``None`` once the limit is spent."""
        left = self.limit_s - elapsed_s
        if left <= 0:
            return None
        return min(self.delay(attempt), left)


def is_outage(exc: BaseException, broker_down_recently: bool) -> bool:
    """True when ``exc`` is a failure a broker restart explains (see the module docstring)."""
    if isinstance(exc, LogLockedError):  # another process holds the embedded log: not an outage
        return False
    if isinstance(exc, RetryableError):
        return True
    if isinstance(exc, (ProducerFencedError, KafkaClientError)):
        return broker_down_recently
    return False


@dataclass
class Outage:
    """One outage in progress (monotonic clock) and what the guard saw of it."""

    started: float
    started_wall_ns: int
    attempts: int = 0
    last_error: str = ""


class OutageGuard:
    """Runs rounds of work for ``runners``, riding out broker outages (module docstring).

    ``clock``, ``wall_ns`` and ``wait`` are the shell's clocks (tests pass fakes); ``wait`` returns
    True when ``stop`` was set while waiting.
    """

    def __init__(
        self,
        runners: Sequence[Runner],
        policy: RetryPolicy,
        stop: threading.Event,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_ns: Callable[[], int] = time.time_ns,
        wait: Callable[[float], bool] | None = None,
    ) -> None:
        self.runners = list(runners)
        self.policy = policy
        self.stop = stop
        self._clock = clock
        self._wall_ns = wall_ns
        self._wait = wait or stop.wait
        self.outage: Outage | None = None
        self.outages = 0  # outages ridden out (or in progress)
        self.retries = 0
        self._ended_at: float | None = None
        self._reopen = False

    def call(self, work: Callable[[], T]) -> T:
        """``work()``, retried through an outage; raises the last error past the limit or on stop."""
        while True:
            try:
                if self._reopen:
                    for r in self.runners:
                        r.reopen()
                    self._reopen = False
                result = work()
            except HftError as exc:
                if not is_outage(exc, self._broker_down_recently()):
                    raise
                self._failed(exc)
                self._reopen = True
                continue
            if self.outage is not None:
                self._recovered()
            return result

    # -- bookkeeping --------------------------------------------------------------------

    def _broker_down_recently(self) -> bool:
        if self.outage is not None:
            return True
        now = self._clock()
        if self._ended_at is not None and now - self._ended_at < FENCE_WINDOW_S:
            return True
        seen = getattr(self.runners[0].log, "seen_unavailable_within", None) if self.runners else None
        return bool(seen and seen(FENCE_WINDOW_S))

    def _failed(self, exc: HftError) -> None:
        now = self._clock()
        o = self.outage
        if o is None:
            o = self.outage = Outage(now, self._wall_ns())
            self.outages += 1
            logger.warning(
                "broker outage: %s; retrying with backoff for up to %.0f s (--outage-limit)", exc, self.policy.limit_s
            )
            for r in self.runners:
                r.metrics.outage_started()
        o.attempts += 1
        o.last_error = str(exc)
        self.retries += 1
        elapsed = now - o.started
        for r in self.runners:
            r.metrics.outage_retry(elapsed)
            r.runfile.outage(o.started_wall_ns, o.attempts, elapsed, self.policy.limit_s, o.last_error)
        wait = self.policy.next_wait(o.attempts, elapsed)
        if wait is None:
            raise BrokerUnavailableError(
                f"gave up after a {elapsed:.0f} s broker outage ({o.attempts} attempts; limit {self.policy.limit_s:g} s); "
                f"last error: {exc}",
                hint=f"bring the broker back (RUNBOOK.md 'Kafka is unreachable') and run the same command again: it resumes "
                f"from the last commit, nothing lost or doubled; ride out longer outages with --outage-limit SECONDS "
                f"or {LIMIT_ENV}",
            ) from None
        logger.info("broker outage for %.1f s (attempt %d): %s; next try in %.1f s", elapsed, o.attempts, exc, wait)
        if self._wait(wait):
            raise BrokerUnavailableError(
                f"stopped during a broker outage ({elapsed:.0f} s, {o.attempts} attempts); last error: {exc}",
                hint="nothing uncommitted became visible: the next run resumes from the last commit",
            ) from None

    def _recovered(self) -> None:
        o = self.outage
        assert o is not None
        now = self._clock()
        duration = now - o.started
        logger.warning("broker outage over after %.1f s (%d attempts): resumed from the last commit", duration, o.attempts)
        for r in self.runners:
            r.metrics.outage_ended()
            r.runfile.recovered(o.started_wall_ns, o.attempts, duration, self.policy.limit_s)
        self.outage = None
        self._ended_at = now
