"""Crash tests: SIGKILL ``hftstream run`` (a real subprocess) at many points; the result must equal an uninterrupted run.

Two kinds of kill points, on both logs:

* random: the process is killed after a random delay, again and again, while it works;
* named: ``HFTSTREAM_FAULT`` makes it kill itself exactly after producing outputs into the
  open transaction, right before the commit, or right after it.

``Counter``'s outputs carry per-symbol running counts (its state), so a lost or doubled
input, or state restored from the wrong point, changes the bytes. The comparison is per
output partition and per source partition (the interleaving of different tasks' outputs
in one partition legitimately depends on commit timing).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from procs import RAW, Counter, CounterConfig, raw_value
from streams.lineage import source_of
from streams.log import open_log
from streams.log.base import Log, TopicSpec
from streams.log.embedded import EmbeddedLog
from streams.runtime import Runner, RunOptions
from streams.runtime.state import read_range
from streams.serde import Serde

HFTSTREAM = str(Path(sys.executable).with_name("hftstream"))
TESTS = str(Path(__file__).resolve().parents[1])
MS = 1_000_000
T0 = 1_700_000_000_000 * MS
N_KEYED, N_GLOBAL = 4_000, 40
WORK_US = {"embedded": 3_000, "kafka": 8_000}  # per record: keeps the run alive long enough for 35 kills
KILLS = 35

pytestmark = pytest.mark.slow


def build_input(log: Log, serde: Serde, src: str, glob: str, out: str) -> None:
    log.create_topic(TopicSpec(src, 4))
    log.create_topic(TopicSpec(glob, 1))
    log.create_topic(TopicSpec(out, 3))
    rng = random.Random(7)
    with log.producer() as p:
        for i in range(N_KEYED):
            sym = f"S{rng.randrange(40)}"
            p.produce(src, serde.encode(RAW, raw_value(i, sym)), sym.encode(), timestamp_ns=T0 + i * MS // 4)
        for i in range(N_GLOBAL):
            p.produce(glob, serde.encode(RAW, raw_value(100_000 + i, f"G{i % 3}")), b"g", timestamp_ns=T0 + i * 50 * MS)


def outputs(log: Log, out: str) -> dict[tuple[int, str, int], list[tuple[bytes | None, bytes | None, object]]]:
    """Output records grouped by (output partition, source topic, source partition), in log order."""
    got: dict[tuple[int, str, int], list[tuple[bytes | None, bytes | None, object]]] = {}
    for p in range(log.partitions(out)):
        low, high = log.watermarks(out, p)
        for r in read_range(log, out, p, low, high):
            src = source_of(r.headers)
            assert src is not None
            got.setdefault((p, src[0], src[1]), []).append((r.key, r.value, src[2]))
    return got


@pytest.fixture(scope="module")
def serde() -> Serde:
    return Serde.from_settings()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, serde: Serde) -> dict:
    """The uninterrupted run's outputs (embedded, in-process), topic names 'in', 'g', 'out'."""
    log = EmbeddedLog(tmp_path_factory.mktemp("ref") / "log")
    build_input(log, serde, "in", "g", "out")
    Runner(log, serde, Counter, CounterConfig(inputs=["in"], globals=["g"], output="out"), RunOptions(until_idle=True)).run()
    got = outputs(log, "out")
    log.close()
    return got


def renamed(got: dict, src: str, glob: str) -> dict:
    names = {src: "in", glob: "g"}
    return {(p, names[t], q): v for (p, t, q), v in got.items()}


@pytest.fixture(params=["embedded", "kafka"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A log URL: a fresh embedded directory, or the suite's real Kafka broker."""
    if request.param == "embedded":
        yield f"embedded://{tmp_path / 'log'}"
    else:
        yield f"kafka://{request.getfixturevalue('kafka_bootstrap')}"


def start(url: str, cfg: Path, name: str, fault: str | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": TESTS + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("HFTSTREAM_FAULT", None)
    if fault:
        env["HFTSTREAM_FAULT"] = fault
    cmd = [HFTSTREAM, "--log", url, "run", "procs:Counter", "--config", str(cfg), "--name", name, "--until-idle",
           "--batch", "60", "--commit-interval", "5", "--snapshot-every", "5"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(url: str, cfg: Path, name: str) -> None:
    p = start(url, cfg, name)
    out, err = p.communicate(timeout=240)
    assert p.returncode == 0, err.decode()[-3000:]


def test_sigkill_at_random_moments(target: str, tmp_path: Path, serde: Serde, reference: dict, unique_name: Callable[[str], str]) -> None:
    src, glob, out, name = unique_name("in"), unique_name("g"), unique_name("out"), unique_name("crash")
    log = open_log(target)
    try:
        build_input(log, serde, src, glob, out)
        cfg = tmp_path / "counter.json"
        kind = target.split(":")[0]
        cfg.write_text(CounterConfig(inputs=[src], globals=[glob], output=out, work_us=WORK_US[kind]).model_dump_json())
        rng = random.Random(len(target))
        kills = 0
        while kills < KILLS:
            p = start(target, cfg, name)
            time.sleep(rng.uniform(0.5, 1.3) if kind == "embedded" else rng.uniform(1.5, 3.5))
            if p.poll() is not None:  # finished before the kill: nothing left to interrupt
                assert p.returncode == 0, p.stderr.read().decode()[-3000:]  # type: ignore[union-attr]
                break
            p.kill()
            p.wait()
            kills += 1
        assert kills >= KILLS * 2 // 3, f"only {kills} kills landed while work was left"
        finish(target, cfg, name)
        assert renamed(outputs(log, out), src, glob) == reference
    finally:
        log.close()


@pytest.mark.parametrize("fault", ["after-produce:3", "before-commit:2", "after-commit:4", "after-produce:9", "before-commit:7"])
def test_sigkill_at_named_points(
    target: str, fault: str, tmp_path: Path, serde: Serde, reference: dict, unique_name: Callable[[str], str]
) -> None:
    """Killed between producing and committing, right before the commit, right after it; several times in a row."""
    src, glob, out, name = unique_name("in"), unique_name("g"), unique_name("out"), unique_name("fault")
    log = open_log(target)
    try:
        build_input(log, serde, src, glob, out)
        cfg = tmp_path / "counter.json"
        cfg.write_text(CounterConfig(inputs=[src], globals=[glob], output=out).model_dump_json())
        for _ in range(3):
            p = start(target, cfg, name, fault)
            p.communicate(timeout=240)
            assert p.returncode == -9, f"the fault point {fault} was never reached (exit {p.returncode})"
        finish(target, cfg, name)
        assert renamed(outputs(log, out), src, glob) == reference
    finally:
        log.close()
