"""Damage on real segment files: torn tails are truncated, corruption is a typed error, check/repair work."""

from __future__ import annotations

import logging
import os
import random
import struct
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streams.cli.main import app
from streams.errors import LogCorruptionError
from streams.log.base import Record, TopicSpec
from streams.log.embedded import EmbeddedLog
from streams.log.embedded.maintenance import check, plan_repair, repair
from streams.log.embedded.segment import HEADER_SIZE, encode_run, list_segments

T0 = 1_700_000_000_000_000_000
VALUE = 30  # value bytes per test record
RECORD = HEADER_SIZE + VALUE  # bytes per record on disk (no key, no headers)


def _log(root: Path, **options: object) -> EmbeddedLog:
    return EmbeddedLog(root, **options)


def _setup(root: Path, n: int, **options: object) -> tuple[EmbeddedLog, Path]:
    """A log with topic ``t`` holding ``n`` records of exactly RECORD bytes; returns (log, segment 0)."""
    log = _log(root, **options)
    log.create_topic(TopicSpec("t"))
    with log.producer() as producer:
        for i in range(n):
            producer.produce("t", f"{i:0{VALUE}d}".encode(), timestamp_ns=T0 + i)
    log.close()
    return log, root / "t" / "0" / f"{0:020d}.log"


def _read_all(log: EmbeddedLog, start: int = 0) -> list[Record]:
    reader = log.reader([("t", 0, start)])
    out: list[Record] = []
    while batch := reader.poll(1000):
        out.extend(batch)
    reader.close()
    return out


def _append_one(log: EmbeddedLog, value: bytes = b"after") -> None:
    with log.producer() as producer:
        producer.produce("t", value, timestamp_ns=T0)


def _flip(path: Path, position: int) -> None:
    with open(path, "r+b") as f:
        f.seek(position)
        byte = f.read(1)
        f.seek(position)
        f.write(bytes([byte[0] ^ 0x5A]))


# -- torn tails -------------------------------------------------------------------------


@pytest.mark.parametrize("keep", [1, 4, 8, HEADER_SIZE - 1, HEADER_SIZE, RECORD - 1])
def test_torn_tail_is_truncated_on_reopen(tmp_path: Path, caplog: pytest.LogCaptureFixture, keep: int) -> None:
    log, seg = _setup(tmp_path / "log", 20)
    assert seg.stat().st_size == 20 * RECORD
    os.truncate(seg, 19 * RECORD + keep)  # the last record is cut after `keep` bytes

    reopened = _log(tmp_path / "log")
    assert [r.offset for r in _read_all(reopened)] == list(range(19))  # a reader just stops there
    assert reopened.watermarks("t", 0) == (0, 19)
    with caplog.at_level(logging.WARNING, logger="streams.log.embedded"):
        _append_one(reopened)
    warning = " ".join(r.getMessage() for r in caplog.records)
    assert str(seg) in warning and "offset 19" in warning and f"dropped {keep} bytes" in warning
    records = _read_all(reopened)
    assert [r.offset for r in records] == list(range(20))
    assert records[-1].value == b"after" and records[18].value == f"{18:0{VALUE}d}".encode()
    assert not any(p.is_damage for c in check(reopened) for p in c.problems)


