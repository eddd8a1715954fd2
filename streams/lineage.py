"""Lineage headers: every derived record names the (topic, partition, offset) that caused it."""

from __future__ import annotations

from streams.log.base import Headers, Record

SOURCE_TOPIC = "hft.src.topic"
SOURCE_PARTITION = "hft.src.partition"
SOURCE_OFFSET = "hft.src.offset"
_KEYS = (SOURCE_TOPIC, SOURCE_PARTITION, SOURCE_OFFSET)


_PREFIXES: dict[tuple[str, int], Headers] = {}  # (topic, partition) -> its two lineage headers (hot path)


def lineage_headers(rec: Record) -> Headers:
    """``rec``'s headers without any older lineage, plus lineage pointing at ``rec``."""
    prefix = _PREFIXES.get((rec.topic, rec.partition))
    if prefix is None:
        if len(_PREFIXES) > 100_000:
            _PREFIXES.clear()
        prefix = _PREFIXES[(rec.topic, rec.partition)] = (
            (SOURCE_TOPIC, rec.topic.encode()),
            (SOURCE_PARTITION, str(rec.partition).encode()),
        )
    own = prefix + ((SOURCE_OFFSET, b"%d" % rec.offset),)
    if not rec.headers:
        return own
    return tuple(h for h in rec.headers if h[0] not in _KEYS) + own


def source_of(headers: Headers) -> tuple[str, int, int] | None:
    """The (topic, partition, offset) a record was derived from, if it carries lineage."""
    found = {k: v for k, v in headers if k in _KEYS}
    if len(found) != 3:
        return None
    return found[SOURCE_TOPIC].decode(), int(found[SOURCE_PARTITION]), int(found[SOURCE_OFFSET])
