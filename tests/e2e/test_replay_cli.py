"""`hftstream replay` as a user runs it, on a real embedded log: offsets, filters, merge order, --into, errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from streams.cli.main import app
from streams.lineage import source_of
from streams.log import TopicSpec, open_log
from streams.log.partitioner import partition_for
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
    """--force: the undecodable record (not a declared Trade) is copied too; each record lands on its key's partition."""
    result = run(url, "-t", TOPIC, "-p", "0", "--from-offset", "3", "--into", "md.test.copy", "--create-target", "--quiet", "--force")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    with open_log(url) as log:
        src = list(log.reader([(TOPIC, 0, 3)]))
        dst = list(log.reader([("md.test.copy", p, 0) for p in range(3)]))
        assert log.partitions("md.test.copy") == 3
    dst.sort(key=lambda r: source_of(r.headers)[2])
    assert [(r.key, r.value, r.timestamp_ns) for r in dst] == [(r.key, r.value, r.timestamp_ns) for r in src]
    assert [source_of(r.headers) for r in dst] == [(TOPIC, 0, r.offset) for r in src]
    assert all(r.partition == partition_for(r.key, 3) for r in dst)
    assert f"published {len(src)}" in result.stderr


def test_table_format(url):
    result = run(url, "-t", TOPIC, "-p", "0", "--to-offset", "1", "--format", "table")
    rows = result.stdout.splitlines()
    assert rows[0].split()[:3] == ["PART", "OFFSET", "TIMESTAMP"]
    records = [r for r in rows[1:] if not r.startswith(" " * 20)]
    assert len(records) == 2 and "Trade" in records[0] and "2026-01-02T14:30:00" in records[0]
    assert "symbol=AAPL price=1872500 size=100" in records[0]  # what a person reads the row for comes first


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["-t", "no.such.topic"], "unknown topic 'no.such.topic'"),
        (["-t", TOPIC, "-p", "7"], "partition 7 does not exist"),
        (["-t", TOPIC, "--filter", "symbol"], "FIELD=VALUE"),
        (["-t", TOPIC, "--from-time", "yesterday"], "ISO-8601"),
        (["-t", TOPIC, "--speed", "fast"], "--speed"),
        (["-t", TOPIC, "--from-offset", "9", "--to-offset", "2"], "before --from-offset"),
    ],
)
def test_errors_are_clear_and_never_a_traceback(url, args, needle):
    result = run(url, *args)
    assert result.exit_code == 2
    assert needle in result.stderr
    assert result.stderr.startswith("error: ") and "\nhint: " in result.stderr
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


# -- issue 5 item 5: --into ----------------------------------------------------------------------------------


def test_into_repartitions_by_key_when_the_target_has_another_partition_count(url):
    """3 source partitions into 5: every record lands on murmur2(key) % 5, never on its source partition number."""
    with open_log(url) as log:
        log.create_topic(TopicSpec("md.test.five", partitions=5, key="symbol", value_schema="hftstream.md.Trade"))
    result = run(url, "-t", TOPIC, "--filter", "type=Trade", "--into", "md.test.five", "--create-target", "-q")
    assert result.exit_code == 0, result.output
    with open_log(url) as log:
        dst = list(log.reader([("md.test.five", p, 0) for p in range(5)]))
    assert len(dst) == N
    assert all(r.partition == partition_for(r.key, 5) for r in dst)
    moved = [r for r in dst if r.partition != source_of(r.headers)[1]]
    assert moved  # with these keys some partition numbers must change (the old code kept them all)


def test_keep_partition_keeps_numbers_and_needs_equal_counts(url):
    with open_log(url) as log:
        log.create_topic(TopicSpec("md.test.same", partitions=3, value_schema="hftstream.md.Trade"))
        log.create_topic(TopicSpec("md.test.four", partitions=4, value_schema="hftstream.md.Trade"))
    kept = run(url, "-t", TOPIC, "--into", "md.test.same", "--create-target", "--keep-partition", "--force", "-q")
    assert kept.exit_code == 0, kept.output
    with open_log(url) as log:
        dst = list(log.reader([("md.test.same", p, 0) for p in range(3)]))
    assert len(dst) == N + 1 and all(r.partition == source_of(r.headers)[1] for r in dst)

    refused = run(url, "-t", TOPIC, "--into", "md.test.four", "--create-target", "--keep-partition", "--force", "-q")
    assert refused.exit_code == 2
    assert "md.test has 3, md.test.four has 4" in refused.stderr and "hint: drop --keep-partition" in refused.stderr
    with open_log(url) as log:
        assert sum(log.watermarks("md.test.four", p)[1] for p in range(4)) == 0


