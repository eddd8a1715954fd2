"""What every command shares: global options, opening the log and the serde, and error output."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn

import typer

from streams.config import HftSettings
from streams.errors import HftError

if TYPE_CHECKING:
    from streams.log import Log
    from streams.serde import Serde


@dataclass
class AppState:
    """Global options, parsed once in the root callback and handed to every command."""

    settings: HftSettings = field(default_factory=HftSettings)
    _log: Log | None = None
    _serde: Serde | None = None

    def log(self) -> Log:
        """The configured log, opened on first use."""
        if self._log is None:
            from streams.log import open_log

            self._log = open_log(self.settings.log)
        return self._log

    def serde(self) -> Serde:
        """The Avro serde: single-object encoding, or the registry's wire format when one is configured."""
        if self._serde is None:
            from streams.serde import Serde

            self._serde = Serde.from_settings(self.settings)
        return self._serde

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def state(ctx: typer.Context) -> AppState:
    """The :class:`AppState` of the running command."""
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState()
    return root.obj


def fail(message: str, *, hint: str = "", code: int = 2) -> NoReturn:
    """Print ``error: message`` (and a hint) to stderr and exit with ``code``. Never a traceback."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    if hint:
        typer.echo(f"hint: {hint}", err=True)
    raise typer.Exit(code)


def report(exc: HftError) -> NoReturn:
    """Turn an :class:`HftError` into a clean CLI failure."""
    fail(str(exc), hint=getattr(exc, "hint", ""), code=2)


def progress_enabled() -> bool:
    """Progress bars only on an interactive terminal: pipes and CI get clean output."""
    return sys.stderr.isatty()
