//! Field extraction: decoding a record's bytes once per stream (JSON, logfmt) or once per metric
//! (regex), resolving JSON Pointers to [`FieldValue`]s, parsing event times, and discovering
//! which fields a stream's records carry.

use super::definition::{Pointer, TimeFormat};
use serde_json::Value;
use std::{borrow::Cow, collections::BTreeMap};

/// One field of one record, borrowed from the decoded record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue<'a> {
    Missing,
    Null,
    Bool(bool),
    Num(f64),
    Str(&'a str),
    /// An object or array: exists, but is not a scalar.
    Composite,
}

impl<'a> FieldValue<'a> {
    /// The value as a number: JSON numbers, and strings that parse as one.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            FieldValue::Num(n) => Some(*n),
            FieldValue::Str(s) => s.trim().parse().ok().filter(|n: &f64| n.is_finite()),
            _ => None,
        }
    }

    /// Appends the value as a dimension label.
    pub fn write_label(&self, out: &mut String) {
        use std::fmt::Write;
        match self {
            FieldValue::Missing => out.push_str("__missing__"),
            FieldValue::Null => out.push_str("null"),
            FieldValue::Bool(b) => {
                let _ = write!(out, "{b}");
            }
            FieldValue::Num(n) => {
                let _ = write!(out, "{n}");
            }
            FieldValue::Str(s) => out.push_str(s),
            FieldValue::Composite => out.push_str("__composite__"),
        }
    }
}

/// Resolves a pointer in a JSON document.
pub fn json_get<'a>(doc: &'a Value, pointer: &Pointer) -> FieldValue<'a> {
    let mut at = doc;
    for token in &pointer.tokens {
        let next = match at {
            Value::Object(map) => map.get(token.as_str()),
            Value::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        };
        match next {
            Some(v) => at = v,
            None => return FieldValue::Missing,
        }
    }
    match at {
        Value::Null => FieldValue::Null,
        Value::Bool(b) => FieldValue::Bool(*b),
        Value::Number(n) => n.as_f64().map_or(FieldValue::Missing, FieldValue::Num),
        Value::String(s) => FieldValue::Str(s),
        Value::Array(_) | Value::Object(_) => FieldValue::Composite,
    }
}

/// A logfmt line decoded into key/value pairs (`key=value key2="quoted value" flag`).
#[derive(Debug, Default)]
pub struct Logfmt<'a> {
    pub pairs: Vec<(&'a str, Cow<'a, str>)>,
}

impl<'a> Logfmt<'a> {
    pub fn parse(line: &'a str) -> Result<Self, &'static str> {
        let mut pairs = Vec::new();
        let bytes = line.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if i >= bytes.len() {
                break;
            }
            let key_start = i;
            while i < bytes.len() && bytes[i] != b'=' && !bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            let key = &line[key_start..i];
            if key.is_empty() {
                return Err("logfmt: empty key");
            }
            if i >= bytes.len() || bytes[i] != b'=' {
                pairs.push((key, Cow::Borrowed("true")));
                continue;
            }
            i += 1;
            if i < bytes.len() && bytes[i] == b'"' {
                i += 1;
                let start = i;
                let mut owned: Option<String> = None;
                loop {
                    if i >= bytes.len() {
                        return Err("logfmt: unterminated quoted value");
                    }
                    match bytes[i] {
                        b'"' => break,
                        b'\\' if i + 1 < bytes.len() => {
                            let s = owned.get_or_insert_with(|| line[start..i].to_string());
                            s.push(bytes[i + 1] as char);
                            i += 2;
                            continue;
                        }
                        _ => {}
                    }
                    if let Some(s) = owned.as_mut() {
                        let ch = line[i..].chars().next().unwrap_or(' ');
                        s.push(ch);
                        i += ch.len_utf8();
                    } else {
                        i += 1;
                    }
                }
                let value = match owned {
                    Some(s) => Cow::Owned(s),
                    None => Cow::Borrowed(&line[start..i]),
                };
                i += 1;
                pairs.push((key, value));
            } else {
                let start = i;
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                pairs.push((key, Cow::Borrowed(&line[start..i])));
            }
        }
        Ok(Self { pairs })
    }

    pub fn get(&self, pointer: &Pointer) -> FieldValue<'_> {
        let Some(key) = pointer.flat_key() else {
            return FieldValue::Missing;
        };
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map_or(FieldValue::Missing, |(_, v)| FieldValue::Str(v))
    }
}

