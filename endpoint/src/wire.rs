//! The Kinesis wire format (awsJson1_1): request and response bodies as serde types, and the
//! AWS error shape (`{"__type": ..., "message": ...}` with AWS's HTTP status).
//!
//! Pure data: no state, no I/O. Blobs arrive and leave base64-encoded; timestamps are epoch
//! seconds with a fraction, as the SDKs write them.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// The AWS error types this endpoint answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Serialization,
    UnknownOperation,
    Validation,
    InvalidArgument,
    ResourceNotFound,
    ResourceInUse,
    ExpiredIterator,
    LimitExceeded,
    ProvisionedThroughputExceeded,
    MissingAuthenticationToken,
    InternalFailure,
}

impl ErrorKind {
    /// The `__type` value.
    pub fn aws_type(self) -> &'static str {
        match self {
            ErrorKind::Serialization => "SerializationException",
            ErrorKind::UnknownOperation => "UnknownOperationException",
            ErrorKind::Validation => "ValidationException",
            ErrorKind::InvalidArgument => "InvalidArgumentException",
            ErrorKind::ResourceNotFound => "ResourceNotFoundException",
            ErrorKind::ResourceInUse => "ResourceInUseException",
            ErrorKind::ExpiredIterator => "ExpiredIteratorException",
            ErrorKind::LimitExceeded => "LimitExceededException",
            ErrorKind::ProvisionedThroughputExceeded => "ProvisionedThroughputExceededException",
            ErrorKind::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            ErrorKind::InternalFailure => "InternalFailure",
        }
    }

    /// AWS answers client errors with 400, a missing signature with 403 and its own failures
    /// with 500.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::InternalFailure => 500,
            ErrorKind::MissingAuthenticationToken => 403,
            _ => 400,
        }
    }
}

/// An error answer: the AWS type and a message saying what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", kind.aws_type())]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Validation, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ResourceNotFound, message)
    }
    pub fn in_use(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ResourceInUse, message)
    }

    /// The JSON body AWS sends with an error.
    pub fn body(&self) -> String {
        serde_json::json!({ "__type": self.kind.aws_type(), "message": self.message }).to_string()
    }
}

/// The operations this endpoint serves, named as in `X-Amz-Target: Kinesis_20131202.<Name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    CreateStream,
    DeleteStream,
    ListStreams,
    DescribeStream,
    DescribeStreamSummary,
    ListShards,
    PutRecord,
    PutRecords,
    GetShardIterator,
    GetRecords,
    SplitShard,
    MergeShards,
    UpdateShardCount,
    IncreaseStreamRetentionPeriod,
    DecreaseStreamRetentionPeriod,
    RegisterStreamConsumer,
    DescribeStreamConsumer,
    ListStreamConsumers,
    DeregisterStreamConsumer,
    SubscribeToShard,
}

impl Operation {
    pub const ALL: [Operation; 20] = [
        Operation::CreateStream,
        Operation::DeleteStream,
        Operation::ListStreams,
        Operation::DescribeStream,
        Operation::DescribeStreamSummary,
        Operation::ListShards,
        Operation::PutRecord,
        Operation::PutRecords,
        Operation::GetShardIterator,
        Operation::GetRecords,
        Operation::SplitShard,
        Operation::MergeShards,
        Operation::UpdateShardCount,
        Operation::IncreaseStreamRetentionPeriod,
        Operation::DecreaseStreamRetentionPeriod,
        Operation::RegisterStreamConsumer,
        Operation::DescribeStreamConsumer,
        Operation::ListStreamConsumers,
        Operation::DeregisterStreamConsumer,
        Operation::SubscribeToShard,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Operation::CreateStream => "CreateStream",
            Operation::DeleteStream => "DeleteStream",
            Operation::ListStreams => "ListStreams",
            Operation::DescribeStream => "DescribeStream",
            Operation::DescribeStreamSummary => "DescribeStreamSummary",
            Operation::ListShards => "ListShards",
            Operation::PutRecord => "PutRecord",
            Operation::PutRecords => "PutRecords",
            Operation::GetShardIterator => "GetShardIterator",
            Operation::GetRecords => "GetRecords",
            Operation::SplitShard => "SplitShard",
            Operation::MergeShards => "MergeShards",
            Operation::UpdateShardCount => "UpdateShardCount",
            Operation::IncreaseStreamRetentionPeriod => "IncreaseStreamRetentionPeriod",
            Operation::DecreaseStreamRetentionPeriod => "DecreaseStreamRetentionPeriod",
            Operation::RegisterStreamConsumer => "RegisterStreamConsumer",
            Operation::DescribeStreamConsumer => "DescribeStreamConsumer",
            Operation::ListStreamConsumers => "ListStreamConsumers",
            Operation::DeregisterStreamConsumer => "DeregisterStreamConsumer",
            Operation::SubscribeToShard => "SubscribeToShard",
        }
    }

    /// Parses an operation name (case-sensitive, as AWS does).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.name() == name)
    }

    /// Parses the `X-Amz-Target` header value.
    pub fn from_target(target: &str) -> Result<Self, ApiError> {
        let unknown = || {
            ApiError::new(
                ErrorKind::UnknownOperation,
                format!(
                    "unknown operation {target:?}: expected X-Amz-Target Kinesis_20131202.<Operation>"
                ),
            )
        };
        let name = target
            .strip_prefix("Kinesis_20131202.")
            .ok_or_else(unknown)?;
        Self::from_name(name).ok_or_else(unknown)
    }
}

