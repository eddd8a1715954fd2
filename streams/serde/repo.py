"""The schema repository: every ``.avsc`` under ``schemas/``, parsed once, plus released history.

Layout (see ``schemas/README.md``)::

    schemas/hftstream/<family>/<Name>.avsc        current version, one named type per file
    schemas/releases/<full name>/v<N>.avsc        frozen, self-contained copy of released version N

A current file may refer to a named type defined in another file by its full name
(``"hftstream.common.Side"``) or, within the same namespace, by its short name. The
loader expands every top-level record into a self-contained schema (each referenced
type defined inline at its first use), so its Parsing Canonical Form, its fingerprint
and what a registry stores do not depend on how the files are split. Release files are
those expanded schemas, frozen: old data keeps decoding even after shared types move.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastavro import parse_schema

from streams.errors import ConfigError, UnknownSchemaError
from streams.serde.fingerprint import canonical_form, fingerprint

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
NAMED = frozenset({"record", "error", "enum", "fixed"})
RELEASES_DIR = "releases"

_SCHEMA_HINT = "fix the .avsc file named in the message (Avro 1.11 JSON schema syntax)"


@dataclass(frozen=True, slots=True)
class SchemaVersion:
    """One version of one top-level record schema.

    ``version`` is the released version number, or ``None`` for a current schema that
    differs from every release (changed since the last ``hftstream schemas release``).
    ``schema`` is the self-contained JSON form; ``parsed`` is fastavro's parsed form;
    ``fingerprint`` is the 8-byte CRC-64-AVRO of ``canonical`` as written on the wire.
    """

    name: str
    version: int | None
    schema: dict[str, Any]
    parsed: dict[str, Any]
    canonical: str
    fingerprint: bytes
    source: Path

    @property
    def fingerprint_hex(self) -> str:
        """The fingerprint as written on the wire, in hex (little-endian byte order)."""
        return self.fingerprint.hex()

    def json(self, *, indent: int | None = None) -> str:
        """The self-contained schema as JSON text (what a registry stores, what a release file holds)."""
        return json.dumps(self.schema, indent=indent)


def full_name(name: str, namespace: str | None) -> str:
    """Avro name resolution: a dotted name is already full; otherwise prefix the namespace."""
    if "." in name or not namespace:
        return name
    return f"{namespace}.{name}"


def _namespace_of(full: str) -> str | None:
    return full.rpartition(".")[0] or None


def same_definition(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """True when two release-file schemas are identical (docs, defaults and aliases included)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


