#!/usr/bin/env python3
"""Run a real Apache Kafka broker (KRaft mode, one node) on 127.0.0.1 from Maven Central jars.

Standard library only, so it runs before (or without) the hftstream package::

    python infra/kafka/launcher.py fetch              # download the jars once (cached outside the repo)
    python infra/kafka/launcher.py start [--port 9092] [--data-dir DIR] [--foreground]
    python infra/kafka/launcher.py status [--data-dir DIR]
    python infra/kafka/launcher.py stop [--data-dir DIR]

and importable (the test suite, ``hftstream dev kafka`` and the benchmarks use it)::

    handle = start_broker()          # free port, temporary data dir, stopped at exit
    handle.bootstrap                 # "127.0.0.1:40123"
    handle.stop()

Needs ``java`` (17+) and ``mvn`` (Debian: ``apt-get install default-jre-headless maven``).
Jars live in ``$HFTSTREAM_KAFKA_CACHE/<version>/libs`` (default ``~/.cache/hftstream/kafka``);
the broker version is ``$HFTSTREAM_KAFKA_VERSION`` (default :data:`KAFKA_VERSION`).

A broker started by :func:`start_broker` runs in its own process group; the group is
killed by :meth:`BrokerHandle.stop`, at interpreter exit, and (on Linux, unless
detached) by the kernel if the Python process dies without running its exit hooks.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

KAFKA_VERSION = "3.9.1"
HERE = Path(__file__).resolve().parent
POM = HERE / "pom.xml"
LOG4J = HERE / "log4j.properties"
TEMPLATE = HERE / "server.properties.template"
STARTED_MARKER = "Kafka Server started"
STATE_FILE = "broker.json"
DEFAULT_DETACHED_DATA_DIR = Path(".hftstream") / "kafka"
INSTALL_HINT = "install them with: sudo apt-get install default-jre-headless maven"


class LauncherError(RuntimeError):
    """The broker could not be fetched, started or stopped. ``hint`` says what to do."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


# -- jars --------------------------------------------------------------------------------


def kafka_version() -> str:
    """The broker version to run: ``$HFTSTREAM_KAFKA_VERSION`` or :data:`KAFKA_VERSION`."""
    return os.environ.get("HFTSTREAM_KAFKA_VERSION", "").strip() or KAFKA_VERSION


def default_cache_dir(version: str | None = None) -> Path:
    """``$HFTSTREAM_KAFKA_CACHE/<version>`` or ``~/.cache/hftstream/kafka/<version>``."""
    root = os.environ.get("HFTSTREAM_KAFKA_CACHE", "").strip()
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "hftstream" / "kafka"
    return base / (version or kafka_version())


def _require(*tools: str) -> dict[str, str]:
    found = {t: shutil.which(t) for t in tools}
    missing = [t for t, p in found.items() if not p]
    if missing:
        raise LauncherError(
            f"{' and '.join(missing)} not found on PATH (needed to run a local Kafka broker)",
            hint=INSTALL_HINT + "  -- or point HFTSTREAM_KAFKA_BOOTSTRAP at a running broker",
        )
    return {t: str(p) for t, p in found.items()}


def _libs_complete(libs: Path) -> bool:
    return (libs / ".complete").is_file() and any(libs.glob("kafka_*.jar"))


