"""``hftstream feed``: publish venue feeds -- a deterministic simulator, or a recorded file.

Thin: each command builds its config and calls :func:`connectors.venues.publish.publish_simulation`
or :func:`connectors.venues.file_feed.publish_file`, then prints the summary.
"""

from __future__ import annotations

import json
import time
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from streams.cli.common import duration_ns, fail, progress, state, table
from streams.errors import ConfigError

if TYPE_CHECKING:
    from streams.log import Log

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
    seed: int = typer.Option(1, "--seed", "-s", help="Random seed. The same seed, --start and options give byte-identical topics, offsets and timestamps."),
    regime: Regime = typer.Option(Regime.calm, "--regime", help="Market regime. calm: mostly quotes, steady arrivals; burst: clustered arrivals and trade bursts; cancel-storm: book adds/deletes dominate."),
    start: str = typer.Option(None, "--start", help="Simulation start time (ISO-8601, or integer ns since the epoch); default: today 00:00 UTC, so the records are within the raw topics' retention. Event times come from the simulation clock; the same seed and --start give byte-identical topics.", show_default=False),
    gap_rate: float = typer.Option(0.0, "--gap-rate", min=0.0, max=1.0, help="Probability a message is lost: its venue sequence number is skipped."),
    dup_rate: float = typer.Option(0.0, "--dup-rate", min=0.0, max=1.0, help="Probability a message is received twice (same bytes, same sequence number)."),
    reorder_rate: float = typer.Option(0.0, "--reorder-rate", min=0.0, max=1.0, help="Probability a message swaps places with the next one."),
    malformed_rate: float = typer.Option(0.0, "--malformed-rate", min=0.0, max=1.0, help="Probability a payload is corrupted (truncated JSON, bad FIX checksum, garbage)."),
    span: str = typer.Option(None, "--span", help="Event time the market covers (e.g. 5m, 90s, 500ms, or ns): the arrival gaps are stretched so each venue's events last about this long. Default: the regime's own pace (about 0.5 ms per event per venue in calm). Give `orders simulate` about 0.9 x this as its --span.", show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON instead of a table."),
) -> None:
    """Simulate N venues x M symbols and publish raw venue messages to md.raw.<venue>.

    Instrument reference data goes to refdata.instruments first. Each venue speaks its own wire format; faults can be injected at the given rates. Its missing topics (refdata.instruments, md.raw.<venue>) are created from infra/topics.yaml; `hftstream run normalize` creates the declared topics it writes (md.normalized, dlq.normalize) when they are missing. Prints per-venue counts: events, messages, trades, quotes, book deltas, status, heartbeats, and the injected gaps, dups, reorders and malformed payloads. The simulation clock starts at --start (default: today 00:00 UTC); a warning names any topic whose records are already older than its retention (the log would delete them).

    Example: hftstream feed simulate --venues 3 --symbols 5 --events 100000 --seed 7 --regime burst --gap-rate 0.001 --start 2026-01-02T14:30:00Z
    """
    from connectors.venues.publish import publish_simulation
    from connectors.venues.simulator import SimConfig

    start_ns = sim_start_ns(start)
    config = SimConfig(
        venues=venues, symbols=symbols, events=events, seed=seed, regime=regime.value, start_ns=start_ns,
        gap_rate=gap_rate, dup_rate=dup_rate, reorder_rate=reorder_rate, malformed_rate=malformed_rate,
        span_ns=duration_ns(span, "--span"),
    )
    st = state(ctx)
    log, serde = st.log(), st.serde()
    with progress("simulating", events) as update:
        summary = publish_simulation(log, serde, config, progress=(lambda n: update(n, None)) if update else None)
    warn_expired(log, sim_oldest(summary), SIM_ADVICE)
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
    max_bad: int = typer.Option(0, "--max-bad", min=0, help="Suspect lines (not valid for the venue's format, or refused by normalization's market-data checks) tolerated before the command fails (exit 1)."),
    strict: bool = typer.Option(False, "--strict", help="Check the whole file first and publish nothing when more than --max-bad lines are suspect (exit 2)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON instead of a table."),
) -> None:
    """Publish a recorded venue feed to md.raw.<venue>.

    recv_ts_ns comes from a recv_ts_ns field/column when present, else the wall clock at publish. Lines that are not valid for the venue's format, or that normalization refuses (impossible market data: a price or size <= 0, a crossed quote, a price more than 50% from the last trade; off the tick/lot grid), are still published (normalization dead-letters them) and counted as suspect, with the reason code; the bad lines are listed (line number and cause, the first 20) and the command exits 1 when there are more than --max-bad of them. --strict publishes nothing instead (exit 2). A warning names any record older than the topic's retention, and the symbols missing from refdata.instruments (run `hftstream refdata load FILE` first).

    Example: hftstream feed file recordings/alpha-2026-01-02.ndjson --venue alpha --pace realtime --max-bad 10
    """
    from connectors.venues.errors import SuspectFeedError
    from connectors.venues.file_feed import publish_file
    from connectors.venues.simulator import raw_topic

    st = state(ctx)
    log, serde = st.log(), st.serde()
    size = path.stat().st_size if path.is_file() else None
    try:
        with progress(f"publishing {path.name}", size) as update:
            summary = publish_file(
                log, serde, path, venue, file_format=file_format.value if file_format else None, pace=pace.value,
                strict=strict, max_bad=max_bad, progress=update,
            )
    except SuspectFeedError as exc:
        _echo_suspects(exc.examples, exc.suspect, err=True)
        raise
    warn_expired(log, {raw_topic(summary.venue): summary.oldest_ts_ns}, "publish with recent recv_ts_ns values (or none: the wall clock stamps the records)")
    warn_unknown_symbols(summary.unknown_symbols, summary.refdata_instruments)
    if as_json:
        typer.echo(json.dumps(summary.as_dict(), sort_keys=True))
    else:
        headers = ["VENUE", "FORMAT", "FILE", "PUBLISHED", "SUSPECT", "BLANK", "RECV_FROM_FILE"]
        typer.echo(table(headers, [[summary.venue, summary.venue_format, summary.file_format, summary.published,
                                    summary.suspect, summary.blank_lines, summary.recv_from_file]]))
        _echo_suspects(summary.suspect_examples, summary.suspect, err=False)
    typer.echo(f"published {summary.published} records to md.raw.{summary.venue} in {summary.elapsed_s:.2f} s", err=True)
    if summary.suspect > max_bad:
        from connectors.venues.errors import suspect_what

        allowed = f"more than the {max_bad} allowed by --max-bad" if max_bad else "none allowed"
        fail(
            f"{summary.suspect} of {summary.published} line(s) of {path.name} are "
            f"{suspect_what(summary.venue_format, summary.suspect, summary.refused)} "
            f"({allowed}); they were published and normalization will dead-letter them",
            hint="fix the file and publish it again, or pass --max-bad N to accept up to N bad lines, "
            "or --strict to publish nothing when the file has bad lines",
            code=1,
        )


