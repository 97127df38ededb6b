//! The engine's settings. [`EngineSettings`] declares its options (flag, environment variable,
//! config file key, default and doc, once each); [`EngineConfig`] (the pure core's tunables)
//! and [`ShellConfig`] (the engine task's) are the shapes the core and the task are started
//! with, built from it by [`EngineSettings::shell_config`], so their defaults are its defaults.

use crate::{
    clock::Clock,
    settings::{self, Settings, check_range, parse_positive_duration},
};
use clap::Args;
use serde::{Deserialize, Serialize};
use std::{collections::HashSet, time::Duration};

/// Recent bad-record examples kept per metric and reason.
const BAD_EXAMPLES: usize = 5;
/// Recent records kept per stream for field discovery.
const SAMPLE_RECORDS: usize = 200;
/// Capacity of the batch channel, in batches.
const BATCH_CAPACITY: usize = 64;
/// How often retention runs.
const RETENTION_INTERVAL: Duration = Duration::from_secs(60);
/// The largest `--max-series-per-metric`.
const MAX_SERIES_LIMIT: usize = 1_000_000;
/// The largest `--engine-partitions`.
const MAX_PARTITIONS: usize = 256;

/// Options of the metrics engine.
#[derive(Debug, Clone, PartialEq, Eq, Args, Serialize, Deserialize)]
#[command(next_help_heading = "Metrics engine")]
#[serde(default, deny_unknown_fields)]
pub struct EngineSettings {
    /// How far before its arrival a record's event time may be before it is counted as late
    /// instead of aggregated.
    #[arg(long, env = "STREAMBOARD_ALLOWED_LATENESS", value_name = "DURATION", default_value = "60s", value_parser = parse_positive_duration)]
    #[serde(with = "settings::positive_duration")]
    pub allowed_lateness: Duration,

    /// How far after its arrival a record's event time may be before it is counted as from
    /// the future.
    #[arg(long, env = "STREAMBOARD_FUTURE_TOLERANCE", value_name = "DURATION", default_value = "60s", value_parser = parse_positive_duration)]
    #[serde(with = "settings::positive_duration")]
    pub future_tolerance: Duration,

    /// Series per metric (1 to 1000000) before new label values go to `__other__`.
    #[arg(
        long,
        env = "STREAMBOARD_MAX_SERIES_PER_METRIC",
        value_name = "N",
        default_value = "1000"
    )]
    pub max_series_per_metric: usize,

    /// Partitions of the metrics engine (1 to 256): each ingests the records of its shards on
    /// a thread of its own. Default: one per available core.
    #[arg(long, env = "STREAMBOARD_ENGINE_PARTITIONS", value_name = "N")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine_partitions: Option<usize>,

    /// How often aggregates and checkpoints are committed to SQLite (one transaction).
    #[arg(long, env = "STREAMBOARD_FLUSH_INTERVAL", value_name = "DURATION", default_value = "1s", value_parser = parse_positive_duration)]
    #[serde(with = "settings::positive_duration")]
    pub flush_interval: Duration,

    /// How long 1-second history rows are kept.
    #[arg(long, env = "STREAMBOARD_RETENTION_1S", value_name = "DURATION", default_value = "6h", value_parser = parse_positive_duration)]
    #[serde(with = "settings::positive_duration")]
    pub retention_1s: Duration,

    /// How long 1-minute history rows are kept.
    #[arg(long, env = "STREAMBOARD_RETENTION_1M", value_name = "DURATION", default_value = "14d", value_parser = parse_positive_duration)]
    #[serde(with = "settings::positive_duration")]
    pub retention_1m: Duration,

    /// How long 1-hour history rows are kept.
    #[arg(long, env = "STREAMBOARD_RETENTION_1H", value_name = "DURATION", default_value = "400d", value_parser = parse_positive_duration)]
    #[serde(with = "settings::positive_duration")]
    pub retention_1h: Duration,
}

impl Default for EngineSettings {
    fn default() -> Self {
        settings::defaults()
    }
}

