"""Pre-trade risk, one check per order (no log, no Avro): orders/s and the latency of one check.

Inputs are built up front as the runtime hands them over (decoded ``Message``s): 8 symbols quoted
on two venues, 64 accounts, limit and market orders (every check runs: rate, market data, band,
size, notional, position, gross exposure, daily loss), a third filled (positions and PnL move)
and the rest cancelled by matching, and fresh quotes between orders. Only the processor is timed, best of N rounds, a fresh
processor per round. The limit row runs the same stream through a pass-through that emits the
same two outputs per order with no check at all, so the ratio is what the checks cost. Latency:
each order's ``process`` call timed alone (``perf_counter_ns``), p50 and p99.

    .venv/bin/python tests/benchmarks/bench_risk.py [--quick]
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/ (risk_support)

from risk_support import AAPL, LIMITS, MS, Feed, config  # noqa: E402
from streams.processors.base import Message, Output  # noqa: E402
from streams.processors.risk import RiskProcessor  # noqa: E402

SYMBOLS = [dict(AAPL, symbol=f"SYM{i}", instrument_id=str(i + 10)) for i in range(8)]
ACCOUNTS = [f"ACC{i:02d}" for i in range(64)]


def stream(orders: int, seed: int = 1) -> tuple[list[Message], list[Message]]:
    """(set-up messages: instruments, every input kind; the timed stream: orders with quotes and fills between)."""
    rng = random.Random(seed)
    cfg = config(limits={**LIMITS, "max_orders_per_second": 100_000, "order_burst": 100_000})
    f = Feed(cfg, instruments=tuple(SYMBOLS))
    setup = [f.msg("refdata.instruments", "hftstream.refdata.Instrument", s, s["symbol"]) for s in SYMBOLS]
    msgs: list[Message] = []
    mids = {s["symbol"]: 1_870_000 for s in SYMBOLS}
    for s in SYMBOLS:
        for venue in ("alpha", "bravo"):
            setup.append(f.quote(s["symbol"], mids[s["symbol"]] - 500, mids[s["symbol"]] + 500, venue=venue))
    for i in range(orders):
        f.tick(rng.randrange(1, 20) * 1000)  # ~10 us apart: 100k orders/s of event time
        sym = rng.choice(SYMBOLS)["symbol"]
        if i % 4 == 0:
            mids[sym] += rng.randrange(-3, 4) * 100
            msgs.append(f.quote(sym, mids[sym] - 500, mids[sym] + 500, venue=rng.choice(("alpha", "bravo"))))
        account = rng.choice(ACCOUNTS)
        market = rng.random() < 0.1
        m = f.new(account=account, symbol=sym, side=rng.choice(("BUY", "SELL")), qty=rng.randrange(1, 50),
                  price=mids[sym] + rng.randrange(-10, 10) * 100, order_type="MARKET" if market else "LIMIT")
        msgs.append(m)
        cid, side, qty = m.value["client_order_id"], m.value["side"], m.value["quantity"]
        if i % 3 == 0:  # a third fill completely, the rest are cancelled: open orders stay bounded
            msgs.append(f.fill(cid, account=account, symbol=sym, side=side, qty=qty, price=mids[sym]))
            msgs.append(f.event("OrderFilled", cid, account=account, symbol=sym, side=side, fill_id="f", last_price=mids[sym],
                                last_qty=qty, cum_qty=qty))
        else:
            msgs.append(f.event("OrderCancelled", cid, account=account, symbol=sym, side=side, cum_qty=0, cancelled_qty=qty,
                                reason="CLIENT_REQUEST"))
    f.tick(MS)
    return setup, msgs


class PassThrough:
    """The floor: per order, the decision record and the forwarded order, nothing checked."""

    def process_batch(self, msgs: list[Message]) -> list[list[Output]]:
        out = []
        for m in msgs:
            v = m.value
            if m.schema == "hftstream.orders.NewOrder":
                d = {"account": v["account"], "symbol": v["symbol"], "client_order_id": v["client_order_id"], "command": "NEW",
                     "reason": "ACCEPTED", "detail": None, "ts_ns": v["ts_ns"]}
                out.append([Output("risk.decisions", v["account"], "hftstream.risk.RiskDecision", d),
                            Output("orders.accepted", v["symbol"], m.schema, v)])
            else:
                out.append([])
        return out


def fresh(setup: list[Message]) -> RiskProcessor:
    proc = RiskProcessor(config(limits={**LIMITS, "max_orders_per_second": 100_000, "order_burst": 100_000}), 0)
    proc.process_batch(setup)
    return proc


def measure(orders: int, rounds: int) -> dict[str, float]:
    setup, msgs = stream(orders)
    n = sum(1 for m in msgs if m.schema == "hftstream.orders.NewOrder")
    rates, floors = [], []
    accepted = 0
    for _ in range(rounds):
        proc = fresh(setup)
        t0 = time.perf_counter()
        results = proc.process_batch(msgs)
        rates.append(n / (time.perf_counter() - t0))
        accepted = sum(1 for r in results if isinstance(r, list) for o in r if o.topic == "orders.accepted")
        floor = PassThrough()
        t0 = time.perf_counter()
        floor.process_batch(msgs)
        floors.append(n / (time.perf_counter() - t0))
    proc = fresh(setup)
    lat = []
    clock = time.perf_counter_ns
    process = proc.process
    for m in msgs:
        if m.schema == "hftstream.orders.NewOrder":
            t0 = clock()
            process(m)
            lat.append(clock() - t0)
        else:
            process(m)
    lat.sort()
    return {"rate": max(rates), "floor": max(floors), "p50_us": lat[len(lat) // 2] / 1000,
            "p99_us": lat[int(len(lat) * 0.99)] / 1000, "orders": n, "accepted": accepted / n}


def run(quick: bool = False) -> list[dict]:
    """One row: risk checks per order vs a pass-through emitting the same outputs."""
    m = measure(20_000 if quick else 200_000, rounds=2 if quick else 5)
    return [{
        "name": "risk check per order (pure, pre-decoded inputs)",
        "subject": "RiskProcessor.process_batch, one task",
        "subject_rate": m["rate"],
        "limit": "pass-through emitting the same decision + forward, no checks",
        "limit_rate": m["floor"],
        "unit": "orders/s",
        "p50_us": m["p50_us"],
        "p99_us": m["p99_us"],
        "note": (f"one check: p50 {m['p50_us']:.1f} us, p99 {m['p99_us']:.1f} us; {m['orders']:,} orders, "
                 f"{m['accepted']:.0%} accepted; 64 accounts x 8 symbols on 2 venues, 10% market orders, 1 in 3 filled, the rest cancelled"),
    }]


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(f"{row['subject']}: {row['subject_rate']:,.0f} {row['unit']}  |  {row['limit']}: {row['limit_rate']:,.0f} "
              f"{row['unit']}  |  {row['note']}")
