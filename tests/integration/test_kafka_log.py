"""KafkaLog behaviour beyond the shared contract: failures, secrets, backpressure, groups, ms timestamps.

All against a real broker (the session broker, or a private one where a test kills it).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from types import ModuleType

import pytest
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from confluent_kafka import TopicPartition as KTP

from streams.errors import (
    BrokerUnavailableError,
    DeliveryError,
    RecordRejectedError,
    RetryableError,
    UnknownTopicError,
)
from streams.log import Record, TopicSpec, open_log
from streams.log.kafka import KafkaLog
from support import poll_until

pytestmark = pytest.mark.kafka
BASE_NS = 1_767_225_600_000_000_000
SECRET = "pw-9f3c1e-do-not-print"


def dead_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_open_log_gives_kafka_log(kafka_bootstrap: str) -> None:
    log = open_log(f"kafka://{kafka_bootstrap}")
    assert isinstance(log, KafkaLog)
    assert log.bootstrap == kafka_bootstrap and log.url == f"kafka://{kafka_bootstrap}"
    multi = open_log("kafka://127.0.0.1:1,127.0.0.1:2")
    assert isinstance(multi, KafkaLog) and multi.bootstrap == "127.0.0.1:1,127.0.0.1:2"


def test_secrets_never_in_repr_errors_or_logs(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("HFTSTREAM_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("HFTSTREAM_KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("HFTSTREAM_KAFKA_SASL_USERNAME", "trader")
    monkeypatch.setenv("HFTSTREAM_KAFKA_SASL_PASSWORD", SECRET)
    monkeypatch.setenv("HFTSTREAM_KAFKA_TIMEOUT_S", "1.5")
    caplog.set_level(logging.DEBUG)
    bootstrap = f"127.0.0.1:{dead_port()}"
    log = KafkaLog(bootstrap)
    assert log.client_config()["sasl.password"] == SECRET  # the setting really is in force
    texts = [repr(log), str(log), repr(vars(log))]
    producer = None
    with pytest.raises(BrokerUnavailableError) as info:
        producer = log.producer()
        texts.append(repr(producer))
        producer.produce("orders", b"x")
    texts += [str(info.value), info.value.hint, repr(info.value)]
    with pytest.raises(BrokerUnavailableError) as info2:
        log.list_topics()
    texts += [str(info2.value), info2.value.hint, caplog.text]
    assert bootstrap in str(info.value)
    for text in texts:
        assert SECRET not in text
    log.close()


def test_unreachable_broker_fails_fast_with_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HFTSTREAM_KAFKA_TIMEOUT_S", "1")
    bootstrap = f"127.0.0.1:{dead_port()}"
    log = KafkaLog(bootstrap)
    for call in (log.list_topics, lambda: log.watermarks("t", 0), lambda: log.create_topic(TopicSpec("t"))):
        started = time.monotonic()
        with pytest.raises(BrokerUnavailableError) as info:
            call()
        assert time.monotonic() - started < 5
        assert bootstrap in str(info.value)
        assert "hftstream dev kafka" in info.value.hint
        assert isinstance(info.value, RetryableError)
    log.close()


def test_flush_raises_when_the_broker_rejects_a_record(
    kafka_log: KafkaLog, kafka_bootstrap: str, unique_topic: str
) -> None:
    kafka_log.create_topic(TopicSpec(unique_topic, 2))
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    limit = ConfigResource(
        ConfigResource.Type.TOPIC,
        unique_topic,
        incremental_configs=[ConfigEntry("max.message.bytes", "2000", incremental_operation=AlterConfigOpType.SET)],
    )
    for fut in admin.incremental_alter_configs([limit]).values():
        fut.result(10)
    producer = kafka_log.producer()
    producer.produce(unique_topic, b"x" * 10_000, partition=0)  # over the topic's limit
    producer.produce(unique_topic, b"small", partition=1)
    with pytest.raises(RecordRejectedError) as info:
        producer.flush(10)
    assert "1 record(s) failed (1 delivered)" in str(info.value)
    assert unique_topic in str(info.value)
    assert not isinstance(info.value, RetryableError)  # retrying a too-large record cannot help
    producer.produce(unique_topic, b"fine", partition=1)
    assert producer.flush(10) == 1  # the failure was reported once; the producer goes on
    assert kafka_log.watermarks(unique_topic, 0) == (0, 0)
    assert kafka_log.watermarks(unique_topic, 1) == (0, 2)


def test_flush_raises_when_the_broker_dies(kafka_launcher: ModuleType) -> None:
    handle = kafka_launcher.start_broker()
    try:
        log = KafkaLog(handle.bootstrap)
        log.create_topic(TopicSpec("doomed", 1))
        producer = log.producer()
        producer.produce("doomed", b"before")
        assert producer.flush(10) == 1
        handle.stop(timeout=0)  # SIGKILL: the broker crashes
        producer.produce("doomed", b"after")  # metadata is cached: queued, never acknowledged
        started = time.monotonic()
        with pytest.raises(DeliveryError) as info:
            producer.flush(2)
        assert time.monotonic() - started < 5
        assert "not acknowledged" in str(info.value) and handle.bootstrap in str(info.value)
        assert isinstance(info.value, RetryableError)
    finally:
        handle.stop()


def test_backpressure_blocks_instead_of_dropping(kafka_log: KafkaLog, unique_topic: str) -> None:
    kafka_log.create_topic(TopicSpec(unique_topic, 2))
    count = 130_000  # more than librdkafka's default queue (100,000 messages): produce must wait for room
    with kafka_log.producer() as producer:
        for i in range(count):
            producer.produce(unique_topic, b"%d" % i)
        assert producer.flush() == count
    assert sum(kafka_log.watermarks(unique_topic, p)[1] for p in range(2)) == count


def test_delivery_callback_gets_each_record(kafka_log: KafkaLog, unique_topic: str) -> None:
    kafka_log.create_topic(TopicSpec(unique_topic, 3))
    reports: list[tuple[Exception | None, Record | None]] = []
    with kafka_log.producer(on_delivery=lambda err, rec: reports.append((err, rec))) as producer:
        for i in range(12):
            producer.produce(unique_topic, b"v%d" % i, b"k%d" % i, timestamp_ns=BASE_NS + i * 1_000_000)
        assert producer.flush() == 12
    assert [err for err, _ in reports] == [None] * 12
    records = [rec for _, rec in reports if rec is not None]
    assert sorted(r.value for r in records) == sorted(b"v%d" % i for i in range(12))
    for rec in records:
        assert rec.topic == unique_topic and rec.offset >= 0
        assert rec.timestamp_ns == BASE_NS + int(rec.value[1:]) * 1_000_000


def test_timestamps_are_truncated_to_milliseconds(kafka_log: KafkaLog, unique_topic: str) -> None:
    kafka_log.create_topic(TopicSpec(unique_topic, 1))
    with kafka_log.producer() as producer:
        producer.produce(unique_topic, b"v", timestamp_ns=BASE_NS + 1_999_999)
    with kafka_log.reader([(unique_topic, 0, 0)]) as reader:
        (rec,) = poll_until(reader, 1)
    assert rec.timestamp_ns == BASE_NS + 1_000_000
    assert kafka_log.offset_for_time(unique_topic, 0, BASE_NS + 1_000_001) == 1  # rounds up: after the record


def test_a_record_stamped_at_the_epoch_stays_before_everything(kafka_log: KafkaLog, unique_topic: str) -> None:
    """librdkafka reads a timestamp of 0 as "now": the epoch's first millisecond is stored as 1 ms instead."""
    kafka_log.create_topic(TopicSpec(unique_topic, 1))
    with kafka_log.producer() as producer:
        producer.produce(unique_topic, b"epoch", timestamp_ns=0)
        producer.produce(unique_topic, b"sub-ms", timestamp_ns=999_999)
        producer.produce(unique_topic, b"later", timestamp_ns=BASE_NS)
    with kafka_log.reader([(unique_topic, 0, 0)]) as reader:
        got = poll_until(reader, 3)
    assert [(r.value, r.timestamp_ns) for r in got] == [(b"epoch", 1_000_000), (b"sub-ms", 1_000_000), (b"later", BASE_NS)]


