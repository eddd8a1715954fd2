"""Fault injection for crash tests: ``HFTSTREAM_FAULT=point:n[,point:n]`` kills the process at a named point.

``HFTSTREAM_FAULT_ABORT=point:n`` instead makes the n-th arrival raise
:class:`~streams.errors.TransactionAbortableError`, as a broker would, so tests can force
aborts and watch the runtime rewind.

The runtime calls :func:`fault` at the moments a crash is most interesting:
``after-produce`` (outputs in the open transaction, nothing committed), ``after-flush``
(the transaction's records are on the broker / in the log, uncommitted), ``before-commit``
(manifests produced, commit not started), ``after-commit`` (committed, the runtime's own
bookkeeping not yet updated); the lockstep schedule adds ``before-mark`` (a slice committed
by every stage, its mark not yet written) and, on two cores, ``before-stage-mark`` (one stage's slice
committed, its stage mark not yet written; either process); on the embedded log, ``txn-logged``, ``txn-marked``,
``txn-appended``, ``txn-committed`` and ``txn-partly-visible`` are the steps *inside* a
transaction's commit (:data:`streams.log.embedded.transactional.STEPS`: after the transaction
record, after the partitions point at it, after the data, after the commit point, after the first
partition became visible; DECISIONS #53). The n-th time a named point is reached the process sends
itself SIGKILL: no cleanup, no atexit, exactly like ``kill -9``. Unset (production), a call
is one dict lookup.
"""

from __future__ import annotations

import os
import signal

from streams.errors import TransactionAbortableError

_ENV = "HFTSTREAM_FAULT"
_ENV_ABORT = "HFTSTREAM_FAULT_ABORT"


def _parse(spec: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, n = part.partition(":")
        out[name] = int(n or 1)
    return out


_armed: dict[str, int] = _parse(os.environ.get(_ENV, ""))
_aborts: dict[str, int] = _parse(os.environ.get(_ENV_ABORT, ""))


def _due(table: dict[str, int], point: str) -> bool:
    left = table.get(point)
    if left is None:
        return False
    table[point] = left - 1
    return left == 1


def armed(point: str) -> bool:
    """True when ``point`` is armed (the runtime then does extra work to make the fault meaningful)."""
    return point in _armed or point in _aborts


def fault(point: str) -> None:
    """SIGKILL this process (or raise an abortable error) if ``point`` is armed and this is its n-th arrival."""
    if not _armed and not _aborts:
        return
    if _due(_armed, point):
        os.kill(os.getpid(), signal.SIGKILL)
    if _due(_aborts, point):
        raise TransactionAbortableError(f"injected abort at {point} ({_ENV_ABORT})")


def _install_commit_steps() -> None:
    """Route the embedded log's commit steps to :func:`fault` when a ``txn-*`` point is armed (else: untouched)."""
    if any(p.startswith("txn-") for p in (*_armed, *_aborts)):
        from streams.log.embedded import transactional

        transactional.STEP_HOOK = lambda step: fault(f"txn-{step}")


_install_commit_steps()
