"""The tape sink: fills/s from the embedded log into chDB, against a raw clickhouse-connect column insert of the same rows.

The subject is :class:`~connectors.clickhouse.sink.TapeSink` end to end (read the log, decode Avro, route,
build columns, insert with deduplication tokens, record the position). The limit is the bare insert the
sink cannot avoid: the same rows, already decoded and laid out as columns (built before the clock starts),
inserted with ``client.insert(..., column_oriented=True)`` in batches of the same size into an identical
table, in the same run and the same chDB engine.

    .venv/bin/python tests/benchmarks/bench_tape.py [--quick]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/ (tape_support)

from connectors.clickhouse.client import open_tape  # noqa: E402
from connectors.clickhouse.ddl import migrate  # noqa: E402
from connectors.clickhouse.sink import SinkOptions, TapeSink  # noqa: E402
from connectors.clickhouse.tables import Row, TableWriter, schema_fields, table_columns  # noqa: E402
from streams.config import tape_url_for  # noqa: E402
from streams.log import TopicSpec, open_log  # noqa: E402
from streams.serde import Serde  # noqa: E402
from tape_support import T0, fill, lineage  # noqa: E402

TARGET_RATIO = 0.6
TARGET_RATE = 300_000  # fills/s (issue 8)
BATCH = 50_000


def run(quick: bool = False) -> list[dict]:
    n = 60_000 if quick else 400_000
    serde = Serde.from_settings()
    with tempfile.TemporaryDirectory(prefix="bench-tape-") as tmp:
        data = Path(tmp)
        log = open_log(f"embedded://{data / 'log'}")
        log.create_topic(TopicSpec("fills", partitions=8, key="account", value_schema="hftstream.fills.Fill"))
        values = [fill(serde, i, account=f"acct-{i % 64}", venue=f"VENUE{i % 4}") for i in range(n)]  # 4 venues, as in a real tape
        encoded = serde.encode_many("hftstream.fills.Fill", values)
        with log.producer() as p:
            for i, (v, b) in enumerate(zip(values, encoded)):
                p.produce("fills", b, v["account"].encode(), timestamp_ns=T0 + i, headers=lineage("orders.in", i % 8, i))
        del values, encoded
        tape = open_tape(tape_url_for(data), create=True)
        try:
            migrate(tape.client)
            tape.client.command("CREATE DATABASE IF NOT EXISTS bench")
            tape.client.command("CREATE TABLE bench.fills AS tape.fills")
            sink = TapeSink(log, serde, tape, SinkOptions(until_idle=True, batch=BATCH))
            t0 = time.perf_counter()
            sink.run()
            sink_s = time.perf_counter() - t0
            assert sink.counts.rows == {"fills": n}, sink.counts.rows
            # The limit: the same rows, decoded and laid out before the clock starts.
            writer = TableWriter("fills", table_columns(tape.client)["fills"], schema_fields(serde.repo)["fills"])
            batches = []
            for p in range(8):
                recs = list(log.reader([("fills", p, 0)]))
                for i in range(0, len(recs), BATCH):
                    chunk = recs[i : i + BATCH]
                    batches.append(writer.columns_for([Row(r, serde.decode(r.value).value, "Fill") for r in chunk]))
            t0 = time.perf_counter()
            for cols in batches:
                tape.client.insert("bench.fills", cols, column_names=writer.column_names, column_oriented=True)
            raw_s = time.perf_counter() - t0
            assert tape.client.query("SELECT count() FROM bench.fills").result_rows[0][0] == n
        finally:
            tape.close()
            log.close()
    return [{
        "name": "tape sink (fills, embedded log -> chDB)", "subject": "TapeSink", "subject_rate": n / sink_s,
        "limit": "raw clickhouse-connect column insert", "limit_rate": n / raw_s, "unit": "rows/s", "target": TARGET_RATIO,
        "note": f"{n:,} fills, 8 partitions, batch {BATCH:,}; absolute target {TARGET_RATE:,} rows/s "
                f"({'met' if n / sink_s >= TARGET_RATE else 'NOT met'})",
    }]


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        ratio = row["subject_rate"] / row["limit_rate"]
        print(f"{row['name']}: {row['subject_rate']:,.0f} {row['unit']}; {row['limit']}: {row['limit_rate']:,.0f} {row['unit']}; "
              f"ratio {ratio:.2f}; {row['note']}")
