"""The simulator's instrument universe: real tickers first, then synthetic names.

Each row fixes an instrument's reference data (scales, tick and lot size, currency)
and the simulator's starting price and typical order size. The order is stable, so
``universe(m)`` is a prefix of ``universe(m + 1)`` and an instrument keeps its id
whatever ``m`` is. The first rows mix price scales (4 for equities, 2 for crypto and
futures, 5 for FX) so even a two-symbol run exercises more than one scale.
"""

from __future__ import annotations

from dataclasses import dataclass

from connectors.venues.instruments import Instrument
from connectors.venues.scaled import parse_decimal

# symbol, reference price, price_scale, tick, size_scale, lot, currency, min lots, max lots
_TABLE: tuple[tuple[str, str, int, str, int, str, str, int, int], ...] = (
    ("AAPL", "187.25", 4, "0.01", 0, "1", "USD", 1, 500),
    ("BTC-USD", "42150.50", 2, "0.01", 8, "0.0001", "USD", 1, 5000),
    ("MSFT", "374.50", 4, "0.01", 0, "1", "USD", 1, 400),
    ("EUR-USD", "1.10450", 5, "0.00001", 0, "1000", "USD", 1, 1000),
    ("ESH6", "4785.25", 2, "0.25", 0, "1", "USD", 1, 50),
    ("NVDA", "481.10", 4, "0.01", 0, "1", "USD", 1, 500),
    ("AMZN", "151.90", 4, "0.01", 0, "1", "USD", 1, 600),
    ("GOOGL", "139.70", 4, "0.01", 0, "1", "USD", 1, 600),
    ("TSLA", "248.40", 4, "0.01", 0, "1", "USD", 1, 800),
    ("ETH-USD", "2280.40", 2, "0.01", 8, "0.0001", "USD", 1, 50000),
    ("META", "353.90", 4, "0.01", 0, "1", "USD", 1, 400),
    ("JPM", "170.30", 4, "0.01", 0, "1", "USD", 1, 500),
    ("USD-JPY", "141.250", 3, "0.001", 0, "1000", "JPY", 1, 1000),
    ("SPY", "475.30", 4, "0.01", 0, "1", "USD", 1, 1000),
    ("QQQ", "409.50", 4, "0.01", 0, "1", "USD", 1, 800),
    ("XOM", "100.20", 4, "0.01", 0, "1", "USD", 1, 700),
    ("V", "260.10", 4, "0.01", 0, "1", "USD", 1, 300),
    ("KO", "59.30", 4, "0.01", 0, "1", "USD", 1, 900),
    ("BAC", "33.60", 4, "0.01", 0, "1", "USD", 1, 2000),
    ("AMD", "140.00", 4, "0.01", 0, "1", "USD", 1, 700),
)
MAX_SYMBOLS = 10_000


@dataclass(frozen=True, slots=True)
class Listing:
    """An instrument plus what the simulator needs to trade it: start price (in ticks) and order size range (in lots)."""

    instrument: Instrument
    ref_ticks: int
    min_lots: int
    max_lots: int


def _listing(n: int, row: tuple[str, str, int, str, int, str, str, int, int]) -> Listing:
    symbol, price, ps, tick, ss, lot, ccy, lo, hi = row
    tick_size, lot_size = parse_decimal(tick, ps), parse_decimal(lot, ss)
    inst = Instrument(symbol, str(n), ps, ss, tick_size, lot_size, ccy, "ACTIVE")
    return Listing(inst, parse_decimal(price, ps) // tick_size, lo, hi)


def universe(m: int) -> list[Listing]:
    """The first ``m`` listings: the real tickers above, then ``SYN0021``, ``SYN0022``, ... (ids are 1-based positions)."""
    if not 1 <= m <= MAX_SYMBOLS:
        raise ValueError(f"symbols must be between 1 and {MAX_SYMBOLS}, got {m}")
    out = []
    for i in range(m):
        n = i + 1
        if i < len(_TABLE):
            out.append(_listing(n, _TABLE[i]))
        else:
            dollars = 10 + (n * 37) % 490
            out.append(_listing(n, (f"SYN{n:04d}", f"{dollars}.00", 4, "0.01", 0, "1", "USD", 1, 500)))
    return out
