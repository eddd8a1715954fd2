"""The tape of a demo run (``hftstream demo`` sinks it): one row per log record, nothing doubled by a re-sink,
exact after SIGKILLs of the sink at random points.

The demo's log and tape are shared by the session (``demo_tape``); tests that write copy them first.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from tape_support import HFTSTREAM, cli, scalar, tape_at

from connectors.clickhouse.sink import sink_topics
from connectors.clickhouse.tables import TABLES
from streams.demo.report import committed_records
from streams.log import open_log

pytestmark = pytest.mark.slow


def _topic_counts(data: Path) -> dict[str, int]:
    """Committed records per topic the sink takes (read_committed), on the demo's log; empty topics left out."""
    with open_log(f"embedded://{data / 'log'}") as log:
        counts = {t: sum(1 for _ in committed_records(log, t)) for t in sink_topics(log, None)}
    return {t: n for t, n in counts.items() if n}


def _tape_counts(tape, final: bool = False) -> dict[str, int]:  # type: ignore[no-untyped-def]
    fin = " FINAL" if final else ""
    union = " UNION ALL ".join(f"SELECT topic FROM tape.{t}{fin}" for t in TABLES)
    return dict(tape.client.query(f"SELECT topic, count() FROM ({union}) GROUP BY topic").result_rows)


def _exact(tape) -> dict[str, tuple[int, int, int]]:  # type: ignore[no-untyped-def]
    """Per table: (count(), uniqExact(topic, partition, offset), count() FINAL)."""
    return {t: tuple(tape.client.query(
        f"SELECT (SELECT count() FROM tape.{t}), (SELECT uniqExact(topic, partition, offset) FROM tape.{t}), "
        f"(SELECT count() FROM tape.{t} FINAL)").result_rows[0]) for t in TABLES}


def _copy_log(demo: Path, to: Path) -> Path:
    """A data directory holding a copy of the demo's log and no tape (a chDB directory cannot be copied: it has symlinks)."""
    shutil.copytree(demo / "log", to / "log")
    return to


def test_every_topic_is_on_the_tape_record_for_row(demo_tape: Path) -> None:
    expected = _topic_counts(demo_tape)
    assert {"fills", "orders.in", "risk.decisions", "order.events", "ledger.entries", "positions", "md.normalized"} <= set(expected)
    assert min(expected[t] for t in ("fills", "ledger.entries", "order.events")) > 100, expected
    demo = json.loads((demo_tape / "demo.json").read_text())
    with tape_at(demo_tape, init=False) as tape:
        assert _tape_counts(tape) == expected
        assert _tape_counts(tape, final=True) == expected
        assert scalar(tape, "SELECT count() FROM tape.dead_letters WHERE processor = 'tape'") == 0, "the sink refused nothing"
        fills = scalar(tape, "SELECT count() FROM tape.fills")
        lineage = scalar(tape, "SELECT countIf(src_topic = 'orders.accepted') FROM tape.fills")
    assert fills == demo["fills"] and lineage == fills, "every fill is traceable to the accepted order that caused it"
    assert demo["tape"]["records"] == sum(expected.values()) and sum(demo["tape"]["rows"].values()) == sum(expected.values())


