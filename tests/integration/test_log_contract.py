"""The log contract: the SAME tests against the embedded log and a real Kafka broker.

Everything above :mod:`streams.log.base` relies on these behaviours being identical on
both backends (ordering, offsets, seeks, group commits, keyed partitioning, headers,
errors). Run one backend with ``-k embedded`` or ``-k kafka``.

Timestamps are whole milliseconds here: Kafka stores milliseconds (see
:mod:`streams.log.kafka.producer`), so only ms-aligned nanosecond timestamps round-trip
exactly on both.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from streams.errors import ConfigError, UnknownPartitionError, UnknownTopicError
from streams.log import Log, Record, TopicInfo, TopicSpec, open_log
from streams.log.partitioner import partition_for
from support import poll_until

BASE_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
MS = 1_000_000
BACKENDS = ["embedded", "kafka"]


def open_backend(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Log:
    """A fresh log handle of ``backend`` (embedded in ``tmp_path``; Kafka on the session broker)."""
    if backend == "embedded":
        return open_log(f"embedded://{tmp_path / 'log'}")
    bootstrap = request.getfixturevalue("kafka_bootstrap")
    return open_log(f"kafka://{bootstrap}")


@pytest.fixture(params=[pytest.param(b, marks=[pytest.mark.kafka] if b == "kafka" else []) for b in BACKENDS])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Log]:
    """The backend under test."""
    handle = open_backend(request.param, request, tmp_path)
    try:
        yield handle
    finally:
        handle.close()


@pytest.fixture
def topic(log: Log, unique_name: Callable[[str], str]) -> Callable[..., str]:
    """Create a uniquely named topic: ``topic(partitions=3, **spec_fields) -> name``."""

    def make(partitions: int = 1, **fields: object) -> str:
        name = unique_name("c")
        log.create_topic(TopicSpec(name, partitions, **fields))  # type: ignore[arg-type]
        return name

    return make


def read_all(log: Log, name: str, start: int = 0) -> list[Record]:
    """Every record of every partition of ``name`` from ``start``, until the high watermarks are reached."""
    n = log.partitions(name)
    highs = {p: log.watermarks(name, p)[1] for p in range(n)}
    want = sum(max(0, h - start) for h in highs.values())
    out: list[Record] = []
    with log.reader([(name, p, start) for p in range(n)]) as reader:
        deadline = time.monotonic() + 15
        while len(out) < want and time.monotonic() < deadline:
            out.extend(reader.poll(1000, timeout=0.5))
    assert len(out) == want, f"read {len(out)} of {want} records from {name}"
    return out


def by_partition(records: list[Record]) -> dict[int, list[Record]]:
    parts: dict[int, list[Record]] = defaultdict(list)
    for r in records:
        parts[r.partition].append(r)
    return dict(parts)


# -- ordering, offsets, watermarks --------------------------------------------------------


def test_offsets_contiguous_and_per_partition_order(log: Log, topic: Callable[..., str]) -> None:
    name = topic(3)
    sent: list[tuple[bytes, bytes]] = []
    with log.producer() as producer:
        for i in range(90):
            key, value = f"acct-{i % 7}".encode(), f"seq-{i:03d}".encode()
            producer.produce(name, value, key, timestamp_ns=BASE_NS + i * MS)
            sent.append((key, value))
        assert producer.flush() == 90
    records = read_all(log, name)
    assert len(records) == 90
    for partition, recs in by_partition(records).items():
        assert [r.offset for r in recs] == list(range(len(recs))), f"partition {partition} offsets not contiguous"
        assert log.watermarks(name, partition) == (0, len(recs))
    # per key, values come back in the order they were produced
    for key in {k for k, _ in sent}:
        assert [r.value for r in records if r.key == key] == [v for k, v in sent if k == key]
    assert sorted((r.key, r.value) for r in records) == sorted(sent)


def test_watermarks_of_empty_and_written_partition(log: Log, topic: Callable[..., str]) -> None:
    name = topic(2)
    assert log.watermarks(name, 0) == (0, 0)
    with log.producer() as producer:
        for i in range(5):
            producer.produce(name, b"x%d" % i, partition=1)
    assert log.watermarks(name, 0) == (0, 0)
    assert log.watermarks(name, 1) == (0, 5)
    with pytest.raises(UnknownPartitionError):
        log.watermarks(name, 2)


def test_timestamps_round_trip_in_ms(log: Log, topic: Callable[..., str]) -> None:
    name = topic(1)
    stamps = [BASE_NS + i * 37 * MS for i in range(10)]
    with log.producer() as producer:
        for ts in stamps:
            producer.produce(name, b"v", timestamp_ns=ts)
    assert [r.timestamp_ns for r in read_all(log, name)] == stamps


# -- seeks ----------------------------------------------------------------------------------


def test_seek_to_any_offset(log: Log, topic: Callable[..., str]) -> None:
    name = topic(1)
    with log.producer() as producer:
        for i in range(20):
            producer.produce(name, b"v%02d" % i)
    with log.reader([(name, 0, 3)]) as reader:
        assert reader.assignment() == [(name, 0)]
        assert reader.position(name, 0) == 3
        assert poll_until(reader, 1)[0].offset == 3
        for target in (17, 0, 9, 19):
            reader.seek(name, 0, target)
            assert reader.position(name, 0) == target
            got = poll_until(reader, 20 - target)
            assert [r.offset for r in got] == list(range(target, 20))
            assert got[0].value == b"v%02d" % target
            assert reader.position(name, 0) == 20
        reader.seek(name, 0, 20)  # the end: nothing more, no error
        assert reader.poll(100, timeout=0.3) == []
        assert reader.position(name, 0) == 20


def test_seek_by_time(log: Log, topic: Callable[..., str]) -> None:
    name = topic(1)
    with log.producer() as producer:
        for i in range(10):
            producer.produce(name, b"v%d" % i, timestamp_ns=BASE_NS + i * 10 * MS)
    assert log.offset_for_time(name, 0, BASE_NS) == 0
    assert log.offset_for_time(name, 0, BASE_NS - 5 * MS) == 0
    assert log.offset_for_time(name, 0, BASE_NS + 40 * MS) == 4  # exact hit
    assert log.offset_for_time(name, 0, BASE_NS + 40 * MS + 1) == 5  # one ns later: the next record
    assert log.offset_for_time(name, 0, BASE_NS + 95 * MS) == 10  # after the last: the high watermark
    offset = log.offset_for_time(name, 0, BASE_NS + 70 * MS)
    with log.reader([(name, 0, offset)]) as reader:
        assert [r.value for r in poll_until(reader, 3)] == [b"v7", b"v8", b"v9"]


# -- groups ---------------------------------------------------------------------------------


def test_group_commit_and_resume(log: Log, topic: Callable[..., str], unique_name: Callable[[str], str]) -> None:
    name, group = topic(2), unique_name("g")
    with log.producer() as producer:
        for i in range(20):
            producer.produce(name, b"a%02d" % i, partition=0)
            producer.produce(name, b"b%02d" % i, partition=1)
    first = log.group_consumer(group, [name])
    try:
        assert first.assignment() == [(name, 0), (name, 1)]
        assert first.committed(name, 0) is None
        assert first.position(name, 0) == 0
        poll_until(first, 40)
        first.commit({(name, 0): 7, (name, 1): 12})
        assert first.committed(name, 0) == 7
        assert first.committed(name, 1) == 12
    finally:
        first.close()
    second = log.group_consumer(group, [name])
    try:
        assert second.position(name, 0) == 7
        assert second.position(name, 1) == 12
        got = by_partition(poll_until(second, 13 + 8))
        assert [r.offset for r in got[0]] == list(range(7, 20))
        assert [r.offset for r in got[1]] == list(range(12, 20))
        second.commit()  # the current positions
        assert second.committed(name, 0) == 20
        assert second.committed(name, 1) == 20
    finally:
        second.close()


def test_group_auto_offset_reset_latest(log: Log, topic: Callable[..., str], unique_name: Callable[[str], str]) -> None:
    name = topic(1)
    with log.producer() as producer:
        for i in range(5):
            producer.produce(name, b"old%d" % i)
    with log.group_consumer(unique_name("g"), [name], auto_offset_reset="latest") as consumer:
        assert consumer.position(name, 0) == 5
        with log.producer() as producer:
            producer.produce(name, b"new")
        got = poll_until(consumer, 1)
        assert [(r.offset, r.value) for r in got] == [(5, b"new")]


# -- replay ---------------------------------------------------------------------------------


def test_replay_equals_original(log: Log, topic: Callable[..., str]) -> None:
    source, target = topic(2), topic(2)
    with log.producer() as producer:
        for i in range(30):
            producer.produce(
                source,
                b"value-%d" % i,
                b"key-%d" % (i % 4),
                timestamp_ns=BASE_NS + i * MS,
                headers=(("lineage", b"src/%d" % i), ("trace", b"")),
            )
    start = 3
    original = read_all(log, source, start)
    with log.producer() as producer:
        for r in original:
            producer.produce(target, r.value, r.key, partition=r.partition, timestamp_ns=r.timestamp_ns, headers=r.headers)
    replayed = read_all(log, target)

    def content(records: list[Record]) -> list[tuple[object, ...]]:
        return sorted((r.partition, r.key, r.value, r.headers, r.timestamp_ns) for r in records)

    assert len(replayed) == len(original) > 0
    assert content(replayed) == content(original)
    for partition, recs in by_partition(replayed).items():  # same order within each partition
        assert [r.value for r in recs] == [r.value for r in by_partition(original)[partition]]


# -- keys, headers, tombstones ---------------------------------------------------------------

KEYS = [f"ACC-{i:04d}".encode() for i in range(120)] + [b"", b"\x00\xff", "ünïcødé".encode()]


def produce_keys(log: Log, name: str) -> dict[bytes, int]:
    with log.producer() as producer:
        for key in KEYS:
            producer.produce(name, b"v", key)
    return {r.key: r.partition for r in read_all(log, name) if r.key is not None}


def test_keyed_partitioning_is_murmur2(log: Log, topic: Callable[..., str]) -> None:
    name = topic(6)
    placed = produce_keys(log, name)
    assert placed == {key: partition_for(key, 6) for key in KEYS}
    assert len(set(placed.values())) == 6  # the keys really spread


@pytest.mark.kafka
def test_keyed_partitioning_equal_across_backends(
    request: pytest.FixtureRequest, tmp_path: Path, unique_name: Callable[[str], str]
) -> None:
    placements = {}
    for backend in BACKENDS:
        with open_backend(backend, request, tmp_path) as handle:
            name = unique_name("x")
            handle.create_topic(TopicSpec(name, 6))
            placements[backend] = produce_keys(handle, name)
    assert placements["embedded"] == placements["kafka"]
    assert len(placements["kafka"]) == len(KEYS)


def test_headers_null_keys_and_tombstones(log: Log, topic: Callable[..., str]) -> None:
    name = topic(1)
    headers = (("a", b"1"), ("a", b"2"), ("empty", b""), ("bin", bytes(range(256))))
    sent = [
        (None, b"no key", ()),
        (b"k", None, ()),  # tombstone
        (b"h", b"with headers", headers),
        (None, None, (("only", b"headers"),)),
        (b"big", b"x" * 100_000, ()),
    ]
    with log.producer() as producer:
        for key, value, hdrs in sent:
            producer.produce(name, value, key, headers=hdrs)
        assert producer.flush() == len(sent)
    got = read_all(log, name)
    assert [(r.key, r.value, r.headers) for r in got] == sent


def test_unkeyed_records_spread_over_partitions(log: Log, topic: Callable[..., str]) -> None:
    name = topic(4)
    with log.producer() as producer:
        for i in range(400):
            producer.produce(name, b"v%d" % i)
    counts = [log.watermarks(name, p)[1] for p in range(4)]
    assert sum(counts) == 400
    assert sum(1 for c in counts if c > 0) >= 2, counts


# -- errors and topics ---------------------------------------------------------------------


def test_unknown_topic_everywhere(log: Log, unique_name: Callable[[str], str]) -> None:
    missing = unique_name("missing")
    with log.producer() as producer, pytest.raises(UnknownTopicError) as info:
        producer.produce(missing, b"x")
    assert missing in str(info.value) and info.value.hint
    for call in (
        lambda: log.reader([(missing, 0, 0)]),
        lambda: log.group_consumer(unique_name("g"), [missing]),
        lambda: log.watermarks(missing, 0),
        lambda: log.offset_for_time(missing, 0, BASE_NS),
        lambda: log.describe_topic(missing),
        lambda: log.partitions(missing),
        lambda: log.delete_topic(missing),
    ):
        with pytest.raises(UnknownTopicError):
            call()
    assert missing not in {t.name for t in log.list_topics()}


def test_unknown_partition(log: Log, topic: Callable[..., str]) -> None:
    name = topic(2)
    with log.producer() as producer, pytest.raises(UnknownPartitionError):
        producer.produce(name, b"x", partition=2)
    with pytest.raises(UnknownPartitionError):
        log.reader([(name, 5, 0)])


def test_create_topic_idempotent_and_growth(log: Log, unique_name: Callable[[str], str]) -> None:
    name = unique_name("c")
    spec = TopicSpec(name, 2, retention_ms=86_400_000)
    assert log.create_topic(spec).action == "created"
    assert log.create_topic(spec).action == "unchanged"
    described = log.describe_topic(name)
    assert (described.partitions, described.retention_ms, described.cleanup_policy) == (2, 86_400_000, "delete")
    grown = log.create_topic(TopicSpec(name, 4, retention_ms=86_400_000))
    assert grown.action == "partitions"
    assert log.partitions(name) == 4
    with log.producer() as producer:  # the new partitions take records at once
        producer.produce(name, b"x", partition=3)
    assert log.watermarks(name, 3) == (0, 1)
    changed = log.create_topic(TopicSpec(name, 4, retention_ms=None, cleanup_policy="compact"))
    assert changed.action == "config"
    described = log.describe_topic(name)
    assert (described.retention_ms, described.cleanup_policy) == (None, "compact")
    with pytest.raises(ConfigError):
        log.create_topic(TopicSpec(name, 3))
    assert log.partitions(name) == 4


def test_delete_topic(log: Log, topic: Callable[..., str]) -> None:
    name = topic(1)
    log.delete_topic(name)
    with pytest.raises(UnknownTopicError):
        log.watermarks(name, 0)
    assert log.create_topic(TopicSpec(name, 1)).action == "created"  # the name is free again
    assert log.watermarks(name, 0) == (0, 0)


def test_list_topics_shape(log: Log, topic: Callable[..., str]) -> None:
    busy, quiet = topic(3), topic(1)
    with log.producer() as producer:
        for i in range(6):
            producer.produce(busy, b"v", partition=i % 2)
    listed = log.list_topics()
    assert all(isinstance(t, TopicInfo) for t in listed)
    names = [t.name for t in listed]
    assert names == sorted(names)
    assert not [n for n in names if n.startswith("__")]
    info = {t.name: t for t in listed}
    assert info[busy] == TopicInfo(busy, 3, end_offsets=(3, 3, 0), begin_offsets=(0, 0, 0))
    assert info[quiet] == TopicInfo(quiet, 1, end_offsets=(0,), begin_offsets=(0,))


def test_poll_waits_at_most_timeout(log: Log, topic: Callable[..., str]) -> None:
    name = topic(1)
    with log.reader([(name, 0, 0)]) as reader:
        started = time.monotonic()
        assert reader.poll(100, timeout=0.3) == []
        assert time.monotonic() - started < 2.0
        with log.producer() as producer:
            producer.produce(name, b"one")
        started = time.monotonic()
        got = reader.poll(1000, timeout=5.0)  # returns as soon as the first record is there
        while not got and time.monotonic() - started < 5:
            got = reader.poll(1000, timeout=1.0)
        assert [r.value for r in got] == [b"one"]
        assert time.monotonic() - started < 4.0
