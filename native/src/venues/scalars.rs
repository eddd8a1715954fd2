//! Decimals and timestamps, as `decimal_fast` (connectors/venues/scaled.py) and `iso_ns_fast` / `fix_time_fast`
//! (streams/timeutil.py) read them: the same value where they return one, `None` wherever they return `None`
//! (and perhaps elsewhere). Integer arithmetic only; money never passes through a float.

/// 10^k for every scale an instrument may have (0..=18).
const POW10: [i128; 19] = {
    let mut t = [1i128; 19];
    let mut k = 1;
    while k < 19 {
        t[k] = t[k - 1] * 10;
        k += 1;
    }
    t
};
const NS_PER_S: i128 = 1_000_000_000;

pub fn digits(b: &[u8]) -> bool {
    !b.is_empty() && b.iter().all(u8::is_ascii_digit)
}

/// The value of ASCII digits (the caller bounds their number: at most 38).
fn value(b: &[u8]) -> i128 {
    b.iter().fold(0i128, |v, &c| v * 10 + i128::from(c - b'0'))
}

/// ASCII digits as a number, for at most 18 of them (`int(text)` after `isdigit()`).
pub fn small_int(b: &[u8]) -> Option<i64> {
    if b.len() > 18 || !digits(b) {
        return None;
    }
    Some(value(b) as i64)
}

/// `decimal_fast(text, scale)`: `[+-]?digits(.digits)?` with at most `scale` places, within int64.
pub fn decimal(text: &str, scale: u32) -> Option<i64> {
    let scale = scale as usize;
    if scale > 18 || !text.is_ascii() {
        return None;
    }
    let b = text.as_bytes();
    let (whole, frac) = match b.iter().position(|&c| c == b'.') {
        Some(i) => (&b[..i], Some(&b[i + 1..])),
        None => (b, None),
    };
    let (negative, whole) = match whole.first() {
        Some(b'-') => (true, &whole[1..]),
        Some(b'+') => (false, &whole[1..]),
        _ => (false, whole),
    };
    if whole.len() > 19 || !digits(whole) {
        return None;
    }
    let mut v = value(whole) * POW10[scale];
    if let Some(frac) = frac {
        if frac.len() > scale || !digits(frac) {
            return None;
        }
        v += value(frac) * POW10[scale - frac.len()];
    }
    i64::try_from(if negative { -v } else { v }).ok()
}

/// Days from 1970-01-01 to a proleptic Gregorian date (what `date.toordinal()` differences give).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The ns of a second given as `[y, mo, d, h, mi, s]` digit fields, checked as `_civil_to_ns` + `check_int64` do.
fn second_ns(f: [&[u8]; 6]) -> Option<i128> {
    let mut n = [0i64; 6];
    for (slot, text) in n.iter_mut().zip(f) {
        *slot = small_int(text)?;
    }
    let [y, mo, d, h, mi, s] = n;
    if !(1..=9999).contains(&y) || !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let ns = i128::from(((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60 + s) * NS_PER_S;
    i64::try_from(ns).ok().map(i128::from)
}

/// `base` plus a fraction of 1 to 9 digits, within int64.
fn with_fraction(base: i128, frac: &[u8]) -> Option<i64> {
    if frac.is_empty() || frac.len() > 9 || !digits(frac) {
        return None;
    }
    i64::try_from(base + value(frac) * POW10[9 - frac.len()]).ok()
}

/// `iso_ns_fast`: `YYYY-MM-DDThh:mm:ss.f{1,9}Z`.
pub fn iso_ns(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let n = b.len();
    if !text.is_ascii() || !(22..=30).contains(&n) || b[19] != b'.' || b[n - 1] != b'Z' {
        return None;
    }
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let base = second_ns([&b[0..4], &b[5..7], &b[8..10], &b[11..13], &b[14..16], &b[17..19]])?;
    with_fraction(base, &b[20..n - 1])
}

/// `fix_time_fast`: `YYYYMMDD-hh:mm:ss.f{1,9}`.
pub fn fix_time(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let n = b.len();
    if !text.is_ascii() || !(19..=27).contains(&n) || b[17] != b'.' || b[8] != b'-' || b[11] != b':' || b[14] != b':' {
        return None;
    }
    let base = second_ns([&b[0..4], &b[4..6], &b[6..8], &b[9..11], &b[12..14], &b[15..17]])?;
    with_fraction(base, &b[18..])
}
