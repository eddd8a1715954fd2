"""The ``fix`` venue format: FIX 4.4 market data, tag=value fields separated by SOH (0x01).

Messages (``8=FIX.4.4|9=<body length>|35=<type>|49=<VENUE>|56=HFTSTREAM|34=<MsgSeqNum>|52=<SendingTime>|...|10=<checksum>``):

* ``35=X`` MarketDataIncrementalRefresh with one entry (``268=1``): a trade (``279=0|269=2|55|270|271|1003``
  TradeID, optional ``5797`` AggressorSide 1=buy 2=sell) or a book level change (``279`` 0=new 1=change
  2=delete, ``269`` 0=bid 1=offer, ``55``, ``270`` price, ``271`` size); ``60`` is the event time.
* ``35=W`` MarketDataSnapshotFullRefresh: top of book, ``55|60|268=<n>`` then up to one bid (``269=0``)
  and one offer (``269=1``) entry with ``270``/``271``; an empty side is simply absent.
* ``35=f`` SecurityStatus: ``55`` (absent = the whole venue), ``326`` SecurityTradingStatus, ``58`` reason.
* ``35=0`` Heartbeat: the event time is ``52``.

Prices and sizes are decimals written with trailing zeros stripped (``187.25``); times are
UTCTimestamps with nanoseconds (``20260102-14:30:00.000123456``). Decoding checks the
framing strictly: BeginString, BodyLength (must match), CheckSum (must match), no empty
values, no repeated tags where FIX allows none. MsgSeqNum is the venue sequence number.
"""

from __future__ import annotations

from typing import ClassVar
from zlib import adler32

from connectors.venues.events import BookDelta, Heartbeat, MarketEvent, Quote, StatusChange, Trade, VenueMessage
from connectors.venues.formats import Codec, Inspection, Resolve, instrument, native_fast
from connectors.venues.instruments import RefData
from connectors.venues.json_fast import Fields
from connectors.venues.scaled import decimal_fast, format_decimal, format_fix_time, parse_fix_time, parse_scaled_field
from streams.timeutil import fix_time_fast

SOH = "\x01"
BEGIN = b"8=FIX.4.4\x01"
TARGET_COMP_ID = "HFTSTREAM"

_ACTION = {"0": "ADD", "1": "CHANGE", "2": "DELETE"}
_ACTION_OUT = {v: k for k, v in _ACTION.items()}
_BOOK_SIDE = {"0": "BUY", "1": "SELL"}
_BOOK_SIDE_OUT = {v: k for k, v in _BOOK_SIDE.items()}
_AGGRESSOR = {"1": "BUY", "2": "SELL"}
_AGGRESSOR_OUT = {v: k for k, v in _AGGRESSOR.items()}
# SecurityTradingStatus (326). FIX 4.4 has no code for a closing auction: 4001 is this venue's own.
_STATUS_OUT = {"PRE_OPEN": "21", "OPENING_AUCTION": "22", "OPEN": "17", "HALTED": "2", "CLOSING_AUCTION": "4001", "CLOSED": "18"}
_STATUS = {v: k for k, v in _STATUS_OUT.items()} | {"3": "OPEN"}  # 3 = Resume

_HEADER_TAGS = frozenset({49, 56, 34, 52, 43, 97, 122})
_X_ENTRY_TAGS = frozenset({279, 269, 55, 270, 271, 60, 273, 1003, 5797})
_W_ENTRY_TAGS = frozenset({269, 270, 271, 273})


def frame(fields: list[tuple[str, str]]) -> bytes:
    """Wrap body ``fields`` (starting with 35) into a complete FIX 4.4 message with 9 and 10 computed."""
    for tag, value in fields:
        if not value or SOH in value:
            raise ValueError(f"FIX tag {tag} value {value!r} is empty or contains SOH")
    body = "".join(f"{tag}={value}{SOH}" for tag, value in fields).encode()
    head = BEGIN + f"9={len(body)}{SOH}".encode() + body
    return head + f"10={sum(head) % 256:03d}{SOH}".encode()


