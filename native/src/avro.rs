//! An Avro binary codec compiled from a fastavro-parsed schema (streams/serde/codec.py's fast path).
//!
//! Decoding yields what `fastavro.schemaless_reader` yields (dicts, lists, str, bytes, int, float,
//! bool, None; enum symbols as str); encoding yields the bytes `fastavro.schemaless_writer` writes.
//! Anything else -- damaged or truncated bytes, a value of an unexpected Python type, a union whose
//! branch fastavro would pick by its own rules -- makes the call return `None` and the caller uses
//! fastavro, which decides (and raises). Schemas with logical types are not compiled at all.

use std::collections::HashMap;

use pyo3::exceptions::PyValueError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyList, PyString, PyTuple};

pub(crate) enum Node {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Record(usize),
    Enum(usize),
    Fixed(usize),
    Array(Box<Node>),
    Map(Box<Node>),
    Union(Vec<Node>, Option<usize>, Option<usize>), // branches, the null branch, the only non-null branch
}

struct Field {
    name: Py<PyString>,
    node: Node,
    default: Option<PyObject>,
    null_when_missing: bool, // fastavro: `"null" in field["type"]` -- a missing value is written as None
}

struct Named {
    records: Vec<Vec<Field>>,
    enums: Vec<Vec<(Py<PyString>, String)>>,
    fixed: Vec<usize>,
    by_name: HashMap<String, (u8, usize)>,
}

fn unsupported(what: String) -> PyErr {
    PyValueError::new_err(what)
}

fn compile(py: Python<'_>, s: &Bound<'_, PyAny>, named: &mut Named) -> PyResult<Node> {
    if let Ok(name) = s.downcast::<PyString>() {
        let name = name.to_str()?;
        return Ok(match name {
            "null" => Node::Null,
            "boolean" => Node::Boolean,
            "int" => Node::Int,
            "long" => Node::Long,
            "float" => Node::Float,
            "double" => Node::Double,
            "bytes" => Node::Bytes,
            "string" => Node::String,
            _ => match named.by_name.get(name) {
                Some((0, i)) => Node::Record(*i),
                Some((1, i)) => Node::Enum(*i),
                Some((_, i)) => Node::Fixed(*i),
                None => return Err(unsupported(format!("unknown type {name}"))),
            },
        });
    }
    if let Ok(branches) = s.downcast::<PyList>() {
        let mut nodes = Vec::new();
        for b in branches.iter() {
            nodes.push(compile(py, &b, named)?);
        }
        let null = nodes.iter().position(|n| matches!(n, Node::Null));
        let others: Vec<usize> = (0..nodes.len()).filter(|&i| Some(i) != null).collect();
        let only = if others.len() == 1 { Some(others[0]) } else { None };
        return Ok(Node::Union(nodes, null, only));
    }
    let d = s.downcast::<PyDict>().map_err(|_| unsupported(format!("not a schema: {s}")))?;
    if d.contains("logicalType")? {
        return Err(unsupported("logical types are left to fastavro".into()));
    }
    let t = d.get_item("type")?.ok_or_else(|| unsupported("schema without a type".into()))?;
    let Ok(kind) = t.downcast::<PyString>() else {
        return compile(py, &t, named);
    };
    let kind = kind.to_str()?.to_owned();
    let full = || -> PyResult<String> {
        d.get_item("name")?.ok_or_else(|| unsupported("named type without a name".into()))?.extract::<String>()
    };
    Ok(match kind.as_str() {
        "record" | "error" => {
            let idx = named.records.len();
            named.records.push(Vec::new());
            named.by_name.insert(full()?, (0, idx));
            let mut fields = Vec::new();
            let fs = d.get_item("fields")?.ok_or_else(|| unsupported("record without fields".into()))?;
            for f in fs.try_iter()? {
                let f = f?;
                let ftype = f.get_item("type")?;
                fields.push(Field {
                    name: f.get_item("name")?.downcast_into::<PyString>()?.unbind(),
                    node: compile(py, &ftype, named)?,
                    default: if f.contains("default")? { Some(f.get_item("default")?.unbind()) } else { None },
                    null_when_missing: ftype.contains("null")?,
                });
            }
            named.records[idx] = fields;
            Node::Record(idx)
        }
        "enum" => {
            let idx = named.enums.len();
            let mut syms = Vec::new();
            for sym in d.get_item("symbols")?.ok_or_else(|| unsupported("enum without symbols".into()))?.try_iter()? {
                let sym = sym?.downcast_into::<PyString>()?;
                let text = sym.to_str()?.to_owned();
                syms.push((sym.unbind(), text));
            }
            named.enums.push(syms);
            named.by_name.insert(full()?, (1, idx));
            Node::Enum(idx)
        }
        "fixed" => {
            let idx = named.fixed.len();
            named.fixed.push(d.get_item("size")?.ok_or_else(|| unsupported("fixed without size".into()))?.extract()?);
            named.by_name.insert(full()?, (2, idx));
            Node::Fixed(idx)
        }
        "array" => Node::Array(Box::new(compile(py, &d.get_item("items")?.ok_or_else(|| unsupported("array without items".into()))?, named)?)),
        "map" => Node::Map(Box::new(compile(py, &d.get_item("values")?.ok_or_else(|| unsupported("map without values".into()))?, named)?)),
        _ => compile(py, &t, named)?,
    })
}

