"""The matching engine of one task: one book per symbol, the order index, expiry, ids and the records each command causes.

Commands (values of ``orders.accepted``): ``NewOrder``, ``CancelOrder``, ``ReplaceOrder``; each
returns the outputs it causes, in order. Every command is answered with events: a refused new
order with an ``OrderRejected``, a refused cancel or replace with an ``OrderCancelRejected``
(FIX OrderCancelReject 35=9). Only input that is actually bad (the processor's ``KEY_MISMATCH``,
``UNEXPECTED_SCHEMA``) is dead-lettered. Each command first moves the event-time clock (expiring
what is due), then is judged against the book.

Rules (the reason codes are stable):

* ``NewOrder`` -- ``INVALID_QUANTITY`` (quantity <= 0), ``INVALID_PRICE`` (a limit order without
  a price > 0, a market order with one), ``INVALID_EXPIRY`` (GTD without ``expire_ts_ns`` or with
  one not after ``ts_ns``; ``expire_ts_ns`` on any other time in force), ``INVALID_ORDER`` (post-only
  on a market, IOC or FOK order: it could never do anything), ``POST_ONLY_WOULD_CROSS``,
  ``DUPLICATE_CLIENT_ORDER_ID`` (the account's client order id is open or remembered on this book,
  see ``retain_closed``). A rejected new order gets no order id and is not remembered.
  Accepted: market orders take what there is and never rest (remainder ``MARKET_REMAINDER``);
  IOC takes what crosses its limit (remainder ``IOC_REMAINDER``); FOK executes entirely or not at
  all (``FOK_UNFILLED``); DAY, GTC and GTD rest what is left. DAY behaves as GTC: there is no
  session calendar in the engine (the end of a session is an operator ``CancelAll``).
* ``CancelOrder`` -- removes the open remainder (reason ``CLIENT_REQUEST``, or the command's
  ``reason`` when risk sends one, e.g. ``KILL_SWITCH``).
* ``ReplaceOrder`` -- new price and/or new *total* quantity (null keeps the current one). The same
  price with a quantity not above the current one keeps time priority (the remainder shrinks in
  place); a price change or a larger quantity is a new arrival at the back of its level, and may
  execute (as the taker). Refused (``OrderCancelRejected``, CxlRejReason 99, the order unchanged
  and still open): ``INVALID_QUANTITY`` (not above what already filled), ``INVALID_PRICE`` (<= 0),
  ``INVALID_REPLACE`` (neither given), ``POST_ONLY_WOULD_CROSS``. The acknowledgement is an
  ``OrderRested`` with the new terms.
* Races (``OrderCancelRejected``): ``TOO_LATE_TO_CANCEL`` / ``TOO_LATE_TO_REPLACE`` (CxlRejReason 0:
  the order is filled, cancelled or expired -- an order expiring at or before the command's
  ``ts_ns`` is expired first, so its ``OrderExpired`` comes just before the reject), ``UNKNOWN_ORDER``
  (CxlRejReason 1: never seen, or forgotten beyond ``retain_closed``; status ``REJECTED``, as FIX
  prescribes). ``ord_status`` is the order's status as the engine holds or remembers it.

Self-trade prevention, "cancel resting": when an order would execute against a resting order
of its own account, the resting one is cancelled (``SELF_TRADE_PREVENTION``) and the incoming
order goes on to the next one. Why that side: the incoming order is the account's newest
instruction and the resting one its older view of the market; and the incoming order then gets
exactly the executions the rest of the market offers it, whatever its own resting orders are,
which keeps IOC, FOK and market orders simple to reason about (a FOK fills iff the *other*
accounts' crossing quantity covers it, and if it does not, nothing at all happens -- its own
resting orders are not touched either).

Expiry (GTD) is in event time: the task's clock is the largest command ``ts_ns`` seen; an order
with ``expire_ts_ns <= clock`` is expired, before the command that moved the clock is handled
(``OrderExpired`` carries ``expire_ts_ns`` as its time). An order is live at ``expire_ts_ns - 1``.

Halts. Matching reads no operator commands: risk refuses new orders for a halted scope and, for
a kill switch or a cancel-all, sends one ``CancelOrder`` per open order to ``orders.accepted``
(in the same order as every other command for the symbol, so nothing overtakes them). A halted
symbol therefore only ever receives cancels here. Reading ``ops.commands`` too would mean a second
signature check and a second, possibly disagreeing, copy of the trading state.

Conservation, kept as running totals so it is cheap per commit: the quantity of every accepted
order (as replaced) = filled + resting + closed (cancelled or expired), summed over the task.
"""

