"""Avro schema fingerprints: Parsing Canonical Form and CRC-64-AVRO.

The Avro specification's "Schema Fingerprints" section defines CRC-64-AVRO (the
Rabin fingerprint with polynomial ``0xC15D213AA4D7A795``, empty value
``0xC15D213AA4D7A795``). Single-object encoding writes it little-endian after the
``0xC3 0x01`` marker, so :func:`fingerprint` returns those 8 wire bytes.
"""

from __future__ import annotations

import json
from typing import Any

from fastavro.schema import to_parsing_canonical_form

EMPTY = 0xC15D213AA4D7A795


def _table() -> tuple[int, ...]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (EMPTY & -(fp & 1))
        table.append(fp)
    return tuple(table)


_TABLE = _table()


def crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO of ``data`` as an unsigned 64-bit integer."""
    fp = EMPTY
    table = _TABLE
    for b in data:
        fp = (fp >> 8) ^ table[(fp ^ b) & 0xFF]
    return fp


def canonical_form(schema: dict[str, Any] | str | list[Any]) -> str:
    """The schema's Parsing Canonical Form (what the fingerprint is taken of)."""
    if isinstance(schema, str) and schema.lstrip().startswith(("{", "[", '"')):
        schema = json.loads(schema)
    return to_parsing_canonical_form(schema)


def fingerprint(canonical: str) -> bytes:
    """The 8 little-endian bytes of CRC-64-AVRO over a Parsing Canonical Form, as written on the wire."""
    return crc64_avro(canonical.encode("utf-8")).to_bytes(8, "little")
