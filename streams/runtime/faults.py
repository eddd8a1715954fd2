"""Fault injection for crash tests: ``HFTSTREAM_FAULT=point:n[,point:n]`` kills the process at a named point.

The runtime calls :func:`fault` at the moments a crash is most interesting:
``after-produce`` (outputs in the open transaction, nothing committed), ``before-commit``
(manifests produced, commit not started), ``after-commit`` (committed, the runtime's own
bookkeeping not yet updated). The n-th time a named point is reached the process sends
itself SIGKILL: no cleanup, no atexit, exactly like ``kill -9``. Unset (production), a call
is one dict lookup.
"""

from __future__ import annotations

import os
import signal

_ENV = "HFTSTREAM_FAULT"


def _parse(spec: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, n = part.partition(":")
        out[name] = int(n or 1)
    return out


_armed: dict[str, int] = _parse(os.environ.get(_ENV, ""))


def fault(point: str) -> None:
    """SIGKILL this process if ``point`` is armed and this is its n-th arrival."""
    if not _armed:
        return
    left = _armed.get(point)
    if left is None:
        return
    if left <= 1:
        os.kill(os.getpid(), signal.SIGKILL)
    _armed[point] = left - 1
