"""Timestamps are int64 nanoseconds since the Unix epoch, everywhere. These are the only conversions.

All arithmetic is on integers (no float seconds), so every nanosecond survives a round trip.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

NS_PER_S = 1_000_000_000
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_ISO_UTC = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?(Z|[+-][0-9]{2}:[0-9]{2})",
    re.ASCII,
)
_FIX_TIME = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})-([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?", re.ASCII)


def check_int64(value: int, what: str = "value") -> int:
    """Return ``value`` if it fits a signed 64-bit integer, else raise :class:`ValueError`."""
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"{what} {value} does not fit in int64")
    return value


def _civil_to_ns(y: str, mo: str, d: str, h: str, mi: str, s: str, frac: str | None, text: str) -> int:
    try:
        day = date(int(y), int(mo), int(d)).toordinal() - _EPOCH_ORDINAL
    except ValueError:
        raise ValueError(f"{text!r} is not a valid calendar date") from None
    hour, minute, second = int(h), int(mi), int(s)
    if hour > 23 or minute > 59 or second > 59:
        raise ValueError(f"{text!r} has an out-of-range time of day")
    seconds = day * 86_400 + hour * 3_600 + minute * 60 + second
    return seconds * NS_PER_S + int((frac or "").ljust(9, "0"))


def parse_iso_ns(text: str) -> int:
    """Strict ISO-8601: ``"2026-01-02T14:30:00.000123456Z"`` -> ns (1 to 9 fractional digits, ``Z`` or ``+hh:mm``)."""
    if type(text) is str:
        ns = iso_ns_fast(text)
        if ns is not None:
            return ns
    return _strict_iso_ns(text)


def _strict_iso_ns(text: str) -> int:
    """:func:`parse_iso_ns` by the regular expression alone (every form, every error message)."""
    if not isinstance(text, str):
        raise ValueError(f"timestamp must be a string, got {type(text).__name__}")
    m = _ISO_UTC.fullmatch(text)
    if m is None:
        raise ValueError(f"{text!r} is not an ISO-8601 timestamp like 2026-01-02T14:30:00.000123456Z")
    ns = _civil_to_ns(*m.groups()[:7], text=text)
    tz = m.group(8)
    if tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        ns -= sign * (int(tz[1:3]) * 3_600 + int(tz[4:6]) * 60) * NS_PER_S
    return check_int64(ns, f"timestamp {text!r}")


def format_iso_ns(ns: int) -> str:
    """ns since the epoch -> ``"2026-01-02T14:30:00.000123456Z"`` (always 9 fractional digits, UTC)."""
    seconds, frac = divmod(ns, NS_PER_S)
    day, rem = divmod(seconds, 86_400)
    d = date.fromordinal(day + _EPOCH_ORDINAL)
    h, rem = divmod(rem, 3_600)
    mi, s = divmod(rem, 60)
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{h:02d}:{mi:02d}:{s:02d}.{frac:09d}Z"


def floor_day_ns(ns: int) -> int:
    """``ns`` rounded down to 00:00:00 UTC of its day."""
    return ns - ns % (86_400 * NS_PER_S)


def parse_fix_time(text: str) -> int:
    """FIX UTCTimestamp ``"20260102-14:30:00.000123456"`` (0 to 9 fractional digits) -> ns since the epoch."""
    if type(text) is str:
        ns = fix_time_fast(text)
        if ns is not None:
            return ns
    return _strict_fix_time(text)


def _strict_fix_time(text: str) -> int:
    """:func:`parse_fix_time` by the regular expression alone (every form, every error message)."""
    m = _FIX_TIME.fullmatch(text)
    if m is None:
        raise ValueError(f"{text!r} is not a FIX UTCTimestamp like 20260102-14:30:00.000123456")
    return check_int64(_civil_to_ns(*m.groups(), text=text), f"timestamp {text!r}")


# -- fast paths --------------------------------------------------------------------------------
# A feed's timestamps share their date and time of day, down to the second, with their neighbours:
# the strict parser converts each second once (``"2026-01-02T14:30:00"`` -> ns, kept in a bounded
# cache), and only the fraction is read per timestamp, from its fixed position. A string of any
# other shape returns ``None`` and goes to the strict parser, which alone raises (so every error
# message stays the strict parser's).

_FRAC_NS = (0, 100_000_000, 10_000_000, 1_000_000, 100_000, 10_000, 1_000, 100, 10, 1)  # digit k -> ns per unit
_SECONDS_MAX = 4096  # cached seconds per format: a bound on memory (a miss costs one strict parse)
_iso_seconds: dict[str, int] = {}
_fix_seconds: dict[str, int] = {}


def _second_ns(cache: dict[str, int], key: str, strict: Callable[[str], int], suffix: str) -> int | None:
    """ns of the second ``key`` by the strict parser of ``key + suffix``, or ``None`` if that is not valid."""
    try:
        ns = strict(key + suffix)
    except ValueError:
        return None
    if len(cache) >= _SECONDS_MAX:
        cache.clear()
    cache[key] = ns
    return ns


def iso_ns_fast(text: str) -> int | None:
    """``parse_iso_ns(text)`` for ``YYYY-MM-DDThh:mm:ss.f...Z`` (1 to 9 digits), else ``None`` (other forms, or invalid)."""
    n = len(text)
    if 22 <= n <= 30 and text[19] == "." and text[-1] == "Z":
        key = text[:19]
        base = _iso_seconds.get(key)
        if base is None:
            base = _second_ns(_iso_seconds, key, _strict_iso_ns, "Z")
        frac = text[20:-1]
        if base is not None and frac.isdigit() and frac.isascii():
            ns = base + int(frac) * _FRAC_NS[n - 21]
            if INT64_MIN <= ns <= INT64_MAX:
                return ns
    return None


def fix_time_fast(text: str) -> int | None:
    """``parse_fix_time(text)`` for ``YYYYMMDD-hh:mm:ss.f...`` (1 to 9 digits), else ``None`` (other forms, or invalid)."""
    n = len(text)
    if 19 <= n <= 27 and text[17] == ".":
        key = text[:17]
        base = _fix_seconds.get(key)
        if base is None:
            base = _second_ns(_fix_seconds, key, _strict_fix_time, "")
        frac = text[18:]
        if base is not None and frac.isdigit() and frac.isascii():
            ns = base + int(frac) * _FRAC_NS[n - 18]
            if INT64_MIN <= ns <= INT64_MAX:
                return ns
    return None


def format_fix_time(ns: int) -> str:
    """ns since the epoch -> FIX UTCTimestamp with nanoseconds, ``"20260102-14:30:00.000123456"``."""
    iso = format_iso_ns(ns)
    return f"{iso[0:4]}{iso[5:7]}{iso[8:10]}-{iso[11:29]}"


def parse_time_ns(text: str | int) -> int:
    """What a user may type for a time: integer ns, or ISO-8601 (a space for ``T`` and no zone, meaning UTC, allowed).

    Raises :class:`ValueError` with a message saying what is accepted.
    """
    if isinstance(text, int):
        return text
    s = text.strip()
    if re.fullmatch(r"-?[0-9]+", s):
        return check_int64(int(s), "timestamp")
    s = s.replace(" ", "T", 1)
    if not re.search(r"(Z|[+-][0-9]{2}:?[0-9]{2})$", s):
        s += "Z"
    s = re.sub(r"([+-][0-9]{2})([0-9]{2})$", r"\1:\2", s)
    try:
        return parse_iso_ns(s)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a timestamp: use integer nanoseconds or ISO-8601 like 2026-01-02T14:30:00.000123456Z"
        ) from None
