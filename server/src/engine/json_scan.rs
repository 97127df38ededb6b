//! [`FlatJson`]: the fast path for JSON records whose metrics only name top-level fields. A
//! hand-written scanner that decodes an object one level deep, borrowing keys and strings from
//! the record; [`super::fields`] resolves deeper paths on a full `serde_json::Value` instead.

use crate::metric::field::{FieldValue, Pointer};
use std::borrow::Cow;

/// A JSON object decoded one level deep without building a `serde_json::Value`: keys and
/// string values borrow from the record when they have no escapes, numbers are parsed, nested
/// objects and arrays are validated and skipped (they resolve to [`FieldValue::Composite`]).
/// Used when every path of a stream's metrics has one segment, which is the common case.
///
/// A hand-written scanner (this is the engine's hottest loop): it accepts and refuses exactly
/// what `serde_json::from_str` does for a record (RFC 8259, no trailing characters but
/// whitespace, numbers that fit an `f64`, at most 127 nested containers), without serde's per-value
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

/// serde_json's recursion limit: a document may hold at most `MAX_DEPTH - 1` nested
/// containers (the top-level object counts); one more is refused, as serde_json does.
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
                // `depth` containers are open; this one would be number `depth + 1`.
                if depth + 1 >= MAX_DEPTH {
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
    use crate::engine::fields::json_get;
    use serde_json::Value;

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
    use crate::engine::fields::json_get;
    use rand::{Rng, SeedableRng, rngs::StdRng};
    use serde_json::Value;

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
    fn nesting_limit_is_serde_jsons() {
        // The object and 126 arrays are 127 containers: accepted; one more is refused (the
        // scanner used to accept it, while the deep path's serde_json refused the record).
        for (arrays, ok) in [(126, true), (127, false)] {
            let text = format!("{{\"a\":{}{}}}", "[".repeat(arrays), "]".repeat(arrays));
            assert_eq!(
                FlatJson::parse(&text).is_ok(),
                ok,
                "{arrays} arrays in an object"
            );
            agrees(&text);
            let bare = format!("{}{}", "[".repeat(arrays + 1), "]".repeat(arrays + 1));
            assert_eq!(
                FlatJson::parse(&bare).is_ok(),
                ok,
                "{} bare arrays",
                arrays + 1
            );
            agrees(&bare);
        }
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
