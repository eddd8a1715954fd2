"""Properties of the matching processor over random command streams (hypothesis).

No crossed book at rest; FIFO within a level; filled quantity monotonic and never above the
order quantity; per order, quantity = filled + resting + cancelled + expired; the same commands
give the same outputs, also across a snapshot/restore in the middle.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matching_support import CANCEL, NEW, REPLACE, T0, new_value
from streams.errors import PoisonError
from streams.processors.base import Message, Output
from streams.processors.matching import MatchingConfig, MatchingProcessor

P = 100
ACCOUNTS = ("A", "B", "C")
SYMBOLS = ("AAPL", "MSFT")

new_cmd = st.fixed_dictionaries({
    "kind": st.just("new"),
    "account": st.sampled_from(ACCOUNTS),
    "symbol": st.sampled_from(SYMBOLS),
    "side": st.sampled_from(("BUY", "SELL")),
    "price": st.integers(P - 4, P + 4),
    "qty": st.integers(1, 12),
    "style": st.sampled_from(("GTC", "GTC", "GTC", "DAY", "IOC", "FOK", "MARKET", "POST", "GTD")),
    "ttl": st.integers(1, 30),
})
ref_cmd = st.fixed_dictionaries({
    "kind": st.sampled_from(("cancel", "replace", "replace")),
    "pick": st.integers(0, 10_000),  # which client order id used so far (or an unknown one)
    "price": st.one_of(st.none(), st.integers(P - 4, P + 4)),
    "qty": st.one_of(st.none(), st.integers(0, 14)),
})
step = st.tuples(st.one_of(new_cmd, new_cmd, ref_cmd), st.integers(-2, 6))  # (command, ts advance; < 0: late)


def messages(steps: list[tuple[dict[str, Any], int]]) -> list[Message]:
    """The command stream as the runtime would hand it over (client order ids reused on purpose now and then)."""
    msgs: list[Message] = []
    used: list[tuple[str, str, str]] = []
    ts = T0
    for i, (c, dt) in enumerate(steps):
        ts += dt
        if c["kind"] == "new":
            cid = f"c{i}" if i % 17 else (used[0][2] if used else "c0")  # an occasional duplicate
            style = c["style"]
            kw: dict[str, Any] = {"symbol": c["symbol"], "ts": ts}
            price: int | None = c["price"]
            if style == "MARKET":
                price = None
            elif style == "POST":
                kw["post_only"] = True
            elif style == "GTD":
                kw["tif"], kw["expire"] = "GTD", ts + c["ttl"]
            elif style in ("DAY", "IOC", "FOK"):
                kw["tif"] = style
            value = new_value(c["account"], cid, c["side"], c["qty"], price, **kw)
            used.append((c["account"], c["symbol"], cid))
            schema = NEW
        else:
            account, symbol, cid = used[c["pick"] % len(used)] if used and c["pick"] % 11 else ("A", "AAPL", "zz")
            if c["kind"] == "cancel":
                value, schema = {"account": account, "symbol": symbol, "client_order_id": cid, "reason": None, "ts_ns": ts}, CANCEL
            else:
                value = {"account": account, "symbol": symbol, "client_order_id": cid, "price": c["price"], "quantity": c["qty"], "ts_ns": ts}
                schema = REPLACE
        msgs.append(Message("orders.accepted", 0, i, ts, value["symbol"].encode(), schema, value))
    return msgs


def run(proc: MatchingProcessor, msgs: list[Message]) -> list[list[Output] | str]:
    out: list[list[Output] | str] = []
    for msg in msgs:
        try:
            out.append(proc.process(msg))
        except PoisonError as exc:
            out.append(getattr(exc, "reason_code", "POISON"))
        proc.check_invariants()  # full_audit: crossed book, conservation per order, index == book
    return out


class Model:
    """What the outputs say, kept independently of the engine: each order's terms, fills and queue priority."""

    def __init__(self) -> None:
        self.orders: dict[str, dict[str, Any]] = {}  # order id -> terms and progress
        self.by_cid: dict[tuple[str, str, str], str] = {}
        self.clock = 0  # priority counter

    def open_at(self, symbol: str, side: str, price: int) -> list[str]:
        """Open order ids at one level, in the priority the rules give them."""
        rows = [(o["prio"], oid) for oid, o in self.orders.items()
                if o["open"] and o["symbol"] == symbol and o["side"] == side and o["price"] == price]
        return [oid for _, oid in sorted(rows)]

    def prio(self) -> int:
        self.clock += 1
        return self.clock


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=120))
def test_book_properties_hold_on_random_command_streams(steps: list[tuple[dict[str, Any], int]]) -> None:
    msgs = messages(steps)
    proc = MatchingProcessor(MatchingConfig(full_audit=True), 0)
    model = Model()
    for msg in msgs:
        levels_before = {}
        try:
            outs = proc.process(msg)
        except PoisonError:
            proc.check_invariants()
            continue
        proc.check_invariants()
        v = msg.value
        # -- FIFO within a level: the makers touched at a level are a prefix of its queue, in order
        touched: dict[tuple[str, str, int], list[str]] = {}
        for o in outs:
            r = o.value
            if o.schema.endswith(".Fill") and r["liquidity"] == "MAKER":
                touched.setdefault((r["symbol"], r["side"], r["price"]), []).append(r["order_id"])
            elif o.schema.endswith(".OrderCancelled") and r["reason"] == "SELF_TRADE_PREVENTION":
                mo = model.orders[r["order_id"]]
                touched.setdefault((r["symbol"], r["side"], mo["price"]), []).append(r["order_id"])
        for (symbol, side, price), ids in touched.items():
            levels_before[symbol, side, price] = model.open_at(symbol, side, price)
            assert ids == levels_before[symbol, side, price][: len(ids)], f"not FIFO at {symbol} {side} {price}"
        # -- fold the outputs into the model
        replaced = msg.schema == REPLACE and any(o.schema.endswith(".OrderRested") or o.topic == "fills" for o in outs)
        if replaced:
            oid = model.by_cid[v["account"], v["symbol"], v["client_order_id"]]
            mo = model.orders[oid]
            new_price = mo["price"] if v["price"] is None else v["price"]
            new_qty = mo["qty"] if v["quantity"] is None else v["quantity"]
            if new_price != mo["price"] or new_qty > mo["qty"]:
                mo["prio"] = model.prio()
            mo["price"], mo["qty"] = new_price, new_qty
        for o in outs:
            r = o.value
            kind = o.schema.rsplit(".", 1)[1]
            if kind == "OrderAccepted":
                model.orders[r["order_id"]] = {
                    "symbol": r["symbol"], "side": r["side"], "price": r["price"], "qty": r["quantity"], "cum": 0,
                    "fills": 0, "closed": 0, "open": False, "prio": model.prio(),
                }
                model.by_cid[r["account"], r["symbol"], r["client_order_id"]] = r["order_id"]
            elif kind == "OrderRested":
                mo = model.orders[r["order_id"]]
                mo["open"] = True
                assert mo["price"] == r["price"] and r["leaves_qty"] == mo["qty"] - mo["cum"] > 0
            elif kind in ("OrderPartiallyFilled", "OrderFilled"):
                mo = model.orders[r["order_id"]]
                assert r["cum_qty"] == mo["cum"] + r["last_qty"] > mo["cum"]  # monotonic, by exactly the fill
                assert r["cum_qty"] <= mo["qty"]  # never above the order quantity
                mo["cum"] = r["cum_qty"]
                if kind == "OrderFilled":
                    assert mo["cum"] == mo["qty"]
                    mo["open"] = False
                else:
                    assert r["leaves_qty"] == mo["qty"] - mo["cum"]
            elif kind == "Fill":
                model.orders[r["order_id"]]["fills"] += r["quantity"]
            elif kind in ("OrderCancelled", "OrderExpired"):
                mo = model.orders[r["order_id"]]
                mo["closed"] += r["cancelled_qty" if kind == "OrderCancelled" else "expired_qty"]
                mo["open"] = False
                assert r["cum_qty"] == mo["cum"]
        # -- no crossed book at rest
        for m in proc.engine.markets.values():
            bid, ask = m.book.best(True), m.book.best(False)
            assert bid is None or ask is None or bid < ask
    # -- conservation per order: quantity = filled + resting + cancelled + expired
    resting = {o[0]: o[6] for m in proc.engine.markets.values() for buy in (True, False) for o in m.book.resting(buy)}
    for oid, mo in model.orders.items():
        assert mo["fills"] == mo["cum"]
        assert mo["qty"] == mo["cum"] + resting.get(oid, 0) + mo["closed"], oid
        assert mo["open"] == (oid in resting)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=2, max_size=100), st.integers(0, 100))
def test_replay_and_snapshot_restore_mid_way_give_the_same_outputs(steps: list[tuple[dict[str, Any], int]], cut: int) -> None:
    msgs = messages(steps)
    cut %= len(msgs)
    first = run(MatchingProcessor(MatchingConfig(), 0), msgs)
    assert run(MatchingProcessor(MatchingConfig(), 0), msgs) == first
    proc = MatchingProcessor(MatchingConfig(), 0)
    head = run(proc, msgs[:cut])
    blob = proc.snapshot()
    restored = MatchingProcessor(MatchingConfig(), 0)
    restored.restore(blob)
    assert restored.snapshot() == blob
    assert head + run(restored, msgs[cut:]) == first
    full = MatchingProcessor(MatchingConfig(), 0)
    run(full, msgs)
    assert restored.snapshot() == full.snapshot()
