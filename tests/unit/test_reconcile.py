"""The reconcile processor and the drop-copy simulator, pure: every fault kind, the window and threshold boundaries,
the signed halt, determinism and snapshot/restore."""

from __future__ import annotations

import heapq
from typing import Any

import pytest
from pydantic import ValidationError

from connectors.dropcopy import DropCopyConfig, drop_copy, fate
from streams.config import HftSettings
from streams.ops.signing import check
from streams.processors import PROCESSORS
from streams.processors.base import Message, Output, Reject
from streams.processors.reconcile import ReconcileConfig, ReconcileProcessor
from streams.serde.repo import SchemaRepo

T0 = 1_767_364_200_000_000_000
W = 1_000_000  # 1 ms windows keep the arithmetic readable
HALT = "hftstream.ops.Halt"
KEY = "s3cret-reconciler-key"


@pytest.fixture(scope="module")
def repo() -> SchemaRepo:
    return SchemaRepo.load(HftSettings().schemas_dir)


def fill(i: int, *, account: str = "A1", side: str = "BUY", price: int = 1_000_000, qty: int = 5, ts: int | None = None) -> dict[str, Any]:
    return {
        "fill_id": f"F{i}", "trade_id": f"T{i}", "account": account, "symbol": "AAPL", "client_order_id": f"c{i}",
        "order_id": f"o{i}", "side": side, "price": price, "quantity": qty, "liquidity": "TAKER", "venue": "internal",
        "ts_ns": T0 + i * 10_000_000 if ts is None else ts,
    }


def report_for(f: dict[str, Any], **over: Any) -> dict[str, Any]:
    v = {
        "venue": f["venue"], "account": f["account"], "symbol": f["symbol"], "client_order_id": f["client_order_id"],
        "venue_order_id": f["order_id"], "exec_id": f["fill_id"], "exec_type": "PARTIAL_FILL", "side": f["side"],
        "last_price": f["price"], "last_qty": f["quantity"], "cum_qty": f["quantity"], "leaves_qty": 0,
        "venue_ts_ns": f["ts_ns"], "recv_ts_ns": f["ts_ns"] + 1000,
    }
    v.update(over)
    return v


