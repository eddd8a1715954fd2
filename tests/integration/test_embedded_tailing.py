"""A reader tailing a partition while writer processes append and roll segments under it.

Issue 5 item 1: with small segments a tailing reader used to skip whole segments, because
listing a directory while a writer creates files may miss an entry (readdir is not atomic
across its ``getdents`` calls) and the cursor jumped to the next segment it did see. The
writers here are real processes; the segments are small enough that hundreds of them roll
(thousands of files, so one listing takes several ``getdents`` calls) while the reader polls.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from streams.log.base import TopicSpec
from streams.log.embedded import EmbeddedLog

pytestmark = pytest.mark.slow

WRITER = """
import sys, random
from streams.log.embedded import EmbeddedLog
root, writer, total, segment_bytes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
log = EmbeddedLog(root, segment_bytes=segment_bytes)
rng = random.Random(writer)
pad = b"x" * 480
i = 0
with log.producer() as producer:
    while i < total:
        for _ in range(min(rng.randint(1, 2000), total - i)):
            producer.produce("t", f"{writer}:{i:08d}:".encode() + pad, partition=0, timestamp_ns=i)
            i += 1
        producer.flush()
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("segment_bytes", "per_writer"),
    [
        (1, 250),  # the minimum: every record is a segment of its own
        (2048, 800),  # three records per segment
        (4096, 1500),
        (65536, 13000),  # the reproduction: 500-byte records, ~120 per segment
    ],
)
def test_tailing_reader_sees_every_offset_once_while_writers_roll_segments(
    tmp_path: Path, segment_bytes: int, per_writer: int
) -> None:
    root = tmp_path / "log"
    log = EmbeddedLog(root, segment_bytes=segment_bytes)
    log.create_topic(TopicSpec("t"))
    writers = 3
    total = writers * per_writer
    reader = log.reader([("t", 0, 0)])
    children = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(WRITER), str(root), str(w), str(per_writer), str(segment_bytes)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(writers)
    ]
    seen: list[int] = []
    per_writer_seen: dict[str, list[int]] = {str(w): [] for w in range(writers)}
    deadline = time.monotonic() + 40
    try:
        while len(seen) < total and time.monotonic() < deadline:
            for r in reader.poll(5000, timeout=0.05):
                seen.append(r.offset)
                assert r.value is not None
                w, i, _ = r.value.split(b":", 2)
                per_writer_seen[w.decode()].append(int(i))
            if seen and seen[-1] != len(seen) - 1:
                break  # a skip or a repeat: stop early, the assertion below shows where
    finally:
        for child in children:
            _, err = child.communicate(timeout=30)
            assert child.returncode == 0, err
        reader.close()
    segments = len(list((root / "t" / "0").glob("*.log")))
    first_wrong = next((i for i, off in enumerate(seen) if off != i), None)
    assert first_wrong is None, f"expected offset {first_wrong}, got {seen[first_wrong]} ({segments} segments)"
    assert seen == list(range(total)), f"read {len(seen)} of {total} records ({segments} segments)"
    for w, indexes in per_writer_seen.items():
        assert indexes == list(range(per_writer)), f"writer {w}: records lost, doubled or reordered"
    assert segments >= 300  # long enough to roll hundreds of segments under the reader
    shutil.rmtree(root)
