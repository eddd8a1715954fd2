"""Rows 6 and 7 of bench_runtime: restart after SIGKILL, and end-to-end latency per commit interval.

Both run the runtime in a subprocess (``runtime_worker.py``) and measure from outside:

* restart (embedded log): a worker processes the input and is SIGKILLed once it reported
  the last commit; one new record is appended; the time from spawning a new worker to its
  first commit (which holds the new record) is the restart time. Case (a): no snapshot after
  each task's first commit, so recovery replays every later manifest's inputs; case (b): a
  snapshot at every commit, so recovery restores it and replays nothing. Interpreter start
  and imports (~1 s) are included: that is what an operator waits for.
* latency (Kafka): the benchmark produces NewOrder records at a fixed rate, each carrying
  ``time.time_ns()`` of its ``produce()`` call in ``ts_ns``; the passthrough copies the value;
  a ``read_committed`` reader of the output notes the wall clock when it sees each record.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from runtime_worker import ORDER, PARTITIONS, make_orders
from streams.log import Log, TopicSpec, open_log
from streams.log.kafka import KafkaLog
from streams.serde import Serde
from streams.serde.samples import sample

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
WORKER = HERE / "runtime_worker.py"
WARMUP_S = 1.0  # latency: records produced this long after the start are not in the percentiles
FIRST_BATCH = 5000  # the worker's batch: each task's first commit (and snapshot) covers these


class Worker:
    """A ``runtime_worker.py`` subprocess and its report lines."""

    def __init__(self, *args: str) -> None:
        self.started = time.perf_counter()
        self.seen: list[tuple[str, float]] = []
        self.proc = subprocess.Popen([sys.executable, str(WORKER), *args], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                                     env={**os.environ, "PYTHONPATH": str(HERE.parent)})

    def wait_for(self, pred: Any, timeout: float) -> float:
        """Seconds from spawn to the first report line (seen before or read now) satisfying ``pred``."""
        for line, at in self.seen:
            if pred(line):
                return at
        timer = threading.Timer(timeout, self.proc.kill)
        timer.start()
        try:
            assert self.proc.stdout is not None
            for raw in self.proc.stdout:
                line, at = raw.strip(), time.perf_counter() - self.started
                self.seen.append((line, at))
                if pred(line):
                    return at
        finally:
            timer.cancel()
        raise TimeoutError(f"worker {' '.join(self.proc.args[2:])} did not report in {timeout}s (exit {self.proc.poll()})")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()


def _committed_at_least(n: int) -> Any:
    return lambda line: line.startswith("commit ") and int(line.split()[1]) >= n


def _restart(url: str, log: Log, serde: Serde, n: int, case: str, snapshot_every: int) -> tuple[float, float, int]:
    """(seconds to 'ready', seconds to the first commit, records replayed) of a worker restarted after SIGKILL over ``n`` processed records."""
    source = make_orders(log, serde, n, prefix=f"bench-restart-{case}", partitions=1)  # one task: one snapshot, then n
    name = f"{source}-run"
    sink = f"{name}-out"
    log.create_topic(TopicSpec(sink, 1))
    args = ["--log", url, "--source", source, "--sink", sink, "--name", name, "--processor", "tally",
            "--snapshot-every", str(snapshot_every), "--no-record-snapshots", "--batch", str(FIRST_BATCH)]
    first = Worker(*args)
    first.wait_for(_committed_at_least(n), timeout=600)
    first.kill()
    with log.producer() as producer:  # one new record after the crash
        producer.produce(source, serde.encode(ORDER, sample(serde.repo.current(ORDER).schema, 0)), b"after-crash")
    second = Worker(*args)
    ready = second.wait_for(lambda line: line.startswith("ready"), timeout=600)
    replayed = int(next(line for line, _ in second.seen if line.startswith("ready")).split()[1])
    done = second.wait_for(_committed_at_least(1), timeout=600)
    second.stop()
    return ready, done, replayed


def restart_rows(serde: Serde, n: int) -> list[dict]:
    """Row 6: (a) ``n`` records since the last snapshot, (b) a snapshot at the last commit."""
    with tempfile.TemporaryDirectory(prefix="hftstream-bench-restart-") as tmp:
        url = f"embedded://{tmp}/log"
        log = open_log(url)
        try:
            a = _restart(url, log, serde, n + FIRST_BATCH, "a", 10**9)
            b = _restart(url, log, serde, n + FIRST_BATCH, "b", 1)
        finally:
            log.close()
    common = ("embedded log, one partition (one task); Tally processor (passthrough + a count per key) via runtime_worker.py; time from spawning the "
              "restarted process (interpreter start and imports included) to its first commit holding one record appended "
              "after the SIGKILL")
    return [
        {
            "name": f"restart after SIGKILL, {n:,} records since the last snapshot",
            "subject": "spawn -> recovered (replay) -> first new record committed",
            "subject_rate": a[1],
            "limit": "— (absolute)",
            "limit_rate": None,
            "unit": "s",
            "note": f"{common}; tasks recovered after {a[0]:.2f} s ({a[2]:,} records replayed); the snapshot is the first commit's "
                    f"(first {FIRST_BATCH:,} records), never again (--snapshot-every 10^9, no record-count snapshots)",
        },
        {
            "name": "restart after SIGKILL, snapshot at the last commit",
            "subject": "spawn -> recovered (snapshot) -> first new record committed",
            "subject_rate": b[1],
            "limit": "— (absolute)",
            "limit_rate": None,
            "unit": "s",
            "note": f"{common}; tasks recovered after {b[0]:.2f} s ({b[2]:,} records replayed); {n + FIRST_BATCH:,} records processed before the kill, snapshot every commit",
        },
    ]


# -- latency --------------------------------------------------------------------------------


def _percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else (values or [0.0])[0]


def _latency(bootstrap: str, serde: Serde, commit_ms: int, rate: int, seconds: float, warmup: float = WARMUP_S) -> tuple[float, float, float, int]:
    """(p50 ms, p99 ms, delivered msgs/s, records) for one commit interval; records produced in the first ``warmup``
    seconds are delivered but left out of the percentiles (first fetches, metadata, the worker's first commits)."""
    log = KafkaLog(bootstrap)
    run = uuid.uuid4().hex[:8]
    source, sink, name = f"bench-lat-in-{run}", f"bench-lat-out-{run}", f"bench-lat-{run}"
    for t in (source, sink):
        log.create_topic(TopicSpec(t, PARTITIONS))
    worker = Worker("--log", f"kafka://{bootstrap}", "--source", source, "--sink", sink, "--name", name,
                    "--commit-ms", str(commit_ms), "--batch", "5000")
    total = int(rate * (warmup + seconds))
    latencies: list[float] = []
    cutoff = 0
    try:
        worker.wait_for(lambda line: line.startswith("ready"), timeout=120)
        reader = log.reader([(sink, p, 0) for p in range(PARTITIONS)])
        decode = serde.decode

        def consume() -> None:
            deadline = time.monotonic() + seconds + 30
            while len(latencies) < total and time.monotonic() < deadline:
                for rec in reader.poll(1000, timeout=0.05):
                    sent = decode(rec.value).value["ts_ns"]
                    latencies.append((time.time_ns() - sent) / 1e6 if sent >= cutoff else -1.0)

        thread = threading.Thread(target=consume)
        thread.start()
        template = [sample(serde.repo.current(ORDER).schema, seed) for seed in range(64)]
        producer = log.producer()
        started = time.perf_counter()
        cutoff = time.time_ns() + int(warmup * 1e9)
        for i in range(total):
            due = started + i / rate
            while (wait := due - time.perf_counter()) > 0:
                time.sleep(wait)
            value = template[i % 64]
            value["ts_ns"] = time.time_ns()
            producer.produce(source, serde.encode(ORDER, value), value["account"].encode())
        producer.flush()
        thread.join()
        elapsed = time.perf_counter() - started
        reader.close()
    finally:
        worker.stop()
        for t in (source, sink, f"dlq.{name}", f"state.{name}"):
            log.delete_topic(t)
        log.delete_group(f"hftstream.{name}")
        log.close()
    steady = [x for x in latencies if x >= 0]
    return _percentile(steady, 50), _percentile(steady, 99), len(latencies) / elapsed, len(steady)


def latency_rows(bootstrap: str, serde: Serde, seconds: float, rate: int = 2000) -> list[dict]:
    """Row 7: one row per commit interval (10, 50, 100 ms): delivered rate vs offered rate, p50/p99 in the note."""
    rows = []
    for commit_ms in (10, 50, 100):
        p50, p99, delivered, n = _latency(bootstrap, serde, commit_ms, rate, seconds)
        rows.append({
            "name": f"end-to-end latency, commit every {commit_ms} ms",
            "subject": "Runner + Passthrough on Kafka (subprocess), output seen by a read_committed reader",
            "subject_rate": delivered,
            "limit": "offered input rate",
            "limit_rate": float(rate),
            "unit": "msgs/s",
            "note": f"**p50 {p50:.1f} ms, p99 {p99:.1f} ms** (produce() call -> output visible read_committed), {n:,} records "
                    f"over {seconds:g} s at {rate:,}/s after a {WARMUP_S:g} s warm-up; includes the input producer's linger.ms=5; broker {bootstrap}",
        })
    return rows
