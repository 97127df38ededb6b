//! The series index of a metric: one [`Series`] per distinct label key (found through a hash
//! index, capped by the cardinality guard), each with its pending deltas and rolling windows,
//! and the live figures that merge both.

use super::{
    counters::MetricCounters,
    pending::Pending,
    window::{WINDOWS_S, WindowSummary, Windows, in_window, window_bounds},
};
use crate::metric::{
    CompiledMetric, MetricKey, Stats,
    definition::HistogramSpec,
    histogram::{self, Layout},
    key::{LABEL_SEPARATOR, OTHER_SERIES},
};
use hdrhistogram::Histogram;
use std::{
    collections::HashMap,
    hash::{BuildHasher, BuildHasherDefault, Hasher},
    sync::Arc,
};

/// Live window summaries of one metric, all its series merged exactly: counts and sums add
/// up, and the percentiles are those of the merged distribution (one histogram of every
/// series' values), not a bound.
#[derive(Debug, Clone)]
pub struct MergedWindows {
    pub metric: MetricKey,
    pub name: String,
    pub windows: [WindowSummary; 4],
}

/// One series of one metric.
pub(super) struct Series {
    pub(super) key: String,
    /// The labels as a JSON array, the series' name in storage; made by its first flush.
    pub(super) json: Option<Arc<str>>,
    pub(super) pending: Vec<Pending>,
    pub(super) windows: Windows,
    /// A zeroed dense counts array from a flushed pending second, reused by the series' next
    /// one (an 8 KiB allocation, zeroing and free less per series and second). Kept only while
    /// the series is active: dropped by a flush that finds it with nothing pending.
    pub(super) spare: Vec<u32>,
}

/// The hasher of a map whose keys are already hashes: hashing them again (SipHash) would
/// double the cost of the per-record series lookup.
#[derive(Default)]
pub(super) struct KeyIsHash(u64);

impl Hasher for KeyIsHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

pub(super) struct MetricState {
    pub(super) key: MetricKey,
    pub(super) name: String,
    pub(super) compiled: Option<CompiledMetric>,
    pub(super) template: Histogram<u64>,
    pub(super) layout: Layout,
    pub(super) records_histogram: bool,
    /// `hash_one(series key)` -> series indices with that hash.
    pub(super) index: HashMap<u64, Vec<u32>, BuildHasherDefault<KeyIsHash>>,
    pub(super) series: Vec<Series>,
    /// Every series' flushed seconds merged into one set of windows, fed by the same adds as
    /// the series' own: the exact live percentiles of the whole metric cost one window merge
    /// per tick, whatever the number of series.
    pub(super) merged: Windows,
    pub(super) other: Option<u32>,
    /// The series by their stored name (labels as JSON): how a coordinator finds the series of
    /// a partition's delta ([`super::partition`]); empty in a partition.
    pub(super) by_json: HashMap<Arc<str>, u32>,
    pub(super) counters: MetricCounters,
    pub(super) retired: bool,
}

impl MetricState {
    pub(super) fn new(
        key: MetricKey,
        name: String,
        compiled: Option<CompiledMetric>,
        spec: Option<HistogramSpec>,
    ) -> Self {
        let records_histogram = spec.is_some();
        let spec = spec.unwrap_or_default();
        let template =
            Histogram::new_with_bounds(spec.lowest, spec.highest, spec.significant_figures)
                .unwrap_or_else(|_| {
                    Histogram::new_with_bounds(1, 3_600_000, 2)
                        .expect("the default bounds are valid")
                });
        Self {
            key,
            name,
            compiled,
            layout: Layout::of(&template),
            template,
            records_histogram,
            index: HashMap::default(),
            series: Vec::new(),
            merged: Windows::new(),
            other: None,
            by_json: HashMap::new(),
            counters: MetricCounters::default(),
            retired: false,
        }
    }

    /// Finds or creates the series for `key`, applying the cardinality guard.
    pub(super) fn series_index(
        &mut self,
        hasher: &impl BuildHasher,
        key: &str,
        max_series: usize,
    ) -> usize {
        let hash = hasher.hash_one(key);
        if let Some(candidates) = self.index.get(&hash) {
            for &i in candidates {
                if self.series[i as usize].key == key {
                    return i as usize;
                }
            }
        }
        let limited = self.series.len() - usize::from(self.other.is_some()) >= max_series;
        if limited {
            self.counters.overflowed_records += 1;
            if let Some(other) = self.other {
                return other as usize;
            }
        }
        let key = if limited {
            let dims = key.split(LABEL_SEPARATOR).count();
            vec![OTHER_SERIES; dims].join(&LABEL_SEPARATOR.to_string())
        } else {
            key.to_string()
        };
        let index = self.series.len() as u32;
        self.index
            .entry(hasher.hash_one(&key))
            .or_default()
            .push(index);
        self.series.push(Series {
            key,
            json: None,
            pending: Vec::new(),
            windows: Windows::new(),
            spare: Vec::new(),
        });
        if limited {
            self.other = Some(index);
        }
        index as usize
    }

