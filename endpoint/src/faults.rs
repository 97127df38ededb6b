//! Optional fault injection, off by default: an error rate for chosen operations (answered
//! with InternalFailure 500, a throttle, or either at even odds), latency added to a share of
//! their answers, and a short iterator lifetime (set through `EndpointConfig::iterator_ttl`).
//! Lets a consumer's and a producer's back-off and ExpiredIteratorException paths be tested
//! against a real endpoint. A running endpoint's faults can be changed
//! ([`Endpoint::set_faults`](crate::Endpoint::set_faults)), so a test can end a fault period.

use super::wire::{ApiError, ErrorKind, Operation};
use std::time::Duration;

/// What an injected fault looks like to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// HTTP 500 InternalFailure.
    #[default]
    InternalFailure,
    /// HTTP 400 ProvisionedThroughputExceededException (LimitExceededException for control
    /// operations).
    Throttle,
    /// Either of the above, at even odds.
    Mixed,
}

/// The fault settings.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    /// Probability (0.0-1.0) that a request to one of `operations` fails.
    pub error_rate: f64,
    /// Operations that fail and are delayed; empty means all.
    pub operations: Vec<Operation>,
    pub kind: FaultKind,
    /// Delay added before an answer to one of `operations`.
    pub added_latency: Duration,
    /// Probability (0.0-1.0) that `added_latency` is added to an answer (1: every answer).
    pub latency_rate: f64,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            error_rate: 0.0,
            operations: Vec::new(),
            kind: FaultKind::default(),
            added_latency: Duration::ZERO,
            latency_rate: 1.0,
        }
    }
}

impl FaultConfig {
    /// Whether any fault is configured.
    pub fn is_active(&self) -> bool {
        self.error_rate > 0.0 || (!self.added_latency.is_zero() && self.latency_rate > 0.0)
    }

    fn chosen(&self, op: Operation) -> bool {
        self.operations.is_empty() || self.operations.contains(&op)
    }

    /// The delay to add to this answer of `op`, with `roll` drawn uniformly from [0, 1).
    pub fn latency(&self, op: Operation, roll: f64) -> Option<Duration> {
        (self.chosen(op) && !self.added_latency.is_zero() && roll < self.latency_rate)
            .then_some(self.added_latency)
    }

    /// Decides, with `roll` drawn uniformly from [0, 1), whether `op` fails now.
    pub fn inject(&self, op: Operation, roll: f64) -> Option<ApiError> {
        if !self.chosen(op) || roll >= self.error_rate {
            return None;
        }
        let kind = match self.kind {
            // The lower half of the failing rolls throttles, the upper half fails.
            FaultKind::Mixed if roll < self.error_rate / 2.0 => FaultKind::Throttle,
            FaultKind::Mixed => FaultKind::InternalFailure,
            kind => kind,
        };
        Some(match kind {
            FaultKind::InternalFailure | FaultKind::Mixed => ApiError::new(
                ErrorKind::InternalFailure,
                format!(
                    "Injected fault: {} failed (fault injection is on)",
                    op.name()
                ),
            ),
            FaultKind::Throttle => {
                let kind = match op {
                    Operation::PutRecord
                    | Operation::PutRecords
                    | Operation::GetRecords
                    | Operation::GetShardIterator => ErrorKind::ProvisionedThroughputExceeded,
                    _ => ErrorKind::LimitExceeded,
                };
                ApiError::new(
                    kind,
                    format!("Rate exceeded for {} (fault injection is on)", op.name()),
                )
            }
        })
    }
}

/// Parses `PutRecords,GetRecords` into operations; the error names the bad one.
pub fn parse_operations(text: &str) -> Result<Vec<Operation>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|name| {
            Operation::from_name(name).ok_or_else(|| {
                format!("unknown operation {name:?}; expected names such as PutRecords,GetRecords")
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_hit_only_chosen_operations_at_the_rate() {
        let faults = FaultConfig {
            error_rate: 0.5,
            operations: vec![Operation::GetRecords],
            kind: FaultKind::Throttle,
            ..FaultConfig::default()
        };
        assert!(faults.inject(Operation::PutRecords, 0.0).is_none());
        assert!(faults.inject(Operation::GetRecords, 0.7).is_none());
        let error = faults.inject(Operation::GetRecords, 0.2).unwrap();
        assert_eq!(error.kind, ErrorKind::ProvisionedThroughputExceeded);
        assert!(
            FaultConfig::default()
                .inject(Operation::GetRecords, 0.0)
                .is_none()
        );
    }

    #[test]
    fn mixed_faults_throttle_or_fail_and_latency_hits_a_share() {
        let faults = FaultConfig {
            error_rate: 0.2,
            operations: vec![Operation::GetRecords, Operation::PutRecords],
            kind: FaultKind::Mixed,
            added_latency: Duration::from_secs(2),
            latency_rate: 0.1,
        };
        let kind = |roll| faults.inject(Operation::PutRecords, roll).map(|e| e.kind);
        assert_eq!(kind(0.05), Some(ErrorKind::ProvisionedThroughputExceeded));
        assert_eq!(kind(0.15), Some(ErrorKind::InternalFailure));
        assert_eq!(kind(0.25), None);
        assert_eq!(
            faults.latency(Operation::GetRecords, 0.05),
            Some(Duration::from_secs(2))
        );
        assert_eq!(faults.latency(Operation::GetRecords, 0.5), None);
        assert_eq!(faults.latency(Operation::ListShards, 0.0), None);
        // The default adds latency to every answer once a latency is set.
        let every = FaultConfig {
            added_latency: Duration::from_millis(5),
            ..FaultConfig::default()
        };
        assert!(every.is_active());
        assert_eq!(
            every.latency(Operation::ListShards, 0.99),
            Some(Duration::from_millis(5))
        );
    }

    #[test]
    fn operation_lists_parse() {
        assert_eq!(
            parse_operations("PutRecords, GetRecords").unwrap(),
            vec![Operation::PutRecords, Operation::GetRecords]
        );
        assert!(
            parse_operations("PutRecord,Nope")
                .unwrap_err()
                .contains("Nope")
        );
    }
}
