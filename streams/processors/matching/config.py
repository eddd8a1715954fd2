"""Settings of the matching processor (read once at start, never per record)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class MatchingConfig(BaseModel):
    """How the matching engine names itself and how much it remembers. Frozen; unknown fields are an error.

    ``venue``           the venue code on every ``Fill``, ``Trade`` and ``BookDelta`` it writes;
    ``retain_closed``   how many closed (filled, cancelled, expired) orders a task remembers, oldest
                        forgotten first, so that a late cancel or replace is ``TOO_LATE_TO_...`` and a
                        reused client order id is ``DUPLICATE_CLIENT_ORDER_ID`` rather than
                        ``UNKNOWN_ORDER`` / a new order. Bounds the state (and the snapshot): risk
                        keeps the account-wide duplicate check over the whole day;
    ``full_audit``      check every order at every commit (O(orders), for tests and investigations)
                        instead of the running totals and per-level checks.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    venue: str = Field(default="internal", min_length=1)
    retain_closed: int = Field(default=100_000, ge=0)
    full_audit: bool = False