def test_the_tape_counts_the_cancel_rejects_fills_awaiting_report_and_dead_letters_the_demo_reports(demo_tape: Path) -> None:
    demo = json.loads((demo_tape / "demo.json").read_text())
    with tape_at(demo_tape, init=False) as tape:
        cxl = tape.client.query("SELECT response_to, reason_code, sum(rejects) FROM tape.cancel_rejects_1m GROUP BY ALL").result_rows
        activity = scalar(tape, "SELECT sum(cancel_rejects) + sum(replace_rejects) FROM tape.order_activity")
        awaiting = tuple(tape.client.query("SELECT count(), countIf(missing_venue = 1) FROM tape.fills_awaiting_report").result_rows[0])
        dead = tape.client.query("SELECT processor, reason_code, count() FROM tape.dead_letters FINAL GROUP BY ALL").result_rows
        matching_dead = scalar(tape, "SELECT count() FROM tape.dead_letters WHERE processor = 'matching' AND reason_code LIKE 'TOO_LATE%'")
    assert {(to, code): n for to, code, n in cxl} == {(to, code): n for to, by in demo["cancel_rejects"].items() for code, n in by.items()}
    assert sum(n for *_, n in cxl) == activity > 0, "the demo's races are cancel rejects on the tape"
    assert matching_dead == 0
    assert awaiting == (demo["fills_awaiting_report"]["fills"], demo["fills_awaiting_report"]["past_window"])
    assert {(p, code): n for p, code, n in dead} == {(p, code): n for p, by in demo["dead_letters"].items() for code, n in by.items()}


def test_a_resink_from_offset_zero_adds_nothing(demo_tape: Path) -> None:
    data = demo_tape
    with tape_at(data, init=False) as tape:
        before = _exact(tape)
    again = cli("tape", "sink", "--from-offset", "0", "--until-idle", "--json", data=data)
    assert again.returncode == 0, again.stderr
    counts = json.loads(again.stdout)
    total = sum(n for n, _, _ in before.values())
    assert counts["records"] == total and counts["already_present"] == total and counts["rows"] == {}, counts
    with tape_at(data, init=False) as tape:
        after = _exact(tape)
    assert after == before
    assert all(n == uniq == final for n, uniq, final in after.values()), after


