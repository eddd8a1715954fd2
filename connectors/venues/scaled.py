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

from streams.timeutil import (  # noqa: F401  (re-exported: the venue codecs' time formats)
    INT64_MAX,
    INT64_MIN,
    NS_PER_S,
    check_int64,
    format_fix_time,
    format_iso_ns,
    parse_fix_time,
    parse_iso_ns,
)


_DECIMAL = re.compile(r"([+-]?)([0-9]+)(?:\.([0-9]+))?", re.ASCII)


def is_decimal(text: str) -> bool:
    """True when ``text`` is a plain decimal number (``-12.50``); says nothing about its scale."""
    return _DECIMAL.fullmatch(text) is not None


_POW10 = tuple(10**i for i in range(19))  # every scale an instrument may have (0..18)
# A feed repeats its prices and sizes (the same levels, round lots): each scale keeps the values of
# the strings it has read, exact by construction, bounded by clearing when full.
_CACHE_MAX = 4096
_CACHES: dict[int, dict[str, int]] = {scale: {} for scale in range(19)}


def decimal_fast(text: str, scale: int) -> int | None:
    """``parse_decimal(text, scale)`` when ``text`` is a plain decimal with at most ``scale`` decimal places, else ``None``.

    No regex, no exception: a cache of the strings already read at ``scale``, else split on ``.``,
    check ASCII digits, ``int()`` the parts. ``None`` means "ask :func:`parse_decimal`" (more places
    than the scale, a bad character, beyond int64 ...), which alone raises, so its error messages
    stay the only ones.
    """
    cache = _CACHES.get(scale)
    if cache is None:  # a scale outside 0..18
        return None
    value = cache.get(text)
    if value is None:
        value = _plain_decimal(text, scale)
        if value is not None:
            if len(cache) >= _CACHE_MAX:
                cache.clear()
            cache[text] = value
    return value


def _plain_decimal(text: str, scale: int) -> int | None:
    if not text.isascii():
        return None
    whole, dot, frac = text.partition(".")
    sign = whole[:1]
    if sign == "-" or sign == "+":
        whole = whole[1:]
    if not whole.isdigit() or len(whole) > 19:  # 19 digits: anything longer is beyond int64 (or leading zeros)
        return None
    if dot:
        places = len(frac)
        if places > scale or not frac.isdigit():  # "".isdigit() is False: "1." is not a decimal
            return None
        value = int(whole) * _POW10[scale] + int(frac) * _POW10[scale - places]
    else:
        value = int(whole) * _POW10[scale]
    if sign == "-":
        value = -value
    return value if INT64_MIN <= value <= INT64_MAX else None


def parse_decimal(text: str, scale: int) -> int:
    """``"187.25"`` at ``scale`` 4 -> ``1872500``, exactly.

    Extra fractional digits are accepted only when they are zeros (``"187.250000"``);
    anything that would lose precision raises :class:`ValueError`, as does anything
    that is not a plain ASCII decimal or does not fit in int64.
    """
    if type(text) is str:
        value = decimal_fast(text, scale)
        if value is not None:
            return value
    return _strict_decimal(text, scale)


def _strict_decimal(text: str, scale: int) -> int:
    """:func:`parse_decimal` by the regular expression alone (every form, every error message)."""
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


def parse_scaled_field(text: str, label: str, scale: int | None, *, minimum: int | None = None) -> int:
    """A venue's decimal field at ``scale``, with ``label`` naming the field in every error.

    ``scale=None`` (inspect mode, no reference data) checks the syntax and the sign (a
    negative value where ``minimum`` is 0 or more is wrong at any scale) and returns 0.
    """
    if scale is None:
        if not is_decimal(text):
            raise ValueError(f"{label}: {text!r} is not a decimal number")
        if minimum is not None and minimum >= 0 and text.startswith("-") and text[1:].replace(".", "").strip("0"):
            raise ValueError(f"{label} must be >= {minimum}, got {text!r}")
        return 0
    try:
        value = parse_decimal(text, scale)
    except ValueError as exc:
        raise ValueError(f"{label}: {exc}") from None
    if minimum is not None and value < minimum:
        raise ValueError(f"{label} must be >= {minimum}, got {text!r}")
    return value


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
