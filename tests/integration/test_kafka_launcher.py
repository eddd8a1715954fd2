"""infra/kafka/launcher.py and ``hftstream dev kafka``: a real KRaft broker, started and stopped for real."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import ModuleType

import pytest
from typer.testing import CliRunner

from streams.cli import dev
from streams.errors import UnknownTopicError
from streams.log import TopicSpec
from streams.log.kafka import KafkaLog

pytestmark = pytest.mark.kafka


def gone(pid: int, within: float = 10.0) -> bool:
    """True once ``pid`` no longer runs (zombies count as gone)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
            if state == "Z":
                return True
        except (ProcessLookupError, FileNotFoundError):
            return True
        time.sleep(0.1)
    return False


def refuses(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_missing_java_or_maven_names_the_debian_packages(
    kafka_launcher: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(kafka_launcher.LauncherError) as info:
        kafka_launcher.fetch_jars(tmp_path / "cache")  # nothing cached there: needs mvn
    assert "mvn" in str(info.value) and "default-jre-headless maven" in info.value.hint
    with pytest.raises(kafka_launcher.LauncherError) as info:
        kafka_launcher.start_broker(cache_dir=tmp_path / "cache")
    assert "java" in str(info.value) and "default-jre-headless maven" in info.value.hint


def test_cached_jars_are_not_fetched_again(
    kafka_launcher: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    libs = kafka_launcher.fetch_jars()  # the shared cache (filled by the session broker or `make kafka-jars`)
    assert libs.name == "libs" and list(libs.glob("kafka_2.13-*.jar"))
    assert str(libs).startswith(str(kafka_launcher.default_cache_dir()))
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no mvn: a fetch attempt would fail
    assert kafka_launcher.fetch_jars() == libs


def test_start_serves_and_stop_leaves_nothing(kafka_launcher: ModuleType) -> None:
    handle = kafka_launcher.start_broker()
    try:
        assert handle.alive() and handle.bootstrap == f"127.0.0.1:{handle.port}"
        assert kafka_launcher.STARTED_MARKER in handle.log_path.read_text()
        with KafkaLog(handle.bootstrap) as log:
            log.create_topic(TopicSpec("probe", 2))
            assert [t.name for t in log.list_topics()] == ["probe"]
            producer = log.producer()
            with pytest.raises(UnknownTopicError):  # auto.create.topics.enable=false: no topic by typo
                producer.produce("typo", b"x")
    finally:
        handle.stop()
    assert gone(handle.pid)
    assert refuses(handle.port) and refuses(handle.controller_port)
    assert not handle.data_dir.exists()  # the temporary data dir went with it
    handle.stop()  # idempotent


def test_busy_port_is_reported(kafka_launcher: ModuleType) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(kafka_launcher.LauncherError, match=f"port {port} .* already in use"):
            kafka_launcher.start_broker(port=port)


def test_broker_dies_with_a_killed_parent(tmp_path: Path) -> None:
    """No orphans: SIGKILL the Python process that started a broker; the broker goes too."""
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(Path(dev.load_launcher().__file__).parent)!r})
        import launcher
        h = launcher.start_broker(data_dir={str(tmp_path / "data")!r})
        print(h.pid, flush=True)
        time.sleep(120)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.strip().isdigit(), f"launcher child printed {line!r}"
        broker_pid = int(line)
        assert not gone(broker_pid, within=0.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert gone(broker_pid), "the broker outlived its parent"
    finally:
        proc.kill()
        proc.wait(10)


def test_dev_kafka_detach_stop_and_data_dir_reuse(kafka_launcher: ModuleType, tmp_path: Path) -> None:
    data = tmp_path / "broker"
    runner = CliRunner()
    result = runner.invoke(dev.app, ["kafka", "--port", "0", "--detach", "--data-dir", str(data)])
    state = kafka_launcher.read_state(data)
    try:
        assert result.exit_code == 0, result.output
        assert state is not None and f"kafka://{state['bootstrap']}" in result.output
        with KafkaLog(str(state["bootstrap"])) as log:
            log.create_topic(TopicSpec("kept", 3))
            with log.producer() as producer:
                producer.produce("kept", b"survives", partition=1)
        again = runner.invoke(dev.app, ["kafka", "--port", "0", "--detach", "--data-dir", str(data)])
        assert again.exit_code != 0 and "already runs" in str(again.exception or again.output)
    finally:
        stopped = runner.invoke(dev.app, ["kafka-stop", "--data-dir", str(data)])
    assert stopped.exit_code == 0 and "stopped broker" in stopped.output
    assert state is not None and gone(int(state["pid"]))
    assert kafka_launcher.read_state(data) is None
    # the same data dir keeps its topics and records
    handle = kafka_launcher.start_broker(data_dir=data)
    try:
        with KafkaLog(handle.bootstrap) as log:
            assert log.partitions("kept") == 3
            assert log.watermarks("kept", 1) == (0, 1)
    finally:
        handle.stop()
    assert data.is_dir()  # not a temporary dir: kept
