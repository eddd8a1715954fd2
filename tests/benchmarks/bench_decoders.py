"""The venue codecs' ``decode()`` alone, per wire format: messages/s over simulated payloads.

Payloads come from the feed simulator (3 venues, one per format, 8 symbols, 1% malformed by
default); only ``codec.decode(payload, ref)`` is timed, best of N rounds. The limit per format is
the least any decoder of that format must do with the same bytes: ``json.loads`` of the UTF-8
text for the JSON formats, one ``split`` on SOH for FIX (no checksum, no field parsing).

    .venv/bin/python tests/benchmarks/bench_decoders.py [--quick] [--profile FORMAT]
"""

from __future__ import annotations

import cProfile
import json
import pstats
import sys
import time
from collections.abc import Callable

from connectors.venues.errors import VenueFormatError
from connectors.venues.formats import FORMATS, codec_for
from connectors.venues.instruments import RefData
from connectors.venues.simulator import SimConfig, Simulation, instruments


def payloads(events: int, seed: int = 1, malformed_rate: float = 0.01) -> tuple[RefData, dict[str, tuple[str, list[bytes]]]]:
    """Reference data, and per format ``(venue, payloads)`` from a simulated 3-venue, 8-symbol feed."""
    cfg = SimConfig(venues=3, symbols=8, events=events, seed=seed, malformed_rate=malformed_rate)
    out: dict[str, tuple[str, list[bytes]]] = {}
    for rec in Simulation(cfg).records():
        v = rec.value
        out.setdefault(v["format"], (v["venue"], []))[1].append(v["payload"])
    return RefData(instruments(cfg)), out


def _rate(fn: Callable[[], None], n: int, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return n / best


def _limit(fmt: str, data: list[bytes]) -> Callable[[], None]:
    if fmt == "fix":
        def floor() -> None:
            for p in data:
                p.split(b"\x01")
    else:
        loads = json.loads

        def floor() -> None:
            for p in data:
                try:
                    loads(p.decode())
                except ValueError:
                    pass
    return floor


def run(quick: bool = False) -> list[dict]:
    """One row per format: ``codec.decode`` vs the format's parsing floor, msgs/s."""
    ref, by_format = payloads(30_000 if quick else 150_000)
    rounds = 3 if quick else 5
    rows = []
    for fmt in FORMATS:
        venue, data = by_format[fmt]
        codec = codec_for(venue, fmt)

        def decode_all(codec=codec, data=data) -> None:  # type: ignore[no-untyped-def]
            decode = codec.decode
            for p in data:
                try:
                    decode(p, ref)
                except VenueFormatError:
                    pass

        rows.append({
            "name": f"decode {fmt}",
            "subject": f"{type(codec).__name__}.decode",
            "subject_rate": _rate(decode_all, len(data), rounds),
            "limit": "json.loads of the text" if fmt != "fix" else "bytes.split on SOH",
            "limit_rate": _rate(_limit(fmt, data), len(data), rounds),
            "unit": "msgs/s",
            "note": f"{len(data):,} simulated {fmt} payloads (1% malformed), 8 symbols",
        })
    return rows


def profile(fmt: str, events: int = 60_000) -> None:
    """cProfile of ``decode`` over one format's payloads, top functions by internal time."""
    ref, by_format = payloads(events)
    venue, data = by_format[fmt]
    decode = codec_for(venue, fmt).decode
    prof = cProfile.Profile()
    prof.enable()
    for p in data:
        try:
            decode(p, ref)
        except VenueFormatError:
            pass
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(18)


if __name__ == "__main__":
    if "--profile" in sys.argv:
        profile(sys.argv[sys.argv.index("--profile") + 1])
    else:
        for row in run(quick="--quick" in sys.argv):
            print(f"{row['name']:>20}: {row['subject_rate']:>10,.0f} {row['unit']}  |  {row['limit']}: "
                  f"{row['limit_rate']:>11,.0f}  (ratio {row['subject_rate'] / row['limit_rate']:.2f})")
