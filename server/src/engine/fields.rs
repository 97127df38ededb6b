//! Field extraction: decoding a record's bytes once per stream (JSON, logfmt) or once per metric
//! (regex), resolving JSON Pointers to [`FieldValue`]s, parsing event times, and discovering
//! which fields a stream's records carry.

use crate::metric::{
    definition::TimeFormat,
    field::{FieldValue, Pointer},
};
use serde_json::Value;
use std::{borrow::Cow, collections::BTreeMap};

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
                            // The escaped character whole: it may be more than one byte.
                            let s = owned.get_or_insert_with(|| line[start..i].to_string());
                            let escaped = line[i + 1..].chars().next().unwrap_or('\\');
                            s.push(escaped);
                            i += 1 + escaped.len_utf8();
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
    fn logfmt_escapes_a_multibyte_character_whole() {
        // A backslash before a multi-byte character used to push one byte of it and then slice
        // the line inside the character (a panic on the ingest path).
        let l = Logfmt::parse("msg=\"\\é and \\😀 ok\" n=1").unwrap();
        assert_eq!(l.get(&p("/msg")), FieldValue::Str("é and 😀 ok"));
        assert_eq!(l.get(&p("/n")), FieldValue::Str("1"));
        assert_eq!(
            Logfmt::parse("a=\"\\é").unwrap_err(),
            "logfmt: unterminated quoted value"
        );
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
