//! Pure decisions of a shard reader: how an AWS error is classified and recovered from, how
//! long to back off, and how GetRecords calls are paced (at most 5 per second per shard).
//! No I/O here; the reader asks and obeys, so each rule is unit-tested without a runtime.

use aws_sdk_kinesis::error::{ProvideErrorMetadata, SdkError};
use std::time::{Duration, Instant};

/// An error from a Kinesis call, classified by what the caller must do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KinesisError {
    /// ProvisionedThroughputExceeded, LimitExceeded, KMS throttling, HTTP 429.
    #[error("throttled: {0}")]
    Throttled(String),
    /// The shard iterator is older than 5 minutes (or otherwise no longer valid).
    #[error("shard iterator expired: {0}")]
    ExpiredIterator(String),
    /// The stream or shard does not exist (deleted, or never existed).
    #[error("stream or shard not found: {0}")]
    NotFound(String),
    /// Network failure, timeout, or a 5xx: retry.
    #[error("transient failure: {0}")]
    Transient(String),
    /// Refused for a reason a retry may not fix soon (access denied, invalid argument).
    #[error("request refused: {0}")]
    Refused(String),
}

impl KinesisError {
    /// Classifies by AWS error code first, then HTTP status. Pure.
    pub fn classify(code: Option<&str>, http_status: Option<u16>, message: &str) -> Self {
        let text = match code {
            Some(code) if !message.is_empty() => format!("{code}: {message}"),
            Some(code) => code.to_string(),
            None if !message.is_empty() => message.to_string(),
            None => match http_status {
                Some(status) => format!("HTTP {status}"),
                None => "no response".to_string(),
            },
        };
        match code {
            Some(
                "ProvisionedThroughputExceededException"
                | "LimitExceededException"
                | "KMSThrottlingException"
                | "ThrottlingException"
                | "Throttling",
            ) => Self::Throttled(text),
            Some("ExpiredIteratorException") => Self::ExpiredIterator(text),
            Some("ResourceNotFoundException") => Self::NotFound(text),
            Some(
                "InternalFailure"
                | "InternalFailureException"
                | "ServiceUnavailable"
                | "ServiceUnavailableException"
                | "ResourceInUseException"
                | "ExpiredNextTokenException"
                | "RequestTimeout"
                | "RequestTimeoutException",
            ) => Self::Transient(text),
            _ => match http_status {
                Some(429) => Self::Throttled(text),
                Some(status) if status >= 500 => Self::Transient(text),
                Some(_) => Self::Refused(text),
                None => Self::Transient(text),
            },
        }
    }

    /// Classifies any aws-sdk-kinesis operation error.
    pub fn from_sdk<E, R>(error: &SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + 'static,
    {
        match error {
            SdkError::ServiceError(service) => {
                let status = raw_status(service.raw());
                let inner = service.err();
                Self::classify(inner.code(), status, inner.message().unwrap_or_default())
            }
            SdkError::ResponseError(response) => {
                Self::classify(None, raw_status(response.raw()), "unparseable response")
            }
            SdkError::TimeoutError(_) => Self::Transient("timed out".to_string()),
            SdkError::DispatchFailure(failure) => {
                Self::Transient(format!("dispatch failure: {failure:?}"))
            }
            SdkError::ConstructionFailure(_) => {
                Self::Refused(format!("request could not be built: {error}"))
            }
            other => Self::Transient(other.to_string()),
        }
    }

    /// What the reader does about this error.
    pub fn recovery(&self) -> Recovery {
        match self {
            Self::Throttled(_) => Recovery::BackOff {
                renew_iterator: false,
                throttled: true,
            },
            Self::ExpiredIterator(_) => Recovery::RenewIterator,
            Self::NotFound(_) => Recovery::Stop,
            // An iterator that got a 5xx may be the cause (some local endpoints answer a bad
            // iterator with a bare 500): renewing it from the last position is always safe.
            Self::Transient(_) | Self::Refused(_) => Recovery::BackOff {
                renew_iterator: true,
                throttled: false,
            },
        }
    }
}

fn raw_status<R: std::fmt::Debug + 'static>(raw: &R) -> Option<u16> {
    // The SDK's HttpResponse exposes `status()`, but `SdkError` is generic over `R`; read it
    // through the one concrete type the SDK uses.
    (raw as &dyn std::any::Any)
        .downcast_ref::<aws_sdk_kinesis::config::http::HttpResponse>()
        .map(|response| response.status().as_u16())
}

/// The reader's response to a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Wait a back-off delay, then retry (with a fresh iterator if `renew_iterator`).
    BackOff {
        renew_iterator: bool,
        throttled: bool,
    },
    /// Get a new iterator after the last processed record and continue at once.
    RenewIterator,
    /// Report and stop reading this shard.
    Stop,
}

