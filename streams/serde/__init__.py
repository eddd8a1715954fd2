"""Avro serde: schemas from ``schemas/`` parsed once, single-object or Confluent framing.

>>> from streams.serde import SchemaRepo, Serde
>>> serde = Serde(SchemaRepo.load())
>>> data = serde.encode("hftstream.md.Heartbeat", {...})     # doctest: +SKIP
>>> serde.decode(data)                                        # doctest: +SKIP
Decoded(schema='hftstream.md.Heartbeat', value={...})
"""

from streams.serde.codec import Decoded, Serde
from streams.serde.fingerprint import canonical_form, crc64_avro, fingerprint
from streams.serde.repo import SchemaRepo, SchemaVersion

__all__ = ["Decoded", "SchemaRepo", "SchemaVersion", "Serde", "canonical_form", "crc64_avro", "fingerprint"]
