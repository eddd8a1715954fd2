"""``hftstream demo``: the whole pipeline on the embedded defaults, end to end, in one command.

Today the pipeline is: declared topics -> simulated venue feeds -> raw topics -> normalize
(exactly-once) -> md.normalized, audited by verify. Each later stage (risk, matching, ledger,
reconcile, the ClickHouse tape) joins here.
"""

from __future__ import annotations

import textwrap

import typer

from streams.cli.common import progress, state


def demo(
    ctx: typer.Context,
    venues: int = typer.Option(4, "--venues", help="Simulated venues (1-8), each with its own message format."),
    symbols: int = typer.Option(8, "--symbols", help="Instruments per venue."),
    events: int = typer.Option(40_000, "--events", help="Market-data events across all venues."),
    seed: int = typer.Option(42, "--seed", help="Simulation seed: the same seed and --start give byte-identical topics."),
    regime: str = typer.Option("calm", "--regime", help="calm | burst | cancel-storm"),
    start: str = typer.Option(None, "--start", help="Simulation start (ISO-8601 or ns); default: today 00:00 UTC, inside the raw topics' retention. The same seed and --start give byte-identical topics.", show_default=False),
    reset: bool = typer.Option(False, "--reset", help="Delete the demo's topics first, so the run starts from offset 0."),
) -> None:
    """Run the pipeline end to end on the configured log (default: embedded, ./hftstream-data/log).

    1. applies every topic declared in infra/topics.yaml;
    2. publishes a deterministic simulated market (instruments + raw venue feeds, with a few injected
       sequence gaps, duplicates, reorders and malformed payloads) on a simulation clock that starts at
       --start (default: today 00:00 UTC, so the raw topics' 7-day retention keeps it);
    3. runs the normalize processor exactly-once until every raw message is consumed and committed
       (canonical market data on md.normalized; bad messages to dlq.normalize with their reason);
    4. verifies it: re-runs normalize over exactly the committed inputs and compares byte for byte,
       then shows a slice of md.normalized.

    Examples:

      hftstream demo --seed 7 --reset

      hftstream demo --data /tmp/hft --events 100000
    """
    from connectors.venues.publish import publish_simulation
    from streams.cli.feed import SIM_ADVICE, sim_oldest, sim_start_ns, sim_summary_table, warn_expired
    from connectors.venues.simulator import INSTRUMENTS_TOPIC, SimConfig, raw_topic
    from streams.timeutil import format_iso_ns
    from streams.topics import apply_topics

    st = state(ctx)
    log, serde = st.log(), st.serde()
    config = SimConfig(
        venues=venues, symbols=symbols, events=events, seed=seed, regime=regime, start_ns=sim_start_ns(start),
        gap_rate=0.001, dup_rate=0.001, reorder_rate=0.001, malformed_rate=0.001,
    )
    demo_topics = [INSTRUMENTS_TOPIC] + [raw_topic(v) for v in config.venue_names]
    existing = {t.name: t for t in log.list_topics()}
    if reset:
        from streams.runtime.reset import reset_processor

        for name in [*demo_topics, "md.normalized"]:
            if name in existing:
                log.delete_topic(name)
        reset_processor(log, "normalize")
    elif any(sum(existing[n].end_offsets) for n in demo_topics if n in existing):
        typer.echo("note: the demo topics already hold records; this run appends (use --reset to start at offset 0)", err=True)

    typer.secho(f"[1/4] topics: applying infra/topics.yaml to {st.settings.log}", bold=True)
    changes = apply_topics(log)
    typer.echo(f"      {sum(c.action == 'created' for c in changes)} created, {len(changes)} declared")

    typer.secho(
        f"[2/4] feeds: {venues} venues x {symbols} symbols, {events:,} events, seed {seed}, regime {regime}, "
        f"start {format_iso_ns(config.start_ns)}",
        bold=True,
    )
    with progress("publishing", events) as update:
        summary = publish_simulation(log, serde, config, progress=(lambda n: update(n, None)) if update else None)
    warn_expired(log, sim_oldest(summary), SIM_ADVICE)
    typer.echo(textwrap.indent(sim_summary_table(summary), "      "))
    typer.echo(f"      {summary.records:,} records in {summary.elapsed_s:.2f} s")

    _normalize(log, serde)
    typer.echo("\nnext: hftstream status | hftstream replay -t md.normalized --format table | hftstream replay -t dlq.normalize")


def _normalize(log: object, serde: object) -> None:
    """Stages 3 and 4: run normalize exactly-once to idle, then verify it and show a slice of its output."""
    import time

    from streams.processors.normalize import NormalizeProcessor
    from streams.render import TABLE_HEADER, table_row
    from streams.replay import ReplayRequest, replay
    from streams.runtime import Runner, RunOptions
    from streams.runtime.verify import verify

    from streams.runtime.tuning import tune_gc_for_streaming

    tune_gc_for_streaming()
    typer.secho("[3/4] normalize: exactly-once, until every raw message is consumed and committed", bold=True)
    config = NormalizeProcessor.config_class()
    t0 = time.monotonic()
    counts = Runner(log, serde, NormalizeProcessor, config, RunOptions(until_idle=True)).run()  # type: ignore[arg-type]
    elapsed = time.monotonic() - t0
    typer.echo(
        f"      {counts.records_in:,} in -> {counts.records_out:,} out, {counts.without_output:,} consumed without output "
        f"(duplicates, reference data), {counts.dead_letters:,} dead letters; {counts.commits} commits in {elapsed:.2f} s "
        f"({counts.records_in / max(elapsed, 1e-9):,.0f} msgs/s); counts reconcile: {'yes' if counts.reconciles() else 'NO'}"
    )
    for reason, n in sorted(counts.dlq_by_reason.items()):
        typer.echo(f"      dead letters {reason}: {n}")
    typer.secho("[4/4] verify: re-run normalize over the committed inputs, compare byte for byte", bold=True)
    res = verify(log, serde, NormalizeProcessor, config)  # type: ignore[arg-type]
    if res.identical:
        typer.echo(f"      identical: {res.commits} commits, {res.inputs:,} inputs, {res.outputs:,} outputs")
    else:
        d = res.divergence
        typer.secho(f"      DIVERGENCE ({d.kind}) at {d.source}: run `hftstream verify normalize` for details", fg="red")  # type: ignore[union-attr]
    typer.echo(TABLE_HEADER)
    replay(log, serde, ReplayRequest("md.normalized", 0, 0, 4), lambda rep: typer.echo(table_row(rep)))  # type: ignore[arg-type]
