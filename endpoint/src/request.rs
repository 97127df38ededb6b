//! Request bodies to model inputs, with no state: JSON parsing (an empty body reads as `{}`),
//! required fields, StreamName/StreamARN resolution, base64 record data, PutRecords entries
//! decoded into one shared buffer, and the opaque ListStreams/ListShards continuation tokens.
//! Every refusal is an [`ApiError`] with AWS's type and text.

use crate::{
    model::{IteratorStart, Model, NewRecord, parse_seq},
    wire::{self, ApiError, ErrorKind, StreamRef},
};
use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

pub(crate) fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|error| {
        ApiError::new(
            ErrorKind::Serialization,
            format!("cannot parse the request body: {error}"),
        )
    })
}

pub(crate) fn required<T>(value: Option<T>, field: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| {
        ApiError::validation(format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

pub(crate) fn stream_name(stream: &StreamRef) -> Result<String, ApiError> {
    Ok(Model::resolve_name(
        stream.stream_name.as_deref(),
        stream.stream_arn.as_deref(),
    )?)
}

pub(crate) fn decode_data(data: Option<&str>) -> Result<Bytes, ApiError> {
    let data = required(data, "data")?;
    B64.decode(data).map(Bytes::from).map_err(|error| {
        ApiError::new(
            ErrorKind::Serialization,
            format!("Data is not valid base64: {error}"),
        )
    })
}

/// Validates and decodes PutRecords entries. Partition keys and decoded data of the whole
/// request go into one buffer, and each record holds slices of it: one allocation per request
/// instead of several per record.
pub(crate) fn decode_entries(
    entries: &[wire::PutRecordsEntry<'_>],
) -> Result<Vec<NewRecord>, ApiError> {
    let capacity: usize = entries
        .iter()
        .map(|e| {
            e.partition_key.as_deref().map_or(0, str::len)
                + e.data.as_ref().map_or(0, |d| d.0.len().div_ceil(4) * 3)
        })
        .sum();
    let mut buffer = Vec::with_capacity(capacity);
    let mut parts = Vec::with_capacity(entries.len());
    for entry in entries {
        let key = required(
            entry.partition_key.as_deref(),
            "records.member.partitionKey",
        )?;
        let data = required(entry.data.as_ref(), "data")?;
        let key_start = buffer.len();
        buffer.extend_from_slice(key.as_bytes());
        let data_start = buffer.len();
        if base64_simd::STANDARD
            .decode_append(&data.0, &mut buffer)
            .is_err()
        {
            // The SIMD decoder only says "invalid"; the scalar one says where and why.
            return Err(decode_data(Some(&String::from_utf8_lossy(&data.0)))
                .err()
                .unwrap_or_else(|| {
                    ApiError::new(ErrorKind::Serialization, "Data is not valid base64")
                }));
        }
        let hash = NewRecord::check(
            key,
            entry.explicit_hash_key.as_deref(),
            buffer.len() - data_start,
        )?;
        parts.push((key_start, data_start, buffer.len(), hash));
    }
    let buffer = Bytes::from(buffer);
    Ok(parts
        .into_iter()
        .map(|(key_start, data_start, end, hash)| NewRecord {
            partition_key: buffer.slice(key_start..data_start),
            hash,
            data: buffer.slice(data_start..end),
        })
        .collect())
}

/// GetShardIterator's ShardIteratorType (or SubscribeToShard's StartingPosition Type, named
/// `field` in the refusal) with the sequence number or timestamp it needs.
pub(crate) fn iterator_start(
    kind: &str,
    sequence_number: Option<&str>,
    timestamp: Option<f64>,
    field: &str,
) -> Result<IteratorStart, ApiError> {
    let seq = || -> Result<u128, ApiError> {
        let text = sequence_number.ok_or_else(|| {
            ApiError::invalid(format!("A sequence number is required with {kind}"))
        })?;
        Ok(parse_seq(text)?)
    };
    Ok(match kind {
        "TRIM_HORIZON" => IteratorStart::TrimHorizon,
        "LATEST" => IteratorStart::Latest,
        "AT_SEQUENCE_NUMBER" => IteratorStart::AtSequence(seq()?),
        "AFTER_SEQUENCE_NUMBER" => IteratorStart::AfterSequence(seq()?),
        "AT_TIMESTAMP" => IteratorStart::AtTimestamp(wire::epoch_millis(
            timestamp
                .ok_or_else(|| ApiError::invalid("Timestamp is required with AT_TIMESTAMP"))?,
        )),
        other => {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value {other:?} at '{field}' failed to satisfy constraint: Member must satisfy enum value set: [AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, TRIM_HORIZON, LATEST, AT_TIMESTAMP]"
            )));
        }
    })
}

/// A ListShards/ListStreams continuation token: opaque base64 of a small JSON object.
pub(crate) fn seal_token(value: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

pub(crate) fn open_token(text: &str) -> Result<Value, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| ApiError::invalid(format!("NextToken {text:?} is invalid")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(body: &[u8]) -> Result<Vec<NewRecord>, ApiError> {
        let input: wire::PutRecordsInput = parse(body)?;
        decode_entries(&input.records.unwrap_or_default())
    }

    #[test]
    fn entries_slice_one_buffer_and_bad_ones_say_why() {
        let records = entries(
            br#"{"Records":[{"Data":"aGVsbG8=","PartitionKey":"k1"},{"Data":"","PartitionKey":"caf\u00e9","ExplicitHashKey":"42"}]}"#,
        )
        .unwrap();
        assert_eq!(&records[0].data[..], b"hello");
        assert_eq!(&records[0].partition_key[..], b"k1");
        assert_eq!(records[0].hash, crate::model::hash_partition_key("k1"));
        assert_eq!(&records[1].data[..], b"");
        assert_eq!(&records[1].partition_key[..], "café".as_bytes());
        assert_eq!(records[1].hash, 42);
        // Both records live in the request's one buffer.
        let start = records[0].partition_key.as_ptr() as usize;
        let end = records[1].partition_key.as_ptr() as usize;
        assert_eq!(end - start, "k1hello".len());

        let error = entries(br#"{"Records":[{"Data":"aGVsbG8","PartitionKey":"k"}]}"#).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Serialization);
        assert!(error.message.contains("base64"), "{}", error.message);
        let error = entries(br#"{"Records":[{"Data":"AA==","PartitionKey":null}]}"#).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Validation);
        let error = entries(br#"{"Records":[{"PartitionKey":"k"}]}"#).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Validation);
        let error = entries(br#"{"Records":[{"Data":"AA==","PartitionKey":""}]}"#).unwrap_err();
        assert_eq!(error.kind, ErrorKind::Validation);
    }
}
