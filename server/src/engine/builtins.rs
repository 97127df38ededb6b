//! The built-in metrics' part of ingest: which built-ins a stream has, resolved once per batch,
//! and what each record and batch counts in them (records, bytes, shard records, millis behind
//! latest; parse errors, late and future records are counted by the classify step through
//! [`BatchBuiltins::count`]).

use super::{core::Deferred, series::MetricState};
use crate::{
    kinesis::{ConsumedRecord, ShardId},
    metric::Builtin,
};
use foldhash::fast::RandomState;
use std::collections::HashMap;

/// One batch's built-in metrics: metric indices, and the series fixed for the whole batch.
pub(super) struct BatchBuiltins {
    /// (metric, series) of `records`, `bytes` and this shard's `shard_records`.
    records: Option<(usize, usize)>,
    bytes: Option<(usize, usize)>,
    shard_records: Option<(usize, usize)>,
    millis_behind_latest: Option<usize>,
    pub(super) parse_errors: Option<usize>,
    pub(super) late_records: Option<usize>,
    pub(super) future_records: Option<usize>,
}

impl BatchBuiltins {
    /// Looks up the stream's built-ins and the series every record of a batch from `shard`
    /// counts in (the shard's series only when the batch has records).
    pub(super) fn resolve(
        builtins: &HashMap<Builtin, usize>,
        metrics: &mut [MetricState],
        hasher: &RandomState,
        shard: &ShardId,
        has_records: bool,
        max_series: usize,
    ) -> Self {
        let index = |kind: Builtin| builtins.get(&kind).copied();
        let mut fixed = |kind: Builtin, key: &str| {
            index(kind).map(|i| (i, metrics[i].series_index(hasher, key, max_series)))
        };
        let records = fixed(Builtin::Records, "");
        let bytes = fixed(Builtin::Bytes, "");
        let shard_records = if has_records {
            fixed(Builtin::ShardRecords, shard.as_str())
        } else {
            None
        };
        Self {
            records,
            bytes,
            shard_records,
            millis_behind_latest: index(Builtin::MillisBehindLatest),
            parse_errors: index(Builtin::ParseErrors),
            late_records: index(Builtin::LateRecords),
            future_records: index(Builtin::FutureRecords),
        }
    }

    /// What one record counts at its arrival second: a record, its bytes, a shard record.
    pub(super) fn count_record(&self, record: &ConsumedRecord, deferred: &mut Vec<Deferred>) {
        let arrival_s = record.arrival_time_ms.div_euclid(1000);
        if let Some((metric, series)) = self.records {
            deferred.push((metric, series, arrival_s, 1.0));
        }
        if let Some((metric, series)) = self.bytes {
            deferred.push((metric, series, arrival_s, record.data.len() as f64));
        }
        if let Some((metric, series)) = self.shard_records {
            deferred.push((metric, series, arrival_s, 1.0));
        }
    }

    /// The batch's MillisBehindLatest, one value per batch at its last record's arrival (or
    /// `now_ms` for an empty batch), in the shard's series.
    #[expect(
        clippy::too_many_arguments,
        reason = "the engine's fields, borrowed apart"
    )]
    pub(super) fn count_millis_behind(
        &self,
        millis_behind_latest: Option<i64>,
        records: &[ConsumedRecord],
        shard: &ShardId,
        now_ms: i64,
        metrics: &mut [MetricState],
        hasher: &RandomState,
        max_series: usize,
        deferred: &mut Vec<Deferred>,
    ) {
        if let (Some(mbl), Some(index)) = (millis_behind_latest, self.millis_behind_latest) {
            let at_ms = records.last().map_or(now_ms, |r| r.arrival_time_ms);
            let series = metrics[index].series_index(hasher, shard.as_str(), max_series);
            deferred.push((index, series, at_ms.div_euclid(1000), mbl as f64));
        }
    }

    /// Counts 1 in the built-in `index` (if the stream has it) under the series `key`.
    pub(super) fn count(
        index: Option<usize>,
        key: &str,
        second: i64,
        metrics: &mut [MetricState],
        hasher: &RandomState,
        max_series: usize,
        deferred: &mut Vec<Deferred>,
    ) {
        if let Some(index) = index {
            let series = metrics[index].series_index(hasher, key, max_series);
            deferred.push((index, series, second, 1.0));
        }
    }
}
