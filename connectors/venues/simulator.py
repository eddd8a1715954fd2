"""The deterministic feed simulator: N venues x M symbols x E events, with injected faults.

:class:`Simulation` is pure. It reads no clock and draws only from ``random.Random``
instances seeded with strings such as ``f"{seed}:{venue}"`` (stable across processes
and platforms), so the same :class:`SimConfig` always yields the same records, byte for
byte. Publishing them is :mod:`connectors.venues.publish`'s job.

Per venue, in order:

1. the market (:mod:`connectors.venues.market`) draws events on the simulation clock. Each event
   goes out on one of the venue's *channels* -- the partition of ``md.raw.<venue>`` its key
   hashes to (``murmur2(key) % channels``; ``channels`` defaults to that topic's partition count
   in ``infra/topics.yaml``) -- and consumes that channel's next sequence number: every channel
   numbers its messages ``1, 2, 3, ...`` on its own, as real venues do per multicast channel;
2. faults, each from its own seeded stream, so changing one rate leaves the others' picks alone:
   ``gap`` -- the message is lost (its sequence number never arrives on its channel);
   ``malformed`` -- the payload is corrupted (truncated, garbage, or a bad checksum / bad field), always
   so that the venue's codec rejects it;
   ``reorder`` -- the message is held back and delivered right after the next message of its channel;
   ``dup`` -- the message is received twice (same bytes, same sequence number);
3. receive times: ``recv_ts_ns`` = event time + a seeded latency (30-80 us), but never sooner than a
   short wire time (0.2-0.8 us) after the previous message: the handler reads one message at a time,
   so during bursts messages queue and ``recv_ts_ns`` strictly increases per venue.

Venues are merged by receive time (ties by roster order). Each record is
``(topic="md.raw.<venue>", key=symbol bytes (the venue name for venue-wide messages),
timestamp_ns=recv_ts_ns, value=RawVenueMessage dict)``.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

from connectors.venues.errors import VenueFormatError
from connectors.venues.events import VenueMessage
from connectors.venues.formats import VENUES, Codec, codec_for
from connectors.venues.instruments import Instrument, RefData
from connectors.venues.market import REGIMES, Fundamentals, VenueMarket
from connectors.venues.universe import MAX_SYMBOLS, universe
from streams.errors import ConfigError
from streams.log.partitioner import partition_for

DEFAULT_START_NS = 1_767_364_200_000_000_000  # 2026-01-02T14:30:00Z, the US cash open
LATENCY_NS = (30_000, 80_000)  # venue -> handler latency, uniform
WIRE_NS = (200, 800)  # the handler reads one message at a time: at least this long after the previous one
RAW_SCHEMA = "hftstream.md.RawVenueMessage"
INSTRUMENTS_TOPIC = "refdata.instruments"


def mean_gap_ns(regime_name: str) -> float:
    """The mean inter-arrival gap of a regime's events (bursts half the time), before any scaling."""
    regime = REGIMES[regime_name]
    quiet = sum(regime.quiet.gap_ns) / 2
    return quiet if regime.burst is None else (quiet + sum(regime.burst.gap_ns) / 2) / 2


def raw_topic(venue: str) -> str:
    """The topic a venue's raw messages go to."""
    return f"md.raw.{venue}"


