"""Signed operator commands: HMAC-SHA256 over a canonical encoding.

Every ``hftstream.ops.*`` record carries ``operator_id``, ``command_id`` (a unique nonce),
``ts_ns`` and ``signature``. The signature is ``HMAC-SHA256(key, canonical)``.

**The canonical bytes** (DECISIONS #59) must not change when the schema evolves, or every
command already signed on a log would verify as ``BAD_SIGNATURE`` after an upgrade (and a
replay of an old log would decide differently). So they are computed against a *fixed*
release of each schema, its **signing base** (:data:`SIGNING_BASE`: the release that was
current when this rule was made; ``v1`` for a schema added later), never against the
current one:

* the schema's full name and a newline;
* the Avro binary body of the base fields, encoded with the base release, with
  ``signature`` set to empty bytes (Avro's binary encoding of a record is canonical:
  fields in schema order, one encoding per value, so signer and verifier agree byte for byte);
* then, for each field added after the base (schema order) whose value is **not its
  default**: a newline, the field's name, ``=``, and the Avro encoding of the value.

A field added later with its default left alone adds nothing, so commands signed before the
field existed still verify; a command that sets it (``SetLimit.reason``) has it covered.

Keys are shared secrets per operator (``OperatorKeys``): the CLI signs with
``HFTSTREAM_OPERATOR_ID`` / ``HFTSTREAM_OPERATOR_KEY``; risk verifies against every
operator's key from its configuration; reconcile signs its own halts with its own key.
Replay protection (a ``command_id`` seen before, a ``ts_ns`` too old) is the verifier's
job, in event time (see the risk processor).
"""

from __future__ import annotations

import hashlib
import hmac
import weakref
from collections.abc import Mapping
from io import BytesIO
from typing import Any

from fastavro import parse_schema, schemaless_writer

from streams.errors import ConfigError
from streams.serde.repo import SchemaRepo

OPS_NAMESPACE = "hftstream.ops."

# The release each operator command is signed against (see the module docstring). Frozen: changing
# an entry invalidates every signature made under it. A schema not listed is signed against v1.
SIGNING_BASE: dict[str, int] = {
    "hftstream.ops.CancelAll": 1,
    "hftstream.ops.Halt": 2,
    "hftstream.ops.KillSwitch": 2,
    "hftstream.ops.ReduceOnly": 2,
    "hftstream.ops.Resume": 2,
    "hftstream.ops.SetLimit": 2,
}

_NO_DEFAULT = object()
_PLANS: weakref.WeakKeyDictionary[SchemaRepo, dict[str, _Plan]] = weakref.WeakKeyDictionary()


class _Plan:
    """How to encode one schema's canonical bytes: the base release, and the fields added after it."""

    def __init__(self, repo: SchemaRepo, schema: str) -> None:
        version = SIGNING_BASE.get(schema, 1)
        base = next((v for v in repo.releases(schema) if v.version == version), None)
        if base is None:
            raise ConfigError(
                f"{schema}: its signing base v{version} is not among the released schemas",
                hint="operator commands are signed against a frozen release: run `hftstream schemas release` for it",
            )
        self.head = schema.encode() + b"\n"
        self.base = base.parsed
        base_fields = {f["name"] for f in base.schema["fields"]}
        self.added: list[tuple[str, bytes, object, Any]] = []
        for f in repo.current(schema).schema["fields"]:
            if f["name"] in base_fields:
                continue
            one = parse_schema({"type": "record", "name": "SignedField", "namespace": "hftstream.ops.signing",
                                "fields": [{"name": "v", "type": f["type"]}]})
            self.added.append((f["name"], f["name"].encode(), f.get("default", _NO_DEFAULT), one))

    def encode(self, value: Mapping[str, Any]) -> bytes:
        unsigned = dict(value)
        unsigned["signature"] = b""
        buf = BytesIO()
        buf.write(self.head)
        schemaless_writer(buf, self.base, unsigned)
        for name, raw_name, default, one in self.added:
            v = value.get(name, default)
            if v is _NO_DEFAULT or v == default:
                continue
            buf.write(b"\n" + raw_name + b"=")
            schemaless_writer(buf, one, {"v": v})
        return buf.getvalue()


def canonical_bytes(repo: SchemaRepo, schema: str, value: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers (see the module docstring): stable across compatible schema changes."""
    plans = _PLANS.get(repo)
    if plans is None:
        plans = _PLANS[repo] = {}
    plan = plans.get(schema)
    if plan is None:
        plan = plans[schema] = _Plan(repo, schema)
    return plan.encode(value)


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
