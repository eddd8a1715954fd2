"""Settings of the normalization processor (read once at start, never per record)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from connectors.venues.sanity import DEFAULT_BAND_PCT


class NormalizeConfig(BaseModel):
    """How the normalizer judges sequence numbers and liveness. Frozen; unknown fields are an error.

    ``stale_after_ns``   a channel is STALE once the task's event-time clock (the largest
                         ``recv_ts_ns`` seen) is more than this past the channel's last message;
    ``reorder_window``   how many sequence numbers behind the newest a missing one is still
                         awaited as a late (out-of-order) arrival; older ones count as lost;
    ``max_open_gaps``    bound on the missing ranges remembered per channel (the oldest are
                         counted as lost first), so a broken feed cannot grow the state without limit;
    ``price_band_pct``   a trade, quote side or book level more than this percent away from the
                         symbol's last accepted trade is dead-lettered as PRICE_OUT_OF_BAND
                         (:mod:`connectors.venues.sanity`, DECISIONS #41); 0 turns the band off.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    stale_after_ns: int = Field(default=2_000_000_000, gt=0)
    reorder_window: int = Field(default=10_000, ge=0)
    max_open_gaps: int = Field(default=1024, gt=0)
    price_band_pct: int = Field(default=DEFAULT_BAND_PCT, ge=0, le=10_000)
