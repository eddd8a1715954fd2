"""The CLI as a user runs it, on both backends: topics apply/list, feed simulate, replay --from-offset.

The same commands run against the embedded log and a real Kafka broker, and must agree.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streams.cli.main import app


def cli(url: str, *args: str):
    return CliRunner().invoke(app, ["--log", url, *args])


@pytest.fixture(params=["embedded", "kafka"])
def url(request, tmp_path) -> str:
    if request.param == "embedded":
        return f"embedded://{tmp_path / 'log'}"
    return "kafka://" + request.getfixturevalue("kafka_bootstrap")


def _topics_file(path: Path, names: list[str], partitions: list[int]) -> Path:
    body = "topics:\n" + "".join(
        f"  - name: {n}\n    partitions: {p}\n    key: symbol\n    retention: 1d\n" for n, p in zip(names, partitions)
    )
    path.write_text(body)
    return path


def test_topics_apply_is_idempotent_and_list_json_has_the_documented_shape(url, tmp_path, unique_name):
    names = [unique_name("apply"), unique_name("apply")]
    spec = _topics_file(tmp_path / "topics.yaml", names, [3, 1])

    first = cli(url, "topics", "apply", "--file", str(spec))
    assert first.exit_code == 0, first.output
    assert all(f"{n}  created" in first.stdout for n in names)
    again = cli(url, "topics", "apply", "--file", str(spec))
    assert again.exit_code == 0 and again.stdout.count("unchanged") == 2

    listed = cli(url, "topics", "list", "--json")
    assert listed.exit_code == 0, listed.output
    doc = {t["name"]: t for t in json.loads(listed.stdout)}
    for name, partitions in zip(names, [3, 1]):
        assert doc[name] == {"name": name, "partitions": partitions, "end_offsets": [0] * partitions}
    assert all(set(t) == {"name", "partitions", "end_offsets"} for t in doc.values())

    grown = _topics_file(tmp_path / "grown.yaml", names, [4, 1])
    plan = cli(url, "topics", "apply", "--file", str(grown), "--dry-run")
    assert "partitions 3 -> 4" in plan.stdout
    assert {t["name"]: t["partitions"] for t in json.loads(cli(url, "topics", "list", "--json").stdout)}[names[0]] == 3
    assert cli(url, "topics", "apply", "--file", str(grown)).exit_code == 0
    assert {t["name"]: t["partitions"] for t in json.loads(cli(url, "topics", "list", "--json").stdout)}[names[0]] == 4


def _ends(url: str, topic: str) -> list[int]:
    doc = {t["name"]: t for t in json.loads(cli(url, "topics", "list", "--json").stdout)}
    return doc[topic]["end_offsets"] if topic in doc else []


def _replay(url: str, topic: str, partition: int, start: int) -> list[dict]:
    result = cli(url, "replay", "-t", topic, "-p", str(partition), "--from-offset", str(start))
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_simulated_feed_replays_identically_on_embedded_and_kafka(tmp_path, kafka_bootstrap):
    """Same seed into both logs; `replay --from-offset N` prints exactly N..end, and both backends agree.

    Kafka timestamps are milliseconds (DECISIONS.md #3), so they are compared at ms precision. If an earlier
    run left records on a shared broker, Kafka's offsets are shifted by what was there before.
    """
    embedded = f"embedded://{tmp_path / 'log'}"
    kafka = f"kafka://{kafka_bootstrap}"
    topic = "md.raw.bravo"
    before = _ends(kafka, topic)
    args = ["feed", "simulate", "--venues", "2", "--symbols", "6", "--events", "4000", "--seed", "9", "--dup-rate", "0.01"]
    for url in (embedded, kafka):
        result = cli(url, *args)
        assert result.exit_code == 0, result.output

    ends = _ends(embedded, topic)
    base = before or [0] * len(ends)
    assert [e + b for e, b in zip(ends, base)] == _ends(kafka, topic)
    for p, end in enumerate(ends):
        start = min(10, end)
        a = _replay(embedded, topic, p, start)
        b = _replay(kafka, topic, p, base[p] + start)
        assert [r["offset"] for r in a] == list(range(start, end))
        assert [r["offset"] - base[p] for r in b] == list(range(start, end))
        assert [(r["key"], r["value"], r["timestamp"] // 1_000_000) for r in a] == [
            (r["key"], r["value"], r["timestamp"] // 1_000_000) for r in b
        ]


def test_version_and_help_answer_without_a_log(tmp_path):
    from streams import __version__

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"hftstream {__version__}"
    for group in ["topics", "feed", "replay", "schemas", "log", "dev", "demo"]:
        helped = CliRunner().invoke(app, [group, "--help"])
        assert helped.exit_code == 0 and "Usage:" in helped.stdout, group
    assert not (tmp_path / ".hftstream").exists()
