"""The embedded log: Kafka's semantics in a local directory (``embedded://PATH``).

Durable, partitioned, offset-addressed; segment files with a per-record CRC, sparse
offset and time indexes, a configurable fsync policy, torn tails truncated on open,
corruption reported as :class:`~streams.errors.LogCorruptionError`; several processes may
write and read one log at once. Modules:

* :mod:`.segment`     record framing, CRC, encoding, parsing, damage classification
* :mod:`.index`       sparse ``.index`` / ``.timeindex`` files
* :mod:`.partition`   a partition directory: watermarks, seeks, tail scans
* :mod:`.writer`      appending (flock per partition, recovery of torn tails)
* :mod:`.producer`    :class:`EmbeddedProducer`
* :mod:`.reader`      :class:`EmbeddedReader`, :class:`EmbeddedGroupConsumer`
* :mod:`.offsets`     committed consumer-group offsets
* :mod:`.log`         :class:`EmbeddedLog`: topics, clients
* :mod:`.cleaner`     retention, compaction, index rebuilds
* :mod:`.maintenance` check / repair / compact / retain (``hftstream log ...``)
"""

from streams.log.embedded.log import EmbeddedLog

__all__ = ["EmbeddedLog"]
