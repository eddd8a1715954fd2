"""The testcontainers path of the Kafka fixture: a KRaft ``KafkaContainer`` where a Docker engine answers.

Skipped, with the reason, on machines without Docker ("no Docker engine answers on this
machine; the same contract runs against the local KRaft broker in test_log_contract.py").
"""

from __future__ import annotations

import time

import pytest

from streams.log import TopicSpec
from streams.log.kafka import KafkaLog

pytestmark = pytest.mark.kafka


def test_kafka_container_round_trip(kafka_container: str) -> None:
    with KafkaLog(kafka_container) as log:
        log.create_topic(TopicSpec("tc-probe", 3))
        with log.producer() as producer:
            for i in range(30):
                producer.produce("tc-probe", b"v%d" % i, b"k%d" % i)
            assert producer.flush() == 30
        assert sum(log.watermarks("tc-probe", p)[1] for p in range(3)) == 30
        with log.reader([("tc-probe", p, 0) for p in range(3)]) as reader:
            got: list[bytes | None] = []
            deadline = time.monotonic() + 20
            while len(got) < 30 and time.monotonic() < deadline:
                got.extend(r.value for r in reader.poll(1000, timeout=0.5))
        assert sorted(v or b"" for v in got) == sorted(b"v%d" % i for i in range(30))
