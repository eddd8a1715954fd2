"""The normalize processor, pure: every rule at its boundary and just beyond, per venue format."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from connectors.venues.events import BookDelta, Heartbeat, Quote, StatusChange, Trade, VenueMessage
from connectors.venues.fix import frame
from connectors.venues.formats import codec_for
from connectors.venues.instruments import Instrument, RefData
from normalize_support import instrument_message
from streams.processors import PROCESSORS
from streams.processors.base import Input, Message, Output, Reject
from streams.processors.normalize import REASON_CODES, NormalizeConfig, NormalizeProcessor

T0 = 1_767_364_200_000_000_000
AAPL = Instrument("AAPL", "1", price_scale=4, size_scale=0, tick_size=100, lot_size=1)  # 0.01 / 1 share
BTC = Instrument("BTC-USD", "2", price_scale=2, size_scale=8, tick_size=1, lot_size=10_000)  # 0.01 / 0.0001 BTC
ES = Instrument("ESH6", "5", price_scale=2, size_scale=0, tick_size=25, lot_size=1)  # 0.25
EUR = Instrument("EUR-USD", "4", price_scale=5, size_scale=0, tick_size=1, lot_size=1000)
INSTRUMENTS = (AAPL, BTC, ES, EUR)
VENUE = {"json-decimal": "alpha", "json-ticks": "bravo", "fix": "charlie"}
SEQUENCED = ("json-ticks", "fix")
INT64_MAX = (1 << 63) - 1


def fine(inst: Instrument, price_scale: int | None = None, size_scale: int | None = None) -> Instrument:
    """``inst`` with a tick and lot of one unit (optionally at another scale): what a venue off the grid writes with."""
    return Instrument(inst.symbol, inst.instrument_id, price_scale if price_scale is not None else inst.price_scale,
                      size_scale if size_scale is not None else inst.size_scale, 1, 1)


class Feed:
    """Builds inputs for one processor task: venue messages encoded by the real codecs, offsets and seqs kept."""

    def __init__(self, config: NormalizeConfig | None = None, instruments=INSTRUMENTS) -> None:
        self.proc = NormalizeProcessor(config or NormalizeConfig(), 0)
        self.offsets: dict[tuple[str, int], int] = {}
        self.seqs: dict[tuple[str, int], int] = {}
        for i, inst in enumerate(instruments):
            assert self.proc.process(instrument_message(inst.to_record(T0), offset=i)) == []

    def raw(self, fmt: str, payload: bytes, *, seq: int | None, recv: int, partition: int = 0, symbol: str | None = None,
            venue: str | None = None, fmt_field: str | None = None) -> Message:
        venue = venue or VENUE[fmt]
        topic = f"md.raw.{venue}"
        off = self.offsets.get((topic, partition), 0)
        self.offsets[topic, partition] = off + 1
        value = {"venue": venue, "format": fmt_field or fmt, "seq": seq, "recv_ts_ns": recv, "symbol": symbol, "payload": payload}
        return Message(topic, partition, off, recv, (symbol or venue).encode(), "hftstream.md.RawVenueMessage", value)

    def event(self, fmt: str, event, *, seq: int | None = None, recv: int | None = None, partition: int = 0,
              writer: RefData | None = None) -> Message:
        """``event`` encoded in ``fmt`` (with ``writer``'s instruments, default the real ones); the channel's next seq."""
        if fmt in SEQUENCED and seq is None:
            key = (VENUE[fmt], partition)
            seq = self.seqs[key] = self.seqs.get(key, 0) + 1
        payload = codec_for(VENUE[fmt]).encode(VenueMessage(seq if fmt in SEQUENCED else None, event), writer or RefData(INSTRUMENTS))
        return self.raw(fmt, payload, seq=seq if fmt in SEQUENCED else None, recv=recv or event.exchange_ts_ns + 50_000,
                        partition=partition, symbol=event.symbol)

    def run(self, msg: Message) -> list[Output]:
        return list(self.proc.process(msg))

    def reject(self, msg: Message) -> Reject:
        with pytest.raises(Reject) as exc:
            self.proc.process(msg)
        return exc.value


def statuses(outs: list[Output]) -> list[tuple[str, int, str]]:
    return [(o.value["feed_state"], o.value["channel"], o.value["reason"]) for o in outs if o.value.get("feed_state")]


FORMATS = ("json-decimal", "json-ticks", "fix")


# -- registration and shape -------------------------------------------------------------------------


def test_registered_with_its_config_inputs_and_outputs():
    assert PROCESSORS["normalize"] is NormalizeProcessor and NormalizeProcessor.name == "normalize"
    assert NormalizeProcessor.config_class is NormalizeConfig
    proc = NormalizeProcessor(NormalizeConfig(), 3)
    assert proc.inputs == (Input("refdata.instruments", scope="global"), Input("md.raw.*", scope="keyed"))
    assert proc.outputs == ("md.normalized",) and proc.task == 3
    with pytest.raises(ValidationError):
        NormalizeConfig(stale_after_ms=5)  # unknown field
    with pytest.raises(ValidationError):
        NormalizeConfig(stale_after_ns=0)
    with pytest.raises(ValidationError):
        NormalizeConfig().stale_after_ns = 1  # frozen


# -- mapping: every event type of every format to its canonical record -----------------------------

EVENTS = [
    Trade("AAPL", T0 + 1, "A-17", 1_872_500, 100, "BUY"),
    Trade("BTC-USD", T0 + 2, "X-1", 4_215_050, 12_340_000, None),
    Quote("ESH6", T0 + 3, 478_500, 10, 478_525, 7),
    Quote("EUR-USD", T0 + 4, None, 0, 110_450, 5000),
    BookDelta("AAPL", T0 + 5, "SELL", "CHANGE", 1_872_700, 250),
    BookDelta("BTC-USD", T0 + 6, "BUY", "DELETE", 4_215_000, 0),
    StatusChange("AAPL", T0 + 7, "HALTED", "volatility pause"),
    StatusChange(None, T0 + 8, "CLOSED"),
    Heartbeat(T0 + 9),
]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_event_maps_to_its_canonical_record_in_scaled_integers(fmt):
    feed = Feed()
    venue = VENUE[fmt]
    for i, ev in enumerate(EVENTS):
        recv = ev.exchange_ts_ns + 40_000
        [out] = feed.run(feed.event(fmt, ev, recv=recv))
        seq = i + 1 if fmt in SEQUENCED else None
        common = {"venue": venue, "exchange_ts_ns": ev.exchange_ts_ns, "recv_ts_ns": recv}
        assert out.topic == "md.normalized" and out.timestamp_ns is None
        if isinstance(ev, Trade):
            assert (out.schema, out.key) == ("hftstream.md.Trade", ev.symbol)
            assert out.value == common | {"symbol": ev.symbol, "trade_id": ev.trade_id, "price": ev.price, "size": ev.size,
                                          "aggressor_side": ev.aggressor_side, "seq": seq}
        elif isinstance(ev, Quote):
            assert (out.schema, out.key) == ("hftstream.md.Quote", ev.symbol)
            assert out.value == common | {"symbol": ev.symbol, "bid_price": ev.bid_price, "bid_size": ev.bid_size,
                                          "ask_price": ev.ask_price, "ask_size": ev.ask_size, "seq": seq}
        elif isinstance(ev, BookDelta):
            assert (out.schema, out.key) == ("hftstream.md.BookDelta", ev.symbol)
            assert out.value == common | {"symbol": ev.symbol, "action": ev.action, "side": ev.side, "price": ev.price,
                                          "size": ev.size, "order_id": None, "seq": seq}
        elif isinstance(ev, StatusChange):
            assert (out.schema, out.key) == ("hftstream.md.VenueStatus", ev.symbol or venue)
            assert out.value == common | {"symbol": ev.symbol, "status": ev.status, "reason": ev.reason,
                                          "feed_state": None, "channel": None}
        else:
            assert (out.schema, out.key) == ("hftstream.md.Heartbeat", venue)
            assert out.value == common | {"last_seq": seq}
    counts = feed.proc.counters()
    assert counts["normalized"] == len(EVENTS) and counts["refdata"] == len(INSTRUMENTS)
    assert sum(n for k, n in counts.items() if k.startswith("rejected.")) == 0


# -- the grid: tick, lot and scale, at the boundary and one unit beyond -----------------------------

# (event, writer instrument or None, expected reason or None). Writers with a tick/lot of 1 (or a finer
# scale) express values the real instrument's grid forbids.
GRID = [
    ("price on tick", Trade("AAPL", T0, "t", 1_872_500, 100), None, None),
    ("price one unit off tick", Trade("AAPL", T0, "t", 1_872_501, 100), fine(AAPL), "OFF_TICK"),
    ("price one unit below tick", Trade("AAPL", T0, "t", 1_872_499, 100), fine(AAPL), "OFF_TICK"),
    ("coarse tick on", Trade("ESH6", T0, "t", 478_525, 1), None, None),
    ("coarse tick off", Trade("ESH6", T0, "t", 478_526, 1), fine(ES), "OFF_TICK"),
    ("quote bid off tick", Quote("AAPL", T0, 1_872_401, 1, 1_872_600, 1), fine(AAPL), "OFF_TICK"),
    ("quote ask off tick", Quote("AAPL", T0, 1_872_400, 1, 1_872_699, 1), fine(AAPL), "OFF_TICK"),
    ("book price off tick", BookDelta("ESH6", T0, "BUY", "ADD", 478_510, 3), fine(ES), "OFF_TICK"),
    ("size on lot", Trade("BTC-USD", T0, "t", 4_215_050, 10_000), None, None),
    ("size one unit off lot", Trade("BTC-USD", T0, "t", 4_215_050, 10_001), fine(BTC), "OFF_LOT"),
    ("lot of 1000 on", Quote("EUR-USD", T0, 110_440, 3000, 110_450, 1000), None, None),
    ("quote bid size off lot", Quote("EUR-USD", T0, 110_440, 2999, 110_450, 1000), fine(EUR), "OFF_LOT"),
    ("quote ask size off lot", Quote("EUR-USD", T0, 110_440, 3000, 110_450, 1001), fine(EUR), "OFF_LOT"),
    ("book size off lot", BookDelta("BTC-USD", T0, "SELL", "CHANGE", 4_215_100, 19_999), fine(BTC), "OFF_LOT"),
    # scale: all the instrument's decimal places, versus one more
    ("price at max scale digits", Trade("BTC-USD", T0, "t", 4_215_051, 10_000), None, None),
    ("price one digit beyond scale", Trade("BTC-USD", T0, "t", 42_150_511, 10_000), fine(BTC, price_scale=3), "EXCEEDS_SCALE"),
    ("size at max scale digits", Trade("BTC-USD", T0, "t", 4_215_051, 12_340_000), None, None),
    ("size one digit beyond scale", Trade("BTC-USD", T0, "t", 4_215_051, 1_234_000_001), fine(BTC, size_scale=9), "EXCEEDS_SCALE"),
    ("whole-share size with a decimal", Trade("AAPL", T0, "t", 1_872_500, 15), fine(AAPL, size_scale=1), "EXCEEDS_SCALE"),
]
DECIMAL_FORMATS = ("json-decimal", "fix")


@pytest.mark.parametrize("fmt", DECIMAL_FORMATS)
@pytest.mark.parametrize(("case", "event", "writer", "reason"), GRID, ids=[g[0] for g in GRID])
def test_grid_and_scale_boundaries_in_decimal_formats(fmt, case, event, writer, reason):
    feed = Feed()
    msg = feed.event(fmt, event, writer=RefData([writer]) if writer else None)
    if reason is None:
        [out] = feed.run(msg)
        for field in ("price", "size", "bid_price", "ask_price", "bid_size", "ask_size"):
            if field in out.value:
                assert out.value[field] == getattr(event, field)
        return
    rej = feed.reject(msg)
    assert rej.reason_code == reason, str(rej)
    assert feed.proc.counters()[f"rejected.{reason}"] == 1 and feed.proc.counters()["normalized"] == 0


def test_a_trailing_zero_beyond_the_scale_is_not_extra_precision():
    feed = Feed()
    payload = b'{"type":"trade","symbol":"AAPL","price":"187.250000","size":"100","ts":"2026-01-02T14:30:00Z","trade_id":"a"}'
    [out] = feed.run(feed.raw("json-decimal", payload, seq=None, recv=T0 + 1, symbol="AAPL"))
    assert out.value["price"] == 1_872_500


@pytest.mark.parametrize(("p", "reason"), [(INT64_MAX // 25, None), (INT64_MAX // 25 + 1, "EXCEEDS_SCALE")])
def test_json_ticks_price_in_ticks_must_fit_int64_once_scaled(p, reason):
    """json-ticks carries whole ticks and lots (always on the grid); its boundary is int64 after scaling."""
    feed = Feed()
    payload = json.dumps({"t": "T", "i": 5, "q": 1, "p": p, "z": 1, "ns": T0, "x": "e"}).encode()
    msg = feed.raw("json-ticks", payload, seq=1, recv=T0 + 1, symbol="ESH6")
    if reason is None:
        assert feed.run(msg)[0].value["price"] == p * 25
    else:
        assert feed.reject(msg).reason_code == reason


@pytest.mark.parametrize("fmt", DECIMAL_FORMATS)
def test_a_price_beyond_int64_once_scaled_exceeds_the_scale(fmt):
    feed = Feed()
    big = "922337203685477.5808"  # (INT64_MAX + 1) / 10**4
    ok = "922337203685477.5800"  # fits, on the tick of 0.01
    payloads = {
        "json-decimal": lambda price: json.dumps({"type": "trade", "symbol": "AAPL", "price": price, "size": "1",
                                                   "ts": "2026-01-02T14:30:00Z", "trade_id": "a"}).encode(),
        "fix": lambda price: frame([("35", "X"), ("49", "CHARLIE"), ("56", "HFTSTREAM"), ("34", "1"), ("52", "20260102-14:30:00"),
                                    ("268", "1"), ("279", "0"), ("269", "2"), ("55", "AAPL"), ("270", price), ("271", "1"),
                                    ("1003", "c")]),
    }
    seq = 1 if fmt == "fix" else None
    assert feed.run(feed.raw(fmt, payloads[fmt](ok), seq=seq, recv=T0, symbol="AAPL"))[0].value["price"] == 9_223_372_036_854_775_800
    assert feed.reject(feed.raw(fmt, payloads[fmt](big), seq=2 if seq else None, recv=T0 + 1, symbol="AAPL")).reason_code == "EXCEEDS_SCALE"


# -- bad input: unknown symbols, malformed payloads, and the rest of the reason codes ----------------

def _fix(seq: int, *fields: tuple[str, str]) -> bytes:
    return frame([("35", fields[0][1]), ("49", "CHARLIE"), ("56", "HFTSTREAM"), ("34", str(seq)), ("52", "20260102-14:30:00"), *fields[1:]])


# payload(n): the n-th message (a different sequence number / trade id each time)
UNKNOWN = {
    "json-decimal": lambda n: b'{"type":"trade","symbol":"ZZZZ","price":"1.00","size":"1","ts":"2026-01-02T14:30:00Z","trade_id":"%d"}' % n,
    "json-ticks": lambda n: b'{"t":"Q","i":999,"q":%d,"b":1,"bz":1,"a":2,"az":1,"ns":1767364200000000000}' % n,
    "fix": lambda n: _fix(n, ("35", "W"), ("55", "ZZZZ"), ("268", "1"), ("269", "0"), ("270", "1.5"), ("271", "2")),
}
UNKNOWN_STATUS = {
    "json-decimal": lambda n: b'{"type":"status","symbol":"ZZZZ","status":"halted","ts":"2026-01-02T14:30:00.%dZ"}' % n,
    "json-ticks": lambda n: b'{"t":"S","i":999,"q":%d,"st":3,"ns":1767364200000000000}' % n,
    "fix": lambda n: _fix(n, ("35", "f"), ("55", "ZZZZ"), ("326", "2")),
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("table", [UNKNOWN, UNKNOWN_STATUS], ids=["market-data", "status"])
def test_unknown_symbol_is_rejected_and_accepted_once_refdata_has_it(fmt, table):
    feed = Feed()
    seq = 1 if fmt in SEQUENCED else None
    rej = feed.reject(feed.raw(fmt, table[fmt](1), seq=seq, recv=T0))
    assert rej.reason_code == "UNKNOWN_SYMBOL" and ("ZZZZ" in str(rej) or "999" in str(rej))
    zzzz = Instrument("ZZZZ", "999", 2, 0, 1, 1)
    feed.proc.process(instrument_message(zzzz.to_record(T0), offset=9))
    [out] = feed.run(feed.raw(fmt, table[fmt](2), seq=2 if seq else None, recv=T0 + 1))
    assert out.value["symbol"] == "ZZZZ"


MALFORMED = {
    "json-decimal": [
        (b'{"type":"trade","symbol":"AAPL","price":"187.25"', "invalid JSON"),
        (b'{"type":"trade","symbol":"AAPL","price":"1e3","size":"1","ts":"2026-01-02T14:30:00Z","trade_id":"a"}', "not a decimal"),
        (b'{"type":"trade","symbol":"AAPL","price":"187.25","size":"1","ts":"T2026-01-02T14:30:00Z","trade_id":"a"}', "ISO-8601"),
        (b'{"type":"trade","symbol":"AAPL","price":187.25,"size":"1","ts":"2026-01-02T14:30:00Z","trade_id":"a"}', "decimal string"),
        (b'{"type":"trade","symbol":"AAPL","price":"187.25","size":"-1","ts":"2026-01-02T14:30:00Z","trade_id":"a"}', "must be >= 0"),
        (b"\xff\xfe garbage", "not UTF-8"),
    ],
    "json-ticks": [
        (b'{"t":"T","i":1,"q":1,"p":1.5,"z":1,"ns":5}', "must be an integer"),
        (b'{"t":"T","i":1,"q":1,"p":18725,"z":1,"ns":-5}', "before the epoch"),
        (b'{"t":"Z","i":1,"q":1,"ns":5}', "field 't'"),
        (b"[1,2,3]", "must be an object"),
    ],
    "fix": [
        (frame([("35", "0"), ("49", "CHARLIE"), ("56", "HFTSTREAM"), ("34", "1"), ("52", "20260102-14:30:00")])[:-2] + b"9\x01", "CheckSum"),
        (frame([("35", "0"), ("49", "CHARLIE"), ("56", "HFTSTREAM"), ("34", "1"), ("52", "20260102-14:30:00")])[:30], "BodyLength"),
        (b"8=FIX.4.2\x019=5\x0135=0\x0110=000\x01", "8=FIX.4.4"),
        (frame([("35", "X"), ("49", "CHARLIE"), ("56", "HFTSTREAM"), ("34", "1"), ("52", "20260102-14:30:00"), ("268", "1"),
                ("279", "0"), ("269", "2"), ("55", "AAPL"), ("270", "1.x"), ("271", "1"), ("1003", "c")]), "not a decimal"),
    ],
}


@pytest.mark.parametrize(("fmt", "payload", "cause"), [(f, p, c) for f, rows in MALFORMED.items() for p, c in rows])
def test_malformed_payload_is_rejected_with_the_parsers_reason(fmt, payload, cause):
    feed = Feed()
    seq = 1 if fmt in SEQUENCED else None
    rej = feed.reject(feed.raw(fmt, payload, seq=seq, recv=T0, symbol="AAPL"))
    assert rej.reason_code == "MALFORMED_PAYLOAD" and cause in str(rej) and VENUE[fmt] in str(rej)
    assert feed.proc.counters()["rejected.MALFORMED_PAYLOAD"] == 1


def test_a_quote_with_size_on_an_empty_side_is_malformed():
    feed = Feed()
    payload = b'{"type":"quote","symbol":"AAPL","bid":null,"bid_size":"5","ask":"1.00","ask_size":"1","ts":"2026-01-02T14:30:00Z"}'
    rej = feed.reject(feed.raw("json-decimal", payload, seq=None, recv=T0))
    assert rej.reason_code == "MALFORMED_PAYLOAD" and "empty side" in str(rej)


def test_the_other_reason_codes():
    feed = Feed()
    good = codec_for("bravo").encode(VenueMessage(1, Heartbeat(T0)), RefData(INSTRUMENTS))
    assert feed.reject(feed.raw("json-ticks", good, seq=1, recv=T0, fmt_field="xml")).reason_code == "UNKNOWN_FORMAT"
    assert feed.reject(feed.raw("json-ticks", good, seq=2, recv=T0 + 1)).reason_code == "SEQ_MISMATCH"
    assert feed.reject(feed.raw("json-decimal", b'{"type":"heartbeat","ts":"2026-01-02T14:30:00Z"}', seq=7, recv=T0 + 2)).reason_code == "SEQ_MISMATCH"
    bad = Instrument("BAD", "77", 4, 0, 0, 1).to_record(T0)
    assert feed.reject(instrument_message(bad)).reason_code == "BAD_REFDATA"
    for scale in (-1, 19):
        assert feed.reject(instrument_message(Instrument("BAD", "77", scale, 0, 1, 1).to_record(T0))).reason_code == "BAD_REFDATA"
    Instrument("OK18", "78", 18, 18, 1, 1)  # 18 digits is the most int64 can hold with a unit of 1
    assert feed.run(instrument_message(Instrument("OK18", "78", 18, 18, 1, 1).to_record(T0))) == []
    other = Message("md.raw.alpha", 0, 99, T0, b"x", "hftstream.md.Trade", {})
    assert feed.reject(other).reason_code == "UNEXPECTED_SCHEMA"
    counts = feed.proc.counters()
    assert {k: v for k, v in counts.items() if k.startswith("rejected.") and v} == {
        "rejected.UNKNOWN_FORMAT": 1, "rejected.SEQ_MISMATCH": 2, "rejected.BAD_REFDATA": 3, "rejected.UNEXPECTED_SCHEMA": 1,
    }
    assert sorted(k.removeprefix("rejected.") for k in counts if k.startswith("rejected.")) == sorted(REASON_CODES)


def test_refdata_updates_and_tombstones_take_effect_in_order():
    feed = Feed()

    def msg(n: int) -> Message:  # off the 0.25 tick, on a 0.05 tick
        return feed.event("json-decimal", Trade("ESH6", T0, str(n), 478_510, 1), writer=RefData([fine(ES)]))

    assert feed.reject(msg(1)).reason_code == "OFF_TICK"
    feed.proc.process(instrument_message(Instrument("ESH6", "5", 2, 0, 5, 1).to_record(T0 + 1)))
    assert feed.run(msg(2))[0].value["price"] == 478_510
    feed.proc.process(Message("refdata.instruments", 0, 50, T0, b"ESH6", "hftstream.refdata.Instrument", None))  # type: ignore[arg-type]
    assert feed.reject(msg(3)).reason_code == "UNKNOWN_SYMBOL"


# -- sequencing per channel --------------------------------------------------------------------------


def _quote(i: int) -> Quote:
    return Quote("AAPL", T0 + i * 1000, 1_872_400, 1, 1_872_500, 1)


@pytest.mark.parametrize("fmt", SEQUENCED)
def test_seq_expected_gap_duplicate_and_late_fill(fmt):
    feed = Feed()

    def send(seq: int, partition: int = 0) -> list[Output]:
        return feed.run(feed.event(fmt, _quote(seq), seq=seq, partition=partition))

    assert [o.schema for o in send(1)] == ["hftstream.md.Quote"]
    assert [o.schema for o in send(2)] == ["hftstream.md.Quote"]  # seq = expected
    assert send(2) == []  # seq = expected - 1: a duplicate, suppressed
    assert send(1) == []
    out = send(4)  # seq = expected + 1: seq 3 is missing
    assert statuses(out) == [("GAPPED", 0, "channel 0: seq 3 missing (1 message)")]
    assert out[0].key == VENUE[fmt] and out[0].value["status"] == "OPEN" and out[0].value["symbol"] is None
    assert out[0].value["exchange_ts_ns"] == out[0].value["recv_ts_ns"] == out[1].value["recv_ts_ns"]
    assert out[1].value["seq"] == 4
    out = send(3)  # late: fills the gap
    assert statuses(out) == [("HEALTHY", 0, "channel 0: gap filled by late messages")] and out[1].value["seq"] == 3
    assert send(3) == []  # and is a duplicate from now on
    # channels are independent: partition 1 starts at 1 on its own
    assert statuses(send(1, partition=1)) == []
    assert statuses(send(5)) == [] and statuses(send(3, partition=1)) == [("GAPPED", 1, "channel 1: seq 2 missing (1 message)")]
    counts = feed.proc.counters()
    assert (counts["duplicates"], counts["gaps"], counts["gap_messages"], counts["out_of_order"], counts["lost"]) == (3, 2, 2, 1, 0)
    assert counts["normalized"] == 7


@pytest.mark.parametrize("fmt", SEQUENCED)
def test_a_wide_gap_partly_filled_then_given_up_after_the_reorder_window(fmt):
    feed = Feed(NormalizeConfig(reorder_window=3))

    def send(seq: int) -> list[Output]:
        return feed.run(feed.event(fmt, _quote(seq), seq=seq))

    send(1)
    assert statuses(send(5)) == [("GAPPED", 0, "channel 0: seq 2..4 missing (3 messages)")]
    assert statuses(send(3)) == []  # narrows the gap: 2 and 4 still missing
    assert statuses(send(6)) == []  # 6 - 4 = 2 <= window: still waiting
    assert statuses(send(7)) == []  # 7 - 4 = 3: still inside the window
    out = send(8)  # 8 - 4 = 4 > 3: 2 and 4 are lost
    assert statuses(out) == [("HEALTHY", 0, "channel 0: gap closed: missing messages given up as lost")]
    assert send(4) == []  # too late: indistinguishable from a duplicate
    counts = feed.proc.counters()
    assert (counts["gaps"], counts["gap_messages"], counts["out_of_order"], counts["lost"], counts["duplicates"]) == (1, 3, 1, 2, 1)


def test_open_gaps_are_bounded_per_channel():
    feed = Feed(NormalizeConfig(max_open_gaps=2))
    for seq in (1, 3, 5, 7):  # three gaps: the oldest is given up
        feed.run(feed.event("json-ticks", _quote(seq), seq=seq))
    assert feed.proc.counters()["lost"] == 1
    assert feed.run(feed.event("json-ticks", _quote(2), seq=2)) == []  # given up: a duplicate now
    assert [o.schema for o in feed.run(feed.event("json-ticks", _quote(4), seq=4))] == ["hftstream.md.Quote"]


def test_unsequenced_venue_suppresses_an_immediate_byte_identical_resend_only():
    feed = Feed()
    msg = feed.event("json-decimal", _quote(1))
    assert len(feed.run(msg)) == 1
    assert feed.run(msg._replace(offset=msg.offset + 1)) == []
    assert len(feed.run(feed.event("json-decimal", _quote(2)))) == 1
    assert len(feed.run(msg)) == 1  # not right after its original: a venue without seq cannot tell
    assert feed.proc.counters()["duplicates"] == 1 and feed.proc.counters()["gaps"] == 0


def test_a_rejected_message_consumes_its_seq_and_its_status_comes_with_the_next_input():
    feed = Feed()
    feed.run(feed.event("fix", _quote(1), seq=1))
    bad = feed.raw("fix", b"8=FIX.4.4\x01garbage", seq=2, recv=T0 + 5000, symbol="AAPL")
    assert feed.reject(bad).reason_code == "MALFORMED_PAYLOAD"
    assert statuses(feed.run(feed.event("fix", _quote(3), seq=3))) == []  # 2 arrived (dead-lettered): no gap
    assert feed.reject(bad._replace(value=bad.value | {"seq": 5})).reason_code == "MALFORMED_PAYLOAD"  # reveals 4 missing
    assert feed.proc.snapshot().count(b'"feed_state":"GAPPED"') == 1  # held in the state until it can be emitted
    out = feed.run(feed.event("fix", _quote(6), seq=6))
    assert statuses(out) == [("GAPPED", 0, "channel 0: seq 4 missing (1 message)")] and out[-1].value["seq"] == 6
    assert out[0].timestamp_ns == bad.timestamp_ns  # stamped with the input that revealed it
    assert feed.run(feed.event("fix", _quote(2), seq=2)) == []  # the dead-lettered number is not awaited
    counts = feed.proc.counters()
    assert (counts["gaps"], counts["duplicates"], counts["rejected.MALFORMED_PAYLOAD"]) == (1, 1, 2)


# -- staleness ---------------------------------------------------------------------------------------

LIMIT = 5_000_000


@pytest.mark.parametrize(("after", "stale"), [(LIMIT, False), (LIMIT + 1, True)])
def test_stale_at_the_threshold_exactly_versus_one_ns_beyond(after, stale):
    feed = Feed(NormalizeConfig(stale_after_ns=LIMIT))
    feed.run(feed.event("fix", _quote(1), seq=1, recv=T0))  # charlie, channel 0: last heard at T0
    out = feed.run(feed.event("json-ticks", _quote(1), seq=1, recv=T0 + after))  # bravo moves the clock
    if not stale:
        assert statuses(out) == [] and feed.proc.counters()["stale"] == 0
        return
    assert statuses(out) == [("STALE", 0, f"channel 0: no message for {LIMIT + 1} ns (limit {LIMIT} ns)")]
    assert out[0].key == "charlie" and out[0].value["venue"] == "charlie"
    assert out[0].value["exchange_ts_ns"] == T0 + after
    assert statuses(feed.run(feed.event("json-ticks", _quote(2), seq=2, recv=T0 + 3 * LIMIT))) == []  # reported once
    back = feed.run(feed.event("fix", Heartbeat(T0 + 3 * LIMIT), seq=2, recv=T0 + 3 * LIMIT + 7))  # a heartbeat revives it
    assert statuses(back) == [("HEALTHY", 0, f"channel 0: message after {3 * LIMIT + 7} ns of silence")]
    assert feed.proc.counters()["stale"] == 1


def test_stale_channel_with_an_open_gap_comes_back_gapped_and_clock_ignores_refdata():
    feed = Feed(NormalizeConfig(stale_after_ns=LIMIT))
    feed.run(feed.event("fix", _quote(1), seq=1, recv=T0))
    feed.run(feed.event("fix", _quote(3), seq=3, recv=T0 + 1))  # gap: seq 2
    feed.proc.process(instrument_message(AAPL.to_record(T0 + 10 * LIMIT)))  # refdata time is not event time
    assert feed.proc.counters()["stale"] == 0
    out = feed.run(feed.event("json-decimal", _quote(9), recv=T0 + 2 * LIMIT))
    assert statuses(out) == [("STALE", 0, f"channel 0: no message for {2 * LIMIT - 1} ns (limit {LIMIT} ns)")]
    out = feed.run(feed.event("fix", _quote(4), seq=4, recv=T0 + 2 * LIMIT + 1))
    assert [s[0] for s in statuses(out)] == ["GAPPED"]


def test_venue_wide_trading_status_is_carried_on_feed_health_records():
    feed = Feed()
    feed.run(feed.event("json-ticks", StatusChange(None, T0, "HALTED", "systems issue"), seq=1))
    out = feed.run(feed.event("json-ticks", _quote(3), seq=3))
    assert statuses(out) and out[0].value["status"] == "HALTED"
