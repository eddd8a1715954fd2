"""A deleted middle segment is damage (check, readers, repair); ``log retain`` shows, asks, and has a dry run.

Issue 5 items 3 and 2 (the embedded ``log retain`` part). Real segment files, the real CLI.
"""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streams.cli.main import app
from streams.errors import LogCorruptionError, MissingOffsetsError
from streams.log.base import Record, TopicSpec
from streams.log.embedded import EmbeddedLog
from streams.log.embedded.maintenance import check, plan_repair, repair
from streams.log.embedded.segment import HEADER_SIZE, list_segments

T0 = 1_700_000_000_000_000_000  # 2023-11-14: long past any retention
VALUE = 30
RECORD = HEADER_SIZE + VALUE
ROOT = Path(__file__).resolve().parents[2]


def _setup(root: Path, n: int = 50, **spec: object) -> EmbeddedLog:
    """Topic ``t`` with ``n`` records, 10 per segment (segments 0, 10, 20, ...)."""
    log = EmbeddedLog(root, segment_bytes=10 * RECORD)
    log.create_topic(TopicSpec("t", **spec))  # type: ignore[arg-type]
    with log.producer() as producer:
        for i in range(n):
            producer.produce("t", f"{i:0{VALUE}d}".encode(), timestamp_ns=T0 + i)
    return log


def _read(log: EmbeddedLog, start: int = 0) -> list[Record]:
    out: list[Record] = []
    with log.reader([("t", 0, start)]) as reader:
        while batch := reader.poll(1000):
            out.extend(batch)
    return out


