"""The log abstraction. :func:`open_log` turns a URL into a backend.

``embedded://PATH[?fsync=never|batch|interval]``  durable log on local disk (default)
``kafka://host:port[,host:port]``               Apache Kafka (or any Kafka-protocol broker)
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from streams.errors import ConfigError
from streams.log.base import (
    GroupConsumer,
    Headers,
    Log,
    Producer,
    Reader,
    Record,
    TopicChange,
    TopicInfo,
    TopicPartition,
    TopicSpec,
)

__all__ = [
    "GroupConsumer",
    "Headers",
    "Log",
    "Producer",
    "Reader",
    "Record",
    "TopicChange",
    "TopicInfo",
    "TopicPartition",
    "TopicSpec",
    "open_log",
]


def open_log(url: str) -> Log:
    """Open the log named by ``url``. Raises :class:`~streams.errors.ConfigError` on a bad URL."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigError(
            f"log URL {url!r} has no scheme",
            hint="use embedded://PATH (e.g. embedded://hftstream-data/log) or kafka://HOST:PORT",
        )
    if scheme == "embedded":
        from streams.log.embedded import EmbeddedLog

        path, _, query = rest.partition("?")
        if not path:
            raise ConfigError(f"log URL {url!r} names no directory", hint="use embedded:///absolute/path or embedded://relative/path")
        return EmbeddedLog(path, **dict(parse_qsl(query)))
    if scheme == "kafka":
        from streams.log.kafka import KafkaLog

        parts = urlsplit(url)
        bootstrap = parts.netloc or parts.path
        if not bootstrap:
            raise ConfigError(f"log URL {url!r} names no broker", hint="use kafka://HOST:PORT[,HOST:PORT]")
        return KafkaLog(bootstrap)
    raise ConfigError(
        f"unknown log scheme {scheme!r} in {url!r}",
        hint="use embedded://PATH or kafka://HOST:PORT",
    )
