//! [`Stats`]: count, sum, min and max of a set of values, the scalar part of every bucket, row,
//! window and summary; [`Bucket`]: stats with their dense HdrHistogram.

use hdrhistogram::Histogram;

/// Count, sum, min and max of the values of one bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl Default for Stats {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl Stats {
    pub const EMPTY: Stats = Stats {
        count: 0,
        sum: 0.0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
    };

    #[inline]
    pub fn add(&mut self, value: f64) {
        self.count += 1;
        self.sum += value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    pub fn merge(&mut self, other: &Stats) {
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }
}

/// One time bucket: scalar stats and a dense histogram.
#[derive(Debug, Clone)]
pub struct Bucket {
    pub stats: Stats,
    pub hist: Histogram<u64>,
}

impl Bucket {
    pub fn merge(&mut self, other: &Bucket) {
        self.stats.merge(&other.stats);
        // Same bounds by construction; a failure would mean a corrupt stored histogram and
        // loses only that histogram's counts, never the scalar stats.
        if let Err(error) = self.hist.add(&other.hist) {
            tracing::warn!(%error, "histogram merge failed");
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A bucket of `values` at the default histogram bounds (for the tests of windows and storage).
    pub(crate) fn bucket(values: &[u64]) -> Bucket {
        let mut hist = Histogram::new_with_bounds(1, 3_600_000, 2).unwrap();
        let mut stats = Stats::EMPTY;
        for &v in values {
            hist.record(v).unwrap();
            stats.add(v as f64);
        }
        Bucket { stats, hist }
    }
}
