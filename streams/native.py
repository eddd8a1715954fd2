"""The native core (Rust, PyO3): which path is active, and the module itself when it is.

The crate in ``native/`` builds the private extension ``streams._native`` (DECISIONS #56). Every
native function sits behind a Python function that stays the reference and the fallback:
``streams.log.embedded.segment`` (frame parsing, framing) and ``streams.serde.codec`` (the Avro
codec) call :data:`NATIVE` when it is not ``None`` and their Python code otherwise (the venue
formats' fast paths in ``connectors.venues`` too, DECISIONS #63).

``HFTSTREAM_NATIVE=0`` forces pure Python (read once, at import). ``hftstream --version`` prints
:func:`status`.
"""

from __future__ import annotations

import os
from types import ModuleType

ABI = 3  # must equal the crate's ABI constant (native/src/lib.rs); a stale build is ignored
_OFF = ("0", "false", "no", "off")


def _load() -> tuple[ModuleType | None, str]:
    if os.environ.get("HFTSTREAM_NATIVE", "1").strip().lower() in _OFF:
        return None, "native core disabled by HFTSTREAM_NATIVE=0: pure Python"
    try:
        from streams import _native  # type: ignore[attr-defined]
    except ImportError:
        return None, "native core not built: pure Python (install a Rust toolchain, then rerun `make setup`)"
    if getattr(_native, "ABI", None) != ABI:
        return None, f"native core stale (ABI {getattr(_native, 'ABI', '?')}, need {ABI}): pure Python; rerun `make setup`"
    return _native, "native core built and active"


NATIVE, _STATUS = _load()


def status() -> str:
    """One line: native built and active / disabled by the environment / not built (or stale)."""
    return _STATUS


def active() -> bool:
    """True when the native core is in use."""
    return NATIVE is not None
