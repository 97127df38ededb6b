//! Hand-written JSON encoders for the two hot answers, GetRecords and PutRecords: bytes go
//! straight into one pre-sized buffer (base64 encoded in place, numbers formatted without
//! intermediate `String`s), with no `serde_json::Value` tree and no per-record allocation.
//! base64 goes through base64-simd (AVX2 where the CPU has it; already built for
//! aws-sdk-kinesis). The output is the same JSON that serialising [`super::wire::GetRecordsOutput`] or the
//! PutRecords `json!` answer gave (member order aside); the tests below check that by parsing
//! both. Pure: no state, no I/O.

use super::{
    model::{PutOutcome, Record},
    wire::ChildShardOut,
};

/// Appends `text` as a JSON string (quotes included), escaping as serde_json does: `"`, `\`
/// and control characters below U+0020. Bytes must be UTF-8; they are copied as they are.
pub fn push_json_str(out: &mut Vec<u8>, text: &[u8]) {
    out.push(b'"');
    let mut start = 0;
    for (i, &byte) in text.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => {
                out.extend_from_slice(&text[start..i]);
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(byte >> 4)]);
                out.push(HEX[usize::from(byte & 0xf)]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&text[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&text[start..]);
    out.push(b'"');
}

/// Appends epoch milliseconds as AWS's epoch seconds with a fraction (`1700000000.123`,
/// `1700000000.5`, `1700000000.0`): the decimal nearest to `millis / 1000`, which parses to the
/// same `f64` that [`super::wire::epoch_seconds`] gives.
pub fn push_epoch_seconds(out: &mut Vec<u8>, millis: i64) {
    if millis < 0 {
        out.push(b'-');
    }
    let millis = millis.unsigned_abs();
    let mut digits = itoa::Buffer::new();
    out.extend_from_slice(digits.format(millis / 1000).as_bytes());
    out.push(b'.');
    let fraction = millis % 1000;
    let fraction = [
        b'0' + (fraction / 100) as u8,
        b'0' + (fraction / 10 % 10) as u8,
        b'0' + (fraction % 10) as u8,
    ];
    let keep = fraction
        .iter()
        .rposition(|&d| d != b'0')
        .map_or(1, |i| i + 1);
    out.extend_from_slice(&fraction[..keep]);
}

/// 10^19: the largest power of ten whose multiples' remainders fit a `u64`.
const TEN_POW_19: u128 = 10_000_000_000_000_000_000;

/// Formats `u128` sequence numbers in decimal. The numbers of one answer are close together,
/// so their digits above 10^19 are formatted once and reused, and only the low 19 digits (a
/// `u64`) are formatted per number: no 128-bit division per record.
#[derive(Default)]
pub struct SeqFormatter {
    /// `high * 10^19` of the cached prefix, and the prefix's digits (empty when `high` is 0).
    base: Option<u128>,
    prefix: Vec<u8>,
    low: itoa::Buffer,
}

impl SeqFormatter {
    pub fn push(&mut self, out: &mut Vec<u8>, seq: u128) {
        let base = match self.base {
            Some(base) if seq >= base && seq - base < TEN_POW_19 => base,
            _ => {
                let high = seq / TEN_POW_19;
                self.prefix.clear();
                if high > 0 {
                    self.prefix
                        .extend_from_slice(itoa::Buffer::new().format(high).as_bytes());
                }
                let base = high * TEN_POW_19;
                self.base = Some(base);
                base
            }
        };
        let low = self.low.format((seq - base) as u64);
        if !self.prefix.is_empty() {
            out.extend_from_slice(&self.prefix);
            out.extend(std::iter::repeat_n(b'0', 19 - low.len()));
        }
        out.extend_from_slice(low.as_bytes());
    }
}

/// Bytes one record takes in a GetRecords answer, near enough to pre-size the buffer.
fn record_size_hint(record: &Record) -> usize {
    const FIXED: usize =
        r#"{"SequenceNumber":"","ApproximateArrivalTimestamp":,"Data":"","PartitionKey":""},"#
            .len();
    FIXED + 40 + 20 + record.data.len().div_ceil(3) * 4 + record.partition_key.len() + 8
}

