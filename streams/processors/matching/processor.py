"""The matching processor: accepted order commands in, order events, fills, book deltas and trades out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from streams.errors import HftError
from streams.processors.base import Input, Message, Output, Processor, Reject, dump_state, load_state
from streams.processors.matching import events
from streams.processors.matching.config import MatchingConfig
from streams.processors.matching.engine import Engine

INPUT_TOPIC = "orders.accepted"
NEW_ORDER = "hftstream.orders.NewOrder"
CANCEL_ORDER = "hftstream.orders.CancelOrder"
REPLACE_ORDER = "hftstream.orders.ReplaceOrder"
UNEXPECTED_SCHEMA = "UNEXPECTED_SCHEMA"
KEY_MISMATCH = "KEY_MISMATCH"
SNAPSHOT_VERSION = 1


class InvariantViolation(HftError):
    """The matching state broke an invariant (a crossed book at rest, quantity not conserved): a bug."""

    hint = (
        "the engine's state is wrong, so nothing more is committed: keep the log as it is, report the message, "
        "and see RUNBOOK.md 'Processor crashed on a record' (the run resumes from the last good commit once fixed)"
    )


class MatchingProcessor(Processor):
    """Task ``task`` of matching: partition ``task`` of ``orders.accepted``, the books of the symbols keyed there."""

    name: ClassVar[str] = "matching"
    returns_lists: ClassVar[bool] = True  # process() returns lists: process_batch skips the copy
    config_class: ClassVar[type[MatchingConfig]] = MatchingConfig

    def __init__(self, config: MatchingConfig, task: int) -> None:
        self.config = config
        self.task = task
        self.inputs = (Input(INPUT_TOPIC),)
        self.outputs = (events.ORDER_EVENTS, events.FILLS, events.MD_BOOK)
        self.engine = Engine(config)
        self._dead: dict[str, int] = {}
        self._handlers: dict[str, Callable[[dict[str, Any], int], list[Output]]] = {
            NEW_ORDER: self.engine.new_order, CANCEL_ORDER: self.engine.cancel, REPLACE_ORDER: self.engine.replace,
        }

    # -- the contract ----------------------------------------------------------------------

    def process(self, msg: Message) -> list[Output]:
        """Outputs for one command (refusals are events); raises :class:`Reject` for bad input (``dlq.matching``)."""
        try:
            handler = self._handlers.get(msg.schema)
            if handler is None:
                raise Reject(UNEXPECTED_SCHEMA, f"{msg.topic} carries {msg.schema}; matching reads NewOrder, CancelOrder, ReplaceOrder")
            v = msg.value
            if msg.key is None or msg.key != v["symbol"].encode():
                raise Reject(KEY_MISMATCH, f"record keyed {msg.key!r} carries symbol {v['symbol']!r}: its book may live in another task")
            return handler(v, v["ts_ns"])
        except Reject as exc:
            self._dead[exc.reason_code] = self._dead.get(exc.reason_code, 0) + 1
            raise

    def check_invariants(self) -> None:
        """No crossed book at rest; quantity conserved (running totals; every order with ``full_audit``)."""
        problems = self.engine.problems(full=self.config.full_audit)
        if problems:
            raise InvariantViolation(f"matching task {self.task}: " + "; ".join(problems[:5]))

    def snapshot(self) -> bytes:
        """Books (resting orders in priority order), id counters, remembered closed orders, clock, totals, counts: sorted JSON."""
        state = {"version": SNAPSHOT_VERSION, "engine": self.engine.to_json(), "dead": self._dead}
        return dump_state(state)

    def restore(self, blob: bytes) -> None:
        """Replace the whole state with a :meth:`snapshot` blob (empty bytes = the initial state)."""
        self.engine = Engine(self.config)
        self._handlers.update({NEW_ORDER: self.engine.new_order, CANCEL_ORDER: self.engine.cancel, REPLACE_ORDER: self.engine.replace})
        self._dead = {}
        if not blob:
            return
        state = load_state(blob, "matching", SNAPSHOT_VERSION)
        self.engine.load_json(state["engine"])
        self._dead = dict(state["dead"])

    def counters(self) -> dict[str, int]:
        """Counts since the state began (they survive snapshot/restore), for the runtime's metrics."""
        out = dict(self.engine.counts)
        out.update({f"dead.{code}": n for code, n in self._dead.items()})
        return out
