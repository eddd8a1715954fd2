"""Time parsing/formatting (exact ns, no float), replay filters, lineage and JSON rendering."""

from __future__ import annotations

import json

import pytest

from streams.errors import ConfigError
from streams.lineage import lineage_headers, source_of
from streams.log.base import Record
from streams.render import json_line, table_row
from streams.replay import ReplayedRecord, matches, parse_filters
from streams.timeutil import format_iso_ns, parse_time_ns


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2026-01-02T14:30:00Z", 1_767_364_200_000_000_000),
        ("2026-01-02T14:30:00.000123456Z", 1_767_364_200_000_123_456),
        ("2026-01-02T14:30:00.5", 1_767_364_200_500_000_000),
        ("2026-01-02T15:30:00+01:00", 1_767_364_200_000_000_000),
        ("2026-01-02 14:30:00.000000001", 1_767_364_200_000_000_001),
        ("1767364200000000007", 1_767_364_200_000_000_007),
    ],
)
def test_parse_time_ns(text, ns):
    assert parse_time_ns(text) == ns


def test_format_round_trips_every_nanosecond():
    for ns in (0, 1, 1_767_364_200_000_123_456, 1_767_364_200_999_999_999):
        assert parse_time_ns(format_iso_ns(ns)) == ns


def test_bad_time_says_what_is_accepted():
    with pytest.raises(ValueError, match="ISO-8601"):
        parse_time_ns("yesterday")


def _rep(value, key=b"AAPL", schema="hftstream.md.Trade", headers=()):
    return ReplayedRecord(Record("t", 2, 7, 1_767_364_200_000_000_000, key, b"x", headers), schema, value)


def test_filters_match_fields_key_type_and_nested():
    rep = _rep({"symbol": "AAPL", "price": 1872500, "side": "BUY", "inner": {"venue": "alpha"}})
    assert matches(rep, parse_filters(["symbol=AAPL", "price=1872500"]))
    assert matches(rep, parse_filters(["type=Trade", "key=AAPL", "partition=2", "inner.venue=alpha"]))
    assert matches(rep, parse_filters(["type=hftstream.md.Trade"]))
    assert not matches(rep, parse_filters(["symbol=MSFT"]))
    assert not matches(rep, parse_filters(["missing=1"]))


def test_filter_without_equals_is_rejected_with_a_hint():
    with pytest.raises(ConfigError, match="FIELD=VALUE") as err:
        parse_filters(["symbol"])
    assert "--filter symbol=AAPL" in err.value.hint


def test_json_line_has_the_documented_keys_and_renders_bytes():
    line = json_line(_rep({"payload": b"{\"a\":1}", "blob": b"\xff\x00"}))
    doc = json.loads(line)
    assert list(doc) == ["topic", "partition", "offset", "timestamp", "key", "value"]
    assert doc["key"] == "AAPL" and doc["timestamp"] == 1_767_364_200_000_000_000
    assert doc["value"]["payload"] == '{"a":1}'
    assert doc["value"]["blob"] == {"base64": "/wA="}
    assert json_line(_rep({"a": 1})) == json_line(_rep({"a": 1}))  # stable for golden files


def test_undecodable_record_is_rendered_with_its_error():
    rep = ReplayedRecord(Record("t", 0, 1, 0, None, b"\x01"), None, None, error="DecodeError: bad")
    doc = json.loads(json_line(rep))
    assert doc["value"] is None and doc["error"] == "DecodeError: bad" and doc["key"] is None
    assert "DecodeError" in table_row(rep)


def test_lineage_replaces_older_lineage():
    first = Record("a", 1, 5, 0, None, b"", (("x", b"1"),))
    h = lineage_headers(first)
    assert source_of(h) == ("a", 1, 5)
    second = Record("b", 0, 9, 0, None, b"", h)
    h2 = lineage_headers(second)
    assert source_of(h2) == ("b", 0, 9)
    assert ("x", b"1") in h2 and len(h2) == 4