def _cli(root: Path, *args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(app, ["--log", f"embedded://{root}", "log", *args], input=input)
    assert "Traceback" not in result.output
    return result


def _segment(root: Path, base: int) -> Path:
    return root / "t" / "0" / f"{base:020d}.log"


# -- a missing middle segment -------------------------------------------------------------


def test_check_reports_a_deleted_middle_segment_as_damage(tmp_path: Path) -> None:
    root = tmp_path / "log"
    log = _setup(root)
    assert _cli(root, "check").exit_code == 0
    _segment(root, 20).unlink()
    problems = [p for c in check(log) for p in c.problems]
    assert [(p.kind, p.offset, p.last, p.path) for p in problems] == [("missing", 20, 29, str(_segment(root, 20)))]
    assert problems[0].is_damage
    result = _cli(root, "check")
    assert result.exit_code == 1
    assert "t/0: DAMAGED" in result.output and f"missing: t/0 offsets 20..29 ({_segment(root, 20)})" in result.output


def test_readers_raise_on_the_hole_naming_partition_and_offsets(tmp_path: Path) -> None:
    root = tmp_path / "log"
    log = _setup(root)
    _segment(root, 20).unlink()
    reader = log.reader([("t", 0, 0)])
    got: list[int] = []
    with pytest.raises(MissingOffsetsError) as caught:
        while batch := reader.poll(1000):
            got += [r.offset for r in batch]
    reader.close()
    assert got == list(range(20))  # everything before the hole, then the error: never a silent jump
    err = caught.value
    assert isinstance(err, LogCorruptionError)
    assert (err.topic, err.partition, err.first, err.last) == ("t", 0, 20, 29)
    assert "offsets 20..29 of t/0 are missing" in str(err)
    with log.reader([("t", 0, 25)]) as inside, pytest.raises(MissingOffsetsError, match=r"offsets 25\.\.29 of t/0"):
        inside.poll(1000)
    assert [r.offset for r in _read(log, 30)] == list(range(30, 50))  # past the hole reads fine


def test_the_hint_names_a_runbook_section_that_exists() -> None:
    err = MissingOffsetsError("t", 0, 20, 29, "x")
    section = re.search(r"RUNBOOK\.md '([^']+)'", err.hint)
    assert section is not None
    headings = re.findall(r"^## (.+)$", (ROOT / "RUNBOOK.md").read_text(), re.M)
    assert section.group(1) in headings
    plain = LogCorruptionError("p", 1, 2, "crc mismatch")
    assert re.search(r"RUNBOOK\.md '([^']+)'", plain.hint).group(1) in headings  # type: ignore[union-attr]


def test_repair_declares_the_hole_lost_and_readers_go_on(tmp_path: Path) -> None:
    root = tmp_path / "log"
    log = _setup(root)
    _segment(root, 20).unlink()
    plan = plan_repair(log, "t", 0)
    assert plan.holes == ((20, 29),) and plan.path is None and plan.changes
    assert "offsets 20..29 are missing" in plan.describe() and "nothing here can bring them back" in plan.describe()
    declined = _cli(root, "repair", "t", "0", input="n\n")
    assert declined.exit_code == 1 and not (root / "t" / "0" / "~holes").exists()
    done = _cli(root, "repair", "t", "0", "--yes")
    assert done.exit_code == 0 and "declared offsets 20..29 of t/0 lost" in done.output
    after = _cli(root, "check")
    assert after.exit_code == 0 and "declared-hole: t/0 offsets 20..29" in after.output
    assert [r.offset for r in _read(log)] == list(range(20)) + list(range(30, 50))
    with log.producer() as producer:  # the partition goes on
        producer.produce("t", b"after", partition=0, timestamp_ns=T0)
    assert _read(log)[-1].offset == 50
    assert repair(log, "t", 0).holes == ()  # nothing left to declare


def test_a_gap_in_a_compacted_topic_is_not_a_hole(tmp_path: Path) -> None:
    root = tmp_path / "log"
    log = _setup(root, cleanup_policy="compact")
    _segment(root, 20).unlink()  # what compaction does to a segment whose keys all reappear later
    assert not [p for c in check(log) for p in c.problems]
    assert [r.offset for r in _read(log)] == list(range(20)) + list(range(30, 50))


def test_a_reader_overtaken_by_retention_moves_on_without_error(tmp_path: Path) -> None:
    root = tmp_path / "log"
    log = _setup(root, retention_ms=1)
    reader = log.reader([("t", 0, 0)])
    first = reader.poll(5)  # holds segment 0 open
    assert [r.offset for r in first] == list(range(5))
    result = _cli(root, "retain", "--yes")
    assert result.exit_code == 0, result.output
    assert list_segments(root / "t" / "0") == [40]
    rest: list[int] = []
    while batch := reader.poll(1000):
        rest += [r.offset for r in batch]
    reader.close()
    assert rest == list(range(5, 10)) + list(range(40, 50))  # its open segment, then the new low watermark


# -- log retain ----------------------------------------------------------------------------


def test_retain_dry_run_shows_what_would_go_and_deletes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "log"
    _setup(root, retention_ms=1)
    result = _cli(root, "retain", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "t/0: would delete 4 segment(s), offsets 0..39" in result.output
    assert "record timestamps 2023-11-14T22:13:20" in result.output and "(past retention by time)" in result.output
    assert "dry run: 4 segment(s) would be deleted; nothing was" in result.output
    assert list_segments(root / "t" / "0") == [0, 10, 20, 30, 40]


def test_retain_without_a_terminal_refuses_unless_yes(tmp_path: Path) -> None:
    root = tmp_path / "log"
    _setup(root, retention_ms=1)
    refused = _cli(root, "retain", input="y\n")  # CliRunner's stdin is not a terminal
    assert refused.exit_code == 2
    assert "error: refusing to delete 4 segment(s)" in refused.output and "hint: pass --yes" in refused.output
    assert list_segments(root / "t" / "0") == [0, 10, 20, 30, 40]
    done = _cli(root, "retain", "--yes")
    assert done.exit_code == 0 and "t/0: deleted 4 segment(s)" in done.output and "low watermark 40" in done.output
    assert list_segments(root / "t" / "0") == [40]


def test_retain_asks_on_a_terminal(tmp_path: Path) -> None:
    root = tmp_path / "log"
    _setup(root, retention_ms=1)
    hftstream = Path(sys.executable).parent / "hftstream"
    for answer, code, left in (("n", 1, [0, 10, 20, 30, 40]), ("y", 0, [40])):
        primary, secondary = pty.openpty()
        try:
            proc = subprocess.Popen(
                [str(hftstream), "--log", f"embedded://{root}", "log", "retain"],
                stdin=secondary,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            os.write(primary, f"{answer}\n".encode())
            out, _ = proc.communicate(timeout=60)
        finally:
            os.close(primary)
            os.close(secondary)
        assert proc.returncode == code, out
        assert "would delete 4 segment(s)" in out and "delete 4 segment(s)?" in out
        assert list_segments(root / "t" / "0") == left
