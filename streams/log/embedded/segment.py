"""Segment files: record framing, CRC, batch encoding, parsing and damage classification.

A partition is a directory of segment files named ``<base_offset:020d>.log``. A segment
is a plain concatenation of records; there is no file header. One record::

    size        uint32   bytes after this field (crc + body)
    crc         uint32   zlib.crc32 of the body (everything after this field)
    --- body ---------------------------------------------------------------
    magic       uint8    FORMAT (record format version)
    offset      int64
    timestamp   int64    nanoseconds since the epoch
    key_len     int32    -1 = null key
    value_len   int32    -1 = null value (a tombstone)
    n_headers   uint16
    key, value           raw bytes
    headers              n_headers x (uint16 name_len, utf-8 name, uint32 value_len, value)

All integers are little-endian. A reader never needs more than the fixed 35-byte header
to know where the next record starts, and the CRC covers everything that is not the
length, so a damaged length is caught by the CRC of the (wrongly delimited) body.

Damage comes in two kinds, told apart by :func:`find_valid_after`:

* a **torn tail**: the last record of the last segment is incomplete or fails its CRC and
  nothing valid follows it (a writer died mid-write). Not an error: readers stop there, the
  next writer truncates it.
* **corruption**: a bad record with a valid record somewhere after it. Readers raise
  :class:`~streams.errors.LogCorruptionError`; ``hftstream log repair`` truncates.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from streams.log.base import Headers, Record
from streams.native import NATIVE

# The native core (streams/native.py) takes the valid prefix of a parse and whole encode runs;
# the Python functions below stay the reference: damage, odd types and every error are theirs.
_native_parse = NATIVE.parse_records if NATIVE is not None else None
_native_encode_run = NATIVE.encode_run if NATIVE is not None else None

FORMAT = 0xE1
HEADER = struct.Struct("<IIBqqiiH")
HEADER_SIZE = HEADER.size  # 35
PREFIX = struct.Struct("<II")  # size, crc
BODY_HEAD = struct.Struct("<BqqiiH")  # magic .. n_headers: where the CRC starts
CRC_START = PREFIX.size  # 8
OFFSET_AT = CRC_START + 1  # the offset field, used when hunting for valid records after damage
MIN_SIZE = HEADER_SIZE - 4
MAX_RECORD_BYTES = 1 << 30  # key + value + headers of one record
MAX_SIZE = MIN_SIZE + MAX_RECORD_BYTES
MIN_TS = -(1 << 63)

_H_NAME = struct.Struct("<H")
_H_VALUE = struct.Struct("<I")
_OFFSET = struct.Struct("<q")
_FORMAT_BYTE = bytes([FORMAT])

# parse / scan status codes
OK = 0  # everything up to ``end`` (or up to the limit) was parsed
INCOMPLETE = 1  # a record starts at ``pos`` but its bytes end beyond ``end``
BAD = 2  # the record at ``pos`` fails its CRC or framing

SUFFIX = ".log"
NAME_DIGITS = 20


def segment_name(base: int) -> str:
    """The file name of the segment whose first offset is ``base``."""
    return f"{base:020d}{SUFFIX}"


def parse_segment_name(name: str) -> int | None:
    """The base offset encoded in a segment file name, or ``None`` if ``name`` is not a segment."""
    if len(name) != NAME_DIGITS + len(SUFFIX) or not name.endswith(SUFFIX):
        return None
    digits = name[:NAME_DIGITS]
    return int(digits) if digits.isdigit() else None


def list_segments(directory: Path | str) -> list[int]:
    """Base offsets of the segments in a partition directory, ascending.

    Raises :class:`FileNotFoundError` when the directory does not exist.
    """
    bases = [b for b in map(parse_segment_name, os.listdir(directory)) if b is not None]
    bases.sort()
    return bases


# -- encoding --------------------------------------------------------------------------


def encode_headers(headers: Headers) -> bytes:
    """The wire form of a record's headers."""
    parts: list[bytes] = []
    for name, value in headers:
        raw = name.encode()
        parts += (_H_NAME.pack(len(raw)), raw, _H_VALUE.pack(len(value)), value)
    return b"".join(parts)


class EncodedRun(NamedTuple):
    """What :func:`encode_run` produced: bytes for one segment plus the index points inside them."""

    data: bytes
    next_item: int  # index in the batch of the first record not encoded (it needs a new segment)
    next_offset: int
    end_pos: int  # segment size after writing ``data``
    index_points: list[tuple[int, int, int]]  # (max_ts_before, offset, position)
    last_index_pos: int
    max_ts: int