/// Resolves a pointer among a regex's named captures.
pub fn captures_get<'a>(captures: &regex::Captures<'a>, pointer: &Pointer) -> FieldValue<'a> {
    pointer
        .flat_key()
        .and_then(|key| captures.name(key))
        .map_or(FieldValue::Missing, |m| FieldValue::Str(m.as_str()))
}

/// Parses an event time field into epoch milliseconds.
pub fn parse_time(field: &FieldValue<'_>, format: TimeFormat) -> Option<i64> {
    match format {
        TimeFormat::Rfc3339 => match field {
            FieldValue::Str(s) => {
                let t =
                    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                        .ok()?;
                i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
            }
            _ => None,
        },
        TimeFormat::EpochS => field
            .as_number()
            .map(|s| (s * 1000.0).round())
            .filter(|ms| ms.abs() < 1e15)
            .map(|ms| ms as i64),
        TimeFormat::EpochMs => field
            .as_number()
            .map(f64::round)
            .filter(|ms| ms.abs() < 1e15)
            .map(|ms| ms as i64),
    }
}

/// What a sample of records says about a stream's fields.
#[derive(Debug, Default, Clone)]
pub struct FieldStats {
    pub seen: u64,
    pub numeric: u64,
    pub strings: BTreeMap<String, u64>,
    /// More distinct strings than tracked: not low-cardinality.
    pub high_cardinality: bool,
}

/// Most distinct string values tracked per field before it counts as high-cardinality.
pub const LOW_CARDINALITY_LIMIT: usize = 50;

