"""The embedded log on real files: topics, produce/read, seeks, segments, retention, compaction, groups."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from streams.errors import ConfigError, UnknownPartitionError, UnknownTopicError
from streams.log import open_log
from streams.log.base import Record, TopicSpec
from streams.log.embedded import EmbeddedLog
from streams.log.embedded.index import OFFSET_ENTRY, TIME_ENTRY, index_path, read_entries, timeindex_path
from streams.log.embedded.maintenance import check, compact, retain
from streams.log.embedded.segment import list_segments
from streams.log.partitioner import partition_for

T0 = 1_700_000_000_000_000_000  # a fixed epoch in ns: tests never read the clock


def _log(tmp_path: Path, **options: object) -> EmbeddedLog:
    return EmbeddedLog(tmp_path / "log", **options)


def _drain(reader, expect: int | None = None) -> list[Record]:  # type: ignore[no-untyped-def]
    out: list[Record] = []
    while batch := reader.poll(500, timeout=0.05 if expect is not None and len(out) < expect else 0.0):
        out.extend(batch)
    return out


def _fill(log: EmbeddedLog, topic: str, n: int, *, partition: int = 0, start_ts: int = T0, size: int = 20) -> None:
    with log.producer() as producer:
        for i in range(n):
            producer.produce(topic, f"v{i:06d}".encode().ljust(size, b"."), partition=partition, timestamp_ns=start_ts + i)


# -- topics -----------------------------------------------------------------------------


def test_create_update_describe_list_and_delete_topics(tmp_path: Path) -> None:
    log = _log(tmp_path)
    spec = TopicSpec("orders.in", partitions=2, key="account", value_schema="Order", retention_ms=60_000, description="d")
    assert log.create_topic(spec).action == "created"
    assert log.create_topic(spec).action == "unchanged"
    assert log.describe_topic("orders.in") == spec
    meta = json.loads((tmp_path / "log" / "orders.in" / "topic.json").read_text())
    assert meta["key"] == "account" and meta["partitions"] == 2

    grown = TopicSpec("orders.in", partitions=4, key="account", value_schema="Order", retention_ms=60_000, description="d")
    change = log.create_topic(grown)
    assert change.action == "partitions" and "2 -> 4" in change.detail
    assert log.partitions("orders.in") == 4
    reconfigured = TopicSpec("orders.in", partitions=4, key="account", value_schema="Order", retention_ms=1, description="d")
    change = log.create_topic(reconfigured)
    assert change.action == "config" and "retention_ms" in change.detail
    with pytest.raises(ConfigError, match="cannot shrink"):
        log.create_topic(TopicSpec("orders.in", partitions=3))

    log.create_topic(TopicSpec("a", partitions=1))
    with log.group_consumer("g", ["a"]) as consumer:  # creates the hidden __consumer_offsets dir
        consumer.commit({("a", 0): 0})
    infos = log.list_topics()
    assert [t.name for t in infos] == ["a", "orders.in"]
    assert infos[1].partitions == 4 and infos[1].end_offsets == (0, 0, 0, 0) and infos[1].begin_offsets == (0, 0, 0, 0)

    log.delete_topic("orders.in")
    assert not (tmp_path / "log" / "orders.in").exists()
    assert [t.name for t in log.list_topics()] == ["a"]
    with pytest.raises(UnknownTopicError):
        log.delete_topic("orders.in")


def test_a_handle_sees_another_handles_topic_changes_at_once(tmp_path: Path) -> None:
    """The parsed topic spec is kept per handle; a change by another handle (grown, deleted, re-created) shows at the next call."""
    a, b = _log(tmp_path), _log(tmp_path)
    a.create_topic(TopicSpec("t", partitions=2, key="k"))
    assert b.partitions("t") == 2 and b.partition_dir("t", 1).name == "1"
    a.create_topic(TopicSpec("t", partitions=4, key="k"))
    assert b.partitions("t") == 4 and b.partition_dir("t", 3).is_dir()
    a.delete_topic("t")
    with pytest.raises(UnknownTopicError):
        b.partitions("t")
    a.create_topic(TopicSpec("t", partitions=1, key="other"))
    assert b.describe_topic("t") == TopicSpec("t", partitions=1, key="other")
    with pytest.raises(UnknownPartitionError):
        b.partition_dir("t", 1)


@pytest.mark.parametrize("name", ["", ".", "..", "has space", "slash/x", "x" * 250, "tilde~", "__consumer_offsets"])
def test_invalid_topic_names_are_config_errors(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError) as info:
        _log(tmp_path).create_topic(TopicSpec(name))
    assert info.value.hint


def test_unknown_topic_and_partition_errors(tmp_path: Path) -> None:
    log = _log(tmp_path)
    log.create_topic(TopicSpec("t", partitions=2))
    producer = log.producer()
    for call in (
        lambda: producer.produce("nope", b"x"),
        lambda: log.reader([("nope", 0, 0)]),
        lambda: log.describe_topic("nope"),
        lambda: log.watermarks("nope", 0),
        lambda: log.offset_for_time("nope", 0, 0),
        lambda: log.group_consumer("g", ["nope"]),
    ):
        with pytest.raises(UnknownTopicError) as info:
            call()
        assert info.value.hint
    assert not (tmp_path / "log" / "nope").exists()  # never auto-created
    with pytest.raises(UnknownPartitionError):
        producer.produce("t", b"x", partition=2)
    with pytest.raises(UnknownPartitionError):
        log.reader([("t", 5, 0)])
    with pytest.raises(UnknownPartitionError):
        log.watermarks("t", -1)


def test_open_log_url_and_options(tmp_path: Path) -> None:
    log = open_log(f"embedded://{tmp_path}/x?fsync=batch&segment_bytes=4096&index_interval_bytes=512")
    assert isinstance(log, EmbeddedLog)
    assert (log.settings.fsync, log.settings.segment_bytes, log.settings.index_interval_bytes) == ("batch", 4096, 512)
    assert log.url == f"embedded://{tmp_path}/x"
    with pytest.raises(ConfigError, match="fsync"):
        open_log(f"embedded://{tmp_path}/x?fsync=sometimes")
    with pytest.raises(ConfigError, match="bogus"):
        open_log(f"embedded://{tmp_path}/x?bogus=1")
    with pytest.raises(ConfigError, match="positive"):
        EmbeddedLog(tmp_path / "y", segment_bytes=0)


# -- produce / read ---------------------------------------------------------------------


def test_append_and_read_back_in_order_with_every_field(tmp_path: Path) -> None:
    log = _log(tmp_path)
    log.create_topic(TopicSpec("t"))
    delivered: list[tuple[Exception | None, Record | None]] = []
    with log.producer(on_delivery=lambda err, rec: delivered.append((err, rec))) as producer:
        producer.produce("t", b"v0", b"k0", timestamp_ns=T0, headers=(("h", b"1"), ("trace", b"")))
        producer.produce("t", None, b"k0", timestamp_ns=T0 + 1)  # tombstone
        producer.produce("t", b"", None, timestamp_ns=T0 + 2)  # empty value, no key
        producer.produce("t", bytearray(b"ba"), memoryview(b"mv"), timestamp_ns=-5)
        assert producer.flush() == 4
    records = _drain(log.reader([("t", 0, 0)]))
    assert [r.offset for r in records] == [0, 1, 2, 3]
    assert records[0] == Record("t", 0, 0, T0, b"k0", b"v0", (("h", b"1"), ("trace", b"")))
    assert (records[1].key, records[1].value) == (b"k0", None)
    assert (records[2].key, records[2].value, records[2].headers) == (None, b"", ())
    assert (records[3].key, records[3].value, records[3].timestamp_ns) == (b"mv", b"ba", -5)
    assert [rec for err, rec in delivered] == records and all(err is None for err, _ in delivered)
    assert log.watermarks("t", 0) == (0, 4)


def test_produce_rejects_wrong_types(tmp_path: Path) -> None:
    log = _log(tmp_path)
    log.create_topic(TopicSpec("t"))
    producer = log.producer()
    with pytest.raises(TypeError):
        producer.produce("t", "a string")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        producer.produce("t", b"x", timestamp_ns=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        producer.produce("t", b"x", headers=(("h", "not bytes"),))  # type: ignore[arg-type]
    assert producer.flush() == 0


def test_keyed_partitioning_is_murmur2_and_unkeyed_is_round_robin(tmp_path: Path) -> None:
    log = _log(tmp_path)
    log.create_topic(TopicSpec("t", partitions=5))
    keys = [f"acct-{i}".encode() for i in range(40)]
    with log.producer() as producer:
        for k in keys:
            producer.produce("t", b"v", k, timestamp_ns=T0)
        for _ in range(10):
            producer.produce("t", b"rr", timestamp_ns=T0)
        producer.produce("t", b"explicit", b"acct-0", partition=4, timestamp_ns=T0)
    by_partition = {p: _drain(log.reader([("t", p, 0)])) for p in range(5)}
    for p, recs in by_partition.items():
        for r in recs:
            if r.value == b"v":
                assert partition_for(r.key, 5) == p  # type: ignore[arg-type]
    rr = [p for p in range(5) for r in by_partition[p] if r.value == b"rr"]
    assert sorted(rr) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert [r.key for r in by_partition[4] if r.value == b"explicit"] == [b"acct-0"]


def test_auto_flush_bounds_the_buffer(tmp_path: Path) -> None:
    from streams.log.embedded.producer import MAX_BUFFERED_RECORDS

    log = _log(tmp_path)
    log.create_topic(TopicSpec("t"))
    producer = log.producer()
    for i in range(MAX_BUFFERED_RECORDS + 10):
        producer.produce("t", b"x", timestamp_ns=T0 + i)
    assert log.watermarks("t", 0)[1] == MAX_BUFFERED_RECORDS  # written without an explicit flush
    assert producer.flush() == 10
    producer.produce("t", b"y" * (5 << 20), timestamp_ns=T0)  # one record over the byte bound
    assert log.watermarks("t", 0)[1] == MAX_BUFFERED_RECORDS + 11


def test_poll_respects_max_records_and_interleaves_partitions(tmp_path: Path) -> None:
    log = _log(tmp_path)
    log.create_topic(TopicSpec("t", partitions=3))
    for p in range(3):
        _fill(log, "t", 50, partition=p)
    reader = log.reader([("t", p, 0) for p in range(3)])
    first = reader.poll(7)
    assert len(first) == 7
    seen: dict[int, list[int]] = {0: [], 1: [], 2: []}
    for r in first + _drain(reader):
        seen[r.partition].append(r.offset)
    assert all(offsets == list(range(50)) for offsets in seen.values())
    assert reader.poll(10, timeout=0.05) == []
    assert sorted(reader.assignment()) == [("t", 0), ("t", 1), ("t", 2)]
    assert reader.position("t", 1) == 50


def test_seek_by_offset_and_by_time(tmp_path: Path) -> None:
    log = _log(tmp_path, index_interval_bytes=256)
    log.create_topic(TopicSpec("t"))
    _fill(log, "t", 1000)
    reader = log.reader([("t", 0, 0)])
    for target in (0, 1, 17, 500, 998, 999):
        reader.seek("t", 0, target)
        assert reader.position("t", 0) == target
        assert reader.poll(1)[0].offset == target
    reader.seek("t", 0, 1000)
    assert reader.poll(1, timeout=0.02) == []
    _fill(log, "t", 1, start_ts=T0 + 1000)
    assert [r.offset for r in reader.poll(5, timeout=1.0)] == [1000]
    for ts, expect in ((T0 - 10, 0), (T0, 0), (T0 + 1, 1), (T0 + 777, 777), (T0 + 1000, 1000), (T0 + 5000, 1001)):
        assert log.offset_for_time("t", 0, ts) == expect


def test_offset_for_time_with_out_of_order_timestamps(tmp_path: Path) -> None:
    log = _log(tmp_path, index_interval_bytes=64, segment_bytes=2048)
    log.create_topic(TopicSpec("t"))
    stamps = [(i * 7919) % 1000 for i in range(300)]  # a deterministic permutation-ish sequence
    with log.producer() as producer:
        for ts in stamps:
            producer.produce("t", b"x" * 10, timestamp_ns=ts)
    for target in (0, 1, 250, 500, 998, 999, 1000):
        expect = next((i for i, ts in enumerate(stamps) if ts >= target), len(stamps))
        assert log.offset_for_time("t", 0, target) == expect, target


def test_segments_roll_and_index_seeks_work_across_them(tmp_path: Path) -> None:
    log = _log(tmp_path, segment_bytes=1024, index_interval_bytes=128)
    log.create_topic(TopicSpec("t"))
    _fill(log, "t", 400, size=40)
    directory = tmp_path / "log" / "t" / "0"
    bases = list_segments(directory)
    assert len(bases) > 10 and bases[0] == 0
    for base in bases[:-1]:
        assert (directory / f"{base:020d}.log").stat().st_size <= 1024
        entries = read_entries(index_path(directory, base), OFFSET_ENTRY)
        assert len(entries) // OFFSET_ENTRY.size >= 3  # sparse, but there
        assert len(read_entries(timeindex_path(directory, base), TIME_ENTRY)) // TIME_ENTRY.size >= 3
    reader = log.reader([("t", 0, 0)])
    for target in range(0, 400, 13):
        reader.seek("t", 0, target)
        got = reader.poll(3)
        assert [r.offset for r in got] == [target, target + 1, target + 2][: 400 - target]
        assert got[0].value.startswith(f"v{target:06d}".encode())  # type: ignore[union-attr]
        assert log.offset_for_time("t", 0, T0 + target) == target
    assert [r.offset for r in _drain(log.reader([("t", 0, 0)]))] == list(range(400))
    assert log.watermarks("t", 0) == (0, 400)


def test_lost_index_files_are_only_slower(tmp_path: Path) -> None:
    log = _log(tmp_path, segment_bytes=4096, index_interval_bytes=128)
    log.create_topic(TopicSpec("t"))
    _fill(log, "t", 300)
    directory = tmp_path / "log" / "t" / "0"
    for name in os.listdir(directory):
        if name.endswith((".index", ".timeindex")):
            os.unlink(directory / name)
    assert log.offset_for_time("t", 0, T0 + 123) == 123
    reader = log.reader([("t", 0, 250)])
    assert reader.poll(1)[0].offset == 250
    fresh = EmbeddedLog(tmp_path / "log", segment_bytes=4096, index_interval_bytes=128)
    _fill(fresh, "t", 10, start_ts=T0 + 300)  # the writer rebuilds the active segment's index
    last = list_segments(directory)[-1]
    assert len(read_entries(index_path(directory, last), OFFSET_ENTRY)) > 0
    assert [r.offset for r in _drain(fresh.reader([("t", 0, 0)]))] == list(range(310))


def test_reopening_preserves_everything(tmp_path: Path) -> None:
    log = _log(tmp_path, segment_bytes=2048)
    log.create_topic(TopicSpec("t", partitions=2, key="k", cleanup_policy="compact", retention_bytes=10**9))
    with log.producer() as producer:
        for i in range(200):
            producer.produce("t", f"{i}".encode(), f"k{i % 7}".encode(), timestamp_ns=T0 + i)
    with log.group_consumer("g", ["t"]) as consumer:
        consumer.commit({("t", 0): 5, ("t", 1): 9})
    before = {p: _drain(log.reader([("t", p, 0)])) for p in range(2)}
    log.close()

    again = _log(tmp_path, segment_bytes=2048)
    assert again.describe_topic("t") == log.describe_topic("t")
    assert {p: _drain(again.reader([("t", p, 0)])) for p in range(2)} == before
    with again.group_consumer("g", ["t"]) as consumer:
        assert (consumer.committed("t", 0), consumer.committed("t", 1)) == (5, 9)
    with again.producer() as producer:
        producer.produce("t", b"more", partition=0, timestamp_ns=T0)
    assert again.watermarks("t", 0)[1] == len(before[0]) + 1


# -- groups -----------------------------------------------------------------------------


def test_group_commit_and_resume(tmp_path: Path) -> None:
    log = _log(tmp_path)
    log.create_topic(TopicSpec("t", partitions=2))
    for p in range(2):
        _fill(log, "t", 10, partition=p)
    with log.group_consumer("g", ["t"]) as consumer:
        assert consumer.group == "g"
        assert consumer.committed("t", 0) is None
        assert sorted(consumer.assignment()) == [("t", 0), ("t", 1)]
        got = consumer.poll(6)
        consumer.commit()  # current positions
        positions = {p: consumer.position("t", p) for p in range(2)}
        assert sum(positions.values()) == 6
    assert EmbeddedLog(tmp_path / "log").offsets_store().raw("g")["offsets"]["t"] == {str(p): o for p, o in positions.items()}
    with log.group_consumer("g", ["t"]) as consumer:
        rest = _drain(consumer)
        assert len(got) + len(rest) == 20
        assert {(r.partition, r.offset) for r in got}.isdisjoint({(r.partition, r.offset) for r in rest})
        consumer.commit({("t", 0): 3})  # merges: partition 1 keeps its committed offset
        assert (consumer.committed("t", 0), consumer.committed("t", 1)) == (3, positions[1])
    with log.group_consumer("ahead", ["t"]) as consumer:  # e.g. after `log repair` truncated the partition
        consumer.commit({("t", 0): 999})
    with log.group_consumer("ahead", ["t"]) as consumer:
        assert consumer.position("t", 0) == 10  # clamped to the high watermark
    with log.group_consumer("late", ["t"], auto_offset_reset="latest") as consumer:
        assert consumer.poll(10, timeout=0.02) == []
        assert consumer.position("t", 0) == 10
    with log.group_consumer("other", ["t"]) as consumer:
        assert len(_drain(consumer)) == 20
    with pytest.raises(ConfigError):
        log.group_consumer("g", ["t"], auto_offset_reset="middle")  # type: ignore[arg-type]


# -- retention and compaction -----------------------------------------------------------


def test_retention_by_time_and_by_bytes(tmp_path: Path) -> None:
    log = _log(tmp_path, segment_bytes=1024)
    ms = 1_000_000
    log.create_topic(TopicSpec("t", retention_ms=100))
    with log.producer() as producer:  # 10 records per "ms" step; timestamps grow 1 ms per record
        for i in range(300):
            producer.produce("t", b"x" * 40, timestamp_ns=T0 + i * ms)
    directory = tmp_path / "log" / "t" / "0"
    bases = list_segments(directory)
    assert len(bases) > 5
    reader = log.reader([("t", 0, 0)])
    assert reader.poll(1)[0].offset == 0  # holds the first segment open

    result = retain(log, now_ns=T0 + 300 * ms)  # keep records newer than T0 + 200 ms
    deleted = result[("t", 0)].deleted_segments
    low, high = log.watermarks("t", 0)
    assert deleted and low == list_segments(directory)[0] and high == 300
    assert low <= 200  # nothing at or after the cutoff was deleted
    assert all(base not in list_segments(directory) for base in deleted)
    assert [r.offset for r in _drain(log.reader([("t", 0, 0)]))] == list(range(low, 300))  # seek below low -> low
    # the open reader finishes its (deleted) segment from its descriptor, then jumps to the low watermark
    assert [r.offset for r in _drain(reader)] == list(range(1, bases[1])) + list(range(low, 300))

    result = retain(log, now_ns=T0 + 10**6 * ms)  # everything is old: only the active segment remains
    assert list_segments(directory) == [bases[-1]]
    assert log.watermarks("t", 0) == (bases[-1], 300)

    log.create_topic(TopicSpec("b", retention_bytes=3000))
    _fill(log, "b", 300, size=40)
    retain(log, now_ns=T0, topic="b")
    sizes = [p.stat().st_size for p in (tmp_path / "log" / "b" / "0").glob("*.log")]
    assert sum(sizes) <= 3000 and len(sizes) >= 2
    assert log.watermarks("b", 0)[1] == 300


def test_compaction_keeps_newest_per_key_and_tombstones(tmp_path: Path) -> None:
    log = _log(tmp_path, segment_bytes=1024)
    log.create_topic(TopicSpec("s", cleanup_policy="compact"))
    expected: dict[bytes, tuple[int, bytes | None]] = {}
    with log.producer() as producer:
        for i in range(300):
            key = f"k{i % 13 if i < 250 else i % 4}".encode()  # k4..k12 end in closed segments
            value = None if i == 240 else f"value-{i}".encode()  # one tombstone (k6)
            producer.produce("s", value, key, timestamp_ns=T0 + i)
            expected[key] = (i, value)
        producer.produce("s", b"unkeyed", None, timestamp_ns=T0 + 300)
    reader = log.reader([("s", 0, 0)])
    assert reader.poll(1)[0].offset == 0  # holds the first (to be rewritten) segment open
    before = _drain(log.reader([("s", 0, 0)]))
    bases = list_segments(tmp_path / "log" / "s" / "0")
    active_base = bases[-1]

    result = compact(log)[("s", 0)]
    assert result.records_removed > 200 and result.bytes_after < result.bytes_before
    after = _drain(log.reader([("s", 0, 0)]))
    newest = {k: off for k, (off, _) in expected.items()}
    for r in after:
        if r.offset < active_base and r.key is not None:
            assert newest[r.key] == r.offset  # only the newest record of a key survives in closed segments
    assert [r.key for r in after if r.value is None] == [b"k6"]  # the tombstone is kept
    assert {r.key for r in after} == set(expected) | {None}  # every key keeps its newest record
    assert {(r.offset, r.key, r.value) for r in after} <= {(r.offset, r.key, r.value) for r in before}  # offsets kept
    assert [r for r in after if r.offset >= active_base] == [r for r in before if r.offset >= active_base]
    assert log.watermarks("s", 0)[1] == 301
    # the open reader finishes the replaced segment from its descriptor (old bytes, still valid), then reads compacted ones
    second = bases[1]
    assert [r.offset for r in _drain(reader)] == list(range(1, second)) + [r.offset for r in after if r.offset >= second]
    seeker = log.reader([("s", 0, 5)])  # a removed offset: continue at the next kept one
    assert seeker.poll(1)[0].offset == min(r.offset for r in after if r.offset >= 5)
    assert not any(p.is_damage for c in check(log) for p in c.problems)
    with pytest.raises(ConfigError, match="cleanup_policy"):
        log.create_topic(TopicSpec("d"))
        compact(log, "d")


@pytest.mark.parametrize("fsync", ["never", "batch", "interval"])
def test_every_fsync_policy_writes_rolls_and_reads_back(tmp_path: Path, fsync: str) -> None:
    log = _log(tmp_path, fsync=fsync, fsync_interval_ms=1, segment_bytes=2048)
    log.create_topic(TopicSpec("t"))
    for chunk in range(3):
        _fill(log, "t", 50, start_ts=T0 + 50 * chunk)
    log.close()
    again = _log(tmp_path, fsync=fsync)
    records = _drain(again.reader([("t", 0, 0)]))
    assert [r.timestamp_ns for r in records] == [T0 + i for i in range(150)]
    assert len(list_segments(tmp_path / "log" / "t" / "0")) > 2


def test_delivery_callback_reports_a_failed_partition(tmp_path: Path) -> None:
    log = _log(tmp_path)
    log.create_topic(TopicSpec("gone"))
    log.create_topic(TopicSpec("kept"))
    reports: list[tuple[Exception | None, Record | None]] = []
    producer = log.producer(on_delivery=lambda err, rec: reports.append((err, rec)))
    producer.produce("gone", b"lost", timestamp_ns=T0)
    producer.produce("kept", b"safe", timestamp_ns=T0)
    _log(tmp_path).delete_topic("gone")  # another handle (another process) deletes it meanwhile
    with pytest.raises(UnknownTopicError):
        producer.flush()
    failed = [(rec.topic, rec.offset, rec.value) for err, rec in reports if isinstance(err, UnknownTopicError) and rec]
    ok = [(rec.topic, rec.offset, rec.value) for err, rec in reports if err is None and rec]
    assert failed == [("gone", -1, b"lost")] and ok == [("kept", 0, b"safe")]
    assert log.watermarks("kept", 0) == (0, 1)


def test_threads_sharing_a_log_append_contiguously(tmp_path: Path) -> None:
    import threading

    log = _log(tmp_path, segment_bytes=8192)
    log.create_topic(TopicSpec("t"))

    def work(n: int) -> None:
        with log.producer() as producer:
            for i in range(2000):
                producer.produce("t", f"{n}:{i}".encode(), partition=0, timestamp_ns=i)
                if i % 97 == 0:
                    producer.flush()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = _drain(log.reader([("t", 0, 0)]))
    assert [r.offset for r in records] == list(range(8000))
    for n in range(4):
        assert [r.value for r in records if r.value.startswith(f"{n}:".encode())] == [  # type: ignore[union-attr]
            f"{n}:{i}".encode() for i in range(2000)
        ]


def test_produce_built_writes_what_produce_writes_and_produce_still_checks(tmp_path: Path) -> None:
    """The runtime's trusted batch path (no per-record type checks) gives the same log as produce() record by record."""
    records = [("t", b"k%d" % i if i % 3 else None, b"v%d" % i, 1_000 + i, (("hft.src.offset", b"%d" % i),) if i % 2 else None)
               for i in range(50)]
    out = {}
    for way in ("produce", "built"):
        log = EmbeddedLog(tmp_path / way)
        log.create_topic(TopicSpec("t", 3))
        with log.producer() as p:
            if way == "built":
                p.produce_built(records)
            else:
                for topic, key, value, ts, headers in records:
                    p.produce(topic, value, key, timestamp_ns=ts, headers=headers)
        out[way] = [(r.partition, r.offset, r.key, r.value, r.timestamp_ns, tuple(r.headers or ())) for r in log.reader(
            [("t", p, 0) for p in range(3)])]
        log.close()
    assert out["built"] == out["produce"] and len(out["built"]) == 50
    log = EmbeddedLog(tmp_path / "checks")
    log.create_topic(TopicSpec("t", 1))
    with log.producer() as p, pytest.raises(TypeError, match="header 'h' must be bytes"):
        p.produce("t", b"v", headers=[("h", "not bytes")])  # type: ignore[list-item]
    with log.producer() as p, pytest.raises(UnknownTopicError):
        p.produce_built([("nope", None, b"v", 1, None)])
