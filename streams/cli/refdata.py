"""``hftstream refdata``: load instrument reference data from a file onto refdata.instruments, and list it.

Thin: :mod:`connectors.venues.refdata_file` reads and validates the file and publishes it;
:func:`connectors.venues.file_feed.load_refdata` reads the topic back.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from streams.cli.common import state, table
from streams.errors import ConfigError

app = typer.Typer(no_args_is_help=True)

_FORMAT_HELP = (
    "File format: YAML or JSON (a list of instruments, or {instruments: [...]}) or CSV (header row). Fields: symbol, instrument_id, "
    "price_scale, tick_size (required); size_scale (0), lot_size (1), currency (USD), status (ACTIVE). tick_size and lot_size are in "
    "human units (\"0.01\"), with at most price_scale / size_scale decimals."
)


@app.command("load", help=f"""Validate the instruments in FILE and publish them to refdata.instruments (keyed by symbol; a symbol
already there gets the new version).

{_FORMAT_HELP} Every problem of the file is listed at once (entry, field, what is wrong) and nothing is published while
there is one; integer instrument ids already used by another symbol are refused too.

--effective sets when the new versions take effect (the records' timestamps): the default, the epoch, makes them
apply before any market data, whatever the feed's timestamps (what a first load needs); pass --effective now, or a time,
to change an instrument from a point in the feed on.

Example: hftstream refdata load instruments.yaml && hftstream refdata list""")
def load_cmd(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="Instruments file: .yaml/.yml/.json or .csv."),
    effective: str = typer.Option("epoch", "--effective", help="When the versions take effect: 'epoch' (before all market data), 'now', ISO-8601 or integer ns."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate the file and show the instruments; publish nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the instruments as a JSON array of refdata.Instrument values."),
) -> None:
    from connectors.venues.file_feed import load_refdata
    from connectors.venues.refdata_file import check_against, publish_instruments, read_instruments

    effective_ns = _effective_ns(effective)
    st = state(ctx)
    log = st.log()
    instruments = read_instruments(path)
    check_against(instruments, load_refdata(log, st.serde()))
    if not dry_run:
        publish_instruments(log, st.serde(), instruments, effective_ns)
    _print([inst.to_record(effective_ns) for inst in instruments], as_json)
    verb = "would publish" if dry_run else "published"
    typer.echo(f"{verb} {len(instruments)} instrument(s) from {path.name} to refdata.instruments", err=True)


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    symbol: list[str] = typer.Option(None, "--symbol", "-s", help="Only these symbols (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array of refdata.Instrument values (scaled integers) instead of a table."),
) -> None:
    """List the instruments on refdata.instruments (the latest version of each symbol), with tick and lot in human units.

    Example: hftstream refdata list --json
    """
    from connectors.venues.file_feed import load_refdata

    st = state(ctx)
    ref = load_refdata(st.log(), st.serde())
    rows = [inst.to_record(0) for inst in sorted(ref, key=lambda i: i.symbol) if not symbol or inst.symbol in symbol]
    for row in rows:
        row.pop("updated_ts_ns")  # load_refdata keeps the values, not when they took effect
    if symbol and not rows:
        raise ConfigError(f"no instrument {', '.join(symbol)} in refdata.instruments",
                          hint="`hftstream refdata list` shows them all; add instruments with `hftstream refdata load FILE`")
    _print(rows, as_json)
    if not rows:
        typer.secho("warning: refdata.instruments is empty; normalization dead-letters every market-data message as UNKNOWN_SYMBOL "
                    "until it holds the instruments: `hftstream refdata load FILE`", fg=typer.colors.YELLOW, err=True)


def _print(rows: list[dict], as_json: bool) -> None:
    from connectors.venues.scaled import format_decimal

    if as_json:
        typer.echo(json.dumps(rows, sort_keys=True))
        return
    headers = ["SYMBOL", "ID", "PRICE_SCALE", "TICK", "SIZE_SCALE", "LOT", "CCY", "STATUS"]
    typer.echo(table(headers, [[r["symbol"], r["instrument_id"], r["price_scale"], format_decimal(r["tick_size"], r["price_scale"], strip=True),
                                r["size_scale"], format_decimal(r["lot_size"], r["size_scale"], strip=True), r["currency"], r["status"]]
                               for r in rows]))


def _effective_ns(text: str) -> int:
    from streams.timeutil import parse_time_ns

    if text == "epoch":
        return 0
    if text == "now":
        return time.time_ns()
    try:
        value = parse_time_ns(text)
    except ValueError as exc:
        raise ConfigError(f"--effective: {exc}", hint="use epoch, now, an ISO-8601 time (2026-01-02T14:30:00Z) or integer ns") from None
    if value < 0:
        raise ConfigError(f"--effective {text!r} is before the epoch", hint="use epoch, now or a later time")
    return value
