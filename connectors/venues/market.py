"""The simulated market behind every venue: prices, books, statuses and arrival times.

Pure and deterministic: every draw comes from a ``random.Random`` the caller seeds,
and time is the simulation clock (int ns) the caller advances. No float touches a
price: prices are integer ticks, random-walked, multiplied by the tick size at the end.

* :class:`Fundamentals` -- one integer random walk per symbol, stepped every 100 ms of
  simulated time and shared by all venues, so venues quote the same instrument near the
  same price (each venue adds its own small, fixed offset).
* :class:`Regime` -- the event mix and arrival process: ``calm`` (mostly quotes, steady
  arrivals), ``burst`` (quiet stretches broken by clusters of fast arrivals on one symbol,
  trade-heavy), ``cancel-storm`` (book adds and deletes dominate).
* :class:`VenueMarket` -- one venue's books (market-by-price, never crossed), trading
  statuses and trade ids; :meth:`VenueMarket.next_event` draws the next event.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from connectors.venues.events import BookDelta, Heartbeat, MarketEvent, Quote, Side, StatusChange, Trade
from connectors.venues.universe import Listing

STEP_NS = 100_000_000  # fundamental price step: 100 ms of simulated time
MIN_TICKS = 10  # the fundamental never walks below this many ticks
MAX_LEVELS = 10  # price levels kept per book side
MAX_ADD_DISTANCE = 8  # new levels are placed 1..8 ticks from the venue's mid

KINDS = ("quote", "trade", "book", "status", "heartbeat")
ACTIONS = ("ADD", "CHANGE", "DELETE")


@dataclass(frozen=True, slots=True)
class Mix:
    """Relative weights of event kinds (``KINDS`` order) and book actions (``ACTIONS`` order), plus arrival gaps."""

    kinds: tuple[float, float, float, float, float]
    actions: tuple[float, float, float]
    gap_ns: tuple[int, int]  # inter-arrival time, uniform in [lo, hi] ns
    lots_factor: int = 1  # order sizes are drawn this many times (the max is kept): bigger prints in bursts


@dataclass(frozen=True, slots=True)
class Regime:
    """An event mix; with ``burst`` set, a two-state process switching between ``quiet`` and ``burst`` mixes."""

    name: str
    quiet: Mix
    burst: Mix | None = None
    enter_burst: float = 0.0  # per-event probability of starting a burst
    leave_burst: float = 0.0  # per-event probability of ending one
    focus: float = 0.0  # share of a burst's events on the burst's symbol


_CALM = Mix(kinds=(60, 12, 25, 0.4, 2.6), actions=(35, 40, 25), gap_ns=(100_000, 900_000))
REGIMES: dict[str, Regime] = {
    "calm": Regime("calm", _CALM),
    "burst": Regime(
        "burst",
        quiet=Mix(kinds=(60, 12, 25, 0.4, 2.6), actions=(35, 40, 25), gap_ns=(200_000, 3_800_000)),
        burst=Mix(kinds=(20, 55, 24.8, 0.1, 0.1), actions=(35, 40, 25), gap_ns=(1_000, 30_000), lots_factor=3),
        enter_burst=0.03,
        leave_burst=0.03,
        focus=0.8,
    ),
    "cancel-storm": Regime(
        "cancel-storm", Mix(kinds=(8, 3, 87, 0.3, 1.7), actions=(48, 4, 48), gap_ns=(5_000, 195_000))
    ),
}


class Fundamentals:
    """Per-symbol integer random walks in ticks, indexed by 100 ms step; lazily extended, so query order never matters."""

    def __init__(self, seed: int, listings: list[Listing], start_ns: int) -> None:
        self._start = start_ns
        self._rngs = [random.Random(f"{seed}:fundamental:{li.instrument.symbol}") for li in listings]
        self._paths: list[list[int]] = [[li.ref_ticks] for li in listings]

    def ticks(self, index: int, t_ns: int) -> int:
        """The fundamental price of symbol ``index`` at simulated time ``t_ns``, in ticks."""
        step = max(0, (t_ns - self._start) // STEP_NS)
        path, rng = self._paths[index], self._rngs[index]
        while len(path) <= step:
            path.append(max(MIN_TICKS, path[-1] + rng.randint(-1, 1)))
        return path[step]


class _Book:
    """One symbol's book on one venue: price (ticks) -> size (lots) per side."""

    __slots__ = ("asks", "bids")

    def __init__(self) -> None:
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}