def fetch_jars(cache_dir: Path | str | None = None, *, version: str | None = None) -> Path:
    """Resolve the broker's jars from Maven Central into ``cache_dir/libs`` and return that folder.

    Skipped when the folder is already complete. Safe against concurrent callers (a file
    lock serialises them; the folder appears atomically). Raises :class:`LauncherError`
    when ``mvn`` is missing or the resolution fails.
    """
    version = version or kafka_version()
    cache = Path(cache_dir).expanduser() if cache_dir else default_cache_dir(version)
    libs = cache / "libs"
    if _libs_complete(libs):
        return libs
    tools = _require("mvn")
    cache.mkdir(parents=True, exist_ok=True)
    import fcntl  # POSIX only; imported here so `--help` works anywhere

    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _libs_complete(libs):
            return libs
        staging = Path(tempfile.mkdtemp(prefix="libs-", dir=cache))
        cmd = [
            tools["mvn"], "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}", "-DincludeScope=runtime", f"-Dkafka.version={version}",
        ]  # fmt: skip
        print(f"fetching Apache Kafka {version} jars from Maven Central into {libs} ...", file=sys.stderr)
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not any(staging.glob("kafka_*.jar")):
            shutil.rmtree(staging, ignore_errors=True)
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
            raise LauncherError(
                f"mvn could not resolve org.apache.kafka:kafka_2.13:{version} (exit {proc.returncode}):\n{tail}",
                hint="check access to Maven Central (or a mirror in ~/.m2/settings.xml) and the version",
            )
        (staging / ".complete").write_text(version + "\n")
        if libs.exists():
            shutil.rmtree(libs)
        staging.rename(libs)
    return libs


# -- the broker ----------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no broker log)"
    return "\n".join(text.splitlines()[-lines:])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: SIGKILL this process when the thread that started it dies (no orphaned brokers)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


@dataclass
class BrokerHandle:
    """A running broker. ``bootstrap`` is ``"127.0.0.1:PORT"``; :meth:`stop` ends its process group."""

    pid: int
    port: int
    controller_port: int
    data_dir: Path
    log_path: Path
    version: str
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _remove_data_dir: bool = field(default=False, repr=False)
    _log_offset: int = field(default=0, repr=False)  # where this run's output starts in log_path

    @property
    def bootstrap(self) -> str:
        """``host:port`` for ``bootstrap.servers`` (``kafka://`` + this is the hftstream log URL)."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The hftstream log URL of this broker."""
        return f"kafka://{self.bootstrap}"

    def alive(self) -> bool:
        """True while the broker process runs."""
        if self._proc is not None:
            return self._proc.poll() is None
        return _pid_alive(self.pid)

    def wait(self) -> int | None:
        """Block until the broker exits; its exit code when it is our child."""
        if self._proc is not None:
            return self._proc.wait()
        while _pid_alive(self.pid):
            time.sleep(0.5)
        return None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the broker's process group, SIGKILL it after ``timeout`` s. Idempotent."""
        atexit.unregister(self.stop)
        _kill_group(self.pid, self._proc, timeout)
        with contextlib.suppress(FileNotFoundError):
            state = self.data_dir / STATE_FILE
            if state.is_file() and json.loads(state.read_text()).get("pid") == self.pid:
                state.unlink()
        if self._remove_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self._remove_data_dir = False

    def __enter__(self) -> BrokerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) still answers kill(0).
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            return False
    return True


