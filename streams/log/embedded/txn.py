"""Transaction state on disk: last stable offsets, open-transaction pointers, epochs and commit points.

Files (see :mod:`.transactional` for the protocol that uses them)::

    <partition>/~lso                      int64 LE last stable offset at byte 0; int64 LE at byte 8:
                                          0, or a reference to the open transaction's record
    <root>/__transactions/~txlog.<gen>    one record per transaction naming all its partitions (:mod:`.txlog`)
    <root>/__transactions/<id>.json       {"epoch": E, "committed": [E, seq] | null}
    <root>/__transactions/<id>.lock       flock: serialises epoch bumps with commit points
    <root>/__consumer_offsets/<group>.log   each record gains "txn": {id: [epoch, seq]} (see :mod:`.offsets`)
    <partition>/~txn                      (protocol 1, read for migration only) a per-partition JSON marker

A transaction is identified by ``(epoch, seq)``: the epoch is bumped each time a producer
opens the transactional id (fencing the previous holder), ``seq`` counts its transactions.
It is committed when its commit point holds ``[epoch, seq']`` with the same epoch and
``seq' >= seq``. An older epoch's open transaction that is still on disk once a newer epoch
exists never committed: the newer producer resolved every one of its id when it opened, and
an older producer cannot pass a commit point after the bump (it is fenced there).

An 8-byte ``~lso`` (written by protocol 1) reads as "no open transaction" here; protocol 1
readers read the first 8 bytes of a 16-byte one and ignore the rest.
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
LSO_STATE = struct.Struct("<qq")  # last stable offset, open transaction's record reference (0: none)


class Marker(NamedTuple):
    """An open transaction on a partition: who, which transaction, where it started (from its record or a legacy ``~txn``)."""

    transactional_id: str
    epoch: int
    seq: int
    start: int  # the partition's end offset before the transaction appended
    group: str | None  # the consumer group whose offsets file is the commit point (None: the id's file)
    legacy: bool = False  # a protocol-1 ``~txn`` file (any producer opening resolves those)


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
    """A partition's ``~lso`` holds a partial value (not 8 or 16 bytes), so nothing says what is committed."""

    def __init__(self, path: str, size: int) -> None:
        LogCorruptionError.__init__(self, path, -1, 0, "")
        self.args = (f"{path} is {size} byte(s), not 8 or 16: a half-written last stable offset "
                     "(read_committed readers cannot tell which records are committed)",)
        self.hint = ("`hftstream log check` lists it; `hftstream log repair TOPIC PARTITION` rewrites it "
                     "(see RUNBOOK.md 'Stuck transaction / LSO not advancing')")

    def __str__(self) -> str:
        return str(self.args[0])


def lso_size_is_torn(size: int) -> bool:
    """A ``~lso`` of ``size`` bytes is half-written: empty (being created), 8 (protocol 1) and 16 bytes are whole."""
    return size not in (0, LSO.size, LSO_STATE.size)


def read_lso(fd: int, path: Path | str | None = None) -> int:
    """The stored last stable offset (0 while the file is being created: nothing is stable yet).

    Raises :class:`TornLsoError` (naming ``path``) when the file holds a partial value.
    """
    return read_lso_state(fd, path)[0]


def read_lso_state(fd: int, path: Path | str | None = None, *, strict: bool = True) -> tuple[int, int]:
    """``(last stable offset, open transaction reference or 0)``: one ``pread``.

    An 8-byte file (protocol 1) has no reference; an empty one is being created. A partial value raises
    :class:`TornLsoError` (naming ``path``) when ``strict`` (readers: what is committed is unknown); otherwise it
    reads as what its whole first 8 bytes say, with no open transaction (writers, `log check` and repair, which
    report or rewrite it).
    """
    raw = os.pread(fd, LSO_STATE.size, 0)
    if len(raw) == LSO_STATE.size:
        return LSO_STATE.unpack(raw)  # type: ignore[return-value]
    if len(raw) == LSO.size:
        return LSO.unpack(raw)[0], 0
    if raw and strict:
        raise TornLsoError(str(path or LSO_NAME), len(raw))
    return (LSO.unpack(raw[: LSO.size])[0] if len(raw) > LSO.size else 0), 0


