//! Which metric and series a figure belongs to: [`MetricKey`] (a stored definition or a
//! [`Builtin`] of a stream), the built-in kinds, and the series key's label encoding.

use super::definition::HistogramSpec;
use crate::kinesis::StreamName;

/// Separates dimension labels inside a series key.
pub const LABEL_SEPARATOR: char = '\u{1f}';
/// The series that collects values beyond the cardinality limit.
pub const OTHER_SERIES: &str = "__other__";

/// Built-in metrics every stream has without a definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Builtin {
    /// Records received (count, rate).
    Records,
    /// Record sizes: sum is bytes, the histogram is the record size histogram.
    Bytes,
    /// Records per shard (dimension: shard).
    ShardRecords,
    /// MillisBehindLatest per shard, one value per batch (dimension: shard).
    MillisBehindLatest,
    /// Records a metric could not use (dimensions: metric, reason).
    ParseErrors,
    /// Records too late for their bucket (dimension: metric).
    LateRecords,
    /// Records too far in the future (dimension: metric).
    FutureRecords,
}

impl Builtin {
    pub const ALL: [Builtin; 7] = [
        Builtin::Records,
        Builtin::Bytes,
        Builtin::ShardRecords,
        Builtin::MillisBehindLatest,
        Builtin::ParseErrors,
        Builtin::LateRecords,
        Builtin::FutureRecords,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Builtin::Records => "records",
            Builtin::Bytes => "bytes",
            Builtin::ShardRecords => "shard_records",
            Builtin::MillisBehindLatest => "millis_behind_latest",
            Builtin::ParseErrors => "parse_errors",
            Builtin::LateRecords => "late_records",
            Builtin::FutureRecords => "future_records",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.as_str() == text)
    }

    /// Stored name: `builtin:<stream>:<kind>`.
    pub fn metric_name(self, stream: &str) -> String {
        format!("builtin:{stream}:{}", self.as_str())
    }

    pub fn unit(self) -> &'static str {
        match self {
            Builtin::Bytes => "bytes",
            Builtin::MillisBehindLatest => "ms",
            _ => "count",
        }
    }

    pub fn dimensions(self) -> &'static [&'static str] {
        match self {
            Builtin::ShardRecords | Builtin::MillisBehindLatest => &["shard"],
            Builtin::ParseErrors => &["metric", "reason"],
            Builtin::LateRecords | Builtin::FutureRecords => &["metric"],
            Builtin::Records | Builtin::Bytes => &[],
        }
    }

    /// The histogram a built-in keeps, if any.
    pub fn histogram(self) -> Option<HistogramSpec> {
        match self {
            Builtin::Bytes => Some(HistogramSpec {
                lowest: 1,
                highest: 16 * 1024 * 1024,
                significant_figures: 2,
            }),
            Builtin::MillisBehindLatest => Some(HistogramSpec {
                lowest: 1,
                highest: 7 * 24 * 3_600_000,
                significant_figures: 2,
            }),
            _ => None,
        }
    }
}

/// Which metric a delta belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MetricKey {
    /// A stored definition, by its id (a changed definition gets a new id).
    Defined(i64),
    Builtin {
        stream: StreamName,
        kind: Builtin,
    },
}

/// Splits a series key into its labels (none for the empty key of a metric without dimensions).
pub fn split_labels(key: &str) -> Vec<String> {
    if key.is_empty() {
        Vec::new()
    } else {
        key.split(LABEL_SEPARATOR).map(str::to_string).collect()
    }
}
