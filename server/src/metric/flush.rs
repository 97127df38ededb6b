//! What one flush hands storage: every changed series' [`BucketDelta`] per second and the
//! consumer positions those deltas complete, committed together in one transaction.

use super::{histogram::HistBounds, key::MetricKey, stats::Stats};
use crate::kinesis::{ShardId, StreamName};
use std::sync::Arc;

/// One series' delta for one second, as handed to storage. The histogram stays sparse: storage
/// encodes the HdrHistogram V2 bytes straight from the counts (a dense histogram is 16 KiB
/// for the default bounds, to hold a few dozen non-zero buckets).
#[derive(Debug, Clone)]
pub struct BucketDelta {
    pub metric: MetricKey,
    /// The series: its dimension labels in definition order as a JSON array (`[]` without
    /// dimensions), as stored; shared by every delta of the series.
    pub series: Arc<str>,
    pub second: i64,
    pub stats: Stats,
    /// Histogram counts as sparse `(bucket index, count)`, ascending (see [`super::histogram`]); empty
    /// for a metric without histogram.
    pub counts: Vec<(u32, u64)>,
    /// The metric's histogram bounds, which give `counts` their meaning; `None` without
    /// histogram.
    pub bounds: Option<HistBounds>,
}

impl BucketDelta {
    /// The series' dimension labels.
    pub fn labels(&self) -> Vec<String> {
        serde_json::from_str(&self.series).expect("the engine wrote this JSON")
    }
}

/// Everything one flush must commit atomically.
#[derive(Debug, Clone)]
pub struct Flush<P> {
    pub deltas: Vec<BucketDelta>,
    /// The newest consumer position per shard whose records are all in `deltas` (or earlier
    /// flushes).
    pub positions: Vec<(StreamName, ShardId, P)>,
}

impl<P> Flush<P> {
    pub fn is_empty(&self) -> bool {
        self.deltas.is_empty() && self.positions.is_empty()
    }
}
