"""Committed consumer-group offsets: ``<root>/__consumer_offsets/<group>.json``.

A commit merges ``{(topic, partition): next_offset}`` into the group's file under an
``flock`` (so two processes committing for one group never lose each other's partitions)
and replaces the file atomically (write a temporary file, rename; fsynced first unless the
log's ``fsync`` policy is ``never``), so a crash leaves either the old or the new offsets,
never a torn file (a power cut is covered only with ``fsync=batch|interval``).

The file also holds ``"txn": {transactional_id: [epoch, seq]}``: the last transaction of each
transactional producer that committed offsets for this group. Writing the offsets and that
entry in one replace is the commit point of such a transaction (see :mod:`.transactional`).
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from urllib.parse import quote

from streams.errors import ConfigError
from streams.log.base import TopicPartition

OFFSETS_DIR = "__consumer_offsets"
_LOCK = "~lock"


class OffsetsStore:
    """Reads and writes the committed offsets of every group of one embedded log."""

    def __init__(self, root: Path, *, durable: bool = True) -> None:
        self.directory = root / OFFSETS_DIR
        self.durable = durable

    def path(self, group: str) -> Path:
        """The file holding ``group``'s offsets (the name is percent-encoded)."""
        if not group:
            raise ConfigError("consumer group name is empty", hint="name the group after the processor, e.g. 'ledger'")
        return self.directory / f"{quote(group, safe='')}.json"

    def _raw(self, group: str) -> dict:  # type: ignore[type-arg]
        path = self.path(group)
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
        return self._offsets(self._raw(group))

    def load_txn(self, group: str) -> dict[str, tuple[int, int]]:
        """``{transactional_id: (epoch, seq)}``: the last transaction of each producer that committed for the group."""
        return self._txns(self._raw(group))

    @staticmethod
    def _offsets(raw: dict) -> dict[TopicPartition, int]:  # type: ignore[type-arg]
        return {(t, int(p)): int(o) for t, parts in raw.get("offsets", {}).items() for p, o in parts.items()}

    @staticmethod
    def _txns(raw: dict) -> dict[str, tuple[int, int]]:  # type: ignore[type-arg]
        return {k: (int(v[0]), int(v[1])) for k, v in raw.get("txn", {}).items()}

    def commit(self, group: str, offsets: dict[TopicPartition, int], txn: tuple[str, int, int] | None = None) -> None:
        """Merge ``offsets`` (and ``txn`` = ``(transactional_id, epoch, seq)``) into the group's file, atomically."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path(group)
        with open(self.directory / _LOCK, "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            raw = self._raw(group)  # read once: offsets and transactions
            merged = self._offsets(raw)
            merged.update(offsets)
            txns = self._txns(raw)
            if txn is not None:
                txns[txn[0]] = (txn[1], txn[2])
            self._write(group, path, merged, txns)

    def drop_topic(self, topic: str) -> None:
        """Forget every group's offsets for ``topic`` (it was deleted)."""
        if not self.directory.is_dir():
            return
        with open(self.directory / _LOCK, "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            for path in self.directory.glob("*.json"):
                try:
                    raw = json.loads(path.read_text())
                except (ValueError, OSError):
                    continue
                if topic in raw.get("offsets", {}):
                    group = raw.get("group", "")
                    merged = {k: v for k, v in self.load(group).items() if k[0] != topic} if group else {}
                    self._write(group, path, merged, self.load_txn(group) if group else {})

    def _write(self, group: str, path: Path, offsets: dict[TopicPartition, int], txns: dict[str, tuple[int, int]]) -> None:
        nested: dict[str, dict[str, int]] = {}
        for (topic, partition), offset in sorted(offsets.items()):
            nested.setdefault(topic, {})[str(partition)] = offset
        body: dict[str, object] = {"group": group, "offsets": nested}
        if txns:
            body["txn"] = {k: list(v) for k, v in sorted(txns.items())}
        tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
        with open(tmp, "w") as f:
            json.dump(body, f, sort_keys=True)
            f.flush()
            if self.durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
