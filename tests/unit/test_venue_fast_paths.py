"""The decoders' fast paths against the strict readers: the same answer wherever they answer, ``None`` elsewhere.

A fast path (``Codec._fast``, ``decimal_fast``, ``iso_ns_fast``, ``fix_time_fast``) may decline
anything (the strict reader then decides), but whatever it returns must be exactly what the
strict reader returns for the same input, and it must never answer where the strict reader
refuses. These tests hold it to that on the simulator's feeds, on mutated payloads (hypothesis)
and on the scalar edge cases; and they check that well-formed feeds really take the fast path.
"""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.venues.errors import VenueFormatError
from connectors.venues.events import Heartbeat, Trade, VenueMessage
from connectors.venues.fix import byte_sum, frame
from connectors.venues.formats import FORMATS, Codec, codec_for
from connectors.venues.instruments import Instrument, RefData
from connectors.venues.scaled import _strict_decimal, decimal_fast, parse_decimal
from connectors.venues.simulator import SimConfig, Simulation, instruments
from streams import timeutil
from streams.timeutil import (
    INT64_MAX,
    INT64_MIN,
    _strict_fix_time,
    _strict_iso_ns,
    fix_time_fast,
    iso_ns_fast,
    parse_fix_time,
    parse_iso_ns,
)

VENUE_OF = {"json-decimal": "alpha", "json-ticks": "bravo", "fix": "charlie"}
DAY_NS = 86_400 * 1_000_000_000


def _strict(codec: Codec, payload: object, ref: RefData) -> tuple[str, object]:
    """The strict reader's verdict: ``("ok", (seq, cls, values))`` or ``("error", cause)``."""
    try:
        seq, event = codec._strict(payload, ref)  # type: ignore[arg-type]
    except VenueFormatError as exc:
        return "error", exc.cause
    values = tuple(getattr(event, name) for name in event.__slots__)  # type: ignore[union-attr]
    return "ok", (seq, type(event), values)


def _agree(codec: Codec, payload: object, ref: RefData) -> bool:
    """Assert the fast path is sound for ``payload`` and ``decode`` equals the strict reader; True if fast answered."""
    verdict, strict = _strict(codec, payload, ref)
    fast = codec._fast(payload, ref)  # type: ignore[arg-type]
    if fast is not None:
        assert verdict == "ok", f"fast path accepted what the strict reader refuses ({strict}): {payload!r}"
        assert fast == strict, payload
        assert tuple(map(type, fast[2])) == tuple(map(type, strict[2])), payload  # type: ignore[index]
    if verdict == "ok":
        seq, cls, values = strict  # type: ignore[misc]
        assert codec.decode(payload, ref) == VenueMessage(seq, cls(*values))  # type: ignore[arg-type]
    else:
        with pytest.raises(VenueFormatError) as err:
            codec.decode(payload, ref)  # type: ignore[arg-type]
        assert err.value.cause == strict
    return fast is not None


def _sim(events: int, seed: int, **faults: float) -> tuple[RefData, dict[str, tuple[str, list[bytes]]]]:
    cfg = SimConfig(venues=3, symbols=8, events=events, seed=seed, **faults)
    out: dict[str, tuple[str, list[bytes]]] = {}
    for rec in Simulation(cfg).records():
        out.setdefault(rec.value["format"], (rec.value["venue"], []))[1].append(rec.value["payload"])
    return RefData(instruments(cfg)), out


# -- whole messages ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_wellformed_simulated_message_takes_the_fast_path_and_agrees(fmt):
    ref, feeds = _sim(6_000, seed=11)
    venue, payloads = feeds[fmt]
    codec = codec_for(venue, fmt)
    assert len(payloads) > 1_000
    for payload in payloads:
        assert _agree(codec, payload, ref), f"a well-formed {fmt} message missed the fast path: {payload!r}"


@pytest.mark.parametrize("fmt", FORMATS)
def test_malformed_simulated_messages_are_refused_with_the_strict_readers_cause(fmt):
    ref, feeds = _sim(6_000, seed=12, malformed_rate=0.3)
    venue, payloads = feeds[fmt]
    codec = codec_for(venue, fmt)
    refused = sum(not _agree(codec, p, ref) for p in payloads)
    assert refused > 200  # the corruptions reached the fast path and it declined every one of them


