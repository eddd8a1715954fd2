"""Errors of the venue feed handlers (formats, simulator, recorded files)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from streams.errors import ConfigError, PoisonError


class VenueFormatError(PoisonError):
    """A payload that is not a valid message in its venue's format.

    Names the venue, the format and the cause. The feed handler publishes such
    payloads anyway (it does not judge); the normalizer dead-letters them with
    :attr:`reason_code`.
    """

    reason_code = "VENUE_FORMAT"

    def __init__(self, venue: str, fmt: str, cause: str, *, hint: str | None = None) -> None:
        super().__init__(
            f"venue {venue!r} ({fmt}): {cause}",
            hint=hint
            or f"the payload is not valid {fmt}; it belongs in the dead-letter topic -- "
            "inspect the original bytes with `hftstream replay --format json`",
        )
        self.venue, self.format, self.cause = venue, fmt, cause


class UnknownVenueError(ConfigError):
    """A venue name that is not in the roster, so its message format is unknown."""

    def __init__(self, venue: str, roster: tuple[str, ...]) -> None:
        super().__init__(
            f"unknown venue {venue!r}",
            hint=f"use one of: {', '.join(roster)} (each has its own message format)",
        )
        self.venue = venue


class FeedFileError(ConfigError):
    """A recorded feed file that is missing, unreadable or in a format we cannot tell."""


def suspect_what(fmt: str, suspect: int, refused: int) -> str:
    """What ``suspect`` bad lines are, ``refused`` of them valid ``fmt`` that normalization refuses: 'not valid json-ticks'..."""
    if not refused:
        return f"not valid {fmt}"
    if refused == suspect:
        return "refused by normalization (impossible market data or off the instrument's grid)"
    return f"not valid {fmt} ({suspect - refused}) or refused by normalization ({refused})"


class SuspectFeedError(FeedFileError):
    """``feed file --strict`` refused a file: too many lines normalization would dead-letter. Nothing was published."""

    def __init__(self, path: Path, fmt: str, suspect: int, lines: int, examples: Sequence[str], max_bad: int, *, refused: int = 0) -> None:
        allowed = f"more than the {max_bad} allowed by --max-bad" if max_bad else "none allowed"
        super().__init__(
            f"refused {path.name}: {suspect} of {lines} line(s) are {suspect_what(fmt, suspect, refused)} ({allowed}); nothing was published",
            hint="fix or remove the lines listed above, or raise --max-bad, or drop --strict to publish them anyway "
            "(normalization dead-letters them)",
        )
        self.path, self.suspect, self.lines, self.examples, self.max_bad = path, suspect, lines, list(examples), max_bad
