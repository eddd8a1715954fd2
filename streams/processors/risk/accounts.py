"""Per-account state: open orders (risk's worst-case view), positions and PnL from fills, ids used today.

Risk counts an order as open from the moment it accepts it (before matching has seen it) until
matching reports it done (``OrderFilled``, ``OrderCancelled``, ``OrderExpired``, an
``OrderRejected`` of the NEW, or an ``OrderCancelRejected`` whose status says the order is no longer
open -- too late, or unknown to matching). Fills move quantity from open to the position atomically (the
``fills`` input ranks before ``order.events``, so at one millisecond a fill is never counted
twice nor missed). A replace risk accepted counts with the largest quantity of every version
matching may hold until matching confirms it (``OrderRested``) or refuses it (``OrderCancelRejected``
of the REPLACE -- ``OrderRejected`` of a REPLACE in records written before it -- which restores the
version matching holds); see :class:`OpenOrder`.

PnL is an estimate for the daily loss limit (the ledger keeps the books): average-cost realized
PnL, rounded toward a loss, plus the position marked at the symbol's reference price. A new UTC
day (by the records' ``ts_ns``) sets realized PnL to zero, re-bases open positions at their mark,
and forgets the client order ids of orders no longer open.
"""

from __future__ import annotations

from typing import Any

from streams.processors.risk.checks import BUY, TokenBucket

DAY_NS = 86_400_000_000_000


class OpenOrder:
    """One order risk counts as open, as the latest command risk accepted for it left it (``qty``, ``price``).

    Replaces matching has not answered yet are ``pending`` (requested ``(qty, price)``, oldest first);
    meanwhile ``confirmed`` is the version matching holds. Matching answers each replace in order:
    an ``OrderRested`` takes the oldest pending one, an ``OrderCancelRejected`` of a REPLACE refuses it. The
    new order's own ``OrderRested`` (``rested`` still false) answers no replace. The worst case counts
    the largest quantity of every version matching may hold.
    """

    __slots__ = ("symbol", "side", "order_type", "price", "qty", "filled", "confirmed", "pending", "rested", "cancel_pending",
                 "leaves")

    def __init__(self, symbol: str, side: str, order_type: str, price: int | None, qty: int) -> None:
        self.symbol = symbol
        self.side = side
        self.order_type = order_type
        self.price = price
        self.qty = qty
        self.filled = 0
        self.confirmed: tuple[int, int | None] | None = None
        self.pending: list[tuple[int, int | None]] = []
        self.rested = False
        self.cancel_pending = False
        self.leaves = qty  # worst case: what is counted in the leg's open quantity

    def worst_leaves(self) -> int:
        qty = self.qty
        if self.pending:
            assert self.confirmed is not None
            qty = max(self.confirmed[0], max(q for q, _ in self.pending))
        return max(qty - self.filled, 0)

    def request(self, qty: int, price: int | None) -> None:
        """Risk accepted a replace to ``(qty, price)``; matching has not answered it yet."""
        if not self.pending:
            self.confirmed = (self.qty, self.price)
        self.pending.append((qty, price))
        self.qty, self.price = qty, price

    def answered(self, price: int | None) -> None:
        """Matching took the oldest pending replace (its ``OrderRested`` says the price it rests at)."""
        qty, _ = self.pending.pop(0)
        if self.pending:
            self.confirmed = (qty, price)
        else:
            self.confirmed, self.price = None, price

    def refused(self) -> None:
        """Matching refused the oldest pending replace: the order stays as matching holds it."""
        self.pending.pop(0)
        if not self.pending:
            assert self.confirmed is not None
            (self.qty, self.price), self.confirmed = self.confirmed, None

    def to_json(self) -> list[Any]:
        return [self.symbol, self.side, self.order_type, self.price, self.qty, self.filled,
                list(self.confirmed) if self.confirmed else None, self.cancel_pending, [list(p) for p in self.pending], self.rested]

    @classmethod
    def from_json(cls, row: list[Any]) -> OpenOrder:
        o = cls(row[0], row[1], row[2], row[3], row[4])
        o.filled, o.confirmed, o.cancel_pending = row[5], (tuple(row[6]) if row[6] else None), row[7]  # type: ignore[assignment]
        if len(row) > 8:
            o.pending, o.rested = [(q, p) for q, p in row[8]], row[9]
        else:  # written before replaces were tracked one by one: one replace in flight at most
            o.pending, o.rested = ([(o.qty, o.price)] if o.confirmed else []), True
        o.leaves = o.worst_leaves()
        return o


