//! `json_decimal_fast` and `json_ticks_fast` (connectors/venues/json_fast.py), check for check.

use pyo3::prelude::*;

use super::json::{object, Value};
use super::scalars::{decimal, iso_ns};
use super::{Event, Out, VenueTable, ADD, BUY, CHANGE, DELETE, SELL, STATUS};

type Slot<'a> = Option<Value<'a>>;

/// `_text(v)`: a non-empty string.
fn text(v: Slot<'_>) -> Option<&str> {
    v?.str().filter(|s| !s.is_empty())
}

/// `v is None or _text(v)` (absent or null: `None`); the outer `None` declines.
fn nullable_text(v: Slot<'_>) -> Option<Option<&str>> {
    match v {
        None | Some(Value::Null) => Some(None),
        _ => text(v).map(Some),
    }
}

/// `_int(v, low)`: an int (not a bool) in `low..=INT64_MAX`.
fn int(v: Slot<'_>, low: i64) -> Option<i64> {
    match v? {
        Value::Int(i) if i >= low => Some(i),
        _ => None,
    }
}

/// An optional mapped word: absent is `Some(None)`, a listed string its word, anything else declines.
fn optional_word(v: Slot<'_>, map: fn(&str) -> Option<usize>) -> Option<Option<usize>> {
    match v {
        None => Some(None),
        Some(v) => map(v.str()?).map(Some),
    }
}

/// A decimal string at `scale`, not below `minimum`.
fn scaled(v: Slot<'_>, scale: u32, minimum: i64) -> Option<i64> {
    decimal(v?.str()?, scale).filter(|x| *x >= minimum)
}

/// `a * b` within int64 (json-ticks' ticks and lots).
fn times(a: i64, b: i64) -> Option<i64> {
    i64::try_from(i128::from(a) * i128::from(b)).ok()
}

// -- json-decimal -------------------------------------------------------------------------------------

const JD_KEYS: [&str; 15] = [
    "type", "ts", "symbol", "reason", "status", "price", "size", "trade_id", "aggressor", "bid", "ask", "bid_size", "ask_size", "side", "action",
];
const TYPE: usize = 0;
const TS: usize = 1;
const SYMBOL: usize = 2;
const REASON: usize = 3;
const STATUS_KEY: usize = 4;
const PRICE: usize = 5;
const SIZE: usize = 6;
const TRADE_ID: usize = 7;
const AGGRESSOR: usize = 8;
const BID: usize = 9;
const ASK: usize = 10;
const BID_SIZE: usize = 11;
const ASK_SIZE: usize = 12;
const SIDE: usize = 13;
const ACTION: usize = 14;
const ANY: i64 = i64::MIN;

fn jd_status(s: &str) -> Option<usize> {
    let k = ["pre_open", "opening_auction", "open", "halted", "closing_auction", "closed"].iter().position(|w| *w == s)?;
    Some(STATUS + k)
}

fn jd_aggressor(s: &str) -> Option<usize> {
    match s {
        "buy" => Some(BUY),
        "sell" => Some(SELL),
        _ => None,
    }
}

fn jd_side(s: &str) -> Option<usize> {
    match s {
        "bid" => Some(BUY),
        "ask" => Some(SELL),
        _ => None,
    }
}

fn jd_action(s: &str) -> Option<usize> {
    match s {
        "add" => Some(ADD),
        "update" => Some(CHANGE),
        "delete" => Some(DELETE),
        _ => None,
    }
}

/// A quote price: null is `Some(None)`, a decimal string its value; absent or anything else declines.
fn jd_quote_price(v: Slot<'_>, scale: u32) -> Option<Option<i64>> {
    match v? {
        Value::Null => Some(None),
        v => scaled(Some(v), scale, ANY).map(Some),
    }
}

pub fn decimal_format(py: Python<'_>, t: &VenueTable, payload: &str) -> Option<PyObject> {
    let v = object(payload, &JD_KEYS)?;
    let kind = v[TYPE]?.str()?;
    let ts = iso_ns(v[TS]?.str()?).filter(|ts| *ts >= 0)?;
    let out = Out::new(py);
    match kind {
        "heartbeat" => return out.int(Some(ts)).fields(t, None, Event::Heartbeat),
        "status" => {
            let (symbol, reason) = (nullable_text(v[SYMBOL])?, nullable_text(v[REASON])?);
            let status = jd_status(v[STATUS_KEY]?.str()?)?;
            return out.text(symbol).int(Some(ts)).word(t, Some(status)).text(reason).fields(t, None, Event::StatusChange);
        }
        _ => {}
    }
    let inst = t.symbol(text(v[SYMBOL])?)?;
    let (ps, ss) = (inst.price_scale, inst.size_scale);
    let out = out.name(&inst.name).int(Some(ts));
    match kind {
        "trade" => {
            let trade_id = text(v[TRADE_ID])?;
            let aggressor = optional_word(v[AGGRESSOR], jd_aggressor)?;
            let (price, size) = (scaled(v[PRICE], ps, ANY)?, scaled(v[SIZE], ss, 0)?);
            out.text(Some(trade_id)).int(Some(price)).int(Some(size)).word(t, aggressor).fields(t, None, Event::Trade)
        }
        "quote" => {
            let (bid, ask) = (jd_quote_price(v[BID], ps)?, jd_quote_price(v[ASK], ps)?);
            let (bid_size, ask_size) = (scaled(v[BID_SIZE], ss, 0)?, scaled(v[ASK_SIZE], ss, 0)?);
            out.int(bid).int(Some(bid_size)).int(ask).int(Some(ask_size)).fields(t, None, Event::Quote)
        }
        "book" => {
            let (side, action) = (jd_side(v[SIDE]?.str()?)?, jd_action(v[ACTION]?.str()?)?);
            let (price, size) = (scaled(v[PRICE], ps, ANY)?, scaled(v[SIZE], ss, 0)?);
            out.word(t, Some(side)).word(t, Some(action)).int(Some(price)).int(Some(size)).fields(t, None, Event::BookDelta)
        }
        _ => None,
    }
}

