"""The ledger: ``fills`` -> a double-entry journal on ``ledger.entries`` and marked positions on ``positions``.

Inputs, in rank order: ``refdata.instruments`` (global: the scales and currency of every symbol), ``fills``
(keyed by account: task ``p`` reads partition ``p``) and ``md.normalized`` (global: trades and quotes are
the marks). Outputs: ``ledger.entries`` keyed by account, and ``positions`` keyed ``account|symbol``
(compacted: the latest value is the position).

Per fill (:mod:`.journal`): one journal ``fill:<fill_id>`` of four postings (position and cash against the
venue's clearing account) plus two for a non-zero fee, summing to zero per asset; and the position
(:mod:`.book`: average cost, realized PnL gross of fees, ``fees_paid``, the latest mark and unrealized PnL).
Money amounts are exact at the instrument's ``price_scale + size_scale``; quantities at ``size_scale``.
Fees come from :class:`~.config.FeeSchedule` (``infra/fees.yaml``), by venue and the fill's liquidity,
rounded toward +infinity.

Marks. A ``Trade`` marks its symbol at its price; a two-sided ``Quote`` at its mid rounded down; others
(one-sided quotes, book deltas, status, heartbeats) are ignored. A mark re-emits the symbol's open positions
at most once per ``remark_interval_ns`` of event time (the mark's ``recv_ts_ns``).

Invariants (:meth:`LedgerProcessor.check_invariants`, called by the runtime before every commit): every
journal balances, the running debit and credit totals agree per (asset, scale), and each position changed
since the last check equals the sum of its fills (quantity, and ``realized - cost`` = the cash its fills
moved) and the balance of its ``A:pos:SYM`` ledger account. A violation raises
:class:`LedgerInvariantError` naming the record (topic/partition@offset and fill id): the runtime stops
without committing. Nothing is ever corrected.

Dead letters (stable reason codes): ``UNKNOWN_SYMBOL`` (a fill before its instrument), ``BAD_FILL``
(quantity or price not > 0), ``AMOUNT_OVERFLOW`` (a notional, fee or position field beyond int64),
``BAD_REFDATA`` (scales outside 0..18), ``SCALE_CHANGE`` (an instrument changes its scales or currency while
the task holds positions in it), ``UNEXPECTED_SCHEMA``. A rejected input changes nothing.
"""

from streams.processors.ledger.config import FeeRates, FeeSchedule, LedgerConfig
from streams.processors.ledger.processor import REASON_CODES, LedgerInvariantError, LedgerProcessor

__all__ = ["REASON_CODES", "FeeRates", "FeeSchedule", "LedgerConfig", "LedgerInvariantError", "LedgerProcessor"]
