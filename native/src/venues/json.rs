//! A JSON reader for the venue fast paths: the top-level object's values for a few keys, or `None`.
//!
//! It accepts a subset of what `json.JSONDecoder().decode` accepts and reads it the same way (RFC 8259
//! grammar, whitespace ` \t\n\r` around tokens, the last of repeated keys wins). It declines -- `None`, so
//! Python decides -- anything it would have to reproduce more carefully: backslash escapes, `NaN` and
//! `Infinity`, integers beyond int64 (Python would give an `int`), numbers over 100 characters, nesting
//! deeper than 32. Control characters in strings are errors in both.

/// A value as the fast paths test it: `type(v) is str`, `type(v) is int` (within int64), `None`, or anything else.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Value<'a> {
    Null,
    Str(&'a str),
    Int(i64),
    Other,
}

impl<'a> Value<'a> {
    pub fn str(self) -> Option<&'a str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

const MAX_DEPTH: usize = 32;
const MAX_NUMBER: usize = 100;

struct Reader<'a> {
    text: &'a str,
    b: &'a [u8],
    p: usize,
}

impl<'a> Reader<'a> {
    fn ws(&mut self) {
        while matches!(self.b.get(self.p), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.p += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.b.get(self.p) == Some(&c)).then(|| self.p += 1)
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.p).copied()
    }

    fn string(&mut self) -> Option<&'a str> {
        let start = self.p + 1;
        let len = self.b[start..].iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
        if self.b[start + len] != b'"' {
            return None;
        }
        self.p = start + len + 1;
        self.text.get(start..start + len)
    }

    fn literal(&mut self, word: &[u8], v: Value<'a>) -> Option<Value<'a>> {
        self.b[self.p..].starts_with(word).then(|| {
            self.p += word.len();
            v
        })
    }

    fn run_of_digits(&mut self) -> usize {
        let n = self.b[self.p..].iter().take_while(|c| c.is_ascii_digit()).count();
        self.p += n;
        n
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?`; an integer within int64 is `Int`, a float `Other`.
    fn number(&mut self) -> Option<Value<'a>> {
        let start = self.p;
        if self.b[self.p] == b'-' {
            self.p += 1;
        }
        let int_start = self.p;
        let n = self.run_of_digits();
        if n == 0 || (n > 1 && self.b[int_start] == b'0') {
            return None;
        }
        let mut float = false;
        if self.b.get(self.p) == Some(&b'.') {
            self.p += 1;
            float = true;
            if self.run_of_digits() == 0 {
                return None;
            }
        }
        if matches!(self.b.get(self.p), Some(b'e' | b'E')) {
            self.p += 1;
            float = true;
            if matches!(self.b.get(self.p), Some(b'-' | b'+')) {
                self.p += 1;
            }
            if self.run_of_digits() == 0 {
                return None;
            }
        }
        if self.p - start > MAX_NUMBER {
            return None;
        }
        if float {
            return Some(Value::Other);
        }
        self.text[start..self.p].parse::<i64>().ok().map(Value::Int)
    }

    fn value(&mut self, depth: usize) -> Option<Value<'a>> {
        match self.peek()? {
            b'"' => self.string().map(Value::Str),
            b'{' => self.container(depth, b'}', true),
            b'[' => self.container(depth, b']', false),
            b'n' => self.literal(b"null", Value::Null),
            b't' => self.literal(b"true", Value::Other),
            b'f' => self.literal(b"false", Value::Other),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// An object's `"key": value` members or an array's values, each handed to `each`; at `p` = the opening bracket.
    fn members(&mut self, close: u8, keyed: bool, depth: usize, mut each: impl FnMut(&'a str, Value<'a>)) -> Option<()> {
        self.p += 1;
        if self.eat(close).is_some() {
            return Some(());
        }
        loop {
            let mut key = "";
            if keyed {
                if self.peek()? != b'"' {
                    return None;
                }
                key = self.string()?;
                self.eat(b':')?;
            }
            let v = self.value(depth + 1)?;
            each(key, v);
            if self.eat(close).is_some() {
                return Some(());
            }
            self.eat(b',')?;
        }
    }

    fn container(&mut self, depth: usize, close: u8, keyed: bool) -> Option<Value<'a>> {
        if depth >= MAX_DEPTH {
            return None;
        }
        self.members(close, keyed, depth, |_, _| ())?;
        Some(Value::Other)
    }
}

/// The values of `keys` in the JSON object `text` (`None` in a slot: the key is absent), or `None`.
pub fn object<'a, const N: usize>(text: &'a str, keys: &[&str; N]) -> Option<[Option<Value<'a>>; N]> {
    let mut r = Reader { text, b: text.as_bytes(), p: 0 };
    let mut out = [None; N];
    if r.peek()? != b'{' {
        return None;
    }
    r.members(b'}', true, 0, |key, v| {
        if let Some(i) = keys.iter().position(|k| *k == key) {
            out[i] = Some(v);
        }
    })?;
    r.ws();
    (r.p == r.b.len()).then_some(out)
}
