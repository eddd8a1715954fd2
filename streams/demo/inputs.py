"""The demo's inputs: instruments and venue feeds, client orders and operator commands.

Each group is published in **one transaction** (:func:`publish_inputs`), so a demo killed
while publishing leaves nothing a ``read_committed`` reader sees, and the rerun publishes it
again. A group whose topics already hold committed records is left as it is: a rerun on the
same ``--data`` continues the same run (the parameters it was made with are checked against
the schedule's marks by the caller).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streams.log.base import Log
from streams.serde import Serde

FEEDS_TXN, ORDERS_TXN = "hftstream.demo.feeds", "hftstream.demo.orders"


@dataclass
class InputsSummary:
    """What :func:`publish_inputs` did."""

    feeds_published: bool
    orders_published: bool
    feed_records: int
    order_records: int
    elapsed_s: float
    feed_summary: Any = None  # the venue simulation's SimSummary when the feeds were published now


def committed_count(log: Log, topic: str) -> int:
    """Committed records of ``topic`` (read_committed end minus start, per partition)."""
    from streams.demo.report import committed_records

    return sum(1 for _ in committed_records(log, topic))


def feed_config(params: dict[str, Any]) -> Any:
    """The venue simulation of ``params`` (with a few injected gaps, duplicates, reorders, malformed payloads)."""
    from connectors.venues.simulator import SimConfig

    return SimConfig(
        venues=params["venues"], symbols=params["symbols"], events=params["events"], seed=params["seed"],
        regime=params["regime"], start_ns=params["start_ns"],
        gap_rate=0.001, dup_rate=0.001, reorder_rate=0.001, malformed_rate=0.001,
    )


def input_topics(params: dict[str, Any]) -> list[str]:
    """Every topic the demo's inputs are published to."""
    from connectors.venues.simulator import INSTRUMENTS_TOPIC, raw_topic

    return [INSTRUMENTS_TOPIC, *(raw_topic(v) for v in feed_config(params).venue_names), "orders.in", "ops.commands"]


def publish_inputs(
    log: Log, serde: Serde, params: dict[str, Any], progress: Callable[[str, int], None] | None = None,
) -> InputsSummary:
    """Publish the feeds and the order flow of ``params`` unless they are already on the log."""
    import time

    from connectors.orders.publish import publish_orders
    from connectors.venues.publish import publish_simulation
    from connectors.venues.simulator import INSTRUMENTS_TOPIC

    t0 = time.perf_counter()
    feeds = orders = False
    feed_records = order_records = 0
    feed_summary = None
    if committed_count(log, INSTRUMENTS_TOPIC) == 0:
        summary = publish_simulation(
            log, serde, feed_config(params), transactional_id=FEEDS_TXN,
            progress=(lambda n: progress("feeds", n)) if progress else None,
        )
        feeds, feed_records, feed_summary = True, summary.records, summary
    if committed_count(log, "orders.in") == 0:
        osum = publish_orders(
            log, serde, order_config(params), transactional_id=ORDERS_TXN,
            progress=(lambda n: progress("orders", n)) if progress else None,
        )
        orders, order_records = True, osum.records
    return InputsSummary(feeds, orders, feed_records, order_records, time.perf_counter() - t0, feed_summary)


def order_config(params: dict[str, Any]) -> Any:
    """The order simulation of ``params``, aligned with the feed simulation's instruments and time."""
    from connectors.orders.simulator import OrderSimConfig

    return OrderSimConfig.for_feed(feed_config(params), accounts=params["accounts"], orders=params["orders"])