from __future__ import annotations

from collections import OrderedDict
from heapq import heapify, heappop, heappush
from typing import Any

from streams.processors.base import Output
from streams.processors.matching import events
from streams.processors.matching.book import Book, Fill
from streams.processors.matching.config import MatchingConfig
from streams.processors.matching.orders import (
    ACCEPTED, ACCOUNT, BUY, CANCELLED, CLOSED, CMD, CUM, EXPIRED, FILLED, LEAVES, OID, OPEN, PARTIALLY_FILLED, PRICE, QTY,
    REJECTED, STATE, TOO_LATE_TO_CANCEL, TOO_LATE_TO_REPLACE, UNKNOWN_ORDER, DUPLICATE_CLIENT_ORDER_ID, Order, advance,
    new_order,
)

INVALID_QUANTITY = "INVALID_QUANTITY"
INVALID_PRICE = "INVALID_PRICE"
INVALID_EXPIRY = "INVALID_EXPIRY"
INVALID_ORDER = "INVALID_ORDER"
INVALID_REPLACE = "INVALID_REPLACE"
POST_ONLY_WOULD_CROSS = "POST_ONLY_WOULD_CROSS"
REJECT_CODES = (INVALID_QUANTITY, INVALID_PRICE, INVALID_EXPIRY, INVALID_ORDER, INVALID_REPLACE, POST_ONLY_WOULD_CROSS)

Problem = tuple[str, str] | None  # (reason code, reason) of a refused command


class Market:
    """One symbol: its book, its open orders by ``(account, client_order_id)`` and its id counters."""

    __slots__ = ("symbol", "book", "open", "orders", "trades", "md_seq")

    def __init__(self, book: Book, orders: int = 0, trades: int = 0, md_seq: int = 0) -> None:
        self.symbol = book.symbol
        self.book = book
        self.open: dict[tuple[str, str], Order] = {}
        self.orders = orders  # orders accepted: the n of the next order id is orders + 1
        self.trades = trades
        self.md_seq = md_seq  # md.book records written for this symbol


