"""The demo's business summary read back from a real embedded log holding known records: client commands apart from
the cancels risk issued itself, cancel rejects, dead letters per processor and reason, fills awaiting their report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tape_support import T0, lineage, value_of

from streams.demo.report import business_summary
from streams.log.embedded import EmbeddedLog
from streams.serde import Serde
from streams.topics import ensure_topics

TOPICS = ("refdata.instruments", "orders.in", "risk.decisions", "orders.accepted", "order.events", "fills", "exec.reports",
          "ledger.entries", "positions", "recon.status", "recon.breaks", "dlq.matching", "dlq.risk")


def _put(log: EmbeddedLog, serde: Serde, topic: str, schema: str, values: list[tuple[dict[str, Any], str]]) -> None:
    """Publish ``values`` (value, lineage source topic) to ``topic`` as ``schema``."""
    with log.producer() as p:
        for i, (v, src) in enumerate(values):
            p.produce(topic, serde.encode(f"hftstream.{schema}", v, topic=topic), b"k", timestamp_ns=T0 + i,
                      headers=lineage(src, 0, i))


def test_summary_counts_each_kind_of_answer_apart(tmp_path: Path) -> None:
    serde = Serde.from_settings()
    log = EmbeddedLog(tmp_path / "log")
    try:
        ensure_topics(log, TOPICS)

        def new(cid: str) -> dict[str, Any]:
            return value_of(serde, "hftstream.orders.NewOrder", 1, account="A", symbol="AAPL", client_order_id=cid)
        cancel = {"account": "A", "symbol": "AAPL", "client_order_id": "c1", "reason": None, "ts_ns": T0}
        _put(log, serde, "orders.in", "orders.NewOrder", [(new("c1"), "x"), (new("c2"), "x"), (new("c3"), "x")])
        _put(log, serde, "orders.in", "orders.CancelOrder", [(cancel, "x")])

        def decision(cid: str, command: str, reason: str) -> dict[str, Any]:
            return {"account": "A", "symbol": "AAPL", "client_order_id": cid, "command": command, "reason": reason,
                    "detail": None, "ts_ns": T0}
        _put(log, serde, "risk.decisions", "risk.RiskDecision", [
            (decision("c1", "NEW", "ACCEPTED"), "orders.in"), (decision("c2", "NEW", "ACCEPTED"), "orders.in"),
            (decision("c3", "NEW", "MAX_ORDER_QTY"), "orders.in"), (decision("c1", "CANCEL", "ACCEPTED"), "orders.in"),
            (decision("c2", "CANCEL", "ACCEPTED"), "ops.commands"), (decision("c4", "CANCEL", "ACCEPTED"), "ops.commands"),
        ])
        _put(log, serde, "orders.accepted", "orders.CancelOrder", [
            (cancel, "orders.in"), ({**cancel, "client_order_id": "c2", "reason": "KILL_SWITCH"}, "ops.commands"),
            ({**cancel, "client_order_id": "c4", "reason": "CANCEL_ALL"}, "ops.commands"),
        ])
        rej = {"account": "A", "symbol": "AAPL", "client_order_id": "c1", "order_id": "AAPL:1", "response_to": "CANCEL",
               "cxl_rej_reason": 0, "reason_code": "TOO_LATE_TO_CANCEL", "reason": "x", "ord_status": "FILLED", "ts_ns": T0}
        _put(log, serde, "order.events", "orders.OrderCancelRejected", [
            (rej, "orders.accepted"), (rej, "orders.accepted"),
            ({**rej, "response_to": "REPLACE", "reason_code": "UNKNOWN_ORDER", "cxl_rej_reason": 1, "ord_status": "REJECTED"},
             "orders.accepted"),
        ])
        fills = [value_of(serde, "hftstream.fills.Fill", i, fill_id=f"F{i}", account="A", symbol="AAPL") for i in range(4)]
        _put(log, serde, "fills", "fills.Fill", [(f, "orders.accepted") for f in fills])
        reports = [value_of(serde, "hftstream.exec.ExecutionReport", 1, exec_id=xid, exec_type=kind) for xid, kind in (("F0", "FILL"), ("F1", "NEW"))]
        _put(log, serde, "exec.reports", "exec.ExecutionReport", [(x, "fills") for x in reports])
        brk = value_of(serde, "hftstream.recon.ReconBreak", 1, kind="MISSING_VENUE", exec_id="F3")
        _put(log, serde, "recon.breaks", "recon.ReconBreak", [(brk, "fills")])
        letter = "hftstream.dlq.DeadLetter"
        _put(log, serde, "dlq.matching", "dlq.DeadLetter",
             [(value_of(serde, letter, 1, processor="matching", reason_code="KEY_MISMATCH"), "orders.accepted")] * 2)
        _put(log, serde, "dlq.risk", "dlq.DeadLetter", [(value_of(serde, letter, 1, processor="risk", reason_code="BAD_SIGNATURE"), "ops.commands")])

        r = business_summary(log, serde)
    finally:
        log.close()
    assert (r["orders_sent"], r["accepted"], r["rejected_by_risk"]) == (4, 3, 1)
    assert r["rejects_by_reason"] == {"MAX_ORDER_QTY": 1}
    assert r["risk_issued_cancels"] == {"CANCEL_ALL": 1, "KILL_SWITCH": 1}
    assert r["cancel_rejects"] == {"CANCEL": {"TOO_LATE_TO_CANCEL": 2}, "REPLACE": {"UNKNOWN_ORDER": 1}}
    assert r["dead_letters"] == {"matching": {"KEY_MISMATCH": 2}, "risk": {"BAD_SIGNATURE": 1}}
    # F0 reported; F1's only report is not an execution; F3 is past the window (MISSING_VENUE)
    assert r["fills_awaiting_report"] == {"fills": 3, "past_window": 1}
