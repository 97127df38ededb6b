//! Optional fault injection, off by default: an error rate for chosen operations (answered
//! with InternalFailure 500 or a throttle), added latency, and a short iterator lifetime (set
//! through `EndpointConfig::iterator_ttl`). Lets a consumer's back-off and
//! ExpiredIteratorException paths be tested against a real endpoint.

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
}

/// The fault settings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultConfig {
    /// Probability (0.0-1.0) that a request to one of `operations` fails.
    pub error_rate: f64,
    /// Operations that may fail; empty means all.
    pub operations: Vec<Operation>,
    pub kind: FaultKind,
    /// Delay added before every answer.
    pub added_latency: Duration,
}

impl FaultConfig {
    /// Whether any fault is configured.
    pub fn is_active(&self) -> bool {
        self.error_rate > 0.0 || !self.added_latency.is_zero()
    }

    /// Decides, with `roll` drawn uniformly from [0, 1), whether `op` fails now.
    pub fn inject(&self, op: Operation, roll: f64) -> Option<ApiError> {
        let chosen = self.operations.is_empty() || self.operations.contains(&op);
        if !chosen || roll >= self.error_rate {
            return None;
        }
        Some(match self.kind {
            FaultKind::InternalFailure => ApiError::new(
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
            added_latency: Duration::ZERO,
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
