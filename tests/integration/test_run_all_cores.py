"""``hftstream run all``, live, on one core and on two (``--cores 2``: normalize and the ledger in a second process).

Real console script, real embedded log, the demo's inputs published (and the market data normalized) first. Live
decisions may depend on what had arrived, so the runs are checked on what must hold in any run: every processor
reconciles, every client command got a risk decision, every fill its ledger entries, nothing is doubled (lineage).
SIGTERM stops both processes with their commits.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from streams.lineage import source_of
from streams.log.embedded import EmbeddedLog
from streams.runtime.state import read_range

pytestmark = pytest.mark.slow
HFTSTREAM = str(Path(sys.executable).with_name("hftstream"))
NAMES = {"normalize", "risk", "matching", "dropcopy", "ledger", "reconcile"}


def _committed(root: Path, topic: str) -> list:
    log = EmbeddedLog(root)
    try:
        return [r for p in range(log.partitions(topic)) for r in read_range(log, topic, p, *log.watermarks(topic, p))]
    finally:
        log.close()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's inputs (feeds, instruments, orders, signed operator commands) on an embedded log, not yet processed."""
    from streams.cli.feed import sim_start_ns
    from streams.demo.inputs import publish_inputs
    from streams.serde import Serde
    from streams.topics import apply_topics

    root = tmp_path_factory.mktemp("inputs") / "log"
    log = EmbeddedLog(root)
    apply_topics(log)
    params = {"seed": 3, "orders": 1500, "accounts": 4, "venues": 2, "symbols": 3, "events": 3000, "regime": "calm",
              "slice_ms": 1000, "span_ns": 30 * 10**9, "start_ns": sim_start_ns(None)}
    publish_inputs(log, Serde.from_settings(), params)
    log.close()
    # Live, risk does not wait for market data (issue 13 #6): on a backlog it would decide every order before a
    # normalize in another process had written a price. So the market data is normalized first, as a live feed is.
    normalized = subprocess.run([HFTSTREAM, "--log", f"embedded://{root}", "run", "normalize", "--until-idle"],
                                capture_output=True, text=True, timeout=300)
    assert normalized.returncode == 0, normalized.stderr
    return root


def _run_all(root: Path, *extra: str) -> tuple[dict, str]:
    """``run all`` until its outputs stop growing for 3 s, then SIGTERM; its --json counts and stderr."""
    proc = subprocess.Popen([HFTSTREAM, "--log", f"embedded://{root}", "run", "all", "--json", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        last, still, deadline = -1, time.monotonic(), time.monotonic() + 240
        while time.monotonic() < deadline:
            time.sleep(0.5)
            assert proc.poll() is None, proc.communicate()[1].decode()[-3000:]
            n = sum(len(_committed(root, t)) for t in ("md.normalized", "risk.decisions", "fills", "ledger.entries", "exec.reports"))
            if n != last:
                last, still = n, time.monotonic()
            elif n > 0 and time.monotonic() - still > 3:
                break
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()[-3000:]
    return json.loads(out), err.decode()


@pytest.mark.timeout(900)
def test_run_all_on_two_cores_is_exactly_once(inputs: Path, tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    shutil.copytree(inputs, one)
    shutil.copytree(inputs, two)
    counts1, _ = _run_all(one)
    counts2, err = _run_all(two, "--cores", "2")
    assert "normalize, ledger in a second process (pid" in err, err
    for counts in (counts1, counts2):
        assert set(counts) == NAMES
        assert all(c["records_in"] == c["with_output"] + c["without_output"] + c["dead_letters"] for c in counts.values()), counts
    assert counts2["normalize"]["records_in"] == counts1["normalize"]["records_in"] == 0  # normalized before
    assert counts2["ledger"]["records_in"] > 0 and counts2["risk"]["records_in"] > 0
    orders = len(_committed(two, "orders.in"))
    decisions = _committed(two, "risk.decisions")
    assert len({source_of(r.headers) for r in decisions}) >= orders  # every client command decided (cancels risk issues add some)
    for topic in ("risk.decisions", "fills", "ledger.entries", "exec.reports"):  # a doubled record: same source, same bytes
        seen = Counter((source_of(r.headers), r.value) for r in _committed(two, topic))
        assert seen and max(seen.values()) == 1, topic
    fills = _committed(two, "fills")
    fill_sources = {(("fills",) + (r.partition, r.offset)) for r in fills}
    entry_sources = {source_of(r.headers) for r in _committed(two, "ledger.entries")}
    assert fills and {(t, p, o) for t, p, o in entry_sources if t == "fills"} == {s for s in fill_sources}  # each fill booked


def test_two_cores_need_a_live_run_all(inputs: Path) -> None:
    for args in (["run", "normalize", "--cores", "2"], ["run", "all", "--cores", "2", "--until-idle"]):
        proc = subprocess.run([HFTSTREAM, "--log", f"embedded://{inputs}", *args], capture_output=True, text=True, timeout=120,
                              env={**os.environ})
        assert proc.returncode == 2 and "--cores 2 is for a live `run all`" in proc.stderr and "hint:" in proc.stderr, proc.stderr


def test_a_second_process_whose_parent_is_already_gone_exits_at_once() -> None:
    """The race a SIGKILL of the first process can hit: it dies before the second one asked to die with it. The
    second then sees another parent and must exit (was: it ran on, an orphan holding the first one's stderr open)."""
    code = ("import os, sys\nfrom streams.runtime.second_process import die_with_parent\n"
            "sys.exit(0 if die_with_parent(os.getppid()) and not die_with_parent(os.getppid() + 1_000_000) else 1)")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