impl Settings for EngineSettings {
    fn finish(&mut self, _given: &settings::Given) -> Result<(), String> {
        check_range(
            "max_series_per_metric",
            self.max_series_per_metric,
            1..=MAX_SERIES_LIMIT,
        )?;
        if let Some(partitions) = self.engine_partitions {
            check_range("engine_partitions", partitions, 1..=MAX_PARTITIONS)?;
        }
        Ok(())
    }
}

impl EngineSettings {
    /// How long each tier is kept: 1 s rows, 1 min rows, 1 h rows.
    pub fn retention(&self) -> [Duration; 3] {
        [self.retention_1s, self.retention_1m, self.retention_1h]
    }

    /// The pure core's tunables under these settings.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            allowed_lateness: self.allowed_lateness,
            future_tolerance: self.future_tolerance,
            max_series_per_metric: self.max_series_per_metric,
            bad_examples: BAD_EXAMPLES,
            sample_records: SAMPLE_RECORDS,
        }
    }

    /// The number of engine partitions: as set, or one per available core.
    pub fn partitions(&self) -> usize {
        self.engine_partitions.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }

    /// The engine task's settings under these settings, accepting any stream name.
    pub fn shell_config(&self) -> ShellConfig {
        ShellConfig {
            engine: self.engine_config(),
            partitions: self.partitions(),
            flush_interval: self.flush_interval,
            batch_capacity: BATCH_CAPACITY,
            retention: self.retention(),
            retention_interval: RETENTION_INTERVAL,
            known_streams: None,
            clock: Clock::system(),
        }
    }
}

/// Tunables of the pure core (see [`EngineSettings`] for the options' meaning and defaults).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub allowed_lateness: Duration,
    pub future_tolerance: Duration,
    pub max_series_per_metric: usize,
    /// Recent bad-record examples kept per metric and reason (5).
    pub bad_examples: usize,
    /// Recent records kept per stream for field discovery (200).
    pub sample_records: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineSettings::default().engine_config()
    }
}

/// Settings of the engine task (see [`EngineSettings`] for the options' meaning and defaults).
#[derive(Debug, Clone)]
pub struct ShellConfig {
    pub engine: EngineConfig,
    /// Partitions, each ingesting its shards on a thread of its own (one per available core).
    pub partitions: usize,
    /// How often changed buckets and checkpoints are committed.
    pub flush_interval: Duration,
    /// Capacity of the batch channel (64 batches).
    pub batch_capacity: usize,
    /// How long each tier is kept: 1 s rows, 1 min rows, 1 h rows.
    pub retention: [Duration; 3],
    /// How often retention runs (60 s).
    pub retention_interval: Duration,
    /// Streams a definition may name; `None` accepts any stream name.
    pub known_streams: Option<HashSet<String>>,
    /// The clock ingest, flush cutoffs and retention read (the system's; tests may hold one).
    pub clock: Clock,
}

impl Default for ShellConfig {
    fn default() -> Self {
        EngineSettings::default().shell_config()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_declared_ones() {
        let shell = ShellConfig::default();
        assert_eq!(shell.engine.allowed_lateness, Duration::from_secs(60));
        assert_eq!(shell.engine.future_tolerance, Duration::from_secs(60));
        assert_eq!(shell.engine.max_series_per_metric, 1000);
        assert_eq!(shell.engine.bad_examples, 5);
        assert_eq!(shell.engine.sample_records, 200);
        assert_eq!(shell.flush_interval, Duration::from_secs(1));
        assert_eq!(shell.batch_capacity, 64);
        assert_eq!(
            shell.retention,
            [
                Duration::from_secs(6 * 3600),
                Duration::from_secs(14 * 86_400),
                Duration::from_secs(400 * 86_400),
            ]
        );
        assert_eq!(shell.retention_interval, Duration::from_secs(60));
        assert!(shell.known_streams.is_none());
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        assert_eq!(shell.partitions, cores);
    }
}
