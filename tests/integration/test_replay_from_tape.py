"""``hftstream replay --source tape``: the records rebuilt from ClickHouse print exactly what a log replay prints,
including after retention removed them from the log."""

from __future__ import annotations

from pathlib import Path

import pytest
from tape_support import T0, cli, fill, lineage, tape_at

from connectors.clickhouse.sink import SinkOptions, TapeSink
from streams.log import TopicSpec
from streams.log.embedded import EmbeddedLog
from streams.serde import Serde

# dlq.matching is empty on a demo now (its races are cancel rejects on order.events): the demo's dead letters are normalize's
TOPICS = ("fills", "order.events", "md.normalized", "ledger.entries", "dlq.normalize", "orders.in")


def _replay(data: Path, *args: str) -> tuple[str, str]:
    out = cli("replay", *args, data=data)
    assert out.returncode == 0, out.stderr
    return out.stdout, out.stderr


@pytest.mark.parametrize("topic", TOPICS)
def test_a_tape_replay_prints_what_the_log_replay_prints(demo_tape: Path, topic: str) -> None:
    log_out, _ = _replay(demo_tape, "-t", topic, "--headers")
    tape_out, summary = _replay(demo_tape, "-t", topic, "--headers", "--source", "tape")
    assert log_out.count("\n") > (0 if topic.startswith("dlq.") else 10)
    assert tape_out == log_out
    assert f"read {log_out.count(chr(10))}," in summary


def test_ranges_times_and_filters_select_the_same_records(demo_tape: Path) -> None:
    for args in (["-t", "fills", "--partition", "1", "--from-offset", "5", "--to-offset", "40"],
                 ["-t", "order.events", "--from-time", "2026-01-02T14:30:20Z", "--format", "table"],
                 ["-t", "fills", "--filter", "side=BUY", "--filter", "account=ACC2"]):
        log_out, _ = _replay(demo_tape, *args)
        tape_out, _ = _replay(demo_tape, *args, "--source", "tape")
        assert log_out.strip() and tape_out == log_out, args


def test_offsets_dropped_by_retention_replay_from_the_tape(tmp_path: Path, serde: Serde) -> None:
    root = tmp_path / "log"
    log = EmbeddedLog(root, segment_bytes=4096)  # small segments: retention can drop the oldest ones
    log.create_topic(TopicSpec("fills", partitions=1, retention_ms=1, value_schema="hftstream.fills.Fill"))
    with log.producer() as p:
        for i in range(300):
            p.produce("fills", serde.encode("hftstream.fills.Fill", fill(serde, i)), f"acct-{i % 4}".encode(),
                      timestamp_ns=T0 + i * 1000, headers=lineage("orders.accepted", i % 3, 10 + i))
    with tape_at(tmp_path) as tape:
        assert TapeSink(log, serde, tape, SinkOptions(until_idle=True)).run().records == 300
    log.close()
    before, _ = _replay(tmp_path, "-t", "fills", "--headers")
    assert cli("log", "retain", "--yes", data=tmp_path).returncode == 0
    after, warning = _replay(tmp_path, "-t", "fills", "--headers")
    assert "removed by retention" in warning and after.count("\n") < 300, "retention dropped the oldest offsets"
    tape_out, _ = _replay(tmp_path, "-t", "fills", "--headers", "--source", "tape", "--from-offset", "0")
    assert tape_out == before and before.count("\n") == 300


def test_a_topic_that_is_not_on_the_tape_says_how_to_sink_it(demo_tape: Path) -> None:
    out = cli("replay", "-t", "no.such.topic", "--source", "tape", data=demo_tape)
    assert out.returncode == 2 and "has no rows on the tape" in out.stderr and "hftstream tape sink --topics no.such.topic" in out.stderr
