//! The pure, synchronous engine: ingests [`RecordBatch`]es, keeps every series' pending
//! per-second deltas and rolling windows, and hands the deltas to the flush.
//!
//! Exactly-once: the engine keeps only the *deltas since the last flush* per (metric, series,
//! second). [`Engine::take_flush_before`] moves out the deltas of the seconds before a cutoff
//! (the current second: complete seconds, so each 1-second row is normally written once, a
//! plain insert) together with, per shard, the newest consumer position all of whose records'
//! deltas are in this or an earlier flush; [`Engine::take_flush`] moves out everything (a
//! requested flush, shutdown). The shell writes deltas and positions in one transaction (UPSERT
//! merging deltas into stored buckets, for stragglers). If that transaction never commits
//! (crash), neither the deltas nor the positions are stored, and the consumer re-reads exactly
//! those records. If it fails without a crash, [`Engine::restore`] puts the flush back so the
//! next one retries it.
//!
//! Lateness is judged per record against its own Kinesis arrival time, never against a clock
//! or a watermark: a record whose event time is more than `allowed_lateness` before its arrival
//! is late, more than `future_tolerance` after it is from the future. Both are counted (per
//! metric and in the stream's `late_records` / `future_records` built-ins), never aggregated.
//! This makes the judgement the same on a replay after a crash, whatever the shard interleaving.

use super::{
    counters::MetricCounters,
    fields,
    pending::Pending,
    series::MetricState,
    window::{WINDOWS_S, WindowSummary},
};
use crate::{
    kinesis::{ShardId, StreamName},
    metric::{
        BucketDelta, Builtin, CompiledMetric, Flush, MetricKey, Stats,
        definition::{CompiledFormat, HistogramSpec},
        histogram::HistBounds,
        key::{LABEL_SEPARATOR, split_labels},
    },
};
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap, VecDeque};

pub use super::settings::EngineConfig;

pub(super) struct StreamState<P> {
    pub(super) defined: Vec<usize>,
    /// Some JSON metric of this stream has a path of more than one segment: decode a full
    /// `serde_json::Value` instead of the faster [`FlatJson`].
    pub(super) deep_json: bool,
    pub(super) builtins: HashMap<Builtin, usize>,
    /// Per shard, the positions not yet handed to a flush, oldest first, each with the newest
    /// second its batch (and the batches coalesced into it) has a delta for, capped at the
    /// second it was ingested in: the position and those batches' deltas go to the first flush
    /// after that second. The seconds strictly increase (a batch whose second is not newer than
    /// the last entry's replaces its position), so there is at most one entry per pending
    /// second.
    pub(super) positions: HashMap<ShardId, VecDeque<(i64, P)>>,
    /// The stream's most recent records with their arrival times (field discovery, preview).
    pub(super) sample: VecDeque<(i64, Bytes)>,
}

/// Live window summaries of one series.
#[derive(Debug, Clone)]
pub struct SeriesWindows {
    pub metric: MetricKey,
    pub name: String,
    pub labels: Vec<String>,
    pub windows: [WindowSummary; 4],
}

/// One window of one metric: per series (labels, summary) and all series merged.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricWindow {
    pub series: Vec<(Vec<String>, WindowSummary)>,
    pub merged: WindowSummary,
}

/// The engine core. `P` is the consumer's checkpoint position type.
pub struct Engine<P = ()> {
    pub(super) config: EngineConfig,
    pub(super) metrics: Vec<MetricState>,
    pub(super) streams: HashMap<StreamName, StreamState<P>>,
    pub(super) definitions: Vec<(i64, CompiledMetric)>,
    /// Hashes series keys: seeded per process (label values come from records), and much
    /// cheaper than SipHash for short keys.
    pub(super) hasher: foldhash::fast::RandomState,
    pub(super) label: String,
    /// One batch's values, recorded once the batch's newest second is known.
    pub(super) deferred: Vec<Deferred>,
}

/// A value for (metric index, series index, second).
pub(super) type Deferred = (usize, usize, i64, f64);

