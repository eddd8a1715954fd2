//! The tape sink's row encoding (connectors/clickhouse/avro_block.py `encode_row`): envelope + body bytes,
//! from a `Record` (`tape_row`) or straight from segment frames (`tape_scan`, no `Record` in between).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple, PyType};

use crate::avro::write_long;
use crate::segment::{bounds, frame_at, header_at, Frame, RecordMaker};

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

/// The lineage headers' values (the last of each name wins, as in `py_encode_row`).
#[derive(Default)]
struct Lineage<'a> {
    topic: Option<&'a [u8]>,
    partition: Option<&'a [u8]>,
    offset: Option<&'a [u8]>,
}

impl<'a> Lineage<'a> {
    fn note(&mut self, name: &[u8], value: &'a [u8]) {
        match name {
            b"hft.src.topic" => self.topic = Some(value),
            b"hft.src.partition" => self.partition = Some(value),
            b"hft.src.offset" => self.offset = Some(value),
            _ => {}
        }
    }

    /// `py_encode_row`'s envelope fields `src_topic, src_partition, src_offset` appended to `out`, or `None`
    /// when a value is anything but plain digits (Python's `int()` then decides, or raises).
    fn write(&self, out: &mut Vec<u8>) -> Option<()> {
        match (self.topic, self.partition, self.offset) {
            (Some(topic), Some(p), Some(o)) if !topic.is_empty() => {
                let (p, o) = (digits(p)?, digits(o)?);
                write_long(out, topic.len() as i64);
                out.extend_from_slice(topic);
                write_long(out, p);
                write_long(out, o);
            }
            _ => out.extend_from_slice(&[0, 1, 1]), // "" and -1, -1: no lineage
        }
        Some(())
    }
}

/// One wrapper record (see `py_encode_row`), or `None` when Python must decide.
#[allow(clippy::too_many_arguments)]
fn row(prefix: &[u8], offset: i64, ts: i64, key: Option<&[u8]>, record_type: &[u8], lineage: &Lineage<'_>, value: &[u8], body_offset: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(prefix.len() + value.len() + 64);
    out.extend_from_slice(prefix);
    write_long(&mut out, offset);
    write_long(&mut out, ts);
    let key = key.unwrap_or(&[]);
    write_long(&mut out, key.len() as i64);
    out.extend_from_slice(key);
    out.extend_from_slice(record_type);
    lineage.write(&mut out)?;
    out.extend_from_slice(value.get(body_offset..).unwrap_or(&[]));
    Some(out)
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
    let pairs: Vec<(Bound<'_, PyAny>, Bound<'_, PyAny>)> = headers
        .iter()
        .map(|h| {
            let pair = h.downcast_exact::<PyTuple>().ok()?;
            (pair.len() == 2).then(|| Some((pair.get_item(0).ok()?, pair.get_item(1).ok()?)))?
        })
        .collect::<Option<_>>()?;
    let mut lineage = Lineage::default();
    for (name, value) in &pairs {
        let name = name.downcast_exact::<PyString>().ok()?.to_str().ok()?;
        if name.starts_with("hft.src.") {
            lineage.note(name.as_bytes(), bytes_of(value)?);
        }
    }
    let key = if key.is_none() { None } else { Some(bytes_of(&key)?) };
    let out = row(prefix.as_bytes(), offset, ts, key, record_type.as_bytes(), &lineage, value, body_offset)?;
    Some(PyBytes::new(py, &out).into_any().unbind())
}

/// The frame's lineage headers, or `None` when its headers are not well formed (names must be UTF-8, as Python decodes them).
fn frame_lineage<'a>(b: &'a [u8], f: &Frame) -> Option<Lineage<'a>> {
    let mut lineage = Lineage::default();
    let mut p = f.headers_at;
    for _ in 0..f.hcount {
        let ((ns, ne), (vs, ve), next) = header_at(b, p, f.end)?;
        std::str::from_utf8(&b[ns..ne]).ok()?;
        lineage.note(&b[ns..ne], &b[vs..ve]);
        p = next;
    }
    (p == f.end).then_some(lineage)
}

/// A plan the scan may use: the framing header it keys on (`TapeSink._plan`'s key), its id, record type and body offset.
type ScanPlan = (Vec<u8>, PyObject, Vec<u8>, usize);

fn plan_for<'p>(plans: &'p [ScanPlan], value: &[u8]) -> Option<&'p ScanPlan> {
    let n = if value.first() == Some(&0xC3) { 10 } else { 5 };
    let key = &value[..value.len().min(n)];
    plans.iter().find(|p| p.0 == key)
}

