//! Aggregates: per-second [`Stats`] + HdrHistogram buckets, and the rolling [`Windows`] of one
//! series (1 min, 5 min, 15 min, 1 h).
//!
//! Memory is the constraint: a dense 2-significant-figure histogram over 1..3.6e6 is 16 KiB, so a
//! ring of 3,600 per-second histograms would cost 59 MiB per series. The windows therefore keep
//! two rings of 60 slots: per-second slots for the 1-minute window and per-minute slots for the
//! longer ones. A slot holds its period's stats and only its non-zero histogram buckets, packed
//! in the V2 counts encoding ([`crate::metric::histogram`]: about 1.2 bytes per non-zero bucket, against
//! 16 for a `(u64, u64)` pair); only the slot being filled is kept unpacked, as a sparse list.
//! A slot is reset when the ring wraps onto it (the expired second or minute is dropped), and a
//! window's percentiles are computed on demand by merging its slots into one scratch
//! histogram, which is exact (same buckets as a dense histogram). The 5/15/60-minute windows
//! advance per minute: they cover the current partial minute plus the 4/14/59 full minutes
//! before it, and their rate divides by the seconds actually covered.

use crate::metric::{
    histogram::{self, Layout},
    stats::{Bucket, Stats},
};
use contract::summary::Summary;
use hdrhistogram::Histogram;

/// Window lengths, in seconds.
pub const WINDOWS_S: [i64; 4] = [60, 300, 900, 3600];

/// Summary of one window: its length and the contract's aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct WindowSummary {
    pub window_s: i64,
    pub summary: Summary,
}

/// One period (a second or a minute) of a ring: its stats, and its histogram counts in the
/// compact V2 counts encoding ([`histogram::encode_counts`]) unless it is the ring's open slot.
#[derive(Debug, Clone)]
struct Slot {
    start_s: i64,
    stats: Stats,
    packed: Box<[u8]>,
}

impl Slot {
    fn empty() -> Self {
        Slot {
            start_s: i64::MIN,
            stats: Stats::EMPTY,
            packed: Box::default(),
        }
    }
}

/// A ring of 60 slots of `period_s` seconds. At most one slot, the one last added to, is
/// *open*: its counts are a sparse `(bucket index, count)` list; a second's counts merge into
/// it, or, when they are few against it, are appended (combined when the vector is full and
/// when the slot is packed). Adding to
/// another slot packs the open one, so in-order data packs each slot once; a late second
/// reopens its slot (unpack, merge, pack later).
#[derive(Debug, Clone)]
struct Ring {
    period_s: i64,
    slots: Box<[Slot]>,
    open: Option<usize>,
    open_counts: Vec<(u32, u64)>,
    /// `open_counts` is sorted by index with one entry per index.
    open_sorted: bool,
}

impl Ring {
    fn new(period_s: i64) -> Self {
        Ring {
            period_s,
            slots: (0..60).map(|_| Slot::empty()).collect(),
            open: None,
            open_counts: Vec::new(),
            open_sorted: true,
        }
    }

    /// Adds to the period starting at `start_s`; data older than what its slot holds is dropped.
    fn add(&mut self, start_s: i64, stats: &Stats, sparse: &[(u32, u64)]) {
        let index = start_s.div_euclid(self.period_s).rem_euclid(60) as usize;
        if self.slots[index].start_s > start_s {
            return;
        }
        if self.open != Some(index) {
            self.pack();
            let slot = &mut self.slots[index];
            if slot.start_s == start_s {
                let counts = &mut self.open_counts;
                // Our own encoding: it always decodes.
                let _ = histogram::decode_counts(&slot.packed, |i, c| counts.push((i, c)));
            }
            slot.packed = Box::default();
            self.open = Some(index);
        }
        let slot = &mut self.slots[index];
        if slot.start_s < start_s {
            slot.start_s = start_s;
            slot.stats = Stats::EMPTY;
            self.open_counts.clear();
            self.open_sorted = true;
        }
        slot.stats.merge(stats);
        // Counts much fewer than the slot's are appended as they come, combined when the vector
        // is full and before packing: an add costs the second's counts, not the open slot's (a
        // minute slot takes sixty seconds of them). Others merge in place.
        let few = sparse.len() * 4 < self.open_counts.len();
        if few || !self.open_sorted {
            if self.open_counts.len() + sparse.len() > self.open_counts.capacity() {
                histogram::combine_sparse(&mut self.open_counts);
            }
            self.open_sorted = self.open_counts.is_empty();
            self.open_counts.extend_from_slice(sparse);
        } else {
            histogram::merge_sparse(&mut self.open_counts, sparse);
        }
    }