def write_lso(fd: int, offset: int, ref: int = 0) -> None:
    """Store the last stable offset and the open transaction's reference (one 16-byte ``pwrite`` at byte 0)."""
    os.pwrite(fd, LSO_STATE.pack(offset, ref), 0)


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
    """The transaction open on the partition (its record, via ``~lso``; or a protocol-1 ``~txn``), or ``None``."""
    fd = open_lso(directory, create=False)
    if fd is not None:
        try:
            start, ref = read_lso_state(fd, strict=False)
        finally:
            os.close(fd)
        if ref:
            return record_marker(directory, ref, start)
    return read_legacy_marker(directory)


def record_marker(directory: Path, ref: int, start: int) -> Marker:
    """The :class:`Marker` of the transaction record ``ref`` that ``directory``'s ``~lso`` points at."""
    from streams.log.embedded.txlog import read_record

    root = directory.parent.parent
    raw = read_record(root / TXN_DIR, ref)
    topic, partition = directory.parent.name, int(directory.name)
    for t, p, s in raw.get("parts", ()):
        if t == topic and p == partition:
            start = int(s)
            break
    return Marker(str(raw["id"]), int(raw["epoch"]), int(raw["seq"]), start, raw.get("group"))


def transaction_record(marker: Marker, parts: list[tuple[str, int, int]]) -> dict[str, object]:
    """The body of a transaction's record: who, which transaction, its commit point, ``[topic, partition, start]`` each."""
    return {
        "id": marker.transactional_id, "epoch": marker.epoch, "seq": marker.seq, "group": marker.group,
        "parts": [[t, p, s] for t, p, s in parts],
    }


def read_legacy_marker(directory: Path) -> Marker | None:
    """A protocol-1 marker file ``~txn`` (left by an older version that died mid-commit), or ``None``."""
    path = directory / MARKER_NAME
    try:
        raw = json.loads(path.read_text())
        return Marker(str(raw["id"]), int(raw["epoch"]), int(raw["seq"]), int(raw["start"]), raw.get("group"), True)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        err = LogCorruptionError(str(path), -1, 0, f"unreadable transaction marker: {exc}")
        err.hint = "see RUNBOOK.md 'Stuck transaction / LSO not advancing'"
        raise err from exc


def remove_marker(directory: Path) -> None:
    """Delete the marker (missing is fine)."""
    try:
        os.unlink(directory / MARKER_NAME)
    except FileNotFoundError:
        pass


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


def store_state(
    root: Path, transactional_id: str, epoch: int, committed: tuple[int, int] | None, *, durable: bool = True
) -> None:
    """Replace ``__transactions/<id>.json`` atomically (tmp + rename; fsynced when ``durable``). Call under :func:`id_lock`."""
    path = state_path(root, transactional_id)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump({"id": transactional_id, "epoch": epoch, "committed": list(committed) if committed else None}, f)
        f.flush()
        if durable:
            os.fsync(f.fileno())
    os.replace(tmp, path)


def commit_point(root: Path, transactional_id: str, group: str | None) -> tuple[int, int] | None:
    """The last ``(epoch, seq)`` committed for ``transactional_id`` at the commit point of ``group`` (or of no group)."""
    if group is None:
        return load_state(root, transactional_id)[1]
    return OffsetsStore(root).load_txn(group).get(transactional_id)


def referenced_generations(partition_dirs: list[Path]) -> set[int]:
    """The transaction-log generations some partition's ``~lso`` points into (an open transaction's record)."""
    from streams.log.embedded.txlog import split_ref

    out = set()
    for directory in partition_dirs:
        fd = open_lso(directory, create=False)
        if fd is None:
            continue
        try:
            ref = read_lso_state(fd, strict=False)[1]
        finally:
            os.close(fd)
        if ref:
            out.add(split_ref(ref)[0])
    return out


def is_committed(root: Path, marker: Marker) -> bool:
    """Did the transaction that left ``marker`` reach its commit point? (See the module docstring.)"""
    done = commit_point(root, marker.transactional_id, marker.group)
    return done is not None and done[0] == marker.epoch and done[1] >= marker.seq