/// The GetRecords answer: `Records`, `NextShardIterator` (null at the end of a closed shard),
/// `MillisBehindLatest` and, when present, `ChildShards`.
pub fn get_records(
    records: &[Record],
    next_shard_iterator: Option<&str>,
    millis_behind_latest: i64,
    child_shards: Option<&[ChildShardOut]>,
) -> Vec<u8> {
    let size: usize = records.iter().map(record_size_hint).sum();
    let mut out = Vec::with_capacity(size + 256);
    let mut number = itoa::Buffer::new();
    let mut seqs = SeqFormatter::default();
    out.extend_from_slice(b"{\"Records\":[");
    // Records of one write share an arrival time: format it once per run.
    let mut last_arrival: Option<(i64, usize, usize)> = None;
    for (i, record) in records.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"SequenceNumber\":\"");
        seqs.push(&mut out, record.seq);
        out.extend_from_slice(b"\",\"ApproximateArrivalTimestamp\":");
        match last_arrival {
            Some((millis, start, end)) if millis == record.arrival_ms => {
                out.extend_from_within(start..end);
            }
            _ => {
                let start = out.len();
                push_epoch_seconds(&mut out, record.arrival_ms);
                last_arrival = Some((record.arrival_ms, start, out.len()));
            }
        }
        out.extend_from_slice(b",\"Data\":\"");
        base64_simd::STANDARD.encode_append(&record.data, &mut out);
        out.extend_from_slice(b"\",\"PartitionKey\":");
        push_json_str(&mut out, &record.partition_key);
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"NextShardIterator\":");
    match next_shard_iterator {
        Some(iterator) => push_json_str(&mut out, iterator.as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"MillisBehindLatest\":");
    out.extend_from_slice(number.format(millis_behind_latest).as_bytes());
    if let Some(children) = child_shards {
        out.extend_from_slice(b",\"ChildShards\":");
        // Rare (once per closed shard) and small: serde is fine here.
        serde_json::to_writer(&mut out, children).expect("writing to a Vec cannot fail");
    }
    out.push(b'}');
    out
}

