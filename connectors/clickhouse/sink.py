"""The tape sink: every record of the chosen topics into its ClickHouse table, exactly once.

The guarantee
-------------
Each log record ``(topic, partition, offset)`` becomes exactly one row of the tape -- in the
table its schema routes to (:mod:`connectors.clickhouse.tables`), or in ``dead_letters`` with
the reason when it cannot be (undecodable, a tombstone, a schema with no table, a value the
table refuses). A retried, restarted, killed-and-restarted or replayed sink never doubles a
row and never loses one. Four mechanisms, each covering what the one before cannot:

1. **Batches with deterministic boundaries.** A batch holds records of one partition whose
   offsets fall in one window ``[k*batch, (k+1)*batch)``; only the time bound (``linger_ms``,
   at the live tail) or the memory bound cuts a batch earlier. On data already on the log, a
   re-run cuts the very same batches.
2. **Insert deduplication tokens.** Each table insert carries
   ``insert_deduplication_token = "<topic>-<partition>-<firstOffset>-<lastOffset>"`` of its batch,
   and every table has ``non_replicated_deduplication_window``: an insert retried after an error
   whose outcome is unknown (a server timeout) is dropped by ClickHouse if the first one landed.
3. **The position lives with the data.** After a batch's rows, one row goes to
   ``tape.sink_batches``; on start each partition resumes after ``max(last_offset)`` there (or at
   ``--from-offset``). A crash between the row inserts and that row -- or between two tables of a
   batch -- leaves offsets past the position that some table already holds: the sink reads those
   offsets back from the tables (``max(offset)`` per partition, then the exact offsets of each batch
   at or below it) and inserts only the records that are missing. Re-sinking a range
   (``--from-offset``) goes through the same check, so it adds nothing already there.
4. **An idempotent engine.** Every table is a ``ReplacingMergeTree`` ordered by
   ``(topic, partition, offset)``: should a row still arrive twice by a path the sink does not
   control (two sinks at once on a server, a hand-made insert), ``FINAL`` (or a background merge)
   keeps one copy.

Queries therefore need no ``FINAL`` for rows written by this sink, one process per tape: 1-3 keep
``count() = uniqExact(topic, partition, offset)`` physically (tested with SIGKILLs). ``FINAL`` is
the belt-and-braces answer when anything else writes to the tape.

Back-pressure: one insert at a time; while ClickHouse is slow or unreachable the sink retries
the same insert (same token) with back-off and reads nothing more once the next batch is ready
-- it pauses, never drops.

How it runs (DECISIONS #62): each write is prepared (rows encoded, the Python path's rows and dead
letters built) on the reading thread, then inserted -- the tables, the dead letters, the position
rows, in that order -- on a background thread while the next batch is read (chDB and the HTTP
client release the GIL while ClickHouse works). A write starts only after the one before ended,
so the tape goes through the same states as with synchronous inserts; an error in the background
is raised by the next write (or the flush). On the native path the embedded log's frames become
Avro rows directly (:class:`~connectors.clickhouse.avro_block.FrameScan`).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from streams.errors import ConfigError, HftError, PoisonError, UnknownTopicError
from streams.log.base import Log, Reader, Record
from streams.runtime.faults import fault

from connectors.clickhouse.avro_block import FrameScan, Plan, build_plan, encode_row, envelope_prefix
from connectors.clickhouse.client import Tape
from connectors.clickhouse.ddl import pending
from connectors.clickhouse.metrics import SinkMetrics
from connectors.clickhouse.tables import DEAD_LETTERS, ROUTES, TABLES, Row, TableWriter, schema_fields, table_columns

SINK = "tape"  # the processor name on the sink's own dead letters
# ClickHouse error codes worth retrying (the server is busy, not the data wrong): TIMEOUT_EXCEEDED, TOO_MANY_SIMULTANEOUS_QUERIES,
# MEMORY_LIMIT_EXCEEDED, TOO_MANY_PARTS, NETWORK_ERROR, SOCKET_TIMEOUT, ALL_CONNECTION_TRIES_FAILED, TABLE_IS_READ_ONLY.
RETRYABLE_CODES = {159, 202, 241, 252, 210, 209, 279, 242}


@dataclass(frozen=True)
class SinkOptions:
    """How the sink batches. ``batch`` is both the most records per insert and the window alignment."""

    topics: Sequence[str] | None = None
    from_offset: int | None = None
    batch: int = 10_000
    linger_ms: int = 1000
    max_buffered: int = 200_000
    until_idle: bool = False
    poll_records: int = 5000
    overlap: bool = True  # insert in the background while the next batch is read (False: every insert inline)


@dataclass
class SinkCounts:
    records: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    dead_letters: int = 0
    already_present: int = 0
    batches: int = 0
    retries: int = 0
    insert_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "records": self.records, "rows": dict(sorted(self.rows.items())), "dead_letters": self.dead_letters,
            "already_present": self.already_present, "batches": self.batches, "retries": self.retries,
            "insert_s": round(self.insert_s, 3),
        }


def declared_topic(topic: str) -> bool:
    """Whether ``infra/topics.yaml`` declares ``topic`` (by name or through a template)."""
    from streams.topics import load_catalog

    return load_catalog().declares(topic)


def sink_topics(log: Log, requested: Sequence[str] | None) -> list[str]:
    """``requested`` (each must exist), or every *declared* topic on the log whose schemas all have a table.

    By default a topic ``infra/topics.yaml`` does not declare is left out: it is a copy (``replay --into T
    --create-target``), and its records must not count twice in ``tape.fills`` and every other business table
    and view. Naming it in ``requested`` sinks it all the same (the CLI warns).
    """
    from streams.topic_schemas import declared_spec, value_schemas

    existing = {t.name for t in log.list_topics()}
    if requested:
        for topic in requested:
            if topic not in existing:
                raise UnknownTopicError(topic)
        return list(dict.fromkeys(requested))
    out = []
    for topic in sorted(existing):
        if not declared_topic(topic):
            continue
        schemas = value_schemas(declared_spec(log, topic))
        if schemas and all(s in ROUTES for s in schemas):
            out.append(topic)
    return out


def tape_positions(client: Any) -> tuple[dict[tuple[str, int], int], dict[tuple[str, int], int]]:
    """``(committed, present)``: per partition, the next offset after the last recorded batch, and the highest offset any table holds."""
    committed = {
        (t, p): int(last) + 1
        for t, p, last in client.query("SELECT topic, partition, max(last_offset) FROM tape.sink_batches GROUP BY topic, partition").result_rows
    }
    union = " UNION ALL ".join(f"SELECT topic, partition, max(offset) AS m FROM tape.{t} GROUP BY topic, partition" for t in TABLES)
    present = {(t, p): int(m) for t, p, m in client.query(f"SELECT topic, partition, max(m) FROM ({union}) GROUP BY topic, partition").result_rows}
    return committed, present


class TapeSink:
    """Reads ``options.topics`` (read_committed) from their tape positions and inserts them; see the module docstring."""

    def __init__(self, log: Log, serde: Any, tape: Tape, options: SinkOptions | None = None, metrics: SinkMetrics | None = None) -> None:
        self.log, self.serde, self.tape, self.client = log, serde, tape, tape.client
        self.options = options or SinkOptions()
        self.metrics = metrics or SinkMetrics()
        if self.options.batch < 1 or self.options.linger_ms < 0:
            raise ConfigError("batch must be >= 1 and linger_ms >= 0")
        self.topics = sink_topics(log, self.options.topics)
        missing = pending(self.client)
        if missing:
            raise ConfigError(
                f"the tape at {tape.url.display} is not initialised ({len(missing)} migration(s) not applied)",
                hint="run `hftstream tape init` first (same --data / --clickhouse)",
            )
        columns = table_columns(self.client)
        fields = schema_fields(serde.repo)
        self.writers = {t: TableWriter(t, columns[t], fields.get(t, {})) for t in TABLES}
        self.counts = SinkCounts()
        self._buffers: dict[tuple[str, int], list[Record]] = {}
        self._since: dict[tuple[str, int], float] = {}
        self._doubt: dict[tuple[str, int], int] = {}  # partition -> highest offset the tables held at start
        self._next: dict[tuple[str, int], int] = {}  # partition -> next offset the tape lacks (for the lag)
        self._ready: list[list[Record]] = []  # cut batches (deterministic boundaries) waiting to be inserted together
        self._ready_n = 0
        self._ready_since = 0.0
        self._columns = columns
        self._plans: dict[bytes, Plan | None] = {}
        self._scan = FrameScan.create()  # frames straight to rows, on the native path with an embedded log
        self._learn = False  # run() reads through the scan: plans are looked up as records arrive
        self._inserts = _Background()

    # -- positions --------------------------------------------------------------------------------------------

    def start_positions(self) -> list[tuple[str, int, int]]:
        """Where each partition resumes, and (in ``_doubt``) up to where records may already be on the tape."""
        committed, present = tape_positions(self.client)
        out = []
        for topic in self.topics:
            for p in range(self.log.partitions(topic)):
                low, _high = self.log.watermarks(topic, p)
                if self.options.from_offset is not None:
                    start = self.options.from_offset
                else:
                    start = committed.get((topic, p), low)
                start = max(start, low)
                top = present.get((topic, p), -1)
                if top >= start:
                    self._doubt[(topic, p)] = top
                out.append((topic, p, start))
                self._next[(topic, p)] = start
        return out

    # -- the loop ---------------------------------------------------------------------------------------------

    def run(self, stop: threading.Event | None = None) -> SinkCounts:
        """Sink until ``stop`` is set (or, with ``until_idle``, until every partition is on the tape); flush; return the counts."""
        stop = stop or threading.Event()
        opts = self.options
        assignments = self.start_positions()
        if not assignments:
            return self.counts
        reader = self.log.reader(assignments, read_committed=True)
        poll = reader.poll
        scan, parsed = self._scan, getattr(reader, "poll_parsed", None)
        if scan is not None and parsed is not None:  # the embedded log: frames straight to rows
            def poll(max_records: int, timeout: float) -> list[Any]:
                return parsed(scan, max_records, timeout)
            self._learn = True
        try:
            while not stop.is_set():
                records = poll(opts.poll_records, timeout=0.05)
                for rec in records:
                    self._add(rec)
                self._flush_due(time.monotonic(), idle=not records)
                if self.metrics.due():
                    self._publish_lag(reader)
                if not records and opts.until_idle and self._caught_up(reader):
                    break
            self._flush_all()
            self._publish_lag(reader)
        finally:
            self._inserts.settle()
            reader.close()
        return self.counts

    def _add(self, rec: Item) -> None:
        """Buffer one record (a ``Record``, or a row the scan encoded: both hold topic, partition, offset first)."""
        tp = (rec[0], rec[1])
        offset = rec[2]
        if self._learn and rec.__class__ is not tuple and rec.value is not None:
            self._plan(rec.value)  # a framing the scan does not know yet: from the next chunk on it encodes it
        buf = self._buffers.get(tp)
        n = self.options.batch
        if buf and offset // n != buf[0][2] // n:
            self._cut(tp)
            buf = None
        if not buf:
            buf = self._buffers[tp] = []
            self._since[tp] = time.monotonic()
        buf.append(rec)
        if (offset + 1) % n == 0 or len(buf) >= n:
            self._cut(tp)

    def _flush_due(self, now: float, idle: bool = False) -> None:
        """Cut the batches whose linger expired; insert the cut ones when they make a batch's worth, have waited ``linger_ms``, or the log is idle."""
        linger = self.options.linger_ms / 1000
        for tp in [tp for tp, t0 in self._since.items() if now - t0 >= linger]:
            self._cut(tp)
        while self._ready_n + sum(len(b) for b in self._buffers.values()) > self.options.max_buffered and self._buffers:
            self._cut(max(self._buffers, key=lambda k: len(self._buffers[k])))
        if self._ready and (idle or self._ready_n >= self.options.batch or now - self._ready_since >= linger
                            or self._ready_n > self.options.max_buffered):
            self._write_ready()

    def _flush_all(self) -> None:
        for tp in list(self._buffers):
            self._cut(tp)
        self._write_ready()
        self._inserts.wait()

    def _end(self, reader: Reader, topic: str, p: int) -> int:
        end = reader.end_offset(topic, p)
        return self.log.watermarks(topic, p)[1] if end is None else end

    def _publish_lag(self, reader: Reader) -> None:
        """Each partition's end minus the sink's position on the tape (``hftstream_sink_lag``)."""
        self.metrics.lag((t, p, max(0, self._end(reader, t, p) - self._next.get((t, p), 0))) for t, p in reader.assignment())

    def _caught_up(self, reader: Reader) -> bool:
        if self._buffers or self._ready:
            self._flush_all()
        for topic, p in reader.assignment():
            if reader.position(topic, p) < self._end(reader, topic, p):
                return False
        return True

    # -- one batch --------------------------------------------------------------------------------------------

    def _cut(self, tp: tuple[str, int]) -> None:
        """End the open batch of ``tp`` (its boundaries are now fixed) and queue it for the next insert."""
        recs = self._buffers.pop(tp, None)
        self._since.pop(tp, None)
        if recs:
            if not self._ready:
                self._ready_since = time.monotonic()
            self._ready.append(recs)
            self._ready_n += len(recs)
            if self._ready_n >= self.options.batch:
                self._write_ready()

    def _write_ready(self) -> None:
        if self._ready:
            batches, self._ready, self._ready_n = self._ready, [], 0
            if not self.options.overlap:
                self.write_batches(batches)
                return
            if any((b[0][0], b[0][1]) in self._doubt for b in batches):
                self._inserts.wait()  # preparing reads offsets back from the tape: not while an insert uses the client
            write = self._prepare(batches)
            self._inserts.start(self._insert_write, write)

    def write_batch(self, recs: list[Record]) -> None:
        """Insert one batch (records of one partition, offsets ascending); see :meth:`write_batches`."""
        self.write_batches([recs])

    def write_batches(self, batches: list[list[Item]]) -> None:
        """Insert cut batches together: one insert per table (and record type on the fast path), the dead letters, then
        one progress row per batch in one insert -- so a crash leaves either all or none of these batches' positions.

        A batch's token is ``topic-partition-first-last``; an insert holding several batches carries a digest of theirs,
        so retrying the same insert is deduplicated. Rows go by the Avro fast path (:mod:`connectors.clickhouse.avro_block`)
        when their schema has a plan, by the Python path otherwise or when ClickHouse refuses the fast insert.
        Synchronous: returns once the positions are on the tape (the run loop overlaps :meth:`_prepare` and
        :meth:`_insert_write` instead).
        """
        self._inserts.wait()
        self._insert_write(self._prepare(batches))

    def _prepare(self, batches: list[list[Item]]) -> _Write:
        """The reading thread's half of a write: which offsets are already present, the fast rows, the Python path's rows."""
        tokens = [f"{b[0][0]}-{b[0][1]}-{b[0][2]}-{b[-1][2]}" for b in batches]
        token = tokens[0] if len(tokens) == 1 else "g-" + hashlib.blake2b("|".join(tokens).encode(), digest_size=16).hexdigest()
        write = _Write(batches, token)
        fast, by_table, dead = write.fast, write.by_table, write.dead
        scanned = self._scan.plans if self._scan is not None else []
        scan_groups: dict[int, tuple[list[bytes], list[Item]]] = {}  # scan plan id -> its group in ``fast``
        for recs in batches:
            topic, partition = recs[0][0], recs[0][1]
            present = self._present(topic, partition, recs[0][2], recs[-1][2])
            write.present_n += len(present)
            prefix = envelope_prefix(topic, partition)
            for rec in recs:
                if present and rec[2] in present:
                    continue
                if rec.__class__ is tuple:  # a row the scan encoded: (topic, partition, offset, row, plan id)
                    group = scan_groups.get(rec[4])
                    if group is None:
                        group = scan_groups[rec[4]] = _group(fast, scanned[rec[4]])
                    group[0].append(rec[3])
                    group[1].append(rec)
                    continue
                plan = self._plan(rec.value) if rec.value is not None else None
                if plan is None:
                    table, row, own = self._route(rec)
                    (dead if own else by_table.setdefault(table, [])).append(row)
                    continue
                group = _group(fast, plan)
                group[0].append(encode_row(prefix, plan, rec))
                group[1].append(rec)
        write.seal()
        return write

    def _insert_write(self, write: _Write) -> None:
        """The inserting half of a write: the fast groups, the Python path's rows, the dead letters, then the positions."""
        batches, token, by_table, dead, present_n = write.batches, write.token, write.by_table, write.dead, write.present_n
        t0 = time.perf_counter()
        rows_before = dict(self.counts.rows)
        touched = set()
        for plan, block, fmt, rows, recs in write.groups():
            try:
                settings = {"insert_deduplication_token": f"{token}-{plan.record_type}"}
                self._retrying(lambda p=plan, b=block, f=fmt, s=settings: self.client.raw_insert(  # type: ignore[misc]
                    f"tape.{p.table}", column_names=p.columns, insert_block=b, fmt=f, settings=s))
            except _DataRefused:  # a malformed body or a value the table refuses: the Python path finds the record
                for rec in self._records(recs):
                    table, row, own = self._route(rec)
                    (dead if own else by_table.setdefault(table, [])).append(row)
                continue
            self.counts.rows[plan.table] = self.counts.rows.get(plan.table, 0) + len(rows)
            touched.add(plan.table)
            fault("tape-after-insert")
        for table, rows in by_table.items():
            dead.extend(self._insert_rows(table, rows, token))
            touched.add(table)
            fault("tape-after-insert")
        if dead:
            self._insert(DEAD_LETTERS, self.writers[DEAD_LETTERS].columns_for(dead), f"{token}-dead")
            touched.add(DEAD_LETTERS)
            self.counts.dead_letters += len(dead)
        dead_at = {(d.rec.topic, d.rec.partition, d.rec.offset) for d in dead}
        fault("tape-before-progress")
        insert_us = int((time.perf_counter() - t0) * 1e6)
        tables = sorted(touched)
        cols: list[list[Any]] = [[b[0][0] for b in batches], [b[0][1] for b in batches], [b[0][2] for b in batches],
                                 [b[-1][2] for b in batches], [len(b) for b in batches],
                                 [sum(r[:3] in dead_at for r in b) if dead_at else 0 for b in batches],
                                 [tables] * len(batches), [insert_us] * len(batches)]
        self._insert("sink_batches", cols, token,
                     column_names=["topic", "partition", "first_offset", "last_offset", "records", "dead_letters", "tables", "insert_us"])
        seconds = time.perf_counter() - t0
        self.counts.insert_s += seconds
        self.counts.records += sum(len(b) for b in batches)
        self.counts.already_present += present_n
        self.counts.batches += len(batches)
        self._count(batches, rows_before, dead, present_n, seconds)

    def _count(self, batches: list[list[Item]], rows_before: dict[str, int], dead: list[Row], present_n: int, seconds: float) -> None:
        """The Prometheus side of one insert: rows per table, dead letters by reason, positions for the lag."""
        inserted = {t: n - rows_before.get(t, 0) for t, n in self.counts.rows.items() if n != rows_before.get(t, 0)}
        reasons: dict[str, int] = {}
        for row in dead:
            reasons[row.value["reason_code"]] = reasons.get(row.value["reason_code"], 0) + 1
        if dead:
            inserted[DEAD_LETTERS] = inserted.get(DEAD_LETTERS, 0) + len(dead)
        for b in batches:
            self._next[(b[0][0], b[0][1])] = b[-1][2] + 1
        self.metrics.batch(sum(len(b) for b in batches) - present_n, inserted, reasons, present_n, seconds)

    def _present(self, topic: str, partition: int, first: int, last: int) -> set[int]:
        """Offsets in ``[first, last]`` some table already holds (only where the tape held rows past its position at start)."""
        top = self._doubt.get((topic, partition))
        if top is None:
            return set()
        if first > top:
            del self._doubt[(topic, partition)]
            return set()
        return self._present_offsets(topic, partition, first, min(last, top))

    def _plan(self, value: bytes) -> Plan | None:
        """The fast-path plan for a value's framing (cached by header), or ``None``: the Python path."""
        key = value[:10] if value[:1] == b"\xc3" else value[:5]
        if key in self._plans:
            return self._plans[key]
        framing = self.serde.current_framing(value)
        if framing is None:
            if value[:1] == b"\xc3":  # a single-object header is final; a registry id may resolve later
                self._plans[key] = None
            return None
        header, name, body_offset = framing
        table = ROUTES.get(name)
        plan = None
        if table is not None and table in self._columns:
            plan = build_plan(name, self.serde.repo.current(name).canonical, body_offset, self._columns[table])
        self._plans[header] = plan
        if plan is not None and self._scan is not None:
            self._scan.add(header, plan)
        return plan

    def _records(self, items: list[Item]) -> list[Record]:
        """``items`` as Records: the scan's rows read back from the log (the Python path needs their values)."""
        rows = [i for i in items if i.__class__ is tuple]
        if not rows:
            return items
        found: dict[tuple[str, int, int], Record] = {}
        for (topic, partition), (first, last) in _spans(rows).items():
            reader = self.log.reader([(topic, partition, first)], read_committed=True)
            try:
                while (got := reader.poll(last - first + 1, timeout=1.0)):
                    found.update(((r.topic, r.partition, r.offset), r) for r in got if r.offset <= last)
                    if got[-1].offset >= last:
                        break
            finally:
                reader.close()
        gone = [i[:3] for i in rows if i[:3] not in found]
        if gone:
            raise HftError(f"records {gone[:3]} vanished from the log while being sunk (retention or compaction)")
        return [found[i[:3]] if i.__class__ is tuple else i for i in items]

    def _route(self, rec: Record) -> tuple[str, Row, bool]:
        """``(table, row, own)`` for ``rec``; ``own``: a record that cannot go to its table, as the sink's dead letter."""
        if rec.value is None:
            return DEAD_LETTERS, dead_letter(rec, "TOMBSTONE", "a record with no value (a tombstone on a compacted topic): nothing to insert"), True
        try:
            decoded = self.serde.decode(rec.value)
        except PoisonError as exc:
            return DEAD_LETTERS, dead_letter(rec, exc.reason_code, str(exc)), True
        table = ROUTES.get(decoded.schema)
        if table is None:
            reason = f"no tape table for schema {decoded.schema} (see connectors/clickhouse/tables.py ROUTES)"
            return DEAD_LETTERS, dead_letter(rec, "NO_TABLE", reason), True
        return table, Row(rec, decoded.value, decoded.schema.rsplit(".", 1)[-1]), False

    def _present_offsets(self, topic: str, partition: int, first: int, last: int) -> set[int]:
        union = " UNION ALL ".join(
            f"SELECT offset FROM tape.{t} WHERE topic = {{t:String}} AND partition = {{p:Int32}} AND offset BETWEEN {{a:Int64}} AND {{b:Int64}}"
            for t in TABLES
        )
        params = {"t": topic, "p": partition, "a": first, "b": last}
        return {int(r[0]) for r in self._retrying(lambda: self.client.query(union, parameters=params)).result_rows}

    def _insert_rows(self, table: str, rows: list[Row], token: str) -> list[Row]:
        """Insert ``rows`` into ``table``; return the rows the table refused, as dead letters (one insert per row to find them)."""
        writer = self.writers[table]
        try:
            self._insert(table, writer.columns_for(rows), token)
            self.counts.rows[table] = self.counts.rows.get(table, 0) + len(rows)
            return []
        except _DataRefused:
            pass
        refused = []
        for r in rows:
            try:
                self._insert(table, writer.columns_for([r]), f"{r.rec.topic}-{r.rec.partition}-{r.rec.offset}-{r.rec.offset}")
                self.counts.rows[table] = self.counts.rows.get(table, 0) + 1
            except _DataRefused as exc:
                refused.append(dead_letter(r.rec, "INSERT_REFUSED", f"tape.{table} refused the row: {exc}"))
        return refused

    def _insert(self, table: str, columns: list[list[Any]], token: str, column_names: list[str] | None = None) -> None:
        names = column_names or self.writers[table].column_names
        settings = {"insert_deduplication_token": token}
        self._retrying(lambda: self.client.insert(f"tape.{table}", columns, column_names=names, column_oriented=True, settings=settings))

    def _retrying(self, call: Any) -> Any:
        """Run ``call``; retry transient failures with back-off, forever (the sink pauses, never drops); refused data raises :class:`_DataRefused`."""
        from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

        delay = 0.1
        while True:
            try:
                return call()
            except OperationalError:
                pass
            except DatabaseError as exc:
                if _code(exc) not in RETRYABLE_CODES:
                    raise _DataRefused(_first_line(exc)) from None
            self.counts.retries += 1
            self.metrics.retries.inc()
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