/// StreamName or StreamARN, accepted wherever AWS accepts either.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct StreamRef {
    #[serde(rename = "StreamName")]
    pub stream_name: Option<String>,
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamModeDetails {
    pub stream_mode: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateStreamInput {
    pub stream_name: Option<String>,
    pub shard_count: Option<i64>,
    pub stream_mode_details: Option<StreamModeDetails>,
}

#[derive(Debug, Deserialize)]
pub struct StreamOnlyInput {
    #[serde(flatten)]
    pub stream: StreamRef,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListStreamsInput {
    pub limit: Option<i64>,
    pub exclusive_start_stream_name: Option<String>,
    pub next_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeStreamInput {
    #[serde(flatten)]
    pub stream: StreamRef,
    pub limit: Option<i64>,
    pub exclusive_start_shard_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ShardFilterInput {
    #[serde(rename = "Type")]
    pub filter_type: String,
    pub shard_id: Option<String>,
    pub timestamp: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListShardsInput {
    #[serde(flatten)]
    pub stream: StreamRef,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
    pub exclusive_start_shard_id: Option<String>,
    pub shard_filter: Option<ShardFilterInput>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordInput {
    #[serde(flatten)]
    pub stream: StreamRef,
    pub data: Option<String>,
    pub partition_key: Option<String>,
    pub explicit_hash_key: Option<String>,
    pub sequence_number_for_ordering: Option<String>,
}

/// A JSON string taken as raw bytes, borrowed from the body when it has no escapes. serde_json
/// then skips the UTF-8 check, which base64 text does not need: the decoder refuses anything
/// outside the base64 alphabet anyway.
#[derive(Debug)]
pub struct RawStr<'a>(pub Cow<'a, [u8]>);

impl<'de: 'a, 'a> Deserialize<'de> for RawStr<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Raw;
        impl<'de> serde::de::Visitor<'de> for Raw {
            type Value = Cow<'de, [u8]>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_bytes<E>(self, v: &'de [u8]) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_vec()))
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v))
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v.as_bytes()))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.as_bytes().to_vec()))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.into_bytes()))
            }
        }
        deserializer.deserialize_bytes(Raw).map(RawStr)
    }
}

/// One PutRecords entry, borrowing from the request body (strings without escapes, which
/// base64 and most keys are, are not copied).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsEntry<'a> {
    #[serde(borrow)]
    pub data: Option<RawStr<'a>>,
    #[serde(borrow)]
    pub partition_key: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub explicit_hash_key: Option<Cow<'a, str>>,
}

