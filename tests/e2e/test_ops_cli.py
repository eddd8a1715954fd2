"""``hftstream ops`` as an operator types it (real console script, embedded log): signed commands, state, refusals."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from streams.log import open_log
from streams.serde import Serde

HFTSTREAM = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "hftstream")
KEY = "dev-operator-key-not-for-production"  # ops-dev's key in infra/risk.yaml


def ops(log: Path, *args: str, operator: str | None = "ops-dev", key: str | None = KEY) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HFTSTREAM_OPERATOR_ID", "HFTSTREAM_OPERATOR_KEY", "HFTSTREAM_RISK_CONFIG")}
    if operator:
        env["HFTSTREAM_OPERATOR_ID"] = operator
    if key:
        env["HFTSTREAM_OPERATOR_KEY"] = key
    return subprocess.run([HFTSTREAM, "--log", f"embedded://{log}", "ops", *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "log"


def test_signed_commands_show_in_state_and_a_bad_key_is_refused(log: Path) -> None:
    assert ops(log, "halt", "--scope", "symbol:AAPL", "--reason", "news pending").returncode == 0
    assert ops(log, "kill", "--scope", "account:ACC1", "--reason", "runaway").returncode == 0
    assert ops(log, "reduce-only", "--scope", "account:ACC2,symbol:MSFT").returncode == 0
    assert ops(log, "set-limit", "max-order-qty", "500", "--raw", "--scope", "account:ACC1,symbol:AAPL",
               "--reason", "desk cap").returncode == 0

    bad = ops(log, "halt", "--scope", "global", key="not-the-key")
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: the key for operator 'ops-dev' does not match") and "hint:" in bad.stderr
    assert "Traceback" not in bad.stderr

    state = json.loads(ops(log, "state", "--json").stdout)
    scopes = {r["scope"]: r for r in state["scopes"]}
    assert set(scopes) == {"symbol:AAPL", "account:ACC1", "account:ACC2,symbol:MSFT"}  # the global halt was never published
    assert scopes["symbol:AAPL"]["state"] == "HALTED" and scopes["symbol:AAPL"]["reason"] == "news pending"
    assert scopes["account:ACC1"]["state"] == "HALTED" and scopes["account:ACC1"]["kill_switch"]
    assert scopes["account:ACC2,symbol:MSFT"]["state"] == "REDUCE_ONLY"
    (changed,) = state["limits_changed"]
    assert changed["command_id"] and changed["ts_ns"] > 0
    assert {k: v for k, v in changed.items() if k not in ("command_id", "ts_ns")} == {
        "scope": "account:ACC1,symbol:AAPL", "limit": "MAX_ORDER_QTY", "value": 500, "configured": None,
        "applied": False, "operator_id": "ops-dev", "reason": "desk cap"}  # risk never ran on this log: pending
    assert state["accepted"] == 4 and state["refused"] == []

    # Published anyway (--skip-check), risk's own logic refuses it: recorded, never acted on.
    forced = ops(log, "halt", "--scope", "global", "--skip-check", key="not-the-key")
    assert forced.returncode == 0, forced.stderr
    assert ops(log, "resume", "--scope", "symbol:AAPL").returncode == 0
    text = ops(log, "state")
    assert text.returncode == 0
    assert "\nsymbol:AAPL " not in text.stdout and "\naccount:ACC1 " in text.stdout and "\nglobal " in text.stdout
    assert "5 command(s) accepted, 1 refused" in text.stdout and "BAD_SIGNATURE" in text.stdout
    assert "desk cap" in text.stdout.split("limits changed at run time:")[1]  # who changed the limit and why

    # set-limit without a reason publishes nothing and says what to add.
    missing = ops(log, "set-limit", "max-order-qty", "400", "--raw", "--scope", "account:ACC1,symbol:AAPL")
    assert missing.returncode == 2 and "error: set-limit needs --reason" in missing.stderr
    assert '--reason "' in missing.stderr and "Traceback" not in missing.stderr
    assert json.loads(ops(log, "state", "--json").stdout)["accepted"] == 5

    # What is on the log is signed, keyed by scope, and a replay of it would be refused.
    with open_log(f"embedded://{log}") as lg, lg.reader([("ops.commands", 0, 0)]) as reader:
        records = list(reader)
    serde = Serde.from_settings()
    first = serde.decode(records[0].value)
    assert records[0].key == b"symbol:AAPL" and first.schema == "hftstream.ops.Halt" and len(first.value["signature"]) == 32
    with open_log(f"embedded://{log}") as lg, lg.producer() as p:
        p.produce("ops.commands", records[0].value, records[0].key, timestamp_ns=records[-1].timestamp_ns)
    replayed = json.loads(ops(log, "state", "--json").stdout)
    assert [r["code"] for r in replayed["refused"]] == ["BAD_SIGNATURE", "REPLAYED_COMMAND_ID"]
    assert "symbol:AAPL" not in {r["scope"] for r in replayed["scopes"]}


def test_missing_identity_and_bad_arguments_are_clear_errors(log: Path) -> None:
    for args, kw, message in [
        (("halt",), {"operator": None}, "error: no operator id"),
        (("halt",), {"key": None}, "error: no signing key"),
        (("halt", "--scope", "desk:1"), {}, "error: bad --scope 'desk:1'"),
        (("set-limit", "max-lunch", "1"), {}, "error: unknown limit 'max-lunch'"),
        (("set-limit", "max-daily-loss", "1", "--scope", "symbol:AAPL"), {}, "error: max-daily-loss is account-wide"),
        (("halt",), {"operator": "mallory"}, "error: operator 'mallory' is not in the risk config"),
    ]:
        got = ops(log, *args, **kw)
        assert got.returncode == 2, (args, got.stdout)
        assert got.stderr.startswith(message) and "\nhint: " in got.stderr, got.stderr
    assert not (log / "ops.commands").exists() or json.loads(ops(log, "state", "--json").stdout)["accepted"] == 0
    helptext = ops(log, "--help").stdout
    assert "hftstream ops kill --scope account:ACC1" in helptext