// -- json-ticks ---------------------------------------------------------------------------------------

const JT_KEYS: [&str; 15] = ["t", "q", "ns", "i", "st", "r", "p", "z", "x", "a", "b", "bz", "az", "s", "u"];
const T: usize = 0;
const Q: usize = 1;
const NS: usize = 2;
const I: usize = 3;
const ST: usize = 4;
const R: usize = 5;
const P: usize = 6;
const Z: usize = 7;
const X: usize = 8;
const A: usize = 9;
const B: usize = 10;
const BZ: usize = 11;
const AZ: usize = 12;
const S: usize = 13;
const U: usize = 14;

fn jt_aggressor(s: &str) -> Option<usize> {
    match s {
        "B" => Some(BUY),
        "S" => Some(SELL),
        _ => None,
    }
}

/// An index into `words` from an int field: `0..n` maps to `first + k`.
fn code(v: Slot<'_>, first: usize, n: i64) -> Option<usize> {
    let k = int(v, 0).filter(|k| *k < n)?;
    Some(first + k as usize)
}

/// An optional quote price in ticks: absent is `Some(None)`, an int its scaled value; anything else declines.
fn jt_quote_price(v: Slot<'_>, tick: i64) -> Option<Option<i64>> {
    match v {
        None => Some(None),
        v => times(int(v, ANY)?, tick).map(Some),
    }
}

/// The trade id: absent is the sequence number, an int its decimal text, else a non-empty string.
fn jt_trade_id(v: Slot<'_>, seq: i64) -> Option<String> {
    match v {
        None => Some(seq.to_string()),
        Some(Value::Int(i)) => Some(i.to_string()),
        v => text(v).map(str::to_owned),
    }
}

pub fn ticks_format(py: Python<'_>, t: &VenueTable, payload: &str) -> Option<PyObject> {
    let v = object(payload, &JT_KEYS)?;
    let (kind, seq, ts) = (v[T]?.str()?, int(v[Q], 0)?, int(v[NS], 0)?);
    let out = Out::new(py);
    match kind {
        "H" => return out.int(Some(ts)).fields(t, Some(seq), Event::Heartbeat),
        "S" => {
            let symbol = match v[I] {
                None => None,
                number => Some(&t.number(int(number, 0)?)?.name),
            };
            let status = code(v[ST], STATUS, 6)?;
            let reason = nullable_text(v[R])?;
            let out = match symbol {
                Some(name) => out.name(name),
                None => out.text(None),
            };
            return out.int(Some(ts)).word(t, Some(status)).text(reason).fields(t, Some(seq), Event::StatusChange);
        }
        _ => {}
    }
    let inst = t.number(int(v[I], 0)?)?;
    let (tick, lot) = (inst.tick, inst.lot);
    let out = out.name(&inst.name).int(Some(ts));
    match kind {
        "T" => {
            let (price, size) = (times(int(v[P], ANY)?, tick)?, times(int(v[Z], 0)?, lot)?);
            let trade_id = jt_trade_id(v[X], seq)?;
            let aggressor = optional_word(v[A], jt_aggressor)?;
            out.text(Some(&trade_id)).int(Some(price)).int(Some(size)).word(t, aggressor).fields(t, Some(seq), Event::Trade)
        }
        "Q" => {
            let (bid, ask) = (jt_quote_price(v[B], tick)?, jt_quote_price(v[A], tick)?);
            let (bid_size, ask_size) = (times(int(v[BZ], 0)?, lot)?, times(int(v[AZ], 0)?, lot)?);
            out.int(bid).int(Some(bid_size)).int(ask).int(Some(ask_size)).fields(t, Some(seq), Event::Quote)
        }
        "B" => {
            let (side, action) = (code(v[S], BUY, 2)?, code(v[U], ADD, 3)?);
            let (price, size) = (times(int(v[P], ANY)?, tick)?, times(int(v[Z], 0)?, lot)?);
            out.word(t, Some(side)).word(t, Some(action)).int(Some(price)).int(Some(size)).fields(t, Some(seq), Event::BookDelta)
        }
        _ => None,
    }
}