def _kill_group(pid: int, proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    def gone() -> bool:
        return proc.poll() is not None if proc is not None else not _pid_alive(pid)

    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        if gone():
            break
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + wait
        while not gone() and time.monotonic() < deadline:
            time.sleep(0.05)
    # Anything else left in the group (there should be nothing) goes too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _write_config(data_dir: Path, port: int, controller_port: int, node_id: int = 1) -> Path:
    logs = data_dir / "kraft-logs"
    logs.mkdir(parents=True, exist_ok=True)
    text = string.Template(TEMPLATE.read_text()).substitute(
        node_id=node_id, port=port, controller_port=controller_port, log_dirs=str(logs)
    )
    path = data_dir / "server.properties"
    path.write_text(text)
    return path


def _format_storage(java: str, classpath: str, config: Path, data_dir: Path) -> None:
    if (data_dir / "kraft-logs" / "meta.properties").is_file():
        return  # a data dir from an earlier run: keep its topics
    cluster_id = _cluster_id()
    _run_java(java, classpath, ["kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(config)])


def _cluster_id() -> str:
    """A random Kafka cluster id: 16 random bytes, URL-safe base64 without padding (as ``StorageTool random-uuid``)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):  # Kafka avoids ids that look like a command-line flag
            return cid


def _run_java(java: str, classpath: str, args: list[str]) -> str:
    cmd = [java, "-Xmx256m", "-XX:TieredStopAtLevel=1", "-cp", classpath, f"-Dlog4j.configuration=file:{LOG4J}", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise LauncherError(
            f"{' '.join(args[:2])} failed (exit {proc.returncode}): {(proc.stdout + proc.stderr).strip()[-2000:]}",
            hint="delete the data directory if it comes from another Kafka version",
        )
    return proc.stdout


def start_broker(
    port: int = 0,
    data_dir: Path | str | None = None,
    cache_dir: Path | str | None = None,
    *,
    controller_port: int = 0,
    timeout: float = 90.0,
    heap: str = "512m",
    detach: bool = False,
) -> BrokerHandle:
    """Start a one-node KRaft broker on ``127.0.0.1:port`` and return once it serves requests.

    ``port=0`` picks a free port. ``data_dir=None`` uses a temporary folder that
    :meth:`BrokerHandle.stop` deletes; an existing ``data_dir`` keeps its topics across runs.
    Unless ``detach``, the broker is stopped at interpreter exit and dies with this process.
    Raises :class:`LauncherError` (with the tail of the broker log) when it does not start
    within ``timeout`` seconds.
    """
    tools = _require("java")
    version = kafka_version()
    libs = fetch_jars(cache_dir, version=version)
    classpath = str(libs / "*")
    if port and _port_in_use(port):
        raise LauncherError(
            f"port {port} on 127.0.0.1 is already in use",
            hint="stop whatever listens there (a broker from `launcher.py start`? `launcher.py stop` ends it), "
            "or pick another --port",
        )
    temporary = data_dir is None
    root = Path(tempfile.mkdtemp(prefix="hftstream-kafka-")) if temporary else Path(data_dir).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    try:
        attempts = 3 if not (port and controller_port) else 1
        for attempt in range(attempts):
            handle = _launch(tools["java"], classpath, root, port, controller_port, version, heap, detach)
            handle._remove_data_dir = temporary
            try:
                _await_started(handle, timeout)
                return handle
            except LauncherError:
                handle._remove_data_dir = False
                handle.stop(timeout=5)
                raced = "Address already in use" in _tail(handle.log_path, 200)
                if not raced or attempt == attempts - 1:
                    raise
    except BaseException:
        if temporary:
            shutil.rmtree(root, ignore_errors=True)
        raise
    raise AssertionError("unreachable")


def _launch(
    java: str, classpath: str, root: Path, port: int, controller_port: int, version: str, heap: str, detach: bool
) -> BrokerHandle:
    port = port or free_port()
    controller_port = controller_port or free_port()
    while controller_port == port:
        controller_port = free_port()
    config = _write_config(root, port, controller_port)
    _format_storage(java, classpath, config, root)
    log_path = root / "broker.log"
    offset = log_path.stat().st_size if log_path.exists() else 0
    cmd = [
        java, f"-Xmx{heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true", "-XX:-UsePerfData",
        "-cp", classpath, f"-Dlog4j.configuration=file:{LOG4J}", "kafka.Kafka", str(config),
    ]  # fmt: skip
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=root,
            start_new_session=True,  # own process group: killpg reaches everything, Ctrl-C does not
            preexec_fn=None if detach else _die_with_parent,
        )
    handle = BrokerHandle(proc.pid, port, controller_port, root, log_path, version, _proc=proc, _log_offset=offset)
    if not detach:
        atexit.register(handle.stop)
    state = {
        "pid": proc.pid,
        "port": port,
        "controller_port": controller_port,
        "bootstrap": handle.bootstrap,
        "version": version,
        "log": str(log_path),
    }
    (root / STATE_FILE).write_text(json.dumps(state, indent=1))
    return handle


def _await_started(handle: BrokerHandle, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    offset = handle._log_offset
    while time.monotonic() < deadline:
        try:
            with open(handle.log_path, "rb") as f:
                f.seek(offset)
                if STARTED_MARKER.encode() in f.read() and _port_in_use(handle.port):
                    return
        except FileNotFoundError:
            pass
        if not handle.alive():
            raise LauncherError(
                f"the Kafka broker exited during startup; last lines of {handle.log_path}:\n{_tail(handle.log_path)}",
                hint="read the broker log above; `java -version` must be 11 or newer",
            )
        time.sleep(0.1)
    raise LauncherError(
        f"the Kafka broker did not start within {timeout:.0f}s; last lines of {handle.log_path}:\n{_tail(handle.log_path)}",
        hint="the machine may be overloaded: retry, or raise the timeout",
    )


def run_foreground(handle: BrokerHandle) -> int | None:
    """Wait for the broker; Ctrl-C or SIGTERM stops it. Returns its exit code if it exited by itself.

    Raises :class:`LauncherError` (with the log tail) when the broker died on its own.
    """

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        code = handle.wait()
        raise LauncherError(f"the broker exited (code {code}); last lines of {handle.log_path}:\n{_tail(handle.log_path)}")
    except KeyboardInterrupt:
        return None
    finally:
        signal.signal(signal.SIGTERM, previous)
        handle.stop()


# -- detached brokers (launcher.py start/stop/status) ---------------------------------------


def read_state(data_dir: Path | str) -> dict[str, object] | None:
    """The state file of a detached broker in ``data_dir``, or ``None`` when none runs there."""
    path = Path(data_dir).expanduser() / STATE_FILE
    try:
        state = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return state if _pid_alive(int(state["pid"])) else None


def stop_detached(data_dir: Path | str, timeout: float = 15.0) -> dict[str, object] | None:
    """Stop the broker recorded in ``data_dir``; return its state, or ``None`` when none ran."""
    state = read_state(data_dir)
    if state is not None:
        _kill_group(int(state["pid"]), None, timeout)  # type: ignore[arg-type]
    with contextlib.suppress(FileNotFoundError):
        (Path(data_dir).expanduser() / STATE_FILE).unlink()
    return state


def main(argv: list[str] | None = None) -> int:
    """Command line: ``fetch``, ``start``, ``stop``, ``status``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch", help="download the broker jars into the cache")
    p_start = sub.add_parser("start", help="start a broker (detached unless --foreground)")
    p_start.add_argument("--port", type=int, default=9092)
    p_start.add_argument("--data-dir", type=Path, default=None, help=f"default: {DEFAULT_DETACHED_DATA_DIR} (detached)")
    p_start.add_argument("--foreground", action="store_true", help="run until Ctrl-C")
    for name in ("stop", "status"):
        p = sub.add_parser(name, help=f"{name} the broker started with `start` in --data-dir")
        p.add_argument("--data-dir", type=Path, default=DEFAULT_DETACHED_DATA_DIR)
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            print(fetch_jars())
        elif args.command == "start":
            data_dir = args.data_dir or (None if args.foreground else DEFAULT_DETACHED_DATA_DIR)
            if data_dir is not None and (running := read_state(data_dir)):
                raise LauncherError(f"a broker already runs from {data_dir} at {running['bootstrap']}", hint="stop it first")
            handle = start_broker(args.port, data_dir, detach=not args.foreground)
            print(f"Kafka {handle.version} listening on {handle.bootstrap} (pid {handle.pid}, log {handle.log_path})")
            print(f"use: HFTSTREAM_LOG={handle.url}")
            if args.foreground:
                run_foreground(handle)
        elif args.command == "stop":
            state = stop_detached(args.data_dir)
            done = f"stopped broker pid {state['pid']} ({state['bootstrap']})" if state else None
            print(done or f"no broker runs from {args.data_dir}")
        elif args.command == "status":
            state = read_state(args.data_dir)
            print(f"running: {state['bootstrap']} pid {state['pid']}" if state else f"no broker runs from {args.data_dir}")
            return 0 if state else 1
    except LauncherError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
