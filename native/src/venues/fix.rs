//! `_fix_fast` (connectors/venues/fix.py): the encoder's layouts, framing checked, read with one split on SOH.

use pyo3::prelude::*;

use super::scalars::{decimal, digits, fix_time, small_int};
use super::{Event, Out, VenueTable, ADD, BUY, CHANGE, DELETE, SELL, STATUS};

const BEGIN_9: &[u8] = b"8=FIX.4.4\x019=";

/// The body of a framed message (BodyLength and CheckSum as `_fix_fast` checks them), without its last SOH.
fn body(p: &[u8]) -> Option<&str> {
    if !p.starts_with(BEGIN_9) {
        return None;
    }
    let end9 = 12 + p[12..].iter().position(|&c| c == 1)?;
    let length = small_int(&p[12..end9]).filter(|_| end9 - 12 <= 9)? as usize;
    let (body_start, trailer) = (end9 + 1, end9 + 1 + length);
    if length == 0 || p.len() != trailer + 7 || &p[trailer..trailer + 3] != b"10=" || p[trailer + 6] != 1 || p[trailer - 1] != 1 {
        return None;
    }
    let checksum = &p[trailer + 3..trailer + 6];
    let sum = p[..trailer].iter().fold(0u32, |s, &c| s.wrapping_add(u32::from(c))) % 256;
    if !digits(checksum) || small_int(checksum)? != i64::from(sum) {
        return None;
    }
    std::str::from_utf8(&p[body_start..trailer - 1]).ok()
}

/// `tag=value` with a non-empty value (`part.partition("=")`), else `None`.
fn field(part: &str) -> Option<(&str, &str)> {
    part.split_once('=').filter(|(_, v)| !v.is_empty())
}

/// Puts `value` in the slot of `tag` among `tags`; `None` for an unlisted or repeated tag.
fn put<'a>(slots: &mut [Option<&'a str>], tags: &[&str], tag: &str, value: &'a str) -> Option<()> {
    let slot = &mut slots[tags.iter().position(|t| *t == tag)?];
    if slot.is_some() {
        return None;
    }
    *slot = Some(value);
    Some(())
}

/// What the header (49, 56, 34, 52, in this order) says: the sequence number, SendingTime's text and value.
struct Header<'a> {
    seq: i64,
    sending: &'a str,
    sent: i64,
}

impl Header<'_> {
    /// `_event_time`: TransactTime (60) if present and different from SendingTime's text, else SendingTime.
    fn event_time(&self, text: Option<&str>) -> Option<i64> {
        match text {
            None => Some(self.sent),
            Some(t) if t == self.sending => Some(self.sent),
            Some(t) => fix_time(t),
        }
    }
}

fn header<'a>(parts: &[&'a str]) -> Option<Header<'a>> {
    let (sender, target, seq, sending) = (parts[1], parts[2], parts[3], parts[4]);
    if !(sender.starts_with("49=") && sender.len() > 3 && target.starts_with("56=") && target.len() > 3) {
        return None;
    }
    let seq = small_int(seq.strip_prefix("34=")?.as_bytes()).filter(|s| *s >= 1)?;
    let sending = sending.strip_prefix("52=")?;
    Some(Header { seq, sending, sent: fix_time(sending)? })
}

pub fn decode(py: Python<'_>, t: &VenueTable, payload: &[u8]) -> Option<PyObject> {
    let parts: Vec<&str> = body(payload)?.split('\x01').collect();
    if parts.len() < 5 {
        return None;
    }
    let h = header(&parts)?;
    let rest = &parts[5..];
    match parts[0] {
        "35=X" => incremental(py, t, &h, rest),
        "35=W" => snapshot(py, t, &h, rest),
        "35=f" => status(py, t, &h, rest),
        "35=0" if rest.is_empty() => Out::new(py).int(Some(h.sent)).fields(t, Some(h.seq), Event::Heartbeat),
        _ => None,
    }
}

const F_TAGS: [&str; 4] = ["55", "326", "58", "60"];

/// SecurityTradingStatus (326) -> its index in TRADING_STATUSES (3 = Resume is OPEN).
fn trading_status(code: &str) -> Option<usize> {
    let k = match code {
        "21" => 0,
        "22" => 1,
        "17" | "3" => 2,
        "2" => 3,
        "4001" => 4,
        "18" => 5,
        _ => return None,
    };
    Some(STATUS + k)
}

