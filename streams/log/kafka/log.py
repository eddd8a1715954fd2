"""``KafkaLog``: the :class:`~streams.log.base.Log` contract on a real Kafka cluster (confluent-kafka).

Topics are created and altered with the admin API (never by broker auto-creation);
watermarks and time lookups go through one long-lived metadata consumer that never joins
a group. Every request is bounded by ``HFTSTREAM_KAFKA_TIMEOUT_S`` (default 10 s): a broker
that does not answer in time raises :class:`~streams.errors.BrokerUnavailableError`
naming the bootstrap servers.

What Kafka does not store: a :class:`TopicSpec`'s ``key``, ``value_schema`` and
``description`` (they live in ``infra/topics.yaml``), so :meth:`KafkaLog.describe_topic`
returns them empty.

Credentials (SASL password, TLS key password) come from ``HFTSTREAM_KAFKA_*`` through
:meth:`streams.config.KafkaSettings.librdkafka`, the one place that builds librdkafka
configuration. They are never logged, and ``repr``/``str``/error messages show only the
bootstrap servers.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, Literal, TypeVar

import confluent_kafka
from confluent_kafka import ConsumerGroupTopicPartitions, IsolationLevel, KafkaError, KafkaException, TopicPartition as KTP
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
)

from streams.config import KafkaSettings
from streams.errors import BrokerUnavailableError, ConfigError, UnknownPartitionError, UnknownTopicError
from streams.log.base import DeliveryCallback, Log, RebalanceCallback, TopicChange, TopicInfo, TopicPartition, TopicSpec
from streams.log.kafka.consumer import KafkaGroupConsumer, KafkaReader
from streams.log.kafka.errors import (
    COORDINATOR_HINT, COORDINATOR_MOVING, LEADER_MOVING, UNAVAILABLE, UNKNOWN_TOPIC, ErrorSink, coordinator_backoff, kafka_error, log,
    translate, unavailable_within,
)
from streams.log.kafka.producer import KafkaProducer
from streams.log.kafka.transactions import MESSAGE_TIMEOUT_MS, TRANSACTION_TIMEOUT_MS, KafkaTransactionalProducer

T = TypeVar("T")
NS_PER_MS = 1_000_000
# librdkafka's own log lines go through Python logging (not straight to stderr).
LIBRDKAFKA_LOGGER = logging.getLogger("streams.log.kafka.librdkafka")
INTERNAL_PREFIXES = ("__", "_schemas", "_confluent")
TOPIC_CONFIG_KEYS = ("cleanup.policy", "retention.ms", "retention.bytes", "min.insync.replicas")


def is_internal_topic(name: str) -> bool:
    """Kafka's and Confluent's own topics (``__consumer_offsets``, ``_schemas``...), hidden from listings."""
    return name.startswith(INTERNAL_PREFIXES)


def topic_config(spec: TopicSpec) -> dict[str, str]:
    """The Kafka topic configs a :class:`TopicSpec` sets (``None`` retention = ``-1`` = forever)."""
    return {
        "cleanup.policy": spec.cleanup_policy,
        "retention.ms": str(-1 if spec.retention_ms is None else spec.retention_ms),
        "retention.bytes": str(-1 if spec.retention_bytes is None else spec.retention_bytes),
    } | ({} if spec.min_insync_replicas is None else {"min.insync.replicas": str(spec.min_insync_replicas)})


class KafkaLog(Log):
    """A Kafka cluster as an hftstream :class:`Log`. ``bootstrap`` is ``host:port[,host:port]``."""

    reader_ends_cached = True  # librdkafka's end_offset is the high watermark of the last fetch response
    offsets_are_records = False  # transaction markers and aborted records take offsets

    def __init__(self, bootstrap: str, *, settings: KafkaSettings | None = None) -> None:
        if not bootstrap or not bootstrap.strip():
            raise ConfigError("no Kafka bootstrap servers given", hint="use kafka://HOST:PORT[,HOST:PORT]")
        self.bootstrap = bootstrap.strip()
        self.url = f"kafka://{self.bootstrap}"
        self._settings = settings or KafkaSettings()
        self._timeout = float(self._settings.timeout_s)
        self._admin: AdminClient | None = None
        self._meta: confluent_kafka.Consumer | None = None
        self._errors = ErrorSink(self.bootstrap)
        self._lock = threading.Lock()
        self._partition_cache: dict[str, int] = {}  # topic -> partition count, shared with producers
        self._published: Future[Any] | None = None  # the last publish_group_offsets request

    def __repr__(self) -> str:
        return f"KafkaLog({self.bootstrap!r})"

    def seen_unavailable_within(self, seconds: float) -> bool:
        """True when a client of this broker in this process found it unreachable in the last ``seconds`` (outages)."""
        return unavailable_within(self.bootstrap, seconds)

    __str__ = __repr__

    # -- clients ------------------------------------------------------------------------

    def client_config(self, **extra: Any) -> dict[str, Any]:
        """librdkafka configuration for a new client (contains secrets: never log or print it)."""
        conf = self._settings.librdkafka(self.bootstrap)
        conf["logger"] = LIBRDKAFKA_LOGGER
        conf.update(extra)
        return conf

    def _admin_client(self) -> AdminClient:
        if self._admin is None:
            with self._lock:
                if self._admin is None:
                    self._admin = AdminClient(self.client_config(error_cb=self._errors))
        return self._admin

    def _meta_consumer(self) -> confluent_kafka.Consumer:
        if self._meta is None:
            with self._lock:
                if self._meta is None:
                    self._meta = confluent_kafka.Consumer(
                        self.client_config(
                            **{
                                "group.id": f"hftstream-meta-{uuid.uuid4().hex}",
                                "enable.auto.commit": False,
                                "allow.auto.create.topics": False,
                                # watermarks(): "high" is the last stable offset (see there).
                                "isolation.level": "read_committed",
                                "error_cb": self._errors,
                            }
                        )
                    )
        return self._meta

    def producer(self, *, on_delivery: DeliveryCallback | None = None) -> KafkaProducer:
        """A new idempotent producer (see :mod:`streams.log.kafka.producer`)."""
        return KafkaProducer(self, self.client_config(), on_delivery)

    def transactional_producer(
        self,
        transactional_id: str,
        *,
        transaction_timeout_ms: int = TRANSACTION_TIMEOUT_MS,
        message_timeout_ms: int = MESSAGE_TIMEOUT_MS,
    ) -> KafkaTransactionalProducer:
        """A transactional producer (see :mod:`streams.log.kafka.transactions`); fences the id's previous holder."""
        return KafkaTransactionalProducer(
            self,
            self.client_config(),
            transactional_id,
            transaction_timeout_ms=transaction_timeout_ms,
            message_timeout_ms=message_timeout_ms,
        )

    def reader(self, assignments: Sequence[tuple[str, int, int]], *, read_committed: bool = True) -> KafkaReader:
        """A reader of ``[(topic, partition, start_offset), ...]``; no group, no commits."""
        return KafkaReader(self, self.client_config(), assignments, read_committed=read_committed)

    def group_consumer(
        self,
        group: str,
        topics: Sequence[str],
        *,
        auto_offset_reset: Literal["earliest", "latest"] = "earliest",
        read_committed: bool = True,
        on_assign: RebalanceCallback | None = None,
        on_revoke: RebalanceCallback | None = None,
        instance_id: str | None = None,
    ) -> KafkaGroupConsumer:
        """A member of consumer group ``group``; returns once the group assigned it partitions.

        ``on_assign`` / ``on_revoke`` and ``instance_id`` (static membership, Kafka only): see
        :class:`~streams.log.kafka.KafkaGroupConsumer`.
        """
        return KafkaGroupConsumer(
            self,
            self.client_config(),
            group,
            topics,
            auto_offset_reset,
            join_timeout=max(30.0, 3 * self._timeout),
            read_committed=read_committed,
            on_assign=on_assign,
            on_revoke=on_revoke,
            instance_id=instance_id,
        )

    def close(self) -> None:
        """Release the admin and metadata clients."""
        meta, self._meta, self._admin = self._meta, None, None
        if meta is not None:
            meta.close()

    # -- request plumbing ---------------------------------------------------------------

    def _call(self, fn: Callable[[], T], *, topic: str | None = None, doing: str = "") -> T:
        """Run one client call; retry while partition leadership is moving (bounded by the timeout)."""
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                result = fn()
                break
            except (KafkaException, TimeoutError) as exc:
                err = kafka_error(exc)
                if err is not None and err.code() in LEADER_MOVING and time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                raise translate(exc, self.bootstrap, topic=topic, doing=doing) from None
        self._errors.raise_if_fatal()
        return result

    def _wait(self, future: Future[T], *, topic: str | None = None, doing: str = "") -> T:
        return self._call(lambda: future.result(timeout=self._timeout + 5), topic=topic, doing=doing)

    def _group_request(self, request: Callable[[], dict[str, Future[T]]], group: str, *, doing: str) -> T:
        """A group admin request, re-sent with backoff while its coordinator moves or loads (up to 3x the timeout).

        A fresh broker creates ``__consumer_offsets`` (50 partitions) on the first group request: until then the
        request fails with a coordinator error, or times out while the broker itself answers metadata.
        """
        deadline = time.monotonic() + 3 * self._timeout
        attempt = 0
        while True:
            future = self._call(request, doing=doing)[group]
            try:
                return future.result(timeout=self._timeout + 5)
            except (KafkaException, TimeoutError) as exc:
                err = kafka_error(exc)
                delay = coordinator_backoff(attempt)
                moving = err is not None and err.code() in COORDINATOR_MOVING
                if err is not None and err.code() == KafkaError._TIMED_OUT:
                    self._metadata()  # raises if the broker itself is down; if it answers, the coordinator is loading
                    moving = True
                if not moving:
                    raise translate(exc, self.bootstrap, doing=doing) from None
                if time.monotonic() + delay >= deadline:
                    raise BrokerUnavailableError(
                        f"Kafka at {self.bootstrap}: the group coordinator was not ready within {3 * self._timeout:.0f} s "
                        f"({doing}): {err.str() if err else exc}",
                        hint=COORDINATOR_HINT,
                    ) from None
                log.info("%s: %s; retrying in %.2f s", doing, err.str(), delay)
                time.sleep(delay)
                attempt += 1

    def _metadata(self, topic: str | None = None) -> Any:
        admin = self._admin_client()
        kwargs: dict[str, Any] = {"timeout": self._timeout}
        if topic is not None:
            kwargs["topic"] = topic
        return self._call(lambda: admin.list_topics(**kwargs), doing="reading cluster metadata")

    def _topic_partitions(self, topic: str, *, refresh: bool = False) -> int:
        """Partition count of ``topic`` (cached). Raises :class:`UnknownTopicError`."""
        if not refresh and (n := self._partition_cache.get(topic)) is not None:
            return n
        tm = self._metadata(topic).topics.get(topic)
        if tm is None or (tm.error is not None and tm.error.code() in UNKNOWN_TOPIC):
            self._partition_cache.pop(topic, None)
            raise UnknownTopicError(topic)
        if tm.error is not None:
            raise translate(tm.error, self.bootstrap, topic=topic, doing=f"reading metadata of {topic!r}")
        n = len(tm.partitions)
        self._partition_cache[topic] = n
        return n

    def _check_partition(self, topic: str, partition: int) -> None:
        n = self._topic_partitions(topic)
        if not 0 <= partition < n:
            n = self._topic_partitions(topic, refresh=True)
            if not 0 <= partition < n:
                raise UnknownPartitionError(topic, partition, n)

    def _await_metadata(self, topic: str, ready: Callable[[Any], bool], what: str) -> None:
        """Poll metadata until ``ready(topic_metadata_or_None)``: admin results precede propagation."""
        deadline = time.monotonic() + self._timeout
        while True:
            tm = self._metadata(topic).topics.get(topic)
            if ready(tm):
                return
            if time.monotonic() > deadline:
                raise translate(TimeoutError(), self.bootstrap, doing=f"waiting for {topic!r} to be {what}")
            time.sleep(0.05)

    def _await_partitions(self, topic: str, partitions: int) -> None:
        def ready(tm: Any) -> bool:
            return (
                tm is not None
                and tm.error is None
                and len(tm.partitions) == partitions
                and all(p.leader >= 0 for p in tm.partitions.values())
            )

        self._await_metadata(topic, ready, f"created with {partitions} partition(s)")
        self._partition_cache[topic] = partitions

    # -- topics -------------------------------------------------------------------------

    def create_topic(self, spec: TopicSpec) -> TopicChange:
        """Create ``spec``, or grow its partitions and update its configs in place."""
        return self._apply(spec, validate_only=False)

    def plan_topic(self, spec: TopicSpec) -> TopicChange:
        """What :meth:`create_topic` would do with ``spec``, changing nothing: the broker validates every
        request (``validate_only``), so a setting it would refuse raises here too."""
        return self._apply(spec, validate_only=True)

    def _apply(self, spec: TopicSpec, *, validate_only: bool) -> TopicChange:
        if spec.partitions < 1:
            raise ConfigError(f"topic {spec.name!r} needs at least 1 partition, not {spec.partitions}")
        try:
            current = self._topic_partitions(spec.name, refresh=True)
        except UnknownTopicError:
            created = self._create(spec, validate_only=validate_only)
            if created is not None:
                return created
            current = self._topic_partitions(spec.name, refresh=True)  # created concurrently by someone else
        return self._update(spec, current, validate_only=validate_only)

    def _replication_factor(self, spec: TopicSpec) -> int:
        """HFTSTREAM_KAFKA_REPLICATION_FACTOR when set, else the topics file's environment, else 1."""
        if "replication_factor" in self._settings.model_fields_set:
            return self._settings.replication_factor
        return spec.replication_factor or 1

    def _create(self, spec: TopicSpec, *, validate_only: bool = False) -> TopicChange | None:
        rf = self._replication_factor(spec)
        config = topic_config(spec)
        new = NewTopic(spec.name, spec.partitions, rf, config=config)
        admin = self._admin_client()
        futures = self._call(
            lambda: admin.create_topics([new], operation_timeout=self._timeout, validate_only=validate_only), topic=spec.name
        )
        try:
            futures[spec.name].result(timeout=self._timeout + 5)
        except KafkaException as exc:
            err = kafka_error(exc)
            code = err.code() if err else None
            if code == KafkaError.TOPIC_ALREADY_EXISTS:
                return None
            if code in (KafkaError.INVALID_REPLICATION_FACTOR, KafkaError.INVALID_CONFIG, KafkaError.INVALID_TOPIC_EXCEPTION):
                raise ConfigError(
                    f"Kafka at {self.bootstrap} refused topic {spec.name!r}: {err.str() if err else exc}",
                    hint=f"check the topic name and settings; the replication factor (now {rf}: infra/topics.yaml's "
                    "replication environment, HFTSTREAM_KAFKA_ENVIRONMENT, or HFTSTREAM_KAFKA_REPLICATION_FACTOR) cannot "
                    "exceed the number of brokers, and min.insync.replicas cannot exceed it",
                ) from None
            raise translate(exc, self.bootstrap, doing=f"creating {spec.name!r}") from None
        except TimeoutError:
            raise translate(TimeoutError(), self.bootstrap, doing=f"creating {spec.name!r}") from None
        if not validate_only:
            self._await_partitions(spec.name, spec.partitions)
        detail = f"{spec.partitions} partition(s), replication {rf}, " + ", ".join(f"{k}={v}" for k, v in config.items())
        return TopicChange(spec.name, "created", detail)

    def _update(self, spec: TopicSpec, current: int, *, validate_only: bool = False) -> TopicChange:
        if spec.partitions < current:
            raise ConfigError(
                f"topic {spec.name!r} has {current} partitions; Kafka cannot shrink it to {spec.partitions}",
                hint="keep the partition count in infra/topics.yaml, or create a new topic and replay into it",
            )
        rf, have_rf = self._replication_factor(spec), self._current_replication(spec.name)
        if have_rf != rf:
            raise ConfigError(
                f"topic {spec.name!r} has replication factor {have_rf}; the topics file's environment declares {rf}",
                hint="hftstream does not move replicas: change it with kafka-reassign-partitions.sh, or select the "
                "environment that matches the cluster (HFTSTREAM_KAFKA_ENVIRONMENT; RUNBOOK.md 'Topic replication')",
            )
        admin = self._admin_client()
        changes: list[str] = []
        action: Literal["partitions", "config", "unchanged"] = "unchanged"
        if spec.partitions > current:
            grow = [NewPartitions(spec.name, spec.partitions)]
            fut = self._call(lambda: admin.create_partitions(grow, validate_only=validate_only))[spec.name]
            self._wait(fut, topic=spec.name, doing=f"adding partitions to {spec.name!r}")
            if not validate_only:
                self._await_partitions(spec.name, spec.partitions)
            changes.append(f"partitions {current} -> {spec.partitions}")
            action = "partitions"
        have = self._topic_configs(spec.name)
        want = {k: v for k, v in topic_config(spec).items() if have.get(k) != v}
        if want:
            resource = ConfigResource(
                ConfigResource.Type.TOPIC,
                spec.name,
                incremental_configs=[ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in want.items()],
            )
            (fut,) = self._call(lambda: admin.incremental_alter_configs([resource], validate_only=validate_only)).values()
            self._wait(fut, topic=spec.name, doing=f"altering configs of {spec.name!r}")
            changes.extend(f"{k} {have.get(k)} -> {v}" for k, v in want.items())
            action = "config" if action == "unchanged" else action
        isr = topic_config(spec).get("min.insync.replicas", have.get("min.insync.replicas"))
        changes.append(f"replication {rf}, min.insync.replicas {isr}")
        return TopicChange(spec.name, action, "; ".join(changes))

    def _current_replication(self, topic: str) -> int:
        """How many replicas the partitions of ``topic`` have now (the smallest, if they differ)."""
        tm = self._metadata(topic).topics.get(topic)
        if tm is None or tm.error is not None or not tm.partitions:
            raise UnknownTopicError(topic)
        return min(len(p.replicas) for p in tm.partitions.values())

    def _topic_configs(self, topic: str) -> dict[str, str]:
        admin = self._admin_client()
        resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
        (fut,) = self._call(lambda: admin.describe_configs([resource]), topic=topic).values()
        entries = self._wait(fut, topic=topic, doing=f"describing {topic!r}")
        return {k: entries[k].value for k in TOPIC_CONFIG_KEYS if k in entries}

    def list_topics(self) -> list[TopicInfo]:
        """Every user topic (internal ``__*``/``_schemas`` excluded), sorted, with low/high watermarks."""
        md = self._metadata()
        counts = {
            name: len(tm.partitions)
            for name, tm in md.topics.items()
            if not is_internal_topic(name) and tm.error is None
        }
        if not counts:
            return []
        tps = [KTP(name, p) for name, n in counts.items() for p in range(n)]
        low = self._offsets(tps, OffsetSpec.earliest())
        high = self._offsets(tps, OffsetSpec.latest())
        return [
            TopicInfo(
                name=name,
                partitions=n,
                end_offsets=tuple(high.get((name, p), 0) for p in range(n)),
                begin_offsets=tuple(low.get((name, p), 0) for p in range(n)),
            )
            for name, n in sorted(counts.items())
        ]

    def _offsets(
        self, tps: list[KTP], spec: OffsetSpec, isolation: IsolationLevel = IsolationLevel.READ_UNCOMMITTED
    ) -> dict[tuple[str, int], int]:
        """Offsets of many partitions in one request. A topic deleted meanwhile is left out; a
        partition whose leader is moving (a topic created or deleted a moment ago) is asked again."""
        admin = self._admin_client()
        out: dict[tuple[str, int], int] = {}
        deadline = time.monotonic() + self._timeout
        while tps:
            request = functools.partial(
                admin.list_offsets, {tp: spec for tp in tps}, isolation_level=isolation, request_timeout=self._timeout
            )
            futures = self._call(request)
            again: list[KTP] = []
            for tp, fut in futures.items():
                try:
                    out[(tp.topic, tp.partition)] = int(fut.result(timeout=self._timeout + 5).offset)
                except KafkaException as exc:
                    err = kafka_error(exc)
                    if err is not None and err.code() in UNKNOWN_TOPIC:
                        continue
                    moving = err is not None and (err.retriable() or err.code() in UNAVAILABLE)
                    if moving and time.monotonic() < deadline:
                        again.append(tp)
                        continue
                    raise translate(exc, self.bootstrap, topic=tp.topic, doing="listing offsets") from None
                except TimeoutError:
                    raise translate(TimeoutError(), self.bootstrap, doing="listing offsets") from None
            tps = again
            if tps:
                time.sleep(0.05)
        return out

    def describe_topic(self, topic: str) -> TopicSpec:
        """Partitions, retention and cleanup policy as the broker has them (key/schema/description: not in Kafka)."""
        partitions = self._topic_partitions(topic, refresh=True)
        configs = self._topic_configs(topic)

        def limit(key: str) -> int | None:
            value = int(configs.get(key, "-1"))
            return None if value < 0 else value

        policy = configs.get("cleanup.policy", "delete")
        return TopicSpec(
            name=topic,
            partitions=partitions,
            retention_ms=limit("retention.ms"),
            retention_bytes=limit("retention.bytes"),
            cleanup_policy="compact" if "compact" in policy.split(",") else "delete",
        )

    def partitions(self, topic: str) -> int:
        """Number of partitions of ``topic`` (from metadata, not cached)."""
        return self._topic_partitions(topic, refresh=True)

    def delete_topic(self, topic: str) -> None:
        """Delete ``topic``; returns once the cluster's metadata no longer lists it."""
        admin = self._admin_client()
        futures = self._call(lambda: admin.delete_topics([topic], operation_timeout=self._timeout), topic=topic)
        self._wait(futures[topic], topic=topic, doing=f"deleting {topic!r}")
        self._partition_cache.pop(topic, None)

        def gone(tm: Any) -> bool:
            return tm is None or (tm.error is not None and tm.error.code() in UNKNOWN_TOPIC)

        self._await_metadata(topic, gone, "deleted")

    # -- offsets ------------------------------------------------------------------------

    def watermarks(self, topic: str, partition: int) -> tuple[int, int]:
        """``(low, high)`` read from the partition leader (not a cached value).

        ``high`` is the *last stable offset*: the end a ``read_committed`` reader can reach.
        It equals the high watermark unless a transaction is open on the partition, in which
        case it is that transaction's first offset (a reader that waits for ``high`` would
        otherwise wait for the transaction). :meth:`end_offsets` gives either.
        """
        self._check_partition(topic, partition)
        meta = self._meta_consumer()
        low, high = self._call(
            lambda: meta.get_watermark_offsets(KTP(topic, partition), timeout=self._timeout, cached=False),
            topic=topic,
            doing=f"reading watermarks of {topic}/{partition}",
        )
        return int(low), int(high)

    def offset_for_time(self, topic: str, partition: int, timestamp_ns: int) -> int:
        """First offset with timestamp >= ``timestamp_ns``; the high watermark if none.

        Kafka indexes milliseconds: ``timestamp_ns`` is rounded *up* to the next whole
        millisecond, which is exact because stored timestamps are whole milliseconds.
        """
        self._check_partition(topic, partition)
        ms = -(-timestamp_ns // NS_PER_MS)
        if ms <= 0:  # librdkafka reads -1/-2 as "latest"/"earliest": every record is >= time 0
            return self.watermarks(topic, partition)[0]
        meta = self._meta_consumer()
        (tp,) = self._call(
            lambda: meta.offsets_for_times([KTP(topic, partition, ms)], timeout=self._timeout),
            topic=topic,
            doing=f"looking up time {timestamp_ns} in {topic}/{partition}",
        )
        if tp.error is not None:
            raise translate(tp.error, self.bootstrap, topic=topic)
        if tp.offset < 0:
            return self.watermarks(topic, partition)[1]
        return int(tp.offset)

    # -- consumer lag (``hftstream status``) -----------------------------------------------

    def end_offsets(self, partitions: Iterable[TopicPartition], *, read_committed: bool = True) -> dict[TopicPartition, int]:
        """End offset of each partition in one request: the last stable offset, or the high watermark.

        With ``read_committed`` (the default) the end is the *last stable offset* (LSO): what a
        ``read_committed`` consumer can reach, below any open transaction. Lag of a group on
        a read_committed topic = LSO - committed offset. ``read_committed=False`` gives the
        high watermark, which counts records of open and aborted transactions and the
        transactions' control records. Partitions of deleted topics are left out.
        """
        tps = [KTP(t, p) for t, p in partitions]
        if not tps:
            return {}
        isolation = IsolationLevel.READ_COMMITTED if read_committed else IsolationLevel.READ_UNCOMMITTED
        return self._offsets(tps, OffsetSpec.latest(), isolation)

    def delete_group(self, group: str) -> bool:
        """Delete consumer group ``group`` (it must have no live members). True if it existed."""
        admin = self._admin_client()
        doing = f"deleting consumer group {group!r}"
        try:
            self._group_request(
                lambda: admin.delete_consumer_groups([group], request_timeout=self._timeout), group, doing=doing
            )
        except Exception as exc:  # the broker says "no such group" as an error
            if "GROUP_ID_NOT_FOUND" in str(exc) or "not found" in str(exc).lower():
                return False
            raise
        return True

    def group_offsets(self, group: str, partitions: Iterable[TopicPartition] | None = None) -> dict[TopicPartition, int]:
        """``group``'s committed next offsets; ``partitions=None``: every partition it has committed.

        Offsets sent in a transaction count once that transaction commits: one still open (or
        left open by a dead instance until the broker aborts it) is neither counted nor waited
        for (``require_stable=False``; with ``True`` the broker answers UNSTABLE_OFFSET_COMMIT
        until the transaction ends). A partition without a committed offset is left out. The
        group need not have live members.
        """
        admin = self._admin_client()
        wanted = None if partitions is None else [KTP(t, p) for t, p in partitions]
        if wanted == []:
            return {}
        request = [ConsumerGroupTopicPartitions(group, wanted)]
        doing = f"reading offsets of group {group!r}"
        result = self._group_request(
            lambda: admin.list_consumer_group_offsets(request, require_stable=False, request_timeout=self._timeout),
            group, doing=doing,
        )
        out: dict[TopicPartition, int] = {}
        for tp in result.topic_partitions or ():
            if tp.error is not None:
                raise translate(tp.error, self.bootstrap, topic=tp.topic, doing=doing)
            if tp.offset >= 0:
                out[(tp.topic, tp.partition)] = int(tp.offset)
        return out

    def publish_group_offsets(self, group: str, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit ``offsets`` for ``group`` (a group without members) through the admin API, without waiting.

        For Kafka's own tools (``kafka-consumer-groups --describe``, lag exporters): a failure is
        logged at the next call, never raised -- hftstream's positions are its commit manifests.
        """
        pending = self._published
        if pending is not None and pending.done() and pending.exception() is not None:
            logging.getLogger("streams.log.kafka").warning("publishing offsets of group %s failed: %s", group, pending.exception())
        if not offsets:
            return
        admin = self._admin_client()
        request = [ConsumerGroupTopicPartitions(group, [KTP(t, p, o) for (t, p), o in sorted(offsets.items())])]
        try:
            self._published = admin.alter_consumer_group_offsets(request, request_timeout=self._timeout)[group]
        except KafkaException as exc:
            logging.getLogger("streams.log.kafka").warning("publishing offsets of group %s failed: %s", group, exc)
