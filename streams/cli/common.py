"""What every command shares: global options, opening the log and the serde, and error output."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

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


def duration_ns(text: str | None, option: str = "--span") -> int | None:
    """A duration option: ``5m``, ``18s``, ``500ms``, ``250us``, ``2h``, or integer ns (``None`` stays ``None``)."""
    if text is None:
        return None
    units = (("ms", 1_000_000), ("us", 1_000), ("ns", 1), ("s", 1_000_000_000), ("m", 60_000_000_000), ("h", 3_600_000_000_000))
    raw = text.strip().lower()
    for suffix, scale in units:
        if raw.endswith(suffix):
            number = raw[: -len(suffix)]
            break
    else:
        number, scale = raw, 1
    try:
        value = int(number) * scale
    except ValueError:
        fail(f"{option} {text!r} is not a duration", hint=f"e.g. {option} 5m, {option} 18s, {option} 500ms, or integer nanoseconds")
    if value <= 0:
        fail(f"{option} {text!r} must be positive", hint=f"e.g. {option} 5m")
    return value


def progress_enabled() -> bool:
    """Progress bars only on an interactive terminal: pipes and CI get clean output."""
    return sys.stderr.isatty()


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A plain, fixed-width text table: text columns left-aligned, numbers right-aligned."""
    cells = [headers] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [all(isinstance(row[i], int) for row in rows) and bool(rows) for i in range(len(headers))]
    lines = []
    for r in cells:
        parts = [c.rjust(w) if num else c.ljust(w) for c, w, num in zip(r, widths, numeric)]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


@contextmanager
def progress(description: str, total: int | None) -> Iterator[Callable[[int, int | None], None] | None]:
    """A rich progress bar on stderr when stderr is a terminal; ``None`` (no output) otherwise."""
    if not progress_enabled():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=Console(stderr=True), transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)

        def update(done: int, new_total: int | None = None) -> None:
            bar.update(task, completed=done, total=new_total if new_total is not None else total)

        yield update
