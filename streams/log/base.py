"""The log interface: one contract, two backends (embedded on local disk, Kafka).

Everything above this module (replay, feeds, the processor runtime, the tape sink)
talks to a :class:`Log` and never to a backend directly, so the same code runs on a
laptop and against a cluster.

Semantics follow Kafka's:

* a topic has ``partitions`` numbered from 0; each partition is an append-only
  sequence of records with monotonically increasing offsets;
* a keyed record lands on ``murmur2(key) % partitions`` (see
  :mod:`streams.log.partitioner`) in both backends, so a key maps to the same
  partition number everywhere; an unkeyed record is spread round-robin;
* a record is *acknowledged* when :meth:`Producer.flush` returns (or its delivery
  callback fires without error); an acknowledged record survives the death of the
  producing process;
* timestamps are int64 nanoseconds since the epoch. (Kafka stores milliseconds; the
  Kafka backend rounds down to the millisecond, see DECISIONS.md.)
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

Headers = tuple[tuple[str, bytes], ...]
TopicPartition = tuple[str, int]
CleanupPolicy = Literal["delete", "compact"]


class Record(NamedTuple):
    """One record as stored in a partition.

    A NamedTuple rather than a frozen dataclass: readers build one per record, and a
    NamedTuple is built in about a third of the time (measured: BENCH.md, embedded read).
    """

    topic: str
    partition: int
    offset: int
    timestamp_ns: int
    key: bytes | None
    value: bytes | None
    headers: Headers = ()


class Loss(NamedTuple):
    """Offsets ``[first, end)`` of a partition that the log knows are gone, why, and since when (wall ns; 0: unknown)."""

    first: int
    end: int
    cause: str
    ts_ns: int = 0


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic as declared in ``infra/topics.yaml``.

    ``retention_ms`` / ``retention_bytes`` of ``None`` mean "keep forever".
    ``key`` documents what the key is (``"account"``, ``"symbol"``); ``value_schema``
    names the Avro record (or union of records) the values carry. ``replication_factor`` and
    ``min_insync_replicas`` come from the topics file's selected replication environment
    (Kafka only; the embedded log has one copy); ``None``: the log's default.
    """

    name: str
    partitions: int = 1
    key: str | None = None
    value_schema: str | None = None
    retention_ms: int | None = None
    retention_bytes: int | None = None
    cleanup_policy: CleanupPolicy = "delete"
    description: str = ""
    replication_factor: int | None = None
    min_insync_replicas: int | None = None


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """What exists on a log right now: name, partition count, and per-partition watermarks."""

    name: str
    partitions: int
    end_offsets: tuple[int, ...]
    begin_offsets: tuple[int, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class TopicChange:
    """One action ``topics apply`` took (or would take with ``--dry-run``)."""

    topic: str
    action: Literal["created", "partitions", "config", "unchanged"]
    detail: str = ""


DeliveryCallback = Callable[[Exception | None, Record | None], None]


class Producer(abc.ABC):
    """Appends records. Batches internally; :meth:`flush` makes everything produced so far durable."""

    @abc.abstractmethod
    def produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        *,
        partition: int | None = None,
        timestamp_ns: int | None = None,
        headers: Headers | None = None,
    ) -> None:
        """Queue one record. ``partition=None`` uses the key's murmur2 partition (or round-robin).

        Raises :class:`~streams.errors.UnknownTopicError` for a topic that does not exist.
        """

    def produce_built(self, records: Iterable[tuple[str, bytes | None, bytes | None, int, Headers | None]]) -> None:
        """Queue ``(topic, key, value, timestamp_ns, headers)`` records the runtime built itself.

        Keys and values are ``bytes`` (or ``None``), timestamps int64 ns, headers a tuple of ``(str, bytes)``
        pairs: a log may skip the per-record type checks :meth:`produce` makes for any caller. The same
        errors otherwise (unknown topic, record too large). The default is :meth:`produce` per record.
        """
        produce = self.produce
        for topic, key, value, ts, headers in records:
            produce(topic, value, key, timestamp_ns=ts, headers=headers)

    @abc.abstractmethod
    def flush(self, timeout: float | None = None) -> int:
        """Block until every queued record is acknowledged; return how many were written.

        Raises on a delivery failure, so a caller that saw ``flush`` return knows nothing was lost.
        """

    def close(self) -> None:
        """Flush and release resources."""
        self.flush()

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TransactionalProducer(Producer):
    """A producer whose records, and the consumer offsets sent with them, commit or abort together.

    The exactly-once contract (Kafka's read-process-write; the embedded log gives the same):

    * :meth:`begin` opens a transaction; :meth:`produce` queues records into it;
    * :meth:`commit` makes every record produced since :meth:`begin` visible to
      ``read_committed`` readers **and** stores ``offsets`` as ``consumer``'s group
      committed offsets, atomically: after a crash at any instant either all of it
      happened or none of it did;
    * :meth:`abort` discards the transaction's records (``read_committed`` readers never
      see them) and leaves the group's committed offsets where they were.

    ``transactional_id`` is stable across restarts of one processor instance and unique
    among live instances: opening a producer with an id fences the previous holder (its
    next call raises :class:`~streams.errors.ProducerFencedError`) and completes or rolls
    back whatever transaction it left open.

    Errors: :class:`~streams.errors.TransactionAbortableError` -- call :meth:`abort`,
    rewind inputs to the last commit and go on; :class:`~streams.errors.ProducerFencedError`
    (and any other :class:`~streams.errors.HftError`) -- fatal for this producer.
    ``flush()`` outside a transaction is a no-op; inside one it only pushes records out
    (they stay invisible until :meth:`commit`).
    """

    transactional_id: str

    @abc.abstractmethod
    def begin(self) -> None:
        """Open a transaction. Raises if one is already open."""

    @abc.abstractmethod
    def commit(
        self,
        offsets: Mapping[TopicPartition, int] | None = None,
        consumer: GroupConsumer | None = None,
        timeout: float | None = None,
    ) -> None:
        """Commit the open transaction together with ``{(topic, partition): next_offset}`` for ``consumer``'s group."""

    @abc.abstractmethod
    def abort(self, timeout: float | None = None) -> None:
        """Abort the open transaction (no-op when none is open)."""

    @property
    @abc.abstractmethod
    def in_transaction(self) -> bool:
        """True between :meth:`begin` and :meth:`commit` / :meth:`abort`."""