    /// Packs the open slot's counts.
    fn pack(&mut self) {
        thread_local! {
            /// Encoded here, then copied into an allocation of the exact size.
            static BYTES: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        if let Some(index) = self.open.take() {
            self.slots[index].packed = BYTES.with_borrow_mut(|bytes| {
                bytes.clear();
                if !self.open_sorted {
                    histogram::combine_sparse(&mut self.open_counts);
                }
                histogram::encode_counts(self.open_counts.iter().copied(), bytes);
                Box::from(bytes.as_slice())
            });
            self.open_counts.clear();
            self.open_sorted = true;
        }
    }

    /// Merges every slot with `from < start_s <= to` into `stats` and `hist`.
    fn accumulate(&self, from: i64, to: i64, stats: &mut Stats, hist: &mut Histogram<u64>) {
        let layout = Layout::of(hist);
        for (index, slot) in self.slots.iter().enumerate() {
            if slot.start_s <= from || slot.start_s > to {
                continue;
            }
            stats.merge(&slot.stats);
            if self.open == Some(index) {
                histogram::record_sparse(hist, &layout, &self.open_counts);
            } else {
                let _ = histogram::decode_counts(&slot.packed, |i, c| {
                    let _ = hist.record_n(layout.value_of(i), c);
                });
            }
        }
    }

    fn heap_bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<Slot>()
            + self.slots.iter().map(|s| s.packed.len()).sum::<usize>()
            + self.open_counts.capacity() * std::mem::size_of::<(u32, u64)>()
    }
}

/// The rolling windows of one series.
#[derive(Debug, Clone)]
pub struct Windows {
    seconds: Ring,
    minutes: Ring,
    /// The earliest second ever added: a window longer than the series' life divides its count
    /// by the seconds since then, not by the full window (no rate dip after a start).
    first_s: i64,
}

impl Default for Windows {
    fn default() -> Self {
        Self::new()
    }
}

impl Windows {
    pub fn new() -> Self {
        Self {
            seconds: Ring::new(1),
            minutes: Ring::new(60),
            first_s: i64::MAX,
        }
    }

    /// Adds one second's bucket. Seconds older than what a ring slot holds are dropped there.
    pub fn add(&mut self, second: i64, bucket: &Bucket) {
        let mut sparse = Vec::new();
        histogram::sparse_of(&bucket.hist, &mut sparse);
        self.add_sparse(second, &bucket.stats, &sparse);
    }

    /// As [`Windows::add`], with the histogram as ascending `(bucket index, count)` pairs
    /// ([`histogram::sparse_of`]).
    pub fn add_sparse(&mut self, second: i64, stats: &Stats, sparse: &[(u32, u64)]) {
        self.first_s = self.first_s.min(second);
        self.seconds.add(second, stats, sparse);
        self.minutes.add(second.div_euclid(60) * 60, stats, sparse);
    }

    /// Approximate heap bytes held (for the memory benchmark).
    pub fn heap_bytes(&self) -> usize {
        self.seconds.heap_bytes() + self.minutes.heap_bytes()
    }

    /// The window of `window_s` seconds ending at `now_s` (inclusive). `scratch` is an empty
    /// histogram with the metric's bounds; it is reset and reused.
    pub fn summary(
        &self,
        now_s: i64,
        window_s: i64,
        scratch: &mut Histogram<u64>,
    ) -> WindowSummary {
        WindowSummary::accumulated(window_s, scratch, |stats, hist| {
            self.accumulate(now_s, window_s, stats, hist)
        })
    }

