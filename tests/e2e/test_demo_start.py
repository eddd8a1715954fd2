"""`hftstream demo`'s simulation clock (issue 5 #2): today by default, pinned by --start, deterministic per (seed, start)."""

from __future__ import annotations

import time
from pathlib import Path

from typer.testing import CliRunner

from streams.cli.main import app
from streams.timeutil import format_iso_ns

ARGS = ["demo", "--venues", "2", "--symbols", "3", "--events", "1500", "--orders", "300", "--accounts", "2", "--no-latency",
        "--no-verify"]


def _demo(root: Path, *extra: str):
    return CliRunner().invoke(app, ["--log", f"embedded://{root}", *ARGS, *extra])


def _files(root: Path) -> dict[str, bytes]:
    """Every topic's segment and index bytes, except ``state.*``: processors' commit manifests carry the
    wall-clock commit time by design (operational metadata; ``hftstream verify`` compares the outputs)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix in {".log", ".index", ".timeindex"} and not str(p.relative_to(root)).startswith("state.")
    }


def test_demo_starts_today_and_is_byte_identical_for_one_seed_and_start(tmp_path):
    today = time.time_ns() // 86_400_000_000_000 * 86_400_000_000_000
    first = _demo(tmp_path / "a")
    assert first.exit_code == 0, first.output
    assert f"start {format_iso_ns(today)[:19]}" in first.stdout or time.time_ns() - today < 120 * 10**9  # unless midnight just passed
    assert "warning:" not in first.stderr

    pinned = "2026-11-03T09:00:00Z"
    for root in ("b", "c"):
        assert _demo(tmp_path / root, "--start", pinned).exit_code == 0
    b, c = _files(tmp_path / "b"), _files(tmp_path / "c")
    assert b and b == c
    assert _files(tmp_path / "a") != b  # another start: another clock


def test_demo_with_an_old_start_warns_that_retention_will_delete_it(tmp_path):
    result = _demo(tmp_path / "log", "--start", "2026-01-02T14:30:00Z")
    assert result.exit_code == 0, result.output
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning: md.raw.")]
    assert len(warned) == 2 and all("older than the topic's retention" in w for w in warned)
