"""``EmbeddedLog``: a durable, partitioned, offset-addressed log in a local directory.

Layout of the root directory::

    <root>/<topic>/topic.json         the TopicSpec (written atomically: tmp + rename)
    <root>/<topic>/<partition>/       segments and indexes (see :mod:`.partition`)
    <root>/__consumer_offsets/        committed group offsets (see :mod:`.offsets`)
    <root>/__transactions/            transactional ids: epochs, commit points (see :mod:`.txn`);
                                      the transaction log ``~txlog.<gen>`` (see :mod:`.txlog`)
    <root>/~meta.lock                 serialises topic creation, growth and deletion

Names with ``~`` are internal (``~`` is not allowed in topic names, so they never collide).
Several processes may open the same root at once: writers coordinate per partition with
``flock``, readers take no locks (see :mod:`.writer` and :mod:`.reader`).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from streams.config import EmbeddedSettings
from streams.errors import ConfigError, UnknownPartitionError, UnknownTopicError
from streams.log.base import DeliveryCallback, Log, Loss, RebalanceCallback, TopicChange, TopicInfo, TopicPartition, TopicSpec
from streams.log.embedded.offsets import OFFSETS_DIR, OffsetsStore
from streams.log.embedded.partition import create_partition_dir, hole_records, truncations
from streams.log.embedded.partition import offset_for_time as _offset_for_time
from streams.log.embedded.partition import watermarks as _watermarks
from streams.log.embedded.producer import EmbeddedProducer
from streams.log.embedded.reader import EmbeddedGroupConsumer, EmbeddedReader
from streams.log.embedded.transactional import EmbeddedTransactionalProducer
from streams.log.embedded.txlog import TxnLog
from streams.log.embedded.txn import LSO_NAME, TXN_DIR, Marker, open_lso, read_lso_state, read_marker, referenced_generations
from streams.log.embedded.txn import stable_offset as _stable_offset
from streams.log.embedded.writer import PartitionWriter, fsync_dir

TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]{1,249}")
RESERVED = {OFFSETS_DIR, TXN_DIR}
META_FILE = "topic.json"
META_LOCK = "~meta.lock"
_SPEC_FIELDS = tuple(f.name for f in fields(TopicSpec))


def validate_topic_name(name: str) -> None:
    """Kafka's rule: 1-249 of ``[a-zA-Z0-9._-]``, not ``.`` or ``..``; plus our reserved names."""
    if not isinstance(name, str) or not TOPIC_NAME.fullmatch(name) or name in {".", ".."}:
        raise ConfigError(
            f"invalid topic name {name!r}",
            hint="a topic name is 1-249 characters of letters, digits, '.', '_' and '-' (not '.' or '..')",
        )
    if name in RESERVED:
        raise ConfigError(f"topic name {name!r} is reserved for the embedded log's internal use", hint="pick another name")


def _settings(overrides: dict[str, Any]) -> EmbeddedSettings:
    try:
        settings = EmbeddedSettings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(
            f"bad embedded log option(s): {problems}",
            hint="embedded:// URL options are fsync=never|batch|interval, fsync_interval_ms, segment_bytes, "
            "index_interval_bytes (also HFTSTREAM_EMBEDDED_*)",
        ) from None
    for name in ("segment_bytes", "index_interval_bytes", "fsync_interval_ms"):
        if getattr(settings, name) <= 0:
            raise ConfigError(f"embedded log option {name} must be positive, not {getattr(settings, name)}")
    return settings