    /// The four standard windows ([`WINDOWS_S`]) ending at `now_s`, equal to four calls of
    /// [`Windows::summary`] but cheaper: the 5, 15 and 60-minute windows are nested, so each
    /// one adds only its older minutes to the previous one's merge (two histogram resets per
    /// series instead of four).
    pub fn summaries(&self, now_s: i64, scratch: &mut Histogram<u64>) -> [WindowSummary; 4] {
        let mut out = [WindowSummary::default(); 4];
        out[0] = self.summary(now_s, WINDOWS_S[0], scratch);
        if !scratch.is_empty() {
            scratch.reset();
        }
        let mut stats = Stats::EMPTY;
        let now_min = now_s.div_euclid(60) * 60;
        let mut newer_edge = now_min;
        for (slot, &window_s) in out.iter_mut().zip(&WINDOWS_S).skip(1) {
            let older_edge = now_min - window_s;
            self.minutes
                .accumulate(older_edge, newer_edge, &mut stats, scratch);
            newer_edge = older_edge;
            let covered_s = self.covered(now_s, window_s - 60 + (now_s - now_min + 1));
            *slot = WindowSummary::of(window_s, covered_s, &stats, scratch);
        }
        out
    }

    /// The covered span: never more than the seconds since the first data.
    fn covered(&self, now_s: i64, covered_s: i64) -> i64 {
        if self.first_s <= now_s {
            covered_s.min(now_s - self.first_s + 1)
        } else {
            covered_s
        }
    }

    /// Adds this series' part of the window of `window_s` seconds ending at `now_s` to `stats`
    /// and `hist` (which are not reset, so several series can be merged exactly) and returns
    /// the seconds the window covers. Windows up to 60 s use the per-second ring (any length);
    /// longer ones use the per-minute ring and cover the current partial minute plus the
    /// `window_s / 60 - 1` full minutes before it; a series younger than the window covers
    /// only the seconds since its first data.
    pub fn accumulate(
        &self,
        now_s: i64,
        window_s: i64,
        stats: &mut Stats,
        hist: &mut Histogram<u64>,
    ) -> i64 {
        let (from, to, covered_s) = window_bounds(now_s, window_s);
        let ring = if window_s <= 60 {
            &self.seconds
        } else {
            &self.minutes
        };
        ring.accumulate(from, to, stats, hist);
        self.covered(now_s, covered_s)
    }

    /// The earliest second ever added (`i64::MAX` before the first).
    pub fn first_s(&self) -> i64 {
        self.first_s
    }
}

/// The slot starts `(from, to]` the window of `window_s` seconds ending at `now_s` reads from
/// its ring, and the seconds it nominally covers (see [`Windows::accumulate`]).
pub fn window_bounds(now_s: i64, window_s: i64) -> (i64, i64, i64) {
    if window_s <= 60 {
        (now_s - window_s, now_s, window_s)
    } else {
        let now_min = now_s.div_euclid(60) * 60;
        (
            now_min - window_s,
            now_min,
            window_s - 60 + (now_s - now_min + 1),
        )
    }
}

/// Whether data of `second` belongs to the window of `window_s` seconds ending at `now_s`, by
/// the rule [`Windows::accumulate`] applies to its slots (a second counts by its minute in the
/// windows longer than 60 s).
pub fn in_window(now_s: i64, window_s: i64, second: i64) -> bool {
    let (from, to, _) = window_bounds(now_s, window_s);
    let start = if window_s <= 60 {
        second
    } else {
        second.div_euclid(60) * 60
    };
    start > from && start <= to
}

impl WindowSummary {
    /// The summary of what `accumulate` adds to fresh stats and to `scratch` (reset first, an
    /// empty histogram with the metric's bounds); `accumulate` returns the seconds covered.
    pub fn accumulated(
        window_s: i64,
        scratch: &mut Histogram<u64>,
        accumulate: impl FnOnce(&mut Stats, &mut Histogram<u64>) -> i64,
    ) -> Self {
        if !scratch.is_empty() {
            scratch.reset();
        }
        let mut stats = Stats::EMPTY;
        let covered_s = accumulate(&mut stats, scratch);
        WindowSummary::of(window_s, covered_s, &stats, scratch)
    }

