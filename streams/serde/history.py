"""Released schema versions: check current schemas against them, and freeze new ones.

A release is a frozen, self-contained copy of a schema in
``schemas/releases/<full name>/v<N>.avsc``. The serde decodes data written with any
released version, so a current schema must stay backward compatible with *every*
release of its name (which is the same as with the last one whenever each release
passed this check, and catches hand-edited history when not).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from streams.errors import SchemaCompatibilityError
from streams.serde.compat import problems as compat_problems
from streams.serde.repo import SchemaRepo, same_definition

Status = Literal["unchanged", "compatible", "new", "breaking"]


@dataclass(frozen=True, slots=True)
class CheckResult:
    """How one current schema relates to its releases."""

    name: str
    status: Status
    last_release: int | None  # latest released version number, None when never released
    problems: list[str] = field(default_factory=list)

    @property
    def next_version(self) -> int:
        """The version number a release would get."""
        return (self.last_release or 0) + 1


def check(repo: SchemaRepo, names: list[str] | None = None) -> list[CheckResult]:
    """Compare each current schema (default: all) with every released version of it."""
    results = []
    for name in names if names is not None else repo.names():
        cur = repo.current(name)
        history = repo.releases(name)
        if not history:
            results.append(CheckResult(name, "new", None))
            continue
        last = history[-1]
        if same_definition(cur.schema, last.schema):
            results.append(CheckResult(name, "unchanged", last.version))
            continue
        found = []
        for old in history:
            found += [f"(vs v{old.version}) {p}" for p in compat_problems(cur.schema, old.schema)]
        results.append(CheckResult(name, "breaking" if found else "compatible", last.version, found))
    return results


def removed(repo: SchemaRepo) -> list[str]:
    """Released names that are no longer current schemas (their data still decodes with the frozen writer schema)."""
    current = set(repo.names())
    return [n for n in repo.released_names() if n not in current]


def renamed(repo: SchemaRepo) -> list[tuple[str, str]]:
    """``(released name, current name)`` for each released record that lost its name to a namespace change:
    it is gone from the current schemas and a current record has the same short name in another namespace.

    The full name is a record's identity: data written as the old name does not resolve against the new one.
    """
    gone = removed(repo)
    by_short: dict[str, list[str]] = {}
    for name in repo.names():
        by_short.setdefault(name.rpartition(".")[2], []).append(name)
    return [(old, new) for old in gone for new in by_short.get(old.rpartition(".")[2], [])]


def topic_problems(repo: SchemaRepo, declared: Mapping[str, Sequence[str]]) -> list[str]:
    """Schemas that topics declare (``{topic: [value schema, ...]}``) but that are not current schemas.

    A released schema removed (or renamed) while a topic still declares it breaks every reader
    of that topic; a name that never existed is a typo in the topics file.
    """
    current = set(repo.names())
    out = []
    for topic in sorted(declared):
        for name in declared[topic]:
            if name in current:
                continue
            history = repo.releases(name)
            if history:
                out.append(
                    f"{name} (released v{history[-1].version}) is gone from the schemas folder (removed or renamed), "
                    f"but topic {topic} declares it"
                )
            else:
                out.append(f"{name} is not a schema in the schemas folder, but topic {topic} declares it")
    return out


def release(repo: SchemaRepo, names: list[str] | None = None) -> list[tuple[CheckResult, str | None]]:
    """Freeze every changed (or new) schema among ``names`` (default: all) as its next version.

    All or nothing: when any of them breaks compatibility nothing is written and
    :class:`SchemaCompatibilityError` lists every problem. Returns (result, path written
    or ``None`` when unchanged) per schema.
    """
    results = check(repo, names)
    broken = [r for r in results if r.status == "breaking"]
    if broken:
        lines = [f"{r.name}: {p}" for r in broken for p in r.problems]
        raise SchemaCompatibilityError(
            f"refusing to release: {len(broken)} schema(s) break backward compatibility:\n  " + "\n  ".join(lines),
            hint="add new fields with a default, keep field types (or use an Avro promotion), keep enum symbols "
            "(or give the enum a default); `hftstream schemas check` lists every break",
        )
    out: list[tuple[CheckResult, str | None]] = []
    for r in results:
        if r.status == "unchanged":
            out.append((r, None))
            continue
        path = repo.release_path(r.name, r.next_version)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".avsc.tmp")
        tmp.write_text(repo.current(r.name).json(indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        out.append((r, str(path)))
    return out
