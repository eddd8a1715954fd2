"""``hftstream tape bars`` and ``tape trace`` through the CLI on the demo's tape (``demo_tape``).

Expected bars are computed here in Python from the raw trades (not from the views); the trace is
checked against the lineage columns of the records it should reach.
"""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

from tape_support import cli, tape_at

MIN = 60_000_000_000


def _iso(ns: int) -> str:
    import datetime as dt

    s, frac = divmod(ns, 1_000_000_000)
    return dt.datetime.fromtimestamp(s, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def test_bars_match_ohlcv_computed_from_the_raw_trades(demo_tape: Path) -> None:
    with tape_at(demo_tape, init=False) as tape:
        scale = tape.client.query("SELECT price_scale, size_scale FROM tape.instruments FINAL WHERE symbol = 'AAPL' "
                                  "ORDER BY updated_ts DESC LIMIT 1").result_rows[0]
        raw = tape.client.query("SELECT if(topic = 'md.book', 'internal', 'venue'), venue, toUnixTimestamp64Nano(exchange_ts), "
                                "topic, partition, offset, price, size FROM tape.md_trades FINAL WHERE symbol = 'AAPL'").result_rows
    assert raw, "the demo tape has no AAPL trade"
    groups: dict[tuple, list] = defaultdict(list)
    for src, venue, ts, topic, part, off, price, size in raw:
        groups[(ts - ts % MIN, src, venue)].append(((ts, topic, part, off), price, size))
    expected = []
    for (bucket, src, venue), trades in sorted(groups.items()):
        trades.sort()
        prices = [p for _, p, _ in trades]
        dec = [Decimal(p).scaleb(-scale[0]) for p in (prices[0], max(prices), min(prices), prices[-1])]
        expected.append({"bucket": _iso(bucket), "source": src, "venue": venue, "open": str(dec[0]), "high": str(dec[1]),
                         "low": str(dec[2]), "close": str(dec[3]), "volume": str(Decimal(sum(s for _, _, s in trades)).scaleb(-scale[1])),
                         "trades": len(trades)})
    out = cli("tape", "bars", "--symbol", "AAPL", "--interval", "1m", "--format", "json", data=demo_tape)
    assert out.returncode == 0, out.stderr
    got = [json.loads(line) for line in out.stdout.splitlines()]
    assert sorted(got, key=lambda r: (r["bucket"], r["source"], r["venue"])) == expected

    internal = cli("tape", "bars", "--symbol", "AAPL", "--interval", "1s", "--source", "internal", "--format", "csv", data=demo_tape)
    assert internal.returncode == 0, internal.stderr
    lines = internal.stdout.splitlines()
    assert lines[0].startswith("bucket,source,venue,open") and len(lines) > 1
    assert all(line.split(",")[1] == "internal" for line in lines[1:])
    assert sum(int(line.split(",")[-1]) for line in lines[1:]) == sum(1 for r in raw if r[0] == "internal")


def test_bars_window_is_from_inclusive_to_exclusive(demo_tape: Path) -> None:
    out = cli("tape", "bars", "--symbol", "AAPL", "--interval", "1s", "--format", "json", data=demo_tape)
    buckets = sorted({json.loads(line)["bucket"] for line in out.stdout.splitlines()})
    assert buckets, out.stderr
    first = buckets[0]
    inside = cli("tape", "bars", "--symbol", "AAPL", "--interval", "1s", "--from", first, "--to", buckets[-1].replace(".000000000Z", ".5Z"),
                 "--format", "json", data=demo_tape)
    assert sorted({json.loads(line)["bucket"] for line in inside.stdout.splitlines()}) == buckets, inside.stderr
    before = cli("tape", "bars", "--symbol", "AAPL", "--interval", "1s", "--to", first, "--format", "json", data=demo_tape)
    after = cli("tape", "bars", "--symbol", "AAPL", "--interval", "1s", "--from", first.replace(".000000000Z", ".000000001Z"),
                "--format", "json", data=demo_tape)
    assert before.returncode == after.returncode == 0 and before.stdout == "" and after.stdout.count(first) == 0, (before.stdout, after.stdout)
    bad = cli("tape", "bars", "--symbol", "AAPL", "--from", "yesterday", data=demo_tape)
    assert bad.returncode == 2 and "error: --from 'yesterday' is not a time" in bad.stderr


def test_bars_refuse_an_unknown_symbol_or_interval(demo_tape: Path) -> None:
    for args, words in ((("--symbol", "NOPE"), "symbol 'NOPE' is not on the tape"), (("--symbol", "AAPL", "--interval", "5m"), "unknown interval")):
        out = cli("tape", "bars", *args, data=demo_tape)
        assert out.returncode == 2 and f"error: {words}" in out.stderr and "hint:" in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_trace_follows_an_order_to_its_fills_ledger_and_positions(demo_tape: Path) -> None:
    with tape_at(demo_tape, init=False) as tape:
        # An order whose accepted command was filled: orders.in -> orders.accepted -> fills.
        part, off = tape.client.query(
            "SELECT a.src_partition, a.src_offset FROM tape.records AS a INNER JOIN tape.fills AS f "
            "ON f.src_topic = a.topic AND f.src_partition = a.partition AND f.src_offset = a.offset "
            "WHERE a.topic = 'orders.accepted' AND a.src_topic = 'orders.in' ORDER BY a.src_partition, a.src_offset LIMIT 1").result_rows[0]
    out = cli("tape", "trace", "--topic", "orders.in", "--partition", str(part), "--offset", str(off), "--format", "json", data=demo_tape)
    assert out.returncode == 0, out.stderr
    root = json.loads(out.stdout)
    assert (root["topic"], root["partition"], root["offset"]) == ("orders.in", part, off)

    def depths(node: dict, depth: int = 0) -> dict[str, set[int]]:
        acc: dict[str, set[int]] = defaultdict(set)
        acc[node["topic"]].add(depth)
        for child in node["caused"]:
            for k, v in depths(child, depth + 1).items():
                acc[k] |= v
        return acc

    seen = depths(root)
    assert seen["risk.decisions"] == {1} and seen["orders.accepted"] == {1}
    assert 2 in seen["fills"] and 3 in seen["ledger.entries"] and 3 in seen["positions"], dict(seen)

    tree = cli("tape", "trace", "-t", "orders.in", "-p", str(part), "-o", str(off), data=demo_tape)
    assert tree.returncode == 0, tree.stderr
    lines = tree.stdout.splitlines()
    assert lines[0].startswith(f"NewOrder orders.in/{part}/{off} ")
    assert any(line.startswith("    Fill fills/") for line in lines) and any(line.startswith("      LedgerEntry ledger.entries/") for line in lines)


def test_trace_of_an_offset_not_on_the_tape_says_so(demo_tape: Path) -> None:
    out = cli("tape", "trace", "--topic", "orders.in", "--partition", "0", "--offset", "99999999", data=demo_tape)
    assert out.returncode == 2 and "error: orders.in/0/99999999 is not on the tape" in out.stderr and "hint:" in out.stderr, out.stderr
