"""Turn librdkafka errors into hftstream's typed errors, naming the broker but never the credentials.

One table decides what the runtime does with a Kafka failure: an unknown topic stops with
:class:`~streams.errors.UnknownTopicError`; an unreachable or moving broker is a
:class:`~streams.errors.BrokerUnavailableError` (retry); an authentication problem is a
:class:`~streams.errors.ConfigError`; anything else non-retriable is a
:class:`~streams.errors.KafkaClientError`.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import KafkaError, KafkaException

from streams.errors import (
    BrokerUnavailableError,
    ConfigError,
    HftError,
    KafkaClientError,
    RetryableError,
    UnknownTopicError,
)

log = logging.getLogger("streams.log.kafka")
# A library logs; the application decides where logs go. Without this, Python's last-resort
# handler would print librdkafka's transient warnings ("... retrying") on every CLI run.
log.addHandler(logging.NullHandler())


def _codes(*names: str) -> frozenset[int]:
    # Some names only exist in newer librdkafka builds: skip the ones this build lacks.
    return frozenset(getattr(KafkaError, n) for n in names if hasattr(KafkaError, n))


UNKNOWN_TOPIC = _codes("UNKNOWN_TOPIC_OR_PART", "_UNKNOWN_TOPIC", "_UNKNOWN_PARTITION")
UNAVAILABLE = _codes(
    "_TRANSPORT", "_ALL_BROKERS_DOWN", "_TIMED_OUT", "_MSG_TIMED_OUT", "_TIMED_OUT_QUEUE", "_RESOLVE",
    "_WAIT_COORD", "_DESTROY", "REQUEST_TIMED_OUT", "NETWORK_EXCEPTION", "LEADER_NOT_AVAILABLE",
    "NOT_LEADER_FOR_PARTITION", "NOT_LEADER_OR_FOLLOWER", "COORDINATOR_NOT_AVAILABLE",
    "COORDINATOR_LOAD_IN_PROGRESS", "NOT_COORDINATOR", "BROKER_NOT_AVAILABLE", "NOT_ENOUGH_REPLICAS",
    "NOT_ENOUGH_REPLICAS_AFTER_APPEND", "KAFKA_STORAGE_ERROR", "UNKNOWN_LEADER_EPOCH", "FENCED_LEADER_EPOCH",
    "OFFSET_NOT_AVAILABLE",
)  # fmt: skip
# Leadership of a partition is moving (a topic just created, a broker restarting): a read retried
# a moment later succeeds. A subset of UNAVAILABLE, retried inside KafkaLog before anything is raised.
LEADER_MOVING = _codes(
    "LEADER_NOT_AVAILABLE", "NOT_LEADER_FOR_PARTITION", "NOT_LEADER_OR_FOLLOWER", "UNKNOWN_LEADER_EPOCH",
    "FENCED_LEADER_EPOCH", "OFFSET_NOT_AVAILABLE",
)  # fmt: skip
# The group (or transaction) coordinator is moving or still loading its partition of
# __consumer_offsets: a fresh or restarted broker answers these for a few seconds. Retriable:
# group admin requests are re-sent with backoff (KafkaLog._group_request).
COORDINATOR_MOVING = _codes("NOT_COORDINATOR", "COORDINATOR_LOAD_IN_PROGRESS", "COORDINATOR_NOT_AVAILABLE")
COORDINATOR_HINT = (
    "the group coordinator is still loading or moving (a broker that just started or restarted): "
    "retry in a few seconds; if it persists, check the broker log"
)
AUTH = _codes(
    "_AUTHENTICATION", "_SSL", "SASL_AUTHENTICATION_FAILED", "ILLEGAL_SASL_STATE", "UNSUPPORTED_SASL_MECHANISM",
    "TOPIC_AUTHORIZATION_FAILED", "GROUP_AUTHORIZATION_FAILED", "CLUSTER_AUTHORIZATION_FAILED",
    "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
)  # fmt: skip
PARTITION_EOF = KafkaError._PARTITION_EOF
# A transactional producer whose epoch is no longer current: a newer producer opened the same
# transactional id, or the coordinator aborted a transaction that outlived transaction.timeout.ms
# (Kafka 3.9 + librdkafka 2.x report both as the fatal ``_FENCED``).
FENCED = _codes("_FENCED", "PRODUCER_FENCED", "INVALID_PRODUCER_EPOCH", "INVALID_PRODUCER_ID_MAPPING")

AUTH_HINT = (
    "check HFTSTREAM_KAFKA_SECURITY_PROTOCOL, HFTSTREAM_KAFKA_SASL_* and HFTSTREAM_KAFKA_SSL_* "
    "and the broker's ACLs"
)


_UNAVAILABLE_AT: dict[str, float] = {}  # bootstrap -> when (monotonic) a client last found the broker unreachable


def note_unavailable(bootstrap: str) -> None:
    """Remember that a client of ``bootstrap`` just found the broker unreachable."""
    _UNAVAILABLE_AT[bootstrap] = time.monotonic()


def unavailable_within(bootstrap: str, seconds: float) -> bool:
    """True when some client of ``bootstrap`` in this process found the broker unreachable in the last ``seconds``."""
    at = _UNAVAILABLE_AT.get(bootstrap)
    return at is not None and time.monotonic() - at <= seconds


def coordinator_backoff(attempt: int) -> float:
    """Seconds before re-sending a request a moving coordinator refused (attempt 0, 1, ...): 0.1 s doubling, at most 2 s."""
    return min(2.0, 0.1 * 2**attempt)


def kafka_error(exc: KafkaException | KafkaError | BaseException) -> KafkaError | None:
    """The :class:`KafkaError` inside ``exc`` (or ``exc`` itself), if any."""
    if isinstance(exc, KafkaError):
        return exc
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0]
    return None


def unwrap_callback_error(exc: BaseException) -> KafkaException | None:
    """The :class:`KafkaException` behind a ``SystemError`` from a confluent-kafka call that serves callbacks.

    confluent-kafka 2.16 sets a fatal error (a fenced transactional producer) as the pending
    exception of ``flush()``/``poll()`` and then calls the Python delivery callback; the
    callback's first method call on the message fails with ``SystemError: ... returned a result
    with an exception set`` whose ``__cause__`` is the real ``KafkaException``.
    """
    if isinstance(exc, KafkaException):
        return exc
    cause = exc.__cause__
    while cause is not None:
        if isinstance(cause, KafkaException):
            return cause
        cause = cause.__cause__
    return None


def translate(
    exc: KafkaException | KafkaError | BaseException,
    bootstrap: str,
    *,
    topic: str | None = None,
    doing: str = "",
) -> HftError:
    """The hftstream error for a Kafka failure while ``doing`` something with ``topic``."""
    err = kafka_error(exc)
    what = f" ({doing})" if doing else ""
    if err is None:
        if isinstance(exc, TimeoutError):
            note_unavailable(bootstrap)
            return BrokerUnavailableError(f"Kafka broker at {bootstrap} did not answer in time{what}")
        return KafkaClientError(f"Kafka client failure at {bootstrap}{what}: {type(exc).__name__}: {exc}")
    code, text = err.code(), err.str()
    if code in UNKNOWN_TOPIC and topic is not None:
        return UnknownTopicError(topic)
    if code in AUTH:
        return ConfigError(f"Kafka at {bootstrap} refused the credentials or permissions{what}: {text}", hint=AUTH_HINT)
    if code in COORDINATOR_MOVING:
        return BrokerUnavailableError(f"Kafka at {bootstrap}: coordinator not ready{what}: {text}", hint=COORDINATOR_HINT)
    if code in UNAVAILABLE:
        note_unavailable(bootstrap)
        return BrokerUnavailableError(f"Kafka broker at {bootstrap} is unavailable{what}: {text}")
    if err.fatal():
        return KafkaClientError(
            f"fatal Kafka client error at {bootstrap}{what}: {text}",
            hint="the client cannot continue: recreate it (restart the process); if it recurs, read the broker log",
        )
    if err.retriable():
        return RetryableError(
            f"transient Kafka error at {bootstrap}{what}: {text}", hint="retry; if it persists, check the broker"
        )
    return KafkaClientError(f"Kafka error at {bootstrap}{what}: {err.name()}: {text}")


class ErrorSink:
    """librdkafka's ``error_cb``: logs client-level errors, keeps the fatal one to raise on the next call."""

    __slots__ = ("bootstrap", "fatal")

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.fatal: KafkaError | None = None

    def __call__(self, err: KafkaError) -> None:
        if err.fatal():
            self.fatal = err
        if err.code() in UNAVAILABLE:
            note_unavailable(self.bootstrap)
        log.warning("kafka client (%s): %s", self.bootstrap, err.str())

    def raise_if_fatal(self) -> None:
        """Raise the fatal error librdkafka reported, if any."""
        if self.fatal is not None:
            raise translate(self.fatal, self.bootstrap)
