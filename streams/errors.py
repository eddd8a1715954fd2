"""One root for every error hftstream raises on purpose.

The split matters to the runtime:

* :class:`RetryableError` -- the world is temporarily unavailable (broker down,
  server busy). Retry the batch; never dead-letter.
* :class:`PoisonError` -- this input can never be processed (bad bytes, unknown
  schema, invalid value). Route it to ``dlq.<processor>`` with the reason and go on.
* everything else (:class:`ConfigError`, :class:`LogCorruptionError`,
  :class:`UnknownTopicError`) -- stop and tell the operator what to do.

Every error carries a one-line ``hint`` that the CLI prints under the message,
so an operator never has to read a traceback.
"""

from __future__ import annotations


class HftError(Exception):
    """Base of all hftstream errors. ``hint`` says what the user should do next."""

    hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class ConfigError(HftError):
    """Bad configuration: an unknown URL scheme, a missing file, an invalid option."""

    hint = "check the option or HFTSTREAM_* environment variable named in the message"


class RetryableError(HftError):
    """A transient failure: retry the same work later."""


class BrokerUnavailableError(RetryableError):
    """The Kafka broker (or another server) did not answer in time."""

    hint = "check that the broker is running and reachable (hftstream dev kafka starts a local one)"


class UnknownTopicError(HftError):
    """The topic does not exist on the configured log."""

    def __init__(self, topic: str, *, hint: str | None = None) -> None:
        super().__init__(
            f"unknown topic {topic!r}",
            hint=hint or "run `hftstream topics list` to see what exists, or `hftstream topics apply` to create the declared topics",
        )
        self.topic = topic


class UnknownPartitionError(HftError):
    """The partition number is out of range for the topic."""

    def __init__(self, topic: str, partition: int, partitions: int) -> None:
        super().__init__(
            f"topic {topic!r} has {partitions} partition(s); partition {partition} does not exist",
            hint=f"use a partition between 0 and {partitions - 1}",
        )
        self.topic, self.partition, self.partitions = topic, partition, partitions


class LogCorruptionError(HftError):
    """A stored record failed its CRC or framing check. Names the file and the offset."""

    def __init__(self, path: str, offset: int, position: int, reason: str) -> None:
        super().__init__(
            f"corrupt record in {path} at offset {offset} (byte {position}): {reason}",
            hint="see RUNBOOK.md 'Corrupt segment': `hftstream log check` lists damage, "
            "`hftstream log repair` truncates the partition at the first bad record",
        )
        self.path, self.offset, self.position, self.reason = path, offset, position, reason


class MissingOffsetsError(LogCorruptionError):
    """Offsets in the middle of a partition that no segment holds (a segment file was deleted or cut short).

    ``first``..``last`` (inclusive) are the missing offsets; ``path`` is the segment after the hole.
    """

    def __init__(self, topic: str, partition: int, first: int, last: int, path: str) -> None:
        HftError.__init__(
            self,
            f"offsets {first}..{last} of {topic}/{partition} are missing: no segment holds them "
            f"(the next segment is {path}); the records after them are intact",
            hint="see RUNBOOK.md 'Corrupt segment': `hftstream log check` lists the hole, "
            f"`hftstream log repair {topic} {partition}` declares it lost so readers go on past it",
        )
        self.path, self.offset, self.position = path, first, 0
        self.reason = f"offsets {first}..{last} missing"
        self.topic, self.partition, self.first, self.last = topic, partition, first, last


class LogWriteError(HftError):
    """Writing the embedded log's files failed (disk full, permissions, an I/O error)."""

    hint = "check free space and permissions of the log directory (df -h, ls -l); records whose flush() failed were not written"


class LogLockedError(RetryableError):
    """Another process holds an exclusive lock that this operation needs."""


class PoisonError(HftError):
    """This input can never be processed; it belongs in the dead-letter topic."""

    reason_code: str = "POISON"


class DecodeError(PoisonError):
    """Bytes that are not a valid Avro record in a framing we know."""

    reason_code = "DECODE_ERROR"
    hint = "the producer wrote bytes that are not hftstream Avro; inspect them with `hftstream replay --format json`"


class UnknownSchemaError(DecodeError):
    """The framing is valid but its fingerprint / schema id resolves to no schema we know."""

    reason_code = "UNKNOWN_SCHEMA"
    hint = "the record was written with a schema not in schemas/ (or not in the registry); update schemas/ or point --schema-registry at the right registry"


class ValidationError(PoisonError):
    """A decoded record whose values break a domain rule (negative quantity, unknown symbol...)."""

    reason_code = "INVALID_VALUE"


class SchemaCompatibilityError(HftError):
    """A schema change breaks backward compatibility with its last released version."""

    hint = "make the change compatible (give new fields defaults, keep field types or use Avro promotions, keep enum symbols), or release a new record name"


class DeliveryError(RetryableError):
    """Produced records were not acknowledged (broker down, timeout): nothing after the last good flush is durable."""

    hint = "check the broker (hftstream dev kafka starts a local one), then produce the batch again from the last commit"


class RecordRejectedError(HftError):
    """The broker refused produced records for good (too large, invalid, not authorised): retrying will not help."""

    hint = "fix the record or the topic configuration (e.g. max.message.bytes) named in the message"


class TransactionAbortableError(RetryableError):
    """The open transaction cannot commit (a broker hiccup, a timeout): abort it, rewind to the last commit, go on."""

    hint = "transient: the runtime aborts the transaction and re-processes from the last commit"


class ProducerFencedError(HftError):
    """Another producer opened the same transactional id: this instance is a zombie and must stop."""

    hint = (
        "another instance runs with the same --instance-id; stop one of them "
        "(each running instance of a processor needs its own instance id)"
    )


class KafkaClientError(HftError):
    """A Kafka client failure that is neither transient nor about a topic (a fatal client state, a bad request)."""

    hint = "read the Kafka error named in the message; check the HFTSTREAM_KAFKA_* settings and the broker version"
