"""Contracts between the trading processors, checked on the chain in memory (tests/pipeline_support.py) with the
shipped configurations: what one processor writes is what the next one assumes it reads."""

from __future__ import annotations

import pytest

from connectors.dropcopy import DropCopyConfig
from pipeline_support import MS, Chain
from streams.processors.ledger.config import FeeSchedule
from streams.processors.matching import MatchingConfig
from streams.processors.matching.orders import PRICE, QTY
from streams.processors.reconcile import ReconcileConfig


def test_matching_fills_carry_the_venue_code_the_fee_schedule_prices() -> None:
    chain = Chain()
    chain.start()
    chain.new("A1", "SELL", 10, 1_870_500)  # rests: the maker
    chain.tick()
    chain.new("A2", "BUY", 10, 1_870_500)  # takes it
    fills = chain.values("fills")
    assert len(fills) == 2 and {f["venue"] for f in fills} == {MatchingConfig().venue} == {"internal"}
    assert "internal" in FeeSchedule.load().venues  # infra/fees.yaml prices matching's own venue...
    fee_lines = [(e["account"], e["direction"], e["amount"]) for e in chain.values("ledger.entries") if e["account"].endswith(":fees")]
    # ...and the ledger charged its rates: maker 0 ppm (no fee lines; the default schedule would pay a 20 ppm rebate),
    # taker 25 ppm of 187.05 x 10 = 0.0467625, rounded up at scale 4
    assert fee_lines == [("A2:fees", "DEBIT", 468)]
    assert chain.dead == {}


