"""One symbol's order book: price-time priority over resting limit orders. Pure, no events, no ids.

Each side is a binary heap of ``(key, prio, order)``: ``key`` is the price for asks and the
negated price for bids, so the heap's top is the best price and, within a price, the lowest
``prio`` -- the earliest arrival (FIFO). ``prio`` is unique per book, so tuples never compare
orders. Beside each heap, ``bid_size`` / ``ask_size`` map every price with resting quantity to
its total (a level exists exactly while its total is > 0).

Removal is lazy: :meth:`Book.remove` marks the order (its ``prio`` becomes ``-1``) and the heap entry
becomes *dead* (its ``prio`` no longer matches the order's); dead entries are dropped when
they reach the top, and the heaps are rebuilt when dead entries outnumber live ones, so
memory stays proportional to the resting orders. A quantity decrease keeps the entry (and
so the time priority); anything else that should lose priority is a :meth:`remove` followed
by a new :meth:`rest`, which draws a new ``prio``.

The book moves quantities (``leaves``, ``filled``, ``closed``; see :class:`~.orders.Order`) but never changes an order's
state and never builds an event: that is the engine's job (:mod:`.engine`), from what
:meth:`Book.take` returns.
"""

from __future__ import annotations

from heapq import heapify, heappop, heappush
from typing import Any

from streams.processors.matching.orders import ACCOUNT, BUY, CLOSED, CUM, LEAVES, OPEN, PRICE, PRIO, QTY, STATE, Order

INF = 1 << 63  # above every int64 price key: "any price" for a market order
_COMPACT_MIN = 256  # never rebuild a heap for fewer dead entries than this

Fill = tuple[Order, int, int]  # (maker, quantity, price); quantity 0 = the maker was removed by self-trade prevention
NO_FILLS: list[Fill] = []  # returned (never mutated) when nothing crosses


