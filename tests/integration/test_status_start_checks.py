"""``status`` sees what stops a processor, and ``verify`` sees records the processor did not write (issue 14).

``status`` runs the checks ``run`` runs before it starts (one function, ``streams.runtime.preflight``),
and shows the same error and hint: input records removed by ``log repair``, a half-written group
offsets file, a Kafka group moved behind its commit manifests. On Kafka it counts dead letters as
records (not offsets, which transaction markers take too); a global input's lag counts once per
processor; the global inputs' positions are visible to Kafka's group tools under
``hftstream.<name>.global``. ``verify`` reports a record in an output's verified range that the
processor did not write (a non-transactional foreign producer's) as a divergence.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition as KTP
from confluent_kafka.admin import AdminClient

from procs import RAW, Counter, CounterConfig, raw_value
from runtime_support import HFTSTREAM, MS, N_GLOBAL, N_KEYED, T0, TESTS, Case
from streams.errors import ConfigError
from streams.log.base import Log
from streams.log.embedded import EmbeddedLog
from streams.log.embedded.maintenance import repair
from streams.runtime import Runner, RunOptions
from streams.runtime.state import read_range
from streams.runtime.status import processor_status
from streams.runtime.verify import verify
from streams.serde import Serde

OPTS = RunOptions(until_idle=True, batch=300, snapshot_every_commits=1000)


@pytest.fixture
def serde() -> Serde:
    return Serde.from_settings()


@pytest.fixture(params=["embedded", "kafka"])
def case(request: pytest.FixtureRequest, tmp_path: Path, unique_name: Callable[[str], str], serde: Serde) -> Iterator[Case]:
    url = f"embedded://{tmp_path / 'log'}" if request.param == "embedded" else f"kafka://{request.getfixturevalue('kafka_bootstrap')}"
    c = Case(url, tmp_path, serde, unique_name)
    yield c
    c.close()


@pytest.fixture
def embedded(tmp_path: Path, unique_name: Callable[[str], str], serde: Serde) -> Iterator[Case]:
    c = Case(f"embedded://{tmp_path / 'log'}", tmp_path, serde, unique_name)
    yield c
    c.close()


@pytest.fixture
def kafka(tmp_path: Path, unique_name: Callable[[str], str], serde: Serde, kafka_bootstrap: str) -> Iterator[Case]:
    c = Case(f"kafka://{kafka_bootstrap}", tmp_path, serde, unique_name)
    yield c
    c.close()


def config(c: Case, **extra: object) -> CounterConfig:
    return CounterConfig(inputs=[c.src], globals=[c.glob], output=c.out, **extra)  # type: ignore[arg-type]


def run(c: Case, serde: Serde, **extra: object) -> None:
    Runner(c.log, serde, Counter, config(c, **extra), OPTS, name=c.name).run()


def status(c: Case, serde: Serde, **extra: object):  # type: ignore[no-untyped-def]
    return processor_status(c.log, serde, "procs:Counter", config(c, **extra), as_name=c.name)


def run_refusal(c: Case, serde: Serde) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        run(c, serde)
    return info.value


def cli(c: Case, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": TESTS}
    return subprocess.run([HFTSTREAM, "--log", c.url, *args], capture_output=True, text=True, env=env, timeout=180)


# -- status runs run's checks --------------------------------------------------------------


def test_records_removed_by_log_repair_show_in_status_with_run_s_error_naming_the_repair(embedded: Case, serde: Serde) -> None:
    c = embedded
    run(c, serde)
    assert status(c, serde).problem is None
    assert isinstance(c.log, EmbeddedLog)
    directory = c.log.partition_dir(c.src, 1)
    segment = sorted(directory.glob("*.log"))[0]
    data = bytearray(segment.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a record in the middle of src/1 goes bad
    segment.write_bytes(bytes(data))
    plan = repair(c.log, c.src, 1)
    assert plan.records_dropped > 0

    st = status(c, serde)
    refused = run_refusal(c, serde)
    assert st.problem is not None and "log repair" in st.problem and "retention" not in st.problem, st.problem
    assert st.problem == str(refused) and st.hint == refused.hint
    # and through the CLI: the problem column and the hint under the table
    out = cli(c, "status", "procs:Counter", "--config", str(c.cfg), "--name", c.name)
    assert out.returncode == 1, out.stderr  # a processor that would not start is a failed status check
    assert "log repair" in out.stdout and f"{c.name}: hint: " in out.stdout
    as_json = cli(c, "status", "procs:Counter", "--config", str(c.cfg), "--name", c.name, "--json")
    assert as_json.returncode == 1 and "log repair" in json.loads(as_json.stdout)[0]["problem"]


@pytest.mark.parametrize("damage", ["cut-to-a-fragment", "cut-in-half", "legacy-json-half-written"])
def test_a_damaged_group_offsets_file_shows_in_status_as_run_refuses_it(embedded: Case, serde: Serde, damage: str) -> None:
    """The offsets log (DECISIONS #53): no valid record left is "unreadable"; a cut that leaves older records shows
    as the group behind its commit manifests; an older version's half-written ``GROUP.json`` is "unreadable"."""
    c = embedded
    run(c, serde)
    assert isinstance(c.log, EmbeddedLog)
    store = c.log.offsets_store()
    group = f"hftstream.{c.name}"
    path = store.path(group)
    body = path.read_bytes()
    if damage == "cut-to-a-fragment":
        path.write_bytes(body[:5])
    elif damage == "cut-in-half":
        path.write_bytes(body[: len(body) // 2])
    else:
        legacy = store.legacy_path(group)
        legacy.write_text(json.dumps(store.raw(group))[:40])
        path.unlink()

    st = status(c, serde)
    refused = run_refusal(c, serde)
    expected = "the group's offsets file is damaged" if damage == "cut-in-half" else "unreadable"
    assert st.problem is not None and expected in st.problem, st.problem
    if damage == "cut-in-half":  # the file's own framing says it was cut: no outside reset is blamed
        assert "reset outside hftstream" not in st.problem and str(path) in st.problem and "restore the file" in st.hint
    assert st.problem == str(refused) and st.hint == refused.hint


def test_a_kafka_group_moved_behind_its_commit_manifests_shows_in_status(kafka: Case, serde: Serde, kafka_bootstrap: str) -> None:
    c = kafka
    run(c, serde)
    assert status(c, serde).problem is None
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    moved = ConsumerGroupTopicPartitions(f"hftstream.{c.name}", [KTP(c.src, 2, 0)])  # what --reset-offsets --to-earliest does
    admin.alter_consumer_group_offsets([moved])[f"hftstream.{c.name}"].result(timeout=30)

    st = status(c, serde)
    refused = run_refusal(c, serde)
    assert st.problem is not None and f"{c.src}/2 at 0" in st.problem and "moved behind" in st.problem, st.problem
    assert st.problem == str(refused) and st.hint == refused.hint


# -- what status counts ----------------------------------------------------------------------


def test_a_global_input_s_lag_counts_once_not_once_per_task(case: Case, serde: Serde) -> None:
    st = status(case, serde)
    assert st.tasks == 4
    assert st.lag == N_KEYED + N_GLOBAL
    assert [(p.topic, p.scope) for p in st.partitions if p.scope == "global"] == [(case.glob, "global")]


def _await_markers(log: Log, topic: str, timeout_s: float = 30.0) -> None:
    """Until every partition's last stable offset is its high watermark: on Kafka, ``commit_transaction()`` returns
    once the coordinator decided, and the commit markers reach the data partitions a moment later (until then the
    committed records sit above the stable end, invisible to read_committed readers)."""
    tps = [(topic, p) for p in range(log.partitions(topic))]
    deadline = time.monotonic() + timeout_s
    while log.end_offsets(tps) != log.end_offsets(tps, read_committed=False):
        assert time.monotonic() < deadline, f"{topic}: commit markers not written after {timeout_s} s"
        time.sleep(0.05)


def test_dead_letters_are_counted_as_records(case: Case, serde: Serde) -> None:
    run(case, serde, reject_seq=17)
    dlq = f"dlq.{case.name}"
    _await_markers(case.log, dlq)
    st = status(case, serde, reject_seq=17)
    records = sum(1 for p in range(case.log.partitions(dlq)) for _ in read_range(case.log, dlq, p, *case.log.watermarks(dlq, p)))
    assert records == 1
    assert st.dead_letters == 1


def test_global_positions_are_visible_to_kafka_group_tools(kafka: Case, serde: Serde) -> None:
    c = kafka
    run(c, serde)
    deadline = time.monotonic() + 20
    while (got := c.log.group_offsets(f"hftstream.{c.name}.global")) != {(c.glob, 0): N_GLOBAL} and time.monotonic() < deadline:
        time.sleep(0.2)
    assert got == {(c.glob, 0): N_GLOBAL}
    # the keyed inputs stay in the processor's own group, as before
    assert set(c.log.group_offsets(f"hftstream.{c.name}")) == {(c.src, p) for p in range(4)}


# -- verify sees records the processor did not write -----------------------------------------


def test_verify_reports_a_foreign_record_in_the_verified_range(case: Case, serde: Serde) -> None:
    c = case
    run(c, serde)
    assert verify(c.log, serde, Counter, config(c), name=c.name).identical
    forged = serde.encode(RAW, raw_value(999_999, "S1"))
    with c.log.producer() as p:  # not the processor: a plain, non-transactional producer
        for part in range(c.log.partitions(c.out)):
            p.produce(c.out, forged, b"S1", partition=part, timestamp_ns=T0 + 10 * MS)
        for i in range(200):  # more input, so the processor writes after the foreign records
            sym = f"S{i % 40}"
            p.produce(c.src, serde.encode(RAW, raw_value(N_KEYED + i, sym)), sym.encode(), timestamp_ns=T0 + (N_KEYED + i) * MS)
    run(c, serde)
    res = verify(c.log, serde, Counter, config(c), name=c.name)
    assert not res.identical and res.divergence is not None
    assert res.divergence.kind == "foreign" and res.divergence.source[0] == c.out
    out = cli(c, "verify", "procs:Counter", "--config", str(c.cfg), "--name", c.name, "--json")
    assert out.returncode == 1, out.stderr
    report = json.loads(out.stdout)
    assert report["kind"] == "foreign" and report["record"]["topic"] == c.out
