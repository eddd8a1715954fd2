"""`hftstream replay` as a user runs it, on a real embedded log: offsets, filters, merge order, --into, errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from streams.cli.main import app
from streams.lineage import source_of
from streams.log import TopicSpec, open_log
from streams.replay import ReplayRequest, replay
from streams.serde import SchemaRepo, Serde

SYMBOLS = ["AAPL", "INTC", "AMZN", "NVDA"]  # murmur2 over 3 partitions: 0, 1, 2, 2
T0 = 1_767_364_200_000_000_000
TOPIC = "md.test"
N = 60


@pytest.fixture(scope="module")
def serde() -> Serde:
    return Serde(SchemaRepo.load())


def _trade(i: int) -> dict:
    return {
        "venue": "alpha", "symbol": SYMBOLS[i % 4], "trade_id": f"T{i}", "price": 1_872_500 + i, "size": 100 + i,
        "aggressor_side": "BUY" if i % 2 else "SELL", "exchange_ts_ns": T0 + i * 1_000, "recv_ts_ns": T0 + i * 1_000 + 7, "seq": i,
    }


@pytest.fixture()
def url(tmp_path, serde) -> str:
    """An embedded log holding N trades keyed by symbol over 3 partitions, plus one undecodable record on partition 0."""
    url = f"embedded://{tmp_path / 'log'}"
    with open_log(url) as log:
        log.create_topic(TopicSpec(TOPIC, partitions=3, key="symbol", value_schema="hftstream.md.Trade"))
        with log.producer() as producer:
            for i in range(N):
                t = _trade(i)
                producer.produce(TOPIC, serde.encode("hftstream.md.Trade", t), t["symbol"].encode(), timestamp_ns=t["recv_ts_ns"])
            producer.produce(TOPIC, b"\x07not avro", b"BAD", partition=0, timestamp_ns=T0 + N * 1_000)
    return url


def run(url: str, *args: str):
    result = CliRunner().invoke(app, ["--log", url, "replay", *args])
    return result


def lines(result) -> list[dict]:
    return [json.loads(x) for x in result.stdout.splitlines() if x.strip()]


def test_from_offset_prints_exactly_the_records_from_n_to_the_end(url):
    with open_log(url) as log:
        low, high = log.watermarks(TOPIC, 1)
        expected = [r.offset for r in log.reader([(TOPIC, 1, 5)])]
    result = run(url, "--topic", TOPIC, "--partition", "1", "--from-offset", "5")
    assert result.exit_code == 0, result.output
    got = lines(result)
    assert [d["offset"] for d in got] == expected == list(range(5, high))
    assert all(d["partition"] == 1 and d["topic"] == TOPIC for d in got)
    assert all(set(d) == {"topic", "partition", "offset", "timestamp", "key", "value"} for d in got)
    assert all(d["value"]["symbol"] == d["key"] for d in got)
    assert f"read {high - 5}" in result.stderr


def test_to_offset_is_inclusive_and_output_is_stable(url):
    a = run(url, "-t", TOPIC, "-p", "2", "--from-offset", "2", "--to-offset", "4")
    b = run(url, "-t", TOPIC, "-p", "2", "--from-offset", "2", "--to-offset", "4")
    assert [d["offset"] for d in lines(a)] == [2, 3, 4]
    assert a.stdout == b.stdout


def test_all_partitions_merge_by_timestamp_and_count_undecodable(url):
    result = run(url, "-t", TOPIC)
    assert result.exit_code == 0, result.output
    got = lines(result)
    assert len(got) == N + 1
    keys = [(d["timestamp"], d["partition"], d["offset"]) for d in got]
    assert keys == sorted(keys)
    bad = [d for d in got if d["value"] is None]
    assert len(bad) == 1 and "DecodeError" in bad[0]["error"] and bad[0]["key"] == "BAD"
    assert "undecodable 1" in result.stderr and "Trade=60" in result.stderr


def test_filters_and_type_summary(url):
    result = run(url, "-t", TOPIC, "--filter", "symbol=NVDA", "--filter", "aggressor_side=BUY")
    got = lines(result)
    assert got and all(d["value"]["symbol"] == "NVDA" and d["value"]["aggressor_side"] == "BUY" for d in got)
    assert len(got) == sum(1 for i in range(N) if i % 4 == 3 and i % 2 == 1)
    assert f"filtered {N + 1 - len(got)}" in result.stderr


def test_from_time_starts_at_the_first_record_at_or_after(url):
    cut = T0 + 30 * 1_000 + 7
    got = lines(run(url, "-t", TOPIC, "--from-time", str(cut)))
    assert got and min(d["timestamp"] for d in got) >= cut
    assert len([d for d in got if d["value"]]) == N - 30
    iso = lines(run(url, "-t", TOPIC, "--from-time", "2026-01-02T14:30:00.000030007Z"))
    assert iso == got


def test_into_republishes_with_lineage(url):
    result = run(url, "-t", TOPIC, "-p", "0", "--from-offset", "3", "--into", "md.test.copy", "--quiet")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    with open_log(url) as log:
        src = list(log.reader([(TOPIC, 0, 3)]))
        dst = list(log.reader([("md.test.copy", 0, 0)]))
        assert log.partitions("md.test.copy") == 3
    assert [(r.key, r.value, r.timestamp_ns) for r in dst] == [(r.key, r.value, r.timestamp_ns) for r in src]
    assert [source_of(r.headers) for r in dst] == [(TOPIC, 0, r.offset) for r in src]
    assert f"published {len(src)}" in result.stderr


def test_table_format(url):
    result = run(url, "-t", TOPIC, "-p", "0", "--to-offset", "1", "--format", "table")
    rows = result.stdout.splitlines()
    assert rows[0].split()[:3] == ["PART", "OFFSET", "TIMESTAMP"]
    assert len(rows) == 3 and "Trade" in rows[1] and "2026-01-02T14:30:00" in rows[1]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["-t", "no.such.topic"], "unknown topic 'no.such.topic'"),
        (["-t", TOPIC, "-p", "7"], "partition 7 does not exist"),
        (["-t", TOPIC, "--filter", "symbol"], "FIELD=VALUE"),
        (["-t", TOPIC, "--from-time", "yesterday"], "ISO-8601"),
        (["-t", TOPIC, "--speed", "3x"], "--speed"),
        (["-t", TOPIC, "--from-offset", "9", "--to-offset", "2"], "before --from-offset"),
    ],
)
def test_errors_are_clear_and_never_a_traceback(url, args, needle):
    result = run(url, *args)
    assert result.exit_code == 2
    assert needle in result.stderr
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)


def test_speed_paces_by_record_timestamps(url, serde):
    """--speed 1x sleeps the gaps between record timestamps (a fake clock keeps the test instant)."""
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    with open_log(url) as log:
        req = ReplayRequest(TOPIC, partition=1, from_offset=0, to_offset=3, speed=1.0)
        got: list = []
        replay(log, serde, req, got.append, clock=lambda: now[0], sleep=sleep)
    stamps = [r.record.timestamp_ns for r in got]
    assert len(got) == 4
    assert sum(slept) == pytest.approx((stamps[-1] - stamps[0]) / 1e9)
