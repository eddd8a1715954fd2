//! The venue formats' decoders' fast paths (connectors/venues/json_fast.py and fix.py), natively.
//!
//! Each function takes the payload and a `VenueTable` (a RefData's instruments, built once per version of
//! the reference data by `RefData.native_table`) and returns `Codec.decode_fields`'s tuple
//! `(seq, event class, field values)` -- the same Python types and values as the Python fast path -- or
//! `None` wherever the Python fast path returns `None` and wherever this code is not sure to agree
//! (DECISIONS #63). Then the Python fast path, then the strict reader, decide: errors stay the Python path's.

use std::collections::HashMap;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString, PyTuple};

mod fix;
mod json;
mod jsonfmt;
mod scalars;

/// The event classes, in the order `VenueTable` receives them.
#[derive(Clone, Copy)]
pub enum Event {
    Trade = 0,
    Quote = 1,
    BookDelta = 2,
    StatusChange = 3,
    Heartbeat = 4,
}

/// The words the events carry, interned once: sides, book actions, then TRADING_STATUSES in its order.
const WORDS: [&str; 11] = ["BUY", "SELL", "ADD", "CHANGE", "DELETE", "PRE_OPEN", "OPENING_AUCTION", "OPEN", "HALTED", "CLOSING_AUCTION", "CLOSED"];
pub const BUY: usize = 0;
pub const SELL: usize = 1;
pub const ADD: usize = 2;
pub const CHANGE: usize = 3;
pub const DELETE: usize = 4;
/// `WORDS[STATUS + k]` is `TRADING_STATUSES[k]`.
pub const STATUS: usize = 5;

/// An instrument by symbol: its symbol object and scales (0..=18; others are left out, so declined).
pub struct BySymbol {
    pub name: Py<PyString>,
    pub price_scale: u32,
    pub size_scale: u32,
}

/// An instrument by integer id (json-ticks): its symbol object, tick and lot sizes.
pub struct ByNumber {
    pub name: Py<PyString>,
    pub tick: i64,
    pub lot: i64,
}

/// A RefData's instruments for the fast paths, and the objects the results are made of.
#[pyclass(frozen, module = "streams._native")]
pub struct VenueTable {
    by_symbol: HashMap<String, BySymbol>,
    by_number: HashMap<i64, ByNumber>,
    classes: Vec<PyObject>,
    words: Vec<Py<PyString>>,
}

fn scale(v: i64) -> Option<u32> {
    u32::try_from(v).ok().filter(|s| *s <= 18)
}

#[pymethods]
impl VenueTable {
    /// `symbols`: `(symbol, price_scale, size_scale)` per `RefData.by_symbol` entry; `numbers`:
    /// `(number, symbol, tick_size, lot_size)` per `RefData.by_number` entry; `classes`: Trade, Quote,
    /// BookDelta, StatusChange, Heartbeat. A row that does not fit (a scale outside 0..=18, a value beyond
    /// int64, a symbol that is not UTF-8) is left out: its messages are then declined.
    #[new]
    fn new(py: Python<'_>, symbols: &Bound<'_, PyAny>, numbers: &Bound<'_, PyAny>, classes: (PyObject, PyObject, PyObject, PyObject, PyObject)) -> PyResult<Self> {
        let mut by_symbol = HashMap::new();
        for row in symbols.try_iter()? {
            if let Ok((name, ps, ss)) = row?.extract::<(Bound<'_, PyString>, i64, i64)>() {
                if let (Ok(key), Some(price_scale), Some(size_scale)) = (name.to_str().map(str::to_owned), scale(ps), scale(ss)) {
                    by_symbol.insert(key, BySymbol { name: name.unbind(), price_scale, size_scale });
                }
            }
        }
        let mut by_number = HashMap::new();
        for row in numbers.try_iter()? {
            if let Ok((number, name, tick, lot)) = row?.extract::<(i64, Bound<'_, PyString>, i64, i64)>() {
                by_number.insert(number, ByNumber { name: name.unbind(), tick, lot });
            }
        }
        let (a, b, c, d, e) = classes;
        let words = WORDS.iter().map(|w| PyString::intern(py, w).unbind()).collect();
        Ok(VenueTable { by_symbol, by_number, classes: vec![a, b, c, d, e], words })
    }
}

