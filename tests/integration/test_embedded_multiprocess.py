"""The embedded log shared by real processes: SIGKILLed writers, concurrent writers, a live reader.

Every child is ``sys.executable -c SCRIPT`` on the same directory; nothing is mocked.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from streams.log.base import Record, TopicSpec
from streams.log.embedded import EmbeddedLog

pytestmark = pytest.mark.slow

SEGMENT_BYTES = 256 * 1024  # small, so segments roll under the writers' feet
KILL_PAD = 4000


def _value(writer: int, i: int, pad: int = 0) -> bytes:
    """The deterministic payload of record ``i`` of ``writer`` (the children compute the same)."""
    return f"w{writer}:{i:09d}:".encode() + bytes([65 + (i % 26)]) * (40 + i % 60 + pad)


_VALUE_SRC = (
    "def value(writer, i, pad=0):\n"
    "    return f'w{writer}:{i:09d}:'.encode() + bytes([65 + (i % 26)]) * (40 + i % 60 + pad)\n"
)


def _child(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _VALUE_SRC + textwrap.dedent(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )


def _read_all(log: EmbeddedLog, topic: str = "t", *, read_committed: bool = True) -> list[Record]:
    out: list[Record] = []
    with log.reader([(topic, 0, 0)], read_committed=read_committed) as reader:
        while batch := reader.poll(10_000):
            out.extend(batch)
    return out


WRITER = """
import sys, random
from streams.log.embedded import EmbeddedLog
root, writer, total, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
log = EmbeddedLog(root, segment_bytes=int(sys.argv[5]))
pad = int(sys.argv[6])
producer = log.producer()
rng = random.Random(seed)
i = 0
while i < total:
    for _ in range(min(rng.randint(1, 3000), total - i)):
        producer.produce("t", value(writer, i, pad), str(writer).encode(), partition=0, timestamp_ns=i)
        i += 1
    print("flushing", flush=True)
    producer.flush()
    print(i, flush=True)  # acknowledged: flush() returned
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_sigkilled_writer_loses_no_acknowledged_record(tmp_path: Path, seed: int) -> None:
    root = tmp_path / "log"
    log = EmbeddedLog(root, segment_bytes=SEGMENT_BYTES)
    log.create_topic(TopicSpec("t"))
    rng = random.Random(seed)
    # big values: a batch is megabytes, so the kill often lands inside os.write (a torn tail)
    child = _child(WRITER, str(root), "0", str(10**9), str(seed), str(SEGMENT_BYTES), str(KILL_PAD))
    assert child.stdout is not None
    acked = 0
    kill_at = rng.randint(2, 12)  # the flush during which to kill...
    flushes = 0
    while flushes < kill_at:
        line = child.stdout.readline().strip()
        assert line, child.stderr.read() if child.stderr else "writer died"
        if line == "flushing":
            flushes += 1
        else:
            acked = int(line)
    time.sleep(rng.uniform(0.0, 0.03))  # ...after a seeded delay: mid-encode, mid-os.write (a torn tail) or after
    child.send_signal(signal.SIGKILL)
    rest, _ = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL
    for line in rest.split():  # lines printed before the kill: acknowledged too
        if line != "flushing":
            acked = int(line)
    assert acked > 0

    reopened = EmbeddedLog(root, segment_bytes=SEGMENT_BYTES)
    # every acknowledged record is visible: flush() returns after the batch's last stable offset is stored
    assert len(_read_all(reopened)) >= acked
    # on disk there may be a few unacknowledged ones too (a batch cut by the kill before its ~lso update:
    # read_committed readers see them once the next append stores its end, as below)
    records = _read_all(reopened, read_committed=False)
    assert len(records) >= acked
    assert [r.offset for r in records] == list(range(len(records)))
    for r in records:
        assert r.value == _value(0, r.offset, KILL_PAD) and r.timestamp_ns == r.offset and r.key == b"0"
    with reopened.producer() as producer:  # appendable again, right after the last intact record
        producer.produce("t", b"after the crash", partition=0, timestamp_ns=0)
    again = _read_all(EmbeddedLog(root))
    assert [r.offset for r in again] == list(range(len(records) + 1))
    assert again[-1].value == b"after the crash"
    shutil.rmtree(root)  # tens of MB: do not leave them in pytest's kept temp dirs (kept on failure)


@pytest.mark.timeout(120)
def test_two_writer_processes_share_one_partition(tmp_path: Path) -> None:
    root = tmp_path / "log"
    log = EmbeddedLog(root, segment_bytes=SEGMENT_BYTES)
    log.create_topic(TopicSpec("t"))
    total = 60_000
    children = [_child(WRITER, str(root), str(w), str(total), str(w + 10), str(SEGMENT_BYTES), "0") for w in (1, 2)]
    for child in children:
        out, err = child.communicate(timeout=90)
        assert child.returncode == 0, err
        assert out.split()[-1] == str(total)
    records = _read_all(EmbeddedLog(root))
    assert [r.offset for r in records] == list(range(2 * total))  # contiguous: no gap, no duplicate
    for w in (1, 2):
        mine = [r for r in records if r.key == str(w).encode()]
        assert [r.timestamp_ns for r in mine] == list(range(total))  # each writer's order kept, nothing lost
        assert all(r.value == _value(w, r.timestamp_ns) for r in mine)  # nothing torn or interleaved
    batches = sum(1 for a, b in zip(records, records[1:]) if a.key != b.key)
    assert batches > 4  # the writers really did interleave their batches
    assert len(list((root / "t" / "0").glob("*.log"))) > 2  # and rolled segments while doing so
    shutil.rmtree(root)


READER = """
import sys, json, time
from streams.log.embedded import EmbeddedLog
root, total = sys.argv[1], int(sys.argv[2])
log = EmbeddedLog(root)
reader = log.reader([("t", 0, 0)])
seen, errors, bad = [], [], 0
deadline = time.monotonic() + 60
print("ready", flush=True)
while len(seen) < total and time.monotonic() < deadline:
    try:
        batch = reader.poll(5000, timeout=0.2)
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
        break
    for r in batch:
        if r.value != value(0, r.timestamp_ns):
            bad += 1
        seen.append(r.offset)
extra = reader.poll(10, timeout=0.3)  # nothing may come twice
print(json.dumps({"offsets_ok": seen == list(range(total)), "count": len(seen), "bad": bad,
                  "errors": errors, "extra": len(extra)}), flush=True)
"""


@pytest.mark.timeout(120)
def test_reader_process_sees_every_record_exactly_once_while_a_writer_appends(tmp_path: Path) -> None:
    root = tmp_path / "log"
    log = EmbeddedLog(root, segment_bytes=SEGMENT_BYTES)
    log.create_topic(TopicSpec("t"))
    total = 60_000
    reader = _child(READER, str(root), str(total))
    assert reader.stdout is not None and reader.stdout.readline().strip() == "ready"
    rng = random.Random(5)
    i = 0
    with log.producer() as producer:
        while i < total:
            for _ in range(min(rng.randint(1, 2000), total - i)):
                producer.produce("t", _value(0, i), partition=0, timestamp_ns=i)
                i += 1
            producer.flush()
            time.sleep(rng.uniform(0, 0.01))  # the reader catches up, waits, and catches up again
    out, err = reader.communicate(timeout=90)
    assert reader.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result == {"offsets_ok": True, "count": total, "bad": 0, "errors": [], "extra": 0}
