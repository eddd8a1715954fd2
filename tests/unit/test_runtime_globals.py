"""One reader of a processor's global inputs feeds all its tasks (DECISIONS #55)."""

from __future__ import annotations

from pathlib import Path

import pytest

from procs import Counter, CounterConfig
from runtime_support import N_GLOBAL, build_input, outputs
from streams.log.base import TopicSpec
from streams.log.embedded import EmbeddedLog
from streams.log.embedded.reader import EmbeddedReader
from streams.runtime import Runner, RunOptions
from streams.runtime.globals import GlobalFeed
from streams.runtime.merge import Merger
from streams.serde import Serde


def test_each_global_record_is_read_once_for_all_tasks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    serde = Serde.from_settings()
    log = EmbeddedLog(tmp_path / "log")
    build_input(log, serde, "in", "g", "out")
    read: list[tuple[str, int]] = []
    real = EmbeddedReader.poll

    def counting(self: EmbeddedReader, *a: object, **k: object) -> list:  # type: ignore[type-arg]
        got = real(self, *a, **k)  # type: ignore[arg-type]
        read.extend((r.topic, r.offset) for r in got if r.topic == "g")
        return got

    monkeypatch.setattr(EmbeddedReader, "poll", counting)
    counts = Runner(log, serde, Counter, CounterConfig(inputs=["in"], globals=["g"], output="out"), RunOptions(until_idle=True)).run()
    monkeypatch.undo()
    assert sorted(read) == [("g", i) for i in range(N_GLOBAL)]  # 4 tasks, each global record read once (was 4 times)
    assert counts.records_in == 4_000 + 4 * N_GLOBAL  # ... and still handed to every task
    got = outputs(log, "out")
    per_task = {task: [v for (_, src, _, t), vs in got.items() if src == "g" and t == task for v in vs] for task in "0123"}
    assert all(len(v) == N_GLOBAL for v in per_task.values())
    log.close()


def test_a_task_behind_the_shared_reader_makes_it_seek_back_and_the_others_skip(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path / "log")
    log.create_topic(TopicSpec("g", 2))
    with log.producer() as p:
        for i in range(10):
            p.produce("g", f"v{i}".encode(), partition=i % 2, timestamp_ns=i * 1_000_000)
    tps = [("g", 0), ("g", 1)]
    ahead = Merger([(tp, 0, 0) for tp in tps])
    feed = GlobalFeed(log, tps)
    feed.attach(0, ahead, {("g", 0): 0, ("g", 1): 0})
    feed.refresh(1000)
    assert [r.value for r in ahead.pop(100)] == [f"v{i}".encode() for i in range(10)]
    behind = Merger([(("g", 0), 0, 2), (("g", 1), 0, 4)])  # recovered at older positions
    feed.attach(1, behind, {("g", 0): 2, ("g", 1): 4})
    feed.refresh(1000)
    assert ahead.pop(100) == []  # nothing twice
    assert sorted(r.value for r in behind.pop(100)) == [b"v4", b"v6", b"v8", b"v9"]
    assert all(q.caught_up() for m in (ahead, behind) for q in m.queues.values())
    feed.detach(0)
    feed.detach(1)
    assert feed._reader is None
    log.close()


def test_each_global_record_is_decoded_once_for_all_tasks_with_the_same_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 13 #1: one decoded view per process. The first task decodes a global record, the others get the same
    message; a bad global record is dead-lettered by every task as before; the outputs are the unshared run's."""
    from streams.runtime import task as task_module
    from streams.runtime.codec import RuntimeCodec

    serde = Serde.from_settings()
    cfg = CounterConfig(inputs=["in"], globals=["g"], output="out")

    def run(root: Path, share: bool) -> tuple[dict, list[tuple[str, int]]]:
        log = EmbeddedLog(root)
        build_input(log, serde, "in", "g", "out")
        with log.producer() as p:  # garbage on the global input: every task's dead letter, as before
            p.produce("g", b"\x00not avro", b"S1", timestamp_ns=1_700_000_000_000_000_000 + 10**12)
        decoded: list[tuple[str, int]] = []
        real = task_module._decode

        def counting(codec: RuntimeCodec, records: list) -> list:  # type: ignore[type-arg]
            decoded.extend((r.topic, r.offset) for r in records if r.topic == "g")
            return real(codec, records)

        monkeypatch.setattr(task_module, "_decode", counting)
        runner = Runner(log, serde, Counter, cfg, RunOptions(until_idle=True))
        if not share:
            runner._shared = None
        counts = runner.run()
        monkeypatch.undo()
        assert counts.dead_letters == 4 and counts.reconciles()  # one per task
        from streams.runtime.state import read_range

        dlq = [r.value for p in range(log.partitions("dlq.counter"))
               for r in read_range(log, "dlq.counter", p, *log.watermarks("dlq.counter", p))]
        got = outputs(log, "out"), dlq
        log.close()
        return got, decoded

    shared, once = run(tmp_path / "shared", True)
    plain, four = run(tmp_path / "plain", False)
    assert shared == plain
    assert sorted(once) == [("g", i) for i in range(N_GLOBAL + 1)]  # 4 tasks, each global record decoded once
    assert len(four) == 4 * (N_GLOBAL + 1)
