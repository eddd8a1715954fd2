"""Matching on the real exactly-once runner, on the embedded log: the log holds exactly what the pure processor says.

Commands for several symbols go to ``orders.accepted`` (keyed by symbol, so spread over tasks);
the runner processes them in small transactions with snapshots; every output partition must then
hold, in order, exactly the records the pure processor gives for that task's commands, every late or
unknown cancel and replace must be a cancel reject on ``order.events``, only the badly keyed command a
dead letter with lineage, a second run must add nothing, and ``verify`` must
say "identical".
"""

from __future__ import annotations

from pathlib import Path

from matching_support import CANCEL, NEW, REPLACE, T0, new_value
from streams.lineage import source_of
from streams.log.embedded import EmbeddedLog
from streams.log.partitioner import partition_for
from streams.processors.base import Message, Reject
from streams.processors.matching import MatchingConfig, MatchingProcessor
from streams.runtime import Runner, RunOptions
from streams.runtime.state import read_range
from streams.runtime.verify import verify
from streams.serde import Serde
from streams.topics import ensure_topics

OUTPUTS = ("order.events", "fills", "md.book")


def commands() -> list[tuple[str, dict]]:
    out: list[tuple[str, dict]] = []
    ts = T0
    for i in range(60):
        symbol = ("AAPL", "MSFT", "ESH6", "BTC-USD")[i % 4]
        ts += 1_000
        side = "BUY" if i % 3 else "SELL"
        price = 1_000 + (i * 7) % 11 - 5
        out.append((NEW, new_value(f"acct{i % 5}", f"o{i}", side, 10 + i % 7, price, symbol=symbol, ts=ts,
                                   tif="GTD" if i % 9 == 0 else "GTC", expire=ts + 20_000 if i % 9 == 0 else None)))
        if i % 6 == 5:
            ts += 1
            out.append((CANCEL, {"account": f"acct{(i - 2) % 5}", "symbol": ("AAPL", "MSFT", "ESH6", "BTC-USD")[(i - 2) % 4],
                                 "client_order_id": f"o{i - 2}", "reason": None, "ts_ns": ts}))
        if i % 10 == 7:
            ts += 1
            out.append((REPLACE, {"account": f"acct{(i - 4) % 5}", "symbol": ("AAPL", "MSFT", "ESH6", "BTC-USD")[(i - 4) % 4],
                                  "client_order_id": f"o{i - 4}", "price": None, "quantity": 9, "ts_ns": ts}))
    out.append((CANCEL, {"account": "nobody", "symbol": "AAPL", "client_order_id": "ghost", "reason": None, "ts_ns": ts + 1}))
    return out


def test_matching_on_the_embedded_log_writes_exactly_what_the_pure_processor_says(tmp_path: Path) -> None:
    serde = Serde.from_settings()
    log = EmbeddedLog(tmp_path / "log")
    try:
        ensure_topics(log, ["orders.accepted", *OUTPUTS])
        parts = log.partitions("orders.accepted")
        with log.producer() as p:
            for schema, v in commands():
                p.produce("orders.accepted", serde.encode(schema, v, topic="orders.accepted"), v["symbol"].encode(), timestamp_ns=v["ts_ns"])
            bad = new_value("acct0", "bad", "BUY", 1, 1_000, symbol="AAPL", ts=T0 + 999_000)
            p.produce("orders.accepted", serde.encode(NEW, bad, topic="orders.accepted"), b"MSFT", timestamp_ns=bad["ts_ns"])  # bad input
        runner = Runner(log, serde, MatchingProcessor, MatchingConfig(full_audit=True),
                        RunOptions(until_idle=True, batch=7, snapshot_every_commits=3))
        runner.run()

        # expected: each task's commands through a fresh pure processor, outputs by (topic, partition) in order
        expected: dict[tuple[str, int], list[tuple[bytes | None, dict]]] = {}
        refused: list[tuple[int, int, str]] = []  # (partition, offset, reason code)
        for task in range(parts):
            proc = MatchingProcessor(MatchingConfig(), task)
            low, high = log.watermarks("orders.accepted", task)
            for rec in read_range(log, "orders.accepted", task, low, high):
                name, value = serde.decode(rec.value)  # type: ignore[arg-type]
                msg = Message(rec.topic, rec.partition, rec.offset, rec.timestamp_ns, rec.key, name, value)
                try:
                    outs = proc.process(msg)
                except Reject as exc:
                    refused.append((rec.partition, rec.offset, exc.reason_code))
                    continue
                for o in outs:
                    key = o.key.encode() if isinstance(o.key, str) else o.key
                    expected.setdefault((o.topic, partition_for(key, log.partitions(o.topic))), []).append((key, o.value))
        actual: dict[tuple[str, int], list[tuple[bytes | None, dict]]] = {}
        for topic in OUTPUTS:
            for part in range(log.partitions(topic)):
                low, high = log.watermarks(topic, part)
                for rec in read_range(log, topic, part, low, high):
                    assert source_of(rec.headers) is not None  # lineage on every output
                    actual.setdefault((topic, part), []).append((rec.key, serde.decode(rec.value).value))  # type: ignore[arg-type]
        assert sum(len(v) for v in actual.values()) > 200
        assert actual == expected

        dead = [serde.decode(r.value).value for r in read_range(log, "dlq.matching", 0, *log.watermarks("dlq.matching", 0))]  # type: ignore[arg-type]
        assert sorted((d["source_partition"], d["source_offset"], d["reason_code"]) for d in dead) == sorted(refused)
        assert {d["source_topic"] for d in dead} == {"orders.accepted"}
        assert [code for *_, code in refused] == ["KEY_MISMATCH"]
        cxl = [v for (topic, _), rows in actual.items() if topic == "order.events" for _, v in rows if "response_to" in v]
        assert {(v["response_to"], v["reason_code"]) for v in cxl} == {
            ("CANCEL", "UNKNOWN_ORDER"), ("CANCEL", "TOO_LATE_TO_CANCEL"), ("REPLACE", "TOO_LATE_TO_REPLACE"),
            ("REPLACE", "INVALID_QUANTITY")}
        assert runner.counts.dead_letters == 1 and runner.counts.records_in == len(commands()) + 1

        again = Runner(log, serde, MatchingProcessor, MatchingConfig(), RunOptions(until_idle=True))
        again.run()
        assert again.counts.records_in == 0  # everything was committed: a restart adds nothing
        assert verify(log, serde, MatchingProcessor, MatchingConfig()).identical
    finally:
        log.close()
