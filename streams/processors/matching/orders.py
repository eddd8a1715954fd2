"""Orders and their state machine: the only states an order can be in and the only ways between them.

::

    NEW --> ACCEPTED --> PARTIALLY_FILLED* --> FILLED | CANCELLED | EXPIRED
     |          \\________________________________/^
     +--> REJECTED

``NEW`` is an order the engine is looking at; a new order that fails validation goes to
``REJECTED`` and is never indexed (its ``OrderRejected`` has no order id). ``ACCEPTED`` and
``PARTIALLY_FILLED`` are *open*; the rest are terminal. :func:`advance` is the one place a
state changes; a transition outside :data:`TRANSITIONS` is a bug in the engine
(:class:`StateMachineBug`, not a :class:`~streams.processors.base.Reject`: the runtime stops
rather than dead-letter a half-applied command).

A *command* that asks for an illegal transition -- cancel or replace of an unknown or closed
order, a client order id used twice -- changes no order: the engine answers it with an event
(``OrderCancelRejected`` / ``OrderRejected``, see :mod:`.engine`), never a dead letter.

Quantity bookkeeping, per order, at every rest point: ``quantity = cum + leaves + closed``
(``cum``: executed so far)
where ``closed`` is what a cancel (any reason) or an expiry removed. A replace changes
``quantity`` itself (the new total), never ``closed``.
"""

from __future__ import annotations

from typing import Any, TypeAlias

from streams.errors import HftError

NEW = "NEW"
ACCEPTED = "ACCEPTED"
PARTIALLY_FILLED = "PARTIALLY_FILLED"
FILLED = "FILLED"
CANCELLED = "CANCELLED"
EXPIRED = "EXPIRED"
REJECTED = "REJECTED"

OPEN = frozenset({ACCEPTED, PARTIALLY_FILLED})
TERMINAL = frozenset({FILLED, CANCELLED, EXPIRED, REJECTED})
TRANSITIONS: dict[str, frozenset[str]] = {
    NEW: frozenset({ACCEPTED, REJECTED}),
    ACCEPTED: frozenset({PARTIALLY_FILLED, FILLED, CANCELLED, EXPIRED}),
    PARTIALLY_FILLED: frozenset({PARTIALLY_FILLED, FILLED, CANCELLED, EXPIRED}),
    FILLED: frozenset(),
    CANCELLED: frozenset(),
    EXPIRED: frozenset(),
    REJECTED: frozenset(),
}

# Reason codes of the answers to commands an order's state refuses (events, not dead letters): stable.
UNKNOWN_ORDER = "UNKNOWN_ORDER"
DUPLICATE_CLIENT_ORDER_ID = "DUPLICATE_CLIENT_ORDER_ID"
TOO_LATE_TO_CANCEL = "TOO_LATE_TO_CANCEL"
TOO_LATE_TO_REPLACE = "TOO_LATE_TO_REPLACE"


class StateMachineBug(HftError):
    """The engine tried a transition the state machine forbids: a bug, never bad input."""

    hint = "this is a bug in the matching engine: nothing after the last commit was committed; report it with the record named"


# An order is a plain list indexed by these positions. Not a class, not even a list subclass:
# CPython 3.11 specialises o[i] reads and writes for exact lists only, and the book does little
# else (the subclass cost the book ~20% against the minimal heapq book; a slots class more).
OID, ACCOUNT, BUY, PRICE, QTY, CUM, LEAVES, CLOSED, PRIO, STATE, CMD = range(11)
FIELDS = ("order_id", "account", "buy", "price", "quantity", "cum", "leaves", "closed", "prio", "state", "cmd")

Order: TypeAlias = list[Any]
"""One order: ``[order_id, account, buy, price, quantity, cum, leaves, closed, prio, state, cmd]``.

``buy`` is the side as a bool; ``price`` is ``None`` for a market order; ``quantity`` is the
current total (a replace changes it and ``price``); ``cum`` is the quantity executed so far.
``prio`` is the order's place in time priority on its book (unique per book), ``-1`` when it is
not resting. ``cmd`` is the ``NewOrder`` command the order came from: its identity and the terms
that never change (``client_order_id``, ``symbol``, ``order_type``, ``tif``, ``post_only``,
``expire_ts_ns``). Build one with :func:`new_order` (hot paths write the literal).
"""


def new_order(order_id: str | None, account: str, buy: bool, price: int | None, quantity: int, cmd: dict[str, Any]) -> Order:
    """A ``NEW`` order with nothing executed, nothing closed and not resting."""
    return [order_id, account, buy, price, quantity, 0, quantity, 0, -1, NEW, cmd]


def describe(o: Order) -> str:
    """The order's fields by name, for messages."""
    fields = ", ".join(f"{f}={v!r}" for f, v in zip(FIELDS[:CMD], o))
    return f"Order({fields}, client_order_id={o[CMD].get('client_order_id')!r})"


def to_row(o: Order) -> list[Any]:
    """The order as a snapshot row: every field; of ``cmd`` only the terms."""
    row = list(o)
    cmd = o[CMD]
    row[CMD] = {k: cmd.get(k) for k in TERMS}
    return row


TERMS = ("client_order_id", "symbol", "order_type", "tif", "post_only", "expire_ts_ns")


def advance(order: Order, state: str) -> None:
    """Move ``order`` to ``state``; :class:`StateMachineBug` when the state machine forbids it."""
    current = order[STATE]
    if state not in TRANSITIONS[current]:
        raise StateMachineBug(f"order {order[OID] or order[CMD].get('client_order_id')}: {current} -> {state} is not a transition")
    order[STATE] = state

