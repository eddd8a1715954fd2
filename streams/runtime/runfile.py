"""Run files: what a running processor instance says about itself where ``hftstream status`` can read it.

During a broker outage the log cannot tell ``status`` anything (it is the thing that is down),
so each ``hftstream run`` process writes a small JSON file per processor instance into
:func:`run_dir` (``HFTSTREAM_RUN_DIR``, default ``~/.cache/hftstream/run``): its log URL, pid
and the current or last broker outage. It is written only when an outage starts, retries or
ends (never on the hot path) and removed when the process exits cleanly. ``status`` on the same
machine reads the files of live processes on the same log; processes on other machines are
seen through their metrics (``hftstream_broker_outage``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import Any

RUN_DIR_ENV = "HFTSTREAM_RUN_DIR"


def run_dir() -> Path:
    """Where run files live."""
    configured = os.environ.get(RUN_DIR_ENV, "").strip()
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "hftstream" / "run"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunFile:
    """The run file of one processor instance in this process (no file until there is something to say)."""

    def __init__(self, log_url: str, processor: str, instance: str) -> None:
        self.log_url = log_url
        self.processor = processor
        self.instance = instance
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{processor}.{instance}")
        self.path = run_dir() / f"{safe}.{os.getpid()}.json"
        self._written = False

    def _write(self, outage: dict[str, Any]) -> None:
        doc = {"log": self.log_url, "processor": self.processor, "instance": self.instance, "pid": os.getpid(),
               "outage": outage}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(doc, sort_keys=True))
            tmp.replace(self.path)
            self._written = True
        except OSError:  # a read-only home must not stop the pipeline: status just will not see it
            pass

    def outage(self, since_ns: int, attempts: int, elapsed_s: float, limit_s: float, error: str) -> None:
        """An outage is in progress."""
        self._write({"state": "retrying", "since_ns": since_ns, "attempts": attempts, "elapsed_s": round(elapsed_s, 1),
                     "limit_s": limit_s, "last_error": error})

    def recovered(self, since_ns: int, attempts: int, duration_s: float, limit_s: float) -> None:
        """The outage is over: the pipeline resumed from its last commit."""
        self._write({"state": "recovered", "since_ns": since_ns, "attempts": attempts,
                     "duration_s": round(duration_s, 1), "limit_s": limit_s})

    def remove(self) -> None:
        """The process exits: nothing more to say."""
        if self._written:
            with contextlib.suppress(OSError):
                self.path.unlink()


def read_runfiles(log_url: str) -> list[dict[str, Any]]:
    """The run files of live processes on ``log_url`` (stale ones of dead processes are removed)."""
    out: list[dict[str, Any]] = []
    folder = run_dir()
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.json")):
        try:
            doc = json.loads(path.read_text())
            pid = int(doc["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not _pid_alive(pid):
            with contextlib.suppress(OSError):
                path.unlink()
            continue
        if doc.get("log") == log_url:
            out.append(doc)
    return out


def describe(doc: dict[str, Any]) -> str:
    """One line for ``status``: ``broker outage: retrying for 12 s ...`` or ``rode out a 14 s broker outage``."""
    o = doc.get("outage") or {}
    who = f"instance {doc.get('instance')} (pid {doc.get('pid')})"
    if o.get("state") == "retrying":
        return (f"broker outage: {who} retrying for {o.get('elapsed_s')} s (attempt {o.get('attempts')}, "
                f"limit {o.get('limit_s')} s): {o.get('last_error')}")
    return f"{who} rode out a {o.get('duration_s')} s broker outage ({o.get('attempts')} attempts), resumed from the last commit"
