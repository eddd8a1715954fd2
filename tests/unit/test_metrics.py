"""The runtime's Prometheus series: names, labels and values, scraped from the registry's text exposition."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from procs import RAW, Counter, CounterConfig, raw_value
from runtime_support import TOTAL_OUT, build_input
from streams.errors import ConfigError
from streams.log.base import TopicSpec
from streams.log.embedded import EmbeddedLog
from streams.processors.reconcile.processor import DIVERGED, IN_SYNC
from streams.processors.risk.controls import HALTED, KILL_SWITCH, REDUCE_ONLY, Cause, Controls
from streams.runtime import Runner, RunOptions, RuntimeMetrics
from streams.runtime.metrics import serve_metrics
from streams.serde import Serde

SERDE = Serde.from_settings()


def scrape(registry: CollectorRegistry) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """``{sample name: {sorted labels: value}}`` as Prometheus would read them."""
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def families(registry: CollectorRegistry) -> dict[str, str]:
    """``{family: type}``, without prometheus-client's ``*_created`` timestamps."""
    return {f.name: f.type for f in text_string_to_metric_families(generate_latest(registry).decode()) if not f.name.endswith("_created")}


def test_a_run_exposes_conventional_names_and_values_that_reconcile(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path / "log")
    build_input(log, SERDE, "in", "g", "out")
    registry = CollectorRegistry()
    cfg = CounterConfig(inputs=["in"], globals=["g"], output="out", reject_seq=17)
    runner = Runner(log, SERDE, Counter, cfg, RunOptions(until_idle=True, batch=500), metrics=RuntimeMetrics("counter", registry))
    counts = runner.run()
    log.close()
    assert families(registry) == {
        "hftstream_records_in": "counter", "hftstream_records_out": "counter", "hftstream_dead_letters": "counter",
        "hftstream_commits": "counter", "hftstream_transaction_aborts": "counter", "hftstream_batch_seconds": "histogram",
        "hftstream_commit_seconds": "histogram", "hftstream_consumer_lag": "gauge", "hftstream_end_to_end_latency_seconds": "histogram",
        "hftstream_trading_state": "gauge", "hftstream_recon_status": "gauge",
        "hftstream_broker_outage": "gauge", "hftstream_broker_outage_seconds": "gauge", "hftstream_outages": "counter",
        "hftstream_outage_retries": "counter",
    }
    m = scrape(registry)
    proc = (("processor", "counter"),)
    assert m["hftstream_records_in_total"][proc] == counts.records_in == TOTAL_OUT
    assert m["hftstream_records_out_total"][proc] == counts.records_out
    assert m["hftstream_dead_letters_total"] == {(("processor", "counter"), ("reason", "TEST_REJECT")): counts.dead_letters}
    assert counts.dead_letters >= 1  # symbol counts reach 17 in every task's keyed input
    assert m["hftstream_commits_total"][proc] == counts.commits == m["hftstream_commit_seconds_count"][proc]
    assert m["hftstream_transaction_aborts_total"][proc] == 0
    assert m["hftstream_broker_outage"][proc] == 0 and m["hftstream_outages_total"][proc] == 0  # no outage in this run
    assert m["hftstream_batch_seconds_count"][proc] >= 1
    # lag: every input partition, labelled, and 0 once everything is committed
    lag = m["hftstream_consumer_lag"]
    assert set(lag) == {(("partition", str(p)), ("processor", "counter"), ("topic", t)) for t, n in (("in", 4), ("g", 1)) for p in range(n)}
    assert set(lag.values()) == {0.0}
    # end-to-end: one observation per task per commit it took part in; inputs are stamped in 2023, so the latency is their age
    e2e_count = m["hftstream_end_to_end_latency_seconds_count"][proc]
    assert 4 <= e2e_count <= 4 * counts.commits
    age = time.time() - 1_700_000_000
    assert age - 120 < m["hftstream_end_to_end_latency_seconds_sum"][proc] / e2e_count < age + 5


