"""Helpers for the tape tests (importable as ``tape_support``): a chDB tape in a temp folder, records built from the schemas.

chDB opens one engine directory per process: a test that opens a tape in-process closes it
(``with tape_at(...)``) before the next one, and subprocesses (``hftstream tape ...``) need it closed.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from connectors.clickhouse.client import Tape, open_tape
from connectors.clickhouse.ddl import migrate
from streams.config import tape_url_for
from streams.lineage import SOURCE_OFFSET, SOURCE_PARTITION, SOURCE_TOPIC
from streams.log import Log, TopicSpec
from streams.serde import Serde
from streams.serde.samples import sample

HFTSTREAM = str(Path(sys.executable).with_name("hftstream"))
T0 = 1_767_364_200_000_000_000


@contextmanager
def tape_at(data: Path, *, init: bool = True) -> Iterator[Tape]:
    """The chDB tape in ``data/tape``, initialised; closed (and its lock released) on exit."""
    tape = open_tape(tape_url_for(data), create=True)
    try:
        if init:
            migrate(tape.client)
        yield tape
    finally:
        tape.close()


def scalar(tape: Tape, sql: str) -> Any:
    return tape.client.query(sql).result_rows[0][0]


def cli(*args: str, data: Path, log: str | None = None, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``hftstream ARGS --data DATA [--log LOG]``; the result has text stdout/stderr."""
    import os

    argv = [HFTSTREAM, *args, "--data", str(data)] + (["--log", log] if log else [])
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=full_env, cwd=data)


def value_of(serde: Serde, schema: str, seed: int, **overrides: Any) -> dict[str, Any]:
    """A deterministic value of ``schema`` (see :func:`streams.serde.samples.sample`), with ``overrides``."""
    return {**sample(serde.repo.schema(schema), seed), **overrides}


def lineage(topic: str, partition: int, offset: int) -> tuple[tuple[str, bytes], ...]:
    return ((SOURCE_TOPIC, topic.encode()), (SOURCE_PARTITION, str(partition).encode()), (SOURCE_OFFSET, str(offset).encode()))


def publish_values(log: Log, serde: Serde, topic: str, schema: str, values: list[dict[str, Any]], *, partitions: int = 1,
                   key_field: str | None = "account", with_lineage: bool = True) -> None:
    """Create ``topic`` (if needed) and publish ``values`` as ``schema``, keyed by ``key_field``, lineage pointing at ``orders.in``."""
    log.create_topic(TopicSpec(topic, partitions=partitions, value_schema=schema))
    with log.producer() as p:
        for i, v in enumerate(values):
            key = str(v[key_field]).encode() if key_field and v.get(key_field) is not None else None
            headers = lineage("orders.in", i % 3, 1000 + i) if with_lineage else None
            p.produce(topic, serde.encode(schema, v), key, timestamp_ns=T0 + i * 1000, headers=headers)


def fill(serde: Serde, i: int, **overrides: Any) -> dict[str, Any]:
    """A valid fill, number ``i``: four accounts, prices and quantities that identify it."""
    base = {"fill_id": f"F{i}", "account": f"acct-{i % 4}", "symbol": "AAPL", "price": 1_872_300 + i, "quantity": 100 + i, "ts_ns": T0 + i}
    return value_of(serde, "hftstream.fills.Fill", i, **{**base, **overrides})
