"""Exactly-once plumbing on a real Kafka broker: transactional producer, read_committed readers, rebalances.

Covers the Kafka side of issue 6's "Exactly-once on Kafka": commit and abort (what
read_committed and read_uncommitted readers see, where the group's offsets are), fencing of a
zombie with the same transactional id, abortable errors, a read-process-write loop that
survives SIGKILLs, and the rebalance callbacks the runtime finishes its transaction in.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import confluent_kafka
import pytest
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from streams.errors import (
    BrokerUnavailableError,
    KafkaClientError,
    ProducerFencedError,
    RecordRejectedError,
    RetryableError,
    TransactionAbortableError,
)
from streams.log import Record, TopicSpec
from streams.log.kafka import KafkaLog, KafkaTransactionalProducer
from support import poll_until

pytestmark = pytest.mark.kafka
WORKER = Path(__file__).with_name("kafka_eos_worker.py")
REPO = Path(__file__).resolve().parents[2]


def fill(log: KafkaLog, topic: str, partitions: int, per_partition: int) -> list[tuple[int, bytes, bytes]]:
    """Write ``per_partition`` keyed records to each partition (non-transactionally); return them."""
    data = [(p, b"k%d" % (i % 7), b"p%d-%06d" % (p, i)) for p in range(partitions) for i in range(per_partition)]
    with log.producer() as producer:
        for p, key, value in data:
            producer.produce(topic, value, key, partition=p)
    return data


def read_all(log: KafkaLog, topic: str, *, read_committed: bool = True, settle: float = 1.0) -> list[Record]:
    """Every record of ``topic`` a reader of that isolation level returns (polls until quiet for ``settle`` s)."""
    n = log.partitions(topic)
    out: list[Record] = []
    with log.reader([(topic, p, 0) for p in range(n)], read_committed=read_committed) as reader:
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < settle:
            batch = reader.poll(1000, timeout=0.2)
            if batch:
                out.extend(batch)
                quiet_since = time.monotonic()
    return out


def consume_all(consumer, n: int) -> list[Record]:  # type: ignore[no-untyped-def]
    return poll_until(consumer, n, seconds=15)


# -- commit and abort ---------------------------------------------------------------------


def test_commit_publishes_records_and_offsets_together(kafka_log: KafkaLog, unique_name: Callable[[str], str]) -> None:
    source, sink, group = unique_name("in"), unique_name("out"), unique_name("g")
    kafka_log.create_topic(TopicSpec(source, 2))
    kafka_log.create_topic(TopicSpec(sink, 2))
    data = fill(kafka_log, source, 2, 20)
    with (
        kafka_log.transactional_producer(unique_name("tx")) as producer,
        kafka_log.group_consumer(group, [source]) as consumer,
    ):
        assert isinstance(producer, KafkaTransactionalProducer) and not producer.in_transaction
        records = consume_all(consumer, len(data))
        producer.begin()
        assert producer.in_transaction
        for r in records:
            producer.produce(sink, r.value, r.key, partition=r.partition)
        offsets = {tp: consumer.position(*tp) for tp in consumer.assignment()}
        assert offsets == {(source, 0): 20, (source, 1): 20}
        # Before the commit nothing is visible to read_committed, and the group has no offsets.
        assert read_all(kafka_log, sink, settle=0.5) == []
        assert kafka_log.group_offsets(group) == {}
        producer.commit(offsets, consumer)
        assert not producer.in_transaction
        assert {tp: consumer.committed(*tp) for tp in offsets} == offsets
    out = read_all(kafka_log, sink)
    assert sorted((r.partition, r.key, r.value) for r in out) == sorted(data)
    assert kafka_log.group_offsets(group) == offsets
    assert kafka_log.group_offsets(group, [(source, 1)]) == {(source, 1): 20}
    # LSO = high watermark (20 records + the commit marker) once nothing is open.
    assert kafka_log.end_offsets([(sink, 0), (sink, 1)]) == {(sink, 0): 21, (sink, 1): 21}
    # A consumer of the output ends *past* the marker: committing positions leaves no lag of 1.
    with kafka_log.group_consumer(unique_name("g"), [sink]) as downstream:
        consume_all(downstream, len(data))
        deadline = time.monotonic() + 5
        while downstream.position(sink, 0) < 21 and time.monotonic() < deadline:
            assert downstream.poll(10, timeout=0.1) == []
        assert [downstream.position(sink, p) for p in (0, 1)] == [21, 21]


def test_abort_hides_records_and_keeps_offsets(kafka_log: KafkaLog, unique_name: Callable[[str], str]) -> None:
    source, sink, group = unique_name("in"), unique_name("out"), unique_name("g")
    kafka_log.create_topic(TopicSpec(source, 1))
    kafka_log.create_topic(TopicSpec(sink, 1))
    fill(kafka_log, source, 1, 10)
    with (
        kafka_log.transactional_producer(unique_name("tx")) as producer,
        kafka_log.group_consumer(group, [source]) as consumer,
    ):
        records = consume_all(consumer, 10)
        producer.begin()  # commit the first 3 inputs
        for r in records[:3]:
            producer.produce(sink, b"ok-" + r.value, r.key)
        producer.commit({(source, 0): 3}, consumer)

        producer.begin()  # the rest, then a forced abort after the records reached the broker
        for r in records[3:]:
            producer.produce(sink, b"aborted-" + r.value, r.key)
        assert producer.flush() == 7
        # While it is open: the last stable offset stops at its first record, the high watermark does not.
        assert kafka_log.end_offsets([(sink, 0)]) == {(sink, 0): 4}
        assert kafka_log.end_offsets([(sink, 0)], read_committed=False) == {(sink, 0): 11}
        assert kafka_log.watermarks(sink, 0) == (0, 4)
        producer.abort()
        assert not producer.in_transaction
        producer.abort()  # no-op without an open transaction
        assert kafka_log.group_offsets(group) == {(source, 0): 3}
        assert consumer.committed(source, 0) == 3

        producer.begin()  # the log goes on after an abort
        producer.produce(sink, b"after-abort", None)
        producer.commit()
    committed = [r.value for r in read_all(kafka_log, sink)]
    assert committed == [b"ok-" + r.value for r in records[:3]] + [b"after-abort"]
    uncommitted = [r.value for r in read_all(kafka_log, sink, read_committed=False)]
    assert uncommitted == committed[:3] + [b"aborted-" + r.value for r in records[3:]] + [b"after-abort"]
    assert kafka_log.group_offsets(group) == {(source, 0): 3}


def test_a_rejected_record_fails_the_transaction(
    kafka_log: KafkaLog, kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    """The broker refuses a record: commit raises (not retryable: the same record fails again), abort cleans up."""
    sink = unique_name("out")
    kafka_log.create_topic(TopicSpec(sink, 1))
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    limit = ConfigResource(
        ConfigResource.Type.TOPIC,
        sink,
        incremental_configs=[ConfigEntry("max.message.bytes", "2000", incremental_operation=AlterConfigOpType.SET)],
    )
    for fut in admin.incremental_alter_configs([limit]).values():
        fut.result(10)
    with kafka_log.transactional_producer(unique_name("tx")) as producer:
        producer.begin()
        producer.produce(sink, b"small-1")
        producer.produce(sink, b"x" * 10_000)  # over the topic's limit
        with pytest.raises(RecordRejectedError) as info:
            producer.commit()
        assert not isinstance(info.value, RetryableError)
        assert sink in str(info.value)
        assert producer.in_transaction  # still open: the caller aborts
        producer.abort()
        # The runtime's loop: abort on an abortable error and do the batch again. librdkafka 2.16
        # fails the first transaction after this abort too ("skipped sequence numbers, requires
        # epoch bump"); that abort bumps the epoch and the retry commits.
        attempts = 0
        while True:
            attempts += 1
            producer.begin()
            producer.produce(sink, b"small-2")
            try:
                producer.commit()
                break
            except TransactionAbortableError:
                producer.abort()
                assert attempts < 3
    assert [r.value for r in read_all(kafka_log, sink)] == [b"small-2"]
    assert [r.value for r in read_all(kafka_log, sink, read_committed=False)][-1] == b"small-2"


def test_produce_outside_a_transaction_is_refused(kafka_log: KafkaLog, unique_name: Callable[[str], str]) -> None:
    sink = unique_name("out")
    kafka_log.create_topic(TopicSpec(sink, 1))
    with kafka_log.transactional_producer(unique_name("tx")) as producer:
        with pytest.raises(KafkaClientError, match="no open transaction") as info:
            producer.produce(sink, b"x")
        assert "begin()" in info.value.hint
        with pytest.raises(KafkaClientError, match="no open transaction"):
            producer.commit()
        producer.begin()
        with pytest.raises(KafkaClientError, match="already has an open transaction"):
            producer.begin()
        assert producer.flush() == 0
        producer.abort()


# -- fencing ------------------------------------------------------------------------------


def test_a_new_producer_fences_the_old_one(kafka_log: KafkaLog, unique_name: Callable[[str], str]) -> None:
    sink, txid = unique_name("out"), unique_name("tx")
    kafka_log.create_topic(TopicSpec(sink, 1))
    a = kafka_log.transactional_producer(txid)
    a.begin()
    a.produce(sink, b"zombie-1")
    a.flush()
    b = kafka_log.transactional_producer(txid)  # fences a, aborts its open transaction
    try:
        with pytest.raises(ProducerFencedError) as info:
            a.produce(sink, b"zombie-2")
            a.commit()
        assert txid in str(info.value) and "fenced" in str(info.value)
        assert "instance" in info.value.hint
        with pytest.raises(ProducerFencedError):
            a.begin()
        b.begin()
        b.produce(sink, b"survivor")
        b.commit()
        b.begin()
        b.produce(sink, b"survivor-2")
        b.commit()
    finally:
        a.close()  # does not raise: a fenced producer is just released
        b.close()
    assert [r.value for r in read_all(kafka_log, sink)] == [b"survivor", b"survivor-2"]


def abandon_mid_commit(log: KafkaLog, source: str, sink: str, group: str, txid: str) -> confluent_kafka.Producer:
    """Play a process killed between send_offsets_to_transaction and commit (raw confluent-kafka).

    Returns the zombie producer: keep it referenced (never used again), as a stalled process would.
    """
    conf = log.client_config()
    # The zombie, with raw confluent-kafka so it can stop exactly after send_offsets_to_transaction.
    zc = confluent_kafka.Consumer({**conf, "group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    zc.subscribe([source])
    deadline = time.monotonic() + 15
    while not zc.assignment() and time.monotonic() < deadline:
        zc.poll(0.1)
    zp = confluent_kafka.Producer({**conf, "transactional.id": txid})
    zp.init_transactions(10)
    zp.begin_transaction()
    zp.produce(sink, b"zombie", partition=0)
    zp.flush(10)
    zp.send_offsets_to_transaction([confluent_kafka.TopicPartition(source, 0, 5)], zc.consumer_group_metadata(), 10)
    zc.close()  # leaves the group; the transaction (records + offsets) stays open
    return zp


def test_a_new_producer_settles_offsets_a_zombie_sent(kafka_log: KafkaLog, unique_name: Callable[[str], str]) -> None:
    """A process killed between send_offsets and commit: its successor's init aborts both."""
    source, sink, group, txid = unique_name("in"), unique_name("out"), unique_name("g"), unique_name("tx")
    kafka_log.create_topic(TopicSpec(source, 1))
    kafka_log.create_topic(TopicSpec(sink, 1))
    fill(kafka_log, source, 1, 5)
    zombie = abandon_mid_commit(kafka_log, source, sink, group, txid)
    asked = time.monotonic()
    assert kafka_log.group_offsets(group) == {}  # the open transaction's offsets: not counted, not waited for
    assert time.monotonic() - asked < 2
    started = time.monotonic()
    with kafka_log.transactional_producer(txid) as producer:
        with kafka_log.group_consumer(group, [source]) as consumer:
            assert consumer.committed(source, 0) is None  # the zombie's offsets were aborted
            assert time.monotonic() - started < 10  # not the 60 s transaction timeout of the zombie
            records = consume_all(consumer, 5)
            producer.begin()
            for r in records:
                producer.produce(sink, r.value, r.key)
            producer.commit({(source, 0): 5}, consumer)
    assert [r.value for r in read_all(kafka_log, sink)] == [b"p0-%06d" % i for i in range(5)]
    assert kafka_log.group_offsets(group) == {(source, 0): 5}
    del zombie


