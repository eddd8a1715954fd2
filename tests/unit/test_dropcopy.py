"""The drop-copy processor, pure: the same reports as the pure function, held late reports, cum_qty from its state,
snapshot/restore anywhere mid-stream, its shipped configuration and its place in the pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from connectors.dropcopy import DropCopyConfig, DropCopyProcessor, Report, drop_copy, fate
from streams.errors import ConfigError
from streams.log.partitioner import partition_for
from streams.processors import PROCESSORS
from streams.processors.base import Message, Output, Reject
from streams.runtime.lookup import load_config

T0 = 1_767_364_200_000_000_000
MS = 1_000_000
FILL = "hftstream.fills.Fill"
FAULTY = DropCopyConfig(seed=4, report_delay_ns=MS, late_delay_ns=40 * MS, missing_ppm=60_000, late_ppm=60_000,
                        qty_ppm=60_000, price_ppm=60_000, unknown_ppm=60_000)


def fills(n: int, *, accounts: int = 4, step: int = 3 * MS, start: int = T0) -> list[dict[str, Any]]:
    """``n`` fills in time order; each order gets 1-3 consecutive executions, so cum_qty has something to add up."""
    out = []
    for i in range(n):
        account = f"A{i % accounts}"
        out.append({
            "fill_id": f"F{i}", "trade_id": f"T{i}", "account": account, "symbol": "AAPL", "client_order_id": f"c{i // (3 * accounts)}",
            "order_id": f"AAPL:{i // (3 * accounts)}-{account}", "side": ("BUY", "SELL")[i % 2], "price": 1_000_000 + i % 17,
            "quantity": 1 + i % 5, "liquidity": "TAKER", "venue": "internal", "ts_ns": start + i * step,
        })
    return out


def messages(values: list[dict[str, Any]], partition: int = 0) -> list[Message]:
    return [Message("fills", partition, i, v["ts_ns"], v["account"].encode(), FILL, v) for i, v in enumerate(values)]


def run(proc: DropCopyProcessor, msgs: list[Message]) -> list[Output]:
    out: list[Output] = []
    for m in msgs:
        out += proc.process(m)
    return out


def as_reports(outs: list[Output]) -> list[Report]:
    return [Report(o.key, o.value, o.timestamp_ns) for o in outs]  # type: ignore[arg-type]


def test_same_fills_give_the_pure_functions_reports_in_the_same_order() -> None:
    values = fills(1500)
    proc = DropCopyProcessor(FAULTY, 0)
    outs = run(proc, messages(values))
    pure = drop_copy(values, FAULTY)
    kinds = [fate(FAULTY, v["fill_id"]) for v in values]
    assert {k for k, _ in kinds} == {"ok", "missing", "late", "qty", "price"} and any(u for _, u in kinds)
    # written + still held (late reports whose arrival the clock has not reached) = the pure function, in order
    assert as_reports(outs) + proc.held() == pure
    assert proc.held() and all(r.value["recv_ts_ns"] > values[-1]["ts_ns"] + MS for r in proc.held())
    assert all(o.topic == "exec.reports" and o.schema == "hftstream.exec.ExecutionReport" for o in outs)
    assert all(o.key == o.value["account"] and o.timestamp_ns == o.value["recv_ts_ns"] for o in outs)
    assert [o.timestamp_ns for o in outs] == sorted(o.timestamp_ns for o in outs)  # a partition in arrival order
    missing = sum(k == "missing" for k, _ in kinds)
    unknown = sum(u for _, u in kinds)
    assert len(outs) + len(proc.held()) == len(values) - missing + unknown
    c = proc.counters()
    assert (c["fills"], c["missing"], c["unknown"], c["reports"], c["held"]) == (1500, missing, unknown, len(outs), len(proc.held()))


def test_a_late_fill_releases_the_held_reports_and_the_tail_flushes_with_a_later_fill() -> None:
    values = fills(400)
    tail = fills(1, start=values[-1]["ts_ns"] + 10**10)[0] | {"fill_id": "TAIL", "order_id": "tail"}
    proc = DropCopyProcessor(FAULTY, 0)
    outs = run(proc, messages([*values, tail]))
    assert proc.held() == []  # a fill 10 s later moved the clock past every late arrival
    assert as_reports(outs) + proc.held() == drop_copy([*values, tail], FAULTY)
    late = [o for o in outs if not o.value["exec_id"].startswith("X-") and fate(FAULTY, o.value["exec_id"])[0] == "late"]
    assert late and all(o.value["recv_ts_ns"] - o.value["venue_ts_ns"] == 40 * MS for o in late)


def test_cum_qty_comes_from_the_state_in_execution_order_and_retain_orders_bounds_it() -> None:
    base = fills(3, accounts=1)  # one order, three executions of 1, 2, 3
    tail = {**fills(1, accounts=1, start=T0 + 10**11)[0], "fill_id": "TAIL", "order_id": "other"}
    cfg = DropCopyConfig(seed=0, faults={"F1": "late", "F2": "unknown"})
    outs = run(DropCopyProcessor(cfg, 0), messages([*base, tail]))
    # F1 is delivered after F2 (30 s late) but carries the total as of its execution; the unknown execution counts too
    assert [(o.value["exec_id"], o.value["cum_qty"]) for o in outs] == [("F0", 1), ("F2", 6), ("X-F2", 9), ("F1", 3), ("TAIL", 1)]
    # a tiny retain forgets orders least recently executed first, in the processor exactly as in the pure function
    small = FAULTY.model_copy(update={"retain_orders": 2})
    values = fills(300, accounts=3)
    proc = DropCopyProcessor(small, 0)
    assert as_reports(run(proc, messages(values))) + proc.held() == drop_copy(values, small) != drop_copy(values, FAULTY)
    assert len(proc._totals.totals) == 2


@pytest.mark.parametrize("cut", [1, 37, 211, 599, 1199])
def test_snapshot_and_restore_mid_stream_give_identical_output(cut: int) -> None:
    msgs = messages(fills(1200))
    whole = DropCopyProcessor(FAULTY, 3)
    expected = run(whole, msgs)
    first = DropCopyProcessor(FAULTY, 3)
    head = run(first, msgs[:cut])
    blob = first.snapshot()
    second = DropCopyProcessor(FAULTY, 3)
    second.restore(blob)
    assert second.snapshot() == blob  # deterministic bytes
    assert head + run(second, msgs[cut:]) == expected
    assert second.snapshot() == whole.snapshot()
    second.restore(b"")
    assert second.snapshot() == DropCopyProcessor(FAULTY, 3).snapshot()


def test_every_task_writes_the_pure_reports_of_its_own_partition() -> None:
    values = fills(800, accounts=13)
    pure = drop_copy(values, FAULTY)
    for task in range(8):
        mine = [v for v in values if partition_for(v["account"].encode(), 8) == task]
        proc = DropCopyProcessor(FAULTY, task)
        got = as_reports(run(proc, messages(mine, task))) + proc.held()
        assert got == [r for r in pure if partition_for(r.key.encode(), 8) == task]


def test_anything_but_a_fill_is_a_dead_letter_and_changes_nothing() -> None:
    proc = DropCopyProcessor(FAULTY, 0)
    run(proc, messages(fills(20)))
    before = proc.snapshot()
    with pytest.raises(Reject) as info:
        proc.process(Message("fills", 0, 20, T0, b"A1", "hftstream.orders.NewOrder", {}))
    assert info.value.reason_code == "UNEXPECTED_SCHEMA"
    assert proc.counters()["rejected.UNEXPECTED_SCHEMA"] == 1
    after = proc.snapshot()
    assert before.replace(b'"rejected":0', b'"rejected":1') == after


def test_the_shipped_config_has_a_small_rate_of_every_fault_and_loads_like_every_processor_config(tmp_path: Path) -> None:
    shipped = DropCopyConfig()
    assert all(0 < getattr(shipped, f"{k}_ppm") <= 1000 for k in ("missing", "late", "qty", "price", "unknown"))
    root = Path(__file__).resolve().parents[2]
    assert load_config(DropCopyProcessor, str(root / "infra" / "dropcopy.yaml")) == shipped == load_config(DropCopyProcessor)
    assert DropCopyConfig(seed=1).missing_ppm == 0  # any field given: the model's defaults, no faults
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"seed": 1, "missing_ppm": 2_000_000}))
    with pytest.raises(ConfigError, match="missing_ppm"):
        load_config(DropCopyProcessor, str(bad))


def test_dropcopy_runs_after_matching_and_before_reconcile_with_its_topics_declared() -> None:
    names = list(PROCESSORS)
    assert names.index("matching") < names.index("dropcopy") < names.index("reconcile")
    root = Path(__file__).resolve().parents[2]
    catalog = yaml.safe_load((root / "infra" / "topics.yaml").read_text())
    assert "dropcopy" in catalog["processors"]
    proc = PROCESSORS["dropcopy"](FAULTY, 0)
    assert [i.topic for i in proc.inputs] == ["fills"] and list(proc.outputs) == ["exec.reports"]
