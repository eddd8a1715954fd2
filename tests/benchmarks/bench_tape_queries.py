"""Benchmark: the dashboards' heaviest panel query per theme, over the analytics views (FINAL), on a 10M-row tape.

Not a test. ``python tests/benchmarks/bench_tape_queries.py [--quick]`` builds a chDB tape in a temp
folder with synthetic rows inserted straight into the tables (``INSERT ... SELECT FROM numbers()``,
in blocks of 500k rows so tables have several parts as a live sink leaves them): trades over one day
for 10 symbols, quotes, risk decisions, fills (lineage: a decision), positions (lineage: a fill) and
dead letters. Each panel query runs through its view (reading with FINAL) and, as the limit, the same
aggregation on the raw table without FINAL: the ratio is what deduplication costs.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tape_support import T0, tape_at  # noqa: E402

DAY_NS = 86_400 * 1_000_000_000
BLOCK = 500_000
# table -> (share of the rows, SELECT list over number n and block offset b)
SHAPE = {
    "md_trades": (0.35, "if(n % 4 = 0, 'md.book', 'md.normalized'), 0, n, {ts}, '', 'Trade', '', -1, -1, "
                        "'SIM', concat('S', toString(n % 10)), toString(n), 1000000 + (n * 7919) % 5000, 1 + n % 100, 'BUY', {ts}, {ts}, n"),
    "md_quotes": (0.30, "'md.normalized', 0, n, {ts}, '', 'Quote', '', -1, -1, 'SIM', concat('S', toString(n % 10)), "
                        "1000000 + n % 50, 10, 1000100 + n % 50, 10, {ts}, {ts}, n"),
    "risk_decisions": (0.15, "'risk.decisions', 0, n, {ts}, '', 'RiskDecision', 'orders.in', 0, n, concat('A', toString(n % 20)), "
                             "concat('S', toString(n % 10)), toString(n), 'NEW', if(n % 10 = 0, ['MAX_QTY', 'HALTED', 'PRICE_BAND'][1 + n % 3], 'ACCEPTED'), "
                             "NULL, {ts}"),
    "fills": (0.10, "'fills', 0, n, {ts}, '', 'Fill', 'risk.decisions', 0, n * 1, toString(n), toString(n), concat('A', toString(n % 20)), "
                    "concat('S', toString(n % 10)), toString(n), toString(n), 'BUY', 1000000 + n % 5000, 1 + n % 100, 'MAKER', 'SIM', {ts}"),
    "positions": (0.05, "'positions', 0, n, {ts}, '', 'Position', 'fills', 0, n, concat('A', toString(n % 20)), concat('S', toString(n % 10)), "
                        "n % 1000, (n % 1000) * 1000000, toInt64(n % 7777) - 3000, n, n % 500, 1000000, toInt64(n % 999) - 500, toString(n), {ts}"),
    "dead_letters": (0.05, "'dlq.risk', 0, n, {ts}, '', 'DeadLetter', '', -1, -1, ['risk', 'matching', 'ledger'][1 + n % 3], "
                           "['BAD_REFDATA', 'DECODE', 'UNKNOWN_ORDER'][1 + intDiv(n, 3) % 3], 'r', 'orders.in', 0, n, {ts}, NULL, '', [], {ts}"),
}
PANELS = {
    "market tape: 1m candles of one symbol over a day": (
        "SELECT * FROM tape.ohlcv_1m WHERE symbol = 'S3' AND source = 'venue' ORDER BY bucket",
        "SELECT toStartOfMinute(exchange_ts) AS b, argMin(price, exchange_ts), max(price), min(price), argMax(price, exchange_ts), "
        "sum(size), count() FROM tape.md_trades WHERE symbol = 'S3' AND topic != 'md.book' GROUP BY b ORDER BY b"),
    "orders and risk: rejects by reason per minute": (
        "SELECT * FROM tape.risk_rejects_1m ORDER BY bucket, reason",
        "SELECT toStartOfMinute(ts) AS b, reason, count() FROM tape.risk_decisions WHERE reason != 'ACCEPTED' GROUP BY b, reason ORDER BY b, reason"),
    "ledger/PnL: pnl_1m of every account": (
        "SELECT * FROM tape.pnl_1m ORDER BY account, bucket",
        "SELECT account, toStartOfMinute(ts) AS b, sum(realized_pnl), sum(ifNull(unrealized_pnl, 0)), sum(fees_paid) FROM tape.positions "
        "GROUP BY account, b ORDER BY account, b"),
    "pipeline health: stage latency p50/p99 per stage": (
        "SELECT stage, quantiles(0.5, 0.99)(latency_ns), count() FROM tape.stage_latency GROUP BY stage",
        "SELECT 'fills', quantiles(0.5, 0.99)(toUnixTimestamp64Nano(f.log_ts) - toUnixTimestamp64Nano(r.log_ts)), count() FROM tape.fills AS f "
        "INNER JOIN tape.risk_decisions AS r ON r.topic = f.src_topic AND r.partition = f.src_partition AND r.offset = f.src_offset"),
    "pipeline health: DLQ letters per minute": (
        "SELECT * FROM tape.dlq_counts_1m ORDER BY bucket",
        "SELECT toStartOfMinute(ts) AS b, processor, reason_code, count() FROM tape.dead_letters GROUP BY b, processor, reason_code ORDER BY b"),
}


def build(tape, total: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    client = tape.client
    for i in range(10):
        client.command(f"INSERT INTO tape.instruments (topic, partition, offset, symbol, price_scale, size_scale, currency) "
                       f"VALUES ('refdata.instruments', 0, {i}, 'S{i}', 4, 0, 'USD')")
    counts = {}
    for table, (share, select) in SHAPE.items():
        n = int(total * share)
        cols = [r[0] for r in client.query(f"SELECT name FROM system.columns WHERE database = 'tape' AND table = '{table}' "
                                           f"AND name != 'sunk_at' ORDER BY position").result_rows]
        ts = f"fromUnixTimestamp64Nano(toInt64({T0} + n * {DAY_NS // max(n, 1)}), 'UTC')"
        for start in range(0, n, BLOCK):
            size = min(BLOCK, n - start)
            client.command(f"INSERT INTO tape.{table} ({', '.join(f'`{c}`' for c in cols)}) "
                           f"SELECT {select.format(ts=ts)} FROM (SELECT number + {start} AS n FROM numbers({size}))")
        counts[table] = n
    return counts


def timed(client, sql: str, repeat: int = 3) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    best, rows = float("inf"), 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        rows = len(client.query(sql).result_rows)
        best = min(best, time.perf_counter() - t0)
    return best, rows


def run(quick: bool = False) -> list[dict]:
    total = 1_000_000 if quick else 10_000_000
    out = []
    with tempfile.TemporaryDirectory() as tmp, tape_at(Path(tmp)) as tape:
        t0 = time.perf_counter()
        counts = build(tape, total)
        build_s = time.perf_counter() - t0
        print(f"built {sum(counts.values()):,} rows in {build_s:.1f} s: {counts}", file=sys.stderr)
        for name, (view_sql, raw_sql) in PANELS.items():
            view_s, view_rows = timed(tape.client, view_sql)
            raw_s, _ = timed(tape.client, raw_sql)
            out.append({"name": f"tape panel: {name}", "subject": "view (FINAL)", "subject_rate": view_s * 1000, "limit": "raw table, no FINAL",
                        "limit_rate": raw_s * 1000, "unit": "ms",
                        "note": f"{sum(counts.values()):,}-row tape; best of 3; {view_rows:,} result rows"})
    return out


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(f"{row['name']}: view {row['subject_rate']:,.0f} ms; {row['limit']} {row['limit_rate']:,.0f} ms; "
              f"FINAL/raw {row['subject_rate'] / row['limit_rate']:.2f}x; {row['note']}")
