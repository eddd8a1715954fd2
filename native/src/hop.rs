//! The decode half of a processor hop (streams/runtime/task.py `apply_records`): a batch of `Record`s to
//! `Message`s in one call. An item the native codec declines is `None`: the runtime decodes it in Python
//! (which raises the `PoisonError` the dead letter carries).

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple, PyType};

use crate::avro::{Codec, Reader};
use crate::segment::new_named_tuple;

const SO_HEADER: usize = 10;

fn message(py: Python<'_>, rec: &Bound<'_, PyAny>, decoders: &Bound<'_, PyDict>, tp: *mut pyo3::ffi::PyTypeObject) -> Option<PyObject> {
    let t = rec.downcast::<PyTuple>().ok()?;
    if t.len() != 7 {
        return None;
    }
    let value = t.get_item(5).ok()?;
    let b = value.downcast_exact::<PyBytes>().ok()?.as_bytes();
    if b.len() < SO_HEADER {
        return None;
    }
    let entry = decoders.get_item(PyBytes::new(py, &b[..SO_HEADER])).ok()??;
    let entry = entry.downcast::<PyTuple>().ok()?;
    let name = entry.get_item(0).ok()?;
    let codec = entry.get_item(1).ok()?;
    let codec = codec.downcast::<Codec>().ok()?.get();
    let mut r = Reader { b, p: SO_HEADER };
    let decoded = codec.read(py, &codec.root, &mut r)?;
    if r.p != b.len() {
        return None;
    }
    let items = [
        t.get_item(0).ok()?.into_ptr(),
        t.get_item(1).ok()?.into_ptr(),
        t.get_item(2).ok()?.into_ptr(),
        t.get_item(3).ok()?.into_ptr(),
        t.get_item(4).ok()?.into_ptr(),
        name.into_ptr(),
        decoded.into_ptr(),
    ];
    unsafe { new_named_tuple(py, tp, &items).ok() }
}

/// For each record, its `message_type` (streams.processors.base.Message) or `None` (the Python path decides).
/// `decoders` is `Serde`'s map from single-object header to `(schema name, Codec)`.
#[pyfunction]
pub fn decode_messages(py: Python<'_>, records: &Bound<'_, PyList>, decoders: &Bound<'_, PyDict>, message_type: &Bound<'_, PyType>) -> PyResult<Py<PyList>> {
    let tp = message_type.as_type_ptr();
    let out = PyList::empty(py);
    for rec in records.iter() {
        out.append(message(py, &rec, decoders, tp).unwrap_or_else(|| py.None()))?;
    }
    Ok(out.unbind())
}

// -- the encode half -------------------------------------------------------------------------

const LINEAGE_KEYS: [&str; 3] = ["hft.src.topic", "hft.src.partition", "hft.src.offset"];

/// A source partition's two leading lineage headers, shared by every output of the batch that came from it.
struct Prefix {
    topic: PyObject,
    text: String,
    partition: i64,
    pair_topic: PyObject,
    pair_partition: PyObject,
}

/// Stops the cyclic GC from tracking `o`, a tuple holding only str, bytes, ints and such tuples: it can be in no
/// cycle (CPython's own collector untracks these tuples when it meets them). Fewer objects for each GC pass to walk.
#[inline]
fn untrack(o: &Bound<'_, PyAny>) {
    unsafe { pyo3::ffi::PyObject_GC_UnTrack(o.as_ptr() as *mut std::ffi::c_void) }
}

#[inline]
fn exact_int(v: &Bound<'_, PyAny>) -> Option<i64> {
    if unsafe { pyo3::ffi::PyLong_CheckExact(v.as_ptr()) } == 0 {
        return None;
    }
    v.extract().ok()
}

