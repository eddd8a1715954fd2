"""The pre-trade checks as pure functions of integers: ``None`` passes, a :data:`Verdict` refuses.

Each check is one rule with one stable reason code (the ``hftstream.risk.RiskReason`` symbol).
Nothing here knows about records or state: the processor gathers the numbers and calls them in
the documented order (:mod:`streams.processors.risk`), the scenario tables test each at its
boundary. Limits are inclusive: a value equal to its limit passes, one unit beyond it fails.
Prices and quantities are scaled integers; every comparison is exact (no division where a
multiplication will do).
"""

from __future__ import annotations

BUY, SELL = "BUY", "SELL"

ACCEPTED = "ACCEPTED"
MAX_ORDER_QTY = "MAX_ORDER_QTY"
MAX_NOTIONAL = "MAX_NOTIONAL"
POSITION_LIMIT = "POSITION_LIMIT"
PRICE_BAND = "PRICE_BAND"
HALTED = "HALTED"
REDUCE_ONLY = "REDUCE_ONLY"
KILL_SWITCH = "KILL_SWITCH"
UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"
UNKNOWN_ORDER = "UNKNOWN_ORDER"
RATE_LIMIT = "RATE_LIMIT"
INVALID_PRICE = "INVALID_PRICE"
INVALID_QUANTITY = "INVALID_QUANTITY"
DUPLICATE_CLIENT_ORDER_ID = "DUPLICATE_CLIENT_ORDER_ID"
GROSS_EXPOSURE = "GROSS_EXPOSURE"
DAILY_LOSS_LIMIT = "DAILY_LOSS_LIMIT"
NO_MARKET_DATA = "NO_MARKET_DATA"
SPREAD_TOO_WIDE = "SPREAD_TOO_WIDE"
MARKET_DATA_STALE = "MARKET_DATA_STALE"
VENUE_UNHEALTHY = "VENUE_UNHEALTHY"

REASON_CODES = (
    ACCEPTED, MAX_ORDER_QTY, MAX_NOTIONAL, POSITION_LIMIT, PRICE_BAND, HALTED, REDUCE_ONLY, KILL_SWITCH, UNKNOWN_SYMBOL,
    UNKNOWN_ORDER, RATE_LIMIT, INVALID_PRICE, INVALID_QUANTITY, DUPLICATE_CLIENT_ORDER_ID, GROSS_EXPOSURE,
    DAILY_LOSS_LIMIT, NO_MARKET_DATA, SPREAD_TOO_WIDE, MARKET_DATA_STALE, VENUE_UNHEALTHY,
)

Verdict = tuple[str, str]  # (reason code, detail for people)

NS_PER_S = 1_000_000_000
BPS = 10_000


def order_shape(order_type: str, price: int | None, qty: int, tick: int, lot: int) -> Verdict | None:
    """A LIMIT needs a positive price on the tick grid, a MARKET none; the quantity is positive and on the lot grid."""
    if qty <= 0:
        return INVALID_QUANTITY, f"quantity {qty} must be > 0"
    if qty % lot:
        return INVALID_QUANTITY, f"quantity {qty} is not a multiple of the lot size {lot}"
    if order_type == "MARKET":
        if price is not None:
            return INVALID_PRICE, f"a MARKET order has no price (got {price})"
        return None
    if price is None:
        return INVALID_PRICE, "a LIMIT order needs a price"
    if price <= 0:
        return INVALID_PRICE, f"price {price} must be > 0"
    if price % tick:
        return INVALID_PRICE, f"price {price} is not a multiple of the tick size {tick}"
    return None


def max_order_qty(qty: int, limit: int | None) -> Verdict | None:
    """The order's quantity is at most ``limit``."""
    if limit is not None and qty > limit:
        return MAX_ORDER_QTY, f"quantity {qty} > max {limit}"
    return None


def max_notional(price: int, qty: int, size_scale: int, limit: int | None) -> Verdict | None:
    """``price x qty / 10^size_scale`` (price-scaled money) is at most ``limit``; exact, no rounding."""
    if limit is not None and price * qty > limit * 10**size_scale:
        return MAX_NOTIONAL, f"notional {notional(price, qty, size_scale)} > max {limit} (price {price} x quantity {qty})"
    return None


