//! The server's one wall clock. Everything that stamps or judges time by the wall clock
//! (ingest's arrival-relative checks, flush and retention horizons, alert evaluation, live
//! pushes, export ranges) reads it here, so a test can hold a [`Clock`] still or move it.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

/// Wall-clock now in epoch milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A clock: the system's, or a manual one that only moves when told (tests).
#[derive(Debug, Clone, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock standing at `start_ms` until [`Clock::advance`] or [`Clock::set_ms`] moves it;
    /// every clone shares the same time.
    pub fn manual(start_ms: i64) -> Self {
        Self {
            manual: Some(Arc::new(AtomicI64::new(start_ms))),
        }
    }

    /// Now in epoch milliseconds.
    pub fn now_ms(&self) -> i64 {
        match &self.manual {
            Some(at) => at.load(Ordering::Acquire),
            None => now_ms(),
        }
    }

    /// Moves a manual clock forward; the system clock ignores it.
    pub fn advance(&self, by: Duration) {
        if let Some(at) = &self.manual {
            at.fetch_add(by.as_millis() as i64, Ordering::AcqRel);
        }
    }

    /// Sets a manual clock; the system clock ignores it.
    pub fn set_ms(&self, ms: i64) {
        if let Some(at) = &self.manual {
            at.store(ms, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told_and_clones_share_it() {
        let clock = Clock::manual(1_000);
        let other = clock.clone();
        assert_eq!(clock.now_ms(), 1_000);
        other.advance(Duration::from_millis(250));
        assert_eq!(clock.now_ms(), 1_250);
        clock.set_ms(5);
        assert_eq!(other.now_ms(), 5);
    }

    #[test]
    fn system_clock_follows_the_wall() {
        let clock = Clock::system();
        let before = now_ms();
        clock.advance(Duration::from_secs(3600));
        let read = clock.now_ms();
        assert!(
            read >= before && read - before < 60_000,
            "{read} vs {before}"
        );
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC) of epoch milliseconds: how the database stores times
/// written as text (checkpoints' `updated_at`).
pub fn utc_text(ms: i64) -> String {
    let (year, month, day) = contract::date::civil_from_days(ms.div_euclid(86_400_000));
    let of_day = ms.rem_euclid(86_400_000);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3_600_000,
        of_day / 60_000 % 60,
        of_day / 1000 % 60,
        of_day % 1000
    )
}

#[cfg(test)]
mod utc_text_tests {
    #[test]
    fn formats_like_sqlite_strftime() {
        assert_eq!(super::utc_text(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::utc_text(1_796_601_600_123),
            "2026-12-07T00:00:00.123Z"
        );
        assert_eq!(super::utc_text(951_827_696_007), "2000-02-29T12:34:56.007Z");
    }
}