// -- decoding ------------------------------------------------------------------------------

pub(crate) struct Reader<'a> {
    pub(crate) b: &'a [u8],
    pub(crate) p: usize,
}

impl Reader<'_> {
    #[inline]
    fn long(&mut self) -> Option<i64> {
        let mut n: u64 = 0;
        let mut shift = 0u32;
        loop {
            let byte = *self.b.get(self.p)?;
            self.p += 1;
            if shift == 63 && byte > 1 {
                return None; // more than 64 bits: fastavro decides
            }
            n |= ((byte & 0x7f) as u64) << shift;
            if byte & 0x80 == 0 {
                return Some((n >> 1) as i64 ^ -((n & 1) as i64));
            }
            shift += 7;
            if shift > 63 {
                return None;
            }
        }
    }
    #[inline]
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.p.checked_add(n)?;
        let s = self.b.get(self.p..end)?;
        self.p = end;
        Some(s)
    }
    #[inline]
    fn len(&mut self) -> Option<usize> {
        let n = self.long()?;
        if n < 0 {
            None
        } else {
            Some(n as usize)
        }
    }
}

/// A block count of an array or map: a negative count is followed by the block's byte size.
fn block_count(r: &mut Reader<'_>) -> Option<usize> {
    let n = r.long()?;
    if n >= 0 {
        return Some(n as usize);
    }
    r.long()?;
    Some(n.checked_neg()? as usize)
}

