"""The Avro serde: dicts to framed bytes and back, with every schema parsed once.

Two framings, told apart by the first byte whatever the configuration:

* ``0xC3 0x01`` + 8-byte CRC-64-AVRO fingerprint (little-endian) + body -- Avro
  single-object encoding. Fingerprints resolve from ``schemas/``: the current version
  and every released one, so old data still decodes (read with its writer schema,
  resolved to the current reader schema of the same name).
* ``0x00`` + 4-byte big-endian schema id + body -- the Confluent wire format, used for
  encoding when a schema registry URL is configured (see :mod:`streams.serde.registry`).

The hot path is :meth:`Serde.encode` / :meth:`Serde.decode`: one dict lookup for the
cached framing prefix and parsed schema, one fastavro call, no copies of the value.
Every failure is typed: :class:`~streams.errors.DecodeError`,
:class:`~streams.errors.UnknownSchemaError`, :class:`~streams.errors.ValidationError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from io import BytesIO
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

from fastavro import schemaless_reader, schemaless_writer
from fastavro.validation import validate

from streams.errors import DecodeError, UnknownSchemaError, ValidationError
from streams.native import NATIVE
from streams.serde.repo import SchemaRepo, SchemaVersion

if TYPE_CHECKING:
    from streams.config import HftSettings
    from streams.serde.registry import Registry

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = 0x00
_SO_HEADER = 10  # 2 magic bytes + 8 fingerprint bytes
_CF_HEADER = 5  # 1 magic byte + 4 schema id bytes
_INT32 = (-(2**31), 2**31 - 1)


class Decoded(NamedTuple):
    """A decoded record: the full name of its schema and its value."""

    schema: str
    value: dict[str, Any]


# (framing prefix, parsed writer schema, top-level int/long field names, top-level int field names)
_Writer = tuple[bytes, dict[str, Any], tuple[str, ...], tuple[str, ...]]
# (schema full name, parsed writer schema, parsed reader schema or None when the same, body offset)
_Reader = tuple[str, dict[str, Any], "dict[str, Any] | None", int]
_new_tuple = tuple.__new__  # Decoded(...) without NamedTuple's Python-level __new__ (hot path)


def native_codec(parsed: dict[str, Any]) -> Any:
    """The native core's codec compiled from fastavro's ``parsed`` schema, or ``None`` (no native core, or a
    schema it does not compile, e.g. one with logical types). Its ``decode``/``encode`` return ``None`` for
    anything fastavro should judge, so every error still comes from the fastavro path below."""
    if NATIVE is None:
        return None
    try:
        return NATIVE.Codec(parsed)
    except ValueError:
        return None


def integer_fields(schema: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Top-level fields whose type is exactly ``long``/``int`` (not a union): (all of them, the ``int`` ones).

    fastavro truncates a float written to such a field (``187.25`` becomes ``187``); money is
    never a float, so :meth:`Serde.encode` refuses anything but an ``int`` there.
    """
    names, ints = [], []
    for fld in schema.get("fields", []):
        t = fld["type"]
        if isinstance(t, dict) and "logicalType" not in t:
            t = t.get("type")
        if t in ("long", "int"):
            names.append(fld["name"])
            if t == "int":
                ints.append(fld["name"])
    return tuple(names), tuple(ints)


