//! The decode half of a processor hop (streams/runtime/task.py `apply_records`): a batch of `Record`s to
//! `Message`s in one call. An item the native codec declines is `None`: the runtime decodes it in Python
//! (which raises the `PoisonError` the dead letter carries).

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple, PyType};

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
