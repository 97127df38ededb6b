//! What the engine counts about a metric besides its series: late, future and overflowed
//! records, and bad records per [`BadReason`] with a few recent examples (shown in the UI).

use std::collections::{BTreeMap, VecDeque};

/// Why a record was not used by a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BadReason {
    NotUtf8,
    InvalidJson,
    InvalidLogfmt,
    RegexNoMatch,
    ValueMissing,
    ValueNotANumber,
    TimeMissing,
    TimeInvalid,
}

impl BadReason {
    pub fn as_str(self) -> &'static str {
        match self {
            BadReason::NotUtf8 => "not_utf8",
            BadReason::InvalidJson => "invalid_json",
            BadReason::InvalidLogfmt => "invalid_logfmt",
            BadReason::RegexNoMatch => "regex_no_match",
            BadReason::ValueMissing => "value_missing",
            BadReason::ValueNotANumber => "value_not_a_number",
            BadReason::TimeMissing => "time_missing",
            BadReason::TimeInvalid => "time_invalid",
        }
    }
}

/// Bad records of one metric and reason: a count and a few recent examples.
#[derive(Debug, Clone, Default)]
pub struct BadRecords {
    pub count: u64,
    pub examples: VecDeque<String>,
}

/// Counters about one metric that are not series.
#[derive(Debug, Clone, Default)]
pub struct MetricCounters {
    pub late_records: u64,
    pub future_records: u64,
    pub overflowed_records: u64,
    pub bad: BTreeMap<BadReason, BadRecords>,
}
