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


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _lineage(headers: Any) -> str:
    from streams.lineage import source_of

    src = source_of(headers)
    rest = [(k, v) for k, v in headers if not k.startswith("hft.src.")]
    parts = [f"src={src[0]}/{src[1]}@{src[2]}"] if src else []
    parts += [f"{k}={readable_bytes(bytes(v)) if v is not None else ''}" for k, v in rest]
    return "[" + " ".join(parts) + "] " if parts else ""


def table_row(rep: Any, width: int = TABLE_WIDTH, *, headers: bool = False) -> str:
    """One replayed record as a fixed-width table row, at most ``width`` characters long.

    Binary keys show as ``0x`` + hex; tombstones as ``<tombstone>``; undecodable records show
    their first bytes (base64) and the error. With ``headers``, lineage comes first as ``[src=topic/p@offset]``.
    """
    rec = rep.record
    key = "" if rec.key is None else readable_bytes(bytes(rec.key))
    kind = (rep.schema or "<undecodable>").rsplit(".", 1)[-1]
    if rec.value is None:
        body = "tombstone (deletes this key)"
    elif rep.error is not None:
        body = f"[base64:{_clip(base64.b64encode(bytes(rec.value)).decode('ascii'), 24)}] {rep.error}"
    else:
        body = json.dumps(rep.value, default=jsonable, ensure_ascii=False, separators=(",", ":"))
    if headers:
        body = _lineage(rec.headers) + body
    prefix = f"{rec.partition:>4} {rec.offset:>10}  {format_iso_ns(rec.timestamp_ns):<30}  {_clip(key, _KEY_W):<{_KEY_W}} {_clip(kind, _TYPE_W):<{_TYPE_W}} "
    return prefix + _clip(body, max(width - len(prefix), 10))
