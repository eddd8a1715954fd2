"""The Confluent schema registry, as the serde needs it: register once, look up once, cache.

Wraps ``confluent_kafka.schema_registry.SchemaRegistryClient`` (``mock://...`` URLs get
confluent-kafka's in-process mock registry). Subjects follow Confluent's default
TopicNameStrategy: ``<topic>-value`` when a topic is given, else the record's full name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from streams.errors import BrokerUnavailableError, ConfigError, UnknownSchemaError
from streams.serde.repo import SchemaVersion, make_version

_NOT_FOUND = {40401, 40402, 40403, 40400}


class Registry:
    """Schema ids for our schemas (registered on first use) and writer schemas for ids (fetched once)."""

    def __init__(self, url: str | None, *, client: Any = None) -> None:
        from confluent_kafka.schema_registry import SchemaRegistryClient

        if client is None:
            if not url:
                raise ConfigError("no schema registry URL", hint="set HFTSTREAM_SCHEMA_REGISTRY or --schema-registry")
            try:
                client = SchemaRegistryClient.new_client({"url": url})
            except Exception as exc:  # bad URL or config
                raise ConfigError(f"schema registry {url!r}: {exc}", hint="use http(s)://host:port (or mock://name in tests)") from exc
        self.url = url or "(given client)"
        self.client = client
        self._ids: dict[tuple[str, str], int] = {}
        self._schemas: dict[int, SchemaVersion] = {}
        self._missing: set[int] = set()

    def register(self, version: SchemaVersion, subject: str) -> int:
        """The schema id of ``version`` under ``subject`` (registering it the first time)."""
        key = (version.canonical, subject)
        sid = self._ids.get(key)
        if sid is None:
            from confluent_kafka.schema_registry import Schema

            try:
                sid = int(self.client.register_schema(subject, Schema(version.json(), "AVRO")))
            except Exception as exc:
                raise self._error(f"registering {version.name} under subject {subject!r}", exc) from exc
            self._ids[key] = sid
            self._schemas.setdefault(sid, version)
        return sid

    def writer_schema(self, schema_id: int) -> SchemaVersion:
        """The writer schema registered under ``schema_id`` (fetched once, then cached)."""
        ver = self._schemas.get(schema_id)
        if ver is not None:
            return ver
        if schema_id in self._missing:
            raise _unknown_id(schema_id, self.url)
        try:
            schema = self.client.get_schema(schema_id)
        except Exception as exc:
            if getattr(exc, "error_code", None) in _NOT_FOUND or getattr(exc, "http_status_code", None) == 404:
                self._missing.add(schema_id)
                raise _unknown_id(schema_id, self.url) from None
            raise self._error(f"looking up schema id {schema_id}", exc) from exc
        if getattr(schema, "schema_type", "AVRO") not in (None, "AVRO"):
            raise UnknownSchemaError(f"schema id {schema_id} is a {schema.schema_type} schema, not Avro")
        try:
            doc = json.loads(schema.schema_str)
        except (TypeError, ValueError) as exc:
            raise UnknownSchemaError(f"schema id {schema_id}: the registry returned unparsable JSON ({exc})") from None
        if not isinstance(doc, dict) or doc.get("type") not in ("record", "error"):
            raise UnknownSchemaError(f"schema id {schema_id} is not an Avro record schema")
        try:
            ver = make_version(doc, None, Path(f"registry-schema-id-{schema_id}"))
        except ConfigError as exc:
            raise UnknownSchemaError(f"schema id {schema_id}: {exc}") from None
        self._schemas[schema_id] = ver
        return ver

    def _error(self, what: str, exc: BaseException) -> Exception:
        code = getattr(exc, "http_status_code", None)
        if code is not None and code < 500:
            return ConfigError(f"schema registry {self.url}: {what} failed: {exc}", hint="check the registry's compatibility settings and credentials")
        return BrokerUnavailableError(f"schema registry {self.url}: {what} failed: {exc}")


def _unknown_id(schema_id: int, url: str | None) -> UnknownSchemaError:
    return UnknownSchemaError(
        f"unknown schema id {schema_id} (not in registry {url})",
        hint="point --schema-registry / HFTSTREAM_SCHEMA_REGISTRY at the registry the producer used",
    )
