//! The metrics engine: turns Kinesis records into metrics.
//!
//! Data enters as [`RecordBatch`](crate::kinesis::RecordBatch)es on a bounded channel (from the
//! consumer) and leaves as per-second bucket deltas handed to the flush writer (storage commits
//! them with the consumer's checkpoints, in one transaction) and as rolling window summaries.
//! What a metric is (definitions, keys, stats, histograms) is [`crate::metric`]'s vocabulary.
//!
//! # Layout
//! - [`fields`]: resolving field paths in decoded records, event times, field discovery;
//!   [`json_scan`]: the fast scanner for flat JSON records.
//! - [`window`]: buckets (stats + HdrHistogram) and rolling windows.
//! - [`core`]: the pure, synchronous [`Engine`]: definitions, flushes, restore, live windows;
//!   its ingest is in `ingest` (classify each record, then release the batch with its
//!   position), `builtins` (the built-in metrics' counts), `extract` (applying a definition to a
//!   decoded record, and the editor's preview), `series` (the series index and cardinality
//!   guard) and `pending` (pending-second counts).
//! - [`partition`]: the engine over several cores: partitions by shard ([`Engine`]s that
//!   ingest), a [`Coordinator`] that routes batches, keeps the windows and merges the
//!   partitions' flushes and live views; [`Partitioned`] runs both on one thread.
//! - [`counters`]: late, future, overflowed and bad records per metric.
//! - [`settings`]: the engine's options ([`EngineSettings`]) and the core's and the task's
//!   settings built from them.
//! - [`shell`]: the async task that owns the coordinator, one thread per partition, the writer
//!   that hands flushes to a [`FlushSink`] on an interval, and retention.

mod builtins;
pub mod core;
pub mod counters;
mod extract;
pub mod fields;
mod ingest;
pub mod json_scan;
pub mod partition;
mod pending;
mod series;
pub mod settings;
pub mod shell;
pub mod window;

pub use self::core::{Engine, EngineConfig};
pub use extract::{Extracted, PreviewRow};
pub use partition::{Coordinator, Partitioned, PendingView};
pub use settings::EngineSettings;
pub use shell::{EngineHandle, FlushSink, ShellConfig, StorageFailure};