class EmbeddedLog(Log):
    """The embedded log rooted at ``path`` (created if missing).

    ``options`` override :class:`~streams.config.EmbeddedSettings` (and so
    ``HFTSTREAM_EMBEDDED_*``): ``fsync``, ``fsync_interval_ms``, ``segment_bytes``,
    ``index_interval_bytes``; strings from a URL query are accepted.
    """

    def __init__(self, path: str | os.PathLike[str], settings: EmbeddedSettings | None = None, **options: Any) -> None:
        if settings is None:
            self.settings = _settings(options)
        elif options:
            self.settings = _settings({**settings.model_dump(), **options})
        else:
            self.settings = settings
        self.root = Path(path).expanduser().absolute()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the embedded log directory {self.root}: {exc}") from exc
        self.url = f"embedded://{self.root}"
        self._root_str = str(self.root)
        self._specs: dict[str, tuple[tuple[int, int, int, int], TopicSpec]] = {}  # _read_spec's cache
        self._writers: dict[tuple[str, int], PartitionWriter] = {}
        self._writers_lock = threading.Lock()
        self._offsets = OffsetsStore(self.root, durable=self._durable())
        self._txlog: TxnLog | None = None

    # -- layout ---------------------------------------------------------------------

    def topic_dir(self, topic: str) -> Path:
        """The directory of ``topic`` (which need not exist)."""
        return self.root / topic

    def partition_dir(self, topic: str, partition: int) -> Path:
        """The directory of an existing partition. Raises on an unknown topic or partition."""
        n = self.partitions(topic)
        if not isinstance(partition, int) or not 0 <= partition < n:
            raise UnknownPartitionError(topic, partition, n)
        return Path(os.path.join(self._root_str, topic, str(partition)))

    def delete_group(self, group: str) -> bool:
        """Forget ``group``'s committed offsets (stop its consumer first). True if it had any."""
        return self._offsets.delete(group)

    def offsets_store(self) -> OffsetsStore:
        """Where consumer groups keep their committed offsets."""
        return self._offsets

    @contextmanager
    def _meta_lock(self) -> Iterator[None]:
        with open(self.root / META_LOCK, "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            yield

    def _durable(self) -> bool:
        return self.settings.fsync != "never"

    # -- topics ---------------------------------------------------------------------

    def _read_spec(self, topic: str) -> TopicSpec:
        """The topic's ``meta.json``, parsed again only when the file changed (one ``stat`` per call otherwise).

        Every change of a spec is a tmp file renamed over it (a new inode), and a deleted and re-created
        topic has a new file: so the inode, ctime and size tell a changed file from the one parsed before.
        """
        name = os.path.join(self._root_str, topic, META_FILE)
        try:
            st = os.stat(name)
        except FileNotFoundError:
            raise UnknownTopicError(topic) from None
        except OSError:
            st = None
        sig = (st.st_ino, st.st_ctime_ns, st.st_mtime_ns, st.st_size) if st is not None else None
        cached = self._specs.get(topic)
        if cached is not None and sig is not None and cached[0] == sig:
            return cached[1]
        path = Path(name)
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise UnknownTopicError(topic) from None
        except (ValueError, OSError) as exc:
            raise ConfigError(
                f"topic metadata {path} is unreadable: {exc}",
                hint=f"restore {path} from a backup; or move the topic out of the log "
                f"(`mv {path.parent} {path.parent.parent.parent / (topic + '.broken')}`) "
                "and run `hftstream topics apply` to re-create it empty",
            ) from exc
        spec = TopicSpec(**{k: raw[k] for k in _SPEC_FIELDS if k in raw})
        if sig is not None:
            self._specs[topic] = (sig, spec)
        return spec

    def _write_spec(self, directory: Path, spec: TopicSpec) -> None:
        path = directory / META_FILE
        tmp = directory / f"{META_FILE}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump({"format": 1, **asdict(spec)}, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            if self._durable():
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if self._durable():
            fsync_dir(directory)

    @staticmethod
    def _validate_spec(spec: TopicSpec) -> None:
        validate_topic_name(spec.name)
        if not isinstance(spec.partitions, int) or spec.partitions < 1:
            raise ConfigError(f"topic {spec.name!r}: partitions must be >= 1, not {spec.partitions!r}")
        for name in ("retention_ms", "retention_bytes"):
            value = getattr(spec, name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ConfigError(
                    f"topic {spec.name!r}: {name} must be a non-negative integer or null, not {value!r}",
                    hint="null keeps records forever",
                )
        if spec.cleanup_policy not in ("delete", "compact"):
            raise ConfigError(
                f"topic {spec.name!r}: cleanup_policy {spec.cleanup_policy!r} is not 'delete' or 'compact'"
            )

    def _current_spec(self, name: str) -> TopicSpec | None:
        """The stored spec of ``name``; ``None`` when there is no such topic (and nothing in its way)."""
        try:
            return self._read_spec(name)
        except UnknownTopicError:
            directory = self.topic_dir(name)
            if directory.exists():
                raise ConfigError(
                    f"{directory} exists but is not a topic (no {META_FILE})",
                    hint="move that directory out of the log root, or pick another topic name",
                ) from None
            return None

    @staticmethod
    def _change(spec: TopicSpec, current: TopicSpec | None) -> TopicChange:
        """What bringing ``current`` (``None``: missing) up to ``spec`` does. Raises on a shrink."""
        if current is None:
            return TopicChange(spec.name, "created", f"{spec.partitions} partition(s)")
        if spec.partitions < current.partitions:
            raise ConfigError(
                f"topic {spec.name!r} has {current.partitions} partitions; it cannot shrink to {spec.partitions}",
                hint="partitions can only grow (keys would move); create a new topic and replay into it",
            )
        if spec == current:
            return TopicChange(spec.name, "unchanged")
        changes = [
            f"{name} {getattr(current, name)!r} -> {getattr(spec, name)!r}"
            for name in _SPEC_FIELDS
            if getattr(current, name) != getattr(spec, name)
        ]
        action: Literal["partitions", "config"] = "partitions" if spec.partitions > current.partitions else "config"
        return TopicChange(spec.name, action, "; ".join(changes))

    def plan_topic(self, spec: TopicSpec) -> TopicChange:
        """What :meth:`create_topic` would do with ``spec``, changing nothing; raises what it would raise."""
        self._validate_spec(spec)
        return self._change(spec, self._current_spec(spec.name))

    def create_topic(self, spec: TopicSpec) -> TopicChange:
        """Create ``spec``, or bring the existing topic up to it (partitions only grow)."""
        self._validate_spec(spec)
        with self._meta_lock():
            directory = self.topic_dir(spec.name)
            current = self._current_spec(spec.name)
            change = self._change(spec, current)
            if current is None:
                staging = self.root / f"{spec.name}~creating~{os.getpid()}"
                shutil.rmtree(staging, ignore_errors=True)
                staging.mkdir()
                for p in range(spec.partitions):
                    create_partition_dir(staging / str(p))
                self._write_spec(staging, spec)
                os.rename(staging, directory)
                if self._durable():
                    fsync_dir(self.root)
            elif change.action != "unchanged":
                for p in range(current.partitions, spec.partitions):
                    create_partition_dir(directory / str(p))
                self._write_spec(directory, spec)
            return change

    def _topic_names(self) -> list[str]:
        names = []
        for entry in os.scandir(self.root):
            if entry.is_dir() and entry.name not in RESERVED and TOPIC_NAME.fullmatch(entry.name):
                if os.path.exists(os.path.join(entry.path, META_FILE)):
                    names.append(entry.name)
        return sorted(names)

    def list_topics(self) -> list[TopicInfo]:
        """Every topic, sorted by name, with low (begin) and high (end) watermarks per partition."""
        out = []
        for name in self._topic_names():
            try:
                spec = self._read_spec(name)
                marks = [self.watermarks(name, p) for p in range(spec.partitions)]
            except UnknownTopicError:
                continue  # deleted while we listed
            out.append(
                TopicInfo(name, spec.partitions, tuple(h for _, h in marks), tuple(lo for lo, _ in marks))
            )
        return out

    def describe_topic(self, topic: str) -> TopicSpec:
        """The topic's configuration. Raises :class:`~streams.errors.UnknownTopicError`."""
        if not isinstance(topic, str) or not TOPIC_NAME.fullmatch(topic) or topic in RESERVED | {".", ".."}:
            raise UnknownTopicError(topic)
        return self._read_spec(topic)

    def delete_topic(self, topic: str) -> None:
        """Delete the topic directory (and the groups' committed offsets for it)."""
        self.describe_topic(topic)
        with self._meta_lock():
            directory = self.topic_dir(topic)
            if not (directory / META_FILE).exists():
                raise UnknownTopicError(topic)
            doomed = self.root / f"{topic}~deleted~{os.getpid()}~{threading.get_ident()}"
            os.rename(directory, doomed)  # vanishes atomically for everyone
            shutil.rmtree(doomed, ignore_errors=True)
            self._offsets.drop_topic(topic)
        with self._writers_lock:
            for key in [k for k in self._writers if k[0] == topic]:
                self._writers.pop(key).close()

    # -- offsets --------------------------------------------------------------------

    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        """``(low, high)``: the first stored offset and the next offset to be written."""
        directory = self.partition_dir(topic, partition)
        try:
            return _watermarks(directory, self.settings.index_interval_bytes)
        except FileNotFoundError:
            raise UnknownTopicError(topic) from None

    def end_offsets(self, partitions: Iterable[TopicPartition], *, read_committed: bool = True) -> dict[TopicPartition, int]:
        """Each partition's last stable offset (``read_committed``; the high watermark where it has no ``~lso``) or high watermark."""
        out = {}
        for topic, partition in partitions:
            out[(topic, partition)] = self.stable_offset(topic, partition) if read_committed else self.watermarks(topic, partition)[1]
        return out

    def group_offsets(self, group: str, partitions: Iterable[TopicPartition] | None = None) -> dict[TopicPartition, int]:
        """``group``'s committed offsets from its file (a damaged file raises :class:`ConfigError`, as joining would)."""
        offsets = self._offsets.load(group)
        return offsets if partitions is None else {tp: offsets[tp] for tp in partitions if tp in offsets}

    def group_offsets_damage(self, group: str) -> str | None:
        """A cut or overwritten tail of ``group``'s offsets file (see :meth:`OffsetsStore.damage`)."""
        return self._offsets.damage(group)

    def losses(self, topic: str, partition: int) -> list[Loss]:
        """The holes ``log repair`` declared lost and the truncations it made in this partition."""
        directory = self.partition_dir(topic, partition)
        out = [Loss(a, b + 1, "declared lost by `hftstream log repair`", ts) for a, b, ts in hole_records(directory)]
        out += [Loss(a, b, "dropped by `hftstream log repair` (it truncated the partition there)", ts) for a, b, ts in truncations(directory)]
        return out

    def offset_for_time(self, topic: str, partition: int, timestamp_ns: int) -> int:
        """The first offset whose timestamp is ``>= timestamp_ns``; the high watermark if none."""
        directory = self.partition_dir(topic, partition)
        try:
            return _offset_for_time(directory, timestamp_ns, self.settings.index_interval_bytes)
        except FileNotFoundError:
            raise UnknownTopicError(topic) from None

    # -- clients --------------------------------------------------------------------

    def writer(self, topic: str, partition: int) -> PartitionWriter:
        """This handle's appender for one partition (shared by its producers)."""
        w = self._writers.get((topic, partition))
        if w is None:
            with self._writers_lock:
                w = self._writers.get((topic, partition))
                if w is None:
                    directory = self.partition_dir(topic, partition)
                    w = self._writers[(topic, partition)] = PartitionWriter(directory, topic, self.settings)
        return w

    def producer(self, *, on_delivery: DeliveryCallback | None = None) -> EmbeddedProducer:
        """A new producer (records are acknowledged when its ``flush()`` returns)."""
        return EmbeddedProducer(self, on_delivery)

    def transactional_producer(self, transactional_id: str) -> EmbeddedTransactionalProducer:
        """A transactional producer for ``transactional_id`` (see :mod:`.transactional`).

        Fences the previous holder of the id (its next commit raises
        :class:`~streams.errors.ProducerFencedError`) and finishes every transaction it left.
        """
        return EmbeddedTransactionalProducer(self, transactional_id)

    def reader(self, assignments: Sequence[tuple[str, int, int]], *, read_committed: bool = True) -> EmbeddedReader:
        """A reader of ``[(topic, partition, start_offset), ...]``.

        ``read_committed`` (the default) stops each partition at its last stable offset:
        records of a transaction that has not committed are never returned.
        """
        return EmbeddedReader(self, assignments, read_committed=read_committed)

    def group_consumer(
        self,
        group: str,
        topics: Sequence[str],
        *,
        auto_offset_reset: Literal["earliest", "latest"] = "earliest",
        read_committed: bool = True,
        on_assign: RebalanceCallback | None = None,
        on_revoke: RebalanceCallback | None = None,
    ) -> EmbeddedGroupConsumer:
        """A consumer in ``group`` reading every partition of ``topics`` (single-process group)."""
        return EmbeddedGroupConsumer(
            self, group, topics, auto_offset_reset, read_committed=read_committed, on_assign=on_assign, on_revoke=on_revoke
        )

    def stable_offset(self, topic: str, partition: int) -> int:
        """The last stable offset: ``read_committed`` readers see records below it only.

        Equal to the high watermark unless a transaction is committing right now or one was
        left by a dead producer and not yet resolved (RUNBOOK.md 'Stuck transaction / LSO not advancing').
        """
        high = self.watermarks(topic, partition)[1]
        lso = _stable_offset(self.partition_dir(topic, partition))
        return high if lso is None else min(lso, high)

    def quiet_ends(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int]:
        """:meth:`end_offsets` (read_committed), one ``pread`` of ``~lso`` per partition where no transaction is open.

        With none open the last stable offset *is* the end (every append and every commit moves it there), so the
        segment's tail is not scanned; a partition with a transaction open (or no ``~lso``) is asked as before.
        For a writer that just committed and wants to say where its outputs end (streams.runtime.dataflow).
        """
        out = {}
        for topic, partition in partitions:
            directory = self.partition_dir(topic, partition)
            fd = open_lso(directory, create=False)
            state = None
            if fd is not None:
                try:
                    state = read_lso_state(fd, directory / LSO_NAME)
                finally:
                    os.close(fd)
            out[(topic, partition)] = state[0] if state is not None and state[1] == 0 else self.stable_offset(topic, partition)
        return out

    def txlog(self) -> TxnLog:
        """This handle's appender of the directory's transaction log (shared by its transactional producers)."""
        if self._txlog is None:
            with self._writers_lock:
                if self._txlog is None:
                    self._txlog = TxnLog(
                        self.root / TXN_DIR, durable=self._durable(),
                        referenced=lambda: referenced_generations(self._partition_dirs()),
                    )
        return self._txlog

    def _partition_dirs(self) -> list[Path]:
        out = []
        for name in self._topic_names():
            try:
                spec = self._read_spec(name)
            except UnknownTopicError:
                continue
            out.extend(self.root / name / str(p) for p in range(spec.partitions))
        return out

    def transaction_markers(self) -> list[tuple[str, int, Marker]]:
        """Every partition with an open transaction (its ``~lso`` points at a record, or a protocol-1
        ``~txn`` marker): ``(topic, partition, marker)``."""
        out = []
        for directory in self._partition_dirs():
            marker = read_marker(directory)
            if marker is not None:
                out.append((directory.parent.name, int(directory.name), marker))
        return out

    def close(self) -> None:
        """Close the partition writers (fsyncing what the ``interval`` policy owes)."""
        with self._writers_lock:
            writers, self._writers = self._writers, {}
            txlog, self._txlog = self._txlog, None
        for w in writers.values():
            w.close()
        if txlog is not None:
            txlog.close()
