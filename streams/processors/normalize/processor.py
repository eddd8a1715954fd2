"""The normalization processor: raw venue messages in, canonical market data out (see the package docstring)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from connectors.venues.errors import VenueFormatError
from connectors.venues.events import Heartbeat, StatusChange
from connectors.venues.formats import Codec, codec_for
from connectors.venues.instruments import Instrument, RefData
from connectors.venues.sanity import Sanity
from streams.errors import ConfigError, PoisonError
from streams.processors.base import Input, Message, Output, Processor, Reject, Result, dump_state, load_state
from streams.processors.normalize import rules
from streams.processors.normalize.config import NormalizeConfig
from streams.processors.normalize.sequencing import DUP, GAP, GAPPED, HEALTHY, LATE, STALE, Channel

OUTPUT_TOPIC = "md.normalized"
REFDATA_TOPIC = "refdata.instruments"
SNAPSHOT_VERSION = 1


class NormalizeProcessor(Processor):
    """Task ``task`` of the normalizer: partition ``task`` of every ``md.raw.<venue>`` plus all reference data."""

    name: ClassVar[str] = "normalize"
    config_class: ClassVar[type[NormalizeConfig]] = NormalizeConfig

    def __init__(self, config: NormalizeConfig, task: int) -> None:
        self.config = config
        self.task = task
        self.inputs = (Input(REFDATA_TOPIC, scope="global"), Input("md.raw.*"))
        self.outputs = (OUTPUT_TOPIC,)
        self._stale_after = config.stale_after_ns
        self._window = config.reorder_window
        self._max_open = config.max_open_gaps
        self._codecs: dict[tuple[str, str], Codec | None] = {}
        self._reset()

    def _reset(self) -> None:
        self._ref = RefData(())
        self._records: dict[str, dict[str, Any]] = {}  # symbol -> its Instrument value (what snapshots keep)
        self._channels: dict[tuple[str, int], Channel] = {}
        self._trading: dict[str, str] = {}  # venue -> its last venue-wide trading status seen by this task
        self._clock = -1  # event time: the largest recv_ts_ns seen in the task
        self._stale_due = 1 << 63  # no channel can turn stale before the clock passes this
        self._pending: list[Output] = []  # status records caused by a rejected input, emitted with the next input
        self._normalized = 0
        self._stale = 0
        self._refdata = 0
        self._rejected: dict[str, int] = dict.fromkeys(rules.REASON_CODES, 0)
        self._sanity = Sanity(self.config.price_band_pct)  # reference prices per symbol (DECISIONS #41)

    # -- the contract ----------------------------------------------------------------------

    def process(self, msg: Message) -> list[Output]:
        """Outputs for one input; raises :class:`Reject` for one that belongs in ``dlq.normalize``."""
        try:
            return self._dispatch(msg)
        except Reject as exc:
            self._rejected[exc.reason_code] += 1
            raise

    def process_batch(self, msgs: Sequence[Message]) -> list[Result]:
        """:meth:`process` for each input, without the generic per-record overhead."""
        out: list[Result] = []
        append, raw, dispatch, rejected = out.append, self._raw, self._dispatch, self._rejected
        for msg in msgs:
            try:
                append(raw(msg) if msg.schema == rules.RAW else dispatch(msg))
            except Reject as exc:
                rejected[exc.reason_code] += 1
                append(exc)
            except PoisonError as exc:
                append(exc)
        return out

    def _dispatch(self, msg: Message) -> list[Output]:
        if msg.schema == rules.RAW:
            return self._raw(msg)
        if msg.schema == rules.INSTRUMENT:
            return self._instrument(msg)
        raise Reject(rules.UNEXPECTED_SCHEMA, f"{msg.topic} carries {msg.schema}; normalize reads {rules.RAW} and {rules.INSTRUMENT}")

    def snapshot(self) -> bytes:
        """Reference data, every channel's sequencing and liveness, the clock, pending outputs and counts, as sorted JSON."""
        state = {
            "version": SNAPSHOT_VERSION,
            "instruments": [self._records[s] for s in sorted(self._records)],
            "channels": [self._channels[k].to_json() for k in sorted(self._channels)],
            "trading": self._trading,
            "clock": self._clock,
            "pending": [list(o) for o in self._pending],
            "counts": {"normalized": self._normalized, "stale": self._stale, "refdata": self._refdata, "rejected": self._rejected},
        }
        sanity = self._sanity
        if sanity.reference or sanity.locked:  # absent until first used: snapshots of older states keep their bytes
            state["reference_prices"] = dict(sorted(sanity.reference.items()))
            state["locked_quotes"] = sanity.locked
        return dump_state(state)

    def restore(self, blob: bytes) -> None:
        """Replace the whole state with a :meth:`snapshot` blob (empty bytes = the initial state)."""
        self._reset()
        if not blob:
            return
        state = load_state(blob, "normalize", SNAPSHOT_VERSION)
        for value in state["instruments"]:
            self._put_instrument(value)
        for row in state["channels"]:
            ch = Channel.from_json(row)
            self._channels[ch.topic, ch.partition] = ch
        self._trading = dict(state["trading"])
        self._clock = state["clock"]
        self._pending = [Output(*row) for row in state["pending"]]
        counts = state["counts"]
        self._normalized, self._stale, self._refdata = counts["normalized"], counts["stale"], counts["refdata"]
        self._rejected.update(counts["rejected"])
        self._sanity.reference.update(state.get("reference_prices", {}))
        self._sanity.locked = state.get("locked_quotes", 0)
        self._stale_due = self._next_stale_due()

    def counters(self) -> dict[str, int]:
        """Counts since the state began (they survive snapshot/restore), for the runtime's metrics."""
        chans = self._channels.values()
        out = {
            "normalized": self._normalized,
            "refdata": self._refdata,
            "duplicates": sum(c.duplicates for c in chans),
            "gaps": sum(c.gaps for c in chans),
            "gap_messages": sum(c.gap_messages for c in chans),
            "out_of_order": sum(c.out_of_order for c in chans),
            "lost": sum(c.lost for c in chans),
            "stale": self._stale,
            "locked_quotes": self._sanity.locked,
        }
        out.update({f"rejected.{code}": n for code, n in self._rejected.items()})
        return out

    # -- reference data --------------------------------------------------------------------

    def _instrument(self, msg: Message) -> list[Output]:
        value = msg.value
        if value is None:  # a tombstone on the compacted topic: the instrument is gone
            if msg.key is not None:
                symbol = msg.key.decode("utf-8", "replace")
                self._records.pop(symbol, None)
                self._ref.remove(symbol)
            return []
        problem = rules.instrument_problem(value)
        if problem:
            raise Reject(rules.BAD_REFDATA, f"instrument {value['symbol']!r}: {problem}")
        self._put_instrument(value)
        self._refdata += 1
        return []

    def _put_instrument(self, value: dict[str, Any]) -> None:
        self._records[value["symbol"]] = value
        self._ref.put(Instrument.from_record(value))

    # -- venue messages --------------------------------------------------------------------

    def _codec(self, venue: str, fmt: str) -> Codec:
        key = (venue, fmt)
        codec = self._codecs.get(key)
        if codec is None:
            try:
                codec = self._codecs[key] = codec_for(venue, fmt)
            except ConfigError:
                raise Reject(rules.UNKNOWN_FORMAT, f"venue {venue!r}: no codec reads format {fmt!r}") from None
        return codec

    def _raw(self, msg: Message) -> list[Output]:
        v = msg.value
        venue, seq, recv = v["venue"], v["seq"], v["recv_ts_ns"]
        ch = self._channels.get((msg.topic, msg.partition))
        if ch is None:
            ch = self._channels[msg.topic, msg.partition] = Channel(msg.topic, msg.partition, venue)
        if ch.state == STALE or ch.last_recv < 0:  # the channel (re)joins the live ones: its deadline may be the next
            self._stale_due = min(self._stale_due, recv + self._stale_after)
        statuses: list[Output] = []
        # 1. Arrival: sequencing and liveness. Every arriving message counts here, rejected ones too:
        #    a message that reached the dead-letter topic was not lost, so it must not look like a gap.
        silence = recv - ch.last_recv
        if recv > ch.last_recv:
            ch.last_recv = recv
        verdict = -1
        if seq is not None:
            expected = ch.next_seq
            verdict = ch.accept(seq, self._window, self._max_open)
            if verdict == GAP:
                n = seq - expected
                span = f"seq {expected}" if n == 1 else f"seq {expected}..{seq - 1}"
                statuses.append(self._status(ch, GAPPED, f"{span} missing ({n} message{'s' if n > 1 else ''})", recv))
        elif ch.repeat(v["payload"]):
            verdict = DUP
        if ch.state != HEALTHY and verdict != GAP:
            now = GAPPED if ch.missing else HEALTHY
            if ch.state == STALE:
                statuses.append(self._status(ch, now, f"message after {silence} ns of silence", recv))
            elif now == HEALTHY:
                why = "gap filled by late messages" if verdict == LATE else "gap closed: missing messages given up as lost"
                statuses.append(self._status(ch, HEALTHY, why, recv))
        # 2. The event-time clock: other channels may have gone quiet for too long.
        if recv > self._clock:
            self._clock = recv
            if recv > self._stale_due:
                self._mark_stale(statuses, recv)
        if verdict == DUP:  # the venue sent it twice (or the transport did): expected, counted, no output
            return self._flush(statuses)
        # 3. The payload.
        try:
            out = self._normalize(v, venue, seq, recv)
        except Reject:
            if statuses:
                self._pending.extend(o._replace(timestamp_ns=msg.timestamp_ns) for o in statuses)
            raise
        self._normalized += 1
        if statuses or self._pending:
            statuses.append(out)
            return self._flush(statuses)
        return [out]

    def _normalize(self, v: dict[str, Any], venue: str, seq: int | None, recv: int) -> Output:
        payload = v["payload"]
        codec = self._codecs.get((venue, v["format"])) or self._codec(venue, v["format"])
        ref = self._ref
        try:
            decoded_seq, cls, f = codec.decode_fields(payload, ref)
        except VenueFormatError as exc:
            raise rules.classify(codec, payload, ref, exc) from None
        if decoded_seq != seq:
            raise Reject(rules.SEQ_MISMATCH, f"venue {venue!r}: the record says seq {seq}, its payload says {decoded_seq}")
        inst = None
        if cls is not Heartbeat:
            symbol = f[0]
            if symbol is not None:
                inst = ref.by_symbol(symbol)
                if inst is None:  # status messages name symbols the codec does not look up
                    raise Reject(rules.UNKNOWN_SYMBOL, f"venue {venue!r}: symbol {symbol!r} is not in refdata.instruments")
            elif cls is StatusChange:
                self._trading[venue] = f[2]
        schema, key, value = rules.judged_record(venue, cls, f, recv, seq, inst, self._sanity)
        return Output(OUTPUT_TOPIC, key, schema, value)

    def _flush(self, outputs: list[Output]) -> list[Output]:
        if self._pending:
            outputs = self._pending + outputs
            self._pending = []
        return outputs

    # -- feed health -----------------------------------------------------------------------

    def _status(self, ch: Channel, state: str, reason: str, recv: int) -> Output:
        ch.state = state
        value = {
            "venue": ch.venue, "symbol": None, "status": self._trading.get(ch.venue, "OPEN"),
            "reason": f"channel {ch.partition}: {reason}", "exchange_ts_ns": recv, "recv_ts_ns": recv,
            "feed_state": state, "channel": ch.partition,
        }
        return Output(OUTPUT_TOPIC, ch.venue, rules.VENUE_STATUS, value)

    def _mark_stale(self, statuses: list[Output], now: int) -> None:
        limit = self._stale_after
        for key in sorted(self._channels):
            ch = self._channels[key]
            if ch.state != STALE and now - ch.last_recv > limit:
                statuses.append(self._status(ch, STALE, f"no message for {now - ch.last_recv} ns (limit {limit} ns)", now))
                self._stale += 1
        self._stale_due = self._next_stale_due()

    def _next_stale_due(self) -> int:
        live = [ch.last_recv for ch in self._channels.values() if ch.state != STALE]
        return min(live) + self._stale_after if live else 1 << 63
