"""``state.<processor>``: the processor's commit log (manifests) and its periodic state snapshots.

Every committed batch writes, per task that moved, one ``hftstream.runtime.Commit``
manifest: the exact ``[start, end)`` of every input partition the batch consumed. Every
so often the manifest is preceded by the task's snapshot, cut into
``hftstream.runtime.SnapshotChunk`` records (so a large state fits Kafka's default message
size). Both are produced *inside the batch's transaction*, so they commit or vanish with
the outputs and the input offsets they describe.

Recovery of task ``p`` = the newest manifest of ``p`` that carries a snapshot, restored,
then every later manifest of ``p`` replayed in order over exactly its input ranges (outputs
discarded: they are already on the log). ``hftstream verify`` does the same from an older
snapshot and compares what it regenerates with what is on the log.

The topic is not compacted: manifests are the audit trail. It is found from the end
backwards (:meth:`StateStore.history`), so a restart reads only what it needs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from streams.errors import ConfigError
from streams.log.base import Log, Record, TopicPartition
from streams.runtime.codec import Encoded
from streams.serde import Serde

COMMIT_SCHEMA = "hftstream.runtime.Commit"
CHUNK_SCHEMA = "hftstream.runtime.SnapshotChunk"
CHUNK_BYTES = 512 * 1024  # under Kafka's default max.message.bytes (1 MiB) with room for framing
_SCAN_STEP = 4096
_EMPTY_POLLS_MAX = 150  # x 0.2 s: how long read_range waits for records the log says are there


def state_topic(processor: str) -> str:
    """The commit log / snapshot topic of ``processor``."""
    return f"state.{processor}"


@dataclass(frozen=True, slots=True)
class Manifest:
    """One decoded ``Commit`` record (see the schema for the fields)."""

    task: int
    seq: int
    ranges: tuple[tuple[TopicPartition, int, int], ...]  # ((topic, partition), start, end)
    records_in: int
    records_out: int
    dead_letters: int
    snapshot_chunks: int
    committed_ts_ns: int
    instance: str = ""
    offset: int = -1  # where it sits in state.<processor>
    applied_first: tuple[str, ...] = ()  # as-of input topics applied before the rest (a live run), not merged with it

    def ends(self) -> dict[TopicPartition, int]:
        """``{tp: end}``: the positions right after this commit."""
        return {tp: end for tp, _, end in self.ranges}

    def starts(self) -> dict[TopicPartition, int]:
        """``{tp: start}``: the positions right before this commit."""
        return {tp: start for tp, start, _ in self.ranges}


@dataclass
class TaskHistory:
    """What recovery (or verify) needs for one task: a snapshot and the manifests after it."""

    task: int
    snapshot: bytes | None = None  # None: no snapshot, start from an empty state
    snapshot_manifest: Manifest | None = None
    after: list[Manifest] = field(default_factory=list)  # manifests committed after the snapshot, oldest first

    @property
    def last(self) -> Manifest | None:
        """The newest manifest (the task's committed position), if any."""
        if self.after:
            return self.after[-1]
        return self.snapshot_manifest


class StateStore:
    """Writes and reads ``state.<processor>`` for one processor."""

    def __init__(self, log: Log, serde: Serde, processor: str) -> None:
        self.log = log
        self.serde = serde
        self.processor = processor
        self.topic = state_topic(processor)

    # -- writing (records for the transaction) --------------------------------------

    def commit_records(
        self,
        manifest: Manifest,
        snapshot: bytes | None,
    ) -> list[Encoded]:
        """The records of one task's commit: snapshot chunks (if any), then the manifest."""
        key = str(manifest.task).encode()
        now = time.time_ns()  # operational metadata only; never seen by a processor
        out: list[Encoded] = []
        chunks = 0
        if snapshot is not None:
            pieces = [snapshot[i : i + CHUNK_BYTES] for i in range(0, len(snapshot), CHUNK_BYTES)] or [b""]
            chunks = len(pieces)
            for i, piece in enumerate(pieces):
                value = {"processor": self.processor, "task": manifest.task, "seq": manifest.seq, "index": i, "count": chunks, "data": piece}
                out.append((self.topic, key, self.serde.encode(CHUNK_SCHEMA, value, topic=self.topic), now, ()))
        value = {
            "processor": self.processor,
            "instance": manifest.instance,
            "task": manifest.task,
            "seq": manifest.seq,
            "inputs": [{"topic": t, "partition": p, "start": s, "end": e} for (t, p), s, e in manifest.ranges],
            "records_in": manifest.records_in,
            "records_out": manifest.records_out,
            "dead_letters": manifest.dead_letters,
            "snapshot_chunks": chunks,
            "snapshot_bytes": len(snapshot) if snapshot is not None else 0,
            "committed_ts_ns": now,
            "applied_first": list(manifest.applied_first),
        }
        out.append((self.topic, key, self.serde.encode(COMMIT_SCHEMA, value, topic=self.topic), now, ()))
        return out

    # -- reading --------------------------------------------------------------------

    def _decode(self, rec: Record) -> tuple[str, dict[str, Any]] | None:
        if rec.value is None:
            return None
        try:
            schema, value = self.serde.decode(rec.value)
        except Exception as exc:  # a damaged state topic must stop recovery, loudly
            raise ConfigError(
                f"{self.topic} offset {rec.offset}: undecodable state record: {exc}",
                hint=f"the processor's commit log is damaged; inspect it with `hftstream replay -t {self.topic} "
                f"--from-offset {rec.offset}` (RUNBOOK.md 'Processor state lost or damaged')",
            ) from None
        return schema, value

    @staticmethod
    def _manifest(value: dict[str, Any], offset: int) -> Manifest:
        ranges = tuple(((r["topic"], r["partition"]), r["start"], r["end"]) for r in value["inputs"])
        return Manifest(
            value["task"], value["seq"], ranges, value["records_in"], value["records_out"], value["dead_letters"],
            value["snapshot_chunks"], value["committed_ts_ns"], value["instance"], offset, tuple(value.get("applied_first") or ()),
        )

    def _read_range(self, start: int, end: int) -> Iterator[Record]:
        """Committed records of the state topic with ``start <= offset < end``."""
        yield from read_range(self.log, self.topic, 0, start, end)

    def history(self, task: int, *, before_seq: int | None = None) -> TaskHistory:
        """The newest snapshot of ``task`` (older than ``before_seq`` when given) and every manifest after it.

        Scans ``state.<processor>`` backwards in steps from its end, so a restart reads about
        one snapshot interval of manifests, not the whole history.
        """
        low, high = self.log.watermarks(self.topic, 0)
        hist = TaskHistory(task)
        manifests: list[Manifest] = []  # newest first
        chunks: dict[int, dict[int, bytes]] = {}  # seq -> index -> data
        snap: Manifest | None = None
        hi = high
        while hi > low and snap is None:
            lo = max(low, hi - _SCAN_STEP)
            window: list[tuple[int, str, dict[str, Any]]] = []
            for rec in self._read_range(lo, hi):
                decoded = self._decode(rec)
                if decoded is not None and decoded[1].get("task") == task:
                    window.append((rec.offset, decoded[0], decoded[1]))
            for offset, schema, value in reversed(window):
                if schema == CHUNK_SCHEMA:
                    chunks.setdefault(value["seq"], {})[value["index"]] = value["data"]
                    continue
                if schema != COMMIT_SCHEMA:
                    continue
                m = self._manifest(value, offset)
                if before_seq is not None and m.seq >= before_seq:
                    continue
                if m.snapshot_chunks and snap is None:
                    snap = m
                    break
                manifests.append(m)
            hi = lo
        if snap is not None:
            pieces = chunks.get(snap.seq, {})
            if len(pieces) != snap.snapshot_chunks:  # chunks sit right before the manifest: read them
                for rec in self._read_range(max(low, snap.offset - 2 * snap.snapshot_chunks - 64), snap.offset):
                    decoded = self._decode(rec)
                    if decoded and decoded[0] == CHUNK_SCHEMA and decoded[1]["task"] == task and decoded[1]["seq"] == snap.seq:
                        pieces[decoded[1]["index"]] = decoded[1]["data"]
            if len(pieces) != snap.snapshot_chunks:
                raise ConfigError(
                    f"{self.topic}: snapshot of task {task} at commit {snap.seq} is incomplete "
                    f"({len(pieces)} of {snap.snapshot_chunks} pieces)",
                    hint="the processor's commit log is damaged (RUNBOOK.md 'Processor state lost or damaged')",
                )
            hist.snapshot = b"".join(pieces[i] for i in range(snap.snapshot_chunks))
            hist.snapshot_manifest = snap
        manifests.reverse()
        hist.after = manifests
        _check_contiguous(self.topic, hist)
        return hist

    def latest(self, tasks: int) -> dict[int, Manifest]:
        """The newest manifest of each task in ``range(tasks)`` that has committed (``hftstream status``)."""
        low, high = self.log.watermarks(self.topic, 0)
        found: dict[int, Manifest] = {}
        hi = high
        while hi > low and len(found) < tasks:
            lo = max(low, hi - _SCAN_STEP)
            window = []
            for rec in self._read_range(lo, hi):
                decoded = self._decode(rec)
                if decoded and decoded[0] == COMMIT_SCHEMA:
                    window.append(self._manifest(decoded[1], rec.offset))
            for m in reversed(window):
                found.setdefault(m.task, m)
            hi = lo
        return found

    def manifests(self, task: int | None = None) -> list[Manifest]:
        """Every manifest on the topic (of one task, or all), oldest first (status and verify)."""
        low, high = self.log.watermarks(self.topic, 0)
        out = []
        for rec in self._read_range(low, high):
            decoded = self._decode(rec)
            if decoded and decoded[0] == COMMIT_SCHEMA and (task is None or decoded[1]["task"] == task):
                out.append(self._manifest(decoded[1], rec.offset))
        return out


def read_range(log: Log, topic: str, partition: int, start: int, end: int) -> Iterator[Record]:
    """Committed records of one partition with ``start <= offset < end``, then stop.

    ``end`` may lie beyond the last committed record (aborted records and transaction
    markers take offsets too): reading stops once the reader has reached the partition's
    stable end. A reader's own idea of it (:meth:`~streams.log.base.Reader.end_offset`) is
    cached on Kafka and unknown before the first fetch, so before stopping short of ``end``
    the log is asked (:meth:`~streams.log.base.Log.end_offsets`): a slow first fetch must not
    pass for an empty range. Gives up after ``_EMPTY_POLLS_MAX`` empty polls short of that end.
    """
    if start >= end:
        return
    with log.reader([(topic, partition, start)]) as reader:
        empty = 0
        while True:
            batch = reader.poll(2000, timeout=0.2)
            if not batch:
                pos = reader.position(topic, partition)
                if pos >= end:
                    return
                stable = reader.end_offset(topic, partition)
                if stable is None or pos >= stable or log.reader_ends_cached:
                    stable = log.end_offsets([(topic, partition)]).get((topic, partition), pos)
                    if pos >= stable:
                        return
                empty += 1
                if empty >= _EMPTY_POLLS_MAX:
                    return
                continue
            empty = 0
            for rec in batch:
                if rec.offset >= end:
                    return
                yield rec


def _check_contiguous(topic: str, hist: TaskHistory) -> None:
    seqs = ([hist.snapshot_manifest.seq] if hist.snapshot_manifest else []) + [m.seq for m in hist.after]
    expected = list(range(seqs[0], seqs[0] + len(seqs))) if seqs else []
    if seqs != expected or (not hist.snapshot_manifest and seqs and seqs[0] != 1):
        raise ConfigError(
            f"{topic}: the commits of task {hist.task} are not contiguous ({seqs[:5]}...): part of the commit log is missing",
            hint="restore state.<processor> from a backup, or reset the processor (RUNBOOK.md 'Processor state lost or damaged')",
        )


def ranges_between(
    starts: dict[TopicPartition, int], ends: dict[TopicPartition, int]
) -> tuple[tuple[TopicPartition, int, int], ...]:
    """Manifest ranges for every partition, sorted, from two position maps."""
    return tuple((tp, starts[tp], ends[tp]) for tp in sorted(ends))


def chunked(seq: Sequence[Any], n: int) -> Iterator[Sequence[Any]]:
    """``seq`` in pieces of at most ``n``."""
    for i in range(0, len(seq), n):
        yield seq[i : i + n]
