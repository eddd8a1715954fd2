"""Venue wire formats: round trips per format and event type, strict decimals/times, malformed input -> typed error."""

from __future__ import annotations

import json
import random

import pytest

from connectors.venues.errors import UnknownVenueError, VenueFormatError
from connectors.venues.events import BookDelta, Heartbeat, Quote, StatusChange, Trade, VenueMessage
from connectors.venues.fix import frame
from connectors.venues.formats import FORMATS, VENUES, codec_for, venue_format
from connectors.venues.instruments import Instrument, RefData
from connectors.venues.scaled import (
    format_decimal,
    format_fix_time,
    format_iso_ns,
    parse_decimal,
    parse_fix_time,
    parse_iso_ns,
)
from connectors.venues.simulator import corrupt
from streams.errors import PoisonError

T0 = 1_767_364_200_000_123_456  # 2026-01-02T14:30:00.000123456Z
AAPL = Instrument("AAPL", "3", price_scale=4, size_scale=0, tick_size=100, lot_size=1)
BTC = Instrument("BTC-USD", "7", price_scale=2, size_scale=8, tick_size=1, lot_size=10_000, currency="USD")
ES = Instrument("ESH6", "11", price_scale=2, size_scale=0, tick_size=25, lot_size=1)
REF = RefData([AAPL, BTC, ES])
VENUE_OF = {"json-decimal": "alpha", "json-ticks": "bravo", "fix": "charlie"}

EVENTS = [
    Trade("AAPL", T0, "A-17", 1_872_500, 100, "BUY"),
    Trade("AAPL", T0 + 1, "A-18", 1_872_600, 3, None),
    Trade("BTC-USD", T0, "X-1", 4_215_050, 12_340_000, "SELL"),  # 42150.50 x 0.1234 BTC
    Trade("ESH6", T0, "9", 478_525, 2, "BUY"),  # tick 0.25: 4785.25
    Quote("AAPL", T0, 1_872_400, 300, 1_872_600, 200),
    Quote("BTC-USD", T0, 4_215_050, 50_000_000, None, 0),  # empty offer side
    Quote("AAPL", T0, None, 0, None, 0),  # empty book
    Quote("ESH6", T0, 478_500, 10, 478_525, 7),
    BookDelta("AAPL", T0, "BUY", "ADD", 1_872_300, 500),
    BookDelta("AAPL", T0, "SELL", "CHANGE", 1_872_700, 250),
    BookDelta("BTC-USD", T0, "SELL", "DELETE", 4_215_100, 0),
    StatusChange("AAPL", T0, "HALTED", "volatility pause"),
    StatusChange("BTC-USD", T0, "OPEN"),
    StatusChange(None, T0, "CLOSED"),
    *[StatusChange("ESH6", T0, s) for s in ("PRE_OPEN", "OPENING_AUCTION", "CLOSING_AUCTION")],
    Heartbeat(T0),
]


def _id(ev):  # readable test ids
    return f"{ev.kind}-{getattr(ev, 'symbol', None)}-{getattr(ev, 'action', getattr(ev, 'status', ''))}"


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("event", EVENTS, ids=_id)
def test_round_trip_every_event_type(fmt, event):
    codec = codec_for(VENUE_OF[fmt])
    seq = 1043 if codec.sequenced else None
    payload = codec.encode(VenueMessage(seq, event), REF)
    assert isinstance(payload, bytes)
    assert codec.decode(payload, REF) == VenueMessage(seq, event)
    inspection = codec.inspect(payload)
    assert (inspection.kind, inspection.seq, inspection.exchange_ts_ns) == (event.kind, seq, event.exchange_ts_ns)
    if fmt != "json-ticks":  # json-ticks names instruments by number; the symbol needs reference data
        assert inspection.symbol == event.symbol
    # Deterministic bytes: encoding twice gives the same payload.
    assert codec.encode(VenueMessage(seq, event), REF) == payload


def test_json_decimal_matches_the_documented_example():
    doc = b'{"type":"trade","symbol":"AAPL","price":"187.2500","size":"100","ts":"2026-01-02T14:30:00.000123456Z","trade_id":"A-17"}'
    codec = codec_for("alpha")
    assert codec.decode(doc, REF) == VenueMessage(None, Trade("AAPL", T0, "A-17", 1_872_500, 100))
    assert codec.encode(VenueMessage(None, Trade("AAPL", T0, "A-17", 1_872_500, 100)), REF) == doc


