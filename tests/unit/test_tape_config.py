"""Where the tape is: URL parsing (chDB and server), the --clickhouse option, and the per-directory lock.

A ClickHouse server cannot run here (no package installs one), so the server side is tested as far as
URL parsing and settings; the same client code runs against chDB in the integration tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from connectors.clickhouse.client import TapeLock, TapeLockedError, parse_tape_url
from streams.cli.usage import hoist_global_options
from streams.config import HftSettings
from streams.errors import ConfigError


def test_chdb_urls_resolve_to_absolute_directories(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert parse_tape_url("chdb:///srv/x/tape").path == Path("/srv/x/tape")
    rel = parse_tape_url("chdb://data/tape")
    assert rel.kind == "chdb" and rel.path == tmp_path / "data" / "tape"
    assert parse_tape_url("chdb:///srv/x/tape").display == "chdb:///srv/x/tape"


def test_server_urls_carry_host_port_credentials_and_database():
    u = parse_tape_url("http://analyst:s%3Acret@ch.internal:9000/mytape")
    assert (u.kind, u.host, u.port, u.username, u.password, u.database) == ("http", "ch.internal", 9000, "analyst", "s:cret", "mytape")
    assert "s:cret" not in u.display
    assert parse_tape_url("http://127.0.0.1").port == 8123
    s = parse_tape_url("https://ch.example")
    assert (s.port, s.username, s.database) == (8443, "default", "tape")


@pytest.mark.parametrize(
    ("url", "needle"),
    [("ftp://x", "unknown tape URL scheme"), ("/srv/tape", "no scheme"), ("http://", "no host"),
     ("http://h:port", "bad port"), ("chdb://", "names no directory"), ("chdb://memory", "names no directory")],
)
def test_bad_urls_are_config_errors_with_hints(url, needle):
    with pytest.raises(ConfigError, match=needle) as exc:
        parse_tape_url(url)
    assert exc.value.hint


def test_settings_default_tape_is_chdb_in_the_data_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("HFTSTREAM_CLICKHOUSE_URL", raising=False)
    assert HftSettings(data=tmp_path).tape_url == f"chdb://{tmp_path / 'tape'}"
    assert HftSettings(data=tmp_path, clickhouse_url="http://h:8123").tape_url == "http://h:8123"
    monkeypatch.setenv("HFTSTREAM_CLICKHOUSE_URL", "http://env:8123")
    assert HftSettings(data=tmp_path).tape_url == "http://env:8123"


def test_clickhouse_is_a_global_option():
    assert hoist_global_options(["tape", "query", "SELECT 1", "--clickhouse", "http://h:1"]) == [
        "--clickhouse", "http://h:1", "tape", "query", "SELECT 1"]


def test_lock_names_the_owner_and_frees_on_release(tmp_path):
    first = TapeLock(tmp_path / "tape")
    first.acquire()
    try:
        with pytest.raises(TapeLockedError) as exc:
            TapeLock(tmp_path / "tape").acquire()
        message = str(exc.value)
        assert f"process {os.getpid()}" in message and str(tmp_path / "tape") in message
        assert f"kill -TERM {os.getpid()}" in exc.value.hint and "--clickhouse" in exc.value.hint
    finally:
        first.release()
    second = TapeLock(tmp_path / "tape")
    second.acquire()  # free again
    second.release()
