//! Threshold alerts: rules on any metric's window statistic, a pure state machine per rule
//! instance, transitions stored in SQLite, and notifications through a durable outbox.
//!
//! - [`rule`]: the API's rule JSON checked into a typed [`rule::Rule`] (pure).
//! - [`machine`]: the per-instance state machine (pure, scripted tests).
//! - [`backtest`]: the state machine replayed over stored 1-second history.
//! - [`evaluate`]: what each instance observes in the engine's window (pure).
//! - [`rules_file`]: rules exported and imported as JSON or TOML (`[[alerts]]`).
//! - [`service`]: the evaluator task (every second) and the outbox worker (the I/O shell).
//! - `settings`: [`AlertsSettings`], the evaluation interval and the delivery limits.
//! - [`notify`]: webhook and Kinesis delivery; [`redact`]: webhook credentials masked in
//!   what the server shows.
//! - [`template`]: notification templates (MiniJinja) and the payload's fields.
//! - [`time`]: RFC 3339 times in epoch milliseconds.
//!
//! Exactly one notification per notifying transition: the transition, the instance's new state
//! and one outbox row per external target are written in ONE transaction; the outbox worker
//! marks a row delivered only after the target accepted it. A crash before the commit loses
//! the transition (it is re-detected at the next evaluation, because the instance state was
//! not stored either); a crash after it delivers it after the restart. A crash between a
//! target's acceptance and the `delivered` mark would deliver again: every payload carries the
//! transition `id` (and webhooks an `Idempotency-Key` header) so a receiver can drop the repeat.

pub mod backtest;
pub mod evaluate;
pub mod machine;
pub mod notify;
pub mod redact;
pub mod rule;
pub mod rules_file;
pub mod service;
mod settings;
pub mod template;
pub mod time;

pub use service::{AlertsHandle, spawn};
pub use settings::AlertsSettings;
