"""Signed operator commands: HMAC-SHA256 over a canonical encoding.

Every ``hftstream.ops.*`` record carries ``operator_id``, ``command_id`` (a unique nonce),
``ts_ns`` and ``signature``. The signature is ``HMAC-SHA256(key, canonical)`` where
``canonical`` is the schema's full name, a newline, and the Avro binary body of the record
with ``signature`` set to empty bytes. Avro's binary encoding of a record is canonical
(fields in schema order, one encoding per value), so signer and verifier agree byte for byte,
and a field added to the schema later is covered automatically.

Keys are shared secrets per operator (``OperatorKeys``): the CLI signs with
``HFTSTREAM_OPERATOR_ID`` / ``HFTSTREAM_OPERATOR_KEY``; risk verifies against every
operator's key from its configuration; reconcile signs its own halts with its own key.
Replay protection (a ``command_id`` seen before, a ``ts_ns`` too old) is the verifier's
job, in event time (see the risk processor).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from io import BytesIO
from typing import Any

from fastavro import schemaless_writer

from streams.serde.repo import SchemaRepo

OPS_NAMESPACE = "hftstream.ops."


def canonical_bytes(repo: SchemaRepo, schema: str, value: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers: ``schema`` + ``\\n`` + Avro body with an empty signature."""
    unsigned = dict(value)
    unsigned["signature"] = b""
    buf = BytesIO()
    buf.write(schema.encode() + b"\n")
    schemaless_writer(buf, repo.current(schema).parsed, unsigned)
    return buf.getvalue()


def signature(repo: SchemaRepo, schema: str, value: Mapping[str, Any], key: bytes) -> bytes:
    """HMAC-SHA256 of the canonical bytes under ``key``."""
    return hmac.new(key, canonical_bytes(repo, schema, value), hashlib.sha256).digest()


def sign(repo: SchemaRepo, schema: str, value: Mapping[str, Any], key: bytes) -> dict[str, Any]:
    """A copy of ``value`` with its ``signature`` set."""
    out = dict(value)
    out["signature"] = signature(repo, schema, value, key)
    return out


def check(repo: SchemaRepo, schema: str, value: Mapping[str, Any], keys: Mapping[str, bytes]) -> str | None:
    """``None`` when ``value`` is signed by a known operator's key; otherwise a reason code.

    Reason codes: ``NOT_AN_OPERATOR_COMMAND``, ``UNKNOWN_OPERATOR``, ``UNSIGNED``, ``BAD_SIGNATURE``.
    """
    if not schema.startswith(OPS_NAMESPACE):
        return "NOT_AN_OPERATOR_COMMAND"
    key = keys.get(value.get("operator_id", ""))
    if key is None:
        return "UNKNOWN_OPERATOR"
    sig = value.get("signature") or b""
    if not sig:
        return "UNSIGNED"
    if not hmac.compare_digest(sig, signature(repo, schema, value, key)):
        return "BAD_SIGNATURE"
    return None
