"""``hftstream replay``: re-drive any part of a topic from an offset."""

from __future__ import annotations

import shutil
import sys
from contextlib import ExitStack
from enum import Enum

import typer

from streams.cli.common import fail, progress, state


class Format(str, Enum):
    json = "json"
    table = "table"


class Source(str, Enum):
    log = "log"
    tape = "tape"


def replay(
    ctx: typer.Context,
    topic: str = typer.Option(..., "--topic", "-t", help="Topic to replay."),
    partition: int = typer.Option(None, "--partition", "-p", min=0, help="Only this partition (default: all, merged by timestamp)."),
    from_offset: int = typer.Option(0, "--from-offset", min=0, help="First offset to replay (in each partition); offsets start at 0."),
    to_offset: int = typer.Option(None, "--to-offset", min=0, help="Last offset to replay, inclusive (default: the end when the replay starts)."),
    from_time: str = typer.Option(None, "--from-time", help="Start at the first record at or after this time: ISO-8601 (2026-01-02T14:30:00Z) or integer ns."),
    filters: list[str] = typer.Option(None, "--filter", metavar="FIELD=VALUE", help="Keep records whose FIELD equals VALUE; repeatable, all must hold. FIELD is a value field of the topic's schemas (dotted for nested), key, partition, or type (schema name)."),
    speed: str = typer.Option("max", "--speed", metavar="<max|1x|10x|100x|Nx>", help="Pace by record timestamps: max (no pacing), 1x (real time), 10x, 100x, or any factor Nx (2x, 0.5x)."),
    fmt: Format = typer.Option(Format.json, "--format", help="json: one JSON object per line; table: a fixed-width table."),
    headers: bool = typer.Option(False, "--headers", help="Show record headers (lineage hft.src.topic/partition/offset): a \"headers\" object in json, \\[src=topic/p@offset] in table."),
    into: str = typer.Option(None, "--into", help="Also re-publish the replayed records (same key, value, timestamp; lineage headers added) to this topic, partitioned by key."),
    keep_partition: bool = typer.Option(False, "--keep-partition", help="With --into: keep each record's partition number instead of re-partitioning by key (needs equal partition counts)."),
    create_target: bool = typer.Option(False, "--create-target", help="With --into: allow a target infra/topics.yaml does not declare, created (if missing) with the source's layout. Such a copy stays off the tape: `tape sink` keeps declared topics only."),
    force: bool = typer.Option(False, "--force", help="With --into: publish records whose schema the target topic does not declare (and undecodable ones)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print no records (useful with --into); the summary still goes to stderr."),
    source: Source = typer.Option(Source.log, "--source", help="log: read the topic from the log; tape: rebuild its records from the ClickHouse tape (when retention dropped them), same output."),
) -> None:
    """Replay a topic from an offset: decode every record and print it, or re-publish it with --into.

    Prints exactly the records from --from-offset to the end (or to --to-offset, inclusive). One
    partition comes out in offset order; all partitions are merged by (timestamp, partition, offset),
    so the output is identical on every run. A summary (read, filtered, by type) goes to stderr, and
    a warning when retention already removed part of the requested range.

    --into writes each record to its key's partition in the target (murmur2), refuses the source topic
    itself, refuses a target infra/topics.yaml does not declare unless --create-target (such a copy is
    not sunk into the tape), and refuses records whose schema the target does not declare unless --force.

    Examples:

      hftstream replay --topic md.raw.alpha --partition 0 --from-offset 100 --to-offset 199

      hftstream replay -t md.raw.bravo --from-offset 0 --filter symbol=AAPL --format table

      hftstream replay -t md.normalized --format json --headers --speed 10x

      hftstream replay -t md.raw.alpha --from-time 2026-01-02T14:30:05Z --into md.raw.alpha.redrive --create-target --quiet

      hftstream replay -t fills --source tape --from-offset 0 --format table
    """
    from streams.replay import (
        LogSource, ReplayRequest, check_into_target, parse_filters, parse_speed, plan, removed_ranges, undeclared_records,
    )
    from streams.timeutil import parse_time_ns
    from streams.topic_schemas import check_filter_names, declared_spec, value_schemas

    factor = parse_speed(speed)
    pairs = parse_filters(filters)
    try:
        start_ns = parse_time_ns(from_time) if from_time is not None else None
    except ValueError as exc:
        fail(f"--from-time: {exc}", hint="e.g. --from-time 2026-01-02T14:30:05Z or --from-time 1767364205000000000 (ns)")
    if to_offset is not None and to_offset < from_offset:
        fail(
            f"--to-offset {to_offset} is before --from-offset {from_offset}",
            hint=f"--to-offset is the last offset to replay (inclusive): give one >= {from_offset}, or leave it out to read to the end",
        )

    st = state(ctx)
    log, serde = st.log(), st.serde()
    req = ReplayRequest(topic, partition, from_offset, to_offset, start_ns, pairs, factor)
    with ExitStack() as stack:
        if source is Source.tape:
            from connectors.clickhouse.client import open_tape
            from connectors.clickhouse.replay import TapeSource

            tape = stack.enter_context(open_tape(st.settings.tape_url))
            reader = TapeSource(tape.client, serde, topic)  # not on the tape -> clear error
            check_filter_names(serde.repo, topic, _declared_schemas(topic), [name for name, _ in pairs])
            spans = reader.plan(req)
            _warn_missing_from_tape(req, spans)
        else:
            reader = LogSource(log)
            spec = declared_spec(log, topic)  # unknown topic -> clear error before anything else
            check_filter_names(serde.repo, topic, value_schemas(spec), [name for name, _ in pairs])
            spans = plan(log, req)
        if into:
            if into != topic and not _declared(into) and not create_target:
                fail(
                    f"--into {into}: the topic is not declared in infra/topics.yaml; nothing was written",
                    hint=f"replay into a declared topic, declare {into} there (then `hftstream topics apply`), or pass "
                    f"--create-target to publish into an undeclared copy shaped like {topic} (kept off the tape)",
                )
            if into not in {t.name for t in log.list_topics()} and into != topic:
                _create_target(log, source=topic, target=into)
            check_into_target(log, topic, into, keep_partition=keep_partition)
            allowed = value_schemas(declared_spec(log, into))
            if allowed and not force and source is Source.log:
                _refuse_undeclared(undeclared_records(log, serde, req, allowed, spans), into, allowed)
        if source is Source.log:
            for gone in removed_ranges(log, req):
                typer.secho(f"warning: {gone.describe()}", fg=typer.colors.YELLOW, err=True)
        _run(log, serde, req, spans, reader, fmt=fmt, headers=headers, quiet=quiet, into=into, keep_partition=keep_partition)


