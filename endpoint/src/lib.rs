//! The embedded Kinesis-compatible endpoint: a local Kinesis Data Streams for Streamboard's
//! default set-up and for users' own producers and tests.
//!
//! It owns streams, shards, records and enhanced fan-out consumers under `<data-dir>/kinesis/`,
//! and the HTTP listener that speaks the Kinesis wire protocol (awsJson1_1 over HTTP/1.1,
//! `X-Amz-Target: Kinesis_20131202.<Operation>`). Data enters by PutRecord/PutRecords
//! and leaves by GetRecords or SubscribeToShard; nothing else reaches into it: Streamboard's
//! consumer reads it through aws-sdk-kinesis like any Kinesis. The crate depends on no other
//! Streamboard crate; the server starts it with [`Endpoint::start`] (embedded in `serve`) or
//! [`run`] (`streamboard endpoint`).
//!
//! # Layout
//! - [`wire`]: request/response serde types, the AWS error shape.
//! - [`encode`]: hand-written JSON encoders for the hot answers (GetRecords, PutRecords).
//! - [`eventstream`]: the AWS event-stream framing of SubscribeToShard's answer.
//! - [`model`]: pure core: streams, shards, hash ranges, sequence numbers, resharding,
//!   iterator tokens, consumers; refuses with its own [`model::ModelError`].
//! - [`log`]: segment files, framing, recovery, fsync with group commit, the topology file.
//! - [`request`]: request bodies to model inputs (JSON, required fields, base64, tokens).
//! - [`service`]: the single owner of the state (one mutex, short critical sections, I/O
//!   outside), the one mapping of model refusals to AWS errors, the per-stream wake-up
//!   channels and the registry of open subscriptions.
//! - [`subscription`]: one SubscribeToShard stream: claim, initial-response, events, end.
//! - [`http`]: the axum handler.
//! - [`limits`], [`faults`]: optional realism (per-shard throughput limits, fault injection).
//!
//! # Durability
//! A PutRecord/PutRecords is answered only after its frame is `fdatasync`ed; concurrent writes
//! share one sync (group commit). Records become readable (and are pushed to subscriptions)
//! only once durable. Topology changes, consumers included, are written to `meta.json`
//! atomically (temp + fsync + rename) before they are answered. On start, the log is replayed
//! and a torn tail is truncated. See [`log`] for the layout.
//!
//! # Enhanced fan-out
//! RegisterStreamConsumer, DescribeStreamConsumer, ListStreamConsumers and
//! DeregisterStreamConsumer as AWS documents them (at most 20 consumers per stream, names
//! unique per stream, ARN `<stream ARN>/consumer/<name>:<creation epoch seconds>`).
//! SubscribeToShard answers 200 with `application/vnd.amazon.eventstream`: an
//! `initial-response` event (`{}`), then `SubscribeToShardEvent`s as records become durable,
//! an empty one at least every [`EndpointConfig::subscription_heartbeat`], until
//! [`EndpointConfig::subscription_duration`] passes, the shard's end (a last event with
//! ChildShards and no ContinuationSequenceNumber), the consumer, stream or shard goes away (a
//! ResourceNotFoundException message), or shutdown. A second subscription of the same consumer
//! to the same shard while one is open is refused with HTTP 400 ResourceInUseException.
//!
//! # Differences from AWS
//! Signatures are not checked (a request needs an Authorization header, any value). Streams
//! and consumers are ACTIVE at once (no CREATING/UPDATING/DELETING delay). Tagging and
//! encryption are not implemented. UpdateShardCount records up to every overlapping old shard
//! as a parent in ChildShards; DescribeStream can show only the first two as
//! ParentShardId/AdjacentParentShardId. SubscribeToShard streams over HTTP/1.1 (chunked; AWS
//! requires HTTP/2, which this listener does not speak) and has no 2 MiB/s per-consumer read
//! limit; an event carries at most 2 MiB of record data.
//! A shard's StartingSequenceNumber is a number of its own, below its first record's.

pub mod encode;
pub mod eventstream;
pub mod faults;
pub mod http;
pub mod limits;
pub mod log;
pub mod model;
pub mod request;
pub mod service;
pub mod subscription;
pub mod wire;

