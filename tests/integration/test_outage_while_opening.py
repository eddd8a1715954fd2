"""A broker outage while the stages open (``init_transactions`` timing out) is ridden out like one mid-run.

The real runtime on the real embedded log; the log's first transactional producers fail with the error
the Kafka client gives while the broker is down (``BrokerUnavailableError`` "initialising transactions").
Was: ``Runner.open()`` ran outside the :class:`~streams.runtime.outage.OutageGuard` in ``run``, ``run all``
and the lockstep demo, so a broker SIGKILLed while a slow machine was still opening the stages made
``demo`` exit 2 (seen in CI).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from procs import RAW, Counter, CounterConfig, raw_value
from streams.errors import BrokerUnavailableError
from streams.log.base import Log, TopicSpec
from streams.log.embedded import EmbeddedLog
from streams.runtime import Runner, RunOptions
from streams.runtime.lockstep import MarkStore, Schedule, run_lockstep
from streams.runtime.scheduler import run_all
from streams.runtime.state import read_range
from streams.serde import Serde

MS = 1_000_000
T0 = 1_700_000_000_000 * MS


class FlakyOpens:
    """The embedded log, but its first ``failures`` transactional producers fail as a down broker makes them."""

    def __init__(self, log: EmbeddedLog, failures: int) -> None:
        self._log, self.failures, self.calls = log, failures, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)

    def transactional_producer(self, transactional_id: str) -> Any:
        self.calls += 1
        if self.failures:
            self.failures -= 1
            raise BrokerUnavailableError(
                "Kafka broker at 127.0.0.1:9 is unavailable (initialising transactions): Timed out waiting for operation"
            )
        return self._log.transactional_producer(transactional_id)


@pytest.fixture
def serde() -> Serde:
    return Serde.from_settings()


def _publish(log: Log, serde: Serde, topic: str, n: int) -> None:
    log.create_topic(TopicSpec(topic, 2))
    log.create_topic(TopicSpec(topic.replace("in", "out"), 2))
    with log.producer() as p:
        for i in range(n):
            symbol = f"S{i % 5}"
            p.produce(topic, serde.encode(RAW, raw_value(i, symbol)), symbol.encode(), timestamp_ns=T0 + i * MS)


def _committed(log: Log, topic: str) -> list[bytes]:
    out = []
    for p in range(log.partitions(topic)):
        low, high = log.watermarks(topic, p)
        out.extend(r.value for r in read_range(log, topic, p, low, high))
    return out


def _runners(log: Any, serde: Serde, n: int, **opts: Any) -> list[Runner]:
    options = RunOptions(until_idle=True, **opts)
    return [Runner(log, serde, Counter, CounterConfig(inputs=[f"in{i}"], output=f"out{i}"), options, name=f"c{i}") for i in range(n)]


def _reference(tmp_path: Path, serde: Serde, n: int) -> list[list[bytes]]:
    log = EmbeddedLog(tmp_path / "reference")
    try:
        for i in range(n):
            _publish(log, serde, f"in{i}", 200)
        run_all(_runners(log, serde, n), until_idle=True)
        return [_committed(log, f"out{i}") for i in range(n)]
    finally:
        log.close()


@pytest.mark.parametrize("failures", [1, 3])
def test_run_all_rides_out_an_outage_while_the_second_stage_opens(tmp_path: Path, serde: Serde, caplog, failures: int) -> None:
    expected = _reference(tmp_path, serde, 2)
    inner = EmbeddedLog(tmp_path / "log")
    try:
        for i in range(2):
            _publish(inner, serde, f"in{i}", 200)
        flaky = FlakyOpens(inner, 0)
        runners = _runners(flaky, serde, 2)
        flaky.failures = failures  # the first stage opens, then the broker is "down" for the next `failures` opens
        with caplog.at_level(logging.INFO, logger="streams.runtime"):
            counts = run_all(runners, until_idle=True)
        assert [_committed(inner, f"out{i}") for i in range(2)] == expected  # nothing lost or doubled
        assert all(c.records_in == 200 and c.reconciles() for c in counts.values())
        assert "broker outage:" in caplog.text and "broker outage over after" in caplog.text
        assert flaky.calls >= 2 + failures
    finally:
        inner.close()


def test_a_single_run_rides_out_an_outage_while_it_opens(tmp_path: Path, serde: Serde, caplog) -> None:
    expected = _reference(tmp_path, serde, 1)
    inner = EmbeddedLog(tmp_path / "log")
    try:
        _publish(inner, serde, "in0", 200)
        flaky = FlakyOpens(inner, 0)
        (runner,) = _runners(flaky, serde, 1)
        flaky.failures = 2
        with caplog.at_level(logging.INFO, logger="streams.runtime"):
            runner.run()
        assert _committed(inner, "out0") == expected[0]
        assert "broker outage over after" in caplog.text
    finally:
        inner.close()


def test_the_lockstep_run_rides_out_an_outage_while_its_stages_open(tmp_path: Path, serde: Serde, caplog) -> None:
    def lockstep(log: Any, inner: EmbeddedLog) -> list[list[bytes]]:
        runners = _runners(log, serde, 2, batch=1 << 40, commit_interval_ms=1 << 40)
        if isinstance(log, FlakyOpens):
            log.failures = 2
        schedule = Schedule("t", T0 // MS, T0 // MS + 200, 50, {})
        result = run_lockstep(runners, schedule, MarkStore(log, serde, "t"))
        assert result.slices_run == schedule.slices
        return [_committed(inner, f"out{i}") for i in range(2)]

    plain = EmbeddedLog(tmp_path / "plain")
    inner = EmbeddedLog(tmp_path / "log")
    try:
        for log in (plain, inner):
            log.create_topic(TopicSpec("runtime.schedule", 1))
            for i in range(2):
                _publish(log, serde, f"in{i}", 200)
        expected = lockstep(plain, plain)
        with caplog.at_level(logging.INFO, logger="streams.runtime"):
            got = lockstep(FlakyOpens(inner, 0), inner)
        assert got == expected and all(len(x) == 200 for x in got)
        assert "broker outage over after" in caplog.text
    finally:
        plain.close()
        inner.close()
