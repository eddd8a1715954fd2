//! Segment framing (streams/log/embedded/segment.py): parse records with their CRC, encode runs.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple, PyType};

const FORMAT: u8 = 0xE1;
const HEADER_SIZE: usize = 35;
const CRC_START: usize = 8;
const MIN_SIZE: u32 = (HEADER_SIZE - 4) as u32;
const MAX_SIZE: u64 = MIN_SIZE as u64 + (1u64 << 30);

#[inline]
fn u16_at(b: &[u8], p: usize) -> usize {
    u16::from_le_bytes([b[p], b[p + 1]]) as usize
}
#[inline]
fn u32_at(b: &[u8], p: usize) -> u32 {
    u32::from_le_bytes(b[p..p + 4].try_into().unwrap())
}
#[inline]
fn i32_at(b: &[u8], p: usize) -> i32 {
    i32::from_le_bytes(b[p..p + 4].try_into().unwrap())
}
#[inline]
fn i64_at(b: &[u8], p: usize) -> i64 {
    i64::from_le_bytes(b[p..p + 8].try_into().unwrap())
}

/// A new object of tuple subclass `tp` (a NamedTuple such as `Record`) holding `items` (references stolen).
pub(crate) unsafe fn new_named_tuple(py: Python<'_>, tp: *mut ffi::PyTypeObject, items: &[*mut ffi::PyObject]) -> PyResult<PyObject> {
    let obj = ffi::PyType_GenericAlloc(tp, items.len() as ffi::Py_ssize_t);
    if obj.is_null() {
        for &it in items {
            ffi::Py_DECREF(it);
        }
        return Err(PyErr::fetch(py));
    }
    for (i, &it) in items.iter().enumerate() {
        ffi::PyTuple_SetItem(obj, i as ffi::Py_ssize_t, it);
    }
    Ok(PyObject::from_owned_ptr(py, obj))
}

struct Names {
    cache: Vec<(Vec<u8>, Py<PyString>)>,
}

impl Names {
    fn get(&mut self, py: Python<'_>, raw: &[u8]) -> Option<Py<PyString>> {
        for (k, v) in &self.cache {
            if k.as_slice() == raw {
                return Some(v.clone_ref(py));
            }
        }
        let s = std::str::from_utf8(raw).ok()?;
        let name = PyString::new(py, s).unbind();
        if self.cache.len() < 64 {
            self.cache.push((raw.to_vec(), name.clone_ref(py)));
        }
        Some(name)
    }
}

/// A header pair `(name, value)` built once and reused while the same bytes repeat (the lineage topic and
/// partition headers repeat in every record of a batch); sharing an immutable tuple is invisible to Python.
struct Seen {
    start: usize,
    end: usize,
    pair: PyObject,
}

/// One header at `b[p..rend]`: `(name range, value range, where the next one starts)`, or `None` when it runs past the record.
#[inline]
pub(crate) fn header_at(b: &[u8], p: usize, rend: usize) -> Option<((usize, usize), (usize, usize), usize)> {
    if p + 2 > rend {
        return None;
    }
    let nlen = u16_at(b, p);
    let name_at = p + 2;
    if name_at + nlen + 4 > rend {
        return None;
    }
    let vlen = u32_at(b, name_at + nlen) as usize;
    let value_at = name_at + nlen + 4;
    if value_at + vlen > rend {
        return None;
    }
    Some(((name_at, name_at + nlen), (value_at, value_at + vlen), value_at + vlen))
}

/// The fields of one record whose size, CRC, format and key/value lengths check out; its headers start at `headers_at`.
pub(crate) struct Frame {
    pub end: usize,
    pub offset: i64,
    pub ts: i64,
    pub key: Option<(usize, usize)>,
    pub value: Option<(usize, usize)>,
    pub headers_at: usize,
    pub hcount: usize,
}

/// The record at `b[pos..end]`, or `None` when it is incomplete or damaged in any way (the Python path says which).
pub(crate) fn frame_at(b: &[u8], pos: usize, end: usize) -> Option<Frame> {
    if end - pos < HEADER_SIZE {
        return None;
    }
    let size = u32_at(b, pos);
    if size < MIN_SIZE || size as u64 > MAX_SIZE {
        return None;
    }
    let rend = pos + 4 + size as usize;
    if rend > end {
        return None;
    }
    let crc = u32_at(b, pos + 4);
    if crc32fast::hash(&b[pos + CRC_START..rend]) != crc || b[pos + 8] != FORMAT {
        return None;
    }
    let klen = i32_at(b, pos + 25);
    let vlen = i32_at(b, pos + 29);
    if klen < -1 || vlen < -1 {
        return None;
    }
    let mut p = pos + HEADER_SIZE;
    let mut take = |len: i32| {
        (len >= 0).then(|| {
            let r = (p, p + len as usize);
            p = r.1;
            r
        })
    };
    let key = take(klen);
    let value = take(vlen);
    if p > rend {
        return None;
    }
    Some(Frame { end: rend, offset: i64_at(b, pos + 9), ts: i64_at(b, pos + 17), key, value, headers_at: p, hcount: u16_at(b, pos + 33) })
}

