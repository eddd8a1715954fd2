"""Issue 14 #1: impossible market data is dead-lettered with a reason, in every venue format (DECISIONS #41)."""

from __future__ import annotations

import pytest

from connectors.venues.events import BookDelta, Quote, StatusChange, Trade
from connectors.venues.formats import codec_for
from connectors.venues.instruments import RefData
from connectors.venues.sanity import Sanity
from streams.processors.normalize import NormalizeConfig, NormalizeProcessor
from test_normalize import AAPL, FORMATS, INSTRUMENTS, T0, VENUE, Feed

P = 1_872_000  # AAPL 187.20 at price_scale 4 (half of it is on the tick grid too)
TICK = 100

# (case, event, reason): each impossible in every format; the events are on the tick and lot grid.
IMPOSSIBLE = [
    ("the issue's trade at -5", Trade("AAPL", T0, "A-1", -50_000, 50), "NON_POSITIVE_PRICE"),
    ("trade at zero", Trade("AAPL", T0, "A-1", 0, 50), "NON_POSITIVE_PRICE"),
    ("trade of size zero", Trade("AAPL", T0, "A-1", P, 0), "NON_POSITIVE_SIZE"),
    ("the issue's crossed quote 187.20 > 187.10", Quote("AAPL", T0, 1_872_000, 10, 1_871_000, 10), "CROSSED_QUOTE"),
    ("crossed by one tick", Quote("AAPL", T0, P + TICK, 10, P, 10), "CROSSED_QUOTE"),
    ("negative bid", Quote("AAPL", T0, -TICK, 10, P, 10), "NON_POSITIVE_PRICE"),
    ("zero ask, empty bid", Quote("AAPL", T0, None, 0, 0, 10), "NON_POSITIVE_PRICE"),
    ("quoted bid of size zero", Quote("AAPL", T0, P - TICK, 0, P, 10), "NON_POSITIVE_SIZE"),
    ("quoted ask of size zero", Quote("AAPL", T0, P - TICK, 10, P, 0), "NON_POSITIVE_SIZE"),
    ("book add at zero", BookDelta("AAPL", T0, "BUY", "ADD", 0, 10), "NON_POSITIVE_PRICE"),
    ("book change at a negative price", BookDelta("AAPL", T0, "SELL", "CHANGE", -P, 10), "NON_POSITIVE_PRICE"),
    ("book delete at a negative price", BookDelta("AAPL", T0, "SELL", "DELETE", -P, 0), "NON_POSITIVE_PRICE"),
    ("book add of size zero", BookDelta("AAPL", T0, "BUY", "ADD", P, 0), "NON_POSITIVE_SIZE"),
    ("book change of size zero", BookDelta("AAPL", T0, "SELL", "CHANGE", P, 0), "NON_POSITIVE_SIZE"),
]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("case", "event", "reason"), IMPOSSIBLE, ids=[c[0] for c in IMPOSSIBLE])
def test_impossible_market_data_is_rejected_with_its_reason(fmt, case, event, reason):
    feed = Feed()
    rej = feed.reject(feed.event(fmt, event))
    assert rej.reason_code == reason, str(rej)
    assert f"venue {VENUE[fmt]!r}: AAPL " in str(rej)
    counts = feed.proc.counters()
    assert counts[f"rejected.{reason}"] == 1 and counts["normalized"] == 0


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_issues_negative_trade_never_reaches_md_normalized_and_the_feed_goes_on(fmt):
    feed = Feed()
    assert feed.reject(feed.event(fmt, Trade("AAPL", T0, "A-1", -50_000, 50))).reason_code == "NON_POSITIVE_PRICE"
    [out] = feed.run(feed.event(fmt, Trade("AAPL", T0 + 1, "A-2", P, 50)))  # its seq was consumed: no gap reported
    assert out.schema == "hftstream.md.Trade" and out.value["price"] == P


