"""Exactly-once on the embedded log under SIGKILL: a transactional copier killed again and again.

A child process copies ``in`` (2 partitions) to ``out`` (3 partitions, by key) in
transactions that commit the input offsets with the output records. The parent SIGKILLs it
at random instants and at exact commit steps (the child kills itself from the commit's
step hook at each of ``transactional.STEPS``), restarts it, and
meanwhile tails ``out`` with a ``read_committed`` reader. In the end ``out`` holds every
input record exactly once (per-key order kept), and the tailing reader saw nothing that
was later rolled back. Each record carries the run that wrote it in a header, so a
rolled-back record re-written by a later run at the same offset cannot pass for it.
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from streams.log.base import Record, TopicSpec
from streams.log.embedded import EmbeddedLog, transactional
from streams.log.embedded.txn import read_marker

pytestmark = pytest.mark.slow

CHUNK = 1_000  # input records added before each run

COPIER = """
import os, random, signal, sys
from streams.log.embedded import EmbeddedLog, transactional
root, run, seed, kill_step, kill_txn, segment_bytes = sys.argv[1:7]
run, kill_txn = int(run), int(kill_txn)
log = EmbeddedLog(root, segment_bytes=int(segment_bytes))
producer = log.transactional_producer("copier")
consumer = log.group_consumer("copier", ["in"])
rng = random.Random(int(seed))
txns = 0

def hook(step):
    if step == kill_step and txns == kill_txn:
        os.kill(os.getpid(), signal.SIGKILL)

transactional.STEP_HOOK = hook
print("ready", flush=True)
while True:
    batch = consumer.poll(rng.randint(1, 400), timeout=0.05)
    if not batch:
        if all(consumer.position(t, p) >= log.watermarks(t, p)[1] for t, p in consumer.assignment()):
            break
        continue
    producer.begin()
    for r in batch:
        producer.produce("out", r.value, key=r.key, timestamp_ns=r.timestamp_ns, headers=(("run", str(run).encode()),))
    txns += 1
    producer.commit({(r.topic, r.partition): r.offset + 1 for r in batch}, consumer)
print("done", txns, flush=True)
"""


def _key(i: int) -> bytes:
    return f"k{i % 97}".encode()


def _ident(r: Record) -> tuple[int, bytes | None, bytes]:
    return (r.offset, r.value, dict(r.headers)["run"])


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("seed", "segment_bytes"), [(1, 64 * 1024 * 1024), (2, 4096)])
def test_sigkilled_transactional_copier_ends_with_every_record_exactly_once(
    tmp_path: Path, seed: int, segment_bytes: int
) -> None:
    root = tmp_path / "log"
    log = EmbeddedLog(root, segment_bytes=segment_bytes)
    log.create_topic(TopicSpec("in", partitions=2))
    log.create_topic(TopicSpec("out", partitions=3))
    written = 0

    def feed(n: int) -> None:  # more input before each run, so every run has work to be killed in
        nonlocal written
        with log.producer() as producer:
            for i in range(written, written + n):
                producer.produce("in", f"v{i:06d}".encode(), key=_key(i), timestamp_ns=i)
        written += n

    rng = random.Random(seed)
    # kills at exact steps (DECISIONS #53): after the transaction record, after the partitions point at it, after the
    # append (before the commit point), after the commit point, after the first of its partitions became visible
    planned = [(step, rng.randint(1, 3)) for step in transactional.STEPS for _ in range(2)]
    random_kills = 10
    tail = log.reader([("out", p, 0) for p in range(3)])  # read_committed
    seen: dict[int, list[tuple[int, bytes | None, bytes]]] = {p: [] for p in range(3)}
    kills = run = 0

    def drain(until: float) -> None:
        while True:
            for r in tail.poll(5000, timeout=0.01):
                seen[r.partition].append(_ident(r))
            if time.monotonic() >= until:
                return

    started = time.monotonic()
    while run < 40:
        run += 1
        final_run = not planned and not random_kills
        if not final_run:
            feed(CHUNK)
        step, txn = planned.pop() if planned else ("none", 0)
        child = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(COPIER), str(root), str(run), str(seed * 1000 + run), step, str(txn), str(segment_bytes)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready", child.stderr.read() if child.stderr else ""
        if step == "none" and not final_run:
            drain(time.monotonic() + rng.uniform(0.0, 0.1))
            child.send_signal(signal.SIGKILL)
        while child.poll() is None:
            drain(time.monotonic() + 0.02)
        out, err = child.communicate()
        if child.returncode == -signal.SIGKILL:
            kills += 1
            if step == "none":
                random_kills -= 1
            drain(time.monotonic() + 0.05)  # what the dead copier left (unresolved markers) is there to be seen
            continue
        assert child.returncode == 0, err
        assert out.startswith("done")
        if final_run:
            break
    drain(time.monotonic() + 0.3)
    tail.close()
    assert kills >= 19, f"only {kills} kills landed"  # 20 planned; a step kill may find its transaction never comes

    final: dict[int, list[Record]] = {}
    for p in range(3):
        with log.reader([("out", p, 0)]) as reader:
            final[p] = [r for batch in iter(lambda: reader.poll(10_000), []) for r in batch]
        idents = [_ident(r) for r in final[p]]
        assert [o for o, _, _ in idents] == list(range(len(idents)))
        assert seen[p] == idents[: len(seen[p])], f"out/{p}: the tailing reader saw a record that was rolled back"
        assert len(seen[p]) == len(idents)
        assert read_marker(root / "out" / str(p)) is None
        assert log.stable_offset("out", p) == log.watermarks("out", p)[1]
    values = Counter(r.value for p in final for r in final[p])
    assert values == Counter(f"v{i:06d}".encode() for i in range(written))  # nothing missing, nothing doubled
    for key in {_key(i) for i in range(written)}:  # each key's records in input order
        got = [r.value for p in final for r in final[p] if r.key == key]
        assert got == [f"v{i:06d}".encode() for i in range(written) if _key(i) == key]
    committed = log.group_consumer("copier", ["in"])
    assert [committed.committed("in", p) for p in range(2)] == [log.watermarks("in", p)[1] for p in range(2)]
    committed.close()
    assert len({run for p in final for _, _, run in map(_ident, final[p])}) > 3  # several runs contributed
    assert time.monotonic() - started < 60
    shutil.rmtree(root)
