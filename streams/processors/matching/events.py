"""The records matching writes: order events and fills (keyed by account), book deltas and trades (keyed by symbol).

Ids are derived from the input, never drawn: an order is ``<symbol>:<n>`` (the n-th order the
book accepted), a match is ``<symbol>:T<n>`` and its two fills ``<symbol>:T<n>:B`` / ``:S``
(one buy and one sell per match). ``seq`` of a ``BookDelta`` or ``Trade`` counts that
symbol's ``md.book`` records, so a reader of the book can see a gap. Every time is the
event time of the command (or of the expiry) that caused the record.
"""

from __future__ import annotations

from typing import Any

from streams.processors.base import Output
from streams.processors.matching.orders import ACCOUNT, BUY, CMD, CUM, LEAVES, OID, PRICE, QTY, Order

ORDER_EVENTS = "order.events"
FILLS = "fills"
MD_BOOK = "md.book"

ACCEPTED_SCHEMA = "hftstream.orders.OrderAccepted"
REJECTED_SCHEMA = "hftstream.orders.OrderRejected"
CANCEL_REJECTED_SCHEMA = "hftstream.orders.OrderCancelRejected"
RESTED_SCHEMA = "hftstream.orders.OrderRested"
PARTIAL_SCHEMA = "hftstream.orders.OrderPartiallyFilled"
FILLED_SCHEMA = "hftstream.orders.OrderFilled"
CANCELLED_SCHEMA = "hftstream.orders.OrderCancelled"
EXPIRED_SCHEMA = "hftstream.orders.OrderExpired"
FILL_SCHEMA = "hftstream.fills.Fill"
DELTA_SCHEMA = "hftstream.md.BookDelta"
TRADE_SCHEMA = "hftstream.md.Trade"


def _side(o: Order) -> str:
    return "BUY" if o[BUY] else "SELL"


def accepted(o: Order, ts: int) -> Output:
    cmd = o[CMD]
    return Output(ORDER_EVENTS, o[ACCOUNT], ACCEPTED_SCHEMA, {
        "account": o[ACCOUNT], "symbol": cmd["symbol"], "client_order_id": cmd["client_order_id"], "order_id": o[OID],
        "side": _side(o), "order_type": cmd["order_type"], "tif": cmd["tif"], "price": o[PRICE], "quantity": o[QTY], "ts_ns": ts,
    })


def rejected(cmd: dict[str, Any], order_id: str | None, command: str, code: str, reason: str, ts: int) -> Output:
    return Output(ORDER_EVENTS, cmd["account"], REJECTED_SCHEMA, {
        "account": cmd["account"], "symbol": cmd["symbol"], "client_order_id": cmd["client_order_id"], "order_id": order_id,
        "command": command, "reason_code": code, "reason": reason, "ts_ns": ts,
    })


# FIX 102 CxlRejReason of an OrderCancelRejected
TOO_LATE = 0
UNKNOWN = 1
OTHER = 99


def cancel_rejected(
    cmd: dict[str, Any], order_id: str | None, command: str, fix_reason: int, code: str, reason: str, status: str, ts: int,
) -> Output:
    """FIX OrderCancelReject (35=9): ``command`` (CANCEL or REPLACE) refused; the order is ``status`` now."""
    return Output(ORDER_EVENTS, cmd["account"], CANCEL_REJECTED_SCHEMA, {
        "account": cmd["account"], "symbol": cmd["symbol"], "client_order_id": cmd["client_order_id"], "order_id": order_id,
        "response_to": command, "cxl_rej_reason": fix_reason, "reason_code": code, "reason": reason, "ord_status": status,
        "ts_ns": ts,
    })


def rested(o: Order, ts: int) -> Output:
    cmd = o[CMD]
    return Output(ORDER_EVENTS, o[ACCOUNT], RESTED_SCHEMA, {
        "account": o[ACCOUNT], "symbol": cmd["symbol"], "client_order_id": cmd["client_order_id"], "order_id": o[OID],
        "side": _side(o), "price": o[PRICE], "leaves_qty": o[LEAVES], "ts_ns": ts,
    })


def executed(o: Order, fill_id: str, price: int, qty: int, cum: int, leaves: int, ts: int) -> Output:
    """``OrderFilled`` when ``leaves`` is 0, else ``OrderPartiallyFilled``."""
    cmd = o[CMD]
    value = {
        "account": o[ACCOUNT], "symbol": cmd["symbol"], "client_order_id": cmd["client_order_id"], "order_id": o[OID],
        "side": _side(o), "fill_id": fill_id, "last_price": price, "last_qty": qty, "cum_qty": cum, "ts_ns": ts,
    }
    if leaves:
        value["leaves_qty"] = leaves
        return Output(ORDER_EVENTS, o[ACCOUNT], PARTIAL_SCHEMA, value)
    return Output(ORDER_EVENTS, o[ACCOUNT], FILLED_SCHEMA, value)


def cancelled(o: Order, qty: int, reason: str, ts: int) -> Output:
    cmd = o[CMD]
    return Output(ORDER_EVENTS, o[ACCOUNT], CANCELLED_SCHEMA, {
        "account": o[ACCOUNT], "symbol": cmd["symbol"], "client_order_id": cmd["client_order_id"], "order_id": o[OID],
        "side": _side(o), "cum_qty": o[CUM], "cancelled_qty": qty, "reason": reason, "ts_ns": ts,
    })


def expired(o: Order, qty: int, ts: int) -> Output:
    cmd = o[CMD]
    return Output(ORDER_EVENTS, o[ACCOUNT], EXPIRED_SCHEMA, {
        "account": o[ACCOUNT], "symbol": cmd["symbol"], "client_order_id": cmd["client_order_id"], "order_id": o[OID],
        "side": _side(o), "cum_qty": o[CUM], "expired_qty": qty, "ts_ns": ts,
    })


def fill(o: Order, fill_id: str, trade_id: str, price: int, qty: int, maker: bool, venue: str, ts: int) -> Output:
    cmd = o[CMD]
    return Output(FILLS, o[ACCOUNT], FILL_SCHEMA, {
        "fill_id": fill_id, "trade_id": trade_id, "account": o[ACCOUNT], "symbol": cmd["symbol"],
        "client_order_id": cmd["client_order_id"], "order_id": o[OID], "side": _side(o), "price": price, "quantity": qty,
        "liquidity": "MAKER" if maker else "TAKER", "venue": venue, "ts_ns": ts,
    })


def trade(symbol: str, trade_id: str, price: int, qty: int, aggressor_buy: bool, venue: str, ts: int, seq: int) -> Output:
    return Output(MD_BOOK, symbol, TRADE_SCHEMA, {
        "venue": venue, "symbol": symbol, "trade_id": trade_id, "price": price, "size": qty,
        "aggressor_side": "BUY" if aggressor_buy else "SELL", "exchange_ts_ns": ts, "recv_ts_ns": ts, "seq": seq,
    })


def delta(symbol: str, action: str, buy: bool, price: int, size: int, venue: str, ts: int, seq: int) -> Output:
    """A market-by-price change: the level's total after it (0 on DELETE), no order id."""
    return Output(MD_BOOK, symbol, DELTA_SCHEMA, {
        "venue": venue, "symbol": symbol, "action": action, "side": "BUY" if buy else "SELL", "price": price, "size": size,
        "order_id": None, "exchange_ts_ns": ts, "recv_ts_ns": ts, "seq": seq,
    })