/// `parse_records` for the tape sink: the valid records of `buf[pos:end]` appended to `out`, each as
/// `(topic, partition, offset, row, plan_id)` when a plan in `plans` takes it and its lineage is plain, else as the
/// `Record` `parse_records` makes (Python decides: a new framing, a tombstone, odd lineage). Stops where
/// `parse_records` stops; returns `(pos, n)` the same way.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn tape_scan(
    py: Python<'_>,
    buf: &Bound<'_, PyBytes>,
    pos: i64,
    end: i64,
    topic: &Bound<'_, PyAny>,
    partition: &Bound<'_, PyAny>,
    min_offset: i64,
    limit: i64,
    out: &Bound<'_, PyList>,
    record_type: &Bound<'_, PyType>,
    prefix: &Bound<'_, PyBytes>,
    plans: Vec<ScanPlan>,
) -> PyResult<(i64, i64)> {
    let b = buf.as_bytes();
    let Some((mut pos, end)) = bounds(b, pos, end, limit) else {
        return Ok((pos, 0));
    };
    let prefix = prefix.as_bytes();
    let mut n: i64 = 0;
    let mut maker = RecordMaker::new(py, record_type);
    while n < limit {
        let Some(f) = frame_at(b, pos, end) else { break };
        let Some(lineage) = frame_lineage(b, &f) else { break };
        if f.offset >= min_offset {
            let key = f.key.map(|(s, e)| &b[s..e]);
            let encoded = f.value.and_then(|(s, e)| {
                let plan = plan_for(&plans, &b[s..e])?;
                Some((plan, row(prefix, f.offset, f.ts, key, &plan.2, &lineage, &b[s..e], plan.3)?))
            });
            let item = match encoded {
                Some((plan, bytes)) => {
                    let items = [topic.clone(), partition.clone(), f.offset.into_pyobject(py)?.into_any(), PyBytes::new(py, &bytes).into_any(), plan.1.bind(py).clone()];
                    PyTuple::new(py, items)?.into_any().unbind()
                }
                None => {
                    let Some(hdrs) = maker.headers(py, b, &f) else { break };
                    maker.record(py, b, &f, topic, partition, hdrs)?
                }
            };
            out.append(item)?;
            n += 1;
        }
        pos = f.end;
    }
    Ok((pos as i64, n))
}

/// How one wrapper field goes from its Avro encoding to a column of ClickHouse's Native format
/// (built by `avro_block.native_fields`): `(name, read, null_index, symbols, write, nullable, type_name)`.
/// `read`: 0 string, 1 long, 2 boolean, 3 enum, 4 int, 5 bytes; `null_index`: the union's null branch, or -1 when
/// the field is no union; `write`: 0 String, 1 Int32, 2 Int64 (also DateTime64 ticks), 3 Bool, 4 LowCardinality(String).
type NativeField = (Vec<u8>, u8, i64, Vec<Vec<u8>>, u8, bool, Vec<u8>);

/// Zig-zag varint at `b[*p..]` (Avro int/long), or `None` when it is malformed or runs past the end.
fn read_long(b: &[u8], p: &mut usize) -> Option<i64> {
    let mut z: u64 = 0;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*p)?;
        *p += 1;
        z |= ((byte & 0x7F) as u64) << shift;
        if byte & 0x80 == 0 {
            if shift == 63 && byte > 1 {
                return None;
            }
            return Some((z >> 1) as i64 ^ -((z & 1) as i64));
        }
    }
    None
}

fn read_bytes<'a>(b: &'a [u8], p: &mut usize) -> Option<&'a [u8]> {
    let n = usize::try_from(read_long(b, p)?).ok()?;
    let s = b.get(*p..p.checked_add(n)?)?;
    *p += n;
    Some(s)
}

fn write_uvarint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    write_uvarint(out, s.len() as u64);
    out.extend_from_slice(s);
}

enum Value<'a> {
    Null,
    Bytes(&'a [u8]),
    Int(i64),
    Bool(u8),
}

/// One row's value of `f` at `b[*p..]`, or `None` for anything ClickHouse's Avro input might judge differently
/// (then the Avro container is inserted): malformed or out-of-range numbers, bad UTF-8 in a string, a bad branch.
/// Avro `bytes` go as they are (a `String` column holds any bytes).
fn read_value<'a>(b: &'a [u8], p: &mut usize, f: &'a NativeField) -> Option<Value<'a>> {
    let (_, read, null_index, symbols, _, _, _) = f;
    if *null_index >= 0 {
        match read_long(b, p)? {
            branch if branch == *null_index => return Some(Value::Null),
            0 | 1 => {}
            _ => return None,
        }
    }
    Some(match read {
        0 => Value::Bytes(std::str::from_utf8(read_bytes(b, p)?).ok()?.as_bytes()),
        5 => Value::Bytes(read_bytes(b, p)?),
        1 => Value::Int(read_long(b, p)?),
        4 => Value::Int(i32::try_from(read_long(b, p)?).ok()?.into()), // an Avro int: 32 bits, whatever the column
        2 => {
            let v = *b.get(*p)?;
            *p += 1;
            (v <= 1).then_some(Value::Bool(v))?
        }
        3 => Value::Bytes(symbols.get(usize::try_from(read_long(b, p)?).ok()?)?),
        _ => return None,
    })
}

