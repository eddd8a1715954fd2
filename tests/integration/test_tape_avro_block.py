"""The sink's Avro fast path (ClickHouse decodes the bodies) writes exactly the rows the Python path writes, for every schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from tape_support import T0, lineage, tape_at, value_of

from connectors.clickhouse.avro_block import build_plan, varint
from connectors.clickhouse.sink import SinkOptions, TapeSink
from connectors.clickhouse.tables import ROUTES, table_columns
from streams.log import open_log
from streams.log.base import Record
from streams.serde import Serde

PYTHON_ONLY = {"hftstream.dlq.DeadLetter", "hftstream.runtime.Commit"}  # arrays of records (headers, input ranges): no plan, the Python path


def _records(serde: Serde, schema: str, n: int) -> list[Record]:
    out = []
    for i in range(n):
        headers = lineage("orders.in", i % 3, 1000 + i) if i % 4 else ()  # some without lineage
        key = None if i % 5 == 0 else f"k{i}".encode()
        out.append(Record("t.avro", 0, i, T0 + i * 1_000_003, key, serde.encode(schema, value_of(serde, schema, 7 * i + 1)), headers))
    return out


def _rows(tape, table: str) -> list[tuple]:  # type: ignore[no-untyped-def]
    return tape.client.query(f"SELECT * EXCEPT sunk_at FROM tape.{table} ORDER BY offset").result_rows


def test_every_routed_schema_but_dead_letters_has_a_fast_plan(tmp_path: Path, serde: Serde) -> None:
    with tape_at(tmp_path) as tape:
        columns = table_columns(tape.client)
    for schema, table in ROUTES.items():
        plan = build_plan(schema, serde.repo.current(schema).canonical, 10, columns[table])
        assert (plan is None) == (schema in PYTHON_ONLY), schema


@pytest.mark.parametrize("schema", sorted(set(ROUTES) - PYTHON_ONLY))
def test_fast_and_python_paths_write_the_same_rows(tmp_path: Path, serde: Serde, schema: str) -> None:
    table = ROUTES[schema]
    records = _records(serde, schema, 24)
    with open_log(f"embedded://{tmp_path / 'log'}") as log, tape_at(tmp_path) as tape:
        sink = TapeSink(log, serde, tape, SinkOptions())
        sink.write_batch(records)
        assert sink.counts.rows == {table: 24} and sink.counts.dead_letters == 0
        assert any(p is not None for p in sink._plans.values()), "the fast path took the records"
        fast = _rows(tape, table)
        for t in (table, "sink_batches"):
            tape.client.command(f"TRUNCATE TABLE tape.{t}")
        slow = TapeSink(log, serde, tape, SinkOptions())
        slow._plan = lambda value: None  # type: ignore[method-assign]  # force the Python path
        slow.write_batch(records)
        assert _rows(tape, table) == fast
    assert len(fast) == 24


def test_a_group_clickhouse_refuses_falls_back_and_isolates_the_bad_record(tmp_path: Path, serde: Serde) -> None:
    schema = "hftstream.fills.Fill"
    records = _records(serde, schema, 10)
    bad = records[6]
    records[6] = Record(bad.topic, bad.partition, bad.offset, bad.timestamp_ns, bad.key, bad.value[:-3], bad.headers)  # type: ignore[index]
    with open_log(f"embedded://{tmp_path / 'log'}") as log, tape_at(tmp_path) as tape:
        sink = TapeSink(log, serde, tape, SinkOptions())
        sink.write_batch(records)
        assert sink.counts.rows == {"fills": 9} and sink.counts.dead_letters == 1
        dead = tape.client.query("SELECT offset, reason_code FROM tape.dead_letters").result_rows
        assert dead == [(6, "DECODE_ERROR")]


def test_varint_is_avro_zigzag() -> None:
    # Avro spec examples: 0 -> 00, -1 -> 01, 1 -> 02, -2 -> 03, 2 -> 04, -64 -> 7f, 64 -> 80 01
    assert [varint(n).hex() for n in (0, -1, 1, -2, 2, -64, 64)] == ["00", "01", "02", "03", "04", "7f", "8001"]
    assert varint(T0) == _slow_varint(T0) and varint(-(2**63)) == _slow_varint(-(2**63)) and varint(2**63 - 1) == _slow_varint(2**63 - 1)


def _slow_varint(n: int) -> bytes:
    z = ((n << 1) ^ (n >> 63)) & (2**64 - 1)
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)
