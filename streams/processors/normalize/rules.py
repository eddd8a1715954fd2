"""From a decoded venue event to its canonical ``hftstream.md`` record, or a :class:`Reject` with a stable reason.

The venue codecs (:mod:`connectors.venues.formats`, :mod:`connectors.venues.fix`) do the parsing
and the scaling; this module judges the result against the instrument's grid and builds the Avro
value. It also tells, when a codec refuses a payload, *why*: the structure check
(``Codec.inspect``, no reference data) separates a malformed payload from one naming an unknown
instrument, and what fails only once the instrument's scale is applied does not fit the scale.
"""

from __future__ import annotations

from typing import Any

from connectors.venues.errors import VenueFormatError
from connectors.venues.events import BookDelta, Heartbeat, Quote, StatusChange, Trade
from connectors.venues.formats import Codec
from connectors.venues.instruments import Instrument, RefData
from connectors.venues.sanity import REASON_CODES as SANITY_CODES
from connectors.venues.sanity import Sanity
from streams.processors.base import Reject

# Stable reason codes (dashboards group dead letters by them).
MALFORMED_PAYLOAD = "MALFORMED_PAYLOAD"
UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"
UNKNOWN_FORMAT = "UNKNOWN_FORMAT"
EXCEEDS_SCALE = "EXCEEDS_SCALE"
OFF_TICK = "OFF_TICK"
OFF_LOT = "OFF_LOT"
SEQ_MISMATCH = "SEQ_MISMATCH"
BAD_REFDATA = "BAD_REFDATA"
UNEXPECTED_SCHEMA = "UNEXPECTED_SCHEMA"
REASON_CODES = (
    MALFORMED_PAYLOAD, UNKNOWN_SYMBOL, UNKNOWN_FORMAT, EXCEEDS_SCALE, OFF_TICK, OFF_LOT, SEQ_MISMATCH, BAD_REFDATA,
    UNEXPECTED_SCHEMA, *SANITY_CODES,  # NON_POSITIVE_PRICE, NON_POSITIVE_SIZE, CROSSED_QUOTE, PRICE_OUT_OF_BAND
)

TRADE = "hftstream.md.Trade"
QUOTE = "hftstream.md.Quote"
BOOK_DELTA = "hftstream.md.BookDelta"
VENUE_STATUS = "hftstream.md.VenueStatus"
HEARTBEAT = "hftstream.md.Heartbeat"
INSTRUMENT = "hftstream.refdata.Instrument"
RAW = "hftstream.md.RawVenueMessage"
MAX_SCALE = 18  # 10**18 < 2**63: a scale above this cannot hold even the value 1 (tick or lot) in int64


def classify(codec: Codec, payload: bytes, ref: RefData, exc: VenueFormatError) -> Reject:
    """Why ``codec.decode`` refused ``payload``: malformed, unknown instrument, or a value the scale cannot hold."""
    try:
        seen = codec.inspect(payload)
    except VenueFormatError as structural:
        return Reject(MALFORMED_PAYLOAD, str(structural))
    if seen.symbol is not None and ref.by_symbol(seen.symbol) is None:
        return Reject(UNKNOWN_SYMBOL, f"venue {codec.venue!r}: symbol {seen.symbol!r} is not in refdata.instruments")
    if seen.instrument_number is not None and ref.by_number(seen.instrument_number) is None:
        return Reject(
            UNKNOWN_SYMBOL, f"venue {codec.venue!r}: instrument id {seen.instrument_number} is not in refdata.instruments"
        )
    # Well-formed and the instrument is known: only the instrument's scale can have refused it
    # (more decimal places than the scale, or a scaled value beyond int64).
    return Reject(EXCEEDS_SCALE, str(exc))


def instrument_problem(value: Any) -> str | None:
    """Why an ``hftstream.refdata.Instrument`` value cannot be used to read prices and sizes, or ``None``."""
    for field in ("price_scale", "size_scale"):
        if not 0 <= value[field] <= MAX_SCALE:
            return f"{field} {value[field]} is outside 0..{MAX_SCALE}"
    for field in ("tick_size", "lot_size"):
        if value[field] <= 0:
            return f"{field} {value[field]} must be > 0"
    return None


