"""What risk knows about the market: the latest quote and trade per venue and symbol, and venue health.

Fed from ``md.normalized``. A venue's data for a symbol is *usable* when the venue is healthy
for it (no channel GAPPED or STALE, venue-wide and symbol trading status OPEN) and its last
update is at most ``stale_after_ns`` old at the order's time. A channel's records do not say
which symbols it carries, so one unhealthy channel makes its whole venue unhealthy (fail closed).
The consolidated view over usable venues: the best bid, the best ask, and the reference price
(the mid when both sides are there, else the freshest trade, else the one side quoted).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from streams.processors.risk.checks import MARKET_DATA_STALE, NO_MARKET_DATA, VENUE_UNHEALTHY, Verdict


class View(NamedTuple):
    """Consolidated usable market data for one symbol at one instant."""

    bid: int | None
    ask: int | None
    reference: int


class Market:
    """Latest quotes and trades per ``(symbol, venue)``, feed and trading status per venue, a mark per symbol."""

    def __init__(self, stale_after_ns: int) -> None:
        self.stale_after_ns = stale_after_ns
        self.books: dict[str, dict[str, list[Any]]] = {}  # symbol -> venue -> [bid, ask, last trade, recv_ts_ns]
        self.bad_channels: dict[str, dict[int, str]] = {}  # venue -> channel -> GAPPED | STALE
        self.venue_status: dict[str, str] = {}  # venue -> trading status (OPEN unless told otherwise)
        self.symbol_status: dict[str, dict[str, str]] = {}  # symbol -> venue -> trading status
        self.marks: dict[str, int] = {}  # symbol -> last reference price seen (any venue): marks positions

    def _book(self, symbol: str, venue: str) -> list[Any]:
        venues = self.books.get(symbol)
        if venues is None:
            venues = self.books[symbol] = {}
        book = venues.get(venue)
        if book is None:
            book = venues[venue] = [None, None, None, -1]
        return book

    def quote(self, v: dict[str, Any]) -> None:
        book = self._book(v["symbol"], v["venue"])
        bid, ask = v["bid_price"], v["ask_price"]
        book[0], book[1] = bid, ask
        if v["recv_ts_ns"] > book[3]:
            book[3] = v["recv_ts_ns"]
        if bid is not None and ask is not None:
            self.marks[v["symbol"]] = (bid + ask) // 2

    def trade(self, v: dict[str, Any]) -> None:
        book = self._book(v["symbol"], v["venue"])
        book[2] = v["price"]
        if v["recv_ts_ns"] > book[3]:
            book[3] = v["recv_ts_ns"]
        self.marks[v["symbol"]] = v["price"]

    def status(self, v: dict[str, Any]) -> None:
        venue, feed = v["venue"], v["feed_state"]
        if feed is not None:  # the normalizer's feed-health record for one channel
            bad = self.bad_channels.setdefault(venue, {})
            if feed == "HEALTHY":
                bad.pop(v["channel"], None)
            else:
                bad[v["channel"]] = feed
        elif v["symbol"] is None:
            self.venue_status[venue] = v["status"]
        else:
            self.symbol_status.setdefault(v["symbol"], {})[venue] = v["status"]

    def _unhealthy(self, symbol: str, venue: str) -> str | None:
        bad = self.bad_channels.get(venue)
        if bad:
            ch = min(bad)
            return f"{venue} channel {ch} {bad[ch]}"
        status = self.venue_status.get(venue, "OPEN")
        if status != "OPEN":
            return f"{venue} {status}"
        per_symbol = self.symbol_status.get(symbol)
        if per_symbol is not None:
            status = per_symbol.get(venue, "OPEN")
            if status != "OPEN":
                return f"{venue} {symbol} {status}"
        return None

    def view(self, symbol: str, now_ns: int) -> View | Verdict:
        """The usable consolidated view of ``symbol`` at ``now_ns``, or why there is none (fail closed)."""
        venues = self.books.get(symbol)
        if not venues:
            return NO_MARKET_DATA, f"no market data for {symbol}"
        bid = ask = last = None
        last_ts = -1
        unhealthy: list[str] = []
        stale: list[str] = []
        limit = self.stale_after_ns
        for venue in sorted(venues):
            book = venues[venue]
            why = self._unhealthy(symbol, venue)
            if why is not None:
                unhealthy.append(why)
                continue
            age = now_ns - book[3]
            if age > limit:
                stale.append(f"{venue} {age} ns old")
                continue
            b, a, t = book[0], book[1], book[2]
            if b is not None and (bid is None or b > bid):
                bid = b
            if a is not None and (ask is None or a < ask):
                ask = a
            if t is not None and book[3] > last_ts:
                last, last_ts = t, book[3]
        if bid is not None and ask is not None:
            return View(bid, ask, (bid + ask) // 2)
        ref = last if last is not None else bid if bid is not None else ask
        if ref is not None:
            return View(bid, ask, ref)
        if unhealthy:
            return VENUE_UNHEALTHY, f"{symbol}: " + "; ".join(unhealthy + stale)
        if stale:
            return MARKET_DATA_STALE, f"{symbol}: market data stale (limit {limit} ns): " + "; ".join(stale)
        return NO_MARKET_DATA, f"no price for {symbol} yet"

    def to_json(self) -> dict[str, Any]:
        return {
            "books": {s: dict(sorted(v.items())) for s, v in sorted(self.books.items())},
            "bad_channels": {v: {str(c): s for c, s in sorted(ch.items())} for v, ch in sorted(self.bad_channels.items())},
            "venue_status": dict(sorted(self.venue_status.items())),
            "symbol_status": {s: dict(sorted(v.items())) for s, v in sorted(self.symbol_status.items())},
            "marks": dict(sorted(self.marks.items())),
        }

    def load_json(self, state: dict[str, Any]) -> None:
        self.books = {s: {v: list(b) for v, b in venues.items()} for s, venues in state["books"].items()}
        self.bad_channels = {v: {int(c): s for c, s in ch.items()} for v, ch in state["bad_channels"].items()}
        self.venue_status = dict(state["venue_status"])
        self.symbol_status = {s: dict(v) for s, v in state["symbol_status"].items()}
        self.marks = dict(state["marks"])
