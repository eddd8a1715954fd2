"""``hftstream run | status | verify``: run processors exactly-once, watch them, and audit them."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from typing import Any

import typer

from streams.cli.common import fail, state, table

RUN_EXAMPLES = """
Examples:

  hftstream run normalize --until-idle           # consume everything there is, commit, exit 0
  hftstream run normalize --instance-id b        # a second instance (Kafka shares partitions by group)
  hftstream run all --until-idle                 # every processor in one process, fixed schedule
  hftstream run all --metrics-port 9464          # ...serving Prometheus /metrics (see RUNBOOK.md 'Metrics and alerts')
  hftstream run all --cores 2                    # normalize and the ledger in a second process (live; metrics on port + 1)
  hftstream run mypkg.procs:MyProcessor          # your own Processor subclass
"""


def _stop_on_signals() -> threading.Event:
    """SIGTERM / SIGINT: finish the batch in flight, commit, exit 0."""
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        if stop.is_set():  # a second Ctrl-C: the operator insists
            raise KeyboardInterrupt
        typer.echo(f"{signal.Signals(signum).name}: finishing the batch in flight and committing...", err=True)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def run(
    ctx: typer.Context,
    processor: str = typer.Argument(..., help="A processor name (see `hftstream status`), `all`, or MODULE:CLASS."),
    until_idle: bool = typer.Option(False, "--until-idle", help="Exit 0 once every input is consumed and committed."),
    instance_id: str = typer.Option("0", "--instance-id", help="Stable id of this instance (part of its transactional id)."),
    batch: int = typer.Option(5000, "--batch", min=1, help="Most input records per transaction."),
    commit_interval: int = typer.Option(100, "--commit-interval", min=1, help="Commit at least every MS milliseconds."),
    snapshot_every: int = typer.Option(200, "--snapshot-every", min=1, help="Snapshot each task at least every N commits."),
    snapshot_records: int = typer.Option(
        200_000, "--snapshot-records", min=1, help="...and at least every N input records (restart replays at most about this many)."
    ),
    metrics_port: int = typer.Option(
        0, "--metrics-port", min=0, max=65535, help="Serve Prometheus /metrics on this port (0: off; infra/prometheus/prometheus.yml scrapes 9464)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the run's counts as JSON."),
    config: str = typer.Option(None, "--config", help="The processor's configuration (YAML or JSON); default: its defaults."),
    name: str = typer.Option(None, "--name", help="Run under another name: its own group, state.<name> and dlq.<name>."),
    outage_limit: float = typer.Option(
        300.0, "--outage-limit", min=0, envvar="HFTSTREAM_OUTAGE_LIMIT_S",
        help="Ride out a broker outage for up to SECONDS (retry with backoff, resume from the last commit), then exit 2.",
    ),
    merge_as_of: bool = typer.Option(
        False, "--merge-market-data",
        help="Live runs: merge as-of inputs (risk's md.normalized) by time with the orders, waiting for them, as "
        "--until-idle does; default: apply what has arrived at each transaction's start (RUNBOOK 'Risk decides on "
        "market data that is a moment old').",
    ),
    cores: int = typer.Option(
        1, "--cores", min=1, max=2,
        help="With `all`: 2 runs normalize and the ledger in a second process (its metrics on --metrics-port + 1). Live "
        "runs only (not with --until-idle).",
    ),
) -> None:
    """Run a processor (or `all`) exactly-once: read, process, write, commit, in transactions.

    Outputs, dead letters, the commit manifest and the input offsets commit together; a crash
    at any instant resumes from the last commit with nothing lost and nothing doubled.
    SIGTERM / Ctrl-C finish the batch in flight, commit and exit 0.
    """
    from prometheus_client import CollectorRegistry

    from streams.runtime import Runner, RunOptions
    from streams.runtime.lookup import find_processor, load_config, registry
    from streams.runtime.metrics import RuntimeMetrics, serve_metrics
    from streams.runtime.scheduler import run_all

    st = state(ctx)
    log, serde = st.log(), st.serde()
    names = list(registry()) if processor == "all" else [processor]
    if not names:
        fail("no built-in processors are installed", hint="run your own with MODULE:CLASS")
    if len(names) > 1 and (config or name):
        fail("--config and --name apply to one processor, not to `all`", hint="run that processor on its own")
    if cores == 2 and (processor != "all" or until_idle):
        fail("--cores 2 is for a live `run all`",
             hint="drop --cores, or --until-idle (knowing the whole pipeline is drained needs it in one process)")
    from streams.runtime.second_process import SECOND_CORE, LiveSecondProcess

    second = [n for n in names if n in SECOND_CORE] if cores == 2 else []
    names = [n for n in names if n not in second]
    options = RunOptions(
        instance_id=instance_id, batch=batch, commit_interval_ms=commit_interval, snapshot_every_commits=snapshot_every,
        snapshot_every_records=snapshot_records,
        until_idle=until_idle, outage_limit_s=outage_limit, as_of="merged" if merge_as_of else "pinned",
    )
    metrics_registry = CollectorRegistry()
    runners = []
    for proc_name in names:
        cls = find_processor(proc_name)
        runners.append(Runner(
            log, serde, cls, load_config(cls, config), options,
            metrics=RuntimeMetrics(name or cls.name, metrics_registry), name=name,
        ))
    if metrics_port:
        serve_metrics(metrics_port, metrics_registry)
        typer.echo(f"metrics: http://127.0.0.1:{metrics_port}/metrics", err=True)
    from streams.runtime.tuning import tune_gc_for_streaming

    tune_gc_for_streaming()
    stop = _stop_on_signals()
    helper = LiveSecondProcess(st.settings.log, st.settings, second, options,
                               metrics_port=metrics_port + 1 if metrics_port else 0) if second else None
    typer.echo(f"running {', '.join(r.name for r in runners)} on {st.settings.log} (instance {instance_id})"
               + (f"; {', '.join(second)} in a second process (pid {helper.process.pid})" if helper else ""), err=True)
    t0 = time.monotonic()
    try:
        counts = run_all(runners, stop, until_idle=until_idle,
                         on_round=(lambda: stop.set() if not helper.alive() else None) if helper else None)
        if helper is not None:
            counts = {**helper.join(), **counts}
    finally:
        if helper is not None:
            helper.close()
    elapsed = time.monotonic() - t0
    if as_json:
        typer.echo(json.dumps({n: c.as_dict() for n, c in counts.items()}, sort_keys=True))
    else:
        rows = [
            [n, c.records_in, c.with_output, c.without_output, c.dead_letters, c.records_out, c.commits, c.replayed,
             "yes" if c.reconciles() else "NO"]
            for n, c in counts.items()
        ]
        typer.echo(table(["processor", "in", "with output", "no output", "dead letters", "out", "commits", "replayed", "reconciles"], rows))
        total = sum(c.records_in for c in counts.values())
        typer.echo(f"{total:,} records in {elapsed:.2f} s", err=True)
    if not all(c.reconciles() for c in counts.values()):
        fail("the counts do not reconcile (in != with output + no output + dead letters)", hint="this is a bug: report it with the output above")


def status(
    ctx: typer.Context,
    processor: list[str] = typer.Argument(None, help="Processors to show (default: every built-in one)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per processor, as a list."),
    partitions: bool = typer.Option(False, "--partitions", "-p", help="Show every input partition, not only totals."),
    config: str = typer.Option(None, "--config", help="The processor's configuration (for one processor run with --config)."),
    name: str = typer.Option(None, "--name", help="The name it ran under (`hftstream run --name`)."),
) -> None:
    """Where each processor is: committed positions, lag per partition, dead letters, last commit.

    Read from the log alone (works for processors running elsewhere, and for stopped ones).
    The problem column shows what `hftstream run` would refuse to start with (the same checks:
    damaged group offsets or commit log, a group moved away from its commit manifests, input
    records removed by `log repair` or retention), with its hint below the table. A global
    input (read by every task) counts once, at the slowest task's position.
    Processors running on this machine also report a broker outage they are riding out (or rode
    out): in the problem column, in `--json` as "outages", and, when the broker itself cannot be
    reached, in the error.

    Exit status: 0 when no processor shown has a problem, 1 when one would not start (the problem
    column, "problem" in `--json`), 2 for a usage error or a log that cannot be read.

    Examples:

      hftstream status
      hftstream status normalize --partitions
      hftstream --log kafka://127.0.0.1:9092 status --json
    """
    from streams.runtime.lookup import find_processor, load_config
    from streams.errors import BrokerUnavailableError
    from streams.runtime.runfile import describe, read_runfiles
    from streams.runtime.status import all_status, processor_status

    st = state(ctx)
    log = st.log()
    try:
        if config or name:
            if not processor or len(processor) != 1:
                fail("--config and --name apply to one processor", hint="name exactly one processor")
            cls = find_processor(processor[0])
            result = [processor_status(log, st.serde(), processor[0], load_config(cls, config), as_name=name)]
        else:
            result = all_status(log, st.serde(), list(processor) if processor else None)
    except BrokerUnavailableError as exc:
        running = [f"{d['processor']}: {describe(d)}" for d in read_runfiles(getattr(log, "url", ""))]
        if running:
            fail(f"{exc}\n" + "\n".join(running), hint="they retry until --outage-limit; RUNBOOK.md 'Kafka is unreachable'")
        raise
    outages: dict[str, list[str]] = {}
    for doc in read_runfiles(getattr(log, "url", "")):
        outages.setdefault(doc["processor"], []).append(describe(doc))
    broken = any(s.problem for s in result)
    if as_json:
        typer.echo(json.dumps([{**s.as_dict(), "outages": outages.get(s.name, [])} for s in result], sort_keys=True))
        if broken:
            raise typer.Exit(1)
        return
    rows: list[list[Any]] = []
    for s in result:
        last = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(s.last_commit_ns / 1e9)) + "Z" if s.last_commit_ns else "never"
        problem = "; ".join([p for p in (s.problem,) if p] + outages.get(s.name, []))
        rows.append([s.name, f"{s.committed_tasks}/{s.tasks}", s.lag, s.dead_letters, last, problem])
    typer.echo(table(["processor", "tasks committed", "lag", "dead letters", "last commit", "problem"], rows))
    for s in result:
        if s.problem and s.hint:
            typer.echo(f"{s.name}: hint: {s.hint}")
    if partitions:
        for s in result:
            prow = [[s.name, p.topic, p.partition, p.scope, p.committed, p.end, p.lag] for p in s.partitions]
            if prow:
                typer.echo("")
                typer.echo(table(["processor", "topic", "partition", "scope", "committed", "end", "lag"], prow))
    if broken:
        raise typer.Exit(1)


def verify(
    ctx: typer.Context,
    processor: str = typer.Argument(..., help="The processor to audit (name or MODULE:CLASS)."),
    from_offset: int = typer.Option(None, "--from-offset", min=0, help="Check the commits that consumed input at or after this offset."),
    since: str = typer.Option(None, "--since", help="Check the commits made at or after this time (ISO 8601, e.g. 2026-11-22T10:00:00Z)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    config: str = typer.Option(None, "--config", help="The processor's configuration, as given to `hftstream run`."),
    name: str = typer.Option(None, "--name", help="The name it ran under (`hftstream run --name`)."),
) -> None:
    """Re-run a processor over exactly the inputs it committed and compare with the log, byte for byte.

    From the snapshot before the first commit checked, the processor is replayed in memory over the
    input ranges its commit manifests recorded, in the recorded order; every regenerated record must
    equal the one on the log (matched by lineage). Prints "identical" (exit 0) or the first divergence
    with the input's lineage and the expected and actual records (exit 1).

    Examples:

      hftstream verify normalize
      hftstream verify normalize --from-offset 100000
      hftstream verify normalize --since 2026-11-22T10:00:00Z --json
    """
    from streams.runtime.lookup import find_processor, load_config
    from streams.runtime.verify import describe_rows, verify as run_verify
    from streams.timeutil import parse_time_ns

    st = state(ctx)
    cls = find_processor(processor)
    since_ns = None
    if since is not None:
        try:
            since_ns = parse_time_ns(since)
        except ValueError as exc:
            fail(f"--since {since!r}: {exc}", hint="give an ISO 8601 time such as 2026-11-22T10:00:00Z")
    serde = st.serde()
    from streams.runtime.tuning import tune_gc_for_streaming

    tune_gc_for_streaming()  # verify re-runs the processor over its history: a processing process (DECISIONS #31)
    res = run_verify(st.log(), serde, cls, load_config(cls, config), from_offset=from_offset, since_ns=since_ns, name=name)
    summary = {"processor": res.processor, "tasks": res.tasks, "commits": res.commits, "inputs": res.inputs, "outputs": res.outputs}
    if res.identical:
        if as_json:
            typer.echo(json.dumps({**summary, "identical": True, "notes": res.notes}, sort_keys=True))
        else:
            for note in res.notes:
                typer.echo(f"note: {note}", err=True)
            typer.echo(f"identical: {res.processor}: {res.commits} commits of {res.tasks} task(s), {res.inputs:,} inputs, "
                       f"{res.outputs:,} outputs regenerated and equal to the log")
        return
    d = res.divergence
    assert d is not None
    report = {
        **summary, "identical": False, "task": d.task, "commit": d.seq, "kind": d.kind,
        ("record" if d.kind == "foreign" else "input"): {"topic": d.source[0], "partition": d.source[1], "offset": d.source[2]},
        "expected": describe_rows(serde, d.expected), "actual": describe_rows(serde, d.actual),
    }
    if as_json:
        typer.echo(json.dumps(report, sort_keys=True, default=str))
    else:
        if d.kind == "foreign":
            typer.echo(f"DIVERGENCE (foreign): {d.source[0]}/{d.source[1]}@{d.source[2]} lies in the verified range of the "
                       f"output but {res.processor} did not write it (its lineage leads to none of its inputs)")
        else:
            typer.echo(f"DIVERGENCE ({d.kind}) in task {d.task}, commit {d.seq}, caused by input {d.source[0]}/{d.source[1]}@{d.source[2]}")
        typer.echo("expected (what the code produces):")
        for row in report["expected"] or ["(nothing)"]:
            typer.echo(f"  {json.dumps(row, default=str)}")
        typer.echo("actual (what is on the log):")
        for row in report["actual"] or ["(nothing)"]:
            typer.echo(f"  {json.dumps(row, default=str)}")
        typer.echo("hint: see RUNBOOK.md 'verify reports a divergence'", err=True)
    sys.exit(1)
