"""``hftstream dev``: developer tools -- a local Apache Kafka broker (KRaft mode) on 127.0.0.1.

The broker is ``infra/kafka/launcher.py`` (stdlib only, also runnable on its own); this
module imports it by path so the CLI and the script share one implementation.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import typer

from streams.config import data_dir
from streams.errors import ConfigError, HftError

app = typer.Typer(no_args_is_help=True, help="Developer tools: a local Kafka broker.")

LAUNCHER_MODULE = "hftstream_kafka_launcher"
DEFAULT_DETACHED_DIR = Path(".hftstream") / "kafka"


class LocalBrokerError(HftError):
    """The local Kafka broker could not be fetched, started or stopped."""

    hint = "read the message above; `python infra/kafka/launcher.py --help` lists the launcher's commands"


def load_launcher() -> ModuleType:
    """Import ``infra/kafka/launcher.py`` (located with :func:`streams.config.data_dir`)."""
    if LAUNCHER_MODULE in sys.modules:
        return sys.modules[LAUNCHER_MODULE]
    try:
        path = data_dir("infra") / "kafka" / "launcher.py"
    except FileNotFoundError:
        raise ConfigError("infra/ not found next to the package", hint="run from a source checkout") from None
    spec = importlib.util.spec_from_file_location(LAUNCHER_MODULE, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[LAUNCHER_MODULE] = module
    spec.loader.exec_module(module)
    return module


def _launcher_error(launcher: ModuleType, exc: Exception) -> HftError:
    if isinstance(exc, launcher.LauncherError):
        return LocalBrokerError(str(exc), hint=exc.hint or None)
    raise exc


@app.command("kafka")
def kafka(
    port: int = typer.Option(9092, "--port", help="PLAINTEXT port on 127.0.0.1 (0 picks a free one)."),
    data_dir_opt: Path = typer.Option(
        None,
        "--data-dir",
        help=f"Keep topics here across runs. Default: a temporary folder (foreground) or {DEFAULT_DETACHED_DIR} (--detach).",
    ),
    detach: bool = typer.Option(False, "--detach", help="Start in the background and return; stop with `dev kafka-stop`."),
) -> None:
    """Run a real Apache Kafka broker (KRaft mode) on 127.0.0.1 until Ctrl-C and print its log URL.

    Examples:

      hftstream dev kafka --port 9092

      hftstream dev kafka --detach && hftstream topics apply --log kafka://127.0.0.1:9092
    """
    launcher = load_launcher()
    target = data_dir_opt or (DEFAULT_DETACHED_DIR if detach else None)
    if target is not None and (running := launcher.read_state(target)):
        raise LocalBrokerError(
            f"a broker started from {target} already runs at {running['bootstrap']} (pid {running['pid']})",
            hint=f"use HFTSTREAM_LOG=kafka://{running['bootstrap']}, or stop it: hftstream dev kafka-stop --data-dir {target}",
        )
    try:
        handle = launcher.start_broker(port, target, detach=detach)
    except Exception as exc:  # LauncherError -> typed error; anything else propagates
        raise _launcher_error(launcher, exc) from None
    typer.echo(f"Kafka {handle.version} (KRaft) on {handle.bootstrap}, pid {handle.pid}, log {handle.log_path}")
    typer.echo(f"log URL: {handle.url}")
    typer.echo(f"  export HFTSTREAM_LOG={handle.url}")
    if detach:
        typer.echo(f"stop it with: hftstream dev kafka-stop --data-dir {target}")
        return
    typer.echo("Ctrl-C stops the broker" + ("" if data_dir_opt else " and deletes its temporary data"))
    try:
        launcher.run_foreground(handle)  # until Ctrl-C / SIGTERM; stops the broker either way
    except Exception as exc:
        raise _launcher_error(launcher, exc) from None
    typer.echo("broker stopped")


@app.command("kafka-stop")
def kafka_stop(
    data_dir_opt: Path = typer.Option(DEFAULT_DETACHED_DIR, "--data-dir", help="The --data-dir the broker was started with."),
) -> None:
    """Stop a broker started with `hftstream dev kafka --detach`.

    Example: hftstream dev kafka-stop --data-dir .hftstream/kafka
    """
    launcher = load_launcher()
    state = launcher.stop_detached(data_dir_opt)
    if state is None:
        typer.echo(f"no broker runs from {data_dir_opt}")
    else:
        typer.echo(f"stopped broker pid {state['pid']} on {state['bootstrap']}")
