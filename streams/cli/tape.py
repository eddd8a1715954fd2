"""``hftstream tape``: the ClickHouse tape -- create its tables, sink the log into it exactly once, query it.

The tape is chDB (the embedded ClickHouse engine) in ``DATA/tape`` unless ``--clickhouse URL``
(``HFTSTREAM_CLICKHOUSE_URL``) names a ClickHouse server. chDB lets one process at a time open
a tape directory: while a sink runs, the other tape commands say which process has it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import signal
import threading
import time
from decimal import Decimal
from enum import Enum
from typing import Any

import typer

from streams.cli.common import fail, state, table

app = typer.Typer(no_args_is_help=True)


class QueryFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


@app.command("init")
def init_cmd(ctx: typer.Context) -> None:
    """Create the tape's database and tables (infra/clickhouse/migrations), or bring them up to date.

    Idempotent: applies only the migrations not yet recorded in tape.schema_migrations; schema changes are new migrations, never drops. Prints what it applied.

    Examples:

      hftstream tape init

      hftstream tape init --data /srv/hftstream

      hftstream tape init --clickhouse http://127.0.0.1:8123
    """
    from connectors.clickhouse.client import open_tape
    from connectors.clickhouse.ddl import load_migrations, migrate

    url = state(ctx).settings.tape_url
    with open_tape(url, create=True) as tape:
        applied = migrate(tape.client)
    if applied:
        for mig in applied:
            typer.echo(f"applied {mig.version:04d}_{mig.name} ({len(mig.statements)} statements)")
    else:
        typer.echo(f"up to date ({len(load_migrations())} migration(s) already applied)")
    typer.echo(f"tape: {tape.url.display}", err=True)


@app.command("sink")
def sink_cmd(
    ctx: typer.Context,
    topics: list[str] = typer.Option(None, "--topics", "-t", help="Topics to sink (repeat the option, or comma-separate). Default: every topic on the log that infra/topics.yaml declares and whose schemas have a tape table (state.* included: commit manifests give append times; undeclared copies made by `replay --into --create-target` left out)."),
    from_offset: int = typer.Option(None, "--from-offset", min=0, help="Start every partition here instead of at the tape's position (re-sink a range: records already on the tape are not inserted again)."),
    until_idle: bool = typer.Option(False, "--until-idle", help="Exit 0 once every partition is on the tape."),
    batch: int = typer.Option(10_000, "--batch", min=1, max=1_000_000, help="Most records per insert; batches are windows of this many offsets per partition, so re-runs cut the same batches."),
    linger_ms: int = typer.Option(1000, "--linger-ms", min=0, help="Insert a partition's batch at the latest this long after its first record arrived (live tail)."),
    as_json: bool = typer.Option(False, "--json", help="Print the counts as JSON."),
    metrics_port: int = typer.Option(
        0, "--metrics-port", min=0, max=65535, help="Serve Prometheus /metrics on this port (0: off; infra/prometheus/prometheus.yml scrapes 9465)."
    ),
) -> None:
    """Sink the log into the tape, exactly once: every record one row, in its table or in dead_letters.

    A consumer of its own (read_committed) on the embedded log or Kafka; its position lives in the tape (tape.sink_batches), so a restart, a crash at any instant or a re-sink never doubles or loses a row. A slow ClickHouse pauses the sink; it never drops. SIGTERM / Ctrl-C finish the batch in flight and exit 0.

    Examples:

      hftstream tape sink --until-idle

      hftstream tape sink --topics fills,ledger.entries --log kafka://127.0.0.1:9092

      hftstream tape sink --topics md.normalized --from-offset 0 --until-idle

      hftstream tape sink --metrics-port 9465       # rows per table, insert seconds, lag per partition
    """
    from connectors.clickhouse.client import open_tape
    from connectors.clickhouse.metrics import SinkMetrics
    from connectors.clickhouse.sink import SinkOptions, TapeSink, sink_topics
    from streams.runtime.metrics import serve_metrics

    st = state(ctx)
    names = [t.strip() for item in (topics or []) for t in item.split(",") if t.strip()] or None
    log, serde = st.log(), st.serde()
    sink_topics(log, names)  # an unknown topic is the first thing to say, before the tape is looked at
    with open_tape(st.settings.tape_url) as tape:
        metrics = SinkMetrics()
        options = SinkOptions(topics=names, from_offset=from_offset, batch=batch, linger_ms=linger_ms, until_idle=until_idle)
        sink = TapeSink(log, serde, tape, options, metrics)
        if not sink.topics:
            fail("no topic to sink: the log has none whose schemas have a tape table",
                 hint="publish something first (e.g. `hftstream feed simulate` then `hftstream run normalize --until-idle`), or name --topics")
        if metrics_port:
            serve_metrics(metrics_port, metrics.registry)
            typer.echo(f"metrics: http://127.0.0.1:{metrics_port}/metrics", err=True)
        stop = _stop_on_signals()
        from connectors.clickhouse.sink import declared_topic

        for t in sink.topics:
            if not declared_topic(t):
                typer.secho(f"warning: {t} is not declared in infra/topics.yaml (a replay --into copy?): its records go "
                            "into the same tables as the originals and count twice in every view", fg="yellow", err=True)
        typer.echo(f"sinking {len(sink.topics)} topic(s) from {st.settings.log} into {tape.url.display}", err=True)
        t0 = time.monotonic()
        counts = sink.run(stop)
        elapsed = time.monotonic() - t0
    if as_json:
        typer.echo(json.dumps({**counts.as_dict(), "elapsed_s": round(elapsed, 3)}, sort_keys=True))
        return
    rows: list[list[Any]] = [[t, n] for t, n in sorted(counts.rows.items())]
    rows.append(["dead letters (sink)", counts.dead_letters])
    typer.echo(table(["table", "rows"], rows))
    rate = counts.records / elapsed if elapsed > 0 else 0.0
    typer.echo(f"{counts.records:,} records in {counts.batches} batches, {elapsed:.2f} s ({rate:,.0f} records/s); "
               f"{counts.already_present} already on the tape", err=True)


@app.command("query")
def query_cmd(
    ctx: typer.Context,
    sql: str = typer.Argument(..., help="The SQL (tables are in database tape, e.g. tape.fills)."),
    fmt: QueryFormat = typer.Option(QueryFormat.table, "--format", "-f", help="table: aligned text; json: one JSON object per row; csv: a header row, then the rows."),
) -> None:
    """Run SQL on the tape and print the result.

    Money columns are scaled integers (see tape.instruments price_scale / size_scale); times are UTC.

    Examples:

      hftstream tape query "SELECT symbol, count() FROM tape.md_trades GROUP BY symbol"

      hftstream tape query "SELECT * FROM tape.dead_letters LIMIT 5" --format json

      hftstream tape query "SELECT topic, count() FROM tape.md_quotes GROUP BY topic" --format csv
    """
    from clickhouse_connect.driver.exceptions import ClickHouseError

    from connectors.clickhouse.client import open_tape

    if not sql.strip():
        fail("the SQL is empty", hint='give a query, e.g. hftstream tape query "SELECT count() FROM tape.fills"')
    with open_tape(state(ctx).settings.tape_url) as tape:
        try:
            result = tape.client.query(sql, query_formats={"DateTime64": "int"})  # keep the ns; formatted below
        except ClickHouseError as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            fail(f"the query failed: {message}",
                 hint="check the SQL; `hftstream tape query \"SHOW TABLES FROM tape\"` lists the tables (run `hftstream tape init` if there are none)")
        names = list(result.column_names)
        scales = [getattr(t, "scale", None) if type(t).__name__ == "DateTime64" else None for t in result.column_types]
        rows = [[_plain(v) if s is None else _ticks_iso(v, s) for v, s in zip(row, scales)] for row in result.result_rows]
    if names or fmt is not QueryFormat.table:
        _emit(names, rows, fmt)
    if names and fmt is QueryFormat.table:
        typer.echo(f"{len(rows)} row(s)", err=True)


@app.command("report")
def report_cmd(
    ctx: typer.Context,
    out: str = typer.Option("report.html", "--out", "-o", help="Where to write the HTML page."),
    from_ts: str = typer.Option(None, "--from", help="Start of the range, ISO-8601 UTC (e.g. 2026-11-22T00:00:00Z); default: the start of the tape."),
    to_ts: str = typer.Option(None, "--to", help="End of the range (exclusive), ISO-8601 UTC; default: the end of the tape."),
    symbol: str = typer.Option(None, "--symbol", "-s", help="Symbol of the candle and spread charts; default: the most traded in the range."),
) -> None:
    """Write a self-contained HTML report of the tape: candles and volume, spread, rejects, PnL, latency, dead letters.

    One file with inline SVG charts: no scripts, nothing fetched, so it opens offline in any browser. Reads the analytics views (migration 0002; `hftstream tape init` applies it). Empty sections say "no data".

    Examples:

      hftstream tape report --out report.html

      hftstream tape report --symbol AAPL --from 2026-11-22T00:00:00Z --to 2026-11-22T01:00:00Z
    """
    from pathlib import Path

    from connectors.clickhouse.analytics import require_symbol
    from connectors.clickhouse.client import open_tape
    from connectors.clickhouse.ddl import pending
    from connectors.clickhouse.report import ReportParams, build_report
    from connectors.clickhouse.report.queries import Window

    window = Window(_ns_arg(from_ts, "--from"), _ns_arg(to_ts, "--to"))
    _check_range(window.start_ns, window.end_ns, from_ts, to_ts)
    path = Path(out)
    if not path.parent.is_dir():
        fail(f"cannot write {path}: the folder {path.parent} does not exist", hint="create it, or choose another --out path")
    with open_tape(state(ctx).settings.tape_url) as tape:
        missing = pending(tape.client)
        if missing:
            fail(f"the tape at {tape.url.display} is not initialised ({len(missing)} migration(s) not applied, the report reads their views)",
                 hint="run `hftstream tape init` first (same --data / --clickhouse)")
        if symbol is not None:
            require_symbol(tape.client, symbol)  # as `tape bars` does: an error naming the known symbols, not an empty chart
        page = build_report(tape.client, ReportParams(tape.url.display, window, symbol)).encode("utf-8")
    try:
        path.write_bytes(page)
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror}", hint="choose a writable --out path")
    typer.echo(f"wrote {path} ({len(page):,} bytes)")


class BarSource(str, Enum):
    venue = "venue"
    internal = "internal"


@app.command("bars")
def bars_cmd(
    ctx: typer.Context,
    symbol: str = typer.Option(..., "--symbol", "-s", help="The instrument, e.g. AAPL."),
    interval: str = typer.Option("1m", "--interval", "-i", help="Bar length: 1s or 1m."),
    from_ts: str = typer.Option(None, "--from", help="First bucket (inclusive): ISO-8601 UTC (2026-01-02T14:30:00Z) or integer ns."),
    to_ts: str = typer.Option(None, "--to", help="End (exclusive): ISO-8601 UTC or integer ns."),
    source: BarSource = typer.Option(None, "--source", help="venue: trades from md.normalized; internal: our matching engine's (md.book). Default: both, apart."),
    venue: str = typer.Option(None, "--venue", help="Only this venue's trades."),
    fmt: QueryFormat = typer.Option(QueryFormat.table, "--format", "-f", help="table, json (one object per bar) or csv."),
) -> None:
    """OHLCV bars of one symbol from the tape (views tape.ohlcv_1s / tape.ohlcv_1m), prices as decimals at the instrument's scale.

    Examples:

      hftstream tape bars --symbol AAPL --interval 1m

      hftstream tape bars --symbol AAPL --interval 1s --source internal --from 2026-01-02T14:30:00Z --to 2026-01-02T14:31:00Z

      hftstream tape bars --symbol AAPL --format csv
    """
    from connectors.clickhouse.analytics import INTERVALS, bars
    from connectors.clickhouse.client import open_tape

    if interval not in INTERVALS:
        fail(f"unknown interval {interval!r}", hint=f"use one of {', '.join(INTERVALS)}")
    lo, hi = _ns_arg(from_ts, "--from"), _ns_arg(to_ts, "--to")
    _check_range(lo, hi, from_ts, to_ts)
    with open_tape(state(ctx).settings.tape_url) as tape:
        result = bars(tape.client, symbol, interval, source=source.value if source else None, venue=venue, from_ns=lo, to_ns=hi)
    rows = [[_ticks_iso(r[0], 9), *[_plain(v) for v in r[1:]]] for r in result.rows]
    _emit(result.columns, rows, fmt)
    if fmt is QueryFormat.table:
        typer.echo(f"{len(rows)} bar(s)", err=True)


@app.command("trace")
def trace_cmd(
    ctx: typer.Context,
    topic: str = typer.Option(..., "--topic", "-t", help="Topic of the record to start from, e.g. orders.in."),
    partition: int = typer.Option(..., "--partition", "-p", min=0, help="Its partition."),
    offset: int = typer.Option(..., "--offset", "-o", min=0, help="Its offset."),
    fmt: QueryFormat = typer.Option(QueryFormat.table, "--format", "-f", help="table: an indented tree; json: the tree as one object; csv: one row per record with its depth."),
) -> None:
    """A record on the tape and everything it caused downstream, by lineage (src_topic/src_partition/src_offset).

    E.g. an order: its risk decision, the accepted command, the order events, fills, ledger entries and positions.

    Examples:

      hftstream tape trace --topic orders.in --partition 0 --offset 42

      hftstream tape trace -t orders.in -p 1 -o 7 --format json
    """
    from connectors.clickhouse.analytics import trace
    from connectors.clickhouse.client import open_tape

    with open_tape(state(ctx).settings.tape_url) as tape:
        root, cut = trace(tape.client, topic, partition, offset)
    if fmt is QueryFormat.json:
        typer.echo(json.dumps(root.as_dict()))
    else:
        rows = [[depth, n.record_type, n.topic, n.partition, n.offset, _ticks_iso(n.log_ts, 9), n.table] for depth, n in root.walk()]
        if fmt is QueryFormat.csv:
            _emit(["depth", "record_type", "topic", "partition", "offset", "log_ts", "table"], rows, fmt)
        else:
            for depth, rtype, t, p, o, ts, _ in rows:
                typer.echo(f"{'  ' * depth}{rtype} {t}/{p}/{o} at {ts}")
            typer.echo(f"{len(rows)} record(s)", err=True)
    if cut:
        typer.echo("warning: the trace was cut at its limit of records", err=True)


def _emit(names: list[str], rows: list[list[Any]], fmt: QueryFormat) -> None:
    if fmt is QueryFormat.json:
        for row in rows:
            typer.echo(json.dumps(dict(zip(names, row)), default=str))
    elif fmt is QueryFormat.csv:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(names)
        writer.writerows(rows)
        typer.echo(buf.getvalue(), nl=False)
    else:
        typer.echo(table(names, rows))


def _ns_arg(text: str | None, option: str) -> int | None:
    """``--from``/``--to``: integer ns, or ISO-8601 (UTC unless it names a zone; all 9 fraction digits kept) as ns."""
    from streams.timeutil import parse_time_ns

    if text is None:
        return None
    if len(text.strip()) == 10 and text.strip()[4] == "-":  # a date: its midnight UTC
        text = text.strip() + "T00:00:00Z"
    try:
        return parse_time_ns(text)
    except ValueError:
        fail(f"{option} {text!r} is not a time (not an ISO-8601 time or integer ns)",
             hint=f"give ISO-8601 UTC, e.g. {option} 2026-01-02T14:30:00Z, or integer ns since the epoch")


def _check_range(lo: int | None, hi: int | None, from_ts: str | None, to_ts: str | None) -> None:
    if lo is not None and hi is not None and lo >= hi:
        fail(f"--from {from_ts} is not before --to {to_ts}", hint="give a range whose start is before its end (--to is exclusive)")


def _ticks_iso(ticks: int | None, scale: int) -> str | None:
    """A DateTime64 value read as integer ticks, as ISO-8601 UTC with all ``scale`` digits (ns survive)."""
    if ticks is None:
        return None
    seconds, frac = divmod(ticks, 10**scale)
    text = dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{frac:0{scale}d}Z" if scale else f"{text}Z"


def _plain(v: Any) -> Any:
    """A value as JSON/CSV/text can show it: times in ISO-8601 UTC, bytes as text (escaped when not UTF-8)."""
    if isinstance(v, dt.datetime):
        return (v if v.tzinfo else v.replace(tzinfo=dt.timezone.utc)).isoformat().replace("+00:00", "Z")
    if isinstance(v, (dt.date, Decimal)):
        return str(v)
    if isinstance(v, bytes):
        return v.decode("utf-8", "backslashreplace")
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        typer.echo(f"{signal.Signals(signum).name}: inserting the batches in flight, then exiting...", err=True)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop
