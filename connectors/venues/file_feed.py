"""Replay a recorded venue feed from a file onto ``md.raw.<venue>``.

Two file formats:

``ndjson``  every non-empty line is one venue payload, published byte for byte (a JSON
            message, or a FIX message with its SOH separators -- anything but a newline).
``csv``     a header row; every row becomes a JSON object payload ``{column: value}``.
            Empty cells are left out (so one file can mix trades and quotes). For a
            ``json-ticks`` venue, integer cells become JSON integers (that format has no
            numeric strings); otherwise every value stays a string.

The envelope's ``recv_ts_ns`` comes from a ``recv_ts_ns`` field/column when the record has
one, else from the wall clock at publish time (this is the edge of the system: the handler
stamping what it receives is the one place the wall clock belongs). ``seq`` and ``symbol``
are filled in when the payload is valid for the venue's format (``json-ticks`` instrument
ids are named from ``refdata.instruments`` when the log has it).

By default the handler does not judge: a payload that is not valid for the venue's format, or
that normalization would refuse although the format accepts it (impossible market data -- a
non-positive price or size, a crossed quote, a price beyond the band around the last trade --, a
value off the instrument's grid or beyond its scale: the same rules, ``judged_record``, DECISIONS
#41), is still published (normalization dead-letters it) and counted as *suspect*, with the first
:data:`MAX_EXAMPLES` line numbers and causes kept for the summary; the CLI then exits 1 when more
than ``--max-bad`` lines were suspect. Lines naming instruments that ``refdata.instruments`` does
not hold are not suspect (the file may be right and the reference data late) but are listed in
``unknown_symbols`` so the CLI can warn. With ``strict=True`` the whole file is checked first and
nothing is published when more than ``max_bad`` lines are suspect (:class:`SuspectFeedError`).

Pacing: ``max`` publishes as fast as the log takes it (batched); ``realtime`` sleeps so that
records go out spaced like their event timestamps (``ts`` / ``ns`` / ``recv_ts_ns``, ISO or int
ns, or the time inside a valid venue message), flushing before every pause so consumers see
records when they are due.
"""

from __future__ import annotations

import csv
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from connectors.venues.errors import FeedFileError, SuspectFeedError, VenueFormatError
from connectors.venues.events import BookDelta, Quote, Trade
from connectors.venues.formats import Codec, Inspection, codec_for
from connectors.venues.instruments import Instrument, RefData
from connectors.venues.sanity import Sanity
from connectors.venues.simulator import INSTRUMENTS_TOPIC, RAW_SCHEMA, raw_topic
from streams.errors import DecodeError
from streams.log.base import Log, Producer
from streams.processors.base import Reject
from streams.processors.normalize import rules
from streams.serde import Serde
from streams.timeutil import parse_time_ns
from streams.topics import ensure_topics

FileFormat = Literal["ndjson", "csv"]
Pace = Literal["realtime", "max"]
SUFFIXES: dict[str, FileFormat] = {
    ".ndjson": "ndjson", ".jsonl": "ndjson", ".json": "ndjson", ".fix": "ndjson", ".txt": "ndjson", ".log": "ndjson",
    ".csv": "csv",
}
BATCH = 1000
MAX_EXAMPLES = 20  # suspect lines listed (line number and cause); the rest are counted
_INT = re.compile(r"-?[0-9]+", re.ASCII)


