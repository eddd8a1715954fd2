"""Transactions on the embedded log: commit, abort, read_committed, crash resolution, fencing.

Real files; a "crash" in-process is an exception raised from the commit's step hook (the
flocks are released with the marker left behind, exactly as a dead process leaves them).
SIGKILLed processes are in tests/integration/test_embedded_transactions_crash.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.errors import ConfigError, ProducerFencedError
from streams.log.base import Record, TopicSpec
from streams.log.embedded import EmbeddedLog, transactional
from streams.log.embedded.txn import read_marker

T0 = 1_700_000_000_000_000_000


class Crash(Exception):
    """Stands for the death of the process at a commit step."""


@pytest.fixture
def log(tmp_path: Path) -> Iterator[EmbeddedLog]:
    log = EmbeddedLog(tmp_path / "log")
    log.create_topic(TopicSpec("in", partitions=2))
    log.create_topic(TopicSpec("out", partitions=2))
    with log.producer() as producer:
        for i in range(10):
            producer.produce("in", f"in{i}".encode(), partition=i % 2, timestamp_ns=T0 + i)
    yield log
    transactional.STEP_HOOK = None
    log.close()


def _crash_at(step: str) -> None:
    def hook(at: str) -> None:
        if at == step:
            raise Crash(step)

    transactional.STEP_HOOK = hook


def _read(log: EmbeddedLog, topic: str = "out", partition: int = 0, *, committed: bool = True) -> list[Record]:
    out: list[Record] = []
    with log.reader([(topic, partition, 0)], read_committed=committed) as reader:
        while batch := reader.poll(1000):
            out.extend(batch)
    return out


def _values(records: list[Record]) -> list[bytes | None]:
    return [r.value for r in records]


def test_commit_makes_records_and_group_offsets_visible_together(log: EmbeddedLog) -> None:
    consumer = log.group_consumer("copy", ["in"])
    producer = log.transactional_producer("copy-0")
    committed_reader = log.reader([("out", 0, 0)])
    producer.begin()
    assert producer.in_transaction
    for r in consumer.poll(100):
        producer.produce("out", r.value, partition=0, timestamp_ns=r.timestamp_ns)
    assert _read(log, committed=False) == []  # buffered: nothing is on disk before commit
    producer.commit({("in", 0): 5, ("in", 1): 5}, consumer)
    assert not producer.in_transaction
    assert sorted(_values(committed_reader.poll(100))) == sorted(f"in{i}".encode() for i in range(10))
    assert consumer.committed("in", 0) == 5 and consumer.committed("in", 1) == 5
    stored = log.offsets_store().raw("copy")
    assert stored["offsets"] == {"in": {"0": 5, "1": 5}} and stored["txn"] == {"copy-0": [producer.epoch, 1]}
    assert log.stable_offset("out", 0) == log.watermarks("out", 0)[1] == 10
    assert read_marker(log.root / "out" / "0") is None
    committed_reader.close()
    consumer.close()


def test_abort_leaves_nothing_visible_and_offsets_unchanged(log: EmbeddedLog) -> None:
    consumer = log.group_consumer("copy", ["in"])
    consumer.commit({("in", 0): 1})
    producer = log.transactional_producer("copy-0")
    producer.begin()
    producer.produce("out", b"never", partition=0)
    producer.abort()
    assert not producer.in_transaction
    producer.begin()
    producer.produce("out", b"kept", partition=0)
    producer.commit()  # no consumer: the id's own file is the commit point
    assert _values(_read(log)) == [b"kept"] and _values(_read(log, committed=False)) == [b"kept"]
    assert consumer.committed("in", 0) == 1 and consumer.committed("in", 1) is None


def test_misuse_is_a_clear_error(log: EmbeddedLog) -> None:
    producer = log.transactional_producer("p")
    with pytest.raises(ConfigError, match="outside a transaction"):
        producer.produce("out", b"x", partition=0)
    with pytest.raises(ConfigError, match="without an open transaction"):
        producer.commit()
    producer.begin()
    with pytest.raises(ConfigError, match="already has an open transaction"):
        producer.begin()
    producer.produce("out", b"x", partition=0)
    with pytest.raises(ConfigError, match="no consumer"):
        producer.commit({("in", 0): 3})


@pytest.mark.parametrize("step", ["marked", "appended"])
def test_an_error_before_the_commit_point_rolls_the_transaction_back(log: EmbeddedLog, step: str) -> None:
    consumer = log.group_consumer("copy", ["in"])
    first = log.transactional_producer("copy-0")
    first.begin()
    first.produce("out", b"committed", partition=0)
    first.commit({("in", 0): 1}, consumer)
    first.begin()
    for i in range(50):
        first.produce("out", f"doomed{i}".encode(), partition=0)
    _crash_at(step)
    with pytest.raises(Crash):
        first.commit({("in", 0): 4}, consumer)
    transactional.STEP_HOOK = None
    assert _values(_read(log)) == [b"committed"] and _values(_read(log, committed=False)) == [b"committed"]
    assert consumer.committed("in", 0) == 1 and read_marker(log.root / "out" / "0") is None
    first.begin()  # still usable
    first.produce("out", b"next", partition=0)
    first.commit({("in", 0): 4}, consumer)
    assert _values(_read(log)) == [b"committed", b"next"] and consumer.committed("in", 0) == 4


def _die_between(log: EmbeddedLog, step: str, values: list[bytes]) -> None:
    """Leave the on-disk state of a producer SIGKILLed right after ``step`` of a commit to out/0."""
    producer = log.transactional_producer("dead")
    producer.begin()
    for v in values:
        producer.produce("out", v, partition=0)
    original = producer._roll_back

    def no_roll_back(marked: object) -> None:  # a dead process rolls nothing back
        return None

    producer._roll_back = no_roll_back  # type: ignore[method-assign]
    _crash_at(step)
    try:
        with pytest.raises(Crash):
            producer.commit()
    finally:
        transactional.STEP_HOOK = None
        producer._roll_back = original  # type: ignore[method-assign]


@pytest.mark.parametrize("step", ["marked", "appended"])
def test_an_uncommitted_transaction_left_by_a_dead_producer_is_rolled_back(log: EmbeddedLog, step: str) -> None:
    with log.producer() as plain:
        plain.produce("out", b"before", partition=0)
    _die_between(log, step, [f"doomed{i}".encode() for i in range(40)])
    marker = read_marker(log.root / "out" / "0")
    assert marker is not None and marker.start == 1
    assert _values(_read(log)) == [b"before"]  # read_committed never sees the in-flight records
    if step == "appended":
        assert len(_read(log, committed=False)) == 41  # read_uncommitted does, once written
    assert log.stable_offset("out", 0) == 1
    with log.producer() as plain:  # the next writer resolves it: not committed -> truncate back
        plain.produce("out", b"after", partition=0)
    assert _values(_read(log)) == [b"before", b"after"]
    assert _values(_read(log, committed=False)) == [b"before", b"after"]
    assert read_marker(log.root / "out" / "0") is None and log.stable_offset("out", 0) == 2


def test_a_committed_transaction_left_by_a_dead_producer_is_rolled_forward(log: EmbeddedLog) -> None:
    _die_between(log, "committed", [b"a", b"b"])
    assert read_marker(log.root / "out" / "0") is not None
    assert _values(_read(log)) == []  # the LSO is stuck until someone resolves the marker
    with log.producer() as plain:
        plain.produce("out", b"c", partition=0)
    assert _values(_read(log)) == [b"a", b"b", b"c"]
    assert read_marker(log.root / "out" / "0") is None


def test_reopening_the_id_resolves_its_markers_everywhere(log: EmbeddedLog) -> None:
    producer = log.transactional_producer("dead")
    producer.begin()
    producer.produce("out", b"p0", partition=0)
    producer.produce("out", b"p1", partition=1)
    _crash_at("committed")
    with pytest.raises(Crash):
        producer.commit()
    transactional.STEP_HOOK = None
    assert [read_marker(log.root / "out" / str(p)) is not None for p in (0, 1)] == [True, True]
    log.transactional_producer("dead")
    assert [read_marker(log.root / "out" / str(p)) for p in (0, 1)] == [None, None]
    assert _values(_read(log, partition=0)) == [b"p0"] and _values(_read(log, partition=1)) == [b"p1"]


def test_the_older_of_two_producers_with_one_id_is_fenced(log: EmbeddedLog, tmp_path: Path) -> None:
    consumer = log.group_consumer("copy", ["in"])
    old = log.transactional_producer("copy-0")
    old.begin()
    old.produce("out", b"old-1", partition=0)
    old.commit({("in", 0): 1}, consumer)
    new = EmbeddedLog(tmp_path / "log").transactional_producer("copy-0")  # another handle, as another process would
    assert new.epoch == old.epoch + 1
    old.begin()
    old.produce("out", b"zombie", partition=0)
    with pytest.raises(ProducerFencedError) as caught:
        old.commit({("in", 0): 2}, consumer)
    assert caught.value.hint
    assert _values(_read(log)) == [b"old-1"] and _values(_read(log, committed=False)) == [b"old-1"]
    assert consumer.committed("in", 0) == 1
    with pytest.raises(ProducerFencedError):
        old.begin()  # fenced for good
    new.begin()
    new.produce("out", b"new-1", partition=0)
    new.commit({("in", 0): 2}, consumer)
    assert _values(_read(log)) == [b"old-1", b"new-1"] and consumer.committed("in", 0) == 2


def test_read_committed_reader_waits_at_the_stable_offset_and_then_goes_on(log: EmbeddedLog) -> None:
    reader = log.reader([("out", 0, 0)])
    uncommitted = log.reader([("out", 0, 0)], read_committed=False)
    seen: dict[str, list[bytes | None]] = {}

    def peek(at: str) -> None:
        if at == "appended":
            seen["committed"] = _values(reader.poll(100))
            seen["uncommitted"] = _values(uncommitted.poll(100))

    producer = log.transactional_producer("p")
    producer.begin()
    producer.produce("out", b"x", partition=0)
    producer.produce("out", b"y", partition=0)
    transactional.STEP_HOOK = peek
    producer.commit()
    transactional.STEP_HOOK = None
    assert seen == {"committed": [], "uncommitted": [b"x", b"y"]}
    assert _values(reader.poll(100)) == [b"x", b"y"]  # the bytes it skipped are read again, now stable
    reader.close()
    uncommitted.close()


def test_group_consumer_calls_assign_and_revoke(log: EmbeddedLog) -> None:
    calls: list[tuple[str, list[tuple[str, int]]]] = []
    consumer = log.group_consumer(
        "g", ["in"], on_assign=lambda tps: calls.append(("assign", tps)), on_revoke=lambda tps: calls.append(("revoke", tps))
    )
    assert calls == [("assign", [("in", 0), ("in", 1)])]
    consumer.close()
    consumer.close()
    assert calls == [("assign", [("in", 0), ("in", 1)]), ("revoke", [("in", 0), ("in", 1)])]


def test_older_partitions_without_an_lso_file_read_to_the_high_watermark(log: EmbeddedLog) -> None:
    with log.producer() as plain:
        plain.produce("out", b"a", partition=0)
    (log.root / "out" / "0" / "~lso").unlink()
    assert _values(_read(log)) == [b"a"] and log.stable_offset("out", 0) == 1


def test_rolling_back_a_transaction_that_rolled_segments(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path / "small", segment_bytes=400, index_interval_bytes=100)
    log.create_topic(TopicSpec("out"))
    with log.producer() as plain:
        for i in range(5):
            plain.produce("out", f"keep{i}".encode() * 5, partition=0)
    segments_before = sorted(p.name for p in (tmp_path / "small" / "out" / "0").glob("*.log"))
    producer = log.transactional_producer("dead")
    producer.begin()
    for i in range(60):
        producer.produce("out", f"doomed{i}".encode() * 5, partition=0)
    producer._roll_back = lambda marked: None  # type: ignore[method-assign]  # dies: rolls nothing back
    _crash_at("appended")
    with pytest.raises(Crash):
        producer.commit()
    transactional.STEP_HOOK = None
    assert len(list((tmp_path / "small" / "out" / "0").glob("*.log"))) > len(segments_before) + 3
    with log.producer() as plain:
        for i in range(5, 8):
            plain.produce("out", f"keep{i}".encode() * 5, partition=0)
    records = _read(log)
    assert [r.offset for r in records] == list(range(8))
    assert _values(records) == [f"keep{i}".encode() * 5 for i in range(8)]
    assert _values(_read(log, committed=False)) == _values(records)
    reader = log.reader([("out", 0, 6)])  # seeks through the indexes work after the truncation
    assert _values(reader.poll(10)) == [b"keep6" * 5, b"keep7" * 5]
    reader.close()


def test_log_check_notes_an_open_transaction_and_repair_finishes_it(log: EmbeddedLog) -> None:
    from typer.testing import CliRunner

    from streams.cli.main import app

    _die_between(log, "appended", [b"doomed"])
    cli = CliRunner()
    checked = cli.invoke(app, ["--log", log.url, "log", "check", "--topic", "out"])
    assert checked.exit_code == 0, checked.output  # a note, not damage
    assert "open-transaction: out/0" in checked.output and "of 'dead' from offset 0" in checked.output
    repaired = cli.invoke(app, ["--log", log.url, "log", "repair", "out", "0", "--yes"])
    assert repaired.exit_code == 0, repaired.output
    assert read_marker(log.root / "out" / "0") is None and _read(log, committed=False) == []
    assert "open-transaction" not in cli.invoke(app, ["--log", log.url, "log", "check"]).output


def test_end_offset_is_not_caught_up_while_a_transaction_is_open(log: EmbeddedLog) -> None:
    reader = log.reader([("out", 0, 0)])
    uncommitted = log.reader([("out", 0, 0)], read_committed=False)
    during: list[tuple[int | None, int | None, int]] = []

    def peek(at: str) -> None:
        if at == "appended":
            reader.poll(100)
            during.append((reader.end_offset("out", 0), uncommitted.end_offset("out", 0), reader.position("out", 0)))

    transactional.STEP_HOOK = peek
    producer = log.transactional_producer("p")
    producer.begin()
    producer.produce("out", b"x", partition=0)
    producer.produce("out", b"y", partition=0)
    producer.commit()
    transactional.STEP_HOOK = None
    assert during == [(2, 2, 0)]  # the high watermark: position 0 is below it, so not caught up
    assert _values(reader.poll(100)) == [b"x", b"y"]
    assert reader.end_offset("out", 0) == 2 == reader.position("out", 0)  # caught up at the stable end
    reader.close()
    uncommitted.close()


# -- the commit protocol (DECISIONS #53): one record per transaction, pointers in ~lso ---------------


def _frames(root: Path) -> list[dict[str, object]]:
    """Every record of the directory's transaction log, oldest first."""
    from streams.log.embedded.txlog import HEADER, generation_path, generations

    out = []
    for gen in generations(root / "__transactions"):
        data = generation_path(root / "__transactions", gen).read_bytes()
        pos = 0
        while pos < len(data):
            _, length, _ = HEADER.unpack_from(data, pos)
            out.append(json.loads(data[pos + HEADER.size : pos + HEADER.size + length]))
            pos += HEADER.size + length
    return out


