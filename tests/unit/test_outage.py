"""The broker-outage retry policy and guard (streams.runtime.outage), without a broker: fake runners and clocks."""

from __future__ import annotations

import threading

import pytest

from streams.errors import (
    BrokerUnavailableError,
    ConfigError,
    DeliveryError,
    KafkaClientError,
    LogLockedError,
    ProducerFencedError,
    TransactionAbortableError,
)
from streams.runtime.metrics import RuntimeMetrics
from streams.runtime.outage import FENCE_WINDOW_S, OutageGuard, RetryPolicy, is_outage
from streams.runtime.runfile import RunFile, describe, read_runfiles


def test_backoff_doubles_to_its_cap():
    p = RetryPolicy(limit_s=300, first_s=0.5, max_s=5, factor=2)
    assert [p.delay(n) for n in range(1, 8)] == [0.5, 1, 2, 4, 5, 5, 5]


def test_the_limit_bounds_every_wait_and_ends_the_retries():
    p = RetryPolicy(limit_s=10, first_s=0.5, max_s=5)
    assert p.next_wait(1, 0.0) == 0.5
    assert p.next_wait(6, 8.0) == 2.0  # 5 s backoff, but only 2 s left
    assert p.next_wait(7, 10.0) is None
    assert RetryPolicy(limit_s=0).next_wait(1, 0.0) is None  # limit 0: no retries at all


@pytest.mark.parametrize(
    ("exc", "down", "expected"),
    [
        (BrokerUnavailableError("x"), False, True),
        (DeliveryError("x"), False, True),
        (TransactionAbortableError("x"), False, True),
        (LogLockedError("x"), True, False),  # another process holds the embedded log: not an outage
        (ProducerFencedError("x"), True, True),  # the outage outlived transaction.timeout.ms
        (ProducerFencedError("x"), False, False),  # fenced with a healthy broker: another instance, stop
        (KafkaClientError("x"), True, True),
        (KafkaClientError("x"), False, False),
        (ConfigError("x"), True, False),
    ],
)
def test_which_errors_an_outage_explains(exc, down, expected):
    assert is_outage(exc, down) is expected


class FakeLog:
    url = "kafka://fake:1"

    def __init__(self) -> None:
        self.down_for = 0.0

    def seen_unavailable_within(self, seconds: float) -> bool:
        return self.down_for <= seconds and self.down_for > 0


class FakeRunner:
    def __init__(self, tmp_path, name: str = "normalize") -> None:
        self.log = FakeLog()
        self.metrics = RuntimeMetrics(name)
        self.runfile = RunFile(self.log.url, name, "0")
        self.reopened = 0

    def reopen(self) -> None:
        self.reopened += 1


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        self.now += seconds
        return False


def _metric(runner: FakeRunner, name: str) -> float:
    value = runner.metrics.registry.get_sample_value(name, {"processor": "normalize"})
    assert value is not None, name
    return value


def test_an_outage_is_retried_with_backoff_reopened_counted_and_ended(tmp_path, monkeypatch):
    monkeypatch.setenv("HFTSTREAM_RUN_DIR", str(tmp_path))
    runner, clock = FakeRunner(tmp_path), Clock()
    guard = OutageGuard([runner], RetryPolicy(limit_s=60), threading.Event(), clock=clock, wall_ns=lambda: 7, wait=clock.wait)
    failures = iter([BrokerUnavailableError("down"), DeliveryError("still down"), BrokerUnavailableError("down")])
    seen: list[str] = []

    def work() -> str:
        exc = next(failures, None)
        if exc is not None:
            if guard.outage is not None:  # during the outage: gauge up, the run file says retrying
                seen.append(describe(read_runfiles(runner.log.url)[0]))
                assert _metric(runner, "hftstream_broker_outage") == 1
            raise exc
        return "done"

    assert guard.call(work) == "done"
    assert clock.waits == [0.5, 1.0, 2.0]
    assert runner.reopened == 3  # a new producer and every task from its last commit, before each retry
    assert guard.outage is None and guard.outages == 1 and guard.retries == 3
    assert _metric(runner, "hftstream_broker_outage") == 0
    assert _metric(runner, "hftstream_outages_total") == 1
    assert _metric(runner, "hftstream_outage_retries_total") == 3
    assert seen and seen[0].startswith("broker outage: instance 0") and "retrying" in seen[0]
    after = describe(read_runfiles(runner.log.url)[0])
    assert "rode out a 3.5 s broker outage (3 attempts)" in after
    runner.runfile.remove()
    assert read_runfiles(runner.log.url) == []


def test_past_the_limit_the_last_error_stops_the_run_with_a_hint(tmp_path, monkeypatch):
    monkeypatch.setenv("HFTSTREAM_RUN_DIR", str(tmp_path))
    runner, clock = FakeRunner(tmp_path), Clock()
    guard = OutageGuard([runner], RetryPolicy(limit_s=4), threading.Event(), clock=clock, wait=clock.wait)

    def work() -> None:
        clock.now += 1.0  # every attempt takes a second (a client call timing out)
        raise BrokerUnavailableError("Kafka broker at fake:1 is unavailable")

    with pytest.raises(BrokerUnavailableError) as err:
        guard.call(work)
    assert "gave up after a" in str(err.value) and "limit 4 s" in str(err.value) and "unavailable" in str(err.value)
    assert "--outage-limit" in err.value.hint and "HFTSTREAM_OUTAGE_LIMIT_S" in err.value.hint
    assert sum(clock.waits) <= 4.0


def test_fenced_without_an_outage_stops_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("HFTSTREAM_RUN_DIR", str(tmp_path))
    runner, clock = FakeRunner(tmp_path), Clock()
    guard = OutageGuard([runner], RetryPolicy(limit_s=60), threading.Event(), clock=clock, wait=clock.wait)

    def fenced() -> None:
        raise ProducerFencedError("fenced")

    with pytest.raises(ProducerFencedError):
        guard.call(fenced)
    assert runner.reopened == 0 and guard.outages == 0
    runner.log.down_for = FENCE_WINDOW_S / 2  # a client saw the broker unreachable a moment ago: the outage fenced it
    calls = iter([ProducerFencedError("fenced")])

    def fenced_once() -> str:
        exc = next(calls, None)
        if exc is not None:
            raise exc
        return "resumed"

    assert guard.call(fenced_once) == "resumed" and runner.reopened == 1


def test_a_stop_during_the_wait_ends_the_outage_with_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HFTSTREAM_RUN_DIR", str(tmp_path))
    runner, stop = FakeRunner(tmp_path), threading.Event()
    guard = OutageGuard([runner], RetryPolicy(limit_s=60), stop, wait=lambda s: True)

    def work() -> None:
        raise BrokerUnavailableError("down")

    with pytest.raises(BrokerUnavailableError) as err:
        guard.call(work)
    assert "stopped during a broker outage" in str(err.value) and "resumes from the last commit" in err.value.hint
