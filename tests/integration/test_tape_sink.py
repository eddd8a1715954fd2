"""The tape sink on the real engine (chDB through clickhouse-connect), no mocks.

Exactly-once: insert deduplication tokens, the ReplacingMergeTree engine, the position read back from the
tables, re-sinks that add nothing, crashes (SIGKILL) at chosen and at random points, and bad records that end
up in dead_letters with the reason. Order, fill and ledger families are built from the Avro schemas (the
processors that produce them are built elsewhere), market data both ways.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from connectors.clickhouse.sink import SinkOptions, TapeSink
from connectors.clickhouse.ddl import load_migrations
from connectors.clickhouse.tables import COMMON_COLUMNS, FILLED_BY_SERVER, ROUTES, TABLES, TableWriter, schema_fields, table_columns
from streams.log import TopicSpec, open_log
from streams.serde import Serde
from tape_support import HFTSTREAM, T0, cli, fill, lineage, publish_values, scalar, tape_at, value_of

# A catalog topic for each routed schema (routing is by schema; the topic column keeps e.g. md.book apart).
TOPIC_OF = {
    "hftstream.md.RawVenueMessage": "md.raw.alpha", "hftstream.refdata.Instrument": "refdata.instruments",
    "hftstream.orders.NewOrder": "orders.in", "hftstream.orders.CancelOrder": "orders.in", "hftstream.orders.ReplaceOrder": "orders.accepted",
    "hftstream.risk.RiskDecision": "risk.decisions", "hftstream.fills.Fill": "fills", "hftstream.ledger.LedgerEntry": "ledger.entries",
    "hftstream.ledger.Position": "positions", "hftstream.exec.ExecutionReport": "exec.reports", "hftstream.recon.ReconBreak": "recon.breaks",
    "hftstream.recon.ReconStatus": "recon.status", "hftstream.dlq.DeadLetter": "dlq.risk", "hftstream.md.Trade": "md.book",
    "hftstream.runtime.Commit": "state.risk", "hftstream.runtime.SnapshotChunk": "state.risk",
}


@pytest.fixture(scope="module")
def serde() -> Serde:
    return Serde.from_settings()


def _topic_for(schema: str) -> str:
    if schema in TOPIC_OF:
        return TOPIC_OF[schema]
    return {"md": "md.normalized", "orders": "order.events", "ops": "ops.commands"}[schema.split(".")[1]]


def _sink(log, serde, tape, **options) -> TapeSink:  # type: ignore[no-untyped-def]
    sink = TapeSink(log, serde, tape, SinkOptions(until_idle=True, **options))
    sink.run()
    return sink


def _exact(tape, table: str) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    """(count(), uniqExact(topic, partition, offset), count() FINAL) of ``table``."""
    c = tape.client
    return (scalar(tape, f"SELECT count() FROM tape.{table}"), scalar(tape, f"SELECT uniqExact(topic, partition, offset) FROM tape.{table}"),
            c.query(f"SELECT count() FROM tape.{table} FINAL").result_rows[0][0])


# -- the DDL and the schemas agree ------------------------------------------------------------------------------


def test_every_schema_has_a_table_and_every_field_a_typed_column(tmp_path, serde):
    with tape_at(tmp_path) as tape:
        columns = table_columns(tape.client)
        engines = dict(tape.client.query("SELECT name, engine_full FROM system.tables WHERE database = 'tape'").result_rows)
    # the runtime's schemas: its commit manifests and snapshots are sunk (append times), its schedule marks are not
    records = [n for n in serde.repo.names() if serde.repo.schema(n)["type"] == "record" and n != "hftstream.runtime.ScheduleMark"
               and n != "hftstream.runtime.InputRange"]
    assert sorted(ROUTES) == sorted(records), "a schema without a tape table (or a route to a schema that does not exist)"
    fields = schema_fields(serde.repo)
    for table in TABLES:
        cols = {c.name: c for c in columns[table]}
        assert list(cols)[: len(COMMON_COLUMNS)] == list(COMMON_COLUMNS)
        assert not [c for c in cols.values() if "Float" in c.type], f"{table}: money and times are never floats"
        TableWriter(table, columns[table], fields[table])  # raises for a column nothing fills
        for schema, names in fields[table].items():
            for f in names:
                assert f in cols or (f.endswith("_ns") and cols[f[:-3]].type.startswith(("DateTime64(9", "Nullable(DateTime64(9"))), (table, schema, f)
        for c in cols.values():
            if c.name in COMMON_COLUMNS or c.name in FILLED_BY_SERVER:
                continue
            lacking = [s for s, names in fields[table].items() if c.name not in names and f"{c.name}_ns" not in names]
            assert not lacking or c.nullable, f"{table}.{c.name} is not Nullable but {lacking} have no such field"
        assert "ReplacingMergeTree" in engines[table] and "ORDER BY (topic, partition, offset)" in engines[table], engines[table]
        assert "non_replicated_deduplication_window = 10000" in engines[table]
    for ts_col in ("exchange_ts", "recv_ts"):
        assert columns["md_trades"][[c.name for c in columns["md_trades"]].index(ts_col)].type == "DateTime64(9, 'UTC')"
    assert {c.name: c.type for c in columns["fills"]}["account"] == "LowCardinality(String)"
    assert {c.name: c.type for c in columns["fills"]}["price"] == "Int64"


def test_init_is_idempotent_and_records_migrations(tmp_path):
    first = cli("tape", "init", data=tmp_path)
    assert first.returncode == 0 and all(f"applied {m}" in first.stdout for m in ("0001_tape_tables", "0002_analytics_views",
                                                                               "0003_order_answers")), first.stderr
    second = cli("tape", "init", data=tmp_path)
    assert second.returncode == 0 and "up to date" in second.stdout, second.stderr
    views = {s.split()[4] for m in load_migrations() for s in m.statements if s.startswith("CREATE OR REPLACE VIEW")}  # a later one may replace
    with tape_at(tmp_path, init=False) as tape:
        assert scalar(tape, "SELECT count() FROM tape.schema_migrations") == len(load_migrations()) >= 3
        assert scalar(tape, "SELECT count() FROM system.tables WHERE database = 'tape' AND engine != 'View'") == len(TABLES) + 2
        assert scalar(tape, "SELECT count() FROM system.tables WHERE database = 'tape' AND engine = 'View'") == len(views) >= 18


# -- deduplication: token and engine ------------------------------------------------------------------------------


def test_three_identical_inserts_with_one_token_leave_one_copy_and_a_recut_batch_one_row_per_offset(tmp_path, serde):
    from connectors.clickhouse.tables import Row
    from streams.log import Record

    recs = [Record("fills", 0, i, T0 + i, b"acct", serde.encode("hftstream.fills.Fill", fill(serde, i)), lineage("orders.in", 0, i)) for i in range(10)]
    rows = [Row(r, serde.decode(r.value).value, "Fill") for r in recs]
    with tape_at(tmp_path) as tape:
        writer = TableWriter("fills", table_columns(tape.client)["fills"], schema_fields(serde.repo)["fills"])

        def insert(part: list, token: str) -> None:
            tape.client.insert("tape.fills", writer.columns_for(part), column_names=writer.column_names, column_oriented=True,
                               settings={"insert_deduplication_token": token})

        for _ in range(3):
            insert(rows, "fills-0-0-9")
        assert _exact(tape, "fills") == (10, 10, 10)
        # The same offsets cut differently (other tokens): physically there twice, one row per offset with FINAL and after a merge.
        insert(rows[:4], "fills-0-0-3")
        insert(rows[4:], "fills-0-4-9")
        assert _exact(tape, "fills") == (20, 10, 10)
        tape.client.command("OPTIMIZE TABLE tape.fills FINAL")
        assert _exact(tape, "fills") == (10, 10, 10)
        got = tape.client.query("SELECT offset, price, quantity, toUnixTimestamp64Nano(ts), src_topic, src_offset FROM tape.fills ORDER BY offset").result_rows
        assert got == [(i, 1_872_300 + i, 100 + i, T0 + i, "orders.in", i) for i in range(10)]


# -- every family, value for value ----------------------------------------------------------------------------------


def _norm(v):  # type: ignore[no-untyped-def]
    if isinstance(v, str):
        return v.encode()
    if isinstance(v, (list, tuple)):
        return [_norm(x) for x in v]
    if isinstance(v, dict):
        return [_norm(x) for x in v.values()]
    return v


def test_every_schema_lands_in_its_table_field_for_field(tmp_path, serde):
    log = open_log(f"embedded://{tmp_path / 'log'}")
    published: dict[str, list[tuple[str, dict]]] = {}
    for n, schema in enumerate(sorted(ROUTES)):
        values = [value_of(serde, schema, seed) for seed in range(n * 10, n * 10 + 4)]  # odd seeds: null branches
        topic = _topic_for(schema)
        log.create_topic(TopicSpec(topic, partitions=1))
        items = published.setdefault(topic, [])
        with log.producer() as p:
            for v in values:
                i = len(items)  # this record's offset
                p.produce(topic, serde.encode(schema, v), f"k{i}".encode(), timestamp_ns=T0 + i, headers=lineage("src.topic", 2, 70 + i))
                items.append((schema, v))
    with tape_at(tmp_path) as tape:
        sink = _sink(log, serde, tape)
        assert sink.counts.dead_letters == 0
        assert sink.counts.records == sum(len(v) for v in published.values())
        columns = table_columns(tape.client)
        for topic, items in published.items():
            for offset, (schema, value) in enumerate(items):
                table = ROUTES[schema]
                names = [c.name for c in columns[table] if c.name not in FILLED_BY_SERVER]
                result = tape.client.query(
                    f"SELECT * EXCEPT sunk_at FROM tape.{table} WHERE topic = {{t:String}} AND offset = {{o:Int64}}",
                    parameters={"t": topic, "o": offset}, query_formats={"DateTime64": "int", "String": "bytes"},
                )
                assert len(result.result_rows) == 1, (topic, offset)
                row = dict(zip(names, result.result_rows[0]))
                assert (row["partition"], row["log_ts"], row["log_key"], row["record_type"]) == (0, T0 + offset, f"k{offset}".encode(), schema.rsplit(".", 1)[1].encode())
                assert (row["src_topic"], row["src_partition"], row["src_offset"]) == (b"src.topic", 2, 70 + offset)
                for field, expected in value.items():
                    column = field if field in row else field[:-3]
                    assert _norm(row[column]) == _norm(expected), (table, schema, field, row[column], expected)
                for column in set(names) - set(COMMON_COLUMNS) - {f if f in row else f[:-3] for f in value}:
                    assert row[column] is None, (table, schema, column)
    log.close()


# -- position, restart, re-sink ----------------------------------------------------------------------------------


def test_restart_resumes_from_the_tables_and_a_resink_adds_nothing(tmp_path, serde):
    log = open_log(f"embedded://{tmp_path / 'log'}")
    publish_values(log, serde, "fills", "hftstream.fills.Fill", [fill(serde, i) for i in range(300)], partitions=3)
    with tape_at(tmp_path) as tape:
        first = _sink(log, serde, tape, batch=50)
        assert first.counts.records == 300 and first.counts.already_present == 0
    publish_values(log, serde, "fills", "hftstream.fills.Fill", [fill(serde, i) for i in range(300, 500)], partitions=3)
    with tape_at(tmp_path) as tape:
        second = _sink(log, serde, tape, batch=50)
        assert (second.counts.records, second.counts.already_present) == (200, 0), "resumed after the tape's position"
        again = _sink(log, serde, tape, batch=50)
        assert again.counts.records == 0
        resink = _sink(log, serde, tape, batch=7, from_offset=0)  # cut differently from the first run
        assert (resink.counts.records, resink.counts.already_present) == (500, 500)
        assert _exact(tape, "fills") == (500, 500, 500), "no FINAL needed: nothing was inserted twice"
        assert sorted(tape.client.query("SELECT price FROM tape.fills").result_rows) == [(1_872_300 + i,) for i in range(500)]
        ends = {p: log.watermarks("fills", p)[1] for p in range(3) if log.watermarks("fills", p)[1]}
        position = dict(tape.client.query("SELECT partition, max(last_offset) + 1 FROM tape.sink_batches GROUP BY partition").result_rows)
        assert position == ends
    log.close()


def test_bad_records_go_to_dead_letters_with_the_reason(tmp_path, serde):
    log = open_log(f"embedded://{tmp_path / 'log'}")
    log.create_topic(TopicSpec("fills", partitions=1, value_schema="hftstream.fills.Fill"))
    commit = value_of(serde, "hftstream.runtime.ScheduleMark", 1)  # a schema no table takes
    with log.producer() as p:
        for i in range(20):
            p.produce("fills", serde.encode("hftstream.fills.Fill", fill(serde, i, quantity=-5 if i == 13 else 100 + i)), b"k", timestamp_ns=T0 + i)
        p.produce("fills", b"\x00garbage", b"k", timestamp_ns=T0 + 20)  # offset 20: undecodable
        p.produce("fills", None, b"k", timestamp_ns=T0 + 21)  # 21: a tombstone
        p.produce("fills", serde.encode("hftstream.runtime.ScheduleMark", commit), b"k", timestamp_ns=T0 + 22)  # 22: no table
        p.produce("fills", serde.encode("hftstream.fills.Fill", fill(serde, 23)), b"k", timestamp_ns=T0 + 23)
    with tape_at(tmp_path) as tape:
        # An operator's rule on the table: the sink must dead-letter the row it refuses and insert the others.
        tape.client.command("ALTER TABLE tape.fills ADD CONSTRAINT positive_quantity CHECK quantity > 0")
        sink = _sink(log, serde, tape)
        assert sink.counts.dead_letters == 4 and sink.counts.rows["fills"] == 20
        dead = tape.client.query("SELECT offset, processor, reason_code, reason, source_offset, length(value) > 0 FROM tape.dead_letters ORDER BY offset").result_rows
        assert [(o, p, c, so) for o, p, c, _, so, _ in dead] == [
            (13, "tape", "INSERT_REFUSED", 13), (20, "tape", "DECODE_ERROR", 20), (21, "tape", "TOMBSTONE", 21), (22, "tape", "NO_TABLE", 22)]
        assert "positive_quantity" in dead[0][3] and "hftstream.runtime.ScheduleMark" in dead[3][3]
        assert scalar(tape, "SELECT groupArray(offset) FROM (SELECT offset FROM tape.fills ORDER BY offset)") == [i for i in range(24) if i not in (13, 20, 21, 22)]
        m = _scrape(sink)
        assert m["hftstream_sink_rows_inserted_total"] == {(("table", "fills"),): 20, (("table", "dead_letters"),): 4}
        assert m["hftstream_sink_dead_letters_total"] == {
            (("reason", r),): 1 for r in ("INSERT_REFUSED", "DECODE_ERROR", "TOMBSTONE", "NO_TABLE")}
        assert m["hftstream_sink_records_total"][()] == 24 and 1 <= m["hftstream_sink_batch_insert_seconds_count"][()] <= sink.counts.batches
        assert m["hftstream_sink_lag"] == {(("partition", "0"), ("topic", "fills")): 0}
        again = _sink(log, serde, tape, from_offset=0)
        assert again.counts.already_present == 24 and _exact(tape, "dead_letters") == (4, 4, 4)
        m = _scrape(again)
        assert m["hftstream_sink_already_present_total"][()] == 24 and m["hftstream_sink_records_total"][()] == 0
    log.close()


def test_a_clickhouse_refusing_inserts_pauses_the_sink_and_nothing_is_dropped(tmp_path, serde):
    """TOO_MANY_PARTS (the engine's own back-pressure) is retried with back-off: the sink stops reading, then resumes."""
    import threading

    log = open_log(f"embedded://{tmp_path / 'log'}")
    publish_values(log, serde, "fills", "hftstream.fills.Fill", [fill(serde, i) for i in range(400)], partitions=1)
    seen: dict[str, int] = {}
    with tape_at(tmp_path) as tape:
        tape.client.command("ALTER TABLE tape.fills MODIFY SETTING parts_to_throw_insert = 4, parts_to_delay_insert = 2, max_delay_to_insert = 1")
        sink = TapeSink(log, serde, tape, SinkOptions(until_idle=True, batch=20))

        def operator_relaxes_the_limit() -> None:
            time.sleep(3)
            seen.update(records=sink.counts.records, retries=sink.counts.retries)
            tape.client.command("ALTER TABLE tape.fills MODIFY SETTING parts_to_throw_insert = 100000, parts_to_delay_insert = 100000")

        relax = threading.Thread(target=operator_relaxes_the_limit)
        relax.start()
        sink.run()
        relax.join()
        assert seen["retries"] > 0 and seen["records"] < 400, f"the sink was paused, not done: {seen}"
        assert sink.counts.records == 400 and sink.counts.rows == {"fills": 400} and sink.counts.dead_letters == 0
        assert _exact(tape, "fills") == (400, 400, 400)
        m = _scrape(sink)
        assert m["hftstream_sink_insert_retries_total"][()] == sink.counts.retries and m["hftstream_sink_lag"] == {(("partition", "0"), ("topic", "fills")): 0}
    log.close()


def _scrape(sink: TapeSink) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """The sink's Prometheus series as Prometheus reads them: ``{sample: {sorted labels: value}}``."""
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(generate_latest(sink.metrics.registry).decode()):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


# -- crashes ---------------------------------------------------------------------------------------------------------


def _market(serde: Serde, n: int) -> list[tuple[str, dict]]:
    kinds = ["hftstream.md.Trade", "hftstream.md.Quote", "hftstream.md.BookDelta", "hftstream.md.VenueStatus", "hftstream.md.Heartbeat"]
    return [(kinds[i % 5], value_of(serde, kinds[i % 5], i, **({"symbol": f"S{i % 7}"} if i % 5 != 4 else {}))) for i in range(n)]


def _publish_market(log, serde, n: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    log.create_topic(TopicSpec("md.normalized", partitions=4))
    expected: dict[str, int] = {}
    with log.producer() as p:
        for i, (schema, v) in enumerate(_market(serde, n)):
            p.produce("md.normalized", serde.encode(schema, v), f"S{i % 7}".encode(), timestamp_ns=T0 + i, headers=lineage("md.raw.alpha", i % 4, i))
            expected[ROUTES[schema]] = expected.get(ROUTES[schema], 0) + 1
    return expected


def _assert_exact(tmp_path: Path, expected: dict[str, int]) -> None:
    with tape_at(tmp_path, init=False) as tape:
        for table, n in expected.items():
            assert _exact(tape, table) == (n, n, n), table
        assert scalar(tape, "SELECT count() FROM tape.dead_letters") == 0


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["tape-after-insert:7", "tape-before-progress:5"])
def test_a_kill_between_a_batch_inserts_and_its_position_is_harmless(tmp_path, serde, fault):
    with open_log(f"embedded://{tmp_path / 'log'}") as log:
        expected = _publish_market(log, serde, 2000)
    assert cli("tape", "init", data=tmp_path).returncode == 0
    killed = cli("tape", "sink", "--until-idle", "--batch", "100", data=tmp_path, env={"HFTSTREAM_FAULT": fault})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    with tape_at(tmp_path, init=False) as tape:
        partial = scalar(tape, "SELECT count() FROM tape.sink_batches")
        rows = sum(_exact(tape, t)[0] for t in expected)
    assert rows > 0 and rows < 2000, "the kill landed mid-run, after some rows were inserted"
    assert partial * 100 < rows or fault.startswith("tape-after"), "rows past the recorded position exist"
    done = cli("tape", "sink", "--until-idle", "--batch", "100", "--json", data=tmp_path)
    assert done.returncode == 0, done.stderr
    counts = json.loads(done.stdout)
    assert counts["already_present"] > 0, "the rerun found the rows the killed run inserted past its position"
    _assert_exact(tmp_path, expected)


@pytest.mark.slow
def test_random_sigkills_leave_the_tape_exact(tmp_path, serde):
    with open_log(f"embedded://{tmp_path / 'log'}") as log:
        expected = _publish_market(log, serde, 6000)
    assert cli("tape", "init", data=tmp_path).returncode == 0
    rng = random.Random(8)
    env = {**os.environ}
    kills = 0
    for _ in range(6):
        proc = subprocess.Popen([HFTSTREAM, "tape", "sink", "--until-idle", "--batch", "40", "--data", str(tmp_path)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=tmp_path)
        time.sleep(rng.uniform(1.0, 2.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=30)
    assert kills >= 3, "most runs were killed mid-way"
    done = cli("tape", "sink", "--until-idle", "--batch", "40", data=tmp_path)
    assert done.returncode == 0, done.stderr
    _assert_exact(tmp_path, expected)


# -- Kafka -----------------------------------------------------------------------------------------------------------


@pytest.mark.kafka
def test_sink_from_kafka_reads_committed_only(tmp_path, serde, kafka_bootstrap, unique_name):
    topic = unique_name("fills")
    url = f"kafka://{kafka_bootstrap}"
    with open_log(url) as log:
        publish_values(log, serde, topic, "hftstream.fills.Fill", [fill(serde, i) for i in range(400)], partitions=3)
        txn = log.transactional_producer(unique_name("tx"))
        txn.begin()
        for i in range(50):
            txn.produce(topic, serde.encode("hftstream.fills.Fill", fill(serde, 10_000 + i)), b"acct-x")
        txn.abort()
        publish_values(log, serde, topic, "hftstream.fills.Fill", [fill(serde, i) for i in range(400, 500)], partitions=3)
        txn.close()
    try:
        assert cli("tape", "init", data=tmp_path).returncode == 0
        first = cli("tape", "sink", "--topics", topic, "--until-idle", "--batch", "64", "--json", data=tmp_path, log=url)
        assert first.returncode == 0, first.stderr
        assert json.loads(first.stdout)["rows"] == {"fills": 500}
        again = cli("tape", "sink", "--topics", topic, "--until-idle", "--json", data=tmp_path, log=url)
        assert again.returncode == 0 and json.loads(again.stdout)["records"] == 0, again.stdout + again.stderr
        with tape_at(tmp_path, init=False) as tape:
            assert _exact(tape, "fills") == (500, 500, 500)
            assert scalar(tape, "SELECT countIf(quantity >= 10100) FROM tape.fills") == 0, "aborted records stayed out"
            assert sorted(r[0] for r in tape.client.query("SELECT price - 1872300 FROM tape.fills").result_rows) == list(range(500))
    finally:
        with open_log(url) as log:
            log.delete_topic(topic)


# -- one process per chDB directory ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_running_sink_holds_the_tape_and_other_commands_say_who(tmp_path, serde):
    with open_log(f"embedded://{tmp_path / 'log'}") as log:
        publish_values(log, serde, "fills", "hftstream.fills.Fill", [fill(serde, i) for i in range(100)])
    assert cli("tape", "init", data=tmp_path).returncode == 0
    sink = subprocess.Popen([HFTSTREAM, "tape", "sink", "--data", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=tmp_path)
    try:
        lock = tmp_path / "tape.lock"
        deadline = time.monotonic() + 30
        while not (lock.exists() and f'"pid": {sink.pid}' in lock.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        blocked = cli("tape", "query", "SELECT count() FROM tape.fills", data=tmp_path)
        assert blocked.returncode == 2, blocked.stdout + blocked.stderr
        assert blocked.stderr.startswith("error: ") and f"process {sink.pid}" in blocked.stderr and "tape sink" in blocked.stderr
        assert f"kill -TERM {sink.pid}" in blocked.stderr and "hint: " in blocked.stderr and "Traceback" not in blocked.stderr
    finally:
        sink.send_signal(signal.SIGTERM)
        out, err = sink.communicate(timeout=30)
    assert sink.returncode == 0, err
    after = cli("tape", "query", "SELECT count() FROM tape.fills", "--format", "csv", data=tmp_path)
    assert after.returncode == 0 and after.stdout == "count()\n100\n", after.stdout + after.stderr


def test_query_formats(tmp_path, serde):
    with open_log(f"embedded://{tmp_path / 'log'}") as log:
        publish_values(log, serde, "fills", "hftstream.fills.Fill", [fill(serde, i) for i in range(3)])
    assert cli("tape", "init", data=tmp_path).returncode == 0
    assert cli("tape", "sink", "--until-idle", data=tmp_path).returncode == 0
    sql = "SELECT offset, account, price, ts FROM tape.fills ORDER BY offset"
    rows = [json.loads(line) for line in cli("tape", "query", sql, "--format", "json", data=tmp_path).stdout.splitlines()]
    assert rows[1] == {"offset": 1, "account": "acct-1", "price": 1_872_301, "ts": "2026-01-02T14:30:00.000000001Z"}
    text = cli("tape", "query", sql, data=tmp_path).stdout.splitlines()
    assert text[0].split() == ["offset", "account", "price", "ts"] and text[3].split()[:3] == ["2", "acct-2", "1872302"]
    bad = cli("tape", "query", "SELECT nope FROM tape.fills", data=tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("error: the query failed") and "hint: " in bad.stderr
