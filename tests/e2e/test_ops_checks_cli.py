"""`hftstream ops` checks a command against the log before it publishes (issue 14 item 7): scopes, kill switches, units."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from test_ops_cli import HFTSTREAM, ops

from streams.log import TopicSpec, open_log
from streams.ops.checks import instruments
from streams.serde import Serde


@pytest.fixture(scope="module")
def log(tmp_path_factory) -> Path:
    """A log with reference data (feed simulate: AAPL, BTC-USD, MSFT, EUR-USD) and orders from ACC1 and ACC2."""
    log = tmp_path_factory.mktemp("ops-checks") / "log"
    sim = subprocess.run([HFTSTREAM, "--log", f"embedded://{log}", "feed", "simulate", "--venues", "1", "--events", "10"],
                         capture_output=True, text=True, timeout=120)
    assert sim.returncode == 0, sim.stderr
    with open_log(f"embedded://{log}") as lg:
        lg.create_topic(TopicSpec("orders.in", partitions=2, key="account", value_schema="hftstream.orders.NewOrder"))
        with lg.producer() as p:
            for account in ("ACC1", "ACC2"):
                p.produce("orders.in", b"not decoded: only the key names the account", account.encode())
    return log


def _state(log: Path) -> dict:
    return json.loads(ops(log, "state", "--json").stdout)


def _refused(proc: subprocess.CompletedProcess, needle: str, hint: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("error: ") and needle in proc.stderr, proc.stderr
    assert "hint: " in proc.stderr and hint in proc.stderr.split("hint: ", 1)[1], proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(("args", "needle", "hint"), [
    (["resume", "--scope", "symbol:NOPE"], "symbol 'NOPE' is not in the reference data", "AAPL"),
    (["halt", "--scope", "account:ACC1,symbol:NOPE"], "symbol 'NOPE'", "MSFT"),
    (["set-limit", "max-order-qty", "5", "--scope", "account:ACC9999"], "account 'ACC9999' is not known", "ACC1, ACC2"),
    (["kill", "--scope", "account:ACC9999"], "account 'ACC9999'", "ACC2"),
    (["set-limit", "max-order-qty", "-5", "--scope", "symbol:AAPL"], "a limit is >= 0", "0 or more"),
    (["set-limit", "max-order-qty", "five", "--scope", "symbol:AAPL"], "not a number", "e.g. 500"),
    (["set-limit", "max-order-qty", "500", "--scope", "account:ACC1"], "names no instrument", "--raw"),
    (["set-limit", "price-band-bps", "2.5"], "not a whole number", "integer"),
])
def test_a_scope_or_value_that_cannot_be_right_is_refused_before_publishing(log, args, needle, hint):
    before = _state(log)["accepted"]
    _refused(ops(log, *args), needle, hint)
    assert _state(log)["accepted"] == before  # nothing was published


def test_resume_under_a_kill_switch_says_it_needs_kill_release(log):
    assert ops(log, "kill", "--scope", "account:ACC1", "--reason", "runaway").returncode == 0
    for scope in ("account:ACC1", "account:ACC1,symbol:AAPL"):
        _refused(ops(log, "resume", "--scope", scope), "a kill switch is engaged on account:ACC1",
                 "hftstream ops kill --scope account:ACC1 --release")
    assert ops(log, "resume", "--scope", "account:ACC2").returncode == 0  # another account is not under it
    assert ops(log, "kill", "--scope", "account:ACC1", "--release").returncode == 0
    assert ops(log, "resume", "--scope", "account:ACC1").returncode == 0


def test_limits_are_given_in_the_instruments_units_and_shown_both_ways(log):
    with open_log(f"embedded://{log}") as lg:
        scales = instruments(lg, Serde.from_settings())
    symbol = max(scales, key=lambda s: scales[s].size_scale)  # BTC-USD: fractional quantities
    size_scale = scales[symbol].size_scale
    assert size_scale >= 1
    got = ops(log, "set-limit", "max-order-qty", "1.5", "--scope", f"account:ACC2,symbol:{symbol}", "--reason", "desk cap")
    assert got.returncode == 0, got.stderr
    raw = 15 * 10 ** (size_scale - 1)
    assert f"MAX_ORDER_QTY 1.5 = raw {raw} ({symbol} size_scale {size_scale})" in got.stdout
    changed = {(c["scope"], c["limit"]): c["value"] for c in _state(log)["limits_changed"]}
    assert changed[(f"account:ACC2,symbol:{symbol}", "MAX_ORDER_QTY")] == raw
    _refused(ops(log, "set-limit", "max-order-qty", "1.5", "--scope", "symbol:AAPL") if scales["AAPL"].size_scale == 0 else
             ops(log, "set-limit", "max-order-qty", "1." + "1" * 19, "--scope", "symbol:AAPL"), "more decimals", "at most")
    assert ops(log, "set-limit", "max-order-qty", "7", "--raw", "--scope", "account:ACC2", "--reason", "desk cap").returncode == 0
    assert {(c["scope"], c["limit"]): c["value"] for c in _state(log)["limits_changed"]}[("account:ACC2", "MAX_ORDER_QTY")] == 7


def test_state_shows_what_risk_has_applied_and_what_is_pending(tmp_path):
    log = tmp_path / "log"
    hft = [HFTSTREAM, "--log", f"embedded://{log}"]
    assert subprocess.run([*hft, "topics", "apply"], capture_output=True, timeout=120).returncode == 0
    assert ops(log, "halt", "--scope", "global", "--reason", "open").returncode == 0

    before = _state(log)
    assert [(r["scope"], r["state"], r["applied"]) for r in before["scopes"]] == [("global", "HALTED", False)]
    assert before["pending"] == 1
    text = ops(log, "state").stdout
    assert "PENDING" in text and "1 command(s) not applied by risk yet" in text and "risk has not run" in text

    run = subprocess.run([*hft, "run", "risk", "--until-idle"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    applied = _state(log)
    assert [(r["scope"], r["state"], r["applied"]) for r in applied["scopes"]] == [("global", "HALTED", True)]
    assert applied["pending"] == 0 and "PENDING" not in ops(log, "state").stdout

    assert all(c["applied"] for c in applied["limits_changed"])
    assert ops(log, "set-limit", "order-burst", "3", "--reason", "burst cap").returncode == 0
    burst = [c for c in _state(log)["limits_changed"] if c["limit"] == "ORDER_BURST"]
    assert burst == [dict(burst[0], value=3, applied=False)]  # published, not yet read by risk

    assert ops(log, "resume", "--scope", "global").returncode == 0
    lifted = _state(log)
    assert [(r["scope"], r["state"], r.get("lifted_pending")) for r in lifted["scopes"]] == [("global", "HALTED", True)]
    assert "enforced, lift pending" in ops(log, "state").stdout
