"""Kafka readers: :class:`KafkaReader` (explicit partitions and offsets) and :class:`KafkaGroupConsumer`.

Both wrap one ``confluent_kafka.Consumer`` with auto-commit and offset auto-store off:
nothing is committed unless :meth:`KafkaGroupConsumer.commit` is called. Records come
back as :class:`~streams.log.base.Record` with ``timestamp_ns = ms * 1_000_000`` (Kafka
stores milliseconds).

Why the group consumer really joins a consumer group (``subscribe``) instead of assigning
partitions and reading committed offsets: scaling out is Kafka's (more instances of a
processor in one group split the partitions), a crashed instance's partitions move to
the survivors, and the exactly-once runtime needs the group's generation for
``send_offsets_to_transaction`` (zombie fencing, KIP-447; :meth:`KafkaGroupConsumer.group_metadata`).
The ``range`` assignor is used because it gives partition *i* of every subscribed topic to the
same member, so co-partitioned inputs (same key, same partition count) meet in one processor.
(``cooperative-sticky`` would keep unmoved partitions flowing through a rebalance, but it
assigns each topic's partitions independently, which breaks co-partitioning.)

Isolation: ``read_committed`` (the default) returns only records of committed transactions
and stops at a partition's *last stable offset* while a transaction on it is open;
``read_committed=False`` (``isolation.level=read_uncommitted``) returns aborted and pending
records too. Either way :meth:`position` moves past transaction control records, so after the
last record of a committed transaction it equals the end offset, not the marker's offset:
commit ``position()``, not ``last offset + 1``, or a transactional input shows a lag of 1
forever.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import confluent_kafka
from confluent_kafka import KafkaException, Message, TopicPartition as KTP

from streams.errors import ConfigError, RetryableError, UnknownPartitionError
from streams.log.base import GroupConsumer, Reader, Record, RebalanceCallback, TopicPartition
from streams.log.kafka.errors import PARTITION_EOF, ErrorSink, kafka_error, log, translate

if TYPE_CHECKING:
    from streams.log.kafka.log import KafkaLog

NS_PER_MS = 1_000_000
OFFSET_INVALID = confluent_kafka.OFFSET_INVALID
AUTO_OFFSET_RESET = confluent_kafka.KafkaError._AUTO_OFFSET_RESET
# Consumer events that mean "an offset was out of range and was reset": informational, not failures.
_NON_FATAL_EVENTS = frozenset(
    code
    for code in (
        getattr(confluent_kafka.KafkaError, "_AUTO_OFFSET_RESET", None),
        getattr(confluent_kafka.KafkaError, "OFFSET_OUT_OF_RANGE", None),
    )
    if code is not None
)


def consumer_config(read_committed: bool = True) -> dict[str, Any]:
    """The librdkafka consumer options hftstream always sets (the benchmark reuses them for raw clients)."""
    return {
        "isolation.level": "read_committed" if read_committed else "read_uncommitted",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": False,
        "allow.auto.create.topics": False,
        # An idle fetch waits at most this long at the broker; a seek waits for the fetch in
        # flight, so this bounds seek latency (librdkafka's default is 500 ms).
        "fetch.wait.max.ms": 100,
        # librdkafka pauses a partition's fetching this long once its local queue is full
        # (default 1000 ms): a reader that drains fast then stalls for a second. Measured:
        # replay of 300k records 0.18 s -> 1.1 s with the default.
        "fetch.queue.backoff.ms": 20,
    }


class _KafkaConsumer(Reader):
    """What the reader and the group consumer share: the poll loop, record conversion, seek, position.

    Not thread-safe: call each consumer from one thread only (librdkafka can block forever
    when one thread asks for the assignment while another polls through a rebalance).
    """

    def __init__(self, log: KafkaLog, conf: dict[str, Any], read_committed: bool) -> None:
        self._log = log
        self._bootstrap = log.bootstrap
        self._errors = ErrorSink(log.bootstrap)
        self.read_committed = read_committed
        base = {**consumer_config(read_committed), "error_cb": self._errors}
        self._c = confluent_kafka.Consumer({**conf, **base})
        self._seeked: dict[TopicPartition, int] = {}  # where each partition was (re)started
        self._stash: list[Message] = []  # messages read while waiting for a group assignment
        self._closed = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._bootstrap!r})"

    # -- reading ------------------------------------------------------------------------

    def poll(self, max_records: int = 1000, timeout: float = 0.0) -> list[Record]:
        """Up to ``max_records`` records; waits at most ``timeout`` s for the first, never for more."""
        if self._stash:
            msgs, self._stash = self._stash[:max_records], self._stash[max_records:]
            return self._records(msgs)
        consume = self._c.consume
        try:
            # consume(n, t) would wait the full t for n messages: take what is queued, and only
            # when nothing is, block for the first message and then take what came with it.
            msgs = consume(max_records, 0)
            if not msgs and timeout > 0:
                first = self._c.poll(timeout)
                if first is None:
                    self._errors.raise_if_fatal()
                    return []
                msgs = [first]
                if max_records > 1:
                    msgs.extend(consume(max_records - 1, 0))
        except KafkaException as exc:
            raise translate(exc, self._bootstrap, doing="consuming") from None
        return self._records(msgs)

    def _records(self, msgs: list[Message], new: Any = tuple.__new__, rec: type = Record) -> list[Record]:
        """Messages -> Records. The hot loop: ``tuple.__new__`` skips NamedTuple's Python-level ``__new__``."""
        out: list[Record] = []
        append = out.append
        for m in msgs:
            if m.error() is None:
                h = m.headers()
                append(
                    new(
                        rec,
                        (
                            m.topic(),
                            m.partition(),
                            m.offset(),
                            m.timestamp()[1] * 1_000_000,  # Kafka's milliseconds -> ns
                            m.key(),
                            m.value(),
                            () if h is None else tuple(h),
                        ),
                    )
                )
            else:
                self._event(m)
        return out

    def _clamp_out_of_range(self, topic: str, partition: int) -> bool:
        """A start offset outside ``[low, high]``: continue from the nearer end. False if not handled here."""
        return False

    def _event(self, m: Message) -> None:
        """An error message in the stream: end-of-partition and transient events are not errors."""
        err = m.error()
        if err.code() == PARTITION_EOF:
            return
        if err.code() == AUTO_OFFSET_RESET and self._clamp_out_of_range(m.topic(), m.partition()):
            return
        if err.fatal() or (not err.retriable() and err.code() not in _NON_FATAL_EVENTS):
            raise translate(err, self._bootstrap, topic=m.topic(), doing="consuming")
        log.warning("kafka consumer (%s): %s", self._bootstrap, err.str())

    # -- positions ----------------------------------------------------------------------

    def seek(self, topic: str, partition: int, offset: int) -> None:
        """Continue ``topic``/``partition`` from ``offset`` (records already polled are not undone)."""
        if offset < 0:
            raise ConfigError(f"cannot seek {topic}/{partition} to negative offset {offset}", hint="offsets start at 0")
        if (topic, partition) not in self.assignment():
            n = self._log._topic_partitions(topic)
            if not 0 <= partition < n:
                raise UnknownPartitionError(topic, partition, n)
            raise ConfigError(
                f"{topic}/{partition} is not assigned to this {type(self).__name__}",
                hint="seek only partitions returned by assignment()",
            )
        self._stash = [m for m in self._stash if (m.topic(), m.partition()) != (topic, partition)]
        try:
            self._c.seek(KTP(topic, partition, offset))
        except KafkaException as exc:
            if not self._reassign(topic, partition, offset, exc):
                raise translate(exc, self._bootstrap, topic=topic, doing=f"seeking {topic}/{partition}") from None
        self._seeked[(topic, partition)] = offset

    def _reassign(self, topic: str, partition: int, offset: int, exc: KafkaException) -> bool:
        """Fallback when librdkafka refuses a seek (partition in an error state). False: not possible here."""
        return False

    def position(self, topic: str, partition: int) -> int:
        """The offset of the next record :meth:`poll` returns for the partition."""
        for m in self._stash:  # read ahead while joining the group, not yet returned
            if (m.topic(), m.partition()) == (topic, partition) and m.error() is None:
                return int(m.offset())
        # librdkafka's position is the offset after the last record handed to us, and it is
        # reset (invalid) by a seek or a fresh assignment until a record arrives.
        try:
            pos = self._c.position([KTP(topic, partition)])[0].offset
        except KafkaException as exc:
            raise translate(exc, self._bootstrap, topic=topic) from None
        if pos >= 0:
            return int(pos)
        if (topic, partition) in self._seeked:
            return self._seeked[(topic, partition)]
        raise ConfigError(
            f"{topic}/{partition} is not assigned to this {type(self).__name__}",
            hint="ask only for partitions returned by assignment()",
        )

    def end_offset(self, topic: str, partition: int) -> int | None:
        """The partition's high watermark from the last fetch response (no request); ``None`` before one.

        librdkafka keeps the *high watermark* here for ``read_committed`` readers too, not the
        last stable offset (measured: committed 0-2, marker 3, open transaction 4-5 -> cached
        high 6 while ``position`` stops at 4). So :meth:`position` reaches it only once no
        transaction below it is open: a partition whose producer has a transaction in flight
        is not "caught up" until that transaction commits or aborts. That is what a
        deterministic merge needs (the open transaction's records may still commit), at the
        price of waiting for it; :meth:`KafkaLog.end_offsets` gives the LSO itself.
        """
        try:
            marks = self._c.get_watermark_offsets(KTP(topic, partition), cached=True)
        except KafkaException:
            return None
        if marks is None or marks[1] < 0:
            return None
        return int(marks[1])

    def assignment(self) -> list[TopicPartition]:
        """The partitions this consumer reads, sorted."""
        try:
            return sorted((tp.topic, tp.partition) for tp in self._c.assignment())
        except KafkaException as exc:
            raise translate(exc, self._bootstrap) from None

    def close(self) -> None:
        """Leave the group (if any) and release the client. Commits nothing."""
        if not self._closed:
            self._closed = True
            try:
                self._c.close()
            except (KafkaException, RuntimeError) as exc:
                log.warning("closing kafka consumer (%s): %s", self._bootstrap, exc)


