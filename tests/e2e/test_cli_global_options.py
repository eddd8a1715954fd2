"""Global options where users type them, `--data DIR`, and `--help` that helps.

- `--log`, `--data`, `--schema-registry` work after the subcommand, for every command (the test walks the
  CLI's command tree, so a new command is covered without editing this file);
- `--data DIR` (`HFTSTREAM_DATA`, default `./hftstream-data`) holds the embedded log in `DIR/log`; `--log` overrides;
- every command's help has an example, flags show no `<bool>`, choices are listed;
- `topics describe` on Kafka shows the key and value schemas, like the embedded log.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from streams.cli.main import app
from streams.config import HftSettings
from streams.log import TopicSpec, open_log

HFTSTREAM = str(Path(sys.executable).with_name("hftstream"))


def _commands() -> list[list[str]]:
    """Every command path, groups included, from the CLI itself."""

    def walk(cmd, path):  # type: ignore[no-untyped-def]
        out = [path]
        for name, sub in (getattr(cmd, "commands", None) or {}).items():
            out += walk(sub, [*path, name])
        return out

    return walk(typer.main.get_command(app), [])


def _leaves() -> list[list[str]]:
    root = typer.main.get_command(app)
    leaves = []
    for path in _commands():
        cmd = root
        for name in path:
            cmd = cmd.commands[name]
        if not getattr(cmd, "commands", None):
            leaves.append(path)
    return leaves


def invoke(*args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args), env=env)


# -- global options after the subcommand -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["topics", "apply", "--log", "kafka://h:1"], ["--log", "kafka://h:1", "topics", "apply"]),
        (["topics", "apply", "--log=kafka://h:1", "-f", "x"], ["--log=kafka://h:1", "topics", "apply", "-f", "x"]),
        (["--log", "a", "replay", "-t", "x", "--log", "b"], ["--log", "a", "--log", "b", "replay", "-t", "x"]),
        (["replay", "--data", "d", "--schema-registry", "mock://r", "-t", "x"],
         ["--data", "d", "--schema-registry", "mock://r", "replay", "-t", "x"]),
        (["dev", "kafka", "--data-dir", "x"], ["dev", "kafka", "--data-dir", "x"]),  # not --data
        (["replay", "-t", "x", "--", "--log", "y"], ["replay", "-t", "x", "--", "--log", "y"]),
        (["topics", "list", "--log"], ["topics", "list", "--log"]),  # no value: click reports it
    ],
)
def test_hoist_global_options(args, expected):
    from streams.cli.usage import hoist_global_options

    assert hoist_global_options(args) == expected


@pytest.mark.parametrize("path", _commands(), ids=lambda p: " ".join(p) or "hftstream")
def test_every_command_accepts_global_options_after_it(path, tmp_path):
    """Each command (and group) parses --log/--data/--schema-registry given after it; before the fix: no such option."""
    result = invoke(*path, "--log", f"embedded://{tmp_path / 'log'}", "--data", str(tmp_path),
                    "--schema-registry", "mock://x", "--help")
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout


# Minimal arguments that make each command open the configured log (None: the command never opens a log).
OPENS_LOG: dict[str, list[str] | None] = {
    "replay": ["-t", "x"],
    "demo": [],
    "topics apply": [],
    "topics list": [],
    "topics describe": ["x"],
    "topics delete": ["x", "--yes"],
    "feed simulate": [],
    "feed file": ["feed.ndjson", "--venue", "alpha"],
    "orders simulate": ["--orders", "10"],
    "refdata load": ["feed.ndjson"],
    "refdata list": [],
    "log check": [],
    "log repair": ["x", "0"],
    "log compact": [],
    "log retain": [],
    "schemas list": None,
    "schemas show": None,
    "schemas check": None,
    "schemas release": None,
    "dev kafka": None,
    "dev kafka-stop": None,
    "run": ["normalize", "--until-idle"],
    "status": [],
    "verify": ["normalize"],
    "ops halt": ["--operator", "x", "--key", "k", "--skip-check"],
    "ops resume": ["--operator", "x", "--key", "k", "--skip-check"],
    "ops reduce-only": ["--operator", "x", "--key", "k", "--skip-check"],
    "ops kill": ["--operator", "x", "--key", "k", "--skip-check"],
    "ops cancel-all": ["--operator", "x", "--key", "k", "--skip-check"],
    "ops set-limit": ["max-order-qty", "5", "--raw", "--reason", "test", "--operator", "x", "--key", "k", "--skip-check"],
    "ops state": [],
    "tape init": None,
    "tape sink": [],
    "tape query": None,
    "tape report": None,
    "tape bars": None,
    "tape trace": None,
    "dashboards check": None,
}


def test_the_log_table_covers_every_command():
    assert sorted(OPENS_LOG) == sorted(" ".join(p) for p in _leaves())


@pytest.mark.parametrize("command", [c for c, a in OPENS_LOG.items() if a is not None])
def test_a_trailing_log_option_is_the_log_the_command_uses(command, tmp_path, monkeypatch):
    """`hftstream <command> ... --log URL`: the command reports URL's problem, so URL is what it opened."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "feed.ndjson").write_text("{}\n")
    url = "zzz://trailing-option"
    result = invoke(*command.split(), *OPENS_LOG[command], "--log", url)
    assert result.exit_code == 2, result.output
    assert url in result.stderr or "configured log is zzz://" in result.stderr, result.stderr
    assert not (tmp_path / "hftstream-data").exists()