class Reader(abc.ABC):
    """Reads assigned partitions from explicit offsets. No group, no commits.

    Readers are ``read_committed`` unless created with ``read_committed=False``: they
    return only records of committed transactions (and every non-transactional record),
    stopping at a partition's *last stable offset* while a transaction on it is open.
    """

    @abc.abstractmethod
    def poll(self, max_records: int = 1000, timeout: float = 0.0) -> list[Record]:
        """Return up to ``max_records`` records, waiting at most ``timeout`` seconds for the first.

        Within one partition records come in offset order. Returns ``[]`` when nothing
        new arrived in time (that is not end of stream: use :meth:`Log.watermarks`).
        """

    @abc.abstractmethod
    def seek(self, topic: str, partition: int, offset: int) -> None:
        """Continue reading ``topic``/``partition`` from ``offset``."""

    @abc.abstractmethod
    def position(self, topic: str, partition: int) -> int:
        """The offset of the next record :meth:`poll` will return for this partition."""

    @abc.abstractmethod
    def assignment(self) -> list[TopicPartition]:
        """The partitions this reader reads."""

    def end_offset(self, topic: str, partition: int) -> int | None:
        """Where this partition ended when the reader last looked, or ``None`` if it cannot say.

        Once :meth:`position` reaches it, every record there was has been read. On Kafka it
        is the cached high watermark, so while a transaction on the partition is open a
        ``read_committed`` reader's position stays below it (the partition is not "caught
        up" until the transaction ends: what a deterministic merge needs). Cheap (no
        request): the runtime calls it after every poll.
        """
        return None

    def close(self) -> None:
        """Release resources."""

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Record]:
        """Yield records until a poll comes back empty (handy in tests and replays)."""
        while batch := self.poll(1000, timeout=0.2):
            yield from batch


class GroupConsumer(Reader):
    """A reader that belongs to a consumer group and commits the offsets it has processed.

    On start each partition resumes from the group's committed offset, or from
    ``auto_offset_reset`` (``"earliest"`` / ``"latest"``) when the group has none.
    """

    group: str

    @abc.abstractmethod
    def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        """Commit ``{(topic, partition): next_offset}``; ``None`` commits the current positions."""

    @abc.abstractmethod
    def committed(self, topic: str, partition: int) -> int | None:
        """The group's committed next offset for a partition, or ``None`` if never committed."""


RebalanceCallback = Callable[[list[TopicPartition]], None]


