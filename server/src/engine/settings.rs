//! The engine's settings: the pure core's tunables ([`EngineConfig`]) and the engine task's
//! ([`ShellConfig`]). They enter from `serve`'s configuration and leave as the values
//! [`Engine::new`](super::Engine::new) and [`spawn`](super::shell::spawn) are started with.

use std::{collections::HashSet, time::Duration};

/// Tunables of the pure core.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How far before its arrival a record's event time may be (default 60 s).
    pub allowed_lateness: Duration,
    /// How far after its arrival a record's event time may be (default 60 s).
    pub future_tolerance: Duration,
    /// Series per metric before new label values go to `__other__` (default 1,000).
    pub max_series_per_metric: usize,
    /// Recent bad-record examples kept per metric and reason (default 5).
    pub bad_examples: usize,
    /// Recent records kept per stream for field discovery (default 200).
    pub sample_records: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            allowed_lateness: Duration::from_secs(60),
            future_tolerance: Duration::from_secs(60),
            max_series_per_metric: 1000,
            bad_examples: 5,
            sample_records: 200,
        }
    }
}

/// Settings of the engine task.
#[derive(Debug, Clone)]
pub struct ShellConfig {
    pub engine: EngineConfig,
    /// How often changed buckets and checkpoints are committed (default 1 s).
    pub flush_interval: Duration,
    /// Capacity of the batch channel (default 64 batches).
    pub batch_capacity: usize,
    /// How long each tier is kept: 1 s rows, 1 min rows, 1 h rows (6 h, 14 d, 400 d).
    pub retention: [Duration; 3],
    /// How often retention runs (default 60 s).
    pub retention_interval: Duration,
    /// Streams a definition may name; `None` accepts any stream name.
    pub known_streams: Option<HashSet<String>>,
}

impl Default for ShellConfig {
    fn default() -> Self {
        Self {
            engine: EngineConfig::default(),
            flush_interval: Duration::from_secs(1),
            batch_capacity: 64,
            retention: [
                Duration::from_secs(6 * 3600),
                Duration::from_secs(14 * 86_400),
                Duration::from_secs(400 * 86_400),
            ],
            retention_interval: Duration::from_secs(60),
            known_streams: None,
        }
    }
}