def test_unknown_instruments_and_partial_reference_data_fall_back():
    ref, feeds = _sim(1_500, seed=13)
    partial = RefData(list(ref)[:3])
    for fmt in FORMATS:
        venue, payloads = feeds[fmt]
        codec = codec_for(venue, fmt)
        for payload in payloads:
            _agree(codec, payload, partial)
            _agree(codec, payload, RefData(()))


JSON_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, 2, 3, -1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 0.0, 1.0, 2.5]),
    st.sampled_from(["", "T", "Q", "B", "S", "H", "0", "bid", "ask", "add", "update", "delete", "buy", "sell", "halted",
                     "open", "trade", "quote", "book", "status", "heartbeat", "AAPL", "MSFT", "187.25", "-1", "+1",
                     "1e5", " 1", "1.", "١", "2026-01-02T14:30:00.1Z", "2026-01-02T14:30:00.000000001+01:00",
                     "2026-01-02T14:30:60.5Z", "1969-12-31T23:59:59.9Z"]),
    st.text(max_size=6), st.lists(st.integers(), max_size=1),
)


@pytest.mark.parametrize("fmt", ["json-decimal", "json-ticks"])
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_json_messages_agree(fmt, data):
    ref, feeds = _sim_small()
    venue, payloads = feeds[fmt]
    obj = json.loads(data.draw(st.sampled_from(payloads[:300])))
    for _ in range(data.draw(st.integers(1, 3))):
        key = data.draw(st.sampled_from(sorted(obj) + ["x", "a", "b", "aggressor", "reason", "r", "zz"]))
        if data.draw(st.booleans()) and key in obj:
            del obj[key]
        else:
            obj[key] = data.draw(JSON_VALUES)
    try:
        payload = json.dumps(obj).encode()
    except ValueError:
        return
    try:
        _agree(codec_for(venue, fmt), payload, ref)
    except TypeError:  # an unhashable value where a code is expected: the strict reader's own failure, see below
        assert codec_for(venue, fmt)._fast(payload, ref) is None


_SMALL: list = []


def _sim_small() -> tuple[RefData, dict[str, tuple[str, list[bytes]]]]:
    if not _SMALL:
        _SMALL.append(_sim(1_200, seed=14))
    return _SMALL[0]


FIX_VALUES = st.sampled_from([
    "", "0", "1", "2", "3", "01", "=", "X", "W", "f", "AAPL", "MSFT", "ZZZ", "187.25", "-5", "1e3", "١", "17", "4001",
    "20260102-14:30:00.000123456", "20260102-14:30:00", "20260230-14:30:00.1", "20260102-14:30:60.1", "x=y",
])
FIX_TAGS = st.sampled_from(["34", "43", "49", "52", "55", "56", "58", "60", "0270", "268", "269", "270", "271", "273",
                            "279", "326", "1003", "5797", "999", "", "x"])


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_fix_messages_agree(data):
    ref, feeds = _sim_small()
    venue, payloads = feeds["fix"]
    original = data.draw(st.sampled_from(payloads[:300]))
    fields = [tuple(f.split("=", 1)) for f in original.decode().split("\x01")[2:-2]]
    for _ in range(data.draw(st.integers(1, 3))):
        op = data.draw(st.sampled_from(["drop", "dup", "swap", "tag", "value", "insert"]))
        i = data.draw(st.integers(0, len(fields) - 1))
        j = data.draw(st.integers(0, len(fields) - 1))
        if op == "drop" and len(fields) > 1:
            del fields[i]
        elif op == "dup":
            fields.insert(j, fields[i])
        elif op == "swap":
            fields[i], fields[j] = fields[j], fields[i]
        elif op == "tag":
            fields[i] = (data.draw(FIX_TAGS), fields[i][-1])
        elif op == "value":
            fields[i] = (fields[i][0], data.draw(FIX_VALUES))
        else:
            fields.insert(i, (data.draw(FIX_TAGS), data.draw(FIX_VALUES)))
    body = "".join(f"{'='.join(f)}\x01" for f in fields).encode()
    head = b"8=FIX.4.4\x01" + f"9={len(body)}\x01".encode() + body
    payload = head + f"10={sum(head) % 256:03d}\x01".encode()  # reframed: the mutation reaches the field checks
    codec = codec_for(venue, "fix")
    _agree(codec, payload, ref)
    # ... and a raw byte-level mutation of the original, framing included
    k = data.draw(st.integers(0, len(original) - 1))
    _agree(codec, original[:k] + data.draw(st.binary(max_size=3)) + original[k + 1 :], ref)


