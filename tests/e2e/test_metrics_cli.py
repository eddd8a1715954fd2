"""``--metrics-port`` as an operator uses it: the real console script on the embedded log, scraped over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from runtime_support import HFTSTREAM

KEY = "dev-operator-key-not-for-production"  # ops-dev's key in infra/risk.yaml


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def trading(port: int) -> dict[tuple[str, str], float]:
    """``{(scope, state): value}`` of risk's ``hftstream_trading_state``, scraped."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {(s.labels["scope"], s.labels["state"]): s.value for f in text_string_to_metric_families(text)
            if f.name == "hftstream_trading_state" for s in f.samples if s.labels["processor"] == "risk"}


def wait_for(port: int, want: dict[tuple[str, str], float], proc: subprocess.Popen) -> dict[tuple[str, str], float]:
    deadline, got = time.monotonic() + 60, {}
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.stderr else ""
        try:
            got = trading(port)
        except OSError:
            got = {}
        if all(got.get(k) == v for k, v in want.items()):
            return got
        time.sleep(0.2)
    return got


def test_an_operator_halt_shows_in_risks_trading_state_and_a_resume_clears_it(tmp_path: Path) -> None:
    env = {**os.environ, "HFTSTREAM_OPERATOR_ID": "ops-dev", "HFTSTREAM_OPERATOR_KEY": KEY}
    env.pop("HFTSTREAM_RISK_CONFIG", None)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([HFTSTREAM, "--data", str(tmp_path), *args], capture_output=True, text=True, env=env, timeout=120)

    assert cli("topics", "apply").returncode == 0
    port = free_port()
    proc = subprocess.Popen([HFTSTREAM, "--data", str(tmp_path), "run", "risk", "--metrics-port", str(port), "--commit-interval", "10"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        assert wait_for(port, {("global", "ACTIVE"): 1}, proc)[("global", "HALTED")] == 0
        halt = cli("ops", "halt", "--scope", "global", "--reason", "metrics test")
        assert halt.returncode == 0, halt.stderr
        got = wait_for(port, {("global", "HALTED"): 1}, proc)
        assert got[("global", "HALTED")] == 1 and got[("global", "ACTIVE")] == 0
        assert cli("ops", "resume", "--scope", "global").returncode == 0
        got = wait_for(port, {("global", "ACTIVE"): 1}, proc)
        assert got[("global", "ACTIVE")] == 1 and got[("global", "HALTED")] == 0
        taken = subprocess.run([HFTSTREAM, "--data", str(tmp_path), "run", "normalize", "--until-idle", "--metrics-port", str(port)],
                               capture_output=True, text=True, env=env, timeout=120)
        assert taken.returncode == 2 and f"cannot serve metrics on port {port}" in taken.stderr and "hint:" in taken.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
