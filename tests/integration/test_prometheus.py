"""A real Prometheus server (Debian package ``prometheus``) scrapes a running processor and the tape sink.

Nothing is installed by hand: the ``prometheus`` fixture runs ``infra/prometheus/install.sh`` (the same
script ``make prereqs`` runs) when the binaries are missing, and skips with the reason when it cannot.
The server runs from the test, on 127.0.0.1, with a temporary storage directory; the package's own
service is never used. Also: ``promtool`` checks the rules and the config, and unit-tests the alerts.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runtime_support import HFTSTREAM, TOTAL_OUT, Case
from streams.serde import Serde
from tape_support import cli as tape_cli

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "infra" / "prometheus" / "alerts.yml"
CONFIG = ROOT / "infra" / "prometheus" / "prometheus.yml"


@pytest.fixture(scope="module")
def tools() -> dict[str, str]:
    """Paths of ``prometheus`` and ``promtool``, installed from Debian's package if missing."""
    found = {name: shutil.which(name) for name in ("prometheus", "promtool")}
    if not all(found.values()):
        env = {**os.environ, "HFTSTREAM_SUDO": "sudo -n"}  # never wait for a password
        proc = subprocess.run(["sh", str(ROOT / "infra" / "prometheus" / "install.sh")], capture_output=True, text=True, timeout=900,
                              check=False, env=env, stdin=subprocess.DEVNULL)
        found = {name: shutil.which(name) for name in ("prometheus", "promtool")}
        if not all(found.values()):
            pytest.skip("prometheus is not installed and infra/prometheus/install.sh could not install it "
                        f"(exit {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-300:]}); run `make prereqs` as a sudoer")
    return {k: str(v) for k, v in found.items()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_promtool_accepts_the_rules_and_the_config(tools: dict[str, str]) -> None:
    rules = subprocess.run([tools["promtool"], "check", "rules", str(RULES)], capture_output=True, text=True, check=False)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS: 8 rules found" in rules.stdout
    config = subprocess.run([tools["promtool"], "check", "config", str(CONFIG)], capture_output=True, text=True, check=False)
    assert config.returncode == 0, config.stdout + config.stderr


ALERT_TESTS = """
rule_files: [{rules}]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'hftstream_trading_state{{job="hftstream-processors",instance="p:9464",processor="risk",scope="global",state="HALTED"}}'
        values: '0 0 1 1 1'
      - series: 'hftstream_recon_status{{job="hftstream-processors",instance="p:9464",processor="reconcile",venue="alpha",status="DIVERGED"}}'
        values: '1 1 1 1 1'
      - series: 'hftstream_recon_status{{job="hftstream-processors",instance="p:9464",processor="reconcile",venue="alpha",status="IN_SYNC"}}'
        values: '0 0 0 0 0'
      - series: 'hftstream_dead_letters_total{{job="hftstream-processors",instance="p:9464",processor="normalize",reason="BAD_CHECKSUM"}}'
        values: '0 0 3 5 5'
      - series: 'hftstream_consumer_lag{{job="hftstream-processors",instance="p:9464",processor="risk",topic="orders.in",partition="0"}}'
        values: '0+20000x12'
      - series: 'hftstream_consumer_lag{{job="hftstream-processors",instance="p:9464",processor="ledger",topic="fills",partition="0"}}'
        values: '50000x12'
      - series: 'hftstream_broker_outage{{job="hftstream-processors",instance="p:9464",processor="normalize"}}'
        values: '0 1 1 1 0 0'
    alert_rule_test:
      - eval_time: 1m
        alertname: HftstreamTradingHalted
        exp_alerts: []
      - eval_time: 3m
        alertname: HftstreamTradingHalted
        exp_alerts:
          - exp_labels: {{severity: critical, job: hftstream-processors, instance: "p:9464", processor: risk, scope: global, state: HALTED}}
            exp_annotations:
              summary: "trading is HALTED for global"
              description: "Risk refuses new orders in this scope. RUNBOOK.md 'Alert: HftstreamTradingHalted'."
      - eval_time: 2m
        alertname: HftstreamReconNotHealthy
        exp_alerts:
          - exp_labels: {{severity: critical, job: hftstream-processors, instance: "p:9464", processor: reconcile, venue: alpha, status: DIVERGED}}
            exp_annotations:
              summary: "reconciliation of venue alpha is DIVERGED"
              description: "RUNBOOK.md 'Alert: HftstreamReconNotHealthy'."
      - eval_time: 4m
        alertname: HftstreamDeadLettersGrowing
        exp_alerts:
          - exp_labels: {{severity: warning, job: hftstream-processors, instance: "p:9464", processor: normalize, reason: BAD_CHECKSUM}}
            exp_annotations:
              summary: "normalize dead-letters inputs (BAD_CHECKSUM)"
              description: "5 dead letters in 10 minutes. RUNBOOK.md 'Alert: HftstreamDeadLettersGrowing'."
      - eval_time: 12m
        alertname: HftstreamConsumerLagGrowing
        exp_alerts:
          - exp_labels: {{severity: warning, job: hftstream-processors, instance: "p:9464", processor: risk, topic: orders.in, partition: "0"}}
            exp_annotations:
              summary: "risk falls behind on orders.in/0"
              description: "Lag 240000 and rising for 5 minutes. RUNBOOK.md 'Alert: HftstreamConsumerLagGrowing'."
      - eval_time: 1m
        alertname: HftstreamBrokerOutage
        exp_alerts: []
      - eval_time: 3m
        alertname: HftstreamBrokerOutage
        exp_alerts:
          - exp_labels: {{severity: critical, job: hftstream-processors, instance: "p:9464", processor: normalize}}
            exp_annotations:
              summary: "normalize is riding out a broker outage"
              description: "It retries until --outage-limit, then exits 2. RUNBOOK.md 'Alert: HftstreamBrokerOutage'."
      - eval_time: 5m
        alertname: HftstreamBrokerOutage
        exp_alerts: []
"""


def test_the_alerts_fire_on_what_they_describe_and_not_otherwise(tools: dict[str, str], tmp_path: Path) -> None:
    """promtool's rule unit tests: halted, diverged, dead letters, a growing lag and an outage fire; a high but flat lag does not."""
    spec = tmp_path / "alerts_test.yml"
    spec.write_text(ALERT_TESTS.format(rules=json.dumps(str(RULES))))
    proc = subprocess.run([tools["promtool"], "test", "rules", str(spec)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def query(port: int, promql: str) -> list[dict]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return body["data"]["result"]


def scalar(port: int, promql: str) -> float | None:
    result = query(port, promql)
    return float(result[0]["value"][1]) if result else None


@pytest.fixture
def case(tmp_path: Path, unique_name: Callable[[str], str]) -> Iterator[Case]:
    c = Case(f"embedded://{tmp_path / 'log'}", tmp_path, Serde.from_settings(), unique_name)
    yield c
    c.close()


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@pytest.mark.slow
def test_prometheus_scrapes_a_running_processor_and_the_sink(tools: dict[str, str], case: Case, tmp_path: Path) -> None:
    init = tape_cli("tape", "init", data=tmp_path)
    assert init.returncode == 0, init.stderr
    proc_port, sink_port, prom_port = free_port(), free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(json.dumps({  # JSON is YAML
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {"job_name": "hftstream-processors", "static_configs": [{"targets": [f"127.0.0.1:{proc_port}"]}]},
            {"job_name": "hftstream-sink", "static_configs": [{"targets": [f"127.0.0.1:{sink_port}"]}]},
        ],
    }))
    procs: list[subprocess.Popen] = []
    try:
        procs.append(case.start("--metrics-port", str(proc_port), until_idle=False))
        procs.append(subprocess.Popen(
            [HFTSTREAM, "tape", "sink", "--topics", case.out, "--linger-ms", "100", "--metrics-port", str(sink_port),
             "--data", str(tmp_path), "--log", case.url],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
        ))
        procs.append(subprocess.Popen(
            [tools["prometheus"], f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path,
        ))
        name = case.name
        wanted = {
            f'sum(hftstream_records_in_total{{job="hftstream-processors",processor="{name}"}})': float(TOTAL_OUT),
            f'sum(hftstream_records_out_total{{processor="{name}"}})': float(TOTAL_OUT),
            f'sum(hftstream_consumer_lag{{processor="{name}"}})': 0.0,
            f'count(hftstream_consumer_lag{{processor="{name}"}})': 5.0,  # 4 keyed partitions + 1 global
            'sum(hftstream_sink_rows_inserted_total{job="hftstream-sink"})': float(TOTAL_OUT),
            f'sum(hftstream_sink_lag{{topic="{case.out}"}})': 0.0,
            'sum(up{job=~"hftstream-.*"})': 2.0,
        }
        got: dict[str, float | None] = {}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            for p in procs:
                assert p.poll() is None, f"{p.args[0]} exited {p.returncode}: {p.stderr.read().decode()[-2000:] if p.stderr else ''}"
            try:
                got = {q: scalar(prom_port, q) for q in wanted}
            except OSError:  # the server is still starting
                got = {}
            if got == wanted:
                break
            time.sleep(1)
        assert got == wanted
        assert (scalar(prom_port, f'sum(hftstream_batch_seconds_count{{processor="{name}"}})') or 0) >= 1
        assert (scalar(prom_port, 'sum(hftstream_sink_batch_insert_seconds_count)') or 0) >= 1
        rules = json.load(urllib.request.urlopen(f"http://127.0.0.1:{prom_port}/api/v1/rules", timeout=5))["data"]["groups"]
        assert {r["name"] for g in rules for r in g["rules"]} >= {"HftstreamTradingHalted", "HftstreamReconNotHealthy",
                                                                  "HftstreamDeadLettersGrowing", "HftstreamConsumerLagGrowing"}
        firing = json.load(urllib.request.urlopen(f"http://127.0.0.1:{prom_port}/api/v1/alerts", timeout=5))["data"]["alerts"]
        assert [a for a in firing if a["labels"]["alertname"] != "HftstreamMetricsDown"] == []
    finally:
        _stop(procs)
