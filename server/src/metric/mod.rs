//! The metrics vocabulary: what a metric is and what its figures are, shared by the engine
//! (which computes them), storage (which keeps them) and the services above both. Plain types
//! and pure functions only; nothing here does I/O or knows about tasks.
//!
//! # Layout
//! - [`definition`]: metric definitions (TOML / JSON shape), validation, the compiled form,
//!   demo definitions.
//! - [`filter`]: the hand-written filter language of definitions.
//! - [`field`]: [`Pointer`](field::Pointer) (naming a record's field) and
//!   [`FieldValue`](field::FieldValue) (its value).
//! - [`key`]: [`MetricKey`], the [`Builtin`] kinds, series keys.
//! - [`stats`]: [`Stats`] (count, sum, min, max).
//! - [`histogram`]: HdrHistogram bucket arithmetic, sparse counts and the V2 codec (the one
//!   encoding of stored and in-memory histograms).
//! - [`flush`]: [`Flush`] and [`BucketDelta`], what a flush hands storage.

pub mod definition;
pub mod field;
pub mod filter;
pub mod flush;
pub mod histogram;
pub mod key;
pub mod stats;

pub use definition::{CompiledMetric, DefinitionError, MetricDefinition, demo_definitions};
pub use flush::{BucketDelta, Flush};
pub use key::{Builtin, MetricKey};
pub use stats::Stats;
