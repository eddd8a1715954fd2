"""Issue 14 #1 and #7 through the real console script on the embedded log: impossible market data ends in
dlq.normalize with its reason (never on md.normalized or the tape), `feed file` says so first, and
`refdata load` / `refdata list` publish and show the instruments `feed file` warns about."""

from __future__ import annotations

import json
from pathlib import Path

from connectors.venues.events import BookDelta, Quote, Trade, VenueMessage
from connectors.venues.formats import codec_for
from connectors.venues.instruments import Instrument, RefData
from streams.log import open_log
from streams.runtime.state import read_range
from streams.serde import Serde
from tape_support import cli

T0 = 1_767_364_200_000_000_000
AAPL = Instrument("AAPL", "1", 4, 0, 100, 1)
INSTRUMENTS_YAML = """\
instruments:
  - {symbol: AAPL, instrument_id: 1, price_scale: 4, tick_size: "0.01", size_scale: 0, lot_size: "1", currency: USD}
  - {symbol: BTC-USD, instrument_id: 2, price_scale: 2, tick_size: 0.01, size_scale: 8, lot_size: 0.0001}
"""
P = 1_872_500  # 187.25
# (event, what normalize does with it): the negative trade and crossed quote, and the rest of the family
EVENTS = [
    (Trade("AAPL", T0 + 1_000, "t1", P, 100, "BUY"), None),
    (Trade("AAPL", T0 + 2_000, "t2", -50_000, 50, "SELL"), "NON_POSITIVE_PRICE"),  # the "price":"-5"
    (Quote("AAPL", T0 + 3_000, 1_872_000, 10, 1_871_000, 10), "CROSSED_QUOTE"),  # bid 187.20 > ask 187.10
    (Quote("AAPL", T0 + 4_000, 1_872_000, 10, 1_872_100, 10), None),
    (Trade("AAPL", T0 + 5_000, "t3", P * 10, 1, "BUY"), "PRICE_OUT_OF_BAND"),  # a decimal shift: 1872.50
    (BookDelta("AAPL", T0 + 6_000, "BUY", "ADD", 1_871_900, 0), "NON_POSITIVE_SIZE"),
]
VENUES = ("alpha", "bravo", "charlie")  # json-decimal, json-ticks, fix


def _recording(tmp_path: Path, venue: str) -> Path:
    codec, ref = codec_for(venue), RefData([AAPL])
    lines = [codec.encode(VenueMessage(None if codec.format == "json-decimal" else i + 1, ev), ref) for i, (ev, _) in enumerate(EVENTS)]
    path = tmp_path / f"{venue}.ndjson"
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def _values(data: Path, topic: str) -> list[dict]:
    serde = Serde.from_settings()
    with open_log(f"embedded://{data / 'log'}") as log:
        return [serde.decode(r.value).value for p in range(log.partitions(topic)) for r in read_range(log, topic, p, *log.watermarks(topic, p))]


def test_impossible_market_data_from_feed_file_ends_in_dlq_normalize_with_its_reason_and_never_on_the_tape(tmp_path: Path) -> None:
    (tmp_path / "instruments.yaml").write_text(INSTRUMENTS_YAML)
    assert cli("refdata", "load", "instruments.yaml", data=tmp_path).returncode == 0
    assert cli("topics", "apply", data=tmp_path).returncode == 0
    refused = [reason for _, reason in EVENTS if reason]
    for venue in VENUES:
        fed = cli("feed", "file", str(_recording(tmp_path, venue)), "--venue", venue, data=tmp_path)
        assert fed.returncode == 1, fed.stderr  # published, and the bad lines are named
        listed = [line for line in fed.stdout.splitlines() if line.startswith("suspect line ")]
        assert [line.split()[3].rstrip(":") for line in listed] == refused, fed.stdout
        assert listed[0] == f"suspect line 2: NON_POSITIVE_PRICE: venue {venue!r}: AAPL trade price -50000 must be > 0"
        assert f"error: 4 of 6 line(s) of {venue}.ndjson are refused by normalization" in fed.stderr and "hint:" in fed.stderr
        assert "Traceback" not in fed.stderr and "UNKNOWN_SYMBOL" not in fed.stderr

    ran = cli("run", "normalize", "--until-idle", "--json", data=tmp_path)
    assert ran.returncode == 0, ran.stderr
    counts = json.loads(ran.stdout)["normalize"]
    assert counts["dlq_by_reason"] == {reason: 3 for reason in refused} and counts["reconciles"]
    normalized = _values(tmp_path, "md.normalized")
    prices = [v.get("price") for v in normalized if "trade_id" in v]
    assert sorted(prices) == [P, P, P]  # the good trade of each venue; not -50000, not 10x
    quotes = [(v["bid_price"], v["ask_price"]) for v in normalized if "bid_price" in v]
    assert quotes == [(1_872_000, 1_872_100)] * 3
    letters = _values(tmp_path, "dlq.normalize")
    assert sorted(v["reason_code"] for v in letters) == sorted(refused * 3)
    assert all(v["processor"] == "normalize" and v["source_topic"].startswith("md.raw.") for v in letters)

    assert cli("tape", "init", data=tmp_path).returncode == 0
    sunk = cli("tape", "sink", "--until-idle", data=tmp_path, timeout=300)
    assert sunk.returncode == 0, sunk.stderr
    q = cli("tape", "query", "SELECT count(), min(price), max(price) FROM tape.md_trades FINAL", "--format", "json", data=tmp_path)
    assert q.returncode == 0, q.stderr
    assert list(json.loads(q.stdout).values()) == [3, P, P]
    bars = cli("tape", "bars", "--symbol", "AAPL", "--interval", "1m", "--format", "json", data=tmp_path)
    assert bars.returncode == 0 and {json.loads(line)["low"] for line in bars.stdout.splitlines()} == {"187.2500"}
    dl = cli("tape", "query", "SELECT reason_code, count() AS n FROM tape.dead_letters FINAL GROUP BY reason_code ORDER BY reason_code",
             "--format", "csv", data=tmp_path)
    assert dl.stdout.splitlines()[1:] == [f"{code},3" for code in sorted(refused)]