@dataclass(frozen=True, slots=True)
class SimConfig:
    """What to simulate. Rates are probabilities per message (0..1); ``events`` is the total across venues.

    ``channels``: how many sequence-numbered channels each venue has; ``None`` = the partition
    count of ``md.raw.<venue>`` in the topic catalog, so channel = the partition a record lands on.
    ``span_ns``: stretch (or shrink) every inter-arrival gap so that each venue's events cover about this much
    event time (:meth:`expected_span_ns`); ``None`` = the regime's own gaps (x ``gap_scale``). The event count is the
    same either way; prices walk with the clock, so what the events are follows the longer time.
    """

    venues: int = 3
    symbols: int = 4
    events: int = 10_000
    seed: int = 1
    regime: str = "calm"
    start_ns: int = DEFAULT_START_NS
    gap_rate: float = 0.0
    dup_rate: float = 0.0
    reorder_rate: float = 0.0
    malformed_rate: float = 0.0
    channels: int | None = None
    gap_scale: int = 1  # every inter-arrival gap x this (a slower market for paced runs); 1 = the regime's own
    span_ns: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.venues <= len(VENUES):
            raise ConfigError(f"venues must be between 1 and {len(VENUES)}, got {self.venues}", hint=f"the roster is {', '.join(VENUES)}")
        if not 1 <= self.symbols <= MAX_SYMBOLS:
            raise ConfigError(f"symbols must be between 1 and {MAX_SYMBOLS}, got {self.symbols}")
        if self.events < 0:
            raise ConfigError(f"events must be >= 0, got {self.events}")
        if self.regime not in REGIMES:
            raise ConfigError(f"unknown regime {self.regime!r}", hint=f"use one of: {', '.join(REGIMES)}")
        if self.channels is not None and self.channels < 1:
            raise ConfigError(f"channels must be >= 1, got {self.channels}")
        if self.gap_scale < 1:
            raise ConfigError(f"gap_scale must be >= 1, got {self.gap_scale}")
        if self.span_ns is not None and self.span_ns <= 0:
            raise ConfigError(f"span must be positive, got {self.span_ns} ns", hint="e.g. --span 5m")
        if self.start_ns < 0:
            raise ConfigError(f"start time {self.start_ns} is before the epoch")
        for name in ("gap_rate", "dup_rate", "reorder_rate", "malformed_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ConfigError(f"{name.replace('_', '-')} must be between 0 and 1, got {rate}")

    def natural_span_ns(self) -> int:
        """The expected event time one venue's events take with the regime's own gaps x ``gap_scale`` (mean gap, bursts
        half the time), ignoring ``span_ns``."""
        return max(int(self.events // self.venues * mean_gap_ns(self.regime) * self.gap_scale), 1)

    def gap_ratio(self) -> tuple[int, int]:
        """``(multiplier, divisor)`` applied to every drawn gap (integer arithmetic: the same times on every platform)."""
        if self.span_ns is None:
            return self.gap_scale, 1
        return self.span_ns * self.gap_scale, self.natural_span_ns()

    def expected_span_ns(self) -> int:
        """The expected event time of one venue's events: ``span_ns`` when given, else :meth:`natural_span_ns`."""
        return self.span_ns if self.span_ns is not None else self.natural_span_ns()

    @property
    def venue_names(self) -> tuple[str, ...]:
        """The first ``venues`` names of the roster."""
        return VENUES[: self.venues]


@dataclass
class VenueCounts:
    """What one venue's stream contained. ``events`` = generated; ``messages`` = published (events - gaps + dups)."""

    venue: str
    format: str
    events: int = 0
    messages: int = 0
    trades: int = 0
    quotes: int = 0
    book_deltas: int = 0
    status: int = 0
    heartbeats: int = 0
    gaps: int = 0
    dups: int = 0
    reorders: int = 0
    malformed: int = 0
    first_recv_ts_ns: int | None = None
    last_recv_ts_ns: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON output)."""
        return asdict(self)


_KIND_FIELD = {"trade": "trades", "quote": "quotes", "book": "book_deltas", "status": "status", "heartbeat": "heartbeats"}


class SimRecord(NamedTuple):
    """One record to publish."""

    topic: str
    key: bytes
    timestamp_ns: int
    value: dict[str, Any]


class _Msg(NamedTuple):
    channel: int
    seq: int | None
    symbol: str | None
    ts_ns: int
    payload: bytes


def corrupt(codec: Codec, payload: bytes, rng: random.Random) -> bytes:
    """Damage ``payload`` so that ``codec`` rejects it: truncate it, replace it with garbage, or break one field.

    The third mode is format-specific: a wrong FIX CheckSum, an unparsable ``json-decimal`` time,
    a negative ``json-ticks`` time. The result is checked with ``codec.inspect``; the (astronomically
    unlikely) corruption that still parses is redrawn.
    """
    for _ in range(16):
        mode = rng.choice(("truncate", "garbage", "field"))
        if mode == "truncate":
            out = payload[: rng.randrange(1, len(payload))]
        elif mode == "garbage":
            out = rng.randbytes(rng.randint(8, 48))
        elif codec.format == "fix":
            checksum = int(payload[-4:-1])
            out = payload[:-4] + f"{(checksum + rng.randint(1, 255)) % 256:03d}".encode() + b"\x01"
        elif codec.format == "json-decimal":
            out = payload.replace(b'"ts":"', b'"ts":"T', 1)
        else:
            out = payload.replace(b'"ns":', b'"ns":-', 1)
        try:
            codec.inspect(out)
        except VenueFormatError:
            return out
    return b"\x00"


class Simulation:
    """One simulation run. Iterate :meth:`records` once; :attr:`counts` is complete when it is exhausted."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.listings = universe(config.symbols)
        self.instruments: list[Instrument] = [li.instrument for li in self.listings]
        self.refdata = RefData(self.instruments)
        self.counts: dict[str, VenueCounts] = {
            v: VenueCounts(v, codec_for(v).format) for v in config.venue_names
        }
        self.channels: dict[str, int] = {v: config.channels or venue_channels(v) for v in config.venue_names}
        self._used = False

    def instrument_records(self) -> list[SimRecord]:
        """The ``hftstream.refdata.Instrument`` records (published before any market data)."""
        ts = self.config.start_ns
        return [
            SimRecord(INSTRUMENTS_TOPIC, inst.symbol.encode(), ts, inst.to_record(ts)) for inst in self.instruments
        ]

    def records(self) -> Iterator[SimRecord]:
        """Every venue's raw messages, merged by receive time (ties by roster order)."""
        if self._used:
            raise RuntimeError("a Simulation's records can be iterated once; build a new Simulation")
        self._used = True
        cfg = self.config
        fundamentals = Fundamentals(cfg.seed, self.listings, cfg.start_ns)
        names = cfg.venue_names
        base, extra = divmod(cfg.events, len(names))
        streams = [self._venue(v, base + (1 if i < extra else 0), fundamentals) for i, v in enumerate(names)]
        return heapq.merge(*streams, key=lambda r: r.timestamp_ns)

    # -- one venue --------------------------------------------------------------------------

    def _venue(self, venue: str, n_events: int, fundamentals: Fundamentals) -> Iterator[SimRecord]:
        cfg, counts = self.config, self.counts[venue]
        codec = codec_for(venue)
        latency = random.Random(f"{cfg.seed}:{venue}:latency")
        stream = self._delivered(venue, codec, n_events, fundamentals)
        topic, last = raw_topic(venue), -1
        for msg in stream:
            recv = max(last + latency.randint(*WIRE_NS), msg.ts_ns + latency.randint(*LATENCY_NS))
            last = recv
            counts.messages += 1
            if counts.first_recv_ts_ns is None:
                counts.first_recv_ts_ns = recv
            counts.last_recv_ts_ns = recv
            value = {
                "venue": venue,
                "format": codec.format,
                "seq": msg.seq,
                "recv_ts_ns": recv,
                "symbol": msg.symbol,
                "payload": msg.payload,
            }
            yield SimRecord(topic, (msg.symbol or venue).encode(), recv, value)

    def _generated(self, venue: str, codec: Codec, n_events: int, fundamentals: Fundamentals) -> Iterator[_Msg]:
        """Market events -> encoded messages, minus gaps, with malformed payloads injected."""
        cfg, counts = self.config, self.counts[venue]
        market = VenueMarket(venue, self.listings, fundamentals, REGIMES[cfg.regime], random.Random(f"{cfg.seed}:{venue}"),
                             *cfg.gap_ratio())
        gaps = random.Random(f"{cfg.seed}:{venue}:gap")
        malformed = random.Random(f"{cfg.seed}:{venue}:malformed")
        n_channels = self.channels[venue]
        channel_of: dict[bytes, int] = {}
        last_seq = [0] * n_channels
        t = cfg.start_ns
        for _ in range(n_events):
            t, event = market.next_event(t)
            counts.events += 1
            kind_field = _KIND_FIELD[event.kind]
            setattr(counts, kind_field, getattr(counts, kind_field) + 1)
            key = (event.symbol or venue).encode()
            channel = channel_of.get(key)
            if channel is None:
                channel = channel_of[key] = partition_for(key, n_channels)
            last_seq[channel] += 1
            seq = last_seq[channel] if codec.sequenced else None
            if cfg.gap_rate and gaps.random() < cfg.gap_rate:
                counts.gaps += 1
                continue
            payload = codec.encode(VenueMessage(seq, event), self.refdata)
            if cfg.malformed_rate and malformed.random() < cfg.malformed_rate:
                payload = corrupt(codec, payload, malformed)
                counts.malformed += 1
            yield _Msg(channel, seq, event.symbol, t, payload)

    def _delivered(self, venue: str, codec: Codec, n_events: int, fundamentals: Fundamentals) -> Iterator[_Msg]:
        """Apply reorders (held back behind the next message of the same channel) and duplicates (received twice)."""
        cfg, counts = self.config, self.counts[venue]
        reorder = random.Random(f"{cfg.seed}:{venue}:reorder")
        dup = random.Random(f"{cfg.seed}:{venue}:dup")

        def swapped() -> Iterator[_Msg]:
            held: dict[int, _Msg] = {}  # channel -> the message waiting for its channel's next one
            for msg in self._generated(venue, codec, n_events, fundamentals):
                late = held.pop(msg.channel, None)
                if late is not None:
                    counts.reorders += 1
                    yield msg
                    yield late
                elif cfg.reorder_rate and reorder.random() < cfg.reorder_rate:
                    held[msg.channel] = msg
                else:
                    yield msg
            for channel in sorted(held):  # nothing came after them on their channel: delivered in order
                yield held[channel]

        for msg in swapped():
            yield msg
            if cfg.dup_rate and dup.random() < cfg.dup_rate:
                counts.dups += 1
                yield msg


def venue_channels(venue: str) -> int:
    """How many channels ``venue`` has by default: the partition count of ``md.raw.<venue>`` in the topic catalog."""
    from streams.topics import load_catalog

    return load_catalog().spec_for(raw_topic(venue)).partitions


def simulate(config: SimConfig) -> Iterator[SimRecord]:
    """Every raw venue record of ``config``: ``(topic, key, timestamp_ns, RawVenueMessage dict)``, in receive order.

    Use :class:`Simulation` directly to also get the per-venue counts.
    """
    return Simulation(config).records()


def instruments(config: SimConfig) -> list[Instrument]:
    """The instruments ``config``'s simulation trades (published to ``refdata.instruments`` before market data)."""
    return [li.instrument for li in universe(config.symbols)]