/// Exponential back-off with "equal jitter": the delay after the n-th consecutive failure is
/// uniformly drawn from [d/2, d] with d = min(max, base * 2^n), so retries never synchronise
/// and never come sooner than half the nominal delay.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max: max.max(base),
            failures: 0,
        }
    }

    /// Delay before the next retry; `jitter` in [0, 1) (from an RNG in the shell).
    pub fn next_delay(&mut self, jitter: f64) -> Duration {
        let factor = 2u32.saturating_pow(self.failures.min(20));
        let nominal = self.base.saturating_mul(factor).min(self.max);
        self.failures = self.failures.saturating_add(1);
        let half = nominal / 2;
        half + half.mul_f64(jitter.clamp(0.0, 1.0))
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// After a success.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// The per-shard GetRecords limit.
pub const MIN_CALL_INTERVAL: Duration = Duration::from_millis(200);

/// Spaces calls to one shard at least [`MIN_CALL_INTERVAL`] apart: never more than 5 per second.
#[derive(Debug, Clone, Default)]
pub struct Pacer {
    last_call: Option<Instant>,
}

impl Pacer {
    /// How long to wait at `now` before the next call may start.
    pub fn wait_before_call(&self, now: Instant) -> Duration {
        match self.last_call {
            None => Duration::ZERO,
            Some(last) => (last + MIN_CALL_INTERVAL).saturating_duration_since(now),
        }
    }

    /// Records that a call started at `now`.
    pub fn record_call(&mut self, now: Instant) {
        self.last_call = Some(now);
    }
}

/// Delay before the next poll after a successful GetRecords: at once while behind (the batch
/// was full and MillisBehindLatest > 0), otherwise the idle interval. The pacer still applies.
pub fn next_poll_delay(
    records_returned: usize,
    records_limit: usize,
    millis_behind_latest: Option<i64>,
    idle_poll_interval: Duration,
) -> Duration {
    let behind = millis_behind_latest.is_some_and(|millis| millis > 0);
    if behind && records_returned >= records_limit {
        Duration::ZERO
    } else {
        idle_poll_interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified_by_code_then_status() {
        use KinesisError::*;
        let c = |code, status| KinesisError::classify(code, status, "m");
        assert!(matches!(
            c(Some("ProvisionedThroughputExceededException"), Some(400)),
            Throttled(_)
        ));
        assert!(matches!(
            c(Some("LimitExceededException"), Some(400)),
            Throttled(_)
        ));
        assert!(matches!(
            c(Some("ExpiredIteratorException"), Some(400)),
            ExpiredIterator(_)
        ));
        assert!(matches!(
            c(Some("ResourceNotFoundException"), Some(400)),
            NotFound(_)
        ));
        assert!(matches!(
            c(Some("InternalFailure"), Some(500)),
            Transient(_)
        ));
        assert!(matches!(c(None, Some(500)), Transient(_)));
        assert!(matches!(c(None, Some(503)), Transient(_)));
        assert!(matches!(c(None, Some(429)), Throttled(_)));
        assert!(matches!(
            c(Some("AccessDeniedException"), Some(400)),
            Refused(_)
        ));
        assert!(matches!(c(None, None), Transient(_)));
        assert_eq!(
            KinesisError::classify(None, Some(500), "").to_string(),
            "transient failure: HTTP 500"
        );
    }

    #[test]
    fn each_error_has_a_deliberate_recovery() {
        let e = |code| KinesisError::classify(Some(code), Some(400), "");
        assert_eq!(
            e("ProvisionedThroughputExceededException").recovery(),
            Recovery::BackOff {
                renew_iterator: false,
                throttled: true
            }
        );
        assert_eq!(
            e("ExpiredIteratorException").recovery(),
            Recovery::RenewIterator
        );
        assert_eq!(e("ResourceNotFoundException").recovery(), Recovery::Stop);
        assert_eq!(
            KinesisError::classify(None, Some(500), "").recovery(),
            Recovery::BackOff {
                renew_iterator: true,
                throttled: false
            }
        );
    }

    #[test]
    fn backoff_grows_is_capped_jittered_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        assert_eq!(backoff.next_delay(1.0), Duration::from_millis(100));
        assert_eq!(backoff.next_delay(0.0), Duration::from_millis(100));
        assert_eq!(backoff.next_delay(1.0), Duration::from_millis(400));
        for _ in 0..40 {
            let delay = backoff.next_delay(0.5);
            assert!(delay <= Duration::from_secs(2));
        }
        assert_eq!(backoff.next_delay(0.0), Duration::from_secs(1));
        assert_eq!(backoff.next_delay(1.0), Duration::from_secs(2));
        backoff.reset();
        assert_eq!(backoff.failures(), 0);
        let delay = backoff.next_delay(0.3);
        assert!(delay >= Duration::from_millis(50) && delay <= Duration::from_millis(100));
    }

    #[test]
    fn pacer_allows_at_most_five_calls_per_second() {
        let start = Instant::now();
        let mut pacer = Pacer::default();
        assert_eq!(pacer.wait_before_call(start), Duration::ZERO);
        // Simulate a caller that always calls as soon as allowed for one second.
        let mut now = start;
        let mut calls = 0;
        while now < start + Duration::from_secs(1) {
            now += pacer.wait_before_call(now);
            if now >= start + Duration::from_secs(1) {
                break;
            }
            pacer.record_call(now);
            calls += 1;
        }
        assert_eq!(calls, 5);
        pacer.record_call(start);
        assert_eq!(
            pacer.wait_before_call(start + Duration::from_millis(50)),
            Duration::from_millis(150)
        );
        assert_eq!(
            pacer.wait_before_call(start + Duration::from_secs(3)),
            Duration::ZERO
        );
    }

    #[test]
    fn polls_again_at_once_only_when_behind_with_a_full_batch() {
        let idle = Duration::from_millis(200);
        assert_eq!(next_poll_delay(100, 100, Some(5_000), idle), Duration::ZERO);
        assert_eq!(next_poll_delay(99, 100, Some(5_000), idle), idle);
        assert_eq!(next_poll_delay(100, 100, Some(0), idle), idle);
        assert_eq!(next_poll_delay(100, 100, None, idle), idle);
        assert_eq!(next_poll_delay(0, 100, Some(0), idle), idle);
    }
}
