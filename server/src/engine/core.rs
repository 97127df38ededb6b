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

pub use super::series::MergedWindows;

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

/// What a live push reads of the engine's windows: every series, and every metric merged.
#[derive(Debug, Clone, Default)]
pub struct LiveWindows {
    pub series: Vec<SeriesWindows>,
    /// One per metric with at least one series.
    pub metrics: Vec<MergedWindows>,
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
        self.take_before(cutoff_s, true)
    }

    /// [`Engine::take_flush_before`] without adding the deltas to this engine's windows: a
    /// partition's flush, whose deltas the coordinator adds to the windows it keeps
    /// ([`super::partition`]).
    pub fn take_pending_before(&mut self, cutoff_s: i64) -> Flush<P> {
        self.take_before(cutoff_s, false)
    }

    fn take_before(&mut self, cutoff_s: i64, window: bool) -> Flush<P> {
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
                    if window && !pending.windowed {
                        series
                            .windows
                            .add_sparse(pending.second, &pending.stats, &counts);
                        metric
                            .merged
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

    /// Rolling window summaries of every live series at `now_ms`, and of every metric with all
    /// its series merged. A metric's merge reads its merged windows (fed by every flush) plus
    /// its series' unflushed seconds: its cost per push does not grow with its series' windows.
    pub fn windows(&self, now_ms: i64) -> LiveWindows {
        let now_s = now_ms.div_euclid(1000);
        let mut out = LiveWindows::default();
        for metric in &self.metrics {
            if metric.series.is_empty() {
                continue;
            }
            let mut scratch = metric.template.clone();
            let mut unflushed_all = Vec::new();
            for series in &metric.series {
                let unflushed = series.unflushed();
                let windows = if unflushed.is_empty() {
                    series.windows.summaries(now_s, &mut scratch)
                } else {
                    WINDOWS_S.map(|w| series.summary(&unflushed, now_s, w, &mut scratch))
                };
                out.series.push(SeriesWindows {
                    metric: metric.key.clone(),
                    name: metric.name.clone(),
                    labels: split_labels(&series.key),
                    windows,
                });
                unflushed_all.extend(unflushed);
            }
            out.metrics
                .push(metric.merged_windows(&unflushed_all, now_s, &mut scratch));
        }
        out
    }

    /// Only the merged windows of every metric with series, as [`Engine::windows`] has them
    /// (for the benchmark of their cost: the unflushed seconds are read again here).
    pub fn merged_windows(&self, now_ms: i64) -> Vec<MergedWindows> {
        let now_s = now_ms.div_euclid(1000);
        self.metrics
            .iter()
            .filter(|m| !m.series.is_empty())
            .map(|metric| {
                let unflushed: Vec<_> = metric.series.iter().flat_map(|s| s.unflushed()).collect();
                metric.merged_windows(&unflushed, now_s, &mut metric.template.clone())
            })
            .collect()
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

    /// Approximate heap bytes of all series (windows, pending deltas) and of the metrics'
    /// merged windows.
    pub fn heap_bytes(&self) -> usize {
        self.merged_heap_bytes()
            + self
                .metrics
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
                .sum::<usize>()
    }

    /// Approximate heap bytes of the metrics' merged windows alone.
    pub fn merged_heap_bytes(&self) -> usize {
        self.metrics.iter().map(|m| m.merged.heap_bytes()).sum()
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
#[path = "core_tests.rs"]
mod tests;