def test_describe_topic_leaves_yaml_only_fields_empty(kafka_log: KafkaLog, unique_topic: str) -> None:
    kafka_log.create_topic(TopicSpec(unique_topic, 2, key="account", value_schema="Order", description="d"))
    spec = kafka_log.describe_topic(unique_topic)
    assert (spec.key, spec.value_schema, spec.description) == (None, None, "")
    assert spec.partitions == 2 and spec.retention_ms is None and spec.retention_bytes is None


def test_internal_topics_are_hidden(kafka_log: KafkaLog, unique_topic: str, unique_name: Callable[[str], str]) -> None:
    kafka_log.create_topic(TopicSpec(unique_topic, 1))
    with kafka_log.producer() as producer:
        producer.produce(unique_topic, b"v")
    with kafka_log.group_consumer(unique_name("g"), [unique_topic]) as consumer:
        consumer.poll(10, timeout=1.0)
        consumer.commit()  # makes sure __consumer_offsets exists on the broker
    names = [t.name for t in kafka_log.list_topics()]
    assert unique_topic in names
    assert "__consumer_offsets" not in names


def test_two_group_members_split_the_partitions(
    kafka_log: KafkaLog, unique_topic: str, unique_name: Callable[[str], str]
) -> None:
    kafka_log.create_topic(TopicSpec(unique_topic, 4))
    group = unique_name("g")
    first = kafka_log.group_consumer(group, [unique_topic])
    assert first.assignment() == [(unique_topic, p) for p in range(4)]
    # Members run independently, each in its own thread (a consumer is not thread-safe): the
    # first keeps polling, which is how it takes part in the rebalance the second one starts.
    stop = threading.Event()
    seen: dict[str, set[tuple[str, int]]] = {"first": set()}

    def keep_polling() -> None:
        while not stop.is_set():
            first.poll(10, timeout=0.1)
            seen["first"] = set(first.assignment())

    poller = threading.Thread(target=keep_polling, daemon=True)
    poller.start()
    try:
        second = kafka_log.group_consumer(group, [unique_topic])
        deadline = time.monotonic() + 15
        a, b = seen["first"], set(second.assignment())
        while time.monotonic() < deadline and not (a and b and len(a | b) == 4 and not a & b):
            second.poll(10, timeout=0.1)
            a, b = seen["first"], set(second.assignment())
        stop.set()
        poller.join(5)
        assert a and b, (a, b)
        assert not a & b and sorted(a | b) == [(unique_topic, p) for p in range(4)]
        # the range assignor: contiguous halves, so co-partitioned topics meet in one member
        assert sorted(a) in ([(unique_topic, 0), (unique_topic, 1)], [(unique_topic, 2), (unique_topic, 3)])
        second.close()
    finally:
        stop.set()
        poller.join(5)
        first.close()