/// Builds `Record`s from frames the way `py_parse_records` does, sharing repeated names and header pairs.
pub(crate) struct RecordMaker {
    names: Names,
    seen: Vec<Seen>,
    empty: PyObject,
    tp: *mut ffi::PyTypeObject,
}

impl RecordMaker {
    pub(crate) fn new(py: Python<'_>, record_type: &Bound<'_, PyType>) -> Self {
        RecordMaker { names: Names { cache: Vec::new() }, seen: Vec::new(), empty: PyTuple::empty(py).into_any().unbind(), tp: record_type.as_type_ptr() }
    }

    /// The frame's headers as a tuple of `(str, bytes)` pairs, or `None` when they are not well formed (Python reports why).
    pub(crate) fn headers(&mut self, py: Python<'_>, b: &[u8], f: &Frame) -> Option<PyObject> {
        if f.hcount == 0 {
            return (f.headers_at == f.end).then(|| self.empty.clone_ref(py));
        }
        let tuple = unsafe { ffi::PyTuple_New(f.hcount as ffi::Py_ssize_t) };
        if tuple.is_null() {
            PyErr::fetch(py);
            return None;
        }
        let tuple = unsafe { PyObject::from_owned_ptr(py, tuple) };
        let mut p = f.headers_at;
        for i in 0..f.hcount {
            let start = p;
            let ((ns, ne), (vs, _), next) = header_at(b, p, f.end)?;
            p = next;
            let pair = match self.seen.get(i) {
                Some(s) if b[s.start..s.end] == b[start..p] => s.pair.clone_ref(py),
                _ => {
                    let name = self.names.get(py, &b[ns..ne])?;
                    let value = PyBytes::new(py, &b[vs..p]);
                    let pair = PyTuple::new(py, [name.into_bound(py).into_any(), value.into_any()]).ok()?.into_any().unbind();
                    let entry = Seen { start, end: p, pair: pair.clone_ref(py) };
                    if i < self.seen.len() {
                        self.seen[i] = entry;
                    } else if i == self.seen.len() && i < 16 {
                        self.seen.push(entry);
                    }
                    pair
                }
            };
            unsafe { ffi::PyTuple_SetItem(tuple.as_ptr(), i as ffi::Py_ssize_t, pair.into_ptr()) };
        }
        (p == f.end).then_some(tuple)
    }

    /// `Record(topic, partition, offset, ts, key, value, headers)` for the frame.
    pub(crate) fn record(&self, py: Python<'_>, b: &[u8], f: &Frame, topic: &Bound<'_, PyAny>, partition: &Bound<'_, PyAny>, headers: PyObject) -> PyResult<PyObject> {
        let bytes_or_none = |r: Option<(usize, usize)>| -> PyObject {
            match r {
                Some((s, e)) => PyBytes::new(py, &b[s..e]).into_any().unbind(),
                None => py.None(),
            }
        };
        let items = [
            topic.clone().into_ptr(),
            partition.clone().into_ptr(),
            f.offset.into_pyobject(py)?.into_ptr(),
            f.ts.into_pyobject(py)?.into_ptr(),
            bytes_or_none(f.key).into_ptr(),
            bytes_or_none(f.value).into_ptr(),
            headers.into_ptr(),
        ];
        unsafe { new_named_tuple(py, self.tp, &items) }
    }
}

/// The parse arguments both scans take, checked: `(pos, end)` as indices into `b`, or `None` (nothing to parse).
pub(crate) fn bounds(b: &[u8], pos: i64, end: i64, limit: i64) -> Option<(usize, usize)> {
    (pos >= 0 && end >= pos && end as usize <= b.len() && limit > 0).then_some((pos as usize, end as usize))
}

/// Parse the valid records of `buf[pos:end]` into `out` as `record_type` (streams.log.base.Record).
///
/// Returns `(pos, n)`: where parsing stopped and how many records were appended. It stops after
/// `limit` records, at the end, or at the first record that is incomplete or damaged in any way;
/// the Python `parse_records` goes on from there and names the status and the reason.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn parse_records(
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
) -> PyResult<(i64, i64)> {
    let b = buf.as_bytes();
    let Some((mut pos, end)) = bounds(b, pos, end, limit) else {
        return Ok((pos, 0));
    };
    let mut n: i64 = 0;
    let mut maker = RecordMaker::new(py, record_type);
    while n < limit {
        let Some(f) = frame_at(b, pos, end) else { break };
        let Some(hdrs) = maker.headers(py, b, &f) else { break };
        if f.offset >= min_offset {
            out.append(maker.record(py, b, &f, topic, partition, hdrs)?)?;
            n += 1;
        }
        pos = f.end;
    }
    Ok((pos as i64, n))
}

fn exact_bytes<'a>(o: &'a Bound<'_, PyAny>) -> Option<&'a [u8]> {
    if o.is_exact_instance_of::<PyBytes>() {
        Some(o.downcast::<PyBytes>().ok()?.as_bytes())
    } else {
        None
    }
}

