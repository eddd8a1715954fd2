"""Small inline-SVG charts for the tape report: pure functions from numbers to an ``<svg>`` string.

Values arrive exact (``int`` / ``Decimal``); they become floats only to place pixels, and every label
shows the exact value through the caller's ``fmt``. Every chart of no data returns :func:`no_data`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from html import escape

Number = int | Decimal
PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d")
UP, DOWN, GRID, TEXT = "#16a34a", "#dc2626", "#e5e7eb", "#374151"


@dataclass(frozen=True)
class Candle:
    """One bar: label (time text), open/high/low/close and volume, exact."""

    label: str
    open: Number
    high: Number
    low: Number
    close: Number
    volume: Number


def no_data(message: str = "no data") -> str:
    """The placeholder an empty section shows instead of a chart."""
    return f'<p class="no-data">{escape(message)}</p>'


def _scale(lo: float, hi: float, top: float, bottom: float) -> Callable[[float], float]:
    """Map [lo, hi] onto pixels [bottom, top] (a flat range is centred)."""
    if hi == lo:
        return lambda v: (top + bottom) / 2
    return lambda v: bottom - (v - lo) / (hi - lo) * (bottom - top)


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
            f'<title>{escape(title)}</title>{"".join(body)}</svg>')


def _text(x: float, y: float, s: str, anchor: str = "start", size: int = 11) -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{TEXT}" text-anchor="{anchor}">{escape(s)}</text>'


def ticks(lo: Number, hi: Number, target: int = 6) -> list[Number]:
    """Round values (1, 2, 2.5 or 5 x 10^k apart) inside [lo, hi], about ``target`` of them; exact, ints stay ints.

    Scaled integers have power-of-ten scales, so a round step of the integer is a round step of the decimal.
    """
    if hi <= lo:
        return [lo]
    ints = isinstance(lo, int) and isinstance(hi, int)
    raw = (Decimal(hi) - Decimal(lo)) / target
    base = Decimal(1).scaleb(raw.adjusted())
    step = next(base * Decimal(m) for m in ("1", "2", "2.5", "5", "10") if base * Decimal(m) >= raw)
    if ints:
        step = max(Decimal(1), step.to_integral_value(rounding=ROUND_CEILING))
    v = (Decimal(lo) / step).to_integral_value(rounding=ROUND_CEILING) * step
    out: list[Number] = []
    while v <= hi:
        out.append(int(v) if ints else v)
        v += step
    return out or [lo, hi]


def _y_axis(lo: Number, hi: Number, y: Callable[[float], float], x0: float, x1: float, fmt: Callable[[Number], str],
            title: str = "", target: int = 6) -> list[str]:
    """Grid lines and labels at round values between ``lo`` and ``hi``, and the axis title (its unit) above them."""
    out = []
    for v in ticks(lo, hi, target):
        py = y(float(v))
        out.append(f'<line x1="{x0}" y1="{py:.1f}" x2="{x1}" y2="{py:.1f}" stroke="{GRID}"/>')
        out.append(_text(x0 - 4, py + 4, fmt(v), "end", size=10))
    if title:
        out.append(_text(4, min(y(float(lo)), y(float(hi))) - 12, title, size=10))  # above the top tick's label
    return out


def _x_labels(labels: Sequence[str], positions: Sequence[float], y: float) -> list[str]:
    """First, middle and last labels under the x axis (anchored so none runs off the chart)."""
    if not labels:
        return []
    picks = sorted({0, len(labels) // 2, len(labels) - 1})
    anchors = {0: "start", len(labels) - 1: "end"}
    return [_text(positions[i], y, labels[i], anchors.get(i, "middle")) for i in picks]


def candles(bars: Sequence[Candle], fmt_price: Callable[[Number], str], fmt_size: Callable[[Number], str],
            *, width: int = 860, height: int = 360, title: str = "candles", price_unit: str = "price",
            volume_unit: str = "volume") -> str:
    """Candlesticks (green up, red down) over a volume histogram, each with a labelled axis; times under the x axis."""
    if not bars:
        return no_data()
    left, right, top, split, bottom = 100, width - 10, 24, int(height * 0.68), height - 20
    lo, hi = min(b.low for b in bars), max(b.high for b in bars)
    y = _scale(float(lo), float(hi), top, split - 10)
    vmax = max(b.volume for b in bars)
    vy = _scale(0.0, float(vmax) if vmax else 1.0, split + 18, bottom)
    step = (right - left) / len(bars)
    body = _y_axis(lo, hi, y, left, right, fmt_price, price_unit)
    body += _y_axis(0, vmax, vy, left, right, fmt_size, volume_unit, target=2)
    for i, b in enumerate(bars):
        cx = left + step * (i + 0.5)
        colour = UP if b.close >= b.open else DOWN
        w = max(1.0, step * 0.6)
        y_open, y_close = y(float(b.open)), y(float(b.close))
        body.append(f'<line x1="{cx:.1f}" y1="{y(float(b.high)):.1f}" x2="{cx:.1f}" y2="{y(float(b.low)):.1f}" stroke="{colour}"/>')
        body.append(f'<rect x="{cx - w / 2:.1f}" y="{min(y_open, y_close):.1f}" width="{w:.1f}" '
                    f'height="{max(1.0, abs(y_close - y_open)):.1f}" fill="{colour}"><title>{escape(b.label)} '
                    f'O {fmt_price(b.open)} H {fmt_price(b.high)} L {fmt_price(b.low)} C {fmt_price(b.close)} V {fmt_size(b.volume)}</title></rect>')
        vtop = vy(float(b.volume))
        body.append(f'<rect x="{cx - w / 2:.1f}" y="{vtop:.1f}" width="{w:.1f}" height="{max(0.0, bottom - vtop):.1f}" fill="#9ca3af"/>')
    body += _x_labels([b.label for b in bars], [left + step * (i + 0.5) for i in range(len(bars))], height - 4)
    return _svg(width, height, body, title)


def lines(series: dict[str, Sequence[tuple[float, Number]]], fmt: Callable[[Number], str], *,
          x_labels: tuple[str, str] = ("", ""), width: int = 860, height: int = 240, title: str = "lines", unit: str = "") -> str:
    """One polyline per named series of (x, value) points on shared axes (``unit`` titles the y axis), with a legend."""
    points = [p for s in series.values() for p in s]
    if not points:
        return no_data()
    left, right, top, bottom = 100, width - 130, 24, height - 20
    xs, vs = [p[0] for p in points], [p[1] for p in points]
    lo, hi = min(vs), max(vs)
    y = _scale(float(lo), float(hi), top, bottom)
    xmin, xmax = min(xs), max(xs)
    x = (lambda v: left + (v - xmin) / (xmax - xmin) * (right - left)) if xmax > xmin else (lambda v: (left + right) / 2)
    body = _y_axis(lo, hi, y, left, right, fmt, unit)
    for i, (name, pts) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        coords = " ".join(f"{x(px):.1f},{y(float(pv)):.1f}" for px, pv in sorted(pts, key=lambda p: p[0]))
        if len(pts) == 1:
            px, pv = pts[0]
            body.append(f'<circle cx="{x(px):.1f}" cy="{y(float(pv)):.1f}" r="3" fill="{colour}"/>')
        body.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        body.append(f'<rect x="{right + 10}" y="{top + i * 16}" width="10" height="10" fill="{colour}"/>')
        body.append(_text(right + 24, top + i * 16 + 9, name))
    body.append(_text(left, height - 4, x_labels[0]))
    body.append(_text(right, height - 4, x_labels[1], "end"))
    return _svg(width, height, body, title)


def hbars(rows: Sequence[tuple[str, Sequence[Number]]], fmt: Callable[[Number], str], *, keys: Sequence[str] = ("",),
          width: int = 860, bar: int = 14, title: str = "bars") -> str:
    """Horizontal bars: one group per labelled row, one bar per key (a legend when several); negatives go left of zero."""
    if not rows:
        return no_data()
    values = [v for _, vs in rows for v in vs]
    lo, hi = min(0, *values), max(0, *values)
    left, right = 240, width - 110
    span = float(hi - lo) or 1.0
    x = lambda v: left + (float(v) - float(lo)) / span * (right - left)  # noqa: E731
    group = bar * len(keys) + 8
    legend = 18 if len(keys) > 1 else 0
    height = legend + group * len(rows) + 6
    body = []
    if legend:
        for k, key in enumerate(keys):
            body.append(f'<rect x="{left + k * 90}" y="2" width="10" height="10" fill="{PALETTE[k % len(PALETTE)]}"/>')
            body.append(_text(left + k * 90 + 14, 11, key))
    zero = x(0)
    body.append(f'<line x1="{zero:.1f}" y1="{legend}" x2="{zero:.1f}" y2="{height}" stroke="{GRID}"/>')
    for r, (label, vs) in enumerate(rows):
        gy = legend + r * group + 4
        body.append(_text(left - 6, gy + group / 2, label if len(label) <= 36 else label[:35] + "…", "end"))
        for k, v in enumerate(vs):
            x0, x1 = sorted((zero, x(v)))
            body.append(f'<rect x="{x0:.1f}" y="{gy + k * bar:.1f}" width="{max(1.0, x1 - x0):.1f}" height="{bar - 2}" '
                        f'fill="{PALETTE[k % len(PALETTE)]}"><title>{escape(label)} {escape(keys[k])} {escape(fmt(v))}</title></rect>')
            body.append(_text(max(x1, zero) + 4, gy + k * bar + bar - 4, fmt(v), size=10))
    return _svg(width, height, body, title)