def encode_run(
    batch: Sequence[tuple[bytes | None, bytes | None, int, Headers | None]],
    start: int,
    offset: int,
    pos: int,
    segment_bytes: int,
    index_interval: int,
    last_index_pos: int,
    max_ts: int,
) -> EncodedRun:
    """Encode ``batch[start:]`` as records with offsets from ``offset`` into a segment now ``pos`` bytes long.

    Stops before a record that would grow a non-empty segment past ``segment_bytes`` (the
    caller rolls a new segment and calls again). Emits an index point whenever
    ``index_interval`` bytes have been written since the last one; an index point records the
    largest timestamp seen before it, so a time lookup can start there.
    """
    if _native_encode_run is not None:
        run = _native_encode_run(batch, start, offset, pos, segment_bytes, index_interval, last_index_pos, max_ts)
        if run is not None:
            return EncodedRun(*run)
    return py_encode_run(batch, start, offset, pos, segment_bytes, index_interval, last_index_pos, max_ts)


def py_encode_run(
    batch: Sequence[tuple[bytes | None, bytes | None, int, Headers | None]],
    start: int,
    offset: int,
    pos: int,
    segment_bytes: int,
    index_interval: int,
    last_index_pos: int,
    max_ts: int,
) -> EncodedRun:
    """:func:`encode_run` in pure Python: the reference, and the path for what the native core does not take."""
    parts: list[bytes] = []
    put = parts.append
    head = BODY_HEAD.pack
    prefix = PREFIX.pack
    crc32 = zlib.crc32
    points: list[tuple[int, int, int]] = []
    i = start
    n = len(batch)
    while i < n:
        key, value, ts, headers = batch[i]
        klen = -1 if key is None else len(key)
        vlen = -1 if value is None else len(value)
        if headers:
            hraw = encode_headers(headers)
            body = head(FORMAT, offset, ts, klen, vlen, len(headers))
            if key:
                body += key
            if value:
                body += value
            body += hraw
        else:
            body = head(FORMAT, offset, ts, klen, vlen, 0)
            if key:
                body += key
            if value:
                body += value
        size = len(body) + 4
        if pos and pos + size + 4 > segment_bytes:
            break
        if pos - last_index_pos >= index_interval:
            points.append((max_ts, offset, pos))
            last_index_pos = pos
        put(prefix(size, crc32(body)))
        put(body)
        pos += size + 4
        if ts > max_ts:
            max_ts = ts
        offset += 1
        i += 1
    return EncodedRun(b"".join(parts), i, offset, pos, points, last_index_pos, max_ts)


# -- parsing ---------------------------------------------------------------------------


_HEADER_NAMES: dict[bytes, str] = {}  # header names repeat (lineage): decode each once


# The lineage headers every processor output carries (streams/lineage.py), in the order the runtime writes them.
_LINEAGE = tuple((name, struct.pack("<H", len(name)) + name.encode()) for name in ("hft.src.topic", "hft.src.partition", "hft.src.offset"))


def _decode_lineage(buf: bytes, p: int, end: int) -> tuple[Headers, int] | None:
    """The common case, three lineage headers, without generic parsing; ``None`` when the block is anything else."""
    unpack_value = _H_VALUE.unpack_from
    out = []
    for name, raw in _LINEAGE:
        q = p + len(raw)
        if buf[p:q] != raw or q + 4 > end:
            return None
        (vlen,) = unpack_value(buf, q)
        p = q + 4 + vlen
        out.append((name, buf[q + 4 : p]))
    return (tuple(out), p) if p <= end else None


def _decode_headers(buf: bytes, p: int, count: int, end: int) -> tuple[Headers, int]:
    if count == 3:
        fast = _decode_lineage(buf, p, end)
        if fast is not None:
            return fast
    out = []
    names = _HEADER_NAMES
    unpack_name, unpack_value = _H_NAME.unpack_from, _H_VALUE.unpack_from
    for _ in range(count):
        if p + 2 > end:
            raise ValueError("header name length runs past the record")
        (nlen,) = unpack_name(buf, p)
        p += 2
        raw = buf[p : p + nlen]
        name = names.get(raw)
        if name is None:
            name = raw.decode()
            if len(names) < 4096:
                names[raw] = name
        p += nlen
        if p + 4 > end:
            raise ValueError("header value length runs past the record")
        (vlen,) = unpack_value(buf, p)
        p += 4
        out.append((name, buf[p : p + vlen]))
        p += vlen
    return tuple(out), p