EDGE_JSON = [
    None, True, False, 0, 1, 2, 5, 6, -1, INT64_MAX, INT64_MAX + 1, INT64_MIN, INT64_MIN - 1, 2.0, 0.5, [], [1], {},
    "", "T", "Q", "B", "S", "H", "bid", "ask", "add", "update", "delete", "buy", "sell", "B ", "halted", "HALTED",
    "trade", "quote", "book", "status", "heartbeat", "AAPL", "MSFT", "ZZZ", "187.25", "-187.25", "+187.25", "-0", "-1",
    "187.25001", "187.250000", "1e5", " 1", "1.", "١", "2026-01-02T14:30:00.1Z", "2026-01-02T14:30:00.5+01:00",
    "2026-01-02T14:30:60.5Z", "2026-02-29T14:30:00.5Z", "1969-12-31T23:59:59.9Z", "2262-04-11T23:47:16.854775808Z",
]
_MISSING = object()


def _json_bases(fmt: str) -> list[bytes]:
    """One simulated message per kind (and per quote shape) of a JSON format."""
    ref, feeds = _sim_small()
    seen: dict[tuple, bytes] = {}
    for payload in feeds[fmt][1]:
        try:
            obj = json.loads(payload)
        except ValueError:
            continue
        seen.setdefault((obj.get("type", obj.get("t")), tuple(sorted(obj))), payload)
    return list(seen.values())


@pytest.mark.parametrize("fmt", ["json-decimal", "json-ticks"])
def test_every_single_field_mutation_of_json_messages_agrees(fmt):
    """Each field of each kind of message: deleted, or set to each edge value; and each absent optional field added."""
    ref, feeds = _sim_small()
    codec = codec_for(feeds[fmt][0], fmt)
    extra = ["x", "a", "b", "i", "aggressor", "reason", "r", "symbol", "bid", "ask", "unknown"]
    checked = 0
    for base in _json_bases(fmt):
        obj = json.loads(base)
        for key in sorted(set(obj) | set(extra)):
            for value in [_MISSING, *EDGE_JSON]:
                mutated = {k: v for k, v in obj.items() if k != key}
                if value is not _MISSING:
                    mutated[key] = value
                payload = json.dumps(mutated).encode()
                try:
                    _agree(codec, payload, ref)
                except TypeError:  # an unhashable value where a code is expected: the strict reader's own failure
                    assert codec._fast(payload, ref) is None
                checked += 1
    assert checked > 2_000


EDGE_FIX = [
    "", "0", "1", "2", "3", "01", "X", "W", "f", "AAPL", "MSFT", "ZZZ", "187.25", "-187.25", "+187.25", "-5", "1e3",
    "187.25001", "١", "17", "4001", "20260102-14:30:00.000123456", "20260102-14:30:00", "20260230-14:30:00.1",
    "20260102-14:30:60.1", "19691231-23:59:59.9", "x=y", "0270",
]


