//! Which streams to read and where a first start begins: a stream named by name or ARN
//! ([`StreamRef`]), a start position ([`StartPosition`]) and the pair ([`StreamSpec`]). The
//! configuration parses them from `--stream` flags or `[[streams]]` tables; the consumer reads
//! them.

use super::StreamName;
use aws_sdk_kinesis::primitives::{DateTime, DateTimeFormat};
use serde::Deserialize;
use std::{fmt, str::FromStr};

/// Where a shard without a checkpoint starts (checkpoints always win).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartPosition {
    /// Only records put after the reader starts.
    #[default]
    Latest,
    /// The oldest record still retained.
    TrimHorizon,
    /// The first record that arrived at or after this instant (epoch milliseconds).
    AtTimestamp { epoch_millis: i64 },
}

impl FromStr for StartPosition {
    type Err = String;

    /// `latest`, `trim_horizon`, or an RFC 3339 time such as `2026-01-31T12:00:00Z`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "latest" | "LATEST" => Ok(Self::Latest),
            "trim_horizon" | "TRIM_HORIZON" => Ok(Self::TrimHorizon),
            other => DateTime::from_str(other, DateTimeFormat::DateTime)
                .ok()
                .and_then(|time| time.to_millis().ok())
                .map(|epoch_millis| Self::AtTimestamp { epoch_millis })
                .ok_or_else(|| {
                    format!(
                        "`{other}` is not a start position: use latest, trim_horizon or an \
                         RFC 3339 time such as 2026-01-31T12:00:00Z"
                    )
                }),
        }
    }
}

impl fmt::Display for StartPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Latest => f.write_str("latest"),
            Self::TrimHorizon => f.write_str("trim_horizon"),
            Self::AtTimestamp { epoch_millis } => {
                let time = DateTime::from_millis(*epoch_millis);
                match time.fmt(DateTimeFormat::DateTime) {
                    Ok(text) => f.write_str(&text),
                    Err(_) => write!(f, "{epoch_millis}ms"),
                }
            }
        }
    }
}

impl<'de> Deserialize<'de> for StartPosition {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A stream named by its name or its ARN (`arn:aws:kinesis:REGION:ACCOUNT:stream/NAME`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StreamRef {
    Name(StreamName),
    Arn { arn: String, name: StreamName },
}

impl StreamRef {
    /// The stream's name (taken from the ARN's last part for an ARN): checkpoints are keyed by it.
    pub fn name(&self) -> &StreamName {
        match self {
            Self::Name(name) | Self::Arn { name, .. } => name,
        }
    }

    pub fn arn(&self) -> Option<&str> {
        match self {
            Self::Arn { arn, .. } => Some(arn),
            Self::Name(_) => None,
        }
    }
}

impl FromStr for StreamRef {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("arn:") {
            let name = rest
                .split(':')
                .nth(4)
                .and_then(|resource| resource.strip_prefix("stream/"))
                .filter(|name| valid_stream_name(name))
                .ok_or_else(|| {
                    format!(
                        "`{text}` is not a Kinesis stream ARN \
                         (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME)"
                    )
                })?;
            return Ok(Self::Arn {
                arn: text.to_string(),
                name: StreamName::new(name),
            });
        }
        if valid_stream_name(text) {
            Ok(Self::Name(StreamName::new(text)))
        } else {
            Err(format!(
                "`{text}` is not a stream name (1-128 characters: letters, digits, _ . -)"
            ))
        }
    }
}

impl fmt::Display for StreamRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(name) => write!(f, "{name}"),
            Self::Arn { arn, .. } => f.write_str(arn),
        }
    }
}

fn valid_stream_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// One stream the consumer reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    pub name_or_arn: StreamRef,
    /// Used only for shards that have no checkpoint yet.
    pub start: StartPosition,
    /// Read with enhanced fan-out (a registered consumer and SubscribeToShard) instead of
    /// polling GetRecords.
    pub efo: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_positions_parse() {
        assert_eq!("latest".parse(), Ok(StartPosition::Latest));
        assert_eq!("trim_horizon".parse(), Ok(StartPosition::TrimHorizon));
        assert_eq!(
            "1970-01-01T00:00:01.5Z".parse(),
            Ok(StartPosition::AtTimestamp { epoch_millis: 1500 })
        );
        let at: StartPosition = "2026-01-31T12:00:00Z".parse().unwrap();
        assert_eq!(at.to_string(), "2026-01-31T12:00:00Z");
        let error = "yesterday".parse::<StartPosition>().unwrap_err();
        assert!(error.contains("RFC 3339"), "{error}");
    }

    #[test]
    fn stream_refs_parse() {
        assert_eq!(
            "orders".parse::<StreamRef>().unwrap().name().as_str(),
            "orders"
        );
        let arn: StreamRef = "arn:aws:kinesis:eu-west-1:123456789012:stream/clicks"
            .parse()
            .unwrap();
        assert_eq!(arn.name().as_str(), "clicks");
        assert!(arn.arn().is_some());
        assert!("arn:aws:s3:::bucket".parse::<StreamRef>().is_err());
        assert!("has space".parse::<StreamRef>().is_err());
        assert!("".parse::<StreamRef>().is_err());
    }
}
