//! The tape sink's row encoding (connectors/clickhouse/avro_block.py `encode_row`): envelope + body bytes.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString, PyTuple};

use crate::avro::write_long;

/// A header value that Python's `int(value)` reads as this number: plain ASCII digits only (else `None`).
fn digits(b: &[u8]) -> Option<i64> {
    if b.is_empty() || b.len() > 18 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0i64, |n, d| n * 10 + (d - b'0') as i64))
}

fn bytes_of<'a>(o: &'a Bound<'_, PyAny>) -> Option<&'a [u8]> {
    Some(o.downcast_exact::<PyBytes>().ok()?.as_bytes())
}

/// `encode_row(prefix, plan, rec)` given the plan's `record_type_bytes` and `body_offset`, or `None` (Python decides).
#[pyfunction]
pub fn tape_row(py: Python<'_>, prefix: &Bound<'_, PyBytes>, record_type: &Bound<'_, PyBytes>, body_offset: usize, rec: &Bound<'_, PyAny>) -> Option<PyObject> {
    let t = rec.downcast::<PyTuple>().ok()?;
    if t.len() != 7 {
        return None;
    }
    let offset: i64 = t.get_item(2).ok()?.extract().ok()?;
    let ts: i64 = t.get_item(3).ok()?.extract().ok()?;
    let key = t.get_item(4).ok()?;
    let value = t.get_item(5).ok()?;
    let value = bytes_of(&value)?;
    let headers = t.get_item(6).ok()?;
    let headers = headers.downcast::<PyTuple>().ok()?;
    let (mut src_t, mut src_p, mut src_o): (Option<Bound<'_, PyAny>>, Option<Bound<'_, PyAny>>, Option<Bound<'_, PyAny>>) = (None, None, None);
    for h in headers.iter() {
        let pair = h.downcast_exact::<PyTuple>().ok()?;
        if pair.len() != 2 {
            return None;
        }
        let name = pair.get_item(0).ok()?;
        let name = name.downcast_exact::<PyString>().ok()?.to_str().ok()?;
        match name {
            "hft.src.topic" => src_t = Some(pair.get_item(1).ok()?),
            "hft.src.partition" => src_p = Some(pair.get_item(1).ok()?),
            "hft.src.offset" => src_o = Some(pair.get_item(1).ok()?),
            _ => {}
        }
    }
    let mut out = Vec::with_capacity(prefix.as_bytes().len() + value.len() + 64);
    out.extend_from_slice(prefix.as_bytes());
    write_long(&mut out, offset);
    write_long(&mut out, ts);
    if key.is_none() {
        out.push(0);
    } else {
        let k = bytes_of(&key)?;
        write_long(&mut out, k.len() as i64);
        out.extend_from_slice(k);
    }
    out.extend_from_slice(record_type.as_bytes());
    let topic = match &src_t {
        Some(x) => Some(bytes_of(x)?),
        None => None,
    };
    match (topic, &src_p, &src_o) {
        (Some(topic), Some(p), Some(o)) if !topic.is_empty() => {
            let p = digits(bytes_of(p)?)?;
            let o = digits(bytes_of(o)?)?;
            write_long(&mut out, topic.len() as i64);
            out.extend_from_slice(topic);
            write_long(&mut out, p);
            write_long(&mut out, o);
        }
        _ => out.extend_from_slice(&[0, 1, 1]), // "" and -1, -1: no lineage
    }
    out.extend_from_slice(value.get(body_offset..).unwrap_or(&[]));
    Some(PyBytes::new(py, &out).into_any().unbind())
}
