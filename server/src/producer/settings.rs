//! Options of `streamboard produce`: where records come from, where they go and how they are
//! keyed and batched ([`ProduceArgs`], resolved into [`ProduceConfig`]).

use crate::{
    kinesis::{StreamName, StreamRef, client::KinesisTarget},
    settings::parse_positive_duration,
};
use clap::{Args, ValueEnum};
use std::{path::PathBuf, time::Duration};

/// Options of `streamboard produce`.
#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Stream to put records into.
    #[arg(long, env = "STREAMBOARD_PRODUCE_STREAM", value_name = "NAME")]
    pub stream: StreamRef,

    /// A Kinesis-compatible endpoint on this machine (e.g. http://127.0.0.1:4567), used with
    /// dummy credentials. Without it, AWS is used through the standard credential chain.
    #[arg(long, env = "STREAMBOARD_ENDPOINT_URL", value_name = "URL")]
    pub endpoint_url: Option<String>,

    /// Read lines from this file instead of stdin.
    #[arg(long, value_name = "PATH", conflicts_with = "demo")]
    pub file: Option<PathBuf>,

    /// With --file: keep reading lines appended to the file, like `tail -f` (the Kinesis Agent's
    /// behaviour). Stop with Ctrl-C.
    #[arg(long, requires = "file")]
    pub follow: bool,

    /// Generate synthetic records instead of reading lines.
    #[arg(long, value_enum, value_name = "KIND")]
    pub demo: Option<DemoKind>,

    /// With --demo: records per second [default: 100].
    #[arg(long, value_name = "N", requires = "demo")]
    pub rate: Option<u32>,

    /// With --demo: RNG seed, for repeatable data [default: random].
    #[arg(long, value_name = "N", requires = "demo")]
    pub seed: Option<u64>,

    /// Stop after N records.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,

    /// Create the stream if it does not exist and wait until it is ACTIVE.
    #[arg(long)]
    pub create_stream: bool,

    /// With --create-stream: number of shards [default: 1].
    #[arg(long, value_name = "N", requires = "create_stream")]
    pub shards: Option<u32>,

    /// Partition key from this JSON Pointer into each record (e.g. /user); records that are
    /// not JSON or lack the field get a random key. Default: a random key per record.
    #[arg(long, value_name = "POINTER")]
    pub partition_key_field: Option<String>,

    /// Pack records into KPL aggregated records (de-aggregated by the KCL and by Streamboard).
    #[arg(long)]
    pub aggregate: bool,

    /// How long a partial batch may wait for more records before it is sent [default: 100ms].
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    pub linger: Option<Duration>,
}

/// Which synthetic data `--demo` generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DemoKind {
    /// Web requests: region, path, status, latency_ms (long-tailed), bytes, user.
    Clickstream,
    /// Application logs: level, service, message, duration_ms.
    Logs,
    /// Trades: symbol, price (random walk), volume.
    Market,
}

/// Where records come from.
#[derive(Debug, Clone, PartialEq)]
pub enum ProduceSource {
    Stdin,
    File {
        path: PathBuf,
        follow: bool,
    },
    Demo {
        kind: DemoKind,
        rate_per_sec: u32,
        seed: Option<u64>,
    },
}

/// How each record's partition key is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionKeySource {
    Random,
    /// A JSON Pointer (RFC 6901) into the record.
    JsonPointer(String),
}

/// Everything `produce` needs.
#[derive(Debug, Clone)]
pub struct ProduceConfig {
    pub target: KinesisTarget,
    pub stream: StreamName,
    pub stream_arn: Option<String>,
    pub source: ProduceSource,
    pub count: Option<u64>,
    /// `Some(shards)`: create the stream when missing.
    pub create_stream_shards: Option<u32>,
    pub partition_key: PartitionKeySource,
    pub aggregate: bool,
    pub linger: Duration,
}

const DEFAULT_RATE: u32 = 100;
const DEFAULT_LINGER: Duration = Duration::from_millis(100);

impl ProduceConfig {
    /// Checks the options that depend on each other; the error names the option.
    pub fn resolve(args: ProduceArgs) -> Result<Self, String> {
        let source = match (args.demo, args.file) {
            (Some(kind), _) => {
                let rate_per_sec = args.rate.unwrap_or(DEFAULT_RATE);
                if rate_per_sec == 0 {
                    return Err("--rate: must be at least 1 record per second".into());
                }
                ProduceSource::Demo {
                    kind,
                    rate_per_sec,
                    seed: args.seed,
                }
            }
            (None, Some(path)) => ProduceSource::File {
                path,
                follow: args.follow,
            },
            (None, None) => ProduceSource::Stdin,
        };
        let partition_key = match args.partition_key_field {
            None => PartitionKeySource::Random,
            Some(pointer) if pointer.is_empty() || pointer.starts_with('/') => {
                PartitionKeySource::JsonPointer(pointer)
            }
            Some(pointer) => {
                return Err(format!(
                    "--partition-key-field: `{pointer}` is not a JSON Pointer (it starts with /, e.g. /user)"
                ));
            }
        };
        let create_stream_shards = match (args.create_stream, args.shards.unwrap_or(1)) {
            (false, _) => None,
            (true, 0) => return Err("--shards: must be at least 1".into()),
            (true, shards) => Some(shards),
        };
        let target = match args.endpoint_url {
            Some(endpoint_url) => KinesisTarget::Local { endpoint_url },
            None => KinesisTarget::Aws,
        };
        Ok(Self {
            target,
            stream: args.stream.name().clone(),
            stream_arn: args.stream.arn().map(str::to_string),
            source,
            count: args.count,
            create_stream_shards,
            partition_key,
            aggregate: args.aggregate,
            linger: args.linger.unwrap_or(DEFAULT_LINGER),
        })
    }
}
