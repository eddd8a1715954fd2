"""Grafana dashboards over the tape, checked without Grafana: every panel's SQL run against the tape.

The dashboards (``dashboards/*.json``) use the ``grafana-clickhouse-datasource`` plugin: each panel
target holds ``rawSql`` with the plugin's macros and the dashboard's template variables. This module
expands them as the plugin does for a time range (:func:`expand`), resolves the variables (a query
variable runs its own SQL and takes its current value, else its first row), runs every panel and
reports, per panel, the rows it returned or why it failed (:func:`check`). A panel fails on a query
error, on having no query, and on returning no rows.

Macros (grafana-clickhouse-datasource v4): ``$__timeFilter(c)``, ``$__timeFilter_ms(c)``,
``$__dateFilter(c)``, ``$__fromTime``, ``$__toTime``, ``$__fromTime_ms``, ``$__toTime_ms``,
``$__timeInterval(c)``, ``$__timeInterval_ms(c)``, ``$__interval_s``, ``$__conditionalAll(cond, $v)``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.errors import ConfigError

PLUGIN = "grafana-clickhouse-datasource"
DASHBOARDS_DIR = Path(__file__).resolve().parents[2] / "dashboards"
MAX_POINTS = 100  # Grafana's interval: the range over about this many points, at least 1 s


@dataclass(frozen=True)
class TimeRange:
    """A dashboard's time range in ns since the epoch; the macros see whole seconds / milliseconds, as Grafana sends."""

    from_ns: int
    to_ns: int

    @property
    def from_s(self) -> int:
        return self.from_ns // 1_000_000_000

    @property
    def to_s(self) -> int:
        return -(-self.to_ns // 1_000_000_000)

    @property
    def interval_s(self) -> int:
        return max(1, (self.to_s - self.from_s) // MAX_POINTS)


@dataclass(frozen=True)
class PanelResult:
    dashboard: str
    panel: str
    rows: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def load_dashboards(folder: Path = DASHBOARDS_DIR) -> list[tuple[str, dict[str, Any]]]:
    """``(file name, dashboard JSON)`` for every ``*.json`` in ``folder``, sorted; a file that is not JSON is an error."""
    if not folder.is_dir():
        raise ConfigError(f"the dashboards folder {folder} does not exist", hint="give the dashboards folder with --dir (the repo's is dashboards/)")
    files = sorted(folder.glob("*.json"))
    if not files:
        raise ConfigError(f"no dashboard JSON in {folder}", hint="give the dashboards folder with --dir (the repo's is dashboards/)")
    out = []
    for f in files:
        try:
            out.append((f.name, json.loads(f.read_text())))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{f} is not valid JSON: {exc}", hint="fix the file (export it again from Grafana)") from None
    return out


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside (collapsed) rows; row panels themselves are layout, not queries."""
    for p in dashboard.get("panels", []):
        if p.get("type") == "row":
            yield from p.get("panels", [])
        else:
            yield p


def _args(text: str, start: int) -> tuple[list[str], int]:
    """The comma-separated arguments of a macro call whose ``(`` is at ``start``; nested parentheses kept."""
    depth, args, cur, i = 0, [], [], start + 1
    while i < len(text):
        ch = text[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            if depth == 0:
                args.append("".join(cur).strip())
                return args, i + 1
            depth -= 1
        elif ch == "," and depth == 0:
            args.append("".join(cur).strip())
            cur = []
            i += 1
            continue
        cur.append(ch)
        i += 1
    raise ValueError(f"unclosed macro call at: {text[start - 20:start + 20]!r}")


def _call_macro(name: str, args: list[str], r: TimeRange) -> str:
    col = args[0] if args else ""
    fs, ts, fms, tms = r.from_s, r.to_s, r.from_ns // 1_000_000, -(-r.to_ns // 1_000_000)
    table = {
        "timeFilter": f"{col} >= toDateTime({fs}) AND {col} <= toDateTime({ts})",
        "timeFilter_ms": f"{col} >= fromUnixTimestamp64Milli({fms}) AND {col} <= fromUnixTimestamp64Milli({tms})",
        "dateFilter": f"{col} >= toDate({fs}) AND {col} <= toDate({ts})",
        "dateTimeFilter": f"{col} >= toDateTime({fs}) AND {col} <= toDateTime({ts})",
        "timeInterval": f"toStartOfInterval(toDateTime({col}), INTERVAL {r.interval_s} second)",
        "timeInterval_ms": f"toStartOfInterval(toDateTime64({col}, 3), INTERVAL {r.interval_s * 1000} millisecond)",
        "conditionalAll": args[0] if args else "",
    }
    if name not in table:
        raise ValueError(f"unknown macro $__{name}(...)")
    return table[name]


_MACRO = re.compile(r"\$__(\w+)")


def expand(sql: str, r: TimeRange, variables: dict[str, str] | None = None) -> str:
    """``sql`` with template variables and the plugin's macros expanded for ``r`` (raises ValueError on an unknown one)."""
    sql = substitute(sql, variables or {})
    out, i = [], 0
    for m in _MACRO.finditer(sql):
        if m.start() < i:
            continue
        out.append(sql[i:m.start()])
        name, end = m.group(1), m.end()
        if end < len(sql) and sql[end] == "(":
            args, i = _args(sql, end)
            out.append(_call_macro(name, args, r))
            continue
        plain = {"fromTime": f"toDateTime({r.from_s})", "toTime": f"toDateTime({r.to_s})",
                 "fromTime_ms": f"fromUnixTimestamp64Milli({r.from_ns // 1_000_000})",
                 "toTime_ms": f"fromUnixTimestamp64Milli({-(-r.to_ns // 1_000_000)})",
                 "interval_s": str(r.interval_s), "interval_ms": str(r.interval_s * 1000), "interval": f"{r.interval_s}s"}
        if name not in plain:
            raise ValueError(f"unknown macro $__{name}")
        out.append(plain[name])
        i = end
    out.append(sql[i:])
    return "".join(out)


def substitute(sql: str, variables: dict[str, str]) -> str:
    """Grafana's variable syntaxes: ``${name}``, ``${name:format}`` (``singlequote``/``sqlstring`` quote it), ``[[name]]``, ``$name``."""
    def value(name: str, whole: str, fmt: str | None = None) -> str:
        if name not in variables:
            return whole
        v = variables[name]
        return "'" + v.replace("'", "''") + "'" if fmt in ("singlequote", "sqlstring") else v

    sql = re.sub(r"\$\{(\w+)(?::([\w-]+))?\}", lambda m: value(m.group(1), m.group(0), m.group(2)), sql)
    sql = re.sub(r"\[\[(\w+)\]\]", lambda m: value(m.group(1), m.group(0)), sql)
    return re.sub(r"\$(?!__)(\w+)", lambda m: value(m.group(1), m.group(0)), sql)


def resolve_variables(client: Any, dashboard: dict[str, Any], r: TimeRange) -> dict[str, str]:
    """Each template variable's value for the check: its current value, else a query variable's first row."""
    out: dict[str, str] = {}
    for var in dashboard.get("templating", {}).get("list", []):
        name, kind = var.get("name"), var.get("type")
        current = (var.get("current") or {}).get("value")
        if kind == "datasource":
            out[name] = current or PLUGIN
        elif current not in (None, "", [], "$__all"):
            out[name] = current if isinstance(current, str) else str(current[0])
        elif kind == "query":
            query = var.get("query")
            sql = query.get("rawSql", query.get("query", "")) if isinstance(query, dict) else query
            rows = client.query(expand(sql, r, out)).result_rows
            if not rows:
                raise ValueError(f"variable ${name}: its query returned no values")
            out[name] = str(rows[0][0])
        elif kind in ("custom", "constant", "textbox"):
            out[name] = str(var.get("query", "")).split(",")[0].strip()
    return out


def check(client: Any, dashboards: list[tuple[str, dict[str, Any]]], r: TimeRange) -> list[PanelResult]:
    """Run every panel of ``dashboards`` for ``r``; one :class:`PanelResult` per panel (and per dashboard whose variables fail)."""
    results = []
    for file, dash in dashboards:
        title = dash.get("title") or file
        try:
            variables = resolve_variables(client, dash, r)
        except Exception as exc:  # a variable's query failed: every panel depends on it
            results.append(PanelResult(title, "(template variables)", 0, _first_line(exc)))
            continue
        for panel in panels(dash):
            name = panel.get("title") or f"panel {panel.get('id')}"
            sqls = [t.get("rawSql", "").strip() for t in panel.get("targets", []) if t.get("rawSql", "").strip()]
            if not sqls:
                results.append(PanelResult(title, name, 0, "the panel has no query (no target with rawSql)"))
                continue
            rows, error = 0, None
            for sql in sqls:
                try:
                    got = len(client.query(expand(sql, r, variables)).result_rows)
                except Exception as exc:
                    error = _first_line(exc)
                    break
                if got == 0:
                    error = "the query returned no rows"
                    break
                rows += got
            results.append(PanelResult(title, name, rows, error))
    return results


def tape_span(client: Any) -> TimeRange | None:
    """The tape's own time range (log time of its first and last record), or None when it is empty."""
    lo, hi, n = client.query(
        "SELECT toUnixTimestamp64Nano(min(log_ts)), toUnixTimestamp64Nano(max(log_ts)), count() FROM tape.records").result_rows[0]
    return TimeRange(int(lo), int(hi)) if n else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:400]
