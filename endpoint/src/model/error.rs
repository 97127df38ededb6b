//! Why a model operation refused: one variant per rule the model enforces, carrying what the
//! message names. The text of each variant is the message AWS-compatible clients see; which
//! AWS error type and HTTP status it travels as is decided once, where the service turns a
//! [`ModelError`] into a wire error.

use super::{DEFAULT_RETENTION_HOURS, MAX_RETENTION_HOURS};

/// A refused model operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    // ---- the named stream or shard does not exist ----
    #[error("Stream {name} under account 000000000000 not found.")]
    StreamNotFound { name: String },
    #[error("Shard {shard} in stream {stream} under account 000000000000 does not exist")]
    ShardNotFound { stream: String, shard: String },
    #[error("The stream of this ShardIterator no longer exists")]
    IteratorStreamGone,
    #[error("The shard of this ShardIterator does not exist")]
    IteratorShardGone,
    #[error("Consumer {consumer} of stream {stream} under account 000000000000 not found.")]
    ConsumerNotFound { stream: String, consumer: String },

    // ---- the stream or shard is in a state that forbids the change ----
    #[error("Stream {name} under account 000000000000 already exists.")]
    StreamExists { name: String },
    #[error("Shard {shard} in stream {stream} is closed and cannot be split")]
    SplitOfClosedShard { stream: String, shard: String },
    #[error("Shards {shard} and {adjacent} in stream {stream} must both be open to merge")]
    MergeOfClosedShard {
        stream: String,
        shard: String,
        adjacent: String,
    },

    #[error("Consumer {consumer} of stream {stream} under account 000000000000 already exists.")]
    ConsumerExists { stream: String, consumer: String },

    // ---- a request field fails the API model's constraints ----
    #[error(
        "1 validation error detected: Value {name:?} at 'streamName' failed to satisfy constraint: Member must have length between 1 and 128 and match [a-zA-Z0-9_.-]+"
    )]
    InvalidStreamName { name: String },
    #[error(
        "1 validation error detected: Value {name:?} at 'consumerName' failed to satisfy constraint: Member must have length between 1 and 128 and match [a-zA-Z0-9_.-]+"
    )]
    InvalidConsumerName { name: String },
    #[error("Either StreamName or StreamARN must be provided")]
    StreamRefMissing,
    #[error("ShardCount must not be given for an ON_DEMAND stream")]
    ShardCountForOnDemand,
    #[error("ShardCount is required for a PROVISIONED stream")]
    ShardCountMissing,
    #[error(
        "1 validation error detected: Value {count} at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1"
    )]
    ShardCountOutOfRange { count: i64 },
    #[error("UpdateShardCount is not supported for ON_DEMAND streams")]
    ScalingOnDemand,
    #[error(
        "1 validation error detected: Value {target} at 'targetShardCount' failed to satisfy constraint: Member must have value greater than or equal to 1"
    )]
    TargetShardCountOutOfRange { target: i64 },
    #[error(
        "1 validation error detected: Value at 'partitionKey' failed to satisfy constraint: Member must have length between 1 and 256 (got {chars})"
    )]
    PartitionKeyLength { chars: usize },
    #[error(
        "1 validation error detected: record of {bytes} bytes (data + partition key) exceeds the 1 MiB limit"
    )]
    RecordTooLarge { bytes: usize },

    // ---- a value is well-formed but not acceptable ----
    #[error("StreamARN {arn:?} is not a Kinesis stream ARN")]
    InvalidStreamArn { arn: String },
    #[error("StreamName {name:?} and StreamARN name {arn_name:?} differ")]
    StreamNameArnMismatch { name: String, arn_name: String },
    #[error("ConsumerARN {arn:?} is not a Kinesis stream consumer ARN")]
    InvalidConsumerArn { arn: String },
    #[error("ExplicitHashKey {text:?} is not a decimal integer in 0..=2^128-1")]
    InvalidExplicitHashKey { text: String },
    #[error("StartingSequenceNumber {text:?} is invalid")]
    InvalidSequenceNumber { text: String },
    #[error(
        "StartingSequenceNumber {seq} used in GetShardIterator on shard {shard} in stream {stream} under account 000000000000 is invalid because it did not come from this stream."
    )]
    SequenceNumberNotInShard {
        seq: u128,
        stream: String,
        shard: String,
    },
    #[error("Invalid ShardIterator: {text:?}")]
    InvalidIterator { text: String },
    #[error("NewStartingHashKey {text:?} is not a decimal integer in 0..=2^128-1")]
    InvalidNewStartingHashKey { text: String },
    #[error(
        "NewStartingHashKey {key} must be greater than the shard's StartingHashKey {start} and at most its EndingHashKey {end}"
    )]
    SplitKeyOutsideShard { key: u128, start: u128, end: u128 },
    #[error("Shards {shard} and {adjacent} in stream {stream} are not adjacent")]
    ShardsNotAdjacent {
        stream: String,
        shard: String,
        adjacent: String,
    },
    #[error(
        "Minimum allowed retention period is {min} hours and maximum is {max} hours; got {hours}",
        min = DEFAULT_RETENTION_HOURS,
        max = MAX_RETENTION_HOURS
    )]
    RetentionOutOfRange { hours: i64 },
    #[error(
        "Requested retention period ({hours} hours) for stream {stream} can not be shorter than existing retention period ({current} hours). Use DecreaseRetentionPeriod API."
    )]
    RetentionIncreaseTooShort {
        stream: String,
        hours: i64,
        current: i64,
    },
    #[error(
        "Requested retention period ({hours} hours) for stream {stream} can not be longer than existing retention period ({current} hours). Use IncreaseRetentionPeriod API."
    )]
    RetentionDecreaseTooLong {
        stream: String,
        hours: i64,
        current: i64,
    },

    // ---- a limit is reached ----
    #[error(
        "This request would exceed the shard limit for the account: {open} open + {requested} requested > {limit}"
    )]
    ShardLimit {
        open: usize,
        requested: usize,
        limit: usize,
    },
    #[error("Stream {stream} already has the maximum of {limit} registered consumers")]
    ConsumerLimit { stream: String, limit: usize },
    #[error(
        "UpdateShardCount can scale between half and double the open shard count ({current}); {target} is outside"
    )]
    ScalingOutOfRange { current: i64, target: i64 },
    #[error(
        "Iterator expired. The iterator was created at time {issued_ms} while right now it is {now_ms} and this exceeds the iterator TTL of {ttl_ms} ms."
    )]
    ExpiredIterator {
        issued_ms: i64,
        now_ms: i64,
        ttl_ms: i64,
    },
    #[error(
        "Rate exceeded for shard {shard} in stream: more than 5 GetRecords calls or 2 MiB per second"
    )]
    ReadThrottled { shard: String },

    // ---- the model's own invariant broke ----
    #[error("no open shard covers the hash key")]
    NoShardForHashKey,
}
