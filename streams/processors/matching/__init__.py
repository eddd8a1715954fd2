"""Matching: ``orders.accepted`` (keyed by symbol) -> one price-time order book per symbol.

Input: the order commands risk accepted (``NewOrder``, ``CancelOrder``, ``ReplaceOrder``), keyed
by symbol; task ``p`` owns the books of the symbols of partition ``p``. Outputs: order events
(``OrderAccepted``, ``OrderRejected``, ``OrderCancelRejected``, ``OrderRested``,
``OrderPartiallyFilled``, ``OrderFilled``, ``OrderCancelled``, ``OrderExpired``) to ``order.events`` and one ``Fill`` per
side per match to ``fills``, both keyed by account; market-by-price ``BookDelta`` and ``Trade``
to ``md.book``, keyed by symbol.

* :mod:`.orders` -- the order record and its state machine; the stable reason codes.
* :mod:`.book` -- one symbol's book: price-time priority, lazily deleted heaps, level sizes.
* :mod:`.engine` -- the rules: order types, cancel/replace, self-trade prevention, expiry, ids,
  conservation (the rules and reason codes are in its docstring).
* :mod:`.events` -- the output records and how ids are made.
* :mod:`.processor` -- the runtime contract: dispatch, snapshot/restore, invariants.
"""

from streams.processors.matching.config import MatchingConfig
from streams.processors.matching.processor import MatchingProcessor

__all__ = ["MatchingConfig", "MatchingProcessor"]