class Engine:
    """Every book of one task (see the module docstring)."""

    def __init__(self, config: MatchingConfig) -> None:
        self.venue = config.venue
        self.retain = config.retain_closed
        self.markets: dict[str, Market] = {}
        self.closed: OrderedDict[tuple[str, str, str], tuple[str, str]] = OrderedDict()  # oldest closed first
        self.expiries: list[tuple[int, str, Order]] = []  # (expire_ts_ns, order_id, order): a heap
        self.clock = -(1 << 63)
        self.qty_in = 0  # quantity of every accepted order (as replaced)
        self.qty_filled = 0  # executed, counted on each side
        self.qty_closed = 0  # cancelled or expired
        self.counts: dict[str, int] = {}

    # -- commands ------------------------------------------------------------------------------

    def new_order(self, v: dict[str, Any], ts: int) -> list[Output]:
        symbol, account, cid = v["symbol"], v["account"], v["client_order_id"]
        m = self.markets.get(symbol) or self._market(symbol)
        out: list[Output] = []
        if ts > self.clock:
            self._tick(ts, out)
        buy = v["side"] == "BUY"
        price, qty, tif = v["price"], v["quantity"], v["tif"]
        book = m.book
        o = m.open.get((account, cid))
        seen = (o[OID], o[STATE]) if o is not None else self.closed.get((symbol, account, cid))
        if seen is not None:
            problem: Problem = DUPLICATE_CLIENT_ORDER_ID, f"client order id {account}/{cid} is already order {seen[0]} ({seen[1]})"
        else:
            problem = _invalid_new(v, ts)
        if problem is None and v.get("post_only") and book.crosses(buy, price):
            problem = POST_ONLY_WOULD_CROSS, f"post-only {v['side']} at {price} would execute against the book (best {book.best(not buy)})"
        if problem is not None:
            advance(new_order(None, account, buy, price, qty, v), REJECTED)
            self._count(f"rejected.{problem[0]}")
            out.append(events.rejected(v, None, "NEW", problem[0], problem[1], ts))
            return out
        n = m.orders = m.orders + 1
        o = [f"{symbol}:{n}", account, buy, price, qty, 0, qty, 0, -1, "NEW", v]
        advance(o, ACCEPTED)
        self.qty_in += qty
        self._count("accepted")
        out.append(events.accepted(o, ts))
        moved: dict[tuple[bool, int], int] = {}
        if price is None or tif == "IOC" or tif == "FOK":
            if tif == "FOK" and not book.can_fill(o, price):
                self._cancel(m, o, "FOK_UNFILLED", ts, out)
                return out
            self._executions(m, o, book.take(o, price), 0, moved, ts, out)
            if o[LEAVES]:
                self._cancel(m, o, "MARKET_REMAINDER" if price is None else "IOC_REMAINDER", ts, out)
        else:
            self._executions(m, o, book.add(o), 0, moved, ts, out)
            if o[LEAVES]:
                moved[buy, price] = moved.get((buy, price), 0) + o[LEAVES]
                m.open[account, cid] = o
                out.append(events.rested(o, ts))
                if tif == "GTD":
                    heappush(self.expiries, (v["expire_ts_ns"], o[OID], o))
        if o[STATE] == FILLED:
            self._close(m, o)
        if moved:
            self._deltas(m, moved, ts, out)
        return out

    def cancel(self, v: dict[str, Any], ts: int) -> list[Output]:
        out: list[Output] = []
        if ts > self.clock:
            self._tick(ts, out)
        m, o = self._target(v, "CANCEL", ts, out)
        if o is None:
            return out
        buy, price = o[BUY], o[PRICE]
        q = m.book.cancel(o)
        self.qty_closed += q
        advance(o, CANCELLED)
        reason = v.get("reason") or "CLIENT_REQUEST"
        self._count(f"cancelled.{reason}")
        out.append(events.cancelled(o, q, reason, ts))
        self._close(m, o)
        self._deltas(m, {(buy, price): -q}, ts, out)
        return out

    def replace(self, v: dict[str, Any], ts: int) -> list[Output]:
        out: list[Output] = []
        if ts > self.clock:
            self._tick(ts, out)
        m, o = self._target(v, "REPLACE", ts, out)
        if o is None:
            return out
        book, buy, old_price = m.book, o[BUY], o[PRICE]
        price = old_price if v["price"] is None else v["price"]
        qty = o[QTY] if v["quantity"] is None else v["quantity"]
        problem: Problem = None
        if v["price"] is None and v["quantity"] is None:
            problem = INVALID_REPLACE, "a replace needs a new price or a new quantity"
        elif qty <= o[CUM]:
            problem = INVALID_QUANTITY, f"new quantity {qty} must be above the {o[CUM]} already filled (cancel instead)"
        elif price <= 0:
            problem = INVALID_PRICE, f"price {price} is not > 0"
        elif price != old_price and o[CMD].get("post_only") and book.crosses(buy, price):
            problem = POST_ONLY_WOULD_CROSS, f"post-only order moved to {price} would execute against the book (best {book.best(not buy)})"
        if problem is not None:
            self._count(f"cancel_rejected.{problem[0]}")
            out.append(events.cancel_rejected(v, o[OID], "REPLACE", events.OTHER, problem[0], problem[1], o[STATE], ts))
            return out
        self._count("replaced")
        moved: dict[tuple[bool, int], int] = {}
        if price == old_price and qty <= o[QTY]:  # only smaller (or the same): keeps its place in the queue
            by = o[QTY] - qty
            if by:
                book.reduce(o, by)
                o[QTY] = qty
                self.qty_in -= by
                moved[buy, price] = -by
            out.append(events.rested(o, ts))
        else:  # a new arrival: to the back of its (new) level, executing what crosses
            moved[buy, old_price] = -book.remove(o)
            self.qty_in += qty - o[QTY]
            filled = o[CUM]
            o[QTY], o[PRICE], o[LEAVES] = qty, price, qty - filled
            self._executions(m, o, book.add(o), filled, moved, ts, out)
            if o[LEAVES]:
                moved[buy, price] = moved.get((buy, price), 0) + o[LEAVES]
                out.append(events.rested(o, ts))
            else:
                self._close(m, o)
        self._deltas(m, moved, ts, out)
        return out

    # -- the parts -------------------------------------------------------------------------------

    def _market(self, symbol: str) -> Market:
        m = self.markets[symbol] = Market(Book(symbol))
        return m

    def _target(self, v: dict[str, Any], command: str, ts: int, out: list[Output]) -> tuple[Market, Order] | tuple[None, None]:
        """The open order a cancel or replace names (the clock already moved to ``ts``); else its cancel reject, appended to ``out``."""
        symbol, account, cid = v["symbol"], v["account"], v["client_order_id"]
        m = self.markets.get(symbol)
        o = m.open.get((account, cid)) if m is not None else None
        if o is not None and m is not None:
            return m, o
        seen = self.closed.get((symbol, account, cid))
        if seen is None:
            code, fix, oid, status = UNKNOWN_ORDER, events.UNKNOWN, None, REJECTED
            reason = f"{command.lower()} of unknown order {account}/{cid} on {symbol}"
        else:
            code = TOO_LATE_TO_CANCEL if command == "CANCEL" else TOO_LATE_TO_REPLACE
            (oid, status), fix = seen, events.TOO_LATE
            reason = f"{command.lower()} of order {oid}: it is {status}"
        self._count(f"cancel_rejected.{code}")
        out.append(events.cancel_rejected(v, oid, command, fix, code, reason, status, ts))
        return None, None

    def _executions(
        self, m: Market, taker: Order, fills: list[Fill], cum: int, moved: dict[tuple[bool, int], int], ts: int,
        out: list[Output],
    ) -> None:
        """Events for what :meth:`Book.take`/:meth:`Book.add` did to ``taker`` (which had ``cum`` filled before)."""
        symbol, venue, append = m.symbol, self.venue, out.append
        for maker, q, price in fills:
            key = (maker[BUY], price)
            if q == 0:  # self-trade prevention removed the resting order
                left = maker[CLOSED]
                moved[key] = moved.get(key, 0) - left
                self.qty_closed += left
                advance(maker, CANCELLED)
                self._count("cancelled.SELF_TRADE_PREVENTION")
                append(events.cancelled(maker, left, "SELF_TRADE_PREVENTION", ts))
                self._close(m, maker)
                continue
            moved[key] = moved.get(key, 0) - q
            t = m.trades = m.trades + 1
            trade_id = f"{symbol}:T{t}"
            maker_fill, taker_fill = (trade_id + ":B", trade_id + ":S") if maker[BUY] else (trade_id + ":S", trade_id + ":B")
            m.md_seq += 1
            append(events.trade(symbol, trade_id, price, q, taker[BUY], venue, ts, m.md_seq))
            left = maker[LEAVES]
            advance(maker, PARTIALLY_FILLED if left else FILLED)
            append(events.fill(maker, maker_fill, trade_id, price, q, True, venue, ts))
            append(events.executed(maker, maker_fill, price, q, maker[CUM], left, ts))
            if not left:
                self._close(m, maker)
            cum += q
            left = taker[QTY] - cum - taker[CLOSED]
            advance(taker, PARTIALLY_FILLED if left else FILLED)
            append(events.fill(taker, taker_fill, trade_id, price, q, False, venue, ts))
            append(events.executed(taker, taker_fill, price, q, cum, left, ts))
            self.qty_filled += 2 * q
        if fills:
            self._count("trades", sum(1 for f in fills if f[1]))

    def _cancel(self, m: Market, o: Order, reason: str, ts: int, out: list[Output]) -> None:
        """Close the unexecuted remainder of an order that is not resting (IOC, FOK, market)."""
        q = o[LEAVES]
        o[LEAVES] = 0
        o[CLOSED] += q
        self.qty_closed += q
        advance(o, CANCELLED)
        self._count(f"cancelled.{reason}")
        out.append(events.cancelled(o, q, reason, ts))
        self._close(m, o)

    def _close(self, m: Market, o: Order) -> None:
        """``o`` reached a terminal state: out of the open index, into the bounded memory of closed ids."""
        account, cid = o[ACCOUNT], o[CMD]["client_order_id"]
        m.open.pop((account, cid), None)
        if self.retain:
            closed = self.closed
            closed[m.symbol, account, cid] = (o[OID], o[STATE])
            if len(closed) > self.retain:
                closed.popitem(last=False)

    def _tick(self, ts: int, out: list[Output]) -> None:
        """Move the event-time clock to ``ts`` and expire every GTD order due by then, oldest expiry first."""
        self.clock = ts
        heap = self.expiries
        while heap and heap[0][0] <= ts:
            expire, _, o = heappop(heap)
            if o[STATE] not in OPEN:
                continue
            m = self.markets[o[CMD]["symbol"]]
            buy, price = o[BUY], o[PRICE]
            q = m.book.cancel(o)
            self.qty_closed += q
            advance(o, EXPIRED)
            self._count("expired")
            out.append(events.expired(o, q, expire))
            self._close(m, o)
            self._deltas(m, {(buy, price): -q}, expire, out)

    def _deltas(self, m: Market, moved: dict[tuple[bool, int], int], ts: int, out: list[Output]) -> None:
        """One market-by-price ``BookDelta`` per level whose size the command changed, in the order first touched."""
        book, venue, symbol = m.book, self.venue, m.symbol
        for (buy, price), change in moved.items():
            if not change:
                continue
            after = book.level_size(buy, price)
            action = "DELETE" if after == 0 else "ADD" if after == change else "CHANGE"
            m.md_seq += 1
            out.append(events.delta(symbol, action, buy, price, after, venue, ts, m.md_seq))

    def _count(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    # -- invariants and state ------------------------------------------------------------------

    def problems(self, full: bool = False) -> list[str]:
        """What is wrong with the state (empty when all is well). ``full``: every order too (O(n))."""
        out: list[str] = []
        resting = 0
        for m in self.markets.values():
            out += m.book.audit() if full else m.book.problems()
            resting += m.book.resting_quantity()
        if self.qty_in != self.qty_filled + resting + self.qty_closed:
            out.append(
                f"quantity not conserved: accepted {self.qty_in} != filled {self.qty_filled} + resting {resting} "
                f"+ cancelled/expired {self.qty_closed}"
            )
        if full:
            for m in self.markets.values():
                on_book = {id(o) for buy in (True, False) for o in m.book.resting(buy)}
                if on_book != {id(o) for o in m.open.values()}:
                    out.append(f"{m.symbol}: the open-order index and the resting orders differ")
        return out

    def to_json(self) -> dict[str, Any]:
        """The whole state, in a deterministic order."""
        return {
            "clock": self.clock,
            "markets": [
                {**m.book.to_json(), "orders": m.orders, "trades": m.trades, "md_seq": m.md_seq}
                for m in sorted(self.markets.values(), key=lambda m: m.symbol)
            ],
            "closed": [[*k, *v] for k, v in self.closed.items()],
            "totals": [self.qty_in, self.qty_filled, self.qty_closed],
            "counts": self.counts,
        }

    def load_json(self, state: dict[str, Any]) -> None:
        """Replace the state with a :meth:`to_json` one."""
        self.clock = state["clock"]
        self.markets = {}
        self.expiries = []
        for row in state["markets"]:
            m = self.markets[row["symbol"]] = Market(Book.from_json(row), row["orders"], row["trades"], row["md_seq"])
            for buy in (True, False):
                for o in m.book.resting(buy):
                    cmd = o[CMD]
                    m.open[o[ACCOUNT], cmd["client_order_id"]] = o
                    if cmd.get("expire_ts_ns") is not None:
                        self.expiries.append((cmd["expire_ts_ns"], o[OID], o))
        heapify(self.expiries)
        self.closed = OrderedDict(((s, a, c), (oid, st)) for s, a, c, oid, st in state["closed"])
        self.qty_in, self.qty_filled, self.qty_closed = state["totals"]
        self.counts = dict(state["counts"])


def _invalid_new(v: dict[str, Any], ts: int) -> Problem:
    """Why a new order cannot be accepted, whatever the book holds; ``None`` when it can."""
    qty, price, tif, expire = v["quantity"], v["price"], v["tif"], v.get("expire_ts_ns")
    post_only = v.get("post_only")
    if qty <= 0:
        return INVALID_QUANTITY, f"quantity {qty} is not > 0"
    if v["order_type"] == "MARKET":
        if price is not None:
            return INVALID_PRICE, f"a market order has no price (got {price})"
        if post_only:
            return INVALID_ORDER, "a post-only order must be a limit order"
    elif price is None:
        return INVALID_PRICE, "a limit order needs a price"
    elif price <= 0:
        return INVALID_PRICE, f"price {price} is not > 0"
    if tif == "GTD":
        if expire is None:
            return INVALID_EXPIRY, "a GTD order needs expire_ts_ns"
        if expire <= ts:
            return INVALID_EXPIRY, f"expire_ts_ns {expire} is not after the order's ts_ns {ts}"
    elif expire is not None:
        return INVALID_EXPIRY, f"expire_ts_ns is for GTD orders only (tif {tif})"
    if post_only and tif in ("IOC", "FOK"):
        return INVALID_ORDER, f"a post-only {tif} order can never execute (it may neither take nor rest)"
    return None
