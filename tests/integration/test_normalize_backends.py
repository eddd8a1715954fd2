"""``run normalize --until-idle`` on a faulty simulated feed gives the same md.normalized on both logs.

The feed has injected gaps, duplicates, reorders and malformed payloads. On the embedded log
and on the real Kafka broker, normalize runs exactly-once to idle; then:

* every output partition holds the same records, byte for byte (key, value, lineage), and
  each task's records in the same order (how two tasks' records interleave inside one
  output partition depends on commit timing, by design: DECISIONS.md);
* every input is accounted for: outputs + consumed without output + dead letters = inputs,
  and each malformed payload is a dead letter with its reason;
* ``verify`` says identical on both.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.venues.publish import publish_simulation
from connectors.venues.simulator import SimConfig
from streams.lineage import source_of
from streams.log import open_log
from streams.log.base import Log
from streams.processors.normalize import NormalizeProcessor
from streams.runtime import Runner, RunOptions
from streams.runtime.reset import reset_processor
from streams.runtime.state import read_range
from streams.runtime.verify import verify
from streams.serde import Serde
from streams.timeutil import floor_day_ns
from streams.topics import apply_topics

pytestmark = pytest.mark.slow
TOPICS = ["refdata.instruments", "md.normalized", "md.raw.alpha", "md.raw.bravo", "md.raw.charlie"]


def fresh(log: Log) -> None:
    """Normalize's fixed topics, empty, and no state from an earlier run on the same broker."""
    def doomed() -> set[str]:  # normalize reads every md.raw.* topic: other tests' leftovers too
        return {t.name for t in log.list_topics() if t.name in TOPICS or t.name.startswith("md.raw.")}

    for name in doomed():
        log.delete_topic(name)
    reset_processor(log, "normalize")
    for _ in range(50):  # Kafka deletes topics asynchronously
        if not doomed():
            break
        time.sleep(0.2)
    apply_topics(log)


def grouped(log: Log, serde: Serde) -> dict[tuple[int, str, int], list[tuple[bytes | None, bytes | None, int]]]:
    out: dict[tuple[int, str, int], list[tuple[bytes | None, bytes | None, int]]] = {}
    for p in range(log.partitions("md.normalized")):
        low, high = log.watermarks("md.normalized", p)
        for r in read_range(log, "md.normalized", p, low, high):
            src = source_of(r.headers)
            assert src is not None
            out.setdefault((p, src[0], src[1]), []).append((r.key, r.value, src[2]))
    return out


@pytest.fixture(params=["embedded", "kafka"])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Log]:
    url = f"embedded://{tmp_path / 'log'}" if request.param == "embedded" else f"kafka://{request.getfixturevalue('kafka_bootstrap')}"
    handle = open_log(url)
    try:
        yield handle
    finally:
        handle.close()


RESULTS: dict[str, object] = {}


@pytest.mark.parametrize("_", [0])
def test_normalize_on_a_faulty_feed_reconciles_and_verifies(log: Log, _: int) -> None:
    serde = Serde.from_settings()
    fresh(log)
    config = SimConfig(
        venues=3, symbols=6, events=6000, seed=11, regime="burst", start_ns=floor_day_ns(time.time_ns()),
        gap_rate=0.003, dup_rate=0.003, reorder_rate=0.003, malformed_rate=0.003,
    )
    publish_simulation(log, serde, config)
    raw = sum(log.watermarks(t, p)[1] for t in TOPICS if t.startswith("md.raw.") for p in range(log.partitions(t)))
    tasks = log.partitions("md.raw.alpha")
    inputs = raw + tasks * log.watermarks("refdata.instruments", 0)[1]  # every task reads all reference data
    counts = Runner(log, serde, NormalizeProcessor, NormalizeProcessor.config_class(), RunOptions(until_idle=True, batch=700)).run()
    assert counts.records_in == inputs and counts.reconciles()
    assert counts.dlq_by_reason.get("MALFORMED_PAYLOAD", 0) > 0 and counts.without_output > 0  # faults were injected and handled
    letters = [r for r in read_range(log, "dlq.normalize", 0, *log.watermarks("dlq.normalize", 0))]
    assert len(letters) == counts.dead_letters
    assert verify(log, serde, NormalizeProcessor, NormalizeProcessor.config_class()).identical
    RESULTS[log.url.split(":")[0]] = grouped(log, serde)
    if len(RESULTS) == 2:  # the second backend of the pair: same records, same per-task order
        assert RESULTS["embedded"] == RESULTS["kafka"]
