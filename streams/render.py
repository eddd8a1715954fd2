"""Render decoded records for people and for golden files: stable JSON lines and a compact table."""

from __future__ import annotations

import base64
import json
from typing import Any

from streams.timeutil import format_iso_ns


def jsonable(value: Any) -> Any:
    """``json.dumps`` default: bytes become text when they are UTF-8, else ``{"base64": ...}``."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(raw).decode("ascii")}
    raise TypeError(f"cannot render {type(value).__name__}")


def readable_bytes(raw: bytes) -> str:
    """Bytes for a person: the text when it is printable UTF-8, else ``0x`` and hex."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "0x" + raw.hex()
    return text if text.isprintable() else "0x" + raw.hex()


def headers_doc(headers: Any) -> dict[str, Any]:
    """Record headers as a JSON object (values as text or ``{"base64": ...}``; a repeated name keeps every value)."""
    doc: dict[str, Any] = {}
    for name, value in headers:
        shown = None if value is None else jsonable(value)
        if name in doc:
            prev = doc[name]
            doc[name] = (prev if isinstance(prev, list) else [prev]) + [shown]
        else:
            doc[name] = shown
    return doc


def json_line(rep: Any, *, headers: bool = False) -> str:
    """One replayed record as a JSON line: topic, partition, offset, timestamp (ns), key, value.

    A tombstone has ``"value": null`` and ``"tombstone": true``; an undecodable record has
    ``"value": null``, the ``"error"`` and its bytes as ``"value_base64"``. With ``headers``,
    ``"headers"`` holds the record headers (lineage: ``hft.src.topic`` / ``partition`` / ``offset``).
    """
    rec = rep.record
    doc: dict[str, Any] = {
        "topic": rec.topic,
        "partition": rec.partition,
        "offset": rec.offset,
        "timestamp": rec.timestamp_ns,
        "key": None if rec.key is None else jsonable(rec.key),
        "value": rep.value,
    }
    if rec.value is None:
        doc["tombstone"] = True
    if rep.error is not None:
        doc["error"] = rep.error
        doc["value_base64"] = base64.b64encode(bytes(rec.value)).decode("ascii")
    if headers:
        doc["headers"] = headers_doc(rec.headers)
    return json.dumps(doc, default=jsonable, ensure_ascii=False, separators=(",", ":"))


_KEY_W, _TYPE_W = 12, 15
TABLE_HEADER = f"{'PART':>4} {'OFFSET':>10}  {'TIMESTAMP (UTC)':<30}  {'KEY':<{_KEY_W}} {'TYPE':<{_TYPE_W}} VALUE"
TABLE_WIDTH = 120
_MIN_VALUE_W, _NARROW_INDENT = 30, 20  # below this much room beside the row, the value goes on indented lines under it


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _lineage(headers: Any) -> str:
    from streams.lineage import source_of

    src = source_of(headers)
    rest = [(k, v) for k, v in headers if not k.startswith("hft.src.")]
    parts = [f"src={src[0]}/{src[1]}@{src[2]}"] if src else []
    parts += [f"{k}={readable_bytes(bytes(v)) if v is not None else ''}" for k, v in rest]
    return "[" + " ".join(parts) + "] " if parts else ""


# Shown first in the table's VALUE column, in this order: what a person scans a row for.
TABLE_FIRST = (
    "symbol", "side", "price", "quantity", "size", "last_price", "last_qty", "cum_qty", "leaves_qty", "cancelled_qty",
    "bid_price", "bid_size", "ask_price", "ask_size", "status", "state", "exec_type", "reason_code", "reason", "command",
    "account", "venue", "client_order_id", "order_id", "fill_id",
)


def _pairs(value: Any) -> list[str]:
    """A decoded value as ``field=value`` items: :data:`TABLE_FIRST` fields first, then the rest in schema order; nulls left out."""
    if not isinstance(value, dict):
        return [json.dumps(value, default=jsonable, ensure_ascii=False, separators=(",", ":"))]
    order = [k for k in TABLE_FIRST if k in value] + [k for k in value if k not in TABLE_FIRST]
    out = []
    for k in order:
        v = value[k]
        if v is None:
            continue
        shown = v if isinstance(v, str) else json.dumps(v, default=jsonable, ensure_ascii=False, separators=(",", ":"))
        out.append(f"{k}={shown}")
    return out


def _wrap(items: list[str], width: int) -> list[str]:
    """Items joined by spaces into lines of at most ``width`` characters (an item longer than that is cut)."""
    lines: list[str] = []
    for item in items:
        item = _clip(item, width)
        if lines and len(lines[-1]) + 1 + len(item) <= width:
            lines[-1] += " " + item
        else:
            lines.append(item)
    return lines or [""]


def table_row(rep: Any, width: int = TABLE_WIDTH, *, headers: bool = False) -> str:
    """One replayed record as table text, no line longer than ``width``: a row, and continuation lines as needed.

    The value shows as ``field=value`` items, the fields people look for first (symbol, side, price,
    quantity, ...: :data:`TABLE_FIRST`), wrapped onto indented continuation lines under VALUE instead of
    being cut. Binary keys show as ``0x`` + hex; tombstones as ``<tombstone>``; undecodable records show
    their first bytes (base64) and the error. With ``headers``, lineage comes first as ``[src=topic/p@offset]``.
    """
    rec = rep.record
    key = "" if rec.key is None else readable_bytes(bytes(rec.key))
    kind = (rep.schema or "<undecodable>").rsplit(".", 1)[-1]
    if rec.value is None:
        items = ["tombstone (deletes this key)"]
    elif rep.error is not None:
        items = f"[base64:{_clip(base64.b64encode(bytes(rec.value)).decode('ascii'), 24)}] {rep.error}".split(" ")
    else:
        items = _pairs(rep.value)
    if headers:
        items = [_lineage(rec.headers).rstrip(), *items] if _lineage(rec.headers) else items
    prefix = f"{rec.partition:>4} {rec.offset:>10}  {format_iso_ns(rec.timestamp_ns):<30}  {_clip(key, _KEY_W):<{_KEY_W}} {_clip(kind, _TYPE_W):<{_TYPE_W}} "
    if width - len(prefix) >= _MIN_VALUE_W:
        lines = _wrap(items, width - len(prefix))
        return "\n".join([prefix + lines[0], *(" " * len(prefix) + line for line in lines[1:])])
    lines = _wrap(items, max(width - _NARROW_INDENT, _MIN_VALUE_W))  # a narrow terminal: the value goes under the row
    return "\n".join([prefix.rstrip(), *(" " * _NARROW_INDENT + line for line in lines)])
