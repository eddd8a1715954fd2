"""One symbol's order book: price-time priority over resting limit orders. Pure, no events, no ids.

Each side is a dict ``price -> Level`` and a binary heap of the level prices (negated for bids,
so the heap's top is the best price). A :class:`Level` is a FIFO queue of ``(prio, order)``
entries and its total resting size; a level exists exactly while its size is > 0. Adding to an
existing price is an append -- the heap only moves when a price level appears -- so the cost of
an operation grows with the number of price levels, not of orders.

Removal is lazy. :meth:`Book.remove` marks the order (its ``prio`` becomes ``-1``), so its queue
entry is *dead* (the entry's ``prio`` no longer matches the order's) and is skipped when it
reaches the front; a level whose size drops to 0 leaves the dict at once and its price leaves
the heap when it reaches the top. A queue is rebuilt when dead entries outnumber live ones, and
a heap when stale prices outnumber levels, so memory stays proportional to what rests. A
quantity decrease keeps the entry (and so the time priority); anything that should lose
priority is a :meth:`remove` and a new :meth:`rest`, which draws a new ``prio`` and goes to the back.

The book moves quantities (``leaves``, ``cum``, ``closed``; see :class:`~.orders.Order`) but never
changes an order's state and never builds an event: that is the engine's job (:mod:`.engine`),
from what :meth:`Book.take` returns.
"""

from __future__ import annotations

from collections import deque
from heapq import heapify, heappop, heappush
from typing import Any

from streams.processors.matching.orders import (
    ACCOUNT, BUY, CLOSED, CUM, LEAVES, OPEN, PRICE, PRIO, QTY, STATE, Order, describe, to_row,
)

INF = 1 << 63  # above every int64 price key: "any price" for a market order
_REBUILD_MIN = 32  # never rebuild a queue or a heap for fewer stale entries than this

Fill = tuple[Order, int, int]  # (maker, quantity, price); quantity 0 = the maker was removed by self-trade prevention
NO_FILLS: list[Fill] = []  # returned (never mutated) when nothing crosses


class Level:
    """The resting orders at one price, oldest first, and their total leaves."""

    __slots__ = ("size", "queue", "dead")

    def __init__(self) -> None:
        self.size = 0
        self.queue: deque[tuple[int, Order]] = deque()
        self.dead = 0  # entries in the queue whose order no longer rests there

    def live(self) -> list[Order]:
        """The resting orders in time priority."""
        return [o for p, o in self.queue if p == o[PRIO]]


