//! Streamboard's server: the Kinesis consumer, the metrics engine, storage, alerts, reports,
//! and the dashboard with its API and live push.
//!
//! # Layout (each layer uses only the layers below it; `scripts/layers.sh` checks it)
//! - [`config`]: typed configuration from flags, `STREAMBOARD_*` variables and a TOML file:
//!   `serve` is composed of each component's settings struct ([`http::ServerSettings`],
//!   [`live::Pacing`], [`consumer::ConsumerConfig`], [`pipeline::SourceSettings`],
//!   [`engine::EngineSettings`], [`alerts::AlertsSettings`], [`telemetry::LogSettings`]).
//! - [`http`]: the axum router: Leptos SSR pages, `/api/v1`, `/healthz`, `/metrics`, `/ws`,
//!   site assets; the server's own settings.
//! - [`live`]: the live hub (one publisher for every `/ws` session); [`pipeline`]: wires
//!   `serve`'s data path (the Kinesis source, the consumer, the engine's checkpoint hook).
//! - [`producer`]: PutRecords batching with retries and KPL aggregation; `streamboard produce`;
//!   [`tail`]: live record tails and record downloads, with their own shard readers.
//! - [`consumer`]: shard discovery, one polling reader per shard, KPL de-aggregation, record
//!   batches handed to the engine over a bounded channel.
//! - [`telemetry`]: tracing set-up and the process's own Prometheus figures.
//! - [`catalog`]: creating and changing metric definitions; [`alerts`]: threshold rules, their
//!   evaluation, transitions and notifications; [`export`]: CSV, JSON and HTML reports;
//!   [`auth`]: users, roles, login sessions, API tokens and the login throttle;
//!   [`dashboards`]: user-built dashboards (read, checked, stored).
//! - [`engine`]: the metrics engine (the pure core and the task that owns it);
//!   [`query`]: history queries over the stored tiers.
//! - [`storage`]: the database, SQLite or PostgreSQL (pools, migrations, every SQL statement,
//!   the flush writer and roll-ups).
//! - [`metric`]: the metrics vocabulary (definitions, filter, keys, stats, histogram codec).
//! - [`kinesis`]: the Kinesis vocabulary (names, sequence numbers, record batches,
//!   checkpoints, the streams to read, KPL, the SDK client); [`clock`]: the wall clock;
//!   [`settings`]: how a component declares its options, and the one merge that resolves
//!   them.
//! - [`app`] (another crate): the UI.
//! - [`streamboard_endpoint`] (another crate): the embedded Kinesis-compatible endpoint that
//!   [`pipeline`] starts when no AWS is configured, and `streamboard endpoint` runs alone.
//!
//! `main` parses the config and calls [`run`]; tests call [`Server::start`] on port 0.

#![recursion_limit = "256"]

pub mod alerts;
pub mod auth;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod consumer;
pub mod dashboards;
pub mod engine;
pub mod export;
pub mod http;
pub mod kinesis;
pub mod live;
pub mod metric;
pub mod pipeline;
pub mod producer;
pub mod query;
pub mod settings;
pub mod storage;
pub mod tail;
pub mod telemetry;

