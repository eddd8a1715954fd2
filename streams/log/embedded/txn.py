"""Transaction state on disk: last stable offsets, in-flight markers, epochs and commit points.

Files (see :mod:`.transactional` for the protocol that uses them)::

    <partition>/~lso                      the partition's last stable offset: int64 LE at byte 0
    <partition>/~txn                      marker of a transaction appending here (JSON, tmp + rename)
    <root>/__transactions/<id>.json       {"epoch": E, "committed": [E, seq] | null}
    <root>/__transactions/<id>.lock       flock: serialises epoch bumps with commit points
    <root>/__consumer_offsets/<group>.json  gains "txn": {id: [epoch, seq]} (see :mod:`.offsets`)

A transaction is identified by ``(epoch, seq)``: the epoch is bumped each time a producer
opens the transactional id (fencing the previous holder), ``seq`` counts its transactions.
It is committed when its commit point holds ``[epoch, seq']`` with the same epoch and
``seq' >= seq``. An older epoch's marker that is still on disk once a newer epoch exists
never committed: the newer producer resolved every marker of its id when it opened, and an
older producer cannot pass a commit point after the bump (it is fenced there).
"""

from __future__ import annotations

import fcntl
import json
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

from streams.errors import ConfigError, LogCorruptionError
from streams.log.embedded.offsets import OffsetsStore

TXN_DIR = "__transactions"
MARKER_NAME = "~txn"
LSO_NAME = "~lso"
LSO = struct.Struct("<q")


class Marker(NamedTuple):
    """A transaction appending to a partition: who, which transaction, where it started."""

    transactional_id: str
    epoch: int
    seq: int
    start: int  # the partition's end offset before the transaction appended
    group: str | None  # the consumer group whose offsets file is the commit point (None: the id's file)


# -- last stable offset ------------------------------------------------------------------


def open_lso(directory: Path, *, create: bool) -> int | None:
    """A descriptor on the partition's ``~lso`` (read-write and created when ``create``), or ``None``."""
    try:
        if create:
            return os.open(directory / LSO_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        return os.open(directory / LSO_NAME, os.O_RDONLY)
    except FileNotFoundError:
        return None


class TornLsoError(LogCorruptionError):
    """A partition's ``~lso`` holds 1..7 bytes: a half-written last stable offset, so nothing says what is committed."""

    def __init__(self, path: str, size: int) -> None:
        LogCorruptionError.__init__(self, path, -1, 0, "")
        self.args = (f"{path} is {size} byte(s), not 8: a half-written last stable offset "
                     "(read_committed readers cannot tell which records are committed)",)
        self.hint = ("`hftstream log check` lists it; `hftstream log repair TOPIC PARTITION` rewrites it "
                     "(see RUNBOOK.md 'Stuck transaction / LSO not advancing')")

    def __str__(self) -> str:
        return str(self.args[0])


def read_lso(fd: int, path: Path | str | None = None) -> int:
    """The stored last stable offset (0 while the file is being created: nothing is stable yet).

    Raises :class:`TornLsoError` (naming ``path``) when the file holds a partial value.
    """
    raw = os.pread(fd, 8, 0)
    if len(raw) == 8:
        return LSO.unpack(raw)[0]
    if raw:
        raise TornLsoError(str(path or LSO_NAME), len(raw))
    return 0


def write_lso(fd: int, offset: int) -> None:
    """Store the last stable offset (one ``pwrite`` at byte 0)."""
    os.pwrite(fd, LSO.pack(offset), 0)


def stable_offset(directory: Path) -> int | None:
    """The partition's last stable offset, or ``None`` when it has no ``~lso`` (an older log: the high watermark)."""
    fd = open_lso(directory, create=False)
    if fd is None:
        return None
    try:
        return read_lso(fd, directory / LSO_NAME)
    finally:
        os.close(fd)


# -- markers -----------------------------------------------------------------------------


def read_marker(directory: Path) -> Marker | None:
    """The partition's transaction marker, or ``None``."""
    path = directory / MARKER_NAME
    try:
        raw = json.loads(path.read_text())
        return Marker(str(raw["id"]), int(raw["epoch"]), int(raw["seq"]), int(raw["start"]), raw.get("group"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        err = LogCorruptionError(str(path), -1, 0, f"unreadable transaction marker: {exc}")
        err.hint = "see RUNBOOK.md 'Stuck transaction / LSO not advancing'"
        raise err from exc


def write_marker(directory: Path, marker: Marker, *, durable: bool) -> None:
    """Write the marker atomically (tmp + rename): it is either whole or absent."""
    tmp = directory / f"{MARKER_NAME}.tmp{os.getpid()}"
    body = {"id": marker.transactional_id, "epoch": marker.epoch, "seq": marker.seq, "start": marker.start, "group": marker.group}
    with open(tmp, "w") as f:
        json.dump(body, f)
        f.flush()
        if durable:
            os.fsync(f.fileno())
    os.replace(tmp, directory / MARKER_NAME)
    if durable:
        _fsync_dir(directory)


def remove_marker(directory: Path) -> None:
    """Delete the marker (missing is fine)."""
    try:
        os.unlink(directory / MARKER_NAME)
    except FileNotFoundError:
        pass


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# -- epochs and commit points ------------------------------------------------------------


def _id_name(transactional_id: str) -> str:
    if not transactional_id:
        raise ConfigError("transactional id is empty", hint="use the processor name and instance id, e.g. 'normalize-0'")
    return quote(transactional_id, safe="")


def state_path(root: Path, transactional_id: str) -> Path:
    """``__transactions/<id>.json``."""
    return root / TXN_DIR / f"{_id_name(transactional_id)}.json"


@contextmanager
def id_lock(root: Path, transactional_id: str) -> Iterator[None]:
    """Hold ``__transactions/<id>.lock`` (epoch bumps and commit points take it; nothing waits inside)."""
    (root / TXN_DIR).mkdir(parents=True, exist_ok=True)
    fd = os.open(root / TXN_DIR / f"{_id_name(transactional_id)}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def load_state(root: Path, transactional_id: str) -> tuple[int, tuple[int, int] | None]:
    """``(epoch, committed)`` of an id: its current epoch (0 if never opened) and its last group-less commit."""
    path = state_path(root, transactional_id)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return 0, None
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"transaction state {path} is unreadable: {exc}",
            hint="see RUNBOOK.md 'Stuck transaction / LSO not advancing'",
        ) from exc
    committed = raw.get("committed")
    return int(raw.get("epoch", 0)), (int(committed[0]), int(committed[1])) if committed else None


def store_state(root: Path, transactional_id: str, epoch: int, committed: tuple[int, int] | None) -> None:
    """Replace ``__transactions/<id>.json`` atomically (tmp + fsync + rename). Call under :func:`id_lock`."""
    path = state_path(root, transactional_id)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump({"id": transactional_id, "epoch": epoch, "committed": list(committed) if committed else None}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def commit_point(root: Path, transactional_id: str, group: str | None) -> tuple[int, int] | None:
    """The last ``(epoch, seq)`` committed for ``transactional_id`` at the commit point of ``group`` (or of no group)."""
    if group is None:
        return load_state(root, transactional_id)[1]
    return OffsetsStore(root).load_txn(group).get(transactional_id)


def is_committed(root: Path, marker: Marker) -> bool:
    """Did the transaction that left ``marker`` reach its commit point? (See the module docstring.)"""
    done = commit_point(root, marker.transactional_id, marker.group)
    return done is not None and done[0] == marker.epoch and done[1] >= marker.seq