def merged(fills: list[dict[str, Any]], reports: list[dict[str, Any]]) -> list[Message]:
    """The two partitions as the runtime merges them: (timestamp_ms, input rank), offset order within each."""
    fm = [Message("fills", 0, i, f["ts_ns"], f["account"].encode(), "hftstream.fills.Fill", f) for i, f in enumerate(fills)]
    rm = [Message("exec.reports", 0, i, r["recv_ts_ns"], r["account"].encode(), "hftstream.exec.ExecutionReport", r)
          for i, r in enumerate(reports)]
    rank = {"fills": 0, "exec.reports": 1}
    return list(heapq.merge(fm, rm, key=lambda m: (m.timestamp_ns // 1_000_000, rank[m.topic])))


def run(proc: ReconcileProcessor, msgs: list[Message]) -> list[Output]:
    out: list[Output] = []
    for r in proc.process_batch(msgs):
        assert isinstance(r, list), r
        out.extend(r)
    return out


def proc(repo: SchemaRepo, *, threshold: int = 100, window: int = W) -> ReconcileProcessor:
    return ReconcileProcessor(ReconcileConfig(match_window_ns=window, halt_threshold=threshold, signing_key=KEY), 0, repo)


def breaks(out: list[Output]) -> list[tuple[str, str]]:
    return [(o.value["kind"], o.value["exec_id"]) for o in out if o.topic == "recon.breaks"]


def statuses(out: list[Output]) -> list[tuple[str, int]]:
    return [(o.value["state"], o.value["open_breaks"]) for o in out if o.topic == "recon.status"]


# -- each injected fault is detected with the right break kind ------------------------------------

@pytest.mark.parametrize(("fault", "expected"), [
    ("missing", [("MISSING_VENUE", "F1")]),
    ("late", [("MISSING_VENUE", "F1")]),  # then healed, see below
    ("qty", [("QTY_MISMATCH", "F1")]),
    ("price", [("PRICE_MISMATCH", "F1")]),
    ("unknown", [("MISSING_INTERNAL", "X-F1")]),
])
def test_each_fault_kind_gives_its_break(repo: SchemaRepo, fault: str, expected: list[tuple[str, str]]) -> None:
    fills = [fill(i) for i in range(4)]  # fills every 10 ms: the clock moves past each 1 ms window
    cfg = DropCopyConfig(seed=7, report_delay_ns=1000, late_delay_ns=25_000_000, faults={"F1": fault})  # late by 2.5 fills
    p = proc(repo)
    out = run(p, merged(fills, [r.value for r in drop_copy(fills, cfg)]))
    p.process(Message("fills", 0, 99, T0 + 10**9, b"A1", "hftstream.fills.Fill", fill(100)))  # move the clock on
    assert breaks(out) == expected
    counters = p.counters()
    if fault == "late":
        assert counters["late"] == 1 and counters["healed"] == 1 and counters["open_breaks"] == 0
        assert statuses(out) == [("IN_SYNC", 0), ("DIVERGED", 1), ("IN_SYNC", 0)]
        assert p.status("internal") == "IN_SYNC"
    elif fault in ("qty", "price"):
        [b] = [o.value for o in out if o.topic == "recon.breaks"]
        assert (b["internal_value"], b["venue_value"]) == ((5, 4) if fault == "qty" else (1_000_000, 1_000_001))
        assert counters["matched"] == 4 and counters["open_breaks"] == 1  # a mismatch stays open: it needs an operator
    else:
        assert counters["open_breaks"] == 1 and p.status("internal") == "DIVERGED"
    assert counters["matched"] == (4 if fault in ("qty", "price", "late", "unknown") else 3)


def test_side_mismatch_and_non_execution_reports(repo: SchemaRepo) -> None:
    f = fill(1, side="SELL")
    p = proc(repo)
    out = run(p, merged([f], [report_for(f, side="BUY"), report_for(f, exec_id="N1", exec_type="NEW", last_price=None, last_qty=0)]))
    [b] = [o.value for o in out if o.topic == "recon.breaks"]
    assert (b["kind"], b["internal_value"], b["venue_value"], b["client_order_id"]) == ("SIDE_MISMATCH", -1, 1, "c1")
    assert p.counters()["not_executions"] == 1


def test_a_fill_after_its_report_matches_and_a_late_fill_heals_missing_internal(repo: SchemaRepo) -> None:
    f1, f2 = fill(1), fill(2)
    p = proc(repo)
    # f1's report comes first and f1 follows within the window: a plain match
    out = run(p, [Message("exec.reports", 0, 0, T0, b"A1", "hftstream.exec.ExecutionReport", report_for(f1, recv_ts_ns=f1["ts_ns"] - W)),
                  Message("fills", 0, 0, T0, b"A1", "hftstream.fills.Fill", f1)])
    assert breaks(out) == []
    # f2's report waits longer than the window: MISSING_INTERNAL; f2 then heals it
    out = run(p, [Message("exec.reports", 0, 1, T0, b"A1", "hftstream.exec.ExecutionReport", report_for(f2, recv_ts_ns=f2["ts_ns"] - 2 * W)),
                  Message("fills", 0, 1, T0, b"A1", "hftstream.fills.Fill", f2)])
    assert breaks(out) == [("MISSING_INTERNAL", "F2")]
    assert statuses(out) == []  # broken and healed by the same input: the status after it is unchanged
    assert p.counters()["healed"] == 1 and p.counters()["late"] == 0


# -- the window boundary ------------------------------------------------------------------------------

@pytest.mark.parametrize(("delay", "kinds", "late"), [
    (W, [], 0),                       # exactly the window: matched
    (W + 1, ["MISSING_VENUE"], 1),    # one ns beyond: a break, healed by the report
])
def test_window_boundary(repo: SchemaRepo, delay: int, kinds: list[str], late: int) -> None:
    f = fill(1)
    p = proc(repo)
    out = run(p, [Message("fills", 0, 0, f["ts_ns"], b"A1", "hftstream.fills.Fill", f)])
    assert out[0].value["checked_through_ts_ns"] == f["ts_ns"] - 1  # F1 still waiting
    out = run(p, [Message("exec.reports", 0, 0, f["ts_ns"] + delay, b"A1", "hftstream.exec.ExecutionReport",
                          report_for(f, recv_ts_ns=f["ts_ns"] + delay))])
    assert [k for k, _ in breaks(out)] == kinds
    assert p.counters()["late"] == late and p.counters()["open_breaks"] == 0 and p.counters()["matched"] == 1


def test_pending_at_the_end_of_input_is_not_a_break(repo: SchemaRepo) -> None:
    p = proc(repo)
    out = run(p, merged([fill(1)], []))
    assert breaks(out) == [] and p.counters()["pending_fills"] == 1


# -- the threshold, the halt, its signature --------------------------------------------------------------

@pytest.mark.parametrize(("missing", "halts"), [(3, 0), (4, 1), (6, 1)])
def test_threshold_exactly_vs_one_more_halts_once_signed(repo: SchemaRepo, missing: int, halts: int) -> None:
    fills = [fill(i) for i in range(10)]
    cfg = DropCopyConfig(report_delay_ns=1000, faults={f"F{i}": "missing" for i in range(missing)})
    p = proc(repo, threshold=3)
    msgs = merged(fills, [r.value for r in drop_copy(fills, cfg)])
    out = run(p, msgs) + run(p, [Message("fills", 0, 99, T0 + 10**9, b"A1", "hftstream.fills.Fill", fill(99))])
    assert len(breaks(out)) == missing
    cmds = [o for o in out if o.topic == "ops.commands"]
    assert len(cmds) == halts
    if not halts:
        assert p.status("internal") == "DIVERGED" and statuses(out)[-1] == ("DIVERGED", 3)
        assert p.states() == {"recon": {"internal": "DIVERGED"}}  # what the runtime's hftstream_recon_status shows
        return
    [cmd] = cmds
    assert cmd.schema == HALT and cmd.key == "global"
    v = cmd.value
    assert v["operator_id"] == "reconciler" and v["symbol"] is None and "4 open breaks on venue internal (threshold 3)" in v["reason"]
    assert check(repo, HALT, v, {"reconciler": KEY.encode()}) is None  # verifiable with the reconciler's key
    assert check(repo, HALT, v, {"reconciler": b"another key"}) == "BAD_SIGNATURE"
    assert check(repo, HALT, {**v, "reason": "forged"}, {"reconciler": KEY.encode()}) == "BAD_SIGNATURE"
    assert p.status("internal") == "HALTED" and ("HALTED", 4) in statuses(out)
    assert statuses(out)[-1] == ("HALTED", missing)  # stays HALTED; more breaks, no second halt
    assert p.states() == {"recon": {"internal": "HALTED"}}
    assert p.counters()["halts"] == 1


# -- bad input, config ---------------------------------------------------------------------------------------

def test_rejects_and_config(repo: SchemaRepo) -> None:
    f = fill(1)
    p = proc(repo)
    p.process(Message("fills", 0, 0, T0, b"A1", "hftstream.fills.Fill", f))
    with pytest.raises(Reject) as exc:
        p.process(Message("fills", 0, 1, T0, b"A1", "hftstream.fills.Fill", f))
    assert exc.value.reason_code == "DUPLICATE_FILL"
    with pytest.raises(Reject) as exc:
        p.process(Message("exec.reports", 0, 0, T0, b"A1", "hftstream.exec.ExecutionReport", report_for(f, last_price=None)))
    assert exc.value.reason_code == "BAD_REPORT"
    with pytest.raises(Reject) as exc:
        p.process(Message("fills", 0, 2, T0, b"A1", "hftstream.md.Trade", {}))
    assert exc.value.reason_code == "UNEXPECTED_SCHEMA"
    assert p.counters()["rejected.DUPLICATE_FILL"] == 1
    with pytest.raises(ValidationError):
        ReconcileConfig(window=5)
    with pytest.raises(ValidationError):
        ReconcileConfig(match_window_ns=0)
    assert "dev" not in repr(ReconcileConfig())  # the key is a secret: never printed
    assert PROCESSORS["reconcile"] is ReconcileProcessor


# -- the drop-copy simulator ---------------------------------------------------------------------------------

def test_drop_copy_is_deterministic_and_order_independent() -> None:
    fills = [fill(i, account=f"A{i % 3}") for i in range(2000)]
    cfg = DropCopyConfig(seed=11, missing_ppm=50_000, late_ppm=50_000, qty_ppm=50_000, price_ppm=50_000, unknown_ppm=50_000)
    a = drop_copy(fills, cfg)
    assert a == drop_copy(fills, cfg)
    assert sorted(r.value["exec_id"] for r in drop_copy(list(reversed(fills)), cfg)) == sorted(r.value["exec_id"] for r in a)
    assert drop_copy(fills, cfg.model_copy(update={"seed": 12})) != a
    kinds = [fate(cfg, f["fill_id"]) for f in fills]
    for kind in ("missing", "late", "qty", "price"):
        assert 60 <= sum(k == kind for k, _ in kinds) <= 140, kind  # 5 % of 2000 = 100
    assert 60 <= sum(u for _, u in kinds) <= 140
    assert [r.timestamp_ns for r in a] == sorted(r.timestamp_ns for r in a)
    assert all(r.key == r.value["account"] and r.timestamp_ns == r.value["recv_ts_ns"] for r in a)
    clean = drop_copy(fills[:3], DropCopyConfig(seed=0))
    assert [(r.value["exec_id"], r.value["last_qty"], r.value["recv_ts_ns"] - r.value["venue_ts_ns"]) for r in clean] == [
        ("F0", 5, 1_000_000), ("F1", 5, 1_000_000), ("F2", 5, 1_000_000)]


def test_seeded_faults_all_detected_and_snapshot_restore_mid_way(repo: SchemaRepo) -> None:
    fills = [fill(i, account=f"A{i % 3}", ts=T0 + i * 3_000_000) for i in range(600)]
    cfg = DropCopyConfig(seed=3, report_delay_ns=100_000, late_delay_ns=5 * W, missing_ppm=20_000, late_ppm=20_000,
                         qty_ppm=20_000, price_ppm=20_000, unknown_ppm=20_000)
    msgs = merged(fills, [r.value for r in drop_copy(fills, cfg)])
    msgs.append(Message("fills", 0, 600, T0 + 10**10, b"A0", "hftstream.fills.Fill", fill(9999, account="A0", ts=T0 + 10**10)))
    a = proc(repo, threshold=1000)
    whole = run(a, msgs)
    fates = [fate(cfg, f["fill_id"]) for f in fills]
    got = breaks(whole)
    want = {"missing": "MISSING_VENUE", "late": "MISSING_VENUE", "qty": "QTY_MISMATCH", "price": "PRICE_MISMATCH"}
    expected = sorted([(want[k], f"F{i}") for i, (k, _) in enumerate(fates) if k in want]
                      + [("MISSING_INTERNAL", f"X-F{i}") for i, (_, u) in enumerate(fates) if u])
    assert sorted(got) == expected and len(expected) > 30
    assert a.counters()["late"] == sum(k == "late" for k, _ in fates)
    b = proc(repo, threshold=1000)
    assert run(b, msgs) == whole and b.snapshot() == a.snapshot()
    c = proc(repo, threshold=1000)
    first = run(c, msgs[:401])
    blob = c.snapshot()
    d = proc(repo, threshold=1000)
    d.restore(blob)
    assert d.snapshot() == blob
    assert first + run(d, msgs[401:]) == whole
    assert d.snapshot() == a.snapshot() and d.counters() == a.counters()
