//! Kinesis vocabulary shared by the consumer, the producer, the engine and storage: typed names
//! and positions, record batches and checkpoints, KPL aggregation, and the construction of an aws-sdk-kinesis client for AWS or any compatible
//! endpoint.

pub mod client;
pub mod kpl;
pub mod records;
pub mod streams;

pub use records::{Checkpoint, ConsumedRecord, RecordBatch};
pub use streams::{StartPosition, StreamRef, StreamSpec};

use serde::{Deserialize, Serialize};
use std::{cmp::Ordering, fmt};

macro_rules! string_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.to_string())
            }
        }
    };
}

string_newtype!(
    /// A stream's name (not its ARN).
    StreamName
);
string_newtype!(
    /// A shard's id, e.g. `shardId-000000000003`.
    ShardId
);

/// A Kinesis sequence number: a decimal string of up to 128 bits (AWS's are about 56 digits,
/// beyond `u128`). Ordered numerically, as AWS compares them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SequenceNumber(String);

impl SequenceNumber {
    /// Accepts a non-empty string of ASCII digits.
    pub fn parse(text: &str) -> Option<Self> {
        (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| Self(text.to_string()))
    }

    /// As [`SequenceNumber::parse`], taking the string without copying it; gives it back when
    /// it is not a sequence number.
    pub fn from_string(text: String) -> Result<Self, String> {
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(text))
        } else {
            Err(text)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn significant(&self) -> &str {
        let trimmed = self.0.trim_start_matches('0');
        if trimmed.is_empty() { "0" } else { trimmed }
    }
}

impl Ord for SequenceNumber {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (self.significant(), other.significant());
        a.len().cmp(&b.len()).then_with(|| a.cmp(b))
    }
}

impl PartialOrd for SequenceNumber {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_compare_numerically() {
        let s = |t: &str| SequenceNumber::parse(t).unwrap();
        assert!(s("9") < s("10"));
        assert!(s("0010") == s("10") || s("0010").cmp(&s("10")) == Ordering::Equal);
        assert!(
            s("49590338271490256608559692538361571095921575989136588898")
                > s("49590338271490256608559692538361571095921575989136588897")
        );
        assert!(SequenceNumber::parse("12a").is_none());
        assert!(SequenceNumber::parse("").is_none());
        assert_eq!(
            SequenceNumber::from_string("0042".to_string()),
            Ok(s("0042"))
        );
        assert_eq!(
            SequenceNumber::from_string("4x".to_string()),
            Err("4x".to_string())
        );
    }
}
