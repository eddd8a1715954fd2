"""The native venue fast paths against the Python ones: the same tuple wherever native answers (DECISIONS #63).

``streams._native.{json_decimal_fast, json_ticks_fast, fix_fast}(payload, ref.native_table())`` may decline
anything (then the Python fast path, then the strict reader decide), but whatever it returns must equal what
the Python fast path (``Codec._fast``) returns for the same payload -- values and exact types -- and it must
decline wherever the Python fast path declines. ``decode_fields`` must give the same result or raise the same
error with and without it. Checked on the simulator's feeds, malformed feeds, mutated messages (hypothesis,
reusing ``test_venue_fast_paths``' value pools), raw byte damage, JSON syntax corner cases, every decimal and
timestamp edge case of the scalar tests at every scale, and odd reference data.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_venue_fast_paths import DECIMALS, EDGE_FIX, EDGE_JSON, ISO, JSON_VALUES, _fix, _json_bases, _sim, _sim_small

from connectors.venues.errors import VenueFormatError
from connectors.venues.fix import frame
from connectors.venues.formats import FORMATS, Codec, codec_for
from connectors.venues.instruments import Instrument, RefData
from streams import native

pytestmark = pytest.mark.skipif(not native.active(), reason=f"{native.status()}: only the Python fast paths exist")
NATIVE_FN = {"json-decimal": "json_decimal_fast", "json-ticks": "json_ticks_fast", "fix": "fix_fast"}
VENUE_OF = {"json-decimal": "alpha", "json-ticks": "bravo", "fix": "charlie"}
HYP = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args)
    except VenueFormatError as exc:
        return "error", (type(exc), exc.venue, exc.format, exc.cause)
    except TypeError as exc:  # an unhashable JSON value where the strict reader expects a code: its own failure
        return "type-error", str(exc)


def _python_only(codec: Codec) -> Codec:
    """The same codec with its native twin switched off (what HFTSTREAM_NATIVE=0 runs)."""
    twin = codec_for(codec.venue, codec.format)
    twin._native_fast = None  # type: ignore[misc]
    return twin


def _same(codec: Codec, payload: Any, ref: RefData) -> bool:
    """Assert native agrees with the Python fast path and ``decode_fields`` with the Python-only path; True if native answered."""
    fn = getattr(native.NATIVE, NATIVE_FN[codec.format])
    got = fn(payload, ref.native_table())
    want = codec._fast(payload, ref)  # the Python fast path, the reference
    if got is not None:
        assert want is not None, f"native answered where the Python fast path declines: {payload!r} -> {got!r}"
        assert got == want, payload
        assert type(got[0]) is type(want[0]) and got[1] is want[1], payload
        assert tuple(map(type, got[2])) == tuple(map(type, want[2])), payload
    assert _outcome(codec.decode_fields, payload, ref) == _outcome(_python_only(codec).decode_fields, payload, ref)
    return got is not None


# -- whole feeds --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_wellformed_simulated_message_is_answered_natively_and_agrees(fmt):
    ref, feeds = _sim(6_000, seed=21)
    venue, payloads = feeds[fmt]
    codec = codec_for(venue, fmt)
    assert len(payloads) > 1_000
    for payload in payloads:
        assert _same(codec, payload, ref), f"a well-formed {fmt} message missed the native path: {payload!r}"


@pytest.mark.parametrize("fmt", FORMATS)
def test_malformed_simulated_messages_agree(fmt):
    ref, feeds = _sim(6_000, seed=22, malformed_rate=0.3)
    venue, payloads = feeds[fmt]
    codec = codec_for(venue, fmt)
    declined = sum(not _same(codec, p, ref) for p in payloads)
    assert declined > 200


def test_partial_and_empty_reference_data_decline_unknown_instruments():
    ref, feeds = _sim(1_500, seed=23)
    for partial in (RefData(list(ref)[:3]), RefData(())):
        for fmt in FORMATS:
            venue, payloads = feeds[fmt]
            codec = codec_for(venue, fmt)
            for payload in payloads:
                _same(codec, payload, partial)


def test_the_table_follows_reference_data_changes():
    ref, feeds = _sim(600, seed=24)
    insts = list(ref)
    codec = codec_for(VENUE_OF["json-ticks"], "json-ticks")
    payloads = feeds["json-ticks"][1]
    table = ref.native_table()
    assert ref.native_table() is table  # built once per version
    for inst in insts:
        ref.remove(inst.symbol)
    assert ref.native_table() is not table
    assert not any(_same(codec, p, ref) and json.loads(p)["t"] not in ("H", "S") for p in payloads)
    for inst in insts:  # back, with other scales: the results follow
        ref.put(Instrument(inst.symbol, inst.instrument_id, inst.price_scale + 1, inst.size_scale, inst.tick_size * 10, inst.lot_size))
    assert sum(_same(codec, p, ref) for p in payloads) > 100
    renumbered = RefData([Instrument(i.symbol, str(int(i.instrument_id) + 100), i.price_scale, i.size_scale, i.tick_size, i.lot_size) for i in insts])
    assert not any(_same(codec, p, renumbered) and json.loads(p)["t"] not in ("H", "S") for p in payloads)


@pytest.mark.parametrize("fmt", FORMATS)
def test_odd_reference_data_declines_or_agrees(fmt):
    """Scales outside 0..18, ticks beyond int64, ids that are not numbers, two instruments on one id."""
    ref, feeds = _sim_small()
    venue, payloads = feeds[fmt]
    codec = codec_for(venue, fmt)
    insts = list(ref)
    variants = [
        [Instrument(i.symbol, i.instrument_id, 19, i.size_scale, i.tick_size, i.lot_size) for i in insts],
        [Instrument(i.symbol, i.instrument_id, i.price_scale, -1, i.tick_size, i.lot_size) for i in insts],
        [Instrument(i.symbol, i.instrument_id, i.price_scale, i.size_scale, 2**63, 2**62) for i in insts],
        [Instrument(i.symbol, i.instrument_id, i.price_scale, i.size_scale, 2**40, 2**40) for i in insts],
        [Instrument(i.symbol, "x" + i.instrument_id, i.price_scale, i.size_scale, i.tick_size, i.lot_size) for i in insts],
        [*insts, *(Instrument(i.symbol + "2", i.instrument_id, 0, 0, 1, 1) for i in insts)],
    ]
    for instruments in variants:
        odd = RefData(instruments)
        for payload in payloads[:400]:
            _same(codec, payload, odd)


# -- mutations ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json-decimal", "json-ticks"])
def test_every_single_field_mutation_of_json_messages_agrees(fmt):
    ref, feeds = _sim_small()
    codec = codec_for(feeds[fmt][0], fmt)
    extra = ["x", "a", "b", "i", "aggressor", "reason", "r", "symbol", "bid", "ask", "unknown"]
    missing = object()
    for base in _json_bases(fmt):
        obj = json.loads(base)
        for key in sorted(set(obj) | set(extra)):
            for value in [missing, *EDGE_JSON, 2**64, -(2**64), "é", "AAPL\u00e9", {"a": [1, {"b": None}]}, 1e300]:
                mutated = {k: v for k, v in obj.items() if k != key}
                if value is not missing:
                    mutated[key] = value
                for ensure_ascii in (False, True):
                    _same(codec, json.dumps(mutated, ensure_ascii=ensure_ascii).encode(), ref)


@pytest.mark.parametrize("fmt", ["json-decimal", "json-ticks"])
@HYP
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
            obj[key] = data.draw(st.one_of(JSON_VALUES, st.text(), st.integers(), st.floats(allow_nan=False)))
    try:
        payload = json.dumps(obj, ensure_ascii=data.draw(st.booleans()), indent=data.draw(st.sampled_from([None, 0, 2]))).encode()
    except ValueError:
        return
    _same(codec_for(venue, fmt), payload, ref)


@pytest.mark.parametrize("fmt", FORMATS)
@HYP
@given(data=st.data())
def test_raw_byte_damage_agrees(fmt, data):
    ref, feeds = _sim_small()
    venue, payloads = feeds[fmt]
    original = data.draw(st.sampled_from(payloads[:300]))
    k = data.draw(st.integers(0, len(original)))
    cut = data.draw(st.integers(0, 3))
    _same(codec_for(venue, fmt), original[:k] + data.draw(st.binary(max_size=4)) + original[k + cut :], ref)


JSON_SYNTAX = [
    b' {"type":"heartbeat","ts":"2026-01-02T14:30:00.000000001Z"} \n', b'{"type":"heartbeat","ts":"2026-01-02T14:30:00.000000001Z"}x',
    b'{"type":"heartbeat","ts":"2026-01-02T14:30:00.000000001Z",}', b'{"type":"heartbeat","ts":"2026-01-02T14:30:00.000000001Z"}{}',
    b'\xef\xbb\xbf{"type":"heartbeat","ts":"2026-01-02T14:30:00.000000001Z"}', b'{"type":"heartbeat","ts":"2026-01-02T14:30:00.000000001Z","ts":"2026-01-02T14:30:00.5Z"}',
    b'{"type":"heart\\u0062eat","ts":"2026-01-02T14:30:00.000000001Z"}', b'{"type":"heartbeat","ts":"2026-01-02T14:30:00.000000001Z","z":"\\ud800"}',
    b'{"type":"heartbeat","ts":"2026-01-02T14:30:00.000000001Z","z":NaN}', b'{"type":"heartbeat","ts":"2026-01-02T14:30:00.000000001Z","z":-Infinity}',
    b'{"type":"heartbeat","ts":"2026-01-02T14:30:00.000000001Z","z":01}', b'{"type":"heartbeat","ts":"2026-01-02T14:30:00.000000001Z","z":1.}',
    b'{"type":"heartbeat","ts":"2026-01-02T14:30:00.000000001Z","z":-}', b'{"type":"heartbeat","ts":"2026-01-02T14:30:00.000000001Z","z":1e}',
    b'{"type":"heartbeat","ts":"2026-01-02T14:30:00.000000001Z","z":' + b"[" * 40 + b"]" * 40 + b"}",
    b'{"type":"heartbeat","ts":"2026-01-02T14:30:00.000000001Z","z":' + b"9" * 5000 + b"}",
    b'{"type":"heartbeat","ts":"2026-01-02T14:30:00.000000001Z","z":"a\tb"}', b'{"type":"heartbeat","ts":"2026-01-02T14:30:00.000000001Z","z":tru}',
    b'{"type":"heartbeat","ts":"2026-01-02T14:30:00.000000001Z","z":[1,2,]}', b'{"type":"heartbeat","ts":"2026-01-02T14:30:00.000000001Z" "z":1}',
    b'{"type":"heartbeat","ts":"2026-01-02T14:30:00.000000001Z","z":"\xff"}', b'{"type":"heartbeat","ts":"2026-01-02T14:30:00.000000001Z","z":"\xe9t\xc3\xa9"}',
    b'{"type":"heartbeat","ts":"2026-01-02T14:30:00.000000001Z","z":{"a":1,"a":[true,false,null,-0,1.5e-3]}}',
    b'["type","heartbeat"]', b'"x"', b"", b"{", b"{}", b"null",
    b'{"t":"H","q":-0,"ns":5}', b'{"t":"H","q":1.0,"ns":5}', b'{"t":"H","q":1,"ns":9223372036854775807}', b'{"t":"H","q":1,"ns":9223372036854775808}',
    b'{"t":"H","q":true,"ns":5}', b'{"t":"H","q":1,"ns":5E0}', b'{"t":"T","i":3,"q":1,"p":-9223372036854775808,"z":0,"ns":5,"x":-0}',
    b'{"t":"T","i":3,"q":1,"p":1,"z":1,"ns":5,"x":123456789012345678901234567890}', b'{"t":"S","q":1,"ns":5,"st":5,"r":"\xc3\xa9"}',
    b'{"t":"S","q":1,"ns":5,"st":6}', b'{"t":"S","q":1,"ns":5,"st":-1}', b'{"t":"S","q":1,"ns":5,"st":2,"i":null}',
    b'{"t":"B","i":3,"q":1,"p":1,"z":1,"ns":5,"s":1,"u":2}', b'{"t":"B","i":3,"q":1,"p":1,"z":1,"ns":5,"s":2,"u":0}',
    b'{"t":"Q","i":3,"q":1,"b":null,"bz":0,"az":0,"ns":5}', b'{"t":"Q","i":3,"q":1,"bz":0,"az":0,"ns":5}',
]


@pytest.mark.parametrize("fmt", ["json-decimal", "json-ticks"])
def test_json_syntax_corner_cases_agree(fmt):
    ref, _ = _sim_small()
    codec = codec_for(VENUE_OF[fmt], fmt)
    for payload in JSON_SYNTAX:
        _same(codec, payload, ref)
    assert _same(codec_for("alpha"), JSON_SYNTAX[0], ref)  # whitespace around the object: still answered
    assert _same(codec_for("bravo"), b'{"t":"H","q":-0,"ns":5}', ref)


def test_payloads_that_are_not_exactly_bytes_are_declined():
    ref, feeds = _sim_small()
    for fmt in FORMATS:
        codec = codec_for(VENUE_OF[fmt], fmt)
        payload = feeds[fmt][1][0]
        for other in (bytearray(payload), memoryview(payload), payload.decode(), None, 5):
            assert getattr(native.NATIVE, NATIVE_FN[fmt])(other, ref.native_table()) is None
            assert _outcome(codec.decode_fields, other, ref) == _outcome(_python_only(codec).decode_fields, other, ref)


# -- scalars, through whole messages, at every scale ---------------------------------------------

SCALES = [0, 1, 2, 4, 8, 9, 17, 18]


def _scaled_ref(scale: int) -> RefData:
    return RefData([Instrument("AAPL", "3", price_scale=scale, size_scale=scale, tick_size=1, lot_size=1)])


@pytest.mark.parametrize("scale", SCALES)
def test_decimals_agree_at_every_scale(scale):
    ref = _scaled_ref(scale)
    jd, fx = codec_for("alpha"), codec_for("charlie")
    head = [("35", "X"), ("49", "CHARLIE"), ("56", "HFTSTREAM"), ("34", "5"), ("52", "20260102-14:30:00.000000001")]
    for text in [*DECIMALS, "0" * 19, "9" * 19, "9" * 20, "1." + "0" * 18, "1." + "0" * 19, "-" + "9" * 19 + ".5"]:
        for key in ("price", "size"):
            obj = {"type": "trade", "symbol": "AAPL", "price": "1", "size": "1", "ts": "2026-01-02T14:30:00.5Z", "trade_id": "T"}
            obj[key] = text
            _same(jd, json.dumps(obj, ensure_ascii=False).encode(), ref)
        if text and "\x01" not in text:
            for tag in ("270", "271"):
                entry = {"268": "1", "279": "0", "269": "2", "55": "AAPL", "270": "1", "271": "1", "1003": "T"}
                entry[tag] = text
                _same(fx, frame(head + list(entry.items())), ref)


@pytest.mark.parametrize("text", ISO)
def test_timestamps_agree(text):
    ref = _scaled_ref(2)
    _same(codec_for("alpha"), json.dumps({"type": "heartbeat", "ts": text}, ensure_ascii=False).encode(), ref)
    if len(text) >= 20 and "\x01" not in text:
        fix_text = _fix(text) if text.endswith("Z") else text
        for body in ([("35", "0"), ("49", "C"), ("56", "H"), ("34", "1"), ("52", fix_text)],
                     [("35", "f"), ("49", "C"), ("56", "H"), ("34", "1"), ("52", "20260102-14:30:00.1"), ("326", "17"), ("60", fix_text)]):
            _same(codec_for("charlie"), frame(body), ref)


def test_fix_field_values_at_every_position_agree():
    ref, feeds = _sim_small()
    codec = codec_for(feeds["fix"][0], "fix")
    bases: dict[tuple, bytes] = {}
    for payload in feeds["fix"][1]:
        parts = payload.split(b"\x01")
        if len(parts) > 3 and parts[2].startswith(b"35="):
            bases.setdefault((parts[2], len(parts), b"5797=" in payload), payload)
    for base in bases.values():
        fields = [tuple(f.split("=", 1)) for f in base.decode().split("\x01")[2:-2]]
        for i, field in enumerate(fields):
            for value in [*EDGE_FIX, "é", "AAPL=1", "9" * 19, "0" * 19]:
                variant = fields[:i] + [(field[0], value)] + fields[i + 1 :]
                body = "".join("=".join(f) + "\x01" for f in variant).encode()
                head = b"8=FIX.4.4\x01" + f"9={len(body)}\x01".encode() + body
                _same(codec, head + f"10={sum(head) % 256:03d}\x01".encode(), ref)
