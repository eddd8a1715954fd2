"""The tape sink's native scan and overlapped inserts (DECISIONS #62) against the Python path, on the same log.

The Python path -- ``Record``s from ``py_parse_records``, ``py_encode_row``, Avro containers, every insert inline -- is
the reference: the native path (frames straight to rows, Native-format blocks, inserts in a background thread) must
hand ClickHouse byte-identical rows and leave identical tables, dead letters and positions, including for damaged,
undecodable, tombstone, no-table and refused records and odd lineage; an error in the background insert is the same
error, and a rerun leaves the tape exact.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from tape_support import T0, fill, lineage, scalar, tape_at, value_of

from connectors.clickhouse import avro_block
from connectors.clickhouse.sink import SinkOptions, TapeSink
from connectors.clickhouse.tables import TABLES
from streams import native
from streams.log import TopicSpec, open_log
from streams.log.embedded import segment
from streams.serde import Serde

needs_native = pytest.mark.skipif(not native.active(), reason=f"{native.status()}: only the Python path runs")
MARKET = ["hftstream.md.Trade", "hftstream.md.Quote", "hftstream.md.BookDelta", "hftstream.md.VenueStatus", "hftstream.md.Heartbeat"]
TOPICS = ["fills", "md.normalized"]


def _publish(log: Any, serde: Serde) -> None:
    log.create_topic(TopicSpec("fills", partitions=2, value_schema="hftstream.fills.Fill"))
    log.create_topic(TopicSpec("md.normalized", partitions=3))
    mark = serde.encode("hftstream.runtime.ScheduleMark", value_of(serde, "hftstream.runtime.ScheduleMark", 1))  # no table takes it
    odd = (("hft.src.topic", b"orders.in"), ("hft.src.partition", b" 3"), ("hft.src.offset", b"+12"))  # Python's int() reads these
    with log.producer() as p:
        for i in range(400):
            headers = lineage("orders.in", i % 3, i) if i % 5 else (() if i % 2 else odd)
            value = serde.encode("hftstream.fills.Fill", fill(serde, i, quantity=-5 if i in (13, 250) else 100 + i))  # refused by the CHECK
            if i in (40, 41):
                value = b"\x00garbage" if i == 40 else mark
            p.produce("fills", None if i == 77 else value, f"k{i % 4}".encode(), timestamp_ns=T0 + i, headers=headers)
        for i in range(300):
            schema = MARKET[i % 5]
            v = value_of(serde, schema, i, **({"symbol": f"S{i % 7}"} if i % 5 != 4 else {}))
            if schema == "hftstream.md.Trade" and i % 10 == 0:
                v["aggressor_side"] = None  # a null in a LowCardinality(Nullable) column, fed by an enum
            if schema == "hftstream.md.VenueStatus":
                v.update(symbol=[None, "", "S1"][i % 3], reason=[None, "", "halted"][(i // 3) % 3])  # null and "" side by side
            key = [None, b"\xff\x00k", f"S{i % 7}".encode()][min(i % 6, 2)]  # no key, a key that is not UTF-8, a symbol
            p.produce("md.normalized", serde.encode(schema, v), key, timestamp_ns=T0 + i,
                      headers=lineage("md.raw.alpha", i % 4, i) if i % 3 else ())


def _python_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reference path in this process: no native parse, scan, row encoding or Native blocks."""
    monkeypatch.setattr(segment, "_native_parse", None)
    monkeypatch.setattr(avro_block, "_native_scan", None)
    monkeypatch.setattr(avro_block, "_native_row", None)
    monkeypatch.setattr(avro_block, "_native_block", None)


def _sink_run(data: Path, serde: Serde, monkeypatch: pytest.MonkeyPatch, *, overlap: bool) -> tuple[dict, list]:
    """Sink both topics into a fresh tape in ``data``: (every table's rows, the rows handed to each insert, by plan)."""
    blocks: list[tuple[str, tuple[bytes, ...]]] = []
    formats: list[str] = []
    block = avro_block.Plan.block

    def recording(plan: avro_block.Plan, rows: list[bytes]) -> tuple[bytes, str]:
        blocks.append((plan.record_type, tuple(rows)))
        body, fmt = block(plan, rows)
        formats.append(fmt)
        return body, fmt

    monkeypatch.setattr(avro_block.Plan, "block", recording)
    with open_log(f"embedded://{data.parent / 'log'}") as log, tape_at(data) as tape:
        tape.client.command("ALTER TABLE tape.fills ADD CONSTRAINT positive_quantity CHECK quantity > 0")
        sink = TapeSink(log, serde, tape, SinkOptions(topics=TOPICS, until_idle=True, batch=64, linger_ms=600_000, overlap=overlap))
        assert (sink._scan is not None) == (avro_block._native_scan is not None)
        counts = sink.run().as_dict()
        tables = {t: tape.client.query(f"SELECT * EXCEPT sunk_at FROM tape.{t} ORDER BY topic, partition, offset").result_rows for t in TABLES}
        table_id = re.compile(r"\([0-9a-f]{8}-[0-9a-f-]{27}\)")  # a refusal names the table's UUID, which each tape draws
        tables["dead_letters"] = [tuple(table_id.sub("(uuid)", v) if isinstance(v, str) else v for v in r) for r in tables["dead_letters"]]
        tables["sink_batches"] = tape.client.query(
            "SELECT topic, partition, first_offset, last_offset, records, dead_letters, tables FROM tape.sink_batches"
            " ORDER BY topic, partition, first_offset").result_rows
    counts.pop("insert_s")
    tables["counts"] = counts  # type: ignore[assignment]
    tables["formats"] = sorted(set(formats))  # type: ignore[assignment]
    return tables, blocks


