"""The normalize processor alone (no log, no Avro): raw venue messages/s over a simulated feed.

The feed is simulated and split into per-task inputs once, up front (decoded ``Message``s, as the
runtime hands them over); only ``process_batch`` is timed, best of N rounds, a fresh processor
per round. The limit row is the venue codecs' ``decode`` alone on the same payloads: the parsing
normalize cannot avoid, so the ratio shows what the processor adds on top.

    .venv/bin/python tests/benchmarks/bench_normalize.py [--quick]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/ (normalize_support)

from connectors.venues.formats import codec_for  # noqa: E402
from connectors.venues.simulator import SimConfig, Simulation  # noqa: E402
from normalize_support import RAW_PARTITIONS, partitioned, task_messages  # noqa: E402
from streams.processors.base import Message  # noqa: E402
from streams.processors.normalize import NormalizeConfig, NormalizeProcessor  # noqa: E402

TARGET = 100_000  # raw messages/s through the whole runtime (issue 6); the processor alone must be well above it


def feed(events: int, seed: int = 1) -> list[list[Message]]:
    """Per-task inputs of a 3-venue (one per wire format), 8-symbol calm feed with 1% of each fault."""
    cfg = SimConfig(venues=3, symbols=8, events=events, seed=seed, gap_rate=0.01, dup_rate=0.01, reorder_rate=0.01, malformed_rate=0.01)
    sim = Simulation(cfg)
    parts = partitioned([*sim.instrument_records(), *sim.records()])
    return [task_messages(parts, t) for t in range(RAW_PARTITIONS)]


def measure(tasks: list[list[Message]], rounds: int = 5) -> tuple[float, float]:
    """(normalize raw messages/s, codec-decode-only messages/s), best of ``rounds``."""
    raw = [m for msgs in tasks for m in msgs if m.topic.startswith("md.raw.")]
    n = len(raw)
    instruments = [m for m in tasks[0] if m.topic == "refdata.instruments"]
    proc_rates, codec_rates = [], []
    for _ in range(rounds):
        procs = [NormalizeProcessor(NormalizeConfig(), t) for t in range(len(tasks))]
        t0 = time.perf_counter()
        for proc, msgs in zip(procs, tasks):
            proc.process_batch(msgs)
        proc_rates.append(n / (time.perf_counter() - t0))
        ref = procs[0]._ref  # the reference data the processor built from refdata.instruments
        assert len(ref) == len(instruments)
        codecs = {}
        t0 = time.perf_counter()
        for m in raw:
            v = m.value
            codec = codecs.get(v["venue"]) or codecs.setdefault(v["venue"], codec_for(v["venue"], v["format"]))
            try:
                codec.decode(v["payload"], ref)
            except Exception:  # malformed payloads: the limit pays their failure too
                pass
        codec_rates.append(n / (time.perf_counter() - t0))
    return max(proc_rates), max(codec_rates)


def run(quick: bool = False) -> list[dict]:
    """One row: normalize alone vs the venue codecs' decode alone, raw messages/s."""
    tasks = feed(20_000 if quick else 100_000)
    rate, limit = measure(tasks, rounds=3 if quick else 5)
    return [{
        "name": "normalize processor alone (pure, pre-decoded inputs)",
        "subject": "NormalizeProcessor.process_batch, 4 tasks",
        "subject_rate": rate,
        "limit": "venue codecs' decode() on the same payloads",
        "limit_rate": limit,
        "unit": "msgs/s",
        "note": "3 venues (json-decimal, json-ticks, fix), 8 symbols, 1% gaps/dups/reorders/malformed",
    }]


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(f"{row['subject']}: {row['subject_rate']:,.0f} {row['unit']}  |  {row['limit']}: {row['limit_rate']:,.0f} "
              f"{row['unit']}  (ratio {row['subject_rate'] / row['limit_rate']:.2f})")