def test_into_an_undeclared_topic_is_refused_unless_asked(url):
    """issue 14: `--into nosuch.topic` created an undeclared topic without asking."""
    refused = run(url, "-t", TOPIC, "--into", "nosuch.topic", "-q", "--force")
    assert refused.exit_code == 2, refused.output
    assert "not declared in infra/topics.yaml" in refused.stderr and "--create-target" in refused.stderr
    assert "Traceback" not in refused.output
    with open_log(url) as log:
        assert "nosuch.topic" not in {t.name for t in log.list_topics()}
    asked = run(url, "-t", TOPIC, "--into", "nosuch.topic", "-q", "--force", "--create-target")
    assert asked.exit_code == 0, asked.output
    assert "created topic nosuch.topic" in asked.stderr and "leaves it out" in asked.stderr
    with open_log(url) as log:
        assert sum(log.watermarks("nosuch.topic", p)[1] for p in range(3)) == N + 1


def test_into_the_source_topic_is_refused(url):
    result = run(url, "-t", TOPIC, "--into", TOPIC, "-q")
    assert result.exit_code == 2 and "is the topic being replayed" in result.stderr and "hint: " in result.stderr
    with open_log(url) as log:
        assert sum(log.watermarks(TOPIC, p)[1] for p in range(3)) == N + 1


def test_into_refuses_schemas_the_target_does_not_declare_unless_forced(url):
    """orders.in declares order commands only (infra/topics.yaml): Trades are refused, nothing is written."""
    with open_log(url) as log:
        log.create_topic(TopicSpec("orders.in", partitions=8))  # the log stores no schema: the declaration decides
    refused = run(url, "-t", TOPIC, "--into", "orders.in", "-q")
    assert refused.exit_code == 2, refused.output
    assert f"{N} hftstream.md.Trade" in refused.stderr and "1 <undecodable>" in refused.stderr
    assert "hftstream.orders.NewOrder" in refused.stderr and "--force" in refused.stderr
    with open_log(url) as log:
        assert sum(log.watermarks("orders.in", p)[1] for p in range(8)) == 0

    forced = run(url, "-t", TOPIC, "--into", "orders.in", "-q", "--force")
    assert forced.exit_code == 0, forced.output
    with open_log(url) as log:
        assert sum(log.watermarks("orders.in", p)[1] for p in range(8)) == N + 1


def test_into_accepts_records_whose_schema_the_target_declares(url):
    with open_log(url) as log:
        log.create_topic(TopicSpec("md.normalized", partitions=8))
    result = run(url, "-t", TOPIC, "--filter", "type=Trade", "--into", "md.normalized", "-q")
    assert result.exit_code == 0, result.output
    assert f"published {N}" in result.stderr


# -- issue 5 item 2 (replay part): retention -----------------------------------------------------------------


def test_replay_warns_when_retention_removed_the_requested_range(tmp_path, serde):
    from streams.log.embedded.maintenance import retain

    url = f"embedded://{tmp_path / 'log'}?segment_bytes=4096"
    with open_log(url) as log:
        log.create_topic(TopicSpec("md.old", partitions=1, retention_ms=60_000))
        with log.producer() as p:
            for i in range(300):  # simulated time, long ago: everything but the open segment is past retention
                p.produce("md.old", serde.encode("hftstream.md.Trade", _trade(i)), b"AAPL", timestamp_ns=T0 + i)
        retain(log, T0 + 10 * 60 * 1_000_000_000, "md.old")
        low, high = log.watermarks("md.old", 0)
    assert 0 < low < high
    result = run(url, "-t", "md.old", "--from-offset", "5")
    assert result.exit_code == 0, result.output
    assert [d["offset"] for d in lines(result)] == list(range(low, high))
    warning = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert warning == [
        f"warning: md.old partition 0: requested offset 5 is below the low watermark {low}: "
        f"offsets 5..{low - 1} were removed by retention; replaying from {low}"
    ]
    inside = run(url, "-t", "md.old", "--from-offset", str(low))
    assert "warning" not in inside.stderr


