"""Reconciliation: our ``fills`` against the venue's drop copy (``exec.reports``) -> ``recon.breaks``, ``recon.status``.

Inputs, in rank order: ``fills`` and ``exec.reports``, both keyed by account and co-partitioned (task ``p``
reads partition ``p`` of each). Outputs: ``recon.breaks`` (keyed by account), ``recon.status`` (keyed
``venue:V|task:P``, compacted: one current status per venue and task; a venue's overall state is the worst
of its tasks') and, at most once per venue and task, a signed ``Halt`` on ``ops.commands`` (key ``global``).

Matching. A fill and a report are the same execution when the report's ``exec_id`` is the fill's
``fill_id`` (the internal matching engine is the venue: its drop copy echoes the execution id it assigned).
Only ``PARTIAL_FILL`` / ``FILL`` reports are executions; other exec types are counted and ignored. A matched
pair whose side, quantity or price differ is a ``SIDE_MISMATCH`` / ``QTY_MISMATCH`` / ``PRICE_MISMATCH``
break (one per field).

Event time. The task's clock is the largest of its fills' ``ts_ns`` and its reports' ``recv_ts_ns``
(never the wall clock). Each side waits ``match_window_ns`` for the other: when the clock passes
``time + window`` (strictly), a fill still alone is a ``MISSING_VENUE`` break and a report still alone is a
``MISSING_INTERNAL`` break (an unknown execution). Windows close only as this task's own records move its
clock, so at the end of a finite input the last window's executions are *pending* (counted, not broken).

Late. A report that arrives after its fill's window closed heals that ``MISSING_VENUE`` break: the
break stays on the log (the audit sees the gap), the venue's open breaks go down by one, and the pair is
then compared like any other (counters ``late`` and ``healed``). A fill arriving after its report's window
heals the ``MISSING_INTERNAL`` break the same way. A report within the window is simply matched: reports
always trail fills, so the window *is* the tolerance. Mismatches never heal: they need an operator.

Status and halt. Per venue and task: ``IN_SYNC`` with no open breaks, ``DIVERGED`` with 1..``halt_threshold``
open breaks, and ``HALTED`` once they exceed the threshold: the reconciler then publishes a ``Halt`` of every
instrument, signed with its own key (:mod:`streams.ops.signing`, operator ``operator_id``), and stays HALTED
(an operator's ``Resume`` reopens trading; the reconciler's state is reset by restarting it from scratch).
A status record is emitted when a venue's (state, open breaks) after an input differs from the last one
emitted, and when a venue is first seen (a break raised and healed by the same input leaves no status).
``checked_through_ts_ns``: every execution up to that event time is matched or broken.

Dead letters (stable reason codes): ``DUPLICATE_FILL`` (a fill id seen before and not yet reported),
``BAD_REPORT`` (an execution without a price or with quantity <= 0, or a duplicate unmatched exec id),
``UNEXPECTED_SCHEMA``.
"""

from streams.processors.reconcile.config import ReconcileConfig
from streams.processors.reconcile.processor import BREAK_KINDS, REASON_CODES, ReconcileProcessor

__all__ = ["BREAK_KINDS", "REASON_CODES", "ReconcileConfig", "ReconcileProcessor"]