def test_joining_before_the_successor_producer_waits_and_says_why(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch, unique_name: Callable[[str], str]
) -> None:
    """The wrong order (group consumer first): the stable offset fetch waits on the open transaction."""
    monkeypatch.setenv("HFTSTREAM_KAFKA_TIMEOUT_S", "2")
    source, sink, group, txid = unique_name("in"), unique_name("out"), unique_name("g"), unique_name("tx")
    with KafkaLog(kafka_bootstrap) as log:
        log.create_topic(TopicSpec(source, 1))
        log.create_topic(TopicSpec(sink, 1))
        fill(log, source, 1, 5)
        zombie = abandon_mid_commit(log, source, sink, group, txid)
        with pytest.raises(BrokerUnavailableError) as info:
            log.group_consumer(group, [source])
        assert "open the transactional producer" in info.value.hint
        with log.transactional_producer(txid), log.group_consumer(group, [source]) as consumer:  # the right order
            assert consumer.committed(source, 0) is None
        del zombie


# -- crash and restart --------------------------------------------------------------------


def run_worker(bootstrap: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
    return subprocess.Popen(
        [sys.executable, str(WORKER), bootstrap, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_read_process_write_survives_sigkill(kafka_log: KafkaLog, kafka_bootstrap: str, unique_name: Callable[[str], str]) -> None:
    source, sink, group, txid = unique_name("in"), unique_name("out"), unique_name("g"), unique_name("tx")
    kafka_log.create_topic(TopicSpec(source, 3))
    kafka_log.create_topic(TopicSpec(sink, 3))
    data = fill(kafka_log, source, 3, 1500)
    seed = int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    started = time.monotonic()
    progress = [0]
    for _ in range(4):
        # Kill after a random number of commits, then a random few ms more: mid-batch, between
        # produce and commit, inside commit or just after it.
        worker = run_worker(kafka_bootstrap, source, sink, group, txid, "20")
        assert worker.stdout is not None
        for _ in range(rng.randint(1, 40)):
            line = worker.stdout.readline()
            assert line.startswith("committed"), f"worker ended early (seed {seed}): {line!r} {worker.stderr.read()[-2000:] if worker.stderr else ''}"
        time.sleep(rng.uniform(0, 0.01))
        worker.send_signal(signal.SIGKILL)
        worker.communicate()
        progress.append(sum(kafka_log.group_offsets(group).values()))
    assert progress == sorted(progress) and 0 < progress[-1] < len(data), (seed, progress)
    final = run_worker(kafka_bootstrap, source, sink, group, txid, "20")
    out, err = final.communicate(timeout=60)
    assert final.returncode == 0, err[-2000:]
    elapsed = time.monotonic() - started
    got = read_all(kafka_log, sink)
    assert sorted((r.partition, r.key, r.value) for r in got) == sorted(data), seed  # exactly once: nothing lost, nothing doubled
    for r in got:  # and each one from the input record its lineage names
        headers = dict(r.headers)
        assert int(headers["src.partition"]) == r.partition
        assert r.value == b"p%d-%06d" % (r.partition, int(headers["src.offset"]))
    assert kafka_log.group_offsets(group) == {(source, p): 1500 for p in range(3)}
    # Killed attempts left records on the log that only read_uncommitted sees.
    assert len(read_all(kafka_log, sink, read_committed=False)) >= len(data)
    assert elapsed < 40, f"took {elapsed:.1f}s"


# -- rebalance callbacks --------------------------------------------------------------------


class Events:
    """Records rebalance callbacks of one member, and what it still owned inside on_revoke."""

    def __init__(self) -> None:
        self.log: list[tuple[str, list[tuple[str, int]]]] = []
        self.owned_in_revoke: list[list[tuple[str, int]]] = []
        self.consumer = None

    def assign(self, partitions: list[tuple[str, int]]) -> None:
        self.log.append(("assign", partitions))

    def revoke(self, partitions: list[tuple[str, int]]) -> None:
        self.log.append(("revoke", partitions))
        if self.consumer is not None:
            self.owned_in_revoke.append(self.consumer.assignment())


def keep_polling(consumer, stop: threading.Event, errors: list[BaseException]) -> threading.Thread:  # type: ignore[no-untyped-def]
    def run() -> None:
        try:
            while not stop.is_set():
                consumer.poll(100, timeout=0.05)
        except BaseException as exc:  # surfaced by the test
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_rebalance_callbacks_get_the_right_partitions(kafka_log: KafkaLog, unique_name: Callable[[str], str]) -> None:
    orders, commands, group = unique_name("orders"), unique_name("cmds"), unique_name("g")
    for t in (orders, commands):
        kafka_log.create_topic(TopicSpec(t, 2))
    everything = sorted((t, p) for t in (orders, commands) for p in range(2))
    a_events, b_events = Events(), Events()
    a = kafka_log.group_consumer(group, [orders, commands], on_assign=a_events.assign, on_revoke=a_events.revoke)
    a_events.consumer = a
    assert a_events.log == [("assign", everything)]
    stop, errors = threading.Event(), []
    poller = keep_polling(a, stop, errors)
    b = kafka_log.group_consumer(group, [orders, commands], on_assign=b_events.assign, on_revoke=b_events.revoke)
    b_events.consumer = b
    deadline = time.monotonic() + 15
    while len(a_events.log) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    poller.join()
    assert not errors
    # Eager protocol: a gives up everything (still owning it inside the callback), then gets one
    # partition number of *both* topics (range assignor: co-partitioned), b gets the other.
    assert a_events.log[1] == ("revoke", everything)
    assert a_events.owned_in_revoke[0] == everything
    a_half, b_half = a_events.log[2][1], a.assignment()
    assert a_events.log[2][0] == "assign" and a_half == b_half
    assert b_events.log == [("assign", b.assignment())]
    assert sorted(a_half + b.assignment()) == everything
    for half in (a_half, b.assignment()):
        assert len({p for _, p in half}) == 1 and {t for t, _ in half} == {orders, commands}

    # b leaves: b's callback gets its half before it goes; a gets everything back.
    stop, errors = threading.Event(), []
    poller = keep_polling(a, stop, errors)
    b.close()
    deadline = time.monotonic() + 15
    # (Only the polling thread may touch a meanwhile: assignment() from another thread during
    # a rebalance can block forever in librdkafka.)
    while a_events.log[-1] != ("assign", everything) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    poller.join()
    assert not errors
    assert b_events.log[-1] == ("revoke", b_events.log[0][1])
    assert a_events.log[-2:] == [("revoke", a_half), ("assign", everything)]
    assert a_events.owned_in_revoke[-1] == a_half
    assert a.assignment() == everything
    a.close()


def test_revoke_callback_can_commit_the_transaction_in_flight(kafka_log: KafkaLog, unique_name: Callable[[str], str]) -> None:
    """The runtime's pattern: inside on_revoke, commit outputs + offsets of the partitions going away."""
    source, sink, group = unique_name("in"), unique_name("out"), unique_name("g")
    kafka_log.create_topic(TopicSpec(source, 2))
    kafka_log.create_topic(TopicSpec(sink, 2))
    fill(kafka_log, source, 2, 10)
    producer = kafka_log.transactional_producer(unique_name("tx"))
    state: dict[str, object] = {}

    def on_revoke(partitions: list[tuple[str, int]]) -> None:
        consumer = state["consumer"]
        if producer.in_transaction:
            offsets = {tp: consumer.position(*tp) for tp in partitions}  # type: ignore[attr-defined]
            producer.commit(offsets, consumer)  # type: ignore[arg-type]
            state["committed"] = offsets

    a = kafka_log.group_consumer(group, [source], on_revoke=on_revoke)
    state["consumer"] = a
    records = consume_all(a, 20)
    producer.begin()
    for r in records:
        producer.produce(sink, r.value, r.key, partition=r.partition)
    stop, errors = threading.Event(), []
    poller = keep_polling(a, stop, errors)
    b = kafka_log.group_consumer(group, [source])  # triggers the rebalance; a commits in on_revoke
    deadline = time.monotonic() + 15
    while "committed" not in state and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    poller.join()
    assert not errors
    assert state["committed"] == {(source, 0): 10, (source, 1): 10}
    assert not producer.in_transaction
    # b starts its partition where a's transaction left it: nothing to re-read.
    (tp,) = b.assignment()
    assert b.committed(*tp) == 10 and b.poll(100, timeout=0.5) == []
    assert len(read_all(kafka_log, sink)) == 20
    for c in (a, b):
        c.close()
    producer.close()


def test_reader_end_offset_waits_for_open_transactions(kafka_log: KafkaLog, unique_name: Callable[[str], str]) -> None:
    """end_offset() is the cached high watermark: position reaches it only when no transaction is open."""
    topic = unique_name("t")
    kafka_log.create_topic(TopicSpec(topic, 1))
    with kafka_log.transactional_producer(unique_name("tx")) as producer:
        producer.begin()
        for i in range(3):
            producer.produce(topic, b"c%d" % i)
        producer.commit()  # offsets 0-2, marker 3
        producer.begin()
        producer.produce(topic, b"open-0")
        producer.produce(topic, b"open-1")
        producer.flush()  # offsets 4-5, still open
        with kafka_log.reader([(topic, 0, 0)]) as reader:
            assert [r.value for r in poll_until(reader, 3)] == [b"c0", b"c1", b"c2"]
            deadline = time.monotonic() + 5
            while reader.end_offset(topic, 0) != 6 and time.monotonic() < deadline:
                assert reader.poll(10, timeout=0.1) == []
            assert reader.end_offset(topic, 0) == 6
            assert reader.position(topic, 0) == 4 < reader.end_offset(topic, 0)  # not caught up: 4-5 may commit
            assert kafka_log.end_offsets([(topic, 0)]) == {(topic, 0): 4}  # the LSO itself
            producer.commit()
            assert [r.value for r in poll_until(reader, 2)] == [b"open-0", b"open-1"]
            deadline = time.monotonic() + 5
            while reader.position(topic, 0) < 7 and time.monotonic() < deadline:
                reader.poll(10, timeout=0.1)
            assert reader.position(topic, 0) == reader.end_offset(topic, 0) == 7
