"""Kafka backend overhead: ``KafkaLog`` producer/reader against raw confluent-kafka, same broker, same run.

``run(quick=False, bootstrap=None)`` starts its own KRaft broker (infra/kafka/launcher.py)
unless ``bootstrap`` is given, produces N records of 100 bytes (16-byte keys) through
``KafkaLog.producer()`` and through a raw ``confluent_kafka.Producer`` built from the same
librdkafka configuration, then reads them back through ``KafkaLog.reader()`` and through a
raw ``Consumer.consume(1000)`` loop (same configuration) that extracts the same seven fields a
``Record`` carries -- the target row -- and, for transparency, a bare raw loop that touches only
each message's error and value (DECISIONS.md #14). Rounds alternate subject and
limit; the best round of each counts, so a noisy neighbour hurts both the same way.

Run alone: ``python tests/benchmarks/bench_kafka.py [--quick] [--bootstrap HOST:PORT]``.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import confluent_kafka

from streams.cli.dev import load_launcher
from streams.log import TopicSpec
from streams.log.kafka import KafkaLog, consumer_config, producer_config

VALUE_BYTES = 100
PARTITIONS = 3
TARGET = 0.7


def _records(n: int) -> list[tuple[bytes, bytes]]:
    """Deterministic keyed records: 16-byte keys over 64 accounts, 100-byte values."""
    return [(b"account-%08d" % (i % 64), (b"%012d" % i).ljust(VALUE_BYTES, b"x")) for i in range(n)]


def _produce_subject(log: KafkaLog, topic: str, data: list[tuple[bytes, bytes]]) -> float:
    producer = log.producer()
    produce = producer.produce
    started = time.perf_counter()
    for key, value in data:
        produce(topic, value, key)
    assert producer.flush() == len(data)
    return time.perf_counter() - started


def _produce_raw(conf: dict[str, Any], topic: str, data: list[tuple[bytes, bytes]]) -> float:
    producer = confluent_kafka.Producer(conf)
    produce, poll = producer.produce, producer.poll
    started = time.perf_counter()
    for key, value in data:
        try:
            produce(topic, value, key)
        except BufferError:  # queue full: wait for acknowledgements, as KafkaProducer does
            while True:
                poll(0.05)
                try:
                    produce(topic, value, key)
                    break
                except BufferError:
                    continue
    assert producer.flush() == 0
    return time.perf_counter() - started


def _drain(poll: Callable[[], int], n: int, who: str) -> float:
    """Seconds until ``poll()`` (records per call) has returned ``n`` records in total (60 s at most)."""
    got = 0
    started = time.perf_counter()
    deadline = started + 60
    while got < n and time.perf_counter() < deadline:
        got += poll()
    elapsed = time.perf_counter() - started
    assert got == n, f"{who} got {got} of {n}"
    return elapsed


def _consume_subject(log: KafkaLog, topic: str, n: int) -> float:
    reader = log.reader([(topic, p, 0) for p in range(PARTITIONS)])
    try:
        return _drain(lambda: len(reader.poll(1000, timeout=0.5)), n, "KafkaLog reader")
    finally:
        reader.close()


def _raw_consumer(conf: dict[str, Any], topic: str) -> confluent_kafka.Consumer:
    consumer = confluent_kafka.Consumer(conf)
    consumer.assign([confluent_kafka.TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    return consumer


def _consume_raw(conf: dict[str, Any], topic: str, n: int) -> float:
    """The barest raw loop: touch each message's error and value."""
    consumer = _raw_consumer(conf, topic)
    consume = consumer.consume

    def poll() -> int:
        got = 0
        for m in consume(1000, 0.5):
            if m.error() is None:
                m.value()
                got += 1
        return got

    try:
        return _drain(poll, n, "raw consumer")
    finally:
        consumer.close()


def _consume_raw_fields(conf: dict[str, Any], topic: str, n: int) -> float:
    """Raw consume that extracts the same seven fields a Record carries, into plain tuples."""
    consumer = _raw_consumer(conf, topic)
    consume = consumer.consume

    def poll() -> int:
        batch = [
            (m.topic(), m.partition(), m.offset(), m.timestamp()[1], m.key(), m.value(), m.headers())
            for m in consume(1000, 0.5)
            if m.error() is None
        ]
        return len(batch)

    try:
        return _drain(poll, n, "raw field consumer")
    finally:
        consumer.close()