@dataclass
class FileFeedSummary:
    """What a file replay read and published."""

    path: str
    venue: str
    file_format: str
    venue_format: str
    pace: str
    published: int = 0
    suspect: int = 0
    blank_lines: int = 0
    recv_from_file: int = 0
    first_event_ts_ns: int | None = None
    last_event_ts_ns: int | None = None
    suspect_examples: list[str] = field(default_factory=list)
    oldest_ts_ns: int | None = None  # the smallest record timestamp published (retention check)
    refused: int = 0  # suspect lines the format accepts but normalization refuses (their cause starts with the reason code)
    refdata_instruments: int = 0  # instruments refdata.instruments held when the file was read
    unknown_symbols: dict[str, int] = field(default_factory=dict)  # symbol (or "instrument id N") -> lines naming it
    elapsed_s: float = 0.0

    def note_suspect(self, number: int, cause: str) -> None:
        """Count a suspect line; keep its number and cause while fewer than :data:`MAX_EXAMPLES` are kept."""
        self.suspect += 1
        if len(self.suspect_examples) < MAX_EXAMPLES:
            self.suspect_examples.append(f"line {number}: {cause}")

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``--json`` output)."""
        d = dict(self.__dict__)
        d["elapsed_s"] = round(self.elapsed_s, 3)
        return d


@dataclass(slots=True)
class _Line:
    number: int
    payload: bytes
    fields: dict[str, Any] | None  # the record as an object, when it is one (for recv_ts_ns and pacing)


def infer_format(path: Path, given: str | None) -> FileFormat:
    """``given`` if set, else from the file extension (``.csv`` -> csv; ``.ndjson``/``.jsonl``/``.json``/``.fix``/... -> ndjson)."""
    if given:
        if given not in ("ndjson", "csv"):
            raise FeedFileError(f"unknown file format {given!r}", hint="use --format ndjson or --format csv")
        return given  # type: ignore[return-value]
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise FeedFileError(
            f"cannot tell the format of {path.name} from its extension {path.suffix or '(none)'!r}",
            hint="pass --format ndjson (one venue message per line) or --format csv (header row)",
        )
    return fmt


def _ndjson_lines(path: Path, counts: FileFeedSummary, on_bytes: Callable[[int], None]) -> Iterator[_Line]:
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            on_bytes(len(raw))
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                counts.blank_lines += 1
                continue
            fields = None
            if line.lstrip().startswith(b"{"):
                try:
                    obj = json.loads(line)
                    fields = obj if isinstance(obj, dict) else None
                except ValueError:
                    fields = None
            yield _Line(number, line, fields)


def _csv_lines(path: Path, ticks: bool, on_bytes: Callable[[int], None]) -> Iterator[_Line]:
    try:
        with path.open("r", encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            try:
                header = next(reader)
            except StopIteration:
                raise FeedFileError(f"{path} is empty: a CSV feed needs a header row", hint="the first row names the fields, e.g. type,symbol,price,size,ts") from None
            header = [h.strip() for h in header]
            if not all(header) or len(set(header)) != len(header):
                raise FeedFileError(f"{path}: the header row {header} has empty or repeated column names", hint="give every column a unique name")
            for row in reader:
                on_bytes(sum(len(c) + 1 for c in row))
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) > len(header):
                    raise FeedFileError(
                        f"{path}: line {reader.line_num} has {len(row)} cells but the header has {len(header)}",
                        hint="quote cells that contain commas, or fix the row",
                    )
                obj: dict[str, Any] = {}
                for name, cell in zip(header, row):
                    if cell == "":
                        continue
                    obj[name] = int(cell) if ticks and _INT.fullmatch(cell) else cell
                payload = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
                yield _Line(reader.line_num, payload, obj)
    except UnicodeDecodeError as exc:
        raise FeedFileError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})", hint="convert the file to UTF-8") from None
    except csv.Error as exc:
        raise FeedFileError(f"{path} is not readable CSV: {exc}", hint="check quoting; or pass --format ndjson if it is one message per line") from None


def _event_ts(inspection: Inspection | None, fields: dict[str, Any] | None) -> int | None:
    if inspection is not None:
        return inspection.exchange_ts_ns
    if fields:
        for name in ("ts", "ns", "recv_ts_ns"):
            if name in fields:
                value = fields[name]
                try:
                    return parse_time_ns(value) if isinstance(value, (int, str)) and not isinstance(value, bool) else None
                except ValueError:
                    return None
    return None


def load_refdata(log: Log, serde: Serde, timeout_s: float = 10.0) -> RefData:
    """Instruments from ``refdata.instruments`` (latest value per symbol); empty when the topic does not exist."""
    if INSTRUMENTS_TOPIC not in {t.name for t in log.list_topics()}:
        return RefData([])
    parts = log.partitions(INSTRUMENTS_TOPIC)
    highs = {p: log.watermarks(INSTRUMENTS_TOPIC, p)[1] for p in range(parts)}
    found: dict[str, Instrument] = {}
    deadline = time.monotonic() + timeout_s
    with log.reader([(INSTRUMENTS_TOPIC, p, log.watermarks(INSTRUMENTS_TOPIC, p)[0]) for p in range(parts)]) as reader:
        while any(reader.position(INSTRUMENTS_TOPIC, p) < highs[p] for p in range(parts)) and time.monotonic() < deadline:
            for rec in reader.poll(1000, timeout=0.5):
                if rec.value is None:
                    continue
                try:
                    decoded = serde.decode(rec.value)
                except DecodeError:
                    continue
                if decoded.schema.endswith(".Instrument"):
                    inst = Instrument.from_record(decoded.value)
                    found[inst.symbol] = inst
    return RefData(found.values())


class _Publisher:
    """Buffer envelopes for one topic; encode in batches; produce; flush on demand."""

    def __init__(self, producer: Producer, serde: Serde, topic: str, batch_size: int) -> None:
        self.producer, self.serde, self.topic, self.batch_size = producer, serde, topic, batch_size
        self.values: list[dict[str, Any]] = []
        self.keys: list[bytes] = []

    def add(self, value: dict[str, Any], key: bytes) -> None:
        self.values.append(value)
        self.keys.append(key)
        if len(self.values) >= self.batch_size:
            self.drain()

    def drain(self) -> None:
        if not self.values:
            return
        for value, key, data in zip(self.values, self.keys, self.serde.encode_many(RAW_SCHEMA, self.values, topic=self.topic)):
            self.producer.produce(self.topic, data, key=key, timestamp_ns=value["recv_ts_ns"])
        self.values, self.keys = [], []

    def flush(self) -> None:
        self.drain()
        self.producer.flush()


def _recv_ts(fields: dict[str, Any] | None) -> int | None:
    value = (fields or {}).get("recv_ts_ns")
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


class _Judge:
    """What normalization would refuse in a line: its format's structure, then the rules it applies to the values."""

    def __init__(self, codec: Codec, refdata: RefData) -> None:
        self.codec, self.refdata, self.sanity = codec, refdata, Sanity()  # the default band (NormalizeConfig's)

    def __call__(self, line: _Line, summary: FileFeedSummary) -> Inspection | None:
        """The payload's inspection, or ``None`` when it is not valid for the format; suspect lines are noted in ``summary``."""
        codec, ref = self.codec, self.refdata
        try:
            seen = codec.inspect(line.payload)
        except VenueFormatError as exc:
            summary.note_suspect(line.number, exc.cause)
            return None
        if seen.kind == "heartbeat":
            return seen
        unknown = None
        if seen.symbol is not None and ref.by_symbol(seen.symbol) is None:
            unknown = seen.symbol
        elif seen.instrument_number is not None and ref.by_number(seen.instrument_number) is None:
            unknown = f"instrument id {seen.instrument_number}"
        if unknown is not None:
            summary.unknown_symbols[unknown] = summary.unknown_symbols.get(unknown, 0) + 1
            return seen
        try:
            try:
                _, cls, f = codec.decode_fields(line.payload, ref)
            except VenueFormatError as exc:
                raise rules.classify(codec, line.payload, ref, exc) from None
            inst = ref.by_symbol(f[0]) if cls in (Trade, Quote, BookDelta) else None
            rules.judged_record(codec.venue, cls, f, 0, seen.seq, inst, self.sanity)
        except Reject as rej:
            summary.refused += 1
            summary.note_suspect(line.number, f"{rej.reason_code}: {rej}")
        return seen