def test_every_single_field_mutation_of_fix_messages_agrees():
    """Each field of each kind of message: dropped, duplicated, its tag or value replaced; each tag inserted anywhere."""
    ref, feeds = _sim_small()
    codec = codec_for(feeds["fix"][0], "fix")
    bases: dict[tuple, bytes] = {}
    for payload in feeds["fix"][1]:
        parts = payload.split(b"\x01")
        if len(parts) > 3 and parts[2].startswith(b"35="):
            bases.setdefault((parts[2], len(parts), b"5797=" in payload), payload)
    tags = ["34", "35", "43", "49", "52", "55", "56", "58", "60", "268", "269", "270", "271", "273", "279", "326",
            "1003", "5797", "999", "0270", "x", ""]
    checked = 0
    for base in bases.values():
        fields = [tuple(f.split("=", 1)) for f in base.decode().split("\x01")[2:-2]]
        variants: list[list[tuple[str, ...]]] = []
        for i, field in enumerate(fields):
            variants.append(fields[:i] + fields[i + 1 :])
            variants.append(fields[:i] + [field] + fields[i:])
            variants += [fields[:i] + [(field[0], v)] + fields[i + 1 :] for v in EDGE_FIX]
            variants += [fields[:i] + [(t, field[-1])] + fields[i + 1 :] for t in tags]
            variants += [fields[:i] + [(t, "1")] + fields[i:] for t in tags]
        for variant in variants:
            body = "".join("=".join(f) + "\x01" for f in variant).encode()
            head = b"8=FIX.4.4\x01" + f"9={len(body)}\x01".encode() + body
            _agree(codec, head + f"10={sum(head) % 256:03d}\x01".encode(), ref)
            checked += 1
    assert checked > 5_000


def test_fix_fast_path_reads_other_field_orders_or_declines_them():
    ref = RefData([Instrument("AAPL", "3", price_scale=4, size_scale=0, tick_size=100, lot_size=1)])
    codec = codec_for("charlie")
    head = [("35", "X"), ("49", "CHARLIE"), ("56", "HFTSTREAM"), ("34", "5"), ("52", "20260102-14:30:00.000000001")]
    entry = [("268", "1"), ("279", "0"), ("269", "2"), ("55", "AAPL"), ("270", "187.25"), ("271", "100"), ("1003", "T1")]
    assert _agree(codec, frame(head + entry), ref)  # no 60: the event time is SendingTime
    assert _agree(codec, frame(head + entry[:3] + entry[:2:-1]), ref)  # the entry's tags in another order
    assert not _agree(codec, frame(head[:4] + [("43", "Y")] + head[4:] + entry), ref)  # PossDupFlag: strict reads it
    assert _agree(codec, frame(head + entry + [("273", "14:30:00")]), ref)  # MDEntryTime: allowed, not used
    assert not _agree(codec, frame(head + [("268", "01")] + entry[1:]), ref)  # a count with a leading zero
    assert not _agree(codec, frame(head + entry + [("279", "0")]), ref)  # a second entry: refused by the strict reader


# -- scalars -------------------------------------------------------------------------------------

DECIMALS = [
    "0", "1", "-0", "+0", "-0.0", "187", "187.2", "187.25", "187.250", "187.2500", "187.25000", "187.250000",
    "187.25001", "-187.25", "+187.25", "0.000000001", "0.123456789", "1.1234567891",
    *[f"1.{'7' * k}" for k in range(1, 10)],
    "922337203685477.5807", "922337203685477.5808", "-922337203685477.5808", "-922337203685477.5809",
    "9223372036854775807", "9223372036854775808", "-9223372036854775808", "00000000000000000000001",
    "1e5", "1E5", "1.5e3", "-1e-3", " 1", "1 ", "1_000", "1,5", "١٢", "٣.٥", "", ".", "1.", ".5", "--1", "+-1", "-",
    "+", "0x10", "nan", "inf", "Infinity", "1.2.3", "1..2", "²",
]


def _verdict(fn, *args):  # type: ignore[no-untyped-def]
    try:
        return "ok", fn(*args)
    except ValueError as exc:
        return "error", str(exc)


@pytest.mark.parametrize("scale", [0, 1, 2, 4, 8, 9, 18])
@pytest.mark.parametrize("text", DECIMALS)
def test_decimal_fast_path_agrees_with_the_strict_parser(text, scale):
    strict = _verdict(_strict_decimal, text, scale)
    fast = decimal_fast(text, scale)
    if fast is not None:
        assert strict == ("ok", fast)
    assert _verdict(parse_decimal, text, scale) == strict