def test_lag_is_published_while_behind_and_end_to_end_latency_is_commit_time_minus_the_oldest_input(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path / "log")
    log.create_topic(TopicSpec("in", 1))
    log.create_topic(TopicSpec("out", 1))
    now = time.time_ns()
    with log.producer() as p:  # the first input is 5 s old, the others 1 s: the transaction's worst case is 5 s
        for i in range(300):
            p.produce("in", SERDE.encode(RAW, raw_value(i, "S")), b"S", timestamp_ns=now - (5 if i == 0 else 1) * 1_000_000_000)
    registry = CollectorRegistry()
    metrics = RuntimeMetrics("counter", registry)
    runner = Runner(log, SERDE, Counter, CounterConfig(inputs=["in"], output="out"), RunOptions(batch=100, poll_records=100), metrics=metrics)
    runner.open()
    try:
        deadline = time.monotonic() + 30
        while scrape(registry).get("hftstream_commits_total", {}).get((("processor", "counter"),), 0) < 1:
            runner.tick()
            assert time.monotonic() < deadline, "no commit within 30 s"
        m = scrape(registry)
        key = (("partition", "0"), ("processor", "counter"), ("topic", "in"))
        assert m["hftstream_consumer_lag"][key] == 300 - m["hftstream_records_in_total"][(("processor", "counter"),)] == 200
        first = m["hftstream_end_to_end_latency_seconds_sum"][(("processor", "counter"),)]
        assert 5.0 <= first < 5.0 + 20, first
        while runner.tick() or not runner.idle():
            assert time.monotonic() < deadline
        m = scrape(registry)
        assert m["hftstream_consumer_lag"][key] == 0
        assert m["hftstream_end_to_end_latency_seconds_count"][(("processor", "counter"),)] == 3  # three commits of 100
        assert 1.0 * 2 <= m["hftstream_end_to_end_latency_seconds_sum"][(("processor", "counter"),)] - first < 2 * 21
    finally:
        runner.close()
        log.close()


def test_state_sets_merge_tasks_and_drop_what_no_task_reports() -> None:
    registry = CollectorRegistry()
    m = RuntimeMetrics("reconcile", registry)
    m.task_states(0, {"recon": {"alpha": IN_SYNC, "beta": IN_SYNC}})
    m.task_states(1, {"recon": {"alpha": DIVERGED}})
    status = scrape(registry)["hftstream_recon_status"]

    def of(venue: str) -> dict[str, float]:
        return {dict(k)["status"]: v for k, v in status.items() if dict(k)["venue"] == venue}

    assert of("alpha") == {"IN_SYNC": 1, "DIVERGED": 1, "HALTED": 0}, "one task in sync, one diverged: both show"
    assert of("beta") == {"IN_SYNC": 1, "DIVERGED": 0, "HALTED": 0}
    m.task_states(1, {"recon": {"alpha": IN_SYNC}})
    status = scrape(registry)["hftstream_recon_status"]
    assert of("alpha") == {"IN_SYNC": 1, "DIVERGED": 0, "HALTED": 0}
    m.forget_task(0)
    status = scrape(registry)["hftstream_recon_status"]
    assert of("beta") == {}, "a venue no task reports any more is dropped, not left at its last state"
    assert all(dict(k)["processor"] == "reconcile" for k in status)


def test_risk_reports_the_strictest_flag_per_scope_and_global() -> None:
    c = Controls(SERDE.repo, {}, replay_window_ns=0, max_command_age_ns=0, limits={})
    assert c.states() == {"global": "ACTIVE"}
    cause = Cause("op", "c1", 1, "test")
    c.flags[REDUCE_ONLY][("A", None)] = cause
    c.flags[HALTED][("A", None)] = cause
    c.flags[KILL_SWITCH][(None, "S")] = cause
    c.flags[HALTED][(None, None)] = cause
    assert c.states() == {"global": "HALTED", "account:A": "HALTED", "symbol:S": "KILL_SWITCH"}
    registry = CollectorRegistry()
    RuntimeMetrics("risk", registry).task_states(0, {"trading": c.states()})
    trading = scrape(registry)["hftstream_trading_state"]
    assert trading[(("processor", "risk"), ("scope", "global"), ("state", "HALTED"))] == 1
    assert trading[(("processor", "risk"), ("scope", "global"), ("state", "ACTIVE"))] == 0
    assert sum(v for k, v in trading.items() if dict(k)["scope"] == "symbol:S") == 1


def test_a_metrics_port_in_use_is_an_error_with_a_hint() -> None:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen()
        with pytest.raises(ConfigError) as err:
            serve_metrics(s.getsockname()[1], CollectorRegistry())
    assert "--metrics-port" in err.value.hint