class Serde:
    """Encode dicts as framed Avro and decode framed Avro to :class:`Decoded`.

    ``Serde(repo)`` writes single-object encoding; ``Serde(repo, registry_url)`` writes the
    Confluent wire format through ``confluent_kafka.schema_registry`` (``mock://...`` works
    for tests; pass ``registry_client`` to share one client). Both framings always decode.
    """

    def __init__(self, repo: SchemaRepo, registry_url: str | None = None, *, registry_client: Any = None) -> None:
        self.repo = repo
        self._writers: dict[str, _Writer] = {}
        self._readers: dict[bytes, _Reader] = {}
        # native fast paths (streams/native.py): by record name for encoding, by header for decoding;
        # only the single-object framing of schemas read as written (no resolution across versions)
        self._native_enc: dict[str, Any] = {}
        self._native_dec: dict[bytes, tuple[str, Any]] = {}
        for name in repo.names():
            cur = repo.current(name)
            longs, ints = integer_fields(cur.schema)
            self._writers[name] = (SINGLE_OBJECT_MAGIC + cur.fingerprint, cur.parsed, longs, ints)
            codec = native_codec(cur.parsed)
            if codec is not None:
                self._native_enc[name] = codec
        for ver in repo.versions():
            r = self._readers[SINGLE_OBJECT_MAGIC + ver.fingerprint] = self._reader_for(ver, _SO_HEADER)
            codec = native_codec(ver.parsed) if r[2] is None else None
            if codec is not None:
                self._native_dec[SINGLE_OBJECT_MAGIC + ver.fingerprint] = (ver.name, codec)
        self._registry: Registry | None = None
        if registry_url or registry_client is not None:
            from streams.serde.registry import Registry

            self._registry = Registry(registry_url, client=registry_client)
        self._reg_writers: dict[tuple[str, str | None], _Writer] = {}
        self._reg_readers: dict[int, _Reader] = {}

    @classmethod
    def from_settings(cls, settings: HftSettings | None = None) -> Serde:
        """A serde for the configured schemas folder and (optional) schema registry."""
        from streams.config import HftSettings

        s = settings or HftSettings()
        return cls(SchemaRepo.load(s.schemas_dir), s.schema_registry)

    @property
    def registry_url(self) -> str | None:
        """The registry in use for encoding, or ``None`` for single-object encoding."""
        return self._registry.url if self._registry else None

    # -- encoding ----------------------------------------------------------------

    def encode(self, name: str, value: dict[str, Any], *, topic: str | None = None) -> bytes:
        """Encode ``value`` as record ``name``. ``topic`` picks the registry subject (``<topic>-value``).

        Raises :class:`UnknownSchemaError` for an unknown name and :class:`ValidationError`
        (naming the field) for a value that does not fit the schema.
        """
        w = self._writers.get(name) if self._registry is None else self._registry_writer(name, topic)
        if w is None:
            raise self._unknown(name)
        prefix, parsed, longs, ints = w
        if self._registry is None:
            codec = self._native_enc.get(name)
            if codec is not None:
                out = codec.encode(prefix, value)
                if out is not None:
                    return out
        try:
            for f in longs:
                if value.get(f, 0).__class__ is not int:
                    raise self._invalid(name, value, parsed, f)
            for f in ints:
                if not _INT32[0] <= value.get(f, 0) <= _INT32[1]:
                    raise self._invalid(name, value, parsed, f)
            bio = BytesIO()
            bio.write(prefix)
            schemaless_writer(bio, parsed, value)
        except ValidationError:
            raise
        except Exception as exc:  # fastavro raises TypeError/ValueError/OverflowError/AttributeError...
            raise self._invalid(name, value, parsed, None, exc) from None
        return bio.getvalue()

    def encode_many(self, name: str, values: Iterable[dict[str, Any]], *, topic: str | None = None) -> list[bytes]:
        """Encode a batch of values of one record type (the schema is looked up once)."""
        w = self._writers.get(name) if self._registry is None else self._registry_writer(name, topic)
        if w is None:
            raise self._unknown(name)
        prefix, parsed, longs, ints = w
        if self._registry is None and values.__class__ is list:  # (an iterator is consumed once: the Python path)
            codec = self._native_enc.get(name)
            if codec is not None:
                done = codec.encode_many(prefix, values)
                if done is not None:
                    return done
        lo, hi = _INT32
        out: list[bytes] = []
        append = out.append
        value: Any = None
        try:
            for value in values:
                for f in longs:
                    if value.get(f, 0).__class__ is not int:
                        raise self._invalid(name, value, parsed, f, index=len(out))
                for f in ints:
                    if not lo <= value.get(f, 0) <= hi:
                        raise self._invalid(name, value, parsed, f, index=len(out))
                bio = BytesIO()
                bio.write(prefix)
                schemaless_writer(bio, parsed, value)
                append(bio.getvalue())
        except ValidationError:
            raise
        except Exception as exc:
            raise self._invalid(name, value, parsed, None, exc, index=len(out)) from None
        return out

    @property
    def native_encoders(self) -> dict[str, tuple[bytes, Any]] | None:
        """Schema name -> (single-object prefix, native codec) for the schemas the native core encodes, or ``None``
        (no native core, or a registry: its framing stays in Python). A new dict: callers keep it (RuntimeCodec)."""
        if self._registry is not None or not self._native_enc:
            return None
        return {name: (self._writers[name][0], codec) for name, codec in self._native_enc.items()}

    # -- decoding ----------------------------------------------------------------

    @property
    def native_decoders(self) -> dict[bytes, tuple[str, Any]] | None:
        """Single-object header -> (schema name, native codec) for the versions the native core decodes, or ``None``."""
        return self._native_dec or None

    def decode(self, data: bytes) -> Decoded:
        """Decode one framed record (either framing). Raises :class:`DecodeError` / :class:`UnknownSchemaError`."""
        if data.__class__ is not bytes:
            data = _as_bytes(data)
        nat = self._native_dec.get(data[:_SO_HEADER])
        if nat is not None:
            value = nat[1].decode(data, _SO_HEADER)
            if value is not None:
                return _new_tuple(Decoded, (nat[0], value))
        # fast path: the 10-byte single-object header (magic + fingerprint) is the key
        r = self._readers.get(data[:_SO_HEADER]) or self._slow_reader(data)
        bio = BytesIO(data)
        bio.seek(r[3])
        try:
            value = schemaless_reader(bio, r[1], r[2])
        except Exception as exc:  # EOFError, IndexError, UnicodeDecodeError, SchemaResolutionError...
            raise _body_error(r[0], data, exc, bio.tell()) from None
        if bio.tell() != len(data):
            raise _trailing(r[0], data, bio.tell())
        return _new_tuple(Decoded, (r[0], value))

    def decode_many(self, datas: Iterable[bytes]) -> list[Decoded]:
        """Decode a batch; the first undecodable item raises (its index is in the message)."""
        out: list[Decoded] = []
        append = out.append
        readers = self._readers
        natives = self._native_dec
        slow = self._slow_reader
        data: Any = None
        for data in datas:
            if data.__class__ is not bytes:
                data = _as_bytes(data)
            nat = natives.get(data[:_SO_HEADER])
            if nat is not None:
                value = nat[1].decode(data, _SO_HEADER)
                if value is not None:
                    append(_new_tuple(Decoded, (nat[0], value)))
                    continue
            try:
                r = readers.get(data[:_SO_HEADER]) or slow(data)
            except DecodeError as exc:
                exc.args = (f"item {len(out)}: {exc.args[0]}",)
                raise
            bio = BytesIO(data)
            bio.seek(r[3])
            try:
                value = schemaless_reader(bio, r[1], r[2])
            except Exception as exc:
                err = _body_error(r[0], data, exc, bio.tell())
                err.args = (f"item {len(out)}: {err.args[0]}",)
                raise err from None
            if bio.tell() != len(data):
                err = _trailing(r[0], data, bio.tell())
                err.args = (f"item {len(out)}: {err.args[0]}",)
                raise err
            append(_new_tuple(Decoded, (r[0], value)))
        return out

    def current_framing(self, data: bytes) -> tuple[bytes, str, int] | None:
        """``(header, schema full name, body offset)`` when ``data`` is framed with the *current* version of a
        known schema (so its body reads with that schema as is), else ``None``. Nothing is decoded or raised.

        The tape sink's fast path keys on ``header`` and hands the body to ClickHouse (connectors/clickhouse/avro_block.py).
        """
        r = self._readers.get(data[:_SO_HEADER])
        if r is not None:
            return (data[:_SO_HEADER], r[0], r[3]) if r[2] is None and self._is_current(r[0], data[2:_SO_HEADER]) else None
        if data[:1] == b"\x00" and len(data) >= _CF_HEADER:
            r = self._reg_readers.get(int.from_bytes(data[1:_CF_HEADER], "big"))
            if r is not None and r[2] is None:
                return data[:_CF_HEADER], r[0], r[3]
        return None

    def _is_current(self, name: str, fp: bytes) -> bool:
        try:
            return self.repo.current(name).fingerprint == fp
        except UnknownSchemaError:
            return False

    # -- internals ---------------------------------------------------------------

    def _reader_for(self, ver: SchemaVersion, start: int) -> _Reader:
        try:
            cur = self.repo.current(ver.name)
        except UnknownSchemaError:
            return (ver.name, ver.parsed, None, start)
        return (ver.name, ver.parsed, None if cur.canonical == ver.canonical else cur.parsed, start)

    def _slow_reader(self, data: bytes) -> _Reader:
        """Everything but a known single-object header: Confluent framing, or a precise error."""
        if data[:2] == SINGLE_OBJECT_MAGIC:
            return self._so_missing(data)
        if data[:1] == b"\x00":
            return self._confluent_reader(data)
        raise _bad_framing(data)

    def _so_missing(self, data: bytes) -> NoReturn:
        if len(data) < _SO_HEADER:
            raise DecodeError(
                f"truncated single-object header: {len(data)} byte(s), need {_SO_HEADER} (0xC3 0x01 + 8-byte fingerprint)",
                hint="the value was cut short; check the producer and the log segment it came from",
            )
        raise UnknownSchemaError(
            f"unknown schema fingerprint {data[2:_SO_HEADER].hex()} (CRC-64-AVRO, little-endian) in a single-object record",
            hint="the writer used a schema that is neither current nor released in schemas/; "
            "add its release file under schemas/releases/ or update schemas/",
        )

    def _confluent_reader(self, data: bytes) -> _Reader:
        if len(data) < _CF_HEADER:
            raise DecodeError(
                f"truncated Confluent wire-format header: {len(data)} byte(s), need {_CF_HEADER} (0x00 + 4-byte schema id)",
                hint="the value was cut short; check the producer and the log segment it came from",
            )
        schema_id = int.from_bytes(data[1:_CF_HEADER], "big")
        r = self._reg_readers.get(schema_id)
        if r is not None:
            return r
        if self._registry is None:
            raise DecodeError(
                f"record is in the Confluent wire format (schema id {schema_id}) but no schema registry is configured",
                hint="set HFTSTREAM_SCHEMA_REGISTRY (or --schema-registry URL) to the registry the producer used",
            )
        ver = self._registry.writer_schema(schema_id)  # raises UnknownSchemaError / BrokerUnavailableError
        r = self._reader_for(ver, _CF_HEADER)
        self._reg_readers[schema_id] = r
        return r

    def _registry_writer(self, name: str, topic: str | None) -> _Writer | None:
        w = self._reg_writers.get((name, topic))
        if w is not None:
            return w
        base = self._writers.get(name)
        if base is None or self._registry is None:
            return base
        cur = self.repo.current(name)
        schema_id = self._registry.register(cur, f"{topic}-value" if topic else name)
        w = (bytes([CONFLUENT_MAGIC]) + schema_id.to_bytes(4, "big"), base[1], base[2], base[3])
        self._reg_writers[(name, topic)] = w
        self._reg_readers.setdefault(schema_id, (name, cur.parsed, None, _CF_HEADER))
        return w

    def _unknown(self, name: str) -> UnknownSchemaError:
        """The error for encoding with a name that is not a current schema."""
        try:
            self.repo.current(name)
        except UnknownSchemaError as exc:
            return exc
        return UnknownSchemaError(f"unknown schema {name!r}")

    @staticmethod
    def _invalid(
        name: str,
        value: Any,
        parsed: dict[str, Any],
        field: str | None,
        exc: BaseException | None = None,
        *,
        index: int | None = None,
    ) -> ValidationError:
        where = f"{name}" if index is None else f"{name} (item {index})"
        hint = "build the value with the fields and types the .avsc declares (`hftstream schemas show NAME`)"
        if not isinstance(value, Mapping):
            return ValidationError(f"{where}: value must be a dict, got {type(value).__name__}", hint=hint)
        if field is not None:
            got = value.get(field)
            kind = "a 32-bit int" if isinstance(got, int) and not isinstance(got, bool) else "an int"
            return ValidationError(
                f"{where}: field {field!r} must be {kind} (prices, quantities and timestamps are scaled integers), "
                f"got {type(got).__name__} {got!r}",
                hint="scale prices/quantities by the instrument's price_scale/size_scale and pass an int",
            )
        problems = ""
        try:
            validate(value, parsed, raise_errors=True)
        except Exception as verr:  # fastavro ValidationError carries one message per bad field
            problems = "; ".join(str(m) for m in getattr(verr, "errors", []) or [verr])
        detail = problems or f"{type(exc).__name__}: {exc}"
        return ValidationError(f"{where}: value does not fit the schema: {detail}", hint=hint)