def _echo_suspects(examples: list[str], suspect: int, *, err: bool) -> None:
    for example in examples:
        typer.echo(f"suspect {example}", err=err)
    if suspect > len(examples):
        typer.echo(f"... and {suspect - len(examples)} more suspect line(s)", err=err)


def warn_unknown_symbols(unknown: dict[str, int], instruments: int) -> None:
    """Warn (stderr) that lines name instruments ``refdata.instruments`` lacks: normalize dead-letters them as UNKNOWN_SYMBOL."""
    if not unknown:
        return
    lines = sum(unknown.values())
    names = ", ".join(f"{name} ({n})" for name, n in sorted(unknown.items())[:10]) + (", ..." if len(unknown) > 10 else "")
    if instruments == 0:
        why = "refdata.instruments is empty"
    else:
        why = f"{len(unknown)} instrument(s) are not in refdata.instruments ({instruments} instruments there): {names}"
    typer.secho(
        f"warning: {why}; normalization will dead-letter {lines} line(s) as UNKNOWN_SYMBOL and their prices were not checked; "
        "publish the instruments first with `hftstream refdata load FILE` (see `hftstream refdata --help`)",
        fg=typer.colors.YELLOW, err=True,
    )


def warn_expired(log: Log, oldest: dict[str, int | None], advice: str) -> None:
    """Print a warning (stderr) for every topic that just received records already older than its retention."""
    from streams.topics import expired_on_publish

    for warning in expired_on_publish(log, oldest, advice):
        typer.secho(f"warning: {warning}", fg=typer.colors.YELLOW, err=True)


SIM_ADVICE = "simulate with a recent --start (without it the clock starts today at 00:00 UTC)"


def sim_start_ns(start: str | None) -> int:
    """``--start`` as ns; without it, today 00:00 UTC (the wall clock rounded down to the day)."""
    from streams.timeutil import floor_day_ns, parse_time_ns

    if start is None:
        return floor_day_ns(time.time_ns())
    try:
        return parse_time_ns(start)
    except ValueError as exc:
        raise ConfigError(f"--start: {exc}", hint="e.g. --start 2026-01-02T14:30:00Z or --start 1767364200000000000") from None


def sim_oldest(summary: Any) -> dict[str, int | None]:
    """The oldest record timestamp a simulation run published, per topic (for :func:`warn_expired`)."""
    from connectors.venues.simulator import INSTRUMENTS_TOPIC, raw_topic

    oldest: dict[str, int | None] = {INSTRUMENTS_TOPIC: summary.config.start_ns}
    oldest.update({raw_topic(c.venue): c.first_recv_ts_ns for c in summary.venues})
    return oldest


def sim_summary_table(summary: Any) -> str:
    """Per-venue counts of a simulation run as a text table, with a total row."""
    rows = [[getattr(c, attr) for _, attr in _SIM_COLUMNS] for c in summary.venues]
    rows.append(["total", ""] + [sum(r[i] for r in rows) for i in range(2, len(_SIM_COLUMNS))])
    return table([h for h, _ in _SIM_COLUMNS], rows)
