"""Row 5 of bench_runtime: the passthrough processor vs quixstreams exactly-once, same broker and records.

quixstreams runs in its own virtualenv (``~/.cache/hftstream/quix-venv``, created on first use
with ``python3 -m venv`` + ``pip install quixstreams fastavro``) because it pins its own
confluent-kafka. The quix app does what the passthrough does: strip the 10-byte single-object
header, fastavro-decode, fastavro-encode, re-frame, produce to an output topic, with
``processing_guarantee="exactly-once"`` and the same commit cadence (5000 records or 100 ms).
Its rate: first record processed -> ``app.run()`` returned (its final commit and close included,
which slightly favours hftstream; the row says so).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastavro.schema import expand_schema

from runtime_worker import PassConfig, Passthrough
from streams.log import TopicSpec
from streams.log.kafka import KafkaLog
from streams.serde import Serde

VENV = Path.home() / ".cache" / "hftstream" / "quix-venv"
TARGET = 1.0

QUIX_APP = r'''
import json, sys, time
from io import BytesIO
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from quixstreams import Application

cfg = json.load(open(sys.argv[1]))
schema = parse_schema(cfg["schema"])
header = bytes.fromhex(cfg["header"])
total = cfg["records"]
app = Application(
    broker_address=cfg["bootstrap"], consumer_group=cfg["group"], auto_offset_reset="earliest",
    processing_guarantee="exactly-once", commit_interval=cfg["commit_interval_s"], commit_every=cfg["commit_every"],
    use_changelog_topics=False, auto_create_topics=False,
)
src = app.topic(cfg["source"], key_deserializer="bytes", value_deserializer="bytes")
dst = app.topic(cfg["sink"], key_serializer="bytes", value_serializer="bytes")
seen = {"n": 0, "t0": None}

def transform(data):
    if seen["t0"] is None:
        seen["t0"] = time.perf_counter()
    bio = BytesIO(data)
    bio.seek(10)
    value = schemaless_reader(bio, schema, None)
    out = BytesIO()
    out.write(header)
    schemaless_writer(out, schema, value)
    seen["n"] += 1
    if seen["n"] >= total:
        app.stop()
    return out.getvalue()

app.dataframe(src).apply(transform).to_topic(dst)
app.run()
t1 = time.perf_counter()
print(json.dumps({"records": seen["n"], "seconds": t1 - seen["t0"]}))
'''


def ensure_venv() -> tuple[Path | None, str]:
    """The quix virtualenv's python, or ``None`` and why it could not be made."""
    python = VENV / "bin" / "python"
    if python.exists():
        check = subprocess.run([str(python), "-c", "import quixstreams, fastavro"], capture_output=True, text=True)
        if check.returncode == 0:
            return python, ""
    try:
        subprocess.run(["python3", "-m", "venv", str(VENV)], check=True, capture_output=True, text=True, timeout=120)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "quixstreams", "fastavro"], check=True, capture_output=True,
                       text=True, timeout=600)
    except (subprocess.SubprocessError, OSError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        return None, f"could not create {VENV}: {detail.strip().splitlines()[-1] if detail.strip() else exc}"
    return python, ""


def _versions(python: Path) -> str:
    out = subprocess.run([str(python), "-c", "import quixstreams, confluent_kafka as c; v = c.version(); print(quixstreams.__version__, v if isinstance(v, str) else v[0])"],
                         capture_output=True, text=True)
    return out.stdout.strip() or "?"


def _own_version() -> str:
    import confluent_kafka

    v = confluent_kafka.version()
    return v if isinstance(v, str) else v[0]


def run_quix(python: Path, bootstrap: str, serde: Serde, name: str, source: str, sink: str, n: int, commit_every: int,
             commit_ms: int) -> tuple[int, float]:
    """Run the quix app over ``source`` once; (records, seconds)."""
    cur = serde.repo.current(name)
    schema = {k: v for k, v in expand_schema(cur.parsed).items() if not k.startswith("__")}
    cfg = {
        "bootstrap": bootstrap, "group": f"bench-quix-{uuid.uuid4().hex[:8]}", "source": source, "sink": sink, "records": n,
        "schema": schema, "header": (b"\xc3\x01" + cur.fingerprint).hex(), "commit_every": commit_every,
        "commit_interval_s": commit_ms / 1000,
    }
    with tempfile.TemporaryDirectory(prefix="hftstream-quix-") as tmp:
        (Path(tmp) / "cfg.json").write_text(json.dumps(cfg))
        (Path(tmp) / "app.py").write_text(QUIX_APP)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        done = subprocess.run([str(python), str(Path(tmp) / "app.py"), str(Path(tmp) / "cfg.json")], cwd=tmp, env=env,
                              capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"quix app failed ({done.returncode}): {done.stderr.strip()[-800:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["records"], result["seconds"]


def quix_row(bootstrap: str, serde: Serde, source: str, n: int, run_runner: Callable[..., tuple[int, float]],
             drop_runner: Callable[..., None], commit_every: int = 5000, commit_ms: int = 100, rounds: int = 1) -> dict[str, Any]:
    """The row: Runner + Passthrough vs the quix app, alternating, best of ``rounds``."""
    row: dict[str, Any] = {
        "name": "passthrough vs quixstreams exactly-once",
        "subject": "Runner + Passthrough processor (decode, copy, encode)",
        "limit": "quixstreams, processing_guarantee=exactly-once, same fastavro decode + encode",
        "unit": "msgs/s",
        "target": TARGET,
    }
    python, why = ensure_venv()
    log = KafkaLog(bootstrap)
    subject, limit = [], []
    try:
        for _ in range(rounds):
            name = f"bench-pass-{uuid.uuid4().hex[:8]}"
            sink = f"{name}-out"
            log.create_topic(TopicSpec(sink, 3))
            got, secs = run_runner(log, serde, Passthrough, PassConfig(source=source, sink=sink), name)
            subject.append(got / secs)
            drop_runner(log, name, sink)
            if python is None:
                continue
            qsink = f"bench-quix-out-{uuid.uuid4().hex[:8]}"
            log.create_topic(TopicSpec(qsink, 3))
            try:
                got, secs = run_quix(python, bootstrap, serde, "hftstream.orders.NewOrder", source, qsink, n, commit_every, commit_ms)
                limit.append(got / secs)
            except (RuntimeError, subprocess.SubprocessError) as exc:
                python, why = None, f"the quix app failed: {exc}"
            finally:
                log.delete_topic(qsink)
    finally:
        log.close()
    row["subject_rate"] = max(subject)
    if python is None:
        row["limit_rate"] = 0.0
        row["note"] = f"NOT MEASURED: {why}"
        return row
    row["limit_rate"] = max(limit)
    row["note"] = (f"{n:,} NewOrder records, 3 partitions, commit every {commit_every} records or {commit_ms} ms on both sides, best of "
                   f"{rounds}; quixstreams / confluent-kafka {_versions(python)} in {VENV} (hftstream: confluent-kafka {_own_version()}). quix's time includes its final commit and close")
    return row


if __name__ == "__main__":
    print(ensure_venv())
    sys.exit(0)
