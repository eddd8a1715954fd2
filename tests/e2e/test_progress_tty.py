"""Long work shows progress on a terminal, and only there: pipes and CI get clean output."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

HFTSTREAM = str(Path(sys.executable).with_name("hftstream"))


def _run_with_tty_stderr(args: list[str], out_path: Path) -> tuple[int, str, str]:
    """Run ``args`` with stderr on a pseudo-terminal and stdout to a file (a pipe could fill and block)."""
    master, slave = pty.openpty()
    try:
        with open(out_path, "wb") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=slave, env={**os.environ, "COLUMNS": "100", "TERM": "xterm"})
        os.close(slave)
        chunks = []
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed its end
                break
            if not data:
                break
            chunks.append(data)
        code = proc.wait(timeout=60)
        return code, out_path.read_text(), b"".join(chunks).decode("utf-8", "replace")
    finally:
        os.close(master)


def test_replay_and_simulate_draw_a_progress_bar_on_a_tty_and_not_on_a_pipe(tmp_path):
    url = f"embedded://{tmp_path / 'log'}"
    sim = [HFTSTREAM, "--log", url, "feed", "simulate", "--venues", "1", "--symbols", "3", "--events", "30000", "--seed", "5"]
    code, _, tty_err = _run_with_tty_stderr(sim, tmp_path / "sim.out")
    assert code == 0
    assert "simulating" in tty_err and "\x1b[" in tty_err  # rich drew (and then cleared) a live bar

    replay = [HFTSTREAM, "--log", url, "replay", "-t", "md.raw.alpha"]
    code, out, tty_err = _run_with_tty_stderr(replay, tmp_path / "replay.out")
    assert code == 0
    assert "replay" in tty_err and "\x1b[" in tty_err
    assert out.count("\n") > 29_000 and "\x1b[" not in out  # records on stdout stay clean JSON

    with open(tmp_path / "piped.out", "wb") as sink:
        piped = subprocess.run(replay, stdout=sink, stderr=subprocess.PIPE, text=True, timeout=60)
    assert piped.returncode == 0
    assert "\x1b[" not in piped.stderr and piped.stderr.startswith("replay md.raw.alpha")