def test_feed_file_warns_when_refdata_is_empty_or_lacks_the_feeds_symbols(tmp_path: Path) -> None:
    path = _recording(tmp_path, "alpha")
    empty = cli("feed", "file", str(path), "--venue", "alpha", data=tmp_path)
    warnings = [line for line in empty.stderr.splitlines() if line.startswith("warning:")]
    assert any("refdata.instruments is empty; normalization will dead-letter 6 line(s) as UNKNOWN_SYMBOL" in w
               and "`hftstream refdata load FILE`" in w for w in warnings), empty.stderr
    assert empty.returncode == 0  # the values could not be judged without the instruments: nothing suspect

    (tmp_path / "btc.yaml").write_text('- {symbol: BTC-USD, instrument_id: 2, price_scale: 2, tick_size: "0.01", size_scale: 8, lot_size: "0.0001"}\n')
    assert cli("refdata", "load", "btc.yaml", data=tmp_path).returncode == 0
    other = cli("feed", "file", str(path), "--venue", "alpha", "--max-bad", "10", data=tmp_path)
    assert "warning: 1 instrument(s) are not in refdata.instruments (1 instruments there): AAPL (6)" in other.stderr, other.stderr
    ticks = cli("feed", "file", str(_recording(tmp_path, "bravo")), "--venue", "bravo", data=tmp_path)
    assert "not in refdata.instruments (1 instruments there): instrument id 1 (6)" in ticks.stderr, ticks.stderr

    (tmp_path / "aapl.csv").write_text("symbol,instrument_id,price_scale,tick_size\nAAPL,1,4,0.01\n")
    assert cli("refdata", "load", "aapl.csv", data=tmp_path).returncode == 0
    known = cli("feed", "file", str(path), "--venue", "alpha", "--max-bad", "10", data=tmp_path)
    assert "refdata.instruments" not in known.stderr and known.stdout.count("suspect line") == 4
    assert cli("topics", "apply", data=tmp_path).returncode == 0
    ran = json.loads(cli("run", "normalize", "--until-idle", "--json", data=tmp_path).stdout)["normalize"]
    # the two files published before the instruments were loaded still name AAPL: they were published at the wall
    # clock, after the instruments' effective time (the epoch), so normalize knows AAPL for them too
    assert "UNKNOWN_SYMBOL" not in ran["dlq_by_reason"] and ran["reconciles"]