class KafkaReader(_KafkaConsumer):
    """Reads ``[(topic, partition, start_offset), ...]`` with ``assign()``; no group membership, no commits.

    A start (or seek) offset outside the partition's ``[low, high]`` is clamped: below the
    low watermark (deleted by retention) it resumes at the oldest record still stored;
    beyond the high watermark it continues from the high watermark (Kafka cannot wait for a
    future offset; with librdkafka's ``auto.offset.reset`` it would restart from one end).
    """

    def __init__(
        self, log: KafkaLog, conf: dict[str, Any], assignments: Sequence[tuple[str, int, int]], *, read_committed: bool = True
    ) -> None:
        for topic, partition, offset in assignments:
            n = log._topic_partitions(topic, refresh=True)
            if not 0 <= partition < n:
                raise UnknownPartitionError(topic, partition, n)
            if offset < 0:
                raise ConfigError(f"start offset {offset} for {topic}/{partition} is negative", hint="offsets start at 0")
        # "error": an out-of-range start comes back as an event, and _clamp_out_of_range decides.
        private = {"group.id": f"hftstream-reader-{uuid.uuid4().hex}", "auto.offset.reset": "error"}
        super().__init__(log, {**conf, **private}, read_committed)
        self._seeked = {(t, p): o for t, p, o in assignments}
        try:
            self._c.assign([KTP(t, p, o) for t, p, o in assignments])
        except KafkaException as exc:
            self.close()
            raise translate(exc, self._bootstrap, doing="assigning partitions") from None

    def _clamp_out_of_range(self, topic: str, partition: int) -> bool:
        low, high = self._log.watermarks(topic, partition)
        wanted = self.position(topic, partition)
        target = low if wanted < low else high
        log.info("%s/%d: offset %d is outside [%d, %d]; continuing from %d", topic, partition, wanted, low, high, target)
        self._reassign(topic, partition, target, None)  # in this error state seek() is refused
        self._seeked[(topic, partition)] = target
        return True

    def _reassign(self, topic: str, partition: int, offset: int, exc: KafkaException | None) -> bool:
        err = kafka_error(exc) if exc is not None else None
        if exc is not None and (err is None or err.code() != confluent_kafka.KafkaError._STATE):
            return False
        try:
            self._c.incremental_unassign([KTP(topic, partition)])
            self._c.incremental_assign([KTP(topic, partition, offset)])
        except KafkaException as again:
            raise translate(again, self._bootstrap, topic=topic, doing=f"re-assigning {topic}/{partition}") from None
        return True