/// `streams.lineage.lineage_headers(rec)`: `rec`'s headers without older lineage, plus lineage pointing at `rec`.
fn lineage(py: Python<'_>, rec: &Bound<'_, PyTuple>, cache: &mut Vec<Prefix>, offset_key: &Bound<'_, PyString>) -> Option<(PyObject, bool)> {
    let topic = rec.get_item(0).ok()?;
    let topic = topic.downcast_exact::<PyString>().ok()?;
    let partition = exact_int(&rec.get_item(1).ok()?)?;
    let offset = exact_int(&rec.get_item(2).ok()?)?;
    let found = match cache.iter().position(|c| c.topic.as_ptr() == topic.as_ptr() && c.partition == partition) {
        Some(i) => i,
        None => {
            let text = topic.to_str().ok()?;
            match cache.iter().position(|c| c.text == text && c.partition == partition) {
                Some(i) => i,
                None => {
                    let pair = |k: &str, v: &[u8]| -> Option<PyObject> {
                        let items = [PyString::intern(py, k).into_any(), PyBytes::new(py, v).into_any()];
                        let t = PyTuple::new(py, items).ok()?.into_any();
                        untrack(&t);
                        Some(t.unbind())
                    };
                    cache.push(Prefix {
                        topic: topic.clone().into_any().unbind(),
                        text: text.to_owned(),
                        partition,
                        pair_topic: pair(LINEAGE_KEYS[0], text.as_bytes())?,
                        pair_partition: pair(LINEAGE_KEYS[1], partition.to_string().as_bytes())?,
                    });
                    cache.len() - 1
                }
            }
        }
    };
    let mut items: Vec<Bound<'_, PyAny>> = Vec::new();
    let mut atomic = true; // every header a (str, bytes) pair: the tuple can be untracked
    let headers = rec.get_item(6).ok()?;
    if !headers.is_none() {
        let hs: Vec<Bound<'_, PyAny>> = if let Ok(t) = headers.downcast_exact::<PyTuple>() {
            t.iter().collect()
        } else if let Ok(l) = headers.downcast_exact::<PyList>() {
            l.iter().collect()
        } else {
            return None; // another container: the Python path decides
        };
        for h in hs {
            let pair = h.downcast_exact::<PyTuple>().ok()?;
            if pair.len() != 2 {
                return None;
            }
            let k = pair.get_item(0).ok()?;
            let k = k.downcast_exact::<PyString>().ok()?.to_str().ok()?;
            if !LINEAGE_KEYS.contains(&k) {
                atomic &= pair.get_item(1).ok()?.is_exact_instance_of::<PyBytes>();
                items.push(h);
            }
        }
    }
    let p = &cache[found];
    items.push(p.pair_topic.bind(py).clone());
    items.push(p.pair_partition.bind(py).clone());
    let own = [offset_key.clone().into_any(), PyBytes::new(py, offset.to_string().as_bytes()).into_any()];
    let own = PyTuple::new(py, own).ok()?.into_any();
    untrack(&own);
    items.push(own);
    let all = PyTuple::new(py, items).ok()?.into_any();
    if atomic {
        untrack(&all);
    }
    Some((all.unbind(), atomic))
}

struct Encoder<'py> {
    schema: Bound<'py, PyAny>,
    prefix: Bound<'py, PyBytes>,
    codec: Bound<'py, Codec>,
}

/// One record's outputs as Encoded tuples appended to `encoded`, or `None` (nothing appended: the Python path
/// decides this record). `Some(n)`: its number of outputs.
fn encode_record<'py>(
    py: Python<'py>, rec: &Bound<'py, PyAny>, res: &Bound<'py, PyAny>, encoders: &Bound<'py, PyDict>,
    record_type: &Bound<'py, PyType>, output_type: &Bound<'py, PyType>, cx: &mut Context<'py>,
) -> Option<usize> {
    if !rec.get_type().is(record_type) {
        return None;
    }
    let outs: Vec<Bound<'py, PyAny>> = if let Ok(l) = res.downcast_exact::<PyList>() {
        l.iter().collect()
    } else if let Ok(t) = res.downcast_exact::<PyTuple>() {
        t.iter().collect()
    } else {
        return None; // a PoisonError (a dead letter, a tombstone) or another result: the Python path
    };
    if outs.is_empty() {
        return Some(0);
    }
    let rec = rec.downcast::<PyTuple>().ok()?;
    if rec.len() != 7 {
        return None;
    }
    let (headers, atomic) = lineage(py, rec, &mut cx.prefixes, &cx.offset_key)?;
    let mark = cx.encoded.len();
    for out in &outs {
        if encode_output(py, rec, out, &headers, atomic, encoders, output_type, cx).is_none() {
            cx.encoded.truncate(mark);
            return None;
        }
    }
    Some(outs.len())
}

