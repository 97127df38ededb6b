//! Optional per-shard throughput limits (AWS's provisioned-shard quotas): token buckets, pure
//! arithmetic over a caller-supplied clock so they are unit-tested without sleeping.
//!
//! In: 1 MiB/s or 1,000 records/s per shard. Out: 5 GetRecords calls/s and 2 MiB/s per shard.
//! The buckets hold one second's worth, so a short burst passes as it does on AWS.

use std::time::Instant;

pub const IN_BYTES_PER_SEC: f64 = 1024.0 * 1024.0;
pub const IN_RECORDS_PER_SEC: f64 = 1000.0;
pub const OUT_CALLS_PER_SEC: f64 = 5.0;
pub const OUT_BYTES_PER_SEC: f64 = 2.0 * 1024.0 * 1024.0;

/// A token bucket refilled continuously at `per_sec`, holding at most one second's worth.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    per_sec: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(per_sec: f64, now: Instant) -> Self {
        Self {
            per_sec,
            tokens: per_sec,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.per_sec);
        self.last = now;
    }

    /// Whether `amount` tokens are available now (without taking them).
    pub fn has(&mut self, amount: f64, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= amount.min(self.per_sec)
    }

    /// Takes `amount` tokens; may go negative (a large read is paid for afterwards, as AWS
    /// does with its 10 MiB GetRecords against a 2 MiB/s budget).
    pub fn take(&mut self, amount: f64, now: Instant) {
        self.refill(now);
        self.tokens -= amount;
    }
}

/// The four buckets of one shard.
#[derive(Debug, Clone)]
pub struct ShardBudget {
    pub in_bytes: TokenBucket,
    pub in_records: TokenBucket,
    pub out_calls: TokenBucket,
    pub out_bytes: TokenBucket,
}

impl ShardBudget {
    pub fn new(now: Instant) -> Self {
        Self {
            in_bytes: TokenBucket::new(IN_BYTES_PER_SEC, now),
            in_records: TokenBucket::new(IN_RECORDS_PER_SEC, now),
            out_calls: TokenBucket::new(OUT_CALLS_PER_SEC, now),
            out_bytes: TokenBucket::new(OUT_BYTES_PER_SEC, now),
        }
    }

    /// Admits one record of `bytes` if the shard's write budget allows it, and charges it.
    pub fn admit_put(&mut self, bytes: usize, now: Instant) -> bool {
        if self.in_records.has(1.0, now) && self.in_bytes.has(bytes as f64, now) {
            self.in_records.take(1.0, now);
            self.in_bytes.take(bytes as f64, now);
            true
        } else {
            false
        }
    }

    /// Admits one GetRecords call if the shard's read budget allows it, and charges the call.
    pub fn admit_get(&mut self, now: Instant) -> bool {
        if self.out_calls.has(1.0, now) && self.out_bytes.has(1.0, now) {
            self.out_calls.take(1.0, now);
            true
        } else {
            false
        }
    }

    /// Charges the bytes a GetRecords call returned.
    pub fn charge_get_bytes(&mut self, bytes: usize, now: Instant) {
        self.out_bytes.take(bytes as f64, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn records_per_second_are_capped_and_refill() {
        let start = Instant::now();
        let mut budget = ShardBudget::new(start);
        let admitted = (0..1500).filter(|_| budget.admit_put(10, start)).count();
        assert_eq!(admitted, 1000);
        assert!(!budget.admit_put(10, start));
        let later = start + Duration::from_millis(100);
        let admitted = (0..500).filter(|_| budget.admit_put(10, later)).count();
        assert_eq!(admitted, 100, "100 ms refills a tenth of the budget");
    }

    #[test]
    fn five_reads_per_second() {
        let start = Instant::now();
        let mut budget = ShardBudget::new(start);
        assert_eq!((0..10).filter(|_| budget.admit_get(start)).count(), 5);
        assert!(budget.admit_get(start + Duration::from_millis(200)));
    }

    #[test]
    fn a_big_read_is_paid_for_afterwards() {
        let start = Instant::now();
        let mut budget = ShardBudget::new(start);
        assert!(budget.admit_get(start));
        budget.charge_get_bytes(4 * 1024 * 1024, start);
        assert!(!budget.admit_get(start + Duration::from_millis(500)));
        assert!(budget.admit_get(start + Duration::from_secs(2)));
    }
}
