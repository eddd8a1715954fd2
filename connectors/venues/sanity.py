"""Market-data sanity: what no real market prints, judged on a decoded event (DECISIONS #41).

One place of truth for the normalizer (``streams.processors.normalize``, which dead-letters what
fails with the reason code) and ``hftstream feed file`` (which lists such lines as suspect). It
judges the field values ``Codec.decode_fields`` returns -- the same tuple whichever decoder, fast
path or strict reader, produced it -- so every venue format is held to the same rules:

``NON_POSITIVE_PRICE``  a trade, a quote side or a book level at a price <= 0;
``NON_POSITIVE_SIZE``   a trade of size 0, a quoted side (a price) with size 0, a book ADD/CHANGE of
                        size 0 (a DELETE's size is 0 by definition). Negative sizes never get this far:
                        every format defines sizes as unsigned, so the codecs refuse them as malformed;
``CROSSED_QUOTE``       bid > ask. A *locked* quote (bid == ask) is accepted and counted (``locked``);
``PRICE_OUT_OF_BAND``   a trade, quote side or book ADD/CHANGE more than ``band_pct`` percent away from
                        the symbol's *reference price*: its last accepted trade. No reference yet (the
                        first trade of the day, or after a trading-status message for the symbol or its
                        whole venue, which is when real venues reopen at a new price) means no band check.
                        A book DELETE is never refused for its distance (it removes a level some earlier
                        message placed). ``band_pct=0`` turns the band off.

:class:`Sanity` is pure and deterministic; its state (the reference prices) is plain data the
normalizer keeps in its snapshot.
"""

from __future__ import annotations

from typing import Any

from connectors.venues.events import BookDelta, Quote, StatusChange, Trade

NON_POSITIVE_PRICE = "NON_POSITIVE_PRICE"
NON_POSITIVE_SIZE = "NON_POSITIVE_SIZE"
CROSSED_QUOTE = "CROSSED_QUOTE"
PRICE_OUT_OF_BAND = "PRICE_OUT_OF_BAND"
REASON_CODES = (NON_POSITIVE_PRICE, NON_POSITIVE_SIZE, CROSSED_QUOTE, PRICE_OUT_OF_BAND)
DEFAULT_BAND_PCT = 50

Problem = tuple[str, str]  # (reason code, what is wrong)


class Sanity:
    """Judges decoded events in arrival order; :meth:`admit` accepts (updating the references) or says why not."""

    __slots__ = ("band_pct", "locked", "reference")

    def __init__(self, band_pct: int = DEFAULT_BAND_PCT) -> None:
        if band_pct < 0:
            raise ValueError(f"band_pct must be >= 0, got {band_pct}")
        self.band_pct = band_pct
        self.reference: dict[str, int] = {}  # symbol -> last accepted trade price (scaled)
        self.locked = 0  # locked quotes (bid == ask) accepted

    def admit(self, cls: type, f: tuple[Any, ...]) -> Problem | None:
        """``None`` if the event ``cls(*f)`` is possible (and it is then taken into account), else ``(code, reason)``.

        Each kind first tries the common case in one expression (everything positive, inside the band);
        only what fails it goes through the checks one by one, which name the first problem.
        """
        pct = self.band_pct
        if cls is Quote:
            sym, _, bid, bid_size, ask, ask_size = f
            if bid is not None and ask is not None and 0 < bid < ask and bid_size > 0 and ask_size > 0:
                ref = self.reference.get(sym)
                if ref is None or not pct or (abs(bid - ref) * 100 <= pct * ref and abs(ask - ref) * 100 <= pct * ref):
                    return None
            problem = self._side(sym, "bid", bid, bid_size) or self._side(sym, "ask", ask, ask_size)
            if problem is None and bid is not None and ask is not None:
                if bid > ask:
                    return CROSSED_QUOTE, f"{sym} quote is crossed: bid {bid} > ask {ask}"
                if bid == ask:
                    self.locked += 1
            return problem
        if cls is Trade:
            sym, _, _, price, size, _ = f
            if price > 0 and size > 0:
                ref = self.reference.get(sym)
                if ref is None or not pct or abs(price - ref) * 100 <= pct * ref:
                    self.reference[sym] = price
                    return None
            return _price(sym, "trade price", price) or _size(sym, "trade size", size) or self._band(sym, "trade price", price)
        if cls is BookDelta:
            sym, _, side, action, price, size = f
            if price > 0:
                if action == "DELETE":
                    return None
                ref = self.reference.get(sym)
                if size > 0 and (ref is None or not pct or abs(price - ref) * 100 <= pct * ref):
                    return None
            what = f"{'bid' if side == 'BUY' else 'ask'} level"
            problem = _price(sym, f"{what} price", price)
            if problem is None and action != "DELETE":
                problem = _size(sym, f"{what} size", size) or self._band(sym, f"{what} price", price)
            return problem
        if cls is StatusChange:
            if f[0] is None:
                self.reference.clear()
            else:
                self.reference.pop(f[0], None)
        return None

    def _side(self, sym: str, what: str, price: int | None, size: int) -> Problem | None:
        if price is None:
            return None
        return _price(sym, what, price) or _size(sym, f"{what} size", size) or self._band(sym, what, price)

    def _band(self, sym: str, what: str, price: int) -> Problem | None:
        ref = self.reference.get(sym)
        if ref is None or not self.band_pct or abs(price - ref) * 100 <= self.band_pct * ref:
            return None
        return PRICE_OUT_OF_BAND, (
            f"{sym} {what} {price} is more than {self.band_pct}% from the last trade {ref} "
            f"(band {ref - ref * self.band_pct // 100}..{ref + ref * self.band_pct // 100})"
        )


def _price(sym: str, what: str, price: int) -> Problem | None:
    return None if price > 0 else (NON_POSITIVE_PRICE, f"{sym} {what} {price} must be > 0")


def _size(sym: str, what: str, size: int) -> Problem | None:
    return None if size > 0 else (NON_POSITIVE_SIZE, f"{sym} {what} {size} must be > 0")
