"""The embedded log: Kafka's semantics in a local directory (``embedded://PATH``).

Durable, partitioned, offset-addressed; segment files with a per-record CRC, sparse
offset and time indexes, a configurable fsync policy, torn tails truncated on open,
corruption reported as :class:`~streams.errors.LogCorruptionError` (a missing segment as
:class:`~streams.errors.MissingOffsetsError`); several processes may write and read one log
at once; transactions with ``read_committed`` readers (:mod:`.transactional`). Modules:

* :mod:`.segment`     record framing, CRC, encoding, parsing, damage classification
* :mod:`.index`       sparse ``.index`` / ``.timeindex`` files
* :mod:`.partition`   a partition directory: watermarks, seeks, tail scans
* :mod:`.writer`      appending (flock per partition, recovery of torn tails)
* :mod:`.producer`    :class:`EmbeddedProducer`
* :mod:`.reader`      :class:`EmbeddedReader`, :class:`EmbeddedGroupConsumer`
* :mod:`.offsets`     committed consumer-group offsets (and the commit point of transactions)
* :mod:`.txn`         transaction files: last stable offsets, markers, epochs, commit points
* :mod:`.transactional` :class:`EmbeddedTransactionalProducer`: exactly-once (protocol in its docstring)
* :mod:`.log`         :class:`EmbeddedLog`: topics, clients
* :mod:`.cleaner`     retention, compaction, index rebuilds
* :mod:`.maintenance` check / repair / compact / retain (``hftstream log ...``)
"""

from streams.log.embedded.log import EmbeddedLog

__all__ = ["EmbeddedLog"]
