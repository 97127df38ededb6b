//! The metrics engine: turns Kinesis records into metrics.
//!
//! Data enters as [`input::RecordBatch`]es on a bounded channel (from the consumer) and leaves
//! as per-second bucket deltas written to SQLite by the flush (with the consumer's checkpoints,
//! in one transaction), as rolling window summaries, and through [`query`].
//!
//! # Layout
//! - [`definition`]: metric definitions (TOML / JSON shape), validation, demo definitions.
//! - [`filter`]: the hand-written filter language.
//! - [`fields`]: decoding records and resolving field paths; field discovery.
//! - [`window`]: buckets (stats + HdrHistogram) and rolling windows.
//! - [`compact`]: HdrHistogram bucket indices and the V2 counts encoding from sparse counts.
//! - [`core`]: the pure, synchronous [`Engine`]: ingest, series, lateness, cardinality, deltas.
//! - [`shell`]: the one async task that owns the engine, flushes on an interval and runs
//!   retention.
//! - [`query`]: history queries over the stored tiers.
//! - [`catalog`]: create / update / delete / install definitions (versioned rows).

pub mod catalog;
pub mod compact;
pub mod core;
pub mod definition;
pub mod fields;
pub mod filter;
pub mod input;
pub mod query;
pub mod shell;
pub mod window;

pub use self::core::{Builtin, Engine, EngineConfig, Flush, MetricKey};
pub use definition::{CompiledMetric, DefinitionError, MetricDefinition, demo_definitions};
pub use input::{ConsumedRecord, RecordBatch};
pub use shell::{CheckpointHook, EngineHandle, NoCheckpoints, ShellConfig};
