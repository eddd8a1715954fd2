"""``hftstream tape report`` on a real tape (demo -> sink), rendered by headless Chromium.

The page must stand alone (no http(s) resource), and every chart section must hold drawn SVG in the
DOM Chromium renders; the screenshot must not be blank. Chromium comes from the Debian package
``chromium`` (``make prereqs`` installs it; the fixture tries the same install, and skips saying so
when it cannot).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from png_support import distinct_colours
from tape_support import cli

SECTIONS = ("candles", "spread", "rejects", "pnl", "latency", "dlq")


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def chromium() -> str:
    """The headless browser; installed from Debian's packages when missing (as `make prereqs` does)."""
    found = _chromium()
    if found:
        return found
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if sudo and not shutil.which("sudo"):
        pytest.skip("chromium is not installed and cannot be: not root and no sudo (run `make prereqs` or `apt-get install chromium`)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "chromium"], capture_output=True, text=True, env=env, timeout=600)
    found = _chromium()
    if not found:
        pytest.skip(f"chromium could not be installed (apt-get install chromium exited {done.returncode}: {done.stderr.strip()[-300:]})")
    return found


@pytest.fixture(scope="module")
def report_tape(demo_tape: Path) -> Path:
    """The session's demo tape (the demo sank it; migration 0002 made the analytics views the report reads)."""
    return demo_tape


def _render(chromium: str, page: Path, out: Path) -> tuple[str, bytes]:
    args = [chromium, "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars", f"--user-data-dir={out / 'profile'}"]
    dom = subprocess.run([*args, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    shot = out / "shot.png"
    run = subprocess.run([*args, f"--screenshot={shot}", "--window-size=1000,2300", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    return dom.stdout, shot.read_bytes()


def _section(dom: str, anchor: str) -> str:
    m = re.search(rf'<section id="{anchor}">(.*?)</section>', dom, re.S)
    assert m, f"section {anchor} is not in the rendered page"
    return m.group(1)


def test_report_is_self_contained_and_renders_every_chart(report_tape: Path, chromium: str, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    done = cli("tape", "report", "--out", str(out), data=report_tape)
    assert done.returncode == 0, done.stderr
    html = out.read_text()
    # nothing fetched: no http(s) resource, no script, no stylesheet link (the SVG namespace is an identifier, not a fetch)
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", html)) - {"http://www.w3.org/2000/svg"}
    assert not urls, urls
    assert "<script" not in html and "<link" not in html and "@import" not in html and "url(" not in html
    assert f"chdb://{report_tape / 'tape'}" in html and re.search(r"fills [1-9][\d,]*", html), "the parameters block names the tape and its counts"
    dom, png = _render(chromium, out, tmp_path)
    for anchor in SECTIONS:
        body = _section(dom, anchor)
        assert "no data" not in body, f"{anchor}: {body[:300]}"
        drawn = len(re.findall(r"<(?:rect|path|polyline|line|circle)\b", body))
        # the demo's dead letters may be one (processor, reason) bar: matching's races are cancel rejects, not dead letters
        assert drawn >= (2 if anchor == "dlq" else 4), f"{anchor} has {drawn} drawn SVG elements"
    assert len(re.findall(r"<rect\b", _section(dom, "candles"))) >= 2 * 10  # ~60 buckets of a busy symbol: bodies + volume
    assert distinct_colours(png) > 20  # a blank or text-only page has a handful


def test_report_range_without_data_says_no_data(report_tape: Path, chromium: str, tmp_path: Path) -> None:
    out = tmp_path / "empty.html"
    done = cli("tape", "report", "--out", str(out), "--from", "2001-01-01T00:00:00Z", "--to", "2001-01-02T00:00:00Z", data=report_tape)
    assert done.returncode == 0, done.stderr
    dom, _ = _render(chromium, out, tmp_path)
    for anchor in SECTIONS:
        assert "no data" in _section(dom, anchor), anchor
    assert "2001-01-01T00:00:00.000Z .. 2001-01-02T00:00:00.000Z" in dom


def test_report_rejects_a_bad_range(report_tape: Path) -> None:
    done = cli("tape", "report", "--from", "2026-01-02", "--to", "2026-01-01", data=report_tape)
    assert done.returncode == 2 and "error:" in done.stderr and "hint:" in done.stderr and "Traceback" not in done.stderr
    done = cli("tape", "report", "--from", "yesterday", data=report_tape)
    assert done.returncode == 2 and "not an ISO-8601 time" in done.stderr


def test_report_symbol_option_picks_the_charted_symbol(report_tape: Path, tmp_path: Path) -> None:
    out = tmp_path / "aapl.html"
    assert cli("tape", "report", "--out", str(out), "--symbol", "AAPL", data=report_tape).returncode == 0
    page = out.read_text()
    assert "AAPL on " in page and "AAPL (price scale 4, size scale 0)" in page
    assert "MSFT on " not in page
    assert "internal internal" not in page and re.search(r"AAPL on (venue \w+|the internal matching engine)", page)
    assert "price (USD)" in page and "volume (AAPL units traded)" in page  # the axes say their units


def test_report_and_bars_refuse_an_unknown_symbol_alike(report_tape: Path, tmp_path: Path) -> None:
    out = tmp_path / "none.html"
    for args in (["tape", "report", "--out", str(out)], ["tape", "bars"]):
        done = cli(*args, "--symbol", "NOPE", data=report_tape)
        assert done.returncode == 2 and done.stderr.startswith("error: symbol 'NOPE' is not on the tape"), done.stderr
        assert "hint: known symbols: " in done.stderr and "AAPL" in done.stderr.split("hint: ")[1], done.stderr
    assert not out.exists()


def test_report_says_the_size_of_the_file_it_wrote(report_tape: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    done = cli("tape", "report", "--out", str(out), data=report_tape)
    assert done.returncode == 0, done.stderr
    assert f"({out.stat().st_size:,} bytes)" in done.stdout  # bytes, not characters (the page has µ and …)
