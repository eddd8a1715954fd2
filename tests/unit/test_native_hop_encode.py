"""The encode half of the per-batch hop against the Python loop of ``apply_records`` (DECISIONS #65).

``RuntimeCodec.encode_outputs`` (native ``encode_outputs``) must give exactly the records the Python loop builds --
the same tuples, element types, lineage headers, timestamps and counts -- up to the first record it does not take
whole, which the Python path then handles (so errors and dead letters stay its own). Checked on generated batches over every schema, on batches the loop must
decide (rejects, invalid values, unknown schemas, odd keys and headers), and on every batch of a small in-process
demo, where the shipped processors (normalize, risk, matching, ledger, dropcopy, reconcile) build the outputs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams import native
from streams.errors import PoisonError
from streams.lineage import lineage_headers
from streams.log.base import Record
from streams.processors.base import Message, Output, Processor, Reject, Result
from streams.runtime import codec as runtime_codec
from streams.runtime.codec import RuntimeCodec
from streams.runtime.metrics import RunCounts
from streams.runtime.task import apply_records
from streams.serde.codec import Serde
from streams.serde.repo import SchemaRepo
from streams.serde.samples import sample

needs_native = pytest.mark.skipif(not native.active(), reason=f"{native.status()}: only the Python path runs")
HYP = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
REPO = SchemaRepo.load()
NAMES = REPO.names()
T0 = 1_700_000_000_000_000_000
SERDE = Serde(REPO)
PY_SERDE = Serde(REPO)
PY_SERDE._native_enc.clear()  # the Python path's Serde.encode: fastavro
PY_SERDE._native_dec.clear()


class Fixed(Processor):
    """Hands back the results it was given, whatever the messages."""

    name = "fixed"

    def __init__(self, results: list[Any]) -> None:
        self.inputs, self.outputs, self.results = (), (), results

    def process_batch(self, msgs: Sequence[Message]) -> list[Result]:
        return list(self.results)


def _python_codec() -> RuntimeCodec:
    c = RuntimeCodec(PY_SERDE, "fixed")
    c._native_encoders = None  # the Python loop for every batch
    return c


def _run(codec: RuntimeCodec, records: list[Record], results: list[Any]) -> Any:
    out: list[Any] = []
    counts = RunCounts()
    try:
        apply_records(Fixed(results), codec, records, counts, out.append)
    except Exception as exc:  # the same exception, with the same message, on both paths
        return ("raised", type(exc), str(exc), getattr(exc, "hint", None), len(out))
    return out, (counts.records_in, counts.with_output, counts.without_output, counts.records_out, counts.dead_letters,
                 dict(counts.dlq_by_reason))


def _types(encoded: list[Any]) -> list[Any]:
    return [(type(e), tuple(type(x) for x in e), tuple((type(k), type(v)) for k, v in e[4])) for e in encoded]


def _same(records: list[Record], results: list[Any]) -> Any:
    """Both paths on one batch: equal outputs, equal types, equal counts (or the same error)."""
    nat, py = _run(RuntimeCodec(SERDE, "fixed"), records, results), _run(_python_codec(), records, results)
    assert nat == py
    if nat[0] != "raised":
        assert _types(nat[0]) == _types(py[0])
    return nat


def _record(i: int, topic: str, partition: int, headers: Any, name: str, seed: int) -> Record:
    value = SERDE.encode(name, sample(REPO.current(name).schema, seed))
    return Record(topic, partition, 100 + i, T0 + i * 1000, b"k%d" % i, value, headers)


header_sets = st.one_of(
    st.just(()),
    st.just(None),
    st.just((("hft.src.topic", b"up"), ("hft.src.partition", b"0"), ("hft.src.offset", b"7"))),
    st.lists(st.tuples(st.sampled_from(["a", "hft.src.offset", "trace", "hft.src.topic"]), st.binary(max_size=6)), max_size=3).map(tuple),
    st.lists(st.tuples(st.text(max_size=5), st.binary(max_size=4)), max_size=2),  # a list of headers, as Kafka gives
)
keys = st.one_of(st.none(), st.binary(max_size=8), st.text(max_size=8))
outputs = st.builds(
    lambda topic, key, name, seed, ts: Output(topic, key, name, sample(REPO.current(name).schema, seed), ts),
    st.sampled_from(["out.a", "out.b"]), keys, st.sampled_from(NAMES), st.integers(0, 1 << 20),
    st.one_of(st.none(), st.integers(0, 1 << 62)),
)
results_st = st.one_of(st.just([]), st.just(()), st.lists(outputs, min_size=1, max_size=3),
                       st.lists(outputs, min_size=1, max_size=2).map(tuple))
batches = st.lists(st.tuples(st.sampled_from(["md.a", "md.b"]), st.integers(0, 3), header_sets, results_st), min_size=1, max_size=12)


def _native(records: list[Record], results: list[Any], start: int = 0) -> tuple[list[Any], tuple[int, int, int, int]]:
    out: list[Any] = []
    return out, RuntimeCodec(SERDE, "fixed").encode_outputs(records, results, start, out)


def _loop(records: list[Record], results: list[Any]) -> list[Any]:
    """The Python loop's records for results that are all lists of outputs."""
    codec = RuntimeCodec(PY_SERDE, "fixed")
    want = []
    for rec, res in zip(records, results):
        if res:
            lineage = lineage_headers(rec)
            want.extend(codec.encode(out, rec, lineage) for out in res)
    return want


