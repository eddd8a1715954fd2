"""Lineage headers: every derived record names the (topic, partition, offset) that caused it."""

from __future__ import annotations

from streams.log.base import Headers, Record

SOURCE_TOPIC = "hft.src.topic"
SOURCE_PARTITION = "hft.src.partition"
SOURCE_OFFSET = "hft.src.offset"
_KEYS = (SOURCE_TOPIC, SOURCE_PARTITION, SOURCE_OFFSET)


def lineage_headers(rec: Record) -> Headers:
    """``rec``'s headers without any older lineage, plus lineage pointing at ``rec``."""
    kept = tuple(h for h in rec.headers if h[0] not in _KEYS)
    return kept + (
        (SOURCE_TOPIC, rec.topic.encode()),
        (SOURCE_PARTITION, str(rec.partition).encode()),
        (SOURCE_OFFSET, str(rec.offset).encode()),
    )


def source_of(headers: Headers) -> tuple[str, int, int] | None:
    """The (topic, partition, offset) a record was derived from, if it carries lineage."""
    found = {k: v for k, v in headers if k in _KEYS}
    if len(found) != 3:
        return None
    return found[SOURCE_TOPIC].decode(), int(found[SOURCE_PARTITION]), int(found[SOURCE_OFFSET])
