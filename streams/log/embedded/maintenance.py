"""Operator entry points over an :class:`EmbeddedLog`: check, repair, compact, retain.

``hftstream log ...`` is a thin shell over these functions (see ``streams/cli/log.py``);
tests call them directly. See RUNBOOK.md 'Corrupt segment'.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from streams.errors import ConfigError, LogCorruptionError
from streams.log.embedded.cleaner import (
    CompactionResult,
    ExpiredSegment,
    RetentionResult,
    apply_retention,
    compact_partition,
    flocked,
    plan_retention,
    rebuild_indexes,
)
from streams.log.embedded.index import (
    OFFSET_ENTRY,
    TIME_ENTRY,
    index_path,
    offset_entries,
    read_entries,
    time_entries,
    timeindex_path,
)
from streams.log.embedded.log import EmbeddedLog
from streams.log.embedded.partition import (
    CLEAN_LOCK_NAME,
    LOCK_NAME,
    declare_holes,
    declare_truncation,
    gaps_allowed,
    is_declared,
    open_segment,
    remove_segment,
    segment_path,
)
from streams.log.embedded.segment import OK, FrameScanner, find_valid_after, frame_at, list_segments
from streams.log.embedded.txn import LSO_NAME, MARKER_NAME, lso_size_is_torn, read_marker, stable_offset, write_lso

ProblemKind = Literal["corrupt", "missing", "torn-tail", "index", "declared-hole", "open-transaction"]


@dataclass(frozen=True)
class Problem:
    """One finding of :func:`check`.

    ``corrupt`` (a bad record with valid records after it, or a truncated closed segment)
    and ``missing`` (offsets between two segments that no segment holds: a deleted segment
    file; ``offset``..``last`` are the missing offsets) are damage; ``torn-tail`` (an
    incomplete last record the next writer truncates), ``index`` (a stale index entry;
    readers ignore it, ``repair`` rebuilds it), ``declared-hole`` (a hole ``repair``
    declared lost) and ``open-transaction`` (a transaction marker: a commit in progress, or
    one a dead producer left, which the next write or ``repair`` finishes) are notes.
    """

    topic: str
    partition: int
    path: str
    offset: int
    position: int
    kind: ProblemKind
    reason: str
    last: int = -1  # the last missing offset (``missing`` / ``declared-hole``)

    @property
    def is_damage(self) -> bool:
        """True for corruption and holes (what makes ``hftstream log check`` exit 1)."""
        return self.kind in ("corrupt", "missing", "torn-lso")

    def describe(self) -> str:
        """One line for the CLI."""
        if self.kind in ("missing", "declared-hole"):
            return f"{self.kind}: {self.topic}/{self.partition} offsets {self.offset}..{self.last} ({self.path}): {self.reason}"
        return f"{self.kind}: {self.topic}/{self.partition} {self.path} offset {self.offset} byte {self.position}: {self.reason}"


@dataclass(frozen=True)
class PartitionCheck:
    """The verification of one partition."""

    topic: str
    partition: int
    segments: int
    records: int
    bytes: int
    problems: tuple[Problem, ...]


def _check_index(topic: str, partition: int, directory: Path, base: int, starts: dict[int, int]) -> list[Problem]:
    problems = []
    for path, entries in (
        (index_path(directory, base), [(o, p) for o, p in offset_entries(read_entries(index_path(directory, base), OFFSET_ENTRY))]),
        (timeindex_path(directory, base), [(o, p) for _, o, p in time_entries(read_entries(timeindex_path(directory, base), TIME_ENTRY))]),
    ):
        for off, pos in entries:
            if starts.get(pos) != off:
                problems.append(
                    Problem(topic, partition, str(path), off, pos, "index", "entry does not point at a record with its offset")
                )
                break
    return problems


def check_partition(log: EmbeddedLog, topic: str, partition: int) -> PartitionCheck:
    """Verify every record (framing, CRC, increasing offsets) and every index entry of a partition."""
    directory = log.partition_dir(topic, partition)
    bases = list_segments(directory)
    problems: list[Problem] = []
    records = total = 0
    expected = bases[0] if bases else 0
    compacted = gaps_allowed(directory)
    known = True
    for i, base in enumerate(bases):
        last = i == len(bases) - 1
        opened = open_segment(directory, base)
        if opened is None:
            known = False  # removed under us (retention): the next base cannot be checked against it
            continue
        fd, size = opened
        total += size
        path = str(segment_path(directory, base))
        if not known:
            known = True
        elif base < expected:
            problems.append(Problem(topic, partition, path, base, 0, "corrupt", f"segment base {base} overlaps offsets before {expected}"))
        elif base > expected and not compacted:
            hole = str(segment_path(directory, expected))
            if is_declared(directory, expected, base - 1):
                problems.append(Problem(topic, partition, hole, expected, 0, "declared-hole", "declared lost by `log repair`", base - 1))
            else:
                problems.append(
                    Problem(topic, partition, hole, expected, 0, "missing",
                            f"no segment holds them (segment file deleted?); the next segment is {path}", base - 1)
                )
        expected = max(expected, base)
        starts: dict[int, int] = {}
        try:
            pos = 0
            while True:
                scanner = FrameScanner(fd, pos, size, expected)
                for f in scanner:
                    starts[f.pos] = f.offset
                    records += 1
                expected = scanner.expected
                if scanner.status == OK:
                    break
                after = find_valid_after(fd, scanner.stop_pos, size, expected)
                if after is None and last:
                    problems.append(
                        Problem(topic, partition, path, expected, scanner.stop_pos, "torn-tail",
                                f"{size - scanner.stop_pos} bytes of an unfinished record ({scanner.reason}); the next writer truncates it")
                    )
                    break
                reason = scanner.reason if after is not None else f"{scanner.reason} at the end of a closed segment"
                problems.append(Problem(topic, partition, path, expected, scanner.stop_pos, "corrupt", reason))
                if after is None:
                    break
                frame = frame_at(fd, after, size)
                assert frame is not None
                pos, expected = after, frame.offset
        finally:
            os.close(fd)
        problems += _check_index(topic, partition, directory, base, starts)
    marker = read_marker(directory)
    torn = _torn_lso(directory)
    if torn is not None:
        problems.append(Problem(topic, partition, str(directory / LSO_NAME), -1, 0, "torn-lso",
                                f"{torn} byte(s), not 8 or 16: a half-written last stable offset; read_committed readers "
                                "(replay, processors) refuse the partition; `log repair` rewrites it"))
    if marker is not None:
        lso = stable_offset(directory) if torn is None else None
        problems.append(
            Problem(topic, partition, str(directory / (MARKER_NAME if marker.legacy else LSO_NAME)), marker.start, 0, "open-transaction",
                    f"transaction {marker.epoch}.{marker.seq} of {marker.transactional_id!r} from offset {marker.start}; "
                    f"last stable offset {lso}: committing now, or left by a dead producer "
                    "(the next write to the partition or `log repair` finishes it)")
        )
    return PartitionCheck(topic, partition, len(bases), records, total, tuple(problems))


def _torn_lso(directory: Path) -> int | None:
    """The size of a partition's ``~lso`` when it holds a partial value (not 0, 8 or 16 bytes), else ``None``."""
    try:
        size = os.stat(directory / LSO_NAME).st_size
    except FileNotFoundError:
        return None
    return size if lso_size_is_torn(size) else None


