"""The tape's DDL: numbered migrations in ``infra/clickhouse/migrations/``, applied once each, in order.

``NNNN_name.sql`` files hold ``;``-terminated statements. :func:`migrate` records each applied
migration in ``tape.schema_migrations``; a migration already recorded is skipped, so ``tape init``
is idempotent. Statements are written to be re-runnable (``IF NOT EXISTS``, ``ADD COLUMN IF NOT
EXISTS``): a migration interrupted half-way is simply applied again. Schema changes are new
migrations (``ALTER TABLE ... ADD COLUMN``), never drops of data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.config import data_dir
from streams.errors import ConfigError

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LEDGER = """
CREATE TABLE IF NOT EXISTS tape.schema_migrations
(
    `version` UInt32,
    `name` String,
    `applied_at` DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree
ORDER BY version
COMMENT 'Migrations of infra/clickhouse/migrations applied to this tape'
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def migrations_dir() -> Path:
    return data_dir("infra") / "clickhouse" / "migrations"


def split_statements(sql: str) -> list[str]:
    """``;``-terminated statements of ``sql``, with ``--`` comment lines dropped (no ``;`` inside literals, by convention)."""
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in body.split(";\n") if s.strip().rstrip(";").strip()]


def load_migrations(folder: Path | None = None) -> list[Migration]:
    """Every migration in ``folder`` (default: the repo's), sorted by version; refuses gaps and stray files."""
    folder = folder or migrations_dir()
    out = []
    for path in sorted(folder.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise ConfigError(f"migration file {path} is not named NNNN_name.sql", hint="rename it, e.g. 0002_add_column.sql")
        out.append(Migration(int(m.group(1)), m.group(2), tuple(s.rstrip(";") for s in split_statements(path.read_text()))))
    versions = [m.version for m in out]
    if versions != list(range(1, len(out) + 1)):
        raise ConfigError(f"migrations in {folder} are not numbered 1..N without gaps: {versions}", hint="number them 0001, 0002, ...")
    return out


def applied_versions(client: Any) -> set[int]:
    """Migration versions recorded on the tape (empty when the tape was never initialised)."""
    exists = client.query("SELECT count() FROM system.tables WHERE database = 'tape' AND name = 'schema_migrations'").result_rows[0][0]
    if not exists:
        return set()
    return {int(r[0]) for r in client.query("SELECT version FROM tape.schema_migrations FINAL").result_rows}


def migrate(client: Any, folder: Path | None = None) -> list[Migration]:
    """Apply the migrations not yet recorded, in order; return those applied (empty: the tape was up to date)."""
    todo = [m for m in load_migrations(folder) if m.version not in applied_versions(client)]
    if todo:
        client.command("CREATE DATABASE IF NOT EXISTS tape")
        client.command(_LEDGER)
    from clickhouse_connect.driver.exceptions import ClickHouseError

    for mig in todo:
        for statement in mig.statements:
            try:
                client.command(statement)
            except ClickHouseError as exc:
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ConfigError(
                    f"migration {mig.version:04d}_{mig.name} failed: {first}",
                    hint="fix the migration in infra/clickhouse/migrations and run `hftstream tape init` again (applied statements are re-runnable)",
                ) from None
        client.insert("tape.schema_migrations", [[mig.version, mig.name]], column_names=["version", "name"])
    return todo


def pending(client: Any, folder: Path | None = None) -> list[Migration]:
    """Migrations not yet applied to the tape."""
    done = applied_versions(client)
    return [m for m in load_migrations(folder) if m.version not in done]