def test_json_ticks_documented_example_uses_ticks_and_instrument_ids():
    # Instrument 3 is AAPL; 18725 ticks of 0.01 = 187.25 = 1872500 at scale 4. No "x": the seq names the print.
    doc = b'{"t":"T","i":3,"q":1043,"p":18725,"z":100,"ns":1767364200000123456}'
    msg = codec_for("bravo").decode(doc, REF)
    assert msg == VenueMessage(1043, Trade("AAPL", T0, "1043", 1_872_500, 100))
    # Integer trade ids are accepted too (and become strings).
    doc2 = json.loads(doc) | {"x": 99}
    assert codec_for("bravo").decode(json.dumps(doc2).encode(), REF).event.trade_id == "99"


def test_json_ticks_prices_are_ticks_of_the_instruments_tick_size():
    payload = codec_for("bravo").encode(VenueMessage(5, Trade("ESH6", T0, "1", 478_525, 2)), REF)
    obj = json.loads(payload)
    assert (obj["i"], obj["p"], obj["z"]) == (11, 19_141, 2)  # 4785.25 / 0.25
    with pytest.raises(VenueFormatError, match="not a multiple of 25"):
        codec_for("bravo").encode(VenueMessage(5, Trade("ESH6", T0, "1", 478_510, 2)), REF)


def _fix_checksum(message: bytes) -> int:
    """Independent of the codec: every byte before the '10=' trailer, mod 256."""
    return sum(message[: message.rindex(b"\x0110=") + 1]) % 256


def test_fix_framing_body_length_and_checksum_are_correct():
    msg = codec_for("charlie").encode(VenueMessage(34, EVENTS[0]), REF)
    fields = msg.split(b"\x01")
    assert fields[0] == b"8=FIX.4.4" and fields[1].startswith(b"9=") and fields[-1] == b""
    assert fields[2] == b"35=X"
    body_start = msg.index(b"\x01", msg.index(b"9=")) + 1
    body_end = msg.rindex(b"\x0110=") + 1
    assert int(fields[1][2:]) == body_end - body_start
    assert int(fields[-2][3:]) == _fix_checksum(msg)
    tags = dict(f.split(b"=", 1) for f in fields[2:-2])
    assert tags[b"34"] == b"34" and tags[b"55"] == b"AAPL" and tags[b"270"] == b"187.25" and tags[b"269"] == b"2"
    assert tags[b"52"] == b"20260102-14:30:00.000123456" and tags[b"49"] == b"CHARLIE"


def test_fix_decodes_a_hand_built_snapshot():
    body = "35=W\x0149=CHARLIE\x0156=X\x0134=9\x0152=20260102-14:30:00.5\x0155=AAPL\x01268=2\x01269=1\x01270=187.3\x01271=5\x01269=0\x01270=187.2\x01271=7\x01"
    head = b"8=FIX.4.4\x019=" + str(len(body)).encode() + b"\x01" + body.encode()
    message = head + f"10={sum(head) % 256:03d}\x01".encode()
    msg = codec_for("charlie").decode(message, REF)
    assert msg == VenueMessage(9, Quote("AAPL", 1_767_364_200_500_000_000, 1_872_000, 7, 1_873_000, 5))  # time from 52


def test_roster_cycles_formats_and_rejects_unknown_venues():
    assert VENUES == ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")
    assert [venue_format(v) for v in VENUES] == ["json-decimal", "json-ticks", "fix"] * 2 + ["json-decimal", "json-ticks"]
    with pytest.raises(UnknownVenueError) as exc:
        venue_format("zulu")
    assert "zulu" in str(exc.value) and "alpha" in exc.value.hint


# -- malformed input ------------------------------------------------------------------------------

_GOOD_FIX = frame([("35", "X"), ("34", "5"), ("52", "20260102-14:30:00"), ("268", "1"), ("279", "0"), ("269", "0"),
                   ("55", "AAPL"), ("270", "187.25"), ("271", "100")])