def _unframe(payload: bytes) -> list[tuple[int, str]]:
    """Check BeginString, BodyLength and CheckSum; return the body's (tag, value) pairs."""
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise ValueError(f"payload must be bytes, got {type(payload).__name__}")
    payload = bytes(payload)
    if not payload.startswith(BEGIN):
        raise ValueError(f"does not start with 8=FIX.4.4<SOH> (starts {payload[:12]!r})")
    end9 = payload.find(b"\x01", len(BEGIN))
    field9 = payload[len(BEGIN) : end9] if end9 > 0 else b""
    if not field9.startswith(b"9=") or not field9[2:].isdigit():
        raise ValueError("second field must be 9=<BodyLength>")
    body_start = end9 + 1
    trailer = body_start + int(field9[2:])
    if trailer > len(payload) or payload[trailer : trailer + 3] != b"10=":
        raise ValueError(f"BodyLength {int(field9[2:])} does not end at the 10= trailer (message truncated or padded)")
    checksum = payload[trailer + 3 :]
    if len(checksum) != 4 or not checksum[:3].isdigit() or checksum[3:] != b"\x01":
        raise ValueError(f"trailer must be 10=<3 digits><SOH> ending the message, got {payload[trailer:]!r}")
    expected = sum(payload[:trailer]) % 256
    if int(checksum[:3]) != expected:
        raise ValueError(f"CheckSum {checksum[:3].decode()} does not match the computed {expected:03d}")
    body = payload[body_start:trailer]
    if not body.endswith(b"\x01"):
        raise ValueError("body does not end with SOH")
    try:
        text = body[:-1].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"body is not UTF-8 ({exc.reason} at byte {body_start + exc.start})") from None
    fields: list[tuple[int, str]] = []
    for part in text.split(SOH):
        tag, eq, value = part.partition("=")
        if not eq or not tag.isascii() or not tag.isdigit() or tag.startswith("0"):
            raise ValueError(f"malformed field {part!r}")
        if not value:
            raise ValueError(f"tag {tag} has an empty value")
        fields.append((int(tag), value))
    return fields


def byte_sum(data: bytes, end: int) -> int:
    """``sum(data[:end])`` in C: ``zlib.adler32``'s low half is 1 + the byte sum mod 65521, exact for 256 bytes at a time."""
    if end <= 256:
        return (adler32(data[:end]) & 0xFFFF) - 1
    view = memoryview(data)[:end]
    return sum((adler32(view[i : i + 256]) & 0xFFFF) - 1 for i in range(0, end, 256))


# -- the fast path: the shapes this module's encoder writes, read with one split on SOH ------------
# It returns a result only where the strict reader (``_unframe`` + ``FixCodec._read``) returns the
# same one, and ``None`` for anything else -- other field orders, optional header tags, repeated or
# unknown tags, timestamps without nanoseconds, unknown symbols -- which the strict reader then
# reads or refuses with its own message. Tags are compared as the exact strings ``"270"``, so a
# tag written ``0270`` or with non-ASCII digits never gets past it.

_BEGIN_9 = BEGIN + b"9="
_X_TAGS = frozenset({"279", "269", "55", "270", "271", "60", "273", "1003", "5797"})
_W_ENTRY_REST = frozenset({"270", "271", "273"})
_F_TAGS = frozenset({"55", "326", "58", "60"})


