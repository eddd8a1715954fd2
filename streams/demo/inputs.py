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


SLICES_PER_SPAN = 60  # the default lockstep slice is the span / this, within [MIN_SLICE_MS, MAX_SLICE_MS]
MIN_SLICE_MS = 250
MAX_SLICE_MS = 2000  # well inside the reconciler's match window and risk's staleness limit (5 s of event time)


def default_slice_ms(span_ns: int) -> int:
    """The lockstep slice for a market of ``span_ns``: the span / :data:`SLICES_PER_SPAN`, between 250 ms and 2 s.

    A fixed slice would turn a longer span into more slices, so more transactions and more wall time for the same
    records; scaling it keeps their number (and the orders between two feedback points: risk sees fills a slice
    later) about the same. The cap: within one slice a processor's outputs are in task order, not time order (matching
    writes one symbol's fills for the whole slice, then the next symbol's), so a partition of ``fills`` can go back
    in time by up to a slice; a slice longer than the reconciler's 5 s match window turns that into false
    MISSING_VENUE breaks (measured: 10 s slices halted a demo, 4 s and less did not).
    """
    return min(MAX_SLICE_MS, max(MIN_SLICE_MS, span_ns // 1_000_000 // SLICES_PER_SPAN))


def feed_config(params: dict[str, Any]) -> Any:
    """The venue simulation of ``params`` (with a few injected gaps, duplicates, reorders, malformed payloads),
    stretched over ``params["span_ns"]`` of event time (the regime's own pace when absent)."""
    from connectors.venues.simulator import SimConfig

    return SimConfig(
        venues=params["venues"], symbols=params["symbols"], events=params["events"], seed=params["seed"],
        regime=params["regime"], start_ns=params["start_ns"], span_ns=params.get("span_ns"),
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
