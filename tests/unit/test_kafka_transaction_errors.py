"""How a transactional producer classifies librdkafka errors (pure logic: no broker needed).

librdkafka's transactional API sets three flags on an error (fatal, retriable,
txn_requires_abort); the runtime needs four outcomes: fenced, abort-and-retry, retry,
stop. The broker-side cases (a real fence, a rejected record) are in
tests/integration/test_kafka_transactions.py.
"""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError

from streams.errors import (
    BrokerUnavailableError,
    ConfigError,
    KafkaClientError,
    ProducerFencedError,
    RetryableError,
    TransactionAbortableError,
)
from streams.log.kafka.transactions import transaction_error, transactional_config

SECRET = "pw-never-printed"


def classify(err: KafkaError, *, in_transaction: bool = True) -> Exception:
    return transaction_error(
        err,
        bootstrap="broker:9092",
        transactional_id="normalize-0",
        transaction_timeout_ms=20_000,
        in_transaction=in_transaction,
        doing="committing the transaction",
    )


@pytest.mark.parametrize("code", ["_FENCED", "PRODUCER_FENCED", "INVALID_PRODUCER_EPOCH"])
def test_fencing_codes_are_producer_fenced(code: str) -> None:
    exc = classify(KafkaError(getattr(KafkaError, code), "fenced by newer producer instance", fatal=True))
    assert isinstance(exc, ProducerFencedError)
    assert "normalize-0" in str(exc) and "broker:9092" in str(exc)
    assert "transaction.timeout.ms (20000 ms)" in str(exc)  # the other cause librdkafka reports as _FENCED
    assert "instance" in exc.hint


def test_abortable_error_says_abort() -> None:
    exc = classify(KafkaError(KafkaError._MSG_TIMED_OUT, "1 message timed out", txn_requires_abort=True))
    assert isinstance(exc, TransactionAbortableError) and isinstance(exc, RetryableError)
    assert exc.hint


def test_other_fatal_errors_stop_without_claiming_a_fence() -> None:
    exc = classify(KafkaError(KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER, "sequence gap", fatal=True))
    assert isinstance(exc, KafkaClientError) and not isinstance(exc, ProducerFencedError)
    assert "restart" in exc.hint


def test_retriable_error_left_over_is_retryable() -> None:
    exc = classify(KafkaError(KafkaError._TIMED_OUT, "timed out", retriable=True))
    assert isinstance(exc, BrokerUnavailableError)


def test_auth_errors_are_configuration_errors() -> None:
    exc = classify(KafkaError(KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, "not authorized", fatal=True))
    assert isinstance(exc, ConfigError)


def test_state_error_outside_a_transaction_says_begin() -> None:
    exc = classify(KafkaError(KafkaError._STATE, "no transaction in progress"), in_transaction=False)
    assert isinstance(exc, KafkaClientError) and "begin()" in exc.hint


def test_message_timeout_must_be_below_the_transaction_timeout() -> None:
    conf = transactional_config("p-0")
    assert conf["message.timeout.ms"] < conf["transaction.timeout.ms"]
    assert conf["retry.backoff.ms"] == 10
    with pytest.raises(ConfigError):
        transactional_config("p-0", transaction_timeout_ms=10_000, message_timeout_ms=10_000)
    with pytest.raises(ConfigError):
        transactional_config("p-0", message_timeout_ms=1)  # not above linger.ms
    with pytest.raises(ConfigError):
        transactional_config("")
