"""Which tape table each Avro record goes to, and how a batch of records becomes insertable columns.

Routing is by the record's schema, not its topic: ``md.normalized`` fans out to ``md_trades``,
``md_quotes``, ``md_book`` and ``venue_status``; ``md.book`` trades land in ``md_trades`` too, told
apart by ``topic``. A table's columns come from the tape itself (``system.columns``), so the DDL in
``infra/clickhouse/`` is the one definition: a column is either one of :data:`COMMON_COLUMNS`
(where the record was on the log and what caused it) or the Avro field of the same name, where a
``*_ts`` column of type ``DateTime64`` takes the ``*_ts_ns`` field. A column the record's schema
lacks (tables holding several schemas) gets ``None`` -- the DDL makes such columns ``Nullable``;
``tests/unit/test_tape_tables.py`` checks every schema against its table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from streams.lineage import SOURCE_OFFSET, SOURCE_PARTITION, SOURCE_TOPIC
from streams.log.base import Record

# Avro full name -> table.
ROUTES: dict[str, str] = {
    "hftstream.md.Trade": "md_trades",
    "hftstream.md.Quote": "md_quotes",
    "hftstream.md.BookDelta": "md_book",
    "hftstream.md.VenueStatus": "venue_status",
    "hftstream.md.Heartbeat": "venue_status",
    "hftstream.md.RawVenueMessage": "md_raw",
    "hftstream.refdata.Instrument": "instruments",
    "hftstream.orders.NewOrder": "orders",
    "hftstream.orders.CancelOrder": "orders",
    "hftstream.orders.ReplaceOrder": "orders",
    "hftstream.risk.RiskDecision": "risk_decisions",
    "hftstream.fills.Fill": "fills",
    "hftstream.ledger.LedgerEntry": "ledger_entries",
    "hftstream.ledger.Position": "positions",
    "hftstream.exec.ExecutionReport": "exec_reports",
    "hftstream.recon.ReconBreak": "recon_breaks",
    "hftstream.recon.ReconStatus": "recon_status",
    "hftstream.dlq.DeadLetter": "dead_letters",
    "hftstream.runtime.Commit": "commits",  # state.<processor>: the commit manifests (append times, stage latency)
    "hftstream.runtime.SnapshotChunk": "snapshot_chunks",
    **{f"hftstream.ops.{n}": "ops_commands" for n in ("Halt", "Resume", "ReduceOnly", "KillSwitch", "CancelAll", "SetLimit")},
    **{
        f"hftstream.orders.{n}": "order_events"
        for n in ("OrderAccepted", "OrderRejected", "OrderCancelRejected", "OrderRested", "OrderPartiallyFilled", "OrderFilled",
                  "OrderCancelled", "OrderExpired")
    },
}
DEAD_LETTERS = "dead_letters"
TABLES: tuple[str, ...] = tuple(dict.fromkeys(ROUTES.values()))
# Columns every table has, filled from the log record rather than its value (sunk_at has a DEFAULT).
COMMON_COLUMNS = ("topic", "partition", "offset", "log_ts", "log_key", "record_type", "src_topic", "src_partition", "src_offset")
FILLED_BY_SERVER = ("sunk_at",)


@dataclass(frozen=True)
class Column:
    name: str
    type: str

    @property
    def nullable(self) -> bool:
        return "Nullable(" in self.type

    @property
    def is_time(self) -> bool:
        return self.type.replace("Nullable(", "").startswith("DateTime64")


@dataclass
class Row:
    """One record on its way to a table: the log record, its decoded value and short record type."""

    rec: Record
    value: dict[str, Any]
    record_type: str


def lineage(rec: Record) -> tuple[str, int, int]:
    """``(src_topic, src_partition, src_offset)`` from the record's lineage headers, ``("", -1, -1)`` without."""
    topic, partition, offset = "", -1, -1
    for k, v in rec.headers:
        if k == SOURCE_TOPIC:
            topic = v.decode()
        elif k == SOURCE_PARTITION:
            partition = int(v)
        elif k == SOURCE_OFFSET:
            offset = int(v)
    return (topic, partition, offset) if topic and partition >= 0 and offset >= 0 else ("", -1, -1)


def _field_for(column: Column, fields: set[str]) -> str | None:
    if column.name in fields:
        return column.name
    if column.is_time and f"{column.name}_ns" in fields:
        return f"{column.name}_ns"
    return None


class TableWriter:
    """Turns rows for one table into column lists in the table's column order (the shape clickhouse-connect inserts fastest)."""

    def __init__(self, name: str, columns: Sequence[Column], schema_fields: dict[str, set[str]]) -> None:
        self.name = name
        self.columns = [c for c in columns if c.name not in FILLED_BY_SERVER]
        self.column_names = [c.name for c in self.columns]
        all_fields = set().union(*schema_fields.values()) if schema_fields else set()
        self._lineage_of: tuple[list[Any], ...] | None = None
        self._getters: list[Callable[[list[Row]], list[Any]]] = [self._getter(c, all_fields) for c in self.columns]

    def _getter(self, column: Column, fields: set[str]) -> Callable[[list[Row]], list[Any]]:
        name = column.name
        if name == "topic":
            return lambda rows: [r.rec.topic for r in rows]
        if name == "partition":
            return lambda rows: [r.rec.partition for r in rows]
        if name == "offset":
            return lambda rows: [r.rec.offset for r in rows]
        if name == "log_ts":
            return lambda rows: [r.rec.timestamp_ns for r in rows]
        if name == "log_key":
            return lambda rows: [r.rec.key or b"" for r in rows]
        if name == "record_type":
            return lambda rows: [r.record_type for r in rows]
        if name in ("src_topic", "src_partition", "src_offset"):
            index = ("src_topic", "src_partition", "src_offset").index(name)
            return lambda rows: self._lineage(rows)[index]
        source = _field_for(column, fields)
        if source is None:
            raise ValueError(f"tape.{self.name}.{name} is neither a common column nor a field of the schemas routed to it")
        if column.type.startswith("Array(Tuple("):  # an array of records -> tuples in field order (DeadLetter.headers, Commit.inputs)
            return lambda rows: [[tuple(h.values()) for h in (r.value.get(source) or ())] for r in rows]
        return lambda rows: [r.value.get(source) for r in rows]

    def columns_for(self, rows: list[Row]) -> list[list[Any]]:
        self._lineage_of = None
        try:
            return [get(rows) for get in self._getters]
        finally:
            self._lineage_of = None

    def _lineage(self, rows: list[Row]) -> tuple[list[Any], ...]:
        """The three lineage columns of ``rows``, computed once per :meth:`columns_for` call."""
        if self._lineage_of is None:
            self._lineage_of = tuple(map(list, zip(*[lineage(r.rec) for r in rows]))) if rows else ([], [], [])
        return self._lineage_of


def schema_fields(repo: Any) -> dict[str, dict[str, set[str]]]:
    """table -> {schema full name: its top-level field names}, for the schemas :data:`ROUTES` sends there."""
    out: dict[str, dict[str, set[str]]] = {}
    for schema, table in ROUTES.items():
        out.setdefault(table, {})[schema] = {f["name"] for f in repo.schema(schema)["fields"]}
    return out


def table_columns(client: Any) -> dict[str, list[Column]]:
    """The tape's tables and their columns, in order, as the database has them."""
    rows = client.query(
        "SELECT table, name, type FROM system.columns WHERE database = 'tape' ORDER BY table, position"
    ).result_rows
    out: dict[str, list[Column]] = {}
    for table, name, type_ in rows:
        out.setdefault(table, []).append(Column(name, type_))
    return out
