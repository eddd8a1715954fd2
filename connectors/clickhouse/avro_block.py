"""The sink's fast path: records go to ClickHouse as Avro, decoded by ClickHouse, never by Python.

An Avro record's binary encoding is the concatenation of its fields' encodings. So a record
``{envelope fields..., the log record's own fields...}`` is encoded by writing the envelope
(topic, partition, offset, log time, key, record type, lineage) and appending the log record's
body bytes as they are. Rows of one writer schema become one Avro object container (header with
the wrapper schema, one block, sync marker), inserted with ``FORMAT Avro``: ClickHouse maps
fields to columns by name (``ts_ns`` is renamed ``ts``, a ``DateTime64(9)`` column takes the
nanoseconds as ticks). Python touches each record for a few byte operations instead of a
fastavro decode, a dict and a column build (BENCH.md, "tape sink").

A :class:`Plan` exists only for a schema whose every field has a column of a type ClickHouse reads
from that Avro type, and only for the *current* version of the schema: an older writer version is
resolved against the reader schema (defaults), which only the Python path does. Anything without a
plan, and any group ClickHouse refuses (a malformed body, a value the table's constraints reject),
takes the Python path (:class:`~connectors.clickhouse.tables.TableWriter`), which isolates the bad
record into ``dead_letters``. ``tests/integration/test_tape_avro_block.py`` checks that both paths
write identical rows for every schema.

On the native path the embedded log's frames become these rows without a ``Record`` in between
(:class:`FrameScan`, DECISIONS #62); any record the scan does not encode comes out as a ``Record``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from streams.lineage import SOURCE_OFFSET, SOURCE_PARTITION, SOURCE_TOPIC
from streams.log.base import Record
from streams.log.embedded.segment import OK, py_parse_records
from streams.native import NATIVE

from connectors.clickhouse.tables import ROUTES, Column

ENVELOPE: tuple[tuple[str, str], ...] = (
    ("topic", "string"), ("partition", "int"), ("offset", "long"), ("log_ts", "long"), ("log_key", "bytes"),
    ("record_type", "string"), ("src_topic", "string"), ("src_partition", "int"), ("src_offset", "long"),
)
# Avro type -> the ClickHouse column types (Nullable / LowCardinality stripped) it may feed.
_FEEDS = {
    "string": ("String",), "bytes": ("String",), "long": ("Int64", "DateTime64"), "int": ("Int32", "Int64"),
    "boolean": ("Bool",), "enum": ("String",),
}


def varint(n: int) -> bytes:
    """The Avro (zig-zag) encoding of the int/long ``n``."""
    z = (n << 1) ^ (n >> 63)
    if z < 0x4000:
        return _SMALL[z]
    out = _LOW14[z & 0x3FFF]
    z >>= 14
    while z >= 0x4000:
        out += _LOW14[z & 0x3FFF]
        z >>= 14
    return out + _SMALL[z]


def _raw_varint(z: int) -> bytes:
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


_SMALL = [_raw_varint(z) for z in range(0x4000)]  # one or two bytes
_LOW14 = [bytes(((z & 0x7F) | 0x80, ((z >> 7) & 0x7F) | 0x80)) for z in range(0x4000)]  # 14 bits, more to come


def _string(b: bytes) -> bytes:
    return varint(len(b)) + b


@dataclass(frozen=True)
class Plan:
    """How records of one writer schema become Avro rows of one table."""

    table: str
    record_type: str
    body_offset: int
    columns: tuple[str, ...]
    container_header: bytes
    sync: bytes
    record_type_bytes: bytes
    # how the native core moves each field to a Native column (follows from the fields above: not compared)
    native_fields: tuple[NativeField, ...] | None = field(default=None, compare=False)

    def container(self, rows: Sequence[bytes]) -> bytes:
        """One Avro object container holding ``rows`` (already-encoded wrapper records) in one block."""
        data = b"".join(rows)
        return b"".join((self.container_header, varint(len(rows)), varint(len(data)), data, self.sync))

    def block(self, rows: list[bytes]) -> tuple[bytes, str]:
        """``(body, format)`` to insert ``rows``: ClickHouse's Native format when the native core transcodes every row
        (ClickHouse reads it about 3x faster than Avro; DECISIONS #62), else :meth:`container` as ``Avro``."""
        if _native_block is not None and self.native_fields is not None:
            body = _native_block(rows, self.native_fields)
            if body is not None:
                return body, "Native"
        return self.container(rows), "Avro"


def _base_type(column_type: str) -> str:
    t = column_type
    for wrapper in ("LowCardinality(", "Nullable("):
        while t.startswith(wrapper):
            t = t[len(wrapper):-1]
    return t.split("(", 1)[0]


def _avro_kind(ftype: Any, named: dict[str, str]) -> tuple[str | None, bool]:
    """``(kind, nullable)`` of a field type: a primitive name, ``enum``, or ``None`` when unsupported.

    ``named`` maps the full names of enums already defined (a canonical schema defines a named type
    at its first use and refers to it by name afterwards) to their kind.
    """
    if isinstance(ftype, list):
        branches = [b for b in ftype if b != "null"]
        if len(branches) != 1 or len(ftype) != 2:
            return None, True
        kind, _ = _avro_kind(branches[0], named)
        return kind, True
    if isinstance(ftype, dict):
        if ftype.get("type") == "enum":
            named[ftype["name"]] = "enum"
            return "enum", False
        if "logicalType" not in ftype and isinstance(ftype.get("type"), str):
            return _avro_kind(ftype["type"], named)
        return None, False
    if ftype in _FEEDS:
        return ftype, False
    return named.get(ftype), False


def build_plan(schema_name: str, canonical: str, body_offset: int, columns: Sequence[Column]) -> Plan | None:
    """The plan for the schema with Parsing Canonical Form ``canonical``, or ``None`` when a field has no column ClickHouse can fill from it."""
    table = ROUTES.get(schema_name)
    if table is None:
        return None
    writer = json.loads(canonical)
    by_name = {c.name: c for c in columns}
    fields: list[dict[str, Any]] = [{"name": n, "type": t} for n, t in ENVELOPE]
    named: dict[str, str] = {}
    feeds = [(n, t, by_name.get(n)) for n, t in ENVELOPE]  # (wrapper field, its Avro type, its column)
    for f in writer["fields"]:
        name = f["name"]
        column = by_name.get(name)
        if column is None and name.endswith("_ns") and name[:-3] in by_name and by_name[name[:-3]].is_time:
            column = by_name[name[:-3]]
        if column is None:
            return None
        kind, nullable = _avro_kind(f["type"], named)
        if kind is None or _base_type(column.type) not in _FEEDS[kind] or (nullable and not column.nullable):
            return None
        if column.is_time and kind != "long":
            return None
        fields.append({"name": column.name, "type": f["type"]})
        feeds.append((column.name, f["type"], column))
    names = [f["name"] for f in fields]
    if len(set(names)) != len(names):
        return None
    wrapper = {"type": "record", "name": "hftstream.tape.TapeRow", "fields": fields}
    schema_json = json.dumps(wrapper, separators=(",", ":")).encode()
    sync = hashlib.blake2b(schema_json, digest_size=16).digest()  # deterministic: the same rows give the same bytes
    meta = ((b"avro.schema", schema_json), (b"avro.codec", b"null"))
    header = b"Obj\x01" + varint(len(meta)) + b"".join(_string(k) + _string(v) for k, v in meta) + varint(0) + sync
    short = schema_name.rsplit(".", 1)[-1]
    return Plan(table, short, body_offset, tuple(names), header, sync, _string(short.encode()), native_fields(feeds))


# (column name, read, null index, enum symbols, write, nullable, Native type): see native/src/tape.rs `NativeField`
NativeField = tuple[bytes, int, int, tuple[bytes, ...], int, bool, bytes]
_READ = {"string": 0, "bytes": 5, "long": 1, "int": 4, "boolean": 2, "enum": 3}
_WRITE = {"String": 0, "Int32": 1, "Int64": 2, "DateTime64": 2, "Bool": 3}  # LowCardinality(String): 4


def native_fields(feeds: Sequence[tuple[str, Any, Column | None]]) -> tuple[NativeField, ...] | None:
    """How each wrapper field becomes a column of ClickHouse's Native format, or ``None`` (the plan inserts Avro only).

    A ``LowCardinality`` string column is sent dictionary-encoded (as clickhouse-connect does), any other column as its
    own type without ``LowCardinality``; the union's null branch becomes the null map (or the dictionary's key 0).
    """
    out = []
    enums: dict[str, tuple[bytes, ...]] = {}
    for name, ftype, column in feeds:
        if column is None:
            return None
        null_index = -1
        if isinstance(ftype, list):  # build_plan took only ["null", T] and [T, "null"]
            null_index = ftype.index("null")
            ftype = ftype[1 - null_index]
        if isinstance(ftype, dict) and ftype.get("type") == "enum":
            enums[ftype["name"]] = tuple(s.encode() for s in ftype["symbols"])
            read, symbols = 3, enums[ftype["name"]]
        elif isinstance(ftype, dict):
            read, symbols = _READ.get(ftype.get("type"), -1), ()
        elif ftype in enums:
            read, symbols = 3, enums[ftype]
        else:
            read, symbols = _READ.get(ftype, -1), ()
        type_name = column.type
        write = _WRITE.get(_base_type(column.type), -1)
        if type_name.startswith("LowCardinality(") and write == 0:
            write = 4  # dictionary-encoded, as clickhouse-connect sends it
        else:
            while "LowCardinality(" in type_name:  # ClickHouse converts the plain column
                type_name = type_name.replace("LowCardinality(", "", 1)[:-1]
        if read < 0 or write < 0:
            return None
        out.append((name.encode(), read, null_index, symbols, write, column.nullable, type_name.encode()))
    return tuple(out)


_NO_LINEAGE = _string(b"") + varint(-1) + varint(-1)


def envelope_prefix(topic: str, partition: int) -> bytes:
    """The first two envelope fields, the same for every record of one partition."""
    return _string(topic.encode()) + varint(partition)


_native_row = NATIVE.tape_row if NATIVE is not None else None
_native_block = NATIVE.native_block if NATIVE is not None else None
_native_scan = NATIVE.tape_scan if NATIVE is not None else None


def encode_row(prefix: bytes, plan: Plan, rec: Record) -> bytes:
    """``rec`` as one wrapper record: envelope + its body bytes (``rec.value`` past the framing header).

    The native core (streams/native.py) encodes the common case; :func:`py_encode_row` is the reference and
    takes everything else (lineage values that are not plain digits, odd types).
    """
    if _native_row is not None:
        row = _native_row(prefix, plan.record_type_bytes, plan.body_offset, rec)
        if row is not None:
            return row
    return py_encode_row(prefix, plan, rec)


def py_encode_row(prefix: bytes, plan: Plan, rec: Record) -> bytes:
    """:func:`encode_row` in pure Python."""
    key = rec.key or b""
    src_t = src_p = src_o = None
    for k, v in rec.headers:
        if k == SOURCE_TOPIC:
            src_t = v
        elif k == SOURCE_PARTITION:
            src_p = v
        elif k == SOURCE_OFFSET:
            src_o = v
    lineage = _NO_LINEAGE
    if src_t and src_p is not None and src_o is not None:
        head = _LINEAGE_HEADS.get((src_t, src_p))
        if head is None:
            head = _lineage_head(src_t, src_p)
        o = int(src_o)
        if head and o >= 0:
            lineage = head + varint(o)
    value = rec.value
    assert value is not None
    return b"".join((prefix, varint(rec.offset), varint(rec.timestamp_ns), varint(len(key)), key, plan.record_type_bytes,
                     lineage, value[plan.body_offset:]))


_LINEAGE_HEADS: dict[tuple[bytes, bytes], bytes] = {}


def _lineage_head(topic: bytes, partition: bytes) -> bytes:
    """The encoded (src_topic, src_partition) pair; empty when the partition is not a valid number >= 0."""
    try:
        p = int(partition)
    except ValueError:
        return b""
    head = _string(topic) + varint(p) if p >= 0 else b""
    if len(_LINEAGE_HEADS) < 65536:
        _LINEAGE_HEADS[(topic, partition)] = head
    return head


class FrameScan:
    """The embedded reader's parse step for the sink (``EmbeddedReader.poll_parsed``): frames straight to rows.

    Each valid record that a known plan takes becomes ``(topic, partition, offset, row, plan_id)``, ``row`` being
    exactly what :func:`py_encode_row` makes of its ``Record`` and ``plans[plan_id]`` its plan; every other record
    (a framing no plan is known for yet, a tombstone, lineage that is not plain digits) comes out as the ``Record``
    ``parse_records`` makes, for the sink's Python path. The scan stops where the native ``parse_records`` stops;
    :func:`py_parse_records` goes on from there, so damage, statuses and errors are the Python path's.
    """

    def __init__(self) -> None:
        self.plans: list[Plan] = []
        self._keys: list[tuple[bytes, int, bytes, int]] = []  # (framing header, plan id, record type, body offset)
        self._prefixes: dict[tuple[str, int], bytes] = {}

    @classmethod
    def create(cls) -> FrameScan | None:
        """A scan when the native core is active, else ``None`` (the sink reads Records)."""
        return cls() if _native_scan is not None else None

    def add(self, header: bytes, plan: Plan) -> None:
        """Encode records framed with ``header`` by ``plan`` from now on."""
        self._keys.append((header, len(self.plans), plan.record_type_bytes, plan.body_offset))
        self.plans.append(plan)

    def __call__(self, buf: bytes, pos: int, end: int, topic: str, partition: int, min_offset: int, limit: int,
                 out: list[Any]) -> tuple[int, int, str]:
        if _native_scan is not None and buf.__class__ is bytes:
            prefix = self._prefixes.get((topic, partition))
            if prefix is None:
                prefix = self._prefixes[(topic, partition)] = envelope_prefix(topic, partition)
            pos, n = _native_scan(buf, pos, end, topic, partition, min_offset, limit, out, Record, prefix, self._keys)
            limit -= n
            if limit <= 0:
                return pos, OK, ""
        return py_parse_records(buf, pos, end, topic, partition, min_offset, limit, out)