def test_decimal_fast_path_is_exact_and_never_rounds():
    assert [decimal_fast(f"1.{'5' * k}", 9) for k in range(1, 10)] == [int("1" + "5" * k + "0" * (9 - k)) for k in range(1, 10)]
    assert decimal_fast("187.25", 4) == 1_872_500 and decimal_fast("-187.25", 4) == -1_872_500
    assert decimal_fast("+187.25", 4) == 1_872_500 and decimal_fast("-0", 2) == 0
    assert decimal_fast("922337203685477.5807", 4) == INT64_MAX and decimal_fast("-922337203685477.5808", 4) == INT64_MIN
    assert decimal_fast("922337203685477.5808", 4) is None  # beyond int64: the strict parser says so
    assert decimal_fast("187.25001", 4) is None and decimal_fast("1e5", 0) is None and decimal_fast("187.250", 2) is None
    with pytest.raises(ValueError, match="more than 4 decimal places"):
        parse_decimal("187.25001", 4)
    assert parse_decimal("187.250000", 4) == 1_872_500  # extra zeros: still the strict parser's call


@settings(max_examples=800, deadline=None)
@given(text=st.text(alphabet="0123456789.+-eE _١", max_size=24), scale=st.integers(0, 18))
def test_decimal_fast_path_property(text, scale):
    strict = _verdict(_strict_decimal, text, scale)
    fast = decimal_fast(text, scale)
    assert fast is None or strict == ("ok", fast)
    assert _verdict(parse_decimal, text, scale) == strict


ISO = [
    "2026-01-02T14:30:00.000123456Z", "2026-01-03T14:30:00.000123456Z", "2026-01-02T14:31:59.999999999Z",
    *[f"2026-01-02T14:30:07.{'3' * k}Z" for k in range(1, 11)],
    "2024-02-29T12:00:00.5Z", "2026-02-29T12:00:00.5Z", "2100-02-29T12:00:00.5Z", "2000-02-29T12:00:00.5Z",
    "2026-12-31T23:59:59.999999999Z", "2027-01-01T00:00:00.0Z", "2026-01-02T24:00:00.0Z", "2026-01-02T23:60:00.0Z",
    "2026-01-02T23:59:60.0Z", "2026-13-01T00:00:00.1Z", "2026-00-01T00:00:00.1Z", "2026-01-00T00:00:00.1Z",
    "2262-04-11T23:47:16.854775807Z", "2262-04-11T23:47:16.854775808Z", "1677-09-21T00:12:43.145224192Z",
    "1677-09-21T00:12:43.145224191Z", "1970-01-01T00:00:00.0Z", "1969-12-31T23:59:59.999999999Z",
    "9999-12-31T23:59:59.9Z", "0001-01-01T00:00:00.1Z", "2026-01-02T14:30:00Z", "2026-01-02T14:30:00.5+01:00",
    "2026-01-02T14:30:00.5-05:30", "2026-01-02t14:30:00.5Z", "2026-01-02T14:30:00.5z", "2026-01-02T14:30:0a.5Z",
    "2026-01-02T14:30:00.5a5Z", "2026-01-02T14:30:00.Z", "2026-01-02T14:30:00,5Z", "٢٠٢٦-01-02T14:30:00.5Z",
    "2026-01-02T14:30:0٠.5Z", "2026-01-02T14:30:00.٥Z", "2026-01-02 14:30:00.5Z", "2026-1-02T14:30:00.5Z", "",
    "2026-01-02T14:30:00.+5Z", "2026-01-02T14:30:+0.5Z", "2026-01-02T14:30:-0.5Z", "2026-01-02T14:30: 0.5Z",
]


@pytest.mark.parametrize("text", ISO)
def test_iso_fast_path_agrees_with_the_strict_parser(text):
    strict = _verdict(_strict_iso_ns, text)
    fast = iso_ns_fast(text)
    assert fast is None or strict == ("ok", fast)
    assert _verdict(parse_iso_ns, text) == strict


def _fix(iso: str) -> str:
    return iso[0:4] + iso[5:7] + iso[8:10] + "-" + iso[11:-1]


