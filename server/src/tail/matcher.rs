//! Pure: which records a tail shows ([`Matcher`]: the filter language of metric definitions
//! plus a case-insensitive free-text search) and how a record is shown ([`view`]: JSON,
//! logfmt, text or hex).

use crate::{
    engine::fields::{Logfmt, json_get},
    kinesis::{ConsumedRecord, ShardId},
    metric::{
        field::FieldValue,
        filter::{self, Filter},
    },
};
use contract::{
    api::ApiErrorDetail,
    tail::{RecordBody, TailQuery, TailRecord},
};
use serde_json::Value;

/// A tail's selection, compiled once from its query.
#[derive(Debug, Clone)]
pub struct Matcher {
    filter: Option<Filter>,
    /// Lower-case ASCII; empty matches everything.
    search: Vec<u8>,
}

impl Matcher {
    /// Compiles the query's filter and search; a bad filter is refused naming the field and
    /// the position.
    pub fn new(query: &TailQuery) -> Result<Self, ApiErrorDetail> {
        let filter = match query.filter.trim() {
            "" => None,
            text => Some(filter::parse(text).map_err(|error| ApiErrorDetail {
                field: Some("filter".into()),
                message: format!("filter {error}"),
            })?),
        };
        Ok(Self {
            filter,
            search: query.search.trim().to_ascii_lowercase().into_bytes(),
        })
    }

    /// Whether the record passes the search (its data or partition key contains the text,
    /// ASCII case-insensitively) and the filter (evaluated on the data decoded as JSON, else
    /// logfmt; other data has no fields, so only a filter such as `not exists /x` passes).
    pub fn matches(&self, record: &ConsumedRecord) -> bool {
        if !self.search.is_empty()
            && !contains_ignore_case(&record.data, &self.search)
            && !contains_ignore_case(record.partition_key.as_bytes(), &self.search)
        {
            return false;
        }
        let Some(filter) = &self.filter else {
            return true;
        };
        let data = &record.data;
        if starts_like_json(data)
            && let Ok(doc) = serde_json::from_slice::<Value>(data)
        {
            return filter.eval(&|path| json_get(&doc, path));
        }
        if let Ok(text) = std::str::from_utf8(data)
            && let Ok(line) = Logfmt::parse(text.trim_end())
        {
            return filter.eval(&|path| line.get(path));
        }
        filter.eval(&|_| FieldValue::Missing)
    }
}