def _lines(path: Path, fmt: FileFormat, codec: Codec, summary: FileFeedSummary, on_bytes: Callable[[int], None]) -> Iterator[_Line]:
    return _ndjson_lines(path, summary, on_bytes) if fmt == "ndjson" else _csv_lines(path, codec.format == "json-ticks", on_bytes)


def scan_file(path: Path, venue: str, fmt: FileFormat, codec: Codec, pace: str, refdata: RefData | None = None) -> FileFeedSummary:
    """Read the whole file and count its suspect lines, publishing nothing (``--strict``'s first pass)."""
    scan = FileFeedSummary(str(path), venue, fmt, codec.format, pace)
    judge = _Judge(codec, refdata or RefData([]))
    for line in _lines(path, fmt, codec, scan, lambda n: None):
        scan.published += 1  # here: lines that would be published
        judge(line, scan)
    return scan


def publish_file(
    log: Log,
    serde: Serde,
    path: str | Path,
    venue: str,
    *,
    file_format: str | None = None,
    pace: Pace = "max",
    strict: bool = False,
    max_bad: int = 0,
    batch_size: int = BATCH,
    progress: Callable[[int, int], None] | None = None,
    clock_ns: Callable[[], int] = time.time_ns,
    sleep: Callable[[float], None] = time.sleep,
) -> FileFeedSummary:
    """Publish the recorded feed at ``path`` to ``md.raw.<venue>``; return what was read and published.

    Raises :class:`~connectors.venues.errors.UnknownVenueError` for a venue outside the roster and
    :class:`~connectors.venues.errors.FeedFileError` for a missing/unreadable file. With ``strict``, the
    file is checked first and :class:`~connectors.venues.errors.SuspectFeedError` is raised, with nothing
    published, when more than ``max_bad`` lines are not valid for the venue's format. ``progress(done, total)``
    gets bytes read so far and the file size. ``clock_ns``/``sleep`` are the edge's wall clock (tests pass fakes).
    """
    started = time.perf_counter()
    codec: Codec = codec_for(venue)  # UnknownVenueError first: the cheapest mistake to report
    path = Path(path)
    if not path.exists():
        raise FeedFileError(f"feed file {path} does not exist", hint="check the path (recorded feeds: .ndjson one message per line, or .csv with a header row)")
    if not path.is_file():
        raise FeedFileError(f"{path} is not a file", hint="pass the path of one recorded feed file")
    if not os.access(path, os.R_OK):
        raise FeedFileError(f"feed file {path} is not readable", hint="check the file's permissions")
    if pace not in ("realtime", "max"):
        raise FeedFileError(f"unknown pace {pace!r}", hint="use --pace realtime or --pace max")
    if max_bad < 0:
        raise FeedFileError(f"max_bad must be >= 0, got {max_bad}", hint="pass --max-bad 0 (no suspect line allowed) or more")
    fmt = infer_format(path, file_format)
    refdata = load_refdata(log, serde)
    if strict:
        scan = scan_file(path, venue, fmt, codec, pace, refdata)
        if scan.suspect > max_bad:
            raise SuspectFeedError(path, codec.format, scan.suspect, scan.published, scan.suspect_examples, max_bad, refused=scan.refused)
    summary = FileFeedSummary(str(path), venue, fmt, codec.format, pace, refdata_instruments=len(refdata))
    judge = _Judge(codec, refdata)
    total = path.stat().st_size
    done = 0

    def on_bytes(n: int) -> None:
        nonlocal done
        done += n

    lines = _lines(path, fmt, codec, summary, on_bytes)
    topic = raw_topic(venue)
    ensure_topics(log, [topic])
    anchor: tuple[int, float] | None = None  # (first event ts, monotonic time it went out)
    producer = log.producer()
    out = _Publisher(producer, serde, topic, batch_size)
    try:
        for line in lines:
            inspection = judge(line, summary)
            event_ts = _event_ts(inspection, line.fields)
            if event_ts is not None:
                if summary.first_event_ts_ns is None:
                    summary.first_event_ts_ns = event_ts
                summary.last_event_ts_ns = event_ts
                if pace == "realtime":
                    if anchor is None:
                        anchor = (event_ts, time.monotonic())
                    else:
                        delay = anchor[1] + (event_ts - anchor[0]) / 1e9 - time.monotonic()
                        if delay > 0:
                            out.flush()
                            sleep(delay)
            recv = _recv_ts(line.fields)
            if recv is not None:
                summary.recv_from_file += 1
            else:
                recv = clock_ns()
            if summary.oldest_ts_ns is None or recv < summary.oldest_ts_ns:
                summary.oldest_ts_ns = recv
            symbol = inspection.symbol if inspection else None
            if symbol is None and inspection is not None and inspection.instrument_number is not None:
                inst = refdata.by_number(inspection.instrument_number)
                symbol = inst.symbol if inst else None
            key = symbol.encode() if symbol else (
                str(inspection.instrument_number).encode() if inspection and inspection.instrument_number is not None else venue.encode()
            )
            value = {
                "venue": venue,
                "format": codec.format,
                "seq": inspection.seq if inspection else None,
                "recv_ts_ns": recv,
                "symbol": symbol,
                "payload": line.payload,
            }
            out.add(value, key)
            summary.published += 1
            if progress and summary.published % batch_size == 0:
                progress(done, total)
        out.flush()
        if progress:
            progress(total, total)
    finally:
        producer.close()
    summary.elapsed_s = time.perf_counter() - started
    return summary