def notional(price: int, qty: int, size_scale: int) -> int:
    """``price x qty / 10^size_scale`` rounded up: price-scaled money."""
    return -(-price * qty // 10**size_scale)


def worst_position(side: str, qty: int, position: int, open_buy: int, open_sell: int) -> int:
    """The position if every open order on ``side`` and this one filled completely."""
    return position + open_buy + qty if side == BUY else position - open_sell - qty


def position_limit(side: str, qty: int, position: int, open_buy: int, open_sell: int, limit: int | None) -> Verdict | None:
    """The worst-case position on the order's side (open orders on that side count as filled) stays within ``limit``."""
    if limit is None:
        return None
    worst = worst_position(side, qty, position, open_buy, open_sell)
    if abs(worst) > limit:
        open_same = open_buy if side == BUY else open_sell
        return POSITION_LIMIT, f"worst-case position {worst} (position {position}, open {side} {open_same}, order {qty}) beyond +/-{limit}"
    return None


def reduce_only(side: str, qty: int, position: int, open_buy: int, open_sell: int) -> Verdict | None:
    """The order shrinks the position without crossing zero, even if every open order on its side filled."""
    worst = worst_position(side, qty, position, open_buy, open_sell)
    shrinks = (position > 0 and side == SELL and worst >= 0) or (position < 0 and side == BUY and worst <= 0)
    if not shrinks:
        return REDUCE_ONLY, f"{side} {qty} does not reduce position {position} (worst case {worst})"
    return None


def gross_exposure(current: int, after: int, limit: int | None) -> Verdict | None:
    """The account's worst-case gross exposure with the order (money at ``money_scale``) is at most ``limit``."""
    if limit is not None and after > limit:
        return GROSS_EXPOSURE, f"gross exposure {after} (now {current}) > max {limit}"
    return None


def price_band(price: int, reference: int, band_bps: int | None) -> Verdict | None:
    """``|price - reference|`` is at most ``band_bps`` basis points of the reference price."""
    if band_bps is not None and abs(price - reference) * BPS > band_bps * reference:
        return PRICE_BAND, f"price {price} is more than {band_bps} bps from the reference {reference}"
    return None


def market_protection(bid: int | None, ask: int | None, max_spread_bps: int | None) -> Verdict | None:
    """A market order needs a two-sided quote whose spread is at most ``max_spread_bps`` of the mid."""
    if bid is None or ask is None:
        return NO_MARKET_DATA, f"a MARKET order needs a two-sided quote (bid {bid}, ask {ask})"
    # spread / mid <= bps / 10^4  <=>  (ask - bid) * 2 * 10^4 <= bps * (ask + bid)
    if max_spread_bps is not None and (ask - bid) * 2 * BPS > max_spread_bps * (ask + bid):
        return SPREAD_TOO_WIDE, f"spread {ask - bid} (bid {bid}, ask {ask}) is wider than {max_spread_bps} bps of the mid"
    return None


def daily_loss(pnl: int, limit: int | None) -> Verdict | None:
    """Today's PnL (realized + unrealized, money at ``money_scale``) has not lost more than ``limit``."""
    if limit is not None and pnl < -limit:
        return DAILY_LOSS_LIMIT, f"daily PnL {pnl} is below -{limit}"
    return None


def to_money(value: int, from_scale: int, money_scale: int) -> int:
    """A price-scaled amount at ``money_scale``, rounded away from zero (so exposure and losses are never understated)."""
    if money_scale >= from_scale:
        return value * 10 ** (money_scale - from_scale)
    div = 10 ** (from_scale - money_scale)
    q = (abs(value) + div - 1) // div
    return q if value >= 0 else -q


class TokenBucket:
    """An order-rate limiter in event time: ``burst`` tokens, refilled at ``rate`` per second, one per order.

    Integer exact: the level is kept in nano-tokens (one order costs 10^9), refilled by ``rate`` per
    nanosecond of event time. Time that goes backwards (a late record) refills nothing.
    """

    __slots__ = ("level", "last_ns")

    def __init__(self, level: int = -1, last_ns: int = -1) -> None:
        self.level = level  # nano-tokens; -1 = never used (full)
        self.last_ns = last_ns

    def take(self, ts_ns: int, rate: int | None, burst: int | None) -> Verdict | None:
        """Spend one token at ``ts_ns``, or refuse (and spend nothing) when the bucket is empty."""
        if rate is None:
            return None
        cap = (burst if burst is not None else max(rate, 1)) * NS_PER_S
        level = cap if self.level < 0 else self.level
        if self.last_ns >= 0 and ts_ns > self.last_ns:
            level = min(cap, level + (ts_ns - self.last_ns) * rate)
        if ts_ns > self.last_ns:
            self.last_ns = ts_ns
        if level < NS_PER_S:
            self.level = level
            return RATE_LIMIT, f"more than {rate} orders/s (burst {cap // NS_PER_S})"
        self.level = level - NS_PER_S
        return None
