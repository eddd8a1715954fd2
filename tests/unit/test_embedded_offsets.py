"""Committed group offsets on the embedded log: one appended record per commit (DECISIONS #53)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from streams.errors import ConfigError
from streams.log.embedded import offsets
from streams.log.embedded.offsets import OffsetsStore, encode_state


def test_commits_append_one_record_each_and_never_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = OffsetsStore(tmp_path, durable=False)
    renames: list[object] = []
    monkeypatch.setattr(os, "replace", lambda *a: renames.append(a))
    monkeypatch.setattr(os, "rename", lambda *a: renames.append(a))
    for i in range(1, 6):
        store.commit("g", {("t", i % 2): i * 10}, ("p", 1, i))
    assert renames == []
    assert OffsetsStore(tmp_path).load("g") == {("t", 0): 40, ("t", 1): 50}  # a fresh handle reads the newest record
    assert OffsetsStore(tmp_path).load_txn("g") == {"p": (1, 5)}
    sizes = [len(encode_state({"group": "g", "offsets": {"t": o}, "txn": {"p": [1, i]}}))
             for i, o in enumerate([{"1": 10}, {"0": 20, "1": 10}, {"0": 20, "1": 30}, {"0": 40, "1": 30}, {"0": 40, "1": 50}], 1)]
    assert store.path("g").stat().st_size == sum(sizes)


def test_a_torn_tail_reads_as_the_previous_commit_and_the_next_commit_truncates_it(tmp_path: Path) -> None:
    store = OffsetsStore(tmp_path)
    store.commit("g", {("t", 0): 1})
    good = store.path("g").stat().st_size
    with open(store.path("g"), "ab") as f:  # died inside the write of the next commit
        f.write(encode_state({"group": "g", "offsets": {"t": {"0": 2}}})[:-5])
    assert OffsetsStore(tmp_path).load("g") == {("t", 0): 1}
    store.commit("g", {("t", 0): 3})
    assert OffsetsStore(tmp_path).load("g") == {("t", 0): 3}
    assert store.path("g").stat().st_size == good + len(encode_state({"group": "g", "offsets": {"t": {"0": 3}}}))


def test_a_large_file_is_compacted_to_its_newest_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(offsets, "COMPACT_BYTES", 400)
    store = OffsetsStore(tmp_path)
    for i in range(50):
        store.commit("g", {("t", i % 3): i})
    assert store.path("g").stat().st_size <= 400
    assert OffsetsStore(tmp_path).load("g") == {("t", 0): 48, ("t", 1): 49, ("t", 2): 47}
    assert [p.name for p in tmp_path.joinpath("__consumer_offsets").iterdir() if "tmp" in p.name] == []


def test_the_json_file_of_earlier_versions_is_read_then_retired_by_the_first_commit(tmp_path: Path) -> None:
    legacy = tmp_path / "__consumer_offsets" / "hftstream.risk.json"
    legacy.parent.mkdir()
    legacy.write_text(json.dumps({"group": "hftstream.risk", "offsets": {"t": {"0": 7, "1": 9}}, "txn": {"risk-0": [3, 12]}}))
    store = OffsetsStore(tmp_path)
    assert store.load("hftstream.risk") == {("t", 0): 7, ("t", 1): 9} and store.load_txn("hftstream.risk") == {"risk-0": (3, 12)}
    assert store.groups() == ["hftstream.risk"]
    store.commit("hftstream.risk", {("t", 0): 8}, ("risk-0", 3, 13))
    assert not legacy.exists() and store.path("hftstream.risk").exists()
    assert OffsetsStore(tmp_path).load("hftstream.risk") == {("t", 0): 8, ("t", 1): 9}
    assert store.delete("hftstream.risk") and store.groups() == [] and store.load("hftstream.risk") == {}


def test_a_file_without_a_valid_record_is_a_clear_error(tmp_path: Path) -> None:
    store = OffsetsStore(tmp_path)
    store.path("g").parent.mkdir()
    store.path("g").write_bytes(b"not a record at all, just bytes")
    with pytest.raises(ConfigError, match="unreadable") as caught:
        store.load("g")
    assert "delete" in (caught.value.hint or "")


def test_dropping_a_topic_rewrites_every_group_without_it(tmp_path: Path) -> None:
    store = OffsetsStore(tmp_path)
    store.commit("a", {("gone", 0): 1, ("kept", 0): 2})
    store.commit("b", {("kept", 0): 3})
    store.drop_topic("gone")
    fresh = OffsetsStore(tmp_path)
    assert fresh.load("a") == {("kept", 0): 2} and fresh.load("b") == {("kept", 0): 3}
