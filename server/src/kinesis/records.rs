//! What a reader hands downstream: [`ConsumedRecord`]s of one shard in a [`RecordBatch`], with
//! the [`Checkpoint`] after them. Shared by the consumer (which makes them), the engine (which
//! ingests them) and storage (which keeps checkpoints).

use super::{SequenceNumber, ShardId, StreamName};
use bytes::Bytes;

/// A position in a shard: the last record (and KPL sub-sequence) whose effect is stored, and
/// whether the shard has been read to its end.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Checkpoint {
    /// `None` only when nothing has been read from the shard (a shard that ended empty).
    pub sequence_number: Option<SequenceNumber>,
    /// Set when the last record was a user record inside a KPL aggregated record.
    pub sub_sequence: Option<u64>,
    pub shard_finished: bool,
}

/// One user record as the sink sees it (de-aggregated when it came in a KPL record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumedRecord {
    pub sequence_number: SequenceNumber,
    /// Index inside a KPL aggregated record; `None` for a plain record.
    pub sub_sequence: Option<u64>,
    pub partition_key: String,
    pub data: Bytes,
    /// ApproximateArrivalTimestamp, epoch milliseconds.
    pub arrival_time_ms: i64,
    pub explicit_hash_key: Option<String>,
}

/// A batch of records from one shard, in shard order.
///
/// `P` is the reader's position after these records: the consumer sends a [`Checkpoint`]
/// (with `shard_finished` on the shard's last batch), to be stored in the same transaction as
/// the batch's effect. The engine never looks inside it; it hands the newest position per shard
/// to the flush, whose checkpoint hook stores it. Benches and tests of the engine alone use `()`.
#[derive(Debug, Clone)]
pub struct RecordBatch<P = Checkpoint> {
    pub stream: StreamName,
    pub shard: ShardId,
    pub records: Vec<ConsumedRecord>,
    pub millis_behind_latest: Option<i64>,
    pub position: P,
}