class Book:
    """The resting orders of one symbol (see the module docstring)."""

    __slots__ = ("symbol", "bids", "asks", "bid_size", "ask_size", "prio", "dead")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.bids: list[tuple[int, int, Order]] = []
        self.asks: list[tuple[int, int, Order]] = []
        self.bid_size: dict[int, int] = {}
        self.ask_size: dict[int, int] = {}
        self.prio = 0  # the next time priority handed out
        self.dead = 0  # heap entries whose order no longer rests there

    # -- matching ----------------------------------------------------------------------------

    def add(self, order: Order) -> list[Fill]:
        """A limit order that may rest: execute what crosses (as :meth:`take`), rest the remainder."""
        price = order[PRICE]
        if order[BUY]:
            heap = self.asks
            fills = self._take(order, heap, self.ask_size, price, 1) if heap and heap[0][0] <= price else NO_FILLS
            if order[LEAVES]:
                p = self.prio
                self.prio = p + 1
                order[PRIO] = p
                heappush(self.bids, (-price, p, order))
                sizes = self.bid_size
                sizes[price] = sizes.get(price, 0) + order[LEAVES]
        else:
            heap = self.bids
            fills = self._take(order, heap, self.bid_size, -price, -1) if heap and heap[0][0] <= -price else NO_FILLS
            if order[LEAVES]:
                p = self.prio
                self.prio = p + 1
                order[PRIO] = p
                heappush(self.asks, (price, p, order))
                sizes = self.ask_size
                sizes[price] = sizes.get(price, 0) + order[LEAVES]
        return fills

    def take(self, taker: Order, limit: int | None) -> list[Fill]:
        """Execute ``taker`` against the other side while it crosses ``limit`` (``None``: any price); never rests it.

        Best price first, FIFO within a price, each at the resting order's price. A resting
        order of the taker's own account is removed instead (self-trade prevention, "cancel
        resting"): its leaves move to ``closed`` and it is reported with quantity 0. Updates
        ``leaves``/``filled`` of both sides and the level sizes; returns ``[(maker, qty, price)]``
        in execution order (a maker appears at most once).
        """
        if taker[BUY]:
            return self._take(taker, self.asks, self.ask_size, INF if limit is None else limit, 1)
        return self._take(taker, self.bids, self.bid_size, INF if limit is None else -limit, -1)

    def _take(self, taker: Order, heap: list[tuple[int, int, Order]], sizes: dict[int, int], klimit: int, sign: int) -> list[Fill]:
        fills: list[Fill] = []
        want = taker[LEAVES]
        account = taker[ACCOUNT]
        while want and heap:
            key, prio, maker = heap[0]
            if prio != maker[PRIO]:  # dead entry
                heappop(heap)
                self.dead -= 1
                continue
            if key > klimit:
                break
            price = key * sign
            ml = maker[LEAVES]
            if maker[ACCOUNT] == account:  # self-trade prevention: the resting order goes
                heappop(heap)
                maker[PRIO] = -1
                maker[LEAVES] = 0
                maker[CLOSED] += ml
                q = 0
                left = sizes[price] - ml
            else:
                if ml <= want:
                    q = ml
                    heappop(heap)
                    maker[PRIO] = -1
                else:
                    q = want
                maker[LEAVES] = ml - q
                maker[CUM] += q
                want -= q
                left = sizes[price] - q
            if left:
                sizes[price] = left
            else:
                del sizes[price]
            fills.append((maker, q, price))
        taker[CUM] += taker[LEAVES] - want
        taker[LEAVES] = want
        return fills

    def can_fill(self, taker: Order, limit: int | None) -> bool:
        """Whether :meth:`take` would fill all of ``taker`` (fill-or-kill): the other accounts'
        resting quantity at prices crossing ``limit`` covers its leaves. Changes nothing."""
        need = taker[LEAVES]
        if taker[BUY]:
            sizes, heap = self.ask_size, self.asks
            total = sum(q for p, q in sizes.items() if limit is None or p <= limit)
            klimit = INF if limit is None else limit
        else:
            sizes, heap = self.bid_size, self.bids
            total = sum(q for p, q in sizes.items() if limit is None or p >= limit)
            klimit = INF if limit is None else -limit
        if total < need:
            return False
        account = taker[ACCOUNT]
        own = sum(o[LEAVES] for k, prio, o in heap if prio == o[PRIO] and k <= klimit and o[ACCOUNT] == account)
        return total - own >= need

    def crosses(self, buy: bool, price: int) -> bool:
        """Whether a ``buy`` (else sell) order at ``price`` would execute against the other side now."""
        best = self.best(not buy)
        return best is not None and (price >= best if buy else price <= best)

    def best(self, buy: bool) -> int | None:
        """The best bid (``buy``) or ask price, ``None`` when that side is empty."""
        heap = self.bids if buy else self.asks
        while heap and heap[0][1] != heap[0][2][PRIO]:
            heappop(heap)
            self.dead -= 1
        if not heap:
            return None
        return -heap[0][0] if buy else heap[0][0]

    # -- resting orders ----------------------------------------------------------------------

    def rest(self, order: Order) -> None:
        """Put ``order`` (a limit order with leaves > 0) on its side, behind everything at its price (no matching)."""
        p = self.prio
        self.prio = p + 1
        order[PRIO] = p
        price = order[PRICE]
        if order[BUY]:
            heappush(self.bids, (-price, p, order))
            sizes = self.bid_size
        else:
            heappush(self.asks, (price, p, order))
            sizes = self.ask_size
        sizes[price] = sizes.get(price, 0) + order[LEAVES]

    def cancel(self, order: Order) -> int:
        """Take a resting ``order`` off the book, its leaves to ``closed`` (a cancel or an expiry); returns them."""
        q = order[LEAVES]
        price = order[PRICE]
        sizes = self.bid_size if order[BUY] else self.ask_size
        left = sizes[price] - q
        if left:
            sizes[price] = left
        else:
            del sizes[price]
        order[PRIO] = -1
        order[LEAVES] = 0
        order[CLOSED] += q
        dead = self.dead = self.dead + 1
        if dead > _COMPACT_MIN and dead * 2 > len(self.bids) + len(self.asks):
            self._compact()
        return q

    def remove(self, order: Order) -> int:
        """Take a resting ``order`` off the book; returns its leaves (now 0), which the caller books."""
        q = order[LEAVES]
        price = order[PRICE]
        sizes = self.bid_size if order[BUY] else self.ask_size
        left = sizes[price] - q
        if left:
            sizes[price] = left
        else:
            del sizes[price]
        order[PRIO] = -1
        order[LEAVES] = 0
        dead = self.dead = self.dead + 1
        if dead > _COMPACT_MIN and dead * 2 > len(self.bids) + len(self.asks):
            self._compact()
        return q

    def reduce(self, order: Order, by: int) -> None:
        """Lower a resting ``order``'s leaves by ``by`` (0 < by < leaves) in place: it keeps its time priority."""
        sizes = self.bid_size if order[BUY] else self.ask_size
        sizes[order[PRICE]] -= by
        order[LEAVES] -= by

    def _compact(self) -> None:
        self.bids = [e for e in self.bids if e[1] == e[2][PRIO]]
        self.asks = [e for e in self.asks if e[1] == e[2][PRIO]]
        heapify(self.bids)
        heapify(self.asks)
        self.dead = 0

    # -- views, invariants, snapshots ----------------------------------------------------------

    def resting(self, buy: bool) -> list[Order]:
        """The resting orders of one side in priority order (best price first, then FIFO)."""
        heap = self.bids if buy else self.asks
        return [e[2] for e in sorted((e for e in heap if e[1] == e[2][PRIO]), key=_entry_key)]

    def depth(self, buy: bool) -> list[tuple[int, int]]:
        """``[(price, size)]`` of one side, best first."""
        sizes = self.bid_size if buy else self.ask_size
        return sorted(sizes.items(), reverse=buy)

    def resting_quantity(self) -> int:
        """Total resting quantity, both sides, from the level sizes."""
        return sum(self.bid_size.values()) + sum(self.ask_size.values())

    def problems(self) -> list[str]:
        """Cheap checks (per level, not per order): no crossed book, no empty level kept."""
        out = []
        if self.bid_size and self.ask_size and max(self.bid_size) >= min(self.ask_size):
            out.append(f"{self.symbol}: crossed book at rest: best bid {max(self.bid_size)} >= best ask {min(self.ask_size)}")
        for name, sizes in (("bid", self.bid_size), ("ask", self.ask_size)):
            bad = [p for p, q in sizes.items() if q <= 0]
            if bad:
                out.append(f"{self.symbol}: {name} level(s) with size <= 0 kept: {sorted(bad)}")
        return out

    def audit(self) -> list[str]:
        """Every check, per order (O(n)): each level's size is the sum of its orders' leaves, every
        resting order is open with leaves > 0 and its quantity adds up. For tests and ``full_audit``."""
        out = self.problems()
        for buy, sizes in ((True, self.bid_size), (False, self.ask_size)):
            totals: dict[int, int] = {}
            for o in self.resting(buy):
                totals[o[PRICE]] = totals.get(o[PRICE], 0) + o[LEAVES]
                if o[LEAVES] <= 0 or o[BUY] != buy or o[STATE] not in OPEN:
                    out.append(f"{self.symbol}: resting {o!r} is not an open order with leaves > 0 on this side")
                if o[QTY] != o[CUM] + o[LEAVES] + o[CLOSED]:
                    out.append(f"{self.symbol}: {o!r}: quantity != filled + leaves + closed")
            if totals != sizes:
                out.append(f"{self.symbol}: {'bid' if buy else 'ask'} level sizes {sizes} != sum of resting leaves {totals}")
        return out

    def to_json(self) -> dict[str, Any]:
        """The resting orders in priority order and the priority counter (what a snapshot keeps)."""
        return {
            "symbol": self.symbol, "prio": self.prio,
            "bids": [o.to_row() for o in self.resting(True)], "asks": [o.to_row() for o in self.resting(False)],
        }

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> Book:
        """The inverse of :meth:`to_json` (dead entries are not carried over)."""
        book = cls(state["symbol"])
        book.prio = state["prio"]
        for buy, rows in ((True, state["bids"]), (False, state["asks"])):
            heap = book.bids if buy else book.asks
            sizes = book.bid_size if buy else book.ask_size
            for row in rows:
                o = Order(row)
                price = o[PRICE]
                heap.append((-price if buy else price, o[PRIO], o))
                sizes[price] = sizes.get(price, 0) + o[LEAVES]
            heapify(heap)
        return book


def _entry_key(entry: tuple[int, int, Order]) -> tuple[int, int]:
    return entry[0], entry[1]