def _fix_fast(payload: bytes, ref: RefData) -> Fields | None:
    """What ``FixCodec`` decodes from ``payload`` if it has the encoder's layout, else ``None``."""
    if type(payload) is not bytes or not payload.startswith(_BEGIN_9):
        return None
    end9 = payload.find(b"\x01", 12)
    length = payload[12:end9]
    if end9 < 0 or not length.isdigit() or len(length) > 9:
        return None
    body_start = end9 + 1
    trailer = body_start + int(length)
    checksum = payload[trailer + 3 : trailer + 6]
    if (
        trailer <= body_start or len(payload) != trailer + 7 or payload[trailer : trailer + 3] != b"10="
        or payload[-1] != 1 or payload[trailer - 1] != 1 or not checksum.isdigit()
        or int(checksum) != ((adler32(payload[:trailer]) & 0xFFFF) - 1 if trailer <= 256 else byte_sum(payload, trailer)) & 0xFF
    ):
        return None
    try:
        parts = payload[body_start : trailer - 1].decode().split(SOH)
    except UnicodeDecodeError:
        return None
    if len(parts) < 5:
        return None
    msg_type, sender, target, seq_text, sending = parts[0], parts[1], parts[2], parts[3], parts[4]
    if not (
        sender.startswith("49=") and len(sender) > 3 and target.startswith("56=") and len(target) > 3
        and seq_text.startswith("34=") and sending.startswith("52=")
    ):
        return None
    seq_text = seq_text[3:]
    if not (seq_text.isascii() and seq_text.isdigit()) or len(seq_text) > 18:
        return None
    seq = int(seq_text)
    sending = sending[3:]
    sent = fix_time_fast(sending)
    if seq < 1 or sent is None:
        return None
    rest = parts[5:]
    if msg_type == "35=X":
        return _fast_x(seq, sending, sent, rest, ref)
    if msg_type == "35=W":
        return _fast_w(seq, sending, sent, rest, ref)
    if msg_type == "35=f":
        top: dict[str, str] = {}
        for part in rest:
            tag, _, value = part.partition("=")
            if not value or tag not in _F_TAGS or tag in top:
                return None
            top[tag] = value
        status = _STATUS.get(top.get("326"))  # type: ignore[arg-type]
        ts = _event_time(top.get("60"), sending, sent)
        if status is None or ts is None:
            return None
        return seq, StatusChange, (top.get("55"), ts, status, top.get("58"))
    if msg_type == "35=0" and not rest:
        return seq, Heartbeat, (sent,)
    return None


def _event_time(text: str | None, sending: str, sent: int) -> int | None:
    """TransactTime (60) if present (usually the SendingTime text again, already read), else SendingTime."""
    return sent if text is None or text == sending else fix_time_fast(text)


def _fast_x(seq: int, sending: str, sent: int, rest: list[str], ref: RefData) -> Fields | None:
    """35=X with one MD entry: ``268=1``, ``279=...``, then the entry's other tags once each, in any order."""
    if len(rest) < 2 or rest[0] != "268=1" or not rest[1].startswith("279="):
        return None
    entry: dict[str, str] = {}
    for part in rest[1:]:
        tag, _, value = part.partition("=")
        if not value or tag not in _X_TAGS or tag in entry:
            return None
        entry[tag] = value
    symbol, price = entry.get("55"), entry.get("270")
    if symbol is None or price is None:
        return None
    inst = ref.by_symbol(symbol)
    if inst is None:
        return None
    ts = _event_time(entry.get("60"), sending, sent)
    action = _ACTION.get(entry["279"])
    price = decimal_fast(price, inst.price_scale)  # type: ignore[assignment]
    if ts is None or action is None or price is None:
        return None
    size = entry.get("271")
    entry_type = entry.get("269")
    if entry_type == "2":
        aggressor = entry.get("5797")
        trade_id = entry.get("1003")
        if action != "ADD" or size is None or trade_id is None:
            return None
        if aggressor is not None and (aggressor := _AGGRESSOR.get(aggressor)) is None:
            return None
        size = decimal_fast(size, inst.size_scale)  # type: ignore[assignment]
        if size is None or size < 0:  # type: ignore[operator]
            return None
        return seq, Trade, (symbol, ts, trade_id, price, size, aggressor)
    if entry_type != "0" and entry_type != "1":
        return None
    if size is None:
        if action != "DELETE":
            return None
        size = 0  # type: ignore[assignment]
    else:
        size = decimal_fast(size, inst.size_scale)  # type: ignore[assignment]
        if size is None or size < 0:  # type: ignore[operator]
            return None
    return seq, BookDelta, (symbol, ts, _BOOK_SIDE[entry_type], action, price, size)


