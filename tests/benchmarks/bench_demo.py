"""``hftstream demo`` end to end on the embedded log: orders/s unpaced, and order-to-outcome latency paced.

Rows (absolute figures; the issue's targets are absolute):
* demo, unpaced: orders.in commands / wall time of the lockstep pipeline (every processor, exactly-once);
* latency paced at 10k orders/s (the issue's row) and paced below the measured capacity, so the second
  row measures the pipeline and not a backlog.
Runs the real console script in a subprocess on a fresh directory each time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HFTSTREAM = str(Path(sys.executable).with_name("hftstream"))


PACED_TARGET_RATE = 2_000  # issue 13: order -> outcome p99 < 50 ms, live, paced at 2,000 orders/s


def _demo(data: str, *args: str) -> dict:
    proc = subprocess.run([HFTSTREAM, "--data", data, "demo", "--no-verify", "--json", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout)


def run(quick: bool = False) -> list[dict]:
    """Three rows: unpaced orders/s, p99 latency paced at 2,000 orders/s (target < 50 ms) and at 10,000 (reported)."""
    orders = 4_000 if quick else 20_000
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        # one core and two cores alternately, three times each (a run is ~3 s: one run is at the mercy of the machine);
        # the median of each
        ones, twos = [], []
        for i in range(1 if quick else 3):
            t0 = time.monotonic()
            ones.append((_demo(f"{tmp}/a{i}", "--orders", str(orders), "--events", str(orders), "--no-latency"), time.monotonic() - t0))
            twos.append(_demo(f"{tmp}/t{i}", "--orders", str(orders), "--events", str(orders), "--no-latency", "--cores", "2"))
        ones.sort(key=lambda x: x[0]["orders_per_s"])
        twos.sort(key=lambda x: x["orders_per_s"])
        r, wall = ones[len(ones) // 2]
        two = twos[len(twos) // 2]
        if two["digest"] != r["digest"]:
            raise RuntimeError("--cores 2 gave another digest than one core")
        capacity = r["orders_per_s"]
        paced = PACED_TARGET_RATE
        fast = _demo(f"{tmp}/b", "--orders", "2000", "--events", "2000", "--latency-rate", "10000",
                     "--latency-orders", str(5_000 if quick else 20_000))
        slow = _demo(f"{tmp}/c", "--orders", "2000", "--events", "2000", "--latency-rate", str(paced),
                     "--latency-orders", str(max(500, paced * 5)))
    rows = [{
        "name": "demo, embedded, unpaced",
        "subject": f"hftstream demo --orders {orders:,} --events {orders:,}",
        "subject_rate": float(capacity), "limit": "—", "limit_rate": None, "unit": "orders/s", "target": 10_000,
        "note": f"pipeline {r['pipeline_s']:.1f} s of {wall:.1f} s wall (publish, summary); {r['fills']:,} fills; seconds per "
                f"stage: {', '.join(f'{k} {v:.1f}' for k, v in r['stage_seconds'].items())}; median of {len(ones)}",
    }, {
        "name": "demo, embedded, unpaced, two cores (--cores 2)",
        "subject": f"hftstream demo --orders {orders:,} --events {orders:,} --cores 2",
        "subject_rate": float(two["orders_per_s"]), "limit": "the one-core run above", "limit_rate": float(capacity),
        "unit": "orders/s", "target": 10_000,
        "note": f"pipeline {two['pipeline_s']:.1f} s, same digest as one core; "
                + "; ".join(f"{k} core ({', '.join(c['stages'])}): first step after {c['first_step_s']:.2f} s, waited "
                            f"{c['waited_s']:.2f} s" for k, c in two["cores"].items())
                + f"; median of {len(twos)}",
    }]
    for name, res, target in (("paced at 10,000 orders/s", fast, None), (f"paced at {paced:,} orders/s", slow, 50.0)):
        lat = res["latency_ms"]
        verdict = "report p50/p99" if target is None else f"target p99 < {target:.0f} ms ({'met' if lat['p99'] < target else 'NOT met'})"
        rows.append({
            "name": f"order -> outcome latency, embedded, {name}",
            "subject": "p99 append-to-visible, ms", "subject_rate": float(lat["p99"]), "limit": "—", "limit_rate": None,
            "unit": "ms",
            "note": f"p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms, max {lat['max']:.1f} ms over {lat['measured']:,} orders "
                    f"({lat['missing']} without outcome); {verdict}",
        })
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(f"{row['name']}: {row['subject_rate']:,.1f} {row['unit']}  |  {row['note']}")