use self::{
    faults::FaultConfig,
    log::Log,
    model::{Model, ModelSettings, Record, Topology},
    service::{Service, SubscriptionSettings},
};
use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Default address of `streamboard endpoint`.
pub const DEFAULT_ENDPOINT_LISTEN: &str = "127.0.0.1:4567";
/// AWS's iterator lifetime.
pub const DEFAULT_ITERATOR_TTL: Duration = Duration::from_secs(300);
/// Default limit on open shards across all streams.
pub const DEFAULT_SHARD_LIMIT: u32 = 1000;
/// AWS's SubscribeToShard lifetime.
pub const DEFAULT_SUBSCRIPTION_DURATION: Duration = Duration::from_secs(300);
/// AWS's longest gap between SubscribeToShard events.
pub const DEFAULT_SUBSCRIPTION_HEARTBEAT: Duration = Duration::from_secs(5);
/// How often records past retention are dropped.
const TRIM_INTERVAL: Duration = Duration::from_secs(60);

/// Everything the endpoint needs.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    pub listen: SocketAddr,
    /// Records live in `<data_dir>/kinesis/`.
    pub data_dir: PathBuf,
    /// How long a shard iterator stays valid (AWS: 5 minutes).
    pub iterator_ttl: Duration,
    /// Enforce AWS's per-shard throughput limits (off by default).
    pub throughput_limits: bool,
    /// Most open shards across all streams (LimitExceededException beyond).
    pub shard_limit: u32,
    /// Fault injection (off by default).
    pub faults: FaultConfig,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_timeout: Duration,
    /// How long a SubscribeToShard stream lasts (AWS: 5 minutes).
    pub subscription_duration: Duration,
    /// Longest gap between two SubscribeToShard events; an empty event is sent when nothing
    /// new arrived (AWS: about 5 seconds).
    pub subscription_heartbeat: Duration,
}

impl EndpointConfig {
    /// Defaults for tests and embedding: loopback on an OS-chosen port, realism off.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            iterator_ttl: DEFAULT_ITERATOR_TTL,
            throughput_limits: false,
            shard_limit: DEFAULT_SHARD_LIMIT,
            faults: FaultConfig::default(),
            shutdown_timeout: Duration::from_secs(10),
            subscription_duration: DEFAULT_SUBSCRIPTION_DURATION,
            subscription_heartbeat: DEFAULT_SUBSCRIPTION_HEARTBEAT,
        }
    }

    /// `<data_dir>/kinesis`.
    pub fn kinesis_dir(&self) -> PathBuf {
        self.data_dir.join("kinesis")
    }
}

/// Why the endpoint could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("cannot create {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the endpoint topology {path}: {message}")]
    Topology { path: PathBuf, message: String },
    #[error(transparent)]
    Log(#[from] log::LogError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the endpoint's HTTP server failed: {0}")]
    Serve(std::io::Error),
    #[error("endpoint start-up task failed: {0}")]
    Startup(String),
}

/// A started endpoint.
pub struct Endpoint {
    local_addr: SocketAddr,
    service: Arc<Service>,
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<Result<(), EndpointError>>,
}

/// Loads the topology and replays the log (blocking I/O; run off the async threads).
fn open_service(config: &EndpointConfig) -> Result<Service, EndpointError> {
    let dir = config.kinesis_dir();
    std::fs::create_dir_all(&dir).map_err(|source| EndpointError::DataDir {
        path: dir.clone(),
        source,
    })?;
    let meta_path = dir.join("meta.json");
    let settings = ModelSettings {
        shard_limit: config.shard_limit,
        throughput_limits: config.throughput_limits,
        iterator_ttl_ms: config.iterator_ttl.as_millis().min(i64::MAX as u128) as i64,
    };
    let mut model = match std::fs::read(&meta_path) {
        Ok(bytes) => {
            let topology: Topology =
                serde_json::from_slice(&bytes).map_err(|error| EndpointError::Topology {
                    path: meta_path.clone(),
                    message: error.to_string(),
                })?;
            if topology.version != 1 {
                return Err(EndpointError::Topology {
                    path: meta_path,
                    message: format!(
                        "written by a newer Streamboard (format {})",
                        topology.version
                    ),
                });
            }
            Model::from_topology(topology, settings)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let model = Model::new(rand::random(), settings);
            let bytes = model
                .topology_json()
                .map_err(|e| EndpointError::Startup(e.to_string()))?;
            log::write_atomic(&meta_path, &bytes)?;
            model
        }
        Err(source) => {
            return Err(EndpointError::DataDir {
                path: meta_path,
                source,
            });
        }
    };
    let mut replayed = 0usize;
    let log = Log::open(&dir.join("log"), |stream_id, records| {
        for r in records {
            replayed += 1;
            model.replay(
                stream_id,
                r.shard,
                Record {
                    seq: r.seq,
                    arrival_ms: r.arrival_ms,
                    lsn: 0,
                    partition_key: r.partition_key,
                    data: r.data,
                },
            );
        }
    })?;
    model.trim(service::now_millis());
    tracing::info!(
        replayed_records = replayed,
        streams = model.streams.len(),
        dir = %dir.display(),
        "endpoint storage opened"
    );
    Ok(Service::new(model, log, meta_path, config.faults.clone()))
}

