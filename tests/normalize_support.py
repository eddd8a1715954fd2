"""Inputs for the normalize processor without a log: decoded ``Message``s as the runtime would hand them over.

``task_messages`` mimics the runtime's merge (streams.processors.base): per task, a k-way merge of
the input partitions by ``(timestamp_ms, input rank, topic, partition)``, each partition in
offset order; partition = murmur2(key) % partitions, as the producer picks it.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from typing import Any

from connectors.venues.simulator import INSTRUMENTS_TOPIC, RAW_SCHEMA, SimRecord
from connectors.venues.instruments import INSTRUMENT_SCHEMA
from streams.log.partitioner import partition_for
from streams.processors.base import Message

RAW_PARTITIONS = 4


def instrument_message(value: dict[str, Any], offset: int = 0, timestamp_ns: int | None = None) -> Message:
    """A ``refdata.instruments`` input carrying ``value``."""
    ts = value["updated_ts_ns"] if timestamp_ns is None else timestamp_ns
    return Message(INSTRUMENTS_TOPIC, 0, offset, ts, value["symbol"].encode(), INSTRUMENT_SCHEMA, value)


def partitioned(records: Iterable[SimRecord], partitions: int = RAW_PARTITIONS) -> dict[tuple[str, int], list[Message]]:
    """Simulator records as they land on the log: per (topic, partition), with offsets."""
    out: dict[tuple[str, int], list[Message]] = {}
    for rec in records:
        p = 0 if rec.topic == INSTRUMENTS_TOPIC else partition_for(rec.key, partitions)
        lst = out.setdefault((rec.topic, p), [])
        schema = INSTRUMENT_SCHEMA if rec.topic == INSTRUMENTS_TOPIC else RAW_SCHEMA
        lst.append(Message(rec.topic, p, len(lst), rec.timestamp_ns, rec.key, schema, rec.value))
    return out


def task_messages(parts: dict[tuple[str, int], list[Message]], task: int) -> list[Message]:
    """What task ``task`` of normalize reads (all of refdata.instruments, partition ``task`` of each raw topic), merged."""
    def rank(topic: str) -> int:
        return 0 if topic == INSTRUMENTS_TOPIC else 1

    mine = [lst for (topic, p), lst in sorted(parts.items()) if topic == INSTRUMENTS_TOPIC or p == task]
    return list(heapq.merge(*mine, key=lambda m: (m.timestamp_ns // 1_000_000, rank(m.topic), m.topic, m.partition)))
