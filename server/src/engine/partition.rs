//! The engine over several cores: partitions by shard, one coordinator that keeps the windows.
//!
//! Each shard's batches go to one partition, an [`Engine`] of its own that ingests them
//! (decode, extract, filter, pending deltas, the shard's position queue): ingest, the cost that
//! grows with the records, runs on as many cores as there are partitions. A series may get
//! records from several shards, so several partitions may hold a pending delta of it for the
//! same second: they are partial aggregates, and merging them (stats add up, histogram counts
//! add up) is exact, so a hot series scales too.
//!
//! The [`Coordinator`] owns what is not per shard: which partition a shard goes to (the one with
//! the fewest shards when the shard is first seen), the streams, and the rolling windows of
//! every series and metric. Each partition keeps its shards' recent records; field discovery
//! and preview read them merged by arrival time ([`Coordinator::set_samples`]), so the
//! coordinator's work per batch stays a lookup and a channel send. A flush is an epoch:
//! every partition takes its pending deltas and positions with the same cutoff
//! ([`Engine::take_pending_before`]), having ingested every batch routed to it before the
//! flush was asked for; the coordinator merges the deltas by (metric, series, second), adds them
//! to its windows and hands one [`Flush`] to the writer. A shard's position and its batches'
//! deltas are in the same partition, and a partition releases a position only with all of its
//! deltas, so the merged flush is exactly-once as the single engine's. A failed flush is kept
//! by the coordinator and merged into the next one (its positions are older than any taken
//! since, which win).
//!
//! Live reads merge the coordinator's windows (every flushed second) with the partitions'
//! [`PendingView`]s (their unflushed seconds, and series never flushed): the same figures as
//! one engine's. [`Partitioned`] runs the coordinator and its partitions on one thread, for
//! tests that compare it with one engine; the shell runs each partition on its own thread.

use super::{
    core::{Engine, EngineConfig, LiveWindows, MetricWindow, SeriesWindows},
    counters::MetricCounters,
    series::{MetricState, Unflushed, accumulate_live},
    window::{WINDOWS_S, WindowSummary, Windows},
};
use crate::{
    kinesis::{RecordBatch, ShardId, StreamName},
    metric::{
        BucketDelta, CompiledMetric, Flush, MetricKey, Stats,
        key::{LABEL_SEPARATOR, OTHER_SERIES, split_labels},
    },
};
use bytes::Bytes;
use std::collections::{HashMap, hash_map::Entry};

/// One partition's seconds not yet flushed, per metric and series key, and its series never
/// flushed (with no seconds when they have none): what a live read adds to the coordinator's
/// windows.
#[derive(Debug, Default)]
pub struct PendingView {
    metrics: Vec<(MetricKey, Vec<PendingOf>)>,
}

/// One series' key and its seconds not yet flushed.
type PendingOf = (String, Vec<Unflushed>);

/// Every partition's [`PendingView`] by metric and series.
#[derive(Default)]
pub struct PendingIndex {
    metrics: HashMap<MetricKey, PendingSeries>,
}

/// One metric's pending series of all partitions: in the order first seen, by series key.
#[derive(Default)]
struct PendingSeries {
    order: Vec<String>,
    seconds: HashMap<String, Vec<Unflushed>>,
}

impl PendingIndex {
    /// Indexes the partitions' views, in partition order.
    pub fn of(parts: Vec<PendingView>) -> Self {
        let mut metrics: HashMap<MetricKey, PendingSeries> = HashMap::new();
        for part in parts {
            for (metric, series) in part.metrics {
                let entry = metrics.entry(metric).or_default();
                for (key, unflushed) in series {
                    match entry.seconds.entry(key) {
                        Entry::Occupied(mut seen) => seen.get_mut().extend(unflushed),
                        Entry::Vacant(new) => {
                            entry.order.push(new.key().clone());
                            new.insert(unflushed);
                        }
                    }
                }
            }
        }
        Self { metrics }
    }
}

