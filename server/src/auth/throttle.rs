//! Login throttling (pure): failed logins are counted per user name and per client address
//! within a window; once either count reaches its limit, further attempts for that name or
//! from that address are refused until the window that began with the first failure ends. A
//! success clears the name's count (not the address's: one right password must not reset a
//! guessing run against other names).
//!
//! Memory is bounded: at most [`MAX_KEYS`] names and addresses are tracked; when full, expired
//! entries are dropped first, then the oldest.

use std::{collections::HashMap, net::IpAddr};

/// Most names plus addresses tracked at once.
pub const MAX_KEYS: usize = 10_000;

/// The limits (from the server's settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub failures_per_user: u32,
    pub failures_per_address: u32,
    pub window_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Address(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Count {
    failures: u32,
    since_ms: i64,
}

/// A refused attempt: which limit and when it lifts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after_ms: i64,
}

impl Throttled {
    /// The message shown at the login form.
    pub fn message(&self) -> String {
        let seconds = (self.retry_after_ms + 999) / 1000;
        let wait = if seconds >= 120 {
            format!("{} minutes", (seconds + 59) / 60)
        } else {
            format!("{seconds} seconds")
        };
        format!("Too many failed logins for this user or from this address: try again in {wait}.")
    }
}

/// Failed-login counts.
#[derive(Debug)]
pub struct Throttle {
    limits: Limits,
    counts: HashMap<Key, Count>,
}

impl Throttle {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            counts: HashMap::new(),
        }
    }

    fn keys(name: &str, address: IpAddr) -> [(Key, u32); 2] {
        [
            (Key::User(name.to_lowercase()), 0),
            (Key::Address(address), 1),
        ]
    }

    fn limit(&self, which: u32) -> u32 {
        if which == 0 {
            self.limits.failures_per_user
        } else {
            self.limits.failures_per_address
        }
    }

    /// May `name` try to log in from `address` now?
    pub fn check(&self, name: &str, address: IpAddr, now_ms: i64) -> Result<(), Throttled> {
        let mut worst: Option<i64> = None;
        for (key, which) in Self::keys(name, address) {
            if let Some(count) = self.counts.get(&key) {
                let ends_ms = count.since_ms + self.limits.window_ms;
                if ends_ms > now_ms && count.failures >= self.limit(which) {
                    worst = Some(worst.unwrap_or(0).max(ends_ms - now_ms));
                }
            }
        }
        match worst {
            Some(retry_after_ms) => Err(Throttled { retry_after_ms }),
            None => Ok(()),
        }
    }

    /// Counts a failed attempt.
    pub fn failed(&mut self, name: &str, address: IpAddr, now_ms: i64) {
        for (key, _) in Self::keys(name, address) {
            if !self.counts.contains_key(&key) && self.counts.len() >= MAX_KEYS {
                self.make_room(now_ms);
            }
            let window_ms = self.limits.window_ms;
            let count = self.counts.entry(key).or_insert(Count {
                failures: 0,
                since_ms: now_ms,
            });
            if count.since_ms + window_ms <= now_ms {
                *count = Count {
                    failures: 0,
                    since_ms: now_ms,
                };
            }
            count.failures = count.failures.saturating_add(1);
        }
    }

    /// A successful login clears the name's failures.
    pub fn succeeded(&mut self, name: &str) {
        self.counts.remove(&Key::User(name.to_lowercase()));
    }

    fn make_room(&mut self, now_ms: i64) {
        let window_ms = self.limits.window_ms;
        self.counts.retain(|_, c| c.since_ms + window_ms > now_ms);
        if self.counts.len() >= MAX_KEYS
            && let Some(oldest) = self
                .counts
                .iter()
                .min_by_key(|(_, c)| c.since_ms)
                .map(|(k, _)| k.clone())
        {
            self.counts.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        failures_per_user: 3,
        failures_per_address: 5,
        window_ms: 60_000,
    };

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn a_user_is_locked_after_its_failures_until_the_window_ends() {
        let mut t = Throttle::new(LIMITS);
        for i in 0..3 {
            assert_eq!(t.check("ada", ip(i), 1_000), Ok(()));
            t.failed("ada", ip(i), 1_000);
        }
        // From any address, in any letter case.
        let refused = t.check("ADA", ip(9), 2_000).unwrap_err();
        assert_eq!(refused.retry_after_ms, 59_000);
        assert!(refused.message().contains("try again in 59 seconds"));
        assert_eq!(t.check("bob", ip(9), 2_000), Ok(()));
        assert_eq!(t.check("ada", ip(9), 61_000), Ok(()));
    }

    #[test]
    fn an_address_is_locked_across_names_and_a_success_does_not_clear_it() {
        let mut t = Throttle::new(LIMITS);
        for name in ["a", "b", "c", "d", "e"] {
            t.failed(name, ip(1), 0);
        }
        t.succeeded("a");
        assert!(t.check("zed", ip(1), 10).is_err());
        assert_eq!(t.check("zed", ip(2), 10), Ok(()));
    }

    #[test]
    fn tracking_is_bounded() {
        let mut t = Throttle::new(LIMITS);
        for i in 0..(MAX_KEYS as u32 + 50) {
            t.failed(&format!("user{i}"), ip(1), i64::from(i));
        }
        assert!(t.counts.len() <= MAX_KEYS);
    }
}