impl Codec {
    pub(crate) fn read(&self, py: Python<'_>, node: &Node, r: &mut Reader<'_>) -> Option<PyObject> {
        Some(match node {
            Node::Null => py.None(),
            Node::Boolean => match r.take(1)?[0] {
                0 => PyBool::new(py, false).to_owned().into_any().unbind(),
                1 => PyBool::new(py, true).to_owned().into_any().unbind(),
                _ => return None,
            },
            Node::Int => {
                let v = r.long()?;
                if v < i32::MIN as i64 || v > i32::MAX as i64 {
                    return None;
                }
                v.into_pyobject(py).ok()?.into_any().unbind()
            }
            Node::Long => r.long()?.into_pyobject(py).ok()?.into_any().unbind(),
            Node::Float => {
                let v = f32::from_le_bytes(r.take(4)?.try_into().ok()?);
                PyFloat::new(py, v as f64).into_any().unbind()
            }
            Node::Double => {
                let v = f64::from_le_bytes(r.take(8)?.try_into().ok()?);
                PyFloat::new(py, v).into_any().unbind()
            }
            Node::Bytes => {
                let n = r.len()?;
                PyBytes::new(py, r.take(n)?).into_any().unbind()
            }
            Node::String => {
                let n = r.len()?;
                let s = std::str::from_utf8(r.take(n)?).ok()?;
                PyString::new(py, s).into_any().unbind()
            }
            Node::Fixed(i) => PyBytes::new(py, r.take(self.named.fixed[*i])?).into_any().unbind(),
            Node::Enum(i) => {
                let idx = r.long()?;
                let syms = &self.named.enums[*i];
                if idx < 0 || idx as usize >= syms.len() {
                    return None;
                }
                syms[idx as usize].0.clone_ref(py).into_any()
            }
            Node::Union(branches, _, _) => {
                let idx = r.long()?;
                if idx < 0 || idx as usize >= branches.len() {
                    return None;
                }
                self.read(py, &branches[idx as usize], r)?
            }
            Node::Record(i) => {
                let d = PyDict::new(py);
                for f in &self.named.records[*i] {
                    let v = self.read(py, &f.node, r)?;
                    unsafe {
                        if ffi::PyDict_SetItem(d.as_ptr(), f.name.as_ptr(), v.as_ptr()) != 0 {
                            PyErr::fetch(py);
                            return None;
                        }
                    }
                }
                d.into_any().unbind()
            }
            Node::Array(item) => {
                let l = PyList::empty(py);
                loop {
                    let n = block_count(r)?;
                    if n == 0 {
                        break;
                    }
                    for _ in 0..n {
                        l.append(self.read(py, item, r)?).ok()?;
                    }
                }
                l.into_any().unbind()
            }
            Node::Map(values) => {
                let d = PyDict::new(py);
                loop {
                    let n = block_count(r)?;
                    if n == 0 {
                        break;
                    }
                    for _ in 0..n {
                        let kn = r.len()?;
                        let k = PyString::new(py, std::str::from_utf8(r.take(kn)?).ok()?);
                        let v = self.read(py, values, r)?;
                        d.set_item(k, v).ok()?;
                    }
                }
                d.into_any().unbind()
            }
        })
    }

    // -- encoding --------------------------------------------------------------------------

    pub(crate) fn write(&self, py: Python<'_>, node: &Node, v: &Bound<'_, PyAny>, out: &mut Vec<u8>) -> Option<()> {
        match node {
            Node::Null => {
                if !v.is_none() {
                    return None;
                }
            }
            Node::Boolean => {
                if !v.is_exact_instance_of::<PyBool>() {
                    return None;
                }
                out.push(v.is_truthy().ok()? as u8);
            }
            Node::Int | Node::Long => {
                if unsafe { ffi::PyLong_CheckExact(v.as_ptr()) } == 0 {
                    return None;
                }
                let n: i64 = v.extract().ok()?;
                if matches!(node, Node::Int) && (n < i32::MIN as i64 || n > i32::MAX as i64) {
                    return None;
                }
                write_long(out, n);
            }
            Node::Float | Node::Double => {
                if !v.is_exact_instance_of::<PyFloat>() {
                    return None;
                }
                let f: f64 = v.extract().ok()?;
                if matches!(node, Node::Float) {
                    out.extend_from_slice(&(f as f32).to_le_bytes());
                } else {
                    out.extend_from_slice(&f.to_le_bytes());
                }
            }
            Node::Bytes => {
                let b = v.downcast_exact::<PyBytes>().ok()?.as_bytes();
                write_long(out, b.len() as i64);
                out.extend_from_slice(b);
            }
            Node::String => {
                let s = v.downcast_exact::<PyString>().ok()?.to_str().ok()?;
                write_long(out, s.len() as i64);
                out.extend_from_slice(s.as_bytes());
            }
            Node::Fixed(i) => {
                let b = v.downcast_exact::<PyBytes>().ok()?.as_bytes();
                if b.len() != self.named.fixed[*i] {
                    return None;
                }
                out.extend_from_slice(b);
            }
            Node::Enum(i) => {
                let s = v.downcast_exact::<PyString>().ok()?.to_str().ok()?;
                let idx = self.named.enums[*i].iter().position(|(_, t)| t == s)?;
                write_long(out, idx as i64);
            }
            Node::Union(branches, null, only) => {
                if v.is_none() {
                    let i = (*null)?;
                    write_long(out, i as i64);
                    return Some(());
                }
                // fastavro reads a tuple as (type name, value) and a dict with "-type" as a tagged value
                if v.is_instance_of::<PyTuple>() {
                    return None;
                }
                if let Ok(d) = v.downcast::<PyDict>() {
                    if d.contains("-type").ok()? {
                        return None;
                    }
                }
                let i = (*only)?;
                write_long(out, i as i64);
                self.write(py, &branches[i], v, out)?;
            }
            Node::Record(i) => {
                let d = v.downcast_exact::<PyDict>().ok()?;
                for f in &self.named.records[*i] {
                    match d.get_item(f.name.bind(py)).ok()? {
                        Some(x) => self.write(py, &f.node, &x, out)?,
                        None => match &f.default {
                            Some(dv) => self.write(py, &f.node, dv.bind(py), out)?,
                            None if f.null_when_missing => self.write(py, &f.node, &py.None().into_bound(py), out)?,
                            None => return None,
                        },
                    }
                }
            }
            Node::Array(item) => {
                let items: Vec<Bound<'_, PyAny>> = if let Ok(l) = v.downcast_exact::<PyList>() {
                    l.iter().collect()
                } else if let Ok(t) = v.downcast_exact::<PyTuple>() {
                    t.iter().collect()
                } else {
                    return None;
                };
                if !items.is_empty() {
                    write_long(out, items.len() as i64);
                    for x in &items {
                        self.write(py, item, x, out)?;
                    }
                }
                out.push(0);
            }
            Node::Map(values) => {
                let d = v.downcast_exact::<PyDict>().ok()?;
                if !d.is_empty() {
                    write_long(out, d.len() as i64);
                    for (k, x) in d.iter() {
                        let k = k.downcast_exact::<PyString>().ok()?.to_str().ok()?;
                        write_long(out, k.len() as i64);
                        out.extend_from_slice(k.as_bytes());
                        self.write(py, values, &x, out)?;
                    }
                }
                out.push(0);
            }
        }
        Some(())
    }
}

