"""Bad input at the CLI, as an operator meets it: each case gives a clear message and never a traceback.

Covers the issue's list: corrupted segment, torn tail, malformed Avro, unknown fingerprint, unknown topic.
The first tests run the real console script in a subprocess, so nothing (not even typer's error
handling in CliRunner) can hide a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from streams.log import TopicSpec, open_log
from streams.serde import SchemaRepo, Serde

HFTSTREAM = str(Path(sys.executable).with_name("hftstream"))
TOPIC = "md.bad"
T0 = 1_767_364_200_000_000_000


def cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HFTSTREAM, "--log", url, *args], capture_output=True, text=True, timeout=60)


@pytest.fixture()
def log_dir(tmp_path) -> Path:
    """A one-partition topic with 20 good Heartbeat records."""
    from streams.serde.samples import sample

    repo = SchemaRepo.load()
    serde = Serde(repo)
    schema = repo.schema("hftstream.md.Heartbeat")
    root = tmp_path / "log"
    with open_log(f"embedded://{root}") as log:
        log.create_topic(TopicSpec(TOPIC, partitions=1))
        with log.producer() as p:
            for i in range(20):
                p.produce(TOPIC, serde.encode("hftstream.md.Heartbeat", sample(schema, seed=2 * i)), b"k", timestamp_ns=T0 + i)
    return root


def _segment(root: Path) -> Path:
    return root / TOPIC / "0" / f"{0:020d}.log"


def _assert_clean_failure(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stderr.startswith("error: ")
    assert "hint: " in proc.stderr
    for needle in needles:
        assert needle in proc.stderr


def test_corrupted_segment_names_file_and_offset(log_dir):
    seg = _segment(log_dir)
    data = bytearray(seg.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a bit flip in the middle: valid records follow it
    seg.write_bytes(bytes(data))
    proc = cli(f"embedded://{log_dir}", "replay", "-t", TOPIC)
    _assert_clean_failure(proc, "corrupt record in", str(seg), "at offset")
    assert "RUNBOOK" in proc.stderr
    check = cli(f"embedded://{log_dir}", "log", "check")
    assert check.returncode == 1 and "Traceback" not in check.stderr + check.stdout


def test_torn_tail_is_not_an_error_and_is_truncated_by_the_next_writer(log_dir):
    seg = _segment(log_dir)
    size = seg.stat().st_size
    with open(seg, "r+b") as f:
        f.truncate(size - 5)  # the last record loses its end, as if the writer died mid-write
    url = f"embedded://{log_dir}"
    proc = cli(url, "replay", "-t", TOPIC)
    assert proc.returncode == 0, proc.stderr
    assert [json.loads(x)["offset"] for x in proc.stdout.splitlines()] == list(range(19))
    with open_log(url) as log, log.producer() as p:  # the next writer truncates the torn record ...
        p.produce(TOPIC, b"\x00", partition=0)
    with open_log(url) as log:  # ... and continues at the torn record's offset
        assert log.watermarks(TOPIC, 0) == (0, 20)
    assert cli(url, "log", "check").returncode == 0


def test_malformed_avro_and_unknown_fingerprint_are_reported_per_record(log_dir):
    url = f"embedded://{log_dir}"
    with open_log(url) as log, log.producer() as p:
        p.produce(TOPIC, b"\xc3\x01" + bytes(range(8)) + b"\x02", partition=0)  # valid framing, unknown fingerprint
        p.produce(TOPIC, b"{not avro}", partition=0)  # no known framing
        p.produce(TOPIC, b"\xc3\x01", partition=0)  # truncated header
    proc = cli(url, "replay", "-t", TOPIC, "--from-offset", "20")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [r["offset"] for r in rows] == [20, 21, 22]
    assert all(r["value"] is None for r in rows)
    assert "UnknownSchemaError" in rows[0]["error"] and "0001020304050607" in rows[0]["error"].replace(" ", "")
    assert "DecodeError" in rows[1]["error"] and "0x7b" in rows[1]["error"].lower()
    assert "DecodeError" in rows[2]["error"]
    assert "undecodable 3" in proc.stderr


@pytest.mark.parametrize(
    "args",
    [["replay", "-t", "nope"], ["topics", "describe", "nope"], ["replay", "-t", "nope", "--into", "x"]],
)
def test_unknown_topic(log_dir, args):
    _assert_clean_failure(cli(f"embedded://{log_dir}", *args), "unknown topic 'nope'", "topics list")


def test_bad_log_url_is_a_clean_error(tmp_path):
    _assert_clean_failure(cli("ftp://x", "topics", "list"), "unknown log scheme")


def test_simulator_topics_are_byte_identical_across_runs(tmp_path):
    """`feed simulate` twice with one seed and one --start: every segment and index file is identical, byte for byte."""
    args = ["feed", "simulate", "--start", "2026-11-02T14:30:00Z", "--venues", "3", "--symbols", "5", "--events", "3000", "--seed", "11",
            "--regime", "burst", "--gap-rate", "0.01", "--dup-rate", "0.01", "--reorder-rate", "0.01", "--malformed-rate", "0.01"]
    roots = [tmp_path / "a", tmp_path / "b", tmp_path / "c"]
    for root in roots[:2]:
        assert cli(f"embedded://{root}", *args).returncode == 0
    assert cli(f"embedded://{roots[2]}", *args[:-12], "--seed", "12").returncode == 0

    def files(root: Path) -> dict[str, bytes]:
        return {
            str(p.relative_to(root)): p.read_bytes()
            for p in sorted(root.rglob("*"))
            if p.is_file() and p.suffix in {".log", ".index", ".timeindex"}
        }

    a, b, c = (files(r) for r in roots)
    assert a and a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []
    assert any(a[k] != c.get(k) for k in a if k.endswith(".log"))