# -- issue 5 item 6: filters on fields that do not exist --------------------------------------------------------


def test_filter_on_a_field_no_schema_has_is_an_error_naming_the_fields(url):
    result = run(url, "-t", TOPIC, "--filter", "nosuchfield=1")
    assert result.exit_code == 2
    assert "'nosuchfield' does not exist in the schemas of md.test (Trade)" in result.stderr
    hint = result.stderr.split("hint: ", 1)[1]
    assert "aggressor_side" in hint and "trade_id" in hint and "key, partition, type" in hint
    ok = run(url, "-t", TOPIC, "--filter", "key=AAPL", "--filter", "partition=0", "--filter", "symbol=AAPL")
    assert ok.exit_code == 0 and lines(ok)


def test_speed_accepts_any_multiple(url):
    result = run(url, "-t", TOPIC, "-p", "1", "--to-offset", "0", "--speed", "2x")
    assert result.exit_code == 0, result.output
    assert len(lines(result)) == 1


# -- issue 5 item 9: headers, undecodable bytes, tombstones, table width, binary keys --------------------------------


def test_json_headers_show_lineage(url):
    assert run(url, "-t", TOPIC, "-p", "0", "--to-offset", "2", "--into", "md.test.copy", "--create-target", "-q").exit_code == 0
    copied = lines(run(url, "-t", "md.test.copy", "--headers"))
    assert copied and all(set(d["headers"]) == {"hft.src.topic", "hft.src.partition", "hft.src.offset"} for d in copied)
    assert sorted(int(d["headers"]["hft.src.offset"]) for d in copied) == [0, 1, 2]
    assert all(d["headers"]["hft.src.topic"] == TOPIC for d in copied)
    assert "headers" not in lines(run(url, "-t", "md.test.copy"))[0]
    table = run(url, "-t", "md.test.copy", "--headers", "--format", "table").stdout
    assert f"[src={TOPIC}/0@0]" in table


def test_undecodable_records_show_their_bytes_and_tombstones_show_as_tombstones(url):
    import base64

    with open_log(url) as log, log.producer() as p:
        p.produce(TOPIC, None, b"AAPL", partition=1, timestamp_ns=T0 + 10**9)
    got = lines(run(url, "-t", TOPIC))
    bad = [d for d in got if "error" in d]
    assert len(bad) == 1 and base64.b64decode(bad[0]["value_base64"]) == b"\x07not avro"
    tomb = [d for d in got if d.get("tombstone")]
    assert len(tomb) == 1 and tomb[0]["value"] is None and tomb[0]["key"] == "AAPL" and "error" not in tomb[0]
    result = run(url, "-t", TOPIC, "--format", "table")
    rows = result.stdout.splitlines()
    assert any("<tombstone>" in r and "tombstone" in r.split("<tombstone>")[1] for r in rows)
    assert any("DecodeError" in r and "B25vdCBhdnJv" in r for r in rows)  # base64 of b"\x07not avro"
    assert "<tombstone>=1" in result.stderr


def test_table_rows_fit_120_columns_and_binary_keys_are_readable(url, serde):
    with open_log(url) as log, log.producer() as p:
        p.produce(TOPIC, serde.encode("hftstream.md.Trade", _trade(99)), b"\x00\xff\x10", partition=2, timestamp_ns=T0 + 10**9)
    result = run(url, "-t", TOPIC, "--format", "table")
    rows = result.stdout.splitlines()
    assert len([r for r in rows if not r.startswith(" " * 20)]) == N + 3  # header + one row per record; the rest continue a value
    assert max(len(r) for r in rows) <= 120
    assert any(" 0x00ff10 " in r for r in rows)
