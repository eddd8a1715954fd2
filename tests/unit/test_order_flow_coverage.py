"""The simulated order flow walks every path of risk and matching: run it, with a simulated feed, through both processors.

The feed goes through the normalize processor; risk's accepted commands go straight into matching and
matching's fills and order events straight back into risk (``tests/order_flow_support.py``). Every risk
reason code, every matching event, order type, cancel reason and refusal must show up; the default mix
must read like a trading day (mostly accepted, a few percent of each rejection); and at the end risk's
picture of the open orders must be matching's.
"""

from __future__ import annotations

import pytest

from connectors.orders.simulator import OrderSimConfig, simulate_orders
from connectors.venues.simulator import SimConfig
from order_flow_support import PipelineResult, market_data, run_pipeline
from streams.processors.matching import MatchingConfig, MatchingProcessor
from streams.processors.matching.orders import PRICE, QTY
from streams.processors.risk import REASON_CODES, RiskProcessor

T0 = 1_767_364_200_000_000_000
RUNS: dict[int, tuple[PipelineResult, RiskProcessor, MatchingProcessor]] = {}


def run(venues: int) -> tuple[PipelineResult, RiskProcessor, MatchingProcessor]:
    if venues not in RUNS:
        feed = SimConfig(venues=venues, symbols=4, events=40_000, seed=7, start_ns=T0)
        cfg = OrderSimConfig.for_feed(feed, orders=10_000, accounts=4)
        risk, matching = RiskProcessor(cfg.risk, 0), MatchingProcessor(MatchingConfig(full_audit=True), 0)
        RUNS[venues] = (run_pipeline(simulate_orders(cfg), market_data(feed), risk, matching), risk, matching)
    return RUNS[venues]


@pytest.mark.parametrize("venues", [1, 3])
def test_every_risk_reason_every_matching_path(venues: int) -> None:
    res, _, _ = run(venues)
    reasons = res.reasons()
    expected = set(REASON_CODES)
    if venues > 1:  # with three venues, all of them halting one symbol at once is too rare to count on
        expected.discard("VENUE_UNHEALTHY")
    missing = expected - set(reasons)
    assert not missing, f"never seen: {sorted(missing)}; seen {dict(reasons)}"
    assert {("CANCEL", "ACCEPTED"), ("CANCEL", "UNKNOWN_ORDER"), ("REPLACE", "ACCEPTED"), ("REPLACE", "UNKNOWN_ORDER"),
            ("REPLACE", "HALTED"), ("NEW", "KILL_SWITCH")} <= set(res.decisions)
    for event in ("OrderAccepted", "OrderRested", "OrderPartiallyFilled", "OrderFilled", "OrderCancelled", "OrderExpired",
                  "OrderRejected", "OrderCancelRejected", "Fill", "Trade", "BookDelta"):
        assert res.events[event] > 0, event
    assert set(res.order_types) == {("LIMIT", "DAY"), ("LIMIT", "GTC"), ("LIMIT", "GTD"), ("LIMIT", "IOC"), ("LIMIT", "FOK"),
                                    ("MARKET", "IOC")}
    assert set(res.cancel_reasons) == {"CLIENT_REQUEST", "IOC_REMAINDER", "MARKET_REMAINDER", "FOK_UNFILLED",
                                       "SELF_TRADE_PREVENTION", "CANCEL_ALL", "KILL_SWITCH"}
    assert {("NEW", "POST_ONLY_WOULD_CROSS"), ("REPLACE", "POST_ONLY_WOULD_CROSS"), ("NEW", "INVALID_EXPIRY"),
            ("NEW", "INVALID_ORDER")} <= set(res.matching_rejects)
    assert not res.matching_dead, res.matching_dead  # races are answers (cancel rejects), never dead letters
    assert not res.risk_dead  # the operator script is signed right: risk refuses none of it


def test_replaces_keep_or_lose_priority_and_fills_come_in_pairs(venues: int = 1) -> None:
    res, _, _ = run(venues)
    # smaller quantity at the same price keeps its place; a new price or a larger quantity goes to the back
    assert res.replace_priority["kept"] > 100 and res.replace_priority["lost"] > 100, res.replace_priority
    assert res.events["Fill"] == 2 * res.events["Trade"]
    assert res.events["OrderPartiallyFilled"] > 100 and res.events["OrderFilled"] > 100


def test_the_default_mix_reads_like_a_trading_day() -> None:
    res, _, _ = run(3)
    reasons = res.reasons()
    total = sum(reasons.values())
    accepted = reasons.pop("ACCEPTED") / total
    assert 0.75 <= accepted <= 0.9, accepted
    assert all(n / total <= 0.04 for n in reasons.values()), {k: round(n / total, 4) for k, n in reasons.items()}
    assert sum(reasons.values()) / total >= 0.1


@pytest.mark.parametrize("venues", [1, 3])
def test_risk_and_matching_agree_on_the_open_orders_at_the_end(venues: int) -> None:
    _, risk, matching = run(venues)
    in_matching = {(a, cid): (sym, o[QTY], o[PRICE]) for sym, m in matching.engine.markets.items() for (a, cid), o in m.open.items()}
    in_risk = {(a, cid): (o.symbol, o.qty, o.price) for a, acct in risk.accounts.items() for cid, o in acct.orders.items()}
    assert in_matching and in_risk == in_matching
    assert all(not o.pending for acct in risk.accounts.values() for o in acct.orders.values())
