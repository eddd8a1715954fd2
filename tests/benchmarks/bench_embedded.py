"""Embedded log throughput: append through the Producer API and read through Reader.poll.

Each rate is compared with a limit measured in the same run on the same bytes:

* append: ``produce()`` in a loop then ``flush()`` (fsync=never; the producer auto-flushes
  every 16,384 records) vs. ``os.write`` of the very same segment bytes in the same batch
  sizes to a fresh file (the disk / page-cache limit). Also reported against the issue's
  absolute target of 300,000 records/s for 100-byte values.
* read: ``Reader.poll(10_000)`` until every record is back vs. ``os.read`` of the same
  segment files in 1 MiB chunks plus the minimum per-record ``struct.unpack_from`` walk of
  the record headers (no CRC, no objects).

Best of several repetitions (the machine is shared). Run ``python tests/benchmarks/run.py --only bench_embedded``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from streams.log.base import TopicSpec  # noqa: E402
from streams.log.embedded import EmbeddedLog  # noqa: E402
from streams.log.embedded.producer import MAX_BUFFERED_RECORDS  # noqa: E402
from streams.log.embedded.segment import HEADER, list_segments  # noqa: E402

VALUE_BYTES = 100
TARGET = 300_000


def _append(root: Path, n: int, value: bytes) -> tuple[float, Path]:
    log = EmbeddedLog(root, fsync="never")
    log.create_topic(TopicSpec("bench"))
    producer = log.producer()
    produce = producer.produce
    started = time.perf_counter()
    for _ in range(n):
        produce("bench", value)
    producer.flush()
    elapsed = time.perf_counter() - started
    log.close()
    return elapsed, root / "bench" / "0"


def _segment_bytes(directory: Path) -> list[Path]:
    return [directory / f"{b:020d}.log" for b in list_segments(directory)]


def _raw_write(files: list[Path], n: int, scratch: Path) -> float:
    """os.write the same bytes, in the producer's batch sizes, to a fresh file."""
    data = b"".join(p.read_bytes() for p in files)
    per_batch = len(data) * MAX_BUFFERED_RECORDS // n  # same records per write -> same bytes per write
    chunks = [data[i : i + per_batch] for i in range(0, len(data), per_batch)]
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
    try:
        started = time.perf_counter()
        for chunk in chunks:
            os.write(fd, chunk)
        return time.perf_counter() - started
    finally:
        os.close(fd)
        os.unlink(scratch)


def _read(root: Path, n: int) -> float:
    log = EmbeddedLog(root)
    reader = log.reader([("bench", 0, 0)])
    poll = reader.poll
    got = 0
    started = time.perf_counter()
    while got < n:
        got += len(poll(10_000))
    elapsed = time.perf_counter() - started
    reader.close()
    assert got == n, (got, n)
    return elapsed


def _raw_read(files: list[Path], n: int) -> float:
    """os.read of the same files in 1 MiB chunks + walking every record header with unpack_from."""
    unpack = HEADER.unpack_from
    header = HEADER.size
    count = 0
    started = time.perf_counter()
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            buf = b""
            while chunk := os.read(fd, 1 << 20):
                buf = buf + chunk if buf else chunk
                pos, end = 0, len(buf)
                while end - pos >= header:
                    size = unpack(buf, pos)[0]
                    if pos + 4 + size > end:
                        break
                    pos += 4 + size
                    count += 1
                buf = buf[pos:]
        finally:
            os.close(fd)
    elapsed = time.perf_counter() - started
    assert count == n, (count, n)
    return elapsed


def run(quick: bool = False) -> list[dict]:
    """Measure append and read throughput; return rows for BENCH.md (see tests/benchmarks/run.py)."""
    n = 200_000 if quick else 1_000_000
    repeats = 1 if quick else 3
    value = bytes(range(VALUE_BYTES))
    best = {"append": float("inf"), "write": float("inf"), "read": float("inf"), "raw_read": float("inf")}
    base = Path(tempfile.mkdtemp(prefix="hftstream-bench-"))
    try:
        for rep in range(repeats):
            root = base / f"run{rep}"
            elapsed, directory = _append(root, n, value)
            best["append"] = min(best["append"], elapsed)
            files = _segment_bytes(directory)
            best["write"] = min(best["write"], _raw_write(files, n, base / "raw.log"))
            best["read"] = min(best["read"], _read(root, n))
            best["raw_read"] = min(best["raw_read"], _raw_read(files, n))
            shutil.rmtree(root)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    append_rate = n / best["append"]
    note = f"{n:,} records of {VALUE_BYTES}-byte values, one partition, fsync=never, best of {repeats}"
    return [
        {
            "name": "embedded append",
            "subject": "Producer.produce() loop + flush()",
            "subject_rate": append_rate,
            "limit": "os.write of the same bytes, same batch sizes",
            "limit_rate": n / best["write"],
            "unit": "records/s",
            "note": note,
        },
        {
            "name": "embedded append (absolute)",
            "subject": "Producer.produce() loop + flush()",
            "subject_rate": append_rate,
            "limit": "the issue's target",
            "limit_rate": float(TARGET),
            "unit": "records/s",
            "target": TARGET,
        },
        {
            "name": "embedded read",
            "subject": "Reader.poll(10_000) until all read",
            "subject_rate": n / best["read"],
            "limit": "os.read 1 MiB chunks + per-record struct.unpack_from",
            "limit_rate": n / best["raw_read"],
            "unit": "records/s",
            "note": note,
        },
    ]


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    for row in run(quick=quick):
        print(f"{row['name']:28} {row['subject_rate']:>12,.0f}  vs {row['limit']}: {row['limit_rate']:,.0f} {row['unit']}")
