"""The CLI as a user runs it, on both backends: topics apply/list, feed simulate, replay --from-offset.

The same commands run against the embedded log and a real Kafka broker, and must agree.
"""

from __future__ import annotations

import json
import time
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


def _yaml(path: Path, entries: list[tuple[str, int, str]]) -> Path:
    path.write_text("topics:\n" + "".join(f"  - {{name: {n}, partitions: {p}, retention: {r}}}\n" for n, p, r in entries))
    return path


def _state(url: str, names: list[str]) -> dict[str, tuple[int, int | None]]:
    """name -> (partitions, retention_ms) of the topics that exist."""
    from streams.log import open_log

    with open_log(url) as log:
        have = {t.name for t in log.list_topics()}
        return {n: (log.describe_topic(n).partitions, log.describe_topic(n).retention_ms) for n in names if n in have}


def test_topics_apply_dry_run_shows_exactly_what_apply_does(url, tmp_path, unique_name):
    """Issue 5 #4: creations, partition growth and retention changes; the dry run's lines are the apply's lines."""
    grow, keep, retain, new = (unique_name("plan") for _ in range(4))
    assert cli(url, "topics", "apply", "-f", str(_yaml(tmp_path / "a.yaml", [(grow, 2, "1d"), (keep, 1, "1d"), (retain, 1, "1d")]))).exit_code == 0
    target = _yaml(tmp_path / "b.yaml", [(grow, 3, "1d"), (keep, 1, "1d"), (retain, 1, "2d"), (new, 2, "12h")])
    before = _state(url, [grow, keep, retain, new])

    plan = cli(url, "topics", "apply", "-f", str(target), "--dry-run")
    assert plan.exit_code == 0, plan.output
    actions = {line.split()[0]: line.split()[1] for line in plan.stdout.splitlines()}
    assert actions == {grow: "partitions", keep: "unchanged", retain: "config", new: "created"}
    assert "86400000 -> 172800000" in next(line for line in plan.stdout.splitlines() if line.startswith(retain))
    assert "would apply 4 topics: 1 created, 1 partitions, 1 config, 1 unchanged" in plan.stderr
    assert _state(url, [grow, keep, retain, new]) == before  # the dry run changed nothing

    applied = cli(url, "topics", "apply", "-f", str(target))
    assert applied.exit_code == 0, applied.output
    assert applied.stdout == plan.stdout
    assert _state(url, [grow, keep, retain, new]) == {grow: (3, 86_400_000), keep: (1, 86_400_000), retain: (1, 172_800_000), new: (2, 43_200_000)}


def test_topics_apply_refuses_everything_when_one_entry_is_bad(url, tmp_path, unique_name):
    """A shrink is an error in the dry run too, and the real apply changes nothing (no half-applied file)."""
    shrink, retain, new = (unique_name("bad") for _ in range(3))
    assert cli(url, "topics", "apply", "-f", str(_yaml(tmp_path / "a.yaml", [(shrink, 3, "1d"), (retain, 1, "1d")]))).exit_code == 0
    invalid = "bad$" + new  # the log refuses the name (Kafka: the broker, asked with validate_only)
    target = _yaml(tmp_path / "b.yaml", [(retain, 1, "2d"), (shrink, 2, "1d"), (new, 1, "1d"), (invalid, 1, "1d")])
    before = _state(url, [shrink, retain, new])

    plan = cli(url, "topics", "apply", "-f", str(target), "--dry-run")
    assert plan.exit_code == 2, plan.output
    lines = {line.split()[0]: line for line in plan.stdout.splitlines()}
    assert lines[shrink].split()[1] == "error" and "cannot shrink" in lines[shrink] and "to 2" in lines[shrink]
    assert lines[invalid].split()[1] == "error"
    assert lines[retain].split()[1] == "config" and lines[new].split()[1] == "created"
    assert "error: 2 of 4 declared topic(s) cannot be applied" in plan.stderr and "hint:" in plan.stderr

    applied = cli(url, "topics", "apply", "-f", str(target))
    assert applied.exit_code == 2, applied.output
    assert "nothing was changed" in applied.stderr and f"{shrink}: topic" in applied.stderr and "hint:" in applied.stderr
    assert _state(url, [shrink, retain, new]) == before  # retention untouched, nothing created


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
    start = str(time.time_ns() // 86_400_000_000_000 * 86_400_000_000_000)  # today: inside md.raw.*'s retention on Kafka
    args = ["feed", "simulate", "--venues", "2", "--symbols", "6", "--events", "4000", "--seed", "9", "--dup-rate", "0.01", "--start", start]
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


def test_version_and_help_answer_without_a_log(tmp_path, monkeypatch):
    from streams import __version__
    from streams.native import status

    monkeypatch.chdir(tmp_path)  # where the default data folder would appear

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"hftstream {__version__} ({status()})"
    for group in ["topics", "feed", "replay", "schemas", "log", "dev", "demo"]:
        helped = CliRunner().invoke(app, [group, "--help"])
        assert helped.exit_code == 0 and "Usage:" in helped.stdout, group
    assert list(tmp_path.iterdir()) == []  # no ./hftstream-data (nor anything else) created