@pytest.mark.parametrize("text", [_fix(t) for t in ISO if t.endswith("Z") and len(t) >= 20] + ["20260102-14:30:00.1Z", "2026012-14:30:00.1"])
def test_fix_time_fast_path_agrees_with_the_strict_parser(text):
    strict = _verdict(_strict_fix_time, text)
    fast = fix_time_fast(text)
    assert fast is None or strict == ("ok", fast)
    assert _verdict(parse_fix_time, text) == strict


def test_timestamps_on_other_dates_than_the_cached_one():
    a = parse_iso_ns("2026-01-02T14:30:00.000000001Z")
    assert parse_iso_ns("2026-01-03T14:30:00.000000001Z") == a + DAY_NS  # another date, same time of day
    assert parse_iso_ns("2026-01-02T14:30:00.000000001Z") == a  # back to the first one: the cache is per second
    assert parse_fix_time("20260103-14:30:00.000000001") == a + DAY_NS
    assert parse_iso_ns("2024-03-01T00:00:00.0Z") - parse_iso_ns("2024-02-28T00:00:00.0Z") == 2 * DAY_NS  # leap year
    assert parse_iso_ns("2100-03-01T00:00:00.0Z") - parse_iso_ns("2100-02-28T00:00:00.0Z") == DAY_NS  # not one


def test_the_seconds_cache_is_bounded_and_stays_correct_when_cleared():
    base = _strict_iso_ns("2026-01-02T00:00:00Z")
    for second in range(0, (timeutil._SECONDS_MAX + 50) * 7, 7):
        m, s = divmod(second, 60)
        h, m = divmod(m, 60)
        text = f"2026-01-02T{h:02d}:{m:02d}:{s:02d}.25Z"
        assert iso_ns_fast(text) == base + second * 1_000_000_000 + 250_000_000
        assert len(timeutil._iso_seconds) <= timeutil._SECONDS_MAX


# -- the checksum --------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=2_000), cut=st.integers(0, 2_000))
def test_byte_sum_is_sum_of_the_bytes(data, cut):
    end = min(cut, len(data))
    assert byte_sum(data, end) == sum(data[:end])


def test_byte_sum_at_the_chunk_limits():
    for n in (0, 1, 255, 256, 257, 511, 512, 513, 5_000):
        block = b"\xff" * n
        assert byte_sum(block, n) == 255 * n
    rng = random.Random(5)
    blob = bytes(rng.randrange(256) for _ in range(4_096))
    assert all(byte_sum(blob, end) == sum(blob[:end]) for end in range(0, 4_096, 37))


def test_fix_checksum_is_still_checked_on_the_fast_path():
    ref = RefData([Instrument("AAPL", "3", price_scale=4, size_scale=0, tick_size=100, lot_size=1)])
    codec = codec_for("charlie")
    good = codec.encode(VenueMessage(7, Heartbeat(1_767_364_200_000_000_001)), ref)
    bad = good[:-4] + b"%03d\x01" % ((int(good[-4:-1]) + 1) % 256)
    assert codec._fast(good, ref) is not None
    assert codec._fast(bad, ref) is None
    with pytest.raises(VenueFormatError, match="CheckSum"):
        codec.decode(bad, ref)
    trade = codec.encode(VenueMessage(8, Trade("AAPL", 1_767_364_200_000_000_001, "T", 1_872_500, 5)), ref)
    assert codec.decode(trade, ref).event == Trade("AAPL", 1_767_364_200_000_000_001, "T", 1_872_500, 5)


def test_the_decimal_cache_is_bounded_and_exact():
    from connectors.venues import scaled

    for i in range(scaled._CACHE_MAX + 100):
        assert decimal_fast(f"{i}.5", 2) == i * 100 + 50
        assert decimal_fast(f"{i}.5", 2) == i * 100 + 50  # the cached answer is the computed one
        assert len(scaled._CACHES[2]) <= scaled._CACHE_MAX
    assert decimal_fast("1.5", 0) is None and parse_decimal("1.50", 1) == 15  # one cache per scale
    assert decimal_fast("1.5", 19) is None and decimal_fast("1.5", -1) is None  # scales beyond 0..18: strict decides
