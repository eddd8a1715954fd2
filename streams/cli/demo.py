"""``hftstream demo``: the whole trading pipeline on one log, in one command.

instruments + venue feeds + client orders + operator commands (published once, atomically)
-> normalize -> risk -> matching -> dropcopy -> ledger -> reconcile, exactly-once on the
lockstep schedule (streams/runtime/lockstep.py) -> verify -> a paced latency phase -> the
trader's summary. The same seed and --start give the same digest; a rerun after a SIGKILL
finishes the work and gives the same digest as an uninterrupted run.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

import typer

from streams.cli.common import progress, state, table
from streams.cli.feed import Regime

EXAMPLES = """
Examples:

  hftstream demo                                   # the embedded defaults, ./hftstream-data

  hftstream demo --seed 7 --orders 50000 --json    # one JSON object: digest, counts, fills, pnl, latency

  hftstream demo --data /tmp/hft --reset           # start again from offset 0

  hftstream demo --log kafka://127.0.0.1:9092 --no-latency
"""


def demo(
    ctx: typer.Context,
    seed: int = typer.Option(42, "--seed", help="Simulation seed (feeds, orders, drop copy): same seed and --start, same digest."),
    orders: int = typer.Option(20_000, "--orders", min=1, help="Client order commands (new, cancel, replace)."),
    accounts: int = typer.Option(8, "--accounts", min=2, max=64, help="Trading accounts, ACC1, ACC2, ... (2-64: a fill needs two sides)."),
    venues: int = typer.Option(4, "--venues", min=1, max=8, help="Simulated venues (1-8), each with its own message format."),
    symbols: int = typer.Option(8, "--symbols", min=1, help="Instruments per venue."),
    events: int = typer.Option(20_000, "--events", min=0, help="Market-data events across all venues."),
    regime: Regime = typer.Option(Regime.calm, "--regime", help="Order and market regime. calm: resting liquidity, steady arrivals; burst: clustered arrivals and takers; cancel-storm: cancels and replaces dominate."),
    start: str = typer.Option(
        None, "--start", show_default=False,
        help="Simulation start (ISO-8601 or ns). Default: today 00:00 UTC (inside the raw topics' retention), or the "
        "start of the run already on --data. Pin it to compare digests across days.",
    ),
    span: str = typer.Option("2m", "--span", help="Event time the simulated market covers (e.g. 2m, 90s, 10m); the order flow is spread over 90% of it. Event time is not wall time: an unpaced run takes about as long for a few minutes (a long span needs more slices, see --slice-ms)."),
    slice_ms: int = typer.Option(None, "--slice-ms", min=1, show_default=False, help="Event-time slice of the lockstep schedule, in ms. Default: the span / 60, between 250 ms and 2 s (2 s for 2m): at most 2 s keeps the reconciler's 5 s window honest."),
    reset: bool = typer.Option(False, "--reset", help="Delete the demo's topics, state and groups first: start from offset 0."),
    verify_: bool = typer.Option(True, "--verify/--no-verify", help="Re-run each processor over its committed inputs and compare."),
    latency: bool = typer.Option(True, "--latency/--no-latency", help="Measure order-to-outcome latency with paced orders."),
    latency_rate: int = typer.Option(300, "--latency-rate", min=1, help="Orders per second in the paced latency phase; keep it below the pipeline's orders/s (step 3), or it measures a backlog."),
    latency_orders: int = typer.Option(1_500, "--latency-orders", min=1, help="Orders in the paced latency phase."),
    tape: bool = typer.Option(True, "--tape/--no-tape", help="Sink every topic into the ClickHouse tape (DIR/tape, or --clickhouse URL)."),
    outage_limit: float = typer.Option(
        300.0, "--outage-limit", min=0, envvar="HFTSTREAM_OUTAGE_LIMIT_S",
        help="On Kafka: ride out a broker outage for up to SECONDS in the lockstep run (retry with backoff, each stage "
        "back at its last commit), then exit 2; the same command again resumes.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (progress goes to stderr)."),
    cores: int = typer.Option(1, "--cores", min=1, max=2, help="2: normalize and the ledger run in a second process beside the order path (embedded log only; same outputs, same digest). A run continues with the cores it started with."),
) -> None:
    """Run the whole trading pipeline on the configured log (default: embedded, ./hftstream-data/log).

    \b
    1. applies every topic of infra/topics.yaml;
    2. publishes instruments, venue feeds, client orders and signed operator commands, each group
       in one transaction, unless they are already there (a rerun continues the same run);
    3. runs normalize, risk, matching, dropcopy, ledger and reconcile exactly-once, slice by slice of
       event time (one transaction per processor and slice), until everything is consumed;
    4. verifies each processor: re-runs it over its committed inputs and compares byte for byte;
    5. measures order-to-outcome latency in a short paced phase on a scratch log (DIR/latency);
    6. sinks every topic into the ClickHouse tape, exactly once (chDB in DIR/tape, or --clickhouse URL),
       and prints where it is and a query to try;
    7. prints what a trader wants to read: client orders accepted and rejected by risk (apart from the
       cancels risk issued itself), fills, rejects by reason, matching's cancel rejects, dead letters per
       processor and reason, PnL per account, trading state, recon status with the fills still awaiting
       their drop-copy report, throughput, latency; with --json one object with a digest of every output topic.
    """
    st = state(ctx)
    say = (lambda text="", **kw: typer.secho(text, err=True, **kw)) if as_json else (lambda text="", **kw: typer.secho(text, **kw))
    closers: list[Any] = []
    try:
        result = _run(st, say, seed=seed, orders=orders, accounts=accounts, venues=venues, symbols=symbols, events=events,
                      regime=regime.value, start=start, span=span, slice_ms=slice_ms, reset=reset, verify_=verify_,
                      latency=latency, latency_rate=latency_rate, latency_orders=latency_orders, tape=tape,
                      outage_limit=outage_limit, cores=cores, closers=closers)
    finally:
        for close in closers:
            close()
    if as_json:
        typer.echo(json.dumps(result, sort_keys=True))
    else:
        _print_summary(result, say)
    if not result["ledger_balanced"] or not result["counts_reconcile"] or result.get("verify_failed"):
        raise typer.Exit(1)


demo.__doc__ = (demo.__doc__ or "") + EXAMPLES


def _run(st: Any, say: Any, **o: Any) -> dict[str, Any]:
    import os
    import time

    from streams.cli.feed import SIM_ADVICE, sim_oldest, sim_start_ns, warn_expired
    from streams.timeutil import format_iso_ns
    from streams.demo.inputs import committed_count, input_topics, publish_inputs
    from streams.demo.pipeline import output_topics, run_pipeline, stage_names
    from streams.demo.report import business_summary, digest, time_span_ms
    from streams.errors import ConfigError
    from streams.runtime.lockstep import MarkStore, Schedule
    from streams.topics import apply_topics

    from streams.cli.common import duration_ns
    from streams.demo.inputs import default_slice_ms

    span_ns = duration_ns(o["span"], "--span")
    slice_ms = o["slice_ms"] or default_slice_ms(span_ns)
    _check_arguments({**o, "slice_ms": slice_ms, "span_ns": span_ns})  # every argument, before a topic is created or anything deleted
    if o["cores"] == 2 and str(st.settings.log).startswith("kafka"):
        raise ConfigError("--cores 2 runs on the embedded log only",
                          hint="drop --cores (one core on Kafka), or run on the embedded log (--log embedded://DIR)")
    log, serde = st.log(), st.serde()
    if o["reset"]:
        if o["tape"]:  # first: a tape held by another process stops the reset before the log is touched
            from streams.demo.tape import reset_demo_tape

            why = reset_demo_tape(st.settings.tape_url)
            if why:
                raise ConfigError(f"--reset cannot empty the tape: {why}",
                                  hint="stop the process that holds the tape, or add --no-tape")
        _reset(log)
    say(f"[1/7] topics: applying infra/topics.yaml to {st.settings.log}", bold=True)
    changes = apply_topics(log)
    say(f"      {sum(c.action == 'created' for c in changes)} created, {len(changes)} declared")
    second_core = None
    if o["cores"] == 2:  # started now: its interpreter and imports overlap the publishing
        from streams.demo.pipeline import SecondCore

        second_core = SecondCore(st.settings.log, st.settings)
        o["closers"].append(second_core.close)

    marks = MarkStore(log, serde, "demo")
    last = marks.last()
    params: dict[str, Any] = {
        "seed": o["seed"], "orders": o["orders"], "accounts": o["accounts"], "venues": o["venues"], "symbols": o["symbols"],
        "events": o["events"], "regime": o["regime"], "slice_ms": slice_ms, "span_ns": span_ns,
    }
    if last is not None:
        previous = {k: v for k, v in last.params.items() if k in params}
        if previous != params:
            diff = ", ".join(f"{k}: {previous.get(k)} -> {v}" for k, v in params.items() if previous.get(k) != v)
            raise ConfigError(
                f"{st.settings.log} already holds a demo run made with other parameters ({diff})",
                hint="rerun with the same options to continue it, add --reset to start again, or give another --data",
            )
        if o["start"] is not None and sim_start_ns(o["start"]) != last.params["start_ns"]:
            raise ConfigError(
                "--start differs from the run already on this log",
                hint="omit --start to continue that run, or add --reset",
            )
        if last.params.get("cores", 1) != o["cores"]:
            raise ConfigError(
                f"the demo run on this log was started with --cores {last.params.get('cores', 1)}",
                hint=f"rerun with --cores {last.params.get('cores', 1)} to continue it, or add --reset to start again",
            )
        params = dict(last.params)
    else:
        params["start_ns"] = sim_start_ns(o["start"])
        if o["cores"] != 1:
            params["cores"] = o["cores"]

    say(f"[2/7] inputs: {o['venues']} venues x {o['symbols']} symbols, {o['events']:,} market events, {o['orders']:,} orders "
        f"from {o['accounts']} accounts, seed {o['seed']}, start {format_iso_ns(params['start_ns'])}, "
        f"span {params['span_ns'] / 1e9:,.0f} s of event time", bold=True)
    with progress("publishing", None) as update:
        inputs = publish_inputs(log, serde, params, (lambda what, n: update(n, None)) if update else None)
    if inputs.feed_summary is not None:
        warn_expired(log, sim_oldest(inputs.feed_summary), SIM_ADVICE)
    if inputs.feeds_published or inputs.orders_published:
        say(f"      published {inputs.feed_records:,} feed and {inputs.order_records:,} order/command records "
            f"in {inputs.elapsed_s:.2f} s")
    else:
        say("      already on the log: continuing that run")
    if last is None:
        span = time_span_ms(log, input_topics(params))
        if span is None:
            raise ConfigError("the demo's inputs are empty", hint="give --orders and --events above 0")
        params["start_ms"], params["end_ms"] = span[0], span[1] + 1
    schedule = Schedule("demo", params["start_ms"], params["end_ms"], params["slice_ms"], params)
    if last is None:
        marks.write(schedule, -1, None, False, params["start_ms"] * 1_000_000)
        marks.close()

    from streams.runtime.tuning import tune_gc_for_streaming

    tune_gc_for_streaming()  # DECISIONS #31/#54: the lockstep run, verify and the latency phase all run processors here
    names = stage_names()
    say(f"[3/7] pipeline: {', '.join(names)}; exactly-once, {schedule.slices} slices of {schedule.slice_ms} ms event time",
        bold=True)
    with progress("slices", schedule.slices) as update:
        run = run_pipeline(log, serde, schedule, on_slice=(lambda done, total: update(done, total)) if update else None,
                           outage_limit_s=o["outage_limit"], cores=o["cores"], log_url=st.settings.log, settings=st.settings,
                           second_core=second_core)
    n_orders = committed_count(log, "orders.in")
    rate = n_orders / max(run.elapsed_s, 1e-9)
    resumed = f" (resumed at slice {run.result.resumed_at})" if run.result.resumed_at else ""
    if run.result.outages:
        resumed += f" (rode out {run.result.outages} broker outage(s): each stage resumed from its last commit)"
    say(f"      {run.result.slices_run} slices + {run.result.rounds} final rounds in {run.elapsed_s:.2f} s{resumed}: "
        f"{rate:,.0f} orders/s end to end")
    for which, c in run.cores.items():
        say(f"      {which} core: {', '.join(c['stages'])}: first step after {c['opened_s']:.2f} s, then waited "
            f"{c['waited_s']:.2f} s for the other core")
    secs = run.result.stage_seconds
    rows = [[n, c.records_in, c.records_out, c.dead_letters, c.commits, c.replayed, f"{secs.get(n, 0.0):.2f}",
             "yes" if c.reconciles() else "NO"] for n, c in run.counts.items()]
    say(textwrap.indent(table(["processor", "in", "out", "dead letters", "commits", "replayed", "seconds", "reconciles"], rows),
                        "      "))

    verified: dict[str, str] = {}
    if o["verify_"]:
        say("[4/7] verify: re-run each processor over its committed inputs, compare byte for byte", bold=True)
        verified = _verify_all(log, serde, names, say)
    else:
        say("[4/7] verify: skipped (--no-verify)", bold=True)

    latency_figures: dict[str, Any] | None = None
    if o["latency"]:
        say(f"[5/7] latency: {o['latency_orders']:,} orders paced at {o['latency_rate']:,}/s on a scratch log", bold=True)
        from streams.demo.latency import describe, measure_latency

        data_dir = os.path.dirname(st.settings.log.removeprefix("embedded://").rstrip("/")) if st.settings.log.startswith(
            "embedded://") else "hftstream-data"
        lparams = dict(params, orders=o["latency_orders"], rate=o["latency_rate"],
                       events=max(1000, o["latency_orders"] // 2))
        t0 = time.monotonic()
        latency_figures = measure_latency(os.path.join(data_dir or ".", "latency"), lparams, cores=o["cores"])
        say(f"      {describe(latency_figures)} ({time.monotonic() - t0:.1f} s)",
            fg="yellow" if latency_figures.get("pacer_late_records") else None)
    else:
        say("[5/7] latency: skipped (--no-latency)", bold=True)

    tape_figures: dict[str, Any] | None = None
    if o["tape"]:
        from streams.demo.tape import sink_demo_tape

        say(f"[6/7] tape: sinking every topic into {st.settings.tape_url}", bold=True)
        tape_figures = sink_demo_tape(log, serde, st.settings.tape_url)
        if "error" in tape_figures:
            say(f"      not sunk: {tape_figures['error']}", fg="yellow")
            say(f"      hint: {tape_figures['hint']}; then `hftstream tape sink --until-idle`", fg="yellow")
        else:
            say(f"      {tape_figures['records']:,} records in {tape_figures['elapsed_s']:.2f} s "
                f"({tape_figures['already_present']:,} already there, {tape_figures['dead_letters']} dead letters)")
    else:
        say("[6/7] tape: skipped (--no-tape)", bold=True)

    say("[7/7] summary", bold=True)
    outs = output_topics(log, names)
    dig, counts = digest(log, outs)
    summary = business_summary(log, serde)
    from streams.cli.ops import replay_controls
    from streams.processors.risk.config import load_risk_config

    controls, _ = replay_controls(log, serde, load_risk_config(None))
    result: dict[str, Any] = {
        "digest": dig,
        "counts": counts,
        **summary,
        "trading_state": controls.rows(),
        "orders_per_s": round(rate),
        "pipeline_s": round(run.elapsed_s, 3),
        "stage_seconds": {n: round(v, 3) for n, v in run.result.stage_seconds.items()},
        "cores": {k: {"stages": c["stages"], "first_step_s": round(c["opened_s"], 3), "waited_s": round(c["waited_s"], 3),
                      "timeline_s": {e: round(c[e], 3) for e in ("called", "first_step", "last_step", "ended") if e in c}}
                  for k, c in run.cores.items()} or {"first": {"stages": names}},
        "resumed_at_slice": run.result.resumed_at,
        "broker_outages": run.result.outages,
        "latency_ms": latency_figures,
        "counts_reconcile": all(c.reconciles() for c in run.counts.values()),
        "verify": verified,
        "verify_failed": [n for n, v in verified.items() if v != "identical"],
        "seed": params["seed"],
        "start_ns": params["start_ns"],
        "span_ns": params.get("span_ns"),
        "slice_ms": params["slice_ms"],
        "log": st.settings.log,
        "tape": tape_figures,
    }
    return result


def _check_arguments(o: dict[str, Any]) -> None:
    """Build the feed and order simulations the options describe: a bad value raises its ConfigError now."""
    from streams.cli.feed import sim_start_ns
    from streams.demo.inputs import order_config

    keys = ("seed", "orders", "accounts", "venues", "symbols", "events", "regime", "slice_ms")
    order_config({**{k: o[k] for k in keys}, "span_ns": o["span_ns"], "start_ns": sim_start_ns(o["start"])})


def _verify_all(log: Any, serde: Any, names: list[str], say: Any) -> dict[str, str]:
    from streams.runtime.lookup import default_config, registry
    from streams.runtime.verify import verify

    out: dict[str, str] = {}
    for name in names:
        cls = registry()[name]
        res = verify(log, serde, cls, default_config(cls))
        if res.identical:
            out[name] = "identical"
            say(f"      {name}: identical ({res.commits} commits, {res.inputs:,} inputs, {res.outputs:,} outputs)")
        else:
            d = res.divergence
            out[name] = f"DIVERGENCE ({d.kind}) at {d.source}"  # type: ignore[union-attr]
            say(f"      {name}: {out[name]}: run `hftstream verify {name}` for details", fg="red")
    return out


def _reset(log: Any) -> None:
    """Delete every declared topic (and each processor's state, dead letters and group) that exists."""
    from streams.demo.pipeline import stage_names
    from streams.runtime.reset import reset_processor
    from streams.topics import load_catalog

    import time

    from streams.errors import UnknownTopicError

    catalog = load_catalog()

    def ours() -> set[str]:
        names = set()
        for t in log.list_topics():
            try:
                catalog.spec_for(t.name)
            except UnknownTopicError:  # not declared in infra/topics.yaml: not the demo's, leave it
                continue
            names.add(t.name)
        return names

    for name in sorted(ours()):
        log.delete_topic(name)
    for name in stage_names():
        reset_processor(log, name)
    for _ in range(100):  # Kafka deletes topics asynchronously
        if not ours():
            break
        time.sleep(0.2)


def _print_summary(r: dict[str, Any], say: Any) -> None:
    say()
    issued = r["risk_issued_cancels"]
    say(f"client orders sent: {r['orders_sent']:,} ({', '.join(f'{k} {v:,}' for k, v in r['orders'].items())}): "
        f"accepted by risk {r['accepted']:,}, rejected by risk {r['rejected_by_risk']:,}; fills {r['fills']:,}")
    say(f"cancels risk issued itself: {sum(issued.values()):,}"
        + (f" ({', '.join(f'{k} {v:,}' for k, v in issued.items())})" if issued else ""))
    if r["rejects_by_reason"]:
        say("rejects by reason: " + ", ".join(f"{k} {v:,}" for k, v in r["rejects_by_reason"].items()))
    cxl = r["cancel_rejects"]
    say(f"cancel rejects (matching's answers, FIX 35=9): {sum(sum(by.values()) for by in cxl.values()):,}"
        + "".join(f"; {to} " + ", ".join(f"{k} {v:,}" for k, v in by.items()) for to, by in cxl.items()))
    say(f"order events: {', '.join(f'{k} {v:,}' for k, v in r['order_events'].items())}")
    dead = r["dead_letters"]
    say("dead letters: " + ("; ".join(f"{p} " + ", ".join(f"{k} {v:,}" for k, v in by.items()) for p, by in dead.items())
                            if dead else "none"))
    say(f"ledger: {r['ledger_entries']:,} entries, balanced: {'yes' if r['ledger_balanced'] else 'NO'}")
    if r["pnl"]:
        say(table(["account", "PnL (realized + unrealized - fees)"],
                  [[a, ", ".join(f"{v} {c}" for c, v in by.items())] for a, by in r["pnl"].items()]))
    states = [s for s in r["trading_state"] if s.get("state") != "ACTIVE" or s.get("flags")]
    say("trading state: " + ("; ".join(f"{s['scope']} {s['state']}" for s in states) if states else "every scope ACTIVE"))
    waiting = r["fills_awaiting_report"]
    past = f", {waiting['past_window']:,} past the match window" if waiting["past_window"] else ""
    say(f"recon: {r['recon_status']} (breaks: {', '.join(f'{k} {v}' for k, v in r['recon_breaks'].items()) or 'none'}); "
        f"fills awaiting their drop-copy report: {waiting['fills']:,}{past}")
    lat = r["latency_ms"]
    say(f"throughput: {r['orders_per_s']:,} orders/s end to end")
    if lat:
        from streams.demo.latency import describe

        say(f"latency (order to outcome, paced at {lat['rate']:,}/s): {describe(lat)}")
    say(f"digest: {r['digest']}")
    tp = r.get("tape")
    if tp and "error" not in tp:
        say(f"tape: {tp['url']} ({sum(tp['rows'].values()):,} rows in {len(tp['rows'])} tables); try:")
        say(f'  hftstream tape query "{tp["example_query"]}"')
    say("\nnext: hftstream status | hftstream ops state | hftstream replay -t fills --format table | hftstream verify risk")
