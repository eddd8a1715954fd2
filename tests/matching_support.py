"""Builders for the matching processor's tests: order commands as the runtime hands them over, and output summaries."""

from __future__ import annotations

from typing import Any

from streams.processors.base import Message, Output
from streams.processors.matching import MatchingConfig, MatchingProcessor

T0 = 1_767_364_200_000_000_000
NEW = "hftstream.orders.NewOrder"
CANCEL = "hftstream.orders.CancelOrder"
REPLACE = "hftstream.orders.ReplaceOrder"


def new_value(account: str, cid: str, side: str, qty: int, price: int | None = None, *, symbol: str = "AAPL",
              order_type: str | None = None, tif: str = "GTC", post_only: bool = False, expire: int | None = None,
              ts: int = T0) -> dict[str, Any]:
    return {
        "account": account, "symbol": symbol, "client_order_id": cid, "side": side,
        "order_type": order_type or ("MARKET" if price is None else "LIMIT"), "tif": tif, "price": price, "quantity": qty,
        "expire_ts_ns": expire, "reduce_only": False, "post_only": post_only, "ts_ns": ts,
    }


class Desk:
    """One matching task and a clock: every command gets the next offset and, unless given, ts = T0 + offset."""

    def __init__(self, config: MatchingConfig | None = None, task: int = 0) -> None:
        self.proc = MatchingProcessor(config or MatchingConfig(full_audit=True), task)
        self.offset = 0

    def message(self, schema: str, value: dict[str, Any]) -> Message:
        msg = Message("orders.accepted", self.proc.task, self.offset, value["ts_ns"], value["symbol"].encode(), schema, value)
        self.offset += 1
        return msg

    def _ts(self, ts: int | None) -> int:
        return T0 + self.offset if ts is None else ts

    def new(self, account: str, cid: str, side: str, qty: int, price: int | None = None, *, ts: int | None = None,
            **kw: Any) -> list[Output]:
        return self.run(self.message(NEW, new_value(account, cid, side, qty, price, ts=self._ts(ts), **kw)))

    def cancel(self, account: str, cid: str, *, symbol: str = "AAPL", ts: int | None = None, reason: str | None = None) -> list[Output]:
        value = {"account": account, "symbol": symbol, "client_order_id": cid, "reason": reason, "ts_ns": self._ts(ts)}
        return self.run(self.message(CANCEL, value))

    def replace(self, account: str, cid: str, *, price: int | None = None, qty: int | None = None, symbol: str = "AAPL",
                ts: int | None = None) -> list[Output]:
        value = {"account": account, "symbol": symbol, "client_order_id": cid, "price": price, "quantity": qty, "ts_ns": self._ts(ts)}
        return self.run(self.message(REPLACE, value))

    def run(self, msg: Message) -> list[Output]:
        out = self.proc.process(msg)
        self.proc.check_invariants()
        return out

    def bids(self, symbol: str = "AAPL") -> list[tuple[int, int]]:
        return self.proc.engine.markets[symbol].book.depth(True)

    def asks(self, symbol: str = "AAPL") -> list[tuple[int, int]]:
        return self.proc.engine.markets[symbol].book.depth(False)


def kinds(outs: list[Output]) -> list[str]:
    """The short name of each output's schema, e.g. ``["OrderAccepted", "OrderRested", "BookDelta"]``."""
    return [o.schema.rsplit(".", 1)[1] for o in outs]


def of(outs: list[Output], kind: str) -> list[dict[str, Any]]:
    """The values of the outputs of one kind."""
    return [o.value for o in outs if o.schema.endswith("." + kind)]


def order_events(outs: list[Output]) -> list[tuple[str, str, str]]:
    """``(kind, client_order_id, detail)`` of every order event: the lifecycle at a glance."""
    rows = []
    for o in outs:
        if o.topic != "order.events":
            continue
        v, kind = o.value, o.schema.rsplit(".", 1)[1]
        detail = {
            "OrderAccepted": lambda: "",
            "OrderRejected": lambda: v["reason_code"],
            "OrderCancelRejected": lambda: v["reason_code"],
            "OrderRested": lambda: f"{v['leaves_qty']}@{v['price']}",
            "OrderPartiallyFilled": lambda: f"{v['last_qty']}@{v['last_price']} cum {v['cum_qty']} leaves {v['leaves_qty']}",
            "OrderFilled": lambda: f"{v['last_qty']}@{v['last_price']} cum {v['cum_qty']}",
            "OrderCancelled": lambda: f"{v['cancelled_qty']} {v['reason']}",
            "OrderExpired": lambda: f"{v['expired_qty']}",
        }[kind]()
        rows.append((kind, v["client_order_id"], detail))
    return rows
