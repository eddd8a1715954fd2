"""Where the tape lives, and opening it: chDB in ``DATA/tape`` by default, or a ClickHouse server.

``chdb:///abs/path``            the embedded engine (chDB) through clickhouse-connect; the default is
                                ``chdb://<DATA>/tape`` (``--data``, default ``./hftstream-data``)
``http[s]://user:pw@host:port`` a ClickHouse server (``--clickhouse URL`` / ``HFTSTREAM_CLICKHOUSE_URL``)

chDB lets one process at a time open a directory (a second one fails with ``Error initializing
EmbeddedServer``). :class:`TapeLock` makes that explicit: whoever opens the embedded tape holds
``DATA/tape.lock`` (an ``flock`` plus the owner's pid and command line) for as long as it runs,
and every other tape command fails at once with :class:`TapeLockedError`, naming the owner and
what to do. A server has no such limit: any number of processes connect.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlsplit

from streams.config import tape_url_for
from streams.errors import ConfigError, HftError, RetryableError

DATABASE = "tape"


__all__ = ["DATABASE", "NoTapeError", "Tape", "TapeLock", "TapeLockedError", "TapeUnavailableError", "TapeUrl", "open_tape", "parse_tape_url", "tape_url_for"]


class TapeLockedError(HftError):
    """Another process has the embedded (chDB) tape open; chDB allows one process per directory."""


class NoTapeError(ConfigError):
    """The embedded tape directory does not exist (and the command does not create one)."""


class TapeUnavailableError(RetryableError):
    """The ClickHouse server did not answer (or refused the connection)."""

    hint = "check that the ClickHouse server named by --clickhouse / HFTSTREAM_CLICKHOUSE_URL is running and reachable"


@dataclass(frozen=True)
class TapeUrl:
    """A parsed tape URL: ``kind`` is ``chdb`` (``path`` set) or ``http``/``https`` (host, port, credentials)."""

    url: str
    kind: str
    path: Path | None = None
    host: str = ""
    port: int = 0
    username: str = "default"
    password: str = ""
    database: str = DATABASE

    @property
    def display(self) -> str:
        """The URL without its password, for messages."""
        if self.kind == "chdb":
            return f"chdb://{self.path}"
        return f"{self.kind}://{self.username}@{self.host}:{self.port}"


def parse_tape_url(url: str) -> TapeUrl:
    """Parse ``chdb:///path`` or ``http[s]://[user[:password]@]host[:port]``; raise :class:`ConfigError` otherwise."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "chdb":
        raw = (parts.netloc + parts.path) if parts.netloc else parts.path
        if not raw or raw in ("/", "memory"):
            raise ConfigError(f"tape URL {url!r} names no directory", hint="use chdb:///absolute/path/to/tape (or --data DIR: the tape lives in DIR/tape)")
        return TapeUrl(url, "chdb", path=Path(unquote(raw)).resolve())
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise ConfigError(f"tape URL {url!r} names no host", hint="use http://HOST:8123 (or https://HOST:8443), e.g. http://127.0.0.1:8123")
        try:
            port = parts.port or (8443 if scheme == "https" else 8123)
        except ValueError:
            raise ConfigError(f"tape URL {url!r} has a bad port", hint="use http://HOST:PORT with a number, e.g. http://127.0.0.1:8123") from None
        database = parts.path.strip("/") or DATABASE
        return TapeUrl(
            url, scheme, host=parts.hostname, port=port, username=unquote(parts.username or "default"),
            password=unquote(parts.password or ""), database=database,
        )
    raise ConfigError(
        f"unknown tape URL scheme {parts.scheme!r} in {url!r}" if parts.scheme else f"tape URL {url!r} has no scheme",
        hint="use chdb:///path/to/tape (embedded, the default: DATA/tape) or http://HOST:8123 (a ClickHouse server)",
    )


class TapeLock:
    """An exclusive hold on an embedded tape directory: ``flock`` on ``<dir>.lock``, which names its owner.

    The kernel drops the ``flock`` when the owner dies (even by SIGKILL), so a stale file never blocks.
    """

    def __init__(self, tape_dir: Path) -> None:
        self.path = tape_dir.with_name(tape_dir.name + ".lock")
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            owner = _parse_owner(fh.read())
            fh.close()
            raise locked_error(self.path.with_suffix(""), owner) from None
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "command": _command_line(), "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            self._fh.seek(0)
            self._fh.truncate()
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


