"""infra/topics.yaml parsing: durations, templates, validation errors that say what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.errors import ConfigError, UnknownTopicError
from streams.topics import load_catalog, parse_retention


@pytest.mark.parametrize(
    ("text", "ms"),
    [("7d", 604_800_000), ("12h", 43_200_000), ("30m", 1_800_000), ("15s", 15_000), ("250ms", 250), ("forever", None), (None, None), (5000, 5000)],
)
def test_retention_durations(text, ms):
    assert parse_retention(text, "t") == ms


def test_bad_retention_says_how_to_write_it():
    with pytest.raises(ConfigError) as err:
        parse_retention("a week", "topics.yaml: topics[0]")
    assert "a week" in str(err.value) and "7d" in err.value.hint


def test_repo_catalog_declares_the_architecture_topics():
    cat = load_catalog()
    names = {s.name for s in cat.all()}
    for name in ["md.normalized", "orders.in", "risk.decisions", "orders.accepted", "order.events", "fills",
                 "md.book", "ledger.entries", "positions", "ops.commands", "exec.reports", "recon.breaks",
                 "recon.status", "refdata.instruments", "md.raw.alpha", "dlq.normalize", "state.matching"]:
        assert name in names, name
    assert cat.spec_for("positions").cleanup_policy == "compact"
    assert cat.spec_for("orders.in").key == "account"


def test_template_expands_for_an_undeclared_venue():
    spec = load_catalog().spec_for("md.raw.zulu")
    assert spec.name == "md.raw.zulu"
    assert spec.value_schema == "hftstream.md.RawVenueMessage"
    assert spec.partitions == load_catalog().spec_for("md.raw.alpha").partitions


def test_unknown_topic_names_the_file():
    with pytest.raises(UnknownTopicError) as err:
        load_catalog().spec_for("no.such.topic")
    assert "topics.yaml" in err.value.hint


def _write(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "topics.yaml"
    p.write_text(body)
    return p


def test_unknown_field_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="unknown field"):
        load_catalog(_write(tmp_path, "topics:\n  - name: a\n    partitons: 3\n"))


def test_duplicate_topic_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="declared twice"):
        load_catalog(_write(tmp_path, "topics:\n  - name: a\n  - name: a\n"))


def test_bad_partitions_and_policy(tmp_path):
    with pytest.raises(ConfigError, match="partitions"):
        load_catalog(_write(tmp_path, "topics:\n  - name: a\n    partitions: 0\n"))
    with pytest.raises(ConfigError, match="cleanup_policy"):
        load_catalog(_write(tmp_path, "topics:\n  - name: b\n    cleanup_policy: shred\n"))


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_catalog(tmp_path / "nope.yaml")


REPLICATED = """
replication:
  default: dev
  environments:
    dev: {replication_factor: 1, min_insync_replicas: 1}
    prod: {replication_factor: 3, min_insync_replicas: 2}
processors: [normalize]
templates:
  - {name: "dlq.{processor}", partitions: 1}
topics:
  - {name: fills, partitions: 8}
"""


def test_replication_environment_applies_to_every_topic_and_template(tmp_path: Path, monkeypatch):
    path = tmp_path / "topics.yaml"
    path.write_text(REPLICATED)
    monkeypatch.delenv("HFTSTREAM_KAFKA_ENVIRONMENT", raising=False)
    dev = load_catalog(path)
    assert dev.replication is not None and dev.replication.environment == "dev"
    assert {(s.replication_factor, s.min_insync_replicas) for s in dev.all()} == {(1, 1)}
    monkeypatch.setenv("HFTSTREAM_KAFKA_ENVIRONMENT", "prod")
    prod = load_catalog(path)
    assert prod.spec_for("fills").replication_factor == 3 and prod.spec_for("fills").min_insync_replicas == 2
    assert prod.spec_for("dlq.risk").replication_factor == 3  # a template instantiated on demand too


def test_repo_catalog_declares_dev_and_prod_replication(monkeypatch):
    monkeypatch.delenv("HFTSTREAM_KAFKA_ENVIRONMENT", raising=False)
    assert load_catalog().spec_for("fills").replication_factor == 1
    monkeypatch.setenv("HFTSTREAM_KAFKA_ENVIRONMENT", "prod")
    spec = load_catalog().spec_for("fills")
    assert (spec.replication_factor, spec.min_insync_replicas) == (3, 2)


@pytest.mark.parametrize(
    ("env", "block", "says"),
    [
        ("qa", "{default: dev, environments: {dev: {replication_factor: 1, min_insync_replicas: 1}}}", "'qa' is not declared"),
        ("", "{default: dev, environments: {dev: {replication_factor: 2, min_insync_replicas: 3}}}", "min_insync_replicas 3"),
        ("", "{default: dev}", "needs an 'environments' mapping"),
    ],
)
def test_bad_replication_blocks_say_what_to_fix(tmp_path: Path, monkeypatch, env, block, says):
    path = tmp_path / "topics.yaml"
    path.write_text(f"replication: {block}\ntopics:\n  - {{name: t}}\n")
    monkeypatch.setenv("HFTSTREAM_KAFKA_ENVIRONMENT", env)
    with pytest.raises(ConfigError) as err:
        load_catalog(path)
    assert says in str(err.value) and err.value.hint
