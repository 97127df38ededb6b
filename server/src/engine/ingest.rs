//! Ingest: one [`RecordBatch`] into the pending deltas, in two steps.
//!
//! 1. Classify: every record counts in the stream's built-ins, and for each defined metric of
//!    its stream is skipped (filter), a value for a series and second, late, from the future,
//!    or bad with its reason. Values are deferred, not yet recorded.
//! 2. Release: the batch's position joins its shard's queue with the newest second the batch
//!    has a value for (capped at the second it is ingested in), and the deferred values are
//!    recorded with that release second, so a flush takes all of a batch's deltas with its
//!    position or none of them.

use super::{
    builtins::BatchBuiltins,
    core::{Deferred, Engine, EngineConfig, StreamState},
    extract::Decoded,
    series::MetricState,
};
use crate::{
    kinesis::{ConsumedRecord, RecordBatch},
    metric::key::LABEL_SEPARATOR,
};
use foldhash::fast::RandomState;

/// What classifying a record needs of the engine, borrowed apart from the stream's state.
struct Classify<'e> {
    config: &'e EngineConfig,
    metrics: &'e mut [MetricState],
    hasher: &'e RandomState,
    label: &'e mut String,
    deferred: &'e mut Vec<Deferred>,
    builtins: &'e BatchBuiltins,
}

impl<P: Clone> Engine<P> {
    /// Ingests one batch. Never fails: unusable records are counted.
    pub fn ingest(&mut self, batch: &RecordBatch<P>, now_ms: i64) {
        self.ensure_stream(&batch.stream);
        let Self {
            config,
            metrics,
            streams,
            hasher,
            label,
            deferred,
            ..
        } = self;
        let Some(stream) = streams.get_mut(&batch.stream) else {
            return;
        };
        let max_series = config.max_series_per_metric;
        let builtins = BatchBuiltins::resolve(
            &stream.builtins,
            metrics,
            hasher,
            &batch.shard,
            !batch.records.is_empty(),
            max_series,
        );
        deferred.clear();
        let mut classify = Classify {
            config,
            metrics,
            hasher,
            label,
            deferred,
            builtins: &builtins,
        };
        for record in &batch.records {
            classify.record(record, &stream.defined, stream.deep_json);
        }
        stream.keep_sample(&batch.records, config.sample_records);
        builtins.count_millis_behind(
            batch.millis_behind_latest,
            &batch.records,
            &batch.shard,
            now_ms,
            metrics,
            hasher,
            max_series,
            deferred,
        );
        let release_s = stream.queue_position(batch, deferred, now_ms);
        for (metric, series, second, value) in deferred.drain(..) {
            metrics[metric].record(series, second, release_s, value);
        }
    }
}

impl Classify<'_> {
    /// Step 1 for one record: its built-in counts and its value (or reason) per defined metric.
    fn record(&mut self, record: &ConsumedRecord, defined: &[usize], deep_json: bool) {
        self.builtins.count_record(record, self.deferred);
        if defined.is_empty() {
            return;
        }
        let arrival_s = record.arrival_time_ms.div_euclid(1000);
        let max_series = self.config.max_series_per_metric;
        let lateness_ms = self.config.allowed_lateness.as_millis() as i64;
        let future_ms = self.config.future_tolerance.as_millis() as i64;
        let mut decoded = Decoded::new(&record.data, deep_json);
        for &mi in defined {
            let metric = &mut self.metrics[mi];
            let Some(compiled) = metric.compiled.as_ref() else {
                continue;
            };
            let (builtin, key) = match decoded.extract(compiled, record.arrival_time_ms, self.label)
            {
                Ok(None) => continue,
                Ok(Some((event_ms, _))) if event_ms < record.arrival_time_ms - lateness_ms => {
                    metric.counters.late_records += 1;
                    (self.builtins.late_records, metric.name.clone())
                }
                Ok(Some((event_ms, _))) if event_ms > record.arrival_time_ms + future_ms => {
                    metric.counters.future_records += 1;
                    (self.builtins.future_records, metric.name.clone())
                }
                Ok(Some((event_ms, value))) => {
                    let series = metric.series_index(self.hasher, self.label, max_series);
                    self.deferred
                        .push((mi, series, event_ms.div_euclid(1000), value));
                    continue;
                }
                Err(reason) => {
                    let bad = metric.counters.bad.entry(reason).or_default();
                    bad.count += 1;
                    if self.config.bad_examples > 0 {
                        if bad.examples.len() >= self.config.bad_examples {
                            bad.examples.pop_front();
                        }
                        let cut = record.data.len().min(200);
                        bad.examples
                            .push_back(String::from_utf8_lossy(&record.data[..cut]).into_owned());
                    }
                    let key = format!("{}{LABEL_SEPARATOR}{}", metric.name, reason.as_str());
                    (self.builtins.parse_errors, key)
                }
            };
            BatchBuiltins::count(
                builtin,
                &key,
                arrival_s,
                self.metrics,
                self.hasher,
                max_series,
                self.deferred,
            );
        }
    }
}

impl<P: Clone> StreamState<P> {
    /// Keeps the stream's most recent records for field discovery and preview (only the
    /// batch's last records can be among them).
    pub(super) fn keep_sample(&mut self, records: &[ConsumedRecord], keep: usize) {
        if keep == 0 {
            return;
        }
        let tail = records.len().saturating_sub(keep);
        for record in &records[tail..] {
            if self.sample.len() >= keep {
                self.sample.pop_front();
            }
            self.sample
                .push_back((record.arrival_time_ms, record.data.clone()));
        }
    }

    /// Step 2: queues the batch's position and returns its release second.
    ///
    /// That is the newest second this batch has a delta for, but never later than the second it
    /// is ingested in: the batch is released (its deltas flushed, its position checkpointed),
    /// with the shard's batches before it, by the first flush after that second. Capped,
    /// because a record far in the future (event time within `future_tolerance`) would
    /// otherwise hold its shard's position and every later batch's deltas pending until its own
    /// second came: one pending second per series and second of the wait.
    fn queue_position(
        &mut self,
        batch: &RecordBatch<P>,
        deferred: &[Deferred],
        now_ms: i64,
    ) -> i64 {
        let newest_s = deferred
            .iter()
            .map(|d| d.2)
            .max()
            .unwrap_or(i64::MIN)
            .min(now_ms.div_euclid(1000));
        let queue = self.positions.entry(batch.shard.clone()).or_default();
        match queue.back_mut() {
            // Released together with the entry before anyway: coalesce.
            Some((last_s, position)) if newest_s <= *last_s => {
                *position = batch.position.clone();
                *last_s
            }
            _ => {
                queue.push_back((newest_s, batch.position.clone()));
                newest_s
            }
        }
    }
}
