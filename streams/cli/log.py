"""``hftstream log``: embedded log maintenance (verify, repair, compact, retain).

Only meaningful on an ``embedded://`` log; on Kafka the broker owns its segments.
Exit codes: 0 fine, 1 damage found (``check``) or repair / retention declined, 2 an error.
"""

from __future__ import annotations

import time
from pathlib import Path

import typer

from streams.cli.common import state
from streams.errors import ConfigError

app = typer.Typer(no_args_is_help=True)


def _embedded(ctx: typer.Context):  # type: ignore[no-untyped-def]
    """The configured log, which must be embedded and must exist."""
    url = state(ctx).settings.log
    scheme, sep, rest = url.partition("://")
    if scheme != "embedded" or not sep:
        raise ConfigError(
            f"`hftstream log` maintains the embedded log only; the configured log is {url}",
            hint="pass --log embedded://PATH (Kafka brokers manage their own segments: see kafka-log-dirs / kafka-dump-log)",
        )
    path = Path(rest.partition("?")[0]).expanduser()
    if not path.is_dir():
        raise ConfigError(f"no embedded log at {path}", hint="check --data / HFTSTREAM_DATA (or --log / HFTSTREAM_LOG); `hftstream topics apply` creates one")
    return state(ctx).log()


@app.command()
def check(
    ctx: typer.Context,
    topic: str = typer.Option(None, "--topic", "-t", help="Only this topic (default: every topic)."),
) -> None:
    """Verify every record (framing, CRC, offsets) and index entry; exit 1 if any record is damaged.

    Example: hftstream log check --topic md.raw.alpha --data ./hftstream-data
    """
    from streams.log.embedded.maintenance import check as run_check

    log = _embedded(ctx)
    if topic is not None:
        log.describe_topic(topic)  # unknown topic -> clear error
    results = run_check(log, topic)
    damaged = 0
    for r in results:
        bad = [p for p in r.problems if p.is_damage]
        damaged += len(bad)
        status = "DAMAGED" if bad else "ok"
        typer.echo(f"{r.topic}/{r.partition}: {status} ({r.segments} segment(s), {r.records} record(s), {r.bytes} bytes)")
        for p in r.problems:
            typer.echo(f"  {p.describe()}")
    if damaged:
        typer.secho(
            f"{damaged} damaged record(s), missing offset range(s) or half-written ~lso file(s); see RUNBOOK.md 'Corrupt segment' "
            "(`hftstream log repair TOPIC PARTITION`)",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(1)
    typer.echo(f"checked {len(results)} partition(s): no damage")


@app.command()
def repair(
    ctx: typer.Context,
    topic: str = typer.Argument(..., help="Topic of the damaged partition."),
    partition: int = typer.Argument(..., help="Partition number."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Truncate a partition at its first damaged record, declare missing offsets lost, rebuild indexes.

    Stop the writers of the topic first. Says how many records it drops (and which missing
    offsets it declares lost: nothing can bring those back) and asks unless --yes.

    Example: hftstream log repair md.raw.alpha 0
    """
    from streams.log.embedded.maintenance import plan_repair
    from streams.log.embedded.maintenance import repair as run_repair

    log = _embedded(ctx)
    plan = plan_repair(log, topic, partition)
    typer.echo(plan.describe())
    if plan.changes and not yes and not typer.confirm("repair?", default=False):
        typer.echo("not repaired", err=True)
        raise typer.Exit(1)
    done = run_repair(log, topic, partition)
    for first, last in done.holes:
        typer.echo(f"declared offsets {first}..{last} of {topic}/{partition} lost")
    if done.lso is not None:
        typer.echo(f"rewrote the last stable offset of {topic}/{partition} as {done.lso}")
    if done.path is None:
        typer.echo(f"rebuilt the indexes of {done.indexes_rebuilt} segment(s)")
        return
    typer.echo(
        f"repaired {topic}/{partition}: dropped {done.records_dropped} record(s) ({done.bytes_dropped} bytes); "
        f"new end offset {log.watermarks(topic, partition)[1]}"
    )


@app.command()
def compact(
    ctx: typer.Context,
    topic: str = typer.Argument(None, help="Topic to compact (default: every topic with cleanup_policy compact)."),
) -> None:
    """Keep only the newest record per key in the closed segments of compacted topics.

    Example: hftstream log compact refdata.instruments
    """
    from streams.log.embedded.maintenance import compact as run_compact

    log = _embedded(ctx)
    results = run_compact(log, topic)
    for (name, p), r in results.items():
        typer.echo(
            f"{name}/{p}: removed {r.records_removed} record(s), rewrote {r.segments_rewritten} segment(s), "
            f"deleted {r.segments_removed} empty segment(s); {r.bytes_before} -> {r.bytes_after} bytes in closed segments"
        )
    if not results:
        typer.echo("no compacted topics")


def _ts(ns: int | None) -> str:
    from streams.timeutil import format_iso_ns

    return "?" if ns is None else format_iso_ns(ns)


@app.command()
def retain(
    ctx: typer.Context,
    topic: str = typer.Argument(None, help="Topic (default: every topic with retention_ms or retention_bytes)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Delete without asking."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only show what would be deleted."),
) -> None:
    """Apply retention now (relative to the wall clock): delete closed segments past retention.

    Shows what it would delete (per partition: segments, offsets, record timestamps) and asks
    unless --yes; --dry-run only shows. Without a terminal to ask on, it needs --yes.

    Example: hftstream log retain md.raw.alpha --dry-run
    """
    import sys

    from streams.log.embedded.maintenance import plan_retain
    from streams.log.embedded.maintenance import retain as run_retain

    log = _embedded(ctx)
    if topic is not None:
        log.describe_topic(topic)
    now = time.time_ns()
    plan = plan_retain(log, now, topic)
    if not plan:
        typer.echo("no topics with retention")
        return
    doomed = 0
    for (name, p), segments in plan.items():
        if not segments:
            typer.echo(f"{name}/{p}: nothing past retention")
            continue
        doomed += len(segments)
        first_ts = [s.first_ts for s in segments if s.first_ts is not None]
        max_ts = [s.max_ts for s in segments if s.max_ts is not None]
        reasons = sorted({s.reason for s in segments})
        typer.echo(
            f"{name}/{p}: would delete {len(segments)} segment(s), offsets {segments[0].base}..{segments[-1].last_offset} "
            f"({sum(s.bytes for s in segments)} bytes), record timestamps "
            f"{_ts(min(first_ts) if first_ts else None)} .. {_ts(max(max_ts) if max_ts else None)} "
            f"(past retention by {' and '.join(reasons)})"
        )
    if not doomed:
        typer.echo("nothing to delete")
        return
    if dry_run:
        typer.echo(f"dry run: {doomed} segment(s) would be deleted; nothing was")
        return
    if not yes:
        if not sys.stdin.isatty():
            raise ConfigError(
                f"refusing to delete {doomed} segment(s) without confirmation: stdin is not a terminal",
                hint="pass --yes to delete them, or --dry-run to only see what would go",
            )
        if not typer.confirm(f"delete {doomed} segment(s)?", default=False):
            typer.echo("nothing deleted", err=True)
            raise typer.Exit(1)
    results = run_retain(log, now, topic, only=plan)
    for (name, p), r in results.items():
        if r.deleted_segments:
            low = log.watermarks(name, p)[0]
            typer.echo(f"{name}/{p}: deleted {len(r.deleted_segments)} segment(s), {r.bytes_freed} bytes; low watermark {low}")
