"""Helpers shared by test files (importable as ``support``: tests/ is on sys.path via its conftest)."""

from __future__ import annotations

import time

from streams.log import Reader, Record


def poll_until(reader: Reader, count: int, seconds: float = 10.0) -> list[Record]:
    """Poll until ``count`` records arrived (a fresh consumer's first fetch can take a moment); fail after ``seconds``."""
    out: list[Record] = []
    deadline = time.monotonic() + seconds
    while len(out) < count and time.monotonic() < deadline:
        out.extend(reader.poll(1000, timeout=0.3))
    assert len(out) >= count, f"got {len(out)} of {count} records in {seconds}s"
    return out
