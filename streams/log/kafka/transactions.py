"""The Kafka :class:`~streams.log.base.TransactionalProducer`: read-process-write with exactly-once.

Follows librdkafka's INTRODUCTION.md ("Transactional Producer") and confluent-kafka-python's
``examples/eos-transactions.py``:

* opening the producer calls ``init_transactions()``: it registers ``transactional.id``
  with the transaction coordinator, bumps the producer epoch (so a zombie with the same id
  is fenced at its next produce, commit or abort) and aborts whatever transaction the
  previous holder left open;
* :meth:`KafkaTransactionalProducer.commit` sends the input offsets with
  ``send_offsets_to_transaction(offsets, consumer.consumer_group_metadata())`` (KIP-447: one
  producer serves every input partition, the group generation fences a consumer that lost
  its partitions), waits for every record of the transaction, then ``commit_transaction()``;
* :meth:`KafkaTransactionalProducer.abort` is ``abort_transaction()``.

Configuration (:func:`transactional_config`, measured on Apache Kafka 3.9.1):

* ``retry.backoff.ms=10``: a transaction begun right after a commit sends its first
  AddPartitionsToTxn while the coordinator still completes the previous one and gets
  CONCURRENT_TRANSACTIONS; librdkafka retries after ``retry.backoff.ms``. With the default
  100 ms, commit p99 was ~110 ms; with 10 ms, 14-26 ms.
* ``transaction.timeout.ms`` = 20 s (:data:`TRANSACTION_TIMEOUT_MS`). How long the broker lets
  a transaction stay open. It bounds how long a producer that died without being restarted
  holds back ``read_committed`` readers of its output partitions (the last stable offset
  stays at its first open record until the coordinator aborts it; the coordinator checks
  every 10 s), and it is the longest a batch plus its commit may take: a transaction that
  outlives it is aborted by the coordinator and the producer is *fenced* (measured: librdkafka
  reports the fatal ``_FENCED`` at the next call, not an abortable error).
* ``message.timeout.ms`` = 15 s (:data:`MESSAGE_TIMEOUT_MS`), strictly below the transaction
  timeout (librdkafka enforces it): a record that cannot be delivered fails the transaction
  with an abortable error before the coordinator's timeout turns it into a fatal one.
* ``linger.ms`` = 5 (from :func:`~streams.log.kafka.producer.producer_config`): batches
  between commits; ``commit()`` flushes without waiting for it.

Errors (librdkafka's three classes, plus its advice to treat an unclassified error as fatal):

* the transaction must be aborted (``txn_requires_abort()``, a failed delivery, a record that
  timed out): :class:`~streams.errors.TransactionAbortableError`. Call :meth:`abort`, rewind
  inputs to the last commit, go on;
* retriable (``retriable()``): retried inside the call until its timeout; if it still fails,
  :class:`~streams.errors.BrokerUnavailableError`. After a commit that did not complete the
  outcome is unknown (it goes on in the background): close the producer and open a new one
  with the same id (its ``init_transactions()`` settles the old transaction), then resume
  from the group's committed offsets;
* fenced (``_FENCED``, ``PRODUCER_FENCED``, ``INVALID_PRODUCER_EPOCH``):
  :class:`~streams.errors.ProducerFencedError`; any other fatal error:
  :class:`~streams.errors.KafkaClientError`. This producer is finished.

Error messages name the bootstrap servers and the transactional id, never credentials
(:func:`~streams.log.kafka.errors.translate`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from confluent_kafka import KafkaError, KafkaException, TopicPartition as KTP

from streams.errors import (
    BrokerUnavailableError,
    ConfigError,
    DeliveryError,
    HftError,
    KafkaClientError,
    ProducerFencedError,
    RecordRejectedError,
    TransactionAbortableError,
    UnknownTopicError,
)
from streams.log.base import GroupConsumer, TopicPartition, TransactionalProducer
from streams.log.kafka.errors import AUTH, FENCED, kafka_error, log, translate, unwrap_callback_error
from streams.log.kafka.producer import KafkaProducer, producer_config

if TYPE_CHECKING:
    from streams.log.kafka.log import KafkaLog

T = TypeVar("T")
TRANSACTION_TIMEOUT_MS = 20_000
MESSAGE_TIMEOUT_MS = 15_000
RETRY_BACKOFF_MS = 10
PURGED = frozenset((KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT))


def transactional_config(
    transactional_id: str,
    *,
    transaction_timeout_ms: int = TRANSACTION_TIMEOUT_MS,
    message_timeout_ms: int = MESSAGE_TIMEOUT_MS,
) -> dict[str, Any]:
    """The librdkafka options of a transactional producer, on top of ``producer_config`` (benchmarks reuse them)."""
    if not transactional_id:
        raise ConfigError("a transactional producer needs a non-empty transactional id")
    linger_ms = producer_config(False)["linger.ms"]
    if not linger_ms < message_timeout_ms < transaction_timeout_ms:
        raise ConfigError(
            f"message.timeout.ms ({message_timeout_ms}) must be above linger.ms ({linger_ms}) and below "
            f"transaction.timeout.ms ({transaction_timeout_ms})",
            hint="a record must time out (abortable) before its transaction does (fatal)",
        )
    return {
        "transactional.id": transactional_id,
        "transaction.timeout.ms": transaction_timeout_ms,
        "message.timeout.ms": message_timeout_ms,
        "retry.backoff.ms": RETRY_BACKOFF_MS,
    }


class KafkaTransactionalProducer(KafkaProducer, TransactionalProducer):
    """A transactional producer for one ``transactional_id`` (see the module docstring).

    Opening it fences the previous holder of the id. Not thread-safe: call it from the
    thread that polls the input consumer (the revoke callback runs there too).
    """

    def __init__(
        self,
        log: KafkaLog,
        conf: dict[str, Any],
        transactional_id: str,
        *,
        transaction_timeout_ms: int = TRANSACTION_TIMEOUT_MS,
        message_timeout_ms: int = MESSAGE_TIMEOUT_MS,
    ) -> None:
        txn = transactional_config(
            transactional_id, transaction_timeout_ms=transaction_timeout_ms, message_timeout_ms=message_timeout_ms
        )
        self.transactional_id = transactional_id
        self.transaction_timeout_ms = transaction_timeout_ms
        self._in_txn = False
        self._timeout = log._timeout
        super().__init__(log, {**conf, **txn})
        try:
            self._retrying(self._p.init_transactions, self._timeout * 2, "initialising transactions")
        except BaseException:
            self._release()
            raise

    def __repr__(self) -> str:
        return f"KafkaTransactionalProducer({self._bootstrap!r}, transactional_id={self.transactional_id!r})"

    @property
    def in_transaction(self) -> bool:
        """True between :meth:`begin` and a successful :meth:`commit` / :meth:`abort`."""
        return self._in_txn

    # -- the transaction ----------------------------------------------------------------

    def begin(self) -> None:
        """Open a transaction. Raises :class:`~streams.errors.KafkaClientError` if one is open."""
        self._raise_if_fatal()
        if self._in_txn:
            raise KafkaClientError(
                f"transactional producer {self.transactional_id!r} already has an open transaction",
                hint="commit() or abort() the open transaction before begin()",
            )
        try:
            self._p.begin_transaction()
        except KafkaException as exc:
            raise self._error(exc, doing="beginning a transaction") from None
        self._in_txn = True

    def commit(
        self,
        offsets: Mapping[TopicPartition, int] | None = None,
        consumer: GroupConsumer | None = None,
        timeout: float | None = None,
    ) -> None:
        """Commit the records produced since :meth:`begin` with ``offsets`` as ``consumer``'s group offsets.

        ``offsets`` maps ``(topic, partition)`` to the next offset to consume. ``consumer`` must be
        the :class:`~streams.log.kafka.KafkaGroupConsumer` the inputs were read with: its group
        generation goes with the offsets, so a member that lost the partitions cannot commit them.
        ``timeout`` (default: twice ``HFTSTREAM_KAFKA_TIMEOUT_S``) bounds the whole commit,
        retriable failures retried within it. Raises as the module docstring says.
        """
        self._require_transaction("commit")
        budget = self._timeout * 2 if timeout is None else timeout
        deadline = time.monotonic() + budget
        if offsets:
            metadata = _group_metadata(consumer)
            tps = [KTP(topic, partition, offset) for (topic, partition), offset in offsets.items()]
            self._retrying(
                lambda t: self._p.send_offsets_to_transaction(tps, metadata, t),
                deadline - time.monotonic(),
                f"sending offsets of group {getattr(consumer, 'group', '?')!r} to the transaction",
            )
        # Wait for the transaction's records here (commit_transaction would too): a failed
        # delivery then names its topic and reason instead of a bare "transaction failed".
        try:
            self.flush(max(deadline - time.monotonic(), 0.001))
        except DeliveryError as exc:  # records still in flight at the deadline: nothing committed yet
            raise TransactionAbortableError(f"{self!r}: {exc}") from None
        self._retrying(
            self._p.commit_transaction, deadline - time.monotonic(), "committing the transaction", unknown_outcome=True
        )
        self._in_txn = False

    def abort(self, timeout: float | None = None) -> None:
        """Abort the open transaction (no-op when none is open); its records are never visible to read_committed."""
        if not self._in_txn:
            return
        budget = self._timeout * 2 if timeout is None else timeout
        self._retrying(self._p.abort_transaction, budget, "aborting the transaction")
        # Delivery reports of the aborted records (purged by librdkafka) are not failures of the next one.
        self.poll(0)
        self._queued, self._failures = 0, []
        self._in_txn = False

    def flush(self, timeout: float | None = None) -> int:
        """Push the open transaction's records to the brokers (still invisible until :meth:`commit`); 0 outside one."""
        if not self._in_txn:
            return 0
        return super().flush(timeout)

    def close(self) -> None:
        """Abort an open transaction (its records are discarded) and release the client."""
        if self._p is None:  # type: ignore[comparison-overlap]
            return
        try:
            if self._in_txn and self._errors.fatal is None:
                self.abort(self._timeout)
        except HftError as exc:
            log.warning("closing %r: abort failed: %s", self, exc)
        finally:
            self._release()

    def discard(self) -> None:
        """Release the client without aborting (fenced, or the broker is down): re-opening the id aborts what it left."""
        if self._p is not None:  # type: ignore[comparison-overlap]
            self._release()

    def _release(self) -> None:
        with contextlib.suppress(Exception):
            self._p.purge()
        self._p = None  # type: ignore[assignment]
        self._in_txn = False

    def _require_transaction(self, what: str) -> None:
        if not self._in_txn:
            raise KafkaClientError(
                f"{what}: transactional producer {self.transactional_id!r} has no open transaction",
                hint="call begin() first",
            )

    # -- errors -------------------------------------------------------------------------

    def _retrying(self, call: Callable[[float], T], budget: float, doing: str, *, unknown_outcome: bool = False) -> T:
        """``call(timeout)``; retriable librdkafka failures are retried until ``budget`` seconds pass.

        ``unknown_outcome``: the call goes on in the background when it times out (commit), so
        a retriable failure left at the deadline says so in its hint.
        """
        deadline = time.monotonic() + budget
        while True:
            remaining = max(deadline - time.monotonic(), 0.001)
            try:
                return call(remaining)
            except (KafkaException, SystemError) as caught:
                exc = unwrap_callback_error(caught)
                if exc is None:
                    raise
                err = kafka_error(exc)
                retriable = (
                    err is not None and err.retriable() and not err.fatal() and not err.txn_requires_abort()
                )
                if retriable and time.monotonic() < deadline:
                    log.info("%r: %s: %s; retrying", self, doing, err.str() if err else exc)
                    continue
                if retriable and unknown_outcome:
                    raise BrokerUnavailableError(
                        f"{self!r}: {doing} did not complete within {budget:.1f}s: {err.str() if err else exc}",
                        hint="the commit's outcome is unknown: restart the processor (a producer opened with the same "
                        "transactional id settles it) and it resumes from the group's committed offsets",
                    ) from None
                raise self._error(exc, doing=doing) from None

    def _error(self, exc: KafkaException | KafkaError, *, topic: str | None = None, doing: str = "") -> Exception:
        """Map a librdkafka failure to fenced / abortable / retriable / fatal (module docstring)."""
        self._serve_errors()
        err = self._errors.fatal or kafka_error(exc)  # once fatal, the fatal error is the real cause
        if err is None:
            return super()._error(exc, topic=topic, doing=doing)
        if err.fatal():  # remembered: every later call raises it (librdkafka may not call error_cb first)
            self._errors.fatal = err
        return transaction_error(
            err,
            bootstrap=self._bootstrap,
            transactional_id=self.transactional_id,
            transaction_timeout_ms=self.transaction_timeout_ms,
            in_transaction=self._in_txn,
            topic=topic,
            doing=doing,
        )

    def _serve_errors(self) -> None:
        """Serve the client-level errors librdkafka queued while a call blocked (``error_cb`` runs only in ``poll``).

        A call that blocked through a broker restart and then failed (fenced: the restarted coordinator bumped the
        epoch) must be judged knowing the broker was unreachable meanwhile; those ``_TRANSPORT`` / ``_ALL_BROKERS_DOWN``
        reports are still in the queue (DECISIONS #49).
        """
        try:
            self._p.poll(0)
        except Exception:  # noqa: BLE001 - serving callbacks only; the error being mapped is what matters
            pass

    def _failure_error(self, failures: list[tuple[KafkaError, str]], delivered: int) -> Exception | None:
        """Failed deliveries inside a transaction: the transaction cannot commit, so most are abortable."""
        if self._errors.fatal is not None:
            return self._error(self._errors.fatal, doing="delivering records")
        # Records purged by abort() report _PURGE_*; served late, they are not this transaction's failures.
        failures = [f for f in failures if f[0].code() not in PURGED]
        if not failures:
            return None
        err, topic = failures[0]
        if err.code() in FENCED:
            return self._error(err, doing="delivering records")
        generic = super()._failure_error(failures, delivered)
        if isinstance(generic, (UnknownTopicError, RecordRejectedError)):
            generic.add_note("the transaction must be aborted; retrying the same records fails again")
            return generic
        return TransactionAbortableError(
            f"transactional producer {self.transactional_id!r}: {len(failures)} record(s) not delivered "
            f"({delivered} delivered); first: {topic!r}: {err.str()}"
        )


