//! The consumer's settings: the options of `serve` that shape how it reads (declared once, on
//! [`ConsumerConfig`]'s fields) and the fixed tunables that go with them. The streams it reads
//! are set after parsing, from `--stream` or the config file's `[[streams]]` tables.

use super::{DEFAULT_BATCH_CHANNEL_CAPACITY, MAX_RECORDS_PER_CALL, RecordBatch, StreamSpec};
use crate::settings::{self, Given, Settings, parse_positive_duration};
use clap::Args;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::sync::mpsc;

/// How the consumer reads.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
#[command(next_help_heading = "Consumer")]
#[serde(default, deny_unknown_fields)]
pub struct ConsumerConfig {
    /// Consumer application name: keys the checkpoints, so several applications can read the
    /// same stream independently.
    #[arg(
        long,
        env = "STREAMBOARD_APPLICATION",
        value_name = "NAME",
        default_value = "streamboard"
    )]
    pub application: String,

    /// Read every stream with enhanced fan-out: a consumer named after --application is
    /// registered with each stream, and shards are read by SubscribeToShard (records pushed
    /// as they arrive, throughput of its own, charged by AWS) instead of polling GetRecords.
    /// One stream of several: `efo = true` in its `[[streams]]` table.
    #[arg(long, env = "STREAMBOARD_EFO")]
    pub efo: bool,

    /// The streams read (not an option: from `--stream` or `[[streams]]`).
    #[arg(skip)]
    #[serde(skip)]
    pub streams: Vec<StreamSpec>,

    /// How often the consumer lists shards to pick up resharding (a finished shard also
    /// triggers a listing).
    #[arg(long, env = "STREAMBOARD_DISCOVERY_INTERVAL", value_name = "DURATION", default_value = "10s", value_parser = parse_positive_duration)]
    #[serde(with = "settings::positive_duration")]
    pub discovery_interval: Duration,

    /// How long a shard reader waits before polling again when it is caught up.
    #[arg(long, env = "STREAMBOARD_IDLE_POLL_INTERVAL", value_name = "DURATION", default_value = "200ms", value_parser = parse_positive_duration)]
    #[serde(with = "settings::positive_duration")]
    pub idle_poll_interval: Duration,

    /// GetRecords `Limit` (1..=10000; not an option).
    #[arg(skip = MAX_RECORDS_PER_CALL)]
    #[serde(skip)]
    pub records_per_call: i32,

    /// First back-off delay after a throttle or failure; doubles up to `backoff_max` (not an
    /// option).
    #[arg(skip = Duration::from_millis(100))]
    #[serde(skip)]
    pub backoff_base: Duration,

    #[arg(skip = Duration::from_secs(10))]
    #[serde(skip)]
    pub backoff_max: Duration,

    /// Capacity of the channel made by [`ConsumerConfig::batch_channel`] (not an option).
    #[arg(skip = DEFAULT_BATCH_CHANNEL_CAPACITY)]
    #[serde(skip)]
    pub batch_channel_capacity: usize,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        settings::defaults()
    }
}

impl Settings for ConsumerConfig {
    fn finish(&mut self, _given: &Given) -> Result<(), String> {
        if self.application.trim().is_empty() {
            return Err(format!(
                "{}: must not be empty",
                settings::option("application")
            ));
        }
        Ok(())
    }
}

impl ConsumerConfig {
    /// The declared defaults, for `application` reading `streams`.
    pub fn new(application: impl Into<String>, streams: Vec<StreamSpec>) -> Self {
        Self {
            application: application.into(),
            streams,
            ..Self::default()
        }
    }

    /// The bounded reader → sink channel.
    pub fn batch_channel(&self) -> (mpsc::Sender<RecordBatch>, mpsc::Receiver<RecordBatch>) {
        mpsc::channel(self.batch_channel_capacity.max(1))
    }
}
