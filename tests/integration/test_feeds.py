"""Venue feeds into a real embedded log: the simulator (byte-identical runs), recorded files, and the CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.venues.errors import FeedFileError, UnknownVenueError
from connectors.venues.events import Quote, Trade, VenueMessage
from connectors.venues.file_feed import load_refdata, publish_file
from connectors.venues.formats import codec_for
from connectors.venues.publish import publish_simulation
from connectors.venues.simulator import SimConfig
from streams.cli.main import app
from streams.log import Log, open_log
from streams.serde import SchemaRepo, Serde

T0 = 1_767_364_200_000_000_000


@pytest.fixture(scope="module")
def serde() -> Serde:
    return Serde(SchemaRepo.load())


def _open(path: Path) -> Log:
    return open_log("embedded://" + str(path))


def dump(log: Log) -> list[tuple]:
    """Every record on every topic: (topic, partition, offset, timestamp, key, value, headers)."""
    out = []
    for info in log.list_topics():
        for p in range(info.partitions):
            low, high = log.watermarks(info.name, p)
            got = []
            with log.reader([(info.name, p, low)]) as reader:
                while len(got) < high - low:
                    batch = reader.poll(5000, timeout=1.0)
                    if not batch:
                        break
                    got += batch
            assert len(got) == high - low, f"{info.name}/{p}: read {len(got)} of {high - low}"
            out += [(r.topic, r.partition, r.offset, r.timestamp_ns, r.key, r.value, r.headers) for r in got]
    return out


CFG = SimConfig(venues=3, symbols=5, events=6000, seed=21, regime="burst", gap_rate=0.01, dup_rate=0.01, reorder_rate=0.01, malformed_rate=0.01)


def test_same_seed_gives_byte_identical_topics_offsets_and_timestamps(tmp_path, serde):
    runs = []
    for name, cfg in (("a", CFG), ("b", CFG)):
        with _open(tmp_path / name) as log:
            summary = publish_simulation(log, serde, cfg, batch_size=500)
            runs.append((summary, dump(log)))
    (s1, a), (s2, b) = runs
    assert len(a) == 5 + s1.records and s1.records == sum(c.messages for c in s1.venues) > 5900
    assert a == b
    assert [c.as_dict() for c in s1.venues] == [c.as_dict() for c in s2.venues]
    assert {r[0] for r in a} == {"refdata.instruments", "md.raw.alpha", "md.raw.bravo", "md.raw.charlie"}
    # a different seed differs
    other = SimConfig(venues=3, symbols=5, events=6000, seed=22, regime="burst", gap_rate=0.01, dup_rate=0.01, reorder_rate=0.01, malformed_rate=0.01)
    with _open(tmp_path / "c") as log:
        publish_simulation(log, serde, other)
        c = dump(log)
    raw = lambda rows: [r for r in rows if r[0].startswith("md.raw.")]  # noqa: E731
    assert raw(c) != raw(a)
    # the instruments do not depend on the seed
    assert [r for r in c if r[0] == "refdata.instruments"] == [r for r in a if r[0] == "refdata.instruments"]


def test_published_records_decode_and_normalize_from_the_log_alone(tmp_path, serde):
    cfg = SimConfig(venues=3, symbols=4, events=3000, seed=5)
    with _open(tmp_path / "log") as log:
        summary = publish_simulation(log, serde, cfg)
        rows = dump(log)
        refdata = load_refdata(log, serde)
    assert sorted(i.symbol for i in refdata) == ["AAPL", "BTC-USD", "EUR-USD", "MSFT"]
    assert {i.price_scale for i in refdata} == {2, 4, 5}
    per_topic: dict[str, int] = {}
    kinds = set()
    for topic, partition, offset, ts, key, value, headers in rows:
        decoded = serde.decode(value)
        per_topic[topic] = per_topic.get(topic, 0) + 1
        if topic == "refdata.instruments":
            assert decoded.schema == "hftstream.refdata.Instrument" and key == decoded.value["symbol"].encode()
            continue
        assert decoded.schema == "hftstream.md.RawVenueMessage"
        v = decoded.value
        assert topic == f"md.raw.{v['venue']}" and ts == v["recv_ts_ns"] > T0
        assert key == (v["symbol"] or v["venue"]).encode()
        msg = codec_for(v["venue"]).decode(v["payload"], refdata)  # no faults injected: everything decodes
        assert isinstance(msg, VenueMessage) and msg.seq == v["seq"] and msg.event.symbol == v["symbol"]
        assert msg.event.exchange_ts_ns < v["recv_ts_ns"]
        kinds.add(type(msg.event))
    assert {Trade, Quote} <= kinds
    assert per_topic == {"refdata.instruments": 4} | {f"md.raw.{c.venue}": c.messages for c in summary.venues}


def test_republishing_into_the_same_log_appends_and_leaves_topics_alone(tmp_path, serde):
    cfg = SimConfig(venues=1, symbols=2, events=200, seed=1)
    with _open(tmp_path / "log") as log:
        first = publish_simulation(log, serde, cfg)
        second = publish_simulation(log, serde, cfg)
        assert first.topics_created == ["refdata.instruments", "md.raw.alpha"] and second.topics_created == []
        assert sum(log.watermarks("md.raw.alpha", p)[1] for p in range(log.partitions("md.raw.alpha"))) == 400


# -- recorded files -------------------------------------------------------------------------------


def _raw(log: Log, serde: Serde, topic: str) -> list[dict]:
    rows = sorted((r for r in dump(log) if r[0] == topic), key=lambda r: (r[3], r[1], r[2]))
    return [serde.decode(r[5]).value | {"_key": r[4], "_ts": r[3]} for r in rows]


def test_ndjson_file_publishes_lines_byte_for_byte_and_flags_suspects(tmp_path, serde):
    lines = [
        b'{"type":"trade","symbol":"AAPL","price":"187.2500","size":"100","ts":"2026-01-02T14:30:00.000123456Z","trade_id":"A-1","recv_ts_ns":1767364200000200000}',
        b"",
        b'{"type":"quote","symbol":"MSFT","bid":"374.50","bid_size":"10","ask":"374.52","ask_size":"5","ts":"2026-01-02T14:30:00.5Z"}',
        b"   ",
        b'{"type":"trade","symbol":"AAPL","price":187.25,"size":"1","ts":"2026-01-02T14:30:00.7Z","trade_id":"A-2"}',  # price is a number
        b"\x00\x01garbage",
        b'{"type":"heartbeat", "ts":"2026-01-02T14:30:01Z"}',
    ]
    path = tmp_path / "alpha.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\r\n")
    before = time.time_ns()
    with _open(tmp_path / "log") as log:
        summary = publish_file(log, serde, path, "alpha")
        after = time.time_ns()
        got = _raw(log, serde, "md.raw.alpha")
    assert (summary.published, summary.suspect, summary.blank_lines, summary.recv_from_file) == (5, 2, 2, 1)
    assert summary.suspect_examples[0].startswith("line 5: field 'price'") and summary.suspect_examples[1].startswith("line 6:")
    assert summary.first_event_ts_ns == 1_767_364_200_000_123_456 and summary.last_event_ts_ns == T0 + 1_000_000_000
    payloads = [g["payload"] for g in got]
    assert sorted(payloads) == sorted(line for line in lines if line.strip())
    by_payload = {g["payload"]: g for g in got}
    first = by_payload[lines[0]]
    assert first["recv_ts_ns"] == first["_ts"] == 1_767_364_200_000_200_000  # from the field
    assert first["symbol"] == "AAPL" and first["_key"] == b"AAPL" and first["seq"] is None and first["format"] == "json-decimal"
    for line in (lines[2], lines[5]):
        assert before <= by_payload[line]["recv_ts_ns"] <= after  # the wall clock at the edge
    assert by_payload[lines[5]]["symbol"] is None and by_payload[lines[5]]["_key"] == b"alpha"


def test_fix_recording_keeps_soh_bytes_and_extracts_seq(tmp_path, serde):
    from connectors.venues.instruments import Instrument, RefData

    ref = RefData([Instrument("AAPL", "1", 4, 0, 100, 1)])
    codec = codec_for("charlie")
    msgs = [codec.encode(VenueMessage(seq, Trade("AAPL", T0 + seq, f"C-{seq}", 1_872_500, 10)), ref) for seq in (1, 2, 4)]
    broken = msgs[1][:-4] + b"999\x01"  # bad checksum
    path = tmp_path / "charlie.fix"
    path.write_bytes(b"\n".join([msgs[0], broken, msgs[2]]) + b"\n")
    with _open(tmp_path / "log") as log:
        summary = publish_file(log, serde, path, "charlie")
        got = _raw(log, serde, "md.raw.charlie")
    assert (summary.published, summary.suspect) == (3, 1) and "CheckSum" in summary.suspect_examples[0]
    by_payload = {g["payload"]: g for g in got}
    assert by_payload[msgs[0]]["seq"] == 1 and by_payload[msgs[2]]["seq"] == 4 and by_payload[broken]["seq"] is None
    assert by_payload[msgs[2]]["symbol"] == "AAPL"


def test_csv_for_a_ticks_venue_types_integers_and_names_instruments_from_refdata(tmp_path, serde):
    path = tmp_path / "bravo.csv"
    path.write_text(
        "t,i,q,p,z,ns,x,recv_ts_ns\n"
        "T,1,7,18725,100,1767364200000000100,B-1,1767364200000050000\n"
        "\n"
        "T,2,8,4215050,3,1767364200000000200,,\n"
        "T,1,9,not-a-number,100,1767364200000000300,B-2,\n"
    )
    with _open(tmp_path / "log") as log:
        publish_simulation(log, serde, SimConfig(venues=1, symbols=3, events=0))  # instruments only
        summary = publish_file(log, serde, path, "bravo")
        got = _raw(log, serde, "md.raw.bravo")
        refdata = load_refdata(log, serde)
    assert (summary.published, summary.suspect, summary.recv_from_file, summary.file_format) == (3, 1, 1, "csv")
    first = next(g for g in got if g["seq"] == 7)
    assert json.loads(first["payload"]) == {"t": "T", "i": 1, "q": 7, "p": 18725, "z": 100, "ns": 1767364200000000100, "x": "B-1", "recv_ts_ns": 1767364200000050000}
    assert first["symbol"] == "AAPL" and first["_key"] == b"AAPL" and first["recv_ts_ns"] == 1_767_364_200_000_050_000
    second = next(g for g in got if g["seq"] == 8)
    assert second["symbol"] == "BTC-USD" and "x" not in json.loads(second["payload"])  # empty cells left out
    assert codec_for("bravo").decode(second["payload"], refdata).event == Trade("BTC-USD", T0 + 200, "8", 4215050, 30_000)


def test_realtime_pace_spaces_records_by_event_time(tmp_path, serde):
    path = tmp_path / "paced.ndjson"
    path.write_text("\n".join(json.dumps({"type": "heartbeat", "ts": f"2026-01-02T14:30:00.{ms:03d}Z"}) for ms in (0, 100, 250)) + "\n")
    with _open(tmp_path / "log") as log:
        start = time.monotonic()
        summary = publish_file(log, serde, path, "alpha", pace="realtime")
        paced = time.monotonic() - start
        start = time.monotonic()
        publish_file(log, serde, path, "alpha", pace="max")
        fast = time.monotonic() - start
    assert summary.published == 3 and summary.suspect == 0
    assert 0.25 <= paced < 2.0, paced
    assert fast < 0.5 * paced, (fast, paced)


@pytest.mark.parametrize(
    ("setup", "venue", "error", "match"),
    [
        (None, "alpha", FeedFileError, "does not exist"),
        ("x.ndjson", "zulu", UnknownVenueError, "unknown venue 'zulu'"),
        ("x.parquet", "alpha", FeedFileError, "cannot tell the format"),
        ("bad.csv", "alpha", FeedFileError, "line 2 has 3 cells but the header has 2"),
        ("latin1.csv", "alpha", FeedFileError, "not UTF-8"),
        ("empty.csv", "alpha", FeedFileError, "header row"),
    ],
)
def test_file_errors_are_typed_with_a_hint(tmp_path, serde, setup, venue, error, match):
    contents = {"x.ndjson": b"{}\n", "x.parquet": b"PAR1", "bad.csv": b"a,b\n1,2,3\n", "latin1.csv": b"sym,px\n\xe9,1\n", "empty.csv": b""}
    path = tmp_path / (setup or "missing.ndjson")
    if setup:
        path.write_bytes(contents[setup])
    with _open(tmp_path / "log") as log:
        with pytest.raises(error, match=match) as exc:
            publish_file(log, serde, path, venue)
    assert exc.value.hint


# -- the CLI --------------------------------------------------------------------------------------

runner = CliRunner()


def _cli(tmp_path: Path, *args: str):
    return runner.invoke(app, ["--log", f"embedded://{tmp_path / 'log'}", *args])


def test_cli_simulate_prints_a_table_and_json_and_is_deterministic(tmp_path):
    args = ["feed", "simulate", "--venues", "2", "--symbols", "3", "--events", "2000", "--seed", "3", "--dup-rate", "0.02", "--regime", "cancel-storm",
            "--start", "2026-11-02T00:00:00Z"]
    result = _cli(tmp_path / "a", *args)
    assert result.exit_code == 0, result.output
    header, alpha, bravo, total = result.stdout.splitlines()[:4]
    assert header.split()[:4] == ["VENUE", "FORMAT", "EVENTS", "MSGS"]
    assert alpha.split()[:3] == ["alpha", "json-decimal", "1000"] and bravo.split()[:3] == ["bravo", "json-ticks", "1000"]
    assert total.split()[1] == "2000" and int(total.split()[-3]) > 0  # events total; dups injected
    as_json = _cli(tmp_path / "b", *args, "--json")
    assert as_json.exit_code == 0, as_json.output
    summary = json.loads(as_json.stdout)
    assert summary["config"]["regime"] == "cancel-storm" and summary["instruments"] == 3
    assert sum(v["messages"] for v in summary["venues"]) == summary["records"] == int(total.split()[2])
    assert summary["venues"][0]["book_deltas"] > 0.7 * summary["venues"][0]["events"]
    with _open(tmp_path / "a" / "log") as la, _open(tmp_path / "b" / "log") as lb:
        assert dump(la) == dump(lb)


def test_cli_simulate_defaults_to_today_so_kafka_retention_keeps_the_records(tmp_path):
    """Issue 5 #2: the default simulation clock starts today 00:00 UTC, inside md.raw.*'s 7-day retention."""
    before = time.time_ns()
    result = _cli(tmp_path, "feed", "simulate", "--venues", "2", "--events", "200", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    today = before - before % (86_400 * 10**9)
    assert summary["config"]["start_ns"] in (today, today + 86_400 * 10**9)  # (a run across midnight)
    with _open(tmp_path / "log") as log:
        retention_ns = log.describe_topic("md.raw.alpha").retention_ms * 1_000_000
        stamps = [r[3] for r in dump(log)]
    assert stamps and min(stamps) >= before - retention_ns
    assert "warning:" not in result.stderr


def test_cli_simulate_warns_when_it_publishes_records_older_than_retention(tmp_path):
    result = _cli(tmp_path, "feed", "simulate", "--venues", "2", "--events", "200", "--start", "2026-01-02T14:30:00Z")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert [w.split()[1] for w in warnings] == ["md.raw.alpha:", "md.raw.bravo:"]  # refdata.instruments is kept forever
    assert "oldest 2026-01-02T14:30:00Z; retention 7d keeps" in warnings[0]
    assert "`hftstream log retain` deletes such records" in warnings[0] and "a recent --start" in warnings[0]
    recent = _cli(tmp_path, "feed", "simulate", "--venues", "1", "--events", "50", "--start", str(time.time_ns() - 6 * 86_400 * 10**9))
    assert recent.exit_code == 0 and "warning:" not in recent.stderr


def test_cli_file_feed_warns_about_records_older_than_retention(tmp_path):
    path = tmp_path / "old.ndjson"
    path.write_text('{"type":"heartbeat","ts":"2026-01-02T14:30:00Z","recv_ts_ns":1767364200000000000}\n')
    result = _cli(tmp_path, "feed", "file", str(path), "--venue", "alpha")
    assert result.exit_code == 0, result.output
    assert "warning: md.raw.alpha: records were published with timestamps older than the topic's retention (oldest 2026-01-02T14:30:00Z" in result.stderr
    assert "recent recv_ts_ns" in result.stderr
    fresh = tmp_path / "fresh.ndjson"
    fresh.write_text('{"type":"heartbeat","ts":"2026-01-02T14:30:00Z"}\n')  # stamped by the wall clock
    assert "warning:" not in _cli(tmp_path, "feed", "file", str(fresh), "--venue", "alpha").stderr


def test_cli_file_of_only_bad_lines_fails_and_lists_them(tmp_path):
    """Issue 5 #8: a file whose lines all fail the venue's format used to publish and exit 0."""
    path = tmp_path / "bad.ndjson"
    path.write_text("".join(f"not a message {i}\n" for i in range(25)))
    result = _cli(tmp_path, "feed", "file", str(path), "--venue", "alpha")
    assert result.exit_code == 1, result.output
    listed = [line for line in result.stdout.splitlines() if line.startswith("suspect line ")]
    assert len(listed) == 20 and listed[0].startswith("suspect line 1: invalid JSON") and listed[-1].startswith("suspect line 20: ")
    assert "... and 5 more suspect line(s)" in result.stdout
    assert "error: 25 of 25 line(s) of bad.ndjson are not valid json-decimal (none allowed)" in result.stderr
    assert "hint:" in result.stderr and "--max-bad" in result.stderr and "--strict" in result.stderr
    assert _cli(tmp_path, "feed", "file", str(path), "--venue", "alpha", "--max-bad", "24").exit_code == 1
    assert _cli(tmp_path, "feed", "file", str(path), "--venue", "alpha", "--max-bad", "25").exit_code == 0
    with _open(tmp_path / "log") as log:
        assert sum(log.list_topics()[0].end_offsets) == 75  # published each time (normalization dead-letters them)


def test_cli_file_strict_publishes_nothing_when_a_line_is_bad(tmp_path):
    path = tmp_path / "mixed.ndjson"
    path.write_text('{"type":"heartbeat","ts":"2026-01-02T14:30:00Z"}\n{"type":"heartbeat"}\n{"type":"heartbeat","ts":"2026-01-02T14:30:01Z"}\n')
    refused = _cli(tmp_path, "feed", "file", str(path), "--venue", "alpha", "--strict")
    assert refused.exit_code == 2, refused.output
    assert "suspect line 2: " in refused.stderr
    assert "error: refused mixed.ndjson: 1 of 3 line(s) are not valid json-decimal (none allowed); nothing was published" in refused.stderr
    assert "hint:" in refused.stderr and "Traceback" not in refused.output
    with _open(tmp_path / "log") as log:
        assert [t.name for t in log.list_topics()] == []  # not even the topic
    accepted = _cli(tmp_path, "feed", "file", str(path), "--venue", "alpha", "--strict", "--max-bad", "1")
    assert accepted.exit_code == 0, accepted.output
    with _open(tmp_path / "log") as log:
        assert sum(log.watermarks("md.raw.alpha", p)[1] for p in range(4)) == 3


def test_strict_library_call_raises_and_publishes_nothing(tmp_path, serde):
    from connectors.venues.errors import SuspectFeedError

    path = tmp_path / "x.ndjson"
    path.write_text("garbage\n")
    with _open(tmp_path / "log") as log:
        with pytest.raises(SuspectFeedError, match="nothing was published") as exc:
            publish_file(log, serde, path, "alpha", strict=True)
        assert exc.value.examples[0].startswith("line 1: invalid JSON") and len(exc.value.examples) == 1 and exc.value.hint
        assert log.list_topics() == []


def test_impossible_market_data_is_suspect_with_normalizes_reason_and_strict_publishes_nothing(tmp_path, serde):
    """Issue 14 #1: `feed file` judges lines by normalize's rules (DECISIONS #41); unknown symbols are counted, not suspect."""
    from connectors.venues.errors import SuspectFeedError

    path = tmp_path / "x.ndjson"
    trade = '{{"type":"trade","symbol":"{}","price":"{}","size":"{}","ts":"2026-01-02T14:30:00Z","trade_id":"t"}}\n'
    path.write_text(trade.format("AAPL", "187.25", "5") + trade.format("AAPL", "-5", "50") + trade.format("ZZZ", "1", "1")
                    + trade.format("AAPL", "187.255", "1") + trade.format("AAPL", "187.25", "0"))
    with _open(tmp_path / "log") as log:
        publish_simulation(log, serde, SimConfig(venues=1, symbols=1, events=0))  # refdata.instruments: AAPL only
        with pytest.raises(SuspectFeedError, match=r"3 of 5 line\(s\) are refused by normalization .*nothing was published") as exc:
            publish_file(log, serde, path, "alpha", strict=True, max_bad=2)
        assert exc.value.examples == [
            "line 2: NON_POSITIVE_PRICE: venue 'alpha': AAPL trade price -50000 must be > 0",
            "line 4: OFF_TICK: AAPL price 1872550 (scale 4) is not a multiple of the tick size 100",
            "line 5: NON_POSITIVE_SIZE: venue 'alpha': AAPL trade size 0 must be > 0",
        ]
        assert sum(log.watermarks("md.raw.alpha", p)[1] for p in range(log.partitions("md.raw.alpha"))) == 0
        summary = publish_file(log, serde, path, "alpha", max_bad=3)
        assert (summary.published, summary.suspect, summary.refused) == (5, 3, 3)
        assert summary.unknown_symbols == {"ZZZ": 1} and summary.refdata_instruments == 1


def test_cli_simulate_start_time_sets_the_simulation_clock(tmp_path):
    result = _cli(tmp_path, "feed", "simulate", "--venues", "1", "--events", "50", "--start", "2030-06-01T00:00:00Z", "--json")
    assert result.exit_code == 0, result.output
    first = json.loads(result.stdout)["venues"][0]["first_recv_ts_ns"]
    assert 1_906_502_400_000_000_000 < first < 1_906_502_401_000_000_000  # 2030-06-01T00:00:00Z + < 1 s


def test_cli_file_feed_and_its_errors(tmp_path):
    path = tmp_path / "feed.jsonl"
    path.write_text('{"type":"heartbeat","ts":"2026-01-02T14:30:00Z"}\nnot json\n')
    ok = _cli(tmp_path, "feed", "file", str(path), "--venue", "delta", "--max-bad", "1")
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.splitlines()[1].split() == ["delta", "json-decimal", "ndjson", "2", "1", "0", "0"]
    assert "suspect line 2: invalid JSON" in ok.stdout
    as_json = _cli(tmp_path, "feed", "file", str(path), "--venue", "delta", "--json", "--max-bad", "1")
    assert as_json.exit_code == 0 and json.loads(as_json.stdout)["published"] == 2
    for args, message in [
        (["feed", "file", str(tmp_path / "nope.ndjson"), "--venue", "alpha"], "does not exist"),
        (["feed", "file", str(path), "--venue", "zulu"], "unknown venue 'zulu'"),
        (["feed", "simulate", "--start", "soon"], "--start"),
    ]:
        bad = _cli(tmp_path, *args)
        assert bad.exit_code == 2, bad.output
        assert "error:" in bad.output and message in bad.output and "hint:" in bad.output
        assert "Traceback" not in bad.output
    out_of_range = _cli(tmp_path, "feed", "simulate", "--venues", "9")
    assert out_of_range.exit_code == 2 and "--venues" in out_of_range.output


def test_cli_help_answers_the_users_questions():
    sim = runner.invoke(app, ["feed", "simulate", "--help"], terminal_width=200)
    assert sim.exit_code == 0
    for text in ("--venues", "--symbols", "--events", "--seed", "--regime", "cancel-storm", "--start", "--gap-rate", "--dup-rate",
                 "--reorder-rate", "--malformed-rate", "--json", "default: 10000", "Example: hftstream feed simulate", "byte-identical"):
        assert text in sim.output, text
    f = runner.invoke(app, ["feed", "file", "--help"], terminal_width=200)
    for text in ("--venue", "--format", "--pace", "realtime", "suspect", "recv_ts_ns", "Example: hftstream feed file"):
        assert text in f.output, text
