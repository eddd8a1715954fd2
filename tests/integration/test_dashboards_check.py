"""``hftstream dashboards check`` runs every panel of the repo's dashboards on a demo tape, and fails on a broken query,
a panel without a query and a panel whose query returns nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tape_support import cli

ROOT = Path(__file__).resolve().parents[2]


def _panels(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_every_panel_of_every_dashboard_returns_rows_on_a_demo_tape(demo_tape: Path) -> None:
    done = cli("dashboards", "check", "--json", data=demo_tape)
    assert done.returncode == 0, done.stdout + done.stderr
    results = _panels(done.stdout)
    assert {r["dashboard"] for r in results} == {
        "hftstream / market tape", "hftstream / orders and risk", "hftstream / ledger and PnL", "hftstream / pipeline health"}
    assert len(results) >= 16 and all(r["error"] is None and r["rows"] > 0 for r in results), results
    assert f"{len(results)} of {len(results)} panels returned rows" in done.stderr


def _broken_copy(tmp_path: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    folder = tmp_path / "dashboards"
    shutil.copytree(ROOT / "dashboards", folder, ignore=shutil.ignore_patterns("*.md"))
    path = folder / "orders-risk.json"
    dash = json.loads(path.read_text())
    edit(dash["panels"])
    path.write_text(json.dumps(dash))
    return folder


def test_a_broken_query_a_panel_without_query_and_an_empty_result_fail(demo_tape: Path, tmp_path: Path) -> None:
    def edit(ps: list[dict]) -> None:
        ps[0]["targets"][0]["rawSql"] = "SELECT nope FROM tape.no_such_table WHERE $__timeFilter(ts)"
        ps[1]["targets"] = []
        ps[2]["targets"][0]["rawSql"] = ps[2]["targets"][0]["rawSql"].replace("WHERE", "WHERE 1 = 0 AND", 1)

    folder = _broken_copy(tmp_path, edit)
    done = cli("dashboards", "check", "--dir", str(folder), "--json", data=demo_tape)
    assert done.returncode == 1, done.stderr
    failed = {r["panel"]: r["error"] for r in _panels(done.stdout) if r["error"]}
    assert set(failed) == {"Order flow by command", "Risk rejects by reason", "Trading-state changes and the commands behind them"}
    assert "no_such_table" in failed["Order flow by command"] or "UNKNOWN_TABLE" in failed["Order flow by command"]
    assert failed["Risk rejects by reason"] == "the panel has no query (no target with rawSql)"
    assert failed["Trading-state changes and the commands behind them"] == "the query returned no rows"
    assert "3 panel(s) failed" in done.stderr


def test_a_time_range_without_data_fails_every_time_filtered_panel(demo_tape: Path) -> None:
    done = cli("dashboards", "check", "--from", "2001-01-01T00:00:00Z", "--to", "2001-01-01T01:00:00Z", "--json", data=demo_tape)
    assert done.returncode == 1
    empty = [r for r in _panels(done.stdout) if r["error"] == "the query returned no rows"]
    assert len(empty) >= 10
