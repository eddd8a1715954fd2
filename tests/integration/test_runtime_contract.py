"""The processor runtime's contract, on both logs: the embedded log and the real Kafka broker.

Ordering, the multi-input merge order, global inputs, commit and resume with state,
dead letters with lineage and the count reconciliation, and ``verify``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from procs import RAW, Counter, CounterConfig, raw_value
from streams.lineage import source_of
from streams.log.base import Log, Record, TopicSpec
from streams.log.embedded import EmbeddedLog
from streams.runtime import Runner, RunOptions
from streams.runtime.state import read_range
from streams.runtime.verify import verify
from streams.serde import Serde

MS = 1_000_000
T0 = 1_700_000_000_000 * MS


@pytest.fixture(params=["embedded", "kafka"])
def any_log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Log]:
    """The same test on the embedded log and on the real Kafka broker."""
    if request.param == "embedded":
        log: Log = EmbeddedLog(tmp_path / "log")
    else:
        from streams.log.kafka import KafkaLog

        log = KafkaLog(request.getfixturevalue("kafka_bootstrap"))
    try:
        yield log
    finally:
        log.close()


@pytest.fixture(scope="module")
def serde() -> Serde:
    return Serde.from_settings()


def make_topics(log: Log, names: dict[str, int]) -> None:
    for name, n in names.items():
        log.create_topic(TopicSpec(name, n))


def publish(log: Log, serde: Serde, topic: str, items: list[tuple[int, str, int]], garbage: dict[int, bytes] | None = None) -> None:
    """``items``: (i, symbol, timestamp_ms offset) -> one RawVenueMessage per item, keyed by symbol."""
    with log.producer() as p:
        for i, symbol, ts_ms in items:
            value = (garbage or {}).get(i) or serde.encode(RAW, raw_value(i, symbol))
            p.produce(topic, value, symbol.encode(), timestamp_ns=T0 + ts_ms * MS)


def read_all(log: Log, topic: str) -> list[list[Record]]:
    """Every committed record of ``topic``, per partition."""
    out = []
    for p in range(log.partitions(topic)):
        low, high = log.watermarks(topic, p)
        out.append(list(read_range(log, topic, p, low, high)))
    return out


def run(log: Log, serde: Serde, cfg: CounterConfig, name: str, **opts: object) -> Runner:
    runner = Runner(log, serde, Counter, cfg, RunOptions(until_idle=True, **opts), name=name)  # type: ignore[arg-type]
    runner.run()
    return runner


@pytest.fixture
def names(unique_name: Callable[[str], str]) -> Callable[[str], str]:
    return unique_name


def test_outputs_follow_inputs_exactly_once_and_state_resumes(any_log: Log, serde: Serde, names: Callable[[str], str]) -> None:
    src, out, name = names("in"), names("out"), names("proc")
    make_topics(any_log, {src: 4, out: 3})
    symbols = [f"S{i}" for i in range(12)]
    publish(any_log, serde, src, [(i, symbols[i % 12], i) for i in range(3000)])
    cfg = CounterConfig(inputs=[src], output=out)
    first = run(any_log, serde, cfg, name, batch=200, commit_interval_ms=5)
    assert first.counts.records_in == 3000 and first.counts.reconciles()
    assert first.counts.commits >= 3000 // 200
    publish(any_log, serde, src, [(i, symbols[i % 12], i) for i in range(3000, 4000)])
    second = run(any_log, serde, cfg, name, batch=300)
    assert second.counts.records_in == 1000 and second.counts.reconciles()

    outputs = [r for part in read_all(any_log, out) for r in part]
    assert len(outputs) == 4000
    sources = [source_of(r.headers) for r in outputs]
    assert len(set(sources)) == 4000, "an input produced two outputs"
    assert {s[0] for s in sources} == {src}
    # per symbol, the running count goes 1..n in input order: nothing lost, doubled or restored wrong
    by_symbol: dict[str, list[tuple[int, int]]] = {}
    for r in outputs:
        v = serde.decode(r.value).value
        by_symbol.setdefault(v["symbol"], []).append((source_of(r.headers)[2], v["seq"]))
    for symbol, pairs in by_symbol.items():
        pairs.sort()
        assert [n for _, n in pairs] == list(range(1, len(pairs) + 1)), symbol
    assert sum(len(p) for p in by_symbol.values()) == 4000


def test_merge_order_global_inputs_and_ranks(any_log: Log, serde: Serde, names: Callable[[str], str]) -> None:
    """Two keyed inputs and a global one: each task sees them in (ms, rank, topic, partition) order."""
    a, b, g, out, name = names("a"), names("b"), names("g"), names("out"), names("proc")
    make_topics(any_log, {a: 2, b: 2, g: 2, out: 1})
    publish(any_log, serde, a, [(i, f"S{i % 5}", (i * 7) % 50) for i in range(60)])
    publish(any_log, serde, b, [(1000 + i, f"S{i % 5}", (i * 3) % 50) for i in range(60)])
    publish(any_log, serde, g, [(2000 + i, f"G{i % 3}", (i * 11) % 50) for i in range(20)])
    cfg = CounterConfig(inputs=[a, b], globals=[g], output=out)
    runner = run(any_log, serde, cfg, name, batch=7, commit_interval_ms=1)
    assert runner.counts.records_in == 120 + 2 * 20  # the keyed records once; every global record in each of the 2 tasks

    inputs = {(t, p): part for t in (a, b, g) for p, part in enumerate(read_all(any_log, t))}
    rank = {g: 0, a: 1, b: 2}
    seen = {task: [source_of(r.headers) for r in read_all(any_log, out)[0] if serde.decode(r.value).value["format"][1:] == str(task)]
            for task in (0, 1)}
    for task in (0, 1):
        heads = {tp: list(recs) for tp, recs in inputs.items() if tp[0] == g or tp[1] == task}
        expected = []
        while any(heads.values()):  # a plain reference k-way merge, written independently of streams.runtime.merge
            tp = min((tp for tp in heads if heads[tp]), key=lambda tp: (heads[tp][0].timestamp_ns // MS, rank[tp[0]], tp[0], tp[1]))
            rec = heads[tp].pop(0)
            expected.append((rec.topic, rec.partition, rec.offset))
        assert seen[task] == expected
        assert sum(1 for s in seen[task] if s[0] == g) == 20  # every global record, in every task


def test_bad_input_goes_to_the_dead_letter_topic_with_lineage_and_counts_reconcile(
    any_log: Log, serde: Serde, names: Callable[[str], str]
) -> None:
    src, out, name = names("in"), names("out"), names("proc")
    make_topics(any_log, {src: 2, out: 2})
    unknown = b"\xc3\x01" + bytes(8) + b"\x02"  # single-object framing, a fingerprint no schema has
    publish(any_log, serde, src, [(i, f"S{i % 4}", i) for i in range(100)], garbage={10: b"not avro at all", 20: unknown})
    cfg = CounterConfig(inputs=[src], output=out, reject_seq=30)
    runner = run(any_log, serde, cfg, name, batch=16)
    c = runner.counts
    assert (c.records_in, c.with_output, c.without_output, c.dead_letters) == (100, 97, 0, 3)
    assert c.reconciles()
    assert c.dlq_by_reason == {"DECODE_ERROR": 1, "UNKNOWN_SCHEMA": 1, "TEST_REJECT": 1}
    letters = [r for part in read_all(any_log, f"dlq.{name}") for r in part]
    assert len(letters) == 3
    by_reason = {}
    for r in letters:
        v = serde.decode(r.value).value
        by_reason[v["reason_code"]] = v
        assert source_of(r.headers) == (v["source_topic"], v["source_partition"], v["source_offset"])
        assert v["processor"] == name and v["reason"]
    assert by_reason["DECODE_ERROR"]["value"] == b"not avro at all"
    assert by_reason["UNKNOWN_SCHEMA"]["value"] == unknown
    assert serde.decode(by_reason["TEST_REJECT"]["value"]).value["seq"] == 30
    assert sum(len(p) for p in read_all(any_log, out)) == 97


def test_verify_is_identical_after_a_run_and_finds_a_tampered_record(any_log: Log, serde: Serde, names: Callable[[str], str]) -> None:
    src, out, name = names("in"), names("out"), names("proc")
    make_topics(any_log, {src: 2, out: 2})
    publish(any_log, serde, src, [(i, f"S{i % 6}", i) for i in range(500)])
    cfg = CounterConfig(inputs=[src], output=out)
    run(any_log, serde, cfg, name, batch=50, snapshot_every_commits=3)
    result = verify(any_log, serde, Counter, cfg, name=name)
    assert result.identical, result.divergence
    assert result.inputs == 500 and result.outputs == 500 and result.commits >= 10
    assert verify(any_log, serde, Counter, cfg, name=name, from_offset=200).identical

    victim = read_all(any_log, out)[1][40]
    forged = serde.decode(victim.value).value | {"seq": 999}
    with any_log.producer() as p:  # a second, altered record claiming the same input
        p.produce(out, serde.encode(RAW, forged), victim.key, partition=1, timestamp_ns=victim.timestamp_ns, headers=victim.headers)
    result = verify(any_log, serde, Counter, cfg, name=name)
    assert not result.identical
    assert result.divergence is not None and result.divergence.source == source_of(victim.headers)
    assert result.divergence.kind == "different"


def test_same_input_gives_byte_identical_output(tmp_path: Path, serde: Serde) -> None:
    """Two embedded logs, the same input, different batch sizes: the same bytes in every output partition."""
    results = []
    for i, batch in enumerate((13, 997)):
        log = EmbeddedLog(tmp_path / f"log{i}")
        make_topics(log, {"in": 3, "g": 1, "out": 4})
        publish(log, serde, "in", [(j, f"S{j % 9}", (j * 13) % 300) for j in range(2000)])
        publish(log, serde, "g", [(5000 + j, "G", j * 10) for j in range(30)])
        run(log, serde, CounterConfig(inputs=["in"], globals=["g"], output="out"), "det", batch=batch)
        results.append([[(r.key, r.value, r.headers, r.timestamp_ns) for r in part] for part in read_all(log, "out")])
        log.close()
    assert results[0] == results[1]
    assert sum(len(p) for p in results[0]) == 2000 + 3 * 30


def test_a_processor_bug_stops_the_run_without_committing_and_names_the_record(tmp_path: Path, serde: Serde) -> None:
    from streams.processors.base import ProcessorFailure

    log = EmbeddedLog(tmp_path / "log")
    make_topics(log, {"in": 1, "out": 1})
    publish(log, serde, "in", [(i, "S", i) for i in range(50)])
    cfg = CounterConfig(inputs=["in"], output="out", fail_seq=25)
    with pytest.raises(ProcessorFailure, match=r"in/0@25"):
        run(log, serde, cfg, "buggy", batch=100)
    assert sum(len(p) for p in read_all(log, "out")) == 0  # the batch holding the bug never committed
    fixed = run(log, serde, CounterConfig(inputs=["in"], output="out"), "buggy", batch=100)
    assert fixed.counts.records_in == 50
    assert json.loads(json.dumps(fixed.counts.as_dict()))["reconciles"] is True