def _lso_state(log: EmbeddedLog, partition: int) -> tuple[int, int]:
    import os

    from streams.log.embedded.txn import read_lso_state

    fd = os.open(log.root / "out" / str(partition) / "~lso", os.O_RDONLY)
    try:
        return read_lso_state(fd)
    finally:
        os.close(fd)


def test_one_transaction_record_names_every_partition_and_no_file_is_created_per_partition(log: EmbeddedLog) -> None:
    consumer = log.group_consumer("copy", ["in"])
    producer = log.transactional_producer("copy-0")
    with log.producer() as plain:
        plain.produce("out", b"before", partition=1)
    seen: dict[str, object] = {}

    def peek(at: str) -> None:
        if at == "appended":
            seen["files"] = sorted(p.name for q in (0, 1) for p in (log.root / "out" / str(q)).iterdir())
            seen["lso"] = [_lso_state(log, q) for q in (0, 1)]

    producer.begin()
    producer.produce("out", b"a", partition=0)
    producer.produce("out", b"b", partition=1)
    transactional.STEP_HOOK = peek
    producer.commit({("in", 0): 3}, consumer)
    transactional.STEP_HOOK = None
    assert _frames(log.root) == [
        {"id": "copy-0", "epoch": producer.epoch, "seq": 1, "group": "copy", "parts": [["out", 0, 0], ["out", 1, 1]]}
    ]
    assert "~txn" not in seen["files"] and not [n for n in seen["files"] if "tmp" in n]  # type: ignore[attr-defined]
    (lso0, ref0), (lso1, ref1) = seen["lso"]  # type: ignore[misc]
    assert (lso0, lso1) == (0, 1) and ref0 == ref1 != 0  # both point at the one record, LSO held at the start
    assert [_lso_state(log, q) for q in (0, 1)] == [(1, 0), (2, 0)]  # visible, no transaction open
    assert _values(_read(log, partition=1)) == [b"before", b"b"] and consumer.committed("in", 0) == 3
    consumer.close()


