"""Instrument reference data from a file, onto ``refdata.instruments`` (``hftstream refdata load``, DECISIONS #42).

The file is YAML (``.yaml``/``.yml``; JSON is YAML too, so ``.json`` reads the same way) -- a
list of instruments, or a mapping whose ``instruments`` key holds that list -- or CSV (``.csv``)
with a header row naming the fields. Prices and sizes are written in *human units*; the loader
scales them with the instrument's own scales, as every topic carries them::

    instruments:
      - {symbol: AAPL, instrument_id: 1, price_scale: 4, tick_size: "0.01", size_scale: 0, lot_size: "1", currency: USD}
      - {symbol: BTC-USD, instrument_id: 2, price_scale: 2, tick_size: "0.01", size_scale: 8, lot_size: "0.0001"}

``symbol``         required: the key on every topic, no spaces;
``instrument_id``  required: venue-independent id; an integer id is what ``json-ticks`` venues send;
``price_scale``    required: decimal digits of prices, 0..18;
``tick_size``      required: the price increment, > 0, at most ``price_scale`` decimals;
``size_scale``     default 0: decimal digits of sizes, 0..18;
``lot_size``       default 1: the size increment, > 0, at most ``size_scale`` decimals;
``currency``       default USD: three capital letters (ISO 4217);
``status``         default ACTIVE: ACTIVE, HALTED, SUSPENDED or DELISTED.

Decimals are best quoted; an unquoted YAML number is taken as the shortest decimal that reads
back as it (``0.01`` -> ``"0.01"``). Every problem of the file is reported at once, each naming
the entry and the field; nothing is published when there is one.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from connectors.venues.instruments import INSTRUMENT_SCHEMA, Instrument, RefData
from connectors.venues.scaled import parse_decimal
from connectors.venues.simulator import INSTRUMENTS_TOPIC
from streams.errors import ConfigError
from streams.log.base import Log
from streams.serde import Serde
from streams.topics import ensure_topics

REQUIRED = ("symbol", "instrument_id", "price_scale", "tick_size")
DEFAULTS: dict[str, Any] = {"size_scale": 0, "lot_size": "1", "currency": "USD", "status": "ACTIVE"}
FIELDS = REQUIRED + tuple(DEFAULTS)
STATUSES = ("ACTIVE", "HALTED", "SUSPENDED", "DELISTED")
MAX_SCALE = 18
MAX_PROBLEMS = 20
HINT = (
    "each instrument needs symbol, instrument_id, price_scale and tick_size (size_scale, lot_size, currency, status "
    'are optional); sizes are in human units, e.g. {symbol: AAPL, instrument_id: 1, price_scale: 4, tick_size: "0.01"} '
    "-- see `hftstream refdata load --help`"
)
_SYMBOL = re.compile(r"[^\s]{1,64}")
_CURRENCY = re.compile(r"[A-Z]{3}")


class RefdataFileError(ConfigError):
    """A reference-data file that cannot be read or holds invalid instruments (all its problems in the message)."""


def read_instruments(path: str | Path) -> list[Instrument]:
    """The instruments in the file at ``path`` (YAML/JSON or CSV, by extension); :class:`RefdataFileError` otherwise."""
    path = Path(path)
    if not path.is_file():
        raise RefdataFileError(f"reference-data file {path} does not exist" if not path.exists() else f"{path} is not a file",
                               hint="pass the path of a .yaml, .json or .csv file of instruments; " + HINT)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RefdataFileError(f"cannot read {path}: {exc}", hint="check the file's permissions and that it is UTF-8 text") from None
    return parse_instruments(text, "csv" if path.suffix.lower() == ".csv" else "yaml", path.name)


def parse_instruments(text: str, kind: str, name: str = "the file") -> list[Instrument]:
    """Instruments from ``text`` (``kind`` ``yaml`` or ``csv``); every problem at once in one :class:`RefdataFileError`."""
    entries = _csv_entries(text, name) if kind == "csv" else _yaml_entries(text, name)
    if not entries:
        raise RefdataFileError(f"{name} holds no instruments", hint=HINT)
    problems: list[str] = []
    out: list[Instrument] = []
    for where, entry in entries:
        inst = _instrument(entry, where, problems)
        if inst is not None:
            out.append(inst)
    _duplicates(out, problems)
    if problems:
        shown = problems[:MAX_PROBLEMS] + ([f"... and {len(problems) - MAX_PROBLEMS} more"] if len(problems) > MAX_PROBLEMS else [])
        raise RefdataFileError(f"{name}: {len(problems)} problem(s), nothing was published:\n  " + "\n  ".join(shown), hint=HINT)
    return out


def check_against(instruments: Sequence[Instrument], existing: RefData) -> None:
    """Refuse a file whose integer ids already name *other* symbols on the log (json-ticks venues would mix them up)."""
    clashes = []
    for inst in instruments:
        number = inst.number
        other = existing.by_number(number) if number is not None else None
        if other is not None and other.symbol != inst.symbol:
            clashes.append(f"{inst.symbol}: instrument_id {inst.instrument_id} already names {other.symbol}")
    if clashes:
        raise RefdataFileError(
            "instrument ids clash with refdata.instruments:\n  " + "\n  ".join(clashes) + "\nnothing was published",
            hint="give each instrument its own instrument_id (`hftstream refdata list` shows the ones in use)",
        )


def publish_instruments(log: Log, serde: Serde, instruments: Sequence[Instrument], effective_ns: int) -> None:
    """Append every instrument to ``refdata.instruments`` (keyed by symbol), taking effect at ``effective_ns``."""
    ensure_topics(log, [INSTRUMENTS_TOPIC])
    values = [inst.to_record(effective_ns) for inst in instruments]
    producer = log.producer()
    try:
        for inst, data in zip(instruments, serde.encode_many(INSTRUMENT_SCHEMA, values, topic=INSTRUMENTS_TOPIC)):
            producer.produce(INSTRUMENTS_TOPIC, data, key=inst.symbol.encode(), timestamp_ns=effective_ns)
        producer.flush()
    finally:
        producer.close()


# -- reading ------------------------------------------------------------------------------------


def _yaml_entries(text: str, name: str) -> list[tuple[str, Any]]:
    import yaml

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise RefdataFileError(f"{name} is not valid YAML/JSON{at}: {getattr(exc, 'problem', None) or exc}", hint=HINT) from None
    if isinstance(doc, Mapping) and "instruments" in doc:
        doc = doc["instruments"]
    if doc is None:
        return []
    if not isinstance(doc, list):
        raise RefdataFileError(f"{name} must hold a list of instruments (or a mapping with an 'instruments' list), "
                               f"not a {type(doc).__name__}", hint=HINT)
    return [(f"entry {i}", e) for i, e in enumerate(doc, start=1)]


def _csv_entries(text: str, name: str) -> list[tuple[str, Any]]:
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        return []
    except csv.Error as exc:
        raise RefdataFileError(f"{name} is not readable CSV: {exc}", hint=HINT) from None
    out: list[tuple[str, Any]] = []
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) > len(header):
                out.append((f"line {reader.line_num}", f"{len(row)} cells but the header has {len(header)}"))
                continue
            out.append((f"line {reader.line_num}", {k: v.strip() for k, v in zip(header, row) if v.strip() != ""}))
    except csv.Error as exc:
        raise RefdataFileError(f"{name} is not readable CSV: {exc}", hint=HINT) from None
    return out


def _instrument(entry: Any, where: str, problems: list[str]) -> Instrument | None:
    if not isinstance(entry, Mapping):
        problems.append(f"{where}: {entry}" if isinstance(entry, str) and where.startswith("line") else
                        f"{where}: an instrument must be a mapping of fields, got {entry!r}")
        return None
    label = f"{where} ({entry['symbol']})" if isinstance(entry.get("symbol"), str) else where
    before = len(problems)

    def bad(message: str) -> None:
        problems.append(f"{label}: {message}")

    unknown = sorted(str(k) for k in entry if k not in FIELDS)
    if unknown:
        bad(f"unknown field(s) {', '.join(unknown)} (known: {', '.join(FIELDS)})")
    missing = [f for f in REQUIRED if entry.get(f) in (None, "")]
    if missing:
        bad(f"missing {', '.join(missing)}")
    values = {**DEFAULTS, **{k: v for k, v in entry.items() if v is not None}}
    symbol, ident = values.get("symbol"), values.get("instrument_id")
    if "symbol" not in missing and not (isinstance(symbol, str) and _SYMBOL.fullmatch(symbol)):
        bad(f"symbol must be 1-64 characters without spaces, got {symbol!r}")
    if isinstance(ident, int) and not isinstance(ident, bool) and ident >= 0:
        ident = str(ident)
    if "instrument_id" not in missing and not (isinstance(ident, str) and ident.strip() == ident and ident):
        bad(f"instrument_id must be a non-empty string or a non-negative integer, got {ident!r}")
    scales = {f: _scale(values.get(f), f, bad) for f in ("price_scale", "size_scale") if f not in missing}
    steps = {}
    for step, scale in (("tick_size", "price_scale"), ("lot_size", "size_scale")):
        if step not in missing and scales.get(scale) is not None:
            steps[step] = _step(values[step], step, scale, scales[scale], bad)
    currency, status = values["currency"], values["status"]
    if not (isinstance(currency, str) and _CURRENCY.fullmatch(currency)):
        bad(f"currency must be three capital letters (ISO 4217, e.g. USD), got {currency!r}")
    if status not in STATUSES:
        bad(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    if len(problems) > before:
        return None
    return Instrument(symbol, ident, scales["price_scale"], scales["size_scale"], steps["tick_size"], steps["lot_size"],
                      currency, status)


def _scale(value: Any, field: str, bad: Any) -> int | None:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_SCALE:
        return value
    bad(f"{field} must be an integer 0..{MAX_SCALE}, got {value!r}")
    return None


def _step(value: Any, field: str, scale_field: str, scale: int, bad: Any) -> int | None:
    if isinstance(value, float):
        value = format(Decimal(repr(value)), "f")  # the shortest decimal that reads back as the float YAML made of it
    elif isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        bad(f"{field} must be a decimal such as \"0.01\", got {value!r}")
        return None
    try:
        scaled = parse_decimal(value, scale)
    except ValueError as exc:
        bad(f"{field} {value!r} does not fit {scale_field} {scale}: {exc}")
        return None
    if scaled <= 0:
        bad(f"{field} must be > 0, got {value!r}")
        return None
    return scaled


def _duplicates(instruments: Sequence[Instrument], problems: list[str]) -> None:
    for attr in ("symbol", "instrument_id"):
        seen: dict[str, int] = {}
        for inst in instruments:
            key = getattr(inst, attr)
            seen[key] = seen.get(key, 0) + 1
        problems.extend(f"{attr} {key!r} appears {n} times" for key, n in sorted(seen.items()) if n > 1)
