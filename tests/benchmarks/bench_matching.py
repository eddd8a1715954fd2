"""The matching core alone: book operations (add, cancel, match) per second, against a minimal heapq book.

One seeded command stream: limit orders around a mid price (about a fifth of them cross and
execute, some sweeping several levels), and cancels of earlier orders (some already filled, which
both books must recognise). Every order has its own account, so self-trade
prevention never fires (the check still runs). The stream is generated up front; only the
book operations are timed, in many short paired rounds (see :func:`measure`), a fresh book per round, with the
pre-built stream frozen out of the garbage collector's passes (``gc.freeze``; both books alike).
Times are process CPU time (``time.process_time``): other work on a shared machine descheduling
this process does not count against either book.

* subject: :class:`streams.processors.matching.book.Book` with its :class:`~.orders.Order`
  built per add exactly as the engine builds it, cancels through the order index;
* limit: :class:`MinimalBook` below -- one heap of ``(price, seq, entry)`` per side, lazy
  cancellation, price-time matching, nothing else (no level sizes, no filled/closed
  quantities, no self-trade check).

Both must produce the same executions (maker, quantity, price, in order): checked every run.

    .venv/bin/python tests/benchmarks/bench_matching.py [--quick] [--profile]
"""

from __future__ import annotations

import gc
import random
import statistics
import sys
import time
from heapq import heappop, heappush
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from streams.processors.matching.book import Book  # noqa: E402
from streams.processors.matching.orders import LEAVES, OID, PRIO, Order  # noqa: E402

TARGET_RATE = 500_000
TARGET_RATIO = 0.8
MID = 1_000_000

Op = tuple[Any, ...]  # ("A", order_id, buy, price, qty, account, command) | ("C", order_id)


def command_stream(n: int, seed: int = 7) -> list[Op]:
    """``n`` operations: ~55% adds (limit, around the mid, some crossing), ~45% cancels, each of a random
    earlier order not cancelled yet (some of them filled meanwhile), so the book stays a few thousand orders deep."""
    rnd = random.Random(seed)
    ops: list[Op] = []
    outstanding: list[str] = []  # ids no cancel has named yet
    for i in range(n):
        if outstanding and rnd.random() < 0.45:
            j = rnd.randrange(len(outstanding))
            outstanding[j], outstanding[-1] = outstanding[-1], outstanding[j]
            ops.append(("C", outstanding.pop()))
            continue
        buy = rnd.random() < 0.5
        price = MID + (rnd.randint(-20, 3) if buy else rnd.randint(-3, 20))
        qty = rnd.randint(1, 10) * 100
        oid = f"BENCH:{i}"
        account = f"acct{i}"
        cmd = {"account": account, "symbol": "BENCH", "client_order_id": f"c{i}", "side": "BUY" if buy else "SELL",
               "order_type": "LIMIT", "tif": "GTC", "price": price, "quantity": qty, "expire_ts_ns": None,
               "reduce_only": False, "post_only": False, "ts_ns": i}
        ops.append(("A", oid, buy, price, qty, account, cmd))
        outstanding.append(oid)
    return ops


class MinimalBook:
    """The least a price-time book can do: two heaps, lazy cancels."""

    def __init__(self) -> None:
        self.bids: list[tuple[int, int, list[Any]]] = []
        self.asks: list[tuple[int, int, list[Any]]] = []
        self.orders: dict[str, list[Any]] = {}
        self.seq = 0

    def add(self, oid: str, buy: bool, price: int, qty: int) -> list[tuple[str, int, int]]:
        fills: list[tuple[str, int, int]] = []
        heap, k = (self.asks, price) if buy else (self.bids, -price)
        while qty and heap:
            kp, _, e = heap[0]
            if not e[2]:
                heappop(heap)
                continue
            if kp > k:
                break
            q = e[1] if e[1] <= qty else qty
            e[1] -= q
            qty -= q
            fills.append((e[0], q, kp if buy else -kp))
            if not e[1]:
                e[2] = False
                heappop(heap)
        if qty:
            self.seq += 1
            e = [oid, qty, True]
            self.orders[oid] = e
            heappush(self.bids if buy else self.asks, (-price if buy else price, self.seq, e))
        return fills

    def cancel(self, oid: str) -> int:
        e = self.orders.pop(oid, None)
        if e is not None and e[2]:
            e[2] = False
            return e[1]
        return 0


