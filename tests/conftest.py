"""Fixtures shared by every test ring.

Kafka: ``kafka_bootstrap`` (session) finds a real broker, in this order:

1. ``HFTSTREAM_KAFKA_BOOTSTRAP`` when set (an existing broker or cluster);
2. testcontainers' ``KafkaContainer`` in KRaft mode when a Docker engine answers;
3. a real Apache Kafka broker in KRaft mode started by the suite itself on 127.0.0.1 with
   ``infra/kafka/launcher.py`` (jars from Maven Central, cached in ``~/.cache/hftstream/kafka``),
   stopped at the end of the session.

When none can be had, every test that needs it FAILS with the reasons (never a silent skip).
Tests that use ``kafka_bootstrap`` (directly or through ``kafka_log``) are marked ``kafka``
automatically, so ``pytest -m "not kafka"`` runs without a broker.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from streams.log.kafka import KafkaLog

KAFKA_FIXTURES = {"kafka_bootstrap", "kafka_log"}


def load_launcher() -> ModuleType:
    """Import ``infra/kafka/launcher.py`` by path (a stdlib script, not part of the package)."""
    from streams.cli.dev import load_launcher as load

    return load()


def docker_answers() -> bool:
    """True when a Docker engine answers a ping within ~2 s. Never raises."""
    try:
        import docker

        client = docker.from_env(timeout=2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def start_kafka_container() -> tuple[str, Callable[[], None]]:
    """Start testcontainers' Kafka in KRaft mode; return ``(bootstrap, stop)``."""
    try:
        from testcontainers.community.kafka import KafkaContainer  # type: ignore[import-not-found]
    except ImportError:
        from testcontainers.kafka import KafkaContainer

    container = KafkaContainer().with_kraft()
    container.start()
    return container.get_bootstrap_server(), container.stop


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that needs a broker with ``kafka``."""
    for item in items:
        if KAFKA_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.kafka)


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest) -> str:
    """``host:port[,host:port]`` of a real Kafka broker for this session (see the module docstring)."""
    configured = os.environ.get("HFTSTREAM_KAFKA_BOOTSTRAP", "").strip()
    if configured:
        return configured
    reasons: list[str] = []
    if docker_answers():
        try:
            bootstrap, stop = start_kafka_container()
            request.addfinalizer(stop)
            return bootstrap
        except Exception as exc:  # fall through to the local broker, but keep the reason
            reasons.append(f"testcontainers KafkaContainer failed: {type(exc).__name__}: {exc}")
    else:
        reasons.append("no Docker engine answers (testcontainers not usable)")
    try:
        launcher = load_launcher()
        handle = launcher.start_broker()
    except Exception as exc:
        reasons.append(f"local KRaft broker (infra/kafka/launcher.py) failed: {exc}")
        hint = getattr(exc, "hint", "")
        pytest.fail(
            "no Kafka broker for the tests: " + "; ".join(reasons)
            + (f"\nhint: {hint}" if hint else "")
            + "\nset HFTSTREAM_KAFKA_BOOTSTRAP=host:port to use a running broker",
            pytrace=False,
        )
    request.addfinalizer(handle.stop)
    return str(handle.bootstrap)


NO_DOCKER_REASON = (
    "no Docker engine answers on this machine; the same contract runs against the local KRaft broker "
    "in test_log_contract.py"
)


@pytest.fixture(scope="session")
def kafka_container(request: pytest.FixtureRequest) -> str:
    """Bootstrap of a testcontainers ``KafkaContainer`` (KRaft); skips, saying why, without Docker."""
    if not docker_answers():
        pytest.skip(NO_DOCKER_REASON)
    bootstrap, stop = start_kafka_container()
    request.addfinalizer(stop)
    return bootstrap


@pytest.fixture(scope="session")
def kafka_launcher() -> ModuleType:
    """``infra/kafka/launcher.py`` as a module (for tests that start or kill their own broker)."""
    return load_launcher()


@pytest.fixture
def kafka_log(kafka_bootstrap: str) -> Iterator[KafkaLog]:
    """A :class:`~streams.log.kafka.KafkaLog` on the session broker, closed after the test."""
    from streams.log.kafka import KafkaLog

    log = KafkaLog(kafka_bootstrap)
    try:
        yield log
    finally:
        log.close()


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """A factory of collision-free names: ``unique_name("orders")`` -> ``"orders-test-x-1a2b3c4d5e"``.

    Valid as Kafka topic, consumer group and directory names (no ``.``/``_``, which Kafka
    treats as colliding in metric names); unique across runs and across engineers sharing
    one broker.
    """
    test = re.sub(r"[^A-Za-z0-9-]+", "-", request.node.name)[:60].strip("-")

    def make(prefix: str = "t") -> str:
        return f"{prefix}-{test}-{uuid.uuid4().hex[:10]}"

    return make


@pytest.fixture
def unique_topic(unique_name: Callable[[str], str]) -> str:
    """One collision-free topic name for this test (use ``unique_name`` for more)."""
    return unique_name("t")


DEMO_TAPE_ARGS = ("--seed", "11", "--orders", "1500", "--events", "3000", "--start", "2026-01-02T14:30:00Z",
                  "--no-latency", "--no-verify")


@pytest.fixture(scope="session")
def demo_tape(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo run on the embedded log whose tape the demo sank (``DIR/tape``): the data directory.

    Shared by the session: treat it as read-only (sink into another tape with ``--clickhouse chdb:///...``
    to test the sink). ``DIR/demo.json`` holds the demo's ``--json`` output. chDB opens one directory per
    process: open the tape in-process only inside ``with tape_at(DIR, init=False)``.
    """
    import json
    import subprocess
    import sys

    data = tmp_path_factory.mktemp("demo-tape")
    hftstream = str(Path(sys.executable).with_name("hftstream"))
    run = subprocess.run([hftstream, "demo", *DEMO_TAPE_ARGS, "--json", "--data", str(data)], capture_output=True, text=True,
                         timeout=600, cwd=data)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout)
    assert result["tape"] and "error" not in result["tape"], result["tape"]
    (data / "demo.json").write_text(run.stdout)
    return data
