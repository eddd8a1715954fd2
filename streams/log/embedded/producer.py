"""The embedded log's producer: buffer per partition, write each partition's batch at flush.

``produce()`` only picks the partition and appends a tuple to that partition's list; all
encoding happens in :meth:`EmbeddedProducer.flush`, one ``os.write`` per partition batch
(see :mod:`.writer`). A record is acknowledged when ``flush()`` returns. The buffer is
bounded: past 16,384 records or 4 MiB of keys and values, ``produce()`` flushes itself.

Partitioning is Kafka's: an explicit ``partition`` wins; a keyed record goes to
``murmur2(key) % partitions``; unkeyed records go round-robin, per producer and topic,
starting at partition 0 (deterministic).

A producer is not thread-safe: use one per thread (the writers underneath are).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from streams.errors import HftError, UnknownPartitionError
from streams.log.base import DeliveryCallback, Headers, Producer, Record
from streams.log.embedded.segment import MAX_RECORD_BYTES
from streams.log.partitioner import partition_for
from streams.native import NATIVE

if TYPE_CHECKING:
    from streams.log.embedded.log import EmbeddedLog

MAX_BUFFERED_RECORDS = 16_384
MAX_BUFFERED_BYTES = 4 << 20
_KEY_CACHE_LIMIT = 100_000
_INT64 = (-(1 << 63), (1 << 63) - 1)
# the native run of produce_built (DECISIONS #65); None: the Python loop (no native core, or a build without it)
_native_queue = getattr(NATIVE, "queue_built", None)


def _as_bytes(data: object, what: str) -> bytes:
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    raise TypeError(f"record {what} must be bytes or None, not {type(data).__name__}")


def _check_headers(headers: object) -> Headers:
    out = []
    for item in headers:  # type: ignore[attr-defined]
        name, value = item
        if not isinstance(name, str):
            raise TypeError(f"header name must be str, not {type(name).__name__}")
        out.append((name, _as_bytes(value, f"header {name!r}")))
    if len(out) > 0xFFFF:
        raise ValueError(f"a record may carry at most 65535 headers, not {len(out)}")
    return tuple(out)


class EmbeddedProducer(Producer):
    """Appends records to an :class:`~streams.log.embedded.EmbeddedLog` (see the module docstring)."""

    def __init__(self, log: EmbeddedLog, on_delivery: DeliveryCallback | None = None) -> None:
        self._log = log
        self._on_delivery = on_delivery
        self._partitions: dict[str, int] = {}
        self._buffers: dict[tuple[str, int], list[tuple[bytes | None, bytes | None, int, Headers | None]]] = {}
        self._rr: dict[str, int] = {}
        self._key_cache: dict[int, dict[bytes, int]] = {}
        self._count = 0
        self._bytes = 0
        self._max_records = MAX_BUFFERED_RECORDS
        self._max_bytes = MAX_BUFFERED_BYTES

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
        """Queue one record (see :meth:`streams.log.base.Producer.produce`).

        Raises :class:`~streams.errors.UnknownTopicError`, :class:`~streams.errors.UnknownPartitionError`,
        and ``TypeError`` / ``ValueError`` for a key, value, timestamp or header of the wrong kind.
        """
        n = self._partitions.get(topic)
        if n is None:
            n = self._partitions[topic] = self._log.partitions(topic)
        if value is not None and value.__class__ is not bytes:
            value = _as_bytes(value, "value")
        if key is not None and key.__class__ is not bytes:
            key = _as_bytes(key, "key")
        if partition is None:
            partition = self._default_partition(topic, key, n)
        elif partition.__class__ is not int or not 0 <= partition < n:
            self._check_partition(topic, partition)
        if timestamp_ns is None:
            timestamp_ns = time.time_ns()
        elif timestamp_ns.__class__ is not int or not _INT64[0] <= timestamp_ns <= _INT64[1]:
            raise TypeError(f"timestamp_ns must be an int64 of nanoseconds, not {timestamp_ns!r}")
        if headers:
            headers = _check_headers(headers)
        self._queue(topic, partition, key, value, timestamp_ns, headers)

    def produce_built(self, records: Iterable[tuple[str, bytes | None, bytes | None, int, Headers | None]]) -> None:
        """Queue records the runtime built (see :meth:`Producer.produce_built`): no per-record type checks."""
        if _native_queue is not None and records.__class__ is list:
            # runs of records queued natively (the same partitions, buffers and counters); each record it leaves
            # (an unknown topic, other types, one that fills the buffers or is too large) is queued below, in order
            i, end = 0, len(records)
            while i < end:
                i, self._count, self._bytes = _native_queue(
                    records, i, self._partitions, self._rr, self._buffers, self._count, self._bytes,
                    self._max_records, self._max_bytes, MAX_RECORD_BYTES,
                )
                if i >= end:
                    return
                self._queue_built(records[i])  # type: ignore[arg-type]
                i += 1
            return
        for rec in records:
            self._queue_built(rec)

    def _queue_built(self, rec: tuple[str, bytes | None, bytes | None, int, Headers | None]) -> None:
        topic, key, value, ts, headers = rec
        n = self._partitions.get(topic)
        if n is None:
            n = self._partitions[topic] = self._log.partitions(topic)
        self._queue(topic, self._default_partition(topic, key, n), key, value, ts, headers or None)

    def _default_partition(self, topic: str, key: bytes | None, n: int) -> int:
        """Kafka's choice: murmur2 of the key (cached), round-robin per topic without one."""
        if key is None:
            c = self._rr.get(topic, 0)
            self._rr[topic] = c + 1
            return c % n
        cache = self._key_cache.get(n)
        if cache is None:
            cache = self._key_cache[n] = {}
        partition = cache.get(key)
        if partition is None:
            if len(cache) >= _KEY_CACHE_LIMIT:
                cache.clear()
            partition = cache[key] = partition_for(key, n)
        return partition

    def _queue(self, topic: str, partition: int, key: bytes | None, value: bytes | None, ts: int, headers: Headers | None) -> None:
        """Buffer one checked record for its partition; flush when the buffer is full."""
        size = (len(value) if value is not None else 0) + (len(key) if key is not None else 0)
        if size > MAX_RECORD_BYTES:
            raise ValueError(f"record of {size} bytes exceeds the embedded log's limit of {MAX_RECORD_BYTES}")
        buf = self._buffers.get((topic, partition))
        if buf is None:
            buf = self._buffers[(topic, partition)] = []
        buf.append((key, value, ts, headers))
        self._count += 1
        self._bytes += size
        if self._count >= self._max_records or self._bytes >= self._max_bytes:
            self.flush()

    def _check_partition(self, topic: str, partition: object) -> None:
        if not isinstance(partition, int) or isinstance(partition, bool):
            raise TypeError(f"partition must be an int, not {type(partition).__name__}")
        n = self._partitions[topic] = self._log.partitions(topic)  # it may have grown
        if not 0 <= partition < n:
            raise UnknownPartitionError(topic, partition, n)

    def flush(self, timeout: float | None = None) -> int:
        """Write every buffered record; return how many were written.

        ``timeout`` is accepted for interface compatibility; local appends do not wait on
        anything but the disk. If a partition's write fails, its records are reported to
        ``on_delivery`` with the error (offset -1), the other partitions are still written,
        and the first error is raised at the end: a caller that sees ``flush`` return knows
        every record is on disk.
        """
        buffers, self._buffers = self._buffers, {}
        self._count = self._bytes = 0
        self._partitions.clear()  # pick up partition growth made by other processes
        written = 0
        failure: Exception | None = None
        deliver = self._on_delivery
        for (topic, partition), batch in buffers.items():
            try:
                first = self._log.writer(topic, partition).append(batch)
            except (HftError, OSError) as exc:
                failure = failure or exc
                if deliver is not None:
                    for key, value, ts, headers in batch:
                        deliver(exc, Record(topic, partition, -1, ts, key, value, headers or ()))
                continue
            written += len(batch)
            if deliver is not None:
                for i, (key, value, ts, headers) in enumerate(batch):
                    deliver(None, Record(topic, partition, first + i, ts, key, value, headers or ()))
        if failure is not None:
            raise failure
        return written

    def close(self) -> None:
        """Flush what is buffered."""
        self.flush()
