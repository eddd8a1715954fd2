"""Several instances, zombies and aborts: fencing, a rebalance mid-stream, forced transaction aborts, SIGTERM.

Each runs ``hftstream run`` as real subprocesses against the real broker (and the
embedded log where the behaviour exists there), and compares the final outputs with an
uninterrupted run.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from runtime_support import TOTAL_OUT, Case, Outputs
from streams.serde import Serde

pytestmark = pytest.mark.slow


def wait_for_output(case: Case, at_least: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if case.output_count() >= at_least:
            return
        time.sleep(0.1)
    raise AssertionError(f"{case.out} did not reach {at_least} records in {seconds}s")


def test_a_second_instance_with_the_same_id_fences_the_first(
    target: str, tmp_path: Path, serde: Serde, reference: Outputs, unique_name: Callable[[str], str]
) -> None:
    case = Case(target, tmp_path, serde, unique_name, work_us=3000)
    try:
        zombie = case.start("--instance-id", "same")
        wait_for_output(case, 200)
        successor = case.start("--instance-id", "same")
        _, zerr = zombie.communicate(timeout=120)
        assert zombie.returncode == 2, zerr.decode()[-2000:]
        text = zerr.decode()
        assert "error:" in text and "fenced" in text.lower() and "hint:" in text and "Traceback" not in text
        _, serr = successor.communicate(timeout=240)
        assert successor.returncode == 0, serr.decode()[-3000:]
        assert case.outputs() == reference
    finally:
        case.close()


@pytest.mark.kafka
def test_rebalance_mid_stream_loses_and_doubles_nothing(
    kafka_bootstrap: str, tmp_path: Path, serde: Serde, reference: Outputs, unique_name: Callable[[str], str]
) -> None:
    """Two instances share the partitions; one stops mid-stream; the other takes over its tasks."""
    case = Case(f"kafka://{kafka_bootstrap}", tmp_path, serde, unique_name, work_us=3000)
    try:
        a = case.start("--instance-id", "a", until_idle=False)
        wait_for_output(case, 300)
        b = case.start("--instance-id", "b", until_idle=False)
        time.sleep(8)  # both run: the group split the partitions
        a.send_signal(signal.SIGTERM)  # a leaves mid-stream; its partitions move to b
        _, aerr = a.communicate(timeout=60)
        assert a.returncode == 0, aerr.decode()[-2000:]
        wait_for_output(case, TOTAL_OUT, seconds=180)
        b.send_signal(signal.SIGTERM)
        _, berr = b.communicate(timeout=60)
        assert b.returncode == 0, berr.decode()[-2000:]
        case.finish()
        assert case.outputs() == reference
    finally:
        case.close()


@pytest.mark.kafka
def test_forced_aborts_are_never_seen_by_read_committed_readers(
    kafka_bootstrap: str, tmp_path: Path, serde: Serde, reference: Outputs, unique_name: Callable[[str], str]
) -> None:
    case = Case(f"kafka://{kafka_bootstrap}", tmp_path, serde, unique_name)
    try:
        p = case.start(env={"HFTSTREAM_FAULT_ABORT": "after-flush:3"})
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err.decode()[-3000:]
        assert case.outputs() == reference  # read_committed: exactly the uninterrupted outputs
        everything = 0  # read_uncommitted sees the aborted transaction's records too
        highs = case.log.end_offsets([(case.out, q) for q in range(case.log.partitions(case.out))], read_committed=False)  # type: ignore[attr-defined]
        for (topic, part), high in highs.items():
            with case.log.reader([(topic, part, 0)], read_committed=False) as r:
                deadline = time.monotonic() + 30
                while r.position(topic, part) < high - 1 and time.monotonic() < deadline:
                    everything += len(r.poll(1000, timeout=0.5))
        committed = sum(len(v) for v in case.outputs().values())
        assert everything > committed, "the forced abort left no aborted records behind (was it forced?)"
    finally:
        case.close()


def test_sigterm_finishes_the_batch_commits_and_exits_zero(
    target: str, tmp_path: Path, serde: Serde, reference: Outputs, unique_name: Callable[[str], str]
) -> None:
    case = Case(target, tmp_path, serde, unique_name, work_us=2000)
    try:
        p = case.start(until_idle=False)
        wait_for_output(case, 200)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err.decode()[-2000:]
        assert "SIGTERM" in err.decode()
        before = sum(len(v) for v in case.outputs().values())
        assert 0 < before < TOTAL_OUT
        case.finish()
        assert case.outputs() == reference
    finally:
        case.close()