    /// The index of the series `key`, if this metric has it.
    pub(super) fn series_by_key(&self, hasher: &impl BuildHasher, key: &str) -> Option<usize> {
        self.index
            .get(&hasher.hash_one(key))?
            .iter()
            .map(|&i| i as usize)
            .find(|&i| self.series[i].key == key)
    }

    /// Counts `value` into the series' pending delta for (`second`, `release_s`).
    pub(super) fn record(&mut self, series: usize, second: i64, release_s: i64, value: f64) {
        let records_histogram = self.records_histogram;
        let len = self.layout.buckets() as usize;
        let series = &mut self.series[series];
        let at = match series
            .pending
            .iter()
            .rposition(|p| p.second == second && p.release_s == release_s && !p.windowed)
        {
            Some(i) => i,
            None => {
                series.pending.push(Pending::new(second, release_s));
                series.pending.len() - 1
            }
        };
        series.pending[at].stats.add(value);
        if records_histogram {
            // `as` saturates: negative values count as 0; beyond the counts, a value counts as
            // the highest trackable (as `Histogram::saturating_record`).
            let mut index = self.layout.index_of(value.round() as u64) as usize;
            if index >= len {
                index = self.layout.index_of(self.template.high()) as usize;
            }
            series.pending[at].count_bucket(index, len, &mut series.spare);
        }
    }
}

impl MetricState {
    /// The four standard windows ending at `now_s` of every series merged: the merged windows
    /// plus `unflushed`, every series' seconds not yet in them.
    pub(super) fn merged_windows(
        &self,
        unflushed: &[Unflushed],
        now_s: i64,
        scratch: &mut Histogram<u64>,
    ) -> MergedWindows {
        let windows = if unflushed.is_empty() {
            self.merged.summaries(now_s, scratch)
        } else {
            WINDOWS_S.map(|w| {
                WindowSummary::accumulated(w, scratch, |stats, hist| {
                    accumulate_live(&self.merged, unflushed, now_s, w, stats, hist)
                })
            })
        };
        MergedWindows {
            metric: self.key.clone(),
            name: self.name.clone(),
            windows,
        }
    }
}

/// A pending second not yet in the windows: second, stats, sparse `(bucket index, count)`.
pub(super) type Unflushed = (i64, Stats, Vec<(u32, u64)>);

impl Series {
    pub(super) fn series_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The deltas not yet in the windows (ingested since the last flush), histograms sparse.
    pub(super) fn unflushed(&self) -> Vec<Unflushed> {
        self.pending
            .iter()
            .filter(|p| !p.windowed)
            .map(|p| {
                let mut sparse = Vec::new();
                p.sparse(&mut sparse);
                (p.second, p.stats, sparse)
            })
            .collect()
    }

    /// Adds this series' part of the window of `window_s` seconds ending at `now_s` to `stats`
    /// and `hist` and returns the seconds covered, as [`Windows::accumulate`], but including
    /// `unflushed` (from [`Series::unflushed`]): live figures are not a flush interval behind
    /// the records.
    pub(super) fn accumulate(
        &self,
        unflushed: &[Unflushed],
        now_s: i64,
        window_s: i64,
        stats: &mut Stats,
        hist: &mut Histogram<u64>,
    ) -> i64 {
        accumulate_live(&self.windows, unflushed, now_s, window_s, stats, hist)
    }

    pub(super) fn summary(
        &self,
        unflushed: &[Unflushed],
        now_s: i64,
        window_s: i64,
        scratch: &mut Histogram<u64>,
    ) -> WindowSummary {
        WindowSummary::accumulated(window_s, scratch, |stats, hist| {
            self.accumulate(unflushed, now_s, window_s, stats, hist)
        })
    }
}

/// Adds the window of `window_s` seconds ending at `now_s` of `windows` plus the `unflushed`
/// seconds that fall in it to `stats` and `hist`, and returns the seconds covered (from the
/// earliest second of either). A series' live figures, or a metric's merged ones with every
/// series' unflushed seconds.
pub(super) fn accumulate_live(
    windows: &Windows,
    unflushed: &[Unflushed],
    now_s: i64,
    window_s: i64,
    stats: &mut Stats,
    hist: &mut Histogram<u64>,
) -> i64 {
    let covered_s = windows.accumulate(now_s, window_s, stats, hist);
    if unflushed.is_empty() {
        return covered_s;
    }
    let mut first_s = windows.first_s();
    let layout = Layout::of(hist);
    for (second, delta, sparse) in unflushed {
        first_s = first_s.min(*second);
        if in_window(now_s, window_s, *second) {
            stats.merge(delta);
            histogram::record_sparse(hist, &layout, sparse);
        }
    }
    let (_, _, nominal_s) = window_bounds(now_s, window_s);
    if first_s <= now_s {
        nominal_s.min(now_s - first_s + 1)
    } else {
        nominal_s
    }
}
