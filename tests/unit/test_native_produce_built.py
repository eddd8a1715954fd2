"""The native run of ``EmbeddedProducer.produce_built`` against its Python loop (DECISIONS #65).

Both producers get the same runtime-built records; their partitions, buffers, round-robin counters, byte and record
counts, the records each flush writes and the errors raised must be the same. The native side (``queue_built``)
stops at each record it does not take (unknown topic, other types, one that fills the buffers or is too large) and
the Python code queues that one, so errors and flush points stay the Python path's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams import native
from streams.log.base import TopicSpec
from streams.log.embedded import EmbeddedLog
from streams.log.embedded import producer as producer_mod
from streams.log.partitioner import partition_for

needs_native = pytest.mark.skipif(not native.active(), reason=f"{native.status()}: only the Python path runs")
HYP = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
TOPICS = {"a": 1, "b": 3, "c": 7}


def _log(path: Path) -> EmbeddedLog:
    log = EmbeddedLog(path)
    for name, n in TOPICS.items():
        log.create_topic(TopicSpec(name, n))
    return log


headers = st.one_of(st.none(), st.just(()), st.just([]), st.just((("hft.src.offset", b"1"),)), st.just([("h", b"x")]))
records = st.lists(st.tuples(
    st.sampled_from(["a", "b", "c", "c", "nope"]), st.one_of(st.none(), st.binary(max_size=24)),
    st.one_of(st.binary(max_size=40), st.none()), st.integers(0, 1 << 62), headers,
), max_size=60)


def _run(path: Path, recs: list[Any], native_on: bool, txn: bool, max_records: int, max_bytes: int,
         monkeypatch: pytest.MonkeyPatch) -> Any:
    log = _log(path)
    monkeypatch.setattr(producer_mod, "_native_queue", producer_mod._native_queue if native_on else None)
    p = log.transactional_producer("t") if txn else log.producer()
    if txn:
        p.begin()
    p._max_records, p._max_bytes = max_records, max_bytes
    try:
        p.produce_built(recs)
        err = None
    except Exception as exc:
        err = (type(exc), str(exc))
    state = ([(k, list(v)) for k, v in p._buffers.items()], list(p._rr.items()), p._count, p._bytes)
    if txn:
        p.abort()
    else:
        p.flush()
    written = sorted((r.topic, r.partition, r.offset, r.key, r.value, r.timestamp_ns, tuple(r.headers or ()))
                     for r in log.reader([(t, i, 0) for t, n in TOPICS.items() for i in range(n)]).poll(100_000))
    log.close()
    return err, state, written


@needs_native
@HYP
@given(recs=records, txn=st.booleans(), max_records=st.sampled_from([3, 16_384]), max_bytes=st.sampled_from([64, 4 << 20]))
def test_native_queue_matches_the_python_loop(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
                                              recs: list[Any], txn: bool, max_records: int, max_bytes: int) -> None:
    base = tmp_path_factory.mktemp("q")
    nat = _run(base / "n", recs, True, txn, max_records, max_bytes, monkeypatch)
    py = _run(base / "p", recs, False, txn, max_records, max_bytes, monkeypatch)
    assert nat == py


@needs_native
@settings(max_examples=300, deadline=None)
@given(key=st.binary(max_size=64))
def test_native_murmur2_partitions_like_kafka(key: bytes) -> None:
    buffers: dict[Any, Any] = {}
    rr: dict[str, int] = {}
    stop, count, size = native.NATIVE.queue_built(  # type: ignore[union-attr]
        [("t", key, b"v", 1, None)], 0, {"t": 1009}, rr, buffers, 0, 0, 1 << 20, 1 << 30, 1 << 20)
    assert (stop, count, size) == (1, 1, len(key) + 1)
    assert list(buffers) == [("t", partition_for(key, 1009))]


@needs_native
@pytest.mark.parametrize("native_on", [True, False])
def test_too_large_and_unknown_topics_raise_as_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, native_on: bool) -> None:
    monkeypatch.setattr(producer_mod, "_native_queue", producer_mod._native_queue if native_on else None)
    log = _log(tmp_path)
    p = log.producer()
    big = b"x" * (producer_mod.MAX_RECORD_BYTES + 1)
    with pytest.raises(ValueError, match="exceeds the embedded log's limit"):
        p.produce_built([("a", None, b"1", 1, None), ("a", None, big, 2, None), ("a", None, b"3", 3, None)])
    # the record before it queued; the round robin moved for the refused one too (the Python path's order)
    assert p._count == 1 and p._rr == {"a": 2} and p._buffers == {("a", 0): [(None, b"1", 1, None)]}
    log.close()
