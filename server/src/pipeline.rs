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
//! Where Kinesis is read from is configured by [`SourceSettings`], resolved into a
//! [`KinesisSource`].

use crate::{
    consumer::{Consumer, ConsumerConfig, ConsumerHealth},
    kinesis::{
        Checkpoint, RecordBatch, ShardId, StartPosition, StreamName, StreamRef, StreamSpec,
        client::{KinesisTarget, build_client},
    },
    producer::{
        Producer, ProducerRecord,
        cli::partition_key,
        demo::DemoGenerator,
        settings::{DemoKind, PartitionKeySource},
    },
    settings::{self, Given, Settings, check_range},
    storage::{CheckpointHook, Conn, Database, StorageError, checkpoints},
};
use clap::Args;
use serde::{Deserialize, Serialize};
use std::{future::Future, net::SocketAddr, path::Path, pin::Pin, time::Duration};
use streamboard_endpoint::{Endpoint, EndpointConfig, EndpointError};
use tokio::sync::{mpsc, watch};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// The demo streams of the embedded default: name, shard count, generator, partition key field.
pub const DEMO_STREAMS: [(&str, u32, DemoKind, &str); 3] = [
    ("clickstream", 2, DemoKind::Clickstream, "/user"),
    ("logs", 1, DemoKind::Logs, "/service"),
    ("market", 1, DemoKind::Market, "/symbol"),
];

/// The largest `--demo-rate`.
const MAX_DEMO_RATE: u32 = 100_000;

/// Options of where `serve` reads Kinesis from.
#[derive(Debug, Clone, PartialEq, Eq, Args, Serialize, Deserialize)]
#[command(next_help_heading = "Kinesis source")]
#[serde(default, deny_unknown_fields)]
pub struct SourceSettings {
    /// Read Kinesis from this compatible endpoint (e.g. http://127.0.0.1:4567) instead of AWS.
    /// Without it, and with no streams and no AWS settings (AWS_REGION, AWS_PROFILE,
    /// AWS_ENDPOINT_URL_KINESIS, AWS_ACCESS_KEY_ID), serve starts the embedded endpoint with
    /// demo streams.
    #[arg(long, env = "STREAMBOARD_KINESIS_ENDPOINT", value_name = "URL")]
    pub kinesis_endpoint: Option<String>,

    /// Address of the embedded Kinesis endpoint in the no-AWS default; a free port is used if it
    /// is taken.
    #[arg(
        long,
        env = "STREAMBOARD_EMBEDDED_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:4567"
    )]
    pub embedded_listen: SocketAddr,

    /// Records per second (0 to 100000) the demo producer puts into each demo stream of the
    /// embedded default; 0 turns it off.
    #[arg(
        long,
        env = "STREAMBOARD_DEMO_RATE",
        value_name = "N",
        default_value = "50"
    )]
    pub demo_rate: u32,
}

impl Default for SourceSettings {
    fn default() -> Self {
        settings::defaults()
    }
}

impl Settings for SourceSettings {
    /// Checks `kinesis_endpoint` and writes it without a trailing `/`.
    fn finish(&mut self, _given: &Given) -> Result<(), String> {
        if let Some(url) = &self.kinesis_endpoint {
            let url = parse_endpoint_url(url)
                .map_err(|error| format!("{}: {error}", settings::option("kinesis_endpoint")))?;
            self.kinesis_endpoint = Some(url);
        }
        check_range("demo_rate", self.demo_rate, 0..=MAX_DEMO_RATE)
    }
}

/// An endpoint URL: `http://` or `https://` and a host; the trailing `/` is dropped.
fn parse_endpoint_url(text: &str) -> Result<String, String> {
    let rest = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"))
        .ok_or_else(|| format!("`{text}` must start with http:// or https://"))?;
    if rest.trim_end_matches('/').is_empty() {
        return Err(format!("`{text}` has no host"));
    }
    Ok(text.trim_end_matches('/').to_string())
}

/// Where `serve` reads Kinesis from.
#[derive(Debug, Clone, PartialEq)]
pub enum KinesisSource {
    /// Nothing configured: the embedded endpoint on `listen`, with the demo streams and a demo
    /// producer putting `demo_rate` records/s into each.
    Embedded { listen: SocketAddr, demo_rate: u32 },
    /// AWS through the standard chain, or a compatible endpoint.
    External(KinesisTarget),
}

impl SourceSettings {
    /// Where to read from: the endpoint when one is named; else AWS when streams are named or
    /// the environment names AWS (`aws_configured`); else the embedded endpoint.
    pub fn source(&self, streams_named: bool, aws_configured: bool) -> KinesisSource {
        match &self.kinesis_endpoint {
            Some(endpoint_url) => KinesisSource::External(KinesisTarget::Local {
                endpoint_url: endpoint_url.clone(),
            }),
            None if streams_named || aws_configured => KinesisSource::External(KinesisTarget::Aws),
            None => KinesisSource::Embedded {
                listen: self.embedded_listen,
                demo_rate: self.demo_rate,
            },
        }
    }
}

/// What the data path is started with.
#[derive(Debug, Clone)]
pub struct PipelineConfig<'a> {
    pub source: &'a KinesisSource,
    /// The consumer's settings and the streams named by the configuration.
    pub consumer: &'a ConsumerConfig,
    /// Where the embedded endpoint keeps its records (under `kinesis/`).
    pub data_dir: &'a Path,
}

/// How often a demo producer puts a batch.
const DEMO_TICK: Duration = Duration::from_millis(100);

/// The engine's checkpoint hook: stores the consumer's positions inside the flush transaction.
pub struct CheckpointWriter {
    pub application: String,
}

impl CheckpointHook<Checkpoint> for CheckpointWriter {
    fn write<'a>(
        &'a mut self,
        mut tx: Conn<'a>,
        positions: &'a [(StreamName, ShardId, Checkpoint)],
    ) -> Pin<Box<dyn Future<Output = Result<(), StorageError>> + Send + 'a>> {
        Box::pin(async move {
            for (stream, shard, position) in positions {
                checkpoints::save(&mut tx, &self.application, stream, shard, position).await?;
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
pub fn streams_to_read(config: &PipelineConfig<'_>) -> Vec<StreamSpec> {
    match config.source {
        KinesisSource::Embedded { .. } if config.consumer.streams.is_empty() => DEMO_STREAMS
            .iter()
            .map(|(name, ..)| StreamSpec {
                name_or_arn: StreamRef::Name(StreamName::from(*name)),
                start: StartPosition::TrimHorizon,
                efo: config.consumer.efo,
            })
            .collect(),
        _ => config.consumer.streams.clone(),
    }
}

/// Starts the source, the demo producers and the consumer feeding `batches`.
pub async fn start(
    config: &PipelineConfig<'_>,
    database: &Database,
    batches: mpsc::Sender<RecordBatch>,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<Pipeline, EndpointError> {
    let streams = streams_to_read(config);
    let (target, embedded_endpoint_url) = match config.source {
        KinesisSource::External(target) => (target.clone(), None),
        KinesisSource::Embedded { listen, demo_rate } => {
            let endpoint = start_endpoint(config.data_dir, *listen, shutdown.clone()).await?;
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
            ..config.consumer.clone()
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
    data_dir: &Path,
    listen: SocketAddr,
    shutdown: CancellationToken,
) -> Result<Endpoint, EndpointError> {
    let mut endpoint_config = EndpointConfig::for_data_dir(data_dir);
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
