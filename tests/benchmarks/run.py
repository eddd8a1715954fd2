"""Run every benchmark and write BENCH.md. Not a test: ``make bench`` (or ``python tests/benchmarks/run.py``).

Each ``bench_*.py`` beside this file exposes ``run(quick: bool = False) -> list[dict]``; a dict holds
``name, subject, subject_rate, limit, limit_rate, unit`` (``limit_rate`` ``None`` for an absolute figure with
nothing to compare against, e.g. a restart time in seconds) and optionally ``target`` (a ratio or an
absolute rate the issue asks for) and ``note``. Every ratio is against a limit measured in the same run.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))  # the modules import their siblings (bench_kafka_eos, runtime_worker...)
MODULES = [
    "bench_serde", "bench_embedded", "bench_kafka", "bench_kafka_eos", "bench_decoders", "bench_normalize", "bench_runtime",
    "bench_matching", "bench_risk", "bench_trading", "bench_tape", "bench_demo", "bench_native",
]


def _load(name: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses (and sibling imports) look modules up there
    spec.loader.exec_module(module)
    return module


def _fmt_rate(rate: float | None, unit: str) -> str:
    if rate is None:
        return "—"
    return f"{rate:,.2f} {unit}" if unit in ("s", "ms") else f"{rate:,.0f} {unit}"


def _target(row: dict) -> str:
    target = row.get("target")
    if target is None:
        return ""
    ratio = row["subject_rate"] / row["limit_rate"] if row.get("limit_rate") else 0.0
    if isinstance(target, float) and target <= 1.0:
        return f"≥ {target:.2f} ({'met' if ratio >= target else 'NOT met'})"
    return f"≥ {target:,} {row['unit']} ({'met' if row['subject_rate'] >= target else 'NOT met'})"


def render(rows: list[dict], command: str, elapsed: float) -> str:
    """BENCH.md text for ``rows``."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    lines = [
        "# Benchmarks",
        "",
        f"Produced by `{command}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit `{commit or 'uncommitted'}`,",
        f"Python {platform.python_version()} on {platform.machine()} ({platform.system()}), {elapsed:.0f} s.",
        "Every ratio is hftstream's rate divided by the limit's rate **measured in the same run** on the same records.",
        "",
        "| benchmark | hftstream | rate | limit (same run) | limit rate | ratio | target |",
        "|---|---|---:|---|---:|---:|---|",
    ]
    for r in rows:
        ratio = f"{r['subject_rate'] / r['limit_rate']:.2f}" if r.get("limit_rate") else "—"
        lines.append(
            f"| {r['name']} | {r['subject']} | {_fmt_rate(r['subject_rate'], r['unit'])} | {r['limit']} | "
            f"{_fmt_rate(r.get('limit_rate'), r['unit'])} | {ratio} | {_target(r)} |"
        )
    notes = [f"- **{r['name']}**: {r['note']}" for r in rows if r.get("note")]
    if notes:
        lines += ["", "Notes:", ""] + notes
    profiles = HERE / "PROFILES.md"  # where the time goes for missed targets, and what would close the gap
    if profiles.exists():
        lines += ["", profiles.read_text().rstrip()]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer records (a smoke run, not for BENCH.md)")
    parser.add_argument("--only", action="append", help=f"run only these modules ({', '.join(MODULES)})")
    parser.add_argument("--bootstrap", help="Kafka broker for the Kafka benchmarks (default: each starts its own via the launcher)")
    parser.add_argument("--out", type=Path, help="write the markdown here (e.g. BENCH.md)")
    args = parser.parse_args()
    started = time.monotonic()
    rows: list[dict] = []
    for name in args.only or MODULES:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        module = _load(name)
        kwargs = {"bootstrap": args.bootstrap} if "bootstrap" in inspect.signature(module.run).parameters else {}
        rows.extend(module.run(quick=args.quick, **kwargs))
    command = "make bench" if not args.quick and not args.only else "python tests/benchmarks/run.py " + " ".join(sys.argv[1:])
    text = render(rows, command, time.monotonic() - started)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