Item = Any  # a Record, or a row FrameScan encoded: (topic, partition, offset, row, plan id)


@dataclass
class _Write:
    """One write (several cut batches), prepared: what :meth:`TapeSink._insert_write` inserts."""

    batches: list[list[Item]]
    token: str
    fast: dict[Plan, tuple[list[bytes], list[Item]]] = field(default_factory=dict)
    by_table: dict[str, list[Row]] = field(default_factory=dict)
    dead: list[Row] = field(default_factory=list)  # the sink's own dead letters (a DeadLetter record from dlq.* is an ordinary row)
    present_n: int = 0
    bodies: list[tuple[bytes, str]] = field(default_factory=list)  # each fast group's insert body and format

    def seal(self) -> None:
        """Build the fast groups' insert bodies (on the reading thread, while the write before inserts)."""
        self.bodies = [plan.block(rows) for plan, (rows, _) in self.fast.items()]

    def groups(self) -> list[tuple[Plan, bytes, str, list[bytes], list[Item]]]:
        """``(plan, body, format, rows, records)`` of each fast group."""
        return [(plan, body, fmt, rows, recs) for (plan, (rows, recs)), (body, fmt) in zip(self.fast.items(), self.bodies, strict=True)]


class _Background:
    """At most one write inserting on a background thread; its error is raised by the next :meth:`start` or :meth:`wait`."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self, insert: Any, write: _Write) -> None:
        self.wait()
        self._thread = threading.Thread(target=self._run, args=(insert, write), name="tape-insert", daemon=True)
        self._thread.start()

    def _run(self, insert: Any, write: _Write) -> None:
        try:
            insert(write)
        except BaseException as exc:  # handed to the reading thread, which raises it
            self._error = exc

    def wait(self) -> None:
        """Until the write in flight ended; raise its error."""
        self.settle()
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def settle(self) -> None:
        """Until the write in flight ended (its error, if any, stays for :meth:`wait`)."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None


