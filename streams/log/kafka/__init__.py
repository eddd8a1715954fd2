"""The Kafka backend of the log (confluent-kafka / librdkafka).

``open_log("kafka://host:port[,host:port]")`` returns a :class:`KafkaLog`. See
:mod:`streams.log.kafka.log` (topics, offsets, configuration and secrets),
:mod:`streams.log.kafka.producer` (delivery guarantees, timestamps) and
:mod:`streams.log.kafka.consumer` (readers and consumer groups) and
:mod:`streams.log.kafka.transactions` (exactly-once: the transactional producer).
"""

from __future__ import annotations

from streams.log.kafka.consumer import KafkaGroupConsumer, KafkaReader, consumer_config
from streams.log.kafka.log import KafkaLog, is_internal_topic, topic_config
from streams.log.kafka.producer import KafkaProducer, producer_config
from streams.log.kafka.transactions import KafkaTransactionalProducer, transactional_config

__all__ = [
    "KafkaGroupConsumer",
    "KafkaLog",
    "KafkaProducer",
    "KafkaReader",
    "KafkaTransactionalProducer",
    "consumer_config",
    "is_internal_topic",
    "producer_config",
    "topic_config",
    "transactional_config",
]