class _Definitions:
    """Named types defined across the current ``.avsc`` files, and their expansion."""

    def __init__(self) -> None:
        self.defs: dict[str, tuple[dict[str, Any], Path]] = {}

    def collect(self, schema: Any, namespace: str | None, origin: Path) -> None:
        """Register every named type defined (inline) in ``schema``."""
        if isinstance(schema, list):
            for branch in schema:
                self.collect(branch, namespace, origin)
            return
        if not isinstance(schema, dict):
            return
        kind = schema.get("type")
        if kind in NAMED:
            if not isinstance(schema.get("name"), str):
                raise ConfigError(f"{origin}: a {kind} without a name", hint=_SCHEMA_HINT)
            full = full_name(schema["name"], schema.get("namespace", namespace))
            seen = self.defs.get(full)
            if seen is not None and seen[0] is not schema:
                raise ConfigError(
                    f"{full} is defined twice: in {seen[1]} and in {origin}",
                    hint="define each named type once (shared types get their own file) and refer to it by full name",
                )
            self.defs[full] = (schema, origin)
            if kind in ("record", "error"):
                for fld in schema.get("fields", []):
                    self.collect(fld.get("type"), _namespace_of(full), origin)
        elif kind == "array":
            self.collect(schema.get("items"), namespace, origin)
        elif kind == "map":
            self.collect(schema.get("values"), namespace, origin)
        elif isinstance(kind, (dict, list)):
            self.collect(kind, namespace, origin)

    def resolve(self, name: str, namespace: str | None, origin: Path) -> str:
        full = full_name(name, namespace)
        if full in self.defs:
            return full
        if name in self.defs:  # a full name without dots (null namespace)
            return name
        raise ConfigError(
            f"{origin}: unknown type {name!r} (looked for {full!r})",
            hint="refer to types defined in other files by their full name, e.g. hftstream.common.Side",
        )

    def expand(self, schema: Any, namespace: str | None, seen: set[str], origin: Path, *, top: bool = False) -> Any:
        """A self-contained copy of ``schema``: each named type defined at its first use, then referenced."""
        if isinstance(schema, str):
            if schema in PRIMITIVES:
                return schema
            full = self.resolve(schema, namespace, origin)
            if full in seen:
                return full
            definition, where = self.defs[full]
            return self.expand(definition, _namespace_of(full), seen, where)
        if isinstance(schema, list):
            return [self.expand(branch, namespace, seen, origin) for branch in schema]
        if not isinstance(schema, dict):
            raise ConfigError(f"{origin}: {schema!r} is not an Avro schema", hint=_SCHEMA_HINT)
        kind = schema.get("type")
        if kind in NAMED:
            full = full_name(schema["name"], schema.get("namespace", namespace))
            if full in seen:
                return full
            seen.add(full)
            out: dict[str, Any] = {}
            for key, val in schema.items():
                if key == "namespace":
                    continue
                if key == "name":
                    if top:
                        out["name"] = full.rpartition(".")[2]
                        if _namespace_of(full):
                            out["namespace"] = _namespace_of(full)
                    else:
                        out["name"] = full
                elif key == "fields":
                    out["fields"] = [
                        {k: (self.expand(v, _namespace_of(full), seen, origin) if k == "type" else copy.deepcopy(v)) for k, v in fld.items()}
                        for fld in val
                    ]
                else:
                    out[key] = copy.deepcopy(val)
            return out
        out = {}
        for key, val in schema.items():
            if (key == "items" and kind == "array") or (key == "values" and kind == "map") or (key == "type" and not isinstance(val, str)):
                out[key] = self.expand(val, namespace, seen, origin)
            elif key == "type" and val not in PRIMITIVES and val not in ("array", "map"):
                ref = self.expand(val, namespace, seen, origin)
                if len(schema) == 1:
                    return ref
                out[key] = ref
            else:
                out[key] = copy.deepcopy(val)
        return out


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}", hint=_SCHEMA_HINT) from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}", hint="check the schemas directory (HFTSTREAM_SCHEMAS_DIR)") from exc


def make_version(schema: dict[str, Any], version: int | None, source: Path) -> SchemaVersion:
    """Parse a self-contained schema once and fingerprint it."""
    try:
        parsed = parse_schema(copy.deepcopy(schema), named_schemas={})
        canonical = canonical_form(schema)
    except Exception as exc:  # fastavro raises SchemaParseException, UnknownType, ValueError...
        raise ConfigError(f"{source}: invalid Avro schema: {exc}", hint=_SCHEMA_HINT) from exc
    name = full_name(schema["name"], schema.get("namespace"))
    return SchemaVersion(name, version, schema, parsed, canonical, fingerprint(canonical), source)


