"""What a topic carries: its declared key and value schemas, and the fields a replay filter can name.

The embedded log stores a topic's whole :class:`TopicSpec`; Kafka stores only partitions and
configs. :func:`declared_spec` fills what the log does not store from ``infra/topics.yaml``, so
both backends describe a topic the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from streams.errors import ConfigError, UnknownTopicError
from streams.log.base import Log, TopicSpec

if TYPE_CHECKING:
    from streams.serde import SchemaRepo

# Names a replay filter accepts besides value fields.
RECORD_FILTERS = ("key", "partition", "type")


def declared_spec(log: Log, topic: str) -> TopicSpec:
    """``topic`` as ``log`` has it, with key, value schema and description from the declarations when the log lacks them."""
    spec = log.describe_topic(topic)
    if spec.key and spec.value_schema and spec.description:
        return spec
    from streams.topics import load_catalog

    try:
        decl = load_catalog().spec_for(topic)
    except (UnknownTopicError, ConfigError):
        return spec
    return replace(
        spec,
        key=spec.key or decl.key,
        value_schema=spec.value_schema or decl.value_schema,
        description=spec.description or decl.description,
    )


def value_schemas(spec: TopicSpec) -> tuple[str, ...]:
    """The full record names ``spec`` declares for its values (empty: nothing declared)."""
    return tuple(s.strip() for s in (spec.value_schema or "").split(",") if s.strip())


def field_paths(schema: Any, prefix: str = "") -> set[str]:
    """Every field of a record schema as a dotted path (``a``, ``a.b`` for a nested record)."""
    out: set[str] = set()
    if isinstance(schema, list):
        for branch in schema:
            out |= field_paths(branch, prefix)
        return out
    if not isinstance(schema, dict):
        return out
    if schema.get("type") == "record":
        for fld in schema.get("fields", []):
            path = f"{prefix}{fld['name']}"
            out.add(path)
            out |= field_paths(fld["type"], path + ".")
    elif isinstance(schema.get("type"), (dict, list)):
        out |= field_paths(schema["type"], prefix)
    return out


def filter_fields(repo: SchemaRepo, schemas: Iterable[str]) -> set[str]:
    """Value fields (dotted paths) of ``schemas``; unknown schema names contribute nothing."""
    out: set[str] = set()
    for name in schemas:
        if name in repo.names():
            out |= field_paths(repo.schema(name))
    return out


def check_filter_names(repo: SchemaRepo, topic: str, schemas: tuple[str, ...], names: Iterable[str]) -> None:
    """Raise :class:`ConfigError` for a filter field that no record of ``topic`` can have.

    ``schemas`` are the topic's declared value schemas; when it declares none, any field of
    any known schema is allowed (the filter could still match something).
    """
    known = filter_fields(repo, schemas or tuple(repo.names()))
    bad = [n for n in dict.fromkeys(names) if n not in RECORD_FILTERS and n not in known]
    if not bad:
        return
    short = ", ".join(s.rsplit(".", 1)[-1] for s in schemas) if schemas else "any known schema"
    raise ConfigError(
        f"--filter field {', '.join(repr(b) for b in bad)} does not exist in the schemas of {topic} ({short}): "
        "it would match nothing",
        hint=f"filter on one of: {', '.join(sorted(known))}; or on {', '.join(RECORD_FILTERS)}",
    )