POSSIBLE = [
    ("a locked quote", Quote("AAPL", T0, P, 10, P, 10)),
    ("one-sided quote", Quote("AAPL", T0, None, 0, P, 10)),
    ("empty quote", Quote("AAPL", T0, None, 0, None, 0)),
    ("book delete of size zero", BookDelta("AAPL", T0, "BUY", "DELETE", P, 0)),
    ("the smallest price and size", Trade("AAPL", T0, "A-1", TICK, 1)),
]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("case", "event"), POSSIBLE, ids=[c[0] for c in POSSIBLE])
def test_boundaries_that_are_possible_pass(fmt, case, event):
    feed = Feed()
    [out] = feed.run(feed.event(fmt, event))
    assert out.topic == "md.normalized"
    assert feed.proc.counters()["locked_quotes"] == (1 if case == "a locked quote" else 0)


# -- the band around the last trade -----------------------------------------------------------------

FAR = [  # 50% band around the last trade P: P/2 .. 3P/2 pass, one tick beyond does not
    ("trade at the upper edge", Trade("AAPL", T0 + 5, "A-9", P + P // 2, 1), None),
    ("trade one tick above", Trade("AAPL", T0 + 5, "A-9", P + P // 2 + TICK, 1), "PRICE_OUT_OF_BAND"),
    ("trade at the lower edge", Trade("AAPL", T0 + 5, "A-9", P - P // 2, 1), None),
    ("trade one tick below", Trade("AAPL", T0 + 5, "A-9", P - P // 2 - TICK, 1), "PRICE_OUT_OF_BAND"),
    ("a decimal shift: 10x", Trade("AAPL", T0 + 5, "A-9", P * 10, 1), "PRICE_OUT_OF_BAND"),
    ("quote ask 10x", Quote("AAPL", T0 + 5, P, 10, P * 10, 10), "PRICE_OUT_OF_BAND"),
    ("quote bid a tenth", Quote("AAPL", T0 + 5, P // 10, 10, P, 10), "PRICE_OUT_OF_BAND"),
    ("book add 10x", BookDelta("AAPL", T0 + 5, "SELL", "ADD", P * 10, 10), "PRICE_OUT_OF_BAND"),
    ("book delete 10x is removed, not refused", BookDelta("AAPL", T0 + 5, "SELL", "DELETE", P * 10, 0), None),
]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("case", "event", "reason"), FAR, ids=[c[0] for c in FAR])
def test_prices_beyond_the_band_around_the_last_trade_are_rejected(fmt, case, event, reason):
    feed = Feed()
    feed.run(feed.event(fmt, Trade("AAPL", T0 + 1, "A-1", P, 10)))
    msg = feed.event(fmt, event)
    if reason is None:
        assert len(feed.run(msg)) == 1
        return
    rej = feed.reject(msg)
    assert rej.reason_code == reason and "from the last trade 1872000" in str(rej), str(rej)


def test_the_band_follows_accepted_trades_only_and_a_status_change_resets_it():
    feed = Feed()
    run, reject = (lambda ev: feed.run(feed.event("json-decimal", ev))), (lambda ev: feed.reject(feed.event("json-decimal", ev)))
    assert reject(Trade("AAPL", T0, "x", P, 0)).reason_code == "NON_POSITIVE_SIZE"  # a refused trade sets no reference
    run(Trade("AAPL", T0 + 1, "a", P * 10, 1))  # the first trade: no reference yet
    assert reject(Trade("AAPL", T0 + 2, "b", P, 1)).reason_code == "PRICE_OUT_OF_BAND"
    run(Trade("AAPL", T0 + 3, "c", P * 7, 1))  # within 50% of 10P: the reference moves to 7P
    run(Trade("AAPL", T0 + 4, "d", P * 4, 1))  # within 50% of 7P
    run(Trade("BTC-USD", T0 + 5, "e", 1, 10_000))  # other symbols have their own reference
    run(StatusChange("AAPL", T0 + 6, "OPEN"))  # a reopening may print anywhere
    run(Trade("AAPL", T0 + 7, "f", P, 1))
    assert reject(Trade("BTC-USD", T0 + 8, "g", 100, 10_000)).reason_code == "PRICE_OUT_OF_BAND"
    run(StatusChange(None, T0 + 9, "OPEN"))  # venue-wide: every symbol
    run(Trade("BTC-USD", T0 + 10, "h", 100, 10_000))
    counts = feed.proc.counters()
    assert counts["rejected.PRICE_OUT_OF_BAND"] == 2 and counts["rejected.NON_POSITIVE_SIZE"] == 1


def test_band_is_configurable_and_zero_turns_it_off():
    off = Feed(NormalizeConfig(price_band_pct=0))
    for i, price in enumerate((P, P * 100, 10_000)):  # 187.20, 18720.00, 1.00
        assert len(off.run(off.event("fix", Trade("AAPL", T0 + i, str(i), price, 1)))) == 1
    tight = Feed(NormalizeConfig(price_band_pct=5))
    tight.run(tight.event("fix", Trade("AAPL", T0, "a", P, 1)))
    assert tight.reject(tight.event("fix", Trade("AAPL", T0 + 1, "b", 1_984_400, 1))).reason_code == "PRICE_OUT_OF_BAND"
    with pytest.raises(ValueError):
        NormalizeConfig(price_band_pct=-1)


def test_the_reference_prices_survive_snapshot_and_restore():
    feed = Feed()
    feed.run(feed.event("json-ticks", Trade("AAPL", T0, "a", P, 1)))
    feed.run(feed.event("json-ticks", Quote("AAPL", T0 + 1, P, 1, P, 1)))
    blob = feed.proc.snapshot()
    other = NormalizeProcessor(NormalizeConfig(), 0)
    other.restore(blob)
    assert other.snapshot() == blob and other.counters()["locked_quotes"] == 1
    feed.proc = other
    feed.seqs.clear()
    feed.seqs[VENUE["json-ticks"], 0] = 2
    assert feed.reject(feed.event("json-ticks", Trade("AAPL", T0 + 2, "b", P * 3, 1))).reason_code == "PRICE_OUT_OF_BAND"


# -- one rule whichever decoder read the payload ------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_fast_path_and_strict_reader_decode_impossible_data_alike_and_get_the_same_verdict(fmt):
    ref = RefData(INSTRUMENTS)
    codec = codec_for(VENUE[fmt])
    for i, (case, event, reason) in enumerate(IMPOSSIBLE):
        payload = codec.encode(_msg(fmt, i, event), ref)
        fast = codec._fast(payload, ref)
        seq, strict_event = codec._strict(payload, ref)
        assert fast is not None, f"{case}: the fast path declined a well-formed message"
        strict = tuple(getattr(strict_event, n) for n in strict_event.__slots__)
        assert fast[0] == seq and fast[1] is type(strict_event) and fast[2] == strict, case
        verdict = Sanity().admit(fast[1], fast[2])
        assert verdict == Sanity().admit(type(strict_event), strict) and verdict is not None and verdict[0] == reason, case


def _msg(fmt, i, event):
    from connectors.venues.events import VenueMessage

    return VenueMessage(i + 1 if fmt != "json-decimal" else None, event)


def test_sanity_is_plain_data_and_refuses_a_negative_band():
    s = Sanity(10)
    assert s.admit(Trade, (AAPL.symbol, T0, "a", P, 1, None)) is None
    assert s.reference == {"AAPL": P} and s.admit(Trade, ("AAPL", T0, "b", P * 2, 1, None))[0] == "PRICE_OUT_OF_BAND"
    with pytest.raises(ValueError):
        Sanity(-1)


def _spec(reference: dict, pct: int, cls, f) -> str | None:
    """The rules of DECISIONS #41 written out plainly: what ``Sanity.admit``'s shortcuts must agree with."""
    def far(p):
        ref = reference.get(f[0])
        return ref is not None and pct and abs(p - ref) * 100 > pct * ref

    if cls is Trade:
        return "NON_POSITIVE_PRICE" if f[3] <= 0 else "NON_POSITIVE_SIZE" if f[4] <= 0 else "PRICE_OUT_OF_BAND" if far(f[3]) else None
    if cls is Quote:
        for price, size in ((f[2], f[3]), (f[4], f[5])):
            if price is not None:
                if price <= 0:
                    return "NON_POSITIVE_PRICE"
                if size <= 0:
                    return "NON_POSITIVE_SIZE"
                if far(price):
                    return "PRICE_OUT_OF_BAND"
        return "CROSSED_QUOTE" if f[2] is not None and f[4] is not None and f[2] > f[4] else None
    _, _, _, action, price, size = f
    if price <= 0:
        return "NON_POSITIVE_PRICE"
    if action == "DELETE":
        return None
    return "NON_POSITIVE_SIZE" if size <= 0 else "PRICE_OUT_OF_BAND" if far(price) else None


def test_the_shortcuts_agree_with_the_rules_on_random_events():
    import random

    rng = random.Random(14)
    for pct in (0, 5, 50):
        sanity, reference, locked = Sanity(pct), {}, 0
        for _ in range(20_000):
            sym = rng.choice(("AAPL", "MSFT"))
            price = lambda: rng.choice((-1, 0, 1, 50, 90, 100, 104, 106, 150, 151, 1000))  # noqa: E731
            size = lambda: rng.choice((0, 0, 1, 7))  # noqa: E731
            kind = rng.randrange(4)
            if kind == 0:
                cls, f = Trade, (sym, T0, "t", price(), size(), None)
            elif kind == 1:
                cls, f = Quote, (sym, T0, rng.choice((None, price(), price())), size(), rng.choice((None, price(), price())), size())
            elif kind == 2:
                cls, f = BookDelta, (sym, T0, rng.choice(("BUY", "SELL")), rng.choice(("ADD", "CHANGE", "DELETE")), price(), size())
            else:
                cls, f = StatusChange, (rng.choice((sym, None)), T0, "OPEN", None)
            expected = _spec(reference, pct, cls, f) if cls is not StatusChange else None
            got = sanity.admit(cls, f)
            assert (got[0] if got else None) == expected, (pct, cls.__name__, f, reference)
            if cls is Trade and expected is None:
                reference[sym] = f[3]
            if cls is Quote and expected is None and f[2] is not None and f[2] == f[4]:
                locked += 1
            if cls is StatusChange:
                reference.clear() if f[0] is None else reference.pop(f[0], None)
            assert sanity.reference == reference
        assert sanity.locked == locked > 0


@pytest.mark.parametrize("regime", ["calm", "burst", "cancel-storm"])
def test_the_simulator_never_prints_what_the_rules_refuse(regime):
    """The demo's feed must pass unchanged: no regime (with a long session, gap-scale 40) trips a sanity rule."""
    from connectors.venues.sanity import REASON_CODES
    from connectors.venues.simulator import SimConfig, Simulation
    from normalize_support import RAW_PARTITIONS, partitioned, task_messages

    sim = Simulation(SimConfig(venues=3, symbols=12, events=15_000, seed=7, regime=regime, gap_scale=40, malformed_rate=0.01))
    parts = partitioned([*sim.instrument_records(), *sim.records()])
    normalized = 0
    for task in range(RAW_PARTITIONS):
        proc = NormalizeProcessor(NormalizeConfig(), task)
        proc.process_batch(task_messages(parts, task))
        counts = proc.counters()
        assert {code: counts[f"rejected.{code}"] for code in REASON_CODES} == dict.fromkeys(REASON_CODES, 0)
        assert counts["rejected.MALFORMED_PAYLOAD"] > 0  # the injected faults are still refused as malformed
        normalized += counts["normalized"]
    assert normalized > 14_000