def _command_line() -> str:
    argv = list(sys.argv)
    if argv and argv[0].endswith("hftstream"):
        argv[0] = "hftstream"
    return " ".join(argv)


def _parse_owner(text: str) -> dict[str, Any]:
    try:
        owner = json.loads(text)
    except ValueError:
        return {}
    return owner if isinstance(owner, dict) else {}


def locked_error(tape_dir: Path, owner: dict[str, Any]) -> TapeLockedError:
    """The error for a tape another process has open, naming it (pid, command, since) when known."""
    pid = owner.get("pid")
    who = f"process {pid}" if pid else "another process"
    if owner.get("command"):
        who += f" ({owner['command']}"
        who += f", since {owner['since']})" if owner.get("since") else ")"
    stop = f"`kill -TERM {pid}` (a tape sink finishes its batch and exits)" if pid else "stop that process"
    return TapeLockedError(
        f"the tape in {tape_dir} is open in {who}; chDB lets one process at a time open a tape directory",
        hint=f"wait for it to finish, or stop it with {stop}, then run this again; "
        "to query while a sink runs, point both at a ClickHouse server with --clickhouse http://HOST:8123 "
        "(see RUNBOOK.md 'The tape is open in another process')",
    )


class Tape:
    """An open tape: a clickhouse-connect client on chDB or a server, plus the lock for chDB. Close it when done."""

    def __init__(self, url: TapeUrl, client: Any, lock: TapeLock | None) -> None:
        self.url, self.client, self._lock = url, client, lock

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    def __enter__(self) -> Tape:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_tape(url: str | TapeUrl, *, create: bool = False) -> Tape:
    """Open the tape at ``url`` (chDB: take the directory's lock first). Raises :class:`HftError` subclasses only.

    An embedded tape directory is made only with ``create`` (``tape init``, the demo): a command that reads the
    tape fails with :class:`NoTapeError` instead of leaving an empty tape behind; a file in its place is an error.
    """
    import clickhouse_connect
    from clickhouse_connect.driver.exceptions import ClickHouseError, OperationalError

    logging.getLogger("clickhouse_connect").setLevel(logging.CRITICAL)  # errors reach the user as error:/hint:
    tu = url if isinstance(url, TapeUrl) else parse_tape_url(url)
    if tu.kind == "chdb":
        assert tu.path is not None
        _check_tape_dir(tu.path, create)
        lock = TapeLock(tu.path)
        lock.acquire()
        try:
            tu.path.mkdir(parents=True, exist_ok=True)
            client = clickhouse_connect.get_client(dsn=f"chdb://{tu.path}")
        except ImportError as exc:
            lock.release()
            raise ConfigError(f"the embedded tape needs the chdb package: {exc}", hint="run `make setup` (it installs clickhouse-connect[chdb])") from None
        except ClickHouseError as exc:
            lock.release()
            if "EmbeddedServer" in str(exc) or "already running" in str(exc):
                raise locked_error(tu.path, _chdb_status_owner(tu.path)) from None
            raise ConfigError(f"cannot open the embedded tape {tu.path}: {exc}", hint="check the directory (permissions, free space)") from None
        return Tape(tu, client, lock)
    try:
        client = clickhouse_connect.get_client(
            host=tu.host, port=tu.port, username=tu.username, password=tu.password,
            secure=tu.kind == "https", connect_timeout=5,
        )
    except OperationalError as exc:
        raise TapeUnavailableError(f"ClickHouse at {tu.display} did not answer: {exc}") from None
    except ClickHouseError as exc:
        raise ConfigError(f"ClickHouse at {tu.display} refused the connection: {exc}", hint="check the user and password in the URL") from None
    return Tape(tu, client, None)


def _check_tape_dir(path: Path, create: bool) -> None:
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path} is a file, not a tape directory",
                          hint=f"move or delete {path} (the embedded tape is a directory), or give another --data / --clickhouse")
    if not create and not path.is_dir():
        raise NoTapeError(f"there is no tape in {path}",
                          hint="run `hftstream tape init` (same --data), then `hftstream tape sink --until-idle`; "
                          "or point --data / --clickhouse at an existing tape")


def _chdb_status_owner(path: Path) -> dict[str, Any]:
    """The pid chDB itself wrote in ``<dir>/status`` (a process that did not take our lock, e.g. a bare chdb session)."""
    try:
        first = (path / "status").read_text().splitlines()[0]
    except (OSError, IndexError):
        return {}
    return {"pid": int(first.split(":")[1])} if first.startswith("PID:") and first.split(":")[1].strip().isdigit() else {}
