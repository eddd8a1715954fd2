"""``hftstream topics``: apply the declarations in infra/topics.yaml, list and describe what exists."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from streams.cli.common import fail, state

app = typer.Typer(no_args_is_help=True)


@app.command("apply")
def apply_cmd(
    ctx: typer.Context,
    file: Path = typer.Option(None, "--file", "-f", help="Topics file (default: infra/topics.yaml or HFTSTREAM_TOPICS_FILE)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show exactly what apply would do (creations, partition growth, config changes, errors); change nothing."),
) -> None:
    """Create or update every declared topic on the configured log.

    Partitions only grow; retention, cleanup policy and min.insync.replicas are updated in place; a
    replication factor that differs from the selected environment's (HFTSTREAM_KAFKA_ENVIRONMENT, see
    infra/topics.yaml) is an error, never changed. Every entry is checked
    first: if any cannot be applied (a partition shrink, a setting the log refuses), each is listed
    and nothing is changed. Safe to run again.

    Example: hftstream --log kafka://127.0.0.1:9092 topics apply --dry-run
    """
    from streams.topics import ENVIRONMENT_ENV, apply_topics, catalog_replication, load_catalog, plan_topics

    specs = load_catalog(file).all()
    log = state(ctx).log()
    repl = catalog_replication(file)
    if repl is not None and getattr(log, "url", "").startswith("kafka://"):
        typer.echo(
            f"replication: environment {repl.environment} (factor {repl.replication_factor}, min.insync.replicas "
            f"{repl.min_insync_replicas}; {ENVIRONMENT_ENV} selects another)",
            err=True,
        )
    if dry_run:
        rows = [(e.spec.name, e.action, e.detail) for e in plan_topics(log, specs)]
    else:  # TopicPlanError (every bad entry listed, nothing changed) -> error/hint, exit 2
        rows = [(c.topic, c.action, c.detail) for c in apply_topics(log, specs)]
    width = max((len(topic) for topic, _, _ in rows), default=0)
    for topic, action, detail in rows:
        typer.echo(f"{topic:<{width}}  {action:<10} {detail}".rstrip())
    errors = sum(action == "error" for _, action, _ in rows)
    counts = {a: sum(action == a for _, action, _ in rows) for a in ("created", "partitions", "config", "unchanged", "error")}
    verb = "would apply" if dry_run else "applied"
    typer.echo(f"{verb} {len(rows)} topics: " + ", ".join(f"{n} {a}" for a, n in counts.items() if n), err=True)
    if errors:
        fail(
            f"{errors} of {len(rows)} declared topic(s) cannot be applied (see the error lines); apply would change nothing",
            hint="fix those entries in the topics file (partitions can only grow), then run the dry run again",
        )


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help='Print a JSON array of {"name", "partitions", "end_offsets"}.'),
) -> None:
    """List the topics on the configured log with their partition counts and end offsets.

    Example: hftstream topics list --json
    """
    topics = state(ctx).log().list_topics()
    if as_json:
        typer.echo(json.dumps([{"name": t.name, "partitions": t.partitions, "end_offsets": list(t.end_offsets)} for t in topics]))
        return
    if not topics:
        typer.echo("no topics (run `hftstream topics apply` to create the declared ones)", err=True)
        return
    width = max(len(t.name) for t in topics)
    typer.echo(f"{'TOPIC':<{width}}  PARTITIONS  RECORDS  END OFFSETS")
    for t in topics:
        begin = t.begin_offsets or (0,) * t.partitions
        records = sum(e - b for b, e in zip(begin, t.end_offsets))
        typer.echo(f"{t.name:<{width}}  {t.partitions:>10}  {records:>7}  {','.join(map(str, t.end_offsets))}")


@app.command("describe")
def describe_cmd(ctx: typer.Context, topic: str = typer.Argument(..., help="Topic name.")) -> None:
    """Show a topic's configuration and per-partition watermarks (low, high).

    Key and value schemas come from the log when it stores them (embedded), else from infra/topics.yaml (Kafka).

    Example: hftstream topics describe md.raw.alpha --log kafka://127.0.0.1:9092
    """
    from streams.topic_schemas import declared_spec

    log = state(ctx).log()
    spec = declared_spec(log, topic)
    retention = "forever" if spec.retention_ms is None else f"{spec.retention_ms} ms"
    typer.echo(f"topic          {spec.name}\npartitions     {spec.partitions}\ncleanup        {spec.cleanup_policy}\nretention      {retention}")
    if spec.key:
        typer.echo(f"key            {spec.key}")
    if spec.value_schema:
        typer.echo(f"value schema   {spec.value_schema}")
    for p in range(spec.partitions):
        low, high = log.watermarks(topic, p)
        typer.echo(f"partition {p:<4} low {low:<10} high {high}")


@app.command("delete")
def delete_cmd(
    ctx: typer.Context,
    topic: str = typer.Argument(..., help="Topic name."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete a topic and every record in it. Irreversible.

    Example: hftstream topics delete md.raw.alpha.redrive --yes
    """
    log = state(ctx).log()
    log.describe_topic(topic)  # unknown topic -> clear error before asking
    if not yes:
        typer.confirm(f"delete topic {topic!r} and all its records?", abort=True)
    log.delete_topic(topic)
    typer.echo(f"deleted {topic}", err=True)