impl<P: Clone> Engine<P> {
    pub fn new(config: EngineConfig) -> Self {
        Self {
            config,
            metrics: Vec::new(),
            streams: HashMap::new(),
            definitions: Vec::new(),
            hasher: foldhash::fast::RandomState::default(),
            label: String::new(),
            deferred: Vec::new(),
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Replaces the set of defined metrics. A metric whose id disappears is retired: it takes
    /// no more records, and is dropped once its pending deltas are flushed.
    pub fn set_definitions(&mut self, definitions: Vec<(i64, CompiledMetric)>) {
        let ids: HashMap<i64, &CompiledMetric> =
            definitions.iter().map(|(id, c)| (*id, c)).collect();
        for metric in &mut self.metrics {
            if let MetricKey::Defined(id) = metric.key
                && !ids.contains_key(&id)
            {
                metric.retired = true;
            }
        }
        for (id, compiled) in &definitions {
            let exists = self
                .metrics
                .iter()
                .any(|m| m.key == MetricKey::Defined(*id) && !m.retired);
            if !exists {
                self.metrics.push(MetricState::new(
                    MetricKey::Defined(*id),
                    compiled.definition.name.clone(),
                    Some(compiled.clone()),
                    compiled
                        .definition
                        .value
                        .is_some()
                        .then_some(compiled.definition.histogram),
                ));
            }
        }
        self.definitions = definitions;
        self.drop_retired();
        self.reindex();
    }

    fn drop_retired(&mut self) {
        self.metrics
            .retain(|m| !m.retired || m.series.iter().any(|s| s.series_pending()));
    }

    fn reindex(&mut self) {
        for stream in self.streams.values_mut() {
            stream.defined.clear();
            stream.builtins.clear();
            stream.deep_json = false;
        }
        for (i, metric) in self.metrics.iter().enumerate() {
            match &metric.key {
                MetricKey::Defined(_) => {
                    if metric.retired {
                        continue;
                    }
                    if let Some(c) = &metric.compiled
                        && let Some(stream) = self
                            .streams
                            .get_mut(&StreamName::new(c.definition.stream.as_str()))
                    {
                        stream.defined.push(i);
                        if matches!(c.format, CompiledFormat::Json)
                            && c.paths().any(|p| p.tokens.len() != 1)
                        {
                            stream.deep_json = true;
                        }
                    }
                }
                MetricKey::Builtin { stream, kind } => {
                    if let Some(state) = self.streams.get_mut(stream) {
                        state.builtins.insert(*kind, i);
                    }
                }
            }
        }
    }

    pub(super) fn ensure_stream(&mut self, name: &StreamName) {
        if self.streams.contains_key(name) {
            return;
        }
        self.streams.insert(
            name.clone(),
            StreamState {
                defined: Vec::new(),
                deep_json: false,
                builtins: HashMap::new(),
                positions: HashMap::new(),
                sample: VecDeque::new(),
            },
        );
        for kind in Builtin::ALL {
            let key = MetricKey::Builtin {
                stream: name.clone(),
                kind,
            };
            if !self.metrics.iter().any(|m| m.key == key) {
                self.metrics.push(MetricState::new(
                    key,
                    kind.metric_name(name.as_str()),
                    None,
                    kind.histogram(),
                ));
            }
        }
        self.reindex();
    }

    /// Streams seen so far.
    pub fn streams(&self) -> impl Iterator<Item = &StreamName> {
        self.streams.keys()
    }

    /// Moves every pending delta and the newest positions out for a flush, and adds the deltas
    /// to the rolling windows: [`Engine::take_flush_before`] with no cutoff.
    pub fn take_flush(&mut self) -> Flush<P> {
        self.take_flush_before(i64::MAX)
    }

    /// Moves the pending deltas of seconds before `cutoff_s` out for a flush (and any put back
    /// by [`Engine::restore`], whatever their second), adds them to the rolling windows, and
    /// takes per shard the newest position whose batches' deltas are all in this flush or an
    /// earlier one. Newer deltas and positions stay pending; live windows include them.
    ///
    /// With the current second as cutoff, a flush writes complete seconds only: each 1-second
    /// row is normally written once. Late records for an older second are flushed by the next
    /// flush (merged into the stored row); records from the near future (within
    /// `future_tolerance`) wait for their second to pass, and hold back their shard's position
    /// until then.
    pub fn take_flush_before(&mut self, cutoff_s: i64) -> Flush<P> {
        let mut deltas = Vec::new();
        for metric in &mut self.metrics {
            let bounds = metric
                .records_histogram
                .then(|| HistBounds::of(&metric.template));
            for series in &mut metric.series {
                if series.pending.is_empty() {
                    series.spare = Vec::new();
                }
                let mut i = 0;
                while i < series.pending.len() {
                    let due = &series.pending[i];
                    if !due.windowed && due.release_s >= cutoff_s {
                        i += 1;
                        continue;
                    }
                    // At most a few seconds are pending per series: `remove` keeps their order.
                    let mut pending = series.pending.remove(i);
                    // At most one bucket per value: one allocation, not a growing one.
                    let mut counts = Vec::with_capacity(pending.stats.count.min(64) as usize);
                    pending.sparse(&mut counts);
                    if series.spare.is_empty() && !pending.counts.is_empty() {
                        // Zero what was counted: the array is all zeros again.
                        for &(index, _) in &counts {
                            pending.counts[index as usize] = 0;
                        }
                        series.spare = std::mem::take(&mut pending.counts);
                    }
                    if !pending.windowed {
                        series
                            .windows
                            .add_sparse(pending.second, &pending.stats, &counts);
                    }
                    let json = series.json.get_or_insert_with(|| {
                        serde_json::to_string(&split_labels(&series.key))
                            .expect("labels always serialise")
                            .into()
                    });
                    deltas.push(BucketDelta {
                        metric: metric.key.clone(),
                        series: json.clone(),
                        second: pending.second,
                        stats: pending.stats,
                        counts,
                        bounds,
                    });
                }
            }
        }
        let mut positions = Vec::new();
        for (name, stream) in &mut self.streams {
            stream.positions.retain(|shard, queue| {
                let mut newest = None;
                while queue.front().is_some_and(|(second, _)| *second < cutoff_s) {
                    newest = queue.pop_front().map(|(_, position)| position);
                }
                if let Some(position) = newest {
                    positions.push((name.clone(), shard.clone(), position));
                }
                !queue.is_empty()
            });
        }
        self.drop_retired();
        self.reindex();
        Flush { deltas, positions }
    }

    /// Puts back a flush whose transaction failed, so the next flush writes it again (whatever
    /// its cutoff: the deltas put back are taken by any flush). Positions taken since then are
    /// newer and win once their own seconds are flushed; until then the position put back is
    /// the one the next flush takes.
    ///
    /// A metric retired and dropped since the flush was taken (its last deltas were in it) comes
    /// back, retired, until they are written: the positions put back cover its records too.
    pub fn restore(&mut self, flush: Flush<P>) {
        let separator = LABEL_SEPARATOR.to_string();
        for delta in flush.deltas {
            let metric = match self.metrics.iter().position(|m| m.key == delta.metric) {
                Some(i) => &mut self.metrics[i],
                None => {
                    let spec = delta.bounds.map(|b| HistogramSpec {
                        lowest: b.low,
                        highest: b.high,
                        significant_figures: b.sigfig,
                    });
                    let mut metric =
                        MetricState::new(delta.metric.clone(), String::new(), None, spec);
                    metric.retired = true;
                    self.metrics.push(metric);
                    self.metrics.last_mut().expect("just pushed")
                }
            };
            let key = delta.labels().join(&separator);
            let index = match metric.series.iter().position(|s| s.key == key) {
                Some(i) => i,
                None => metric.series_index(&self.hasher, &key, usize::MAX),
            };
            let mut counts = Vec::new();
            if !delta.counts.is_empty() {
                counts = vec![0_u32; metric.layout.buckets() as usize];
                for &(i, c) in &delta.counts {
                    if let Some(count) = counts.get_mut(i as usize) {
                        *count = u32::try_from(c).unwrap_or(u32::MAX);
                    }
                }
            }
            metric.series[index].pending.push(Pending {
                stats: delta.stats,
                counts,
                windowed: true,
                ..Pending::new(delta.second, i64::MIN)
            });
        }
        for (stream, shard, position) in flush.positions {
            if let Some(state) = self.streams.get_mut(&stream) {
                // Its deltas are back and due: releasable by the next flush, before anything
                // queued since (which is newer), unless the oldest of that is releasable too.
                let queue = state.positions.entry(shard).or_default();
                if queue.front().is_none_or(|(second, _)| *second != i64::MIN) {
                    queue.push_front((i64::MIN, position));
                }
            }
        }
    }

    /// Rolling window summaries of every live series at `now_ms`.
    pub fn windows(&self, now_ms: i64) -> Vec<SeriesWindows> {
        let now_s = now_ms.div_euclid(1000);
        let mut out = Vec::new();
        for metric in &self.metrics {
            let mut scratch = metric.template.clone();
            for series in &metric.series {
                let unflushed = series.unflushed();
                let windows = if unflushed.is_empty() {
                    series.windows.summaries(now_s, &mut scratch)
                } else {
                    WINDOWS_S.map(|w| series.summary(&unflushed, now_s, w, &mut scratch))
                };
                out.push(SeriesWindows {
                    metric: metric.key.clone(),
                    name: metric.name.clone(),
                    labels: split_labels(&series.key),
                    windows,
                });
            }
        }
        out
    }

    /// The window of `window_s` seconds ending at `now_ms` of the active metric `name`: every
    /// series' summary and the exact merge of all series (histograms merged, not maxed).
    /// `None` when no active metric has that name. Used by alert evaluation, whose windows
    /// need not be the four standard ones (any length up to 60 s, whole minutes up to 1 h).
    pub fn window(&self, now_ms: i64, name: &str, window_s: i64) -> Option<MetricWindow> {
        let metric = self.metrics.iter().find(|m| !m.retired && m.name == name)?;
        let now_s = now_ms.div_euclid(1000);
        let mut scratch = metric.template.clone();
        let mut merged_hist = metric.template.clone();
        let mut merged_stats = Stats::EMPTY;
        let mut covered_s = 1;
        let series = metric
            .series
            .iter()
            .map(|series| {
                let unflushed = series.unflushed();
                let summary = series.summary(&unflushed, now_s, window_s, &mut scratch);
                // The merge covers the longest-lived series' span.
                covered_s = covered_s.max(series.accumulate(
                    &unflushed,
                    now_s,
                    window_s,
                    &mut merged_stats,
                    &mut merged_hist,
                ));
                (split_labels(&series.key), summary)
            })
            .collect();
        Some(MetricWindow {
            series,
            merged: WindowSummary::of(window_s, covered_s, &merged_stats, &merged_hist),
        })
    }

    /// Per-metric counters (late, future, overflow, bad records with examples), by name.
    pub fn counters(&self) -> Vec<(MetricKey, String, MetricCounters)> {
        self.metrics
            .iter()
            .map(|m| (m.key.clone(), m.name.clone(), m.counters.clone()))
            .collect()
    }

    /// Number of live series over all metrics.
    pub fn series_count(&self) -> usize {
        self.metrics.iter().map(|m| m.series.len()).sum()
    }

    /// Approximate heap bytes of all series (windows, pending deltas).
    pub fn heap_bytes(&self) -> usize {
        self.metrics
            .iter()
            .flat_map(|m| &m.series)
            .map(|s| {
                s.windows.heap_bytes()
                    + s.key.capacity()
                    + s.spare.capacity() * 4
                    + s.pending
                        .iter()
                        .map(|p| p.counts.capacity() * 4 + 64)
                        .sum::<usize>()
            })
            .sum()
    }

    /// Field discovery over the stream's recent records (JSON records only).
    pub fn discover_fields(&self, stream: &str) -> Option<BTreeMap<String, fields::FieldStats>> {
        let state = self.streams.get(&StreamName::new(stream))?;
        let mut out = BTreeMap::new();
        for (_, data) in &state.sample {
            if let Ok(doc) = serde_json::from_slice::<serde_json::Value>(data) {
                fields::discover(&doc, &mut out);
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        engine::counters::BadReason,
        kinesis::{ConsumedRecord, RecordBatch, SequenceNumber},
        metric::{demo_definitions, histogram, key::OTHER_SERIES},
    };
    use hdrhistogram::Histogram;
    use std::collections::HashSet;

    const T0: i64 = 1_700_000_000_000;

    fn record(data: &str, arrival_ms: i64) -> ConsumedRecord {
        ConsumedRecord {
            sequence_number: SequenceNumber::parse("1").expect("digits"),
            sub_sequence: None,
            partition_key: "k".into(),
            data: Bytes::from(data.to_string()),
            arrival_time_ms: arrival_ms,
            explicit_hash_key: None,
        }
    }

    fn batch(stream: &str, records: Vec<ConsumedRecord>, position: u32) -> RecordBatch<u32> {
        RecordBatch {
            stream: stream.into(),
            shard: "shardId-0".into(),
            records,
            millis_behind_latest: Some(5),
            position,
        }
    }

    fn engine_with(defs: &[crate::metric::MetricDefinition], config: EngineConfig) -> Engine<u32> {
        let mut engine = Engine::new(config);
        engine.set_definitions(
            defs.iter()
                .enumerate()
                .map(|(i, d)| {
                    (
                        i as i64 + 1,
                        d.compile(None, &HashSet::new()).expect("valid"),
                    )
                })
                .collect(),
        );
        engine
    }

    fn latency_def() -> crate::metric::MetricDefinition {
        demo_definitions().remove(0)
    }

    fn deltas_of(flush: &Flush<u32>, key: &MetricKey) -> Vec<BucketDelta> {
        flush
            .deltas
            .iter()
            .filter(|d| &d.metric == key)
            .cloned()
            .collect()
    }

    fn click(region: &str, latency: u64, event_ms: i64) -> String {
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(event_ms as i128 * 1_000_000)
            .expect("in range")
            .format(&time::format_description::well_known::Rfc3339)
            .expect("formats");
        format!(
            r#"{{"region":"{region}","path":"/a","status":200,"latency_ms":{latency},"bytes":10,"event_time":"{t}"}}"#
        )
    }

    #[test]
    fn extracts_groups_and_hands_out_positions() {
        let mut e = engine_with(&[latency_def()], EngineConfig::default());
        e.ingest(
            &batch(
                "clickstream",
                vec![
                    record(&click("eu", 10, T0), T0 + 5),
                    record(&click("eu", 30, T0 + 10), T0 + 20),
                    record(&click("us", 7, T0 + 1500), T0 + 1600),
                ],
                7,
            ),
            T0,
        );
        let flush = e.take_flush();
        assert_eq!(flush.positions.len(), 1);
        assert_eq!(flush.positions[0].2, 7);
        let mut d = deltas_of(&flush, &MetricKey::Defined(1));
        d.sort_by_key(BucketDelta::labels);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].labels(), vec!["eu", "/a"]);
        assert_eq!(d[0].second, T0 / 1000);
        assert_eq!(d[0].stats.count, 2);
        assert_eq!(d[0].stats.sum, 40.0);
        assert_eq!(d[0].stats.min, 10.0);
        assert_eq!(d[0].stats.max, 30.0);
        assert_eq!(d[1].second, T0 / 1000 + 1);
        let records = deltas_of(
            &flush,
            &MetricKey::Builtin {
                stream: "clickstream".into(),
                kind: Builtin::Records,
            },
        );
        assert_eq!(records.iter().map(|d| d.stats.count).sum::<u64>(), 3);
        // Nothing new: the next flush is empty, and windows saw the data.
        assert!(e.take_flush().is_empty());
        let w = e.windows(T0 + 2000);
        let eu = w
            .iter()
            .find(|s| s.metric == MetricKey::Defined(1) && s.labels[0] == "eu")
            .expect("eu series");
        assert_eq!(eu.windows[0].summary.count, 2);
    }

    #[test]
    fn pending_counts_record_as_the_histogram_would() {
        let def: crate::metric::MetricDefinition = serde_json::from_str(
            r#"{"name":"v","stream":"s","value":"/v","histogram":{"lowest":1,"highest":1000,"significant_figures":2}}"#,
        )
        .expect("json");
        let mut e = engine_with(&[def], EngineConfig::default());
        let values: [f64; 10] = [
            -5.0, 0.0, 0.4, 1.0, 999.0, 1000.0, 1001.0, 1023.0, 5000.0, 1e30,
        ];
        let records = values
            .iter()
            .map(|v| record(&format!(r#"{{"v":{v}}}"#), T0))
            .collect();
        e.ingest(&batch("s", records, 1), T0);
        let flush = e.take_flush();
        let d = deltas_of(&flush, &MetricKey::Defined(1));
        let mut want = Histogram::<u64>::new_with_bounds(1, 1000, 2).unwrap();
        for v in values {
            want.saturating_record(v.round() as u64);
        }
        let mut want_counts = Vec::new();
        histogram::sparse_of(&want, &mut want_counts);
        assert_eq!(d[0].counts, want_counts);
        assert_eq!(d[0].bounds, Some(HistBounds::of(&want)));
        assert_eq!(d[0].stats.count, values.len() as u64);
        // The windows saw the same counts.
        let w = e.window(T0, "v", 60).expect("metric");
        assert_eq!(w.merged.summary.p99, Some(want.value_at_quantile(0.99)));
    }

    #[test]
    fn a_reused_counts_array_starts_from_zero() {
        let def: crate::metric::MetricDefinition = serde_json::from_str(
            r#"{"name":"v","stream":"s","value":"/v","histogram":{"lowest":1,"highest":1000,"significant_figures":2}}"#,
        )
        .expect("json");
        let mut e = engine_with(&[def], EngineConfig::default());
        let sparse_of = |values: &[u64]| {
            let mut want = Histogram::<u64>::new_with_bounds(1, 1000, 2).unwrap();
            for &v in values {
                want.record(v).unwrap();
            }
            let mut counts = Vec::new();
            histogram::sparse_of(&want, &mut counts);
            counts
        };
        // More than SMALL_BUCKETS distinct buckets take a dense array (the second reuses the
        // first's, zeroed); a few values stay inline; then dense again.
        let dense_a: &[u64] = &[5, 700, 700, 10, 20, 30, 40, 50, 60, 70];
        let dense_b: &[u64] = &[6, 6, 999, 11, 21, 31, 41, 51, 61, 71, 81];
        let small: &[u64] = &[9, 9, 300];
        for (i, values) in [dense_a, dense_b, small, dense_a].iter().enumerate() {
            let at = T0 + 1000 * i as i64;
            let records = values
                .iter()
                .map(|v| record(&format!(r#"{{"v":{v}}}"#), at))
                .collect();
            e.ingest(&batch("s", records, i as u32), at);
            let flush = e.take_flush();
            let d = deltas_of(&flush, &MetricKey::Defined(1));
            assert_eq!(d.len(), 1);
            assert_eq!(d[0].counts, sparse_of(values), "flush {i}");
        }
    }

    #[test]
    fn late_and_future_records_are_counted_not_aggregated() {
        let mut e = engine_with(&[latency_def()], EngineConfig::default());
        e.ingest(
            &batch(
                "clickstream",
                vec![
                    record(&click("eu", 10, T0 - 61_000), T0),
                    record(&click("eu", 10, T0 - 59_000), T0),
                    record(&click("eu", 10, T0 + 61_000), T0),
                ],
                1,
            ),
            T0,
        );
        let flush = e.take_flush();
        let d = deltas_of(&flush, &MetricKey::Defined(1));
        assert_eq!(d.iter().map(|d| d.stats.count).sum::<u64>(), 1);
        let counters = e.counters();
        let c = &counters
            .iter()
            .find(|c| c.0 == MetricKey::Defined(1))
            .expect("metric")
            .2;
        assert_eq!((c.late_records, c.future_records), (1, 1));
        let late = deltas_of(
            &flush,
            &MetricKey::Builtin {
                stream: "clickstream".into(),
                kind: Builtin::LateRecords,
            },
        );
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].labels(), vec!["request_latency"]);
    }

    #[test]
    fn cardinality_guard_sends_new_values_to_other() {
        let config = EngineConfig {
            max_series_per_metric: 3,
            ..EngineConfig::default()
        };
        let mut def = latency_def();
        def.dimensions = vec!["/region".into()];
        let mut e = engine_with(&[def], config);
        let records = (0..10)
            .map(|i| record(&click(&format!("r{i}"), 5, T0), T0))
            .collect();
        e.ingest(&batch("clickstream", records, 1), T0);
        let flush = e.take_flush();
        let d = deltas_of(&flush, &MetricKey::Defined(1));
        assert_eq!(d.len(), 4);
        let other = d
            .iter()
            .find(|d| d.labels() == vec![OTHER_SERIES])
            .expect("other");
        assert_eq!(other.stats.count, 7);
        let counters = e.counters();
        let c = &counters
            .iter()
            .find(|c| c.0 == MetricKey::Defined(1))
            .expect("metric")
            .2;
        assert_eq!(c.overflowed_records, 7);
    }

    #[test]
    fn bad_records_are_counted_with_bounded_examples_and_processing_goes_on() {
        let config = EngineConfig {
            bad_examples: 2,
            ..EngineConfig::default()
        };
        let mut e = engine_with(&[latency_def()], config);
        let mut records = vec![
            record("{not json", T0),
            record("{also not", T0),
            record("{still not", T0),
            record(
                r#"{"region":"eu","path":"/a","latency_ms":"fast","event_time":"2023-11-14T22:13:20Z"}"#,
                T0,
            ),
            record(&click("eu", 10, T0), T0),
        ];
        records.push(ConsumedRecord {
            data: Bytes::from_static(&[0xff, 0xfe]),
            ..record("", T0)
        });
        e.ingest(&batch("clickstream", records, 1), T0);
        let counters = e.counters();
        let c = &counters
            .iter()
            .find(|c| c.0 == MetricKey::Defined(1))
            .expect("metric")
            .2;
        assert_eq!(c.bad[&BadReason::InvalidJson].count, 3);
        assert_eq!(
            c.bad[&BadReason::InvalidJson].examples,
            vec!["{also not", "{still not"]
        );
        assert_eq!(c.bad[&BadReason::ValueNotANumber].count, 1);
        assert_eq!(c.bad[&BadReason::NotUtf8].count, 1);
        let flush = e.take_flush();
        assert_eq!(deltas_of(&flush, &MetricKey::Defined(1)).len(), 1);
        let errors = deltas_of(
            &flush,
            &MetricKey::Builtin {
                stream: "clickstream".into(),
                kind: Builtin::ParseErrors,
            },
        );
        assert!(
            errors.iter().any(
                |d| d.labels() == vec!["request_latency", "invalid_json"] && d.stats.count == 3
            )
        );
    }

    #[test]
    fn logfmt_and_regex_formats_extract() {
        let logfmt: crate::metric::MetricDefinition = serde_json::from_str(
            r#"{"name":"dur","stream":"s","format":"logfmt","value":"/dur","filter":"/level = \"error\"","dimensions":["/svc"]}"#,
        )
        .expect("json");
        let regex: crate::metric::MetricDefinition = serde_json::from_str(
            r#"{"name":"rx","stream":"s","format":{"regex":"took (?P<ms>\\d+)ms"},"value":"/ms"}"#,
        )
        .expect("json");
        let mut e = engine_with(&[logfmt, regex], EngineConfig::default());
        e.ingest(
            &batch(
                "s",
                vec![
                    record("level=error svc=api dur=12 msg=\"took 5ms\"", T0),
                    record("level=info svc=api dur=99", T0),
                    record("nothing here", T0),
                ],
                1,
            ),
            T0,
        );
        let flush = e.take_flush();
        let d = deltas_of(&flush, &MetricKey::Defined(1));
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].stats.count, d[0].stats.sum), (1, 12.0));
        let r = deltas_of(&flush, &MetricKey::Defined(2));
        assert_eq!((r[0].stats.count, r[0].stats.sum), (1, 5.0));
        let counters = e.counters();
        let c = &counters
            .iter()
            .find(|c| c.0 == MetricKey::Defined(2))
            .expect("metric")
            .2;
        assert_eq!(c.bad[&BadReason::RegexNoMatch].count, 2);
    }

    #[test]
    fn nested_paths_decode_the_full_document() {
        let flat: crate::metric::MetricDefinition =
            serde_json::from_str(r#"{"name":"flat","stream":"n","value":"/v"}"#).expect("json");
        let deep: crate::metric::MetricDefinition = serde_json::from_str(
            r#"{"name":"deep","stream":"n","value":"/m/v","dimensions":["/tags/0"]}"#,
        )
        .expect("json");
        let mut e = engine_with(&[flat, deep], EngineConfig::default());
        e.ingest(
            &batch(
                "n",
                vec![record(r#"{"v":3,"m":{"v":4},"tags":["x"]}"#, T0)],
                1,
            ),
            T0,
        );
        let flush = e.take_flush();
        assert_eq!(deltas_of(&flush, &MetricKey::Defined(1))[0].stats.sum, 3.0);
        let d = deltas_of(&flush, &MetricKey::Defined(2));
        assert_eq!(
            (d[0].stats.sum, d[0].labels()),
            (4.0, vec!["x".to_string()])
        );
    }

    #[test]
    fn a_failed_flush_is_restored_and_not_double_windowed() {
        let mut e = engine_with(&[latency_def()], EngineConfig::default());
        e.ingest(
            &batch("clickstream", vec![record(&click("eu", 10, T0), T0)], 1),
            T0,
        );
        let flush = e.take_flush();
        e.ingest(
            &batch("clickstream", vec![record(&click("eu", 20, T0), T0)], 2),
            T0,
        );
        e.restore(flush);
        let again = e.take_flush();
        assert_eq!(again.positions[0].2, 2, "the newer position wins");
        let d = deltas_of(&again, &MetricKey::Defined(1));
        assert_eq!(d.iter().map(|d| d.stats.count).sum::<u64>(), 2);
        let w = e.windows(T0);
        let eu = w
            .iter()
            .find(|s| s.metric == MetricKey::Defined(1))
            .expect("series");
        assert_eq!(eu.windows[0].summary.count, 2);
    }

    #[test]
    fn a_failed_flush_of_a_metric_retired_meanwhile_is_restored() {
        let mut e = engine_with(&[latency_def()], EngineConfig::default());
        e.ingest(
            &batch("clickstream", vec![record(&click("eu", 10, T0), T0)], 1),
            T0,
        );
        let flush = e.take_flush();
        // Deleted while its last deltas are being written: nothing pending, so it goes.
        e.set_definitions(Vec::new());
        e.restore(flush);
        let again = e.take_flush();
        assert_eq!(again.positions[0].2, 1);
        let d = deltas_of(&again, &MetricKey::Defined(1));
        assert_eq!(d.len(), 1, "the restored delta is written again");
        assert_eq!(
            (d[0].stats.count, d[0].labels()),
            (1, vec!["eu".to_string(), "/a".to_string()])
        );
        assert!(!d[0].counts.is_empty());
        // Once written, the retired metric is dropped again.
        assert!(deltas_of(&e.take_flush(), &MetricKey::Defined(1)).is_empty());
        assert!(e.window(T0, "request_latency", 60).is_none());
    }

    #[test]
    fn live_windows_include_records_not_yet_flushed_exactly_once() {
        let mut e = engine_with(&[latency_def()], EngineConfig::default());
        let eu = |e: &Engine<u32>, now_ms: i64| {
            e.windows(now_ms)
                .into_iter()
                .find(|s| s.metric == MetricKey::Defined(1))
                .expect("series")
                .windows
        };
        e.ingest(
            &batch("clickstream", vec![record(&click("eu", 10, T0), T0)], 1),
            T0,
        );
        // Before any flush: the 1-min and 1-h windows see it, and its rate covers 1 s of life.
        let w = eu(&e, T0);
        assert_eq!((w[0].summary.count, w[3].summary.count), (1, 1));
        assert_eq!(w[0].summary.rate_per_s, 1.0);
        assert_eq!(w[0].summary.p50, Some(10));
        let flush = e.take_flush();
        e.ingest(
            &batch(
                "clickstream",
                vec![record(&click("eu", 30, T0 + 1000), T0 + 1000)],
                2,
            ),
            T0 + 1000,
        );
        let w = eu(&e, T0 + 1000);
        assert_eq!(
            w[0].summary.count, 2,
            "one flushed + one pending, each once"
        );
        assert_eq!(w[0].summary.max, Some(30.0));
        // A failed flush put back is already in the windows: not counted twice.
        e.restore(flush);
        assert_eq!(eu(&e, T0 + 1000)[0].summary.count, 2);
        // The engine's merged window for alerts sees the pending record too.
        let merged = e
            .window(T0 + 1000, "request_latency", 60)
            .expect("metric")
            .merged;
        assert_eq!(merged.summary.count, 2);
        e.take_flush();
        assert_eq!(eu(&e, T0 + 1000)[0].summary.count, 2);
        // Out of the 1-minute window 61 s later, still in the 1-hour one.
        let w = eu(&e, T0 + 61_000);
        assert_eq!((w[0].summary.count, w[3].summary.count), (0, 2));
    }

    #[test]
    fn a_flush_before_a_cutoff_takes_complete_seconds_and_their_positions_only() {
        let mut e = engine_with(&[latency_def()], EngineConfig::default());
        let s0 = T0.div_euclid(1000);
        let at = |second: i64, ms: i64| second * 1000 + ms;
        // Shard 1: batch 1 ends second s0, batch 2 reaches into s0 + 1 (batch 3, a late record
        // for s0, is coalesced into it), batch 4, ingested in s0 + 2, has a record 4 s later
        // still (event time in the future).
        let b =
            |records: Vec<ConsumedRecord>, position: u32| batch("clickstream", records, position);
        e.ingest(
            &b(vec![record(&click("eu", 10, at(s0, 900)), at(s0, 900))], 1),
            at(s0, 920),
        );
        e.ingest(
            &b(
                vec![
                    record(&click("eu", 20, at(s0, 950)), at(s0, 950)),
                    record(&click("eu", 30, at(s0 + 1, 100)), at(s0 + 1, 100)),
                ],
                2,
            ),
            at(s0 + 1, 120),
        );
        e.ingest(
            &b(
                vec![record(&click("eu", 40, at(s0, 990)), at(s0 + 1, 200))],
                3,
            ),
            at(s0 + 1, 220),
        );
        e.ingest(
            &b(
                vec![record(&click("eu", 50, at(s0 + 6, 0)), at(s0 + 1, 300))],
                4,
            ),
            at(s0 + 2, 10),
        );

        // Flushed during s0 + 1: batch 1 only, with its position. Batches 2 and 3 reach into
        // s0 + 1: none of their deltas goes yet, not even for s0 (after a crash they are read
        // again).
        let flush = e.take_flush_before(s0 + 1);
        let d = deltas_of(&flush, &MetricKey::Defined(1));
        assert_eq!(
            d.iter()
                .map(|d| (d.second, d.stats.count))
                .collect::<Vec<_>>(),
            [(s0, 1)]
        );
        assert_eq!(flush.positions.iter().map(|p| p.2).collect::<Vec<_>>(), [1]);
        assert!(flush.deltas.iter().all(|d| d.second == s0));
        // Live windows count everything once, flushed or not.
        let live = |e: &Engine<u32>| {
            e.window(at(s0 + 6, 0), "request_latency", 60)
                .expect("metric")
                .merged
                .summary
                .count
        };
        assert_eq!(live(&e), 5);

        // A failed write is put back and retried by the next flush whatever its cutoff; the
        // position put back is the newest the next flush may take.
        e.restore(flush);
        assert_eq!(live(&e), 5);
        let flush = e.take_flush_before(s0 + 1);
        assert_eq!(deltas_of(&flush, &MetricKey::Defined(1)).len(), 1);
        assert_eq!(flush.positions.iter().map(|p| p.2).collect::<Vec<_>>(), [1]);

        // Once s0 + 1 is complete: batches 2 and 3 (coalesced), not batch 4; their records for
        // s0 go into the row already written.
        let flush = e.take_flush_before(s0 + 2);
        let d = deltas_of(&flush, &MetricKey::Defined(1));
        assert_eq!(
            d.iter()
                .map(|d| (d.second, d.stats.count))
                .collect::<Vec<_>>(),
            [(s0, 2), (s0 + 1, 1)]
        );
        assert_eq!(flush.positions.iter().map(|p| p.2).collect::<Vec<_>>(), [3]);
        // The future record goes with its batch once s0 + 2 is complete: it does not hold its
        // shard's position (and every later batch's deltas) until its own second.
        let flush = e.take_flush_before(s0 + 3);
        let d = deltas_of(&flush, &MetricKey::Defined(1));
        assert_eq!(
            d.iter()
                .map(|d| (d.second, d.stats.count))
                .collect::<Vec<_>>(),
            [(s0 + 6, 1)]
        );
        assert_eq!(flush.positions.iter().map(|p| p.2).collect::<Vec<_>>(), [4]);
        assert!(e.take_flush().is_empty());
        assert_eq!(live(&e), 5);
    }

    #[test]
    fn retired_definitions_flush_their_deltas_then_go() {
        let mut e = engine_with(&[latency_def()], EngineConfig::default());
        e.ingest(
            &batch("clickstream", vec![record(&click("eu", 10, T0), T0)], 1),
            T0,
        );
        e.set_definitions(Vec::new());
        e.ingest(
            &batch("clickstream", vec![record(&click("eu", 10, T0), T0)], 2),
            T0,
        );
        let flush = e.take_flush();
        assert_eq!(deltas_of(&flush, &MetricKey::Defined(1))[0].stats.count, 1);
        assert!(!e.counters().iter().any(|c| c.0 == MetricKey::Defined(1)));
    }
}