def test_fsync_never_commits_without_a_single_fsync_and_batch_fsyncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    for policy, expect_fsync in (("never", False), ("batch", True)):
        log = EmbeddedLog(tmp_path / policy, fsync=policy)
        log.create_topic(TopicSpec("in"))
        log.create_topic(TopicSpec("out", partitions=2))
        consumer = log.group_consumer("g", ["in"])
        producer = log.transactional_producer("p")
        for txn in range(3):
            calls.clear()
            producer.begin()
            producer.produce("out", b"x", partition=0)
            producer.produce("out", b"y", partition=1)
            producer.commit({("in", 0): txn + 1}, consumer)  # the offsets file is the commit point
            assert bool(calls) == expect_fsync, (policy, txn, calls)
        calls.clear()
        producer.begin()
        producer.produce("out", b"z", partition=0)
        producer.commit()  # the id's own file is the commit point
        assert bool(calls) == expect_fsync
        consumer.close()
        log.close()


def test_end_offset_needs_no_stat_and_no_read_while_the_reader_is_behind(log: EmbeddedLog, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    producer = log.transactional_producer("p")
    producer.begin()
    for i in range(5):
        producer.produce("out", f"r{i}".encode(), partition=0)
    producer.commit()
    reader = log.reader([("out", 0, 0)])
    assert len(reader.poll(2)) == 2  # saw the stable offset 5, is at 2
    calls: list[str] = []
    for name in ("stat", "lstat", "pread", "open"):
        real = getattr(os, name)
        monkeypatch.setattr(os, name, lambda *a, _n=name, _r=real, **k: (calls.append(_n), _r(*a, **k))[1])
    assert reader.end_offset("out", 0) == 5 and calls == []  # behind what it saw: no system call at all
    assert len(reader.poll(10)) == 3
    calls.clear()
    assert reader.end_offset("out", 0) == 5 and calls == ["pread"]  # at it: one pread of ~lso, no stat
    monkeypatch.undo()
    reader.close()


def test_a_producer_killed_after_its_record_before_any_pointer_leaves_nothing_to_resolve(log: EmbeddedLog) -> None:
    with log.producer() as plain:
        plain.produce("out", b"before", partition=0)
    _die_between(log, "logged", [b"lost"])
    assert len(_frames(log.root)) == 1  # the record is there ...
    assert read_marker(log.root / "out" / "0") is None and log.transaction_markers() == []  # ... nobody points at it
    assert _values(_read(log, committed=False)) == [b"before"]
    with log.producer() as plain:
        plain.produce("out", b"after", partition=0)
    assert _values(_read(log)) == [b"before", b"after"]


def test_a_commit_killed_after_its_first_partition_became_visible_rolls_forward(log: EmbeddedLog) -> None:
    consumer = log.group_consumer("copy", ["in"])
    producer = log.transactional_producer("copy-0")
    producer.begin()
    producer.produce("out", b"p0", partition=0)
    producer.produce("out", b"p1", partition=1)
    _crash_at("partly-visible")
    with pytest.raises(Crash):
        producer.commit({("in", 0): 2}, consumer)
    transactional.STEP_HOOK = None
    assert _values(_read(log, partition=0)) == [b"p0"] and _values(_read(log, partition=1)) == []
    assert consumer.committed("in", 0) == 2  # past the commit point: it committed
    marker = read_marker(log.root / "out" / "1")
    assert marker is not None and (marker.transactional_id, marker.seq, marker.start, marker.group) == ("copy-0", 1, 0, "copy")
    log.transactional_producer("copy-0")  # re-opening the id finishes it
    assert _values(_read(log, partition=1)) == [b"p1"] and read_marker(log.root / "out" / "1") is None
    consumer.close()


@pytest.mark.parametrize("committed", [False, True])
def test_a_protocol_1_marker_left_by_an_older_version_is_resolved_when_any_producer_opens(
    log: EmbeddedLog, committed: bool
) -> None:
    """Migration: an older version died mid-commit (its ``~txn`` file, an 8-byte ``~lso``); this version finishes it."""
    with log.producer() as plain:
        for v in (b"old-a", b"old-b"):
            plain.produce("out", v, partition=0)
    directory = log.root / "out" / "0"
    (directory / "~lso").write_bytes((0).to_bytes(8, "little"))  # protocol 1: LSO held at the marker's start
    (directory / "~txn").write_text(json.dumps({"id": "old-copier", "epoch": 1, "seq": 1, "start": 0, "group": None}))
    (log.root / "__transactions").mkdir(exist_ok=True)
    (log.root / "__transactions" / "old-copier.json").write_text(
        json.dumps({"id": "old-copier", "epoch": 1, "committed": [1, 1] if committed else None})
    )
    assert _values(_read(log)) == [] and read_marker(directory) is not None
    assert "open-transaction: out/0" in _check_output(log)
    log.transactional_producer("another-id")  # any producer opening resolves protocol-1 markers, whatever their id
    assert not (directory / "~txn").exists() and read_marker(directory) is None
    assert _values(_read(log)) == ([b"old-a", b"old-b"] if committed else [])
    assert _values(_read(log, committed=False)) == ([b"old-a", b"old-b"] if committed else [])


def _check_output(log: EmbeddedLog) -> str:
    from typer.testing import CliRunner

    from streams.cli.main import app

    return CliRunner().invoke(app, ["--log", log.url, "log", "check", "--topic", "out"]).output


def test_a_reader_that_reaches_the_stable_offset_looks_for_no_later_segment(log: EmbeddedLog, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    with log.producer() as plain:
        for i in range(5):
            plain.produce("out", f"r{i}".encode(), partition=0)
    reader = log.reader([("out", 0, 0)])
    calls: list[str] = []
    for name in ("stat", "listdir"):
        real = getattr(os, name)
        monkeypatch.setattr(os, name, lambda *a, _n=name, _r=real, **k: (calls.append(_n), _r(*a, **k))[1])
    assert len(reader.poll(100)) == 5 and reader.poll(100) == []
    assert calls == []  # read up to the stable offset: no stat of a next segment, no directory listing
    monkeypatch.undo()
    with log.producer() as plain:
        plain.produce("out", b"r5", partition=0)
    assert _values(reader.poll(100)) == [b"r5"]
    reader.close()


def test_quiet_ends_equal_the_stable_ends_for_the_writing_handle_and_another_one(log: EmbeddedLog) -> None:
    other = EmbeddedLog(log.root)  # another process's view: no writer of its own, so it opens ~lso
    tps = [("out", 0), ("out", 1)]
    seen: list[tuple[dict, dict, int, int]] = []

    def peek(at: str) -> None:
        if at == "appended":  # a transaction is open: both ask as before (the end is below the appended records)
            seen.append((log.quiet_ends(tps), other.quiet_ends(tps), log.stable_offset("out", 0), log.watermarks("out", 0)[1]))

    producer = log.transactional_producer("q")
    for n in (3, 2):
        producer.begin()
        for i in range(n):
            producer.produce("out", b"v%d" % i, partition=i % 2)
        producer.commit()
        expected = {tp: log.stable_offset(*tp) for tp in tps}
        assert log.quiet_ends(tps) == other.quiet_ends(tps) == expected
    assert expected == {("out", 0): 3, ("out", 1): 2}
    transactional.STEP_HOOK = peek
    producer.begin()
    producer.produce("out", b"open", partition=0)
    producer.commit()
    transactional.STEP_HOOK = None
    assert seen == [({("out", 0): 3, ("out", 1): 2}, {("out", 0): 3, ("out", 1): 2}, 3, 4)]
    assert log.quiet_ends(tps) == {("out", 0): 4, ("out", 1): 2}
    other.close()
