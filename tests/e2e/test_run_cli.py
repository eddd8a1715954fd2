"""``hftstream run | status | verify`` as an operator types them (real console script, embedded log)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from runtime_support import HFTSTREAM, TESTS, TOTAL_OUT, Case
from streams.serde import Serde


def cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": TESTS}
    return subprocess.run([HFTSTREAM, "--log", url, *args], capture_output=True, text=True, env=env, timeout=180)


@pytest.fixture
def case(tmp_path: Path, unique_name: Callable[[str], str]) -> Case:
    c = Case(f"embedded://{tmp_path / 'log'}", tmp_path, Serde.from_settings(), unique_name)
    yield c
    c.close()


def test_run_status_verify_round_trip(case: Case) -> None:
    args = ["procs:Counter", "--config", str(case.cfg), "--name", case.name]
    before = cli(case.url, "status", *args[:1], "--config", str(case.cfg), "--name", case.name, "--json")
    assert before.returncode == 0, before.stderr
    st = json.loads(before.stdout)[0]
    assert st["committed_tasks"] == 0 and st["lag"] == 4000 + 40 and st["last_commit_ns"] is None  # the global input once, not per task

    done = cli(case.url, "run", *args, "--until-idle", "--batch", "300", "--json")
    assert done.returncode == 0, done.stderr
    counts = json.loads(done.stdout)[case.name]
    assert counts["records_in"] == TOTAL_OUT and counts["reconciles"] and counts["dead_letters"] == 0

    after = json.loads(cli(case.url, "status", "procs:Counter", "--config", str(case.cfg), "--name", case.name, "--json").stdout)[0]
    assert after["committed_tasks"] == 4 and after["lag"] == 0 and after["last_commit_ns"] > 0
    assert {p["topic"] for p in after["partitions"]} == {case.src, case.glob}

    table = cli(case.url, "status", "procs:Counter", "--config", str(case.cfg), "--name", case.name, "--partitions")
    assert table.returncode == 0 and case.name in table.stdout and case.src in table.stdout

    ok = cli(case.url, "verify", *args)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("identical:")


def test_verify_reports_a_tampered_record_with_its_lineage(case: Case) -> None:
    from streams.runtime.state import read_range

    args = ["procs:Counter", "--config", str(case.cfg), "--name", case.name]
    assert cli(case.url, "run", *args, "--until-idle").returncode == 0
    victim = next(iter(read_range(case.log, case.out, 0, 0, 10)))
    with case.log.producer() as p:
        p.produce(case.out, victim.value[:-1] + b"\x00", victim.key, partition=0, timestamp_ns=victim.timestamp_ns, headers=victim.headers)
    bad = cli(case.url, "verify", *args, "--json")
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert report["identical"] is False and report["kind"] == "different"
    assert report["input"]["topic"] == case.src
    assert len(report["actual"]) == len(report["expected"]) + 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "nosuch"], "unknown processor 'nosuch'"),
        (["run", "no.such.module:Thing"], "cannot import processor"),
        (["run", "procs:Counter", "--config", "/nonexistent.yaml"], "cannot read --config"),
        (["verify", "procs:Counter", "--since", "yesterday-ish"], "--since"),
    ],
)
def test_bad_input_says_what_to_do(case: Case, args: list[str], message: str) -> None:
    res = cli(case.url, *args)
    assert res.returncode == 2, res
    assert message in res.stderr and "hint:" in res.stderr and "Traceback" not in res.stderr


def test_a_missing_input_topic_is_named_with_a_hint(tmp_path: Path) -> None:
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"inputs": ["no-such-topic"], "output": "nor-this"}))
    res = cli(f"embedded://{tmp_path / 'log'}", "run", "procs:Counter", "--config", str(cfg), "--until-idle")
    assert res.returncode == 2
    assert "no-such-topic" in res.stderr and "topics apply" in res.stderr