@needs_native
def test_native_and_python_paths_write_the_same_tape_from_the_same_log(tmp_path: Path, serde: Serde, monkeypatch: pytest.MonkeyPatch) -> None:
    with open_log(f"embedded://{tmp_path / 'log'}") as log:
        _publish(log, serde)
    with monkeypatch.context() as m:
        fast, fast_blocks = _sink_run(tmp_path / "native", serde, m, overlap=True)
    with monkeypatch.context() as m:
        _python_path(m)
        slow, slow_blocks = _sink_run(tmp_path / "python", serde, m, overlap=False)
    assert fast_blocks == slow_blocks, "the scan hands ClickHouse byte-identical rows"
    assert fast.pop("formats") == ["Native"] and slow.pop("formats") == ["Avro"]
    assert fast == slow
    assert fast["counts"]["records"] == 700 and fast["counts"]["dead_letters"] == 5  # refused (2), undecodable, no table, tombstone
    assert sum(len(r) for _, r in fast_blocks) > 600


@pytest.mark.parametrize("overlap", [True, False])
def test_an_insert_error_in_the_background_is_the_same_error_and_a_rerun_is_exact(tmp_path: Path, serde: Serde, overlap: bool) -> None:
    with open_log(f"embedded://{tmp_path / 'log'}") as log:
        log.create_topic(TopicSpec("fills", partitions=2, value_schema="hftstream.fills.Fill"))
        with log.producer() as p:
            for i in range(1000):
                p.produce("fills", serde.encode("hftstream.fills.Fill", fill(serde, i)), b"k", timestamp_ns=T0 + i, headers=lineage("orders.in", 0, i))
        with tape_at(tmp_path) as tape:
            calls = 0
            raw_insert = tape.client.raw_insert

            def failing(*args: Any, **kwargs: Any) -> Any:
                nonlocal calls
                calls += 1
                if calls == 3:
                    raise RuntimeError("injected: the client broke")
                return raw_insert(*args, **kwargs)

            tape.client.raw_insert = failing  # type: ignore[method-assign]
            sink = TapeSink(log, serde, tape, SinkOptions(topics=["fills"], until_idle=True, batch=100, overlap=overlap))
            with pytest.raises(RuntimeError, match="injected: the client broke"):
                sink.run()
            assert sink._inserts._thread is None, "no insert is left running after the error"
            tape.client.raw_insert = raw_insert  # type: ignore[method-assign]
            again = TapeSink(log, serde, tape, SinkOptions(topics=["fills"], until_idle=True, batch=100, overlap=overlap)).run()
            assert again.records + sink.counts.records == 1000 + again.already_present
            assert scalar(tape, "SELECT count() FROM tape.fills") == scalar(tape, "SELECT uniqExact(topic, partition, offset) FROM tape.fills") == 1000
            ends = {(t, p): int(last) for t, p, last in tape.client.query(
                "SELECT topic, partition, max(last_offset) FROM tape.sink_batches GROUP BY topic, partition").result_rows}
            assert ends == {("fills", p): log.watermarks("fills", p)[1] - 1 for p in range(2) if log.watermarks("fills", p)[1]}


def test_a_transient_error_in_the_background_insert_is_retried(tmp_path: Path, serde: Serde) -> None:
    from clickhouse_connect.driver.exceptions import OperationalError

    with open_log(f"embedded://{tmp_path / 'log'}") as log:
        log.create_topic(TopicSpec("fills", partitions=1, value_schema="hftstream.fills.Fill"))
        with log.producer() as p:
            for i in range(500):
                p.produce("fills", serde.encode("hftstream.fills.Fill", fill(serde, i)), b"k", timestamp_ns=T0 + i)
        with tape_at(tmp_path) as tape:
            raw_insert, failed = tape.client.raw_insert, []

            def flaky(*args: Any, **kwargs: Any) -> Any:
                if len(failed) < 2:
                    failed.append(1)
                    raise OperationalError("injected: connection reset")
                return raw_insert(*args, **kwargs)

            tape.client.raw_insert = flaky  # type: ignore[method-assign]
            sink = TapeSink(log, serde, tape, SinkOptions(topics=["fills"], until_idle=True, batch=100))
            counts = sink.run()
            assert counts.retries == 2 and counts.records == 500 and counts.rows == {"fills": 500}
            assert scalar(tape, "SELECT count() FROM tape.fills") == 500 and scalar(tape, "SELECT count() FROM tape.sink_batches") == 5
