//! The optional TOML config file. Every key is optional; unknown keys are refused so a typo
//! never silently falls back to a default.

use super::{ConfigError, FileStream, LogFormat, PositiveDuration};
use serde::Deserialize;
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};
use streamboard_endpoint::{
    faults::{FaultKind, parse_operations},
    wire::Operation,
};

/// The file's keys, each the long flag's name with `_` for `-`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub log_format: Option<LogFormat>,
    pub log: Option<String>,
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub site_root: Option<PathBuf>,
    pub heartbeat_interval: Option<PositiveDuration>,
    pub live_tick: Option<PositiveDuration>,
    pub live_min_interval: Option<PositiveDuration>,
    pub shutdown_timeout: Option<PositiveDuration>,
    /// `[[streams]]` tables: `name` or `arn`, and `start`.
    #[serde(default)]
    pub streams: Vec<FileStream>,
    pub application: Option<String>,
    pub discovery_interval: Option<PositiveDuration>,
    pub idle_poll_interval: Option<PositiveDuration>,
    pub kinesis_endpoint: Option<String>,
    pub embedded_listen: Option<SocketAddr>,
    pub demo_rate: Option<u32>,
    pub allowed_lateness: Option<PositiveDuration>,
    pub future_tolerance: Option<PositiveDuration>,
    pub max_series_per_metric: Option<u32>,
    pub flush_interval: Option<PositiveDuration>,
    pub retention_1s: Option<PositiveDuration>,
    pub retention_1m: Option<PositiveDuration>,
    pub retention_1h: Option<PositiveDuration>,
    /// Metric definitions (`[[metrics]]` tables), installed into the database at start-up.
    #[serde(default)]
    pub metrics: Vec<crate::metric::MetricDefinition>,
    /// `streamboard endpoint` options.
    pub endpoint: Option<EndpointFileConfig>,
}

/// The `[endpoint]` table: `streamboard endpoint`'s options.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointFileConfig {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub iterator_ttl: Option<PositiveDuration>,
    pub throughput_limits: Option<bool>,
    pub shard_limit: Option<u32>,
    pub fault_rate: Option<Probability>,
    #[serde(default, deserialize_with = "operations")]
    pub fault_operations: Option<Vec<Operation>>,
    pub fault_kind: Option<FaultKind>,
    pub added_latency: Option<AnyDuration>,
}

/// A probability in 0..=1 in the config file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Probability(pub f64);

impl<'de> Deserialize<'de> for Probability {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = f64::deserialize(deserializer)?;
        if (0.0..=1.0).contains(&value) {
            Ok(Probability(value))
        } else {
            Err(serde::de::Error::custom(format!(
                "must be between 0 and 1 (got {value})"
            )))
        }
    }
}

/// A duration (zero allowed) in the config file: `"0ms"`, `"50ms"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnyDuration(pub std::time::Duration);

impl<'de> Deserialize<'de> for AnyDuration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        contract::units::parse_duration(&text)
            .map(AnyDuration)
            .map_err(serde::de::Error::custom)
    }
}

fn operations<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<Operation>>, D::Error> {
    let names = Vec::<String>::deserialize(deserializer)?;
    parse_operations(&names.join(","))
        .map(Some)
        .map_err(serde::de::Error::custom)
}

impl FileConfig {
    /// Reads and parses `path`. Relative paths inside the file are relative to the file's
    /// directory, so a config works from wherever the binary is started.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Self::parse(&text).map_err(|message| ConfigError::File {
            path: path.to_path_buf(),
            message,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let endpoint_dir = config.endpoint.as_mut().and_then(|e| e.data_dir.as_mut());
        for dir in [
            config.data_dir.as_mut(),
            config.site_root.as_mut(),
            endpoint_dir,
        ]
        .into_iter()
        .flatten()
        {
            if dir.is_relative() {
                *dir = base.join(&*dir);
            }
        }
        Ok(config)
    }

    /// Parses TOML text; the error names the key, the line and the reason.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|error| error.to_string().trim_end().to_string())
    }
}
