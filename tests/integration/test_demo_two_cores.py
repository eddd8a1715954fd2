"""``hftstream demo --cores 2`` (streams/runtime/dataflow.py, DECISIONS #61): normalize and the ledger in a second process.

* the digest of every output topic, the counts and ``verify`` are the one-core run's;
* SIGKILLed in either process (fault points inside the transactions, before a stage mark, random instants),
  then rerun: the one-core run's digest; a killed parent takes the second process with it;
* a run continues with the cores it started with; ``--cores 2`` on Kafka is refused with a hint.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from test_demo import HFTSTREAM, SMALL, demo

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def one_core(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return demo("--data", str(tmp_path_factory.mktemp("one-core")), "demo", "--seed", "5", "--no-verify", *SMALL)


def test_two_cores_give_the_one_core_digest_and_verify(one_core: dict[str, Any], tmp_path: Path) -> None:
    proc = subprocess.run([HFTSTREAM, "--data", str(tmp_path / "d"), "demo", "--seed", "5", "--cores", "2", *SMALL, "--json"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    two = json.loads(proc.stdout)
    assert two["digest"] == one_core["digest"] and two["counts"] == one_core["counts"]
    assert all(v == "identical" for v in two["verify"].values()) and len(two["verify"]) >= 6, two["verify"]
    assert "second core: normalize, ledger" in proc.stderr and "first core: risk, matching, dropcopy, reconcile" in proc.stderr
    rerun = subprocess.run([HFTSTREAM, "--data", str(tmp_path / "d"), "demo", "--seed", "5", *SMALL, "--no-verify"],
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 2 and "--cores 2" in rerun.stderr and "--reset" in rerun.stderr, rerun.stderr


def test_two_cores_on_kafka_are_refused_with_a_hint(tmp_path: Path) -> None:
    proc = subprocess.run([HFTSTREAM, "--log", "kafka://127.0.0.1:9", "demo", "--cores", "2", *SMALL],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "embedded log only" in proc.stderr and "hint:" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def _children_of(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(d.name))
            except (OSError, IndexError, ValueError):
                pass
    return out


@pytest.mark.timeout(1500)
def test_two_cores_killed_in_either_process_finish_with_the_one_core_digest(one_core: dict[str, Any], tmp_path: Path) -> None:
    data = str(tmp_path / "crash")
    args = [HFTSTREAM, "--data", data, "demo", "--seed", "5", "--cores", "2", "--no-verify", *SMALL, "--json"]
    rng = random.Random(int(os.environ.get("HFTSTREAM_CRASH_SEED", "20261207")))
    points = ("after-produce", "before-commit", "after-commit", "before-stage-mark", "txn-appended")
    kills: list[str] = []
    for attempt in range(40):
        if len(kills) >= 12:
            break
        env = dict(os.environ)
        timed = attempt % 3 == 2
        if timed:
            what = f"t={rng.uniform(0.8, 3.0):.2f}s"
        else:
            what = f"{rng.choice(points)}:{rng.randint(1, 6)}"
            env["HFTSTREAM_FAULT"] = what
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        children: list[int] = []
        try:
            try:
                if timed:
                    deadline = time.monotonic() + float(what[2:-1])
                    while time.monotonic() < deadline and proc.poll() is None:
                        children = _children_of(proc.pid) or children
                        time.sleep(0.05)
                    if proc.poll() is None:
                        proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=600)
            except subprocess.TimeoutExpired:
                proc.kill()
        finally:
            if proc.poll() is None:
                proc.kill()
        _, err = proc.communicate()
        text = err.decode()
        if proc.returncode == -signal.SIGKILL:  # the first process (or the whole demo) was killed
            kills.append(what)
            deadline = time.monotonic() + 10
            while any(Path(f"/proc/{c}").exists() for c in children) and time.monotonic() < deadline:
                time.sleep(0.1)  # PR_SET_PDEATHSIG: the second process dies with it
            assert not [c for c in children if Path(f"/proc/{c}/stat").exists()
                        and "hftstream" in Path(f"/proc/{c}/cmdline").read_bytes().decode(errors="replace")], children
        elif proc.returncode == 2 and "second process" in text:  # the fault point was reached in the second process
            kills.append(what + " (second process)")
            assert "run the same command again" in text and "Traceback" not in text, text[-3000:]
        else:
            assert proc.returncode == 0, text[-3000:]
    assert len(kills) >= 10, f"only {len(kills)} kills landed inside a run: {kills}"
    assert any("second process" in k for k in kills) and any("second process" not in k for k in kills), kills
    final = demo("--data", data, "demo", "--seed", "5", "--cores", "2", "--no-verify", *SMALL)
    assert final["digest"] == one_core["digest"], (kills, final["counts"], one_core["counts"])
    assert final["counts"] == one_core["counts"] and final["ledger_balanced"] and final["counts_reconcile"]
