"""Exactly-once on the embedded log: :class:`EmbeddedTransactionalProducer`.

A transaction's records, and the consumer offsets sent with it, become visible together or
not at all, whatever instant the process dies at. The pieces (files in :mod:`.txn` and
:mod:`.txlog`; DECISIONS #53):

* every partition has a **last stable offset** (LSO, ``<partition>/~lso``): ``read_committed``
  readers read it (one ``pread`` per partition per poll) and never return a record at or
  beyond it. Every non-transactional append stores its new end there (one ``pwrite``).
  Bytes 8-15 of the same file point at the record of the transaction open on the
  partition (0: none);
* :meth:`~EmbeddedTransactionalProducer.produce` only buffers records in memory, per
  partition; :meth:`~EmbeddedTransactionalProducer.abort` drops the buffer. Nothing of an
  open transaction is on disk, so nothing has to be undone for an abort;
* opening the producer bumps the id's **epoch** (``__transactions/<id>.json``, under the
  ``<id>.lock`` flock) and then resolves every open transaction of the id left in the log
  (and every protocol-1 marker of any id): a previous holder of the id (alive or dead) can
  no longer commit.

:meth:`~EmbeddedTransactionalProducer.commit` (``seq`` counts the producer's transactions):

a. take the flock of every partition the transaction writes, in sorted ``(topic, partition)``
   order, and hold them to the end (taking a flock resolves a transaction a dead producer
   left there, see :mod:`.writer`); append **one** record to the log directory's transaction
   log, ``{id, epoch, seq, group, parts: [[topic, partition, start], ...]}`` (one ``write``;
   fsynced unless ``fsync=never``) -- step ``"logged"``; then point each partition's
   ``~lso`` at it, keeping the LSO at the partition's end (one 16-byte ``pwrite`` each) --
   ``"marked"``;
b. append the buffered records (the LSO stays at ``start``: readers do not see them) --
   ``"appended"``;
c. **the commit point**, one atomic file replace under ``<id>.lock``, after checking that the
   id's epoch is still ours (else :class:`~streams.errors.ProducerFencedError`, and the
   records are rolled back): with a ``consumer``, its group's offsets file
   (:mod:`.offsets`) gains the offsets *and* ``"txn": {id: [epoch, seq]}``; without one,
   ``__transactions/<id>.json`` gains ``"committed": [epoch, seq]``. Exactly one of the
   two per transaction: the record's ``group`` says which one to look at. fsynced unless
   ``fsync=never`` -- ``"committed"``;
d. per partition, LSO = its new end and no open transaction (one ``pwrite``; after the first
   of several: ``"partly-visible"``); release the flocks.

A failure before (c) rolls the partitions back to their starts (truncate, delete segments
created since) before the flocks are released; if even that fails the producer is
unusable and the pointers stay for the next writer to resolve.

A crash (SIGKILL) after ``"logged"`` and before any pointer leaves a record nobody points at
(harmless: nothing was appended). Between ``"marked"`` and (c) it leaves partitions pointing
at a transaction that is not committed; between (c) and the end of (d), at one that is.
Whoever next takes such a partition's flock to write (any producer, transactional or not)
or re-opens the same transactional id resolves it: not committed -> truncate back to the
start; committed -> LSO = end. Either way the pointer is cleared. Meanwhile the LSO stays at
the start, so a ``read_committed`` reader never sees a record that is later rolled back (a
``read_uncommitted`` one may, as with Kafka's aborted records; after a rollback the offsets
are written again by the next append).

Durability: with ``fsync=batch`` every step is fsynced before the next, so a power cut
is as safe as a SIGKILL; with ``fsync=never`` (the default) a SIGKILL is, and nothing is fsynced.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Mapping
from contextlib import ExitStack
from typing import TYPE_CHECKING

from streams.errors import ConfigError, HftError, ProducerFencedError
from streams.log.base import GroupConsumer, Headers, TopicPartition, TransactionalProducer
from streams.log.embedded.producer import EmbeddedProducer
from streams.log.embedded.txn import Marker, id_lock, load_state, store_state, transaction_record

if TYPE_CHECKING:
    from streams.log.embedded.log import EmbeddedLog
    from streams.log.embedded.writer import PartitionWriter

logger = logging.getLogger("streams.log.embedded")

#: Called with ``"logged"``, ``"marked"``, ``"appended"``, ``"committed"`` and ``"partly-visible"``
#: at those steps of every commit (see the module docstring). ``None`` in production; crash
#: tests set it (in a child process) to SIGKILL themselves at an exact step, and
#: ``HFTSTREAM_FAULT=txn-<step>:n`` does so in the runtime (:mod:`streams.runtime.faults`).
STEP_HOOK: Callable[[str], None] | None = None
STEPS = ("logged", "marked", "appended", "committed", "partly-visible")


class EmbeddedTransactionalProducer(EmbeddedProducer, TransactionalProducer):
    """A transactional producer on an :class:`~streams.log.embedded.EmbeddedLog` (see the module docstring).

    Not thread-safe: one per thread (each with its own transactional id).
    """

    def __init__(self, log: EmbeddedLog, transactional_id: str) -> None:
        super().__init__(log)
        self.transactional_id = transactional_id
        self._root = log.root
        self._durable = log.settings.fsync != "never"
        self._max_records = self._max_bytes = sys.maxsize  # a transaction's records stay buffered until commit
        self._open = False
        self._fatal: HftError | None = None
        self._seq = 0
        with id_lock(self._root, transactional_id):
            epoch, committed = load_state(self._root, transactional_id)
            self.epoch = epoch + 1
            store_state(self._root, transactional_id, self.epoch, committed)
        for topic, partition, marker in log.transaction_markers():
            if marker.transactional_id == transactional_id or marker.legacy:
                with log.writer(topic, partition).locked():  # resolves it (waits for a live zombie's commit)
                    pass

    # -- the transaction ---------------------------------------------------------------

    @property
    def in_transaction(self) -> bool:
        """True between :meth:`begin` and :meth:`commit` / :meth:`abort`."""
        return self._open

    def begin(self) -> None:
        """Open a transaction."""
        self._usable()
        if self._open:
            raise ConfigError(
                f"transactional producer {self.transactional_id!r} already has an open transaction",
                hint="commit() or abort() it before begin()",
            )
        self._open = True

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
        """Buffer one record in the open transaction (see :meth:`EmbeddedProducer.produce`)."""
        if not self._open:
            self._usable()
            raise ConfigError(
                f"produce() outside a transaction on transactional producer {self.transactional_id!r}",
                hint="call begin() first",
            )
        super().produce(topic, value, key, partition=partition, timestamp_ns=timestamp_ns, headers=headers)

    def produce_built(self, records: Iterable[tuple[str, bytes | None, bytes | None, int, Headers | None]]) -> None:
        """Buffer runtime-built records in the open transaction (see :meth:`EmbeddedProducer.produce_built`)."""
        if not self._open:
            self._usable()
            raise ConfigError(
                f"produce() outside a transaction on transactional producer {self.transactional_id!r}",
                hint="call begin() first",
            )
        super().produce_built(records)

    def flush(self, timeout: float | None = None) -> int:
        """A no-op: a transaction's records are written by :meth:`commit` (invisible until then either way)."""
        return 0

    def abort(self, timeout: float | None = None) -> None:
        """Drop the open transaction's records; committed offsets stay where they were."""
        self._drop()
        self._open = False

    def close(self) -> None:
        """Abort an open transaction (as Kafka's close does) and release nothing else: writers belong to the log."""
        if self._open:
            self.abort()

    def _drop(self) -> None:
        self._buffers = {}
        self._count = self._bytes = 0

    def _usable(self) -> None:
        if self._fatal is not None:
            raise self._fatal

    def commit(
        self,
        offsets: Mapping[TopicPartition, int] | None = None,
        consumer: GroupConsumer | None = None,
        timeout: float | None = None,
    ) -> None:
        """Commit the records and ``offsets`` (for ``consumer``'s group) atomically; see the module docstring.

        ``offsets=None`` with a consumer commits its current positions. Raises
        :class:`~streams.errors.ProducerFencedError` when another producer opened this
        transactional id (fatal: nothing of this transaction is visible), and
        :class:`~streams.errors.LogWriteError` when the disk refuses (the transaction is rolled
        back and closed; the producer stays usable).
        """
        self._usable()
        if not self._open:
            raise ConfigError(f"commit() without an open transaction on {self.transactional_id!r}", hint="call begin() first")
        group, offsets = self._offsets_for(offsets, consumer)
        buffers = self._buffers
        self._drop()
        self._open = False
        self._seq += 1
        seq = self._seq
        keys = sorted(buffers)
        marked: list[tuple[PartitionWriter, int]] = []
        with ExitStack() as stack:
            try:
                locked: list[tuple[PartitionWriter, int]] = []
                for topic, partition in keys:  # a. lock in order, one record, point every partition at it
                    w = self._log.writer(topic, partition)
                    stack.enter_context(w.locked())
                    locked.append((w, w.end))
                record = transaction_record(
                    Marker(self.transactional_id, self.epoch, seq, 0, group),
                    [(t, p, start) for (t, p), (_, start) in zip(keys, locked, strict=True)],
                )
                ref = self._log.txlog().append(record)
                if STEP_HOOK is not None:
                    STEP_HOOK("logged")
                for w, start in locked:
                    w.mark(start, ref, durable=self._durable)
                    marked.append((w, start))
                if STEP_HOOK is not None:
                    STEP_HOOK("marked")
                for (w, _), key in zip(marked, keys, strict=True):  # b. append, invisible
                    w.write(buffers[key])
                if STEP_HOOK is not None:
                    STEP_HOOK("appended")
                with id_lock(self._root, self.transactional_id):  # c. the commit point
                    epoch, committed = load_state(self._root, self.transactional_id)
                    if epoch != self.epoch:
                        raise ProducerFencedError(
                            f"transactional id {self.transactional_id!r} was opened by another producer "
                            f"(epoch {epoch}, this one is {self.epoch}): this producer is fenced; its transaction was rolled back"
                        )
                    if group is None:
                        store_state(self._root, self.transactional_id, self.epoch, (self.epoch, seq), durable=self._durable)
                    else:
                        self._log.offsets_store().commit(group, dict(offsets), (self.transactional_id, self.epoch, seq))
            except BaseException as exc:
                self._roll_back(marked)
                if isinstance(exc, ProducerFencedError):
                    self._fatal = exc
                raise
            if STEP_HOOK is not None:
                STEP_HOOK("committed")
            for i, (w, _) in enumerate(marked):  # d. make it visible
                try:
                    w.set_stable(w.end)
                except OSError as exc:  # committed all the same: the next writer there rolls forward
                    logger.warning("%s: could not finish committed transaction %d.%d: %s", w.directory, self.epoch, seq, exc)
                if i == 0 and len(marked) > 1 and STEP_HOOK is not None:
                    STEP_HOOK("partly-visible")

    def _offsets_for(
        self, offsets: Mapping[TopicPartition, int] | None, consumer: GroupConsumer | None
    ) -> tuple[str | None, dict[TopicPartition, int]]:
        from streams.log.embedded.reader import EmbeddedGroupConsumer

        if consumer is None:
            if offsets:
                raise ConfigError(
                    "commit() got offsets but no consumer: whose group should they be committed for?",
                    hint="pass the GroupConsumer the offsets were read with: commit(offsets, consumer)",
                )
            return None, {}
        if not isinstance(consumer, EmbeddedGroupConsumer) or consumer.store_directory != self._log.offsets_store().directory:
            raise ConfigError(
                "commit() needs a group consumer of the same embedded log",
                hint="create the consumer with log.group_consumer(...) on the log this producer writes to",
            )
        if offsets is None:
            offsets = {tp: consumer.position(*tp) for tp in consumer.assignment()}
        for (topic, partition), offset in offsets.items():
            if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
                raise ConfigError(
                    f"cannot commit offset {offset!r} for {topic}/{partition}",
                    hint="commit the next offset to read: last processed offset + 1",
                )
        return consumer.group, dict(offsets)

    def _roll_back(self, marked: list[tuple[PartitionWriter, int]]) -> None:
        """Undo steps a-b on every marked partition (we still hold their flocks)."""
        for w, start in marked:
            try:
                w.truncate_to(start)
                w.set_stable(start)
            except (OSError, HftError) as exc:
                self._fatal = ConfigError(
                    f"transactional producer {self.transactional_id!r} could not roll back {w.directory}: {exc}",
                    hint="open a new producer with the same transactional id: it finishes the roll-back "
                    "(RUNBOOK.md 'Stuck transaction / LSO not advancing')",
                )
                logger.error("%s", self._fatal)