fn starts_like_json(data: &[u8]) -> bool {
    matches!(
        data.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{' | b'[')
    )
}

/// Whether `haystack` contains `needle` (lower-case ASCII), ignoring ASCII case.
fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    if needle.len() > haystack.len() {
        return false;
    }
    let first = needle[0];
    haystack
        .windows(needle.len())
        .any(|w| w[0].to_ascii_lowercase() == first && w.eq_ignore_ascii_case(needle))
}

/// How a record is shown: its data decoded as JSON, else as logfmt (a line of `key=value`
/// pairs), else as text, else as hex; at most `max_bytes` of it (longer data is cut and shown
/// as text or hex, `truncated` set).
pub fn view(shard: &ShardId, record: &ConsumedRecord, max_bytes: usize) -> TailRecord {
    let data = &record.data[..];
    let truncated = data.len() > max_bytes;
    let shown = &data[..data.len().min(max_bytes)];
    let body = if !truncated
        && starts_like_json(shown)
        && let Ok(value) = serde_json::from_slice::<Value>(shown)
    {
        RecordBody::Json { value }
    } else {
        match std::str::from_utf8(shown) {
            Ok(text) => logfmt_pairs(text, truncated).unwrap_or_else(|| RecordBody::Text {
                text: text.to_string(),
            }),
            // Cut inside a character: the text up to it.
            Err(error) if truncated && error.error_len().is_none() => RecordBody::Text {
                text: String::from_utf8_lossy(&shown[..error.valid_up_to()]).into_owned(),
            },
            Err(_) => RecordBody::Binary { hex: hex(shown) },
        }
    };
    TailRecord {
        shard: shard.as_str().to_string(),
        sequence_number: record.sequence_number.as_str().to_string(),
        sub_sequence: record.sub_sequence,
        partition_key: record.partition_key.clone(),
        arrival_time_ms: record.arrival_time_ms,
        size_bytes: data.len(),
        truncated,
        body,
    }
}

/// The pairs of a logfmt line: one line whose tokens are mostly `key=value` (plain text such
/// as `GET /cart 200` has none).
fn logfmt_pairs(text: &str, truncated: bool) -> Option<RecordBody> {
    let line = text.trim_end();
    if truncated || line.contains('\n') {
        return None;
    }
    let valued = line
        .split_ascii_whitespace()
        .filter(|token| token.contains('='))
        .count();
    let tokens = line.split_ascii_whitespace().count();
    if valued == 0 || valued * 2 < tokens {
        return None;
    }
    let parsed = Logfmt::parse(line).ok()?;
    Some(RecordBody::Logfmt {
        pairs: parsed
            .pairs
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.into_owned()))
            .collect(),
    })
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinesis::SequenceNumber;
    use bytes::Bytes;

    fn record(data: &[u8]) -> ConsumedRecord {
        ConsumedRecord {
            sequence_number: SequenceNumber::parse("7").unwrap(),
            sub_sequence: None,
            partition_key: "Tenant-42".into(),
            data: Bytes::copy_from_slice(data),
            arrival_time_ms: 1,
            explicit_hash_key: None,
        }
    }

    fn matcher(filter: &str, search: &str) -> Matcher {
        Matcher::new(&TailQuery {
            stream: "s".into(),
            filter: filter.into(),
            search: search.into(),
            ..TailQuery::default()
        })
        .unwrap()
    }

    #[test]
    fn the_filter_language_applies_to_json_and_logfmt() {
        let slow = matcher("/latency_ms > 100 and /region = \"eu\"", "");
        assert!(slow.matches(&record(br#"{"latency_ms":250,"region":"eu"}"#)));
        assert!(!slow.matches(&record(br#"{"latency_ms":50,"region":"eu"}"#)));
        assert!(slow.matches(&record(b"region=eu latency_ms=300 msg=\"slow call\"")));
        assert!(!slow.matches(&record(b"\xff\x01binary")));
        assert!(matcher("not exists /x", "").matches(&record(b"\xff\x01binary")));
        assert!(matcher("", "").matches(&record(b"anything")));
    }

    #[test]
    fn search_ignores_case_and_also_reads_the_partition_key() {
        let m = matcher("", "CHECKOUT");
        assert!(m.matches(&record(br#"{"path":"/Checkout"}"#)));
        assert!(!m.matches(&record(br#"{"path":"/cart"}"#)));
        assert!(matcher("", "tenant-4").matches(&record(b"x")));
        // Both must pass.
        let both = matcher("/status >= 500", "cart");
        assert!(both.matches(&record(br#"{"status":503,"path":"/cart"}"#)));
        assert!(!both.matches(&record(br#"{"status":200,"path":"/cart"}"#)));
    }

    #[test]
    fn a_bad_filter_is_refused_at_its_field_with_the_position() {
        let refused = Matcher::new(&TailQuery {
            stream: "s".into(),
            filter: "/status >> 5".into(),
            ..TailQuery::default()
        })
        .unwrap_err();
        assert_eq!(refused.field.as_deref(), Some("filter"));
        assert!(refused.message.contains("position"), "{}", refused.message);
    }

    #[test]
    fn records_are_shown_as_json_logfmt_text_or_hex() {
        let shard = ShardId::new("shardId-000000000001");
        let json = view(&shard, &record(br#"{"a":[1,2]}"#), 100);
        assert_eq!(
            json.body,
            RecordBody::Json {
                value: serde_json::json!({"a": [1, 2]})
            }
        );
        assert_eq!(
            (
                json.shard.as_str(),
                json.sequence_number.as_str(),
                json.size_bytes
            ),
            ("shardId-000000000001", "7", 11)
        );
        assert_eq!(
            view(
                &shard,
                &record(b"level=warn msg=\"disk full\" took=3ms"),
                100
            )
            .body,
            RecordBody::Logfmt {
                pairs: vec![
                    ("level".into(), "warn".into()),
                    ("msg".into(), "disk full".into()),
                    ("took".into(), "3ms".into()),
                ]
            }
        );
        assert_eq!(
            view(&shard, &record(b"GET /cart 200"), 100).body,
            RecordBody::Text {
                text: "GET /cart 200".into()
            }
        );
        assert_eq!(
            view(&shard, &record(&[0xff, 0x00, 0x1a]), 100).body,
            RecordBody::Binary {
                hex: "ff001a".into()
            }
        );
        // Cut: text up to the limit (never inside a character), flagged.
        let cut = view(&shard, &record("ééé".as_bytes()), 3);
        assert!(cut.truncated);
        assert_eq!(cut.body, RecordBody::Text { text: "é".into() });
        assert_eq!(cut.size_bytes, 6);
    }
}