def _run(log, serde, req, spans, reader, *, fmt: Format, headers: bool, quiet: bool, into: str | None,  # type: ignore[no-untyped-def]
         keep_partition: bool) -> None:
    from streams.render import TABLE_HEADER, TABLE_WIDTH, json_line, table_row
    from streams.replay import replay as run_replay

    out = sys.stdout
    width = max(shutil.get_terminal_size((TABLE_WIDTH, 24)).columns, 80) if out.isatty() else TABLE_WIDTH
    if fmt is Format.table and not quiet:
        out.write(TABLE_HEADER + "\n")

    def sink(rep) -> None:  # type: ignore[no-untyped-def]
        if not quiet:
            line = json_line(rep, headers=headers) if fmt is Format.json else table_row(rep, width, headers=headers)
            out.write(line + "\n")

    total = sum(e - s for s, e in spans.values())
    with progress("replay", total) as update:
        done = [0]

        def advance(n: int) -> None:
            done[0] += n
            if update is not None:
                update(done[0])

        summary = run_replay(log, serde, req, sink, into=into, keep_partition=keep_partition, on_progress=advance, source=reader)
    out.flush()
    for line in summary.lines():
        typer.echo(line, err=True)


def _declared(topic: str) -> bool:
    """Whether infra/topics.yaml declares ``topic`` (by name or through a template)."""
    from streams.topics import load_catalog

    return load_catalog().declares(topic)


def _declared_schemas(topic: str) -> tuple[str, ...]:
    """The schemas infra/topics.yaml declares for ``topic`` (empty when it is not declared)."""
    from streams.errors import ConfigError, UnknownTopicError
    from streams.topic_schemas import value_schemas
    from streams.topics import load_catalog

    try:
        return value_schemas(load_catalog().spec_for(topic))
    except (UnknownTopicError, ConfigError):
        return ()


def _warn_missing_from_tape(req, spans: dict[int, tuple[int, int]]) -> None:  # type: ignore[no-untyped-def]
    for p, (start, _end) in sorted(spans.items()):
        if req.from_time_ns is None and start > req.from_offset and (req.partition is None or req.partition == p):
            typer.secho(f"warning: {req.topic} partition {p}: the tape starts at offset {start}, after the requested "
                        f"{req.from_offset}: offsets {req.from_offset}..{start - 1} were never sunk (or sunk from a later offset)",
                        fg=typer.colors.YELLOW, err=True)


def _refuse_undeclared(misfits, into: str, allowed: tuple[str, ...]) -> None:  # type: ignore[no-untyped-def]
    if not misfits:
        return
    what = "; ".join(f"{m.count} {m.schema} (first at partition {m.first[0]} offset {m.first[1]})" for m in misfits)
    declared = ", ".join(allowed)
    keep = allowed[0].rsplit(".", 1)[-1]
    fail(
        f"refusing to publish into {into} records whose schema it does not declare ({declared}): {what}; nothing was written",
        hint=f"replay into a topic that declares those schemas, keep only declared records with --filter (e.g. --filter type={keep}), "
        "or pass --force to publish them anyway",
    )


def _create_target(log, source: str, target: str) -> None:  # type: ignore[no-untyped-def]
    """Create the ``--into`` topic: from its declaration if it has one, else shaped like the source."""
    from dataclasses import replace

    from streams.errors import UnknownTopicError
    from streams.topics import load_catalog

    try:
        spec = load_catalog().spec_for(target)
    except UnknownTopicError:
        spec = replace(log.describe_topic(source), name=target)
        typer.echo(f"created topic {target} (--create-target: not declared in topics.yaml; same layout as {source}; "
                   "the tape sink leaves it out)", err=True)
    log.create_topic(spec)
