//! Observability of Streamboard itself: log set-up ([`init_tracing`], with the options in
//! [`LogSettings`]) and the process's own figures for `GET /metrics` ([`ProcessMetrics`],
//! rendered by [`prometheus`]).

pub mod prometheus;

use crate::settings::{self, Settings};
use clap::{Args, ValueEnum};
use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeMap,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// Options of the logs, for every command.
#[derive(Debug, Clone, PartialEq, Eq, Args, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// Log format: `human` or `json` (one object per line).
    #[arg(
        long,
        env = "STREAMBOARD_LOG_FORMAT",
        global = true,
        value_enum,
        default_value = "human"
    )]
    pub log_format: LogFormat,

    /// Log filter in tracing's EnvFilter syntax, e.g. `info,streamboard=debug`.
    #[arg(
        long,
        env = "STREAMBOARD_LOG",
        global = true,
        value_name = "FILTER",
        default_value = "info"
    )]
    pub log: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        settings::defaults()
    }
}

impl Settings for LogSettings {}

/// Installs the global tracing subscriber; fails only on a bad filter string.
pub fn init_tracing(settings: &LogSettings) -> Result<(), String> {
    let filter = EnvFilter::try_new(&settings.log)
        .map_err(|error| format!("`{}`: {error}", settings.log))?;
    let registry = tracing_subscriber::registry().with(filter);
    match settings.log_format {
        LogFormat::Human => registry.with(fmt::layer().with_target(false)).init(),
        LogFormat::Json => registry
            .with(fmt::layer().json().flatten_event(true))
            .init(),
    }
    Ok(())
}

/// Counters the HTTP layer updates and `/metrics` reads. Each is a short critical section or an
/// atomic: nothing here is held across an await.
#[derive(Debug)]
pub struct ProcessMetrics {
    started: Instant,
    /// Requests served, by (route template, status code). Routes are templates (`/ws`,
    /// `/metric/{name}`) or `fallback`, so the label set stays bounded.
    http_requests: Mutex<BTreeMap<(String, u16), u64>>,
    ws_open: AtomicU64,
    ws_total: AtomicU64,
}

impl ProcessMetrics {
    pub fn new(started: Instant) -> Self {
        Self {
            started,
            http_requests: Mutex::new(BTreeMap::new()),
            ws_open: AtomicU64::new(0),
            ws_total: AtomicU64::new(0),
        }
    }

    pub fn uptime_secs_f64(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    pub fn record_http(&self, route: &str, status: u16) {
        let mut requests = self
            .http_requests
            .lock()
            .expect("metrics lock never poisoned");
        *requests.entry((route.to_string(), status)).or_default() += 1;
    }

    /// Counts a WebSocket session for as long as the guard lives.
    pub fn websocket_opened(&self) -> WebSocketGuard<'_> {
        self.ws_open.fetch_add(1, Ordering::Relaxed);
        self.ws_total.fetch_add(1, Ordering::Relaxed);
        WebSocketGuard(self)
    }

    pub fn websockets_open(&self) -> u64 {
        self.ws_open.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition of these figures.
    pub fn render(&self) -> String {
        use prometheus::{Exposition, MetricType};
        let mut out = Exposition::default();
        out.family(
            "streamboard_build_info",
            "Build information; the value is always 1.",
            MetricType::Gauge,
        )
        .sample(&[("version", env!("CARGO_PKG_VERSION"))], 1.0);
        out.family(
            "streamboard_uptime_seconds",
            "Seconds since the server started.",
            MetricType::Gauge,
        )
        .sample(&[], self.uptime_secs_f64());
        {
            let requests = self
                .http_requests
                .lock()
                .expect("metrics lock never poisoned");
            let mut family = out.family(
                "streamboard_http_requests_total",
                "HTTP requests served, by route template and status code.",
                MetricType::Counter,
            );
            for ((route, status), count) in requests.iter() {
                family.sample(
                    &[("route", route.as_str()), ("status", &status.to_string())],
                    *count as f64,
                );
            }
        }
        out.family(
            "streamboard_websocket_connections",
            "WebSocket sessions open now.",
            MetricType::Gauge,
        )
        .sample(&[], self.websockets_open() as f64);
        out.family(
            "streamboard_websocket_connections_total",
            "WebSocket sessions opened since start.",
            MetricType::Counter,
        )
        .sample(&[], self.ws_total.load(Ordering::Relaxed) as f64);
        out.finish()
    }
}

/// Decrements the open-WebSocket gauge when dropped.
pub struct WebSocketGuard<'a>(&'a ProcessMetrics);

impl Drop for WebSocketGuard<'_> {
    fn drop(&mut self) {
        self.0.ws_open.fetch_sub(1, Ordering::Relaxed);
    }
}