fn exact_i64(o: &Bound<'_, PyAny>) -> Option<i64> {
    if unsafe { ffi::PyLong_CheckExact(o.as_ptr()) } != 0 {
        o.extract::<i64>().ok()
    } else {
        None
    }
}

/// The record body for one batch item, or `None` when the item is anything the Python path should judge.
fn body_of(item: &Bound<'_, PyAny>, offset: i64, body: &mut Vec<u8>) -> Option<i64> {
    let t = item.downcast_exact::<PyTuple>().ok()?;
    if t.len() != 4 {
        return None;
    }
    let key = t.get_item(0).ok()?;
    let value = t.get_item(1).ok()?;
    let ts = exact_i64(&t.get_item(2).ok()?)?;
    let hobj = t.get_item(3).ok()?;
    let kb = if key.is_none() { None } else { Some(exact_bytes(&key)?) };
    let vb = if value.is_none() { None } else { Some(exact_bytes(&value)?) };
    let klen: i64 = kb.map_or(-1, |k| k.len() as i64);
    let vlen: i64 = vb.map_or(-1, |v| v.len() as i64);
    if klen > i32::MAX as i64 || vlen > i32::MAX as i64 {
        return None;
    }
    body.clear();
    body.push(FORMAT);
    body.extend_from_slice(&offset.to_le_bytes());
    body.extend_from_slice(&ts.to_le_bytes());
    body.extend_from_slice(&(klen as i32).to_le_bytes());
    body.extend_from_slice(&(vlen as i32).to_le_bytes());
    let hcount_at = body.len();
    body.extend_from_slice(&[0, 0]);
    if let Some(k) = kb {
        body.extend_from_slice(k);
    }
    if let Some(v) = vb {
        body.extend_from_slice(v);
    }
    if !hobj.is_none() {
        // `if headers:` in Python: a tuple or list of (str, bytes) pairs; anything else goes to Python
        let hs: Vec<Bound<'_, PyAny>> = if let Ok(h) = hobj.downcast_exact::<PyTuple>() {
            h.iter().collect()
        } else if let Ok(h) = hobj.downcast_exact::<PyList>() {
            h.iter().collect()
        } else {
            return None;
        };
        if hs.len() > u16::MAX as usize {
            return None;
        }
        for h in &hs {
            let pair = h.downcast_exact::<PyTuple>().ok()?;
            if pair.len() != 2 {
                return None;
            }
            let name = pair.get_item(0).ok()?;
            let name = name.downcast_exact::<PyString>().ok()?.to_str().ok()?.as_bytes().to_vec();
            let val = pair.get_item(1).ok()?;
            let val = exact_bytes(&val)?;
            if name.len() > u16::MAX as usize || val.len() > u32::MAX as usize {
                return None;
            }
            body.extend_from_slice(&(name.len() as u16).to_le_bytes());
            body.extend_from_slice(&name);
            body.extend_from_slice(&(val.len() as u32).to_le_bytes());
            body.extend_from_slice(val);
        }
        body[hcount_at..hcount_at + 2].copy_from_slice(&(hs.len() as u16).to_le_bytes());
    }
    Some(ts)
}

type Run = (PyObject, i64, i64, i64, Vec<(i64, i64, i64)>, i64, i64);

/// `segment.encode_run` (same arguments, the fields of `EncodedRun`), or `None`: then the Python path runs.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn encode_run(
    py: Python<'_>,
    batch: &Bound<'_, PyAny>,
    start: i64,
    offset: i64,
    pos: i64,
    segment_bytes: i64,
    index_interval: i64,
    last_index_pos: i64,
    max_ts: i64,
) -> PyResult<Option<Run>> {
    let items: Vec<Bound<'_, PyAny>> = if let Ok(l) = batch.downcast_exact::<PyList>() {
        l.iter().collect()
    } else if let Ok(t) = batch.downcast_exact::<PyTuple>() {
        t.iter().collect()
    } else {
        return Ok(None);
    };
    if start < 0 {
        return Ok(None);
    }
    let (mut offset, mut pos, mut last_index_pos, mut max_ts) = (offset, pos, last_index_pos, max_ts);
    let mut data: Vec<u8> = Vec::new();
    let mut points = Vec::new();
    let mut body = Vec::with_capacity(256);
    let mut i = start as usize;
    while i < items.len() {
        let Some(ts) = body_of(&items[i], offset, &mut body) else {
            return Ok(None);
        };
        let size = body.len() as i64 + 4;
        if size as u64 > u32::MAX as u64 {
            return Ok(None);
        }
        if pos != 0 && pos + size + 4 > segment_bytes {
            break;
        }
        if pos - last_index_pos >= index_interval {
            points.push((max_ts, offset, pos));
            last_index_pos = pos;
        }
        data.extend_from_slice(&(size as u32).to_le_bytes());
        data.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        data.extend_from_slice(&body);
        pos += size + 4;
        if ts > max_ts {
            max_ts = ts;
        }
        let Some(next) = offset.checked_add(1) else {
            return Ok(None);
        };
        offset = next;
        i += 1;
    }
    let data = PyBytes::new(py, &data).into_any().unbind();
    Ok(Some((data, i as i64, offset, pos, points, last_index_pos, max_ts)))
}
