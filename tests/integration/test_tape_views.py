"""The tape's analytics views (migration 0002) on small known inputs, expected results computed by hand.

Rows go straight into the tables with ``INSERT``; columns not named take their defaults. chDB runs
in-process, so no broker is needed.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tape_support import T0, tape_at

MIN = 60_000_000_000
SEC = 1_000_000_000


def ns(t: int) -> str:
    return f"fromUnixTimestamp64Nano(toInt64({t}), 'UTC')"


def insert(tape: Any, table: str, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        cols = ", ".join(f"`{c}`" for c in row)
        vals = ", ".join(ns(v[1]) if isinstance(v, tuple) else ("NULL" if v is None else repr(v)) for v in row.values())
        tape.client.command(f"INSERT INTO tape.{table} ({cols}) VALUES ({vals})")


def rows(tape: Any, sql: str) -> list[tuple]:
    return [tuple(r) for r in tape.client.query(sql).result_rows]


def trade(topic: str, offset: int, ts: int, price: int, size: int, symbol: str = "AAPL") -> dict[str, Any]:
    return {"topic": topic, "partition": 0, "offset": offset, "log_ts": ("t", ts), "venue": "SIM", "symbol": symbol,
            "trade_id": f"T{offset}", "price": price, "size": size, "exchange_ts": ("t", ts), "recv_ts": ("t", ts)}


@pytest.fixture()
def tape(tmp_path: Path):
    with tape_at(tmp_path) as t:
        yield t


def test_ohlcv_and_vwap_by_source_counting_a_double_sunk_trade_once(tape):
    venue = [trade("md.normalized", 0, T0 + 100, 100, 10), trade("md.normalized", 1, T0 + 2 * SEC, 105, 20),
             trade("md.normalized", 2, T0 + 3 * SEC, 98, 30), trade("md.normalized", 3, T0 + 5 * SEC, 101, 40),
             trade("md.normalized", 4, T0 + MIN + 1, 200, 5)]
    internal = [trade("md.book", 0, T0 + 50, 999, 1)]
    insert(tape, "md_trades", venue + internal)
    # Sunk twice (a different log_key so the insert's block deduplication keeps it: only FINAL folds it).
    insert(tape, "md_trades", [{**trade("md.normalized", 2, T0 + 3 * SEC, 98, 30), "log_key": "again"}])
    assert rows(tape, "SELECT count() FROM tape.md_trades") == [(7,)]
    assert rows(tape, "SELECT source, open, high, low, close, volume, trades FROM tape.ohlcv_1m ORDER BY source, bucket") == [
        ("internal", 999, 999, 999, 999, 1, 1),
        ("venue", 100, 105, 98, 101, 100, 4),
        ("venue", 200, 200, 200, 200, 5, 1),
    ]
    assert rows(tape, "SELECT open, close, trades FROM tape.ohlcv_1s WHERE source = 'venue' ORDER BY bucket") == [
        (100, 100, 1), (105, 105, 1), (98, 98, 1), (101, 101, 1), (200, 200, 1)]
    # (100*10 + 105*20 + 98*30 + 101*40) / 100 = 10080 / 100 = 100.8
    got = rows(tape, "SELECT vwap, volume FROM tape.vwap_1m WHERE source = 'venue' ORDER BY bucket")
    assert got == [(Decimal("100.8"), 100), (Decimal("200"), 5)]
    assert tape.client.query("SELECT toTypeName(vwap), toTypeName(open) FROM tape.vwap_1m, tape.ohlcv_1m LIMIT 1").result_rows[0] == (
        "Decimal(38, 6)", "Int64")
    assert rows(tape, "SELECT count() FROM tape.time_and_sales") == [(6,)]


def test_bbo_spread_is_null_on_a_one_sided_book(tape):
    base = {"venue": "SIM", "symbol": "AAPL", "bid_size": 5, "ask_size": 7, "partition": 0, "topic": "md.normalized"}
    insert(tape, "md_quotes", [{**base, "offset": 0, "bid_price": 100, "ask_price": 103, "exchange_ts": ("t", T0)},
                               {**base, "offset": 1, "bid_price": None, "ask_price": 104, "exchange_ts": ("t", T0 + 1)}])
    assert rows(tape, "SELECT bid_price, ask_price, spread FROM tape.bbo ORDER BY ts") == [(100, 103, 3), (None, 104, None)]


def position(offset: int, symbol: str, ts: int, realized: int, unrealized: int | None, fees: int, account: str = "A") -> dict[str, Any]:
    return {"topic": "positions", "partition": 0, "offset": offset, "log_ts": ("t", ts), "account": account, "symbol": symbol,
            "net_qty": 1, "cost": 0, "realized_pnl": realized, "unrealized_pnl": unrealized, "fees_paid": fees, "fills": offset + 1,
            "ts": ("t", ts)}


def test_pnl_1m_carries_each_symbol_forward_at_its_own_scale(tape):
    insert(tape, "instruments", [
        {"topic": "refdata.instruments", "partition": 0, "offset": 0, "symbol": "AAPL", "price_scale": 4, "size_scale": 0, "currency": "USD"},
        {"topic": "refdata.instruments", "partition": 0, "offset": 1, "symbol": "BTC", "price_scale": 2, "size_scale": 8, "currency": "USD"},
    ])
    insert(tape, "positions", [
        position(0, "AAPL", T0 + 1, 12_345, 10_000, 500),             # 1.2345 / 1.0 / 0.05 USD (scale 4)
        position(1, "AAPL", T0 + 2, 20_000, None, 700),               # later in the same minute: wins
        position(2, "BTC", T0 + MIN + 1, 30_000_000_000, -10_000_000_000, 0),  # 3 / -1 / 0 USD (scale 10)
        position(3, "AAPL", T0 + 2 * MIN, 30_000, 5_000, 900),
    ])
    insert(tape, "positions", [{**position(2, "BTC", T0 + MIN + 1, 30_000_000_000, -10_000_000_000, 0), "log_key": "again"}])  # sunk twice
    assert rows(tape, "SELECT count() FROM tape.positions") == [(5,)]
    got = rows(tape, "SELECT realized_pnl, unrealized_pnl, fees, total_pnl FROM tape.pnl_1m WHERE account = 'A' ORDER BY bucket")
    assert got == [
        (Decimal("2"), Decimal("0"), Decimal("0.07"), Decimal("1.93")),
        (Decimal("5"), Decimal("-1"), Decimal("0.07"), Decimal("3.93")),   # AAPL carried from minute 0
        (Decimal("6"), Decimal("-0.5"), Decimal("0.09"), Decimal("5.41")),  # BTC carried from minute 1
    ]
    assert rows(tape, "SELECT symbol, realized_pnl, fills FROM tape.positions_latest ORDER BY symbol") == [
        ("AAPL", 30_000, 4), ("BTC", 30_000_000_000, 3)]


def test_order_activity_ratios(tape):
    o = {"topic": "orders.in", "partition": 0, "account": "A", "symbol": "AAPL"}
    insert(tape, "orders", [{**o, "offset": 0, "record_type": "NewOrder", "client_order_id": "c1", "quantity": 100},
                            {**o, "offset": 1, "record_type": "NewOrder", "client_order_id": "c2", "quantity": 300},
                            {**o, "offset": 2, "record_type": "CancelOrder", "client_order_id": "c2"},
                            {**o, "offset": 3, "record_type": "ReplaceOrder", "client_order_id": "c1", "quantity": 50}])
    f = {"topic": "fills", "partition": 0, "account": "A", "symbol": "AAPL"}
    insert(tape, "fills", [{**f, "offset": 0, "fill_id": "F0", "quantity": 60}, {**f, "offset": 1, "fill_id": "F1", "quantity": 40}])
    # What risk forwarded to matching (orders.accepted) and the cancels it issued itself are not client commands.
    acc = {**o, "topic": "orders.accepted"}
    insert(tape, "orders", [{**acc, "offset": 0, "record_type": "NewOrder", "client_order_id": "c1", "quantity": 100},
                            {**acc, "offset": 1, "record_type": "CancelOrder", "client_order_id": "c1", "reason": "KILL_SWITCH"}])
    e = {"topic": "order.events", "partition": 0, "account": "A", "symbol": "AAPL", "record_type": "OrderCancelRejected"}
    insert(tape, "order_events", [{**e, "offset": 0, "client_order_id": "c2", "response_to": "CANCEL", "reason_code": "TOO_LATE_TO_CANCEL"},
                                  {**e, "offset": 1, "client_order_id": "c1", "response_to": "REPLACE", "reason_code": "UNKNOWN_ORDER"},
                                  {**e, "offset": 2, "record_type": "OrderCancelled", "client_order_id": "c1"}])
    assert rows(tape, "SELECT orders, cancels, replaces, fills, order_qty, filled_qty, order_to_trade, fill_ratio, cancel_rate, "
                      "cancel_rejects, replace_rejects, cancel_reject_rate FROM tape.order_activity") == [
        (2, 1, 1, 2, 400, 100, 2.0, 0.25, 0.5, 1, 1, 1.0)]


def test_cancel_rejects_per_minute_by_answer_reason_and_status(tape):
    e = {"topic": "order.events", "partition": 0, "account": "A", "symbol": "AAPL", "client_order_id": "c", "record_type": "OrderCancelRejected"}
    rej = [("CANCEL", "TOO_LATE_TO_CANCEL", 0, "FILLED", T0), ("CANCEL", "TOO_LATE_TO_CANCEL", 0, "FILLED", T0 + SEC),
           ("REPLACE", "TOO_LATE_TO_REPLACE", 0, "CANCELLED", T0 + 2 * SEC), ("CANCEL", "UNKNOWN_ORDER", 1, "REJECTED", T0 + MIN)]
    insert(tape, "order_events", [{**e, "offset": i, "response_to": to, "reason_code": code, "cxl_rej_reason": fix, "ord_status": st,
                                   "ts": ("t", ts)} for i, (to, code, fix, st, ts) in enumerate(rej)])
    insert(tape, "order_events", [{**e, "offset": 1, "response_to": "CANCEL", "reason_code": "TOO_LATE_TO_CANCEL", "cxl_rej_reason": 0,
                                   "ord_status": "FILLED", "ts": ("t", T0 + SEC), "log_key": "again"}])  # sunk twice: counted once
    insert(tape, "order_events", [{**e, "offset": 9, "record_type": "OrderRejected", "reason_code": "INVALID_PRICE", "ts": ("t", T0)}])
    assert rows(tape, "SELECT toUnixTimestamp64Nano(bucket), response_to, reason_code, cxl_rej_reason, ord_status, rejects "
                      "FROM tape.cancel_rejects_1m ORDER BY bucket, reason_code") == [
        (T0 // MIN * MIN, "CANCEL", "TOO_LATE_TO_CANCEL", 0, "FILLED", 2),
        (T0 // MIN * MIN, "REPLACE", "TOO_LATE_TO_REPLACE", 0, "CANCELLED", 1),
        (T0 // MIN * MIN + MIN, "CANCEL", "UNKNOWN_ORDER", 1, "REJECTED", 1),
    ]


def test_fills_awaiting_report_are_those_without_an_execution_report(tape):
    f = {"topic": "fills", "partition": 0, "account": "A", "symbol": "AAPL", "side": "BUY", "price": 10, "quantity": 1, "venue": "internal"}
    insert(tape, "fills", [{**f, "offset": i, "fill_id": fid, "ts": ("t", T0 + i)} for i, fid in enumerate(("F0", "F1", "F2", "F3"))])
    x = {"topic": "exec.reports", "partition": 0, "venue": "internal", "account": "A", "symbol": "AAPL", "side": "BUY", "last_qty": 1}
    insert(tape, "exec_reports", [{**x, "offset": 0, "exec_id": "F0", "exec_type": "FILL"},
                                  {**x, "offset": 1, "exec_id": "F1", "exec_type": "NEW"}])  # not an execution
    insert(tape, "recon_breaks", [{"topic": "recon.breaks", "partition": 0, "offset": 0, "break_id": "b", "kind": "MISSING_VENUE",
                                   "venue": "internal", "account": "A", "symbol": "AAPL", "exec_id": "F3", "detail": "x"}])
    assert rows(tape, "SELECT fill_id, missing_venue FROM tape.fills_awaiting_report ORDER BY fill_id") == [
        ("F1", 0), ("F2", 0), ("F3", 1)]


def test_risk_rejects_dlq_and_recon_counts(tape):
    r = {"topic": "orders.decisions", "partition": 0, "account": "A", "symbol": "AAPL", "client_order_id": "c"}
    insert(tape, "risk_decisions", [{**r, "offset": 0, "reason": "ACCEPTED", "ts": ("t", T0)},
                                    {**r, "offset": 1, "reason": "MAX_QTY", "ts": ("t", T0 + 1)},
                                    {**r, "offset": 2, "reason": "MAX_QTY", "ts": ("t", T0 + MIN)},
                                    {**r, "offset": 3, "reason": "HALTED", "ts": ("t", T0 + MIN + 5)}])
    assert rows(tape, "SELECT reason, rejects FROM tape.risk_rejects_1m ORDER BY bucket, reason") == [
        ("MAX_QTY", 1), ("HALTED", 1), ("MAX_QTY", 1)]
    d = {"topic": "dlq.risk", "partition": 0, "processor": "risk"}
    insert(tape, "dead_letters", [{**d, "offset": 0, "reason_code": "BAD", "ts": ("t", T0)},
                                  {**d, "offset": 1, "reason_code": "BAD", "ts": ("t", T0 + 2)}])
    assert rows(tape, "SELECT processor, reason_code, letters FROM tape.dlq_counts_1m") == [("risk", "BAD", 2)]
    b = {"topic": "recon.breaks", "partition": 0, "venue": "SIM"}
    insert(tape, "recon_breaks", [{**b, "offset": 0, "kind": "QTY", "ts": ("t", T0)}, {**b, "offset": 1, "kind": "QTY", "ts": ("t", T0 + 9)}])
    assert rows(tape, "SELECT kind, breaks, toUnixTimestamp64Nano(last_ts) - toUnixTimestamp64Nano(first_ts) "
                      "FROM tape.recon_breaks_by_kind") == [("QTY", 2, 9)]


def test_trading_state_changes_name_their_outcome_and_cancels(tape):
    c = {"topic": "ops.commands", "partition": 0, "operator_id": "op1", "signature": "s"}
    insert(tape, "ops_commands", [{**c, "offset": 0, "record_type": "KillSwitch", "command_id": "k1", "account": "A", "engaged": True,
                                   "ts": ("t", T0)},
                                  {**c, "offset": 1, "record_type": "Halt", "command_id": "k1", "ts": ("t", T0 + 1)}])
    insert(tape, "dead_letters", [{"topic": "dlq.risk", "partition": 0, "offset": 0, "processor": "risk", "reason_code": "REPLAYED_COMMAND_ID",
                                   "source_topic": "ops.commands", "source_partition": 0, "source_offset": 1}])
    insert(tape, "risk_decisions", [{"topic": "orders.decisions", "partition": 0, "offset": i, "command": "CANCEL", "reason": "ACCEPTED",
                                     "src_topic": "ops.commands", "src_partition": 0, "src_offset": 0} for i in range(3)])
    assert rows(tape, "SELECT command, command_id, outcome, refusal_code, cancels_issued FROM tape.trading_state_changes ORDER BY offset") == [
        ("KillSwitch", "k1", "applied", "", 3), ("Halt", "k1", "refused", "REPLAYED_COMMAND_ID", 0)]


def commit(processor: str, seq: int, committed: int, ranges: list[tuple[str, int, int, int]], task: int = 0) -> dict[str, Any]:
    return {"topic": f"state.{processor}", "partition": 0, "offset": seq, "processor": processor, "task": task, "seq": seq,
            "inputs": ranges, "committed_ts": ("t", committed)}


def test_stage_latency_is_append_to_append_from_the_commit_manifests(tape):
    """issue 14: outputs inherit their input's log time, so log_ts differences were 0 for every stage. Append times come
    from the commit of the transaction that wrote each record; a stage fed by a source (no append time) is left out."""
    c1, c2, c3, c4 = T0 + 10 * SEC, T0 + 10 * SEC + 1_500_000, T0 + 10 * SEC + 4_000_000, T0 + 10 * SEC + 9_000_000
    insert(tape, "commits", [
        commit("risk", 1, c1, [("orders.in", 2, 5, 10), ("md.normalized", 0, 0, 0)], task=2),
        commit("matching", 1, c1 - 100, [("orders.accepted", 2, 0, 3)]),
        commit("matching", 2, c2, [("orders.accepted", 2, 3, 8)]),
        commit("dropcopy", 1, c3, [("fills", 1, 0, 10)], task=1),
        commit("ledger", 1, c4, [("fills", 1, 4, 5)], task=1),
    ])
    insert(tape, "orders", [{"topic": "orders.in", "partition": 2, "offset": 7, "log_ts": ("t", T0)}])
    insert(tape, "risk_decisions", [{"topic": "risk.decisions", "partition": 0, "offset": 0, "log_ts": ("t", T0),
                                     "src_topic": "orders.in", "src_partition": 2, "src_offset": 7}])
    insert(tape, "orders", [{"topic": "orders.accepted", "partition": 2, "offset": 3, "log_ts": ("t", T0),
                             "src_topic": "orders.in", "src_partition": 2, "src_offset": 7}])
    insert(tape, "fills", [{"topic": "fills", "partition": 1, "offset": 4, "log_ts": ("t", T0),
                            "src_topic": "orders.accepted", "src_partition": 2, "src_offset": 3},
                           {"topic": "fills", "partition": 1, "offset": 5, "log_ts": ("t", T0),  # no commit holds its source
                            "src_topic": "orders.accepted", "src_partition": 2, "src_offset": 99}])
    insert(tape, "exec_reports", [{"topic": "exec.reports", "partition": 1, "offset": 0, "log_ts": ("t", T0 + 1_000_000),
                                   "src_topic": "fills", "src_partition": 1, "src_offset": 4}])
    insert(tape, "ledger_entries", [{"topic": "ledger.entries", "partition": 0, "offset": 0, "log_ts": ("t", T0),
                                     "src_topic": "fills", "src_partition": 1, "src_offset": 4}])
    assert rows(tape, "SELECT stage, processor, latency_ns FROM tape.stage_latency ORDER BY stage") == [
        ("fills -> exec.reports", "dropcopy", c3 - c2), ("fills -> ledger.entries", "ledger", c4 - c2),
        ("orders.accepted -> fills", "matching", c2 - c1)]
    assert rows(tape, "SELECT topic, offset, processor, toUnixTimestamp64Nano(appended_ts) FROM tape.record_appends "
                      "ORDER BY appended_ts, topic") == [
        ("orders.accepted", 3, "risk", c1), ("risk.decisions", 0, "risk", c1), ("fills", 4, "matching", c2),
        ("exec.reports", 0, "dropcopy", c3), ("ledger.entries", 0, "ledger", c4)]