#[inline]
pub(crate) fn write_long(out: &mut Vec<u8>, n: i64) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// One record schema, compiled. `Codec(parsed)` raises ValueError for what it does not compile.
#[pyclass(frozen, module = "streams._native")]
pub struct Codec {
    named: Named,
    pub(crate) root: Node,
}

#[pymethods]
impl Codec {
    #[new]
    fn new(py: Python<'_>, parsed: &Bound<'_, PyAny>) -> PyResult<Self> {
        let mut named = Named { records: Vec::new(), enums: Vec::new(), fixed: Vec::new(), by_name: HashMap::new() };
        let root = compile(py, parsed, &mut named)?;
        Ok(Codec { named, root })
    }

    /// The value of `data[start:]`, or `None` when fastavro should decide (damage, trailing bytes...).
    fn decode(&self, py: Python<'_>, data: &Bound<'_, PyBytes>, start: usize) -> Option<PyObject> {
        let b = data.as_bytes();
        let mut r = Reader { b, p: start };
        let v = self.read(py, &self.root, &mut r)?;
        if r.p != b.len() {
            return None;
        }
        Some(v)
    }

    /// `prefix` + the Avro body of `value`, or `None` when fastavro should decide.
    fn encode(&self, py: Python<'_>, prefix: &Bound<'_, PyBytes>, value: &Bound<'_, PyAny>) -> Option<PyObject> {
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(prefix.as_bytes());
        self.write(py, &self.root, value, &mut out)?;
        Some(PyBytes::new(py, &out).into_any().unbind())
    }

    /// `encode` for a batch: the list of encoded values, or `None` (for the whole batch) when any needs fastavro.
    fn encode_many(&self, py: Python<'_>, prefix: &Bound<'_, PyBytes>, values: &Bound<'_, PyList>) -> Option<PyObject> {
        let out = PyList::empty(py);
        let p = prefix.as_bytes();
        let mut buf = Vec::with_capacity(128);
        for v in values.iter() {
            buf.clear();
            buf.extend_from_slice(p);
            self.write(py, &self.root, &v, &mut buf)?;
            out.append(PyBytes::new(py, &buf)).ok()?;
        }
        Some(out.into_any().unbind())
    }
}
