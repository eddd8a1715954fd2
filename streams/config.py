"""Configuration: frozen pydantic models that reject unknown fields, read from ``HFTSTREAM_*``.

One model per component. The one place that maps hftstream settings to librdkafka's
dotted keys is :meth:`KafkaSettings.librdkafka`; secrets are ``SecretStr`` and never
appear in ``repr``, logs or error messages.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("hftstream-data")


def tape_url_for(data: Path | str) -> str:
    """The tape used when no ClickHouse URL is given: chDB in ``<data>/tape`` (absolute path)."""
    return f"chdb://{(Path(data) / 'tape').resolve()}"


def log_url_for(data: Path | str) -> str:
    """The log URL used when none is given: the embedded log in ``<data>/log``."""
    return f"embedded://{Path(data) / 'log'}"


DEFAULT_LOG_URL = log_url_for(DEFAULT_DATA_DIR)


def _settings(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, frozen=True, extra="forbid", case_sensitive=False)


class HftSettings(BaseSettings):
    """Top-level settings shared by every command.

    ``HFTSTREAM_DATA``              local data folder (default ``./hftstream-data``): the embedded log in
                                    ``DATA/log`` unless ``HFTSTREAM_LOG`` names another log
    ``HFTSTREAM_LOG``               log URL: ``embedded://PATH`` (default ``embedded://DATA/log``) or
                                    ``kafka://host:port[,host:port]``
    ``HFTSTREAM_SCHEMA_REGISTRY``   Confluent schema registry URL; unset = single-object encoding, no server
    ``HFTSTREAM_CLICKHOUSE_URL``    the tape: ``http://host:8123`` (a ClickHouse server); unset = chDB in ``DATA/tape``
    ``HFTSTREAM_SCHEMAS_DIR``       where the ``.avsc`` files live (default: the repo's ``schemas/``)
    ``HFTSTREAM_TOPICS_FILE``       topic declarations (default: ``infra/topics.yaml``)
    """

    model_config = SettingsConfigDict(env_prefix="HFTSTREAM_", frozen=True, extra="ignore", case_sensitive=False)

    data: Path = DEFAULT_DATA_DIR
    log: str = DEFAULT_LOG_URL
    schema_registry: str | None = None
    clickhouse_url: str | None = None
    schemas_dir: Path | None = None
    topics_file: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _log_in_data(cls, values: Any) -> Any:
        """No log URL given: the embedded log lives in ``<data>/log``. An explicit log URL always wins."""
        if isinstance(values, dict) and not values.get("log"):
            values = {**values, "log": log_url_for(values.get("data") or DEFAULT_DATA_DIR)}
        return values

    @property
    def tape_url(self) -> str:
        """The tape in force: ``--clickhouse`` / ``HFTSTREAM_CLICKHOUSE_URL``, else chDB in ``DATA/tape``."""
        return self.clickhouse_url or tape_url_for(self.data)


class EmbeddedSettings(BaseSettings):
    """Embedded log tuning (``HFTSTREAM_EMBEDDED_*``; also ``?fsync=...`` on the URL).

    ``fsync``: ``never`` (the OS page cache holds acknowledged records: they survive
    a killed process but not a power cut), ``batch`` (fsync before every flush
    returns: survives a power cut), ``interval`` (fsync at most every
    ``fsync_interval_ms``).
    """

    model_config = _settings("HFTSTREAM_EMBEDDED_")

    fsync: Literal["never", "batch", "interval"] = "never"
    fsync_interval_ms: int = 1000
    segment_bytes: int = 64 * 1024 * 1024
    index_interval_bytes: int = 4096


class KafkaSettings(BaseSettings):
    """Kafka client security and tuning (``HFTSTREAM_KAFKA_*``).

    Bootstrap servers come from the ``kafka://`` URL (or ``HFTSTREAM_KAFKA_BOOTSTRAP``).
    ``replication_factor`` applies to topics created by ``create_topic`` (1 suits a single
    local broker; use 3 on a cluster). ``timeout_s`` bounds every admin and metadata request:
    a broker that does not answer within it raises ``BrokerUnavailableError``.
    """

    model_config = _settings("HFTSTREAM_KAFKA_")

    bootstrap: str | None = None
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: str | None = None
    ssl_certificate_location: str | None = None
    ssl_key_location: str | None = None
    ssl_key_password: SecretStr | None = None
    client_id: str = "hftstream"
    replication_factor: int = 1
    timeout_s: float = 10.0

    def librdkafka(self, bootstrap: str) -> dict[str, Any]:
        """The librdkafka configuration for these settings (contains secrets: never log it)."""
        conf: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "client.id": self.client_id,
            "security.protocol": self.security_protocol,
        }
        optional = {
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.sasl_username,
            "sasl.password": self.sasl_password.get_secret_value() if self.sasl_password else None,
            "ssl.ca.location": self.ssl_ca_location,
            "ssl.certificate.location": self.ssl_certificate_location,
            "ssl.key.location": self.ssl_key_location,
            "ssl.key.password": self.ssl_key_password.get_secret_value() if self.ssl_key_password else None,
        }
        conf.update({k: v for k, v in optional.items() if v is not None})
        return conf


def repo_root() -> Path:
    """The source checkout (editable install) this package runs from."""
    return Path(__file__).resolve().parent.parent


def data_dir(name: str) -> Path:
    """Locate a top-level data folder (``schemas``, ``infra``) in a checkout or an installed wheel."""
    for candidate in (repo_root() / name, Path(__file__).resolve().parent / "_data" / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(name)


def schemas_dir(settings: HftSettings | None = None) -> Path:
    """The folder of ``.avsc`` files in force."""
    s = settings or HftSettings()
    return Path(s.schemas_dir) if s.schemas_dir else data_dir("schemas")


def topics_file(settings: HftSettings | None = None) -> Path:
    """The topic declarations in force."""
    s = settings or HftSettings()
    return Path(s.topics_file) if s.topics_file else data_dir("infra") / "topics.yaml"


def env_flag(name: str) -> bool:
    """True when environment variable ``name`` is set to 1/true/yes."""
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes"}