def _fast_w(seq: int, sending: str, sent: int, rest: list[str], ref: RefData) -> Fields | None:
    """35=W: ``55`` and ``60`` (once each, any order), ``268=<n>``, then n entries ``269`` + ``270``/``271``/``273``."""
    top: dict[str, str] = {}
    i = 0
    for i, part in enumerate(rest):  # noqa: B007 (i is where the group starts)
        if part.startswith("268="):
            break
        tag, _, value = part.partition("=")
        if not value or (tag != "55" and tag != "60") or tag in top:
            return None
        top[tag] = value
    else:
        return None
    count = rest[i][4:]
    entries: list[dict[str, str]] = []
    for part in rest[i + 1 :]:
        tag, _, value = part.partition("=")
        if not value:
            return None
        if tag == "269":
            entries.append({"269": value})
        elif entries and tag in _W_ENTRY_REST and tag not in entries[-1]:
            entries[-1][tag] = value
        else:
            return None
    symbol = top.get("55")
    if count != str(len(entries)) or symbol is None:
        return None
    inst = ref.by_symbol(symbol)
    ts = _event_time(top.get("60"), sending, sent)
    if inst is None or ts is None:
        return None
    ps, ss = inst.price_scale, inst.size_scale
    book: list[int | None] = [None, 0, None, 0]  # bid price, bid size, ask price, ask size
    seen = ""
    for entry in entries:
        side, price, size = entry["269"], entry.get("270"), entry.get("271")
        if (side != "0" and side != "1") or side in seen or price is None or size is None:
            return None
        seen += side
        price, size = decimal_fast(price, ps), decimal_fast(size, ss)  # type: ignore[assignment]
        if price is None or size is None or size < 0:  # type: ignore[operator]
            return None
        at = 0 if side == "0" else 2
        book[at], book[at + 1] = price, size  # type: ignore[assignment]
    return seq, Quote, (symbol, ts, *book)


def _put(into: dict[int, str], tag: int, value: str, where: str) -> None:
    if tag in into:
        raise ValueError(f"tag {tag} repeated in {where}")
    into[tag] = value


def _split_groups(rest: list[tuple[int, str]], delimiter: int, entry_tags: frozenset[int]) -> tuple[dict[int, str], list[dict[int, str]]]:
    """Message-level fields and the NoMDEntries (268) repeating group, checked against its count."""
    top: dict[int, str] = {}
    entries: list[dict[int, str]] = []
    count: int | None = None
    for tag, value in rest:
        if tag == 268:
            if count is not None:
                raise ValueError("tag 268 repeated")
            if not value.isdigit():
                raise ValueError(f"NoMDEntries (268) must be a number, got {value!r}")
            count = int(value)
        elif count is not None and tag == delimiter:
            entries.append({tag: value})
        elif entries and tag in entry_tags:
            _put(entries[-1], tag, value, f"MD entry {len(entries)}")
        else:
            _put(top, tag, value, "the message")
    if count is None:
        raise ValueError("missing NoMDEntries (268)")
    if count != len(entries):
        raise ValueError(f"NoMDEntries (268) says {count} but the message has {len(entries)} entries")
    return top, entries


def _req(fields: dict[int, str], tag: int, name: str) -> str:
    if tag not in fields:
        raise ValueError(f"missing {name} ({tag})")
    return fields[tag]


def _dec(fields: dict[int, str], tag: int, name: str, scale: int | None, *, minimum: int | None = None) -> int:
    return parse_scaled_field(_req(fields, tag, name), f"{name} ({tag})", scale, minimum=minimum)


