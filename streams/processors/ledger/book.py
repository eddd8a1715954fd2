"""Position arithmetic of the ledger: average cost, realized and unrealized PnL, fees. Exact integers only.

Scales. For an instrument with ``price_scale`` ps and ``size_scale`` ss, a price ``p`` is scaled by ps, a
quantity ``q`` by ss, and every money amount -- notional ``p x q``, cost, realized and unrealized PnL, fees --
by ``ps + ss``: the product of two scaled integers is exact at the sum of their scales, so nothing is rounded
to compute them.

Average cost. A position keeps its signed net quantity ``net`` (long > 0) and the signed cost of the open
quantity ``cost`` (``sum d x p`` over the opening fills, ``d`` signed: buy +, sell -); the average price is
``cost / net``. A fill in the position's direction (or from flat) adds ``d x p`` to the cost. A fill against it
closes ``k = min(|d|, |net|)``: the released cost is ``cost x k / |net|`` **truncated toward zero** (the one
rounding; exact when the position closes completely), the realized PnL grows by ``-d_k x p - released``, and
the rest of the fill, if any, opens a new position on the other side at ``p`` (a flip).

So ``realized - cost == -sum(d x p)`` over all fills, exactly, whatever the truncation: the truncation only
moves less than one unit of the money scale between realized and unrealized PnL, and back when the position
closes. The ledger's invariant check relies on that identity.

Fees. ``fee = notional x rate_ppm / 1e6`` rounded toward +infinity (a charge rounds up, a rebate rounds toward
zero): below one unit of the money scale, in the house's favour. Realized PnL is gross of fees; ``fees_paid``
keeps them apart (net PnL = realized + unrealized - fees_paid).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streams.processors.ledger.config import PPM

INT64_MAX = (1 << 63) - 1


def fee_amount(notional: int, rate_ppm: int) -> int:
    """Fee on a notional (>= 0) at ``rate_ppm``: ``ceil(notional x rate / 1e6)``; negative = a rebate."""
    return -((-notional * rate_ppm) // PPM)


def mid(bid: int, ask: int) -> int:
    """A quote's mid price, rounded down (toward -infinity) onto the price scale."""
    return (bid + ask) // 2


@dataclass(slots=True)
class Position:
    """One account's position in one symbol, plus an independent tally of its fills for the invariant check."""

    account: str
    symbol: str
    net: int = 0  # signed quantity, size scale
    cost: int = 0  # signed cost of the open quantity, money scale
    realized: int = 0  # money scale, gross of fees
    fees: int = 0  # money scale, rebates negative
    fills: int = 0
    last_fill_id: str | None = None
    last_ref: str = ""  # the input record (topic/partition@offset, fill id) that last changed it
    # The tally: kept by plain addition from the fills, never by the average-cost logic above.
    tally_qty: int = 0  # sum of signed quantities
    tally_cash: int = 0  # sum of -d x p (the cash the fills moved)

    def apply(self, d: int, price: int) -> tuple[int, int, int]:
        """``(net, cost, realized)`` after a fill of signed quantity ``d`` at ``price``; the state is unchanged."""
        net, cost, realized = self.net, self.cost, self.realized
        if net == 0 or (net > 0) == (d > 0):
            return net + d, cost + d * price, realized
        k = min(abs(d), abs(net))
        released = abs(cost) * k // abs(net)
        if cost < 0:
            released = -released
        closed = k if d > 0 else -k  # the signed part of d that closes
        realized += -closed * price - released
        cost -= released
        net += closed
        rest = d - closed
        if rest:  # a flip: what is left opens the other side (net is 0 here)
            net, cost = rest, rest * price
        return net, cost, realized

    def unrealized(self, mark: int | None) -> int | None:
        """``mark x net - cost`` on the money scale, or ``None`` without a mark."""
        return None if mark is None else mark * self.net - self.cost

    def record(self, mark: int | None, ts_ns: int) -> dict[str, Any]:
        """The ``hftstream.ledger.Position`` value."""
        return {
            "account": self.account, "symbol": self.symbol, "net_qty": self.net, "cost": self.cost,
            "realized_pnl": self.realized, "fills": self.fills, "fees_paid": self.fees, "mark_price": mark,
            "unrealized_pnl": self.unrealized(mark), "last_fill_id": self.last_fill_id, "ts_ns": ts_ns,
        }

    def problem(self, balance: int) -> str | None:
        """Why this position disagrees with its fills (or with the ledger's ``balance`` of its account), or ``None``."""
        if self.net != self.tally_qty:
            return f"net_qty {self.net} but its fills sum to {self.tally_qty}"
        if self.realized - self.cost != self.tally_cash:
            return f"realized_pnl - cost = {self.realized - self.cost} but its fills moved {self.tally_cash} of cash"
        if self.net != balance:
            return f"net_qty {self.net} but the ledger's position account holds {balance}"
        return None

    def to_json(self) -> list[Any]:
        """The position as a JSON list (see :meth:`from_json`)."""
        return [
            self.account, self.symbol, self.net, self.cost, self.realized, self.fees, self.fills, self.last_fill_id,
            self.last_ref, self.tally_qty, self.tally_cash,
        ]

    @classmethod
    def from_json(cls, row: list[Any]) -> Position:
        """Rebuild from :meth:`to_json` output."""
        return cls(*row)


def fits(*values: int) -> bool:
    """True when every value fits a signed int64 (an Avro ``long``)."""
    return all(-INT64_MAX - 1 <= v <= INT64_MAX for v in values)
