"""normalize on a recorded raw feed: exact output (golden, byte for byte via the serde), determinism, snapshot/restore.

The feed (``tests/fixtures/normalize/raw_feed.ndjson``) was recorded once from the simulator:
``SimConfig(venues=3, symbols=4, events=900, seed=7, start_ns=START, gap/dup/reorder/malformed 3%)``;
the expected output (``expected.ndjson``: one line per input -- its outputs, or its dead-letter
reason) was generated from it and reviewed. Regenerate both after an intended change with
``HFTSTREAM_REGENERATE_GOLDEN=1 pytest tests/unit/test_normalize_golden.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from connectors.venues.errors import VenueFormatError
from connectors.venues.formats import codec_for
from connectors.venues.simulator import SimConfig, Simulation
from normalize_support import RAW_PARTITIONS, partitioned, task_messages
from streams.processors.base import Message, PoisonError, Reject
from streams.processors.normalize import NormalizeConfig, NormalizeProcessor
from streams.serde import SchemaRepo, Serde

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "normalize"
RAW = FIXTURES / "raw_feed.ndjson"
EXPECTED = FIXTURES / "expected.ndjson"
START = 1_767_364_200_000_000_000  # 2026-01-02T14:30:00Z
SIM = SimConfig(venues=3, symbols=4, events=900, seed=7, start_ns=START, gap_rate=0.03, dup_rate=0.03, reorder_rate=0.03, malformed_rate=0.03)
# A small window and a short staleness limit, so that the feed shows every kind of status record.
CONFIG = NormalizeConfig(stale_after_ns=3_000_000, reorder_window=8)


def _record_line(m: Message) -> str:
    value = dict(m.value)
    if "payload" in value:
        value["payload"] = value["payload"].decode("latin-1")  # exact bytes, readable where they are text
    return json.dumps({"topic": m.topic, "partition": m.partition, "offset": m.offset, "timestamp_ns": m.timestamp_ns,
                       "key": m.key.decode(), "schema": m.schema, "value": value}, sort_keys=True)


def load_feed() -> dict[tuple[str, int], list[Message]]:
    """The recorded feed, per (topic, partition)."""
    parts: dict[tuple[str, int], list[Message]] = {}
    for line in RAW.read_text().splitlines():
        row = json.loads(line)
        value = row["value"]
        if "payload" in value:
            value["payload"] = value["payload"].encode("latin-1")
        msg = Message(row["topic"], row["partition"], row["offset"], row["timestamp_ns"], row["key"].encode(), row["schema"], value)
        parts.setdefault((msg.topic, msg.partition), []).append(msg)
    return parts


def trace(proc: NormalizeProcessor, msgs: list[Message], serde: Serde) -> list[str]:
    """One JSON line per input: its outputs (each with its Avro bytes, hex) or its dead-letter reason."""
    lines = []
    for msg, result in zip(msgs, proc.process_batch(msgs)):
        row: dict[str, Any] = {"in": f"{msg.topic}/{msg.partition}/{msg.offset}"}
        if isinstance(result, PoisonError):
            assert isinstance(result, Reject)
            row["reject"] = [result.reason_code, str(result)]
        else:
            row["out"] = [
                {"key": o.key, "schema": o.schema, "ts": o.timestamp_ns, "value": o.value, "avro": serde.encode(o.schema, o.value).hex()}
                for o in result
            ]
        lines.append(json.dumps(row, sort_keys=True))
    return lines


def run_all(parts: dict[tuple[str, int], list[Message]], serde: Serde) -> list[str]:
    out = []
    for task in range(RAW_PARTITIONS):
        out.append(json.dumps({"task": task}))
        out += trace(NormalizeProcessor(CONFIG, task), task_messages(parts, task), serde)
    return out


@pytest.fixture(scope="module")
def serde() -> Serde:
    return Serde(SchemaRepo.load())


@pytest.mark.skipif(not os.environ.get("HFTSTREAM_REGENERATE_GOLDEN"), reason="regenerates the fixtures only when HFTSTREAM_REGENERATE_GOLDEN=1")
def test_regenerate_fixtures(serde):
    sim = Simulation(SIM)
    parts = partitioned([*sim.instrument_records(), *sim.records()])
    FIXTURES.mkdir(parents=True, exist_ok=True)
    RAW.write_text("".join(_record_line(m) + "\n" for key in sorted(parts) for m in parts[key]))
    EXPECTED.write_text("\n".join(run_all(load_feed(), serde)) + "\n")


def test_recorded_feed_gives_exactly_the_reviewed_output(serde):
    got = run_all(load_feed(), serde)
    expected = EXPECTED.read_text().splitlines()
    assert len(got) == len(expected)
    for i, (g, e) in enumerate(zip(got, expected)):
        assert g == e, f"line {i + 1} differs"


def test_golden_output_covers_every_rule_and_reconciles_with_the_injected_faults():
    parts = load_feed()
    inputs = sum(len(v) for k, v in parts.items() if k[0].startswith("md.raw."))
    rows = [json.loads(line) for line in EXPECTED.read_text().splitlines() if '"in"' in line]
    raw_rows = [r for r in rows if r["in"].startswith("md.raw.")]
    assert len(raw_rows) == inputs  # every input has its line: outputs, no outputs (duplicate), or a reason
    states = {o["value"].get("feed_state") for r in raw_rows for o in r.get("out", [])}
    assert states == {None, "GAPPED", "HEALTHY", "STALE"}
    schemas = {o["schema"].rsplit(".", 1)[1] for r in raw_rows for o in r.get("out", [])}
    assert schemas == {"Trade", "Quote", "BookDelta", "VenueStatus", "Heartbeat"}
    rejected = [r for r in raw_rows if "reject" in r]
    assert rejected and {r["reject"][0] for r in rejected} == {"MALFORMED_PAYLOAD"}
    silent = [r for r in raw_rows if r.get("out") == []]  # duplicates: counted, neither output nor dead letter
    # The injected faults, read off the recording itself: a resend repeats the previous message of its
    # partition byte for byte; a corrupted payload fails its codec's structure check.
    resent, corrupted = 0, 0
    for (topic, _), msgs in parts.items():
        if topic.startswith("md.raw."):
            for prev, m in zip([None, *msgs], msgs):
                if prev is not None and (prev.value["payload"], prev.value["seq"]) == (m.value["payload"], m.value["seq"]):
                    resent += 1
                    continue
                try:
                    codec_for(m.value["venue"]).inspect(m.value["payload"])
                except VenueFormatError:
                    corrupted += 1
    assert len(silent) == resent > 10
    assert len(rejected) == corrupted > 10


def test_two_runs_give_identical_bytes(serde):
    parts = load_feed()
    assert run_all(parts, serde) == run_all(parts, serde)


@pytest.mark.parametrize("cut", [1, 37, 250, -1])
def test_snapshot_restore_midway_continues_exactly_like_an_uninterrupted_run(serde, cut):
    parts = load_feed()
    for task in range(RAW_PARTITIONS):
        msgs = task_messages(parts, task)
        at = cut if cut >= 0 else len(msgs) - 1
        whole = NormalizeProcessor(CONFIG, task)
        expected = trace(whole, msgs, serde)
        first = NormalizeProcessor(CONFIG, task)
        head = trace(first, msgs[:at], serde)
        blob = first.snapshot()
        assert blob == first.snapshot()  # deterministic bytes
        resumed = NormalizeProcessor(CONFIG, task)
        resumed.restore(blob)
        assert resumed.snapshot() == blob
        assert head + trace(resumed, msgs[at:], serde) == expected
        assert resumed.counters() == whole.counters()
        assert resumed.snapshot() == whole.snapshot()


def test_restore_of_empty_bytes_is_the_initial_state_and_a_foreign_version_is_refused():
    proc = NormalizeProcessor(CONFIG, 0)
    initial = proc.snapshot()
    msgs = task_messages(load_feed(), 0)[:50]
    proc.process_batch(msgs)
    assert proc.snapshot() != initial
    proc.restore(b"")
    assert proc.snapshot() == initial
    from streams.errors import ConfigError

    with pytest.raises(ConfigError, match="snapshot version"):
        proc.restore(initial.replace(b'"version":1', b'"version":99'))


def test_every_injected_fault_is_counted_or_dead_lettered_on_a_larger_feed():
    cfg = SimConfig(venues=3, symbols=9, events=9000, seed=11, start_ns=START, regime="burst",
                    gap_rate=0.02, dup_rate=0.02, reorder_rate=0.02, malformed_rate=0.02)
    sim = Simulation(cfg)
    parts = partitioned([*sim.instrument_records(), *sim.records()])
    total: dict[str, int] = {}
    for task in range(RAW_PARTITIONS):
        proc = NormalizeProcessor(NormalizeConfig(), task)
        proc.process_batch(task_messages(parts, task))
        for k, v in proc.counters().items():
            total[k] = total.get(k, 0) + v
    counts = sim.counts
    sequenced = [c for c in counts.values() if c.format != "json-decimal"]
    assert total["duplicates"] == sum(c.dups for c in counts.values())
    assert total["rejected.MALFORMED_PAYLOAD"] == sum(c.malformed for c in counts.values())
    assert total["out_of_order"] == sum(c.reorders for c in sequenced)  # json-decimal has no seq: reorders pass unseen
    # every lost message of a sequenced venue shows as a missing number, except a channel's last ones (nothing follows them)
    unfilled = total["gap_messages"] - total["out_of_order"]
    assert 0 <= sum(c.gaps for c in sequenced) - unfilled <= 3
    inputs = sum(c.messages for c in counts.values())
    assert total["normalized"] + total["duplicates"] + total["rejected.MALFORMED_PAYLOAD"] == inputs
    assert total["lost"] == 0 and total["stale"] == 0  # default window and limit: nothing given up, nothing stale
