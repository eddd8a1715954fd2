"""The matching processor, pure: every rule at its boundary and just beyond, with its reason code."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from matching_support import CANCEL, NEW, T0, Desk, kinds, new_value, of, order_events
from streams.processors import PROCESSORS
from streams.processors.base import Input, Message, Reject
from streams.processors.matching.book import Level
from streams.processors.matching import MatchingConfig, MatchingProcessor
from streams.processors.matching.orders import (
    ACCEPTED, CANCELLED, FILLED, NEW as NEW_STATE, PARTIALLY_FILLED, REJECTED, STATE, TRANSITIONS,
    StateMachineBug, advance, new_order,
)
from streams.processors.matching.processor import InvariantViolation

P = 10_000  # a price; one tick = 1


def desk_with_asks(*levels: tuple[str, str, int, int]) -> Desk:
    """A desk whose book holds the given asks (account, cid, qty, price), in this arrival order."""
    d = Desk()
    for account, cid, qty, price in levels:
        d.new(account, cid, "SELL", qty, price)
    return d


def test_registered_with_its_inputs_and_outputs() -> None:
    assert PROCESSORS["matching"] is MatchingProcessor
    proc = MatchingProcessor(MatchingConfig(), 3)
    assert proc.inputs == (Input("orders.accepted"),)
    assert set(proc.outputs) == {"order.events", "fills", "md.book"}


def test_config_is_frozen_and_forbids_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        MatchingConfig(vneue="x")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        MatchingConfig(retain_closed=-1)
    with pytest.raises(ValidationError):
        MatchingConfig().venue = "other"  # type: ignore[misc]


# -- price boundaries -------------------------------------------------------------------------

@pytest.mark.parametrize(("side", "price", "trades"), [
    ("BUY", P + 1, True),  # one tick better than the ask: crosses
    ("BUY", P, True),  # equal: crosses
    ("BUY", P - 1, False),  # one tick worse: rests
    ("SELL", P - 1, True),
    ("SELL", P, True),
    ("SELL", P + 1, False),
])
def test_a_limit_order_executes_exactly_when_its_price_reaches_the_other_side(side: str, price: int, trades: bool) -> None:
    d = Desk()
    d.new("M", "m1", "SELL" if side == "BUY" else "BUY", 10, P)
    out = d.new("T", "t1", side, 10, price)
    assert bool(of(out, "Trade")) is trades
    if trades:
        assert [t["price"] for t in of(out, "Trade")] == [P]  # at the resting order's price, not the taker's
        assert d.bids() == [] and d.asks() == []
    else:
        assert order_events(out)[-1] == ("OrderRested", "t1", f"10@{price}")


def test_a_sweep_takes_best_price_first_then_time_and_rests_the_remainder() -> None:
    d = desk_with_asks(("A", "a1", 5, P + 2), ("B", "b1", 5, P), ("C", "c1", 5, P + 1), ("D", "d1", 5, P))
    out = d.new("T", "t1", "BUY", 18, P + 1)
    assert [(f["client_order_id"], f["quantity"], f["price"]) for f in of(out, "Fill") if f["liquidity"] == "MAKER"] == [
        ("b1", 5, P), ("d1", 5, P), ("c1", 5, P + 1),
    ]
    assert order_events(out)[-1] == ("OrderRested", "t1", f"3@{P + 1}")
    assert d.asks() == [(P + 2, 5)] and d.bids() == [(P + 1, 3)]
    deltas = [(v["action"], v["side"], v["price"], v["size"]) for v in of(out, "BookDelta")]
    assert deltas == [("DELETE", "SELL", P, 0), ("DELETE", "SELL", P + 1, 0), ("ADD", "BUY", P + 1, 3)]
    seqs = [o.value["seq"] for o in out if o.topic == "md.book"]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # md.book seq per symbol has no gap


def test_partial_fill_of_the_resting_order_keeps_it_first_in_the_queue() -> None:
    d = desk_with_asks(("A", "a1", 10, P), ("B", "b1", 10, P))
    assert order_events(d.new("T", "t1", "BUY", 4, P))[1:] == [
        ("OrderPartiallyFilled", "a1", f"4@{P} cum 4 leaves 6"), ("OrderFilled", "t1", f"4@{P} cum 4"),
    ]
    out = d.new("T", "t2", "BUY", 7, P)
    assert [(f["client_order_id"], f["quantity"]) for f in of(out, "Fill") if f["liquidity"] == "MAKER"] == [("a1", 6), ("b1", 1)]


def test_ids_are_derived_from_the_symbol_and_per_book_counters() -> None:
    d = Desk()
    d.new("A", "a1", "SELL", 5, P)
    d.new("A", "x", "SELL", 5, P, symbol="MSFT")
    out = d.new("B", "b1", "BUY", 5, P)
    assert of(out, "OrderAccepted")[0]["order_id"] == "AAPL:2"
    assert {f["fill_id"] for f in of(out, "Fill")} == {"AAPL:T1:B", "AAPL:T1:S"}
    assert {f["trade_id"] for f in of(out, "Fill")} == {"AAPL:T1"} == {t["trade_id"] for t in of(out, "Trade")}
    assert of(out, "Trade")[0]["aggressor_side"] == "BUY"
    assert {o.key for o in out if o.topic in ("order.events", "fills")} == {"A", "B"}
    assert {o.key for o in out if o.topic == "md.book"} == {"AAPL"}


# -- order types ------------------------------------------------------------------------------

def test_market_order_against_an_empty_book_is_accepted_then_cancelled_whole() -> None:
    out = Desk().new("T", "t1", "BUY", 10)
    assert order_events(out) == [("OrderAccepted", "t1", ""), ("OrderCancelled", "t1", "10 MARKET_REMAINDER")]
    assert of(out, "BookDelta") == []


def test_market_order_takes_any_price_and_never_rests() -> None:
    d = desk_with_asks(("A", "a1", 5, P), ("B", "b1", 5, P + 500))
    out = d.new("T", "t1", "BUY", 12)
    assert [t["price"] for t in of(out, "Trade")] == [P, P + 500]
    assert order_events(out)[-1] == ("OrderCancelled", "t1", "2 MARKET_REMAINDER")
    assert d.bids() == [] and d.asks() == []


@pytest.mark.parametrize(("qty", "filled", "cancelled"), [(8, 8, 0), (10, 10, 0), (11, 10, 1)])
def test_ioc_executes_what_crosses_and_cancels_the_rest(qty: int, filled: int, cancelled: int) -> None:
    d = desk_with_asks(("A", "a1", 10, P), ("B", "b1", 10, P + 1))
    out = d.new("T", "t1", "BUY", qty, P, tif="IOC")
    assert sum(t["size"] for t in of(out, "Trade")) == filled
    if cancelled:
        assert order_events(out)[-1] == ("OrderCancelled", "t1", f"{cancelled} IOC_REMAINDER")
    else:
        assert order_events(out)[-1][0] == "OrderFilled"
    assert d.bids() == []  # never rests


@pytest.mark.parametrize(("qty", "executes"), [(15, True), (16, False)])
def test_fok_fills_exactly_enough_and_kills_one_short(qty: int, executes: bool) -> None:
    d = desk_with_asks(("A", "a1", 10, P), ("B", "b1", 5, P + 1), ("C", "c1", 100, P + 2))
    out = d.new("T", "t1", "BUY", qty, P + 1, tif="FOK")
    if executes:
        assert sum(t["size"] for t in of(out, "Trade")) == 15
        assert order_events(out)[-1] == ("OrderFilled", "t1", f"5@{P + 1} cum 15")
    else:
        assert order_events(out) == [("OrderAccepted", "t1", ""), ("OrderCancelled", "t1", f"{qty} FOK_UNFILLED")]
        assert d.asks() == [(P, 10), (P + 1, 5), (P + 2, 100)]  # nothing touched


def test_fok_does_not_count_the_accounts_own_orders_and_leaves_them_alone_when_killed() -> None:
    d = desk_with_asks(("T", "own", 10, P), ("A", "a1", 5, P))
    out = d.new("T", "t1", "BUY", 6, P, tif="FOK")
    assert order_events(out)[-1] == ("OrderCancelled", "t1", "6 FOK_UNFILLED")
    assert d.asks() == [(P, 15)]
    out = d.new("T", "t2", "BUY", 5, P, tif="FOK")  # exactly the other accounts' quantity
    assert ("OrderCancelled", "own", "10 SELF_TRADE_PREVENTION") in order_events(out)
    assert order_events(out)[-1] == ("OrderFilled", "t2", f"5@{P} cum 5")


@pytest.mark.parametrize(("side", "price", "rejected"), [
    ("BUY", P - 1, False),  # one tick below the ask: rests
    ("BUY", P, True),  # touching the ask would execute
    ("BUY", P + 1, True),
    ("SELL", P - 9, False),  # one tick above the bid (P - 10)
    ("SELL", P - 10, True),
])
def test_post_only_rests_below_the_touch_and_is_rejected_when_it_would_cross(side: str, price: int, rejected: bool) -> None:
    d = Desk()
    d.new("A", "a1", "SELL", 10, P)
    d.new("B", "b1", "BUY", 10, P - 10)
    out = d.new("T", "t1", side, 5, price, post_only=True)
    if rejected:
        assert order_events(out) == [("OrderRejected", "t1", "POST_ONLY_WOULD_CROSS")]
        assert of(out, "OrderRejected")[0]["order_id"] is None and of(out, "OrderRejected")[0]["command"] == "NEW"
        assert of(out, "Trade") == []
    else:
        assert order_events(out) == [("OrderAccepted", "t1", ""), ("OrderRested", "t1", f"5@{price}")]


@pytest.mark.parametrize(("kw", "code"), [
    ({"qty": 0, "price": P}, "INVALID_QUANTITY"),
    ({"qty": -5, "price": P}, "INVALID_QUANTITY"),
    ({"qty": 1, "price": 0}, "INVALID_PRICE"),
    ({"qty": 1, "price": None, "order_type": "LIMIT"}, "INVALID_PRICE"),
    ({"qty": 1, "price": P, "order_type": "MARKET"}, "INVALID_PRICE"),
    ({"qty": 1, "price": P, "tif": "GTD"}, "INVALID_EXPIRY"),
    ({"qty": 1, "price": P, "tif": "GTD", "expire": "ts"}, "INVALID_EXPIRY"),  # expiring at arrival
    ({"qty": 1, "price": P, "tif": "GTC", "expire": "ts+1"}, "INVALID_EXPIRY"),
    ({"qty": 1, "price": P, "tif": "IOC", "post_only": True}, "INVALID_ORDER"),
    ({"qty": 1, "price": None, "post_only": True}, "INVALID_ORDER"),
])
def test_invalid_new_orders_are_rejected_events_without_an_order_id(kw: dict, code: str) -> None:
    d = Desk()
    ts = T0 + 1000
    if "expire" in kw:
        kw["expire"] = ts if kw["expire"] == "ts" else ts + 1
    qty, price = kw.pop("qty"), kw.pop("price")
    out = d.new("T", "t1", "BUY", qty, price, ts=ts, **kw)
    assert order_events(out) == [("OrderRejected", "t1", code)]
    assert of(out, "OrderRejected")[0]["order_id"] is None
    # a rejected order is not remembered: its client order id can be used again
    assert order_events(d.new("T", "t1", "BUY", 1, P, ts=ts))[0] == ("OrderAccepted", "t1", "")


def test_gtd_accepted_one_ns_before_its_expiry() -> None:
    out = Desk().new("T", "t1", "BUY", 1, P, ts=T0, tif="GTD", expire=T0 + 1)
    assert order_events(out) == [("OrderAccepted", "t1", ""), ("OrderRested", "t1", f"1@{P}")]


# -- expiry in event time ---------------------------------------------------------------------

@pytest.mark.parametrize(("at", "expired"), [(-1, False), (0, True), (1, True)])
def test_gtd_order_expires_at_expire_ts_ns_in_event_time(at: int, expired: bool) -> None:
    d = Desk()
    expire = T0 + 1_000
    d.new("A", "a1", "SELL", 10, P, ts=T0, tif="GTD", expire=expire)
    out = d.new("B", "b1", "BUY", 4, P, ts=expire + at)
    if expired:
        assert order_events(out)[0] == ("OrderExpired", "a1", "10")
        assert of(out, "OrderExpired")[0]["ts_ns"] == expire
        assert of(out, "Trade") == []
        assert order_events(out)[-1] == ("OrderRested", "b1", f"4@{P}")
    else:
        assert order_events(out)[-1] == ("OrderFilled", "b1", f"4@{P} cum 4")
        assert d.asks() == [(P, 6)]


def test_expiry_is_driven_by_any_command_of_the_task_and_reports_what_had_filled() -> None:
    d = Desk()
    d.new("A", "a1", "SELL", 10, P, ts=T0, tif="GTD", expire=T0 + 50)
    d.new("B", "b1", "BUY", 3, P, ts=T0 + 10)
    out = d.new("C", "c1", "BUY", 1, 5, symbol="MSFT", ts=T0 + 50)  # another symbol's command moves the clock
    assert of(out, "OrderExpired")[0] == {
        "account": "A", "symbol": "AAPL", "client_order_id": "a1", "order_id": "AAPL:1", "side": "SELL",
        "cum_qty": 3, "expired_qty": 7, "ts_ns": T0 + 50,
    }
    assert [(v["symbol"], v["action"]) for v in of(out, "BookDelta")][0] == ("AAPL", "DELETE")


def test_a_late_command_does_not_move_the_clock_back() -> None:
    d = Desk()
    d.new("A", "a1", "SELL", 10, P, ts=T0, tif="GTD", expire=T0 + 100)
    d.new("B", "b1", "BUY", 1, P - 5, ts=T0 + 99)
    out = d.new("B", "b2", "BUY", 1, P, ts=T0 + 5)  # out of order: still before the expiry
    assert order_events(out)[-1] == ("OrderFilled", "b2", f"1@{P} cum 1")


# -- cancel and replace -----------------------------------------------------------------------

def test_cancel_removes_the_open_remainder_and_names_the_reason() -> None:
    d = desk_with_asks(("A", "a1", 10, P), ("B", "b1", 5, P))
    d.new("T", "t1", "BUY", 4, P)
    out = d.cancel("A", "a1")
    assert order_events(out) == [("OrderCancelled", "a1", "6 CLIENT_REQUEST")]
    assert of(out, "OrderCancelled")[0]["cum_qty"] == 4
    assert [(v["action"], v["size"]) for v in of(out, "BookDelta")] == [("CHANGE", 5)]
    out = d.cancel("B", "b1", reason="KILL_SWITCH")
    assert order_events(out) == [("OrderCancelled", "b1", "5 KILL_SWITCH")]
    assert [(v["action"], v["size"]) for v in of(out, "BookDelta")] == [("DELETE", 0)]


@pytest.mark.parametrize(("change", "keeps_priority"), [
    ({"qty": 9}, True),  # quantity down by one
    ({"qty": 10}, True),  # the same terms: an acknowledged no-op
    ({"qty": 11}, False),  # quantity up by one
    ({"price": P + 1}, False),  # price worse by one tick (and back below, below)
    ({"price": P - 1, "qty": 5}, False),  # price change with a decrease
])
def test_replace_keeps_time_priority_only_for_a_quantity_decrease(change: dict, keeps_priority: bool) -> None:
    d = desk_with_asks(("A", "a1", 10, P), ("B", "b1", 10, P))
    out = d.replace("A", "a1", **change)
    assert kinds(out)[0] == "OrderRested"
    if "price" in change:
        d.replace("A", "a1", price=P)  # back to the level: a new arrival again
    out = d.new("T", "t1", "BUY", 1, P)
    first = [f["client_order_id"] for f in of(out, "Fill") if f["liquidity"] == "MAKER"]
    assert first == (["a1"] if keeps_priority else ["b1"])


def test_replace_quantity_is_the_new_total_and_moving_through_the_book_executes() -> None:
    d = desk_with_asks(("A", "a1", 10, P))
    d.new("B", "b1", "BUY", 10, P - 5)
    d.new("T", "t1", "BUY", 4, P)  # a1: 4 filled, 6 left
    assert order_events(d.replace("A", "a1", qty=7)) == [("OrderRested", "a1", f"3@{P}")]
    out = d.replace("A", "a1", price=P - 5)  # crosses the bid at P - 5: a1 is the taker now
    assert [(f["client_order_id"], f["liquidity"], f["price"], f["quantity"]) for f in of(out, "Fill")] == [
        ("b1", "MAKER", P - 5, 3), ("a1", "TAKER", P - 5, 3),
    ]
    assert order_events(out)[-1] == ("OrderFilled", "a1", f"3@{P - 5} cum 7")


@pytest.mark.parametrize(("change", "code"), [
    ({"qty": 4}, "INVALID_QUANTITY"),  # equal to what filled
    ({"qty": 3}, "INVALID_QUANTITY"),
    ({"qty": 0}, "INVALID_QUANTITY"),
    ({"price": 0}, "INVALID_PRICE"),
    ({}, "INVALID_REPLACE"),
])
def test_invalid_replace_is_a_cancel_reject_and_changes_nothing(change: dict, code: str) -> None:
    d = desk_with_asks(("A", "a1", 10, P))
    d.new("T", "t1", "BUY", 4, P)
    before = d.proc.snapshot()
    out = d.replace("A", "a1", **change)
    assert order_events(out) == [("OrderCancelRejected", "a1", code)]
    [rej] = of(out, "OrderCancelRejected")
    assert (rej["order_id"], rej["response_to"], rej["cxl_rej_reason"], rej["ord_status"]) == ("AAPL:1", "REPLACE", 99, "PARTIALLY_FILLED")
    assert d.asks() == [(P, 6)]
    assert _orders(d.proc.snapshot()) == _orders(before)  # the clock moved (an event was written), the orders did not
    assert order_events(d.replace("A", "a1", qty=5)) == [("OrderRested", "a1", f"1@{P}")]  # one above filled: fine


@pytest.mark.parametrize(("price", "rejected"), [(P - 1, False), (P, True)])
def test_a_post_only_order_cannot_be_replaced_into_the_other_side(price: int, rejected: bool) -> None:
    d = Desk()
    d.new("A", "a1", "SELL", 10, P)
    d.new("B", "b1", "BUY", 10, P - 5, post_only=True)
    out = d.replace("B", "b1", price=price)
    assert order_events(out) == ([("OrderCancelRejected", "b1", "POST_ONLY_WOULD_CROSS")] if rejected else [("OrderRested", "b1", f"10@{price}")])
    assert d.bids() == [(P - 5 if rejected else price, 10)]


# -- self-trade prevention ------------------------------------------------------------------

def test_self_trade_cancels_the_resting_order_and_the_incoming_goes_on() -> None:
    d = desk_with_asks(("A", "a1", 5, P), ("T", "own1", 5, P), ("B", "b1", 5, P), ("T", "own2", 5, P + 1))
    out = d.new("T", "t1", "BUY", 8, P + 1)
    assert order_events(out) == [
        ("OrderAccepted", "t1", ""),
        ("OrderFilled", "a1", f"5@{P} cum 5"),
        ("OrderPartiallyFilled", "t1", f"5@{P} cum 5 leaves 3"),
        ("OrderCancelled", "own1", "5 SELF_TRADE_PREVENTION"),
        ("OrderPartiallyFilled", "b1", f"3@{P} cum 3 leaves 2"),
        ("OrderFilled", "t1", f"3@{P} cum 8"),
    ]
    assert d.asks() == [(P, 2), (P + 1, 5)]  # own2 was not reached: untouched


def test_self_trade_with_only_own_orders_leaves_the_incoming_resting() -> None:
    d = desk_with_asks(("T", "own", 5, P))
    out = d.new("T", "t1", "BUY", 3, P)
    assert order_events(out) == [
        ("OrderAccepted", "t1", ""), ("OrderCancelled", "own", "5 SELF_TRADE_PREVENTION"), ("OrderRested", "t1", f"3@{P}"),
    ]
    assert of(out, "Fill") == [] and d.asks() == [] and d.bids() == [(P, 3)]


# -- illegal transitions: answers (cancel rejects, rejects), never dead letters ----------------

def answer_of(d: Desk, fn, *args, **kw) -> dict:  # type: ignore[no-untyped-def]
    """The one refusal ``fn`` answers with; no order, book or total changed."""
    before = d.proc.snapshot()
    out = fn(*args, **kw)
    assert [o.topic for o in out] == ["order.events"], kinds(out)  # no fill, no book delta
    assert _orders(d.proc.snapshot()) == _orders(before)
    assert kinds(out)[0] in ("OrderCancelRejected", "OrderRejected")
    return {**out[0].value, "kind": kinds(out)[0]}


def test_cancel_and_replace_races_are_cancel_rejects_with_fix_reason_and_status() -> None:
    d = desk_with_asks(("A", "a1", 5, P), ("A", "a2", 5, P + 1))
    d.new("T", "t1", "BUY", 5, P)  # a1 filled
    d.cancel("A", "a2")
    cases = [  # (command, args, kw) -> (reason_code, CxlRejReason, response_to, ord_status, order_id)
        (d.cancel, ("A", "nope"), {}, ("UNKNOWN_ORDER", 1, "CANCEL", "REJECTED", None)),
        (d.replace, ("A", "nope"), {"qty": 1}, ("UNKNOWN_ORDER", 1, "REPLACE", "REJECTED", None)),
        (d.cancel, ("A", "a1"), {}, ("TOO_LATE_TO_CANCEL", 0, "CANCEL", "FILLED", "AAPL:1")),
        (d.cancel, ("A", "a2"), {}, ("TOO_LATE_TO_CANCEL", 0, "CANCEL", "CANCELLED", "AAPL:2")),
        (d.replace, ("A", "a1"), {"qty": 9}, ("TOO_LATE_TO_REPLACE", 0, "REPLACE", "FILLED", "AAPL:1")),
        (d.replace, ("A", "a2"), {"price": P}, ("TOO_LATE_TO_REPLACE", 0, "REPLACE", "CANCELLED", "AAPL:2")),
        (d.cancel, ("A", "a2"), {"symbol": "MSFT"}, ("UNKNOWN_ORDER", 1, "CANCEL", "REJECTED", None)),  # books are per symbol
        (d.cancel, ("T", "a2"), {}, ("UNKNOWN_ORDER", 1, "CANCEL", "REJECTED", None)),  # ids are per account
    ]
    for fn, args, kw, want in cases:
        got = answer_of(d, fn, *args, **kw)
        assert got["kind"] == "OrderCancelRejected", (fn.__name__, args)
        assert (got["reason_code"], got["cxl_rej_reason"], got["response_to"], got["ord_status"], got["order_id"]) == want, args
        assert got["account"] == args[0] and got["client_order_id"] == args[1] and got["reason"]
    counters = d.proc.counters()
    assert counters["cancel_rejected.TOO_LATE_TO_CANCEL"] == 2 and counters["cancel_rejected.UNKNOWN_ORDER"] == 4
    assert not any(k.startswith("dead.") for k in counters)


def test_a_reused_client_order_id_is_a_rejected_new_order_not_a_dead_letter() -> None:
    d = desk_with_asks(("A", "a1", 5, P))
    d.new("T", "t1", "BUY", 5, P)  # a1 filled: its id is remembered
    d.new("B", "b1", "BUY", 1, P - 10)  # open
    for args, oid in ((("A", "a1", "SELL", 1, P), "AAPL:1 (FILLED)"), (("B", "b1", "BUY", 1, P - 10), "AAPL:3 (ACCEPTED)")):
        got = answer_of(d, d.new, *args)
        assert (got["kind"], got["reason_code"], got["command"], got["order_id"]) == (
            "OrderRejected", "DUPLICATE_CLIENT_ORDER_ID", "NEW", None)
        assert oid in got["reason"]
    assert d.proc.counters()["rejected.DUPLICATE_CLIENT_ORDER_ID"] == 2


@pytest.mark.parametrize(("at", "code"), [(-1, None), (0, "TOO_LATE_TO_CANCEL"), (1, "TOO_LATE_TO_CANCEL")])
def test_cancel_of_a_gtd_order_at_its_expiry_expires_it_then_rejects_the_cancel(at: int, code: str | None) -> None:
    d = Desk()
    d.new("A", "a1", "SELL", 10, P, ts=T0, tif="GTD", expire=T0 + 100)
    out = d.cancel("A", "a1", ts=T0 + 100 + at)
    if code is None:
        assert order_events(out) == [("OrderCancelled", "a1", "10 CLIENT_REQUEST")]
        return
    assert order_events(out) == [("OrderExpired", "a1", "10"), ("OrderCancelRejected", "a1", code)]
    [rej] = of(out, "OrderCancelRejected")
    assert (rej["ord_status"], rej["cxl_rej_reason"], rej["ts_ns"]) == ("EXPIRED", 0, T0 + 100 + at)
    assert d.asks() == [] and d.proc.engine.clock == T0 + 100 + at


def test_forgotten_closed_orders_beyond_retain_closed_are_unknown() -> None:
    d = Desk(MatchingConfig(retain_closed=2, full_audit=True))
    for i in range(3):
        d.new("A", f"a{i}", "SELL", 1, P)
        d.cancel("A", f"a{i}")
    assert answer_of(d, d.cancel, "A", "a2")["reason_code"] == "TOO_LATE_TO_CANCEL"
    assert answer_of(d, d.cancel, "A", "a1")["reason_code"] == "TOO_LATE_TO_CANCEL"
    assert answer_of(d, d.cancel, "A", "a0")["reason_code"] == "UNKNOWN_ORDER"  # the oldest was forgotten


def test_unexpected_schema_and_wrong_key_are_rejected() -> None:
    d = Desk()
    value = new_value("A", "a1", "BUY", 1, P)
    with pytest.raises(Reject) as exc:
        d.proc.process(Message("orders.accepted", 0, 0, T0, b"AAPL", "hftstream.md.Trade", value))
    assert exc.value.reason_code == "UNEXPECTED_SCHEMA"
    with pytest.raises(Reject) as exc:
        d.proc.process(Message("orders.accepted", 0, 0, T0, b"MSFT", NEW, value))
    assert exc.value.reason_code == "KEY_MISMATCH"
    with pytest.raises(Reject) as exc:
        d.proc.process(Message("orders.accepted", 0, 0, T0, None, CANCEL, {**value, "reason": None}))
    assert exc.value.reason_code == "KEY_MISMATCH"


def test_process_batch_dead_letters_in_place_and_goes_on() -> None:
    d = Desk()
    msgs = [d.message(NEW, new_value("A", "a1", "SELL", 1, P)), Message("orders.accepted", 0, 1, T0, b"MSFT", NEW, new_value("A", "a2", "SELL", 1, P)),
            d.message(NEW, new_value("B", "b1", "BUY", 1, P))]
    results = d.proc.process_batch(msgs)
    assert isinstance(results[1], Reject) and results[1].reason_code == "KEY_MISMATCH"
    assert d.proc.counters()["dead.KEY_MISMATCH"] == 1
    assert order_events(results[2])[-1] == ("OrderFilled", "b1", f"1@{P} cum 1")  # type: ignore[arg-type]


# -- the state machine ----------------------------------------------------------------------

def test_state_machine_allows_only_its_transitions() -> None:
    assert TRANSITIONS[NEW_STATE] == {ACCEPTED, REJECTED}
    assert all(not TRANSITIONS[s] for s in (FILLED, CANCELLED, "EXPIRED", REJECTED))
    o = new_order("X:1", "A", True, P, 10, {"client_order_id": "c"})
    with pytest.raises(StateMachineBug):
        advance(o, FILLED)  # NEW -> FILLED skips acceptance
    advance(o, ACCEPTED)
    advance(o, PARTIALLY_FILLED)
    advance(o, PARTIALLY_FILLED)
    advance(o, FILLED)
    for state in (CANCELLED, PARTIALLY_FILLED, "EXPIRED"):
        with pytest.raises(StateMachineBug):
            advance(o, state)
    assert o[STATE] == FILLED
    assert not issubclass(StateMachineBug, Reject)  # a bug stops the runtime, never a dead letter


def test_check_invariants_halts_on_a_crossed_book_or_lost_quantity() -> None:
    d = desk_with_asks(("A", "a1", 10, P))
    d.proc.check_invariants()
    level = d.proc.engine.markets["AAPL"].book.bids[P + 1] = Level()  # corrupt: a bid above the ask
    level.size = 5
    with pytest.raises(InvariantViolation, match="crossed book"):
        d.proc.check_invariants()
    d = desk_with_asks(("A", "a1", 10, P))
    d.proc.engine.qty_filled += 1
    with pytest.raises(InvariantViolation, match="not conserved"):
        d.proc.check_invariants()


def test_snapshot_restore_round_trips_and_continues_identically() -> None:
    d = desk_with_asks(("A", "a1", 10, P), ("B", "b1", 5, P + 1))
    d.new("C", "c1", "BUY", 7, P - 2, tif="GTD", expire=T0 + 10_000)
    d.new("T", "t1", "BUY", 3, P)
    d.cancel("B", "b1")
    blob = d.proc.snapshot()
    twin = Desk()
    twin.offset = d.offset
    twin.proc.restore(blob)
    assert twin.proc.snapshot() == blob
    for desk in (d, twin):
        desk.replace("A", "a1", qty=8)
    a = d.new("X", "x1", "SELL", 30, P - 5, ts=T0 + 20_000)
    b = twin.new("X", "x1", "SELL", 30, P - 5, ts=T0 + 20_000)
    assert a == b and ("OrderExpired", "c1", "7") in order_events(a)
    assert d.proc.snapshot() == twin.proc.snapshot()
    twin.proc.restore(b"")
    assert twin.proc.engine.markets == {}


def _without_counts(blob: bytes) -> bytes:
    import json

    state = json.loads(blob)
    state["engine"]["counts"] = state["dead"] = None
    return json.dumps(state, sort_keys=True).encode()


def _orders(blob: bytes) -> tuple:
    import json

    engine = json.loads(blob)["engine"]
    return engine["markets"], engine["closed"], engine["totals"]