def _rewrite_lso(directory: Path, offset: int) -> None:
    fd = os.open(directory / LSO_NAME, os.O_RDWR)
    try:
        write_lso(fd, offset)
        os.fsync(fd)
    finally:
        os.close(fd)


def check(log: EmbeddedLog, topic: str | None = None) -> list[PartitionCheck]:
    """Verify every partition of ``topic`` (or of every topic)."""
    topics = [topic] if topic is not None else [t.name for t in log.list_topics()]
    return [check_partition(log, t, p) for t in topics for p in range(log.partitions(t))]


@dataclass(frozen=True)
class RepairPlan:
    """What :func:`repair` does (or did) to a partition."""

    topic: str
    partition: int
    path: str | None  # the segment truncated (None: nothing to truncate)
    offset: int  # the first offset dropped (the new high watermark)
    position: int
    reason: str
    records_dropped: int  # offsets lost: the damaged record(s) and every intact record after them
    bytes_dropped: int
    segments_deleted: tuple[int, ...]
    indexes_rebuilt: int
    holes: tuple[tuple[int, int], ...] = ()  # missing offset ranges to declare lost (before any truncation)
    lso: int | None = None  # a half-written ~lso is rewritten with this offset (the end: no transaction is open)

    @property
    def changes(self) -> bool:
        """True when the repair changes data (truncates, declares a hole, rewrites ~lso), not only indexes."""
        return self.path is not None or bool(self.holes) or self.lso is not None

    def describe(self) -> str:
        """A sentence for the CLI."""
        parts = []
        for first, last in self.holes:
            parts.append(
                f"{self.topic}/{self.partition}: offsets {first}..{last} are missing (no segment holds them) and nothing "
                "here can bring them back; declare them lost, so readers go on past them "
                "(re-publish them from upstream if you have them)"
            )
        if self.path is not None:
            parts.append(
                f"{self.topic}/{self.partition}: truncate {self.path} at offset {self.offset} (byte {self.position}, {self.reason}): "
                f"drops {self.records_dropped} record(s) and {self.bytes_dropped} bytes"
                + (f", deletes {len(self.segments_deleted)} later segment(s)" if self.segments_deleted else "")
            )
        if self.lso is not None:
            parts.append(f"{self.topic}/{self.partition}: rewrite the half-written last stable offset (~lso) as {self.lso}, "
                         "the partition's end (no transaction is open on it)")
        if not parts:
            return f"{self.topic}/{self.partition}: no damaged records" + (
                f"; rebuilt {self.indexes_rebuilt} index file pair(s)" if self.indexes_rebuilt else ""
            )
        return "\n".join(parts)


