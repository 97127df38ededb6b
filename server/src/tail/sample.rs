//! Pure: the bounded sample a tail keeps between two updates ([`Reservoir`]) and its rates
//! over the last few seconds ([`Rates`]).

use std::collections::VecDeque;

/// A uniform sample of at most `capacity` of the items offered since the last
/// [`Reservoir::take`] (Algorithm R): memory stays `capacity` items however many are offered,
/// and each offered item is kept with the same probability.
#[derive(Debug)]
pub struct Reservoir<T> {
    capacity: usize,
    offered: u64,
    items: Vec<(u64, T)>,
}

impl<T> Reservoir<T> {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            offered: 0,
            items: Vec::with_capacity(capacity),
        }
    }

    /// Offers one item; `random` is uniform in [0, 1) (from an RNG in the shell).
    pub fn offer(&mut self, item: T, random: f64) {
        let index = self.offered;
        self.offered += 1;
        if self.items.len() < self.capacity {
            self.items.push((index, item));
            return;
        }
        // Keep it with probability capacity / offered, in place of a uniformly chosen one.
        let slot = (random * self.offered as f64) as usize;
        if slot < self.capacity {
            self.items[slot] = (index, item);
        }
    }

    /// The sample, in the order the items were offered, and how many were offered; empties it.
    pub fn take(&mut self) -> (Vec<T>, u64) {
        let offered = std::mem::take(&mut self.offered);
        let mut items = std::mem::take(&mut self.items);
        items.sort_unstable_by_key(|(index, _)| *index);
        self.items = Vec::with_capacity(self.capacity);
        (items.into_iter().map(|(_, item)| item).collect(), offered)
    }
}

/// Counts per update interval over the last `len` intervals, as rates per second.
#[derive(Debug)]
pub struct Rates {
    interval_s: f64,
    len: usize,
    /// (read, matched, shown) per interval, newest last.
    counts: VecDeque<[u64; 3]>,
}

impl Rates {
    pub fn new(interval_s: f64, len: usize) -> Self {
        Self {
            interval_s,
            len,
            counts: VecDeque::with_capacity(len),
        }
    }

    /// Closes one interval.
    pub fn push(&mut self, read: u64, matched: u64, shown: u64) {
        if self.counts.len() == self.len {
            self.counts.pop_front();
        }
        self.counts.push_back([read, matched, shown]);
    }

    /// Read, matched and shown per second over the intervals kept.
    pub fn per_s(&self) -> [f64; 3] {
        let seconds = self.counts.len().max(1) as f64 * self.interval_s;
        let mut sums = [0u64; 3];
        for counts in &self.counts {
            for (sum, count) in sums.iter_mut().zip(counts) {
                *sum += count;
            }
        }
        sums.map(|sum| sum as f64 / seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    #[test]
    fn a_reservoir_keeps_at_most_its_capacity_in_offer_order() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut sample = Reservoir::new(10);
        for i in 0..5 {
            sample.offer(i, rng.random());
        }
        assert_eq!(sample.take(), ((0..5).collect::<Vec<_>>(), 5));
        for i in 0..100_000 {
            sample.offer(i, rng.random());
        }
        let (kept, offered) = sample.take();
        assert_eq!((kept.len(), offered), (10, 100_000));
        assert!(kept.windows(2).all(|w| w[0] < w[1]), "in offer order");
        assert_eq!(sample.take(), (Vec::new(), 0), "taking empties it");
    }

    #[test]
    fn a_reservoir_sample_is_uniform() {
        // Offer 0..100 a thousand times, keep 10 each time: every item is kept about 100 times.
        let mut rng = StdRng::seed_from_u64(2);
        let mut kept = [0u32; 100];
        let mut sample = Reservoir::new(10);
        for _ in 0..1_000 {
            for i in 0..100 {
                sample.offer(i, rng.random());
            }
            for i in sample.take().0 {
                kept[i] += 1;
            }
        }
        let (low, high) = (kept.iter().min().unwrap(), kept.iter().max().unwrap());
        assert!(
            *low > 60 && *high < 140,
            "kept between {low} and {high} times"
        );
        // The late items are not favoured over the early ones.
        let first: u32 = kept[..50].iter().sum();
        let second: u32 = kept[50..].iter().sum();
        assert!(first.abs_diff(second) < 600, "{first} vs {second}");
    }

    #[test]
    fn rates_average_the_intervals_kept() {
        let mut rates = Rates::new(0.25, 4);
        assert_eq!(rates.per_s(), [0.0; 3]);
        rates.push(100, 10, 2);
        assert_eq!(rates.per_s(), [400.0, 40.0, 8.0]);
        for _ in 0..4 {
            rates.push(50, 5, 1);
        }
        assert_eq!(
            rates.per_s(),
            [200.0, 20.0, 4.0],
            "the oldest interval dropped"
        );
    }
}
