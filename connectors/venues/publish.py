"""Publish a simulation to a log: topics ensured, records Avro-encoded in batches, produced, flushed.

This is the thin, impure shell around :class:`~connectors.venues.simulator.Simulation`:
the records (and so the topics' offsets and timestamps) are exactly the simulation's,
so the same config published into two fresh logs gives byte-identical topics.

Delivery: at-least-once. Everything is acknowledged when :func:`publish_simulation`
returns (the producer is flushed); if it raises part-way, the records produced so
far may or may not be on the log -- re-run into a fresh log to get an exact copy.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from connectors.venues.instruments import INSTRUMENT_SCHEMA
from connectors.venues.simulator import INSTRUMENTS_TOPIC, RAW_SCHEMA, SimConfig, SimRecord, Simulation, VenueCounts, raw_topic
from streams.errors import ConfigError
from streams.log.base import Log, Producer
from streams.serde import Serde
from streams.topics import ensure_topics

BATCH = 2000
Progress = Callable[[int], None]


@dataclass
class SimSummary:
    """What a simulation run published: per-venue counts, instruments, totals and throughput."""

    config: SimConfig
    venues: list[VenueCounts]
    instruments: int
    records: int = 0
    topics_created: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``--json`` output)."""
        cfg = self.config
        return {
            "config": {
                "venues": cfg.venues, "symbols": cfg.symbols, "events": cfg.events, "seed": cfg.seed,
                "regime": cfg.regime, "start_ns": cfg.start_ns, "gap_rate": cfg.gap_rate, "dup_rate": cfg.dup_rate,
                "reorder_rate": cfg.reorder_rate, "malformed_rate": cfg.malformed_rate,
            },
            "instruments": self.instruments,
            "records": self.records,
            "topics_created": self.topics_created,
            "elapsed_s": round(self.elapsed_s, 3),
            "venues": [c.as_dict() for c in self.venues],
        }


def _produce_batch(producer: Producer, serde: Serde, schema: str, topic: str, batch: list[SimRecord]) -> None:
    encoded = serde.encode_many(schema, [r.value for r in batch], topic=topic)
    for rec, data in zip(batch, encoded):
        producer.produce(topic, data, key=rec.key, timestamp_ns=rec.timestamp_ns)


def publish_simulation(
    log: Log, serde: Serde, config: SimConfig, *, batch_size: int = BATCH, progress: Progress | None = None,
    transactional_id: str | None = None,
) -> SimSummary:
    """Run ``config``'s simulation into ``log``: instruments to ``refdata.instruments`` first, then ``md.raw.<venue>``.

    Missing topics are created from ``infra/topics.yaml``. Records are encoded with
    ``serde.encode_many`` per topic batch of ``batch_size``; ``progress(n)`` is called with
    the number of venue records produced so far after every batch.

    With ``transactional_id`` everything is produced in one transaction: a run killed part-way
    leaves nothing a ``read_committed`` reader sees, so it can simply be run again (the demo).
    """
    started = time.perf_counter()
    sim = Simulation(config)
    topics = [INSTRUMENTS_TOPIC] + [raw_topic(v) for v in config.venue_names]
    created = [change.topic for change in ensure_topics(log, topics) if change.action == "created"]
    for venue, channels in sim.channels.items():
        partitions = log.partitions(raw_topic(venue))
        if partitions != channels:
            raise ConfigError(
                f"{raw_topic(venue)} has {partitions} partition(s) but the simulation numbers {channels} channel(s) for {venue}",
                hint="each partition of a venue topic is one sequence-numbered channel: recreate the topic with the "
                "partition count of infra/topics.yaml, or simulate into a fresh log",
            )
    summary = SimSummary(config, list(sim.counts.values()), len(sim.instruments), topics_created=created)
    producer = log.transactional_producer(transactional_id) if transactional_id else log.producer()
    if transactional_id:
        producer.begin()  # type: ignore[attr-defined]
    try:
        _produce_batch(producer, serde, INSTRUMENT_SCHEMA, INSTRUMENTS_TOPIC, sim.instrument_records())
        buffers: dict[str, list[SimRecord]] = {t: [] for t in topics[1:]}
        produced = 0
        for rec in sim.records():
            buf = buffers[rec.topic]
            buf.append(rec)
            if len(buf) >= batch_size:
                _produce_batch(producer, serde, RAW_SCHEMA, rec.topic, buf)
                produced += len(buf)
                buf.clear()
                if progress:
                    progress(produced)
        for topic, buf in buffers.items():
            if buf:
                _produce_batch(producer, serde, RAW_SCHEMA, topic, buf)
                produced += len(buf)
        if transactional_id:
            producer.commit(None, None)  # type: ignore[attr-defined]
        else:
            producer.flush()
        if progress:
            progress(produced)
    finally:
        producer.close()
    summary.records = produced
    summary.elapsed_s = time.perf_counter() - started
    return summary