def _map(fields: dict[int, str], tag: int, name: str, table: dict[str, str]) -> str:
    value = _req(fields, tag, name)
    if value not in table:
        raise ValueError(f"unsupported {name} ({tag}) {value!r}; expected one of {sorted(table)}")
    return table[value]


class FixCodec(Codec):
    """``fix``: FIX 4.4 market data messages; MsgSeqNum (34) is the venue sequence number."""

    format: ClassVar[str] = "fix"
    sequenced: ClassVar[bool] = True
    _fast = staticmethod(_fix_fast)  # type: ignore[assignment]
    _native_fast = native_fast("fix_fast")

    def _encode(self, msg: VenueMessage, ref: RefData) -> bytes:
        ev = msg.event
        if ev.exchange_ts_ns < 0:
            raise ValueError(f"timestamp {ev.exchange_ts_ns} is before the epoch")
        when = format_fix_time(ev.exchange_ts_ns)
        msg_type = {"trade": "X", "book": "X", "quote": "W", "status": "f", "heartbeat": "0"}[ev.kind]
        fields = [("35", msg_type), ("49", self.venue.upper()), ("56", TARGET_COMP_ID), ("34", str(msg.seq)), ("52", when)]
        if isinstance(ev, Trade):
            inst = instrument(ref, ev.symbol)
            fields += [("268", "1"), ("279", "0"), ("269", "2"), ("55", ev.symbol)]
            fields += [("270", format_decimal(ev.price, inst.price_scale, strip=True))]
            fields += [("271", format_decimal(ev.size, inst.size_scale, strip=True)), ("1003", ev.trade_id)]
            if ev.aggressor_side is not None:
                fields.append(("5797", _AGGRESSOR_OUT[ev.aggressor_side]))
            fields.append(("60", when))
        elif isinstance(ev, BookDelta):
            inst = instrument(ref, ev.symbol)
            fields += [("268", "1"), ("279", _ACTION_OUT[ev.action]), ("269", _BOOK_SIDE_OUT[ev.side]), ("55", ev.symbol)]
            fields += [("270", format_decimal(ev.price, inst.price_scale, strip=True))]
            fields += [("271", format_decimal(ev.size, inst.size_scale, strip=True)), ("60", when)]
        elif isinstance(ev, Quote):
            inst = instrument(ref, ev.symbol)
            sides = [("0", ev.bid_price, ev.bid_size), ("1", ev.ask_price, ev.ask_size)]
            entries: list[tuple[str, str]] = []
            for code, price, size in sides:
                if price is None:
                    if size:
                        raise ValueError("a quote side without a price must have size 0")
                    continue
                entries += [("269", code), ("270", format_decimal(price, inst.price_scale, strip=True))]
                entries.append(("271", format_decimal(size, inst.size_scale, strip=True)))
            fields += [("55", ev.symbol), ("60", when), ("268", str(len(entries) // 3)), *entries]
        elif isinstance(ev, StatusChange):
            if ev.symbol is not None:
                fields.append(("55", ev.symbol))
            fields.append(("326", _STATUS_OUT[ev.status]))
            if ev.reason is not None:
                fields.append(("58", ev.reason))
            fields.append(("60", when))
        return frame(fields)

    def _read(self, payload: bytes, resolve: Resolve) -> tuple[int | None, MarketEvent | None, Inspection]:
        fields = _unframe(payload)
        if fields[0][0] != 35:
            raise ValueError("first body field must be MsgType (35)")
        msg_type = fields[0][1]
        header: dict[int, str] = {}
        i = 1
        while i < len(fields) and fields[i][0] in _HEADER_TAGS:
            _put(header, fields[i][0], fields[i][1], "the header")
            i += 1
        seq_text = _req(header, 34, "MsgSeqNum")
        if not seq_text.isascii() or not seq_text.isdigit() or int(seq_text) < 1:
            raise ValueError(f"MsgSeqNum (34) must be a positive integer, got {seq_text!r}")
        seq = int(seq_text)
        sending = parse_fix_time(_req(header, 52, "SendingTime"))
        rest = fields[i:]
        if msg_type == "0":
            if rest:
                raise ValueError(f"unexpected tag {rest[0][0]} in a Heartbeat")
            return seq, Heartbeat(sending), Inspection("heartbeat", seq, None, None, sending)
        if msg_type == "f":
            top: dict[int, str] = {}
            for tag, value in rest:
                _put(top, tag, value, "the message")
            symbol = top.get(55)
            ts = parse_fix_time(top[60]) if 60 in top else sending
            status = _map(top, 326, "SecurityTradingStatus", _STATUS)
            return seq, StatusChange(symbol, ts, status, top.get(58)), Inspection("status", seq, symbol, None, ts)  # type: ignore[arg-type]
        if msg_type == "W":
            top, entries = _split_groups(rest, 269, _W_ENTRY_TAGS)
            symbol = _req(top, 55, "Symbol")
            ts = parse_fix_time(top[60]) if 60 in top else sending
            inst = resolve(symbol) if resolve else None
            ps, ss = (inst.price_scale, inst.size_scale) if inst else (None, None)
            book: dict[str, tuple[int, int]] = {}
            for entry in entries:
                side = _map(entry, 269, "MDEntryType", {"0": "bid", "1": "ask"})
                if side in book:
                    raise ValueError(f"two {side} entries in a snapshot")
                book[side] = (_dec(entry, 270, "MDEntryPx", ps), _dec(entry, 271, "MDEntrySize", ss, minimum=0))
            bid, ask = book.get("bid"), book.get("ask")
            quote = Quote(
                symbol, ts, bid[0] if bid else None, bid[1] if bid else 0, ask[0] if ask else None, ask[1] if ask else 0
            )
            return seq, quote, Inspection("quote", seq, symbol, None, ts)
        if msg_type == "X":
            top, entries = _split_groups(rest, 279, _X_ENTRY_TAGS)
            if len(entries) != 1:
                raise ValueError(f"only single-entry incremental refreshes are supported, got {len(entries)} entries")
            if top:
                raise ValueError(f"unexpected tag {next(iter(top))} outside the MD entry")
            entry = entries[0]
            symbol = _req(entry, 55, "Symbol")
            ts = parse_fix_time(entry[60]) if 60 in entry else sending
            inst = resolve(symbol) if resolve else None
            ps, ss = (inst.price_scale, inst.size_scale) if inst else (None, None)
            entry_type = _map(entry, 269, "MDEntryType", {"0": "bid", "1": "ask", "2": "trade"})
            action = _map(entry, 279, "MDUpdateAction", _ACTION)
            price = _dec(entry, 270, "MDEntryPx", ps)
            event: MarketEvent
            if entry_type == "trade":
                if action != "ADD":
                    raise ValueError(f"a trade entry must have MDUpdateAction (279) 0, got {entry[279]}")
                aggressor = _map(entry, 5797, "AggressorSide", _AGGRESSOR) if 5797 in entry else None
                size = _dec(entry, 271, "MDEntrySize", ss, minimum=0)
                event = Trade(symbol, ts, _req(entry, 1003, "TradeID"), price, size, aggressor)  # type: ignore[arg-type]
            else:
                size = _dec(entry, 271, "MDEntrySize", ss, minimum=0) if 271 in entry or action != "DELETE" else 0
                event = BookDelta(symbol, ts, _BOOK_SIDE["0" if entry_type == "bid" else "1"], action, price, size)  # type: ignore[arg-type]
            return seq, event, Inspection(event.kind, seq, symbol, None, ts)
        raise ValueError(f"unsupported MsgType (35) {msg_type!r}; expected X, W, f or 0")