class VenueMarket:
    """One venue's view of the market; :meth:`next_event` draws its next event at a given time."""

    def __init__(
        self, venue: str, listings: list[Listing], fundamentals: Fundamentals, regime: Regime, rng: random.Random,
        gap_scale: int = 1, gap_divisor: int = 1,
    ) -> None:
        self.venue = venue
        self.gap_scale = gap_scale  # inter-arrival gaps x gap_scale // gap_divisor: a slower market, same draws
        self.gap_divisor = gap_divisor
        self.listings = listings
        self.fundamentals = fundamentals
        self.regime = regime
        self.rng = rng
        self.offsets = [rng.randint(-1, 1) for _ in listings]  # this venue's fixed price offset, in ticks
        self.books = [_Book() for _ in listings]
        self.halted = [False] * len(listings)
        self.trade_prefix = venue[:1].upper()
        self.trades = 0
        self.in_burst = False
        self.burst_symbol = 0
        self.opened = False

    # -- arrivals -------------------------------------------------------------------

    def _mix(self) -> Mix:
        regime = self.regime
        if regime.burst is None:
            return regime.quiet
        if self.in_burst:
            if self.rng.random() < regime.leave_burst:
                self.in_burst = False
        elif self.rng.random() < regime.enter_burst:
            self.in_burst = True
            self.burst_symbol = self.rng.randrange(len(self.listings))
        return regime.burst if self.in_burst else regime.quiet

    def next_event(self, now_ns: int) -> tuple[int, MarketEvent]:
        """Advance past one inter-arrival gap from ``now_ns``; return ``(event time, event)``."""
        mix = self._mix()
        rng = self.rng
        t = now_ns + rng.randint(*mix.gap_ns) * self.gap_scale // self.gap_divisor
        if not self.opened:  # every venue starts its day by announcing it is open
            self.opened = True
            return t, StatusChange(None, t, "OPEN")
        kind = rng.choices(KINDS, weights=mix.kinds)[0]
        if self.in_burst and rng.random() < self.regime.focus:
            i = self.burst_symbol
        else:
            i = rng.randrange(len(self.listings))
        if kind == "heartbeat":
            return t, Heartbeat(t)
        if kind == "status" or (kind == "trade" and self.halted[i]):
            return t, self._status(i, t)
        if kind == "quote":
            return t, self._quote(i, t)
        if kind == "trade":
            return t, self._trade(i, t, mix)
        return t, self._book_delta(i, t, mix)

    # -- event makers -----------------------------------------------------------------

    def _lots(self, i: int, mix: Mix) -> int:
        li = self.listings[i]
        return max(self.rng.randint(li.min_lots, li.max_lots) for _ in range(mix.lots_factor))

    def _mid(self, i: int, t: int) -> int:
        return self.fundamentals.ticks(i, t) + self.offsets[i]

    def _top(self, i: int, t: int) -> tuple[int, int, int, int]:
        """Best bid/ask (ticks) and sizes (lots); an empty side is synthesized one tick off the mid."""
        book, mid, rng = self.books[i], self._mid(i, t), self.rng
        li = self.listings[i]
        bb = max(book.bids) if book.bids else None
        ba = min(book.asks) if book.asks else None
        bid = bb if bb is not None else (min(ba, mid) if ba is not None else mid) - 1
        ask = ba if ba is not None else (max(bb, mid) if bb is not None else mid) + 1
        bid_size = book.bids[bb] if bb is not None else rng.randint(li.min_lots, li.max_lots)
        ask_size = book.asks[ba] if ba is not None else rng.randint(li.min_lots, li.max_lots)
        return bid, bid_size, ask, ask_size

    def _quote(self, i: int, t: int) -> Quote:
        inst = self.listings[i].instrument
        bid, bid_size, ask, ask_size = self._top(i, t)
        tick, lot = inst.tick_size, inst.lot_size
        return Quote(inst.symbol, t, bid * tick, bid_size * lot, ask * tick, ask_size * lot)

    def _trade(self, i: int, t: int, mix: Mix) -> Trade:
        inst = self.listings[i].instrument
        bid, _, ask, _ = self._top(i, t)
        side: Side = self.rng.choice(("BUY", "SELL"))
        self.trades += 1
        price = ask if side == "BUY" else bid
        size = self._lots(i, mix)
        return Trade(inst.symbol, t, f"{self.trade_prefix}-{self.trades}", price * inst.tick_size, size * inst.lot_size, side)

    def _status(self, i: int, t: int) -> StatusChange:
        self.halted[i] = not self.halted[i]
        symbol = self.listings[i].instrument.symbol
        return StatusChange(symbol, t, "HALTED", "volatility pause") if self.halted[i] else StatusChange(symbol, t, "OPEN")

    def _book_delta(self, i: int, t: int, mix: Mix) -> BookDelta:
        rng, book, inst = self.rng, self.books[i], self.listings[i].instrument
        side: Side = rng.choice(("BUY", "SELL"))
        action = rng.choices(ACTIONS, weights=mix.actions)[0]
        levels = book.bids if side == "BUY" else book.asks
        if action != "ADD" and not levels:
            action = "ADD"
        elif action == "ADD" and len(levels) >= MAX_LEVELS:
            action = "DELETE"
        if action == "ADD":
            mid = self._mid(i, t)
            sign = -1 if side == "BUY" else 1
            free = [mid + sign * d for d in range(1, MAX_ADD_DISTANCE + 1) if mid + sign * d not in levels]
            price = rng.choice(free) if free else mid + sign * rng.randint(1, MAX_ADD_DISTANCE)
            opposite = book.asks if side == "BUY" else book.bids
            crossing = [p for p in opposite if (p <= price if side == "BUY" else p >= price)]
            if crossing:  # the new level would cross the book: the venue first removes the stale opposite level
                side = "SELL" if side == "BUY" else "BUY"
                levels, action = opposite, "DELETE"
                price = min(crossing) if side == "SELL" else max(crossing)
            elif price in levels:
                action = "CHANGE"
        else:
            price = rng.choice(sorted(levels))
        if action == "DELETE":
            del levels[price]
            size = 0
        else:
            size = self._lots(i, mix)
            levels[price] = size
        return BookDelta(inst.symbol, t, side, action, price * inst.tick_size, size * inst.lot_size)  # type: ignore[arg-type]
