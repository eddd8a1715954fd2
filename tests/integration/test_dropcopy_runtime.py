"""The drop copy on the real exactly-once runner, on the embedded log and on the Kafka broker.

Fills for many accounts (with one record that is not a fill) go to a fills topic of 8 partitions; the runner
processes them in small transactions with snapshots; then:

* every ``exec.reports`` partition holds, in order, exactly what the pure processor writes for that task's
  fills, which with the reports it still holds is the pure ``drop_copy`` of that partition's fills;
* counts: reports = fills - missing + unknown - held, every late report that arrived is there, the odd record
  is a dead letter, and a second run adds nothing;
* ``verify`` says identical.

On Kafka (a broker shared with other tests) the processor runs on uniquely named topics, under a unique name.
Times are today's: ``dlq.*`` keeps 30 days, and Kafka's cleaner would otherwise delete the dead letter under verify.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.dropcopy import DropCopyConfig, DropCopyProcessor, Report, drop_copy, fate
from runtime_support import HFTSTREAM
from streams.lineage import source_of
from streams.log import open_log
from streams.log.base import Log, TopicSpec
from streams.log.partitioner import partition_for
from streams.processors.base import Message
from streams.runtime import Runner, RunOptions
from streams.runtime.state import read_range
from streams.runtime.verify import verify
from streams.serde import Serde
from streams.timeutil import floor_day_ns

T0 = floor_day_ns(time.time_ns())  # today: older records would fall out of dlq.*'s 30-day retention on Kafka (the cleaner's timing)
MS = 1_000_000
FILL = "hftstream.fills.Fill"
PARTS = 8
CONFIG = DropCopyConfig(seed=9, report_delay_ns=MS, late_delay_ns=50 * MS, missing_ppm=40_000, late_ppm=40_000,
                        qty_ppm=40_000, price_ppm=40_000, unknown_ppm=40_000)


def fill_values(n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        account = f"acct{i % 23}"
        order = i // 46
        out.append({
            "fill_id": f"S{i % 3}:T{i}:B", "trade_id": f"T{i}", "account": account, "symbol": f"S{i % 3}",
            "client_order_id": f"c{order}", "order_id": f"S{i % 3}:{order}", "side": ("BUY", "SELL")[i % 2],
            "price": 10_000 + i % 31, "quantity": 1 + i % 9, "liquidity": ("MAKER", "TAKER")[i % 2], "venue": "internal",
            "ts_ns": T0 + i * 2 * MS,
        })
    return out


def renamed(fills: str, reports: str) -> type[DropCopyProcessor]:
    class Renamed(DropCopyProcessor):
        fills_topic = fills
        reports_topic = reports

    return Renamed


@pytest.fixture(params=["embedded", "kafka"])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Log]:
    url = f"embedded://{tmp_path / 'log'}" if request.param == "embedded" else f"kafka://{request.getfixturevalue('kafka_bootstrap')}"
    handle = open_log(url)
    try:
        yield handle
    finally:
        handle.close()


def publish(log: Log, serde: Serde, topic: str, values: list[dict[str, Any]], odd_at: int | None = None) -> None:
    with log.producer() as p:
        for i, v in enumerate(values):
            if i == odd_at:  # a record that is not a fill: a dead letter, the run goes on
                order = {"account": v["account"], "symbol": "S0", "client_order_id": "x", "reason": None, "ts_ns": v["ts_ns"]}
                p.produce(topic, serde.encode("hftstream.orders.CancelOrder", order), v["account"].encode(), timestamp_ns=v["ts_ns"])
            p.produce(topic, serde.encode(FILL, v), v["account"].encode(), timestamp_ns=v["ts_ns"])


def test_dropcopy_on_the_runtime_writes_exactly_the_pure_reports(log: Log, serde: Serde, unique_name: Callable[[str], str]) -> None:
    fills_t, reports_t, name = unique_name("fills"), unique_name("reports"), unique_name("dropcopy")
    log.create_topic(TopicSpec(fills_t, PARTS))
    log.create_topic(TopicSpec(reports_t, PARTS))
    values = fill_values(1200)
    publish(log, serde, fills_t, values, odd_at=500)
    cls = renamed(fills_t, reports_t)
    runner = Runner(log, serde, cls, CONFIG, RunOptions(until_idle=True, batch=61, snapshot_every_commits=3), name=name)
    counts = runner.run()
    assert counts.records_in == len(values) + 1 and counts.dead_letters == 1 and counts.reconciles()
    assert counts.dlq_by_reason == {"UNEXPECTED_SCHEMA": 1}

    written = held = 0
    for task in range(PARTS):
        mine = [v for v in values if partition_for(v["account"].encode(), PARTS) == task]
        proc = cls(CONFIG, task)
        expected: list[tuple[bytes, dict[str, Any], int]] = []
        for i, v in enumerate(mine):
            expected += [(o.key.encode(), o.value, o.timestamp_ns) for o in proc.process(Message(fills_t, task, i, v["ts_ns"], None, FILL, v))]  # type: ignore[union-attr]
        got = []
        for r in read_range(log, reports_t, task, *log.watermarks(reports_t, task)):
            src = source_of(r.headers)
            assert src is not None and src[0] == fills_t and src[1] == task  # lineage: the fill that released it
            got.append((r.key, serde.decode(r.value).value, r.timestamp_ns))  # type: ignore[arg-type]
        assert got == expected
        assert [Report(k.decode(), v, t) for k, v, t in got] + proc.held() == drop_copy(mine, CONFIG)
        written += len(got)
        held += len(proc.held())
    kinds = [fate(CONFIG, v["fill_id"]) for v in values]
    missing, unknown = sum(k == "missing" for k, _ in kinds), sum(u for _, u in kinds)
    assert missing and unknown and any(k == "late" for k, _ in kinds)
    assert written == len(values) - missing + unknown - held and written == counts.records_out

    again = Runner(log, serde, cls, CONFIG, RunOptions(until_idle=True), name=name)
    assert again.run().records_in == 0  # everything was committed: a restart adds nothing
    assert verify(log, serde, cls, CONFIG, name=name).identical


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["after-produce:2", "before-commit:3", "after-commit:2"])
def test_hftstream_run_dropcopy_killed_at_a_fault_point_resumes_to_the_same_reports(tmp_path: Path, serde: Serde, fault: str) -> None:
    """The CLI on the embedded log, real topic names: SIGKILLed twice at ``fault``, then run to the end."""
    url = f"embedded://{tmp_path / 'log'}"
    values = fill_values(900)
    cfg = tmp_path / "dropcopy.json"
    cfg.write_text(CONFIG.model_dump_json())
    base = [HFTSTREAM, "--log", url]
    subprocess.run([*base, "topics", "apply"], check=True, capture_output=True)
    with open_log(url) as lg:
        publish(lg, serde, "fills", values)
    run = [*base, "run", "dropcopy", "--config", str(cfg), "--until-idle", "--batch", "40", "--commit-interval", "5",
           "--snapshot-every", "4"]
    for _ in range(2):
        p = subprocess.run(run, capture_output=True, env=_env({"HFTSTREAM_FAULT": fault}), timeout=120)
        assert p.returncode == -9, f"the fault point {fault} was never reached: {p.stderr.decode()[-2000:]}"
    p = subprocess.run(run, capture_output=True, env=_env({}), timeout=120)
    assert p.returncode == 0, p.stderr.decode()[-2000:]
    with open_log(url) as lg:
        for task in range(lg.partitions("exec.reports")):
            mine = [v for v in values if partition_for(v["account"].encode(), PARTS) == task]
            proc = DropCopyProcessor(CONFIG, task)
            expected = [o.value for i, v in enumerate(mine) for o in proc.process(Message("fills", task, i, v["ts_ns"], None, FILL, v))]
            got = [serde.decode(r.value).value for r in read_range(lg, "exec.reports", task, *lg.watermarks("exec.reports", task))]  # type: ignore[arg-type]
            assert got == expected, f"partition {task}"
    v = subprocess.run([*base, "verify", "dropcopy", "--config", str(cfg)], capture_output=True, env=_env({}), timeout=120)
    assert v.returncode == 0 and b"identical" in v.stdout, v.stdout.decode() + v.stderr.decode()


def _env(extra: dict[str, str]) -> dict[str, str]:
    import os

    return {**{k: v for k, v in os.environ.items() if not k.startswith("HFTSTREAM_FAULT")}, **extra}
