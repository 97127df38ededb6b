//! The data path of `serve`: a Kinesis source, the consumer, and the metrics engine's
//! checkpoint hook.
//!
//! ```text
//! KinesisSource::Embedded ─► embedded endpoint (loopback) ◄── demo producers (clickstream, logs, market)
//! KinesisSource::External ─► AWS, or the endpoint named by --kinesis-endpoint
//!            │
//!            ▼ Consumer (one reader per shard) ── RecordBatch<Checkpoint> ──► engine task
//!                                                   flush: buckets + CheckpointWriter, one transaction
//! ```
//! Every task runs on the server's tracker and stops with its token: readers first (they hand
//! over fetched batches), the engine drains and flushes, the endpoint stops last among them.

use crate::{
    config::{
        DemoKind, KinesisSource, PartitionKeySource, ServeConfig, StartPosition, StreamRef,
        StreamSpec,
    },
    consumer::{Consumer, ConsumerConfig, ConsumerHealth},
    kinesis::{
        Checkpoint, RecordBatch, ShardId, StreamName,
        client::{KinesisTarget, build_client},
    },
    producer::{Producer, ProducerRecord, cli::partition_key, demo::DemoGenerator},
    storage::{CheckpointHook, Database, StorageError, checkpoints},
};
use sqlx::SqliteConnection;
use std::{future::Future, net::SocketAddr, pin::Pin, time::Duration};
use streamboard_endpoint::{Endpoint, EndpointConfig, EndpointError};
use tokio::sync::{mpsc, watch};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// The demo streams of the embedded default: name, shard count, generator, partition key field.
pub const DEMO_STREAMS: [(&str, u32, DemoKind, &str); 3] = [
    ("clickstream", 2, DemoKind::Clickstream, "/user"),
    ("logs", 1, DemoKind::Logs, "/service"),
    ("market", 1, DemoKind::Market, "/symbol"),
];

/// How often a demo producer puts a batch.
const DEMO_TICK: Duration = Duration::from_millis(100);

/// The engine's checkpoint hook: stores the consumer's positions inside the flush transaction.
pub struct CheckpointWriter {
    pub application: String,
}

impl CheckpointHook<Checkpoint> for CheckpointWriter {
    fn write<'a>(
        &'a mut self,
        tx: &'a mut SqliteConnection,
        positions: &'a [(StreamName, ShardId, Checkpoint)],
    ) -> Pin<Box<dyn Future<Output = Result<(), StorageError>> + Send + 'a>> {
        Box::pin(async move {
            for (stream, shard, position) in positions {
                checkpoints::save(tx, &self.application, stream, shard, position).await?;
            }
            Ok(())
        })
    }
}

/// What the running data path exposes to the rest of the server.
#[derive(Clone)]
pub struct Pipeline {
    /// URL of the embedded endpoint, when `serve` runs one (users can point producers at it).
    pub embedded_endpoint_url: Option<String>,
    /// Per-shard health of the consumer, when it reads anything.
    pub consumer_health: Option<watch::Receiver<ConsumerHealth>>,
    /// A client of the Kinesis source (AWS or an endpoint): alert records are put with it.
    pub kinesis: aws_sdk_kinesis::Client,
}

/// The streams the consumer reads under `config` (the demo streams in embedded mode).
pub fn streams_to_read(config: &ServeConfig) -> Vec<StreamSpec> {
    match config.source {
        KinesisSource::Embedded { .. } if config.streams.is_empty() => DEMO_STREAMS
            .iter()
            .map(|(name, ..)| StreamSpec {
                name_or_arn: StreamRef::Name(StreamName::from(*name)),
                start: StartPosition::TrimHorizon,
            })
            .collect(),
        _ => config.streams.clone(),
    }
}