def test_random_sigkills_of_the_sink_leave_the_tape_exact(demo_tape: Path, tmp_path: Path) -> None:
    data = _copy_log(demo_tape, tmp_path / "d")
    expected = _topic_counts(data)
    assert cli("tape", "init", data=data).returncode == 0
    rng = random.Random(20)
    argv = [HFTSTREAM, "tape", "sink", "--until-idle", "--batch", "50", "--data", str(data)]
    kills, outcomes = 0, []
    for i in range(24):
        if i % 2 == 0:  # at an instrumented point: after an insert, or between a batch's rows and its position
            point = ("tape-after-insert", "tape-before-progress")[(i // 2) % 2]
            env = {**os.environ, "HFTSTREAM_FAULT": f"{point}:{rng.randint(1, 4)}"}
            rc = subprocess.run(argv, env=env, cwd=data, capture_output=True, timeout=120).returncode
            outcomes.append((point, rc))
        else:  # at a random instant (start-up included)
            proc = subprocess.Popen(argv, cwd=data, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.3, 1.8))
            proc.send_signal(signal.SIGKILL)
            rc = proc.wait(timeout=30)
            outcomes.append(("random", rc))
        kills += rc == -signal.SIGKILL
    assert kills >= 20, outcomes
    with tape_at(data, init=False) as tape:
        partial = sum(_tape_counts(tape).values())
    assert 0 < partial < sum(expected.values()), "the kills landed mid-run: the tape held part of the log"
    done = cli("tape", "sink", "--until-idle", "--json", data=data)
    assert done.returncode == 0, done.stderr
    with tape_at(data, init=False) as tape:
        assert _tape_counts(tape) == expected
        exact = _exact(tape)
        assert all(n == uniq == final for n, uniq, final in exact.values()), exact
        assert scalar(tape, "SELECT count() FROM tape.dead_letters WHERE processor = 'tape'") == 0
        position = dict(((t, p), e) for t, p, e in tape.client.query(
            "SELECT topic, partition, max(last_offset) + 1 FROM tape.sink_batches GROUP BY topic, partition").result_rows)
    last: dict[tuple[str, int], int] = {}
    with open_log(f"embedded://{data / 'log'}") as log:
        for topic in expected:
            for rec in committed_records(log, topic):
                last[(topic, rec.partition)] = max(last.get((topic, rec.partition), -1), rec.offset)
    assert position == {tp: o + 1 for tp, o in last.items()}, "the sink's position is each partition's last record"


def test_the_tapes_pnl_and_positions_equal_the_demos_exact_figures(demo_tape: Path) -> None:
    """pnl_1m's last bucket and positions_latest give the PnL the demo computed from the log (exact decimals)."""
    from decimal import Decimal

    demo = json.loads((demo_tape / "demo.json").read_text())
    with tape_at(demo_tape, init=False) as tape:
        last = tape.client.query(
            "SELECT account, currency, toString(argMax(total_pnl, bucket)) FROM tape.pnl_1m GROUP BY account, currency").result_rows
        latest = tape.client.query(
            "SELECT p.account, i.currency, toString(sum(toDecimal128(p.realized_pnl - p.fees_paid + ifNull(p.unrealized_pnl, 0), 18)"
            " / toDecimal128(intExp10(i.price_scale + i.size_scale), 0))) FROM tape.positions_latest AS p"
            " INNER JOIN tape.instrument_scales AS i ON i.symbol = p.symbol GROUP BY p.account, i.currency").result_rows
    want = {(a, c): Decimal(v) for a, by in demo["pnl"].items() for c, v in by.items()}
    assert len(want) >= 4
    assert {(a, c): Decimal(v) for a, c, v in last} == want
    assert {(a, c): Decimal(v) for a, c, v in latest} == want


def test_a_default_span_demo_tape_has_minutes_of_market_more_than_one_1m_bar_per_symbol(demo_tape: Path) -> None:
    """issue 14 item 8: 20,000 orders put all market data in 2.5 s of event time, so 1 min bars had one bar."""
    demo = json.loads((demo_tape / "demo.json").read_text())
    assert demo["span_ns"] == 120 * 1_000_000_000 and demo["slice_ms"] == 2000
    with tape_at(demo_tape, init=False) as tape:
        bars = dict(tape.client.query(
            "SELECT symbol, uniqExact(bucket) FROM tape.ohlcv_1m WHERE source = 'venue' GROUP BY symbol").result_rows)
        first, last = tape.client.query(
            "SELECT toUnixTimestamp64Nano(min(ts)), toUnixTimestamp64Nano(max(ts)) FROM tape.trades WHERE source = 'venue'").result_rows[0]
        orders = tape.client.query("SELECT toUnixTimestamp64Nano(min(log_ts)), toUnixTimestamp64Nano(max(log_ts)) FROM tape.orders "
                                   "WHERE topic = 'orders.in' AND record_type = 'NewOrder'").result_rows[0]
    assert len(bars) == 8 and all(n > 1 for n in bars.values()), bars
    assert last - first > 90 * 1_000_000_000, "the market covers most of the 2 min span"
    assert orders[1] - orders[0] > 90 * 1_000_000_000, "the order flow is spread over the same span"


def test_stage_latency_on_a_demo_tape_is_append_to_append_not_zero(demo_tape: Path) -> None:
    """issue 14: the tape's latency per stage was 0.0 us for every processor (outputs inherit their input's time)."""
    with tape_at(demo_tape, init=False) as tape:
        rows = tape.client.query("SELECT stage, processor, count(), min(latency_ns), quantileExact(0.5)(latency_ns) "
                                 "FROM tape.stage_latency GROUP BY stage, processor").result_rows
        commits = tape.client.query("SELECT DISTINCT processor FROM tape.commits").result_rows
    by = {(s, p): (n, lo, med) for s, p, n, lo, med in rows}
    assert {p for (p,) in commits} >= {"normalize", "risk", "matching", "ledger", "dropcopy", "reconcile"}
    assert {p for _, p in by} >= {"matching", "ledger", "dropcopy", "reconcile"}, by
    assert ("orders.accepted -> fills", "matching") in by and ("fills -> exec.reports", "dropcopy") in by
    assert all(lo >= 0 for _, lo, _ in by.values()), "an output is appended after its input"
    assert all(med > 0 for _, _, med in by.values()), by