def _as_bytes(data: Any) -> bytes:
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    if data is None:
        raise DecodeError("no value (None: a tombstone?) to decode", hint="tombstones carry no record; skip them before decoding")
    raise DecodeError(f"cannot decode a {type(data).__name__}, expected bytes", hint="pass the record's value bytes")


def _bad_framing(data: bytes) -> DecodeError:
    if not data:
        return DecodeError("empty value: no framing byte", hint="an empty value is not a record; check the producer (tombstones are None, not b'')")
    if data[0] == 0xC3:
        return DecodeError(
            f"bad single-object marker 0x{data[:2].hex()}: expected 0xc301",
            hint="the value is not Avro single-object encoded; check the producer",
        )
    return DecodeError(
        f"unknown framing byte 0x{data[0]:02x}: expected 0xc3 (Avro single-object) or 0x00 (Confluent wire format)",
        hint="the value is not hftstream Avro (plain JSON or raw Avro without framing?); inspect it with `hftstream replay --format json`",
    )


def _body_error(name: str, data: bytes, exc: BaseException, position: int) -> DecodeError:
    # fastavro signals running out of bytes with EOFError, or IndexError inside a varint
    if type(exc).__name__ == "SchemaResolutionError":
        why = f"cannot resolve the writer schema to the current reader schema ({exc})"
    elif isinstance(exc, EOFError) and "Expected -" in str(exc):
        why = "corrupt body (negative length prefix)"
    elif isinstance(exc, EOFError) or (isinstance(exc, IndexError) and position >= len(data)):
        why = "truncated body (ran out of bytes)"
    else:
        why = f"corrupt body ({type(exc).__name__}: {exc})" if str(exc) else f"corrupt body ({type(exc).__name__})"
    return DecodeError(f"{name}: {why}; {len(data)} byte(s) in the value", hint="the bytes were damaged or written with a different schema than the header claims")


def _trailing(name: str, data: bytes, used: int) -> DecodeError:
    return DecodeError(
        f"{name}: {len(data) - used} trailing byte(s) after the record (read {used} of {len(data)})",
        hint="the value holds more than one record or was written with a different schema than the header claims",
    )
