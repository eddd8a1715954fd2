"""As-of inputs (issue 13 #6): a live run applies them at each transaction's start and never waits for them;
recovery and verify replay what ran; lockstep and until-idle runs merge them as before."""

from __future__ import annotations

from pathlib import Path

import pytest

from procs import RAW, Counter, CounterConfig, raw_value
from streams.errors import ConfigError
from streams.log.base import TopicSpec
from streams.log.embedded import EmbeddedLog
from streams.runtime import Runner, RunOptions
from streams.runtime.runner import open_all
from streams.runtime.state import StateStore
from streams.runtime.verify import verify
from streams.serde import Serde

MS = 1_000_000
T0 = 1_700_000_000_000_000_000
SERDE = Serde.from_settings()
CONFIG = CounterConfig(inputs=["in"], as_of=["md"], output="out")


def _log(tmp_path: Path, n_md: int = 30, n_in: int = 40) -> EmbeddedLog:
    """``in`` (2 partitions) and ``md`` (2 partitions); every md record is *later* than every ``in`` record."""
    log = EmbeddedLog(tmp_path / "log")
    log.create_topic(TopicSpec("in", 2))
    log.create_topic(TopicSpec("md", 2))
    log.create_topic(TopicSpec("out", 2))
    with log.producer() as p:
        for i in range(n_md):
            p.produce("md", SERDE.encode(RAW, raw_value(10_000 + i, f"M{i % 3}")), partition=i % 2, timestamp_ns=T0 + (1_000 + i) * MS)
        for i in range(n_in):
            p.produce("in", SERDE.encode(RAW, raw_value(i, f"S{i % 5}")), partition=i % 2, timestamp_ns=T0 + i * MS)
    return log


def _drive(runner: Runner, ticks: int | None = None) -> None:
    """Tick a live runner (``ticks`` times, or until idle), committing as it would."""
    open_all([runner])
    n = 0
    while (ticks is None or n < ticks) and not (ticks is None and n > 0 and runner.idle()):
        runner.tick()
        n += 1
    if ticks is None:
        runner.commit()


def _seen_by_order(log: EmbeddedLog) -> list[int]:
    """For each keyed output, how many as-of records its task had applied before it (the ``a<n>`` in ``format``)."""
    out = []
    for p in range(2):
        low, high = log.watermarks("out", p)
        with log.reader([("out", p, low)]) as r:
            while len(got := r.poll(1000, timeout=0.1)):
                out += [int(SERDE.decode(rec.value).value["format"].split("a")[1]) for rec in got]
                if r.position("out", p) >= high:
                    break
    return out


def test_a_live_run_applies_the_as_of_records_first_and_verify_and_recovery_replay_them(tmp_path: Path) -> None:
    log = _log(tmp_path)
    runner = Runner(log, SERDE, Counter, CONFIG, RunOptions(commit_interval_ms=1, snapshot_every_commits=1_000))
    assert runner.pinned == {"md"}
    _drive(runner)
    states = {p: t.processor.snapshot() for p, t in runner.tasks.items()}
    runner.close()
    # every md record is later than every order, yet a live run applied the md read so far before the orders
    assert _seen_by_order(log) and all(n == 30 for n in _seen_by_order(log))
    manifests = StateStore(log, SERDE, "counter").manifests()
    assert manifests and all(m.applied_first == ("md",) for m in manifests)
    result = verify(log, SERDE, Counter, CONFIG)
    assert result.identical and result.outputs == 40, result.divergence
    # recovery replays the manifests after the first snapshot the same way: the same state
    again = Runner(log, SERDE, Counter, CONFIG, RunOptions())
    open_all([again])
    again.tick()
    assert {p: t.processor.snapshot() for p, t in again.tasks.items()} == states
    again.close()
    log.close()


def test_merged_as_of_inputs_keep_the_time_order_as_before(tmp_path: Path) -> None:
    log = _log(tmp_path)
    runner = Runner(log, SERDE, Counter, CONFIG, RunOptions(until_idle=True))
    assert not runner.pinned  # until-idle runs merge them
    runner.run()
    assert _seen_by_order(log) == [0] * 40  # every order is earlier than every md record
    manifests = StateStore(log, SERDE, "counter").manifests()
    assert all(m.applied_first == () for m in manifests)
    assert verify(log, SERDE, Counter, CONFIG).identical
    log.close()


def test_market_data_still_being_read_does_not_hold_an_order_back(tmp_path: Path) -> None:
    """One record per poll of the shared reader: md is read slowly. Merged, the order waits for it; pinned, it goes."""
    held = {}
    for mode in ("merged", "pinned"):
        log = _log(tmp_path / mode, n_md=0, n_in=2)
        with log.producer() as p:  # md before the orders this time, as a feed that is ahead would be
            for i in range(20):
                p.produce("md", SERDE.encode(RAW, raw_value(20_000 + i, "M0")), partition=0, timestamp_ns=T0 - (100 - i) * MS)
        runner = Runner(log, SERDE, Counter, CONFIG, RunOptions(as_of=mode, poll_records=1, max_wait_ms=10_000))
        _drive(runner, ticks=2)
        held[mode] = sum(len(q.records) for t in runner.tasks.values() for q in t.merger.queues.values() if q.tp[0] == "in")
        runner.close()
        log.close()
    assert held["merged"] == 2  # both orders still wait behind market data not yet read
    assert held["pinned"] == 0  # handed out at once, after the md read so far


def test_the_lockstep_schedule_refuses_a_runner_that_pins(tmp_path: Path) -> None:
    log = _log(tmp_path)
    runner = Runner(log, SERDE, Counter, CONFIG, RunOptions())
    with pytest.raises(ConfigError, match="lockstep") as info:
        runner.step_to_horizon(1.0)
    assert "as_of='merged'" in (info.value.hint or "")
    log.close()
