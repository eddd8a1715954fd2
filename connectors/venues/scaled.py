"""Exact conversions between venue text and the pipeline's integers.

Prices and sizes travel between venues as decimal strings (``"187.2500"``) and
inside hftstream as scaled int64 (``1872500`` at scale 4). Timestamps travel as
ISO-8601 or FIX UTCTimestamp text and live as int64 nanoseconds since the epoch.
Every conversion here is integer/string arithmetic: no float ever touches money
or time, so ``parse(format(x)) == x`` for every representable value.

Parsing is strict on purpose (ASCII digits only, no exponent, no ``_`` or ``,``,
no surrounding spaces): these functions sit on the venue decoders' path, and a
value a venue did not mean must fail loudly rather than round silently.
Errors are :class:`ValueError` with a message naming what was wrong; the format
codecs wrap them into :class:`~connectors.venues.errors.VenueFormatError`.
"""

from __future__ import annotations

import re
from datetime import date

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
NS_PER_S = 1_000_000_000
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

_DECIMAL = re.compile(r"([+-]?)([0-9]+)(?:\.([0-9]+))?", re.ASCII)
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


def is_decimal(text: str) -> bool:
    """True when ``text`` is a plain decimal number (``-12.50``); says nothing about its scale."""
    return _DECIMAL.fullmatch(text) is not None


def parse_decimal(text: str, scale: int) -> int:
    """``"187.25"`` at ``scale`` 4 -> ``1872500``, exactly.

    Extra fractional digits are accepted only when they are zeros (``"187.250000"``);
    anything that would lose precision raises :class:`ValueError`, as does anything
    that is not a plain ASCII decimal or does not fit in int64.
    """
    if not isinstance(text, str):
        raise ValueError(f"decimal must be a string, got {type(text).__name__}")
    m = _DECIMAL.fullmatch(text)
    if m is None:
        raise ValueError(f"{text!r} is not a decimal number")
    sign, whole, frac = m.group(1), m.group(2), m.group(3) or ""
    if len(frac) > scale:
        extra = frac[scale:]
        if extra.strip("0"):
            raise ValueError(f"{text!r} has more than {scale} decimal places")
        frac = frac[:scale]
    value = int(whole) * 10**scale + (int(frac.ljust(scale, "0")) if scale else 0)
    return check_int64(-value if sign == "-" else value, f"decimal {text!r}")


def format_decimal(value: int, scale: int, *, strip: bool = False) -> str:
    """``1872500`` at ``scale`` 4 -> ``"187.2500"`` (``strip=True``: ``"187.25"``; ``1870000`` -> ``"187"``)."""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 10**scale)
    if scale == 0:
        return f"{sign}{whole}"
    digits = f"{frac:0{scale}d}"
    if strip:
        digits = digits.rstrip("0")
        if not digits:
            return f"{sign}{whole}"
    return f"{sign}{whole}.{digits}"


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
    """``"2026-01-02T14:30:00.000123456Z"`` -> ns since the epoch (1 to 9 fractional digits, ``Z`` or ``+hh:mm``)."""
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


def parse_fix_time(text: str) -> int:
    """FIX UTCTimestamp ``"20260102-14:30:00.000123456"`` (0 to 9 fractional digits) -> ns since the epoch."""
    m = _FIX_TIME.fullmatch(text)
    if m is None:
        raise ValueError(f"{text!r} is not a FIX UTCTimestamp like 20260102-14:30:00.000123456")
    return check_int64(_civil_to_ns(*m.groups(), text=text), f"timestamp {text!r}")


def format_fix_time(ns: int) -> str:
    """ns since the epoch -> FIX UTCTimestamp with nanoseconds, ``"20260102-14:30:00.000123456"``."""
    iso = format_iso_ns(ns)
    return f"{iso[0:4]}{iso[5:7]}{iso[8:10]}-{iso[11:29]}"
