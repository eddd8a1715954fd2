"""Committed consumer-group offsets: ``<root>/__consumer_offsets/<group>.log``.

The group's file is append-only: every commit appends **one** CRC-framed record holding
the group's whole state, ``{"group", "offsets": {topic: {partition: next_offset}}, "txn":
{transactional_id: [epoch, seq]}}``; the newest valid record is the state. A commit merges
``{(topic, partition): next_offset}`` into it under an ``flock`` (so two processes
committing for one group never lose each other's partitions) and appends (one ``write``,
fsynced unless the log's ``fsync`` policy is ``never``). A record is valid only whole (its
CRC), so a crash leaves the old or the new offsets; a torn tail is truncated by the next
commit. No file is created or renamed per commit (on ext4 a rename over a file forces
writeback, the cost that made commits slow, DECISIONS #53): only when the file passes
``COMPACT_BYTES`` is it replaced by a file holding just the newest record (tmp + rename).

``"txn"`` is the last transaction of each transactional producer that committed offsets for
this group: appending the offsets and that entry in one record is the commit point of such a
transaction (see :mod:`.transactional`).

Frame: ``b"HOF1"``, body length (u32 LE), CRC-32 of the body (u32 LE), the body (JSON),
then the frame's total length (u32 LE) and ``b"HOFe"``, so the newest record is read from
the end without a scan. Compatibility: a group that only has the ``<group>.json`` of
earlier versions (one JSON object, same body) is read from it; its first commit writes the
``.log`` and removes the ``.json``.
"""

from __future__ import annotations

import fcntl
import json
import os
import struct
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from streams.errors import ConfigError
from streams.log.base import TopicPartition

OFFSETS_DIR = "__consumer_offsets"
_LOCK = "~lock"
MAGIC, TRAILER_MAGIC = b"HOF1", b"HOFe"
HEADER = struct.Struct("<4sII")
TRAILER = struct.Struct("<I4s")
COMPACT_BYTES = 256 * 1024


def encode_state(body: dict[str, Any]) -> bytes:
    """One frame of the group's file."""
    data = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    size = HEADER.size + len(data) + TRAILER.size
    return HEADER.pack(MAGIC, len(data), zlib.crc32(data)) + data + TRAILER.pack(size, TRAILER_MAGIC)


def _frame(buf: bytes, pos: int) -> tuple[int, dict[str, Any]] | None:
    """``(end, body)`` of the valid frame at ``pos``, or ``None``."""
    if len(buf) - pos < HEADER.size + TRAILER.size:
        return None
    magic, length, crc = HEADER.unpack_from(buf, pos)
    body_end = pos + HEADER.size + length
    end = body_end + TRAILER.size
    if magic != MAGIC or end > len(buf) or zlib.crc32(buf[pos + HEADER.size : body_end]) != crc:
        return None
    if TRAILER.unpack_from(buf, body_end) != (end - pos, TRAILER_MAGIC):
        return None
    return end, json.loads(buf[pos + HEADER.size : body_end])


def _scan(buf: bytes) -> tuple[int, dict[str, Any]]:
    """``(end of the last valid frame, its body)`` walking from the start (``(0, {})`` if none)."""
    pos, body = 0, {}
    while (found := _frame(buf, pos)) is not None:
        pos, body = found
    return pos, body


