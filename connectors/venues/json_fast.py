"""The JSON formats' vocabularies, and their decoders' fast paths (no exception, no event object).

:class:`~connectors.venues.formats.Codec` decodes in two steps: a fast path that returns
``(seq, event class, field values)`` for a well-formed message, or ``None`` whenever anything
is unusual -- a missing or mistyped field, an unknown symbol, a value that does not fit, a
timestamp or decimal in a form the fast scalar parsers leave to the strict ones -- and then the
strict reader (``Codec._read``), which is the only one that raises. So the fast path never has
to reproduce an error message: it only has to be *sound*, returning a result only where the
strict reader returns exactly the same one (the differential tests in
``tests/unit/test_venue_fast_paths.py`` hold it to that).

The payload is parsed once (``json.loads`` of the UTF-8 text) and read by direct dict access;
``type(x) is int`` excludes ``bool`` as the strict reader's checks do.
"""

from __future__ import annotations

import json
from typing import Any

from connectors.venues.events import BOOK_ACTIONS, SIDES, TRADING_STATUSES, BookDelta, Heartbeat, Quote, StatusChange, Trade
from connectors.venues.instruments import RefData
from connectors.venues.scaled import decimal_fast
from streams.timeutil import INT64_MAX, INT64_MIN, iso_ns_fast

# A decoded message without the objects: (venue seq or None, event class, the event's field values in order).
Fields = tuple[int | None, type, tuple[Any, ...]]

# json-decimal's words
JD_SIDE = {"bid": "BUY", "ask": "SELL"}
JD_AGGRESSOR = {"buy": "BUY", "sell": "SELL"}
JD_ACTION = {"add": "ADD", "update": "CHANGE", "delete": "DELETE"}
JD_STATUS = {s.lower(): s for s in TRADING_STATUSES}
# json-ticks' codes
JT_KIND = {"T": "trade", "Q": "quote", "B": "book", "S": "status", "H": "heartbeat"}
JT_SIDE = dict(enumerate(SIDES))  # 0 = bid (BUY), 1 = ask (SELL)
JT_AGGRESSOR = {"B": "BUY", "S": "SELL"}
JT_ACTION = dict(enumerate(BOOK_ACTIONS))  # 0 add, 1 change, 2 delete
JT_STATUS = dict(enumerate(TRADING_STATUSES))

_decode_json = json.JSONDecoder().decode  # json.loads(str) without its per-call argument handling
_ABSENT = object()


def _loads(payload: Any) -> Any:
    """The JSON object in ``payload`` (exact ``bytes``, UTF-8), or ``None`` for anything else."""
    if type(payload) is not bytes:
        return None
    try:
        obj = _decode_json(payload.decode())
    except ValueError:  # UnicodeDecodeError, JSONDecodeError, an integer beyond int()'s digit limit
        return None
    return obj if type(obj) is dict else None


def _text(value: Any) -> bool:
    return type(value) is str and value != ""


def json_decimal_fast(payload: Any, ref: RefData) -> Fields | None:
    """What ``JsonDecimalCodec`` decodes from ``payload``, or ``None`` to leave it to the strict reader."""
    obj = _loads(payload)
    if obj is None:
        return None
    kind, ts = obj.get("type"), obj.get("ts")
    if type(ts) is not str or type(kind) is not str:
        return None
    ts = iso_ns_fast(ts)
    if ts is None or ts < 0:
        return None
    if kind == "heartbeat":
        return None, Heartbeat, (ts,)
    if kind == "status":
        symbol, reason = obj.get("symbol"), obj.get("reason")
        status = obj.get("status")
        if (symbol is None or _text(symbol)) and (reason is None or _text(reason)) and type(status) is str:
            status = JD_STATUS.get(status)
            if status is not None:
                return None, StatusChange, (symbol, ts, status, reason)
        return None
    symbol = obj.get("symbol")
    if not _text(symbol):
        return None
    inst = ref.by_symbol(symbol)
    if inst is None:
        return None
    ps, ss = inst.price_scale, inst.size_scale
    if kind == "trade":
        price, size, trade_id = obj.get("price"), obj.get("size"), obj.get("trade_id")
        if type(price) is not str or type(size) is not str or not _text(trade_id):
            return None
        aggressor = obj.get("aggressor", _ABSENT)
        if aggressor is _ABSENT:
            aggressor = None
        elif type(aggressor) is not str or (aggressor := JD_AGGRESSOR.get(aggressor)) is None:
            return None
        price, size = decimal_fast(price, ps), decimal_fast(size, ss)
        if price is None or size is None or size < 0:
            return None
        return None, Trade, (symbol, ts, trade_id, price, size, aggressor)
    if kind == "quote":
        bid, ask = obj.get("bid", _ABSENT), obj.get("ask", _ABSENT)
        bid_size, ask_size = obj.get("bid_size"), obj.get("ask_size")
        if type(bid_size) is not str or type(ask_size) is not str:
            return None
        if bid is not None:
            if type(bid) is not str or (bid := decimal_fast(bid, ps)) is None:
                return None
        if ask is not None:
            if type(ask) is not str or (ask := decimal_fast(ask, ps)) is None:
                return None
        bid_size, ask_size = decimal_fast(bid_size, ss), decimal_fast(ask_size, ss)
        if bid_size is None or ask_size is None or bid_size < 0 or ask_size < 0:
            return None
        return None, Quote, (symbol, ts, bid, bid_size, ask, ask_size)
    if kind == "book":
        side, action, price, size = obj.get("side"), obj.get("action"), obj.get("price"), obj.get("size")
        if type(side) is not str or type(action) is not str or type(price) is not str or type(size) is not str:
            return None
        side, action = JD_SIDE.get(side), JD_ACTION.get(action)
        price, size = decimal_fast(price, ps), decimal_fast(size, ss)
        if side is None or action is None or price is None or size is None or size < 0:
            return None
        return None, BookDelta, (symbol, ts, side, action, price, size)
    return None


