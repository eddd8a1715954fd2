"""Operator command signatures: canonical bytes, sign, check (forged, unsigned, unknown operator)."""

from __future__ import annotations

import pytest

from streams.config import HftSettings
from streams.ops.signing import canonical_bytes, check, sign
from streams.serde.repo import SchemaRepo

HALT = "hftstream.ops.Halt"


@pytest.fixture(scope="module")
def repo() -> SchemaRepo:
    return SchemaRepo.load(HftSettings().schemas_dir)


def halt(**over: object) -> dict[str, object]:
    return {"command_id": "c-1", "operator_id": "alice", "symbol": "AAPL", "reason": "news", "ts_ns": 1, "signature": b"", **over}


def test_signed_command_checks_and_every_field_is_covered(repo: SchemaRepo) -> None:
    keys = {"alice": b"k" * 32}
    signed = sign(repo, HALT, halt(), keys["alice"])
    assert check(repo, HALT, signed, keys) is None
    for field, other in [("command_id", "c-2"), ("symbol", None), ("reason", "x"), ("ts_ns", 2), ("operator_id", "alice ")]:
        assert check(repo, HALT, {**signed, field: other}, {**keys, "alice ": keys["alice"]}) == "BAD_SIGNATURE", field


def test_unsigned_unknown_operator_wrong_key(repo: SchemaRepo) -> None:
    keys = {"alice": b"k" * 32}
    assert check(repo, HALT, halt(), keys) == "UNSIGNED"
    assert check(repo, HALT, sign(repo, HALT, halt(operator_id="mallory"), b"m" * 32), keys) == "UNKNOWN_OPERATOR"
    assert check(repo, HALT, sign(repo, HALT, halt(), b"wrong" * 8), keys) == "BAD_SIGNATURE"
    assert check(repo, "hftstream.md.Trade", halt(), keys) == "NOT_AN_OPERATOR_COMMAND"


def test_canonical_bytes_ignore_the_signature_field(repo: SchemaRepo) -> None:
    assert canonical_bytes(repo, HALT, halt(signature=b"x")) == canonical_bytes(repo, HALT, halt())
    assert canonical_bytes(repo, HALT, halt()).startswith(HALT.encode() + b"\n")
