"""Builds inputs for the risk processor's unit tests and benchmark: records as the runtime would hand them over."""

from __future__ import annotations

from typing import Any

from streams.ops.signing import sign
from streams.processors.base import Message, Output
from streams.processors.risk import RiskConfig, RiskProcessor
from streams.processors.risk.processor import default_repo

T0 = 1_767_364_200_000_000_000  # 2026-01-02 14:30 UTC
MS = 1_000_000
KEYS = {"alice": "alice-key", "bob": "bob-key"}
AAPL = {"symbol": "AAPL", "instrument_id": "1", "price_scale": 4, "size_scale": 0, "tick_size": 100, "lot_size": 1,
        "currency": "USD", "status": "ACTIVE", "updated_ts_ns": 0}
BTC = {"symbol": "BTC-USD", "instrument_id": "2", "price_scale": 2, "size_scale": 8, "tick_size": 1, "lot_size": 10_000,
       "currency": "USD", "status": "ACTIVE", "updated_ts_ns": 0}
LIMITS = {
    "max_order_qty": 1000, "max_notional": 200_000_0000, "max_position": 2000, "price_band_bps": 500, "max_spread_bps": 100,
    "max_orders_per_second": 1000, "order_burst": 1000, "max_gross_exposure": 10_000_000_0000, "max_daily_loss": 100_000_0000,
}


def config(**over: Any) -> RiskConfig:
    raw: dict[str, Any] = {"operators": {op: {"key": k} for op, k in KEYS.items()}, "limits": LIMITS, "money_scale": 4,
                           "md_stale_after_ns": 5_000 * MS, "replay_window_ns": 60_000 * MS, "max_command_age_ns": 60_000 * MS,
                           "symbols": {"BTC-USD": {"max_order_qty": 10 * 10**8, "max_notional": 400_000_00,
                                                   "max_position": 20 * 10**8}}}
    raw.update(over)
    return RiskConfig.model_validate(raw)


