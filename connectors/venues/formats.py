"""Venue message formats: the roster, and a codec per format (neutral event <-> the venue's bytes).

Three wire formats, so that normalization has real work to do:

``json-decimal``  JSON, decimal STRING prices/sizes, ISO-8601 nanosecond times, no sequence numbers::

    {"type":"trade","symbol":"AAPL","price":"187.2500","size":"100","ts":"2026-01-02T14:30:00.000123456Z","trade_id":"A-17"}

    also ``quote`` (``bid``/``ask`` null for an empty side, ``bid_size``, ``ask_size``), ``book``
    (``side`` bid|ask, ``action`` add|update|delete, ``price``, ``size``), ``status`` (``symbol``
    null = whole venue, ``status`` open|halted|..., ``reason``), ``heartbeat``; trades may carry
    ``aggressor`` buy|sell.

``json-ticks``    compact JSON, INTEGER price ticks and size lots, integer instrument ids, venue sequence numbers::

    {"t":"T","i":3,"q":1043,"p":18725,"z":100,"ns":1767364200000123456,"x":"B-17","a":"B"}

    ``t`` type (T trade, Q quote, B book, S status, H heartbeat), ``i`` instrument id (refdata
    ``instrument_id``), ``q`` sequence number, ``p``/``b``/``a`` prices in ticks of the tick size,
    ``z``/``bz``/``az`` sizes in lots, ``ns`` event time; trades: ``x`` trade id (default: the
    sequence number), ``a`` aggressor B/S; quotes omit ``b``/``a`` for an empty side; book:
    ``s`` 0 bid / 1 ask, ``u`` 0 add / 1 change / 2 delete; status: ``st`` index into
    PRE_OPEN, OPENING_AUCTION, OPEN, HALTED, CLOSING_AUCTION, CLOSED, ``r`` reason, no ``i`` = whole venue.

``fix``           FIX 4.4 market data, tag=value with SOH separators, see :mod:`connectors.venues.fix`.

Every codec has ``encode(VenueMessage, RefData) -> bytes``, ``decode(bytes, RefData) -> VenueMessage``
and ``inspect(bytes) -> Inspection`` (structure only, no reference data: what a feed
handler can check). Anything malformed raises :class:`~connectors.venues.errors.VenueFormatError`
naming the venue, the format and the cause; the codecs never let a ``KeyError`` or
``JSONDecodeError`` escape.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from typing import Any, ClassVar

from connectors.venues.errors import UnknownVenueError, VenueFormatError
from streams.errors import ConfigError
from streams.native import NATIVE
from connectors.venues.events import (
    BOOK_ACTIONS,
    SIDES,
    TRADING_STATUSES,
    BookDelta,
    Heartbeat,
    MarketEvent,
    Quote,
    StatusChange,
    Trade,
    VenueMessage,
)
from connectors.venues.instruments import Instrument, RefData
from connectors.venues.json_fast import (
    JD_ACTION,
    JD_AGGRESSOR,
    JD_SIDE,
    JD_STATUS,
    JT_ACTION,
    JT_AGGRESSOR,
    JT_KIND,
    JT_SIDE,
    JT_STATUS,
    Fields,
    json_decimal_fast,
    json_ticks_fast,
)
from connectors.venues.scaled import (
    check_int64,
    format_decimal,
    format_iso_ns,
    parse_iso_ns,
    parse_scaled_field,
)

FORMATS: tuple[str, ...] = ("json-decimal", "json-ticks", "fix")
VENUES: tuple[str, ...] = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")


def venue_format(venue: str) -> str:
    """The wire format of a roster venue (formats cycle json-decimal, json-ticks, fix in roster order)."""
    try:
        return FORMATS[VENUES.index(venue) % len(FORMATS)]
    except ValueError:
        raise UnknownVenueError(venue, VENUES) from None


@dataclass(frozen=True, slots=True)
class Inspection:
    """What a structurally valid payload says without reference data (a feed handler's view)."""

    kind: str
    seq: int | None
    symbol: str | None
    instrument_number: int | None
    exchange_ts_ns: int


# The field values of an event, in its dataclass's order (what ``cls(*values)`` rebuilds): the strict path's tail.
_FIELD_VALUES: dict[type, Callable[[Any], tuple[Any, ...]]] = {
    cls: (lambda ev, names=tuple(f.name for f in dataclass_fields(cls)): tuple([getattr(ev, n) for n in names]))
    for cls in (Trade, Quote, BookDelta, StatusChange, Heartbeat)
}

def native_fast(name: str) -> Callable[[bytes, Any], Fields | None] | None:
    """The native twin of a format's fast path (``streams._native.<name>(payload, ref.native_table())``, DECISIONS #63).

    ``None`` under ``HFTSTREAM_NATIVE=0`` or with a build that lacks it: then only the Python fast path runs.
    """
    return getattr(NATIVE, name, None)


# An instrument resolver: None in inspect mode (structure only, numbers not scaled).
Resolve = Callable[[str | int], Instrument] | None


class Codec(abc.ABC):
    """Encode and decode one venue's messages in one wire format."""

    format: ClassVar[str]
    sequenced: ClassVar[bool]
    _native_fast: ClassVar[Callable[[bytes, Any], Fields | None] | None] = None

    def __init__(self, venue: str) -> None:
        self.venue = venue

    def error(self, cause: str) -> VenueFormatError:
        """A :class:`VenueFormatError` for this venue and format."""
        return VenueFormatError(self.venue, self.format, cause)

    def encode(self, msg: VenueMessage, ref: RefData) -> bytes:
        """The venue's bytes for ``msg``. Raises :class:`VenueFormatError` if the event cannot be expressed."""
        if self.sequenced and msg.seq is None:
            raise self.error("this format carries sequence numbers; the message has none")
        try:
            return self._encode(msg, ref)
        except ValueError as exc:
            raise self.error(str(exc)) from None

    def decode(self, payload: bytes, ref: RefData) -> VenueMessage:
        """Parse ``payload`` into a neutral message scaled by ``ref``'s instruments."""
        seq, cls, values = self.decode_fields(payload, ref)
        return VenueMessage(seq, cls(*values))

    def decode_fields(self, payload: bytes, ref: RefData) -> Fields:
        """:meth:`decode` without the objects: ``(seq, event class, the event's field values in order)``.

        The format's fast path (:meth:`_fast`) answers for well-formed messages -- first its native
        twin when the native core has one, which answers only where :meth:`_fast` gives the same
        tuple -- and anything it does not vouch for goes to the strict reader, which raises
        :class:`VenueFormatError` with the cause.
        """
        native = self._native_fast
        if native is not None:
            fast = native(payload, ref.native_table())
            if fast is not None:
                return fast
        fast = self._fast(payload, ref)
        if fast is not None:
            return fast
        event = self._strict(payload, ref)
        return event[0], type(event[1]), _FIELD_VALUES[type(event[1])](event[1])

    def _fast(self, payload: bytes, ref: RefData) -> Fields | None:
        """``decode_fields`` for a message the format's fast path can vouch for, else ``None`` (no exception)."""
        return None

    def _strict(self, payload: bytes, ref: RefData) -> tuple[int | None, MarketEvent]:
        def resolve(key: str | int) -> Instrument:
            inst = ref.by_symbol(key) if isinstance(key, str) else ref.by_number(key)
            if inst is None:
                raise ValueError(f"unknown {'symbol' if isinstance(key, str) else 'instrument id'} {key!r}")
            return inst

        try:
            seq, event, _ = self._read(payload, resolve)
        except ValueError as exc:
            raise self.error(str(exc)) from None
        assert event is not None
        return seq, event

    def inspect(self, payload: bytes) -> Inspection:
        """Check ``payload``'s structure (fields, types, decimal and time syntax) without reference data."""
        try:
            _, _, inspection = self._read(payload, None)
        except ValueError as exc:
            raise self.error(str(exc)) from None
        return inspection

    @abc.abstractmethod
    def _encode(self, msg: VenueMessage, ref: RefData) -> bytes: ...

    @abc.abstractmethod
    def _read(self, payload: bytes, resolve: Resolve) -> tuple[int | None, MarketEvent | None, Inspection]:
        """Parse; with ``resolve=None`` only validate structure (the event may be ``None``)."""


def instrument(ref: RefData, symbol: str) -> Instrument:
    """``ref``'s instrument for ``symbol``; :class:`ValueError` when unknown."""
    inst = ref.by_symbol(symbol)
    if inst is None:
        raise ValueError(f"unknown symbol {symbol!r}")
    return inst


# -- JSON helpers -----------------------------------------------------------------------------


def _dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _loads(payload: bytes) -> dict[str, Any]:
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise ValueError(f"payload must be bytes, got {type(payload).__name__}")
    if not payload:
        raise ValueError("empty payload")
    try:
        obj = json.loads(bytes(payload).decode("utf-8"))  # venue JSON is UTF-8 (json.loads(bytes) would guess UTF-16/32)
    except UnicodeDecodeError as exc:
        raise ValueError(f"payload is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc.msg} at byte {exc.pos}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"JSON payload must be an object, got {type(obj).__name__}")
    return obj


def _get(obj: Mapping[str, Any], key: str) -> Any:
    if key not in obj:
        raise ValueError(f"missing field {key!r}")
    return obj[key]


def _str(obj: Mapping[str, Any], key: str, *, nullable: bool = False) -> Any:
    value = obj.get(key) if nullable else _get(obj, key)
    if value is None and nullable:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"field {key!r} must be a non-empty string, got {value!r}")
    return value


def _int(obj: Mapping[str, Any], key: str, *, minimum: int | None = None, optional: bool = False) -> Any:
    if optional and key not in obj:
        return None
    value = _get(obj, key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"field {key!r} must be an integer, got {value!r}")
    check_int64(value, f"field {key!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"field {key!r} must be >= {minimum}, got {value}")
    return value


def _choice(obj: Mapping[str, Any], key: str, allowed: Mapping[Any, Any]) -> Any:
    value = _get(obj, key)
    if isinstance(value, bool) or not isinstance(value, str | int) or value not in allowed:  # a list is unhashable
        raise ValueError(f"field {key!r} must be one of {sorted(allowed, key=str)}, got {value!r}")
    return allowed[value]


def _scaled(text: Any, key: str, scale: int | None, *, minimum: int | None = None) -> int:
    """A decimal string at ``scale``; with ``scale=None`` (inspect mode) only its syntax is checked."""
    if not isinstance(text, str):
        raise ValueError(f"field {key!r} must be a decimal string, got {text!r}")
    return parse_scaled_field(text, f"field {key!r}", scale, minimum=minimum)


def _ts_ns(value: int) -> int:
    if value < 0:
        raise ValueError(f"timestamp {value} is before the epoch")
    return value


# -- json-decimal ---------------------------------------------------------------------------

_JD_SIDE, _JD_AGGRESSOR, _JD_ACTION, _JD_STATUS = JD_SIDE, JD_AGGRESSOR, JD_ACTION, JD_STATUS
_JD_SIDE_OUT = {v: k for k, v in _JD_SIDE.items()}
_JD_ACTION_OUT = {v: k for k, v in _JD_ACTION.items()}


class JsonDecimalCodec(Codec):
    """``json-decimal``: JSON with decimal string prices/sizes and ISO-8601 ns times; no sequence numbers."""

    format = "json-decimal"
    sequenced = False

    _fast = staticmethod(json_decimal_fast)  # type: ignore[assignment]
    _native_fast = native_fast("json_decimal_fast")

    def _encode(self, msg: VenueMessage, ref: RefData) -> bytes:
        ev = msg.event
        ts = format_iso_ns(_ts_ns(ev.exchange_ts_ns))
        if isinstance(ev, Trade):
            inst = instrument(ref, ev.symbol)
            obj: dict[str, Any] = {
                "type": "trade",
                "symbol": ev.symbol,
                "price": format_decimal(ev.price, inst.price_scale),
                "size": format_decimal(ev.size, inst.size_scale),
                "ts": ts,
                "trade_id": ev.trade_id,
            }
            if ev.aggressor_side is not None:
                obj["aggressor"] = ev.aggressor_side.lower()
        elif isinstance(ev, Quote):
            inst = instrument(ref, ev.symbol)
            obj = {
                "type": "quote",
                "symbol": ev.symbol,
                "bid": None if ev.bid_price is None else format_decimal(ev.bid_price, inst.price_scale),
                "bid_size": format_decimal(ev.bid_size, inst.size_scale),
                "ask": None if ev.ask_price is None else format_decimal(ev.ask_price, inst.price_scale),
                "ask_size": format_decimal(ev.ask_size, inst.size_scale),
                "ts": ts,
            }
        elif isinstance(ev, BookDelta):
            inst = instrument(ref, ev.symbol)
            obj = {
                "type": "book",
                "symbol": ev.symbol,
                "side": _JD_SIDE_OUT[ev.side],
                "action": _JD_ACTION_OUT[ev.action],
                "price": format_decimal(ev.price, inst.price_scale),
                "size": format_decimal(ev.size, inst.size_scale),
                "ts": ts,
            }
        elif isinstance(ev, StatusChange):
            obj = {"type": "status", "symbol": ev.symbol, "status": ev.status.lower(), "ts": ts}
            if ev.reason is not None:
                obj["reason"] = ev.reason
        else:
            obj = {"type": "heartbeat", "ts": ts}
        return _dumps(obj)

    def _read(self, payload: bytes, resolve: Resolve) -> tuple[int | None, MarketEvent | None, Inspection]:
        obj = _loads(payload)
        kind = _choice(obj, "type", {k: k for k in ("trade", "quote", "book", "status", "heartbeat")})
        ts = _ts_ns(parse_iso_ns(_str(obj, "ts")))
        if kind == "heartbeat":
            return None, Heartbeat(ts), Inspection("heartbeat", None, None, None, ts)
        if kind == "status":
            symbol = _str(obj, "symbol", nullable=True)
            status = _choice(obj, "status", _JD_STATUS)
            reason = _str(obj, "reason", nullable=True)
            return None, StatusChange(symbol, ts, status, reason), Inspection("status", None, symbol, None, ts)
        symbol = _str(obj, "symbol")
        inst = resolve(symbol) if resolve else None
        ps = inst.price_scale if inst else None
        ss = inst.size_scale if inst else None
        event: MarketEvent
        if kind == "trade":
            aggressor = _choice(obj, "aggressor", _JD_AGGRESSOR) if "aggressor" in obj else None
            event = Trade(
                symbol,
                ts,
                _str(obj, "trade_id"),
                _scaled(_get(obj, "price"), "price", ps),
                _scaled(_get(obj, "size"), "size", ss, minimum=0),
                aggressor,
            )
        elif kind == "quote":
            bid, ask = _get(obj, "bid"), _get(obj, "ask")
            event = Quote(
                symbol,
                ts,
                None if bid is None else _scaled(bid, "bid", ps),
                _scaled(_get(obj, "bid_size"), "bid_size", ss, minimum=0),
                None if ask is None else _scaled(ask, "ask", ps),
                _scaled(_get(obj, "ask_size"), "ask_size", ss, minimum=0),
            )
        else:
            event = BookDelta(
                symbol,
                ts,
                _choice(obj, "side", _JD_SIDE),
                _choice(obj, "action", _JD_ACTION),
                _scaled(_get(obj, "price"), "price", ps),
                _scaled(_get(obj, "size"), "size", ss, minimum=0),
            )
        return None, event, Inspection(kind, None, symbol, None, ts)


# -- json-ticks -----------------------------------------------------------------------------

_JT_KIND, _JT_SIDE, _JT_AGGRESSOR, _JT_ACTION, _JT_STATUS = JT_KIND, JT_SIDE, JT_AGGRESSOR, JT_ACTION, JT_STATUS
_JT_KIND_OUT = {v: k for k, v in _JT_KIND.items()}


def _ticks(value: int, step: int, what: str) -> int:
    if value % step:
        raise ValueError(f"{what} {value} is not a multiple of {step}")
    return value // step


class JsonTicksCodec(Codec):
    """``json-ticks``: compact JSON with integer ticks/lots, integer instrument ids and sequence numbers."""

    format = "json-ticks"
    sequenced = True

    _fast = staticmethod(json_ticks_fast)  # type: ignore[assignment]
    _native_fast = native_fast("json_ticks_fast")

    def _encode(self, msg: VenueMessage, ref: RefData) -> bytes:
        ev = msg.event
        ts = _ts_ns(ev.exchange_ts_ns)
        if isinstance(ev, Heartbeat):
            return _dumps({"t": "H", "q": msg.seq, "ns": ts})
        if isinstance(ev, StatusChange):
            obj: dict[str, Any] = {"t": "S"}
            if ev.symbol is not None:
                obj["i"] = self._number(ref, ev.symbol)
            obj.update({"q": msg.seq, "st": TRADING_STATUSES.index(ev.status), "ns": ts})
            if ev.reason is not None:
                obj["r"] = ev.reason
            return _dumps(obj)
        inst = instrument(ref, ev.symbol)
        obj = {"t": _JT_KIND_OUT[ev.kind], "i": self._number(ref, ev.symbol), "q": msg.seq}
        tick, lot = inst.tick_size, inst.lot_size
        if isinstance(ev, Trade):
            obj.update(p=_ticks(ev.price, tick, "price"), z=_ticks(ev.size, lot, "size"), ns=ts, x=ev.trade_id)
            if ev.aggressor_side is not None:
                obj["a"] = ev.aggressor_side[0]
        elif isinstance(ev, Quote):
            if ev.bid_price is not None:
                obj["b"] = _ticks(ev.bid_price, tick, "bid")
            obj["bz"] = _ticks(ev.bid_size, lot, "bid size")
            if ev.ask_price is not None:
                obj["a"] = _ticks(ev.ask_price, tick, "ask")
            obj.update(az=_ticks(ev.ask_size, lot, "ask size"), ns=ts)
        else:
            assert isinstance(ev, BookDelta)
            obj.update(
                s=SIDES.index(ev.side),
                u=BOOK_ACTIONS.index(ev.action),
                p=_ticks(ev.price, tick, "price"),
                z=_ticks(ev.size, lot, "size"),
                ns=ts,
            )
        return _dumps(obj)

    @staticmethod
    def _number(ref: RefData, symbol: str) -> int:
        number = instrument(ref, symbol).number
        if number is None:
            raise ValueError(f"instrument {symbol!r} has no integer instrument_id")
        return number

    def _read(self, payload: bytes, resolve: Resolve) -> tuple[int | None, MarketEvent | None, Inspection]:
        obj = _loads(payload)
        kind = _choice(obj, "t", _JT_KIND)
        seq = _int(obj, "q", minimum=0)
        ts = _ts_ns(_int(obj, "ns"))
        if kind == "heartbeat":
            return seq, Heartbeat(ts), Inspection(kind, seq, None, None, ts)
        number = _int(obj, "i", minimum=0, optional=kind == "status")
        inst = resolve(number) if resolve and number is not None else None
        symbol = inst.symbol if inst else None
        inspection = Inspection(kind, seq, symbol, number, ts)
        if kind == "status":
            reason = _str(obj, "r", nullable=True)
            return seq, StatusChange(symbol, ts, _choice(obj, "st", _JT_STATUS), reason), inspection
        tick = inst.tick_size if inst else 0
        lot = inst.lot_size if inst else 0
        sym = symbol or ""
        event: MarketEvent
        if kind == "trade":
            trade_id = obj.get("x", str(seq))  # venues without trade ids: the sequence number names the print
            if isinstance(trade_id, int) and not isinstance(trade_id, bool):
                trade_id = str(trade_id)
            if not isinstance(trade_id, str) or not trade_id:
                raise ValueError(f"field 'x' (trade id) must be a string or integer, got {trade_id!r}")
            aggressor = _choice(obj, "a", _JT_AGGRESSOR) if "a" in obj else None
            event = Trade(sym, ts, trade_id, _int(obj, "p") * tick, _int(obj, "z", minimum=0) * lot, aggressor)
        elif kind == "quote":
            bid = _int(obj, "b", optional=True)
            ask = _int(obj, "a", optional=True)
            event = Quote(
                sym,
                ts,
                None if bid is None else bid * tick,
                _int(obj, "bz", minimum=0) * lot,
                None if ask is None else ask * tick,
                _int(obj, "az", minimum=0) * lot,
            )
        else:
            event = BookDelta(
                sym,
                ts,
                _choice(obj, "s", _JT_SIDE),
                _choice(obj, "u", _JT_ACTION),
                _int(obj, "p") * tick,
                _int(obj, "z", minimum=0) * lot,
            )
        if resolve:
            for field in ("price", "size", "bid_price", "bid_size", "ask_price", "ask_size"):
                value = getattr(event, field, None)
                if value is not None:
                    check_int64(value, field)
        return seq, event, inspection


def codec_for(venue: str, fmt: str | None = None) -> Codec:
    """The codec of ``venue`` (its roster format unless ``fmt`` names another)."""
    from connectors.venues.fix import FixCodec

    fmt = fmt or venue_format(venue)
    classes: dict[str, type[Codec]] = {c.format: c for c in (JsonDecimalCodec, JsonTicksCodec, FixCodec)}
    if fmt not in classes:
        raise ConfigError(f"unknown venue format {fmt!r}", hint=f"use one of: {', '.join(FORMATS)}")
    return classes[fmt](venue)
