"""The paced latency figure says how many orders it covers and whether the pacer kept up (issue 14, item 3)."""

from streams.cli.demo import _print_summary
from streams.demo.latency import describe

FIGURES = {"orders": 1500, "paced": 1500, "measured": 1498, "missing": 2, "p50": 1421.7, "p99": 5895.1, "max": 6001.0,
           "rate": 300, "pacer_late_records": 548, "pacer_fell_behind": True}


def test_describe_names_paced_and_measured_orders_and_a_late_pacer():
    line = describe(FIGURES)
    assert "p50 1421.7 ms, p99 5895.1 ms" in line
    assert "1,498 of 1,500 paced orders measured" in line
    assert "PACER FELL BEHIND" in line and "548 records" in line


def test_describe_is_quiet_about_a_pacer_that_kept_up():
    line = describe({**FIGURES, "pacer_late_records": 0, "pacer_fell_behind": False, "measured": 1500})
    assert "1,500 of 1,500 paced orders measured" in line
    assert "BEHIND" not in line


def test_the_summary_prints_the_warning_beside_the_figure():
    lines: list[str] = []
    result = {"orders": {"NewOrder": 1}, "accepted": 1, "fills": 0, "rejects_by_reason": {}, "order_events": {},
              "ledger_entries": 0, "ledger_balanced": True, "pnl": {}, "trading_state": [], "recon_status": "HEALTHY",
              "recon_breaks": {}, "orders_per_s": 10, "latency_ms": FIGURES, "digest": "d", "tape": None,
              "orders_sent": 1, "rejected_by_risk": 0, "risk_issued_cancels": {}, "cancel_rejects": {}, "dead_letters": {},
              "fills_awaiting_report": {"fills": 0, "past_window": 0}}
    _print_summary(result, lambda text="", **kw: lines.append(text))
    latency = [line for line in lines if "p99 5895.1 ms" in line]
    assert len(latency) == 1 and "PACER FELL BEHIND" in latency[0] and "1,500 paced orders" in latency[0]
