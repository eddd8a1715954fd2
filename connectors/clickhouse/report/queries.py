"""What the report reads from the tape: the analytics views (migration 0002), exact values only.

Each function takes an open clickhouse-connect client and a :class:`Window` and returns plain rows;
a missing view raises :class:`MissingView` so the page can say which one and what to do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from connectors.clickhouse.report.svg import Candle

BARS = 60  # candles (and spread points) per chart: the bucket adapts to the traded time range


class MissingView(Exception):
    """A view the report reads is not on the tape (``hftstream tape init`` applies migration 0002)."""


@dataclass(frozen=True)
class Window:
    """The report's time range in ns (None: open-ended)."""

    start_ns: int | None = None
    end_ns: int | None = None

    def where(self, col: str) -> str:
        conds = [f"{col} >= fromUnixTimestamp64Nano(toInt64({self.start_ns}))"] if self.start_ns is not None else []
        conds += [f"{col} < fromUnixTimestamp64Nano(toInt64({self.end_ns}))"] if self.end_ns is not None else []
        return " AND ".join(conds) or "1"


def _rows(client: Any, sql: str, params: dict[str, Any] | None = None) -> list[tuple]:
    from clickhouse_connect.driver.exceptions import ClickHouseError

    try:
        return [tuple(r) for r in client.query(sql, parameters=params or {}).result_rows]
    except ClickHouseError as exc:
        text = str(exc)
        if "UNKNOWN_TABLE" in text or "doesn't exist" in text or "does not exist" in text:
            names = re.findall(r"tape\.\w+", sql)
            raise MissingView(names[0] if names else "a tape view") from None
        raise


def table_counts(client: Any) -> list[tuple[str, int]]:
    """Rows per tape table (base tables only; a re-sunk record counts once only after a merge)."""
    return [(n, int(c or 0)) for n, c in _rows(client, "SELECT name, total_rows FROM system.tables WHERE database = 'tape' "
                                                      "AND engine NOT LIKE '%View%' ORDER BY name")]


def scales(client: Any) -> dict[str, tuple[int, int]]:
    """symbol -> (price_scale, size_scale), from the latest instrument record."""
    rows = _rows(client, "SELECT symbol, argMax(price_scale, updated_ts), argMax(size_scale, updated_ts) FROM tape.instruments GROUP BY symbol")
    return {s: (int(p), int(z)) for s, p, z in rows}


def currencies(client: Any) -> dict[str, str]:
    """symbol -> its currency (the latest instrument record): the unit of its prices."""
    return {str(s): str(c) for s, c in _rows(client, "SELECT symbol, argMax(currency, updated_ts) FROM tape.instruments GROUP BY symbol")}


def top_symbol(client: Any, w: Window) -> str | None:
    """The most traded symbol in the window (tape.time_and_sales)."""
    rows = _rows(client, f"SELECT symbol, count() c FROM tape.time_and_sales WHERE {w.where('ts')} GROUP BY symbol ORDER BY c DESC, symbol LIMIT 1")
    return str(rows[0][0]) if rows else None


def trade_range(client: Any, w: Window) -> tuple[int, int, int] | None:
    """(first ns, last ns, trades) of the window's trades, or None when there are none."""
    rows = _rows(client, f"SELECT toUnixTimestamp64Nano(min(ts)), toUnixTimestamp64Nano(max(ts)), count() FROM tape.time_and_sales WHERE {w.where('ts')}")
    return (int(rows[0][0]), int(rows[0][1]), int(rows[0][2])) if rows and rows[0][2] else None


