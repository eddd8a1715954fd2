"""``hftstream feed``: publish venue feeds -- a deterministic simulator, or a recorded file.

Thin: each command builds its config and calls :func:`connectors.venues.publish.publish_simulation`
or :func:`connectors.venues.file_feed.publish_file`, then prints the summary.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Any

import typer

from streams.cli.common import progress, state, table
from streams.errors import ConfigError

app = typer.Typer(no_args_is_help=True)

_SIM_COLUMNS = (
    ("VENUE", "venue"), ("FORMAT", "format"), ("EVENTS", "events"), ("MSGS", "messages"), ("TRADES", "trades"),
    ("QUOTES", "quotes"), ("BOOK", "book_deltas"), ("STATUS", "status"), ("HB", "heartbeats"), ("GAPS", "gaps"),
    ("DUPS", "dups"), ("REORD", "reorders"), ("MALF", "malformed"),
)


class Regime(str, Enum):
    calm = "calm"
    burst = "burst"
    cancel_storm = "cancel-storm"


class FileFormat(str, Enum):
    ndjson = "ndjson"
    csv = "csv"


class Pace(str, Enum):
    realtime = "realtime"
    max = "max"


@app.command("simulate")
def simulate_cmd(
    ctx: typer.Context,
    venues: int = typer.Option(3, "--venues", "-n", min=1, max=8, help="How many venues, taken in roster order: alpha, bravo, charlie, delta, echo, foxtrot, golf, hotel. Formats cycle json-decimal, json-ticks, fix."),
    symbols: int = typer.Option(4, "--symbols", "-m", min=1, max=10_000, help="How many instruments: AAPL, BTC-USD, MSFT, EUR-USD, ESH6, ... then SYN0021, SYN0022, ... (mixed price scales)."),
    events: int = typer.Option(10_000, "--events", "-e", min=0, help="Market events to generate, in total across venues (split evenly). Published messages = events - gaps + dups."),
    seed: int = typer.Option(1, "--seed", "-s", help="Random seed. The same seed and options give byte-identical topics, offsets and timestamps."),
    regime: Regime = typer.Option(Regime.calm, "--regime", help="Market regime. calm: mostly quotes, steady arrivals; burst: clustered arrivals and trade bursts; cancel-storm: book adds/deletes dominate."),
    start: str = typer.Option("2026-01-02T14:30:00Z", "--start", help="Simulation start time (ISO-8601, or integer ns since the epoch). Event times come from the simulation clock, never the wall clock."),
    gap_rate: float = typer.Option(0.0, "--gap-rate", min=0.0, max=1.0, help="Probability a message is lost: its venue sequence number is skipped."),
    dup_rate: float = typer.Option(0.0, "--dup-rate", min=0.0, max=1.0, help="Probability a message is received twice (same bytes, same sequence number)."),
    reorder_rate: float = typer.Option(0.0, "--reorder-rate", min=0.0, max=1.0, help="Probability a message swaps places with the next one."),
    malformed_rate: float = typer.Option(0.0, "--malformed-rate", min=0.0, max=1.0, help="Probability a payload is corrupted (truncated JSON, bad FIX checksum, garbage)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON instead of a table."),
) -> None:
    """Simulate N venues x M symbols and publish raw venue messages to md.raw.<venue>.

    Instrument reference data goes to refdata.instruments first. Each venue speaks its own wire format; faults can be injected at the given rates. Missing topics are created from infra/topics.yaml. Prints per-venue counts: events, messages, trades, quotes, book deltas, status, heartbeats, and the injected gaps, dups, reorders and malformed payloads.

    Example: hftstream feed simulate --venues 3 --symbols 5 --events 100000 --seed 7 --regime burst --gap-rate 0.001
    """
    from connectors.venues.publish import publish_simulation
    from connectors.venues.simulator import SimConfig
    from streams.timeutil import parse_time_ns

    try:
        start_ns = parse_time_ns(start)
    except ValueError as exc:
        raise ConfigError(f"--start: {exc}", hint="e.g. --start 2026-01-02T14:30:00Z or --start 1767364200000000000") from None
    config = SimConfig(
        venues=venues, symbols=symbols, events=events, seed=seed, regime=regime.value, start_ns=start_ns,
        gap_rate=gap_rate, dup_rate=dup_rate, reorder_rate=reorder_rate, malformed_rate=malformed_rate,
    )
    st = state(ctx)
    log, serde = st.log(), st.serde()
    with progress("simulating", events) as update:
        summary = publish_simulation(log, serde, config, progress=(lambda n: update(n, None)) if update else None)
    if as_json:
        typer.echo(json.dumps(summary.as_dict(), sort_keys=True))
        return
    typer.echo(sim_summary_table(summary))
    typer.echo(f"{summary.instruments} instruments -> refdata.instruments; {summary.records} records -> "
               + ", ".join(f"md.raw.{c.venue}" for c in summary.venues))
    rate = summary.records / summary.elapsed_s if summary.elapsed_s > 0 else 0.0
    typer.echo(f"published in {summary.elapsed_s:.2f} s ({rate:,.0f} records/s)", err=True)


@app.command("file")
def file_cmd(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="Recorded feed: .ndjson/.jsonl (one venue message per line, bytes as they are) or .csv (header row; each row becomes a JSON object)."),
    venue: str = typer.Option(..., "--venue", "-v", help="Venue the recording came from (alpha ... hotel); picks the topic md.raw.<venue> and the format used to flag suspect lines."),
    file_format: FileFormat = typer.Option(None, "--format", "-f", help="File format; default: from the extension (.csv -> csv, .ndjson/.jsonl/.json/.fix/.txt -> ndjson)."),
    pace: Pace = typer.Option(Pace.max, "--pace", help="max: as fast as possible (batched). realtime: sleep between records by the differences of their event timestamps (ts / ns / recv_ts_ns)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON instead of a table."),
) -> None:
    """Publish a recorded venue feed to md.raw.<venue>.

    recv_ts_ns comes from a recv_ts_ns field/column when present, else the wall clock at publish. Lines that are not valid for the venue's format are still published (normalization dead-letters them) and counted as suspect, with the first causes listed.

    Example: hftstream feed file recordings/alpha-2026-01-02.ndjson --venue alpha --pace realtime
    """
    from connectors.venues.file_feed import publish_file

    st = state(ctx)
    log, serde = st.log(), st.serde()
    size = path.stat().st_size if path.is_file() else None
    with progress(f"publishing {path.name}", size) as update:
        summary = publish_file(
            log, serde, path, venue, file_format=file_format.value if file_format else None, pace=pace.value,
            progress=update,
        )
    if as_json:
        typer.echo(json.dumps(summary.as_dict(), sort_keys=True))
        return
    headers = ["VENUE", "FORMAT", "FILE", "PUBLISHED", "SUSPECT", "BLANK", "RECV_FROM_FILE"]
    typer.echo(table(headers, [[summary.venue, summary.venue_format, summary.file_format, summary.published,
                                summary.suspect, summary.blank_lines, summary.recv_from_file]]))
    for example in summary.suspect_examples:
        typer.echo(f"suspect {example}")
    if summary.suspect > len(summary.suspect_examples):
        typer.echo(f"... and {summary.suspect - len(summary.suspect_examples)} more suspect line(s)")
    typer.echo(f"published {summary.published} records to md.raw.{summary.venue} in {summary.elapsed_s:.2f} s", err=True)


def sim_summary_table(summary: Any) -> str:
    """Per-venue counts of a simulation run as a text table, with a total row."""
    rows = [[getattr(c, attr) for _, attr in _SIM_COLUMNS] for c in summary.venues]
    rows.append(["total", ""] + [sum(r[i] for r in rows) for i in range(2, len(_SIM_COLUMNS))])
    return table([h for h, _ in _SIM_COLUMNS], rows)
