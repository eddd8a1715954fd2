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


def json_line(rep: Any) -> str:
    """One replayed record as a JSON line: topic, partition, offset, timestamp (ns), key, value (+ error)."""
    rec = rep.record
    doc: dict[str, Any] = {
        "topic": rec.topic,
        "partition": rec.partition,
        "offset": rec.offset,
        "timestamp": rec.timestamp_ns,
        "key": None if rec.key is None else jsonable(rec.key),
        "value": rep.value,
    }
    if rep.error is not None:
        doc["error"] = rep.error
    return json.dumps(doc, default=jsonable, ensure_ascii=False, separators=(",", ":"))


TABLE_HEADER = f"{'PART':>4} {'OFFSET':>10}  {'TIMESTAMP (UTC)':<30}  {'KEY':<12} {'TYPE':<22} VALUE"


def table_row(rep: Any, width: int = 120) -> str:
    """One replayed record as a fixed-width table row (value abbreviated to ``width`` characters)."""
    rec = rep.record
    key = "" if rec.key is None else str(jsonable(rec.key))
    kind = (rep.schema or "<undecodable>").rsplit(".", 1)[-1]
    body = rep.error if rep.error is not None else json.dumps(rep.value, default=jsonable, ensure_ascii=False, separators=(",", ":"))
    if len(body) > width:
        body = body[: width - 1] + "…"
    return f"{rec.partition:>4} {rec.offset:>10}  {format_iso_ns(rec.timestamp_ns):<30}  {key[:12]:<12} {kind[:22]:<22} {body}"