class SchemaRepo:
    """Current schemas and their released history, parsed once. Build it with :meth:`load`."""

    def __init__(self, root: Path, current: dict[str, SchemaVersion], releases: dict[str, list[SchemaVersion]]) -> None:
        self.root = root
        self._current = current
        self._releases = releases
        self._by_fp: dict[bytes, SchemaVersion] = {}
        for versions in releases.values():
            for v in versions:
                self._by_fp[v.fingerprint] = v
        for v in current.values():
            self._by_fp[v.fingerprint] = v

    @classmethod
    def load(cls, path: Path | None = None) -> SchemaRepo:
        """Load ``path`` (default: :func:`streams.config.schemas_dir`): current schemas and every release."""
        if path is None:
            from streams.config import schemas_dir

            try:
                path = schemas_dir()
            except FileNotFoundError as exc:
                raise ConfigError("no schemas/ folder found", hint="set HFTSTREAM_SCHEMAS_DIR to the folder of .avsc files") from exc
        root = Path(path)
        if not root.is_dir():
            raise ConfigError(f"schemas folder {root} does not exist", hint="set HFTSTREAM_SCHEMAS_DIR (or --schemas-dir) to the folder of .avsc files")
        releases = _load_releases(root / RELEASES_DIR)
        current = _load_current(root)
        for name, ver in list(current.items()):
            history = releases.get(name, [])
            if history and same_definition(history[-1].schema, ver.schema):
                current[name] = SchemaVersion(ver.name, history[-1].version, ver.schema, ver.parsed, ver.canonical, ver.fingerprint, ver.source)
        return cls(root, current, releases)

    def names(self) -> list[str]:
        """Full names of the top-level record schemas, sorted."""
        return sorted(self._current)

    def schema(self, name: str) -> dict[str, Any]:
        """The current version of ``name`` as a self-contained JSON schema (a copy: yours to change).

        Shared named types are expanded inline at first use. fastavro's parsed form is
        ``current(name).parsed``.
        """
        return copy.deepcopy(self.current(name).schema)

    def current(self, name: str) -> SchemaVersion:
        """The current version of ``name``. Raises :class:`UnknownSchemaError`."""
        try:
            return self._current[name]
        except KeyError:
            raise UnknownSchemaError(
                f"unknown schema {name!r}",
                hint="use a full record name such as hftstream.md.Trade; `hftstream schemas list` shows them all",
            ) from None

    def releases(self, name: str) -> list[SchemaVersion]:
        """Released versions of ``name``, oldest first (empty when never released)."""
        return list(self._releases.get(name, []))

    def released_names(self) -> list[str]:
        """Names with at least one release (including records no longer current)."""
        return sorted(self._releases)

    def by_fingerprint(self, fp: bytes) -> SchemaVersion | None:
        """The version (current or released) whose fingerprint is ``fp``, if any."""
        return self._by_fp.get(fp)

    def versions(self) -> Iterator[SchemaVersion]:
        """Every distinct version known: releases then current, one per fingerprint."""
        return iter(self._by_fp.values())

    def release_path(self, name: str, version: int) -> Path:
        """Where version ``version`` of ``name`` is (or would be) frozen."""
        return self.root / RELEASES_DIR / name / f"v{version}.avsc"


def _load_current(root: Path) -> dict[str, SchemaVersion]:
    defs = _Definitions()
    tops: list[tuple[str, Path]] = []
    for path in sorted(root.rglob("*.avsc")):
        if path.relative_to(root).parts[0] == RELEASES_DIR:
            continue
        doc = _read_json(path)
        if not isinstance(doc, dict) or doc.get("type") not in NAMED:
            raise ConfigError(f"{path}: a schema file must hold one named type (record, enum or fixed)", hint=_SCHEMA_HINT)
        defs.collect(doc, None, path)
        if doc["type"] in ("record", "error"):
            tops.append((full_name(doc["name"], doc.get("namespace")), path))
    current: dict[str, SchemaVersion] = {}
    for name, path in tops:
        expanded = defs.expand(defs.defs[name][0], _namespace_of(name), set(), path, top=True)
        current[name] = make_version(expanded, None, path)
    return current


def _load_releases(root: Path) -> dict[str, list[SchemaVersion]]:
    releases: dict[str, list[SchemaVersion]] = {}
    if not root.is_dir():
        return releases
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        found: list[SchemaVersion] = []
        for path in folder.glob("v*.avsc"):
            try:
                number = int(path.stem[1:])
            except ValueError:
                raise ConfigError(f"{path}: release files are named v<N>.avsc", hint="rename the file (v1.avsc, v2.avsc, ...)") from None
            doc = _read_json(path)
            if not isinstance(doc, dict) or doc.get("type") not in ("record", "error"):
                raise ConfigError(f"{path}: a release file holds one self-contained record schema", hint=_SCHEMA_HINT)
            ver = make_version(doc, number, path)
            if ver.name != folder.name:
                raise ConfigError(f"{path}: holds {ver.name}, not {folder.name}", hint="release files live under releases/<full name>/")
            found.append(ver)
        found.sort(key=lambda v: v.version or 0)
        if found:
            releases[folder.name] = found
    return releases