class Book:
    """The resting orders of one symbol (see the module docstring)."""

    __slots__ = ("symbol", "bids", "asks", "bid_prices", "ask_prices", "prio")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.bids: dict[int, Level] = {}
        self.asks: dict[int, Level] = {}
        self.bid_prices: list[int] = []  # heap of -price; may hold prices whose level is gone
        self.ask_prices: list[int] = []  # heap of price; idem
        self.prio = 0  # the next time priority handed out

    # -- matching ----------------------------------------------------------------------------

    def add(self, order: Order) -> list[Fill]:
        """A limit order that may rest: execute what crosses (as :meth:`take`), rest the remainder."""
        price = order[PRICE]
        if order[BUY]:
            heap = self.ask_prices
            fills = self._take(order, heap, self.asks, price, 1) if heap and heap[0] <= price else NO_FILLS
            if order[LEAVES]:
                levels = self.bids
                level = levels.get(price)
                if level is None:
                    level = levels[price] = Level()
                    heappush(self.bid_prices, -price)
                p = self.prio
                self.prio = p + 1
                order[PRIO] = p
                level.queue.append((p, order))
                level.size += order[LEAVES]
        else:
            heap = self.bid_prices
            fills = self._take(order, heap, self.bids, -price, -1) if heap and heap[0] <= -price else NO_FILLS
            if order[LEAVES]:
                levels = self.asks
                level = levels.get(price)
                if level is None:
                    level = levels[price] = Level()
                    heappush(self.ask_prices, price)
                p = self.prio
                self.prio = p + 1
                order[PRIO] = p
                level.queue.append((p, order))
                level.size += order[LEAVES]
        return fills

    def take(self, taker: Order, limit: int | None) -> list[Fill]:
        """Execute ``taker`` against the other side while it crosses ``limit`` (``None``: any price); never rests it.

        Best price first, FIFO within a price, each at the resting order's price. A resting
        order of the taker's own account is removed instead (self-trade prevention, "cancel
        resting"): its leaves move to ``closed`` and it is reported with quantity 0. Updates
        ``leaves``/``cum`` of both sides and the level sizes; returns ``[(maker, qty, price)]``
        in execution order (a maker appears at most once).
        """
        if taker[BUY]:
            return self._take(taker, self.ask_prices, self.asks, INF if limit is None else limit, 1)
        return self._take(taker, self.bid_prices, self.bids, INF if limit is None else -limit, -1)

    def _take(self, taker: Order, heap: list[int], levels: dict[int, Level], klimit: int, sign: int) -> list[Fill]:
        fills: list[Fill] = []
        want = taker[LEAVES]
        account = taker[ACCOUNT]
        while want and heap:
            key = heap[0]
            if key > klimit:
                break
            price = key * sign
            level = levels.get(price)
            if level is None:  # a stale price
                heappop(heap)
                continue
            queue = level.queue
            size = level.size
            while want and queue:
                prio, maker = queue[0]
                if prio != maker[PRIO]:  # dead entry
                    queue.popleft()
                    level.dead -= 1
                    continue
                ml = maker[LEAVES]
                if maker[ACCOUNT] == account:  # self-trade prevention: the resting order goes
                    queue.popleft()
                    maker[PRIO] = -1
                    maker[LEAVES] = 0
                    maker[CLOSED] += ml
                    size -= ml
                    fills.append((maker, 0, price))
                    continue
                if ml <= want:
                    q = ml
                    queue.popleft()
                    maker[PRIO] = -1
                else:
                    q = want
                maker[LEAVES] = ml - q
                maker[CUM] += q
                want -= q
                size -= q
                fills.append((maker, q, price))
            if size:
                level.size = size
            else:
                del levels[price]
                heappop(heap)
        taker[CUM] += taker[LEAVES] - want
        taker[LEAVES] = want
        return fills

    def can_fill(self, taker: Order, limit: int | None) -> bool:
        """Whether :meth:`take` would fill all of ``taker`` (fill-or-kill): the other accounts'
        resting quantity at prices crossing ``limit`` covers its leaves. Changes nothing."""
        need = taker[LEAVES]
        if taker[BUY]:
            crossing = [lv for p, lv in self.asks.items() if limit is None or p <= limit]
        else:
            crossing = [lv for p, lv in self.bids.items() if limit is None or p >= limit]
        total = sum(lv.size for lv in crossing)
        if total < need:
            return False
        account = taker[ACCOUNT]
        own = sum(o[LEAVES] for lv in crossing for o in lv.live() if o[ACCOUNT] == account)
        return total - own >= need

    def crosses(self, buy: bool, price: int) -> bool:
        """Whether a ``buy`` (else sell) order at ``price`` would execute against the other side now."""
        best = self.best(not buy)
        return best is not None and (price >= best if buy else price <= best)

    def best(self, buy: bool) -> int | None:
        """The best bid (``buy``) or ask price, ``None`` when that side is empty."""
        heap, levels = (self.bid_prices, self.bids) if buy else (self.ask_prices, self.asks)
        while heap and (-heap[0] if buy else heap[0]) not in levels:
            heappop(heap)
        if not heap:
            return None
        return -heap[0] if buy else heap[0]

    # -- resting orders ----------------------------------------------------------------------

    def rest(self, order: Order) -> None:
        """Put ``order`` (a limit order with leaves > 0) at the back of its price level (no matching)."""
        price = order[PRICE]
        levels = self.bids if order[BUY] else self.asks
        level = levels.get(price)
        if level is None:
            level = levels[price] = Level()
            heappush(self.bid_prices if order[BUY] else self.ask_prices, -price if order[BUY] else price)
            self._trim_prices(order[BUY])
        p = self.prio
        self.prio = p + 1
        order[PRIO] = p
        level.queue.append((p, order))
        level.size += order[LEAVES]

    def cancel(self, order: Order) -> int:
        """Take a resting ``order`` off the book, its leaves to ``closed`` (a cancel or an expiry); returns them."""
        q = order[LEAVES]
        order[CLOSED] += q
        order[LEAVES] = 0
        order[PRIO] = -1
        price = order[PRICE]
        levels = self.bids if order[BUY] else self.asks
        level = levels[price]
        size = level.size - q
        if size:
            level.size = size
            dead = level.dead = level.dead + 1
            if dead > _REBUILD_MIN and dead > len(level.queue) >> 1:
                level.queue = deque(e for e in level.queue if e[0] == e[1][PRIO])
                level.dead = 0
        else:
            del levels[price]
            self._trim_prices(order[BUY])
        return q

    def remove(self, order: Order) -> int:
        """Take a resting ``order`` off the book; returns its leaves (now 0), which the caller books."""
        q = self.cancel(order)
        order[CLOSED] -= q
        return q

    def reduce(self, order: Order, by: int) -> None:
        """Lower a resting ``order``'s leaves by ``by`` (0 < by < leaves) in place: it keeps its time priority."""
        (self.bids if order[BUY] else self.asks)[order[PRICE]].size -= by
        order[LEAVES] -= by

    def _trim_prices(self, buy: bool) -> None:
        """Rebuild a side's price heap when stale prices outnumber its levels."""
        heap, levels = (self.bid_prices, self.bids) if buy else (self.ask_prices, self.asks)
        if len(heap) > _REBUILD_MIN and len(heap) > 2 * len(levels):
            fresh = [-p for p in levels] if buy else list(levels)
            heapify(fresh)
            if buy:
                self.bid_prices = fresh
            else:
                self.ask_prices = fresh

    # -- views, invariants, snapshots ----------------------------------------------------------

    def level_size(self, buy: bool, price: int) -> int:
        """The resting quantity at one price (0 when there is no level)."""
        level = (self.bids if buy else self.asks).get(price)
        return 0 if level is None else level.size

    def resting(self, buy: bool) -> list[Order]:
        """The resting orders of one side in priority order (best price first, then FIFO)."""
        levels = self.bids if buy else self.asks
        return [o for price in sorted(levels, reverse=buy) for o in levels[price].live()]

    def depth(self, buy: bool) -> list[tuple[int, int]]:
        """``[(price, size)]`` of one side, best first."""
        levels = self.bids if buy else self.asks
        return [(p, levels[p].size) for p in sorted(levels, reverse=buy)]

    def resting_quantity(self) -> int:
        """Total resting quantity, both sides, from the level sizes."""
        return sum(lv.size for lv in self.bids.values()) + sum(lv.size for lv in self.asks.values())

    def problems(self) -> list[str]:
        """Cheap checks (per level, not per order): no crossed book, no empty level kept, every level findable."""
        out = []
        if self.bids and self.asks and max(self.bids) >= min(self.asks):
            out.append(f"{self.symbol}: crossed book at rest: best bid {max(self.bids)} >= best ask {min(self.asks)}")
        for name, levels, heap, sign in (("bid", self.bids, self.bid_prices, -1), ("ask", self.asks, self.ask_prices, 1)):
            bad = [p for p, lv in levels.items() if lv.size <= 0]
            if bad:
                out.append(f"{self.symbol}: {name} level(s) with size <= 0 kept: {sorted(bad)}")
            lost = set(levels) - {k * sign for k in heap}
            if lost:
                out.append(f"{self.symbol}: {name} level(s) missing from the price heap: {sorted(lost)}")
        return out

    def audit(self) -> list[str]:
        """Every check, per order (O(n)): each level's size is the sum of its orders' leaves, every
        resting order is open with leaves > 0 at its level and its quantity adds up. For tests and ``full_audit``."""
        out = self.problems()
        for buy, levels in ((True, self.bids), (False, self.asks)):
            for price, level in levels.items():
                orders = level.live()
                if sum(o[LEAVES] for o in orders) != level.size:
                    out.append(f"{self.symbol}: {'bid' if buy else 'ask'} level {price}: size {level.size} != sum of leaves")
                prios = [o[PRIO] for o in orders]
                if prios != sorted(prios):
                    out.append(f"{self.symbol}: level {price} is not in time priority: {prios}")
                for o in orders:
                    if o[LEAVES] <= 0 or o[BUY] != buy or o[PRICE] != price or o[STATE] not in OPEN:
                        out.append(f"{self.symbol}: resting {describe(o)} is not an open order with leaves > 0 at this level")
                    if o[QTY] != o[CUM] + o[LEAVES] + o[CLOSED]:
                        out.append(f"{self.symbol}: {describe(o)}: quantity != cum + leaves + closed")
        return out

    def to_json(self) -> dict[str, Any]:
        """The resting orders in priority order and the priority counter (what a snapshot keeps)."""
        return {
            "symbol": self.symbol, "prio": self.prio,
            "bids": [to_row(o) for o in self.resting(True)], "asks": [to_row(o) for o in self.resting(False)],
        }

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> Book:
        """The inverse of :meth:`to_json` (dead entries and stale prices are not carried over)."""
        book = cls(state["symbol"])
        book.prio = state["prio"]
        for buy, rows in ((True, state["bids"]), (False, state["asks"])):
            levels = book.bids if buy else book.asks
            for row in rows:
                o = list(row)
                level = levels.get(o[PRICE])
                if level is None:
                    level = levels[o[PRICE]] = Level()
                level.queue.append((o[PRIO], o))
                level.size += o[LEAVES]
            heap = [-p for p in levels] if buy else list(levels)
            heapify(heap)
            if buy:
                book.bid_prices = heap
            else:
                book.ask_prices = heap
        return book
