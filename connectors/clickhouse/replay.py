"""Replay from the tape: the log records of a topic rebuilt from their ClickHouse rows, for when retention dropped them.

Each row holds where the record was (topic, partition, offset), its log time, key and lineage, and
every field of its value as a typed column; the record type names its schema. A record is rebuilt
by re-encoding that value with the serde (Avro is deterministic: the same value and schema give the
same bytes), with the key and the lineage headers (``hft.src.*``, the only headers the pipeline
writes). A record the sink could not type (its own dead letter, ``processor = 'tape'``) comes back
byte for byte from the dead letter's ``value``, ``key`` and ``headers``.

So ``hftstream replay --source tape`` prints what a log replay of the same range prints (tested), with
two documented limits: a record written with an older schema version comes back encoded with the
current one (same decoded value), and an empty key comes back as no key.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from streams.errors import HftError, UnknownPartitionError
from streams.lineage import SOURCE_OFFSET, SOURCE_PARTITION, SOURCE_TOPIC
from streams.log.base import Record
from streams.replay import ReplayRequest, merge_partitions
from streams.serde import Serde

from connectors.clickhouse.tables import DEAD_LETTERS, ROUTES, TABLES, Column, table_columns

_CHUNK = 20_000


class NotOnTapeError(HftError):
    """The requested topic (or range) is not on the tape."""


def _schema_by_type() -> dict[tuple[str, str], str]:
    """``(table, short record type) -> full schema name``."""
    return {(table, name.rsplit(".", 1)[-1]): name for name, table in ROUTES.items()}


class TapeSource:
    """Reads a topic's rows back from the tape as :class:`~streams.log.base.Record` objects."""

    def __init__(self, client: Any, serde: Serde, topic: str) -> None:
        self.client, self.serde, self.topic = client, serde, topic
        self.columns = table_columns(client)
        self.tables = [t for t in TABLES if self._has(t)]
        if not self.tables:
            raise NotOnTapeError(
                f"topic {topic!r} has no rows on the tape",
                hint="check the name (`hftstream tape query \"SELECT DISTINCT topic FROM tape.sink_batches\"`), "
                "or sink it first: `hftstream tape sink --topics " + topic + " --until-idle`",
            )
        self._types = _schema_by_type()

    def _has(self, table: str) -> bool:
        rows = self.client.query(f"SELECT 1 FROM tape.{table} WHERE topic = {{t:String}} LIMIT 1", parameters={"t": self.topic})
        return bool(rows.result_rows)

    def partitions(self) -> dict[int, tuple[int, int]]:
        """Per partition on the tape: ``(lowest offset, highest offset + 1)``."""
        union = " UNION ALL ".join(
            f"SELECT partition, offset FROM tape.{t} WHERE topic = {{t:String}}" for t in self.tables)
        rows = self.client.query(f"SELECT partition, min(offset), max(offset) + 1 FROM ({union}) GROUP BY partition",
                                 parameters={"t": self.topic}).result_rows
        return {int(p): (int(lo), int(hi)) for p, lo, hi in rows}

    def first_offset_at(self, partition: int, ts_ns: int) -> int | None:
        """The first offset of ``partition`` whose log time is at or after ``ts_ns`` (as ``Log.offset_for_time``)."""
        union = " UNION ALL ".join(
            f"SELECT offset FROM tape.{t} WHERE topic = {{t:String}} AND partition = {{p:Int32}} "
            f"AND log_ts >= fromUnixTimestamp64Nano({{ts:Int64}}, 'UTC')" for t in self.tables)
        rows = self.client.query(f"SELECT min(offset), count() FROM ({union})",
                                 parameters={"t": self.topic, "p": partition, "ts": ts_ns}).result_rows
        return int(rows[0][0]) if rows and rows[0][1] else None

    def plan(self, req: ReplayRequest) -> dict[int, tuple[int, int]]:
        """Per partition, the ``[start, end)`` offsets of ``req`` the tape covers (as :func:`streams.replay.plan` on a log)."""
        have = self.partitions()
        if req.partition is not None:
            if req.partition not in have:
                raise UnknownPartitionError(req.topic, req.partition, max(have) + 1 if have else 0)
            have = {req.partition: have[req.partition]}
        spans = {}
        for p, (low, high) in sorted(have.items()):
            start = max(req.from_offset, low)
            if req.from_time_ns is not None:
                at = self.first_offset_at(p, req.from_time_ns)
                start = max(start, high if at is None else at)
            end = high if req.to_offset is None else min(high, req.to_offset + 1)
            spans[p] = (start, max(start, end))
        return spans

    def records(self, req: ReplayRequest, spans: dict[int, tuple[int, int]]) -> Iterator[Record]:  # type: ignore[override]
        """The records of ``spans``, merged in the replay order (the same as a log replay's)."""
        return merge_partitions([self.partition_records(p, s, e) for p, (s, e) in sorted(spans.items()) if s < e])

    def partition_records(self, partition: int, start: int, end: int) -> Iterator[Record]:
        """The records of ``partition`` with ``start <= offset < end``, in offset order (one row per offset: ``FINAL``)."""
        lo = start
        while lo < end:
            hi = min(end, lo + _CHUNK)
            batch: list[tuple[int, Record]] = []
            for table in self.tables:
                batch.extend(self._rows(table, partition, lo, hi))
            batch.sort(key=lambda x: x[0])
            for _, rec in batch:
                yield rec
            lo = hi

    def _rows(self, table: str, partition: int, lo: int, hi: int) -> Iterator[tuple[int, Record]]:
        cols: list[Column] = [c for c in self.columns[table] if c.name != "sunk_at"]
        select = ", ".join(_select(c) for c in cols)
        result = self.client.query(
            f"SELECT {select} FROM tape.{table} FINAL WHERE topic = {{t:String}} AND partition = {{p:Int32}} "
            f"AND offset >= {{a:Int64}} AND offset < {{b:Int64}} ORDER BY offset",
            parameters={"t": self.topic, "p": partition, "a": lo, "b": hi},
            query_formats={"String": "bytes"},
        )
        names = [c.name for c in cols]
        for row in result.result_rows:
            r = dict(zip(names, row))
            yield int(r["offset"]), self._record(table, partition, r)

    def _record(self, table: str, partition: int, r: dict[str, Any]) -> Record:
        key = r["log_key"] or None
        if table == DEAD_LETTERS and r["processor"] == b"tape":  # the sink's own dead letter: the bytes as they were
            headers = tuple((_unhex(k).decode(), _unhex(v)) for k, v in (r["headers"] or ()))
            return Record(self.topic, partition, int(r["offset"]), int(r["log_ts"]), key, r["value"] or None, headers)
        rtype = r["record_type"].decode()
        name = self._types.get((table, rtype))
        if name is None:
            raise NotOnTapeError(f"tape.{table} row at {self.topic}/{partition}@{r['offset']} has record type {rtype!r}, "
                                 "which no schema routes there", hint="the tape was written by another version of hftstream")
        value = _value(self.serde.repo.schema(name), r)
        headers: tuple[tuple[str, bytes], ...] = ()
        if r["src_topic"]:
            headers = ((SOURCE_TOPIC, r["src_topic"]), (SOURCE_PARTITION, b"%d" % r["src_partition"]),
                       (SOURCE_OFFSET, b"%d" % r["src_offset"]))
        return Record(self.topic, partition, int(r["offset"]), int(r["log_ts"]), key, self.serde.encode(name, value), headers)