MALFORMED = [
    ("json-decimal", b"", "empty payload"),
    ("json-decimal", b'{"type":"trade","symbol":"AAPL"', "invalid JSON"),
    ("json-decimal", b"\xff\xfe{}", "not UTF-8"),
    ("json-decimal", b"[1,2]", "must be an object"),
    ("json-decimal", b'{"type":"fill","ts":"2026-01-02T14:30:00Z"}', "field 'type'"),
    ("json-decimal", b'{"type":"trade","symbol":"AAPL","price":187.25,"size":"1","ts":"2026-01-02T14:30:00Z","trade_id":"a"}', "decimal string"),
    ("json-decimal", b'{"type":"trade","symbol":"AAPL","price":"187.25","size":"1","ts":"2026-01-02 14:30:00","trade_id":"a"}', "ISO-8601"),
    ("json-decimal", b'{"type":"trade","symbol":"AAPL","price":"187.250001","size":"1","ts":"2026-01-02T14:30:00Z","trade_id":"a"}', "more than 4 decimal places"),
    ("json-decimal", b'{"type":"trade","symbol":"AAPL","price":"1e3","size":"1","ts":"2026-01-02T14:30:00Z","trade_id":"a"}', "not a decimal"),
    ("json-decimal", b'{"type":"trade","symbol":"AAPL","price":"187.25","size":"-1","ts":"2026-01-02T14:30:00Z","trade_id":"a"}', "must be >= 0"),
    ("json-decimal", b'{"type":"trade","symbol":"MSFT","price":"1","size":"1","ts":"2026-01-02T14:30:00Z","trade_id":"a"}', "unknown symbol 'MSFT'"),
    ("json-decimal", b'{"type":"quote","symbol":"AAPL","bid":"1","bid_size":"1","ask_size":"1","ts":"2026-01-02T14:30:00Z"}', "missing field 'ask'"),
    ("json-decimal", b'{"type":"book","symbol":"AAPL","side":"buy","action":"add","price":"1","size":"1","ts":"2026-01-02T14:30:00Z"}', "field 'side'"),
    ("json-decimal", b'{"type":"heartbeat","ts":"2026-02-30T14:30:00Z"}', "calendar date"),
    ("json-ticks", b'{"t":"T","i":3,"q":1,"p":1,"z":1}', "missing field 'ns'"),
    ("json-ticks", b'{"t":"T","i":3,"q":true,"p":1,"z":1,"ns":5}', "must be an integer"),
    ("json-ticks", b'{"t":"T","i":3,"q":1,"p":"1","z":1,"ns":5}', "must be an integer"),
    ("json-ticks", b'{"t":"T","i":99,"q":1,"p":1,"z":1,"ns":5}', "unknown instrument id 99"),
    ("json-ticks", b'{"t":"H","q":1,"ns":-5}', "before the epoch"),
    ("json-ticks", b'{"t":"B","i":3,"q":1,"s":2,"u":0,"p":1,"z":1,"ns":5}', "field 's'"),
    ("json-ticks", b'{"t":"H","q":1,"ns":99999999999999999999}', "int64"),
    ("json-ticks", b'{"t":"Z","q":1,"ns":5}', "field 't'"),
    ("fix", b"", "8=FIX.4.4"),
    ("fix", b"8=FIX.4.2\x019=5\x0135=0\x0110=000\x01", "8=FIX.4.4"),
    ("fix", _GOOD_FIX[:-6] + b"\x0110=000\x01", "BodyLength"),
    ("fix", _GOOD_FIX[:-4] + f"{(int(_GOOD_FIX[-4:-1]) + 1) % 256:03d}".encode() + b"\x01", "CheckSum"),
    ("fix", _GOOD_FIX[:-1], "trailer"),
    ("fix", _GOOD_FIX[: len(_GOOD_FIX) // 2], "BodyLength"),
    ("fix", frame([("35", "X"), ("52", "20260102-14:30:00"), ("268", "1"), ("279", "0"), ("269", "0"), ("55", "AAPL"), ("270", "1"), ("271", "1")]), "MsgSeqNum"),
    ("fix", frame([("35", "Z"), ("34", "1"), ("52", "20260102-14:30:00")]), "MsgType"),
    ("fix", frame([("35", "X"), ("34", "1"), ("52", "20260102-14:30:00"), ("268", "2"), ("279", "0"), ("269", "0"), ("55", "AAPL"), ("270", "1"), ("271", "1")]), "says 2"),
    ("fix", frame([("35", "X"), ("34", "1"), ("52", "20260102-14:30:00"), ("268", "1"), ("279", "0"), ("269", "0"), ("55", "AAPL"), ("270", "1.0.0"), ("271", "1")]), "not a decimal"),
    ("fix", frame([("35", "X"), ("34", "1"), ("52", "20260102-14:30:00"), ("268", "1"), ("279", "0"), ("269", "0"), ("55", "GOOG"), ("270", "1"), ("271", "1")]), "unknown symbol"),
    ("fix", frame([("35", "W"), ("34", "1"), ("52", "20260102-14:30:00"), ("55", "AAPL"), ("268", "2"), ("269", "0"), ("270", "1"), ("271", "1"), ("269", "0"), ("270", "2"), ("271", "1")]), "two bid entries"),
    ("fix", frame([("35", "0"), ("34", "1"), ("52", "2026-01-02T14:30:00")]), "UTCTimestamp"),
    ("fix", b"8=FIX.4.4\x019=14\x0135=0\x0134=1\x0152\x0110=000\x01", "BodyLength|malformed field|CheckSum"),
]


@pytest.mark.parametrize(("fmt", "payload", "cause"), MALFORMED, ids=[f"{f}-{i}" for i, (f, *_r) in enumerate(MALFORMED)])
def test_malformed_payload_raises_typed_error_naming_venue_format_and_cause(fmt, payload, cause):
    venue = VENUE_OF[fmt]
    with pytest.raises(VenueFormatError, match=cause) as exc:
        codec_for(venue).decode(payload, REF)
    err = exc.value
    assert isinstance(err, PoisonError) and err.reason_code == "VENUE_FORMAT"
    assert (err.venue, err.format) == (venue, fmt)
    assert venue in str(err) and fmt in str(err) and err.hint


def test_inspect_needs_no_reference_data_but_checks_structure():
    codec = codec_for("bravo")
    assert codec.inspect(b'{"t":"T","i":12345,"q":1,"p":1,"z":1,"ns":5}').instrument_number == 12345
    with pytest.raises(VenueFormatError):
        codec.inspect(b'{"t":"T","i":12345,"q":1,"p":1.5,"z":1,"ns":5}')


def test_inspect_rejects_a_negative_size_like_decode_does():
    """A size below zero is wrong at any scale, so the structure check (no reference data) catches it too."""
    jd = codec_for("alpha")
    bad = b'{"type":"trade","symbol":"AAPL","price":"187.25","size":"-1","ts":"2026-01-02T14:30:00Z","trade_id":"A-1"}'
    for check in (jd.inspect, lambda p: jd.decode(p, REF)):
        with pytest.raises(VenueFormatError, match=r"size.*must be >= 0"):
            check(bad)
    jd.inspect(bad.replace(b'"-1"', b'"-0.00"'))  # minus zero is zero
    jd.inspect(bad.replace(b'"size":"-1"', b'"size":"1"').replace(b'"187.25"', b'"-187.25"'))  # prices may be negative
    fix = codec_for("charlie")
    payload = fix.encode(VenueMessage(3, Trade("AAPL", T0, "C-1", 1_872_500, 100, None)), REF)
    body = payload[payload.index(b"35="):payload.rindex(b"10=")].decode().rstrip("\x01").split("\x01")
    fields = [tuple(f.split("=", 1)) for f in body]
    negative = frame([(t, "-100" if t == "271" else v) for t, v in fields])
    with pytest.raises(VenueFormatError, match=r"MDEntrySize \(271\) must be >= 0"):
        fix.inspect(negative)


@pytest.mark.parametrize("fmt", FORMATS)
def test_corrupted_payloads_are_always_rejected(fmt):
    codec = codec_for(VENUE_OF[fmt])
    rng = random.Random(f"corrupt:{fmt}")
    seq = 7 if codec.sequenced else None
    for i in range(300):
        event = EVENTS[i % len(EVENTS)]
        bad = corrupt(codec, codec.encode(VenueMessage(seq, event), REF), rng)
        with pytest.raises(VenueFormatError):
            codec.decode(bad, REF)


# -- decimals and times ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "scale", "value"),
    [
        ("187.25", 4, 1_872_500),
        ("187.2500", 4, 1_872_500),
        ("187.250000", 4, 1_872_500),  # extra zeros lose nothing
        ("187", 4, 1_870_000),
        ("0.0001", 4, 1),
        ("-0.0001", 4, -1),
        ("+5.5", 1, 55),
        ("-0", 2, 0),
        ("000123.40", 2, 12_340),
        ("42150.50", 2, 4_215_050),
        ("0.12340000", 8, 12_340_000),
        ("7", 0, 7),
        ("7.000", 0, 7),
        ("922337203685477.5807", 4, 2**63 - 1),
        ("-922337203685477.5808", 4, -(2**63)),
        ("0.1", 1, 1),  # 0.1 is exact here, unlike in binary floating point
        ("1.10450", 5, 110_450),
    ],
)
def test_parse_decimal_is_exact(text, scale, value):
    assert parse_decimal(text, scale) == value


@pytest.mark.parametrize(
    "text",
    ["", " 1", "1 ", "1.", ".5", "1.2.3", "1e3", "1E-2", "1_000", "1,000", "NaN", "inf", "--1", "0x10", "١٢", "187.25001",
     "922337203685477.5808"],
)
def test_parse_decimal_rejects_anything_not_plain_exact(text):
    with pytest.raises(ValueError):
        parse_decimal(text, 4)


@pytest.mark.parametrize(("value", "scale"), [(1_872_500, 4), (-1, 4), (0, 0), (12_340_000, 8), (2**63 - 1, 4), (-(2**63), 2), (5, 1)])
def test_format_decimal_round_trips(value, scale):
    assert parse_decimal(format_decimal(value, scale), scale) == value
    assert parse_decimal(format_decimal(value, scale, strip=True), scale) == value


def test_format_decimal_shapes():
    assert format_decimal(1_872_500, 4) == "187.2500"
    assert format_decimal(1_872_500, 4, strip=True) == "187.25"
    assert format_decimal(1_870_000, 4, strip=True) == "187"
    assert format_decimal(-5, 4) == "-0.0005"
    assert format_decimal(100, 0) == "100"


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2026-01-02T14:30:00.000123456Z", T0),
        ("2026-01-02T14:30:00Z", 1_767_364_200_000_000_000),
        ("2026-01-02T15:30:00.5+01:00", 1_767_364_200_500_000_000),
        ("1970-01-01T00:00:00.000000001Z", 1),
        ("2024-02-29T00:00:00Z", 1_709_164_800_000_000_000),
    ],
)
def test_iso_timestamps_are_exact_nanoseconds(text, ns):
    assert parse_iso_ns(text) == ns