def _buckets(client: Any, sql_range: str, params: dict[str, Any]) -> tuple[int, int] | None:
    rows = _rows(client, sql_range, params)
    if not rows or rows[0][2] == 0:
        return None
    t0, t1 = int(rows[0][0]), int(rows[0][1])
    return t0, max(1, -(-(t1 - t0 + 1) // BARS))


def candles(client: Any, w: Window, symbol: str) -> tuple[str, int, list[tuple[int, Candle]]]:
    """The symbol's busiest (source, venue): its candles as (bucket start ns, Candle) and the bucket width in ns."""
    p = {"s": symbol}
    src = _rows(client, f"SELECT source, venue, count() c FROM tape.time_and_sales WHERE symbol = %(s)s AND {w.where('ts')} "
                        "GROUP BY source, venue ORDER BY c DESC, source, venue LIMIT 1", p)
    if not src:
        return "", 0, []
    p |= {"src": src[0][0], "v": src[0][1]}
    cond = f"symbol = %(s)s AND source = %(src)s AND venue = %(v)s AND {w.where('ts')}"
    b = _buckets(client, f"SELECT toUnixTimestamp64Nano(min(ts)), toUnixTimestamp64Nano(max(ts)), count() FROM tape.time_and_sales WHERE {cond}", p)
    if b is None:
        return "", 0, []
    t0, step = b
    rows = _rows(client, f"SELECT intDiv(toUnixTimestamp64Nano(ts) - {t0}, {step}) k, argMin(price, (ts, offset)), max(price), min(price), "
                         f"argMax(price, (ts, offset)), sum(size) FROM tape.time_and_sales WHERE {cond} GROUP BY k ORDER BY k", p)
    out = [(t0 + int(k) * step, Candle("", int(o), int(h), int(lo), int(c), int(v))) for k, o, h, lo, c, v in rows]
    return feed_name(str(src[0][0]), str(src[0][1])), step, out


def feed_name(source: str, venue: str) -> str:
    """Where a symbol's trades come from, in words: ``venue alpha``, or our own matching engine (md.book)."""
    return "the internal matching engine (md.book)" if source == "internal" else f"venue {venue}"


def spreads(client: Any, w: Window, symbol: str) -> dict[str, list[tuple[int, int]]]:
    """venue -> [(bucket start ns, mean spread, integer-divided)] for the symbol's two-sided quotes."""
    cond = f"symbol = %(s)s AND spread IS NOT NULL AND {w.where('ts')}"
    p = {"s": symbol}
    b = _buckets(client, f"SELECT toUnixTimestamp64Nano(min(ts)), toUnixTimestamp64Nano(max(ts)), count() FROM tape.bbo WHERE {cond}", p)
    if b is None:
        return {}
    t0, step = b
    out: dict[str, list[tuple[int, int]]] = {}
    for venue, k, sp in _rows(client, f"SELECT venue, intDiv(toUnixTimestamp64Nano(ts) - {t0}, {step}) k, intDiv(sum(spread), count(spread)) "
                                      f"FROM tape.bbo WHERE {cond} GROUP BY venue, k ORDER BY venue, k", p):
        out.setdefault(str(venue), []).append((t0 + int(k) * step, int(sp)))
    return out


def rejects(client: Any, w: Window) -> list[tuple[str, int]]:
    return [(str(r), int(n)) for r, n in _rows(client, f"SELECT reason, sum(rejects) n FROM tape.risk_rejects_1m WHERE {w.where('bucket')} "
                                                       "GROUP BY reason ORDER BY n DESC, reason LIMIT 20")]


def pnl(client: Any, w: Window) -> list[tuple[str, Decimal]]:
    """account -> total_pnl of its latest minute bucket in the window (currency units, exact Decimal)."""
    return [(str(a), Decimal(v)) for a, v in _rows(client, f"SELECT account, argMax(total_pnl, bucket) FROM tape.pnl_1m WHERE {w.where('bucket')} "
                                                         "GROUP BY account ORDER BY account")]


def latency(client: Any, w: Window) -> list[tuple[str, list[int], int]]:
    """"stage (processor)" -> ([p50, p90, p99] ns of input appended -> output appended, from the commit manifests), samples)."""
    rows = _rows(client, f"SELECT stage, processor, arrayMap(x -> toInt64(x), quantilesExact(0.5, 0.9, 0.99)(latency_ns)), count() "
                         f"FROM tape.stage_latency WHERE {w.where('ts')} GROUP BY stage, processor ORDER BY stage")
    return [(f"{s} ({p})", [int(x) for x in q], int(n)) for s, p, q, n in rows]


def dlq(client: Any, w: Window) -> list[tuple[str, int]]:
    return [(f"{p} / {r}", int(n)) for p, r, n in _rows(client, f"SELECT processor, reason_code, sum(letters) n FROM tape.dlq_counts_1m "
                                                              f"WHERE {w.where('bucket')} GROUP BY processor, reason_code ORDER BY n DESC LIMIT 20")]