def parse_records(
    buf: bytes,
    pos: int,
    end: int,
    topic: str,
    partition: int,
    min_offset: int,
    limit: int,
    out: list[Record],
) -> tuple[int, int, str]:
    """Parse records from ``buf[pos:end]`` into ``out`` (the reader's hot loop).

    Records with ``offset < min_offset`` are verified but not returned. Stops after ``limit``
    records were appended. Returns ``(pos, status, reason)``: ``pos`` is where parsing
    stopped, ``status`` is :data:`OK`, :data:`INCOMPLETE` or :data:`BAD`.

    With the native core, it parses the valid records and stops at the first one it does not
    accept; :func:`py_parse_records` goes on from there (so the status and reason are its own).
    """
    if _native_parse is not None and buf.__class__ is bytes:
        pos, n = _native_parse(buf, pos, end, topic, partition, min_offset, limit, out, Record)
        limit -= n
        if limit <= 0:
            return pos, OK, ""
    return py_parse_records(buf, pos, end, topic, partition, min_offset, limit, out)


def py_parse_records(
    buf: bytes,
    pos: int,
    end: int,
    topic: str,
    partition: int,
    min_offset: int,
    limit: int,
    out: list[Record],
) -> tuple[int, int, str]:
    """:func:`parse_records` in pure Python: the reference, and the path for damage and incomplete records."""
    unpack = HEADER.unpack_from
    crc32 = zlib.crc32
    mv = memoryview(buf)
    append = out.append
    rec = Record
    n = 0
    while n < limit:
        if end - pos < HEADER_SIZE:
            return pos, (INCOMPLETE if pos < end else OK), ""
        size, crc, magic, off, ts, klen, vlen, hcount = unpack(buf, pos)
        rend = pos + 4 + size
        if size < MIN_SIZE or size > MAX_SIZE:
            return pos, BAD, f"record length {size} out of range"
        if rend > end:
            return pos, INCOMPLETE, ""
        if crc32(mv[pos + CRC_START : rend]) != crc:
            return pos, BAD, "crc mismatch"
        if magic != FORMAT:
            return pos, BAD, f"unknown record format {magic:#x}"
        p = pos + HEADER_SIZE
        if klen < 0:
            key = None
        else:
            key = buf[p : p + klen]
            p += klen
        if vlen < 0:
            value = None
        else:
            value = buf[p : p + vlen]
            p += vlen
        if hcount:
            try:
                headers, p = _decode_headers(buf, p, hcount, rend)
            except (ValueError, UnicodeDecodeError) as exc:
                return pos, BAD, f"bad headers: {exc}"
        else:
            headers = ()
        if p != rend or klen < -1 or vlen < -1:
            return pos, BAD, "record fields do not match its length"
        if off >= min_offset:
            append(rec(topic, partition, off, ts, key, value, headers))
            n += 1
        pos = rend
    return pos, OK, ""


class Frame(NamedTuple):
    """One verified record's place in a segment (no payload copied unless asked)."""

    pos: int
    end: int
    offset: int
    timestamp_ns: int
    key: bytes | None
    tombstone: bool


def check_frame(buf: bytes, pos: int, end: int) -> tuple[int, str, Frame | None]:
    """Verify the record at ``buf[pos:]``: ``(status, reason, frame)``; ``frame`` carries its key."""
    if end - pos < HEADER_SIZE:
        return (INCOMPLETE if pos < end else OK), "", None
    size, crc, magic, off, ts, klen, vlen, hcount = HEADER.unpack_from(buf, pos)
    rend = pos + 4 + size
    if size < MIN_SIZE or size > MAX_SIZE:
        return BAD, f"record length {size} out of range", None
    if rend > end:
        return INCOMPLETE, "", None
    if zlib.crc32(memoryview(buf)[pos + CRC_START : rend]) != crc:
        return BAD, "crc mismatch", None
    if magic != FORMAT:
        return BAD, f"unknown record format {magic:#x}", None
    if klen < -1 or vlen < -1:
        return BAD, "negative key or value length", None
    p = pos + HEADER_SIZE + max(klen, 0) + max(vlen, 0)
    if hcount:
        try:
            _, p = _decode_headers(buf, p, hcount, rend)
        except (ValueError, UnicodeDecodeError) as exc:
            return BAD, f"bad headers: {exc}", None
    if p != rend:
        return BAD, "record fields do not match its length", None
    kstart = pos + HEADER_SIZE
    key = None if klen < 0 else bytes(buf[kstart : kstart + klen])
    return OK, "", Frame(pos, rend, off, ts, key, vlen < 0)


