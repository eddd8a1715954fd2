"""Bytes in, bytes out: how the runtime turns log records into :class:`Message` and outputs back into records.

The processor never sees bytes. This module decodes each input (any failure becomes a
:class:`~streams.errors.PoisonError` with a reason code), encodes each :class:`Output`
with the input's lineage headers and timestamp, and builds the dead letter for an input
that could not be decoded or was rejected: the original key, value and headers, the
reason, and the lineage, as a ``hftstream.dlq.DeadLetter`` on ``dlq.<processor>``.

Dead letters carry the *source record's* timestamp in ``ts_ns`` (the event time at which
the record was refused), never the wall clock, so a rerun writes byte-identical dead letters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from streams.errors import PoisonError
from streams.lineage import lineage_headers
from streams.log.base import Headers, Record
from streams.native import NATIVE
from streams.processors.base import Message, Output, Result
from streams.serde import Serde

DEAD_LETTER_SCHEMA = "hftstream.dlq.DeadLetter"
TOMBSTONE = "TOMBSTONE"

# (topic, key, value, timestamp_ns, headers): what the runtime hands to a producer
Encoded = tuple[str, bytes | None, bytes, int, Headers]

_new_message = tuple.__new__


def dlq_topic(processor: str) -> str:
    """The dead-letter topic of ``processor``."""
    return f"dlq.{processor}"


class RuntimeCodec:
    """Decode inputs and encode outputs and dead letters for one processor."""

    def __init__(self, serde: Serde, processor: str) -> None:
        self.serde = serde
        self.processor = processor
        self.dlq = dlq_topic(processor)
        self._decode = serde.decode
        self._encode = serde.encode
        self._native_decoders = serde.native_decoders if NATIVE is not None else None
        # name -> (prefix, native codec), handed to the native batch encode (None: no native core, or a registry;
        # also a build of the same ABI from before the function existed)
        self._native_encoders = serde.native_encoders if hasattr(NATIVE, "encode_outputs") else None

    def decode_batch(self, records: Sequence[Record]) -> list[Message | None] | None:
        """The native core's :class:`Message` for each record, ``None`` where :meth:`decode` must decide (tombstones,
        damage, other framings: it raises the :class:`PoisonError`); ``None`` for the batch without the native core."""
        if self._native_decoders is None or records.__class__ is not list:
            return None
        return NATIVE.decode_messages(records, self._native_decoders, Message)  # type: ignore[union-attr]

    @property
    def native_encode(self) -> bool:
        """True when :meth:`encode_outputs` can build outputs natively (the native core, no registry)."""
        return self._native_encoders is not None

    def encode_outputs(self, records: list[Record], results: list[Result], start: int, out: list[Encoded]) -> tuple[int, int, int, int]:
        """The output loop of :func:`~streams.runtime.task.apply_records` in one native call, from ``results[start]``
        on: each output of each record whose result is a list or tuple of :class:`Output`, exactly as :meth:`encode`
        builds it with :func:`~streams.lineage.lineage_headers`, appended to ``out`` in input order, up to the first
        record the native core does not take whole (a dead letter or tombstone, an unknown schema, a value its codec
        leaves to fastavro, another key type...). Returns ``(stop, with_output, without_output, records_out)`` for
        ``records[start:stop]``; the caller handles ``records[stop]`` in Python (its error, its dead letter) and calls
        again from ``stop + 1`` (DECISIONS #65). Only when :attr:`native_encode`."""
        return NATIVE.encode_outputs(records, results, start, self._native_encoders, Record, Output, out)  # type: ignore[union-attr]

    def decode(self, rec: Record) -> Message:
        """The :class:`Message` for ``rec``. Raises :class:`PoisonError` (DECODE_ERROR, UNKNOWN_SCHEMA...)."""
        if rec.value is None:
            raise _Tombstone()
        decoded = self._decode(rec.value)
        return _new_message(
            Message, (rec.topic, rec.partition, rec.offset, rec.timestamp_ns, rec.key, decoded[0], decoded[1])
        )

    def encode(self, out: Output, src: Record, lineage: Headers) -> Encoded:
        """One output as a record: UTF-8 key, Avro value, the input's timestamp and lineage."""
        key = out.key.encode() if out.key.__class__ is str else out.key  # type: ignore[union-attr]
        value = self._encode(out.schema, out.value, topic=out.topic)
        ts = src.timestamp_ns if out.timestamp_ns is None else out.timestamp_ns
        return out.topic, key, value, ts, lineage  # type: ignore[return-value]

    def dead_letter(self, src: Record, exc: PoisonError) -> Encoded:
        """The ``hftstream.dlq.DeadLetter`` record for ``src``, refused with ``exc``."""
        value: dict[str, Any] = {
            "processor": self.processor,
            "reason_code": getattr(exc, "reason_code", "POISON"),
            "reason": str(exc),
            "source_topic": src.topic,
            "source_partition": src.partition,
            "source_offset": src.offset,
            "source_ts_ns": src.timestamp_ns,
            "key": src.key,
            "value": src.value if src.value is not None else b"",
            "headers": [{"key": k, "value": v} for k, v in src.headers],
            "ts_ns": src.timestamp_ns,
        }
        data = self._encode(DEAD_LETTER_SCHEMA, value, topic=self.dlq)
        return self.dlq, src.topic.encode(), data, src.timestamp_ns, lineage_headers(src)


class _Tombstone(PoisonError):
    """A record with a null value: deleted state upstream. Counted, not dead-lettered."""

    reason_code = TOMBSTONE

    def __init__(self) -> None:
        super().__init__("tombstone (null value)")
