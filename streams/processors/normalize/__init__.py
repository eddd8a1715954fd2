"""Normalization: ``md.raw.<venue>`` (three wire formats) -> canonical market data on ``md.normalized``.

Inputs, in rank order: ``refdata.instruments`` (global: every task reads all of it) and
``md.raw.*`` (keyed: task ``p`` reads partition ``p`` of every venue topic). Output:
``md.normalized`` keyed by symbol (venue-wide records by venue name): ``Trade``, ``Quote``,
``BookDelta``, ``VenueStatus`` and ``Heartbeat``, prices and sizes as int64 scaled by the
instrument's ``price_scale`` / ``size_scale``.

Parsing is the venue codecs' (:mod:`connectors.venues.formats`): the payload is decoded with
the reference data this task has seen so far, then judged against the instrument's grid
and for sanity. Nothing is ever rounded: a value that does not sit on the grid or fit the scale is a dead letter.

Dead letters (:class:`~streams.processors.base.Reject` reason codes, stable)::

    MALFORMED_PAYLOAD  the payload is not valid in its format (the codec's cause is the reason text),
                       or a quote has a size on a side without a price
    UNKNOWN_SYMBOL     the symbol (or json-ticks instrument id) is not in refdata.instruments yet
    UNKNOWN_FORMAT     the record names a wire format no codec reads
    EXCEEDS_SCALE      a price or size has more decimal places than the instrument's scale, or its
                       scaled value does not fit in int64
    OFF_TICK           a price that is not a multiple of the instrument's tick_size
    OFF_LOT            a size that is not a multiple of the instrument's lot_size
    SEQ_MISMATCH       the record's seq and the sequence number inside the payload differ
    BAD_REFDATA        an Instrument whose scales are outside 0..18 or whose tick/lot size is not > 0
    UNEXPECTED_SCHEMA  an input whose value is neither RawVenueMessage nor Instrument

    and what the grid accepts but no market prints (:mod:`connectors.venues.sanity`, DECISIONS #41):

    NON_POSITIVE_PRICE a trade, quoted side or book level at a price <= 0
    NON_POSITIVE_SIZE  a trade, quoted side or book ADD/CHANGE of size 0 (a locked quote is accepted,
                       counted in ``locked_quotes``)
    CROSSED_QUOTE      bid > ask
    PRICE_OUT_OF_BAND  more than ``price_band_pct`` (50%) from the symbol's last accepted trade

Sequencing (:mod:`.sequencing`). Each partition of a venue topic is one of the venue's
*channels*, numbered ``1, 2, 3, ...`` on its own; the record's ``seq`` is judged per
``(topic, partition)``. Venues without sequence numbers (``seq`` null) cannot show gaps or
reordering; there a payload identical, byte for byte, to the channel's previous one is the
only duplicate recognised (payloads carry nanosecond event times, so distinct messages differ).

* duplicate (a number already seen) -- suppressed before parsing: no output and no dead letter
  (a resend is normal feed behaviour, not bad input); counted in ``duplicates``;
* gap (a number above the next expected) -- a ``VenueStatus`` with ``feed_state`` GAPPED naming
  the missing numbers, then the message itself; counted in ``gaps`` (events) and
  ``gap_messages`` (numbers);
* out of order (below the next expected, inside an open gap) -- a late message: accepted and
  normalized, the gap narrowed; counted in ``out_of_order``. When the channel's last open gap
  closes -- filled, or given up after ``reorder_window`` numbers (counted in ``lost``) -- a
  ``VenueStatus`` HEALTHY follows. A late message older than the window counts as a duplicate.

A dead-lettered message still *arrived*: its number is marked seen (so it does not look like a
gap) and it counts for liveness. Status records such an input causes are emitted with the next
input that is not rejected (they are kept in the snapshot meanwhile); the rejected input
itself has no output, as the contract requires.

Staleness. The task's event-time clock is the largest ``recv_ts_ns`` it has seen (the exact
value in the record, never the log timestamp, which Kafka rounds to ms, and never the wall
clock). When the clock is more than ``stale_after_ns`` past a channel's last message (any
message, heartbeats included), a ``VenueStatus`` STALE is emitted for it, once; the channel's
next message brings HEALTHY (or GAPPED if a gap is still open). Feed-health records carry
``feed_state`` and ``channel``, the venue-wide trading status last seen (OPEN until the venue
says otherwise) in ``status``, and the receive time of the message that revealed the change in
both time fields.

Counters (:meth:`NormalizeProcessor.counters`): ``normalized``, ``refdata``, ``duplicates``,
``gaps``, ``gap_messages``, ``out_of_order``, ``lost``, ``stale`` and ``rejected.<CODE>`` for
every code above. They are part of the snapshot.
"""

from streams.processors.normalize.config import NormalizeConfig
from streams.processors.normalize.processor import NormalizeProcessor
from streams.processors.normalize.rules import REASON_CODES

__all__ = ["REASON_CODES", "NormalizeConfig", "NormalizeProcessor"]