def plan_repair(log: EmbeddedLog, topic: str, partition: int) -> RepairPlan:
    """What :func:`repair` would do now: truncate at the first bad record (corrupt or torn)."""
    result = check_partition(log, topic, partition)
    damage = [p for p in result.problems if p.kind in ("corrupt", "torn-tail")]
    index_bad = len({p.path for p in result.problems if p.kind == "index"})
    cut = damage[0].offset if damage else None
    holes = tuple((p.offset, p.last) for p in result.problems if p.kind == "missing" and (cut is None or p.offset < cut))
    lso = None
    if any(p.kind == "torn-lso" for p in result.problems):
        lso = cut if cut is not None else log.watermarks(topic, partition)[1]
    if not damage:
        return RepairPlan(topic, partition, None, -1, -1, "", 0, 0, (), index_bad, holes, lso)
    first = damage[0]
    directory = log.partition_dir(topic, partition)
    bases = list_segments(directory)
    base = int(Path(first.path).name[:20])
    later = tuple(b for b in bases if b > base)
    size = os.stat(first.path).st_size
    bytes_dropped = size - first.position + sum(os.stat(segment_path(directory, b)).st_size for b in later)
    high = log.watermarks(topic, partition)[1]
    dropped = max(high - first.offset, 0)
    return RepairPlan(
        topic, partition, first.path, first.offset, first.position, first.reason, dropped, bytes_dropped, later, index_bad, holes, lso
    )


