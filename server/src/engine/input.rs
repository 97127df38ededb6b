//! What the consumer hands the engine: one [`RecordBatch`] per GetRecords (or SubscribeToShard
//! event) of one shard. Defined here until the lead unifies it with the consumer's types.

use crate::kinesis::{SequenceNumber, ShardId, StreamName};

/// A batch of records from one shard, in shard order.
///
/// `P` is the consumer's opaque checkpoint position; the engine never looks inside it, it only
/// hands the newest position per shard to the checkpoint hook inside the flush transaction.
#[derive(Debug, Clone)]
pub struct RecordBatch<P = ()> {
    pub stream: StreamName,
    pub shard: ShardId,
    pub records: Vec<ConsumedRecord>,
    pub millis_behind_latest: Option<i64>,
    pub position: P,
}

/// One Kinesis record (after de-aggregation, hence the optional sub-sequence).
#[derive(Debug, Clone)]
pub struct ConsumedRecord {
    pub sequence_number: SequenceNumber,
    pub sub_sequence: Option<u64>,
    pub partition_key: String,
    pub data: bytes::Bytes,
    /// Kinesis `ApproximateArrivalTimestamp`, epoch milliseconds.
    pub arrival_time_ms: i64,
}
