"""Pre-trade checks as pure functions: every rule at its limit (passes) and one unit beyond (its reason code)."""

from __future__ import annotations

import pytest

from streams.processors.risk import checks as c

# (check call at the boundary, the same one unit beyond, reason code beyond)
BOUNDARIES = [
    ("max_order_qty", lambda: c.max_order_qty(100, 100), lambda: c.max_order_qty(101, 100), c.MAX_ORDER_QTY),
    # 1872500 x 40 / 10^0 = 74_900_000 ; price-scaled notional limit exactly that
    ("max_notional", lambda: c.max_notional(1_872_500, 40, 0, 74_900_000), lambda: c.max_notional(1_872_500, 40, 0, 74_899_999),
     c.MAX_NOTIONAL),
    # size_scale 8 (BTC): 0.5 BTC at 42150.50 (scale 2) = 2107525 (21075.25)
    ("max_notional scaled", lambda: c.max_notional(4_215_050, 50_000_000, 8, 2_107_525),
     lambda: c.max_notional(4_215_050, 50_000_001, 8, 2_107_525), c.MAX_NOTIONAL),
    # long 60, open buys 30, buy 10 -> worst 100
    ("position buy", lambda: c.position_limit("BUY", 10, 60, 30, 999, 100), lambda: c.position_limit("BUY", 11, 60, 30, 999, 100),
     c.POSITION_LIMIT),
    # short -60, open sells 30, sell 10 -> worst -100
    ("position sell", lambda: c.position_limit("SELL", 10, -60, 999, 30, 100),
     lambda: c.position_limit("SELL", 11, -60, 999, 30, 100), c.POSITION_LIMIT),
    ("gross exposure", lambda: c.gross_exposure(10, 500, 500), lambda: c.gross_exposure(10, 501, 500), c.GROSS_EXPOSURE),
    # reference 10000, band 50 bps = 50 either side
    ("price band above", lambda: c.price_band(10_050, 10_000, 50), lambda: c.price_band(10_051, 10_000, 50), c.PRICE_BAND),
    ("price band below", lambda: c.price_band(9_950, 10_000, 50), lambda: c.price_band(9_949, 10_000, 50), c.PRICE_BAND),
    # mid 10000, 20 bps of it = 20: bid 9990 ask 10010 is exactly 20
    ("spread", lambda: c.market_protection(9_990, 10_010, 20), lambda: c.market_protection(9_989, 10_011, 20), c.SPREAD_TOO_WIDE),
    ("no bid", lambda: c.market_protection(1, 1, 0), lambda: c.market_protection(None, 10_010, 20), c.NO_MARKET_DATA),
    ("no ask", lambda: c.market_protection(1, 1, 0), lambda: c.market_protection(9_990, None, 20), c.NO_MARKET_DATA),
    ("daily loss", lambda: c.daily_loss(-1000, 1000), lambda: c.daily_loss(-1001, 1000), c.DAILY_LOSS_LIMIT),
    # reduce-only: long 50 with 20 already being sold: selling 30 more lands exactly at 0
    ("reduce long", lambda: c.reduce_only("SELL", 30, 50, 0, 20), lambda: c.reduce_only("SELL", 31, 50, 0, 20), c.REDUCE_ONLY),
    ("reduce short", lambda: c.reduce_only("BUY", 50, -50, 0, 0), lambda: c.reduce_only("BUY", 51, -50, 0, 0), c.REDUCE_ONLY),
    ("reduce wrong side", lambda: c.reduce_only("SELL", 1, 1, 0, 0), lambda: c.reduce_only("BUY", 1, 1, 0, 0), c.REDUCE_ONLY),
    ("reduce flat", lambda: c.reduce_only("SELL", 1, 1, 0, 0), lambda: c.reduce_only("SELL", 1, 0, 0, 0), c.REDUCE_ONLY),
    ("qty positive", lambda: c.order_shape("LIMIT", 100, 1, 1, 1), lambda: c.order_shape("LIMIT", 100, 0, 1, 1), c.INVALID_QUANTITY),
    ("qty on lot", lambda: c.order_shape("LIMIT", 100, 2000, 1, 1000), lambda: c.order_shape("LIMIT", 100, 2001, 1, 1000),
     c.INVALID_QUANTITY),
    ("price positive", lambda: c.order_shape("LIMIT", 100, 1, 100, 1), lambda: c.order_shape("LIMIT", 0, 1, 100, 1), c.INVALID_PRICE),
    ("price on tick", lambda: c.order_shape("LIMIT", 200, 1, 100, 1), lambda: c.order_shape("LIMIT", 201, 1, 100, 1), c.INVALID_PRICE),
    ("limit needs price", lambda: c.order_shape("MARKET", None, 1, 1, 1), lambda: c.order_shape("LIMIT", None, 1, 1, 1),
     c.INVALID_PRICE),
    ("market has no price", lambda: c.order_shape("MARKET", None, 1, 1, 1), lambda: c.order_shape("MARKET", 100, 1, 1, 1),
     c.INVALID_PRICE),
]


@pytest.mark.parametrize(("name", "at", "beyond", "code"), BOUNDARIES, ids=[b[0] for b in BOUNDARIES])
def test_check_at_its_limit_and_one_beyond(name: str, at, beyond, code: str) -> None:
    assert at() is None
    verdict = beyond()
    assert verdict is not None and verdict[0] == code, verdict
    assert verdict[1]  # a detail for people


def test_unset_limits_never_refuse() -> None:
    assert c.max_order_qty(10**18, None) is None
    assert c.max_notional(10**9, 10**9, 0, None) is None
    assert c.position_limit("BUY", 10**9, 0, 0, 0, None) is None
    assert c.price_band(1, 10**9, None) is None
    assert c.market_protection(1, 10**9, None) is None
    assert c.daily_loss(-(10**18), None) is None


def test_token_bucket_in_event_time() -> None:
    bucket = c.TokenBucket()
    t0 = 1_000 * c.NS_PER_S
    # burst 3 at 2/s: three at once pass, the fourth is refused and spends nothing
    assert [bucket.take(t0, 2, 3) for _ in range(3)] == [None] * 3
    assert bucket.take(t0, 2, 3)[0] == c.RATE_LIMIT
    # 0.5 s refills exactly one token at 2/s; 1 ns less does not
    assert bucket.take(t0 + c.NS_PER_S // 2 - 1, 2, 3)[0] == c.RATE_LIMIT
    assert bucket.take(t0 + c.NS_PER_S // 2, 2, 3) is None
    # time going backwards refills nothing
    assert bucket.take(t0, 2, 3)[0] == c.RATE_LIMIT
    # a long quiet spell refills to the burst, never beyond
    late = t0 + 100 * c.NS_PER_S
    assert [bucket.take(late, 2, 3) is None for _ in range(4)] == [True, True, True, False]
    assert c.TokenBucket().take(t0, None, None) is None


@pytest.mark.parametrize(("value", "from_scale", "to_scale", "expected"), [
    (12345, 4, 4, 12345), (12345, 2, 4, 1234500), (12345, 5, 4, 1235), (-12345, 5, 4, -1235), (12340, 5, 4, 1234), (0, 8, 2, 0),
])
def test_money_rounds_away_from_zero(value: int, from_scale: int, to_scale: int, expected: int) -> None:
    assert c.to_money(value, from_scale, to_scale) == expected