def _group(fast: dict[Plan, tuple[list[bytes], list[Item]]], plan: Plan) -> tuple[list[bytes], list[Item]]:
    """The rows and records of ``plan`` in one write (equal plans share a group: one insert, one token)."""
    group = fast.get(plan)
    if group is None:
        group = fast[plan] = ([], [])
    return group


def _spans(items: list[Item]) -> dict[tuple[str, int], tuple[int, int]]:
    """The lowest and highest offset of ``items`` per partition."""
    out: dict[tuple[str, int], tuple[int, int]] = {}
    for i in items:
        tp, o = (i[0], i[1]), i[2]
        lo, hi = out.get(tp, (o, o))
        out[tp] = (min(lo, o), max(hi, o))
    return out


class _DataRefused(HftError):
    """ClickHouse refused the data itself (a type or value error): retrying the same rows cannot help."""


def _code(exc: Exception) -> int | None:
    import re

    m = re.search(r"Code: (\d+)", str(exc))
    return int(m.group(1)) if m else None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:500] if text else type(exc).__name__


def dead_letter(rec: Record, reason_code: str, reason: str) -> Row:
    """The sink's own dead letter for ``rec`` (stored at ``rec``'s own topic, partition and offset)."""
    value = {
        "processor": SINK, "reason_code": reason_code, "reason": reason, "source_topic": rec.topic,
        "source_partition": rec.partition, "source_offset": rec.offset, "source_ts_ns": rec.timestamp_ns,
        "key": rec.key, "value": rec.value or b"", "headers": [{"key": k, "value": v} for k, v in rec.headers],
        "ts_ns": rec.timestamp_ns,
    }
    return Row(rec, value, "DeadLetter")