impl VenueTable {
    pub fn symbol(&self, name: &str) -> Option<&BySymbol> {
        self.by_symbol.get(name)
    }

    pub fn number(&self, number: i64) -> Option<&ByNumber> {
        self.by_number.get(&number)
    }

    pub fn word(&self, py: Python<'_>, i: usize) -> PyObject {
        self.words[i].clone_ref(py).into_any()
    }
}

/// Builds the field values of one result.
pub struct Out<'py> {
    py: Python<'py>,
    items: Vec<PyObject>,
}

impl<'py> Out<'py> {
    pub fn new(py: Python<'py>) -> Self {
        Out { py, items: Vec::with_capacity(6) }
    }

    pub fn obj(mut self, v: PyObject) -> Self {
        self.items.push(v);
        self
    }

    pub fn name(self, n: &Py<PyString>) -> Self {
        let v = n.clone_ref(self.py).into_any();
        self.obj(v)
    }

    pub fn text(self, s: Option<&str>) -> Self {
        let v = match s {
            Some(s) => PyString::new(self.py, s).into_any().unbind(),
            None => self.py.None(),
        };
        self.obj(v)
    }

    pub fn int(self, v: Option<i64>) -> Self {
        let v = match v {
            Some(v) => v.into_pyobject(self.py).map_or_else(|_| self.py.None(), |i| i.into_any().unbind()),
            None => self.py.None(),
        };
        self.obj(v)
    }

    pub fn word(self, t: &VenueTable, w: Option<usize>) -> Self {
        let v = w.map_or_else(|| self.py.None(), |w| t.word(self.py, w));
        self.obj(v)
    }

    /// `(seq, event class, (values...))`.
    pub fn fields(self, t: &VenueTable, seq: Option<i64>, event: Event) -> Option<PyObject> {
        let py = self.py;
        let values = PyTuple::new(py, self.items).ok()?;
        let seq = match seq {
            Some(s) => s.into_pyobject(py).ok()?.into_any().unbind(),
            None => py.None(),
        };
        let cls = t.classes[event as usize].clone_ref(py);
        Some(PyTuple::new(py, [seq, cls, values.into_any().unbind()]).ok()?.into_any().unbind())
    }
}

fn payload<'a>(p: &'a Bound<'_, PyAny>) -> Option<&'a [u8]> {
    p.downcast_exact::<PyBytes>().ok().map(|b| b.as_bytes())
}

/// `json_decimal_fast(payload, ref)` with `ref`'s `VenueTable`.
#[pyfunction]
pub fn json_decimal_fast(py: Python<'_>, payload: &Bound<'_, PyAny>, table: &Bound<'_, VenueTable>) -> Option<PyObject> {
    jsonfmt::decimal_format(py, table.get(), std::str::from_utf8(self::payload(payload)?).ok()?)
}

/// `json_ticks_fast(payload, ref)` with `ref`'s `VenueTable`.
#[pyfunction]
pub fn json_ticks_fast(py: Python<'_>, payload: &Bound<'_, PyAny>, table: &Bound<'_, VenueTable>) -> Option<PyObject> {
    jsonfmt::ticks_format(py, table.get(), std::str::from_utf8(self::payload(payload)?).ok()?)
}

/// `_fix_fast(payload, ref)` (connectors/venues/fix.py) with `ref`'s `VenueTable`.
#[pyfunction]
pub fn fix_fast(py: Python<'_>, payload: &Bound<'_, PyAny>, table: &Bound<'_, VenueTable>) -> Option<PyObject> {
    fix::decode(py, table.get(), self::payload(payload)?)
}