class Log(abc.ABC):
    """A partitioned, offset-addressed log: the one thing every component talks to."""

    url: str

    # -- topics ---------------------------------------------------------------------

    @abc.abstractmethod
    def create_topic(self, spec: TopicSpec) -> TopicChange:
        """Create ``spec`` or bring an existing topic up to it.

        Partitions may only grow (shrinking raises :class:`~streams.errors.ConfigError`);
        retention and cleanup policy are updated in place.
        """

    def plan_topic(self, spec: TopicSpec) -> TopicChange:
        """What :meth:`create_topic` would do with ``spec``, changing nothing (``topics apply --dry-run``).

        Raises exactly what :meth:`create_topic` would raise (an invalid spec, a shrink, a
        setting the broker refuses), so a dry run reports the errors the real apply would meet.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot plan topic changes")

    @abc.abstractmethod
    def list_topics(self) -> list[TopicInfo]:
        """Every user topic, sorted by name, with current watermarks."""

    @abc.abstractmethod
    def describe_topic(self, topic: str) -> TopicSpec:
        """The topic's current configuration. Raises :class:`~streams.errors.UnknownTopicError`."""

    def partitions(self, topic: str) -> int:
        """Number of partitions of ``topic``."""
        return self.describe_topic(topic).partitions

    @abc.abstractmethod
    def delete_topic(self, topic: str) -> None:
        """Delete a topic and all its records (tests and ``topics delete``)."""

    # -- offsets --------------------------------------------------------------------

    @abc.abstractmethod
    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        """``(low, high)``: the first offset still stored and the next offset to be written."""

    def end_offsets(self, partitions: Iterable[TopicPartition], *, read_committed: bool = True) -> dict[TopicPartition, int]:
        """Each partition's end, asked of the log now: the last stable offset (``read_committed``) or
        the high watermark. The default asks :meth:`watermarks` per partition."""
        return {tp: self.watermarks(*tp)[1] for tp in partitions}

    def losses(self, topic: str, partition: int) -> list[Loss]:
        """Records of the partition the log knows were removed other than by retention (``log repair``); default none."""
        return []

    #: True when a partition's offsets ``[low, high)`` are all records (no transaction markers or
    #: aborted records taking offsets, as on Kafka): counting records is then ``high - low``.
    offsets_are_records: bool = True

    #: True when readers' :meth:`Reader.end_offset` is a cached value that may lag the log (Kafka):
    #: a decision that must not miss records (the lockstep settle) asks :meth:`end_offsets` too.
    reader_ends_cached: bool = False

    @abc.abstractmethod
    def offset_for_time(self, topic: str, partition: int, timestamp_ns: int) -> int:
        """The first offset whose timestamp is >= ``timestamp_ns``; the high watermark if none."""

    # -- clients --------------------------------------------------------------------

    @abc.abstractmethod
    def producer(self, *, on_delivery: DeliveryCallback | None = None) -> Producer:
        """A new producer."""

    def delete_group(self, group: str) -> bool:
        """Forget a consumer group's committed offsets (it must have no live members). True if it existed."""
        raise NotImplementedError(f"{type(self).__name__} cannot delete consumer groups")

    def group_offsets(self, group: str, partitions: Iterable[TopicPartition] | None = None) -> dict[TopicPartition, int]:
        """``group``'s committed next offsets (every partition it committed, or those listed), without joining it."""
        raise NotImplementedError(f"{type(self).__name__} cannot read consumer group offsets")

    def group_offsets_damage(self, group: str) -> str | None:
        """Damage found in where ``group``'s offsets are stored, said for an operator (``None``: none seen).

        Only a log that keeps the offsets itself can tell (the embedded log's file); a broker's are its own.
        """
        return None

    def publish_group_offsets(self, group: str, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit ``offsets`` for ``group``, a group without members, for other tools to see (best effort).

        Not part of any transaction, never read back by hftstream: the runtime's positions are
        its commit manifests. The default does nothing (the embedded log has no outside tools).
        """

    def transactional_producer(self, transactional_id: str) -> TransactionalProducer:
        """A transactional producer for ``transactional_id``; fences (and resolves) its previous holder."""
        raise NotImplementedError(f"{type(self).__name__} has no transactions yet")

    @abc.abstractmethod
    def reader(self, assignments: Sequence[tuple[str, int, int]], *, read_committed: bool = True) -> Reader:
        """A reader of ``[(topic, partition, start_offset), ...]``."""

    @abc.abstractmethod
    def group_consumer(
        self,
        group: str,
        topics: Sequence[str],
        *,
        auto_offset_reset: Literal["earliest", "latest"] = "earliest",
        read_committed: bool = True,
        on_assign: RebalanceCallback | None = None,
        on_revoke: RebalanceCallback | None = None,
    ) -> GroupConsumer:
        """A consumer in ``group`` reading every partition of ``topics``.

        ``on_assign`` / ``on_revoke`` are called (from inside :meth:`Reader.poll`, on the
        polling thread) with the partitions gained or about to be lost. A revoke callback
        must finish (commit or abort) the transaction in flight before it returns: after it,
        another member may own those partitions. The embedded log's single-process group
        calls ``on_assign`` once, with every partition, when the consumer is created.
        """

    def close(self) -> None:
        """Release resources held by the log handle."""

    def __enter__(self) -> Log:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
