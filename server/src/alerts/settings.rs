//! Alerting's settings: how often rules are evaluated and how the outbox worker delivers,
//! retries and gives up. Declared once here; [`spawn`](super::spawn) takes them.

use crate::settings::{self, Given, Settings, check_range, parse_positive_duration};
use clap::Args;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Options of alert evaluation and notification delivery.
#[derive(Debug, Clone, PartialEq, Eq, Args, Serialize, Deserialize)]
#[command(next_help_heading = "Alerts")]
#[serde(default, deny_unknown_fields)]
pub struct AlertsSettings {
    /// How often every alert rule is evaluated against the engine's live windows.
    #[arg(long, env = "STREAMBOARD_ALERTS_EVAL_INTERVAL", value_name = "DURATION", default_value = "1s", value_parser = parse_positive_duration)]
    #[serde(with = "settings::positive_duration")]
    pub alerts_eval_interval: Duration,

    /// How often the evaluator reads again which metrics exist (a rule on a deleted metric
    /// turns to `error`).
    #[arg(long, env = "STREAMBOARD_ALERTS_METRICS_REFRESH", value_name = "DURATION", default_value = "5s", value_parser = parse_positive_duration)]
    #[serde(with = "settings::positive_duration")]
    pub alerts_metrics_refresh: Duration,

    /// Timeout of one notification delivery (a webhook request or a Kinesis PutRecord).
    #[arg(long, env = "STREAMBOARD_ALERTS_DELIVERY_TIMEOUT", value_name = "DURATION", default_value = "10s", value_parser = parse_positive_duration)]
    #[serde(with = "settings::positive_duration")]
    pub alerts_delivery_timeout: Duration,

    /// Delivery attempts (1 to 1000) before a notification is given up; the default, with
    /// doubling waits, retries for about 1.5 h.
    #[arg(
        long,
        env = "STREAMBOARD_ALERTS_MAX_ATTEMPTS",
        value_name = "N",
        default_value = "20"
    )]
    pub alerts_max_attempts: u32,

    /// Longest wait between two delivery attempts (waits double from 1s up to this).
    #[arg(long, env = "STREAMBOARD_ALERTS_MAX_RETRY_DELAY", value_name = "DURATION", default_value = "5m", value_parser = parse_positive_duration)]
    #[serde(with = "settings::positive_duration")]
    pub alerts_max_retry_delay: Duration,

    /// Longest time the outbox worker sleeps before looking for due notifications again; a
    /// new transition wakes it at once.
    #[arg(long, env = "STREAMBOARD_ALERTS_OUTBOX_POLL_INTERVAL", value_name = "DURATION", default_value = "30s", value_parser = parse_positive_duration)]
    #[serde(with = "settings::positive_duration")]
    pub alerts_outbox_poll_interval: Duration,

    /// Due notifications (1 to 10000) the outbox worker reads and delivers per pass.
    #[arg(
        long,
        env = "STREAMBOARD_ALERTS_OUTBOX_BATCH",
        value_name = "N",
        default_value = "50"
    )]
    pub alerts_outbox_batch: u32,

    /// Addresses (`10.0.0.5`), ranges (`10.1.0.0/16`) or host names webhooks may reach although
    /// they are loopback, private or link-local (internal receivers); comma-separated. Every
    /// other internal address is refused, when a rule is saved and again at delivery.
    #[arg(
        long,
        env = "STREAMBOARD_ALERTS_WEBHOOK_ALLOW",
        value_name = "LIST",
        value_delimiter = ','
    )]
    pub alerts_webhook_allow: Vec<String>,
}

impl Default for AlertsSettings {
    fn default() -> Self {
        settings::defaults()
    }
}

impl Settings for AlertsSettings {
    fn finish(&mut self, _given: &Given) -> Result<(), String> {
        check_range("alerts_max_attempts", self.alerts_max_attempts, 1..=1000)?;
        check_range("alerts_outbox_batch", self.alerts_outbox_batch, 1..=10_000)?;
        super::notify::WebhookGuard::parse(&self.alerts_webhook_allow)
            .map(drop)
            .map_err(|e| format!("{}: {e}", settings::option("alerts_webhook_allow")))
    }
}
