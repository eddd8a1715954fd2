"""issue 14: a redrive copy (`replay -t fills --into T`) never counts twice on the tape. Real chDB, real embedded log, the CLI."""

from __future__ import annotations

import pytest

from streams.log import TopicSpec, open_log
from streams.serde import Serde
from tape_support import cli, fill, scalar, tape_at


@pytest.fixture(scope="module")
def serde() -> Serde:
    return Serde.from_settings()


def _counts(data) -> tuple[int, int, int]:
    with tape_at(data) as tape:
        return (scalar(tape, "SELECT count() FROM tape.fills"), scalar(tape, "SELECT count() FROM tape.fills FINAL"),
                scalar(tape, "SELECT count() FROM tape.records WHERE tbl = 'fills'"))


def test_a_redrive_copy_and_a_tape_sink_leave_the_fill_counts_unchanged(tmp_path, serde):
    data = tmp_path
    with open_log(f"embedded://{data / 'log'}") as log:
        log.create_topic(TopicSpec("fills", partitions=3, key="account", value_schema="hftstream.fills.Fill"))
        with log.producer() as p:
            for i in range(40):
                v = fill(serde, i)
                p.produce("fills", serde.encode("hftstream.fills.Fill", v), v["account"].encode(), timestamp_ns=v["ts_ns"])
    assert cli("tape", "init", data=data).returncode == 0
    first = cli("tape", "sink", "--until-idle", data=data)
    assert first.returncode == 0, first.stderr
    assert _counts(data) == (40, 40, 40)

    refused = cli("replay", "-t", "fills", "--into", "nosuch.topic", "-q", data=data)
    assert refused.returncode == 2 and "--create-target" in refused.stderr, refused.stderr
    copied = cli("replay", "-t", "fills", "--into", "fills.redrive", "--create-target", "-q", data=data)
    assert copied.returncode == 0, copied.stderr
    with open_log(f"embedded://{data / 'log'}") as log:
        assert sum(log.watermarks("fills.redrive", p)[1] for p in range(3)) == 40

    again = cli("tape", "sink", "--until-idle", data=data)
    assert again.returncode == 0, again.stderr
    assert _counts(data) == (40, 40, 40), "the copies must not land in tape.fills"
    with tape_at(data) as tape:
        assert scalar(tape, "SELECT count() FROM tape.records WHERE topic = 'fills.redrive'") == 0

    asked = cli("tape", "sink", "--until-idle", "--topics", "fills.redrive", data=data)  # named explicitly: sunk, with a warning
    assert asked.returncode == 0, asked.stderr
    assert "warning: fills.redrive is not declared" in asked.stderr and "count twice" in asked.stderr