    /// The summary of accumulated `stats` and `hist` over a window covering `covered_s` seconds.
    pub fn of(window_s: i64, covered_s: i64, stats: &Stats, hist: &Histogram<u64>) -> Self {
        let hist = (!hist.is_empty()).then_some(hist);
        WindowSummary {
            window_s,
            summary: Summary::new(
                stats.count,
                stats.sum,
                stats.min,
                stats.max,
                covered_s,
                Summary::QUANTILES.map(|q| hist.map(|h| h.value_at_quantile(q))),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::stats::tests::bucket;

    #[test]
    fn one_minute_window_drops_expired_seconds() {
        let mut w = Windows::new();
        let mut scratch = Histogram::new_with_bounds(1, 3_600_000, 2).unwrap();
        for s in 0..120 {
            w.add(1000 + s, &bucket(&[s as u64 + 1]));
        }
        let now = 1119;
        let m = w.summary(now, 60, &mut scratch);
        assert_eq!(m.summary.count, 60);
        assert_eq!(m.summary.min, Some(61.0));
        assert_eq!(m.summary.max, Some(120.0));
        assert_eq!(m.summary.rate_per_s, 1.0);
        // Later, nothing new: the window empties as time passes.
        let later = w.summary(now + 61, 60, &mut scratch);
        assert_eq!(later.summary.count, 0);
        assert_eq!(later.summary.p50, None);
    }

    #[test]
    fn rates_divide_by_the_covered_span_after_a_start() {
        let mut w = Windows::new();
        let mut scratch = Histogram::new_with_bounds(1, 3_600_000, 2).unwrap();
        // Ten records per second for the first 10 seconds of the series' life.
        for s in 0..10 {
            w.add(5_000 + s, &bucket(&[1; 10]));
        }
        let now = 5_009;
        assert_eq!(w.summary(now, 60, &mut scratch).summary.rate_per_s, 10.0);
        assert_eq!(w.summary(now, 300, &mut scratch).summary.rate_per_s, 10.0);
        // Once the series is older than the window, the full window divides.
        assert_eq!(
            w.summary(5_000 + 119, 60, &mut scratch).summary.rate_per_s,
            0.0
        );
        w.add(5_000 + 119, &bucket(&[1; 60]));
        assert_eq!(
            w.summary(5_000 + 119, 60, &mut scratch).summary.rate_per_s,
            1.0
        );
    }

    #[test]
    fn long_windows_use_minutes_and_percentiles_are_exact_per_bucket() {
        let mut w = Windows::new();
        let mut scratch = Histogram::new_with_bounds(1, 3_600_000, 2).unwrap();
        let mut dense = Histogram::<u64>::new_with_bounds(1, 3_600_000, 2).unwrap();
        let base = 60 * 1000;
        for s in 0..600 {
            let values: Vec<u64> = (0..5).map(|i| (s * 7 + i * 13) % 997 + 1).collect();
            for &v in &values {
                if s >= 300 {
                    dense.record(v).unwrap();
                }
            }
            w.add(base + s as i64, &bucket(&values));
        }
        let now = base + 599;
        let m5 = w.summary(now, 300, &mut scratch);
        assert_eq!(m5.summary.count, 5 * 300);
        assert_eq!(m5.summary.p99, Some(dense.value_at_quantile(0.99)));
        assert_eq!(m5.summary.p50, Some(dense.value_at_quantile(0.5)));
        let h = w.summary(now, 3600, &mut scratch);
        assert_eq!(h.summary.count, 5 * 600);
        // The four at once equal four single windows, at any moment.
        for at in [now, now + 1, now + 59, now + 60, now + 400, now + 3000] {
            let four = w.summaries(at, &mut scratch);
            for (i, window_s) in WINDOWS_S.into_iter().enumerate() {
                assert_eq!(
                    four[i],
                    w.summary(at, window_s, &mut scratch),
                    "{window_s} at {at}"
                );
            }
        }
        // A late second lands in its own slots.
        w.add(now - 30, &bucket(&[5]));
        assert_eq!(w.summary(now, 60, &mut scratch).summary.count, 5 * 60 + 1);
        // A second older than the per-second ring still reaches its minute.
        w.add(now - 200, &bucket(&[5]));
        assert_eq!(w.summary(now, 60, &mut scratch).summary.count, 5 * 60 + 1);
        assert_eq!(w.summary(now, 300, &mut scratch).summary.count, 5 * 300 + 2);
    }
}