use crate::{config::ServeConfig, http::AppState, storage::Database, telemetry::ProcessMetrics};
use std::{net::SocketAddr, sync::Arc, time::Instant};
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("metric definition in the config file refused: {0}")]
    Metrics(#[from] catalog::CatalogError),
    #[error("alert rule in the config file refused: {0}")]
    AlertRules(#[from] alerts::rules_file::InstallError),
    #[error("the embedded Kinesis endpoint cannot start: {0}")]
    Endpoint(#[from] streamboard_endpoint::EndpointError),
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
    #[error("cannot serve HTTPS: {0}")]
    Tls(#[from] http::listener::TlsError),
}

/// A started server: its address, and the handle that waits for it to stop.
pub struct Server {
    local_addr: SocketAddr,
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<Result<(), ServerError>>,
    engine: engine::EngineHandle,
    batches: tokio::sync::mpsc::Sender<kinesis::RecordBatch>,
    pipeline: pipeline::Pipeline,
}

impl Server {
    /// Opens the database, binds the listener and starts serving in a background task.
    /// Cancel `shutdown` to stop; then [`Server::wait`] returns once everything is closed.
    pub async fn start(
        config: ServeConfig,
        shutdown: CancellationToken,
    ) -> Result<Self, ServerError> {
        let tls = match (&config.server.tls_cert, &config.server.tls_key) {
            (Some(cert), Some(key)) => Some(http::listener::tls_config(cert, key)?),
            _ => None,
        };
        let database =
            Database::connect(config.server.database.as_ref(), &config.server.data_dir).await?;
        let listener = TcpListener::bind(config.server.listen)
            .await
            .map_err(|source| ServerError::Bind {
                addr: config.server.listen,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(ServerError::Serve)?;
        let tracker = TaskTracker::new();
        let pipeline_config = pipeline::PipelineConfig {
            source: &config.source,
            consumer: &config.consumer,
            data_dir: &config.server.data_dir,
        };
        let streams = pipeline::streams_to_read(&pipeline_config);
        let mut definitions = config.metrics.clone();
        if matches!(config.source, pipeline::KinesisSource::Embedded { .. }) {
            // The embedded default shows meaningful metrics at once; the file's win on a name clash.
            for demo in metric::demo_definitions() {
                if !definitions.iter().any(|d| d.name == demo.name) {
                    definitions.push(demo);
                }
            }
        }
        catalog::install(&database, &definitions).await?;
        alerts::rules_file::install(&database, &config.alert_rules, clock::now_ms()).await?;
        let shell_config = engine::ShellConfig {
            known_streams: (!streams.is_empty()).then(|| {
                streams
                    .iter()
                    .map(|spec| spec.name_or_arn.name().to_string())
                    .collect()
            }),
            ..config.engine.shell_config()
        };
        let (engine_handle, batches) = engine::shell::spawn(
            shell_config,
            database.clone(),
            pipeline::CheckpointWriter {
                application: config.consumer.application.clone(),
            },
            &tracker,
            shutdown.clone(),
        )
        .await?;
        let pipeline = pipeline::start(
            &pipeline_config,
            &database,
            batches.clone(),
            &tracker,
            shutdown.clone(),
        )
        .await?;
        let alerts = alerts::spawn(
            config.alerts.clone(),
            database.clone(),
            engine_handle.clone(),
            Some(pipeline.kinesis.clone()),
            &tracker,
            shutdown.clone(),
        );
        let state = AppState::new(
            Arc::new(config.server.clone()),
            local_addr,
            database.clone(),
            Arc::new(ProcessMetrics::new(Instant::now())),
            shutdown.clone(),
            tracker.clone(),
        )
        .with_retention(config.engine.retention())
        .with_engine(engine_handle.clone())
        .with_pipeline(pipeline.clone())
        .with_alerts(alerts)
        .with_tails(tail::TailService::new(
            pipeline.kinesis.clone(),
            streams
                .iter()
                .map(|spec| spec.name_or_arn.clone())
                .collect(),
            tracker.clone(),
            shutdown.clone(),
        ))
        .with_live(live::spawn(
            config.live,
            engine_handle.clone(),
            pipeline.consumer_health.clone(),
            database.clone(),
            &tracker,
            shutdown.clone(),
        ));
        let scheme = if config.server.tls_enabled() {
            "https"
        } else {
            "http"
        };
        if let Some(secret) = state.auth.offer_setup().await? {
            tracing::warn!(
                "no users yet: open {scheme}://{local_addr}/login?setup={secret} once to create the first \
                 admin, or run `streamboard user add NAME --role admin`"
            );
        }
        let listener_config = http::listener::ListenerConfig {
            tls: tls.map(Arc::new),
            header_read_timeout: config.server.header_read_timeout,
        };
        let router = http::router(state);
        let handle = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                http::listener::serve(listener, router, listener_config, shutdown.clone()).await;
                // Order: HTTP stopped accepting; tracked tasks (WebSocket sessions, later the
                // readers and the engine) finish; then the pool closes.
                shutdown.cancel();
                tracker.close();
                if tokio::time::timeout(config.server.shutdown_timeout, tracker.wait())
                    .await
                    .is_err()
                {
                    tracing::warn!(
                        timeout = ?config.server.shutdown_timeout,
                        remaining = tracker.len(),
                        "shutdown timed out waiting for tasks"
                    );
                }
                database.close().await;
                tracing::info!("stopped");
                Ok(())
            }
        });
        tracing::info!(url = %format!("{scheme}://{local_addr}"), "serving");
        Ok(Self {
            local_addr,
            shutdown,
            handle,
            engine: engine_handle,
            batches,
            pipeline,
        })
    }

    /// The running metrics engine.
    pub fn engine(&self) -> &engine::EngineHandle {
        &self.engine
    }

    /// Where record batches enter the engine (the consumer's side of the channel).
    pub fn engine_batches(&self) -> tokio::sync::mpsc::Sender<kinesis::RecordBatch> {
        self.batches.clone()
    }

    /// The data path: the embedded endpoint's URL and the consumer's health, when running.
    pub fn pipeline(&self) -> &pipeline::Pipeline {
        &self.pipeline
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Asks the server to stop (same as SIGTERM).
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits until the server has stopped and everything is closed.
    pub async fn wait(self) -> Result<(), ServerError> {
        join(self.handle).await
    }
}

/// Waits for the server's task; a panic inside it resumes here instead of turning into an
/// error value.
pub(crate) async fn join<E>(handle: tokio::task::JoinHandle<Result<(), E>>) -> Result<(), E> {
    match handle.await {
        Ok(result) => result,
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

/// Runs `serve` until `shutdown` is cancelled.
pub async fn run(config: ServeConfig, shutdown: CancellationToken) -> Result<(), ServerError> {
    Server::start(config, shutdown).await?.wait().await
}
