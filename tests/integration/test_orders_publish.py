"""``hftstream orders simulate`` and :func:`publish_orders` on real logs: exact records, pacing, one atomic transaction."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.orders.publish import publish_orders
from connectors.orders.simulator import OrderFlow, OrderSimConfig, simulate_orders
from streams.cli.main import app
from streams.log import Log, open_log
from streams.log.partitioner import partition_for
from streams.serde import SchemaRepo, Serde

T0 = 1_767_364_200_000_000_000
TOPICS = ("orders.in", "ops.commands", "refdata.instruments")


@pytest.fixture(scope="module")
def serde() -> Serde:
    return Serde(SchemaRepo.load())


def expected(flow: OrderFlow, log: Log, serde: Serde) -> dict[tuple[str, int], list[tuple[bytes, bytes, int]]]:
    """Per (topic, partition): (key, encoded value, timestamp) in publishing order."""
    out: dict[tuple[str, int], list[tuple[bytes, bytes, int]]] = {}
    for r in flow.records:
        p = partition_for(r.key, log.partitions(r.topic))
        out.setdefault((r.topic, p), []).append((r.key, serde.encode(r.schema, r.value, topic=r.topic), r.timestamp_ns))
    return out


def read(log: Log, since: dict[tuple[str, int], int] | None = None) -> dict[tuple[str, int], list[tuple[bytes, bytes, int]]]:
    """What a read_committed reader sees on the flow's topics (from ``since``, default the start)."""
    out: dict[tuple[str, int], list[tuple[bytes, bytes, int]]] = {}
    for topic in TOPICS:
        for p in range(log.partitions(topic)):
            start = (since or {}).get((topic, p), 0)
            end = log.watermarks(topic, p)[1]
            if end <= start:
                continue
            got = out.setdefault((topic, p), [])
            with log.reader([(topic, p, start)]) as reader:
                while reader.position(topic, p) < end:
                    batch = reader.poll(1000, timeout=1.0)
                    if not batch and reader.position(topic, p) < end:
                        break  # nothing more visible (an aborted tail)
                    got.extend((r.key, r.value, r.timestamp_ns) for r in batch if r.value is not None)
            if not got:
                del out[(topic, p)]
    return out


def ends(log: Log) -> dict[tuple[str, int], int]:
    return {(t, p): log.watermarks(t, p)[1] for t in TOPICS for p in range(log.partitions(t))}


def test_cli_publishes_exactly_the_generated_flow_twice_the_same(tmp_path: Path, serde: Serde) -> None:
    runner = CliRunner()
    args = ["orders", "simulate", "--orders", "1500", "--seed", "3", "--start", str(T0), "--span", "4s", "--json"]
    dumps = []
    for run in ("a", "b"):
        result = runner.invoke(app, [*args, "--data", str(tmp_path / run)])
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        cfg = OrderSimConfig(orders=1500, seed=3, start_ns=T0, span_ns=4_000_000_000)
        flow = simulate_orders(cfg)
        assert summary["orders"] == 1500 and summary["by_schema"] == flow.by_schema() and summary["kinds"] == flow.kinds
        with open_log(f"embedded://{tmp_path / run / 'log'}") as log:
            got = read(log)
            assert got == expected(flow, log, serde)
            assert sum(len(v) for (t, _), v in got.items() if t == "orders.in") == 1500
        dumps.append(got)
    assert dumps[0] == dumps[1]


def test_rate_paces_in_wall_time(tmp_path: Path, serde: Serde) -> None:
    cfg = OrderSimConfig(orders=600, seed=2, start_ns=T0, ops_script=False, unquoted_symbol=False)
    seen: list[tuple[float, int]] = []
    with open_log(f"embedded://{tmp_path / 'log'}") as log:
        started = time.perf_counter()
        summary = publish_orders(log, serde, cfg, rate=400.0, progress=lambda n: seen.append((time.perf_counter() - started, n)))
        elapsed = time.perf_counter() - started
        assert summary.orders == 600 and read(log) == expected(simulate_orders(cfg), log, serde)
    assert 1.3 <= elapsed <= 3.0, elapsed  # 600 at 400/s: 1.5 s
    half = next(t for t, n in seen if n >= 300)
    assert 0.55 <= half <= 1.2, half  # half of them around 0.75 s: spread out, not all at the end
    assert len(seen) > 20


def test_transaction_leaves_nothing_visible_after_a_failure_and_a_rerun_publishes_all(tmp_path: Path, serde: Serde) -> None:
    cfg = OrderSimConfig(orders=5000, seed=4, start_ns=T0, span_ns=5_000_000_000)
    flow = simulate_orders(cfg)

    def crash(n: int) -> None:
        if n >= 2000:
            raise RuntimeError("simulated crash part-way")

    with open_log(f"embedded://{tmp_path / 'log'}") as log:
        with pytest.raises(RuntimeError, match="part-way"):
            publish_orders(log, serde, cfg, transactional_id="demo.orders", batch_size=1000, progress=crash, flow=flow)
        assert read(log) == {}
        summary = publish_orders(log, serde, cfg, transactional_id="demo.orders", flow=flow)
        assert summary.records == len(flow.records) and summary.transactional_id == "demo.orders"
        assert read(log) == expected(flow, log, serde)


def test_on_kafka_in_one_transaction(kafka_log: Log, serde: Serde, unique_name) -> None:  # type: ignore[no-untyped-def]
    cfg = OrderSimConfig(orders=2000, seed=8, start_ns=time.time_ns() // 86_400_000_000_000 * 86_400_000_000_000,
                         span_ns=3_000_000_000)
    flow = simulate_orders(cfg)
    from streams.topics import ensure_topics

    ensure_topics(kafka_log, TOPICS)
    before = ends(kafka_log)
    summary = publish_orders(kafka_log, serde, cfg, transactional_id=unique_name("orders"), flow=flow)
    assert summary.orders == 2000
    # The commit markers land just after commit_transaction returns: until they do, a partition's last stable
    # offset (what read() reads up to) is still the transaction's start. Wait for every LSO to reach the end.
    tps = list(before)
    deadline = time.monotonic() + 30
    while kafka_log.end_offsets(tps) != kafka_log.end_offsets(tps, read_committed=False) and time.monotonic() < deadline:
        time.sleep(0.1)
    got = read(kafka_log, before)
    # Kafka keeps millisecond timestamps (DECISIONS.md 3): compare those, and keys and values exactly.
    want = {k: [(key, value, ts // 1_000_000 * 1_000_000) for key, value, ts in v] for k, v in expected(flow, kafka_log, serde).items()}
    assert got == want