def test_a_reconcile_halt_signed_with_its_default_key_halts_risk_with_the_shipped_risk_config() -> None:
    recon = ReconcileConfig()
    chain = Chain(dropcopy=DropCopyConfig(seed=0, missing_ppm=1_000_000))  # the venue never reports: every fill breaks
    chain.start()
    for _ in range(recon.halt_threshold // 2 + 1):  # two fills per trade: more open breaks than the threshold
        chain.tick(10 * MS)
        chain.new("A1", "SELL", 1, 1_870_500)
        chain.new("A2", "BUY", 1, 1_870_500)
    chain.tick(recon.match_window_ns + MS)
    chain.quote()
    chain.new("A1", "SELL", 1, 1_870_500)
    chain.new("A2", "BUY", 1, 1_870_500)  # its fills move reconcile's clock past every earlier window
    halts = chain.values("ops.commands", "Halt")
    assert len(halts) == 1 and halts[0]["operator_id"] == recon.operator_id
    assert chain.dead.get("risk", []) == []  # risk knew the operator and its key: not UNKNOWN_OPERATOR / BAD_SIGNATURE
    chain.tick()
    cid = chain.new("A3", "BUY", 1, 1_870_000)
    [decision] = chain.decisions(cid)
    assert decision["reason"] == "HALTED" and recon.operator_id in decision["detail"]


@pytest.mark.parametrize(("kind", "fields", "reason"), [("KillSwitch", {"engaged": True}, "KILL_SWITCH"), ("CancelAll", {}, "CANCEL_ALL")])
def test_risks_generated_cancels_carry_the_reason_matching_reports(kind: str, fields: dict, reason: str) -> None:
    chain = Chain()
    chain.start()
    a = chain.new("A1", "BUY", 5, 1_869_000)
    b = chain.new("A2", "SELL", 5, 1_872_000)
    chain.tick()
    chain.command(kind, **fields)
    cancels = chain.values("orders.accepted", "CancelOrder")
    assert sorted((c["client_order_id"], c.get("reason")) for c in cancels) == [(a, reason), (b, reason)]
    cancelled = chain.values("order.events", "OrderCancelled")
    assert sorted((e["client_order_id"], e["reason"]) for e in cancelled) == [(a, reason), (b, reason)]
    assert chain.risk.accounts["A1"].orders == {} and chain.risk.accounts["A2"].orders == {}  # closed by matching's events


def _risk_and_matching_terms(chain: Chain, account: str, cid: str) -> tuple[tuple[int, int | None], tuple[int, int]]:
    order = chain.risk.accounts[account].orders[cid]
    book = chain.matching.engine.markets["AAPL"].open[account, cid]
    return (order.qty, order.price), (book[QTY], book[PRICE])


def test_a_replace_accepted_before_risk_saw_the_new_orders_rested_event_keeps_the_replaced_terms() -> None:
    chain = Chain()
    chain.start()
    chain.hold("risk", "order.events")  # matching's events reach risk late (it runs behind on order.events)
    cid = chain.new("A1", "BUY", 10, 1_869_000)
    chain.tick()
    chain.replace("A1", cid, price=1_869_500)
    chain.release("risk", "order.events")  # OrderAccepted, OrderRested (the NEW), OrderRested (the replace)
    risk, matching = _risk_and_matching_terms(chain, "A1", cid)
    assert risk == matching == (10, 1_869_500)
    assert chain.risk.accounts["A1"].orders[cid].worst_leaves() == 10
    chain.risk.check_invariants()


def test_two_replaces_in_flight_the_second_refused_by_matching_leave_risk_at_the_first() -> None:
    chain = Chain()
    chain.start()
    chain.new("A2", "SELL", 5, 1_871_000)
    cid = chain.new("A1", "BUY", 10, 1_869_000, post_only=True)
    chain.hold("risk", "order.events")
    chain.tick()
    chain.replace("A1", cid, qty=20)
    chain.tick()
    chain.replace("A1", cid, qty=30, price=1_871_000)  # a post-only buy at the resting ask: matching refuses it
    chain.release("risk", "order.events")
    [refused] = chain.values("order.events", "OrderCancelRejected")
    assert (refused["response_to"], refused["reason_code"], refused["ord_status"]) == ("REPLACE", "POST_ONLY_WOULD_CROSS", "ACCEPTED")
    risk, matching = _risk_and_matching_terms(chain, "A1", cid)
    assert risk == matching == (20, 1_869_000)
    assert chain.risk.accounts["A1"].legs["AAPL"].open_buy == 20  # the worst case shrinks back once matching answered
    chain.risk.check_invariants()


def test_a_replace_and_a_cancel_that_lose_the_race_to_a_fill_are_cancel_rejects_risk_follows() -> None:
    chain = Chain()
    chain.start()
    cid = chain.new("A1", "SELL", 10, 1_870_500)  # rests
    chain.tick()
    chain.hold("matching", "orders.accepted")  # matching lags: risk accepts all three before matching sees any
    chain.new("A2", "BUY", 10, 1_870_500)  # takes all of it
    chain.replace("A1", cid, qty=8)
    chain.send("orders.in", "hftstream.orders.CancelOrder",
               {"account": "A1", "symbol": "AAPL", "client_order_id": cid, "reason": None, "ts_ns": chain.now}, "A1")
    assert [d["reason"] for d in chain.decisions(cid)] == ["ACCEPTED"] * 3
    chain.release("matching", "orders.accepted")
    assert chain.dead == {}  # no dead letter: the races are answered
    rejects = [(r["response_to"], r["reason_code"], r["cxl_rej_reason"], r["ord_status"], r["order_id"])
               for r in chain.values("order.events", "OrderCancelRejected")]
    assert rejects == [("REPLACE", "TOO_LATE_TO_REPLACE", 0, "FILLED", "AAPL:1"), ("CANCEL", "TOO_LATE_TO_CANCEL", 0, "FILLED", "AAPL:1")]
    acct = chain.risk.accounts["A1"]
    assert cid not in acct.orders and acct.legs["AAPL"].open_sell == 0 and acct.legs["AAPL"].position == -10
    chain.risk.check_invariants()


def test_replaces_answered_at_once_still_track_matching() -> None:
    chain = Chain()
    chain.start()
    chain.new("A2", "SELL", 5, 1_871_000)
    cid = chain.new("A1", "BUY", 10, 1_869_000, post_only=True)
    chain.tick()
    chain.replace("A1", cid, qty=8)
    chain.tick()
    chain.replace("A1", cid, price=1_871_000)  # refused by matching
    chain.tick()
    chain.replace("A1", cid, price=1_869_900, qty=12)
    risk, matching = _risk_and_matching_terms(chain, "A1", cid)
    assert risk == matching == (12, 1_869_900)
    assert chain.risk.accounts["A1"].legs["AAPL"].open_buy == 12
    chain.risk.check_invariants()
