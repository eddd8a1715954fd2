"""Every `hftstream ...` command line that README, RUNBOOK, the CLI's help and its hints name must exist.

A hint that names a command or a flag the CLI does not have (`hftstream log tail`, `replay --committed-only`)
sends a user into a second error. This collects the command lines quoted in the docs (code blocks and
`inline code`) and in the code (backticked hints, help examples), walks each through the real command tree
and checks every subcommand and every `--flag` it names.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer.main

from streams.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
_INLINE = re.compile(r"`([^`\n]*\bhftstream [^`\n]*)`")
_SEPARATORS = re.compile(r"&&|\|\||\||;|\s#\s|\$\(|\)")


def _segments(text: str) -> list[str]:
    """The parts of a shell line that run ``hftstream``: split at ``&&``, ``|``, ``;``, comments."""
    out = []
    for part in _SEPARATORS.split(text):
        part = part.strip().removeprefix("$ ").strip()
        if re.match(r"(\S+/)?hftstream\s+[a-z-]", part):
            out.append(part)
    return out


def _named(path: Path) -> list[tuple[str, str]]:
    """``(where, command line)`` for every hftstream command line quoted in ``path``."""
    text = path.read_text(encoding="utf-8")
    found: list[tuple[int, str]] = []
    fenced = False
    for n, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if path.suffix == ".md" and stripped.startswith("```"):
            fenced = not fenced
            continue
        candidates = [m.group(1) for m in _INLINE.finditer(line)]
        if fenced or (path.suffix == ".py" and re.match(r"(Example:\s+)?hftstream [a-z]", stripped.strip("\"'"))):
            candidates.append(stripped.strip("\"'").removeprefix("Example:").strip())
        found += [(n, seg) for c in candidates for seg in _segments(c.replace('\\"', '"'))]
    return [(f"{path.relative_to(ROOT)}:{n}", seg) for n, seg in found]


def _sources() -> list[Path]:
    code = [p for d in ("streams", "connectors") for p in sorted((ROOT / d).rglob("*.py"))]
    return [ROOT / "README.md", ROOT / "RUNBOOK.md", *code]


def _tokens(line: str) -> list[str]:
    try:
        return shlex.split(line, comments=True)
    except ValueError:
        return line.split()


def _options(cmd: Any) -> set[str]:
    return {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}


def check(line: str) -> str | None:
    """Why ``line`` does not name an existing command and flags, or ``None``."""
    root = typer.main.get_command(app)
    cmd: Any = root
    path = ["hftstream"]
    for tok in _tokens(line)[1:]:
        if tok.startswith("-"):
            name = tok.split("=", 1)[0].rstrip("\"'")
            if name.startswith("--") and name not in _options(cmd) | _options(root) | {"--help"}:
                return f"`{' '.join(path)}` has no option {name}"
            continue
        if hasattr(cmd, "commands"):  # a group (typer vendors its own click)
            if not re.fullmatch(r"[a-z][a-z-]*", tok):
                return None  # a placeholder (COMMAND, <name>, ...)
            sub = cmd.commands.get(tok)
            if sub is None:
                return f"`{' '.join(path)}` has no subcommand {tok!r}"
            cmd, path = sub, [*path, tok]
            continue
        # an argument or an option's value: nothing to check
    return None


CASES = [(where, line) for src in _sources() for where, line in _named(src)]


def test_the_docs_and_hints_name_commands_at_all():
    assert len(CASES) > 100  # the extraction finds them (README alone quotes dozens)
    assert any("RUNBOOK.md" in w for w, _ in CASES) and any(w.startswith("streams/") for w, _ in CASES)


@pytest.mark.parametrize("line", ["hftstream log tail fills", "hftstream replay -t fills --committed-only", "hftstream nosuch"])
def test_the_check_catches_what_does_not_exist(line):
    assert check(line) is not None


def test_every_named_command_and_flag_exists():
    bad = [f"{where}: {line!r}: {why}" for where, line in CASES if (why := check(line))]
    assert not bad, "\n".join(bad)


def _all_options() -> set[str]:
    def walk(cmd: Any) -> set[str]:
        subs = getattr(cmd, "commands", {})
        return _options(cmd).union(*(walk(s) for s in subs.values())) if subs else _options(cmd)

    return walk(typer.main.get_command(app)) | {"--help"}


def test_every_flag_the_docs_quote_alone_exists_on_some_command():
    """`--committed-only` quoted on its own in RUNBOOK: no command has it."""
    known = _all_options()
    bad = []
    for doc in ("README.md", "RUNBOOK.md"):
        for n, line in enumerate((ROOT / doc).read_text(encoding="utf-8").splitlines(), 1):
            for flag in re.findall(r"`(--[a-z][a-z0-9-]*)[ =`]", line):
                if flag not in known and flag.split("/")[0] not in known:
                    bad.append(f"{doc}:{n}: {flag}")
    assert not bad, "\n".join(bad)