/// Starts the source, the demo producers and the consumer feeding `batches`.
pub async fn start(
    config: &ServeConfig,
    database: &Database,
    batches: mpsc::Sender<RecordBatch>,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<Pipeline, EndpointError> {
    let streams = streams_to_read(config);
    let (target, embedded_endpoint_url) = match &config.source {
        KinesisSource::External(target) => (target.clone(), None),
        KinesisSource::Embedded { listen, demo_rate } => {
            let endpoint = start_endpoint(config, *listen, shutdown.clone()).await?;
            let url = endpoint.url();
            tracing::info!(%url, "embedded Kinesis endpoint started (no AWS configured)");
            tracker.spawn(async move {
                if let Err(error) = endpoint.wait().await {
                    tracing::error!(%error, "embedded endpoint stopped with an error");
                }
            });
            let target = KinesisTarget::Local {
                endpoint_url: url.clone(),
            };
            let client = build_client(&target).await;
            for (name, shards, kind, key_field) in DEMO_STREAMS {
                let stream = StreamName::from(name);
                if let Err(error) = crate::producer::cli::ensure_stream(
                    &client,
                    &stream,
                    shards,
                    Duration::from_secs(10),
                )
                .await
                {
                    tracing::error!(%error, %stream, "cannot create the demo stream");
                    continue;
                }
                if *demo_rate > 0 {
                    let producer = Producer::new(client.clone(), stream);
                    tracker.spawn(demo_producer(
                        producer,
                        kind,
                        key_field,
                        *demo_rate,
                        shutdown.clone(),
                    ));
                }
            }
            (target, Some(url))
        }
    };
    let kinesis = build_client(&target).await;
    let consumer_health = if streams.is_empty() {
        tracing::warn!(
            "no streams to read: name them with --stream or [[streams]] in the config file"
        );
        None
    } else {
        let client = kinesis.clone();
        let consumer_config = ConsumerConfig {
            streams,
            ..ConsumerConfig::from_serve(config)
        };
        let handle = Consumer::start(
            client,
            consumer_config,
            database.clone(),
            batches,
            shutdown,
            tracker.clone(),
        );
        Some(handle.health)
    };
    Ok(Pipeline {
        embedded_endpoint_url,
        consumer_health,
        kinesis,
    })
}

/// Starts the embedded endpoint on `listen`, or on a free port when that one is taken.
async fn start_endpoint(
    config: &ServeConfig,
    listen: SocketAddr,
    shutdown: CancellationToken,
) -> Result<Endpoint, EndpointError> {
    let mut endpoint_config = EndpointConfig::for_data_dir(&config.data_dir);
    endpoint_config.listen = listen;
    match Endpoint::start(endpoint_config.clone(), shutdown.clone()).await {
        Ok(endpoint) => Ok(endpoint),
        Err(EndpointError::Bind { .. }) if listen.port() != 0 => {
            tracing::warn!(%listen, "embedded endpoint address in use; using a free port instead");
            endpoint_config.listen = SocketAddr::new(listen.ip(), 0);
            Endpoint::start(endpoint_config, shutdown).await
        }
        Err(error) => Err(error),
    }
}

/// Puts `rate_per_sec` synthetic records per second into one demo stream until shutdown.
async fn demo_producer(
    producer: Producer,
    kind: DemoKind,
    key_field: &'static str,
    rate_per_sec: u32,
    shutdown: CancellationToken,
) {
    let mut generator = DemoGenerator::new(kind, rand::random());
    let key_source = PartitionKeySource::JsonPointer(key_field.to_string());
    let mut ticker = tokio::time::interval(DEMO_TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let per_tick = f64::from(rate_per_sec) * DEMO_TICK.as_secs_f64();
    let mut owed = 0.0;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        owed += per_tick;
        let count = owed.floor() as usize;
        owed -= count as f64;
        let now_ms = crate::clock::now_ms();
        let records = (0..count)
            .map(|_| {
                let data = generator.next_record(now_ms).to_string().into_bytes();
                ProducerRecord {
                    partition_key: partition_key(&data, &key_source),
                    explicit_hash_key: None,
                    data: data.into(),
                }
            })
            .collect::<Vec<_>>();
        if records.is_empty() {
            continue;
        }
        let report = tokio::select! {
            _ = shutdown.cancelled() => return,
            report = producer.put(records) => report,
        };
        if report.failed > 0 {
            tracing::debug!(failed = report.failed, "demo producer: some records failed");
        }
    }
}
