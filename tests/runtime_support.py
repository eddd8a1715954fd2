"""Shared by the runtime's crash and multi-instance tests: the standard input, output comparison, subprocess runs."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from procs import RAW, Counter, CounterConfig, raw_value
from streams.lineage import source_of
from streams.log import open_log
from streams.log.base import Log, TopicSpec
from streams.log.embedded import EmbeddedLog
from streams.runtime import Runner, RunOptions
from streams.runtime.state import read_range
from streams.serde import Serde

HFTSTREAM = str(Path(sys.executable).with_name("hftstream"))
TESTS = str(Path(__file__).resolve().parent)
MS = 1_000_000
T0 = 1_700_000_000_000 * MS
N_KEYED, N_GLOBAL = 4_000, 40
TOTAL_OUT = N_KEYED + 4 * N_GLOBAL  # 4 tasks each emit every global record

Outputs = dict[tuple[int, str, int, str], list[tuple[bytes | None, bytes | None, object]]]
_SERDE: Serde | None = None


def build_input(log: Log, serde: Serde, src: str, glob: str, out: str) -> None:
    """The standard input: ``src`` (4 partitions, 40 symbols), ``glob`` (1 partition), and an empty ``out`` (3)."""
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


def outputs(log: Log, out: str) -> Outputs:
    """Output records grouped by (output partition, source topic, source partition, emitting task), in log order.

    Within such a group the order is the task's processing order; how different tasks' outputs
    interleave in one partition depends on commit timing, so it is not compared.
    """
    global _SERDE
    serde = _SERDE = _SERDE or Serde.from_settings()
    got: Outputs = {}
    for p in range(log.partitions(out)):
        low, high = log.watermarks(out, p)
        for r in read_range(log, out, p, low, high):
            src = source_of(r.headers)
            assert src is not None
            task = serde.decode(r.value).value["format"][1:]
            got.setdefault((p, src[0], src[1], task), []).append((r.key, r.value, src[2]))
    return got


def reference_outputs(directory: Path, serde: Serde) -> Outputs:
    """The uninterrupted run's outputs (embedded, in-process), with topic names 'in', 'g', 'out'."""
    log = EmbeddedLog(directory / "log")
    try:
        build_input(log, serde, "in", "g", "out")
        Runner(log, serde, Counter, CounterConfig(inputs=["in"], globals=["g"], output="out"), RunOptions(until_idle=True)).run()
        return outputs(log, "out")
    finally:
        log.close()


class Case:
    """Standard input under unique topic names on one log, a Counter config file, and ``hftstream run`` subprocesses."""

    def __init__(self, url: str, tmp_path: Path, serde: Serde, unique_name: Callable[[str], str], work_us: int = 0) -> None:
        self.url = url
        self.src, self.glob, self.out, self.name = unique_name("in"), unique_name("g"), unique_name("out"), unique_name("proc")
        self.log: Log = open_log(url)
        build_input(self.log, serde, self.src, self.glob, self.out)
        self.cfg = tmp_path / "counter.json"
        self.cfg.write_text(
            CounterConfig(inputs=[self.src], globals=[self.glob], output=self.out, work_us=work_us).model_dump_json()
        )

    def start(self, *extra: str, env: dict[str, str] | None = None, until_idle: bool = True, batch: int = 50) -> subprocess.Popen[bytes]:
        """``hftstream run`` on this case, as a subprocess (``HFTSTREAM_FAULT*`` only from ``env``)."""
        full = {k: v for k, v in os.environ.items() if not k.startswith("HFTSTREAM_FAULT")}
        full.update({"PYTHONPATH": TESTS, **(env or {})})
        cmd = [HFTSTREAM, "--log", self.url, "run", "procs:Counter", "--config", str(self.cfg), "--name", self.name,
               "--batch", str(batch), "--commit-interval", "5", "--snapshot-every", "5", *extra]
        if until_idle:
            cmd.append("--until-idle")
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full)

    def finish(self) -> None:
        """Run to idle and require a clean exit."""
        p = self.start()
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err.decode()[-3000:]

    def outputs(self) -> Outputs:
        """The outputs, with the unique input names mapped back to 'in' and 'g' (comparable with the reference)."""
        names = {self.src: "in", self.glob: "g"}
        return {(p, names[t], q, task): v for (p, t, q, task), v in outputs(self.log, self.out).items()}

    def output_count(self) -> int:
        """Records on the output topic (physical end offsets: includes uncommitted records on Kafka)."""
        return sum(self.log.watermarks(self.out, p)[1] for p in range(self.log.partitions(self.out)))

    def close(self) -> None:
        self.log.close()