class KafkaGroupConsumer(_KafkaConsumer, GroupConsumer):
    """A member of consumer group ``group`` reading every partition of ``topics`` it is assigned.

    The constructor waits (bounded) for the group's first assignment, so :meth:`assignment`
    is meaningful as soon as it returns and ``latest`` means "the end when this member
    started". A rebalance completes only when every current member polls, so other members
    of the same group must be polling meanwhile (in their own threads or processes).
    Partitions start from the group's committed offset, else from ``auto_offset_reset``.
    Commits are synchronous and explicit (or inside a transaction:
    :meth:`~streams.log.kafka.KafkaTransactionalProducer.commit`). A ``read_committed``
    member reads *stable* committed offsets: while a transaction that commits offsets for
    its partitions is open, it waits for that transaction to finish.

    Rebalance callbacks (``on_assign`` / ``on_revoke``) run on the polling thread, inside
    :meth:`poll` (or the constructor, for the first assignment), with sorted
    ``[(topic, partition)]``. ``on_assign`` runs once the partitions' start offsets are
    pinned. ``on_revoke`` runs *before* the partitions are given up, so it can commit or
    abort the transaction in flight; it is also called when partitions are *lost* (the
    member was dropped from the group, e.g. it stopped polling for longer than the session
    timeout): :meth:`assignment_lost` is then true and a commit would fail, so abort. An
    exception raised by a callback propagates out of :meth:`poll`.

    ``instance_id`` makes the member *static* (``group.instance.id``, KIP-345): a restarted
    process with the same id takes its partitions back at once instead of waiting for the
    dead member's session to time out (10 s) and a rebalance. The price: closing a static
    member does not leave the group, so its partitions move to the others only after the
    session timeout.
    """

    def __init__(
        self,
        log: KafkaLog,
        conf: dict[str, Any],
        group: str,
        topics: Sequence[str],
        auto_offset_reset: Literal["earliest", "latest"],
        join_timeout: float,
        *,
        read_committed: bool = True,
        on_assign: RebalanceCallback | None = None,
        on_revoke: RebalanceCallback | None = None,
        instance_id: str | None = None,
    ) -> None:
        if auto_offset_reset not in ("earliest", "latest"):
            raise ConfigError(f"auto_offset_reset must be 'earliest' or 'latest', not {auto_offset_reset!r}")
        for topic in topics:
            log._topic_partitions(topic, refresh=True)  # UnknownTopicError before joining
        self.group = group
        self._reset = auto_offset_reset
        self._assigned_once = False
        self._user_assign, self._user_revoke = on_assign, on_revoke
        member = {
            "group.id": group,
            "auto.offset.reset": auto_offset_reset,
            "partition.assignment.strategy": "range",
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 1000,
        }
        if instance_id:
            member["group.instance.id"] = instance_id
        super().__init__(log, {**conf, **member}, read_committed)
        try:
            self._c.subscribe(list(topics), on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_revoke)
        except KafkaException as exc:
            self.close()
            raise translate(exc, self._bootstrap, doing=f"joining group {group!r}") from None
        try:
            self._await_assignment(join_timeout)
        except BaseException:
            # A failure inside the first assignment (an on_assign callback, the start offsets) must
            # not leave a member in the group that never polls again: it would stall every rebalance.
            self.close()
            raise

    def __repr__(self) -> str:
        return f"KafkaGroupConsumer({self._bootstrap!r}, group={self.group!r})"

    def _on_assign(self, consumer: confluent_kafka.Consumer, partitions: list[KTP]) -> None:
        """Pin every assigned partition's start offset now: the committed offset, else the reset end.

        Resolving ``latest`` here (instead of at librdkafka's first fetch) makes the start point
        "the end of the partition when it was assigned", so a record produced after the
        constructor returns is never skipped.
        """
        self._assigned_once = True
        if not partitions:
            return
        timeout = self._log._timeout
        try:
            starts = consumer.committed(partitions, timeout=timeout)
            for tp in starts:
                if tp.offset < 0:
                    low, high = consumer.get_watermark_offsets(tp, timeout=timeout, cached=False)
                    tp.offset = low if self._reset == "earliest" else high
                self._seeked[(tp.topic, tp.partition)] = tp.offset
            consumer.assign(starts)
        except KafkaException as exc:
            error = translate(exc, self._bootstrap, doing=f"starting partitions for group {self.group!r}")
            err = kafka_error(exc)
            if self.read_committed and err is not None and err.code() == confluent_kafka.KafkaError._TIMED_OUT:
                # Measured: a killed instance's open transaction that sent offsets for these partitions
                # makes the stable offset fetch wait until the transaction ends.
                error.hint = (
                    "a transaction that commits offsets for this group may still be open (an instance that died "
                    "mid-commit): open the transactional producer with its transactional id before the group "
                    "consumer (that aborts it), or wait for the broker's transaction timeout; else: " + error.hint
                )
            raise error from None
        if self._user_assign is not None:
            self._user_assign(sorted((tp.topic, tp.partition) for tp in partitions))

    def _on_revoke(self, consumer: confluent_kafka.Consumer, partitions: list[KTP]) -> None:
        """Revoked or lost: the user's callback first (the partitions are still ours), then forget them."""
        gone = {(tp.topic, tp.partition) for tp in partitions}
        try:
            if self._user_revoke is not None and gone:
                self._user_revoke(sorted(gone))
        finally:
            for tp in gone:
                self._seeked.pop(tp, None)
            self._stash = [m for m in self._stash if (m.topic(), m.partition()) not in gone]

    def group_metadata(self) -> object:
        """The group's current metadata (group id, generation, member id) for a transactional commit.

        The opaque ``confluent_kafka`` object that ``Producer.send_offsets_to_transaction``
        takes: the broker refuses offsets sent with a stale generation, so a member that lost
        its partitions in a rebalance cannot commit them.
        """
        try:
            return self._c.consumer_group_metadata()
        except KafkaException as exc:
            raise translate(exc, self._bootstrap, doing=f"reading the metadata of group {self.group!r}") from None

    def assignment_lost(self) -> bool:
        """True inside ``on_revoke`` when the partitions were lost, not handed over (commits would fail)."""
        return bool(self._c.assignment_lost())

    def _await_assignment(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._assigned_once:
            if time.monotonic() > deadline:
                self.close()
                raise RetryableError(
                    f"consumer group {self.group!r} on {self._bootstrap} assigned no partitions within {timeout:.0f}s",
                    hint="the other members of the group must keep polling for a rebalance to finish, and a crashed member "
                    "holds its partitions until its session times out (10 s); retry",
                )
            try:
                self._stash.extend(self._c.consume(500, 0.1))
            except KafkaException as exc:
                self.close()
                raise translate(exc, self._bootstrap, doing=f"joining group {self.group!r}") from None
            self._errors.raise_if_fatal()

    def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        """Commit ``{(topic, partition): next_offset}`` synchronously (``None``: the current positions)."""
        if offsets is None:
            offsets = {tp: self.position(*tp) for tp in self.assignment()}
        if not offsets:
            return
        tps = [KTP(t, p, o) for (t, p), o in offsets.items()]
        try:
            results = self._c.commit(offsets=tps, asynchronous=False)
        except KafkaException as exc:
            raise translate(exc, self._bootstrap, doing=f"committing offsets for group {self.group!r}") from None
        for tp in results or ():
            if tp.error is not None:
                raise translate(tp.error, self._bootstrap, topic=tp.topic, doing=f"committing {tp.topic}/{tp.partition}")

    def committed(self, topic: str, partition: int) -> int | None:
        """The group's committed next offset for the partition, or ``None``."""
        try:
            (tp,) = self._c.committed([KTP(topic, partition)], timeout=self._log._timeout)
        except KafkaException as exc:
            raise translate(exc, self._bootstrap, topic=topic, doing=f"reading offsets of group {self.group!r}") from None
        if tp.error is not None:
            raise translate(tp.error, self._bootstrap, topic=topic)
        return None if tp.offset < 0 else int(tp.offset)