def test_refdata_load_validates_publishes_and_list_shows_it(tmp_path: Path) -> None:
    (tmp_path / "i.yaml").write_text(INSTRUMENTS_YAML)
    dry = cli("refdata", "load", "i.yaml", "--dry-run", data=tmp_path)
    assert dry.returncode == 0 and "would publish 2 instrument(s)" in dry.stderr
    assert json.loads(cli("refdata", "list", "--json", data=tmp_path).stdout) == []
    assert "warning: refdata.instruments is empty" in cli("refdata", "list", data=tmp_path).stderr

    loaded = cli("refdata", "load", "i.yaml", "--json", data=tmp_path)
    assert loaded.returncode == 0, loaded.stderr
    assert [(v["symbol"], v["tick_size"], v["lot_size"], v["updated_ts_ns"]) for v in json.loads(loaded.stdout)] == [
        ("AAPL", 100, 1, 0), ("BTC-USD", 1, 10_000, 0)]
    listed = cli("refdata", "list", data=tmp_path)
    assert listed.returncode == 0
    assert [line.split() for line in listed.stdout.splitlines()] == [
        ["SYMBOL", "ID", "PRICE_SCALE", "TICK", "SIZE_SCALE", "LOT", "CCY", "STATUS"],
        ["AAPL", "1", "4", "0.01", "0", "1", "USD", "ACTIVE"],
        ["BTC-USD", "2", "2", "0.01", "8", "0.0001", "USD", "ACTIVE"],
    ]
    as_json = json.loads(cli("refdata", "list", "--json", "--symbol", "BTC-USD", data=tmp_path).stdout)
    assert as_json == [{"symbol": "BTC-USD", "instrument_id": "2", "price_scale": 2, "size_scale": 8, "tick_size": 1,
                        "lot_size": 10_000, "currency": "USD", "status": "ACTIVE"}]

    (tmp_path / "v2.json").write_text('[{"symbol": "AAPL", "instrument_id": "1", "price_scale": 4, "tick_size": "0.05"}]')
    assert cli("refdata", "load", "v2.json", "--effective", "2026-01-02T14:30:00Z", data=tmp_path).returncode == 0
    assert json.loads(cli("refdata", "list", "--json", "-s", "AAPL", data=tmp_path).stdout)[0]["tick_size"] == 500  # the new version

    (tmp_path / "bad.yaml").write_text(
        '- {symbol: MSFT, instrument_id: 3, price_scale: 2, tick_size: "0.001"}\n'
        "- {symbol: A B, instrument_id: 4, price_scale: 40, tick_size: 1, lot: 1}\n"
        '- {symbol: KO, price_scale: 4, tick_size: "0.01", currency: usd, status: OPEN}\n'
        '- {symbol: KO, instrument_id: 5, price_scale: 4, tick_size: "0"}\n'
    )
    for args, messages in [
        (["bad.yaml"], ["bad.yaml: 8 problem(s), nothing was published", "entry 1 (MSFT): tick_size '0.001' does not fit price_scale 2",
                        "entry 2 (A B): unknown field(s) lot", "entry 2 (A B): symbol must be 1-64 characters without spaces",
                        "entry 2 (A B): price_scale must be an integer 0..18, got 40", "entry 3 (KO): missing instrument_id",
                        "entry 3 (KO): currency must be three capital letters", "entry 3 (KO): status must be one of ACTIVE",
                        "entry 4 (KO): tick_size must be > 0"]),
        (["nope.yaml"], ["reference-data file nope.yaml does not exist"]),
        (["i.yaml", "--effective", "soon"], ["--effective"]),
    ]:
        bad = cli("refdata", "load", *args, data=tmp_path)
        assert bad.returncode == 2, bad.stderr
        assert "Traceback" not in bad.stderr and "hint:" in bad.stderr
        for message in messages:
            assert message in bad.stderr, (message, bad.stderr)
    (tmp_path / "clash.csv").write_text("symbol,instrument_id,price_scale,tick_size\nMSFT,2,4,0.01\n")
    clash = cli("refdata", "load", "clash.csv", data=tmp_path)
    assert clash.returncode == 2 and "MSFT: instrument_id 2 already names BTC-USD" in clash.stderr
    (tmp_path / "dup.csv").write_text("symbol,instrument_id,price_scale,tick_size\nX,7,4,0.01\nX,8,4,0.01\nY,8,4,0.01\nZ,9,4,0.01,9\n")
    dup = cli("refdata", "load", "dup.csv", data=tmp_path)
    assert dup.returncode == 2, dup.stderr
    for message in ("dup.csv: 3 problem(s)", "line 5: 5 cells but the header has 4", "symbol 'X' appears 2 times", "instrument_id '8' appears 2 times"):
        assert message in dup.stderr, (message, dup.stderr)
    assert [v["symbol"] for v in json.loads(cli("refdata", "list", "--json", data=tmp_path).stdout)] == ["AAPL", "BTC-USD"]
    missing = cli("refdata", "list", "--symbol", "NOPE", data=tmp_path)
    assert missing.returncode == 2 and "no instrument NOPE" in missing.stderr and "hint:" in missing.stderr
    helped = cli("refdata", "load", "--help", data=tmp_path)
    for text in ("YAML", "CSV", "tick_size", "--effective", "--dry-run", "Example: hftstream refdata load"):
        assert text in helped.stdout, text
