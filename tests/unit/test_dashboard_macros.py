"""Grafana's macros and template variables, expanded as the grafana-clickhouse-datasource plugin does (pure)."""

from __future__ import annotations

import pytest

from connectors.clickhouse.dashboards import TimeRange, expand, panels, substitute

R = TimeRange(1_767_364_200_123_456_789, 1_767_364_500_000_000_001)  # 300 s (and a bit): 14:30:00.123.. -> 14:35:00.000..1


def test_time_macros_use_whole_seconds_and_milliseconds_around_the_range() -> None:
    assert expand("WHERE $__timeFilter(ts)", R) == "WHERE ts >= toDateTime(1767364200) AND ts <= toDateTime(1767364501)"
    assert expand("$__timeFilter_ms(ts)", R) == (
        "ts >= fromUnixTimestamp64Milli(1767364200123) AND ts <= fromUnixTimestamp64Milli(1767364500001)")
    assert expand("$__fromTime .. $__toTime", R) == "toDateTime(1767364200) .. toDateTime(1767364501)"
    assert expand("$__fromTime_ms", R) == "fromUnixTimestamp64Milli(1767364200123)"


def test_interval_macros_aim_at_about_a_hundred_points_of_at_least_a_second() -> None:
    assert R.interval_s == 3
    assert expand("$__timeInterval(ts)", R) == "toStartOfInterval(toDateTime(ts), INTERVAL 3 second)"
    assert expand("$__timeInterval_ms(ts)", R) == "toStartOfInterval(toDateTime64(ts, 3), INTERVAL 3000 millisecond)"
    assert expand("$__interval_s", R) == "3"
    assert TimeRange(0, 2_000_000_000).interval_s == 1


def test_macro_arguments_may_hold_calls_and_variables_expand_first() -> None:
    sql = "SELECT $__timeInterval(toDateTime64(ts, 9)) WHERE symbol = '${symbol}' AND $symbol2 = [[acct]] AND $__conditionalAll(a IN ($v), $v)"
    out = expand(sql, R, {"symbol": "AAPL", "symbol2": "x", "acct": "'ACC1'", "v": "1"})
    assert out == ("SELECT toStartOfInterval(toDateTime(toDateTime64(ts, 9)), INTERVAL 3 second) WHERE symbol = 'AAPL' "
                   "AND x = 'ACC1' AND a IN (1)")


def test_unknown_macros_and_unclosed_calls_are_errors_and_unknown_variables_stay() -> None:
    with pytest.raises(ValueError, match="unknown macro"):
        expand("$__nope(ts)", R)
    with pytest.raises(ValueError, match="unclosed"):
        expand("WHERE $__timeFilter(ts", R)
    assert substitute("${missing} ${symbol:singlequote} ${symbol:raw}", {"symbol": "O'X"}) == "${missing} 'O''X' O'X"
    assert expand("$__interval", R) == "3s"


def test_panels_inside_rows_are_found() -> None:
    dash = {"panels": [{"type": "row", "panels": [{"title": "a"}]}, {"type": "table", "title": "b"}]}
    assert [p["title"] for p in panels(dash)] == ["a", "b"]