/// PutRecords, borrowing from the request body. The stream fields are spelled out rather than
/// a flattened [`StreamRef`]: `flatten` makes serde buffer the whole body (all 500 records)
/// into an intermediate tree first.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutRecordsInput<'a> {
    #[serde(borrow)]
    pub stream_name: Option<Cow<'a, str>>,
    #[serde(rename = "StreamARN", borrow)]
    pub stream_arn: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub records: Option<Vec<PutRecordsEntry<'a>>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetShardIteratorInput {
    #[serde(flatten)]
    pub stream: StreamRef,
    pub shard_id: Option<String>,
    pub shard_iterator_type: Option<String>,
    pub starting_sequence_number: Option<String>,
    pub timestamp: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetRecordsInput {
    pub shard_iterator: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SplitShardInput {
    #[serde(flatten)]
    pub stream: StreamRef,
    pub shard_to_split: Option<String>,
    pub new_starting_hash_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MergeShardsInput {
    #[serde(flatten)]
    pub stream: StreamRef,
    pub shard_to_merge: Option<String>,
    pub adjacent_shard_to_merge: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateShardCountInput {
    #[serde(flatten)]
    pub stream: StreamRef,
    pub target_shard_count: Option<i64>,
    pub scaling_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RetentionInput {
    #[serde(flatten)]
    pub stream: StreamRef,
    pub retention_period_hours: Option<i64>,
}

/// RegisterStreamConsumer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterStreamConsumerInput {
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
    pub consumer_name: Option<String>,
}

/// DescribeStreamConsumer and DeregisterStreamConsumer: ConsumerARN, or StreamARN and
/// ConsumerName.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConsumerRefInput {
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
    pub consumer_name: Option<String>,
    #[serde(rename = "ConsumerARN")]
    pub consumer_arn: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListStreamConsumersInput {
    #[serde(rename = "StreamARN")]
    pub stream_arn: Option<String>,
    pub next_token: Option<String>,
    pub max_results: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartingPositionInput {
    #[serde(rename = "Type")]
    pub position_type: Option<String>,
    pub sequence_number: Option<String>,
    pub timestamp: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubscribeToShardInput {
    #[serde(rename = "ConsumerARN")]
    pub consumer_arn: Option<String>,
    pub shard_id: Option<String>,
    pub starting_position: Option<StartingPositionInput>,
}

// ---- responses ----

/// A consumer as RegisterStreamConsumer and ListStreamConsumers answer it; DescribeStreamConsumer
/// adds the StreamARN.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConsumerOut {
    pub consumer_name: String,
    #[serde(rename = "ConsumerARN")]
    pub consumer_arn: String,
    pub consumer_status: &'static str,
    pub consumer_creation_timestamp: f64,
    #[serde(rename = "StreamARN", skip_serializing_if = "Option::is_none")]
    pub stream_arn: Option<String>,
}

/// One SubscribeToShardEvent's payload.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubscribeToShardEventOut {
    pub records: Vec<RecordOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continuation_sequence_number: Option<String>,
    pub millis_behind_latest: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub child_shards: Option<Vec<ChildShardOut>>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HashKeyRangeOut {
    pub starting_hash_key: String,
    pub ending_hash_key: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SequenceNumberRangeOut {
    pub starting_sequence_number: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ending_sequence_number: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ShardOut {
    pub shard_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_shard_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adjacent_parent_shard_id: Option<String>,
    pub hash_key_range: HashKeyRangeOut,
    pub sequence_number_range: SequenceNumberRangeOut,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ChildShardOut {
    pub shard_id: String,
    pub parent_shards: Vec<String>,
    pub hash_key_range: HashKeyRangeOut,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RecordOut {
    pub sequence_number: String,
    pub approximate_arrival_timestamp: f64,
    pub data: String,
    pub partition_key: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetRecordsOutput {
    pub records: Vec<RecordOut>,
    pub next_shard_iterator: Option<String>,
    pub millis_behind_latest: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub child_shards: Option<Vec<ChildShardOut>>,
}

/// Epoch milliseconds as AWS's epoch seconds with a fraction.
pub fn epoch_seconds(millis: i64) -> f64 {
    millis as f64 / 1000.0
}

/// AWS's epoch seconds (with a fraction) as epoch milliseconds, rounded to the nearest.
pub fn epoch_millis(seconds: f64) -> i64 {
    (seconds * 1000.0).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_unknown_ones_are_refused() {
        assert_eq!(
            Operation::from_target("Kinesis_20131202.PutRecords"),
            Ok(Operation::PutRecords)
        );
        let error = Operation::from_target("Kinesis_20131202.Frobnicate").unwrap_err();
        assert_eq!(error.kind, ErrorKind::UnknownOperation);
        assert!(error.message.contains("Frobnicate"));
        assert!(Operation::from_target("DynamoDB_20120810.PutItem").is_err());
    }

    #[test]
    fn error_body_has_the_aws_shape() {
        let body: serde_json::Value =
            serde_json::from_str(&ApiError::not_found("stream x not found").body()).unwrap();
        assert_eq!(body["__type"], "ResourceNotFoundException");
        assert_eq!(body["message"], "stream x not found");
        assert_eq!(ErrorKind::InternalFailure.status(), 500);
        assert_eq!(ErrorKind::ExpiredIterator.status(), 400);
    }

    #[test]
    fn put_records_entries_borrow_and_take_data_as_raw_bytes() {
        let body = br#"{"StreamName":"s","Records":[{"Data":"AAE=","PartitionKey":"k"},{"Data":"A\u0041==","PartitionKey":"caf\u00e9"},{"Data":null,"PartitionKey":"x"}]}"#;
        let input: PutRecordsInput = serde_json::from_slice(body).unwrap();
        let records = input.records.unwrap();
        let data = |i: usize| records[i].data.as_ref().map(|d| d.0.as_ref());
        assert!(matches!(records[0].data, Some(RawStr(Cow::Borrowed(_)))));
        assert_eq!(data(0), Some(b"AAE=".as_slice()));
        assert_eq!(data(1), Some(b"AA==".as_slice()), "escapes are decoded");
        assert_eq!(records[1].partition_key.as_deref(), Some("caf\u{e9}"));
        assert!(records[2].data.is_none());
        assert!(serde_json::from_slice::<PutRecordsInput>(br#"{"Records":[{"Data":7}]}"#).is_err());
    }

    #[test]
    fn partial_stream_refs_deserialize() {
        let input: PutRecordInput = serde_json::from_str(
            r#"{"StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/s","Data":"AA==","PartitionKey":"k"}"#,
        )
        .unwrap();
        assert!(input.stream.stream_name.is_none());
        assert!(input.stream.stream_arn.is_some());
    }
}
