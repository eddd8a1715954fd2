"""The tape report's SVG charts: pure functions, checked on their markup."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from decimal import Decimal

from connectors.clickhouse.report import svg
from connectors.clickhouse.report.html import iso, micros, scaled
from connectors.clickhouse.report.svg import Candle

NS = "{http://www.w3.org/2000/svg}"


def parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)


def test_candles_draws_a_body_and_a_volume_bar_per_bar_coloured_by_direction() -> None:
    bars = [Candle("t0", 100, 120, 90, 110, 5), Candle("t1", 110, 115, 95, 100, 7), Candle("t2", 100, 100, 100, 100, 0)]
    root = parse(svg.candles(bars, scaled(2), str))
    rects = root.findall(f"{NS}rect")
    assert len(rects) == 6  # body + volume per bar
    bodies = rects[0::2]
    assert [r.get("fill") for r in bodies] == [svg.UP, svg.DOWN, svg.UP]
    assert len(root.findall(f"{NS}line")) >= 3  # wicks
    # the highest high is at the top of the plot, the lowest low at the bottom of the price pane
    wick_ys = [(float(w.get("y1")), float(w.get("y2"))) for w in root.findall(f"{NS}line") if w.get("x1") == w.get("x2")]
    assert min(y for y, _ in wick_ys) == 24.0  # the plot's top (room above for the axis title)
    # the exact decimal price appears in the tooltip and the axis
    assert "1.20" in ET.tostring(root, encoding="unicode") and "0.90" in ET.tostring(root, encoding="unicode")


def test_candle_body_height_follows_open_close_distance() -> None:
    bars = [Candle("a", 0, 100, 0, 100, 1), Candle("b", 50, 60, 40, 55, 1)]
    bodies = parse(svg.candles(bars, str, str)).findall(f"{NS}rect")[0::2]
    h_big, h_small = float(bodies[0].get("height")), float(bodies[1].get("height"))
    assert h_big > 5 * h_small > 0


def test_lines_draws_one_polyline_per_series_sorted_by_x() -> None:
    root = parse(svg.lines({"a": [(2.0, 3), (0.0, 1), (1.0, 2)], "b": [(0.0, 5)]}, str, x_labels=("start", "end")))
    polys = root.findall(f"{NS}polyline")
    assert len(polys) == 2
    xs = [float(p.split(",")[0]) for p in polys[0].get("points").split()]
    assert xs == sorted(xs) and len(xs) == 3
    assert len(root.findall(f"{NS}circle")) == 1  # a single point is still visible
    text = ET.tostring(root, encoding="unicode")
    assert "start" in text and "end" in text and ">a<" in text and ">b<" in text


def test_hbars_handles_negative_values_left_of_zero() -> None:
    root = parse(svg.hbars([("win", [Decimal("12.50")]), ("loss", [Decimal("-37.25")])], str))
    zero = next(line for line in root.findall(f"{NS}line"))
    zx = float(zero.get("x1"))
    win, loss = root.findall(f"{NS}rect")
    assert float(win.get("x")) == zx and float(loss.get("x")) + float(loss.get("width")) == zx
    assert float(loss.get("width")) > 2.5 * float(win.get("width"))
    assert "-37.25" in ET.tostring(root, encoding="unicode")


def test_hbars_groups_one_bar_per_key_with_a_legend() -> None:
    root = parse(svg.hbars([("risk", [1, 2, 3]), ("fills", [4, 5, 6])], str, keys=("p50", "p90", "p99")))
    rects = root.findall(f"{NS}rect")
    assert len(rects) == 3 + 6  # legend swatches + bars
    assert {r.get("fill") for r in rects} == set(svg.PALETTE[:3])


def test_empty_inputs_say_no_data() -> None:
    for markup in (svg.candles([], str, str), svg.lines({}, str), svg.lines({"a": []}, str), svg.hbars([], str)):
        assert "no data" in markup and "<svg" not in markup


def test_labels_are_escaped() -> None:
    markup = svg.hbars([("<script>x</script>", [1])], str)
    assert "<script>" not in markup and parse(markup) is not None


def test_formatting_is_exact() -> None:
    assert scaled(4)(1_872_300) == "187.2300"
    assert scaled(8)(123_456_789_012) == "1,234.56789012"
    assert scaled(0)(42) == "42"
    assert micros(1_500) == "1.5 µs"
    assert iso(1_767_364_200_123_456_789) == "2026-01-02T14:30:00.123Z"
    assert re.fullmatch(r"[-\d,.]+", scaled(2)(-5)) and scaled(2)(-5) == "-0.05"


def test_ticks_are_round_exact_values_inside_the_range() -> None:
    assert svg.ticks(1_872_500, 1_873_900) == [1_872_500, 1_872_750, 1_873_000, 1_873_250, 1_873_500, 1_873_750]  # 1, 2, 2.5, 5 x 10^k
    assert svg.ticks(1_872_550, 1_873_900, 8) == [1_872_600, 1_872_800, 1_873_000, 1_873_200, 1_873_400, 1_873_600, 1_873_800]
    assert svg.ticks(0, 7) == [0, 2, 4, 6]
    assert svg.ticks(0, 1000, 2) == [0, 500, 1000]
    assert svg.ticks(Decimal("-1.25"), Decimal("3.5")) == [Decimal("-1"), Decimal("0"), Decimal("1"), Decimal("2"), Decimal("3")]
    assert svg.ticks(5, 5) == [5]
    assert all(isinstance(t, int) for t in svg.ticks(3, 10**12))


def test_candle_axes_have_round_ticks_and_say_their_units() -> None:
    bars = [Candle(f"t{i}", 1_872_500 + 100 * i, 1_872_600 + 100 * i, 1_872_400 + 100 * i, 1_872_550 + 100 * i, 1000 + i) for i in range(30)]
    markup = svg.candles(bars, scaled(4), str, price_unit="price (USD)", volume_unit="volume (AAPL units traded)")
    texts = [t.text for t in parse(markup).iter(f"{NS}text")]
    price_labels = [t for t in texts if t and t.startswith("187.")]
    assert len(price_labels) >= 3  # round values between the min and the max, not only those two
    assert "price (USD)" in texts and "volume (AAPL units traded)" in texts
    assert "0" in texts  # the volume axis starts at zero
    assert {"t0", "t15", "t29"} <= set(texts)  # first, middle and last time under the x axis


def test_the_candles_feed_is_named_in_words() -> None:
    from connectors.clickhouse.report.queries import feed_name

    assert feed_name("internal", "internal") == "the internal matching engine (md.book)"
    assert feed_name("venue", "alpha") == "venue alpha"
