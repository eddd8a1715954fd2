"""The runtime benchmarks' processor and subprocess worker.

:class:`Passthrough` decodes each input, copies its value unchanged and encodes it to the
output topic (the runtime does the decoding and encoding: the processor sees dicts).
:class:`Tally` is the same with a little state (a count per key) so a restart has something
to restore or replay.

Run as a worker (the restart and latency benchmarks do)::

    python tests/benchmarks/runtime_worker.py --log URL --source T --sink T --name N [--commit-ms 100]

It opens a :class:`Runner`, prints ``ready <replayed records>`` whenever newly assigned tasks are recovered and ``commit <n>``
(records committed by this process so far, replays not counted) after every commit, and on
SIGTERM commits and exits.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from streams.log import Log, TopicSpec
from streams.processors.base import Input, Message, Output, Processor
from streams.runtime import Runner, RunOptions
from streams.serde import Serde
from streams.serde.samples import sample

NEVER = 10**12  # snapshot_every_*: no snapshot after the first commit
ORDER = "hftstream.orders.NewOrder"
PARTITIONS = 3


def order_values(serde: Serde, n: int) -> list[tuple[bytes, bytes]]:
    """``n`` (key, framed NewOrder) pairs: 1,000 distinct sample records, repeated."""
    schema = serde.repo.current(ORDER).schema
    distinct = [sample(schema, seed) for seed in range(1000)]
    framed = serde.encode_many(ORDER, distinct)
    return [(distinct[i % 1000]["account"].encode(), framed[i % 1000]) for i in range(n)]


def make_orders(log: Log, serde: Serde, n: int, prefix: str = "bench-rt-in", partitions: int = PARTITIONS) -> str:
    """A fresh topic of ``n`` NewOrder records on ``partitions`` partitions; its name."""
    topic = f"{prefix}-{uuid.uuid4().hex[:8]}"
    log.create_topic(TopicSpec(topic, partitions))
    with log.producer() as producer:
        for key, value in order_values(serde, n):
            producer.produce(topic, value, key)
    return topic


class PassConfig(BaseModel):
    """Input and output topics of the benchmark processors."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str
    sink: str


class Passthrough(Processor):
    """Emit every decoded input's value unchanged, same key and schema, to ``sink``."""

    name = "bench-passthrough"
    config_class = PassConfig

    def __init__(self, config: PassConfig, task: int) -> None:
        self.inputs = (Input(config.source),)
        self.outputs = (config.sink,)
        self._sink = config.sink

    def process(self, msg: Message) -> Iterable[Output]:
        return (Output(self._sink, msg.key, msg.schema, msg.value),)


class Tally(Passthrough):
    """:class:`Passthrough` that also counts inputs per key (its snapshot: the counts)."""

    name = "bench-tally"

    def __init__(self, config: PassConfig, task: int) -> None:
        super().__init__(config, task)
        self.counts: dict[bytes | None, int] = {}

    def process(self, msg: Message) -> Iterable[Output]:
        self.counts[msg.key] = self.counts.get(msg.key, 0) + 1
        return (Output(self._sink, msg.key, msg.schema, msg.value),)

    def snapshot(self) -> bytes:
        return b"".join(b"%s=%d\n" % (k or b"", n) for k, n in sorted(self.counts.items(), key=lambda kv: kv[0] or b""))

    def restore(self, blob: bytes) -> None:
        self.counts = {}
        for line in blob.splitlines():
            k, _, n = line.rpartition(b"=")
            self.counts[k] = int(n)


class TimedRunner(Runner):
    """A :class:`Runner` that notes when it first processed a record and when it last committed."""

    first_process: float | None = None
    last_commit: float | None = None
    on_commit: Any = None
    on_ready: Any = None
    profile: Any = None  # a cProfile.Profile enabled at the first record processed (setup and group join excluded)

    def _init_pending(self) -> None:
        fresh = bool(self._pending)
        super()._init_pending()
        if fresh and self.tasks and self.on_ready is not None:
            self.on_ready(self.counts.replayed)

    def _process(self, task, records) -> None:  # type: ignore[no-untyped-def]
        if self.first_process is None:
            self.first_process = time.perf_counter()
            if self.profile is not None:
                self.profile.enable()
        super()._process(task, records)

    def _commit(self) -> None:
        before = self.counts.commits
        super()._commit()
        if self.counts.commits != before:
            self.last_commit = time.perf_counter()
            if self.on_commit is not None:
                self.on_commit(self.counts.records_in)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--log", required=True, help="log URL (kafka://HOST:PORT or embedded://PATH)")
    parser.add_argument("--source", required=True)
    parser.add_argument("--sink", required=True)
    parser.add_argument("--name", required=True, help="runner name (its group, state and dlq topics)")
    parser.add_argument("--processor", choices=["passthrough", "tally"], default="passthrough")
    parser.add_argument("--commit-ms", type=int, default=100)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--snapshot-every", type=int, default=200, help="commits; with --no-record-snapshots records never force one")
    parser.add_argument("--no-record-snapshots", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from streams.log import open_log
    from streams.serde import Serde

    log = open_log(args.log)
    serde = Serde.from_settings()
    options = RunOptions(
        batch=args.batch, commit_interval_ms=args.commit_ms, poll_records=args.batch, snapshot_every_commits=args.snapshot_every,
        **({"snapshot_every_records": NEVER} if args.no_record_snapshots else {}),
    )
    cls = Tally if args.processor == "tally" else Passthrough
    runner = TimedRunner(log, serde, cls, PassConfig(source=args.source, sink=args.sink), options, name=args.name)
    runner.on_commit = lambda n: print(f"commit {n}", flush=True)
    runner.on_ready = lambda replayed: print(f"ready {replayed}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    runner.open()
    try:
        while not stop.is_set():
            runner.tick()
        runner.commit()
    finally:
        runner.close()
        log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