def _best(rounds: int, fn: Callable[[], float]) -> float:
    return min(fn() for _ in range(rounds))


def measure(bootstrap: str, n: int, rounds: int) -> list[dict[str, Any]]:
    """Produce and consume ``n`` records ``rounds`` times each way on the broker at ``bootstrap``."""
    log = KafkaLog(bootstrap)
    data = _records(n)
    run_id = uuid.uuid4().hex[:8]
    topics = {kind: f"bench-{kind}-{run_id}" for kind in ("subject", "raw")}
    for t in topics.values():
        log.create_topic(TopicSpec(t, PARTITIONS))
    raw_producer_conf = {**log.client_config(), **producer_config(on_delivery=False)}
    raw_consumer_conf = {
        **log.client_config(),
        **consumer_config(),
        "group.id": f"bench-raw-{run_id}",
        "auto.offset.reset": "earliest",
    }
    # Alternate subject and limit so both see the same broker state (page cache, segment rolls).
    produce_subject: list[float] = []
    produce_raw: list[float] = []
    consume_subject: list[float] = []
    consume_raw: list[float] = []
    consume_fields: list[float] = []
    for _ in range(rounds):
        produce_raw.append(_produce_raw(raw_producer_conf, topics["raw"], data))
        produce_subject.append(_produce_subject(log, topics["subject"], data))
    for _ in range(rounds):  # both read the same topic: n records per round (each from offset 0)
        consume_raw.append(_consume_raw(raw_consumer_conf, topics["subject"], n * rounds))
        consume_subject.append(_consume_subject(log, topics["subject"], n * rounds))
        consume_fields.append(_consume_raw_fields(raw_consumer_conf, topics["subject"], n * rounds))
    for t in topics.values():
        log.delete_topic(t)
    log.close()
    total = n * rounds
    note = f"{n:,} records x {rounds} rounds, {VALUE_BYTES}-byte values, {PARTITIONS} partitions, best round; broker {bootstrap}"
    return [
        {
            "name": "kafka produce",
            "subject": "KafkaLog.producer().produce + flush",
            "subject_rate": n / min(produce_subject),
            "limit": "raw confluent_kafka.Producer, same config",
            "limit_rate": n / min(produce_raw),
            "unit": "records/s",
            "target": TARGET,
            "note": note + " (idempotent, acks=all, linger.ms=5, murmur2_random)",
        },
        {
            "name": "kafka consume",
            "subject": "KafkaLog.reader().poll(1000) -> Record",
            "subject_rate": total / min(consume_subject),
            "limit": "raw Consumer.consume(1000) + the same 7 fields (topic, partition, offset, timestamp, key, value, headers) into a tuple",
            "limit_rate": total / min(consume_fields),
            "unit": "records/s",
            "target": TARGET,
            "note": note.replace(f"{n:,} records x {rounds} rounds", f"{total:,} records read per round")
            + ". The limit extracts what any log reader must hand on (commits and lineage need topic/partition/offset): DECISIONS.md #14",
        },
        {
            "name": "kafka consume (bare raw loop)",
            "subject": "KafkaLog.reader().poll(1000) -> Record",
            "subject_rate": total / min(consume_subject),
            "limit": "raw Consumer.consume(1000) touching only error() and value()",
            "limit_rate": total / min(consume_raw),
            "unit": "records/s",
            "note": "shown for transparency: the gap to the previous row is the seven getters + one tuple per message (~0.3 us in CPython) that a Record needs",
        },
    ]


def run(quick: bool = False, bootstrap: str | None = None) -> list[dict[str, Any]]:
    """Benchmark rows (see the module docstring). Starts and stops a broker when ``bootstrap`` is None."""
    n, rounds = (60_000, 2) if quick else (200_000, 3)
    if bootstrap is not None:
        return measure(bootstrap, n, rounds)
    handle = load_launcher().start_broker()
    try:
        return measure(handle.bootstrap, n, rounds)
    finally:
        handle.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    args = parser.parse_args()
    started = time.monotonic()
    for row in run(args.quick, args.bootstrap):
        ratio = row["subject_rate"] / row["limit_rate"]
        print(
            f"{row['name']:40s} {row['subject_rate']:>12,.0f} vs {row['limit_rate']:>12,.0f} {row['unit']}"
            f"  ratio {ratio:.2f}" + (f" (target >= {row['target']})" if "target" in row else "")
        )
    print(f"({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
