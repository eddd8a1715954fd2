"""The neutral market events every venue format encodes and decodes.

Each venue speaks its own wire format (:mod:`connectors.venues.formats`); these
dataclasses are what the formats agree on. They use the pipeline's units and the
``hftstream.md`` schema's words: prices and sizes are scaled int64 (by the
instrument's ``price_scale`` / ``size_scale``), times are int64 ns since the epoch
(``exchange_ts_ns`` = when the venue stamped the event), sides are ``BUY``/``SELL``,
book actions ``ADD``/``CHANGE``/``DELETE``, statuses the ``TradingStatus`` enum.
So the normalizer maps a decoded event to its Avro record field by field.

A :class:`VenueMessage` is one wire message: an event plus the venue's sequence
number (``None`` for venues that have none).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

Side = Literal["BUY", "SELL"]
BookAction = Literal["ADD", "CHANGE", "DELETE"]
TradingStatus = Literal["PRE_OPEN", "OPENING_AUCTION", "OPEN", "HALTED", "CLOSING_AUCTION", "CLOSED"]

SIDES: tuple[Side, ...] = ("BUY", "SELL")
BOOK_ACTIONS: tuple[BookAction, ...] = ("ADD", "CHANGE", "DELETE")
TRADING_STATUSES: tuple[TradingStatus, ...] = ("PRE_OPEN", "OPENING_AUCTION", "OPEN", "HALTED", "CLOSING_AUCTION", "CLOSED")
EVENT_KINDS = ("trade", "quote", "book", "status", "heartbeat")


@dataclass(frozen=True, slots=True)
class Trade:
    """One print. ``aggressor_side`` is ``None`` when the venue does not say."""

    kind: ClassVar[str] = "trade"
    symbol: str
    exchange_ts_ns: int
    trade_id: str
    price: int
    size: int
    aggressor_side: Side | None = None


@dataclass(frozen=True, slots=True)
class Quote:
    """Top of book. An empty side has price ``None`` and size 0."""

    kind: ClassVar[str] = "quote"
    symbol: str
    exchange_ts_ns: int
    bid_price: int | None
    bid_size: int
    ask_price: int | None
    ask_size: int


@dataclass(frozen=True, slots=True)
class BookDelta:
    """A price level added, changed or deleted (market-by-price). ``size`` is the level's new total; 0 on DELETE.

    ``side`` is ``BUY`` for the bid side of the book and ``SELL`` for the offer side.
    """

    kind: ClassVar[str] = "book"
    symbol: str
    exchange_ts_ns: int
    side: Side
    action: BookAction
    price: int
    size: int


@dataclass(frozen=True, slots=True)
class StatusChange:
    """Trading state of one instrument, or of the whole venue when ``symbol`` is ``None``."""

    kind: ClassVar[str] = "status"
    symbol: str | None
    exchange_ts_ns: int
    status: TradingStatus
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The venue is alive (and, on sequenced venues, says which sequence number it is at)."""

    kind: ClassVar[str] = "heartbeat"
    exchange_ts_ns: int

    @property
    def symbol(self) -> None:
        """Heartbeats are venue-wide."""
        return None


MarketEvent = Trade | Quote | BookDelta | StatusChange | Heartbeat


@dataclass(frozen=True, slots=True)
class VenueMessage:
    """One wire message: the venue's sequence number (``None`` if the venue has none) and its event."""

    seq: int | None
    event: MarketEvent
