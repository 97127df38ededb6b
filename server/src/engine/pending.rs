//! Pending-second counts: the delta of one series for one second since the last flush, as
//! cheap to count into as possible (a few inline buckets, then a dense count array), and its
//! conversion to the sparse counts a flush hands storage.

use crate::metric::Stats;

/// Distinct buckets a pending second keeps inline before it takes a dense counts array.
const SMALL_BUCKETS: usize = 8;

/// One series' delta for one second. The histogram is up to [`SMALL_BUCKETS`] inline
/// `(bucket index, count)` pairs, then a plain dense `u32` count per bucket index (see
/// [`Layout`]), half the size of an HdrHistogram and a single increment per value; it becomes
/// sparse counts when the flush takes it.
pub(super) struct Pending {
    pub(super) second: i64,
    /// The second after which this delta may be flushed: the newest second of the batches it
    /// holds records of (capped at the second each was ingested in), or a later one their
    /// shard's queue coalesced them into (see [`StreamState::positions`]). A flush must take
    /// all of a batch's deltas with its position, or none: a record re-read after a crash must
    /// find none of its deltas stored. So the records of a batch that reaches into a second not
    /// yet complete are kept apart, even for its complete seconds.
    pub(super) release_s: i64,
    pub(super) stats: Stats,
    /// Count per bucket index; empty for a metric without histogram, and while the second's
    /// values fall in at most [`SMALL_BUCKETS`] buckets (then they are in `small`).
    pub(super) counts: Vec<u32>,
    /// The second's first distinct buckets, `(index, count)` in arrival order, while `counts`
    /// is empty: a series with a few values a second never takes (and the flush never scans)
    /// a dense array.
    pub(super) small: [(u32, u32); SMALL_BUCKETS],
    pub(super) small_len: u8,
    /// Already added to the windows (a restored flush).
    pub(super) windowed: bool,
}

impl Pending {
    /// An empty delta for `second`, released after `release_s`.
    pub(super) fn new(second: i64, release_s: i64) -> Self {
        Self {
            second,
            release_s,
            stats: Stats::EMPTY,
            counts: Vec::new(),
            small: [(0, 0); SMALL_BUCKETS],
            small_len: 0,
            windowed: false,
        }
    }

    /// A pending delta's histogram counts as sparse `(bucket index, count)`.
    pub(super) fn sparse(&self, out: &mut Vec<(u32, u64)>) {
        out.clear();
        if self.counts.is_empty() {
            let small = &self.small[..usize::from(self.small_len)];
            out.extend(small.iter().map(|&(i, c)| (i, u64::from(c))));
            out.sort_unstable_by_key(|&(i, _)| i);
            return;
        }
        const CHUNK: usize = 16;
        // Most of the array is zeros: skip them 16 at a time (the OR vectorises).
        for (chunk_index, chunk) in self.counts.chunks(CHUNK).enumerate() {
            if chunk.iter().fold(0, |any, &c| any | c) == 0 {
                continue;
            }
            let base = chunk_index * CHUNK;
            out.extend(
                chunk
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| **c > 0)
                    .map(|(i, c)| ((base + i) as u32, u64::from(*c))),
            );
        }
    }

    /// Counts one value in bucket `index` of a layout of `len` buckets: inline while the
    /// second has at most [`SMALL_BUCKETS`] distinct buckets, then in a dense array (the
    /// series' zeroed `spare` one when it has the right length).
    pub(super) fn count_bucket(&mut self, index: usize, len: usize, spare: &mut Vec<u32>) {
        if let Some(count) = self.counts.get_mut(index) {
            *count = count.saturating_add(1);
            return;
        }
        // No dense array yet (`index` is within one).
        let small = &mut self.small[..usize::from(self.small_len)];
        if let Some(entry) = small.iter_mut().find(|(i, _)| *i as usize == index) {
            entry.1 = entry.1.saturating_add(1);
            return;
        }
        if small.len() < SMALL_BUCKETS {
            self.small[small.len()] = (index as u32, 1);
            self.small_len += 1;
            return;
        }
        // One bucket too many: the dense array takes over.
        self.counts = if spare.len() == len {
            std::mem::take(spare)
        } else {
            vec![0; len]
        };
        for &(i, count) in self.small.iter().chain([&(index as u32, 1)]) {
            self.counts[i as usize] = count;
        }
        self.small_len = 0;
    }
}
