"""Crash tests: SIGKILL ``hftstream run`` (a real subprocess) at many points; the result must equal an uninterrupted run.

Two kinds of kill points, on both logs:

* random: the process is killed after a random delay, again and again, while it works;
* named: ``HFTSTREAM_FAULT`` makes it kill itself exactly after producing outputs into the
  open transaction, right before the commit, or right after it.

``Counter``'s outputs carry per-symbol running counts (its state), so a lost or doubled
input, or state restored from the wrong point, changes the bytes. The comparison is per
output partition and per source partition (the interleaving of different tasks' outputs
in one partition legitimately depends on commit timing).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from runtime_support import Case, Outputs
from streams.serde import Serde

WORK_US = {"embedded": 3_000, "kafka": 8_000}  # per record: keeps a run alive long enough for the kills
KILLS = 35

pytestmark = pytest.mark.slow


def test_sigkill_at_random_moments(target: str, tmp_path: Path, serde: Serde, reference: Outputs, unique_name: Callable[[str], str]) -> None:
    kind = target.split(":")[0]
    case = Case(target, tmp_path, serde, unique_name, work_us=WORK_US[kind])
    try:
        rng = random.Random(len(target))
        kills = 0
        while kills < KILLS:
            p = case.start()
            time.sleep(rng.uniform(0.5, 1.3) if kind == "embedded" else rng.uniform(1.5, 3.5))
            if p.poll() is not None:  # finished before the kill: nothing left to interrupt
                assert p.returncode == 0, p.stderr.read().decode()[-3000:]  # type: ignore[union-attr]
                break
            p.kill()
            p.wait()
            kills += 1
        assert kills >= KILLS * 2 // 3, f"only {kills} kills landed while work was left"
        case.finish()
        assert case.outputs() == reference
    finally:
        case.close()


@pytest.mark.parametrize("fault", ["after-produce:3", "after-flush:2", "before-commit:2", "after-commit:4", "before-commit:7"])
def test_sigkill_at_named_points(
    target: str, fault: str, tmp_path: Path, serde: Serde, reference: Outputs, unique_name: Callable[[str], str]
) -> None:
    """Killed between producing and committing, right before the commit, right after it; three times in a row."""
    case = Case(target, tmp_path, serde, unique_name)
    try:
        for _ in range(3):
            p = case.start(env={"HFTSTREAM_FAULT": fault})
            p.communicate(timeout=240)
            assert p.returncode == -9, f"the fault point {fault} was never reached (exit {p.returncode})"
        case.finish()
        assert case.outputs() == reference
    finally:
        case.close()


@pytest.mark.parametrize("fault", ["txn-logged:2", "txn-marked:3", "txn-appended:2", "txn-committed:3", "txn-partly-visible:2"])
def test_sigkill_inside_the_embedded_commit_protocol(
    fault: str, tmp_path: Path, serde: Serde, reference: Outputs, unique_name: Callable[[str], str]
) -> None:
    """Killed at each step inside an embedded commit (DECISIONS #53), three times in a row: same outputs."""
    case = Case(f"embedded://{tmp_path / 'log'}", tmp_path, serde, unique_name)
    try:
        for _ in range(3):
            p = case.start(env={"HFTSTREAM_FAULT": fault})
            p.communicate(timeout=240)
            assert p.returncode == -9, f"the fault point {fault} was never reached (exit {p.returncode})"
        case.finish()
        assert case.outputs() == reference
    finally:
        case.close()