def _off_tick(symbol: str, what: str, price: int, inst: Instrument) -> Reject:
    return Reject(
        OFF_TICK, f"{symbol} {what} {price} (scale {inst.price_scale}) is not a multiple of the tick size {inst.tick_size}"
    )


def _off_lot(symbol: str, what: str, size: int, inst: Instrument) -> Reject:
    return Reject(
        OFF_LOT, f"{symbol} {what} {size} (scale {inst.size_scale}) is not a multiple of the lot size {inst.lot_size}"
    )


def judged_record(
    venue: str, cls: type, f: tuple[Any, ...], recv: int, seq: int | None, inst: Instrument | None, sanity: Sanity
) -> tuple[str, str, dict[str, Any]]:
    """:func:`record`, then ``sanity``'s verdict (DECISIONS #41): what normalize and ``feed file`` both apply.

    The grid comes first, so what failed it before keeps its reason; what the grid accepts may still be
    impossible (a negative price on the tick grid) and is refused with the sanity reason code.
    """
    out = record(venue, cls, f, recv, seq, inst)
    problem = sanity.admit(cls, f)
    if problem is not None:
        raise Reject(problem[0], f"venue {venue!r}: {problem[1]}")
    return out


def record(venue: str, cls: type, f: tuple[Any, ...], recv: int, seq: int | None, inst: Instrument | None) -> tuple[str, str, dict[str, Any]]:
    """``(schema, key, value)`` of the canonical record for the event ``cls(*f)``; raises :class:`Reject` off the tick or lot grid.

    ``f`` are the event's field values in its dataclass's order, as ``Codec.decode_fields`` returns
    them (no event object is built on the hot path). ``inst`` is the event's instrument (``None``
    only for venue-wide status and heartbeats).
    """
    if cls is Quote:
        assert inst is not None
        sym, ts, bid, bid_size, ask, ask_size = f
        tick, lot = inst.tick_size, inst.lot_size
        if bid is not None and bid % tick:
            raise _off_tick(sym, "bid", bid, inst)
        if ask is not None and ask % tick:
            raise _off_tick(sym, "ask", ask, inst)
        if bid_size % lot:
            raise _off_lot(sym, "bid size", bid_size, inst)
        if ask_size % lot:
            raise _off_lot(sym, "ask size", ask_size, inst)
        if (bid is None and bid_size) or (ask is None and ask_size):
            raise Reject(MALFORMED_PAYLOAD, f"venue {venue!r}: {sym} quote has a size on an empty side")
        return QUOTE, sym, {
            "venue": venue, "symbol": sym, "bid_price": bid, "bid_size": bid_size, "ask_price": ask,
            "ask_size": ask_size, "exchange_ts_ns": ts, "recv_ts_ns": recv, "seq": seq,
        }
    if cls is BookDelta:
        assert inst is not None
        sym, ts, side, action, price, size = f
        if price % inst.tick_size:
            raise _off_tick(sym, "price", price, inst)
        if size % inst.lot_size:
            raise _off_lot(sym, "size", size, inst)
        return BOOK_DELTA, sym, {
            "venue": venue, "symbol": sym, "action": action, "side": side, "price": price,
            "size": size, "order_id": None, "exchange_ts_ns": ts, "recv_ts_ns": recv, "seq": seq,
        }
    if cls is Trade:
        assert inst is not None
        sym, ts, trade_id, price, size, aggressor = f
        if price % inst.tick_size:
            raise _off_tick(sym, "price", price, inst)
        if size % inst.lot_size:
            raise _off_lot(sym, "size", size, inst)
        return TRADE, sym, {
            "venue": venue, "symbol": sym, "trade_id": trade_id, "price": price, "size": size,
            "aggressor_side": aggressor, "exchange_ts_ns": ts, "recv_ts_ns": recv, "seq": seq,
        }
    if cls is StatusChange:
        sym, ts, status, reason = f
        return VENUE_STATUS, sym or venue, {
            "venue": venue, "symbol": sym, "status": status, "reason": reason,
            "exchange_ts_ns": ts, "recv_ts_ns": recv, "feed_state": None, "channel": None,
        }
    assert cls is Heartbeat
    return HEARTBEAT, venue, {"venue": venue, "last_seq": seq, "exchange_ts_ns": f[0], "recv_ts_ns": recv}