def test_deleted_topic_after_caching_is_reported(kafka_log: KafkaLog, unique_topic: str) -> None:
    kafka_log.create_topic(TopicSpec(unique_topic, 1))
    producer = kafka_log.producer()
    producer.produce(unique_topic, b"v")
    assert producer.flush(10) == 1
    kafka_log.delete_topic(unique_topic)
    with pytest.raises(UnknownTopicError):
        producer.produce(unique_topic, b"gone")
        producer.flush(10)


def test_reader_clamps_out_of_range_offsets(kafka_log: KafkaLog, kafka_bootstrap: str, unique_topic: str) -> None:
    kafka_log.create_topic(TopicSpec(unique_topic, 2))
    with kafka_log.producer() as producer:
        for i in range(10):
            producer.produce(unique_topic, b"v%d" % i, partition=0)
            producer.produce(unique_topic, b"w%d" % i, partition=1)
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for fut in admin.delete_records([KTP(unique_topic, 0, 4)], request_timeout=10).values():
        fut.result(10)  # retention-like: offsets 0-3 of partition 0 are gone
    assert kafka_log.watermarks(unique_topic, 0) == (4, 10)
    with kafka_log.reader([(unique_topic, 0, 1), (unique_topic, 1, 25)]) as reader:
        got = poll_until(reader, 6)
        assert [(r.partition, r.offset) for r in got] == [(0, o) for o in range(4, 10)]  # from the low watermark
        assert reader.position(unique_topic, 1) == 10  # beyond the end: the end, not a restart from 0
        with kafka_log.producer() as producer:
            producer.produce(unique_topic, b"w10", partition=1)
        more = poll_until(reader, 1)
        assert [(r.partition, r.offset, r.value) for r in more] == [(1, 10, b"w10")]
