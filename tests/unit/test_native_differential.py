"""The native core against its Python reference: same outputs byte for byte, same errors (DECISIONS #57).

Every test runs the public functions (``segment.parse_records``/``encode_run``, ``Serde.encode``/``decode``)
on both paths -- native and pure Python -- and compares. When the native core is not built the
native side is skipped with that reason, and the Python side still runs; ``test_native_built_when_cargo_is_on_path``
fails instead of skipping when a toolchain is present, so a broken build cannot hide behind the fallback.
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import zlib
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support import damaged, segment_bytes

from streams import native
from streams.log.base import Record
from streams.log.embedded import segment
from streams.serde import codec
from streams.serde.codec import Serde
from streams.serde.repo import SchemaRepo
from streams.serde.samples import sample

HYP = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
needs_native = pytest.mark.skipif(not native.active(), reason=f"{native.status()}: only the Python path runs")
T0 = 1_700_000_000_000_000_000
LINEAGE = (("hft.src.topic", b"orders.in"), ("hft.src.partition", b"3"), ("hft.src.offset", b"12345"))
REPO = SchemaRepo.load()
NAMES = REPO.names()


def test_native_built_when_cargo_is_on_path() -> None:
    """With a Rust toolchain the install builds the core: a failed build must not pass as 'pure Python'."""
    if os.environ.get("HFTSTREAM_NATIVE", "1") == "0":
        assert native.NATIVE is None and "disabled by HFTSTREAM_NATIVE=0" in native.status()
        return
    if shutil.which("cargo") is None:
        pytest.skip("no cargo on PATH: the pure-Python install is the expected one")
    assert native.active(), native.status()


# -- segment framing -------------------------------------------------------------------


def _encode_both(batch: list, *args: int) -> tuple[Any, Any]:
    def run(fn: Any) -> Any:
        try:
            return fn(batch, 0, *args)
        except Exception as exc:  # the same exception, with the same message, on both paths
            return (type(exc), str(exc))

    return run(segment.encode_run), run(segment.py_encode_run)


def _parse_both(buf: bytes, min_offset: int = 0, limit: int = 1 << 30, pos: int = 0) -> tuple[Any, Any]:
    a: list[Record] = []
    b: list[Record] = []
    ra = segment.parse_records(buf, pos, len(buf), "t", 3, min_offset, limit, a)
    rb = segment.py_parse_records(buf, pos, len(buf), "t", 3, min_offset, limit, b)
    assert all(type(r) is Record for r in a)
    return (ra, a), (rb, b)


blobs = st.one_of(st.none(), st.binary(max_size=40))
header_sets = st.one_of(
    st.just(()),
    st.just(LINEAGE),
    st.lists(st.tuples(st.text(max_size=12), st.binary(max_size=20)), max_size=4).map(tuple),
    st.just(LINEAGE + (("extra", b"x"),)),
)
items = st.tuples(blobs, blobs, st.integers(-(1 << 63), (1 << 63) - 1), st.one_of(st.none(), header_sets))


@needs_native
@HYP
@given(st.lists(items, max_size=30), st.integers(0, 1 << 40), st.sampled_from([0, 100, 5000]), st.sampled_from([64, 1 << 20]))
def test_encode_run_matches_python(batch: list, offset: int, pos: int, interval: int) -> None:
    a, b = _encode_both(batch, offset, pos, 4096, interval, 0, segment.MIN_TS)
    assert a == b


@needs_native
@pytest.mark.parametrize(
    "item",
    [
        (bytearray(b"k"), b"v", T0, None),  # bytes-like key: Python's join takes it
        (b"k", b"v", 1 << 64, None),  # timestamp out of int64: struct.error
        (b"k", b"v", T0, ((1, b"x"),)),  # header name not a str
        (b"k", b"v", T0, (("n", "text"),)),  # header value not bytes
        (b"k", "text", T0, None),  # value not bytes
        (b"k", b"v", True, None),  # bool timestamp
        (b"k", b"v", T0, (("\ud800", b"x"),)),  # unencodable header name
        [b"k", b"v", T0, None],  # a list, not a tuple
        (b"k", b"v", T0),  # three fields
    ],
)
def test_encode_run_odd_items_same_result_or_error(item: Any) -> None:
    a, b = _encode_both([(b"a", b"b", T0, LINEAGE), item], 7, 0, 1 << 20, 4096, 0, segment.MIN_TS)
    assert a == b


_segment_bytes = segment_bytes


@needs_native
@HYP
@given(st.lists(items, min_size=1, max_size=20), st.integers(95, 125), st.integers(1, 25))
def test_parse_records_matches_python(batch: list, min_offset: int, limit: int) -> None:
    buf = _segment_bytes(batch)
    a, b = _parse_both(buf, min_offset, limit)
    assert a == b
    assert [r.offset for r in a[1]] == list(range(max(100, min_offset), 100 + len(batch)))[:limit]


@needs_native
@HYP
@given(st.lists(items, min_size=1, max_size=12), st.data())
def test_damaged_segments_same_records_status_and_reason(batch: list, data: st.DataObject) -> None:
    """Truncation, flipped bytes and overwritten ranges: the same records, stop position, status and reason."""
    a, b = _parse_both(damaged(_segment_bytes(batch), data))
    assert a == b


def _frame(body: bytes) -> bytes:
    return struct.pack("<II", len(body) + 4, zlib.crc32(body)) + body


@needs_native
@pytest.mark.parametrize(
    "body",
    [
        struct.pack("<BqqiiH", 0xE2, 5, T0, -1, 1, 0) + b"v",  # unknown format byte, valid CRC
        struct.pack("<BqqiiH", 0xE1, 5, T0, -2, 1, 0) + b"v",  # key length below -1
        struct.pack("<BqqiiH", 0xE1, 5, T0, -1, 1, 1) + b"v" + struct.pack("<H", 2) + b"\xff\xfe" + struct.pack("<I", 0),  # bad utf-8 name
        struct.pack("<BqqiiH", 0xE1, 5, T0, -1, 1, 2) + b"v" + struct.pack("<H", 1) + b"n" + struct.pack("<I", 0),  # 2 headers, 1 there
        struct.pack("<BqqiiH", 0xE1, 5, T0, -1, 1, 1) + b"v" + struct.pack("<H", 1) + b"n" + struct.pack("<I", 9) + b"x",  # value runs past
        struct.pack("<BqqiiH", 0xE1, 5, T0, 3, 1, 0) + b"v",  # key longer than the record
        struct.pack("<BqqiiH", 0xE1, 5, T0, -1, 1, 0) + b"vv",  # a byte too many
    ],
)
def test_crafted_bad_records_same_reason(body: bytes) -> None:
    good = _segment_bytes([(b"k", b"v", T0, LINEAGE)])
    a, b = _parse_both(good + _frame(body) + good)
    assert a == b
    assert a[0][1] == segment.BAD and a[0][0] == len(good) and len(a[1]) == 1


# -- the Avro codec --------------------------------------------------------------------


@pytest.fixture(scope="module")
def serdes() -> tuple[Serde, Serde]:
    """(a serde on the native path, the same on the Python path)."""
    python = Serde(REPO)
    python._native_enc.clear()
    python._native_dec.clear()
    return Serde(REPO), python


def _call(fn: Any, *args: Any) -> Any:
    try:
        out = fn(*args)
    except Exception as exc:
        return ("raised", type(exc), str(exc), getattr(exc, "hint", None))
    return out if not isinstance(out, list) else [tuple(x) if isinstance(x, tuple) else x for x in out]


@needs_native
def test_every_current_schema_compiles_natively(serdes: tuple[Serde, Serde]) -> None:
    nat, _ = serdes
    assert sorted(nat._native_enc) == NAMES
    assert {n for n, _ in nat._native_dec.values()} == set(NAMES)


@needs_native
@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 1 << 30))
def test_codec_round_trip_matches_fastavro(serdes: tuple[Serde, Serde], name: str, seed: int) -> None:
    nat, py = serdes
    value = sample(REPO.current(name).schema, seed)
    data = nat.encode(name, value)
    assert data == py.encode(name, value)
    got, want = nat.decode(data), py.decode(data)
    assert got == want and repr(got) == repr(want)  # same types and key order, not just equal
    assert nat.encode_many(name, [value, value]) == py.encode_many(name, [value, value])
    assert _call(nat.decode_many, [data, data]) == _call(py.decode_many, [data, data])


odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(1 << 70), 1 << 70),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.sampled_from(["BUY", "SELL", "LIMIT", "NOPE", "\ud800"]),
)


@needs_native
@pytest.mark.parametrize("name", ["hftstream.orders.NewOrder", "hftstream.fills.Fill", "hftstream.md.BookDelta", "hftstream.dlq.DeadLetter"])
@HYP
@given(seed=st.integers(0, 1000), data=st.data())
def test_invalid_values_same_error_or_bytes(serdes: tuple[Serde, Serde], name: str, seed: int, data: st.DataObject) -> None:
    """A field set to anything (or dropped): the same bytes, or the same error type, message and hint."""
    nat, py = serdes
    value = sample(REPO.current(name).schema, seed)
    field = data.draw(st.sampled_from(sorted(value)))
    if data.draw(st.booleans()):
        del value[field]
    else:
        value[field] = data.draw(odd_values)
    assert _call(nat.encode, name, value) == _call(py.encode, name, value)
    assert _call(nat.encode_many, name, [value]) == _call(py.encode_many, name, [value])


@needs_native
@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 1000), data=st.data())
def test_damaged_bytes_same_decode_or_error(serdes: tuple[Serde, Serde], name: str, seed: int, data: st.DataObject) -> None:
    nat, py = serdes
    buf = bytearray(nat.encode(name, sample(REPO.current(name).schema, seed)))
    kind = data.draw(st.sampled_from(["truncate", "flip", "append", "overwrite"]))
    at = data.draw(st.integers(0, len(buf) - 1))
    if kind == "truncate":
        del buf[at:]
    elif kind == "flip":
        buf[at] ^= data.draw(st.integers(1, 255))
    elif kind == "append":
        buf += data.draw(st.binary(min_size=1, max_size=4))
    else:
        junk = data.draw(st.binary(min_size=1, max_size=6))
        buf[at : at + len(junk)] = junk
    blob = bytes(buf)
    assert _call(nat.decode, blob) == _call(py.decode, blob)
    assert _call(nat.decode_many, [blob]) == _call(py.decode_many, [blob])


# -- Avro features beyond today's schemas (maps, fixed, arrays of records, recursion, floats, wide unions)

WIDE = {
    "type": "record",
    "name": "t.Wide",
    "fields": [
        {"name": "m", "type": {"type": "map", "values": ["null", "long"]}},
        {"name": "fx", "type": {"type": "fixed", "name": "t.F4", "size": 4}},
        {"name": "f", "type": "float"},
        {"name": "d", "type": "double"},
        {"name": "u", "type": ["null", "string", "long"]},
        {"name": "kids", "type": {"type": "array", "items": "t.Wide"}},
        {"name": "e", "type": {"type": "enum", "name": "t.E", "symbols": ["A", "B"]}, "default": "A"},
        {"name": "opt", "type": ["null", "t.F4"], "default": None},
    ],
}
PARSED = fastavro.parse_schema(WIDE, named_schemas={})


def _wide() -> st.SearchStrategy[dict]:
    leaf = st.fixed_dictionaries(
        {
            "m": st.dictionaries(st.text(max_size=4), st.one_of(st.none(), st.integers(-(1 << 63), (1 << 63) - 1)), max_size=3),
            "fx": st.binary(min_size=4, max_size=4),
            "f": st.floats(width=32, allow_nan=False),
            "d": st.floats(allow_nan=False),
            "u": st.one_of(st.none(), st.text(max_size=5), st.integers(-5, 5)),
            "kids": st.just([]),
            "e": st.sampled_from(["A", "B"]),
            "opt": st.one_of(st.none(), st.binary(min_size=4, max_size=4)),
        }
    )
    return st.recursive(leaf, lambda kids: st.builds(lambda base, ks: {**base, "kids": ks}, leaf, st.lists(kids, max_size=3)), max_leaves=6)


@needs_native
@HYP
@given(_wide())
def test_wide_schema_matches_fastavro(value: dict) -> None:
    codec_ = native.NATIVE.Codec(PARSED)
    bio = io.BytesIO()
    fastavro.schemaless_writer(bio, PARSED, value)
    want = bio.getvalue()
    got = codec_.encode(b"", value)
    assert got is None or got == want  # None: a wide union, fastavro picks the branch (here "u")
    decoded = codec_.decode(want, 0)
    ref = fastavro.schemaless_reader(io.BytesIO(want), PARSED)
    assert decoded == ref and repr(decoded) == repr(ref)


@needs_native
def test_wide_schema_without_the_wide_union_is_encoded_natively() -> None:
    value = {"m": {"a": 1, "b": None}, "fx": b"abcd", "f": 1.5, "d": -2.25, "u": None, "kids": [], "opt": b"wxyz"}
    got = native.NATIVE.Codec(PARSED).encode(b"\x01", value)
    bio = io.BytesIO()
    fastavro.schemaless_writer(bio, PARSED, value)
    assert got == b"\x01" + bio.getvalue()


@needs_native
def test_logical_types_are_left_to_fastavro() -> None:
    schema = fastavro.parse_schema(
        {"type": "record", "name": "t.L", "fields": [{"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}}]}, named_schemas={}
    )
    assert codec.native_codec(schema) is None


# -- the tape sink's rows (connectors/clickhouse/avro_block.py) ------------------------------------------


def _plan() -> Any:
    from connectors.clickhouse.avro_block import Plan

    return Plan("fills", "Fill", 10, ("topic",), b"", b"", b"\x08Fill")


lineage_values = st.one_of(st.none(), st.sampled_from([b"", b"0", b"17", b"-1", b" 3", b"+4", b"1_0", b"x", b"99999999999999999999"]), st.binary(max_size=4))


@needs_native
@HYP
@given(
    key=blobs,
    value=st.binary(max_size=30),
    offset=st.integers(0, (1 << 63) - 1),
    ts=st.integers(-(1 << 63), (1 << 63) - 1),
    topic=st.one_of(st.none(), st.sampled_from([b"", b"orders.in"]), st.binary(max_size=5)),
    part=lineage_values,
    off=lineage_values,
    extra=st.lists(st.tuples(st.sampled_from(["hft.src.offset", "other", "hft.src.topic"]), st.binary(max_size=3)), max_size=2),
)
def test_tape_rows_match_python(key: Any, value: bytes, offset: int, ts: int, topic: Any, part: Any, off: Any, extra: list) -> None:
    from connectors.clickhouse.avro_block import encode_row, envelope_prefix, py_encode_row

    headers = tuple((n, v) for n, v in (("hft.src.topic", topic), ("hft.src.partition", part), ("hft.src.offset", off)) if v is not None)
    rec = Record("fills", 2, offset, ts, key, value, headers + tuple(extra))
    prefix = envelope_prefix("fills", 2)
    assert _call(encode_row, prefix, _plan(), rec) == _call(py_encode_row, prefix, _plan(), rec)


# -- the decode half of a processor hop (streams/runtime/task.py apply_records) ------------------------------


@needs_native
@HYP
@given(seeds=st.lists(st.integers(0, 1000), min_size=1, max_size=12), data=st.data())
def test_hop_decode_batch_matches_per_record_decode(serdes: tuple[Serde, Serde], seeds: list[int], data: st.DataObject) -> None:
    """Each Message the batch call builds equals ``RuntimeCodec.decode`` of that record; the rest it leaves to it."""
    from streams.runtime.codec import RuntimeCodec

    nat, py = serdes
    records, kinds = [], []
    for i, seed in enumerate(seeds):
        name = NAMES[seed % len(NAMES)]
        value: Any = nat.encode(name, sample(REPO.current(name).schema, seed))
        kind = data.draw(st.sampled_from(["ok", "ok", "tombstone", "truncated", "trailing", "confluent", "short"]))
        value = {"ok": value, "tombstone": None, "truncated": value[:-1], "trailing": value + b"\x00", "confluent": b"\x00\x00\x00\x00\x01" + value[10:],
                 "short": value[:7]}[kind]
        kinds.append(kind)
        records.append(Record("orders.in", i % 3, 100 + i, T0 + i, None if i % 4 == 0 else b"acct-%d" % i, value, LINEAGE))
    fast, ref = RuntimeCodec(nat, "p"), RuntimeCodec(py, "p")
    pre = fast.decode_batch(records)
    assert pre is not None and len(pre) == len(records) and ref.decode_batch(records) is None
    for rec, msg, kind in zip(records, pre, kinds):
        assert (msg is not None) == (kind == "ok"), kind  # every damaged or foreign value is declined: Python decides
        if msg is not None:
            want = ref.decode(rec)
            assert type(msg) is type(want) and msg == want and repr(msg) == repr(want)
        else:
            assert _call(fast.decode, rec) == _call(ref.decode, rec)
