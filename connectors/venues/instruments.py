"""Instrument reference data as the venue formats and the simulator need it.

The ``hftstream.refdata.Instrument`` record carries the scales every price and
size is read with. ``instrument_id`` is a venue-independent id written as a
decimal string (``"3"``); venues that identify instruments by integer (the
``json-ticks`` format) use that number, so the normalizer maps ids to symbols
from ``refdata.instruments`` alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from connectors.venues.events import BookDelta, Heartbeat, Quote, StatusChange, Trade
from streams.native import NATIVE

INSTRUMENT_SCHEMA = "hftstream.refdata.Instrument"


@dataclass(frozen=True, slots=True)
class Instrument:
    """One instrument's reference data. ``tick_size`` is scaled by ``price_scale``, ``lot_size`` by ``size_scale``."""

    symbol: str
    instrument_id: str
    price_scale: int
    size_scale: int
    tick_size: int
    lot_size: int
    currency: str = "USD"
    status: str = "ACTIVE"

    @property
    def number(self) -> int | None:
        """``instrument_id`` as an integer (the id ``json-ticks`` venues use), or ``None`` if it is not one."""
        return int(self.instrument_id) if self.instrument_id.isascii() and self.instrument_id.isdigit() else None

    def to_record(self, updated_ts_ns: int) -> dict[str, Any]:
        """The ``hftstream.refdata.Instrument`` Avro value."""
        return {
            "symbol": self.symbol,
            "instrument_id": self.instrument_id,
            "price_scale": self.price_scale,
            "size_scale": self.size_scale,
            "tick_size": self.tick_size,
            "lot_size": self.lot_size,
            "currency": self.currency,
            "status": self.status,
            "updated_ts_ns": updated_ts_ns,
        }

    @classmethod
    def from_record(cls, value: Mapping[str, Any]) -> Instrument:
        """Build from a decoded ``hftstream.refdata.Instrument`` value."""
        return cls(
            symbol=value["symbol"],
            instrument_id=value["instrument_id"],
            price_scale=value["price_scale"],
            size_scale=value["size_scale"],
            tick_size=value["tick_size"],
            lot_size=value["lot_size"],
            currency=value.get("currency", "USD"),
            status=value.get("status", "ACTIVE"),
        )


class RefData:
    """Instruments by symbol and by integer id: what a venue codec needs to scale and name things."""

    __slots__ = ("_by_number", "_by_symbol", "_native")

    def __init__(self, instruments: Iterable[Instrument]) -> None:
        self._by_symbol: dict[str, Instrument] = {}
        self._by_number: dict[int, Instrument] = {}
        self._native: Any = None  # the native table of this version of the data, built on first use
        for inst in instruments:
            self._by_symbol[inst.symbol] = inst
            if inst.number is not None:
                self._by_number[inst.number] = inst

    def put(self, inst: Instrument) -> None:
        """Add ``inst``, or replace the instrument with its symbol (and drop that one's integer id)."""
        self.remove(inst.symbol)
        self._native = None
        self._by_symbol[inst.symbol] = inst
        if inst.number is not None:
            self._by_number[inst.number] = inst

    def remove(self, symbol: str) -> None:
        """Forget the instrument called ``symbol`` (nothing happens if there is none)."""
        old = self._by_symbol.pop(symbol, None)
        self._native = None
        if old is not None and old.number is not None and self._by_number.get(old.number) is old:
            del self._by_number[old.number]

    def native_table(self) -> Any:
        """These instruments as the native venue fast paths read them (``streams._native.VenueTable``, DECISIONS #63).

        Built on first use after each change (``put``/``remove`` drop it): a feed changes reference data rarely.
        Only called when the native core is active.
        """
        table = self._native
        if table is None:
            symbols = [(s, i.price_scale, i.size_scale) for s, i in self._by_symbol.items()]
            numbers = [(n, i.symbol, i.tick_size, i.lot_size) for n, i in self._by_number.items()]
            table = self._native = NATIVE.VenueTable(symbols, numbers, (Trade, Quote, BookDelta, StatusChange, Heartbeat))  # type: ignore[union-attr]
        return table

    def by_symbol(self, symbol: str) -> Instrument | None:
        """The instrument called ``symbol``, or ``None``."""
        return self._by_symbol.get(symbol)

    def by_number(self, number: int) -> Instrument | None:
        """The instrument whose ``instrument_id`` is ``str(number)``, or ``None``."""
        return self._by_number.get(number)

    def __iter__(self) -> Iterator[Instrument]:
        return iter(self._by_symbol.values())

    def __len__(self) -> int:
        return len(self._by_symbol)
