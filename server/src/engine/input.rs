//! What the consumer hands the engine: one [`RecordBatch`] per GetRecords (or SubscribeToShard
//! event) of one shard; the consumer sends `RecordBatch<consumer::Checkpoint>`.

use crate::kinesis::{ShardId, StreamName};

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

pub use crate::consumer::ConsumedRecord;