/// The PutRecords answer: `FailedRecordCount`, one entry per record in request order (shard
/// and sequence number, or the throttling error), `EncryptionType`.
pub fn put_records(outcomes: &[PutOutcome]) -> Vec<u8> {
    const STORED: usize =
        r#"{"ShardId":"shardId-000000000000","SequenceNumber":"49000000000000000000000000000000000000"},"#
            .len();
    let mut out = Vec::with_capacity(64 + outcomes.len() * STORED);
    let failed = outcomes
        .iter()
        .filter(|o| matches!(o, PutOutcome::Throttled))
        .count();
    let mut number = itoa::Buffer::new();
    let mut seqs = SeqFormatter::default();
    out.extend_from_slice(b"{\"FailedRecordCount\":");
    out.extend_from_slice(number.format(failed).as_bytes());
    out.extend_from_slice(b",\"Records\":[");
    for (i, outcome) in outcomes.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match outcome {
            PutOutcome::Stored { shard, seq } => {
                out.extend_from_slice(b"{\"ShardId\":\"shardId-");
                let digits = number.format(*shard);
                out.extend(std::iter::repeat_n(b'0', 12usize.saturating_sub(digits.len())));
                out.extend_from_slice(digits.as_bytes());
                out.extend_from_slice(b"\",\"SequenceNumber\":\"");
                seqs.push(&mut out, *seq);
                out.extend_from_slice(b"\"}");
            }
            PutOutcome::Throttled => out.extend_from_slice(
                br#"{"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"Rate exceeded for shard in stream under account 000000000000."}"#,
            ),
        }
    }
    out.extend_from_slice(b"],\"EncryptionType\":\"NONE\"}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        model::shard_id,
        wire::{self, HashKeyRangeOut},
    };
    use base64::Engine as _;
    use bytes::Bytes;
    use serde_json::{Value, json};

    const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

    fn record(seq: u128, arrival_ms: i64, key: &str, data: &[u8]) -> Record {
        Record {
            seq,
            arrival_ms,
            lsn: 1,
            partition_key: Bytes::copy_from_slice(key.as_bytes()),
            data: Bytes::copy_from_slice(data),
        }
    }

    /// What the serde-based encoder (before this module) produced.
    fn reference(
        records: &[Record],
        next: Option<&str>,
        behind: i64,
        children: Option<Vec<ChildShardOut>>,
    ) -> Value {
        let output = wire::GetRecordsOutput {
            records: records
                .iter()
                .map(|r| wire::RecordOut {
                    sequence_number: r.seq.to_string(),
                    approximate_arrival_timestamp: wire::epoch_seconds(r.arrival_ms),
                    data: B64.encode(&r.data),
                    partition_key: String::from_utf8(r.partition_key.to_vec()).unwrap(),
                })
                .collect(),
            next_shard_iterator: next.map(str::to_string),
            millis_behind_latest: behind,
            child_shards: children,
        };
        serde_json::to_value(&output).unwrap()
    }

    #[test]
    fn get_records_matches_the_serde_encoding() {
        let tricky_key = "quote\" back\\slash\nctl\u{1}\u{7f} é ☃ 𝄞";
        let records = vec![
            record(
                49_000_000_000_000_000_000_000_000_000_000_000_000,
                1_700_000_000_123,
                "a",
                b"",
            ),
            record(
                49_000_000_000_000_000_000_000_000_000_000_000_001,
                1_700_000_000_123,
                tricky_key,
                b"x",
            ),
            record(u128::MAX, 1_700_000_000_100, "k", &[0xff, 0, 1, 2, 3]),
            record(7, 1_700_000_000_000, "k", &[b'y'; 100]),
            record(8, 0, "k", b"ab"),
            record(9, -1_500, "k", b"abc"),
        ];
        let children = vec![ChildShardOut {
            shard_id: shard_id(3),
            parent_shards: vec![shard_id(1), shard_id(2)],
            hash_key_range: HashKeyRangeOut {
                starting_hash_key: "0".into(),
                ending_hash_key: u128::MAX.to_string(),
            },
        }];
        for (next, behind, kids) in [
            (Some("AAAA-_iterator"), 1234, None),
            (None, 0, Some(children.clone())),
        ] {
            let ours = get_records(&records, next, behind, kids.as_deref());
            let ours: Value = serde_json::from_slice(&ours).expect("valid JSON");
            assert_eq!(ours, reference(&records, next, behind, kids));
        }
        let empty: Value = serde_json::from_slice(&get_records(&[], Some("it"), 0, None)).unwrap();
        assert_eq!(empty, reference(&[], Some("it"), 0, None));
    }

    #[test]
    fn sequence_numbers_format_as_to_string() {
        let mut seqs = SeqFormatter::default();
        let base = 49_000_000_000_000_000_000_000_000_000_000_000_000u128;
        let values = [
            0,
            7,
            TEN_POW_19 - 1,
            TEN_POW_19,
            TEN_POW_19 + 1,
            base,
            base + 1,
            base + 12_345,
            base + TEN_POW_19,
            base - 1,
            3,
            u128::MAX - 1,
            u128::MAX,
            u128::from(u64::MAX),
            u128::from(u64::MAX) + 1,
        ];
        for value in values {
            let mut out = Vec::new();
            seqs.push(&mut out, value);
            assert_eq!(String::from_utf8(out).unwrap(), value.to_string());
        }
    }

    #[test]
    fn epoch_seconds_parse_to_the_same_double() {
        for millis in [
            0,
            1,
            10,
            100,
            999,
            1_000,
            1_700_000_000_000,
            1_700_000_000_001,
            1_700_000_000_010,
            1_700_000_000_120,
            1_769_999_999_999,
            -1,
            -1_001,
            253_402_300_799_999,
        ] {
            let mut out = Vec::new();
            push_epoch_seconds(&mut out, millis);
            let text = std::str::from_utf8(&out).unwrap();
            let parsed: f64 = text.parse().unwrap();
            assert_eq!(
                parsed,
                wire::epoch_seconds(millis),
                "{millis} ms wrote {text}"
            );
            assert!(text.contains('.'), "{text} is a number with a fraction");
        }
    }

    #[test]
    fn put_records_matches_the_json_macro_answer() {
        let outcomes = vec![
            PutOutcome::Stored {
                shard: 0,
                seq: 49_000_000_000_000_000_000_000_000_000_000_000_017,
            },
            PutOutcome::Throttled,
            PutOutcome::Stored {
                shard: 1_234_567,
                seq: u128::MAX,
            },
        ];
        let ours: Value = serde_json::from_slice(&put_records(&outcomes)).unwrap();
        let expected = json!({
            "FailedRecordCount": 1,
            "Records": [
                { "ShardId": shard_id(0), "SequenceNumber": "49000000000000000000000000000000000017" },
                {
                    "ErrorCode": "ProvisionedThroughputExceededException",
                    "ErrorMessage": "Rate exceeded for shard in stream under account 000000000000.",
                },
                { "ShardId": shard_id(1_234_567), "SequenceNumber": u128::MAX.to_string() },
            ],
            "EncryptionType": "NONE",
        });
        assert_eq!(ours, expected);
    }
}