def _group_metadata(consumer: GroupConsumer | None) -> object:
    """``consumer``'s group metadata for ``send_offsets_to_transaction`` (generation, member id)."""
    from streams.log.kafka.consumer import KafkaGroupConsumer

    if not isinstance(consumer, KafkaGroupConsumer):
        raise ConfigError(
            f"committing offsets in a Kafka transaction needs the KafkaGroupConsumer they were read with, "
            f"not {type(consumer).__name__}",
            hint="pass the group consumer from the same KafkaLog as commit(offsets, consumer)",
        )
    return consumer.group_metadata()


def transaction_error(
    err: KafkaError,
    *,
    bootstrap: str,
    transactional_id: str,
    transaction_timeout_ms: int,
    in_transaction: bool,
    topic: str | None = None,
    doing: str = "",
) -> Exception:
    """The hftstream error for a transactional producer's librdkafka error (the module docstring's table)."""
    what = f"transactional producer {transactional_id!r} at {bootstrap}" + (f" ({doing})" if doing else "")
    code = err.code()
    if code in FENCED:
        return ProducerFencedError(
            f"{what} was fenced: {err.str()}. Another producer opened the same transactional id, or a "
            f"transaction stayed open longer than transaction.timeout.ms ({transaction_timeout_ms} ms)"
        )
    if code in AUTH:
        return translate(err, bootstrap, topic=topic, doing=doing)
    if err.fatal():
        return KafkaClientError(
            f"fatal error in {what}: {err.name()}: {err.str()}",
            hint="this producer cannot continue: restart the processor; if it recurs, read the broker log",
        )
    if err.txn_requires_abort():
        return TransactionAbortableError(f"{what}: the transaction must be aborted: {err.str()}")
    if code == KafkaError._STATE and not in_transaction:
        return KafkaClientError(f"{what}: no open transaction: {err.str()}", hint="call begin() before produce()")
    return translate(err, bootstrap, topic=topic, doing=doing)
