"""``hftstream schemas``: list and show the Avro schemas, check backward compatibility, release versions.

The schemas folder is ``--schemas-dir``, else ``HFTSTREAM_SCHEMAS_DIR``, else the repo's ``schemas/``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from streams.cli.common import fail, state

if TYPE_CHECKING:
    from streams.serde import SchemaRepo

app = typer.Typer(no_args_is_help=True)

SCHEMAS_DIR = typer.Option(
    None,
    "--schemas-dir",
    help="Folder of .avsc files (default: HFTSTREAM_SCHEMAS_DIR, else the repo's schemas/).",
    file_okay=False,
)


def _repo(ctx: typer.Context, schemas_dir: Path | None) -> SchemaRepo:
    from streams.serde import SchemaRepo

    return SchemaRepo.load(schemas_dir or state(ctx).settings.schemas_dir)


def _label(repo: SchemaRepo, name: str) -> str:
    cur = repo.current(name)
    if cur.version is not None:
        return f"v{cur.version}"
    history = repo.releases(name)
    return f"v{(history[-1].version if history else 0) + 1}*"


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    schemas_dir: Path = SCHEMAS_DIR,
    as_json: bool = typer.Option(False, "--json", help='Print a JSON array of {"name", "version", "released", "fingerprint"}.'),
) -> None:
    """List every record schema with its version and CRC-64-AVRO fingerprint.

    A version marked * is the current file's content, not released yet (`hftstream schemas release`).
    The fingerprint is shown as written on the wire after 0xC3 0x01 (little-endian hex).

    Example: hftstream schemas list --json
    """
    repo = _repo(ctx, schemas_dir)
    rows = [(n, _label(repo, n), repo.current(n).fingerprint_hex) for n in repo.names()]
    if as_json:
        typer.echo(json.dumps([{"name": n, "version": v.rstrip("*"), "released": not v.endswith("*"), "fingerprint": f} for n, v, f in rows]))
        return
    width = max((len(n) for n, _, _ in rows), default=4)
    typer.echo(f"{'NAME':<{width}}  VERSION  FINGERPRINT")
    for n, v, f in rows:
        typer.echo(f"{n:<{width}}  {v:<7}  {f}")


@app.command("show")
def show_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Full record name, e.g. hftstream.md.Trade."),
    schemas_dir: Path = SCHEMAS_DIR,
    version: int = typer.Option(None, "--version", "-v", help="Show released version N instead of the current one."),
    canonical: bool = typer.Option(False, "--canonical", help="Print the Parsing Canonical Form (what the fingerprint covers)."),
) -> None:
    """Print one schema, self-contained (shared types expanded), as JSON.

    Example: hftstream schemas show hftstream.md.Trade --version 1
    """
    repo = _repo(ctx, schemas_dir)
    ver = repo.current(name)
    if version is not None:
        history = {v.version: v for v in repo.releases(name)}
        if version not in history:
            have = ", ".join(f"v{n}" for n in history) or "none"
            fail(f"{name} has no released version v{version} (released: {have})", hint="`hftstream schemas list` shows the current versions")
        ver = history[version]
    typer.echo(ver.canonical if canonical else ver.json(indent=2))


@app.command("check")
def check_cmd(
    ctx: typer.Context,
    schemas_dir: Path = SCHEMAS_DIR,
    topics_file: Path = typer.Option(
        None, "--topics-file", help="Topic declarations whose value schemas must exist (default: infra/topics.yaml or HFTSTREAM_TOPICS_FILE).",
        dir_okay=False,
    ),
) -> None:
    """Check every current schema against its released versions (backward compatibility), and the
    schemas that infra/topics.yaml declares against what exists.

    Fails (exit 1, listing each problem) on a change that old data could not be read through, on a
    released schema that was removed or renamed while a topic still declares it, on a topic that declares
    an unknown schema, and on a namespace change of a released schema (the full name is its identity).

    Example: hftstream schemas check --schemas-dir ./schemas --topics-file infra/topics.yaml
    """
    from streams.serde.history import check, removed, renamed, topic_problems
    from streams.topics import load_catalog

    repo = _repo(ctx, schemas_dir)
    catalog = load_catalog(topics_file or state(ctx).settings.topics_file)
    results = check(repo)
    broken = [r for r in results if r.status == "breaking"]
    for r in broken:
        for p in r.problems:
            typer.echo(f"BREAKING {r.name} (released v{r.last_release}): {p}")
    moved = renamed(repo)
    for old, new in moved:
        typer.echo(
            f"BREAKING {old} (released v{repo.releases(old)[-1].version}): namespace changed to {new}; "
            f"records written as {old} cannot be read as {new}"
        )
    declared = {spec.name: spec.value_schema.split(",") for spec in catalog.all() if spec.value_schema}
    declared.update({t.name: t.value_schema.split(",") for _, t in catalog.templates if t.value_schema})
    missing = topic_problems(repo, declared)
    for m in missing:
        typer.echo(f"MISSING {m} ({catalog.source})")
    counts = {s: sum(r.status == s for r in results) for s in ("unchanged", "compatible", "new", "breaking")}
    gone = removed(repo)
    summary = (
        f"{len(results)} schemas: {counts['unchanged']} unchanged, {counts['compatible']} compatible change(s), "
        f"{counts['new']} new, {counts['breaking']} breaking"
        + (f"; {len(gone)} released but removed: {', '.join(gone)}" if gone else "")
    )
    if broken:
        fail(
            f"{len(broken)} schema(s) break backward compatibility ({sum(len(r.problems) for r in broken)} problem(s)); {summary}",
            hint="add new fields with a default, keep field types (or use an Avro promotion), keep enum symbols; "
            "or give the record a new name",
            code=1,
        )
    if moved or missing:
        fail(
            "; ".join(
                part for part in (
                    f"{len(moved)} released schema(s) changed namespace" if moved else "",
                    f"{len(missing)} schema(s) declared by topics are missing" if missing else "",
                ) if part
            ) + f"; {summary}",
            hint="restore the removed .avsc (or its old namespace): released data and the topics that declare it need "
            f"that name; to move a topic to another record, add the new record next to the old one and update {catalog.source.name}",
            code=1,
        )
    pending = counts["compatible"] + counts["new"]
    typer.echo(f"ok: {summary}" + (f" ({pending} to release with `hftstream schemas release`)" if pending else ""))


@app.command("release")
def release_cmd(
    ctx: typer.Context,
    names: list[str] = typer.Argument(None, help="Record names to release (default: every changed or new schema)."),
    schemas_dir: Path = SCHEMAS_DIR,
) -> None:
    """Freeze each changed (or new) schema as its next version under schemas/releases/.

    Refuses, writing nothing, when any of them breaks backward compatibility.

    Example: hftstream schemas release hftstream.md.Trade
    """
    from streams.serde.history import release

    repo = _repo(ctx, schemas_dir)
    for n in names or []:
        repo.current(n)  # unknown name -> UnknownSchemaError, before writing anything
    done = release(repo, list(names) if names else None)
    written = [(r, p) for r, p in done if p]
    for r, p in written:
        typer.echo(f"released {r.name} v{r.next_version} -> {p}")
    typer.echo(f"{len(written)} released, {len(done) - len(written)} unchanged", err=True)