class Feed:
    """One risk task and a clock; every helper returns the Message, :meth:`send` runs it."""

    def __init__(self, cfg: RiskConfig | None = None, task: int = 0, instruments: tuple[dict[str, Any], ...] = (AAPL, BTC)) -> None:
        self.cfg = cfg or config()
        self.proc = RiskProcessor(self.cfg, task)
        self.now = T0
        self.offsets: dict[str, int] = {}
        self.ids = 0
        for inst in instruments:
            self.send(self.msg("refdata.instruments", "hftstream.refdata.Instrument", inst, inst["symbol"]))

    def tick(self, ns: int = MS) -> int:
        self.now += ns
        return self.now

    def msg(self, topic: str, schema: str, value: dict[str, Any], key: str, ts: int | None = None) -> Message:
        off = self.offsets.get(topic, 0)
        self.offsets[topic] = off + 1
        return Message(topic, 0, off, self.now if ts is None else ts, key.encode(), schema, value)

    def send(self, msg: Message) -> list[Output]:
        return list(self.proc.process(msg))

    # -- market data -------------------------------------------------------------------------

    def quote(self, symbol: str = "AAPL", bid: int | None = 1_870_000, ask: int | None = 1_871_000, venue: str = "alpha") -> Message:
        v = {"venue": venue, "symbol": symbol, "bid_price": bid, "bid_size": 100 if bid else 0, "ask_price": ask,
             "ask_size": 100 if ask else 0, "exchange_ts_ns": self.now, "recv_ts_ns": self.now, "seq": None}
        return self.msg("md.normalized", "hftstream.md.Quote", v, symbol)

    def trade(self, symbol: str = "AAPL", price: int = 1_870_500, venue: str = "alpha") -> Message:
        v = {"venue": venue, "symbol": symbol, "trade_id": f"t{self.now}", "price": price, "size": 1, "aggressor_side": None,
             "exchange_ts_ns": self.now, "recv_ts_ns": self.now, "seq": None}
        return self.msg("md.normalized", "hftstream.md.Trade", v, symbol)

    def status(self, venue: str = "alpha", *, feed: str | None = None, channel: int | None = None, symbol: str | None = None,
               trading: str = "OPEN") -> Message:
        v = {"venue": venue, "symbol": symbol, "status": trading, "reason": None, "exchange_ts_ns": self.now,
             "recv_ts_ns": self.now, "feed_state": feed, "channel": channel}
        return self.msg("md.normalized", "hftstream.md.VenueStatus", v, symbol or venue)

    # -- orders --------------------------------------------------------------------------------

    def new(self, *, account: str = "A1", symbol: str = "AAPL", side: str = "BUY", qty: int = 10, price: int | None = 1_870_000,
            order_type: str = "LIMIT", cid: str | None = None, reduce_only: bool = False, tif: str = "DAY") -> Message:
        if cid is None:
            self.ids += 1
            cid = f"o{self.ids}"
        v = {"account": account, "symbol": symbol, "client_order_id": cid, "side": side, "order_type": order_type, "tif": tif,
             "price": None if order_type == "MARKET" else price, "quantity": qty, "expire_ts_ns": None,
             "reduce_only": reduce_only, "ts_ns": self.now}
        return self.msg("orders.in", "hftstream.orders.NewOrder", v, account)

    def cancel(self, cid: str, *, account: str = "A1", symbol: str = "AAPL") -> Message:
        v = {"account": account, "symbol": symbol, "client_order_id": cid, "ts_ns": self.now}
        return self.msg("orders.in", "hftstream.orders.CancelOrder", v, account)

    def replace(self, cid: str, *, account: str = "A1", symbol: str = "AAPL", price: int | None = None, qty: int | None = None) -> Message:
        v = {"account": account, "symbol": symbol, "client_order_id": cid, "price": price, "quantity": qty, "ts_ns": self.now}
        return self.msg("orders.in", "hftstream.orders.ReplaceOrder", v, account)

    def fill(self, cid: str, *, account: str = "A1", symbol: str = "AAPL", side: str = "BUY", qty: int = 10,
             price: int = 1_870_000) -> Message:
        v = {"fill_id": f"f{self.now}-{cid}", "trade_id": f"t{self.now}", "account": account, "symbol": symbol,
             "client_order_id": cid, "order_id": f"x-{cid}", "side": side, "price": price, "quantity": qty,
             "liquidity": "MAKER", "venue": "hft", "ts_ns": self.now}
        return self.msg("fills", "hftstream.fills.Fill", v, account)

    def event(self, kind: str, cid: str, *, account: str = "A1", symbol: str = "AAPL", **fields: Any) -> Message:
        v = {"account": account, "symbol": symbol, "client_order_id": cid, "order_id": f"x-{cid}", "ts_ns": self.now, **fields}
        return self.msg("order.events", f"hftstream.orders.{kind}", v, account)

    # -- operator commands ---------------------------------------------------------------------

    def command(self, kind: str, *, operator: str = "alice", key: str | None = None, command_id: str | None = None,
                ts: int | None = None, log_ts: int | None = None, signed: bool = True, **fields: Any) -> Message:
        self.ids += 1
        schema = f"hftstream.ops.{kind}"
        defaults: dict[str, dict[str, Any]] = {
            "Halt": {"symbol": None, "account": None, "reason": "test"},
            "Resume": {"symbol": None, "account": None, "reason": "test"},
            "ReduceOnly": {"account": None, "symbol": None, "enabled": True, "reason": "test"},
            "KillSwitch": {"account": None, "symbol": None, "engaged": True, "reason": "test"},
            "CancelAll": {"account": None, "symbol": None, "reason": "test"},
            "SetLimit": {"account": None, "symbol": None},
        }
        v = {"command_id": command_id or f"c{self.ids}", "operator_id": operator, **defaults[kind], **fields,
             "ts_ns": self.now if ts is None else ts, "signature": b""}
        if signed:
            v = sign(default_repo(), schema, v, (key if key is not None else KEYS.get(operator, "none")).encode())
        return self.msg("ops.commands", schema, v, "scope", ts=log_ts)


def decision(outs: list[Output]) -> dict[str, Any]:
    """The one RiskDecision among ``outs``."""
    found = [o.value for o in outs if o.topic == "risk.decisions"]
    assert len(found) == 1, outs
    return found[0]


def reason(outs: list[Output]) -> str:
    return decision(outs)["reason"]
