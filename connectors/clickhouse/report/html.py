"""The tape report page: a title, the generation parameters, then one section per chart (inline SVG, no scripts)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from html import escape
from typing import Any

from connectors.clickhouse.report import queries as q
from connectors.clickhouse.report import svg
from connectors.clickhouse.report.svg import Candle, Number

CSS = """body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#111827;background:#f9fafb}
h1{font-size:22px;margin:0 0 8px}h2{font-size:16px;margin:0 0 4px}section{background:#fff;border:1px solid #e5e7eb;
border-radius:6px;padding:12px 16px;margin:12px 0}.meta{font-size:12px;color:#4b5563}.meta td{padding:1px 10px 1px 0}
.note{font-size:12px;color:#6b7280;margin:0 0 6px}.no-data{color:#9ca3af;font-style:italic}"""


@dataclass(frozen=True)
class ReportParams:
    """What the page was asked for: the tape (display URL), the window and an optional symbol."""

    tape_url: str
    window: q.Window
    symbol: str | None = None


def iso(ns: int) -> str:
    """ns since the epoch as ISO-8601 UTC with milliseconds."""
    seconds, rem = divmod(ns, 1_000_000_000)
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{rem // 1_000_000:03d}Z"


def scaled(scale: int) -> Callable[[Number], str]:
    """Format a scaled integer as its exact decimal (``scale`` decimals)."""
    return lambda v: f"{Decimal(v).scaleb(-scale):,.{scale}f}" if scale > 0 else f"{Decimal(v):,}"


def money(v: Number) -> str:
    """Currency amounts to the cent (the tape and the CLI keep every digit; a chart label needs two)."""
    return f"{Decimal(v).quantize(Decimal('0.01')):,}"


def micros(ns: Number) -> str:
    return f"{Decimal(ns) / 1000:,.1f} µs"


def _section(anchor: str, title: str, note: str, body: Callable[[], str]) -> str:
    try:
        content = body()
    except q.MissingView as exc:
        content = svg.no_data(f"no data: {exc} is not on this tape; run `hftstream tape init` (it applies the analytics views)")
    return f'<section id="{anchor}"><h2>{escape(title)}</h2><p class="note">{escape(note)}</p>{content}</section>'


def build_report(client: Any, p: ReportParams) -> str:
    """The whole page as one HTML string."""
    w = p.window
    try:
        scales = q.scales(client)
    except q.MissingView:
        scales = {}
    try:
        currencies = q.currencies(client)
    except q.MissingView:
        currencies = {}
    counts = q.table_counts(client)
    try:
        symbol = p.symbol or q.top_symbol(client, w)
        traded = q.trade_range(client, w)
    except q.MissingView as exc:
        symbol, traded, missing = p.symbol, None, exc
    else:
        missing = None
    price_scale, size_scale = scales.get(symbol or "", (0, 0))
    fmt_p, fmt_z = scaled(price_scale), scaled(size_scale)

    def candle_chart() -> str:
        if missing is not None:
            raise missing
        if not symbol:
            return svg.no_data()
        feed, step, bars = q.candles(client, w, symbol)
        labelled = [Candle(iso(t), c.open, c.high, c.low, c.close, c.volume) for t, c in bars]
        head = f'<p class="note">{escape(symbol)} on {escape(feed)}, {len(bars)} bars of {micros(step)}</p>' if bars else ""
        ccy = currencies.get(symbol, "")
        return head + svg.candles(labelled, fmt_p, fmt_z, title=f"{symbol} candles", price_unit=f"price ({ccy or 'quote currency'})",
                                  volume_unit=f"volume ({symbol} units traded)")

    def spread_chart() -> str:
        if not symbol:
            return svg.no_data()
        series = q.spreads(client, w, symbol)
        pts = [t for s in series.values() for t, _ in s]
        if not pts:
            return svg.no_data()
        t0 = min(pts)
        return svg.lines({v: [((t - t0) / 1e9, sp) for t, sp in s] for v, s in series.items()}, fmt_p,
                         x_labels=(iso(t0), iso(max(pts))), title=f"{symbol} spread",
                         unit=f"ask - bid ({currencies.get(symbol or '', '') or 'quote currency'})")

    def latency_chart() -> str:
        rows = q.latency(client, w)
        return svg.hbars([(f"{s} (n={n})", qs) for s, qs, n in rows], micros, keys=("p50", "p90", "p99"), title="latency per stage")

    window = (f"{iso(w.start_ns) if w.start_ns is not None else 'start of tape'} .. {iso(w.end_ns) if w.end_ns is not None else 'end of tape'}")
    traded_text = f"{iso(traded[0])} .. {iso(traded[1])} ({traded[2]:,} trades)" if traded else "no trades"
    meta = [("tape", p.tape_url), ("time range", window), ("trades in range", traded_text),
            ("symbol", f"{symbol} (price scale {price_scale}, size scale {size_scale})" if symbol else "none"),
            ("generated", dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")),
            ("rows per table", ", ".join(f"{n} {c:,}" for n, c in counts) or "no tables (run `hftstream tape init`)")]
    sections = [
        _section("candles", "Candles and volume", "tape.time_and_sales, bucketed to about 60 bars over the traded range; hover a bar for OHLCV", candle_chart),
        _section("spread", "Spread", "tape.bbo: mean ask - bid per bucket, per venue (two-sided quotes only)", spread_chart),
        _section("rejects", "Risk rejects by reason", "tape.risk_rejects_1m, summed over the range",
                 lambda: svg.hbars([(r, [n]) for r, n in q.rejects(client, w)], str, title="rejects by reason")),
        _section("pnl", "PnL per account", "tape.pnl_1m: total_pnl of each account's latest minute bucket in the range (currency units)",
                 lambda: svg.hbars([(a, [v]) for a, v in q.pnl(client, w)], money, title="pnl per account")),
        _section("latency", "Latency per stage", "tape.stage_latency: p50 / p90 / p99 of the time from a record's input being appended to the record being appended "
                 "(commit times of the processors' transactions; stages fed by a source topic have no input append time)", latency_chart),
        _section("dlq", "Dead letters", "tape.dlq_counts_1m, by processor / reason code",
                 lambda: svg.hbars([(r, [n]) for r, n in q.dlq(client, w)], str, title="dead letters")),
    ]
    rows = "".join(f"<tr><td><b>{escape(k)}</b></td><td>{escape(v)}</td></tr>" for k, v in meta)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>hftstream tape report</title>'
            f"<style>{CSS}</style></head><body><h1>hftstream tape report</h1><table class=\"meta\">{rows}</table>"
            f"{''.join(sections)}</body></html>\n")
