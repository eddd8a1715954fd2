"""Publish a simulated order flow to a log: topics ensured, records Avro-encoded in batches, produced, flushed.

The impure shell around :func:`~connectors.orders.simulator.simulate_orders`: the records (and so
the topics' contents, keys and timestamps) are exactly the generator's.

* ``rate``: pace the order commands in wall-clock time at ``rate`` per second (operator commands and
  the reference-data record go out as they come); without it, as fast as possible.
* ``transactional_id``: everything is produced inside one transaction of
  ``log.transactional_producer(transactional_id)`` and committed at the end, so ``read_committed``
  readers see all of the flow or none of it: a crash part-way leaves nothing visible, and a rerun
  with the same id fences the dead attempt and publishes again. Without it: at-least-once, acknowledged
  when :func:`publish_orders` returns (a crash part-way may leave a prefix on the log).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from connectors.orders.simulator import INSTRUMENTS_TOPIC, OPS_TOPIC, ORDERS_TOPIC, OrderFlow, OrderRecord, OrderSimConfig, simulate_orders
from streams.log.base import Log, Producer, TransactionalProducer
from streams.serde import Serde
from streams.topics import ensure_topics

BATCH = 2000
PACE_TICK_S = 0.005  # a paced run sleeps at least this long between steps, then produces (and flushes) what is due
Progress = Callable[[int], None]


@dataclass
class OrderSummary:
    """What a run published: records per topic, per schema and per kind, the event-time range and throughput."""

    config: OrderSimConfig
    records: int = 0
    orders: int = 0
    by_topic: dict[str, int] = field(default_factory=dict)
    by_schema: dict[str, int] = field(default_factory=dict)
    kinds: dict[str, int] = field(default_factory=dict)
    first_ts_ns: int = 0
    last_ts_ns: int = 0
    topics_created: list[str] = field(default_factory=list)
    transactional_id: str | None = None
    rate: float | None = None
    elapsed_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``--json`` output)."""
        cfg = self.config
        return {
            "config": cfg.model_dump(mode="json", exclude={"risk", "operator_key"}),
            "records": self.records, "orders": self.orders, "by_topic": self.by_topic, "by_schema": self.by_schema,
            "kinds": self.kinds, "first_ts_ns": self.first_ts_ns, "last_ts_ns": self.last_ts_ns,
            "topics_created": self.topics_created, "transactional_id": self.transactional_id, "rate": self.rate,
            "elapsed_s": round(self.elapsed_s, 3),
        }


def _produce(producer: Producer, serde: Serde, chunk: list[OrderRecord]) -> None:
    """Encode ``chunk`` with one ``encode_many`` per (topic, schema), then produce it in order."""
    groups: dict[tuple[str, str], list[int]] = {}
    for n, rec in enumerate(chunk):
        groups.setdefault((rec.topic, rec.schema), []).append(n)
    encoded: list[bytes] = [b""] * len(chunk)
    for (topic, schema), idx in groups.items():
        for n, data in zip(idx, serde.encode_many(schema, [chunk[i].value for i in idx], topic=topic)):
            encoded[n] = data
    for rec, data in zip(chunk, encoded):
        producer.produce(rec.topic, data, key=rec.key, timestamp_ns=rec.timestamp_ns)


def publish_orders(
    log: Log, serde: Serde, config: OrderSimConfig, *, rate: float | None = None, transactional_id: str | None = None,
    batch_size: int = BATCH, progress: Progress | None = None, flow: OrderFlow | None = None,
) -> OrderSummary:
    """Generate ``config``'s flow (or publish ``flow``, already generated from it) into ``log``; returns the summary.

    Missing topics (``orders.in``, ``ops.commands``, ``refdata.instruments``) are created from
    ``infra/topics.yaml``. ``progress(n)`` gets the number of records produced so far.
    """
    if rate is not None and rate <= 0:
        raise ValueError(f"rate must be > 0, got {rate}")
    started = time.perf_counter()
    flow = flow if flow is not None else simulate_orders(config, repo=serde.repo)
    created = [c.topic for c in ensure_topics(log, [ORDERS_TOPIC, OPS_TOPIC, INSTRUMENTS_TOPIC]) if c.action == "created"]
    summary = OrderSummary(config, kinds=dict(flow.kinds), first_ts_ns=flow.first_ts_ns, last_ts_ns=flow.last_ts_ns,
                           topics_created=created, transactional_id=transactional_id, rate=rate)
    records = flow.records
    txn: TransactionalProducer | None = None
    producer: Producer
    if transactional_id is not None:
        producer = txn = log.transactional_producer(transactional_id)
        txn.begin()
    else:
        producer = log.producer()
    try:
        if rate is None:
            for start in range(0, len(records), batch_size):
                _produce(producer, serde, records[start:start + batch_size])
                if progress:
                    progress(min(start + batch_size, len(records)))
        else:
            _paced(producer, serde, records, rate, batch_size, progress)
        if txn is not None:
            txn.commit(None, None)
        else:
            producer.flush()
        if progress:
            progress(len(records))
    except BaseException:
        if txn is not None and txn.in_transaction:
            try:
                txn.abort()
            except Exception:  # the original error matters more; the next holder of the id rolls it back anyway
                pass
        raise
    finally:
        producer.close()
    for rec in records:
        summary.by_topic[rec.topic] = summary.by_topic.get(rec.topic, 0) + 1
        summary.by_schema[rec.schema] = summary.by_schema.get(rec.schema, 0) + 1
    summary.by_topic = dict(sorted(summary.by_topic.items()))
    summary.by_schema = dict(sorted(summary.by_schema.items()))
    summary.records = len(records)
    summary.orders = summary.by_topic.get(ORDERS_TOPIC, 0)
    summary.elapsed_s = time.perf_counter() - started
    return summary


def _paced(producer: Producer, serde: Serde, records: list[OrderRecord], rate: float, batch_size: int,
           progress: Progress | None) -> None:
    """Produce so that the n-th order command goes out about ``n / rate`` s after the start (5 ms granularity),
    flushing what went out at each step so it is on the log when it is due."""
    t0 = time.perf_counter()
    orders = i = 0
    while i < len(records):
        due = int((time.perf_counter() - t0) * rate) + 1  # order commands that may be out by now
        chunk: list[OrderRecord] = []
        while i < len(records) and len(chunk) < batch_size:
            rec = records[i]
            if rec.topic == ORDERS_TOPIC:
                if orders >= due:
                    break
                orders += 1
            chunk.append(rec)
            i += 1
        if chunk:
            _produce(producer, serde, chunk)
            producer.flush()
            if progress:
                progress(i)
        if i < len(records) and orders >= due:
            time.sleep(max(PACE_TICK_S, t0 + orders / rate - time.perf_counter()))