@pytest.mark.parametrize("text", ["2026-01-02T14:30:00", "2026-01-02 14:30:00Z", "2026-13-01T00:00:00Z", "2026-01-02T24:00:00Z",
                                  "2026-01-02T14:30:00.0000000001Z", "2026-01-02T14:30:60Z", "yesterday"])
def test_iso_timestamps_reject_ambiguous_or_invalid(text):
    with pytest.raises(ValueError):
        parse_iso_ns(text)


@pytest.mark.parametrize("ns", [0, 1, T0, 1_767_364_200_999_999_999, 4_102_444_800_000_000_000])
def test_time_formats_round_trip(ns):
    assert parse_iso_ns(format_iso_ns(ns)) == ns
    assert parse_fix_time(format_fix_time(ns)) == ns
    assert format_fix_time(T0) == "20260102-14:30:00.000123456"


@pytest.mark.parametrize(
    "venue, doc",
    [
        ("alpha", b'{"type":["trade"],"symbol":"AAPL","price":"187.2500","size":"100","ts":"2026-01-02T14:30:00Z","trade_id":"A"}'),
        ("bravo", b'{"t":{},"i":3,"q":1,"p":18725,"z":100,"ns":1767364200000123456}'),
    ],
)
def test_a_list_or_object_where_a_code_belongs_is_a_format_error_not_a_crash(venue: str, doc: bytes) -> None:
    with pytest.raises(VenueFormatError, match="must be one of"):
        codec_for(venue).decode(doc, REF)