impl<P: Clone> Engine<P> {
    /// This partition's recent records of `stream` with their arrival times, oldest first.
    pub fn sample(&self, stream: &StreamName) -> Vec<(i64, Bytes)> {
        self.streams
            .get(stream)
            .map(|s| s.sample.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// This partition's unflushed seconds and never flushed series (see [`PendingView`]).
    pub fn pending_view(&self) -> PendingView {
        let metrics = self
            .metrics
            .iter()
            .filter_map(|metric| {
                let series: Vec<_> = metric
                    .series
                    .iter()
                    .filter(|s| s.json.is_none() || s.pending.iter().any(|p| !p.windowed))
                    .map(|s| (s.key.clone(), s.unflushed()))
                    .collect();
                (!series.is_empty()).then(|| (metric.key.clone(), series))
            })
            .collect();
        PendingView { metrics }
    }

    /// Adds partitions' flushed deltas to this engine's windows (the coordinator's), creating
    /// the series it has not seen yet, and applies the cardinality guard over all partitions
    /// (each applies it to its own series too): a delta of a series new to this engine, once
    /// its metric has `max_series_per_metric` series, is renamed to the metric's `__other__`
    /// series and its values are counted as overflowed. Returns whether any delta was renamed
    /// (the deltas then need merging). A delta of a metric this engine no longer has (retired
    /// since) is only stored.
    fn absorb(&mut self, deltas: &mut [BucketDelta]) -> bool {
        let max = self.config.max_series_per_metric;
        let mut folded = false;
        let mut last: Option<usize> = None;
        for delta in deltas.iter_mut() {
            let at = match last.filter(|&i| self.metrics[i].key == delta.metric) {
                Some(i) => i,
                None => match self.metrics.iter().position(|m| m.key == delta.metric) {
                    Some(i) => i,
                    None => continue,
                },
            };
            last = Some(at);
            let metric = &mut self.metrics[at];
            let index = match metric.by_json.get(&delta.series) {
                Some(&i) => i as usize,
                None => {
                    let i = view_series(metric, &self.hasher, &delta.labels(), max);
                    metric.by_json.insert(delta.series.clone(), i as u32);
                    i
                }
            };
            let series = &mut metric.series[index];
            let json = series.json.get_or_insert_with(|| {
                serde_json::to_string(&split_labels(&series.key))
                    .expect("labels always serialise")
                    .into()
            });
            if **json != *delta.series {
                // Beyond the limit: stored and shown as `__other__`.
                metric.counters.overflowed_records += delta.stats.count;
                delta.series = json.clone();
                folded = true;
            }
            series
                .windows
                .add_sparse(delta.second, &delta.stats, &delta.counts);
            metric
                .merged
                .add_sparse(delta.second, &delta.stats, &delta.counts);
        }
        folded
    }

    /// [`Engine::windows`] of a coordinator: its windows plus the partitions' unflushed
    /// seconds and never flushed series. Series it has windows of come first, in the order it
    /// first flushed them, then the others in the order the partitions list them.
    pub fn windows_with(&self, now_ms: i64, mut pending: PendingIndex) -> LiveWindows {
        let now_s = now_ms.div_euclid(1000);
        let empty = Windows::new();
        let mut out = LiveWindows::default();
        for metric in &self.metrics {
            let mut extra = pending.metrics.remove(&metric.key).unwrap_or_default();
            if metric.series.is_empty() && extra.order.is_empty() {
                continue;
            }
            let mut scratch = metric.template.clone();
            let mut unflushed_all = Vec::new();
            let known = metric.series.iter().map(|s| (s.key.clone(), &s.windows));
            let others: Vec<_> = extra
                .order
                .iter()
                .filter(|key| metric.series_by_key(&self.hasher, key).is_none())
                .map(|key| (key.clone(), &empty))
                .collect();
            for (key, windows) in known.chain(others) {
                let unflushed = extra.seconds.remove(&key).unwrap_or_default();
                let summaries = if unflushed.is_empty() {
                    windows.summaries(now_s, &mut scratch)
                } else {
                    WINDOWS_S.map(|w| {
                        WindowSummary::accumulated(w, &mut scratch, |stats, hist| {
                            accumulate_live(windows, &unflushed, now_s, w, stats, hist)
                        })
                    })
                };
                out.series.push(SeriesWindows {
                    metric: metric.key.clone(),
                    name: metric.name.clone(),
                    labels: split_labels(&key),
                    windows: summaries,
                });
                unflushed_all.extend(unflushed);
            }
            out.metrics
                .push(metric.merged_windows(&unflushed_all, now_s, &mut scratch));
        }
        out
    }

    /// [`Engine::window`] of a coordinator: its windows plus the partitions' unflushed seconds
    /// and never flushed series.
    pub fn window_with(
        &self,
        now_ms: i64,
        name: &str,
        window_s: i64,
        pending: &PendingIndex,
    ) -> Option<MetricWindow> {
        let metric = self.metrics.iter().find(|m| !m.retired && m.name == name)?;
        let now_s = now_ms.div_euclid(1000);
        let extra = pending.metrics.get(&metric.key);
        let empty = Windows::new();
        let mut scratch = metric.template.clone();
        let mut merged_hist = metric.template.clone();
        let mut merged_stats = Stats::EMPTY;
        let mut covered_s = 1;
        let known = metric.series.iter().map(|s| (s.key.as_str(), &s.windows));
        let others = extra
            .into_iter()
            .flat_map(|e| &e.order)
            .filter(|key| metric.series_by_key(&self.hasher, key).is_none())
            .map(|key| (key.as_str(), &empty));
        let series = known
            .chain(others)
            .map(|(key, windows)| {
                let unflushed = extra
                    .and_then(|e| e.seconds.get(key))
                    .map_or(&[][..], Vec::as_slice);
                let summary = WindowSummary::accumulated(window_s, &mut scratch, |stats, hist| {
                    accumulate_live(windows, unflushed, now_s, window_s, stats, hist)
                });
                covered_s = covered_s.max(accumulate_live(
                    windows,
                    unflushed,
                    now_s,
                    window_s,
                    &mut merged_stats,
                    &mut merged_hist,
                ));
                (split_labels(key), summary)
            })
            .collect();
        Some(MetricWindow {
            series,
            merged: WindowSummary::of(window_s, covered_s, &merged_stats, &merged_hist),
        })
    }
}

/// The coordinator's series of `labels` (first seen in a flush): its own, or a new one while
/// the metric has fewer than `max` series (a partition's `__other__` always is one), or else
/// the metric's `__other__`.
fn view_series(
    metric: &mut MetricState,
    hasher: &foldhash::fast::RandomState,
    labels: &[String],
    max: usize,
) -> usize {
    let separator = LABEL_SEPARATOR.to_string();
    let key = labels.join(&separator);
    if let Some(i) = metric.series_by_key(hasher, &key) {
        return i;
    }
    let is_other =
        |key: &str| !labels.is_empty() && key.split(LABEL_SEPARATOR).all(|l| l == OTHER_SERIES);
    let known = metric.series.len() - usize::from(metric.other.is_some());
    let key = if is_other(&key) || known < max {
        key
    } else {
        vec![OTHER_SERIES; labels.len()].join(&separator)
    };
    let i = match metric.series_by_key(hasher, &key) {
        Some(i) => i,
        None => metric.series_index(hasher, &key, usize::MAX),
    };
    if is_other(&key) {
        metric.other = Some(i as u32);
    }
    i
}

/// Sums the partitions' counters into each metric's, in the coordinator's metric order; bad
/// record examples are the last `keep` of all partitions' (partition order).
fn merge_counters(into: &mut MetricCounters, other: MetricCounters, keep: usize) {
    into.late_records += other.late_records;
    into.future_records += other.future_records;
    into.overflowed_records += other.overflowed_records;
    for (reason, bad) in other.bad {
        let entry = into.bad.entry(reason).or_default();
        entry.count += bad.count;
        entry.examples.extend(bad.examples);
        while entry.examples.len() > keep {
            entry.examples.pop_front();
        }
    }
}

/// Merges deltas of the same (metric, series, second) into one: stats and histogram counts add
/// up, exactly. The first delta of each keeps its place.
///
/// Runs on every flush of several partitions: the keys are borrowed (no key is cloned) and
/// hashed with foldhash, and the deltas are only moved once each place is known.
pub fn merge_deltas(deltas: Vec<BucketDelta>) -> Vec<BucketDelta> {
    // Where each delta goes: the place of the first delta with its key.
    let mut places = Vec::with_capacity(deltas.len());
    let mut kept = 0;
    {
        let mut at: HashMap<(&MetricKey, &str, i64), usize, foldhash::fast::RandomState> =
            HashMap::with_capacity_and_hasher(deltas.len(), Default::default());
        for delta in &deltas {
            let place = *at
                .entry((&delta.metric, &*delta.series, delta.second))
                .or_insert(kept);
            if place == kept {
                kept += 1;
            }
            places.push(place);
        }
    }
    if kept == deltas.len() {
        return deltas;
    }
    let mut out: Vec<BucketDelta> = Vec::with_capacity(kept);
    for (delta, place) in deltas.into_iter().zip(places) {
        if place == out.len() {
            out.push(delta);
        } else {
            let into = &mut out[place];
            into.stats.merge(&delta.stats);
            into.counts = merge_sparse(&into.counts, &delta.counts);
        }
    }
    out
}

/// Two ascending `(bucket index, count)` lists added up, ascending.
fn merge_sparse(a: &[(u32, u64)], b: &[(u32, u64)]) -> Vec<(u32, u64)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push((a[i].0, a[i].1 + b[j].1));
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

/// The coordinator of a partitioned engine: routes batches, keeps the streams, their samples
/// and every window, merges the partitions' flushes and live views (see the module doc).
pub struct Coordinator<P> {
    view: Engine<P>,
    /// The partition of each shard, per stream.
    shards: HashMap<StreamName, HashMap<ShardId, usize>>,
    /// Shards per partition.
    load: Vec<usize>,
    /// A flush whose write failed: merged into the next one.
    carry: Option<Flush<P>>,
}

impl<P: Clone> Coordinator<P> {
    /// A coordinator of `partitions` partitions (at least one).
    pub fn new(config: EngineConfig, partitions: usize) -> Self {
        Self {
            view: Engine::new(config),
            shards: HashMap::new(),
            load: vec![0; partitions.max(1)],
            carry: None,
        }
    }

    pub fn partitions(&self) -> usize {
        self.load.len()
    }

    /// A partition's engine, with the coordinator's settings.
    pub fn partition_engine(&self) -> Engine<P> {
        Engine::new(self.view.config().clone())
    }

    /// The coordinator's own engine: streams, flushed windows, and the samples last set by
    /// [`Coordinator::set_samples`] (fields, preview).
    pub fn view(&self) -> &Engine<P> {
        &self.view
    }

    /// Installs definitions in the coordinator (the caller hands them to every partition too).
    pub fn set_definitions(&mut self, definitions: Vec<(i64, CompiledMetric)>) {
        self.view.set_definitions(definitions);
    }

    /// Notes the batch's stream and returns the partition that ingests it: its shard's, or
    /// for a new shard the one with the fewest shards (the first of them).
    pub fn route(&mut self, batch: &RecordBatch<P>) -> usize {
        self.view.ensure_stream(&batch.stream);
        if !self.shards.contains_key(&batch.stream) {
            self.shards.insert(batch.stream.clone(), HashMap::new());
        }
        let shards = self.shards.get_mut(&batch.stream).expect("inserted above");
        if let Some(&partition) = shards.get(&batch.shard) {
            return partition;
        }
        let (partition, _) = self
            .load
            .iter()
            .enumerate()
            .min_by_key(|&(i, load)| (*load, i))
            .expect("at least one partition");
        self.load[partition] += 1;
        shards.insert(batch.shard.clone(), partition);
        partition
    }

    /// Sets the stream's sample (what field discovery and preview read) to the newest of the
    /// partitions' samples by arrival time (partition order among equal times).
    pub fn set_samples(&mut self, stream: &StreamName, parts: Vec<Vec<(i64, Bytes)>>) {
        let keep = self.view.config.sample_records;
        let Some(state) = self.view.streams.get_mut(stream) else {
            return;
        };
        let mut all: Vec<(i64, Bytes)> = parts.into_iter().flatten().collect();
        all.sort_by_key(|(arrival_ms, _)| *arrival_ms);
        let skip = all.len().saturating_sub(keep);
        state.sample = all.into_iter().skip(skip).collect();
    }

    /// One flush of the partitions' flushes (taken with the same cutoff, one per partition):
    /// deltas merged and added to the windows, positions together, and a failed flush kept
    /// since merged in.
    pub fn finish_flush(&mut self, parts: Vec<Flush<P>>) -> Flush<P> {
        let single = parts.len() == 1;
        let mut flush = Flush {
            deltas: Vec::new(),
            positions: Vec::new(),
        };
        for part in parts {
            flush.deltas.extend(part.deltas);
            flush.positions.extend(part.positions);
        }
        if self.view.absorb(&mut flush.deltas) || !single {
            flush.deltas = merge_deltas(flush.deltas);
        }
        if let Some(carry) = self.carry.take() {
            flush = Self::combine(carry, flush);
        }
        flush
    }

    /// `older` and `newer` as one flush: deltas merged, a shard's newer position wins.
    fn combine(older: Flush<P>, newer: Flush<P>) -> Flush<P> {
        let mut positions = newer.positions;
        for (stream, shard, position) in older.positions {
            if !positions
                .iter()
                .any(|(s, h, _)| *s == stream && *h == shard)
            {
                positions.push((stream, shard, position));
            }
        }
        let mut deltas = older.deltas;
        deltas.extend(newer.deltas);
        Flush {
            deltas: merge_deltas(deltas),
            positions,
        }
    }

    /// Keeps a flush whose write failed (already in the windows) for the next flush.
    pub fn restore(&mut self, flush: Flush<P>) {
        self.carry = Some(match self.carry.take() {
            Some(newer) => Self::combine(flush, newer),
            None => flush,
        });
    }

    /// Every series' and metric's live windows: the coordinator's plus the partitions'.
    pub fn windows(&self, now_ms: i64, parts: Vec<PendingView>) -> LiveWindows {
        self.view.windows_with(now_ms, PendingIndex::of(parts))
    }

    /// Per-metric counters: each of the coordinator's metrics with the partitions' counts.
    pub fn counters(
        &self,
        parts: Vec<Vec<(MetricKey, String, MetricCounters)>>,
    ) -> Vec<(MetricKey, String, MetricCounters)> {
        let keep = self.view.config.bad_examples;
        let mut by_key: HashMap<MetricKey, MetricCounters> = HashMap::new();
        for part in parts {
            for (key, _, counters) in part {
                merge_counters(by_key.entry(key).or_default(), counters, keep);
            }
        }
        self.view
            .counters()
            .into_iter()
            .map(|(key, name, mut counters)| {
                if let Some(parts) = by_key.remove(&key) {
                    merge_counters(&mut counters, parts, keep);
                }
                (key, name, counters)
            })
            .collect()
    }
}

/// A partitioned engine on one thread: the coordinator and its partitions called in turn, as
/// the shell's threads call them. Gives the same results as one [`Engine`] (the tests hold it
/// to that).
pub struct Partitioned<P> {
    coordinator: Coordinator<P>,
    parts: Vec<Engine<P>>,
}

impl<P: Clone> Partitioned<P> {
    pub fn new(config: EngineConfig, partitions: usize) -> Self {
        let coordinator = Coordinator::new(config, partitions);
        let parts = (0..coordinator.partitions())
            .map(|_| coordinator.partition_engine())
            .collect();
        Self { coordinator, parts }
    }

    pub fn set_definitions(&mut self, definitions: Vec<(i64, CompiledMetric)>) {
        for part in &mut self.parts {
            part.set_definitions(definitions.clone());
        }
        self.coordinator.set_definitions(definitions);
    }

    pub fn ingest(&mut self, batch: &RecordBatch<P>, now_ms: i64) {
        let partition = self.coordinator.route(batch);
        self.parts[partition].ingest(batch, now_ms);
    }

    pub fn take_flush_before(&mut self, cutoff_s: i64) -> Flush<P> {
        let parts = self
            .parts
            .iter_mut()
            .map(|part| part.take_pending_before(cutoff_s))
            .collect();
        self.coordinator.finish_flush(parts)
    }

    pub fn take_flush(&mut self) -> Flush<P> {
        self.take_flush_before(i64::MAX)
    }

    pub fn restore(&mut self, flush: Flush<P>) {
        self.coordinator.restore(flush);
    }

    pub fn windows(&self, now_ms: i64) -> LiveWindows {
        self.coordinator.windows(now_ms, self.pending_views())
    }

    pub fn window(&self, now_ms: i64, name: &str, window_s: i64) -> Option<MetricWindow> {
        let pending = PendingIndex::of(self.pending_views());
        self.coordinator
            .view()
            .window_with(now_ms, name, window_s, &pending)
    }

    pub fn counters(&self) -> Vec<(MetricKey, String, MetricCounters)> {
        self.coordinator
            .counters(self.parts.iter().map(Engine::counters).collect())
    }

    /// Field discovery over the stream's recent records of every partition.
    pub fn discover_fields(
        &mut self,
        stream: &str,
    ) -> Option<std::collections::BTreeMap<String, super::fields::FieldStats>> {
        self.refresh_samples(&StreamName::new(stream));
        self.coordinator.view().discover_fields(stream)
    }

    /// The preview over the stream's recent records of every partition.
    pub fn preview(
        &mut self,
        metric: &CompiledMetric,
        limit: usize,
    ) -> Option<Vec<super::PreviewRow>> {
        self.refresh_samples(&StreamName::new(metric.definition.stream.as_str()));
        self.coordinator.view().preview(metric, limit)
    }

    fn refresh_samples(&mut self, stream: &StreamName) {
        let samples = self.parts.iter().map(|p| p.sample(stream)).collect();
        self.coordinator.set_samples(stream, samples);
    }

    pub fn coordinator(&self) -> &Coordinator<P> {
        &self.coordinator
    }

    fn pending_views(&self) -> Vec<PendingView> {
        self.parts.iter().map(Engine::pending_view).collect()
    }
}

#[cfg(test)]
#[path = "partition_tests.rs"]
mod tests;
