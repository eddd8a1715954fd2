"""The embedded log's transaction log (``__transactions/~txlog.<gen>``): framing, torn tails, corruption, rotation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from streams.errors import LogCorruptionError
from streams.log.embedded import txlog
from streams.log.embedded.txlog import TxnLog, encode, generation_path, generations, read_record, split_ref


def _log(directory: Path, referenced: set[int] | None = None) -> TxnLog:
    return TxnLog(directory, durable=False, referenced=lambda: referenced or set())


def _body(i: int) -> dict[str, object]:
    return {"id": "p", "epoch": 1, "seq": i, "group": None, "parts": [["out", 0, i]]}


def test_records_are_read_back_at_their_reference_across_handles(tmp_path: Path) -> None:
    a, b = _log(tmp_path), _log(tmp_path)  # two handles append to one file, as two processes do
    refs = [(a if i % 2 else b).append(_body(i)) for i in range(6)]
    assert [read_record(tmp_path, r) for r in refs] == [_body(i) for i in range(6)]
    assert generation_path(tmp_path, 1).stat().st_size == sum(len(encode(_body(i))) for i in range(6))
    a.close()
    b.close()


def test_a_torn_tail_is_truncated_by_the_next_appender(tmp_path: Path) -> None:
    first = _log(tmp_path)
    kept = first.append(_body(1))
    end = generation_path(tmp_path, 1).stat().st_size
    with open(generation_path(tmp_path, 1), "ab") as f:  # a process died inside its write
        f.write(encode(_body(2))[:-3])
    for appender in (first, _log(tmp_path)):  # the same handle (sees a size it did not write) or a fresh one
        ref = appender.append(_body(3))
        assert split_ref(ref) == (1, end) and read_record(tmp_path, ref) == _body(3)
        assert read_record(tmp_path, kept) == _body(1)
        with open(generation_path(tmp_path, 1), "ab") as f:
            f.write(b"HTX1\x00")
        end = generation_path(tmp_path, 1).stat().st_size - 5


def test_a_damaged_record_followed_by_a_valid_one_is_corruption_not_a_torn_tail(tmp_path: Path) -> None:
    _log(tmp_path).append(_body(1))
    path = generation_path(tmp_path, 1)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # damage the body of the first record ...
    path.write_bytes(bytes(data) + encode(_body(2)))  # ... with a valid one after it
    with pytest.raises(LogCorruptionError, match="damaged transaction record") as caught:
        _log(tmp_path).append(_body(3))
    assert caught.value.hint and path.stat().st_size == len(data) + len(encode(_body(2)))  # nothing truncated


def test_a_missing_or_damaged_record_is_a_clear_error(tmp_path: Path) -> None:
    ref = _log(tmp_path).append(_body(1))
    with pytest.raises(LogCorruptionError, match="no valid transaction record"):
        read_record(tmp_path, ref + 1)
    os.unlink(generation_path(tmp_path, 1))
    with pytest.raises(LogCorruptionError, match="missing"):
        read_record(tmp_path, ref)


def test_full_generations_rotate_and_old_ones_go_unless_a_partition_still_points_into_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(txlog, "ROTATE_BYTES", 300)
    appender = _log(tmp_path, referenced={2})
    refs = [appender.append(_body(i)) for i in range(40)]
    gens = generations(tmp_path)
    newest = split_ref(refs[-1])[0]
    assert newest >= 6 and gens == [2, newest - 1, newest]  # 2 is pointed at; the previous one is kept too
    assert all(generation_path(tmp_path, g).stat().st_size < 300 + len(encode(_body(99))) for g in gens)
    assert read_record(tmp_path, refs[-1]) == _body(39)
    full = generation_path(tmp_path, newest).stat().st_size >= 300
    later = _log(tmp_path)  # a fresh handle continues in the newest generation (or starts the next if it is full)
    assert split_ref(later.append(_body(40)))[0] == newest + full
