"""The processors: pure, deterministic state machines the runtime runs (contract: :mod:`streams.processors.base`).

``PROCESSORS`` maps each processor's ``name`` to its class; the class's ``config_class`` is its
settings model and its constructor is ``(config, task)``.
"""

from __future__ import annotations

from connectors.dropcopy.processor import DropCopyProcessor
from streams.processors.base import Processor
from streams.processors.ledger import LedgerProcessor
from streams.processors.matching import MatchingProcessor
from streams.processors.normalize import NormalizeProcessor
from streams.processors.reconcile import ReconcileProcessor
from streams.processors.risk import RiskProcessor

# pipeline order: `hftstream run all` ticks them in this order
PROCESSORS: dict[str, type[Processor]] = {
    NormalizeProcessor.name: NormalizeProcessor,
    RiskProcessor.name: RiskProcessor,
    MatchingProcessor.name: MatchingProcessor,
    LedgerProcessor.name: LedgerProcessor,
    DropCopyProcessor.name: DropCopyProcessor,  # the simulated venue's drop copy of matching's fills
    ReconcileProcessor.name: ReconcileProcessor,
}

__all__ = ["PROCESSORS"]
