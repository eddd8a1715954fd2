"""The smaller things a newcomer hit (issue 14 item 7), through the installed `hftstream` script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HFTSTREAM = str(Path(sys.executable).with_name("hftstream"))


def hft(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([HFTSTREAM, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd)


def assert_clean_error(proc: subprocess.CompletedProcess, needle: str) -> None:
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out
    assert proc.returncode == 2, out
    assert proc.stderr.startswith("error: ") and "\nhint: " in proc.stderr, out
    assert needle in proc.stderr, out


def test_tape_init_on_a_file_where_the_tape_goes_is_an_error_with_a_hint(tmp_path):
    (tmp_path / "D").mkdir()
    (tmp_path / "D" / "tape").touch()
    assert_clean_error(hft("tape", "init", "--data", "D", cwd=tmp_path), "is a file, not a tape directory")


def test_reading_commands_do_not_create_a_tape(tmp_path):
    for args in (["tape", "query", "SELECT 1"], ["tape", "report", "--out", "r.html"], ["tape", "bars", "--symbol", "AAPL"],
                 ["tape", "trace", "-t", "fills", "-p", "0", "-o", "0"], ["dashboards", "check"]):
        proc = hft(*args, "--data", "E", cwd=tmp_path)
        assert_clean_error(proc, "there is no tape in")
        assert "tape init" in proc.stderr
        assert not (tmp_path / "E").exists(), args  # neither the tape nor its lock file


def _help_brackets() -> list[tuple[str, str]]:
    """(command path, a ``[...]`` text) for every option help that holds square brackets (rich takes them as markup)."""
    import re

    import typer.main

    from streams.cli.main import app

    out = []

    def walk(cmd, path):  # type: ignore[no-untyped-def]
        for sub_name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, [*path, sub_name])
        texts = [getattr(p, "help", None) or "" for p in cmd.params] + [cmd.help or ""]
        out.extend((" ".join(path), m.replace("\\[", "[")) for t in texts for m in re.findall(r"\\?\[[^\]\s]+\]", t))

    walk(typer.main.get_command(app), [])
    return out


def test_help_keeps_square_brackets():
    from typer.testing import CliRunner

    from streams.cli.main import app

    cases = _help_brackets()
    assert ("replay", "[src=topic/p@offset]") in cases
    for path, text in cases:
        result = CliRunner().invoke(app, [*path.split(), "--help"], env={"COLUMNS": "300", "TERMINAL_WIDTH": "300"})
        assert text in " ".join(result.output.split()), (path, text)


@pytest.mark.parametrize("args", [["--regime", "wild"], ["--accounts", "1"], ["--accounts", "65"], ["--start", "yesterday"],
                                  ["--symbols", "100000"]], ids=lambda a: " ".join(a))
def test_demo_refuses_bad_arguments_before_it_creates_anything(tmp_path, args):
    proc = hft("demo", "--data", "D", "--no-tape", "--no-latency", "--no-verify", *args, cwd=tmp_path)
    assert_clean_error(proc, args[0].lstrip("-").rstrip("s"))
    assert not (tmp_path / "D").exists()  # not one topic was created


def test_demo_help_shows_the_regimes_and_the_accounts_range_the_simulation_accepts():
    import typer.main

    from connectors.orders.simulator import OrderSimConfig
    from streams.cli.main import app

    from typer.testing import CliRunner

    demo = typer.main.get_command(app).commands["demo"]
    params = {p.name: p for p in demo.params}
    lowest = next(m.ge for m in OrderSimConfig.model_fields["accounts"].metadata if hasattr(m, "ge"))
    assert params["accounts"].min == lowest  # the range --help advertises is the range that is accepted
    shown = " ".join(CliRunner().invoke(app, ["demo", "--help"], env={"COLUMNS": "300", "TERMINAL_WIDTH": "300"}).output.split())
    assert "<calm|burst|cancel-storm>" in shown and f"[{lowest}<=x<=64]" in shown


def test_feed_simulate_then_run_normalize_works_on_an_empty_data_folder(tmp_path):
    sim = hft("feed", "simulate", "--data", "D", "--events", "200", "--venues", "2", cwd=tmp_path)
    assert sim.returncode == 0, sim.stderr
    run = hft("run", "normalize", "--until-idle", "--data", "D", "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    import json

    counts = json.loads(run.stdout)["normalize"]
    assert counts["records_in"] > 0 and counts["records_out"] > 0
    listed = hft("topics", "list", "--data", "D", cwd=tmp_path).stdout
    assert "md.normalized" in listed


@pytest.mark.parametrize("size", [1, 7, 12])  # ~lso is 16 bytes (commit protocol 2), 8 in an older log
def test_a_half_written_lso_file_is_reported_by_replay_and_log_check_and_repaired(tmp_path, size):
    from streams.log import TopicSpec, open_log
    from streams.log.embedded.txn import LSO_NAME

    url = f"embedded://{tmp_path / 'log'}"
    with open_log(url) as log:
        log.create_topic(TopicSpec("t.x", partitions=1))
        with log.transactional_producer("writer") as producer:
            producer.begin()
            for i in range(5):
                producer.produce("t.x", b"v%d" % i, b"k", partition=0, timestamp_ns=1_767_364_200_000_000_000 + i)
            producer.commit()
    lso = tmp_path / "log" / "t.x" / "0" / LSO_NAME
    assert lso.stat().st_size == 16
    lso.write_bytes(lso.read_bytes()[:size])  # a crash in the middle of its write

    replay = hft("--log", url, "replay", "-t", "t.x", cwd=tmp_path)
    assert_clean_error(replay, str(lso))
    assert "half-written" in replay.stderr and "log repair" in replay.stderr
    check = hft("--log", url, "log", "check", cwd=tmp_path)
    assert check.returncode == 1 and "torn-lso: t.x/0" in check.stdout and "DAMAGED" in check.stdout, check.stdout
    repair = hft("--log", url, "log", "repair", "t.x", "0", "--yes", cwd=tmp_path)
    assert repair.returncode == 0 and "rewrote the last stable offset of t.x/0 as 5" in repair.stdout, repair.stdout
    assert hft("--log", url, "log", "check", cwd=tmp_path).returncode == 0
    again = hft("--log", url, "replay", "-t", "t.x", cwd=tmp_path)
    assert again.returncode == 0 and len(again.stdout.splitlines()) == 5, again.stderr
