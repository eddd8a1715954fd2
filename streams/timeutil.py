"""Timestamps are int64 nanoseconds since the Unix epoch, everywhere. These are the only conversions."""

from __future__ import annotations

import re
from datetime import datetime, timezone

_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$"
)
NS_PER_S = 1_000_000_000


def parse_time_ns(text: str | int) -> int:
    """Parse ``1767364200000000000`` (ns) or ISO-8601 with up to 9 fractional digits (``Z``/offset; naive = UTC).

    Raises :class:`ValueError` with a message saying what is accepted.
    """
    if isinstance(text, int):
        return text
    s = text.strip()
    if re.fullmatch(r"-?\d+", s):
        return int(s)
    m = _ISO.match(s)
    if not m:
        raise ValueError(f"{text!r} is not a timestamp: use integer nanoseconds or ISO-8601 like 2026-01-02T14:30:00.000123456Z")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    frac = (m.group(7) or "").ljust(9, "0")
    tz = m.group(8)
    offset_s = 0
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        offset_s = sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    whole = datetime(year, month, day, hour, minute, second, tzinfo=timezone.utc)
    return (int(whole.timestamp()) - offset_s) * NS_PER_S + int(frac)


def format_time_ns(ns: int) -> str:
    """``1767364200000123456`` -> ``2026-01-02T14:30:00.000123456Z`` (exact, no float)."""
    seconds, frac = divmod(ns, NS_PER_S)
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"
