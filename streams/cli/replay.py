"""``hftstream replay``: re-drive any part of a topic from an offset."""

from __future__ import annotations

import sys
import typer

from streams.cli.common import fail, progress, state

SPEEDS = {"max": None, "1x": 1.0, "10x": 10.0, "100x": 100.0}


def replay(
    ctx: typer.Context,
    topic: str = typer.Option(..., "--topic", "-t", help="Topic to replay."),
    partition: int = typer.Option(None, "--partition", "-p", help="Only this partition (default: all, merged by timestamp)."),
    from_offset: int = typer.Option(0, "--from-offset", min=0, help="First offset to replay (in each partition)."),
    to_offset: int = typer.Option(None, "--to-offset", min=0, help="Last offset to replay, inclusive (default: the end when the replay starts)."),
    from_time: str = typer.Option(None, "--from-time", help="Start at the first record at or after this time: ISO-8601 (2026-01-02T14:30:00Z) or integer ns."),
    filters: list[str] = typer.Option(None, "--filter", help="Keep records whose FIELD equals VALUE; repeatable, all must hold. FIELD is a value field (dotted for nested), key, partition, or type (schema name)."),
    speed: str = typer.Option("max", "--speed", help="Pace by record timestamps: 1x (real time), 10x, 100x, or max."),
    fmt: str = typer.Option("json", "--format", help="json: one JSON object per line; table: a fixed-width table."),
    into: str = typer.Option(None, "--into", help="Also re-publish the replayed records (same key, value, timestamp; lineage headers added) to this topic."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print no records (useful with --into); the summary still goes to stderr."),
) -> None:
    """Replay a topic from an offset: decode every record and print it, or re-publish it with --into.

    Prints exactly the records from --from-offset to the end (or to --to-offset, inclusive). One
    partition comes out in offset order; all partitions are merged by (timestamp, partition, offset),
    so the output is identical on every run. A summary (read, filtered, by type) goes to stderr.

    Examples:

      hftstream replay --topic md.raw.alpha --partition 0 --from-offset 100 --to-offset 199

      hftstream replay -t md.raw.bravo --from-offset 0 --filter symbol=AAPL --format table

      hftstream replay -t md.raw.alpha --from-time 2026-01-02T14:30:05Z --into md.raw.alpha.replay --quiet
    """
    from streams.render import TABLE_HEADER, json_line, table_row
    from streams.replay import ReplayRequest, parse_filters
    from streams.replay import replay as run_replay
    from streams.timeutil import parse_time_ns

    if speed not in SPEEDS:
        fail(f"--speed {speed!r} is not one of {', '.join(SPEEDS)}")
    if fmt not in ("json", "table"):
        fail(f"--format {fmt!r} is not json or table")
    try:
        pairs = parse_filters(filters)
        start_ns = parse_time_ns(from_time) if from_time is not None else None
    except ValueError as exc:
        fail(str(exc))
    if to_offset is not None and to_offset < from_offset:
        fail(f"--to-offset {to_offset} is before --from-offset {from_offset}")

    st = state(ctx)
    log, serde = st.log(), st.serde()
    if into and into not in {t.name for t in log.list_topics()}:
        _create_target(log, source=topic, target=into)

    req = ReplayRequest(topic, partition, from_offset, to_offset, start_ns, pairs, SPEEDS[speed])
    out = sys.stdout
    if fmt == "table" and not quiet:
        out.write(TABLE_HEADER + "\n")
    render = json_line if fmt == "json" else table_row

    def sink(rep) -> None:  # type: ignore[no-untyped-def]
        if not quiet:
            out.write(render(rep) + "\n")

    from streams.replay import plan

    total = sum(e - s for s, e in plan(log, req).values())
    with progress("replay", total) as update:
        done = [0]

        def advance(n: int) -> None:
            done[0] += n
            if update is not None:
                update(done[0])

        summary = run_replay(log, serde, req, sink, into=into, on_progress=advance)
    out.flush()
    for line in summary.lines():
        typer.echo(line, err=True)


def _create_target(log, source: str, target: str) -> None:  # type: ignore[no-untyped-def]
    """Create the ``--into`` topic: from its declaration if it has one, else shaped like the source."""
    from dataclasses import replace

    from streams.errors import UnknownTopicError
    from streams.topics import load_catalog

    try:
        spec = load_catalog().spec_for(target)
    except UnknownTopicError:
        spec = replace(log.describe_topic(source), name=target)
        typer.echo(f"created topic {target} (not declared in topics.yaml; same layout as {source})", err=True)
    log.create_topic(spec)
