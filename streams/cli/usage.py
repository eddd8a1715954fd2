"""How the root command treats its input before and after click parses it.

* Global options (``--log``, ``--data``, ``--schema-registry``, ``--clickhouse``) are accepted anywhere on the
  command line: :func:`hoist_global_options` moves them in front of the subcommand, so
  ``hftstream topics apply --log URL`` works as users type it, for every command, without
  declaring the options on each one.
* Click's usage errors (a bad option value, a missing argument, an unknown option) come out
  like every other hftstream error: ``error: ...`` and a ``hint: ...`` that works, exit 2
  (:func:`usage_failure`), instead of click's boxed usage message.
* Flags show no ``<bool>`` type in ``--help`` (:func:`hide_flag_types`).
"""

from __future__ import annotations

from typing import NoReturn

import sys
from typing import Any

import typer

from streams.cli.common import fail

# typer >= 0.29 vendors click (``typer._click``); older typer raises click's own classes. Take them
# from wherever ``typer.BadParameter`` comes from, so both work.
UsageError: Any = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
_EXC = sys.modules[UsageError.__module__]
BadParameter: Any = typer.BadParameter
MissingParameter: Any = _EXC.MissingParameter
NoArgsIsHelpError: Any = _EXC.NoArgsIsHelpError

# Root options that take a value and may appear after the subcommand.
GLOBAL_VALUE_OPTIONS = ("--log", "--data", "--schema-registry", "--clickhouse")


def hoist_global_options(args: list[str]) -> list[str]:
    """``args`` with every global option (and its value) moved to the front, order kept.

    Handles ``--log URL`` and ``--log=URL``; stops at ``--`` (everything after it is data).
    A later occurrence still wins, as it would in place. A global option without a value is
    left where it is, so click reports it.
    """
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        name = arg.split("=", 1)[0]
        if name in GLOBAL_VALUE_OPTIONS:
            if "=" in arg:
                front.append(arg)
            elif i + 1 < len(args):
                front.extend(args[i : i + 2])
                i += 1
            else:
                rest.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest


def usage_hint(exc: Any) -> str:
    """A hint for a click usage error: what the offending option is for, and which ``--help`` to read."""
    ctx = exc.ctx
    path = ctx.command_path if ctx is not None else "hftstream"
    see = f"`{path} --help` shows every option with examples"
    param = getattr(exc, "param", None)
    if isinstance(exc, BadParameter) and param is not None:
        opts = [o for o in param.opts if o.startswith("--")] or list(param.opts)
        label = opts[0] if getattr(param, "param_type_name", "") == "option" else (param.name or "").upper()
        about = (getattr(param, "help", None) or "").strip().rstrip(".")
        if isinstance(exc, MissingParameter):
            return f"give {label}" + (f" ({about})" if about else "") + f"; {see}"
        return f"{label}: {about}; {see}" if about else see
    if ctx is not None and hasattr(ctx.command, "list_commands"):
        return f"`{path} --help` lists the commands, each with examples"
    return see


def usage_failure(exc: Any) -> NoReturn:
    """Print a click usage error the hftstream way and exit 2."""
    message = exc.format_message().strip()
    fail(message[:1].lower() + message[1:], hint=usage_hint(exc), code=2)


def hide_flag_types() -> None:
    """Drop typer's ``<bool>`` type label from flags in ``--help``: a flag takes no value."""
    from typer.core import TyperOption

    if getattr(TyperOption.display_type_rich, "_hftstream", False):
        return
    shown = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    display_type_rich._hftstream = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]
