"""The tape sink's native scan (frames straight to rows, DECISIONS #62) against its Python reference.

The reference is ``py_parse_records`` followed by ``py_encode_row``: for every record the scan must give either
exactly ``(topic, partition, offset, py_encode_row(...), plan_id)`` or the very ``Record`` the parser makes (the
sink's Python path then judges it), stop where the parser stops, and return the same status and reason.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support import damaged, segment_bytes

from connectors.clickhouse.avro_block import FrameScan, Plan, envelope_prefix, py_encode_row
from streams import native
from streams.log.base import Record
from streams.log.embedded import segment

HYP = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
needs_native = pytest.mark.skipif(not native.active(), reason=f"{native.status()}: only the Python path runs")
T0 = 1_700_000_000_000_000_000
HEADER = b"\xc3\x01" + bytes(range(8))  # a single-object header the scan knows a plan for
OTHER = b"\xc3\x01" + bytes(range(8, 16))  # one it does not (the sink's Python path learns it)
PLAN = Plan("fills", "Fill", 10, ("topic",), b"", b"", b"\x08Fill")

lineage_values = st.one_of(st.none(), st.sampled_from([b"", b"0", b"17", b"-1", b" 3", b"+4", b"x", b"99999999999999999999"]), st.binary(max_size=3))
values = st.one_of(
    st.none(),  # a tombstone
    st.binary(max_size=12).map(lambda b: HEADER + b),
    st.binary(max_size=12).map(lambda b: OTHER + b),
    st.binary(max_size=12),  # undecodable, short
    st.sampled_from([HEADER[:4], b"", b"\x00\x00\x00\x00\x07body"]),
)


@st.composite
def records(draw: Any) -> tuple:
    topic = draw(st.one_of(st.none(), st.sampled_from([b"", b"orders.in"]), st.binary(max_size=4)))
    lineage = [(n, v) for n, v in (("hft.src.topic", topic), ("hft.src.partition", draw(lineage_values)),
                                   ("hft.src.offset", draw(lineage_values))) if v is not None]
    extra = draw(st.lists(st.tuples(st.sampled_from(["hft.src.offset", "other", "hft.src.topic", "é"]), st.binary(max_size=3)), max_size=2))
    headers = tuple(lineage + extra) if draw(st.booleans()) else ()  # some records carry no headers at all
    return (draw(st.one_of(st.none(), st.binary(max_size=6))), draw(values), draw(st.integers(-(1 << 63), (1 << 63) - 1)), headers)


_segment = segment_bytes


def _scan() -> FrameScan:
    scan = FrameScan()
    scan.add(HEADER, PLAN)
    return scan


def _check(buf: bytes, min_offset: int = 0, limit: int = 1 << 30) -> list[Any]:
    """Scan ``buf`` and compare with the reference item by item; return the scan's items."""
    got: list[Any] = []
    ref: list[Record] = []
    assert _scan()(buf, 0, len(buf), "t", 3, min_offset, limit, got) == segment.py_parse_records(buf, 0, len(buf), "t", 3, min_offset, limit, ref)
    assert len(got) == len(ref)
    prefix = envelope_prefix("t", 3)
    for item, rec in zip(got, ref):
        if type(item) is Record:
            assert item == rec
            continue
        assert type(item) is tuple and rec.value is not None and rec.value[:10] == HEADER
        assert item == (rec.topic, rec.partition, rec.offset, py_encode_row(prefix, PLAN, rec), 0)
    return got


@needs_native
@HYP
@given(st.lists(records(), min_size=1, max_size=20), st.integers(95, 125), st.integers(1, 25))
def test_scan_gives_the_python_rows_or_the_python_records(batch: list, min_offset: int, limit: int) -> None:
    _check(_segment(batch), min_offset, limit)


@needs_native
@HYP
@given(st.lists(records(), min_size=1, max_size=12), st.data())
def test_damaged_segments_same_items_stop_status_and_reason(batch: list, data: st.DataObject) -> None:
    _check(damaged(_segment(batch), data))


@needs_native
def test_plain_lineage_and_no_lineage_are_encoded_and_the_rest_left_to_python() -> None:
    lineage = (("hft.src.topic", b"orders.in"), ("hft.src.partition", b"3"), ("hft.src.offset", b"12345"))
    batch = [
        (b"k", HEADER + b"body", T0, lineage),  # encoded
        (None, HEADER + b"body", T0, ()),  # encoded: no lineage
        (b"k", HEADER + b"body", T0, lineage[:2] + (("hft.src.offset", b" 7"),)),  # Python's int() decides
        (b"k", None, T0, lineage),  # a tombstone: a dead letter, by the Python path
        (b"k", OTHER + b"body", T0, lineage),  # no plan known yet
        (b"k", b"\x00garbage", T0, lineage),  # undecodable
    ]
    got = _check(_segment(batch))
    assert [type(i) is tuple for i in got] == [True, True, False, False, False, False]


@needs_native
def test_a_bad_header_name_stops_the_scan_where_the_parser_stops() -> None:
    good = _segment([(b"k", HEADER + b"v", T0, ())])
    body = struct.pack("<BqqiiH", 0xE1, 101, T0, -1, 11, 1) + HEADER + b"v" + struct.pack("<H", 2) + b"\xff\xfe" + struct.pack("<I", 0)
    bad = struct.pack("<II", len(body) + 4, zlib.crc32(body)) + body
    got = _check(good + bad + good)
    assert len(got) == 1


def test_the_reader_hands_out_the_same_records_through_the_scan(tmp_path: Any) -> None:
    """``poll_parsed`` with the scan reads the same offsets as ``poll``; without the native core it reads Records."""
    from streams.log import TopicSpec, open_log

    with open_log(f"embedded://{tmp_path / 'log'}") as log:
        log.create_topic(TopicSpec("t", partitions=2))
        with log.producer() as p:
            for i in range(3000):
                p.produce("t", HEADER + i.to_bytes(4, "big") if i % 7 else None, b"k", timestamp_ns=T0 + i,
                          headers=(("hft.src.topic", b"a"), ("hft.src.partition", b"1"), ("hft.src.offset", str(i).encode())))
        plain, scanned = log.reader([("t", 0, 5), ("t", 1, 0)]), log.reader([("t", 0, 5), ("t", 1, 0)])
        a: list[Record] = []
        b: list[Any] = []
        while got := plain.poll(700):
            a.extend(got)
        while got := scanned.poll_parsed(_scan(), 700):
            b.extend(got)
        plain.close()
        scanned.close()
    assert [r[:3] for r in a] == [i[:3] for i in b] and len(a) == 3000 - 5
    if native.active():
        assert sum(type(i) is tuple for i in b) == sum(r.value is not None for r in a)
    else:
        assert b == a
