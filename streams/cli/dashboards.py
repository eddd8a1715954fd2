"""``hftstream dashboards``: the Grafana dashboards over the tape (dashboards/*.json), checked against the tape itself."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from streams.cli.common import fail, state, table

app = typer.Typer(no_args_is_help=True)


@app.command("check")
def check_cmd(
    ctx: typer.Context,
    folder: Path = typer.Option(None, "--dir", file_okay=False, help="Folder of dashboard JSON files. Default: the repo's dashboards/."),
    from_ts: str = typer.Option(None, "--from", help="Start of the time range: ISO-8601 (UTC) or integer ns. Default: the tape's first record."),
    to_ts: str = typer.Option(None, "--to", help="End of the time range. Default: the tape's last record."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per panel: dashboard, panel, rows, error."),
) -> None:
    """Run every panel's SQL of every dashboard against the tape, with Grafana's macros and variables expanded.

    $__timeFilter, $__fromTime/$__toTime, $__timeInterval, $__interval_s, ... are expanded for the time range as the
    grafana-clickhouse-datasource plugin does; a template variable takes its current value, or a query variable its
    first row. Exit 1 when a panel's query fails, a panel has no query, or a query returns no rows (listed); 0 otherwise.

    Examples:

      hftstream dashboards check                      # the tape in ./hftstream-data/tape, its whole time range

      hftstream dashboards check --data /tmp/demo --json

      hftstream dashboards check --clickhouse http://127.0.0.1:8123 --from 2026-11-22T09:00:00Z --to 2026-11-22T10:00:00Z
    """
    from connectors.clickhouse.client import open_tape
    from connectors.clickhouse.dashboards import DASHBOARDS_DIR, TimeRange, check, load_dashboards, tape_span
    from connectors.clickhouse.ddl import pending
    from streams.timeutil import parse_time_ns

    dashboards = load_dashboards(folder or DASHBOARDS_DIR)
    try:
        given = (parse_time_ns(from_ts) if from_ts else None, parse_time_ns(to_ts) if to_ts else None)
    except ValueError as exc:
        fail(str(exc), hint="e.g. --from 2026-11-22T09:00:00Z or integer ns since the epoch")
    with open_tape(state(ctx).settings.tape_url) as tape:
        if pending(tape.client):
            fail("the tape is not initialised (migrations not applied)", hint="run `hftstream tape init` (same --data / --clickhouse)")
        span = tape_span(tape.client)
        lo = given[0] if given[0] is not None else (span.from_ns if span else None)
        hi = given[1] if given[1] is not None else (span.to_ns if span else None)
        if lo is None or hi is None:
            fail("the tape is empty and no --from/--to was given", hint="sink something first (`hftstream tape sink --until-idle`) or run `hftstream demo`")
        if hi < lo:
            fail("--to is before --from", hint="give a range that starts before it ends")
        results = check(tape.client, dashboards, TimeRange(lo, hi))
    failed = [r for r in results if not r.ok]
    if as_json:
        for r in results:
            typer.echo(json.dumps({"dashboard": r.dashboard, "panel": r.panel, "rows": r.rows, "error": r.error}))
    else:
        typer.echo(table(["dashboard", "panel", "rows", "status"],
                         [[r.dashboard, r.panel, r.rows, "ok" if r.ok else f"FAILED: {r.error}"] for r in results]))
    typer.echo(f"{len(results) - len(failed)} of {len(results)} panels returned rows", err=True)
    if failed:
        typer.secho(f"{len(failed)} panel(s) failed: " + "; ".join(f"{r.dashboard} / {r.panel}: {r.error}" for r in failed),
                    fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