@needs_native
@HYP
@given(batch=batches, seed=st.integers(0, 1000))
def test_generated_batches_match_the_python_loop(batch: list[Any], seed: int) -> None:
    name = NAMES[seed % len(NAMES)]
    records = [_record(i, t, p, h, name, seed) for i, (t, p, h, _) in enumerate(batch)]
    results = [r for *_, r in batch]
    got, (stop, with_out, without, n_out) = _native(records, results)
    assert stop == len(records)  # well-formed: the native core takes the whole batch
    want = _loop(records, results)
    assert got == want and _types(got) == _types(want)
    assert (with_out, without, n_out) == (sum(1 for r in results if r), sum(1 for r in results if not r), len(want))
    _same(records, results)


def _odd(kind: str, out: Output) -> Any:
    """A result the Python path must decide."""
    if kind == "reject":
        return Reject("OFF_TICK", "price off tick")
    if kind == "tombstone":
        return runtime_codec._Tombstone()
    if kind == "poison":
        return PoisonError("bad")
    if kind == "float_in_long":
        v = dict(out.value)
        longs = [k for k, x in v.items() if x.__class__ is int and x.__class__ is not bool]
        v[longs[0] if longs else "nope"] = 1.5
        return [out._replace(value=v)]
    if kind == "unknown_schema":
        return [out, out._replace(schema="hftstream.nope.Nothing")]
    return [out._replace(key=7)]  # a key the producer would refuse: passed through as the Python path does


@HYP
@given(batch=batches, seed=st.integers(0, 1000),
       odd=st.lists(st.tuples(st.integers(0, 11), st.sampled_from(["reject", "tombstone", "poison", "float_in_long",
                                                                   "unknown_schema", "key_int"])), max_size=3))
def test_batches_with_rejects_and_bad_outputs_match_the_python_path(batch: list[Any], seed: int, odd: list[Any]) -> None:
    """Dead letters, tombstones, values fastavro refuses, unknown schemas: the same records, counts and errors."""
    name = NAMES[seed % len(NAMES)]
    records = [_record(i, t, p, h, name, seed) for i, (t, p, h, _) in enumerate(batch)]
    results = [r for *_, r in batch]
    plain = Output("out.a", "k", name, sample(REPO.current(name).schema, seed))
    for at, kind in odd:
        if at < len(results):
            results[at] = _odd(kind, plain)
    _same(records, results)


def _base(n: int = 4) -> tuple[list[Record], list[Any]]:
    name = "hftstream.md.Trade"
    records = [_record(i, "md.a", i % 2, (), name, i) for i in range(n)]
    results = [[Output("out.a", "k", name, sample(REPO.current(name).schema, i))] for i in range(n)]
    return records, results


class OddStr(str):
    pass


class OddRecord(Record):
    pass


@needs_native
@pytest.mark.parametrize("case", [
    "reject", "poison", "invalid_value", "unknown_schema", "float_in_long", "key_int", "key_str_subclass",
    "output_plain_tuple", "result_none", "result_generator", "header_list_pair", "header_bytes_key", "surrogate_key",
    "record_subclass", "second_output_bad",
])
def test_records_the_python_path_decides(case: str) -> None:
    """The native core stops at record 1 (nothing of it appended); the whole batch equals the Python path's."""
    records, results = _base()
    out0 = results[1][0]
    if case == "reject":
        results[1] = Reject("OFF_TICK", "price off tick")
    elif case == "poison":
        results[1] = PoisonError("bad")
    elif case == "invalid_value":
        results[1] = [out0._replace(value={"nope": 1})]
    elif case == "unknown_schema":
        results[1] = [out0._replace(schema="hftstream.nope.Nothing")]
    elif case == "float_in_long":
        results[1] = [out0._replace(value=dict(out0.value, price=1.5))]
    elif case == "key_int":
        results[1] = [out0._replace(key=7)]
    elif case == "key_str_subclass":
        results[1] = [out0._replace(key=OddStr("x"))]
    elif case == "output_plain_tuple":
        results[1] = [tuple(out0)]
    elif case == "result_none":
        results[1] = None
    elif case == "result_generator":
        results[1] = iter([out0])
    elif case == "header_list_pair":
        records[1] = records[1]._replace(headers=(["a", b"x"],))
    elif case == "header_bytes_key":
        records[1] = records[1]._replace(headers=((b"a", b"x"),))
    elif case == "surrogate_key":
        results[1] = [out0._replace(key="\udc80")]
    elif case == "record_subclass":
        records[1] = OddRecord(*records[1])
    elif case == "second_output_bad":
        results[1] = [out0, out0._replace(value={"nope": 1})]
    got, (stop, with_out, without, n_out) = _native(records, results)
    assert (stop, with_out, without, n_out) == (1, 1, 0, 1) and got == _loop(records[:1], results[:1])
    got, (stop, *_) = _native(records, results, 2)
    assert stop == 4 and got == _loop(records[2:], results[2:])
    if case != "result_generator":  # a generator is consumed once
        _same(records, results)