impl Endpoint {
    /// Opens the storage (replaying the log), binds and serves until `shutdown` is cancelled;
    /// then stops accepting, lets in-flight requests finish, flushes the log and stops.
    pub async fn start(
        config: EndpointConfig,
        shutdown: CancellationToken,
    ) -> Result<Self, EndpointError> {
        let service = {
            let config = config.clone();
            tokio::task::spawn_blocking(move || open_service(&config))
                .await
                .map_err(|e| EndpointError::Startup(e.to_string()))??
        };
        let service = Arc::new(service.with_subscriptions(
            SubscriptionSettings {
                duration: config.subscription_duration,
                heartbeat: config.subscription_heartbeat,
            },
            shutdown.clone(),
        ));
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| EndpointError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(EndpointError::Serve)?;
        let tracker = TaskTracker::new();
        tracker.spawn(trim_loop(service.clone(), shutdown.clone()));
        let router = http::router(service.clone());
        let handle = tokio::spawn({
            let shutdown = shutdown.clone();
            let service = service.clone();
            async move {
                let served = axum::serve(listener, router)
                    .with_graceful_shutdown(shutdown.clone().cancelled_owned())
                    .await
                    .map_err(EndpointError::Serve);
                shutdown.cancel();
                tracker.close();
                if tokio::time::timeout(config.shutdown_timeout, tracker.wait())
                    .await
                    .is_err()
                {
                    tracing::warn!("endpoint shutdown timed out waiting for tasks");
                }
                let closing = service.clone();
                if let Err(error) = tokio::task::spawn_blocking(move || closing.close()).await {
                    tracing::error!(%error, "closing the endpoint log failed");
                }
                tracing::info!("endpoint stopped");
                served
            }
        });
        tracing::info!(url = %format!("http://{local_addr}"), "Kinesis-compatible endpoint serving");
        Ok(Self {
            local_addr,
            service,
            shutdown,
            handle,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://127.0.0.1:PORT`: the URL a Kinesis client is pointed at.
    pub fn url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// Replaces the fault injection while the endpoint runs (e.g. to end a fault period).
    pub fn set_faults(&self, faults: FaultConfig) {
        self.service.set_faults(faults);
    }

    /// Errors and delays injected so far.
    pub fn injected_faults(&self) -> u64 {
        self.service.injected_faults()
    }

    /// Asks the endpoint to stop.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits until the endpoint has stopped and its log is flushed.
    pub async fn wait(self) -> Result<(), EndpointError> {
        join(self.handle).await
    }
}

/// Waits for the endpoint's task; a panic inside it resumes here instead of turning into an
/// error value.
async fn join<E>(handle: tokio::task::JoinHandle<Result<(), E>>) -> Result<(), E> {
    match handle.await {
        Ok(result) => result,
        Err(join) => std::panic::resume_unwind(join.into_panic()),
    }
}

/// Runs `streamboard endpoint` until `shutdown` is cancelled.
pub async fn run(config: EndpointConfig, shutdown: CancellationToken) -> Result<(), EndpointError> {
    Endpoint::start(config, shutdown).await?.wait().await
}

async fn trim_loop(service: Arc<Service>, shutdown: CancellationToken) {
    let mut interval = tokio::time::interval(TRIM_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = interval.tick() => {
                let service = service.clone();
                match tokio::task::spawn_blocking(move || service.trim()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => tracing::warn!(%error, "retention trim failed"),
                    Err(error) => tracing::warn!(%error, "retention trim task failed"),
                }
            }
        }
    }
}
