"""The simulated venue drop copy: execution reports derived from our fills, faults injected by seed.

:func:`drop_copy` is the pure function over a list of fills; :class:`DropCopyProcessor` runs the same
per-fill derivation exactly-once on the runtime (``hftstream run dropcopy``), fills -> ``exec.reports``.
"""

# The registry first: it imports the processor module, which imports streams.processors.base (one order, no cycle).
import streams.processors  # noqa: F401  isort: skip
from connectors.dropcopy.processor import DropCopyProcessor
from connectors.dropcopy.simulator import DropCopyConfig, OrderTotals, Report, drop_copy, fate, reports_for

__all__ = ["DropCopyConfig", "DropCopyProcessor", "OrderTotals", "Report", "drop_copy", "fate", "reports_for"]