class Leg:
    """One account's position in one symbol: signed quantity, cost (price x quantity units), realized PnL, open orders."""

    __slots__ = ("position", "cost", "realized", "open_buy", "open_sell", "cached")

    def __init__(self) -> None:
        self.cached: tuple[int | None, int, int] | None = None  # (mark, exposure, pnl) at money scale; None after a change
        self.position = 0
        self.cost = 0  # sum of price x qty of the open position (price_scale + size_scale decimals)
        self.realized = 0  # same units
        self.open_buy = 0
        self.open_sell = 0

    def fill(self, side: str, price: int, qty: int) -> None:
        """Apply one execution: average cost; closing quantity realizes PnL (rounded toward a loss)."""
        signed = qty if side == BUY else -qty
        pos = self.position
        self.cached = None
        if pos == 0 or (pos > 0) == (signed > 0):  # opening or adding
            self.cost += price * signed
            self.position = pos + signed
            return
        closing = min(qty, abs(pos))
        # cost released by the closed part: cost x closing / |pos|, rounded up so realized PnL rounds down
        released = -(-self.cost * closing // abs(pos))
        self.realized += price * closing - released if pos > 0 else -released - price * closing
        self.cost -= released
        self.position = pos + signed
        rest = qty - closing
        if rest:  # flipped through zero: the remainder opens a new position at this price
            self.cost = price * (rest if signed > 0 else -rest)

    def pnl_units(self, mark: int | None) -> int:
        """Realized plus unrealized (marked at ``mark``; unmarked positions count at cost), price x quantity units."""
        unreal = self.position * mark - self.cost if mark is not None and self.position else 0
        return self.realized + unreal

    def to_json(self) -> list[int]:
        return [self.position, self.cost, self.realized, self.open_buy, self.open_sell]

    @classmethod
    def from_json(cls, row: list[int]) -> Leg:
        leg = cls()
        leg.position, leg.cost, leg.realized, leg.open_buy, leg.open_sell = row
        return leg


class Account:
    """Everything risk keeps for one account."""

    __slots__ = ("orders", "legs", "used_ids", "bucket", "day")

    def __init__(self) -> None:
        self.orders: dict[str, OpenOrder] = {}  # client_order_id -> order
        self.legs: dict[str, Leg] = {}
        self.used_ids: set[str] = set()  # client order ids used today (open orders' ids always kept)
        self.bucket = TokenBucket()
        self.day = -1

    def leg(self, symbol: str) -> Leg:
        leg = self.legs.get(symbol)
        if leg is None:
            leg = self.legs[symbol] = Leg()
        return leg

    def roll_day(self, ts_ns: int, marks: dict[str, int]) -> None:
        """Start a new UTC day when ``ts_ns`` is in a later one."""
        day = ts_ns // DAY_NS
        if day <= self.day:
            return
        if self.day >= 0:
            for symbol, leg in self.legs.items():
                leg.realized, leg.cached = 0, None
                mark = marks.get(symbol)
                if mark is not None:
                    leg.cost = leg.position * mark
            self.used_ids = set(self.orders)
        self.day = day

    def relever(self, order: OpenOrder) -> None:
        """Bring the leg's open quantity in line with the order's worst-case leaves (after any change to it)."""
        new = order.worst_leaves()
        delta = new - order.leaves
        if delta:
            leg = self.leg(order.symbol)
            leg.cached = None
            if order.side == BUY:
                leg.open_buy += delta
            else:
                leg.open_sell += delta
            order.leaves = new

    def add(self, cid: str, order: OpenOrder) -> None:
        self.orders[cid] = order
        order.leaves = 0
        self.relever(order)

    def close(self, cid: str) -> None:
        order = self.orders.pop(cid, None)
        if order is not None:
            order.qty, order.confirmed, order.pending = order.filled, None, []
            self.relever(order)

    def to_json(self) -> dict[str, Any]:
        return {
            "orders": {cid: o.to_json() for cid, o in sorted(self.orders.items())},
            "legs": {s: leg.to_json() for s, leg in sorted(self.legs.items())},
            "used_ids": sorted(self.used_ids),
            "bucket": [self.bucket.level, self.bucket.last_ns],
            "day": self.day,
        }

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> Account:
        acct = cls()
        acct.orders = {cid: OpenOrder.from_json(row) for cid, row in state["orders"].items()}
        acct.legs = {s: Leg.from_json(row) for s, row in state["legs"].items()}
        acct.used_ids = set(state["used_ids"])
        acct.bucket = TokenBucket(*state["bucket"])
        acct.day = state["day"]
        return acct

