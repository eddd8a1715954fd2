"""The feed simulator is pure and deterministic; regimes shape the event mix; faults arrive at the requested rates."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from statistics import mean, pstdev

import pytest

from connectors.venues.errors import VenueFormatError
from connectors.venues.events import BookDelta, Quote, Trade
from connectors.venues.formats import codec_for
from connectors.venues.simulator import DEFAULT_START_NS, SimConfig, Simulation, instruments, simulate
from connectors.venues.universe import universe
from streams.log.partitioner import partition_for
from streams.errors import ConfigError


def _run(**kw):
    sim = Simulation(SimConfig(**kw))
    return sim, list(sim.records())


def _decoded(sim, records):
    """(venue, VenueMessage) for every record whose payload decodes."""
    out = []
    for rec in records:
        v = rec.value
        try:
            out.append((v["venue"], codec_for(v["venue"]).decode(v["payload"], sim.refdata)))
        except VenueFormatError:
            pass
    return out


def test_same_config_gives_identical_records_and_counts():
    cfg = dict(venues=4, symbols=6, events=4000, seed=42, regime="burst", gap_rate=0.02, dup_rate=0.02, reorder_rate=0.02, malformed_rate=0.02)
    sim1, a = _run(**cfg)
    sim2, b = _run(**cfg)
    assert a == b and len(a) > 3900
    assert sim1.counts == sim2.counts
    assert list(simulate(SimConfig(**cfg))) == a
    assert instruments(SimConfig(**cfg)) == sim1.instruments and len(sim1.instruments) == 6
    _, c = _run(**(cfg | {"seed": 43}))
    assert c != a
    assert [r.value["payload"] for r in c[:50]] != [r.value["payload"] for r in a[:50]]


def test_generator_never_reads_the_wall_clock(monkeypatch):
    def boom(*_a):
        raise AssertionError("the simulator read the wall clock")

    for name in ("time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns"):
        monkeypatch.setattr(time, name, boom)
    _, records = _run(venues=3, symbols=3, events=600, seed=1)
    assert records[0].timestamp_ns >= DEFAULT_START_NS


def test_events_are_split_across_venues_and_times_come_from_the_simulation_clock():
    start = 1_700_000_000_000_000_000
    sim, records = _run(venues=3, symbols=4, events=1000, seed=3, start_ns=start)
    assert [c.events for c in sim.counts.values()] == [334, 333, 333]
    assert sum(c.messages for c in sim.counts.values()) == len(records) == 1000
    by_topic = defaultdict(list)
    for rec in records:
        assert rec.timestamp_ns == rec.value["recv_ts_ns"] and rec.timestamp_ns > start
        assert rec.key == (rec.value["symbol"] or rec.value["venue"]).encode()
        by_topic[rec.topic].append(rec.timestamp_ns)
    assert sorted(by_topic) == ["md.raw.alpha", "md.raw.bravo", "md.raw.charlie"]
    for stamps in by_topic.values():
        assert all(a < b for a, b in zip(stamps, stamps[1:])), "recv_ts_ns strictly increases per venue"
    assert [r.timestamp_ns for r in records] == sorted(r.timestamp_ns for r in records)
    for venue, msg in _decoded(sim, records):  # latency: received after the venue stamped it
        assert msg.event.exchange_ts_ns > start
    assert all(isinstance(v["seq"], int) for r in records if (v := r.value)["format"] != "json-decimal")
    assert all(r.value["seq"] is None for r in records if r.value["format"] == "json-decimal")


def test_prices_are_scaled_ints_on_the_tick_grid_and_books_never_cross():
    sim, records = _run(venues=3, symbols=5, events=9000, seed=11, regime="cancel-storm")
    insts = {i.symbol: i for i in sim.instruments}
    books = defaultdict(lambda: {"BUY": {}, "SELL": {}})
    for venue, msg in _decoded(sim, records):
        ev = msg.event
        if isinstance(ev, (Trade, Quote, BookDelta)):
            inst = insts[ev.symbol]
            for name in ("price", "bid_price", "ask_price"):
                value = getattr(ev, name, None)
                if value is not None:
                    assert type(value) is int and value > 0 and value % inst.tick_size == 0
            for name in ("size", "bid_size", "ask_size"):
                value = getattr(ev, name, None)
                if value is not None:
                    assert type(value) is int and value % inst.lot_size == 0
        if isinstance(ev, Quote):
            assert ev.bid_price < ev.ask_price
        if isinstance(ev, BookDelta):
            book = books[venue, ev.symbol]
            side = book[ev.side]
            if ev.action == "ADD":
                assert ev.price not in side
                side[ev.price] = ev.size
            elif ev.action == "CHANGE":
                assert ev.price in side
                side[ev.price] = ev.size
            else:
                assert side.pop(ev.price) > 0 and ev.size == 0
            if book["BUY"] and book["SELL"]:
                assert max(book["BUY"]) < min(book["SELL"]), "book crossed"
    assert len(books) == 15


def test_universe_mixes_price_scales_and_keeps_ids_stable():
    two = universe(2)
    assert len({li.instrument.price_scale for li in two}) == 2
    assert [li.instrument.symbol for li in universe(25)][:2] == [li.instrument.symbol for li in two]
    names = [li.instrument.symbol for li in universe(25)]
    assert names[0] == "AAPL" and names[-1] == "SYN0025" and len(set(names)) == 25
    assert [li.instrument.instrument_id for li in universe(25)] == [str(i) for i in range(1, 26)]


def _mix(regime):
    sim, records = _run(venues=2, symbols=4, events=12_000, seed=5, regime=regime)
    kinds = Counter()
    actions = Counter()
    for _, msg in _decoded(sim, records):
        kinds[msg.event.kind] += 1
        if isinstance(msg.event, BookDelta):
            actions[msg.event.action] += 1
    total = sum(kinds.values())
    gaps = {}
    for rec in records:
        gaps.setdefault(rec.topic, []).append(rec.timestamp_ns)
    inter = [b - a for ts in gaps.values() for a, b in zip(ts, ts[1:])]
    return {k: kinds[k] / total for k in ("quote", "trade", "book", "status", "heartbeat")}, actions, inter


def test_regimes_change_the_event_mix_measurably():
    calm, calm_actions, calm_gaps = _mix("calm")
    burst, _, burst_gaps = _mix("burst")
    storm, storm_actions, storm_gaps = _mix("cancel-storm")
    # calm: mostly quotes, some trades, steady arrivals
    assert calm["quote"] > 0.5 and 0.05 < calm["trade"] < 0.2
    assert pstdev(calm_gaps) / mean(calm_gaps) < 0.7  # near-uniform inter-arrival times
    # burst: clustered arrivals (inter-arrival spread far above its mean) and more trades
    def short(gaps):
        return sum(1 for g in gaps if g < 20_000) / len(gaps)

    assert short(calm_gaps) == 0 and short(burst_gaps) > 0.15
    assert pstdev(burst_gaps) / mean(burst_gaps) > 1.2 * pstdev(calm_gaps) / mean(calm_gaps)
    assert burst["trade"] > 1.5 * calm["trade"]
    # cancel-storm: adds and deletes dominate
    assert storm["book"] > 0.8 and storm["quote"] < 0.15
    churn = storm_actions["ADD"] + storm_actions["DELETE"]
    calm_churn = calm_actions["ADD"] + calm_actions["DELETE"]
    assert churn / sum(storm_actions.values()) > 0.85 > 0.6 > calm_churn / sum(calm_actions.values())
    assert mean(storm_gaps) < mean(calm_gaps)


RATE = 0.04


@pytest.mark.parametrize("fault", ["gap", "dup", "reorder", "malformed"])
def test_each_fault_rate_alone_is_roughly_honoured(fault):
    sim, records = _run(venues=3, symbols=4, events=15_000, seed=9, **{f"{fault}_rate": RATE})
    counts = list(sim.counts.values())
    injected = sum(getattr(c, fault + "s" if fault != "malformed" else fault) for c in counts)
    expected = RATE * 15_000
    assert 0.75 * expected < injected < 1.25 * expected, (fault, injected, expected)
    others = {"gap": "gaps", "dup": "dups", "reorder": "reorders", "malformed": "malformed"}
    for other, attr in others.items():
        if other != fault:
            assert sum(getattr(c, attr) for c in counts) == 0


def test_injected_faults_are_visible_in_the_data_exactly_as_counted():
    sim, records = _run(venues=3, symbols=4, events=15_000, seed=12, gap_rate=0.03, dup_rate=0.03, reorder_rate=0.03, malformed_rate=0.03)
    per_venue = defaultdict(list)
    for rec in records:
        per_venue[rec.value["venue"]].append(rec.value)
    for venue, values in per_venue.items():
        counts = sim.counts[venue]
        codec = codec_for(venue)
        assert len(values) == counts.messages == counts.events - counts.gaps + counts.dups
        # duplicates arrive right after the original: same bytes, same seq
        deduped = [values[0]]
        dups = 0
        for v in values[1:]:
            if (v["payload"], v["seq"]) == (deduped[-1]["payload"], deduped[-1]["seq"]):
                dups += 1
            else:
                deduped.append(v)
        assert dups == counts.dups > 0
        bad = 0
        for v in deduped:
            try:
                codec.inspect(v["payload"])
            except VenueFormatError:
                bad += 1
        assert bad == counts.malformed > 0
        if codec.sequenced:  # each channel (partition of the venue topic) numbers its messages 1, 2, 3, ...
            channels = defaultdict(list)
            for v in deduped:
                channels[partition_for((v["symbol"] or venue).encode(), sim.channels[venue])].append(v["seq"])
            assert len(channels) > 1
            missing = reorders = 0
            for seqs in channels.values():
                assert len(seqs) == len(set(seqs))
                missing += len(set(range(1, max(seqs) + 1)) - set(seqs))  # a lost last message is invisible
                reorders += sum(1 for a, b in zip(seqs, seqs[1:]) if b < a)
            assert missing <= counts.gaps and missing > 0.9 * counts.gaps > 0
            assert reorders == counts.reorders > 0


def test_fault_streams_are_independent_of_each_other():
    """Raising the dup rate must not change which messages are lost or corrupted."""
    a, _ = _run(venues=2, symbols=3, events=3000, seed=4, gap_rate=0.05, malformed_rate=0.05)
    b, _ = _run(venues=2, symbols=3, events=3000, seed=4, gap_rate=0.05, malformed_rate=0.05, dup_rate=0.3)
    for v in a.counts:
        assert (a.counts[v].gaps, a.counts[v].malformed, a.counts[v].trades) == (b.counts[v].gaps, b.counts[v].malformed, b.counts[v].trades)
        assert b.counts[v].dups > a.counts[v].dups == 0


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"venues": 0}, "venues must be between 1 and 8"),
        ({"venues": 9}, "venues must be between 1 and 8"),
        ({"symbols": 0}, "symbols"),
        ({"events": -1}, "events"),
        ({"regime": "panic"}, "unknown regime"),
        ({"gap_rate": 1.5}, "gap-rate"),
        ({"malformed_rate": -0.1}, "malformed-rate"),
    ],
)
def test_bad_config_is_a_config_error_with_a_hint(kw, match):
    with pytest.raises(ConfigError, match=match) as exc:
        SimConfig(**kw)
    assert exc.value.hint


def test_zero_events_and_fewer_events_than_venues():
    sim, records = _run(venues=5, symbols=1, events=3, seed=1)
    assert len(records) == 3 and [c.events for c in sim.counts.values()] == [1, 1, 1, 0, 0]
    assert _run(venues=2, symbols=1, events=0)[1] == []


def test_each_channel_numbers_its_messages_from_one_and_channel_is_the_records_partition():
    sim, records = _run(venues=3, symbols=6, events=3000, seed=8)
    assert sim.channels == {"alpha": 4, "bravo": 4, "charlie": 4}  # md.raw.<venue> partitions in infra/topics.yaml
    seqs = defaultdict(list)
    for rec in records:
        if rec.value["seq"] is not None:
            seqs[rec.topic, partition_for(rec.key, 4)].append(rec.value["seq"])
    assert {topic for topic, _ in seqs} == {"md.raw.bravo", "md.raw.charlie"}  # json-decimal (alpha) has no seq
    assert len(seqs) >= 6  # several channels per venue (a channel no key hashes to stays silent)
    for got in seqs.values():
        assert got == list(range(1, len(got) + 1))
    # one channel per venue: the venue numbers all its messages in one sequence
    sim1, one = _run(venues=3, symbols=6, events=3000, seed=8, channels=1)
    bravo = [r.value["seq"] for r in one if r.topic == "md.raw.bravo"]
    assert sim1.channels["bravo"] == 1 and bravo == list(range(1, 1001))
    with pytest.raises(ConfigError, match="channels must be >= 1"):
        SimConfig(channels=0)


@pytest.mark.parametrize("regime", ["calm", "burst", "cancel-storm"])
def test_span_stretches_the_market_over_that_much_event_time_with_the_same_draws(regime):
    """issue 14 item 8: a demo's market sat in 2.5 s of event time; span_ns spreads as many events over minutes."""
    from dataclasses import replace

    base = SimConfig(venues=2, symbols=3, events=4000, seed=3, regime=regime)
    span = 120 * 1_000_000_000
    plain, long = Simulation(base), Simulation(replace(base, span_ns=span))
    plain_recs, long_recs = list(plain.records()), list(long.records())
    covered = max(r.timestamp_ns for r in long_recs) - base.start_ns
    assert 0.6 * span < covered < 1.4 * span, covered / 1e9
    assert max(r.timestamp_ns for r in plain_recs) - base.start_ns < 0.05 * span
    # the same number of events and messages per venue; only the clock runs slower
    assert {v: (c.events, c.messages) for v, c in plain.counts.items()} == {v: (c.events, c.messages) for v, c in long.counts.items()}
    assert len(plain_recs) == len(long_recs)
    assert replace(base, span_ns=span).expected_span_ns() == span


def test_a_span_of_zero_is_refused():
    with pytest.raises(ConfigError, match="span must be positive"):
        SimConfig(span_ns=0)
