"""Helpers shared by test files (importable as ``support``: tests/ is on sys.path via its conftest)."""

from __future__ import annotations

import time

from typing import Any

from streams.log import Reader, Record


def poll_until(reader: Reader, count: int, seconds: float = 10.0) -> list[Record]:
    """Poll until ``count`` records arrived (a fresh consumer's first fetch can take a moment); fail after ``seconds``."""
    out: list[Record] = []
    deadline = time.monotonic() + seconds
    while len(out) < count and time.monotonic() < deadline:
        out.extend(reader.poll(1000, timeout=0.3))
    assert len(out) >= count, f"got {len(out)} of {count} records in {seconds}s"
    return out


def segment_bytes(batch: list[Any], base: int = 100) -> bytes:
    """``(key, value, timestamp_ns, headers)`` items framed as one embedded segment from offset ``base`` (the Python encoder)."""
    from streams.log.embedded import segment

    return segment.py_encode_run(batch, 0, base, 0, 1 << 30, 4096, 0, segment.MIN_TS).data


def damaged(buf: bytes, data: Any) -> bytes:
    """``buf`` truncated, with a byte flipped, or with a range overwritten, as hypothesis ``data`` draws it."""
    from hypothesis import strategies as st

    out = bytearray(buf)
    kind = data.draw(st.sampled_from(["truncate", "flip", "overwrite"]))
    at = data.draw(st.integers(0, len(out) - 1))
    if kind == "truncate":
        del out[at:]
    elif kind == "flip":
        out[at] ^= data.draw(st.integers(1, 255))
    else:
        junk = data.draw(st.binary(min_size=1, max_size=16))
        out[at : at + len(junk)] = junk
    return bytes(out)