def _int(value: Any, low: int = INT64_MIN) -> bool:
    """A JSON integer (not a bool) in ``low..INT64_MAX``."""
    return type(value) is int and low <= value <= INT64_MAX


def json_ticks_fast(payload: Any, ref: RefData) -> Fields | None:
    """What ``JsonTicksCodec`` decodes from ``payload``, or ``None`` to leave it to the strict reader."""
    obj = _loads(payload)
    if obj is None:
        return None
    kind, seq, ts = obj.get("t"), obj.get("q"), obj.get("ns")
    if not (_int(seq, 0) and _int(ts, 0)) or type(kind) is not str:
        return None
    if kind == "H":
        return seq, Heartbeat, (ts,)
    number = obj.get("i", _ABSENT)
    if kind == "S":
        symbol = None
        if number is not _ABSENT:
            if not _int(number, 0) or (inst := ref.by_number(number)) is None:
                return None
            symbol = inst.symbol
        status, reason = obj.get("st"), obj.get("r")
        if type(status) is not int or (status := JT_STATUS.get(status)) is None or not (reason is None or _text(reason)):
            return None
        return seq, StatusChange, (symbol, ts, status, reason)
    if not _int(number, 0) or (inst := ref.by_number(number)) is None:
        return None
    tick, lot, symbol = inst.tick_size, inst.lot_size, inst.symbol
    if kind == "T":
        p, z = obj.get("p"), obj.get("z")
        if not (_int(p) and _int(z, 0)):
            return None
        trade_id = obj.get("x", _ABSENT)
        if trade_id is _ABSENT or type(trade_id) is int:
            trade_id = str(seq if trade_id is _ABSENT else trade_id)
        elif not _text(trade_id):
            return None
        aggressor = obj.get("a", _ABSENT)
        if aggressor is _ABSENT:
            aggressor = None
        elif type(aggressor) is not str or (aggressor := JT_AGGRESSOR.get(aggressor)) is None:
            return None
        price, size = p * tick, z * lot
        if INT64_MIN <= price <= INT64_MAX and INT64_MIN <= size <= INT64_MAX:
            return seq, Trade, (symbol, ts, trade_id, price, size, aggressor)
        return None
    if kind == "Q":
        b, a, bz, az = obj.get("b", _ABSENT), obj.get("a", _ABSENT), obj.get("bz"), obj.get("az")
        if not (_int(bz, 0) and _int(az, 0)):
            return None
        bid = ask = None
        if b is not _ABSENT:
            if not _int(b):
                return None
            bid = b * tick
            if not INT64_MIN <= bid <= INT64_MAX:
                return None
        if a is not _ABSENT:
            if not _int(a):
                return None
            ask = a * tick
            if not INT64_MIN <= ask <= INT64_MAX:
                return None
        bid_size, ask_size = bz * lot, az * lot
        if INT64_MIN <= bid_size <= INT64_MAX and INT64_MIN <= ask_size <= INT64_MAX:
            return seq, Quote, (symbol, ts, bid, bid_size, ask, ask_size)
        return None
    if kind == "B":
        s, u, p, z = obj.get("s"), obj.get("u"), obj.get("p"), obj.get("z")
        if type(s) is not int or type(u) is not int or not (_int(p) and _int(z, 0)):
            return None
        side, action = JT_SIDE.get(s), JT_ACTION.get(u)
        price, size = p * tick, z * lot
        if side is None or action is None or not (INT64_MIN <= price <= INT64_MAX and INT64_MIN <= size <= INT64_MAX):
            return None
        return seq, BookDelta, (symbol, ts, side, action, price, size)
    return None
