"""docker-compose.yml, the Dockerfile and the Grafana/Prometheus provisioning agree with each other (no Docker engine here:
what can be checked without one is checked)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def _published(service: str) -> set[int]:
    return {int(str(p).split(":")[-1]) for p in SERVICES[service].get("ports", [])}


def _mounts(service: str) -> dict[str, Path]:
    """container path -> host path, for the service's bind mounts of repo files."""
    out = {}
    for v in SERVICES[service].get("volumes", []):
        host, container = v.split(":")[:2]
        if host.startswith("./"):
            out[container] = ROOT / host[2:]
    return out


def test_every_service_has_an_image_or_a_build_and_the_pipeline_is_there() -> None:
    assert {"kafka", "clickhouse", "processors", "sink", "prometheus", "grafana"} <= set(SERVICES)
    for name, svc in SERVICES.items():
        assert svc.get("image") or svc.get("build"), name
    built = [n for n, s in SERVICES.items() if str(s.get("image", "")).startswith("hftstream")]
    assert {"processors", "sink", "tape-init", "topics-apply"} <= set(built)
    assert {s["image"] for n, s in SERVICES.items() if n in built} == {"hftstream:local"}, "one image for every hftstream process"
    assert all(SERVICES[n].get("build") == "." for n in built) and (ROOT / "Dockerfile").exists()
    assert "KRaft" in (ROOT / "docker-compose.yml").read_text() and "broker,controller" in SERVICES["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]


def test_every_mounted_repo_path_exists_and_depends_on_names_services() -> None:
    for name in SERVICES:
        for container, host in _mounts(name).items():
            assert host.exists(), f"{name} mounts {host} on {container}, which is not in the repo"
        deps = SERVICES[name].get("depends_on", [])
        for dep in (deps if isinstance(deps, list) else deps.keys()):
            assert dep in SERVICES, f"{name} depends on unknown service {dep}"


def test_the_pipeline_points_at_the_kafka_and_clickhouse_services() -> None:
    listeners = SERVICES["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"].split(",")
    advertised = {u.split("://")[1] for u in listeners}
    for name in ("processors", "sink", "tape-init", "topics-apply"):
        env = SERVICES[name]["environment"]
        log = urlsplit(env["HFTSTREAM_LOG"])
        assert log.scheme == "kafka" and log.netloc in advertised, f"{name}: {env['HFTSTREAM_LOG']} is not an advertised listener"
        ch = urlsplit(env["HFTSTREAM_CLICKHOUSE_URL"])
        assert ch.hostname == "clickhouse" and (ch.port or 8123) in _published("clickhouse")


def test_prometheus_scrapes_the_metrics_ports_the_services_serve() -> None:
    mounts = _mounts("prometheus")
    config_path = mounts["/etc/prometheus/prometheus.yml"]
    config = yaml.safe_load(config_path.read_text())
    for rule_file in config.get("rule_files", []):
        assert f"/etc/prometheus/{rule_file}" in mounts, f"{rule_file} is not mounted next to prometheus.yml"
    targets = [t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    assert targets
    for target in targets:
        host, port = target.rsplit(":", 1)
        assert host in SERVICES, f"scrape target {target}: no service {host}"
        command = SERVICES[host]["command"]
        assert "--metrics-port" in command and command[command.index("--metrics-port") + 1] == port, (host, command)


def test_grafana_provisions_the_datasource_and_the_dashboards_folder() -> None:
    env = SERVICES["grafana"]["environment"]
    assert "grafana-clickhouse-datasource" in env["GF_INSTALL_PLUGINS"]
    mounts = _mounts("grafana")
    prov = mounts["/etc/grafana/provisioning"]
    ds = yaml.safe_load((prov / "datasources" / "clickhouse.yaml").read_text())["datasources"][0]
    assert ds["type"] == "grafana-clickhouse-datasource" and ds["jsonData"]["host"] == "clickhouse"
    assert ds["jsonData"]["port"] in _published("clickhouse") and ds["jsonData"]["defaultDatabase"] == "tape"
    provider = yaml.safe_load((prov / "dashboards" / "hftstream.yaml").read_text())["providers"][0]
    folder = provider["options"]["path"]
    assert mounts[folder] == ROOT / "dashboards", "the provider reads the folder the repo's dashboards are mounted on"
    files = sorted((ROOT / "dashboards").glob("*.json"))
    assert len(files) == 4
    for f in files:
        dash = json.loads(f.read_text())
        variables = {v["name"]: v for v in dash["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == ds["type"]
        for panel in dash["panels"]:
            assert panel["datasource"] == {"type": ds["type"], "uid": "${datasource}"}, (f.name, panel["title"])