fn status(py: Python<'_>, t: &VenueTable, h: &Header<'_>, rest: &[&str]) -> Option<PyObject> {
    let mut top = [None; 4];
    for part in rest {
        let (tag, value) = field(part)?;
        put(&mut top, &F_TAGS, tag, value)?;
    }
    let [symbol, code, reason, when] = top;
    let status = trading_status(code?)?;
    let ts = h.event_time(when)?;
    Out::new(py).text(symbol).int(Some(ts)).word(t, Some(status)).text(reason).fields(t, Some(h.seq), Event::StatusChange)
}

const X_TAGS: [&str; 9] = ["279", "269", "55", "270", "271", "60", "273", "1003", "5797"];

fn action(code: &str) -> Option<usize> {
    match code {
        "0" => Some(ADD),
        "1" => Some(CHANGE),
        "2" => Some(DELETE),
        _ => None,
    }
}

/// A size at `scale`, not negative.
fn size(text: &str, scale: u32) -> Option<i64> {
    decimal(text, scale).filter(|s| *s >= 0)
}

/// 35=X with one MD entry: `268=1`, `279=...`, then the entry's other tags once each, in any order.
fn incremental(py: Python<'_>, t: &VenueTable, h: &Header<'_>, rest: &[&str]) -> Option<PyObject> {
    if rest.len() < 2 || rest[0] != "268=1" || !rest[1].starts_with("279=") {
        return None;
    }
    let mut e = [None; 9];
    for part in &rest[1..] {
        let (tag, value) = field(part)?;
        put(&mut e, &X_TAGS, tag, value)?;
    }
    let [update, entry_type, symbol, price, size_text, when, _, trade_id, aggressor] = e;
    let inst = t.symbol(symbol?)?;
    let ts = h.event_time(when)?;
    let action = action(update?)?;
    let price = decimal(price?, inst.price_scale)?;
    let out = Out::new(py).name(&inst.name).int(Some(ts));
    let side = match entry_type? {
        "2" => {
            let aggressor = match aggressor {
                None => None,
                Some("1") => Some(BUY),
                Some("2") => Some(SELL),
                Some(_) => return None,
            };
            if action != ADD {
                return None;
            }
            let (trade_id, size) = (trade_id?, size(size_text?, inst.size_scale)?);
            return out.text(Some(trade_id)).int(Some(price)).int(Some(size)).word(t, aggressor).fields(t, Some(h.seq), Event::Trade);
        }
        "0" => BUY,
        "1" => SELL,
        _ => return None,
    };
    let size = match size_text {
        None if action == DELETE => 0,
        None => return None,
        Some(s) => size(s, inst.size_scale)?,
    };
    out.word(t, Some(side)).word(t, Some(action)).int(Some(price)).int(Some(size)).fields(t, Some(h.seq), Event::BookDelta)
}

/// One snapshot entry: 269, then 270 / 271 / 273 once each.
type Entry<'a> = [Option<&'a str>; 4];
const W_ENTRY_TAGS: [&str; 4] = ["269", "270", "271", "273"];

/// 35=W: `55` and `60` (once each, any order), `268=<n>`, then n entries `269` + `270`/`271`/`273`.
fn snapshot(py: Python<'_>, t: &VenueTable, h: &Header<'_>, rest: &[&str]) -> Option<PyObject> {
    let group = rest.iter().position(|p| p.starts_with("268="))?;
    let mut top = [None; 2];
    for part in &rest[..group] {
        let (tag, value) = field(part)?;
        put(&mut top, &["55", "60"], tag, value)?;
    }
    let mut entries: Vec<Entry<'_>> = Vec::with_capacity(2);
    for part in &rest[group + 1..] {
        let (tag, value) = field(part)?;
        if tag == "269" {
            entries.push([Some(value), None, None, None]);
        } else {
            put(&mut entries.last_mut()?[1..], &W_ENTRY_TAGS[1..], tag, value)?;
        }
    }
    if &rest[group][4..] != entries.len().to_string().as_str() {
        return None;
    }
    let inst = t.symbol(top[0]?)?;
    let ts = h.event_time(top[1])?;
    let mut book = [None, Some(0), None, Some(0)]; // bid price, bid size, ask price, ask size
    for [side, price, size_text, _] in entries {
        let at = match side? {
            "0" => 0,
            "1" => 2,
            _ => return None,
        };
        if book[at].is_some() {
            return None;
        }
        book[at] = Some(decimal(price?, inst.price_scale)?);
        book[at + 1] = Some(size(size_text?, inst.size_scale)?);
    }
    let [bid, bid_size, ask, ask_size] = book;
    Out::new(py).name(&inst.name).int(Some(ts)).int(bid).int(bid_size).int(ask).int(ask_size).fields(t, Some(h.seq), Event::Quote)
}