def _select(c: Column) -> str:
    """The SELECT expression of a column: times as ns; header arrays hex-encoded (bytes survive inside tuples)."""
    if c.is_time:
        return f"toUnixTimestamp64Nano(`{c.name}`)"
    if c.type.startswith("Array(Tuple(key String, value String)"):
        return f"arrayMap(h -> (hex(tupleElement(h, 1)), hex(tupleElement(h, 2))), `{c.name}`)"
    return f"`{c.name}`"


def _unhex(x: str | bytes) -> bytes:
    return bytes.fromhex(x.decode() if isinstance(x, bytes) else x)


def _value(schema: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    """The Avro value of ``schema`` from a row read with String columns as bytes and times as ns."""
    out: dict[str, Any] = {}
    for f in schema["fields"]:
        name = f["name"]
        col = name if name in row else name[:-3]  # ts_ns -> ts
        out[name] = _field(f["type"], row[col])
    return out


def _field(ftype: Any, v: Any) -> Any:
    if v is None:
        return None
    if isinstance(ftype, list):
        branch = next(b for b in ftype if b != "null")
        return _field(branch, v)
    kind = ftype.get("type") if isinstance(ftype, dict) else ftype
    if kind == "array":
        items = ftype["items"]
        if [f["name"] for f in items["fields"]] == ["key", "value"]:  # DeadLetter.headers, hex-encoded by _select
            return [{"key": _unhex(k).decode(), "value": _unhex(val)} for k, val in v]
        return [{f["name"]: _field(f["type"], x) for f, x in zip(items["fields"], tup)} for tup in v]  # Commit.inputs
    if isinstance(v, bytes) and kind != "bytes":
        return v.decode()
    return v