def repair(log: EmbeddedLog, topic: str, partition: int) -> RepairPlan:
    """Declare holes lost, truncate the partition at its first bad record, delete later segments, rebuild indexes.

    A hole (offsets no segment holds) cannot be filled: it is recorded in ``~holes`` so
    readers go on past it and ``check`` reports it as a note; the intact records after it
    stay. A bad record is truncated away with everything after it. Holds the partition's
    write lock meanwhile, so writers wait. Offsets from the truncation point on will be
    written again by the next producer: consumers past it must be replayed (RUNBOOK.md).
    """
    directory = log.partition_dir(topic, partition)
    if read_marker(directory) is not None:  # finish a dead producer's transaction the way a writer would
        try:
            with log.writer(topic, partition).locked():
                pass
        except LogCorruptionError:
            pass  # resolved before the damage stopped the sync; the truncation below deals with the damage
    with flocked(directory / CLEAN_LOCK_NAME), flocked(directory / LOCK_NAME):
        plan = plan_repair(log, topic, partition)
        if plan.holes:
            declare_holes(directory, list(plan.holes), time.time_ns())
        if plan.path is not None:
            high = log.watermarks(topic, partition)[1]
            if high > plan.offset:
                declare_truncation(directory, plan.offset, high, time.time_ns())
            base = int(Path(plan.path).name[:20])
            for later in reversed(plan.segments_deleted):
                remove_segment(directory, later)
            fd = os.open(plan.path, os.O_RDWR)
            try:
                os.ftruncate(fd, plan.position)
                os.fsync(fd)
            finally:
                os.close(fd)
        if plan.lso is not None and read_marker(directory) is None:
            _rewrite_lso(directory, plan.lso)
        rebuilt = 0
        for base in list_segments(directory):
            rebuild_indexes(directory, base, log.settings.index_interval_bytes)
            rebuilt += 1
    return RepairPlan(
        plan.topic, plan.partition, plan.path, plan.offset, plan.position, plan.reason,
        plan.records_dropped, plan.bytes_dropped, plan.segments_deleted, rebuilt, plan.holes, plan.lso,
    )


def _topics(log: EmbeddedLog, topic: str | None) -> list[str]:
    return [topic] if topic is not None else [t.name for t in log.list_topics()]


def compact(log: EmbeddedLog, topic: str | None = None) -> dict[tuple[str, int], CompactionResult]:
    """Compact every partition of ``topic`` (which must have ``cleanup_policy: compact``), or of every compacted topic."""
    out = {}
    for name in _topics(log, topic):
        spec = log.describe_topic(name)
        if spec.cleanup_policy != "compact":
            if topic is not None:
                raise ConfigError(
                    f"topic {name!r} has cleanup_policy {spec.cleanup_policy!r}; only 'compact' topics are compacted",
                    hint="set cleanup_policy: compact for it in infra/topics.yaml and run `hftstream topics apply`",
                )
            continue
        for p in range(spec.partitions):
            out[(name, p)] = compact_partition(
                log.partition_dir(name, p), log.settings.index_interval_bytes, durable=log.settings.fsync != "never"
            )
    return out


def _retained(log: EmbeddedLog, topic: str | None) -> list[tuple[str, int, int | None, int | None]]:
    out = []
    for name in _topics(log, topic):
        spec = log.describe_topic(name)
        if spec.retention_ms is None and spec.retention_bytes is None:
            continue
        out += [(name, p, spec.retention_ms, spec.retention_bytes) for p in range(spec.partitions)]
    return out


def plan_retain(log: EmbeddedLog, now_ns: int, topic: str | None = None) -> dict[tuple[str, int], list[ExpiredSegment]]:
    """What :func:`retain` would delete now, per partition of every topic with retention (nothing is deleted)."""
    interval = log.settings.index_interval_bytes
    return {
        (name, p): plan_retention(log.partition_dir(name, p), ms, size, now_ns, interval)
        for name, p, ms, size in _retained(log, topic)
    }


def retain(
    log: EmbeddedLog,
    now_ns: int,
    topic: str | None = None,
    *,
    only: dict[tuple[str, int], list[ExpiredSegment]] | None = None,
) -> dict[tuple[str, int], RetentionResult]:
    """Apply retention (time relative to ``now_ns``, and size) to ``topic`` or to every topic.

    ``only`` (a :func:`plan_retain` result) limits the deletion to the segments it lists:
    what an operator was shown and confirmed.
    """
    out = {}
    interval = log.settings.index_interval_bytes
    for name, p, ms, size in _retained(log, topic):
        bases = None if only is None else {seg.base for seg in only.get((name, p), [])}
        out[(name, p)] = apply_retention(log.partition_dir(name, p), ms, size, now_ns, interval, only=bases)
    return out