/// A Native column being filled: plain (values, and a null map when Nullable) or LowCardinality (dictionary + keys).
enum Column<'a> {
    Plain { data: Vec<u8>, nulls: Vec<u8> },
    LowCard { index: Vec<&'a [u8]>, keys: Vec<u32>, seen: HashMap<&'a [u8], u32, BuildHasherDefault<Fnv>>, last: (&'a [u8], u32) },
}

/// FNV-1a: the dictionaries hash short strings, where SipHash's setup dominates.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf29ce484222325 } else { self.0 };
        for &b in bytes {
            h = (h ^ b as u64).wrapping_mul(0x100000001b3);
        }
        self.0 = h;
    }
}

impl<'a> Column<'a> {
    fn new(f: &NativeField) -> Self {
        if f.4 == 4 {
            // a Nullable dictionary holds the null at key 0 (written as the default, "")
            let index: Vec<&'a [u8]> = if f.5 { vec![&[]] } else { Vec::new() };
            Column::LowCard { index, keys: Vec::new(), seen: HashMap::default(), last: (&[], u32::MAX) }
        } else {
            Column::Plain { data: Vec::new(), nulls: Vec::new() }
        }
    }

    fn push(&mut self, f: &NativeField, v: Value<'a>) -> Option<()> {
        let (write, nullable) = (f.4, f.5);
        match self {
            Column::LowCard { index, keys, seen, last } => {
                let key = match v {
                    Value::Null => 0,
                    Value::Bytes(s) if last.1 != u32::MAX && last.0 == s => last.1, // the same as the row before
                    Value::Bytes(s) => {
                        let key = *seen.entry(s).or_insert_with(|| {
                            index.push(s);
                            (index.len() - 1) as u32
                        });
                        *last = (s, key);
                        key
                    }
                    _ => return None,
                };
                keys.push(key);
            }
            Column::Plain { data, nulls } => {
                if nullable {
                    nulls.push(matches!(v, Value::Null) as u8);
                }
                match (write, v) {
                    (0, Value::Null) => data.push(0),
                    (1, Value::Null) => data.extend_from_slice(&[0; 4]),
                    (2, Value::Null) => data.extend_from_slice(&[0; 8]),
                    (3, Value::Null) => data.push(0),
                    (0, Value::Bytes(s)) => write_string(data, s),
                    (1, Value::Int(n)) => data.extend_from_slice(&i32::try_from(n).ok()?.to_le_bytes()),
                    (2, Value::Int(n)) => data.extend_from_slice(&n.to_le_bytes()),
                    (3, Value::Bool(x)) => data.push(x),
                    _ => return None,
                }
            }
        }
        Some(())
    }

    /// The column's bytes as clickhouse-connect writes them (LowCardinality: version 1, flags, dictionary, keys).
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Column::Plain { data, nulls } => {
                out.extend_from_slice(nulls);
                out.extend_from_slice(data);
            }
            Column::LowCard { index, keys, .. } => {
                let width: usize = match index.len() {
                    0..=0xFF => 0,
                    0x100..=0xFFFF => 1,
                    _ => 2,
                };
                out.extend_from_slice(&1u64.to_le_bytes());
                out.extend_from_slice(&((1u64 << 9) | (1 << 10) | width as u64).to_le_bytes());
                out.extend_from_slice(&(index.len() as u64).to_le_bytes());
                for s in index {
                    write_string(out, s);
                }
                out.extend_from_slice(&(keys.len() as u64).to_le_bytes());
                for &k in keys {
                    out.extend_from_slice(&k.to_le_bytes()[..1 << width]);
                }
            }
        }
    }
}

fn native_block_of(rows: &[&[u8]], fields: &[NativeField]) -> Option<Vec<u8>> {
    let mut columns: Vec<Column<'_>> = fields.iter().map(Column::new).collect();
    for row in rows {
        let mut p = 0;
        for (f, column) in fields.iter().zip(columns.iter_mut()) {
            column.push(f, read_value(row, &mut p, f)?)?;
        }
        if p != row.len() {
            return None;
        }
    }
    let mut out = Vec::with_capacity(rows.iter().map(|r| r.len()).sum::<usize>() + 64 * fields.len());
    write_uvarint(&mut out, fields.len() as u64);
    write_uvarint(&mut out, rows.len() as u64);
    for (f, column) in fields.iter().zip(&columns) {
        write_string(&mut out, &f.0);
        write_string(&mut out, &f.6);
        column.write(&mut out);
    }
    Some(out)
}

/// The wrapper rows `rows` (what `encode_row` makes) as one block of ClickHouse's Native format, or `None` when
/// any row holds anything the transcoding does not take exactly (the caller inserts the Avro container instead).
#[pyfunction]
pub fn native_block(py: Python<'_>, rows: &Bound<'_, PyList>, fields: Vec<NativeField>) -> Option<PyObject> {
    let held: Vec<Bound<'_, PyBytes>> = rows.iter().map(|r| r.downcast_into_exact::<PyBytes>().ok()).collect::<Option<_>>()?;
    let slices: Vec<&[u8]> = held.iter().map(|r| r.as_bytes()).collect();
    let block = py.allow_threads(|| native_block_of(&slices, &fields))?;
    Some(PyBytes::new(py, &block).into_any().unbind())
}