class FrameScanner:
    """Iterate the verified records of a segment file from ``start``, in chunks.

    After iteration, :attr:`status` is :data:`OK` (clean end), :data:`INCOMPLETE` or
    :data:`BAD`, with :attr:`stop_pos` where the scan stopped, :attr:`reason` and
    :attr:`expected` (the offset the next record should have had at least).
    """

    def __init__(self, fd: int, start: int, size: int, expected: int, *, chunk: int = 4 << 20) -> None:
        self.fd, self.start, self.size, self.chunk = fd, start, size, chunk
        self.status, self.stop_pos, self.reason, self.expected = OK, start, "", expected

    def __iter__(self) -> Iterator[Frame]:
        pos = self.start
        buf, bstart = b"", pos
        while True:
            rel = pos - bstart
            status, reason, frame = check_frame(buf, rel, len(buf))
            if frame is not None:
                if frame.offset < self.expected:
                    self.status, self.stop_pos = BAD, pos
                    self.reason = f"offset {frame.offset} is below the expected {self.expected}"
                    return
                self.expected = frame.offset + 1
                yield Frame(pos, bstart + frame.end, frame.offset, frame.timestamp_ns, frame.key, frame.tombstone)
                pos = bstart + frame.end
                continue
            if status == BAD:
                self.status, self.stop_pos, self.reason = BAD, pos, reason
                return
            # OK at the end of buf, or INCOMPLETE: read more if the file has it
            if bstart + len(buf) >= self.size:
                self.stop_pos = pos
                if status == INCOMPLETE or pos < self.size:
                    self.status, self.reason = INCOMPLETE, "incomplete record"
                return
            want = max(self.chunk, HEADER_SIZE)
            if status == INCOMPLETE and rel + HEADER_SIZE <= len(buf):
                want = max(want, 4 + HEADER.unpack_from(buf, rel)[0])
            data = os.pread(self.fd, min(want, self.size - pos), pos)
            if not data:
                self.stop_pos, self.status, self.reason = pos, INCOMPLETE, "incomplete record"
                return
            buf, bstart = data, pos


def frame_at(fd: int, pos: int, size: int) -> Frame | None:
    """The verified record starting at ``pos`` in a segment of ``size`` bytes, or ``None``."""
    head = os.pread(fd, HEADER_SIZE, pos)
    if len(head) < HEADER_SIZE:
        return None
    rec_size = PREFIX.unpack_from(head)[0]
    if rec_size < MIN_SIZE or rec_size > MAX_SIZE or pos + 4 + rec_size > size:
        return None
    buf = os.pread(fd, 4 + rec_size, pos)
    status, _, frame = check_frame(buf, 0, len(buf))
    if status != OK or frame is None:
        return None
    return frame._replace(pos=pos, end=pos + frame.end)


def find_valid_after(fd: int, bad_pos: int, size: int, expected: int, *, window: int = 4 << 20) -> int | None:
    """The position of the first valid record after damage at ``bad_pos``, or ``None``.

    "Valid" means: framing and CRC check out and its offset is at least ``expected`` (so an
    old copy of an earlier record does not count). Candidates are found by their format byte
    and offset field, so a damaged length field cannot hide the records after it.
    ``None`` means the damage is a torn tail; a position means corruption in the middle.
    """
    lo, hi = expected, expected + (1 << 40)
    unpack_off = _OFFSET.unpack_from
    pos = bad_pos + 1
    while pos + HEADER_SIZE <= size:
        data = os.pread(fd, min(window + HEADER_SIZE, size - pos), pos)
        if len(data) < HEADER_SIZE:
            return None
        limit = min(window, len(data) - HEADER_SIZE + 1)
        i = data.find(_FORMAT_BYTE, CRC_START)
        while 0 <= i and i - CRC_START < limit:
            start = i - CRC_START
            if lo <= unpack_off(data, start + 9)[0] < hi:
                rec_size = PREFIX.unpack_from(data, start)[0]
                if MIN_SIZE <= rec_size <= MAX_SIZE and frame_at(fd, pos + start, size) is not None:
                    return pos + start
            i = data.find(_FORMAT_BYTE, i + 1)
        pos += limit
    return None
