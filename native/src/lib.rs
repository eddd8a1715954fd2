//! hftstream's native core, imported by Python as `streams._native` (see streams/native.py).
//!
//! Every function here is a fast path behind a Python function that stays the reference: when the
//! native code meets anything it does not handle exactly like the Python code (damage, odd types,
//! values fastavro would reject), it returns `None` or stops early, and the Python path takes over
//! and produces the result or the error. So errors are the Python path's by construction.

use pyo3::prelude::*;

mod avro;
mod hop;
mod produce;
mod segment;
mod tape;
mod venues;

/// Bumped whenever a signature used by streams/ changes: a stale build is then ignored, not misused.
const ABI: u32 = 3;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("ABI", ABI)?;
    m.add_function(wrap_pyfunction!(segment::parse_records, m)?)?;
    m.add_function(wrap_pyfunction!(segment::encode_run, m)?)?;
    m.add_class::<avro::Codec>()?;
    m.add_function(wrap_pyfunction!(tape::tape_row, m)?)?;
    m.add_function(wrap_pyfunction!(tape::tape_scan, m)?)?;
    m.add_function(wrap_pyfunction!(tape::native_block, m)?)?;
    m.add_function(wrap_pyfunction!(hop::decode_messages, m)?)?;
    m.add_function(wrap_pyfunction!(hop::encode_outputs, m)?)?;
    m.add_function(wrap_pyfunction!(produce::queue_built, m)?)?;
    m.add_class::<venues::VenueTable>()?;
    m.add_function(wrap_pyfunction!(venues::json_decimal_fast, m)?)?;
    m.add_function(wrap_pyfunction!(venues::json_ticks_fast, m)?)?;
    m.add_function(wrap_pyfunction!(venues::fix_fast, m)?)?;
    Ok(())
}
