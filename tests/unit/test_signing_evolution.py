"""Operator signatures survive compatible schema changes (DECISIONS #59).

SetLimit v3 added ``reason``. A SetLimit signed and written while v2 was the current schema
(its Avro body and its canonical bytes both v2's) must still verify after the upgrade, through
the decode a reader does and through risk's own logic; a v3 command's reason is covered.
"""

from __future__ import annotations

import hashlib
import hmac
from io import BytesIO
from typing import Any

import pytest
from fastavro import schemaless_writer

from streams.ops.signing import SIGNING_BASE, canonical_bytes, check, sign
from streams.serde import Serde
from streams.serde.codec import SINGLE_OBJECT_MAGIC
from streams.processors.risk.processor import default_repo
from tests.risk_support import KEYS, Feed, reason

SET_LIMIT = "hftstream.ops.SetLimit"


def _release(version: int) -> Any:
    return next(v for v in default_repo().releases(SET_LIMIT) if v.version == version)


def _v2_command(**fields: Any) -> dict[str, Any]:
    """A SetLimit as the v2 CLI signed it: canonical bytes = name + newline + v2 body (empty signature)."""
    v = {"command_id": "old-1", "operator_id": "alice", "account": "A1", "symbol": "AAPL", "limit": "MAX_ORDER_QTY",
         "value": 5, "ts_ns": 1_000, "signature": b"", **fields}
    buf = BytesIO()
    buf.write(SET_LIMIT.encode() + b"\n")
    schemaless_writer(buf, _release(2).parsed, v)
    v["signature"] = hmac.new(KEYS["alice"].encode(), buf.getvalue(), hashlib.sha256).digest()
    return v


def _framed_v2(value: dict[str, Any]) -> bytes:
    buf = BytesIO()
    buf.write(SINGLE_OBJECT_MAGIC + _release(2).fingerprint)
    schemaless_writer(buf, _release(2).parsed, value)
    return buf.getvalue()


def test_the_current_set_limit_has_a_reason_the_base_does_not() -> None:
    repo = default_repo()
    assert SIGNING_BASE[SET_LIMIT] == 2
    assert "reason" in {f["name"] for f in repo.current(SET_LIMIT).schema["fields"]}
    assert "reason" not in {f["name"] for f in _release(2).schema["fields"]}
    assert repo.current(SET_LIMIT).version >= 3


def test_a_command_signed_under_v2_verifies_after_the_upgrade() -> None:
    old = _v2_command()
    decoded = Serde(default_repo()).decode(_framed_v2(old))  # what a v3 reader makes of the v2 record on the log
    assert decoded.schema == SET_LIMIT and decoded.value["reason"] == ""
    assert check(default_repo(), SET_LIMIT, decoded.value, {"alice": KEYS["alice"].encode()}) is None


def test_risk_applies_a_set_limit_written_before_v3() -> None:
    f = Feed()
    f.send(f.quote())
    f.tick()
    value = Serde(default_repo()).decode(_framed_v2(_v2_command(ts_ns=f.now))).value
    f.send(f.msg("ops.commands", SET_LIMIT, value, "scope"))
    assert reason(f.send(f.new(qty=6))) == "MAX_ORDER_QTY"  # the old command is in force
    assert reason(f.send(f.new(qty=5))) == "ACCEPTED"


def test_a_reason_is_covered_by_the_signature() -> None:
    repo, keys = default_repo(), {"alice": KEYS["alice"].encode()}
    v = {"command_id": "new-1", "operator_id": "alice", "account": None, "symbol": "AAPL", "limit": "MAX_ORDER_QTY",
         "value": 7, "reason": "desk cap", "ts_ns": 2_000, "signature": b""}
    signed = sign(repo, SET_LIMIT, v, keys["alice"])
    assert check(repo, SET_LIMIT, signed, keys) is None
    assert check(repo, SET_LIMIT, dict(signed, reason="desk cap lifted"), keys) == "BAD_SIGNATURE"
    assert check(repo, SET_LIMIT, dict(signed, reason=""), keys) == "BAD_SIGNATURE"
    # Round trip through the log's encoding: the reason is on the log and the signature still holds.
    serde = Serde(repo)
    back = serde.decode(serde.encode(SET_LIMIT, signed)).value
    assert back["reason"] == "desk cap" and check(repo, SET_LIMIT, back, keys) is None


def test_an_unset_later_field_adds_nothing_to_the_canonical_bytes() -> None:
    repo = default_repo()
    old = _v2_command()
    unsigned_v2 = BytesIO()
    unsigned_v2.write(SET_LIMIT.encode() + b"\n")
    schemaless_writer(unsigned_v2, _release(2).parsed, dict(old, signature=b""))
    assert canonical_bytes(repo, SET_LIMIT, dict(old, reason="")) == unsigned_v2.getvalue()
    assert canonical_bytes(repo, SET_LIMIT, dict(old, reason="x")).startswith(unsigned_v2.getvalue() + b"\nreason=")


@pytest.mark.parametrize("schema", sorted(SIGNING_BASE))
def test_every_signing_base_is_released(schema: str) -> None:
    assert SIGNING_BASE[schema] in {v.version for v in default_repo().releases(schema)}