/// Walks a JSON document and adds each scalar leaf's pointer to `out`.
pub fn discover(doc: &Value, out: &mut BTreeMap<String, FieldStats>) {
    fn walk(v: &Value, path: &mut String, out: &mut BTreeMap<String, FieldStats>, depth: usize) {
        match v {
            Value::Object(map) if depth < 4 => {
                for (k, child) in map {
                    let len = path.len();
                    path.push('/');
                    path.push_str(&k.replace('~', "~0").replace('/', "~1"));
                    walk(child, path, out, depth + 1);
                    path.truncate(len);
                }
            }
            Value::Number(_) | Value::String(_) | Value::Bool(_) if !path.is_empty() => {
                if out.len() >= 200 && !out.contains_key(path.as_str()) {
                    return;
                }
                let stats = out.entry(path.clone()).or_default();
                stats.seen += 1;
                match v {
                    Value::Number(_) => stats.numeric += 1,
                    Value::String(s) if !stats.high_cardinality => {
                        if let Some(n) = stats.strings.get_mut(s.as_str()) {
                            *n += 1;
                        } else if stats.strings.len() < LOW_CARDINALITY_LIMIT {
                            stats.strings.insert(s.clone(), 1);
                        } else {
                            stats.high_cardinality = true;
                            stats.strings.clear();
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    let mut path = String::new();
    walk(doc, &mut path, out, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Pointer {
        Pointer::parse(s).unwrap()
    }

    #[test]
    fn json_pointers_resolve() {
        let doc: Value =
            serde_json::from_str(r#"{"a":{"b":[1,{"c":"x"}]},"n":2.5,"t":true,"z":null}"#).unwrap();
        assert_eq!(json_get(&doc, &p("/a/b/0")), FieldValue::Num(1.0));
        assert_eq!(json_get(&doc, &p("/a/b/1/c")), FieldValue::Str("x"));
        assert_eq!(json_get(&doc, &p("/n")), FieldValue::Num(2.5));
        assert_eq!(json_get(&doc, &p("/t")), FieldValue::Bool(true));
        assert_eq!(json_get(&doc, &p("/z")), FieldValue::Null);
        assert_eq!(json_get(&doc, &p("/a")), FieldValue::Composite);
        assert_eq!(json_get(&doc, &p("/nope")), FieldValue::Missing);
    }

    #[test]
    fn logfmt_parses_quotes_and_flags() {
        let l = Logfmt::parse(r#"level=error msg="disk \"full\"" dur=12.5 retry"#).unwrap();
        assert_eq!(l.get(&p("/level")), FieldValue::Str("error"));
        assert_eq!(l.get(&p("/msg")), FieldValue::Str("disk \"full\""));
        assert_eq!(l.get(&p("/dur")).as_number(), Some(12.5));
        assert_eq!(l.get(&p("/retry")), FieldValue::Str("true"));
        assert!(Logfmt::parse(r#"a="open"#).is_err());
    }

    #[test]
    fn times_parse() {
        assert_eq!(
            parse_time(
                &FieldValue::Str("2024-01-02T03:04:05.678Z"),
                TimeFormat::Rfc3339
            ),
            Some(1_704_164_645_678)
        );
        assert_eq!(
            parse_time(
                &FieldValue::Str("2024-01-02T04:04:05+01:00"),
                TimeFormat::Rfc3339
            ),
            Some(1_704_164_645_000)
        );
        assert_eq!(
            parse_time(&FieldValue::Num(1.5), TimeFormat::EpochS),
            Some(1500)
        );
        assert_eq!(
            parse_time(&FieldValue::Str("1500"), TimeFormat::EpochMs),
            Some(1500)
        );
        assert_eq!(
            parse_time(&FieldValue::Str("yesterday"), TimeFormat::Rfc3339),
            None
        );
    }

    #[test]
    fn discovery_separates_numbers_and_labels() {
        let mut out = BTreeMap::new();
        for i in 0..100 {
            let doc = serde_json::json!({"region": if i % 2 == 0 {"eu"} else {"us"}, "latency_ms": i, "id": format!("u{i}")});
            discover(&doc, &mut out);
        }
        assert_eq!(out["/latency_ms"].numeric, 100);
        assert_eq!(out["/region"].strings.len(), 2);
        assert!(out["/id"].high_cardinality);
    }
}

/// A JSON object decoded one level deep without building a `serde_json::Value`: keys and
/// string values borrow from the record when they have no escapes, numbers are parsed, nested
/// objects and arrays are validated and skipped (they resolve to [`FieldValue::Composite`]).
/// Used when every path of a stream's metrics has one segment, which is the common case.
///
/// A hand-written scanner (this is the engine's hottest loop): it accepts and refuses exactly
/// what `serde_json::from_str` does for a record (RFC 8259, no trailing characters but
/// whitespace, numbers that fit an `f64`, nesting up to 128 levels), without serde's per-value
/// visitor calls.
#[derive(Debug, Default)]
pub struct FlatJson<'a> {
    fields: Vec<(Cow<'a, str>, Scalar<'a>)>,
}

#[derive(Debug)]
enum Scalar<'a> {
    Null,
    Bool(bool),
    Num(f64),
    Str(Cow<'a, str>),
    Composite,
}

/// Why a record is not valid JSON (the byte offset where the scanner gave up).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON at byte {0}")]
pub struct JsonError(pub usize);

/// Nesting deeper than this is refused, as serde_json does.
const MAX_DEPTH: usize = 128;

impl<'a> FlatJson<'a> {
    /// Parses a record; invalid JSON is an error, a valid non-object has no fields.
    pub fn parse(text: &'a str) -> Result<Self, JsonError> {
        let mut scanner = Scanner {
            text,
            bytes: text.as_bytes(),
            at: 0,
        };
        scanner.whitespace();
        let doc = if scanner.peek() == Some(b'{') {
            scanner.at += 1;
            let mut fields = Vec::with_capacity(8);
            scanner.whitespace();
            if scanner.peek() == Some(b'}') {
                scanner.at += 1;
            } else {
                loop {
                    scanner.whitespace();
                    let key = scanner.string()?;
                    scanner.whitespace();
                    scanner.expect(b':')?;
                    scanner.whitespace();
                    let value = scanner.scalar()?;
                    fields.push((key, value));
                    scanner.whitespace();
                    match scanner.next()? {
                        b',' => continue,
                        b'}' => break,
                        _ => return Err(scanner.error_before()),
                    }
                }
            }
            FlatJson { fields }
        } else {
            scanner.skip_value(0)?;
            FlatJson::default()
        };
        scanner.whitespace();
        if scanner.at != scanner.bytes.len() {
            return Err(JsonError(scanner.at));
        }
        Ok(doc)
    }

    pub fn get(&self, pointer: &Pointer) -> FieldValue<'_> {
        let Some(key) = pointer.flat_key() else {
            return FieldValue::Missing;
        };
        // Keys of equal length mostly differ in their first byte: test it before comparing.
        let first = key.as_bytes().first();
        match self
            .fields
            .iter()
            .rev()
            .find(|(k, _)| k.len() == key.len() && k.as_bytes().first() == first && k == key)
        {
            None => FieldValue::Missing,
            Some((_, Scalar::Null)) => FieldValue::Null,
            Some((_, Scalar::Bool(b))) => FieldValue::Bool(*b),
            Some((_, Scalar::Num(n))) => FieldValue::Num(*n),
            Some((_, Scalar::Str(s))) => FieldValue::Str(s),
            Some((_, Scalar::Composite)) => FieldValue::Composite,
        }
    }
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    #[inline]
    fn next(&mut self) -> Result<u8, JsonError> {
        let byte = self.peek().ok_or(JsonError(self.at))?;
        self.at += 1;
        Ok(byte)
    }

    fn error_before(&self) -> JsonError {
        JsonError(self.at.saturating_sub(1))
    }

    #[inline]
    fn expect(&mut self, byte: u8) -> Result<(), JsonError> {
        if self.next()? == byte {
            Ok(())
        } else {
            Err(self.error_before())
        }
    }

    #[inline]
    fn whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.at += 1;
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), JsonError> {
        if self.bytes[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(())
        } else {
            Err(JsonError(self.at))
        }
    }

    /// A top-level field's value.
    fn scalar(&mut self) -> Result<Scalar<'a>, JsonError> {
        match self.peek().ok_or(JsonError(self.at))? {
            b'"' => self.string().map(Scalar::Str),
            b'n' => self.literal(b"null").map(|()| Scalar::Null),
            b't' => self.literal(b"true").map(|()| Scalar::Bool(true)),
            b'f' => self.literal(b"false").map(|()| Scalar::Bool(false)),
            b'{' | b'[' => self.skip_value(1).map(|()| Scalar::Composite),
            _ => self.number().map(Scalar::Num),
        }
    }

    /// Validates and skips any value.
    fn skip_value(&mut self, depth: usize) -> Result<(), JsonError> {
        match self.peek().ok_or(JsonError(self.at))? {
            b'"' => self.string().map(drop),
            b'n' => self.literal(b"null"),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            open @ (b'{' | b'[') => {
                if depth >= MAX_DEPTH {
                    return Err(JsonError(self.at));
                }
                self.at += 1;
                let close = if open == b'{' { b'}' } else { b']' };
                self.whitespace();
                if self.peek() == Some(close) {
                    self.at += 1;
                    return Ok(());
                }
                loop {
                    self.whitespace();
                    if open == b'{' {
                        self.string()?;
                        self.whitespace();
                        self.expect(b':')?;
                        self.whitespace();
                    }
                    self.skip_value(depth + 1)?;
                    self.whitespace();
                    match self.next()? {
                        b',' => continue,
                        byte if byte == close => return Ok(()),
                        _ => return Err(self.error_before()),
                    }
                }
            }
            _ => self.number().map(drop),
        }
    }

    /// A JSON number as `f64`: integers as serde_json reads them (`-0` is -0.0), others by
    /// Rust's correctly rounded parser; a number beyond `f64` is an error, as in serde_json.
    fn number(&mut self) -> Result<f64, JsonError> {
        let start = self.at;
        let digits = |s: &mut Self| {
            let from = s.at;
            while let Some(b'0'..=b'9') = s.peek() {
                s.at += 1;
            }
            s.at - from
        };
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        let int_start = self.at;
        match digits(self) {
            0 => return Err(JsonError(self.at)),
            n if n > 1 && self.bytes[int_start] == b'0' => return Err(JsonError(int_start + 1)),
            _ => {}
        }
        let int_end = self.at;
        let mut integer = true;
        if self.peek() == Some(b'.') {
            self.at += 1;
            integer = false;
            if digits(self) == 0 {
                return Err(JsonError(self.at));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            integer = false;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            if digits(self) == 0 {
                return Err(JsonError(self.at));
            }
        }
        if integer && int_end - int_start <= 15 {
            // Exact in an f64: no rounding question.
            let mut n = 0_u64;
            for &d in &self.bytes[int_start..int_end] {
                n = n * 10 + u64::from(d - b'0');
            }
            let n = n as f64;
            return Ok(if negative { -n } else { n });
        }
        let text = &self.text[start..self.at];
        let value: f64 = if integer {
            // Beyond 15 digits: as serde_json, u64/i64 when they fit, else f64.
            if negative {
                text.parse::<i64>()
                    .map(|n| n as f64)
                    .or_else(|_| text.parse())
            } else {
                text.parse::<u64>()
                    .map(|n| n as f64)
                    .or_else(|_| text.parse())
            }
        } else {
            text.parse()
        }
        .map_err(|_| JsonError(start))?;
        if value.is_finite() {
            Ok(value)
        } else {
            Err(JsonError(start))
        }
    }

    /// A string (the scanner is at its opening quote): borrowed unless it has escapes.
    fn string(&mut self) -> Result<Cow<'a, str>, JsonError> {
        if self.peek() != Some(b'"') {
            return Err(JsonError(self.at));
        }
        self.at += 1;
        let start = self.at;
        // The common case, no escapes: one tight loop to the closing quote.
        let run = self.bytes[start..]
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
            .ok_or(JsonError(self.bytes.len()))?;
        self.at = start + run;
        match self.bytes[self.at] {
            b'"' => {
                self.at += 1;
                return Ok(Cow::Borrowed(&self.text[start..self.at - 1]));
            }
            b'\\' => {}
            _ => return Err(JsonError(self.at)),
        }
        let mut owned = String::from(&self.text[start..self.at]);
        loop {
            match self.next()? {
                b'"' => return Ok(Cow::Owned(owned)),
                b'\\' => match self.next()? {
                    b'"' => owned.push('"'),
                    b'\\' => owned.push('\\'),
                    b'/' => owned.push('/'),
                    b'b' => owned.push('\u{8}'),
                    b'f' => owned.push('\u{c}'),
                    b'n' => owned.push('\n'),
                    b'r' => owned.push('\r'),
                    b't' => owned.push('\t'),
                    b'u' => {
                        let first = self.hex4()?;
                        let ch = match first {
                            0xd800..=0xdbff => {
                                if self.next()? != b'\\' || self.next()? != b'u' {
                                    return Err(self.error_before());
                                }
                                let second = self.hex4()?;
                                if !(0xdc00..=0xdfff).contains(&second) {
                                    return Err(JsonError(self.at));
                                }
                                let code = 0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00);
                                char::from_u32(code)
                            }
                            0xdc00..=0xdfff => None,
                            _ => char::from_u32(first),
                        };
                        owned.push(ch.ok_or(JsonError(self.at))?);
                    }
                    _ => return Err(self.error_before()),
                },
                0..=0x1f => return Err(self.error_before()),
                _ => {
                    // Copy the run up to the next quote or backslash (whole UTF-8 characters).
                    let from = self.at - 1;
                    while let Some(byte) = self.peek() {
                        if byte == b'"' || byte == b'\\' || byte < 0x20 {
                            break;
                        }
                        self.at += 1;
                    }
                    owned.push_str(&self.text[from..self.at]);
                }
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let mut code = 0;
        for _ in 0..4 {
            let digit = (self.next()? as char)
                .to_digit(16)
                .ok_or_else(|| self.error_before())?;
            code = code * 16 + digit;
        }
        Ok(code)
    }
}

#[cfg(test)]
mod flat_tests {
    use super::*;

    #[test]
    fn flat_json_agrees_with_value_on_top_level_fields() {
        let text = r#"{"a":1,"s":"x\"y","b":true,"n":null,"o":{"deep":[1,2]},"arr":[],"a":2.5}"#;
        let flat = FlatJson::parse(text).unwrap();
        let value: Value = serde_json::from_str(text).unwrap();
        for path in ["/a", "/s", "/b", "/n", "/o", "/arr", "/missing"] {
            let p = Pointer::parse(path).unwrap();
            assert_eq!(flat.get(&p), json_get(&value, &p), "{path}");
        }
        assert!(FlatJson::parse("{\"a\":").is_err());
        let text = r#"{"s":"a\u00e9\ud83d\ude00\n\/x","n":-0,"big":12345678901234567890,"e":1.5e3,"neg":-7}"#;
        let flat = FlatJson::parse(text).unwrap();
        let value: Value = serde_json::from_str(text).unwrap();
        for path in ["/s", "/n", "/big", "/e", "/neg"] {
            let p = Pointer::parse(path).unwrap();
            assert_eq!(flat.get(&p), json_get(&value, &p), "{path}");
        }
        let mut label = String::new();
        flat.get(&Pointer::parse("/n").unwrap())
            .write_label(&mut label);
        assert_eq!(label, "-0");
        assert!(
            FlatJson::parse("[1,2]")
                .unwrap()
                .get(&Pointer::parse("/a").unwrap())
                == FieldValue::Missing
        );
    }
}

#[cfg(test)]
mod flat_agreement {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    /// The scanner accepts exactly what serde_json accepts, and agrees on every top-level field.
    fn agrees(text: &str) {
        let ours = FlatJson::parse(text);
        let theirs = serde_json::from_str::<Value>(text);
        assert_eq!(
            ours.is_ok(),
            theirs.is_ok(),
            "{text:?}: {ours:?} vs {theirs:?}"
        );
        if let (Ok(flat), Ok(Value::Object(map))) = (ours, theirs) {
            let value = Value::Object(map.clone());
            for key in map.keys() {
                let p = Pointer::parse(&format!("/{}", key.replace('~', "~0").replace('/', "~1")))
                    .unwrap();
                match (flat.get(&p), json_get(&value, &p)) {
                    // serde_json's default float parser may be 1 ulp off; ours rounds exactly.
                    (FieldValue::Num(a), FieldValue::Num(b)) => {
                        assert!((a - b).abs() <= b.abs() * 1e-15, "{text:?} at {key:?}")
                    }
                    (a, b) => assert_eq!(a, b, "{text:?} at {key:?}"),
                }
            }
        }
    }

    #[test]
    fn hand_picked_cases() {
        for text in [
            "{}",
            " { } ",
            "[]",
            "1",
            "\"x\"",
            "null",
            "true",
            "{\"a\":1}",
            "{\"a\":1,}",
            "{,}",
            "{\"a\" 1}",
            "{\"a\":01}",
            "{\"a\":-}",
            "{\"a\":1.}",
            "{\"a\":.5}",
            "{\"a\":1e}",
            "{\"a\":1e+2}",
            "{\"a\":1E-2}",
            "{\"a\":1e400}",
            "{\"a\":-1e400}",
            "{\"a\":tru}",
            "{\"a\":nul}",
            "{\"a\":[1,2,]}",
            "{\"a\":[1 2]}",
            "{\"a\":{\"b\":}}",
            "{\"a\":{\"b\":1}} x",
            "{\"a\":\"\\x\"}",
            "{\"a\":\"\\ud800\"}",
            "{\"a\":\"\\udc00\"}",
            "{\"a\":\"\\ud800\\u0041\"}",
            "{\"a\":\"tab\there\"}",
            "{\"a\":\"\u{1}\"}",
            "{\"a\":\"é ü\"}",
            "{\"a\":\"\\u00\"}",
            "{\"a\":1}\n",
            "{\"a\":18446744073709551616}",
            "{\"a\":-9223372036854775809}",
            "{\"a\":-0.0}",
            "{\"a\":[[[]]],\"b\":{\"c\":[{}]}}",
            "{\"a\":true,\"a\":false}",
            "",
            " ",
            "{\"a\":\"x\"",
            "{\"a\"",
            "{\"a\":",
            "{\"a",
            "{\"\":0}",
            "\u{feff}{}",
            "{\"a\":0.1e1}",
            "{\"a\":123456789012345678}",
            "{\"a\":1.7976931348623157e308}",
        ] {
            agrees(text);
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(130), "]".repeat(130));
        assert!(FlatJson::parse(&deep).is_err());
        assert!(serde_json::from_str::<Value>(&deep).is_err());
    }

    #[test]
    fn random_mutations_agree_with_serde_json() {
        let base = [
            r#"{"region":"eu-west-1","path":"/cart","status":200,"latency_ms":123.5,"ok":true,"n":null,"tags":["a",{"b":[1,2e3]}],"esc":"q\"\\\/\b\f\n\r\t\u00e9"}"#,
            r#"[1,-2.5e-3,"x",{"k":{}}]"#,
            r#"{"a":{"b":{"c":[true,false,null]}},"d":-0,"e":10000000000000000000000}"#,
        ];
        let alphabet = b"{}[]:,\"\\ 0123456789-+.eEtrufalsn\x01\xc3\xa9u";
        let mut rng = StdRng::seed_from_u64(11);
        for _ in 0..20_000 {
            let mut bytes = base[rng.random_range(0..base.len())].as_bytes().to_vec();
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..bytes.len());
                match rng.random_range(0..3) {
                    0 => {
                        bytes.remove(at);
                    }
                    1 => bytes.insert(at, alphabet[rng.random_range(0..alphabet.len())]),
                    _ => bytes[at] = alphabet[rng.random_range(0..alphabet.len())],
                }
            }
            if let Ok(text) = std::str::from_utf8(&bytes) {
                agrees(text);
            }
        }
    }
}
