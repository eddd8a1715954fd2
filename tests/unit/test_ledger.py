"""The ledger processor, pure: fees, average cost through flips, realized/unrealized PnL, journals, invariants."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from connectors.venues.instruments import Instrument
from streams.processors import PROCESSORS
from streams.processors.base import Message, Output, Reject
from streams.processors.ledger import FeeRates, FeeSchedule, LedgerConfig, LedgerInvariantError, LedgerProcessor
from streams.processors.ledger import processor as ledger_module
from streams.processors.ledger.book import fee_amount, mid
from streams.processors.ledger.journal import fill_journal

T0 = 1_767_364_200_000_000_000
AAPL = Instrument("AAPL", "1", price_scale=4, size_scale=0, tick_size=100, lot_size=1)
BTC = Instrument("BTC-USD", "2", price_scale=2, size_scale=8, tick_size=1, lot_size=10_000)
NO_FEES = FeeSchedule(default=FeeRates(maker_ppm=0, taker_ppm=0))
FEES = FeeSchedule(default=FeeRates(maker_ppm=-20, taker_ppm=30), venues={"bravo": FeeRates(maker_ppm=0, taker_ppm=0)})


class Feed:
    """One ledger task and the inputs it would be handed, offsets kept per topic."""

    def __init__(self, fees: FeeSchedule = NO_FEES, remark: int | None = 1_000, instruments=(AAPL, BTC)) -> None:
        self.proc = LedgerProcessor(LedgerConfig(fees=fees, remark_interval_ns=remark), 0)
        self.offsets: dict[str, int] = {}
        self.n = 0
        for inst in instruments:
            assert self.proc.process(self.msg("refdata.instruments", "hftstream.refdata.Instrument", inst.to_record(T0), T0)) == []

    def msg(self, topic: str, schema: str, value: dict[str, Any], ts: int, key: str = "k") -> Message:
        off = self.offsets.get(topic, 0)
        self.offsets[topic] = off + 1
        return Message(topic, 0, off, ts, key.encode(), schema, value)

    def fill_msg(self, side: str, price: int, qty: int, *, account: str = "A1", symbol: str = "AAPL", liquidity: str = "TAKER",
                 venue: str = "alpha", ts: int | None = None, fill_id: str | None = None) -> Message:
        self.n += 1
        value = {
            "fill_id": fill_id or f"F{self.n}", "trade_id": f"T{self.n}", "account": account, "symbol": symbol,
            "client_order_id": f"c{self.n}", "order_id": f"o{self.n}", "side": side, "price": price, "quantity": qty,
            "liquidity": liquidity, "venue": venue, "ts_ns": ts if ts is not None else T0 + self.n,
        }
        return self.msg("fills", "hftstream.fills.Fill", value, value["ts_ns"], account)

    def fill(self, *args: Any, **kw: Any) -> list[Output]:
        out = self.proc.process(self.fill_msg(*args, **kw))
        self.proc.check_invariants()
        return out

    def trade(self, symbol: str, price: int, recv: int) -> list[Output]:
        v = {"venue": "alpha", "symbol": symbol, "trade_id": "t", "price": price, "size": 1, "aggressor_side": None,
             "exchange_ts_ns": recv, "recv_ts_ns": recv, "seq": None}
        return self.proc.process(self.msg("md.normalized", "hftstream.md.Trade", v, recv, symbol))

    def quote(self, symbol: str, bid: int | None, ask: int | None, recv: int) -> list[Output]:
        v = {"venue": "alpha", "symbol": symbol, "bid_price": bid, "bid_size": 1 if bid is not None else 0, "ask_price": ask,
             "ask_size": 1 if ask is not None else 0, "exchange_ts_ns": recv, "recv_ts_ns": recv, "seq": None}
        return self.proc.process(self.msg("md.normalized", "hftstream.md.Quote", v, recv, symbol))


def position(out: list[Output]) -> dict[str, Any]:
    [pos] = [o.value for o in out if o.topic == "positions"]
    return pos


def entries(out: list[Output]) -> list[dict[str, Any]]:
    return [o.value for o in out if o.topic == "ledger.entries"]


# -- fees ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("notional", "ppm", "fee"), [
    (1_000_000, 30, 30),       # exact
    (1_000_001, 30, 31),       # 30.00003 -> a charge rounds up
    (33_333, 30, 1),           # 0.99999 -> 1
    (33_334, 30, 2),           # 1.00002 -> 2
    (0, 30, 0),
    (1_000_000, -20, -20),     # exact rebate
    (1_000_001, -20, -20),     # -20.00002 -> a rebate rounds toward zero
    (49_999, -20, 0),          # -0.99998 -> 0
    (50_000, -20, -1),         # exactly -1
    (1_000_000, 0, 0),
])
def test_fee_rounding_toward_plus_infinity(notional: int, ppm: int, fee: int) -> None:
    assert fee_amount(notional, ppm) == fee


def test_fee_lines_in_the_journal_charge_rebate_and_zero() -> None:
    f = Feed(fees=FEES)
    # taker on alpha: notional 150.0000 x 7 = 1_050_000 x ... (scale 4+0): 10_500_000 -> 30 ppm = 315 exactly
    out = f.fill("BUY", 1_500_000, 7, liquidity="TAKER")
    lines = entries(out)
    assert [(e["account"], e["direction"], e["asset"], e["amount"], e["amount_scale"]) for e in lines] == [
        ("A1:pos:AAPL", "DEBIT", "AAPL", 7, 0),
        ("clearing:alpha", "CREDIT", "AAPL", 7, 0),
        ("clearing:alpha", "DEBIT", "USD", 10_500_000, 4),
        ("A1:cash", "CREDIT", "USD", 10_500_000, 4),
        ("A1:fees", "DEBIT", "USD", 315, 4),
        ("A1:cash", "CREDIT", "USD", 315, 4),
    ]
    assert {e["txn_id"] for e in lines} == {"fill:F1"} and [e["entry_id"] for e in lines][-1] == "F1/5"
    assert position(out)["fees_paid"] == 315
    # maker on alpha: a rebate: -20 ppm of 10_500_001 = -210.00002 -> -210, lines swapped
    out = f.fill("SELL", 1_500_001, 7, liquidity="MAKER")
    assert [(e["account"], e["direction"], e["amount"]) for e in entries(out)[4:]] == [("A1:fees", "CREDIT", 210), ("A1:cash", "DEBIT", 210)]
    assert position(out)["fees_paid"] == 315 - 210
    # bravo charges nothing: no fee lines at all
    assert len(entries(f.fill("BUY", 1_500_000, 1, venue="bravo"))) == 4
    assert f.proc.balance("A1:fees", "USD", 4) == 105
    assert f.proc.balance("A1:cash", "USD", 4) == -10_500_000 - 315 + 10_500_007 + 210 - 1_500_000


def test_fee_schedule_file_and_config_validation(tmp_path) -> None:
    cfg = LedgerConfig()
    assert cfg.fees == FeeSchedule.load()  # the default is infra/fees.yaml
    assert cfg.fees.rate("internal", "TAKER") == 25 and cfg.fees.rate("nowhere", "MAKER") == cfg.fees.default.maker_ppm
    with pytest.raises(ValidationError):
        FeeRates(maker_ppm=0.5, taker_ppm=1)  # a float rate is refused, not truncated
    with pytest.raises(ValidationError):
        LedgerConfig(remark_interval_ns=-1)
    with pytest.raises(ValidationError):
        LedgerConfig(fee=NO_FEES)  # unknown field
    with pytest.raises(ValidationError):
        cfg.remark_interval_ns = 5  # frozen
    bad = tmp_path / "fees.yaml"
    bad.write_text("default: {maker_ppm: 0.2, taker_ppm: 3}\n")
    from streams.errors import ConfigError
    with pytest.raises(ConfigError, match="not a valid fee schedule"):
        FeeSchedule.load(bad)
    assert PROCESSORS["ledger"] is LedgerProcessor


# -- average cost, realized and unrealized PnL ------------------------------------------------

def test_average_price_through_a_flip_long_to_short_and_back_to_flat() -> None:
    f = Feed()
    p = position(f.fill("BUY", 100, 10))
    assert (p["net_qty"], p["cost"], p["realized_pnl"]) == (10, 1000, 0)
    p = position(f.fill("BUY", 115, 10))
    assert (p["net_qty"], p["cost"], p["realized_pnl"]) == (20, 2150, 0)  # average 107.5
    p = position(f.fill("SELL", 120, 25))  # closes 20 (realized 2400 - 2150), opens 5 short at 120
    assert (p["net_qty"], p["cost"], p["realized_pnl"]) == (-5, -600, 250)
    p = position(f.fill("SELL", 130, 5))  # adds to the short: average (600 + 650) / 10 = 125
    assert (p["net_qty"], p["cost"], p["realized_pnl"]) == (-10, -1250, 250)
    p = position(f.fill("BUY", 100, 10))  # covers all: realized += 1250 - 1000
    assert (p["net_qty"], p["cost"], p["realized_pnl"], p["fills"], p["last_fill_id"]) == (0, 0, 500, 5, "F5")
    p = position(f.fill("BUY", 90, 15))  # short -> flat -> long: exactly |net| then the rest
    assert (p["net_qty"], p["cost"]) == (15, 1350)


@pytest.mark.parametrize(("fills", "net", "cost", "realized"), [
    # cost 302 over 3: a third is 100.67 -> 100 released (truncated toward zero), the rest stays in the cost
    ([("BUY", 100, 1), ("BUY", 101, 2), ("SELL", 110, 1)], 2, 202, 10),
    ([("BUY", 100, 1), ("BUY", 101, 2), ("SELL", 110, 1), ("SELL", 110, 1)], 1, 101, 19),
    # closed out: realized is exact (330 - 302), whatever the truncations on the way
    ([("BUY", 100, 1), ("BUY", 101, 2), ("SELL", 110, 1), ("SELL", 110, 1), ("SELL", 110, 1)], 0, 0, 28),
    # the short mirror: cost -302 -> -100 released (toward zero), realized = 100 - 90
    ([("SELL", 100, 1), ("SELL", 101, 2), ("BUY", 90, 1)], -2, -202, 10),
    ([("SELL", 100, 1), ("SELL", 101, 2), ("BUY", 90, 3)], 0, 0, 32),
    # partial close exactly divisible: no rounding at all
    ([("BUY", 100, 4), ("SELL", 90, 2)], 2, 200, -20),
])
def test_realized_pnl_on_partial_closes(fills, net: int, cost: int, realized: int) -> None:
    f = Feed()
    for side, price, qty in fills:
        p = position(f.fill(side, price, qty))
    assert (p["net_qty"], p["cost"], p["realized_pnl"]) == (net, cost, realized)
    cash = -sum((q if s == "BUY" else -q) * pr for s, pr, q in fills)
    assert p["realized_pnl"] - p["cost"] == cash  # the identity the invariant check relies on


def test_unrealized_pnl_with_marks_and_the_remark_interval() -> None:
    f = Feed(remark=1_000)
    p = position(f.fill("BUY", 1_000_000, 3, ts=T0 + 10))
    assert p["mark_price"] is None and p["unrealized_pnl"] is None  # no mark yet
    [o] = f.trade("AAPL", 1_010_000, T0 + 100)
    assert o.key == "A1|AAPL" and o.value["mark_price"] == 1_010_000 and o.value["unrealized_pnl"] == 30_000
    assert o.value["ts_ns"] == T0 + 100
    assert f.quote("AAPL", 1_020_000, 1_020_100, T0 + 1_099) == []  # interval - 1: marked, not re-emitted
    [o] = f.quote("AAPL", 1_020_000, 1_020_101, T0 + 1_100)  # exactly the interval; mid 1_020_050.5 -> down
    assert o.value["mark_price"] == 1_020_050 and o.value["unrealized_pnl"] == 3 * 1_020_050 - 3_000_000
    assert f.quote("AAPL", None, 1_000_000, T0 + 5_000) == []  # one-sided: not a mark
    assert f.proc.positions()[0]["mark_price"] == 1_020_050
    p = position(f.fill("SELL", 1_000_000, 5, ts=T0 + 5_001))  # short 2; the fill carries the latest mark
    assert p["net_qty"] == -2 and p["unrealized_pnl"] == -2 * 1_020_050 - (-2_000_000)
    assert mid(100, 103) == 101 and mid(-3, 0) == -2
    assert f.trade("BTC-USD", 5, T0 + 9_000) == []  # nobody holds it: nothing to emit
    quiet = Feed(remark=None)
    quiet.fill("BUY", 100, 1)
    assert quiet.trade("AAPL", 200, T0 + 10**12) == [] and quiet.proc.positions()[0]["unrealized_pnl"] == 100
    flat = Feed(remark=0)
    flat.fill("BUY", 100, 1)
    flat.fill("SELL", 100, 1)
    assert flat.trade("AAPL", 200, T0 + 10) == []  # a flat position is not re-emitted


def test_money_scale_is_price_plus_size_scale() -> None:
    f = Feed()
    out = f.fill("BUY", 6_500_012, 12_345_678, symbol="BTC-USD")  # 65000.12 x 0.12345678
    lines = entries(out)
    assert lines[0]["amount"] == 12_345_678 and lines[0]["amount_scale"] == 8
    assert lines[2]["amount"] == 6_500_012 * 12_345_678 and lines[2]["amount_scale"] == 10
    assert position(out)["cost"] == 6_500_012 * 12_345_678


# -- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("price", "qty", "symbol", "code"), [
    (100, 1, "NOPE", "UNKNOWN_SYMBOL"),
    (100, 0, "AAPL", "BAD_FILL"),
    (0, 1, "AAPL", "BAD_FILL"),
    (1 << 61, 3, "AAPL", "AMOUNT_OVERFLOW"),  # notional 3 x 2^61 is beyond int64
    (2, 1, "AAPL", "AMOUNT_OVERFLOW"),  # the fill fits, the position's cost (2^63 - 2 + 2) does not
])
def test_rejected_fills_change_nothing(price: int, qty: int, symbol: str, code: str) -> None:
    f = Feed()
    f.fill("BUY", (1 << 62) - 1, 2)  # a large position: cost 2^63 - 2
    before = f.proc.snapshot()
    with pytest.raises(Reject) as exc:
        f.proc.process(f.fill_msg("BUY", price, qty, symbol=symbol))
    assert exc.value.reason_code == code
    assert f.proc.counters()[f"rejected.{code}"] == 1
    after = json.loads(f.proc.snapshot())
    after["rejected"][code] = 0
    assert after == json.loads(before)


def test_a_scale_change_under_open_positions_is_refused_and_other_md_is_ignored() -> None:
    f = Feed()
    f.fill("BUY", 100, 1)
    moved = Instrument("AAPL", "1", price_scale=2, size_scale=0, tick_size=1, lot_size=1)
    with pytest.raises(Reject) as exc:
        f.proc.process(f.msg("refdata.instruments", "hftstream.refdata.Instrument", moved.to_record(T0 + 1), T0 + 1))
    assert exc.value.reason_code == "SCALE_CHANGE"
    same = f.proc.process(f.msg("refdata.instruments", "hftstream.refdata.Instrument", AAPL.to_record(T0 + 2), T0 + 2))
    assert same == []  # the same scales again: fine
    hb = {"venue": "alpha", "last_seq": 1, "exchange_ts_ns": T0, "recv_ts_ns": T0}
    assert f.proc.process(f.msg("md.normalized", "hftstream.md.Heartbeat", hb, T0)) == []
    with pytest.raises(Reject) as exc:
        f.proc.process(f.msg("fills", "hftstream.md.Heartbeat", hb, T0))
    assert exc.value.reason_code == "UNEXPECTED_SCHEMA"


# -- invariants -----------------------------------------------------------------------------------

def test_forced_violations_raise_and_name_the_record(monkeypatch: pytest.MonkeyPatch) -> None:
    f = Feed()
    f.proc.process(f.fill_msg("BUY", 100, 2))  # applied, not yet checked (the check runs before the commit)
    f.proc.position("A1", "AAPL").net += 1  # a position that is no longer the sum of its fills
    with pytest.raises(LedgerInvariantError, match=r"position A1\|AAPL: net_qty 3 but its fills sum to 2; last changed by fills/0@0 \(fill F1\)") as exc:
        f.proc.check_invariants()
    assert "Ledger invariant violation" in exc.value.hint

    f = Feed()
    f.proc.process(f.fill_msg("BUY", 100, 2))
    f.proc.position("A1", "AAPL").cost += 1  # cost drifted from the cash the fills moved
    with pytest.raises(LedgerInvariantError, match=r"realized_pnl - cost = -201 but its fills moved -200 of cash.*fill F1"):
        f.proc.check_invariants()

    f = Feed()
    f.fill("BUY", 100, 2)
    f.proc._debits["USD", 4] += 7  # running totals disagree
    with pytest.raises(LedgerInvariantError, match=r"debits 207 != credits 200 in USD \(scale 4\); last record applied: fills/0@0 \(fill F1\)"):
        f.proc.check_invariants()

    f = Feed()
    f.fill("BUY", 100, 2)
    one_sided = lambda *a, **k: fill_journal(*a, **k)[:-1]  # noqa: E731 -- a journal missing its last line
    monkeypatch.setattr(ledger_module, "fill_journal", one_sided)
    f.proc.process(f.fill_msg("SELL", 100, 1))
    with pytest.raises(LedgerInvariantError, match=r"unbalanced journal: fills/0@1 \(fill F2\): journal fill:F2 is off by \[\(\('USD', 4\), -100\)\]"):
        f.proc.check_invariants()


ACCOUNTS, SYMBOLS = ("A1", "A2", "A3"), ("AAPL", "BTC-USD")
step = st.one_of(
    st.tuples(st.just("fill"), st.sampled_from(ACCOUNTS), st.sampled_from(SYMBOLS), st.sampled_from(("BUY", "SELL")),
              st.integers(1, 10**7), st.integers(1, 10**6), st.sampled_from(("MAKER", "TAKER")), st.sampled_from(("alpha", "bravo"))),
    st.tuples(st.just("trade"), st.sampled_from(SYMBOLS), st.integers(1, 10**7)),
    st.tuples(st.just("commit")),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(step, min_size=1, max_size=400))
def test_balances_on_every_commit_of_a_random_run(steps) -> None:
    f = Feed(fees=FEES, remark=0)
    sums: dict[tuple[str, str], list[int]] = {}
    per_asset: dict[tuple[str, int], int] = {}
    last_pos: dict[str, dict[str, Any]] = {}
    ts = T0
    for s in steps:
        ts += 1
        if s[0] == "commit":
            f.proc.check_invariants()
            continue
        if s[0] == "trade":
            out = f.trade(s[1], s[2], ts)
        else:
            _, acc, sym, side, price, qty, liq, venue = s
            out = f.proc.process(f.fill_msg(side, price, qty, account=acc, symbol=sym, liquidity=liq, venue=venue, ts=ts))
            d = qty if side == "BUY" else -qty
            t = sums.setdefault((acc, sym), [0, 0, 0])
            t[0] += d
            t[1] -= d * price
            t[2] += 1
        for o in out:
            if o.topic == "ledger.entries":
                e = o.value
                k = (e["asset"], e["amount_scale"])
                per_asset[k] = per_asset.get(k, 0) + (e["amount"] if e["direction"] == "DEBIT" else -e["amount"])
            else:
                last_pos[o.key] = o.value
    f.proc.check_invariants()
    assert all(v == 0 for v in per_asset.values())  # every journal on the topic sums to zero per asset
    for (acc, sym), (qty, cash, n) in sums.items():
        p = last_pos[f"{acc}|{sym}"]
        assert (p["net_qty"], p["realized_pnl"] - p["cost"], p["fills"]) == (qty, cash, n)
    assert all(d == c for d, c in f.proc.totals().values())


# -- determinism and snapshot/restore ----------------------------------------------------------

def _script(f: Feed) -> list[Message]:
    msgs = []
    for i in range(300):
        acc, sym = ACCOUNTS[i % 3], SYMBOLS[(i // 3) % 2]
        price = 1_000_000 + (i * 7919) % 50_000
        if i % 5 == 4:
            v = {"venue": "alpha", "symbol": sym, "trade_id": "t", "price": price, "size": 1, "aggressor_side": None,
                 "exchange_ts_ns": T0 + i * 400, "recv_ts_ns": T0 + i * 400, "seq": None}
            msgs.append(f.msg("md.normalized", "hftstream.md.Trade", v, T0 + i * 400, sym))
        else:
            msgs.append(f.fill_msg(("BUY", "SELL")[(i * 31) % 7 % 2], price, 1 + (i * 13) % 9, account=acc, symbol=sym,
                                   liquidity=("MAKER", "TAKER")[i % 2], ts=T0 + i * 400))
    return msgs


def _run(proc: LedgerProcessor, msgs: list[Message]) -> list[Output]:
    out: list[Output] = []
    for r in proc.process_batch(msgs):
        assert isinstance(r, list)
        out.extend(r)
    proc.check_invariants()
    return out


def test_determinism_and_snapshot_restore_mid_way_equals_uninterrupted() -> None:
    a = Feed(fees=FEES, remark=1_000)
    msgs = _script(a)
    whole = _run(a.proc, msgs)
    b = Feed(fees=FEES, remark=1_000)
    assert _run(b.proc, msgs) == whole and b.proc.snapshot() == a.proc.snapshot()
    c = Feed(fees=FEES, remark=1_000)
    first = _run(c.proc, msgs[:137])
    blob = c.proc.snapshot()
    d = LedgerProcessor(LedgerConfig(fees=FEES, remark_interval_ns=1_000), 0)
    d.restore(blob)
    assert d.snapshot() == blob
    assert first + _run(d, msgs[137:]) == whole
    assert d.snapshot() == a.proc.snapshot() and d.counters() == a.proc.counters()
    assert d.counters()["fills"] == 240 and d.counters()["remarks"] > 0
    d.restore(b"")
    assert d.positions() == []


def test_int64_boundary_of_a_position_is_accepted() -> None:
    f = Feed()
    f.fill("BUY", (1 << 62) - 1, 2)
    assert position(f.fill("BUY", 1, 1))["cost"] == (1 << 63) - 1  # exactly int64 max: fine; one more is refused above
