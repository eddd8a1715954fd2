"""Order-to-outcome latency, measured with orders arriving paced in real time.

The lockstep run measures throughput on a backlog; latency needs a pipeline that is keeping
up. So the demo runs a second, short phase on a scratch embedded log (``DIR/latency``):

* a **pacer** process (this module's ``main``) publishes instruments, then a simulated market
  and order flow whose event times start now, each record when the wall clock reaches its
  timestamp (``--rate`` orders per second), and notes the wall time each ``NewOrder`` was
  appended (its batch flushed);
* the demo process runs every processor live (``run_all``, short commit interval);
* a tail thread in the pacer reads ``risk.decisions``, ``order.events`` and ``fills``
  (``read_committed``: what downstream can see) and notes when each order's **outcome**
  first became visible: its first fill, or the event that settles its entry into the book
  (rested, filled, cancelled, expired, rejected), or risk's rejection.

Latency = outcome visible - order appended, per order; the pacer writes p50/p99/max as JSON.
Two processes on two cores: the pipeline's GIL is not shared with the pacer's.
"""

from __future__ import annotations

import argparse
import heapq
import json
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from streams.log.base import Log
from streams.serde import Serde

OUTCOMES = frozenset({"OrderRested", "OrderPartiallyFilled", "OrderFilled", "OrderCancelled", "OrderExpired", "OrderRejected"})
NEW_ORDER = "hftstream.orders.NewOrder"
TAIL_TOPICS = ("risk.decisions", "order.events", "fills")
GAP_SCALE = 20