class OffsetsStore:
    """Reads and writes the committed offsets of every group of one embedded log."""

    def __init__(self, root: Path, *, durable: bool = True) -> None:
        self.directory = root / OFFSETS_DIR
        self.durable = durable
        self._cache: dict[str, tuple[tuple[int, int, int], dict[str, Any]]] = {}  # group -> ((inode, size, mtime), body)

    def path(self, group: str) -> Path:
        """The file holding ``group``'s offsets (the name is percent-encoded)."""
        return self.directory / f"{self._name(group)}.log"

    def legacy_path(self, group: str) -> Path:
        """Where versions before DECISIONS #53 kept ``group``'s offsets (one JSON object, replaced per commit)."""
        return self.directory / f"{self._name(group)}.json"

    @staticmethod
    def _name(group: str) -> str:
        if not group:
            raise ConfigError("consumer group name is empty", hint="name the group after the processor, e.g. 'ledger'")
        return quote(group, safe="")

    def raw(self, group: str) -> dict[str, Any]:
        """The group's stored state as a dict (``{}`` if it never committed)."""
        path = self.path(group)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return self._legacy(group)
        try:
            st = os.fstat(fd)
            key = (st.st_ino, st.st_size, st.st_mtime_ns)
            cached = self._cache.get(group)
            if cached is not None and cached[0] == key:
                return cached[1]
            body = self._newest(fd, st.st_size)
        finally:
            os.close(fd)
        if body is None:
            raise ConfigError(
                f"committed offsets of group {group!r} in {path} are unreadable: no valid record",
                hint=f"delete {path} to reset the group (it then starts from auto_offset_reset)",
            )
        self._cache[group] = (key, body)
        return body

    def damage(self, group: str) -> str | None:
        """What is wrong with ``group``'s file beyond its last whole record (``None``: nothing, or no file).

        A torn tail alone is what a writer killed inside its append leaves (that commit did not happen);
        with a group that disagrees with its commit manifests it means the file was cut or overwritten.
        """
        try:
            buf = self.path(group).read_bytes()
        except FileNotFoundError:
            return None
        end, _ = _scan(buf)
        if end == len(buf):
            return None
        return (f"{self.path(group)} ends in {len(buf) - end} byte(s) that are not a whole record after "
                f"{end} valid byte(s): the file was cut or damaged, and the commits it held there are lost")

    @staticmethod
    def _newest(fd: int, size: int) -> dict[str, Any] | None:
        """The newest valid record: via the trailer (two ``pread``s), else by a scan (a torn tail)."""
        if size >= HEADER.size + TRAILER.size:
            length, magic = TRAILER.unpack(os.pread(fd, TRAILER.size, size - TRAILER.size))
            if magic == TRAILER_MAGIC and HEADER.size + TRAILER.size <= length <= size:
                found = _frame(os.pread(fd, length, size - length), 0)
                if found is not None:
                    return found[1]
        end, body = _scan(os.pread(fd, size, 0))
        return body if end else ({} if size == 0 else None)

    def _legacy(self, group: str) -> dict[str, Any]:
        path = self.legacy_path(group)
        try:
            return json.loads(path.read_text())  # type: ignore[no-any-return]
        except FileNotFoundError:
            return {}
        except (ValueError, OSError) as exc:
            raise ConfigError(
                f"committed offsets of group {group!r} in {path} are unreadable: {exc}",
                hint=f"delete {path} to reset the group (it then starts from auto_offset_reset)",
            ) from exc

    def load(self, group: str) -> dict[TopicPartition, int]:
        """The group's committed offsets (empty if it never committed)."""
        return self._offsets(self.raw(group))

    def load_txn(self, group: str) -> dict[str, tuple[int, int]]:
        """``{transactional_id: (epoch, seq)}``: the last transaction of each producer that committed for the group."""
        return self._txns(self.raw(group))

    @staticmethod
    def _offsets(raw: dict[str, Any]) -> dict[TopicPartition, int]:
        return {(t, int(p)): int(o) for t, parts in raw.get("offsets", {}).items() for p, o in parts.items()}

    @staticmethod
    def _txns(raw: dict[str, Any]) -> dict[str, tuple[int, int]]:
        return {k: (int(v[0]), int(v[1])) for k, v in raw.get("txn", {}).items()}

    def commit(self, group: str, offsets: dict[TopicPartition, int], txn: tuple[str, int, int] | None = None) -> None:
        """Merge ``offsets`` (and ``txn`` = ``(transactional_id, epoch, seq)``) into the group's state: one appended record."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / _LOCK, "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            raw = self.raw(group)
            merged = self._offsets(raw)
            merged.update(offsets)
            txns = self._txns(raw)
            if txn is not None:
                txns[txn[0]] = (txn[1], txn[2])
            self._write(group, merged, txns)

    def delete(self, group: str) -> bool:
        """Forget ``group``'s committed offsets. True if it had any."""
        found = False
        for path in (self.path(group), self.legacy_path(group)):
            try:
                path.unlink()
                found = True
            except FileNotFoundError:
                pass
        self._cache.pop(group, None)
        return found

    def groups(self) -> list[str]:
        """Every group with committed offsets."""
        if not self.directory.is_dir():
            return []
        names = {unquote(p.stem) for pattern in ("*.log", "*.json") for p in self.directory.glob(pattern)}
        return sorted(names)

    def drop_topic(self, topic: str) -> None:
        """Forget every group's offsets for ``topic`` (it was deleted)."""
        if not self.directory.is_dir():
            return
        with open(self.directory / _LOCK, "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            for group in self.groups():
                try:
                    raw = self.raw(group)
                except ConfigError:
                    continue
                if topic in raw.get("offsets", {}):
                    merged = {k: v for k, v in self._offsets(raw).items() if k[0] != topic}
                    self._write(group, merged, self._txns(raw))

    def _write(self, group: str, offsets: dict[TopicPartition, int], txns: dict[str, tuple[int, int]]) -> None:
        """Append the group's new state (under the lock); compact a large file; retire a legacy ``.json``."""
        nested: dict[str, dict[str, int]] = {}
        for (topic, partition), offset in sorted(offsets.items()):
            nested.setdefault(topic, {})[str(partition)] = offset
        body: dict[str, Any] = {"group": group, "offsets": nested}
        if txns:
            body["txn"] = {k: list(v) for k, v in sorted(txns.items())}
        frame = encode_state(body)
        path = self.path(group)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size + len(frame) > COMPACT_BYTES:
                self._replace(path, frame)
                st = os.stat(path)
            else:
                valid = self._valid_end(fd, size)
                if valid != size:  # a torn tail: its writer died inside its write (we hold the lock)
                    os.ftruncate(fd, valid)
                done = os.write(fd, frame)
                while done < len(frame):
                    done += os.write(fd, memoryview(frame)[done:])
                if self.durable:
                    os.fsync(fd)
                st = os.fstat(fd)
        finally:
            os.close(fd)
        self._cache[group] = ((st.st_ino, st.st_size, st.st_mtime_ns), body)
        if size == 0:  # the group's first record in this format: retire the file of earlier versions
            try:
                self.legacy_path(group).unlink()
            except FileNotFoundError:
                pass

    def _valid_end(self, fd: int, size: int) -> int:
        if size == 0:
            return 0
        length, magic = TRAILER.unpack(os.pread(fd, TRAILER.size, size - TRAILER.size)) if size >= TRAILER.size else (0, b"")
        if magic == TRAILER_MAGIC and 0 < length <= size and _frame(os.pread(fd, length, size - length), 0) is not None:
            return size
        return _scan(os.pread(fd, size, 0))[0]

    def _replace(self, path: Path, frame: bytes) -> None:
        tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
        with open(tmp, "wb") as f:
            f.write(frame)
            f.flush()
            if self.durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
