"""Each trading processor exactly-once on Kafka vs a raw transactional passthrough with the same decode/encode (issue 7).

Inputs are generated once, deterministically: synthetic order flow (8 symbols, 32 accounts; limit orders around
the quote, a tenth cancelled and a tenth replaced, quotes between them) runs through the pure processors chained
in memory (``tests/pipeline_support.py``: risk -> matching -> ledger, dropcopy -> reconcile, with the shipped
configurations), and every topic they wrote is kept. Each processor then gets exactly its own inputs:

* risk: ``refdata.instruments``, ``md.normalized`` (quotes), ``fills``, ``order.events``, ``orders.in``;
* matching: ``orders.accepted``;  ledger: ``refdata.instruments``, ``fills``, ``md.normalized``;
* dropcopy: ``fills``;  reconcile: ``fills``, ``exec.reports``.

Per processor, on the same broker in the same run: (1) ``Runner`` runs it exactly-once to idle on those inputs,
under uniquely prefixed topics (a thin subclass renames its topics: one ``_replace`` per output); (2) the ceiling,
:func:`bench_kafka_eos.passthrough`, copies the same input records, all in one 8-partition topic, in transactions
with a fastavro decode + encode of every value (the writer schema looked up by the record's fingerprint). Both
commit every 5000 records or 100 ms. Rates are input records/s, first record processed -> last commit (global
inputs are re-read by every task: those re-reads are not counted). The runtime also encodes every output record
(matching writes ~3-4 per order), lineage headers and manifests; the passthrough one record per input.

    .venv/bin/python tests/benchmarks/bench_trading.py --bootstrap 127.0.0.1:19092 [--quick] [--only risk,matching]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from fastavro import schemaless_reader, schemaless_writer  # noqa: E402

from bench_kafka_eos import passthrough  # noqa: E402
from connectors.dropcopy import DropCopyConfig  # noqa: E402
from pipeline_support import AAPL, Chain  # noqa: E402
from runtime_worker import TimedRunner  # noqa: E402
from streams.log import TopicSpec  # noqa: E402
from streams.log.kafka import KafkaLog  # noqa: E402
from streams.processors import PROCESSORS  # noqa: E402
from streams.processors.base import Input, Message, Processor, Result  # noqa: E402
from streams.runtime import RunOptions  # noqa: E402
from streams.runtime.codec import dlq_topic  # noqa: E402
from streams.runtime.lookup import default_config  # noqa: E402
from streams.runtime.reset import group_of  # noqa: E402
from streams.runtime.state import state_topic  # noqa: E402
from streams.serde import SchemaRepo, Serde  # noqa: E402

BATCH, COMMIT_MS = 5000, 100  # both sides
TRADING = ("risk", "matching", "ledger", "dropcopy", "reconcile")
SYMBOLS = [dict(AAPL, symbol=f"SYM{i}", instrument_id=str(100 + i)) for i in range(8)]
ACCOUNTS = [f"ACC{i:02d}" for i in range(32)]
PARTITIONS = {"refdata.instruments": 1, "ops.commands": 1}  # every other trading topic: 8 (infra/topics.yaml)
Rec = tuple[str, dict[str, Any], Any, int]  # (schema, value, key, timestamp_ns)


def order_flow(orders: int, seed: int = 7) -> Chain:
    """The chain after ``orders`` synthetic order commands (see the module docstring); same seed, same records."""
    rng = random.Random(seed)
    chain = Chain(dropcopy=DropCopyConfig())  # the shipped drop copy: a few breaks for reconcile
    for s in SYMBOLS:
        chain.start(s)
    mids = {s["symbol"]: 1_870_000 for s in SYMBOLS}
    live: list[tuple[str, str, str]] = []  # (account, cid, symbol) maybe still open
    for i in range(orders):
        chain.tick(100_000)  # 10k commands/s of event time
        if i % 50 == 0:
            for sym in mids:
                mids[sym] += 100 * rng.choice((-1, 0, 1))
                chain.quote(sym, mids[sym] - 500, mids[sym] + 500)
        r = rng.random()
        if r < 0.1 and live:
            account, cid, sym = live.pop(rng.randrange(len(live)))
            v = {"account": account, "symbol": sym, "client_order_id": cid, "reason": None, "ts_ns": chain.now}
            chain.send("orders.in", "hftstream.orders.CancelOrder", v, account)
        elif r < 0.2 and live:
            account, cid, sym = live[rng.randrange(len(live))]
            chain.replace(account, cid, qty=rng.randint(1, 20), symbol=sym)
        else:
            sym = rng.choice(SYMBOLS)["symbol"]
            account = rng.choice(ACCOUNTS)
            side = rng.choice(("BUY", "SELL"))
            price = mids[sym] + 100 * rng.randint(-3, 3)
            cid = chain.new(account, side, rng.randint(1, 20), price, symbol=sym)
            live.append((account, cid, sym))
            if len(live) > 2000:
                live.pop(0)
    return chain


def inputs_of(name: str, chain: Chain) -> dict[str, list[Rec]]:
    """The records of each input topic of processor ``name``, as the chain wrote them."""
    proc = PROCESSORS[name](default_config(PROCESSORS[name]), 0)
    return {i.topic: list(chain.records.get(i.topic, [])) for i in proc.inputs}


def prefixed(cls: type[Processor], prefix: str) -> type[Processor]:
    """``cls`` on ``<prefix><topic>`` for every input and output (so the benchmark can share a broker)."""

    class Prefixed(cls):  # type: ignore[valid-type,misc]
        def __init__(self, config: Any, task: int) -> None:
            super().__init__(config, task)
            self.inputs = tuple(Input(prefix + i.topic, i.scope) for i in self.inputs)
            self.outputs = tuple(prefix + t for t in self.outputs)

        def process_batch(self, msgs: list[Message]) -> list[Result]:  # type: ignore[override]
            results = super().process_batch(msgs)
            for r in results:
                if isinstance(r, list):
                    r[:] = [o._replace(topic=prefix + o.topic) for o in r]
            return results

    return Prefixed


def value_transform(repo: SchemaRepo) -> Callable[[bytes], bytes]:
    """Decode a single-object-framed value with fastavro (its writer schema by fingerprint) and encode it again."""
    cache: dict[bytes, Any] = {}

    def transform(data: bytes) -> bytes:
        header = data[:10]
        parsed = cache.get(header)
        if parsed is None:
            version = repo.by_fingerprint(header[2:])
            assert version is not None, header
            parsed = cache[header] = version.parsed
        value = schemaless_reader(BytesIO(data[10:]), parsed, None)
        out = BytesIO()
        out.write(header)
        schemaless_writer(out, parsed, value)
        return out.getvalue()

    return transform


def publish(log: KafkaLog, serde: Serde, prefix: str, topics: dict[str, list[Rec]], combined: str) -> int:
    """Each input topic under ``prefix`` (catalog partitions, keyed), and every record once more into ``combined``."""
    n = 0
    with log.producer() as producer:
        for topic, recs in topics.items():
            for schema, value, key, ts in recs:
                data = serde.encode(schema, value)
                k = key.encode() if isinstance(key, str) else key
                producer.produce(prefix + topic, data, k, timestamp_ns=ts)
                producer.produce(combined, data, k, timestamp_ns=ts)
                n += 1
    return n


def measure(bootstrap: str, name: str, chain: Chain, serde: Serde) -> dict[str, Any]:
    """One processor: runtime exactly-once vs the decode/encode passthrough on the same input records."""
    cls = PROCESSORS[name]
    config = default_config(cls)
    topics = inputs_of(name, chain)
    log = KafkaLog(bootstrap)
    prefix = f"bench-{uuid.uuid4().hex[:6]}-"
    combined = f"{prefix}combined"
    proto = cls(config, 0)
    for t in [*topics, *proto.outputs]:
        log.create_topic(TopicSpec(prefix + t, PARTITIONS.get(t, 8)))
    log.create_topic(TopicSpec(combined, 8))
    runner_name = f"{prefix}{name}"
    try:
        records = publish(log, serde, prefix, topics, combined)
        runner = TimedRunner(log, serde, prefixed(cls, prefix), config,
                             RunOptions(batch=BATCH, commit_interval_ms=COMMIT_MS, until_idle=True), name=runner_name)
        counts = runner.run()
        assert runner.first_process is not None and runner.last_commit is not None
        secs = runner.last_commit - runner.first_process
        assert counts.records_in >= records and counts.reconciles(), (name, counts.records_in, records)
        ceiling = passthrough(bootstrap, combined, commit_every=BATCH, commit_interval_ms=COMMIT_MS, transform=value_transform(serde.repo))
        assert ceiling.records == records
    finally:
        for t in [*(prefix + x for x in [*topics, *proto.outputs]), combined, dlq_topic(runner_name), state_topic(runner_name)]:
            try:
                log.delete_topic(t)
            except Exception:  # already gone
                pass
        log.delete_group(group_of(runner_name))
        log.close()
    mix = ", ".join(f"{t} {len(r):,}" for t, r in topics.items() if r)
    return {
        "name": f"{name} exactly-once on Kafka",
        "subject": f"Runner + {name}, 8 tasks",
        "subject_rate": records / secs,
        "limit": "raw transactional passthrough of the same records, fastavro decode + encode",
        "limit_rate": ceiling.rate,
        "unit": "input records/s",
        "note": f"{records:,} input records ({mix}); {counts.records_out:,} records out ({counts.records_out / secs:,.0f}/s), "
                f"{counts.dead_letters} dead letters, "
                f"{counts.commits} commits; commit every {BATCH} records or {COMMIT_MS} ms on both sides; broker {bootstrap}",
    }


def run(quick: bool = False, bootstrap: str | None = None, only: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per trading processor. Starts and stops a broker when ``bootstrap`` is None."""
    if bootstrap is None:
        from streams.cli.dev import load_launcher

        handle = load_launcher().start_broker()
        try:
            return run(quick, handle.bootstrap, only)
        finally:
            handle.stop()
    serde = Serde(SchemaRepo.load())
    t0 = time.perf_counter()
    chain = order_flow(2_000 if quick else 10_000)
    print(f"order flow generated in {time.perf_counter() - t0:.1f} s: "
          + ", ".join(f"{t} {len(r):,}" for t, r in sorted(chain.records.items())), file=sys.stderr)
    return [measure(bootstrap, name, chain, serde) for name in (only or TRADING)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", help="use this broker instead of starting one")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", help=f"comma-separated processors ({', '.join(TRADING)})")
    args = parser.parse_args()
    started = time.monotonic()
    for row in run(args.quick, args.bootstrap, args.only.split(",") if args.only else None):
        print(f"{row['name']:36s} {row['subject_rate']:>10,.0f} vs {row['limit_rate']:>10,.0f} {row['unit']}  "
              f"ratio {row['subject_rate'] / row['limit_rate']:.2f}")
        print(f"    {row['note']}")
    print(f"({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
