//! The embedded producer's `produce_built` (streams/log/embedded/producer.py) for runs of records: Kafka's murmur2
//! partitioner (or the per-topic round robin without a key) and the per-partition buffers, in one call. A record it
//! does not take -- an unknown topic, a value or key that is not bytes, headers of another kind, one that would fill
//! the buffers (the Python path then flushes) or exceed the size limit (the Python path raises) -- stops the run:
//! the Python code queues that record and calls again from the next.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyTuple};

/// Kafka's murmur2 of `data` (streams/log/partitioner.py `murmur2`), as an unsigned 32-bit value.
pub(crate) fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5BD1_E995;
    let mut h: u32 = 0x9747_B28C ^ (data.len() as u32);
    let n4 = data.len() - (data.len() & 3);
    for c in data[..n4].chunks_exact(4) {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let rest = data.len() & 3;
    if rest == 3 {
        h ^= (data[n4 + 2] as u32) << 16;
    }
    if rest >= 2 {
        h ^= (data[n4 + 1] as u32) << 8;
    }
    if rest >= 1 {
        h ^= data[n4] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[inline]
fn exact_int(v: &Bound<'_, PyAny>) -> Option<i64> {
    if unsafe { pyo3::ffi::PyLong_CheckExact(v.as_ptr()) } == 0 {
        return None;
    }
    v.extract().ok()
}

/// Queue one record, or `None` (nothing changed: the Python path takes it).
#[allow(clippy::too_many_arguments)]
fn queue_one(
    py: Python<'_>, rec: &Bound<'_, PyAny>, partitions: &Bound<'_, PyDict>, rr: &Bound<'_, PyDict>, buffers: &Bound<'_, PyDict>,
    count: &mut i64, size_total: &mut i64, max_records: i64, max_bytes: i64, max_record: i64,
) -> Option<()> {
    let t = rec.downcast_exact::<PyTuple>().ok()?;
    if t.len() != 5 {
        return None;
    }
    let topic = t.get_item(0).ok()?;
    let key = t.get_item(1).ok()?;
    let value = t.get_item(2).ok()?;
    let headers = t.get_item(4).ok()?;
    let n = exact_int(&partitions.get_item(&topic).ok()??)?;
    if n <= 0 {
        return None;
    }
    let value_len = value.downcast_exact::<PyBytes>().ok()?.as_bytes().len() as i64;
    let key_bytes = if key.is_none() { None } else { Some(key.downcast_exact::<PyBytes>().ok()?.as_bytes()) };
    let size = value_len + key_bytes.map_or(0, |k| k.len() as i64);
    if size > max_record || *count + 1 >= max_records || *size_total + size >= max_bytes {
        return None; // the Python path raises, or queues it and flushes
    }
    let headers = if headers.is_none() {
        py.None().into_bound(py)
    } else if let Ok(h) = headers.downcast_exact::<PyTuple>() {
        if h.is_empty() { py.None().into_bound(py) } else { headers }
    } else if let Ok(h) = headers.downcast_exact::<PyList>() {
        if h.is_empty() { py.None().into_bound(py) } else { headers }
    } else {
        return None;
    };
    // everything that can fail first; then the three changes (the new buffer, the append, the round robin)
    let (partition, next_rr) = match key_bytes {
        Some(k) => (((murmur2(k) & 0x7FFF_FFFF) as i64) % n, None),
        None => {
            let c = match rr.get_item(&topic).ok()? {
                Some(c) => exact_int(&c)?,
                None => 0,
            };
            (c.rem_euclid(n), Some(c.checked_add(1)?.into_pyobject(py).ok()?))
        }
    };
    let bkey = PyTuple::new(py, [topic.clone(), partition.into_pyobject(py).ok()?.into_any()]).ok()?;
    let (buf, fresh) = match buffers.get_item(&bkey).ok()? {
        Some(b) => (b.downcast_into_exact::<PyList>().ok()?, false),
        None => (PyList::empty(py), true),
    };
    let entry = PyTuple::new(py, [key, value, t.get_item(3).ok()?, headers]).ok()?;
    if fresh {
        buffers.set_item(&bkey, &buf).ok()?;
    }
    buf.append(entry).ok()?;
    if let Some(c) = next_rr {
        rr.set_item(&topic, c).ok()?;
    }
    *count += 1;
    *size_total += size;
    Some(())
}

/// Queue `records[start:]` (the runtime's `(topic, key, value, timestamp_ns, headers)` tuples) into `buffers`
/// (`(topic, partition)` -> list of `(key, value, timestamp_ns, headers or None)`), partitioned with `partitions`
/// (topic -> partition count) and `rr` (topic -> round-robin counter), up to the first record the Python path
/// must queue. Returns `(stop, count, bytes)`: where it stopped, and the producer's updated counters.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn queue_built(
    py: Python<'_>, records: &Bound<'_, PyList>, start: usize, partitions: &Bound<'_, PyDict>, rr: &Bound<'_, PyDict>,
    buffers: &Bound<'_, PyDict>, count: i64, bytes: i64, max_records: i64, max_bytes: i64, max_record: i64,
) -> PyResult<(usize, i64, i64)> {
    let (mut count, mut total, mut stop) = (count, bytes, start);
    while stop < records.len() {
        let rec = records.get_item(stop)?;
        if queue_one(py, &rec, partitions, rr, buffers, &mut count, &mut total, max_records, max_bytes, max_record).is_none() {
            break;
        }
        stop += 1;
    }
    Ok((stop, count, total))
}
