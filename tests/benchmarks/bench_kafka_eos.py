"""The exactly-once ceiling on Kafka: raw transactional passthrough of bytes with confluent-kafka.

:func:`passthrough` consumes an input topic in a consumer group (``read_committed``), produces
every record's key and value unchanged to the same partition of an output topic, and every
``commit_every`` records or ``commit_interval_ms`` (whichever comes first) sends the consumer's
positions with ``send_offsets_to_transaction`` and commits. No decoding, no encoding, no
``Record`` objects: what an exactly-once processor on this broker cannot beat. The clients use
hftstream's own librdkafka configuration (``producer_config`` + ``transactional_config``,
``consumer_config``), so the processor runtime is compared on equal terms.

Reported: messages/s (first record consumed -> last commit returned), and the latency of each
``send_offsets_to_transaction`` + ``commit_transaction`` at p50/p99.

Import it (the runtime benchmark uses it as its ceiling)::

    from bench_kafka_eos import make_input, passthrough
    topic = make_input(bootstrap, 200_000)
    result = passthrough(bootstrap, topic, commit_every=1000)

Run alone: ``python tests/benchmarks/bench_kafka_eos.py --bootstrap HOST:PORT [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import confluent_kafka

from streams.log import TopicSpec
from streams.log.kafka import KafkaLog, consumer_config, producer_config, transactional_config

VALUE_BYTES = 100
PARTITIONS = 3


@dataclass(frozen=True)
class PassthroughResult:
    """One passthrough run."""

    records: int
    seconds: float
    commits: int
    commit_p50_ms: float
    commit_p99_ms: float
    commit_every: int | None
    commit_interval_ms: float | None

    @property
    def rate(self) -> float:
        """Messages per second, first record consumed to last commit."""
        return self.records / self.seconds

    def describe(self) -> str:
        every = [f"{self.commit_every} records" if self.commit_every else "", f"{self.commit_interval_ms:g} ms" if self.commit_interval_ms else ""]
        return (
            f"commit every {' or '.join(e for e in every if e):22s} {self.rate:>10,.0f} msgs/s  "
            f"{self.commits:5d} commits  commit p50 {self.commit_p50_ms:6.1f} ms  p99 {self.commit_p99_ms:6.1f} ms"
        )


def make_input(bootstrap: str, n: int, *, partitions: int = PARTITIONS, value_bytes: int = VALUE_BYTES) -> str:
    """Create a topic holding ``n`` keyed records (16-byte keys, ``value_bytes``-byte values); return its name."""
    log = KafkaLog(bootstrap)
    topic = f"bench-eos-in-{uuid.uuid4().hex[:8]}"
    log.create_topic(TopicSpec(topic, partitions))
    with log.producer() as producer:
        for i in range(n):
            producer.produce(topic, (b"%012d" % i).ljust(value_bytes, b"x"), b"account-%08d" % (i % 64))
    log.close()
    return topic


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def passthrough(
    bootstrap: str,
    source: str,
    *,
    commit_every: int | None = 1000,
    commit_interval_ms: float | None = None,
    sink: str | None = None,
    batch: int = 1000,
    timeout_s: float = 120.0,
    producer_overrides: dict[str, Any] | None = None,
    transform: Callable[[bytes], bytes] | None = None,
) -> PassthroughResult:
    """Copy every record of ``source`` to ``sink`` (created like ``source`` when ``None``) in transactions.

    Commits every ``commit_every`` records or ``commit_interval_ms``, whichever comes first
    (``None`` disables that bound). Returns once every record present at the start is copied and
    committed. The output topic is deleted afterwards when this function created it.
    ``producer_overrides``: librdkafka options on top of hftstream's (to try another ``linger.ms``...).
    ``transform``: applied to every value before it is produced (the runtime benchmark's
    hand-written decode + encode); ``None`` copies the bytes.
    """
    if not commit_every and not commit_interval_ms:
        raise ValueError("give commit_every, commit_interval_ms or both")
    log = KafkaLog(bootstrap)
    partitions = log.partitions(source)
    own_sink = sink is None
    if sink is None:
        sink = f"bench-eos-out-{uuid.uuid4().hex[:8]}"
        log.create_topic(TopicSpec(sink, partitions))
    total = sum(log.watermarks(source, p)[1] - log.watermarks(source, p)[0] for p in range(partitions))
    run_id = uuid.uuid4().hex[:8]
    base = log.client_config()
    consumer = confluent_kafka.Consumer(
        {
            **base,
            **consumer_config(read_committed=True),
            "group.id": f"bench-eos-{run_id}",
            "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "range",
        }
    )
    producer = confluent_kafka.Producer({**base, **producer_config(on_delivery=False), **transactional_config(f"bench-eos-{run_id}"), **(producer_overrides or {})})
    try:
        producer.init_transactions(30)
        consumer.subscribe([source])
        result = _loop(consumer, producer, sink, total, commit_every, commit_interval_ms, batch, timeout_s, transform)
    finally:
        consumer.close()
        producer.flush(10)
        if own_sink:
            log.delete_topic(sink)
        log.close()
    return result


def _loop(
    consumer: confluent_kafka.Consumer,
    producer: confluent_kafka.Producer,
    sink: str,
    total: int,
    commit_every: int | None,
    commit_interval_ms: float | None,
    batch: int,
    timeout_s: float,
    transform: Callable[[bytes], bytes] | None = None,
) -> PassthroughResult:
    every = commit_every or sys.maxsize
    interval = commit_interval_ms / 1000 if commit_interval_ms else float("inf")
    consume, produce, poll = consumer.consume, producer.produce, producer.poll
    latencies: list[float] = []
    done = pending = 0
    started = None
    deadline = time.monotonic() + timeout_s
    producer.begin_transaction()
    last_commit = time.perf_counter()

    def commit() -> None:
        nonlocal pending, last_commit
        t0 = time.perf_counter()
        producer.send_offsets_to_transaction(consumer.position(consumer.assignment()), consumer.consumer_group_metadata())
        producer.commit_transaction()
        last_commit = time.perf_counter()
        latencies.append((last_commit - t0) * 1000)
        pending = 0

    while done < total:
        if time.monotonic() > deadline:
            raise TimeoutError(f"passthrough copied {done} of {total} records in {timeout_s}s")
        # Never more than the commit bound: offsets are committed at batch boundaries (position()
        # is past the whole batch), so a batch must not straddle a commit.
        msgs = consume(min(batch, every - pending), 0.05)
        if msgs and started is None:
            started = time.perf_counter()
        for m in msgs:
            if m.error() is not None:
                continue
            value = m.value() if transform is None else transform(m.value())
            try:
                produce(sink, value, m.key(), m.partition())
            except BufferError:
                poll(0.01)
                produce(sink, value, m.key(), m.partition())
            done += 1
            pending += 1
        if pending >= every or (pending and time.perf_counter() - last_commit >= interval):
            commit()
            producer.begin_transaction()
    if pending:
        commit()
    else:
        producer.abort_transaction()
    elapsed = time.perf_counter() - (started or time.perf_counter())
    return PassthroughResult(
        records=done,
        seconds=elapsed,
        commits=len(latencies),
        commit_p50_ms=_percentile(latencies, 50),
        commit_p99_ms=_percentile(latencies, 99),
        commit_every=commit_every,
        commit_interval_ms=commit_interval_ms,
    )


def measure(bootstrap: str, n: int) -> list[PassthroughResult]:
    """The ceiling at a few commit policies, each on the same ``n`` input records."""
    source = make_input(bootstrap, n)
    try:
        policies: list[dict[str, Any]] = [
            {"commit_every": 100},
            {"commit_every": 1000},
            {"commit_every": 10_000},
            {"commit_every": None, "commit_interval_ms": 10},
            {"commit_every": None, "commit_interval_ms": 50},
            {"commit_every": None, "commit_interval_ms": 100},
        ]
        return [passthrough(bootstrap, source, **policy) for policy in policies]
    finally:
        log = KafkaLog(bootstrap)
        log.delete_topic(source)
        log.close()


def run(quick: bool = False, bootstrap: str | None = None) -> list[dict[str, Any]]:
    """Rows for BENCH.md: the ceiling per commit policy, against commit-every-10,000 (the cost of committing more often).

    Starts and stops a broker when ``bootstrap`` is None.
    """
    n = 50_000 if quick else 200_000
    if bootstrap is None:
        from streams.cli.dev import load_launcher

        handle = load_launcher().start_broker()
        try:
            return run(quick, handle.bootstrap)
        finally:
            handle.stop()
    results = measure(bootstrap, n)
    base = next(r for r in results if r.commit_every == 10_000)
    return [
        {
            "name": f"raw transactional passthrough, {r.describe().split('  ')[0].strip()}",
            "subject": "confluent-kafka consume -> produce -> send_offsets + commit (bytes)",
            "subject_rate": r.rate,
            "limit": "the same loop committing every 10,000 records",
            "limit_rate": base.rate,
            "unit": "msgs/s",
            "note": f"{n:,} records of {VALUE_BYTES} bytes, {PARTITIONS} partitions; {r.commits} commits, commit p50 "
                    f"{r.commit_p50_ms:.1f} ms, p99 {r.commit_p99_ms:.1f} ms; broker {bootstrap}",
        }
        for r in results
        if r is not base
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", required=True, help="the broker (e.g. 127.0.0.1:19092)")
    parser.add_argument("--records", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="50k records instead of 200k")
    args = parser.parse_args()
    n = args.records or (50_000 if args.quick else 200_000)
    print(f"raw transactional passthrough, {n:,} records of {VALUE_BYTES} bytes, {PARTITIONS} partitions, broker {args.bootstrap}")
    for result in measure(args.bootstrap, n):
        print(result.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