def test_topics_apply_with_log_after_the_subcommand_creates_topics_there(tmp_path):
    proc = subprocess.run([HFTSTREAM, "topics", "apply", "--log", f"embedded://{tmp_path / 'there'}"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    with open_log(f"embedded://{tmp_path / 'there'}") as log:
        assert "md.normalized" in {t.name for t in log.list_topics()}
    assert not (tmp_path / "hftstream-data").exists()


# -- --data DIR ------------------------------------------------------------------------------------------------


def test_settings_put_the_log_in_the_data_folder():
    assert HftSettings().log == "embedded://hftstream-data/log"
    assert HftSettings(data=Path("/srv/x")).log == "embedded:///srv/x/log"
    assert HftSettings(data=Path("/srv/x"), log="kafka://b:9092").log == "kafka://b:9092"


def _topic_names(stdout: str) -> set[str]:
    return {t["name"] for t in json.loads(stdout)}


def test_data_default_option_env_and_log_override(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HFTSTREAM_LOG", raising=False)
    monkeypatch.delenv("HFTSTREAM_DATA", raising=False)
    spec = tmp_path / "topics.yaml"
    spec.write_text("topics:\n  - name: only.here\n    partitions: 2\n")

    assert invoke("topics", "apply", "--file", str(spec)).exit_code == 0  # the default: ./hftstream-data/log
    assert (tmp_path / "hftstream-data" / "log" / "only.here" / "topic.json").is_file()
    assert not (tmp_path / ".hftstream").exists()

    assert invoke("topics", "apply", "--file", str(spec), "--data", "elsewhere").exit_code == 0
    assert (tmp_path / "elsewhere" / "log" / "only.here").is_dir()
    listed = invoke("topics", "list", "--json", env={"HFTSTREAM_DATA": str(tmp_path / "elsewhere")})
    assert _topic_names(listed.stdout) == {"only.here"}

    env_log = {"HFTSTREAM_LOG": f"embedded://{tmp_path / 'from-env'}"}
    assert _topic_names(invoke("topics", "list", "--json", "--data", "elsewhere", env=env_log).stdout) == {"only.here"}
    assert _topic_names(invoke("topics", "list", "--json", env=env_log).stdout or "[]") == set()  # env log, no --data

    empty = invoke("topics", "list", "--json", "--data", "elsewhere", "--log", f"embedded://{tmp_path / 'other'}")
    assert empty.exit_code == 0 and _topic_names(empty.stdout or "[]") == set()  # --log wins over --data
    assert (tmp_path / "other").is_dir()


def test_log_maintenance_follows_data(tmp_path):
    assert invoke("topics", "apply", "--data", str(tmp_path)).exit_code == 0
    checked = invoke("log", "check", "--data", str(tmp_path))
    assert checked.exit_code == 0 and "no damage" in checked.stdout
    missing = invoke("log", "check", "--data", str(tmp_path / "none"))
    assert missing.exit_code == 2 and "--data" in missing.stderr


# -- help --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", _commands(), ids=lambda p: " ".join(p) or "hftstream")
def test_help_has_examples_and_no_bool_metavar(path):
    result = invoke(*path, "--help")
    assert result.exit_code == 0, result.output
    assert re.search(r"Examples?:", result.stdout), result.stdout
    assert "<bool>" not in result.stdout
    name = " ".join(["hftstream", *path])
    assert f"{name} " in " ".join(result.stdout.split()), "the example runs this very command"


def test_replay_help_lists_format_and_speed_choices():
    text = " ".join(invoke("replay", "--help").stdout.split())
    assert "<json|table>" in text
    assert "max|1x|10x|100x|Nx" in text


# -- hints that work ------------------------------------------------------------------------------------------


def test_garbage_topic_json_hint_is_a_way_out(tmp_path):
    """`topics apply` on a topic whose topic.json is garbage: the hint's command, then `topics apply`, succeed."""
    url = f"embedded://{tmp_path / 'log'}"
    assert subprocess.run([HFTSTREAM, "--log", url, "topics", "apply"], capture_output=True, timeout=60).returncode == 0
    meta = tmp_path / "log" / "md.normalized" / "topic.json"
    meta.write_text("{garbage")
    first = subprocess.run([HFTSTREAM, "--log", url, "topics", "apply"], capture_output=True, text=True, timeout=60)
    assert first.returncode == 2 and "topic.json" in first.stderr, first.stderr
    hint = first.stderr.split("hint: ", 1)[1]
    commands = re.findall(r"`([^`]+)`", hint)
    assert "hftstream topics apply" in commands
    shell = [c for c in commands if not c.startswith("hftstream ")]
    assert shell
    for command in shell:  # what the hint says to do before re-running apply
        assert subprocess.run(command, shell=True, timeout=60).returncode == 0, command
    again = subprocess.run([HFTSTREAM, "--log", url, "topics", "apply"], capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert "md.normalized" in again.stdout and "created" in again.stdout


def test_corrupt_segment_hint_names_a_runbook_section():
    from streams.config import repo_root
    from streams.errors import LogCorruptionError

    hint = LogCorruptionError("f", 1, 2, "crc").hint
    section = re.search(r"RUNBOOK.md '([^']+)'", hint).group(1)
    headings = [line[3:].strip() for line in (repo_root() / "RUNBOOK.md").read_text().splitlines() if line.startswith("## ")]
    assert section in headings


# -- Kafka describe ----------------------------------------------------------------------------------------------


def test_kafka_describe_shows_key_and_value_schema_like_embedded(kafka_bootstrap, tmp_path, unique_name):
    topic = "md.raw." + unique_name("v")  # matches the md.raw.{venue} template
    rows = {}
    for url in (f"kafka://{kafka_bootstrap}", f"embedded://{tmp_path / 'log'}"):
        with open_log(url) as log:
            log.create_topic(TopicSpec(topic, partitions=2, key="symbol", value_schema="hftstream.md.RawVenueMessage", retention_ms=86_400_000))
        result = invoke("--log", url, "topics", "describe", topic)
        assert result.exit_code == 0, result.output
        rows[url.split(":")[0]] = [line.split() for line in result.stdout.splitlines() if line.startswith(("key", "value schema"))]
        if url.startswith("kafka"):
            with open_log(url) as log:
                log.delete_topic(topic)
    assert rows["kafka"] == rows["embedded"] == [["key", "symbol"], ["value", "schema", "hftstream.md.RawVenueMessage"]]