def test_results_of_another_length_take_the_python_loop() -> None:
    records, results = _base()
    assert _same(records, results + [results[0]])[1][3] == 4
    assert _same(records, results[:3])[0] == "raised"  # StopIteration, after the first three records' outputs


def test_decoding_failures_keep_their_places() -> None:
    """A tombstone and a damaged value among the inputs: counted / dead-lettered where they are, on both paths."""
    records, results = _base(6)
    records[1] = records[1]._replace(value=None)
    records[4] = records[4]._replace(value=b"\xc3\x01garbage")
    got = _same(records, [r for i, r in enumerate(results) if i not in (1, 4)])
    assert [e[0] for e in got[0]] == ["out.a", "out.a", "out.a", "dlq.fixed", "out.a"]
    assert got[1][1:5] == (4, 1, 4, 1)


def test_dead_letters_and_order_stay_the_python_paths() -> None:
    """A reject in the middle: the dead letter sits between the outputs of its neighbours, on both paths."""
    records, results = _base(5)
    results[2] = Reject("OFF_TICK", "price off tick")
    got = _same(records, results)
    assert [e[0] for e in got[0]] == ["out.a", "out.a", "dlq.fixed", "out.a", "out.a"]
    assert got[1][4] == 1


def test_emit_other_than_a_list_append() -> None:
    records, results = _base(5)
    results[3] = Reject("OFF_TICK", "price off tick")
    seen: list[Any] = []
    apply_records(Fixed(results), RuntimeCodec(SERDE, "fixed"), records, RunCounts(), lambda e: seen.append(e))
    assert seen == _run(_python_codec(), records, results)[0]


def test_registry_serde_has_no_native_encoders() -> None:
    serde = Serde(REPO, "mock://hop-encode")
    assert serde.native_encoders is None and not RuntimeCodec(serde, "x").native_encode


@needs_native
def test_every_batch_of_a_small_demo_matches_the_python_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped processors' real outputs: each batch the native core takes equals the Python loop's."""
    from typer.testing import CliRunner

    from streams.cli.main import app

    checked: dict[str, int] = {}
    reference = {}
    orig = RuntimeCodec.encode_outputs

    def checking(self: RuntimeCodec, records: list[Record], results: list[Any], start: int, out: list[Any]) -> Any:
        got: list[Any] = []
        done = orig(self, records, results, start, got)
        stop = done[0]
        py = reference.get(self.processor)
        if py is None:
            py = reference[self.processor] = RuntimeCodec(PY_SERDE, self.processor)
        want = []
        for rec, res in zip(records[start:stop], results[start:stop]):
            if res:
                lineage = lineage_headers(rec)
                want.extend(py.encode(o, rec, lineage) for o in res)
        assert got == want and _types(got) == _types(want), self.processor
        taken = results[start:stop]
        assert done[1:] == (sum(1 for r in taken if r), sum(1 for r in taken if not r), len(want))
        checked[self.processor] = checked.get(self.processor, 0) + len(want)
        out.extend(got)
        return done

    monkeypatch.setattr(runtime_codec.RuntimeCodec, "encode_outputs", checking)
    res = CliRunner().invoke(app, ["--data", str(tmp_path / "d"), "demo", "--orders", "300", "--no-latency",
                                   "--no-verify", "--no-tape", "--json"])
    assert res.exit_code == 0, res.output[-2000:]
    assert json.loads(res.stdout.strip().splitlines()[-1] if not res.stdout.lstrip().startswith("{") else res.stdout)["digest"]
    for name in ("normalize", "risk", "matching", "ledger", "dropcopy"):
        assert checked.get(name, 0) > 0, (name, checked)
    print(checked, file=sys.stderr)
