"""The generator's picture of the internal book: the real matching engine, fed what the generator expects risk to accept.

Clients price off what they see. The order-flow generator keeps one :class:`Shadow`: a
:class:`~streams.processors.matching.engine.Engine` (the very code matching runs) that it feeds
every command it expects risk to accept, so it knows which orders rest where, which of an
account's orders it may cancel or replace, where the best opposite price is (to make a
post-only order cross, or a self-trade happen) and each account's position (to lean against it).
Commands it expects risk to refuse never reach the shadow; when its guess is wrong the shadow
drifts a little from the real book (a cancel then meets an order that is already gone:
``UNKNOWN_ORDER``, as it would for a real client). Pure and deterministic, like the engine.
"""

from __future__ import annotations

from typing import Any

from streams.processors.base import Reject
from streams.processors.matching.config import MatchingConfig
from streams.processors.matching.engine import Engine
from streams.processors.matching.orders import ACCOUNT, BUY, CMD, CUM, LEAVES, PRICE, QTY, Order

NEW_ORDER, CANCEL_ORDER, REPLACE_ORDER = "hftstream.orders.NewOrder", "hftstream.orders.CancelOrder", "hftstream.orders.ReplaceOrder"


class Shadow:
    """Open orders per ``(account, symbol)`` (oldest first), positions, and the books, as the engine keeps them."""

    def __init__(self) -> None:
        self.engine = Engine(MatchingConfig(retain_closed=0))
        self._live: dict[tuple[str, str], list[str]] = {}  # (account, symbol) -> client order ids that rested, oldest first
        self.positions: dict[tuple[str, str], int] = {}

    def apply(self, schema: str, value: dict[str, Any]) -> None:
        """Run one command through the engine; a command the engine refuses changes nothing."""
        engine = self.engine
        handler = engine.new_order if schema == NEW_ORDER else engine.cancel if schema == CANCEL_ORDER else engine.replace
        try:
            outputs = handler(value, value["ts_ns"])
        except Reject:
            return
        for out in outputs:
            if out.topic == "fills":
                v = out.value
                key = (v["account"], v["symbol"])
                self.positions[key] = self.positions.get(key, 0) + (v["quantity"] if v["side"] == "BUY" else -v["quantity"])
        if schema == NEW_ORDER:
            key = (value["account"], value["symbol"])
            if self.order(*key, value["client_order_id"]) is not None:
                self._live.setdefault(key, []).append(value["client_order_id"])

    def order(self, account: str, symbol: str, cid: str) -> Order | None:
        """The open order ``account``/``cid`` on ``symbol``, or ``None``."""
        market = self.engine.markets.get(symbol)
        return market.open.get((account, cid)) if market is not None else None

    def live(self, account: str, symbol: str) -> list[str]:
        """``account``'s open orders on ``symbol``, oldest first (closed ones are dropped on the way)."""
        ids = self._live.get((account, symbol))
        if not ids:
            return []
        market = self.engine.markets[symbol]
        keep = [cid for cid in ids if (account, cid) in market.open]
        self._live[(account, symbol)] = keep
        return keep

    def open_orders(self, symbol: str | None = None, account: str | None = None) -> list[tuple[str, str, str]]:
        """``(account, symbol, cid)`` of every open order in scope, in a deterministic order."""
        out = []
        for (acct, sym) in sorted(self._live):
            if (account is None or acct == account) and (symbol is None or sym == symbol):
                out.extend((acct, sym, cid) for cid in self.live(acct, sym))
        return out

    def best(self, symbol: str, buy: bool) -> int | None:
        """The best bid (``buy``) or ask price resting on ``symbol``."""
        market = self.engine.markets.get(symbol)
        return market.book.best(buy) if market is not None else None

    def crossing(self, symbol: str, buy: bool, price: int | None, account: str) -> tuple[int, int]:
        """``(other accounts', own)`` resting quantity a ``buy`` (else sell) order limited at ``price`` would meet."""
        market = self.engine.markets.get(symbol)
        if market is None:
            return 0, 0
        book = market.book
        others = own = 0
        for o in book.resting(not buy):
            if price is not None and (o[PRICE] > price if buy else o[PRICE] < price):
                break
            if o[ACCOUNT] == account:
                own += o[LEAVES]
            else:
                others += o[LEAVES]
        return others, own

    @staticmethod
    def terms(o: Order) -> tuple[bool, int, int, int, int, bool]:
        """``(buy, price, quantity, cum, leaves, post_only)`` of an open order."""
        return o[BUY], o[PRICE], o[QTY], o[CUM], o[LEAVES], bool(o[CMD].get("post_only"))
