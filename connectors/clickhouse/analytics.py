"""Queries behind ``hftstream tape bars`` and ``tape trace``, over the analytics views of migration 0002.

:func:`bars` reads ``tape.ohlcv_1s`` / ``tape.ohlcv_1m`` and shows prices as decimals at the
instrument's ``price_scale`` (``tape.instrument_scales``); :func:`trace` walks lineage forward
from one record (``tape.records``: every record's address and its ``src_*`` lineage).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from streams.errors import HftError

INTERVALS = {"1s": "tape.ohlcv_1s", "1m": "tape.ohlcv_1m"}
MAX_TRACE = 10_000  # records a trace shows at most (a market-data record can cause a great many)


class TapeQueryError(HftError):
    """A tape query that cannot be answered as asked: an unknown symbol or interval, an offset not on the tape."""

    hint = "check the arguments; `hftstream tape query \"SELECT DISTINCT symbol FROM tape.md_trades\"` lists what is on the tape"


def require_views(client: Any) -> None:
    """Refuse a tape without the analytics views (never initialised, or initialised before migration 0002)."""
    n = client.query("SELECT count() FROM system.tables WHERE database = 'tape' AND name IN ('records', 'ohlcv_1m')").result_rows[0][0]
    if n < 2:
        raise TapeQueryError("the tape has no analytics views: it was not initialised (or not since migration 0002)",
                             hint="run `hftstream tape init` (it applies the missing migrations), then `hftstream tape sink --until-idle`")


def known_symbols(client: Any) -> list[str]:
    """Every symbol the tape knows: with an instrument record or a trade."""
    rows = client.query("SELECT symbol FROM tape.instrument_scales UNION DISTINCT SELECT symbol FROM tape.md_trades").result_rows
    return sorted({str(r[0]) for r in rows})


def require_symbol(client: Any, symbol: str) -> None:
    """Raise :class:`TapeQueryError` (its hint lists the known symbols) when ``symbol`` is not on the tape."""
    known = known_symbols(client)
    if symbol in known:
        return
    listing = ", ".join(known[:20]) + (f", ... ({len(known)} in all)" if len(known) > 20 else "")
    raise TapeQueryError(
        f"symbol {symbol!r} is not on the tape (no instrument, no trade)",
        hint=f"known symbols: {listing}" if known else
        "the tape has no instrument and no trade yet: sink them (`hftstream tape sink --until-idle`)",
    )


@dataclass
class Bars:
    columns: list[str]
    rows: list[list[Any]]


def bars(client: Any, symbol: str, interval: str, *, source: str | None = None, venue: str | None = None,
         from_ns: int | None = None, to_ns: int | None = None) -> Bars:
    """OHLCV bars of ``symbol`` (oldest first), prices and volume as decimals at the instrument's scales."""
    view = INTERVALS.get(interval)
    if view is None:
        raise TapeQueryError(f"unknown interval {interval!r}", hint=f"use one of {', '.join(INTERVALS)}")
    require_views(client)
    params = {"symbol": symbol}
    scales = client.query("SELECT price_scale, size_scale FROM tape.instrument_scales WHERE symbol = {symbol:String}",
                          parameters=params).result_rows
    traded = client.query("SELECT count() FROM tape.md_trades WHERE symbol = {symbol:String}", parameters=params).result_rows[0][0]
    if not scales and not traded:
        require_symbol(client, symbol)
    if not scales:
        raise TapeQueryError(f"symbol {symbol!r} has trades but no instrument on the tape: its price scale is unknown",
                             hint="sink refdata.instruments too (`hftstream tape sink --until-idle` sinks every topic)")
    price_scale, size_scale = int(scales[0][0]), int(scales[0][1])
    where = ["symbol = {symbol:String}"]
    if source is not None:
        where.append("source = {source:String}")
        params["source"] = source
    if venue is not None:
        where.append("venue = {venue:String}")
        params["venue"] = venue
    if from_ns is not None:
        where.append("bucket >= fromUnixTimestamp64Nano(toInt64({from_ns:Int64}), 'UTC')")
        params["from_ns"] = from_ns
    if to_ns is not None:
        where.append("bucket < fromUnixTimestamp64Nano(toInt64({to_ns:Int64}), 'UTC')")
        params["to_ns"] = to_ns
    sql = (f"SELECT toUnixTimestamp64Nano(bucket), source, venue, open, high, low, close, volume, trades FROM {view} "
           f"WHERE {' AND '.join(where)} ORDER BY bucket, source, venue")
    out = []
    for b, src, ven, o, h, lo, c, vol, n in client.query(sql, parameters=params).result_rows:
        out.append([int(b), src, ven, *(_scaled(p, price_scale) for p in (o, h, lo, c)), _scaled(vol, size_scale), int(n)])
    return Bars(["bucket", "source", "venue", "open", "high", "low", "close", "volume", "trades"], out)


def _scaled(v: int, scale: int) -> Decimal:
    return Decimal(int(v)).scaleb(-scale)


@dataclass
class Node:
    """One record of a trace and the records whose lineage names it."""

    table: str
    record_type: str
    topic: str
    partition: int
    offset: int
    log_ts: int
    children: list[Node] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "record_type": self.record_type, "topic": self.topic, "partition": self.partition,
                "offset": self.offset, "log_ts_ns": self.log_ts, "caused": [c.as_dict() for c in self.children]}

    def walk(self, depth: int = 0) -> list[tuple[int, Node]]:
        out = [(depth, self)]
        for c in self.children:
            out.extend(c.walk(depth + 1))
        return out


_COLS = "tbl, record_type, topic, partition, offset, toUnixTimestamp64Nano(log_ts)"


def trace(client: Any, topic: str, partition: int, offset: int, *, limit: int = MAX_TRACE) -> tuple[Node, bool]:
    """The record at ``topic/partition/offset`` and everything downstream of it by lineage; ``True`` when cut at ``limit``."""
    require_views(client)
    found = client.query(f"SELECT {_COLS} FROM tape.records WHERE topic = {{t:String}} AND partition = {{p:Int32}} AND offset = {{o:Int64}} LIMIT 1",
                         parameters={"t": topic, "p": partition, "o": offset}).result_rows
    if not found:
        raise TapeQueryError(f"{topic}/{partition}/{offset} is not on the tape",
                             hint="check the address (`hftstream replay -t TOPIC --format table` and `hftstream topics describe TOPIC` show offsets) and that the topic was sunk (`hftstream tape sink --until-idle`)")
    root = _node(found[0])
    level, seen, cut = [root], 1, False
    while level and not cut:
        by_addr = {(n.topic, n.partition, n.offset): n for n in level}
        keys = ", ".join(f"('{t}', {p}, {o})" for t, p, o in by_addr if "'" not in t and "\\" not in t)
        rows = client.query(f"SELECT {_COLS}, src_topic, src_partition, src_offset FROM tape.records "
                            f"WHERE (src_topic, src_partition, src_offset) IN ({keys}) ORDER BY topic, partition, offset").result_rows
        level = []
        for r in rows:
            if seen >= limit:
                cut = True
                break
            child = _node(r[:6])
            by_addr[(r[6], int(r[7]), int(r[8]))].children.append(child)
            level.append(child)
            seen += 1
    return root, cut


def _node(r: Any) -> Node:
    return Node(str(r[0]), str(r[1]), str(r[2]), int(r[3]), int(r[4]), int(r[5]))