def run_minimal(ops: list[Op], record: list | None = None) -> float:
    book = MinimalBook()
    add, cancel = book.add, book.cancel
    t0 = time.process_time()
    for op in ops:
        if op[0] == "A":
            fills = add(op[1], op[2], op[3], op[4])
            if record is not None:
                record.extend(fills)
        else:
            cancel(op[1])
    return time.process_time() - t0


def run_book(ops: list[Op], record: list | None = None) -> float:
    book = Book("BENCH")
    add, cancel = book.add, book.cancel
    index: dict[str, Order] = {}
    t0 = time.process_time()
    for op in ops:
        if op[0] == "A":
            qty = op[4]
            o = [op[1], op[5], op[2], op[3], qty, 0, qty, 0, -1, "ACCEPTED", op[6]]  # an Order, as the engine builds it
            fills = add(o)
            if o[LEAVES]:
                index[op[1]] = o
            if record is not None:
                record.extend((m[OID], q, p) for m, q, p in fills)
        else:
            o = index.pop(op[1], None)  # type: ignore[assignment]
            if o is not None and o[PRIO] >= 0:
                cancel(o)
    return time.process_time() - t0


def measure(n: int, rounds: int) -> tuple[float, float, int]:
    """(book ops/s, minimal ops/s, executions) from ``rounds`` paired rounds.

    Each round times both books back to back (alternating which goes first), so both see the
    same machine; the ratio reported is the median of the per-round ratios, and the minimal
    book's rate is its median, so ``book rate = minimal rate * median ratio``.
    """
    ops = command_stream(n)
    mine: list = []
    theirs: list = []
    run_book(ops, mine)
    run_minimal(ops, theirs)
    if mine != theirs:
        raise AssertionError("the two books executed differently: the benchmark compares different work")
    ratios: list[float] = []
    minimal_times: list[float] = []
    gc.collect()
    gc.freeze()  # the pre-built command stream is input, not book state: keep it out of both books' GC passes
    try:
        for i in range(rounds):
            if i % 2:
                t_min, t_book = run_minimal(ops), run_book(ops)
            else:
                t_book, t_min = run_book(ops), run_minimal(ops)
            ratios.append(t_min / t_book)
            minimal_times.append(t_min)
    finally:
        gc.unfreeze()
    limit = n / statistics.median(minimal_times)
    return limit * statistics.median(ratios), limit, len(mine)


def run(quick: bool = False) -> list[dict]:
    """One row: the matching core vs the minimal heapq book, operations/s."""
    n = 20_000 if quick else 50_000
    rate, limit, executions = measure(n, rounds=11 if quick else 61)
    return [{
        "name": "matching core: book operations (add, cancel, match)",
        "subject": "matching.book.Book (+ Order as the engine builds it)",
        "subject_rate": rate,
        "limit": "minimal heapq price-time book (bench_matching.MinimalBook)",
        "limit_rate": limit,
        "unit": "ops/s",
        "target": TARGET_RATIO,
        "note": (f"{n:,} ops: 55% limit adds around the mid ({executions:,} executions), 45% cancels; identical executions "
                 f"checked; absolute target ≥ {TARGET_RATE:,} ops/s on one core: "
                 f"{'met' if rate >= TARGET_RATE else 'NOT met'} ({rate:,.0f})"),
    }]


def profile(n: int = 200_000) -> None:
    import cProfile
    import pstats

    ops = command_stream(n)
    cProfile.runctx("run_book(ops)", globals(), {"ops": ops}, "/tmp/bench_matching.prof")
    pstats.Stats("/tmp/bench_matching.prof").sort_stats("tottime").print_stats(8)


if __name__ == "__main__":
    if "--profile" in sys.argv:
        profile()
    for row in run(quick="--quick" in sys.argv):
        print(f"{row['subject']}: {row['subject_rate']:,.0f} {row['unit']}  |  {row['limit']}: {row['limit_rate']:,.0f} "
              f"{row['unit']}  (ratio {row['subject_rate'] / row['limit_rate']:.2f}, target ≥ {TARGET_RATIO})\n{row['note']}")