#[allow(clippy::too_many_arguments)]
fn encode_output<'py>(
    py: Python<'py>, rec: &Bound<'py, PyTuple>, out: &Bound<'py, PyAny>, headers: &PyObject, atomic: bool,
    encoders: &Bound<'py, PyDict>, output_type: &Bound<'py, PyType>, cx: &mut Context<'py>,
) -> Option<()> {
    if !out.get_type().is(output_type) {
        return None;
    }
    let out = out.downcast::<PyTuple>().ok()?;
    if out.len() != 5 {
        return None;
    }
    let key = out.get_item(1).ok()?;
    let key = if let Ok(s) = key.downcast_exact::<PyString>() {
        PyBytes::new(py, s.to_str().ok()?.as_bytes()).into_any()
    } else if key.is_none() || key.is_exact_instance_of::<PyBytes>() {
        key
    } else {
        return None;
    };
    let schema = out.get_item(2).ok()?;
    if !schema.is_exact_instance_of::<PyString>() {
        return None;
    }
    let idx = match cx.codecs.iter().position(|e| e.schema.as_ptr() == schema.as_ptr()) {
        Some(i) => i,
        None => {
            let entry = encoders.get_item(&schema).ok()??; // an unknown name, or one fastavro encodes
            let entry = entry.downcast::<PyTuple>().ok()?;
            let prefix = entry.get_item(0).ok()?.downcast_into_exact::<PyBytes>().ok()?;
            let codec = entry.get_item(1).ok()?.downcast_into::<Codec>().ok()?;
            cx.codecs.push(Encoder { schema: schema.clone(), prefix, codec });
            cx.codecs.len() - 1
        }
    };
    let enc = &cx.codecs[idx];
    let codec = enc.codec.get();
    cx.buf.clear();
    cx.buf.extend_from_slice(enc.prefix.as_bytes());
    codec.write(py, &codec.root, &out.get_item(3).ok()?, &mut cx.buf)?;
    let ts = out.get_item(4).ok()?;
    let ts = if ts.is_none() { rec.get_item(3).ok()? } else { ts };
    let topic = out.get_item(0).ok()?;
    let atomic = atomic && topic.is_exact_instance_of::<PyString>() && unsafe { pyo3::ffi::PyLong_CheckExact(ts.as_ptr()) } != 0;
    let items = [topic, key, PyBytes::new(py, &cx.buf).into_any(), ts, headers.bind(py).clone()];
    let encoded = PyTuple::new(py, items).ok()?.into_any();
    if atomic {
        untrack(&encoded);
    }
    cx.encoded.push(encoded);
    Some(())
}

struct Context<'py> {
    prefixes: Vec<Prefix>,
    offset_key: Bound<'py, PyString>,
    codecs: Vec<Encoder<'py>>,
    encoded: Vec<Bound<'py, PyAny>>,
    buf: Vec<u8>,
}

/// The output loop of `apply_records` (streams/runtime/task.py) from `results[start]` on: for each record and its
/// result (a list or tuple of `output_type`, streams.processors.base.Output), each output as the runtime's Encoded
/// tuple `(topic, key, value, timestamp_ns, lineage headers)` appended to `out`, in input order, until the first
/// record the native core does not take whole (a dead letter or a tombstone, an unknown schema, a value its codec
/// leaves to fastavro, a key or header of another type...): the Python path then handles that record and calls
/// again from the next. Returns `(stop, with_output, without_output, records_out)` for `[start, stop)`.
/// `encoders` maps a schema name to `(single-object prefix, Codec)` (Serde.native_encoders).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn encode_outputs(
    py: Python<'_>, records: &Bound<'_, PyList>, results: &Bound<'_, PyList>, start: usize, encoders: &Bound<'_, PyDict>,
    record_type: &Bound<'_, PyType>, output_type: &Bound<'_, PyType>, out: &Bound<'_, PyList>,
) -> PyResult<(usize, usize, usize, usize)> {
    let n = records.len().min(results.len());
    let mut cx = Context {
        prefixes: Vec::new(),
        offset_key: PyString::intern(py, LINEAGE_KEYS[2]),
        codecs: Vec::new(),
        encoded: Vec::new(),
        buf: Vec::with_capacity(256),
    };
    let (mut with_output, mut without_output, mut stop) = (0usize, 0usize, start);
    while stop < n {
        let rec = records.get_item(stop)?;
        let res = results.get_item(stop)?;
        match encode_record(py, &rec, &res, encoders, record_type, output_type, &mut cx) {
            Some(0) => without_output += 1,
            Some(_) => with_output += 1,
            None => break,
        }
        stop += 1;
    }
    let records_out = cx.encoded.len();
    for e in cx.encoded {
        out.append(e)?;
    }
    Ok((stop, with_output, without_output, records_out))
}
