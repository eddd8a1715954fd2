"""``hftstream``: the trading-data pipeline's command line.

Global options come first (``hftstream --log kafka://127.0.0.1:9092 topics list``)
and default to ``HFTSTREAM_*`` environment variables, then to the embedded log in
``./.hftstream/log``.
"""

from __future__ import annotations

import importlib
import sys

import typer
from typer.core import TyperGroup

from streams.cli.common import AppState, report
from streams.config import HftSettings
from streams.errors import HftError



class _Group(TyperGroup):
    """Root group: any :class:`HftError` from any command becomes ``error: ...`` + ``hint: ...``, exit 2."""

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except HftError as exc:
            report(exc)


app = typer.Typer(
    name="hftstream",
    cls=_Group,
    help="Trading data as Avro records on a partitioned log: feeds, topics, replay, and the pipeline.",
    no_args_is_help=True,
    invoke_without_command=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

# (module, attribute, name, help) -- each sub-app lives in its own module under streams/cli/.
SUBCOMMANDS: list[tuple[str, str, str, str]] = [
    ("streams.cli.topics", "app", "topics", "Declare, create and inspect topics (infra/topics.yaml)."),
    ("streams.cli.feed", "app", "feed", "Publish venue feeds: a deterministic simulator, or a recorded file."),
    ("streams.cli.schemas", "app", "schemas", "Avro schemas: list them, check backward compatibility, release versions."),
    ("streams.cli.log", "app", "log", "Embedded log maintenance: verify segments, repair a corrupt partition, compact, retain."),
    ("streams.cli.ops", "app", "ops", "Operator commands, signed: halt, resume, reduce-only, kill, cancel-all, set-limit; and the trading state."),
    ("streams.cli.dev", "app", "dev", "Developer tools: a local Apache Kafka broker (KRaft) for development. Benchmarks: make bench."),
]


@app.callback()
def root(
    ctx: typer.Context,
    log: str = typer.Option(
        None,
        "--log",
        envvar="HFTSTREAM_LOG",
        help="Log URL: embedded://PATH (default embedded://.hftstream/log) or kafka://HOST:PORT[,HOST:PORT].",
        show_envvar=True,
    ),
    schema_registry: str = typer.Option(
        None,
        "--schema-registry",
        envvar="HFTSTREAM_SCHEMA_REGISTRY",
        help="Confluent schema registry URL. Unset: Avro single-object encoding with schemas from schemas/.",
        show_envvar=True,
    ),
    version: bool = typer.Option(False, "--version", help="Print the hftstream version and exit.", is_eager=True),
) -> None:
    """Trading data as Avro records on a partitioned log."""
    if version:
        from streams import __version__

        typer.echo(f"hftstream {__version__}")
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit()
    overrides = {k: v for k, v in {"log": log, "schema_registry": schema_registry}.items() if v}
    st = AppState(settings=HftSettings(**overrides))
    ctx.obj = st
    ctx.call_on_close(st.close)


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
