"""The Avro serde: round trips of every schema in both framings, malformed input, history, fingerprints."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from fastavro.schema import fingerprint as fastavro_fingerprint

from streams.config import HftSettings, data_dir
from streams.errors import ConfigError, DecodeError, PoisonError, UnknownSchemaError, ValidationError
from streams.serde import Decoded, SchemaRepo, Serde, canonical_form, crc64_avro, fingerprint
from streams.serde.samples import sample

SCHEMAS = data_dir("schemas")
REPO = SchemaRepo.load(SCHEMAS)
NAMES = REPO.names()

REQUIRED = {
    "hftstream.md": ["RawVenueMessage", "Trade", "Quote", "BookDelta", "VenueStatus", "Heartbeat"],
    "hftstream.refdata": ["Instrument"],
    "hftstream.orders": [
        "NewOrder", "CancelOrder", "ReplaceOrder", "OrderAccepted", "OrderRejected", "OrderRested",
        "OrderPartiallyFilled", "OrderFilled", "OrderCancelled", "OrderExpired",
    ],
    "hftstream.fills": ["Fill"],
    "hftstream.risk": ["RiskDecision"],
    "hftstream.ops": ["Halt", "Resume", "ReduceOnly", "KillSwitch", "CancelAll", "SetLimit"],
    "hftstream.ledger": ["LedgerEntry", "Position"],
    "hftstream.exec": ["ExecutionReport"],
    "hftstream.recon": ["ReconBreak", "ReconStatus"],
    "hftstream.dlq": ["DeadLetter"],
}

TRADE = {
    "venue": "alpha",
    "symbol": "AAPL",
    "trade_id": "T-1",
    "price": 1_872_500,
    "size": 100,
    "aggressor_side": "BUY",
    "exchange_ts_ns": 1_700_000_000_000_000_000,
    "recv_ts_ns": 1_700_000_000_000_050_000,
    "seq": 42,
}


@pytest.fixture(scope="module")
def serde() -> Serde:
    return Serde(REPO)


def test_every_required_record_exists_and_names_are_sorted() -> None:
    expected = {f"{ns}.{n}" for ns, names in REQUIRED.items() for n in names}
    assert expected <= set(NAMES), sorted(expected - set(NAMES))
    assert NAMES == sorted(NAMES)


def test_raw_venue_message_has_the_agreed_envelope() -> None:
    fields = {f["name"]: f["type"] for f in REPO.schema("hftstream.md.RawVenueMessage")["fields"]}
    assert fields == {
        "venue": "string", "format": "string", "seq": ["null", "long"], "recv_ts_ns": "long",
        "symbol": ["null", "string"], "payload": "bytes",
    }


@pytest.mark.parametrize("name", NAMES)
def test_schema_conventions(name: str) -> None:
    """Docs on every record; timestamps are long ns; prices and quantities are scaled longs, never floats."""
    schema = REPO.schema(name)
    assert schema.get("doc"), f"{name} has no doc"

    def walk(s: object, path: str) -> None:
        if isinstance(s, list):
            for b in s:
                walk(b, path)
        elif isinstance(s, dict):
            assert s.get("type") not in ("float", "double"), f"{path}: floats are not allowed"
            for f in s.get("fields", []):
                t = f["type"]
                base = [b for b in t if b != "null"] if isinstance(t, list) else [t]
                if f["name"].endswith("_ns"):
                    assert base == ["long"], f"{path}.{f['name']}: timestamps are long ns"
                if any(w in f["name"] for w in ("price", "qty", "quantity", "size")) and not f["name"].endswith("_scale"):
                    assert base == ["long"], f"{path}.{f['name']}: scaled long expected"
                    assert "scale" in f.get("doc", ""), f"{path}.{f['name']}: doc must state the scale"
                walk(t, f"{path}.{f['name']}")
        elif s in ("float", "double"):
            raise AssertionError(f"{path}: floats are not allowed")

    walk(schema, name)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_round_trip_single_object(serde: Serde, name: str, seed: int) -> None:
    value = sample(REPO.schema(name), seed)
    data = serde.encode(name, value)
    cur = REPO.current(name)
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == cur.fingerprint
    assert serde.decode(data) == Decoded(name, value)


def test_encoding_is_deterministic() -> None:
    a, b = Serde(REPO), Serde(SchemaRepo.load(SCHEMAS))
    for name in NAMES:
        value = sample(REPO.schema(name), 7)
        copy = json.loads(json.dumps(value, default=lambda x: x.hex()))  # independent object...
        if copy == value:  # ...when no bytes were hex-ified, it must encode byte-identically
            assert a.encode(name, copy) == a.encode(name, value)
        assert a.encode(name, value) == a.encode(name, value) == b.encode(name, value)


def test_fingerprint_is_crc64_avro_of_the_canonical_form() -> None:
    # Known vectors from the Avro specification's test data.
    assert crc64_avro(b'"null"') == 7195948357588979594
    assert crc64_avro(b'"int"') == 8247732601305521295
    for name in NAMES:
        cur = REPO.current(name)
        assert cur.canonical == canonical_form(cur.schema)
        assert cur.fingerprint == fingerprint(cur.canonical)
        # fastavro prints the same 8 bytes, in the same (little-endian) order, as hex
        assert cur.fingerprint.hex() == fastavro_fingerprint(cur.canonical, "CRC-64-AVRO")
    assert len({REPO.current(n).fingerprint for n in NAMES}) == len(NAMES)


def test_cross_file_references_are_expanded_once() -> None:
    schema = REPO.schema("hftstream.orders.NewOrder")
    types = {f["name"]: f["type"] for f in schema["fields"]}
    assert types["side"]["type"] == "enum" and types["side"]["name"] == "hftstream.common.Side"
    text = json.dumps(schema)
    assert text.count('"symbols"') == 3  # Side, OrderType, TimeInForce each defined once


def test_encode_many_and_decode_many_match_single_calls(serde: Serde) -> None:
    values = [sample(REPO.schema("hftstream.md.Quote"), s) for s in range(20)]
    many = serde.encode_many("hftstream.md.Quote", values)
    assert many == [serde.encode("hftstream.md.Quote", v) for v in values]
    assert serde.decode_many(many) == [Decoded("hftstream.md.Quote", v) for v in values]
    with pytest.raises(DecodeError, match="item 2"):
        serde.decode_many([many[0], many[1], b"", many[3]])


# -- encoding errors ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"price": 187.25}, "price"),  # money is never a float: fastavro alone would write 187
        ({"price": 1872500.0}, "price"),
        ({"size": True}, "size"),
        ({"size": "100"}, "size"),
        ({"recv_ts_ns": 2**64}, "recv_ts_ns"),
        ({"aggressor_side": "SIDEWAYS"}, "aggressor_side"),
        ({"venue": 7}, "venue"),
        ({"seq": 1.5}, "seq"),
    ],
)
def test_encode_rejects_values_that_do_not_fit(serde: Serde, change: dict, field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        serde.encode("hftstream.md.Trade", {**TRADE, **change})
    assert field in str(exc.value)
    assert exc.value.hint


def test_encode_rejects_missing_field_and_non_dict(serde: Serde) -> None:
    value = dict(TRADE)
    del value["trade_id"]
    with pytest.raises(ValidationError, match="trade_id"):
        serde.encode("hftstream.md.Trade", value)
    with pytest.raises(ValidationError, match="must be a dict"):
        serde.encode("hftstream.md.Trade", [1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="item 1"):
        serde.encode_many("hftstream.md.Trade", [TRADE, {**TRADE, "price": 1.5}])


def test_encode_rejects_int_fields_out_of_32_bit_range(serde: Serde) -> None:
    inst = sample(REPO.schema("hftstream.refdata.Instrument"), 0)
    with pytest.raises(ValidationError, match="price_scale"):
        serde.encode("hftstream.refdata.Instrument", {**inst, "price_scale": 2**31})


def test_encode_unknown_schema(serde: Serde) -> None:
    with pytest.raises(UnknownSchemaError, match="hftstream.md.Nope"):
        serde.encode("hftstream.md.Nope", {})
    with pytest.raises(UnknownSchemaError):
        REPO.schema("Trade")  # short names are not names


# -- malformed input ---------------------------------------------------------------


def _trade_bytes(serde: Serde) -> bytes:
    return serde.encode("hftstream.md.Trade", TRADE)


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda d: b"", DecodeError, "empty"),
        (lambda d: b"{\"price\": 1}", DecodeError, "0x7b"),
        (lambda d: b"\xc3", DecodeError, "marker"),
        (lambda d: b"\xc3\x02" + d[2:], DecodeError, "0xc302"),
        (lambda d: d[:6], DecodeError, "truncated single-object header"),
        (lambda d: b"\xc3\x01" + bytes(8) + d[10:], UnknownSchemaError, "0000000000000000"),
        (lambda d: d[:-3], DecodeError, "truncated body"),
        (lambda d: d[:10], DecodeError, "truncated body"),
        (lambda d: d + b"\x00\x01", DecodeError, "2 trailing byte"),
        (lambda d: d[:11] + b"\xff" + d[12:], DecodeError, "corrupt body (UnicodeDecodeError"),
        (lambda d: d[:10] + b"\x03" + d[11:], DecodeError, "negative length"),
        (lambda d: b"\x00\x00\x00", DecodeError, "truncated Confluent"),
        (lambda d: b"\x00\x00\x00\x00\x05" + d[10:], DecodeError, "no schema registry is configured"),
    ],
)
def test_malformed_input_raises_typed_errors(serde: Serde, make, error, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DecodeError) as exc:
        serde.decode(make(_trade_bytes(serde)))
    assert type(exc.value) is error, repr(exc.value)
    assert exc.value.hint
    assert match in str(exc.value)


def test_unknown_fingerprint_is_named_in_hex(serde: Serde) -> None:
    fp = bytes.fromhex("0123456789abcdef")
    with pytest.raises(UnknownSchemaError, match="0123456789abcdef") as exc:
        serde.decode(b"\xc3\x01" + fp + b"\x00")
    assert exc.value.reason_code == "UNKNOWN_SCHEMA"


def test_decode_accepts_bytearray_and_memoryview_and_rejects_none(serde: Serde) -> None:
    data = _trade_bytes(serde)
    assert serde.decode(bytearray(data)).value == TRADE
    assert serde.decode(memoryview(data)).value == TRADE
    with pytest.raises(DecodeError, match="None"):
        serde.decode(None)  # type: ignore[arg-type]


def test_fuzzed_bytes_only_ever_raise_poison_errors(serde: Serde) -> None:
    """Random truncations and bit flips: a decode either succeeds or raises a PoisonError, nothing else."""
    rng = random.Random(1234)
    corpus = [serde.encode(n, sample(REPO.schema(n), 3)) for n in NAMES]
    outcomes = {"ok": 0, "poison": 0}
    for _ in range(3000):
        data = bytearray(rng.choice(corpus))
        if rng.random() < 0.5:
            data = data[: rng.randrange(len(data) + 1)]
        else:
            for _ in range(rng.randrange(1, 4)):
                pos = rng.randrange(len(data))
                data[pos] = rng.randrange(256)
        try:
            serde.decode(bytes(data))
            outcomes["ok"] += 1
        except PoisonError:
            outcomes["poison"] += 1
    assert outcomes["poison"] > 1000 and outcomes["ok"] > 0, outcomes


# -- history: data written with an older released version still decodes ------------------


def _evolve_trade(root: Path) -> None:
    path = root / "hftstream" / "md" / "Trade.avsc"
    schema = json.loads(path.read_text())
    schema["fields"] = [f for f in schema["fields"] if f["name"] != "seq"]  # removing a field is compatible
    schema["fields"].append({"name": "condition", "type": ["null", "string"], "default": None, "doc": "Sale condition."})
    schema["fields"].append({"name": "venue_seq", "type": "long", "default": -1, "doc": "Added with a default."})
    path.write_text(json.dumps(schema, indent=2))


def test_old_version_data_decodes_via_released_history(tmp_path: Path) -> None:
    old_serde = Serde(REPO)
    old_bytes = old_serde.encode("hftstream.md.Trade", TRADE)

    root = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, root)
    _evolve_trade(root)
    new_repo = SchemaRepo.load(root)
    assert new_repo.current("hftstream.md.Trade").version is None  # changed, not yet released
    assert new_repo.current("hftstream.md.Trade").fingerprint != REPO.current("hftstream.md.Trade").fingerprint
    new = Serde(new_repo)

    got = new.decode(old_bytes)
    expected = {k: v for k, v in TRADE.items() if k != "seq"} | {"condition": None, "venue_seq": -1}
    assert got == Decoded("hftstream.md.Trade", expected)
    new_bytes = new.encode("hftstream.md.Trade", got.value)
    assert new.decode(new_bytes).value == expected

    shutil.rmtree(root / "releases")  # without the frozen v1 the old fingerprint is unknown
    with pytest.raises(UnknownSchemaError, match=REPO.current("hftstream.md.Trade").fingerprint_hex):
        Serde(SchemaRepo.load(root)).decode(old_bytes)


def test_every_schema_has_a_release_equal_to_it() -> None:
    for name in NAMES:
        releases = REPO.releases(name)
        assert releases, f"{name} was never released"
        assert REPO.current(name).version == releases[-1].version
        assert REPO.by_fingerprint(REPO.current(name).fingerprint) is not None


# -- loading -------------------------------------------------------------------------


def _write(root: Path, rel: str, schema: dict) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(schema))


def test_loader_resolves_full_and_short_names_across_files(tmp_path: Path) -> None:
    _write(tmp_path, "x/Color.avsc", {"type": "enum", "name": "Color", "namespace": "t.x", "symbols": ["RED", "BLUE"]})
    _write(tmp_path, "x/Pen.avsc", {"type": "record", "name": "Pen", "namespace": "t.x", "doc": "d", "fields": [
        {"name": "a", "type": "Color"}, {"name": "b", "type": ["null", "t.x.Color"], "default": None}]})
    repo = SchemaRepo.load(tmp_path)
    assert repo.names() == ["t.x.Pen"]
    s = Serde(repo)
    assert s.decode(s.encode("t.x.Pen", {"a": "RED", "b": "BLUE"})).value == {"a": "RED", "b": "BLUE"}


@pytest.mark.parametrize(
    ("files", "match"),
    [
        ({"A.avsc": {"type": "record", "name": "A", "fields": [{"name": "x", "type": "Missing"}]}}, "unknown type 'Missing'"),
        ({"A.avsc": {"type": "enum", "name": "E", "symbols": ["X"]}, "B.avsc": {"type": "enum", "name": "E", "symbols": ["Y"]}}, "defined twice"),
        ({"A.avsc": {"type": "record", "name": "A", "fields": [{"name": "x", "type": "int", "default": "no"}]}}, "A.avsc"),
        ({"A.avsc": "not a schema"}, "one named type"),
    ],
)
def test_loader_errors_name_the_file(tmp_path: Path, files: dict, match: str) -> None:
    for rel, schema in files.items():
        _write(tmp_path, rel, schema)
    with pytest.raises(ConfigError, match=match) as exc:
        SchemaRepo.load(tmp_path)
    assert exc.value.hint


def test_loader_reports_bad_json_and_missing_dir(tmp_path: Path) -> None:
    (tmp_path / "Bad.avsc").write_text("{not json")
    with pytest.raises(ConfigError, match="Bad.avsc: not valid JSON"):
        SchemaRepo.load(tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        SchemaRepo.load(tmp_path / "nope")


def test_from_settings_uses_the_configured_schemas_dir(tmp_path: Path) -> None:
    _write(tmp_path, "P.avsc", {"type": "record", "name": "P", "namespace": "t", "doc": "d", "fields": [{"name": "n", "type": "long"}]})
    s = Serde.from_settings(HftSettings(schemas_dir=tmp_path))
    assert s.repo.names() == ["t.P"] and s.registry_url is None
    r = Serde.from_settings(HftSettings(schemas_dir=tmp_path, schema_registry="mock://from-settings"))
    assert r.registry_url == "mock://from-settings"
    data = r.encode("t.P", {"n": 5}, topic="p")
    assert data[0] == 0 and r.decode(data) == Decoded("t.P", {"n": 5})


# -- Confluent wire format (confluent-kafka's in-process mock registry) ------------------


@pytest.fixture
def registry() -> SchemaRegistryClient:
    return SchemaRegistryClient.new_client({"url": "mock://hftstream-test"})


@pytest.mark.parametrize("name", NAMES)
def test_round_trip_confluent_framing(registry: SchemaRegistryClient, name: str) -> None:
    s = Serde(REPO, "mock://hftstream-test", registry_client=registry)
    value = sample(REPO.schema(name), 0)
    data = s.encode(name, value, topic="t1")
    assert data[0] == 0x00
    schema_id = int.from_bytes(data[1:5], "big")
    assert registry.get_latest_version("t1-value").schema_id == schema_id
    assert s.decode(data) == Decoded(name, value)
    # a fresh serde on the same registry looks the id up and decodes it too
    assert Serde(REPO, registry_client=registry).decode(data) == Decoded(name, value)


def test_registry_subjects_and_id_cache(registry: SchemaRegistryClient) -> None:
    s = Serde(REPO, registry_client=registry)
    a = s.encode("hftstream.md.Trade", TRADE, topic="md.book")
    b = s.encode("hftstream.md.Trade", TRADE)
    assert sorted(registry.get_subjects()) == ["hftstream.md.Trade", "md.book-value"]
    assert a[5:] == b[5:] == Serde(REPO).encode("hftstream.md.Trade", TRADE)[10:]  # same body, different framing
    calls = []
    real = registry.get_schema
    registry.get_schema = lambda *a, **k: calls.append(a) or real(*a, **k)  # type: ignore[method-assign]
    reader = Serde(REPO, registry_client=registry)
    for _ in range(5):
        reader.decode(a)
    assert len(calls) == 1  # looked up once, then cached


def test_single_object_still_decodes_with_a_registry_configured(registry: SchemaRegistryClient) -> None:
    plain = Serde(REPO).encode("hftstream.md.Trade", TRADE)
    assert Serde(REPO, registry_client=registry).decode(plain).value == TRADE


def test_unknown_schema_id_is_unknown_schema(registry: SchemaRegistryClient) -> None:
    s = Serde(REPO, registry_client=registry)
    with pytest.raises(UnknownSchemaError, match="unknown schema id 4242"):
        s.decode(b"\x00" + (4242).to_bytes(4, "big") + b"\x02")


def test_bytes_are_compatible_with_confluents_own_avro_serde(registry: SchemaRegistryClient) -> None:
    name = "hftstream.md.Trade"
    schema_str = REPO.current(name).json()
    ctx = SerializationContext("md.book", MessageField.VALUE)
    theirs_ser = AvroSerializer(registry, schema_str)
    theirs_de = AvroDeserializer(registry)
    ours = Serde(REPO, registry_client=registry)

    ours_bytes = ours.encode(name, TRADE, topic="md.book")
    assert theirs_de(ours_bytes, ctx) == TRADE
    their_bytes = theirs_ser(TRADE, ctx)
    assert their_bytes[0] == 0
    assert ours.decode(their_bytes) == Decoded(name, TRADE)
    assert Serde(REPO, registry_client=registry).decode(their_bytes) == Decoded(name, TRADE)
    assert their_bytes[5:] == ours_bytes[5:]


def test_old_data_a_breaking_change_cannot_read_is_a_decode_error(tmp_path: Path) -> None:
    fill = sample(REPO.schema("hftstream.fills.Fill"), 0) | {"liquidity": "TAKER"}
    old_bytes = Serde(REPO).encode("hftstream.fills.Fill", fill)
    root = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, root)
    liq = root / "hftstream" / "common" / "Liquidity.avsc"
    liq.write_text(json.dumps(json.loads(liq.read_text()) | {"symbols": ["MAKER"]}))  # `schemas check` would refuse this
    with pytest.raises(DecodeError, match="cannot resolve the writer schema") as exc:
        Serde(SchemaRepo.load(root)).decode(old_bytes)
    assert type(exc.value) is DecodeError
