"""The Kafka :class:`~streams.log.base.Producer`: a thin shell over ``confluent_kafka.Producer``.

Guarantees: idempotent (``enable.idempotence``: no duplicates or reordering on internal
retries), ``acks=all``, keyed records on ``murmur2(key) % partitions`` (librdkafka's
``murmur2_random``, identical to the Java client and the embedded log). A record is
durable once :meth:`KafkaProducer.flush` returns; ``flush`` raises if any record since the
previous flush failed, so a caller that commits after ``flush`` never loses one.

Timestamps: the interface speaks int64 nanoseconds, Kafka stores milliseconds. A record
produced with ``timestamp_ns`` is stored with ``timestamp_ns // 1_000_000`` ms and reads
back as ``ms * 1_000_000`` ns (sub-millisecond digits are dropped). ``timestamp_ns=None`` lets the
client stamp the record with its current time. A timestamp in the epoch's first millisecond is stored as 1 ms:
librdkafka reads a timestamp of 0 as "now", which would move a record meant to come before everything (reference
data effective from the epoch, ``refdata load``) to the end.

The per-record path does one dict lookup (cached topic metadata) and one call into
librdkafka. Without an ``on_delivery`` callback, librdkafka reports only failed
deliveries (``delivery.report.only.error``), so successes cost nothing in Python.

:class:`~streams.log.kafka.transactions.KafkaTransactionalProducer` extends this class
with ``transactional.id`` and begin/commit/abort; it overrides :meth:`KafkaProducer._error`
and :meth:`KafkaProducer._failure_error`, the two places that turn librdkafka failures
into hftstream errors.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import confluent_kafka
from confluent_kafka import KafkaError, KafkaException, Message

from streams.errors import ConfigError, DeliveryError, RecordRejectedError, UnknownPartitionError, UnknownTopicError
from streams.log.base import DeliveryCallback, Headers, Producer, Record
from streams.log.kafka.errors import UNAVAILABLE, UNKNOWN_TOPIC, ErrorSink, kafka_error, translate, unwrap_callback_error

if TYPE_CHECKING:
    from streams.log.kafka.log import KafkaLog

NS_PER_MS = 1_000_000


def producer_config(on_delivery: bool) -> dict[str, Any]:
    """The librdkafka producer options hftstream always sets (the benchmark reuses them for raw clients)."""
    return {
        "partitioner": "murmur2_random",
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "allow.auto.create.topics": False,
        "delivery.report.only.error": not on_delivery,
    }


def message_record(msg: Message) -> Record:
    """The :class:`Record` a delivered (or failed) librdkafka message describes."""
    headers = msg.headers()
    return Record(
        msg.topic(),
        msg.partition(),
        msg.offset(),
        msg.timestamp()[1] * NS_PER_MS,
        msg.key(),
        msg.value(),
        tuple(headers) if headers else (),
    )


class KafkaProducer(Producer):
    """Appends records to Kafka topics. Not thread-safe: one producer per thread."""

    def __init__(self, log: KafkaLog, conf: dict[str, Any], on_delivery: DeliveryCallback | None = None) -> None:
        self._log = log
        self._bootstrap = log.bootstrap
        self._errors = ErrorSink(log.bootstrap)
        self._user_callback = on_delivery
        self._failures: list[tuple[KafkaError, str]] = []
        self._queued = 0
        self.delivered = 0  # records acknowledged over this producer's life
        conf = {**conf, **producer_config(on_delivery is not None), "error_cb": self._errors}
        conf["on_delivery"] = self._report_all if on_delivery is not None else self._report_failure
        try:
            self._p = confluent_kafka.Producer(conf)
        except KafkaException as exc:  # an invalid option (librdkafka checks them here)
            err = kafka_error(exc)
            raise ConfigError(f"invalid Kafka producer configuration: {err.str() if err else exc}") from None
        self._produce = self._p.produce
        self._partitions = log._partition_cache  # shared metadata cache: topic -> partition count

    def __repr__(self) -> str:
        return f"KafkaProducer({self._bootstrap!r})"

    # -- delivery reports (called from poll/flush on this thread) --------------------

    def _report_failure(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._failures.append((err, msg.topic()))

    def _report_all(self, err: KafkaError | None, msg: Message) -> None:
        exc = None
        if err is not None:
            self._failures.append((err, msg.topic()))
            exc = self._error(err, topic=msg.topic(), doing="delivering a record")
        assert self._user_callback is not None
        self._user_callback(exc, message_record(msg))

    # -- the hot path -------------------------------------------------------------------

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
        """Queue one record (see the module docstring for timestamps). Blocks while the queue is full."""
        n = self._partitions.get(topic)
        if n is None or (partition is not None and not 0 <= partition < n):
            self._check_target(topic, partition)
        target = -1 if partition is None else partition
        timestamp = 0 if timestamp_ns is None else timestamp_ns // NS_PER_MS or 1  # 0 ms would mean "now" to librdkafka
        wire_headers = list(headers) if headers else None
        try:
            self._produce(topic, value, key, target, timestamp=timestamp, headers=wire_headers)
        except BufferError:
            self._wait_for_room(topic, value, key, target, timestamp, wire_headers)
        except KafkaException as exc:
            raise self._error(exc, topic=topic, doing="producing") from None
        self._queued += 1

    def _check_target(self, topic: str, partition: int | None) -> None:
        n = self._log._topic_partitions(topic, refresh=True)  # raises UnknownTopicError
        if partition is not None and not 0 <= partition < n:
            raise UnknownPartitionError(topic, partition, n)

    def _wait_for_room(
        self, topic: str, value: bytes | None, key: bytes | None, partition: int, timestamp_ms: int,
        headers: list[tuple[str, bytes]] | None,
    ) -> None:  # fmt: skip
        """Backpressure: serve delivery reports until librdkafka's queue takes the record. Never drops."""
        while True:
            self.poll(0.05)
            self._raise_if_fatal()
            try:
                self._produce(topic, value, key, partition, timestamp=timestamp_ms, headers=headers)
                return
            except BufferError:
                continue
            except KafkaException as exc:
                raise self._error(exc, topic=topic, doing="producing") from None

    # -- errors -------------------------------------------------------------------------

    def _error(self, exc: KafkaException | KafkaError, *, topic: str | None = None, doing: str = "") -> Exception:
        """The hftstream error for a librdkafka failure (never names credentials)."""
        return translate(exc, self._bootstrap, topic=topic, doing=doing)

    def _callback_error(self, exc: KafkaException | SystemError, doing: str) -> Exception:
        """A client call that serves callbacks failed: a fatal client error (see ``unwrap_callback_error``)."""
        cause = unwrap_callback_error(exc)
        if cause is None and isinstance(exc, SystemError):
            # confluent-kafka can also return NULL without an exception set once the producer is fenced
            # (seen under load): the fatal error is then the one error_cb reports
            if self._errors.fatal is None:
                try:
                    self._p.poll(0)
                except Exception:  # only serving error_cb here; the fatal error is what matters
                    pass
            if self._errors.fatal is not None:
                return self._error(self._errors.fatal, doing=doing)
        if cause is None:
            raise exc  # a bug of ours inside a callback: keep the traceback
        return self._error(cause, doing=doing)

    def _raise_if_fatal(self) -> None:
        """Raise the fatal error librdkafka reported through ``error_cb``, if any."""
        if self._errors.fatal is not None:
            raise self._error(self._errors.fatal, doing="producing")

    # -- durability ---------------------------------------------------------------------

    def poll(self, timeout: float = 0.0) -> int:
        """Serve pending delivery reports (callbacks) without blocking for more than ``timeout``."""
        try:
            return int(self._p.poll(timeout))
        except (KafkaException, SystemError) as exc:
            raise self._callback_error(exc, "serving delivery reports") from None

    def flush(self, timeout: float | None = None) -> int:
        """Wait until every queued record is acknowledged; return how many were since the last flush.

        Raises :class:`~streams.errors.DeliveryError` (retryable: broker down, timeout) or
        :class:`~streams.errors.RecordRejectedError` (permanent) if any record failed, and
        :class:`~streams.errors.DeliveryError` if ``timeout`` passes with records in flight
        (they stay queued; flush again).
        """
        try:
            remaining = self._p.flush() if timeout is None else self._p.flush(timeout)
        except (KafkaException, SystemError) as exc:
            raise self._callback_error(exc, "flushing") from None
        self._raise_if_fatal()
        if remaining:
            raise DeliveryError(
                f"{remaining} record(s) to {self._bootstrap} not acknowledged within {timeout}s",
                hint="the broker is slow or down; flush again, or check it (hftstream dev kafka starts a local one)",
            )
        queued, failures = self._queued, self._failures
        self._queued, self._failures = 0, []
        delivered = queued - len(failures)
        self.delivered += delivered
        if failures and (exc := self._failure_error(failures, delivered)) is not None:
            raise exc
        return delivered

    def _failure_error(self, failures: list[tuple[KafkaError, str]], delivered: int) -> Exception | None:
        """The error to raise for failed deliveries (``None``: none of them counts as a failure)."""
        err, topic = failures[0]
        code = err.code()
        summary = f"{len(failures)} record(s) failed ({delivered} delivered); first: {topic!r}: {err.str()}"
        if code in UNKNOWN_TOPIC:
            self._partitions.pop(topic, None)
            exc: Exception = UnknownTopicError(topic)
            exc.add_note(summary)
            return exc
        if code in UNAVAILABLE or err.retriable():
            return DeliveryError(f"delivery to {self._bootstrap} failed: {summary}")
        return RecordRejectedError(f"{self._bootstrap} rejected records: {summary}")

    def close(self) -> None:
        """Flush, then release the client. Raises like :meth:`flush` if records failed."""
        if self._p is None:  # type: ignore[comparison-overlap]
            return
        try:
            self.flush()
        finally:
            with contextlib.suppress(Exception):
                self._p.purge()
            self._p = None  # type: ignore[assignment]