def percentile(sorted_values: list[float], q: float) -> float:
    """The nearest-rank ``q`` percentile (0..100) of already sorted values."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[int(rank) - 1]


def describe(figures: dict[str, Any]) -> str:
    """The paced latency figures as one line: percentiles, how many orders were paced and measured, and a
    warning when the pacer itself fell behind (then the figures include the pacer's own delay)."""
    f = figures
    paced = f.get("paced", f.get("orders", 0))
    text = (f"p50 {f['p50']:.1f} ms, p99 {f['p99']:.1f} ms, max {f['max']:.1f} ms; "
            f"{f['measured']:,} of {paced:,} paced orders measured")
    late = f.get("pacer_late_records", 0)
    if late:
        text += (f" (PACER FELL BEHIND: {late:,} records sent over 50 ms late, so these figures include the pacer's "
                 f"delay; lower --latency-rate)")
    return text


def paced_records(params: dict[str, Any], start_ns: int) -> tuple[list[Any], Iterator[tuple[int, str, bytes, str, dict[str, Any]]]]:
    """``(instrument records, (ts, topic, key, schema, value) in time order)`` for the paced phase.

    The order flow covers ``orders / rate`` seconds from ``start_ns``; the feed gets enough events to
    cover it too, so risk sees fresh market data throughout.
    """
    from connectors.orders.simulator import NS, OrderSimConfig, feed_span_ns, simulate_orders
    from connectors.venues.simulator import RAW_SCHEMA, SimConfig, Simulation

    span = max(1, params["orders"] * NS // params["rate"])
    # a market of about 100 events/s per venue (the calm regime's gaps x GAP_SCALE): fresh for risk, and
    # not a market-data backlog that would measure normalize instead of the order path
    probe = SimConfig(venues=params["venues"], symbols=params["symbols"], events=params["venues"] * 1000, seed=params["seed"],
                      gap_scale=GAP_SCALE)
    events = max(params["venues"], int(params["venues"] * 1000 * span / feed_span_ns(probe) * 1.2))
    feed = SimConfig(venues=params["venues"], symbols=params["symbols"], events=events, seed=params["seed"], start_ns=start_ns,
                     gap_scale=GAP_SCALE)
    sim = Simulation(feed)
    flow = simulate_orders(OrderSimConfig.for_feed(
        feed, accounts=params["accounts"], orders=params["orders"], span_ns=span + 20_000_000, stale_probes=0,
    ))
    raw = ((r.timestamp_ns, r.topic, r.key, RAW_SCHEMA, r.value) for r in sim.records())
    orders = sorted(((r.timestamp_ns, r.topic, r.key, r.schema, r.value) for r in flow.records), key=lambda r: r[0])
    return sim.instrument_records(), heapq.merge(raw, orders, key=lambda r: r[0])


class Tail(threading.Thread):
    """Notes the wall time each order's outcome first becomes visible downstream."""

    def __init__(self, log: Log, serde: Serde) -> None:
        super().__init__(daemon=True)
        self.log, self.serde = log, serde
        self.seen: dict[tuple[str, str], int] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        assign = [(t, p, 0) for t in TAIL_TOPICS for p in range(self.log.partitions(t))]
        with self.log.reader(assign) as reader:
            while not self.stop.is_set():
                batch = reader.poll(5000, timeout=0.005)
                now = time.time_ns()
                for rec in batch:
                    d = self.serde.decode(rec.value)
                    kind = d.schema.rsplit(".", 1)[1]
                    v = d.value
                    if rec.topic == "risk.decisions":
                        if v["command"] != "NEW" or v["reason"] == "ACCEPTED":
                            continue
                    elif rec.topic == "order.events" and kind not in OUTCOMES:
                        continue
                    self.seen.setdefault((v["account"], v["client_order_id"]), now)


def main(argv: list[str] | None = None) -> int:
    """The pacer process: publish paced, tail outcomes, write the figures to ``--out``."""
    from streams.log import open_log

    ap = argparse.ArgumentParser(prog="python -m streams.demo.latency")
    ap.add_argument("--log", required=True)
    ap.add_argument("--params", required=True, help="JSON: venues, symbols, events, seed, accounts, orders, rate")
    ap.add_argument("--out", required=True)
    ap.add_argument("--lead-ms", type=int, default=1000)
    args = ap.parse_args(argv)
    params = json.loads(args.params)
    log, serde = open_log(args.log), Serde.from_settings()
    start_ns = time.time_ns() + args.lead_ms * 1_000_000
    instruments, records = paced_records(params, start_ns)
    tail = Tail(log, serde)
    tail.start()
    producer = log.producer()
    appended: dict[tuple[str, str], int] = {}
    for r in instruments:
        producer.produce(r.topic, serde.encode("hftstream.refdata.Instrument", r.value, topic=r.topic), key=r.key,
                         timestamp_ns=r.timestamp_ns)
    producer.flush()
    pending: list[tuple[str, str]] = []
    late = 0
    for ts, topic, key, schema, value in records:
        now = time.time_ns()
        if ts > now:
            if pending or late:
                producer.flush()
                t = time.time_ns()
                for k in pending:
                    appended[k] = t
                pending.clear()
            time.sleep((ts - now) / 1e9)
        elif ts < now - 50_000_000:
            late += 1  # more than 50 ms behind schedule: the pacer (not the pipeline) is the limit
        producer.produce(topic, serde.encode(schema, value, topic=topic), key=key, timestamp_ns=ts)
        if schema == NEW_ORDER:
            pending.append((value["account"], value["client_order_id"]))
            if len(pending) >= 256:
                producer.flush()
                t = time.time_ns()
                for k in pending:
                    appended[k] = t
                pending.clear()
    producer.flush()
    t = time.time_ns()
    for k in pending:
        appended[k] = t
    producer.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(k not in tail.seen for k in appended):
        time.sleep(0.05)
    tail.stop.set()
    tail.join(5)
    lat = sorted((tail.seen[k] - t0) / 1e6 for k, t0 in appended.items() if k in tail.seen)
    out = {
        "orders": len(appended), "paced": len(appended), "measured": len(lat), "missing": len(appended) - len(lat),
        "p50": round(percentile(lat, 50), 3), "p99": round(percentile(lat, 99), 3), "max": round(lat[-1], 3) if lat else 0.0,
        "rate": params["rate"], "pacer_late_records": late, "pacer_fell_behind": late > 0,
    }
    with open(args.out, "w") as f:
        json.dump(out, f)
    return 0


def measure_latency(workdir: str, params: dict[str, Any], *, timeout_s: float = 120.0, cores: int = 1) -> dict[str, Any]:
    """Run the paced phase in ``workdir`` (emptied first): the pacer process plus every processor live here
    (``cores=2``: normalize and the ledger in a second process, :mod:`streams.runtime.second_process`)."""
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    from streams.log import open_log
    from streams.runtime.lookup import default_config, registry
    from streams.runtime.runner import Runner, RunOptions
    from streams.runtime.scheduler import run_all
    from streams.topics import apply_topics

    shutil.rmtree(workdir, ignore_errors=True)
    Path(workdir).mkdir(parents=True)
    url = f"embedded://{workdir}"
    log, serde = open_log(url), Serde.from_settings()
    apply_topics(log)
    out = Path(tempfile.mkstemp(prefix="latency-", suffix=".json", dir=workdir)[1])
    pacer = subprocess.Popen(
        [sys.executable, "-m", "streams.demo.latency", "--log", url, "--params", json.dumps(params), "--out", str(out)],
    )
    options = RunOptions(commit_interval_ms=2, batch=2000, poll_records=2000, max_wait_ms=20, instance_id="latency")
    stop = threading.Event()
    deadline = time.monotonic() + timeout_s

    def check() -> None:
        if pacer.poll() is not None or time.monotonic() > deadline:
            stop.set()

    helper = None
    try:
        time.sleep(0.3)  # the pacer publishes the instruments first
        from streams.runtime.second_process import SECOND_CORE, LiveSecondProcess

        second = [n for n in registry() if n in SECOND_CORE] if cores == 2 else []
        if second:
            helper = LiveSecondProcess(url, None, second, options)
        runners = [Runner(log, serde, cls, default_config(cls), options) for n, cls in registry().items() if n not in second]

        def check_both() -> None:
            check()
            if helper is not None and not helper.alive():
                stop.set()

        run_all(runners, stop, on_round=check_both)
        if helper is not None:
            helper.join()
        pacer.wait(timeout=30)
    finally:
        if pacer.poll() is None:
            pacer.kill()
        if helper is not None:
            helper.close()
    if pacer.returncode != 0 or out.stat().st_size == 0:
        from streams.errors import ConfigError

        raise ConfigError(f"the latency pacer failed (exit {pacer.returncode})", hint="run the demo with --no-latency, and report it")
    figures = json.loads(out.read_text())
    shutil.rmtree(workdir, ignore_errors=True)
    return figures


if __name__ == "__main__":
    sys.exit(main())
