"""``hftstream``: the trading-data pipeline's command line.

Global options (``--log``, ``--data``, ``--schema-registry``, ``--clickhouse``) go before or after the
subcommand (``hftstream topics list --log kafka://127.0.0.1:9092``) and default to
``HFTSTREAM_*`` environment variables, then to the embedded log in ``./hftstream-data/log``.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from streams.cli.common import AppState, report
from streams.cli.usage import NoArgsIsHelpError, UsageError, hide_flag_types, hoist_global_options, usage_failure
from streams.config import DEFAULT_DATA_DIR, HftSettings, log_url_for
from streams.errors import HftError

hide_flag_types()


class _Group(TyperGroup):
    """Root group: global options anywhere on the line; every error as ``error: ...`` + ``hint: ...``, exit 2.

    Covers :class:`HftError` from any command and click's usage errors (bad option values,
    missing arguments) from the root or any subcommand. Asking for help with no arguments
    (``hftstream topics``) still prints the help.
    """

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        try:
            return super().make_context(info_name, hoist_global_options(list(args)), parent, **extra)
        except NoArgsIsHelpError:
            raise
        except UsageError as exc:
            usage_failure(exc)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except HftError as exc:
            report(exc)
        except NoArgsIsHelpError:
            raise
        except UsageError as exc:
            usage_failure(exc)


app = typer.Typer(
    name="hftstream",
    cls=_Group,
    no_args_is_help=True,
    invoke_without_command=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

# (module, attribute, name, help) -- each sub-app lives in its own module under streams/cli/.
SUBCOMMANDS: list[tuple[str, str, str, str]] = [
    ("streams.cli.topics", "app", "topics", "Declare, create and inspect topics (infra/topics.yaml).\n\n"
     "Example: hftstream topics apply && hftstream topics list"),
    ("streams.cli.feed", "app", "feed", "Publish venue feeds: a deterministic simulator, or a recorded file.\n\n"
     "Example: hftstream feed simulate --venues 3 --events 10000 --seed 7"),
    ("streams.cli.refdata", "app", "refdata", "Instrument reference data: load it from a YAML/JSON/CSV file onto refdata.instruments, list it.\n\n"
     "Example: hftstream refdata load instruments.yaml && hftstream refdata list"),
    ("streams.cli.orders", "app", "orders", "Publish simulated client order flow (with a signed operator script) that exercises risk and matching.\n\n"
     "Example: hftstream orders simulate --accounts 4 --orders 10000 --seed 7"),
    ("streams.cli.schemas", "app", "schemas", "Avro schemas: list them, check backward compatibility, release versions.\n\n"
     "Example: hftstream schemas check"),
    ("streams.cli.log", "app", "log", "Embedded log maintenance: verify segments, repair a corrupt partition, compact, retain.\n\n"
     "Example: hftstream log check"),
    ("streams.cli.ops", "app", "ops", "Operator commands, signed: halt, resume, reduce-only, kill, cancel-all, set-limit; and the trading state.\n\n"
     "Example: hftstream ops halt --scope symbol:AAPL --reason news"),
    ("streams.cli.tape", "app", "tape", "The tape: every record in ClickHouse (chDB in DATA/tape, or a server), exactly once; query it.\n\n"
     "Example: hftstream tape init && hftstream tape sink --until-idle && hftstream tape query \"SELECT count() FROM tape.md_trades\""),
    ("streams.cli.dashboards", "app", "dashboards", "Grafana dashboards over the tape (dashboards/*.json): run every panel's SQL against the tape.\n\n"
     "Example: hftstream dashboards check --data hftstream-data"),
    ("streams.cli.dev", "app", "dev", "Developer tools: a local Apache Kafka broker (KRaft) for development. Benchmarks: make bench.\n\n"
     "Example: hftstream dev kafka --detach"),
]


@app.callback()
def root(
    ctx: typer.Context,
    log: str = typer.Option(
        None,
        "--log",
        envvar="HFTSTREAM_LOG",
        help="Log URL: embedded://PATH or kafka://HOST:PORT[,HOST:PORT]. Default: embedded://DATA/log. May follow the subcommand.",
        show_envvar=True,
    ),
    data: Path = typer.Option(
        None,
        "--data",
        envvar="HFTSTREAM_DATA",
        help=f"Local data folder: the embedded log lives in DATA/log (unless --log says otherwise). Default: ./{DEFAULT_DATA_DIR}. May follow the subcommand.",
        show_envvar=True,
        file_okay=False,
    ),
    schema_registry: str = typer.Option(
        None,
        "--schema-registry",
        envvar="HFTSTREAM_SCHEMA_REGISTRY",
        help="Confluent schema registry URL. Unset: Avro single-object encoding with schemas from schemas/. May follow the subcommand.",
        show_envvar=True,
    ),
    clickhouse: str = typer.Option(
        None,
        "--clickhouse",
        envvar="HFTSTREAM_CLICKHOUSE_URL",
        help="The tape: a ClickHouse server URL (http://HOST:8123). Default: the embedded engine (chDB) in DATA/tape. May follow the subcommand.",
        show_envvar=True,
    ),
    version: bool = typer.Option(False, "--version", help="Print the hftstream version and exit.", is_eager=True),
) -> None:
    """Trading data as Avro records on a partitioned log: feeds, topics, replay, and the pipeline.

    Global options may come before or after the subcommand.

    Examples:

      hftstream demo

      hftstream topics apply --log kafka://127.0.0.1:9092

      hftstream replay -t md.raw.alpha --from-offset 0 --format table --data /srv/hftstream
    """
    if version:
        from streams import __version__
        from streams.native import status

        typer.echo(f"hftstream {__version__} ({status()})")
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit()
    overrides = {k: v for k, v in {"log": log, "data": data, "schema_registry": schema_registry, "clickhouse_url": clickhouse}.items() if v}
    if data and _from_command_line(ctx, "data") and not _from_command_line(ctx, "log"):
        overrides["log"] = log_url_for(data)  # --data on the command line beats HFTSTREAM_LOG from the environment
    st = AppState(settings=HftSettings(**overrides))
    ctx.obj = st
    ctx.call_on_close(st.close)


def _from_command_line(ctx: typer.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


def _register() -> None:
    from streams.cli import replay as replay_cmd
    from streams.cli import demo as demo_cmd

    from streams.cli import run as run_cmd

    app.command("replay")(replay_cmd.replay)
    app.command("demo")(demo_cmd.demo)
    app.command("run", epilog=run_cmd.RUN_EXAMPLES)(run_cmd.run)
    app.command("status")(run_cmd.status)
    app.command("verify")(run_cmd.verify)
    for module, attr, name, help_text in SUBCOMMANDS:
        try:
            sub = getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as exc:  # a sub-app not built yet must not break the others
            if exc.name != module:
                raise
            continue
        app.add_typer(sub, name=name, help=help_text)


_register()


def main() -> None:
    """Console entry point: run the app, turning hftstream errors into a message and exit code 2."""
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