def test_garbage_appended_is_a_torn_tail(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    log, seg = _setup(tmp_path / "log", 10)
    garbage = random.Random(7).randbytes(300)
    with open(seg, "ab") as f:
        f.write(garbage)
    reopened = _log(tmp_path / "log")
    assert [r.offset for r in _read_all(reopened)] == list(range(10))
    with caplog.at_level(logging.WARNING, logger="streams.log.embedded"):
        _append_one(reopened)
    assert "dropped 300 bytes" in caplog.text
    assert [r.offset for r in _read_all(reopened)] == list(range(11))
    assert seg.stat().st_size == 11 * RECORD - VALUE + len(b"after")


def test_complete_last_record_with_bad_crc_is_a_torn_tail(tmp_path: Path) -> None:
    log, seg = _setup(tmp_path / "log", 10)
    _flip(seg, 9 * RECORD + HEADER_SIZE + 3)  # a value byte of the last record
    reopened = _log(tmp_path / "log")
    assert [r.offset for r in _read_all(reopened)] == list(range(9))
    _append_one(reopened)
    assert [r.value for r in _read_all(reopened)][-1] == b"after"
    assert reopened.watermarks("t", 0) == (0, 10)


def test_reader_waits_for_a_record_being_written(tmp_path: Path) -> None:
    log, seg = _setup(tmp_path / "log", 3)
    run = encode_run([(b"k", b"in flight", T0, None)], 0, 3, seg.stat().st_size, 1 << 30, 4096, 0, T0)
    reader = log.reader([("t", 0, 0)], read_committed=False)  # the bytes below bypass the writer (and its ~lso)
    assert len(reader.poll(10)) == 3
    written = 0
    with open(seg, "ab") as f:
        for cut in (5, HEADER_SIZE + 2, len(run.data) - 1):  # the writer's bytes trickle in
            f.write(run.data[written:cut])
            f.flush()
            written = cut
            assert reader.poll(10, timeout=0.02) == []  # never an error, never half a record
        f.write(run.data[written:])
    got = reader.poll(10, timeout=1.0)
    assert [(r.offset, r.key, r.value) for r in got] == [(3, b"k", b"in flight")]


# -- corruption -------------------------------------------------------------------------


def test_crc_corruption_in_the_middle_is_a_typed_error(tmp_path: Path) -> None:
    log, seg = _setup(tmp_path / "log", 40, index_interval_bytes=4 * RECORD)
    _flip(seg, 5 * RECORD + HEADER_SIZE + 1)  # a value byte of offset 5
    reopened = _log(tmp_path / "log", index_interval_bytes=4 * RECORD)
    reader = reopened.reader([("t", 0, 0)])
    assert [r.offset for r in reader.poll(1000)] == [0, 1, 2, 3, 4]  # what precedes the damage
    with pytest.raises(LogCorruptionError) as info:
        reader.poll(1000)
    err = info.value
    assert (err.path, err.offset, err.position) == (str(seg), 5, 5 * RECORD)
    assert "crc" in err.reason and str(seg) in str(err) and "offset 5" in str(err) and "log repair" in err.hint
    # records after the damage are intact and reachable through the index
    assert [r.offset for r in _read_all(reopened, start=12)] == list(range(12, 40))
    # the writer only scans the tail: appending still works; watermarks see the real end
    _append_one(reopened)
    assert reopened.watermarks("t", 0) == (0, 41)


def test_corrupt_length_field_in_the_middle_is_not_truncated(tmp_path: Path) -> None:
    log, seg = _setup(tmp_path / "log", 30)
    with open(seg, "r+b") as f:  # offset 28's length field says 2 GiB
        f.seek(28 * RECORD)
        f.write(struct.pack("<I", 1 << 31))
    size = seg.stat().st_size
    reopened = _log(tmp_path / "log")
    with pytest.raises(LogCorruptionError) as info:
        _read_all(reopened)
    assert info.value.offset == 28
    with pytest.raises(LogCorruptionError):  # the writer refuses to append after corruption in its tail...
        _append_one(reopened)
    assert seg.stat().st_size == size  # ...and does not truncate the valid record after it


def test_truncated_closed_segment_is_corruption(tmp_path: Path) -> None:
    log, _ = _setup(tmp_path / "log", 30, segment_bytes=10 * RECORD)
    directory = tmp_path / "log" / "t" / "0"
    bases = list_segments(directory)
    assert len(bases) == 3
    first = directory / f"{bases[0]:020d}.log"
    os.truncate(first, first.stat().st_size - 7)
    with pytest.raises(LogCorruptionError) as info:
        _read_all(_log(tmp_path / "log"))
    assert info.value.path == str(first) and info.value.offset == 9


# -- check / repair ---------------------------------------------------------------------


def test_check_and_repair_functions(tmp_path: Path) -> None:
    log, seg = _setup(tmp_path / "log", 50, segment_bytes=20 * RECORD)
    directory = tmp_path / "log" / "t" / "0"
    assert not [p for c in check(log) for p in c.problems]
    _flip(seg, 7 * RECORD + HEADER_SIZE)
    problems = [p for c in check(log) for p in c.problems]
    assert [(p.kind, p.offset, p.position) for p in problems] == [("corrupt", 7, 7 * RECORD)]
    plan = plan_repair(log, "t", 0)
    assert (plan.offset, plan.records_dropped, plan.segments_deleted) == (7, 43, (20, 40))
    assert list_segments(directory) == [0, 20, 40]  # planning changes nothing
    done = repair(log, "t", 0)
    assert done.records_dropped == 43
    assert list_segments(directory) == [0] and seg.stat().st_size == 7 * RECORD
    assert not [p for c in check(log) for p in c.problems]
    _append_one(log)
    assert [r.offset for r in _read_all(log)] == list(range(8))


# -- the CLI ----------------------------------------------------------------------------


def _cli(root: Path, *args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(app, ["--log", f"embedded://{root}", "log", *args], input=input)
    assert "Traceback" not in result.output
    return result


def test_cli_check_and_repair(tmp_path: Path) -> None:
    root = tmp_path / "log"
    log, seg = _setup(root, 20)
    ok = _cli(root, "check")
    assert ok.exit_code == 0 and "t/0: ok" in ok.output and "no damage" in ok.output

    _flip(seg, 12 * RECORD + HEADER_SIZE)
    bad = _cli(root, "check", "--topic", "t")
    assert bad.exit_code == 1
    assert "t/0: DAMAGED" in bad.output and f"{seg} offset 12 byte {12 * RECORD}" in bad.output
    assert "crc mismatch" in bad.output

    declined = _cli(root, "repair", "t", "0", input="n\n")
    assert declined.exit_code == 1 and "drops 8 record(s)" in declined.output
    assert seg.stat().st_size == 20 * RECORD

    fixed = _cli(root, "repair", "t", "0", "--yes")
    assert fixed.exit_code == 0, fixed.output
    assert "dropped 8 record(s)" in fixed.output and "new end offset 12" in fixed.output
    assert _cli(root, "check").exit_code == 0
    assert _log(root).watermarks("t", 0) == (0, 12)


def test_cli_errors_are_clean(tmp_path: Path) -> None:
    root = tmp_path / "log"
    _setup(root, 3)
    unknown = _cli(root, "check", "--topic", "nope")
    assert unknown.exit_code == 2 and "error: unknown topic 'nope'" in unknown.output and "hint:" in unknown.output
    missing = _cli(tmp_path / "absent", "check")
    assert missing.exit_code == 2 and "no embedded log" in missing.output
    assert not (tmp_path / "absent").exists()
    kafka = CliRunner().invoke(app, ["--log", "kafka://127.0.0.1:9", "log", "check"])
    assert kafka.exit_code == 2 and "embedded log only" in kafka.output and "Traceback" not in kafka.output
    not_compacted = _cli(root, "compact", "t")
    assert not_compacted.exit_code == 2 and "cleanup_policy" in not_compacted.output


def test_cli_compact_and_retain(tmp_path: Path) -> None:
    root = tmp_path / "log"
    log = _log(root, segment_bytes=10 * RECORD)
    log.create_topic(TopicSpec("s", cleanup_policy="compact"))
    log.create_topic(TopicSpec("r", retention_ms=1))
    with log.producer() as producer:
        for i in range(100):
            producer.produce("s", b"v" * 10, f"k{i % 3}".encode(), timestamp_ns=T0 + i)
            producer.produce("r", b"v" * 10, timestamp_ns=T0 + i)  # 2023: long past retention
    compacted = _cli(root, "compact")
    assert compacted.exit_code == 0 and "s/0: removed" in compacted.output
    assert log.watermarks("s", 0)[1] == 100
    retained = _cli(root, "retain", "--yes")
    assert retained.exit_code == 0 and "r/0: deleted" in retained.output
    low, high = log.watermarks("r", 0)
    assert low == list_segments(root / "r" / "0")[-1] > 0 and high == 100


def test_cli_check_notes_a_torn_tail_without_failing(tmp_path: Path) -> None:
    root = tmp_path / "log"
    _, seg = _setup(root, 5)
    os.truncate(seg, 4 * RECORD + 10)
    result = _cli(root, "check")
    assert result.exit_code == 0 and "torn-tail: t/0" in result.output and "offset 4" in result.output


FULL_DISK = """
import resource, signal, sys
from streams.errors import LogWriteError
from streams.log.base import TopicSpec
from streams.log.embedded import EmbeddedLog
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
log = EmbeddedLog(sys.argv[1])
log.create_topic(TopicSpec("t"))
with log.producer() as producer:
    for i in range(100):
        producer.produce("t", b"x" * 100, timestamp_ns=i)
resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))  # the disk is "full" at 20 kB per file
producer = log.producer()
for i in range(1000):
    producer.produce("t", b"y" * 100, timestamp_ns=i)
try:
    producer.flush()
except LogWriteError as exc:
    print("LogWriteError", "File too large" in str(exc), bool(exc.hint))
"""


def test_a_full_disk_is_a_typed_error_and_leaves_no_partial_batch(tmp_path: Path) -> None:
    import subprocess
    import sys

    root = tmp_path / "log"
    done = subprocess.run([sys.executable, "-c", FULL_DISK, str(root)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["LogWriteError", "True", "True"]
    log = _log(root)
    records = _read_all(log)
    assert [r.value for r in records] == [b"x" * 100] * 100  # the failed batch left nothing behind
    assert (root / "t" / "0" / f"{0:020d}.log").stat().st_size == 100 * (HEADER_SIZE + 100)
