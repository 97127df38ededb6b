//! Typed configuration: command-line flags, `STREAMBOARD_*` environment variables and an
//! optional TOML file, resolved once at start-up into plain structs.
//!
//! Precedence is flag > environment variable > config file > built-in default; every default
//! works offline. [`Config::load`] is the only entry point and returns a [`ConfigError`] that
//! names the option and says what is wrong; `main` prints it and exits with code 2.

mod file;
mod produce;
mod streams;

use crate::kinesis::client::KinesisTarget;
use clap::{Args, Parser, Subcommand, ValueEnum};
use contract::units::{format_duration, parse_duration};
use std::{net::SocketAddr, path::PathBuf, time::Duration};
use streamboard_endpoint::{
    DEFAULT_ENDPOINT_LISTEN, DEFAULT_ITERATOR_TTL, DEFAULT_SHARD_LIMIT, EndpointConfig,
    faults::{FaultConfig, FaultKind, parse_operations},
    wire::Operation,
};

pub use file::{EndpointFileConfig, FileConfig};
pub use produce::{DemoKind, PartitionKeySource, ProduceArgs, ProduceConfig, ProduceSource};
pub use streams::{FileStream, StartPosition, StreamRef, StreamSpec};

/// Default address of the UI and API.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:3000";
/// Default data directory (database, and the embedded endpoint's records).
pub const DEFAULT_DATA_DIR: &str = "./data";
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);
const DEFAULT_LIVE_TICK: Duration = Duration::from_millis(250);
const DEFAULT_LIVE_MIN_INTERVAL: Duration = Duration::from_millis(100);
const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// Default consumer application name (the key of its checkpoints).
pub const DEFAULT_APPLICATION: &str = "streamboard";
const DEFAULT_DISCOVERY_INTERVAL: Duration = Duration::from_secs(10);
const DEFAULT_IDLE_POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Streamboard: a live metrics dashboard for Amazon Kinesis Data Streams.
///
/// Options can also be set with STREAMBOARD_* environment variables or in a TOML file given
/// with --config (flags win over the environment, which wins over the file).
#[derive(Debug, Parser)]
#[command(name = "streamboard", version, about, long_about, max_term_width = 100)]
pub struct Cli {
    /// TOML configuration file. Keys are the long option names with `_` for `-`
    /// (e.g. `data_dir = "/var/lib/streamboard"`); `streamboard endpoint` options go in an
    /// `[endpoint]` table.
    #[arg(long, env = "STREAMBOARD_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log format: `human` (default) or `json` (one object per line).
    #[arg(long, env = "STREAMBOARD_LOG_FORMAT", global = true, value_enum)]
    pub log_format: Option<LogFormat>,

    /// Log filter in tracing's EnvFilter syntax [default: info].
    #[arg(long, env = "STREAMBOARD_LOG", global = true, value_name = "FILTER")]
    pub log: Option<String>,

    #[command(subcommand)]
    pub command: Option<CliCommand>,
}

#[derive(Debug, Subcommand)]
#[expect(
    clippy::large_enum_variant,
    reason = "parsed once per process; boxing would only add indirection"
)]
pub enum CliCommand {
    /// Serve the dashboard, API and live updates (the default command).
    Serve(ServeArgs),
    /// Put records into a Kinesis stream: lines from stdin or a file, or synthetic demo data.
    Produce(ProduceArgs),
    /// Run only the built-in Kinesis-compatible endpoint (a local Kinesis for your own
    /// producers and tests). Signatures are not checked; any Authorization header is accepted.
    Endpoint(EndpointArgs),
}

/// Options of `streamboard endpoint`.
#[derive(Debug, Default, Args)]
pub struct EndpointArgs {
    /// Address the Kinesis-compatible endpoint listens on [default: 127.0.0.1:4567].
    #[arg(long, env = "STREAMBOARD_ENDPOINT_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// Directory holding the endpoint's records under `kinesis/` (created if missing)
    /// [default: ./data].
    #[arg(long, env = "STREAMBOARD_ENDPOINT_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// How long a shard iterator stays valid; shorten it (e.g. 2s) to test a consumer's
    /// ExpiredIteratorException path [default: 5m].
    #[arg(long, env = "STREAMBOARD_ENDPOINT_ITERATOR_TTL", value_name = "DURATION", value_parser = parse_positive_duration)]
    pub iterator_ttl: Option<Duration>,

    /// Enforce AWS's per-shard limits (1 MiB/s or 1,000 records/s in; 5 GetRecords calls/s
    /// and 2 MiB/s out) with ProvisionedThroughputExceededException [default: off].
    #[arg(long, env = "STREAMBOARD_ENDPOINT_THROUGHPUT_LIMITS", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub throughput_limits: Option<bool>,

    /// Most open shards across all streams; more gives LimitExceededException [default: 1000].
    #[arg(long, env = "STREAMBOARD_ENDPOINT_SHARD_LIMIT", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub shard_limit: Option<u32>,

    /// Fault injection: probability (0 to 1) that a request to one of --fault-operations fails
    /// [default: 0].
    #[arg(long, env = "STREAMBOARD_ENDPOINT_FAULT_RATE", value_name = "P", value_parser = parse_probability)]
    pub fault_rate: Option<f64>,

    /// Fault injection: comma-separated operations that may fail, e.g. PutRecords,GetRecords
    /// [default: all].
    #[arg(long, env = "STREAMBOARD_ENDPOINT_FAULT_OPERATIONS", value_name = "OPS", value_parser = parse_operation_list)]
    pub fault_operations: Option<OperationList>,

    /// Fault injection: `internal-failure` (HTTP 500) or `throttle`
    /// (ProvisionedThroughputExceededException) [default: internal-failure].
    #[arg(
        long,
        env = "STREAMBOARD_ENDPOINT_FAULT_KIND",
        value_enum,
        value_name = "KIND"
    )]
    pub fault_kind: Option<FaultKind>,

    /// Fault injection: delay added to every answer, e.g. 50ms [default: 0ms].
    #[arg(long, env = "STREAMBOARD_ENDPOINT_ADDED_LATENCY", value_name = "DURATION", value_parser = parse_duration)]
    pub added_latency: Option<Duration>,
}

/// A parsed `--fault-operations` list.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationList(pub Vec<Operation>);

fn parse_operation_list(text: &str) -> Result<OperationList, String> {
    parse_operations(text).map(OperationList)
}

/// clap value parser: a probability in 0..=1.
fn parse_probability(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number"))?;
    if !(0.0..=1.0).contains(&value) {
        return Err(format!("must be between 0 and 1 (got {value})"));
    }
    Ok(value)
}

/// Options of `streamboard serve`.
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// Address the dashboard and API listen on [default: 127.0.0.1:3000]. Binding to anything
    /// but loopback exposes the dashboard to the network.
    #[arg(long, env = "STREAMBOARD_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// Directory for the SQLite database (created if missing) [default: ./data].
    #[arg(long, env = "STREAMBOARD_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Serve the site (wasm, JS, CSS, public/) from this directory instead of the copy embedded
    /// in the binary; for development.
    #[arg(long, env = "STREAMBOARD_SITE_ROOT", value_name = "DIR")]
    pub site_root: Option<PathBuf>,

    /// Interval between WebSocket heartbeats, e.g. 5s [default: 5s].
    #[arg(long, env = "STREAMBOARD_HEARTBEAT_INTERVAL", value_name = "DURATION", value_parser = parse_positive_duration)]
    pub heartbeat_interval: Option<Duration>,

    /// How often the live publisher pushes fresh figures to browsers, e.g. 250ms [default: 250ms].
    #[arg(long, env = "STREAMBOARD_LIVE_TICK", value_name = "DURATION", value_parser = parse_positive_duration)]
    pub live_tick: Option<Duration>,

    /// The shortest time between two live pushes: when the engine has read new records the
    /// publisher pushes this soon after the previous push instead of waiting for the tick;
    /// equal to the tick pushes on the tick only, e.g. 100ms [default: 100ms].
    #[arg(long, env = "STREAMBOARD_LIVE_MIN_INTERVAL", value_name = "DURATION", value_parser = parse_positive_duration)]
    pub live_min_interval: Option<Duration>,

    /// How long shutdown waits for in-flight work before giving up [default: 10s].
    #[arg(long, env = "STREAMBOARD_SHUTDOWN_TIMEOUT", value_name = "DURATION", value_parser = parse_positive_duration)]
    pub shutdown_timeout: Option<Duration>,

    /// A stream to read (name or ARN); repeat for several. Replaces the config file's
    /// `[[streams]]` tables when given.
    #[arg(
        long = "stream",
        env = "STREAMBOARD_STREAMS",
        value_delimiter = ',',
        value_name = "NAME"
    )]
    pub streams: Vec<StreamRef>,

    /// Where `--stream` streams start when they have no checkpoint: `latest`, `trim_horizon`
    /// or an RFC 3339 time [default: latest].
    #[arg(long, env = "STREAMBOARD_START", value_name = "POSITION")]
    pub start: Option<StartPosition>,

    /// Consumer application name: keys the checkpoints, so several applications can read the
    /// same stream independently [default: streamboard].
    #[arg(long, env = "STREAMBOARD_APPLICATION", value_name = "NAME")]
    pub application: Option<String>,

    /// Metrics engine: how far before its arrival a record's event time may be before it is
    /// counted as late instead of aggregated [default: 60s].
    #[arg(long, env = "STREAMBOARD_ALLOWED_LATENESS", value_name = "DURATION", value_parser = parse_positive_duration)]
    pub allowed_lateness: Option<Duration>,

    /// Metrics engine: how far after its arrival a record's event time may be before it is
    /// counted as from the future [default: 60s].
    #[arg(long, env = "STREAMBOARD_FUTURE_TOLERANCE", value_name = "DURATION", value_parser = parse_positive_duration)]
    pub future_tolerance: Option<Duration>,

    /// Metrics engine: series per metric before new label values go to `__other__`
    /// [default: 1000].
    #[arg(long, env = "STREAMBOARD_MAX_SERIES_PER_METRIC", value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_series_per_metric: Option<u32>,

    /// Metrics engine: how often aggregates and checkpoints are committed to SQLite
    /// [default: 1s].
    #[arg(long, env = "STREAMBOARD_FLUSH_INTERVAL", value_name = "DURATION", value_parser = parse_positive_duration)]
    pub flush_interval: Option<Duration>,

    /// How long 1-second history rows are kept [default: 6h].
    #[arg(long, env = "STREAMBOARD_RETENTION_1S", value_name = "DURATION", value_parser = parse_positive_duration)]
    pub retention_1s: Option<Duration>,

    /// How long 1-minute history rows are kept [default: 14d].
    #[arg(long, env = "STREAMBOARD_RETENTION_1M", value_name = "DURATION", value_parser = parse_positive_duration)]
    pub retention_1m: Option<Duration>,

    /// How long 1-hour history rows are kept [default: 400d].
    #[arg(long, env = "STREAMBOARD_RETENTION_1H", value_name = "DURATION", value_parser = parse_positive_duration)]
    pub retention_1h: Option<Duration>,

    /// How often the consumer lists shards to pick up resharding [default: 10s].
    #[arg(long, env = "STREAMBOARD_DISCOVERY_INTERVAL", value_name = "DURATION", value_parser = parse_positive_duration)]
    pub discovery_interval: Option<Duration>,

    /// How long a shard reader waits before polling again when it is caught up [default: 200ms].
    #[arg(long, env = "STREAMBOARD_IDLE_POLL_INTERVAL", value_name = "DURATION", value_parser = parse_positive_duration)]
    pub idle_poll_interval: Option<Duration>,

    /// Read Kinesis from this compatible endpoint (e.g. http://127.0.0.1:4567) instead of AWS.
    /// Without it, and with no streams and no AWS settings (AWS_REGION, AWS_PROFILE,
    /// AWS_ENDPOINT_URL_KINESIS, AWS_ACCESS_KEY_ID), serve starts the embedded endpoint with
    /// demo streams.
    #[arg(long, env = "STREAMBOARD_KINESIS_ENDPOINT", value_name = "URL", value_parser = parse_endpoint_url)]
    pub kinesis_endpoint: Option<String>,

    /// Address of the embedded Kinesis endpoint in the no-AWS default; a free port is used if it
    /// is taken [default: 127.0.0.1:4567].
    #[arg(long, env = "STREAMBOARD_EMBEDDED_LISTEN", value_name = "ADDR")]
    pub embedded_listen: Option<SocketAddr>,

    /// Records per second the demo producer puts into each demo stream of the embedded default;
    /// 0 turns it off [default: 50].
    #[arg(long, env = "STREAMBOARD_DEMO_RATE", value_name = "N", value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub demo_rate: Option<u32>,
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

/// Default address of the embedded endpoint started by `serve`.
pub const DEFAULT_EMBEDDED_LISTEN: &str = "127.0.0.1:4567";
/// Default demo records per second per demo stream.
pub const DEFAULT_DEMO_RATE: u32 = 50;

/// Whether the environment names an AWS account, region or endpoint.
fn aws_configured(var: impl Fn(&str) -> Option<String>) -> bool {
    [
        "AWS_ENDPOINT_URL_KINESIS",
        "AWS_ENDPOINT_URL",
        "AWS_PROFILE",
        "AWS_REGION",
        "AWS_ACCESS_KEY_ID",
    ]
    .iter()
    .any(|name| var(name).is_some_and(|value| !value.is_empty()))
}

/// clap/TOML check for an endpoint URL: `http://` or `https://` and a host.
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

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// The resolved configuration of one run.
#[derive(Debug, Clone)]
pub struct Config {
    pub log: LogConfig,
    pub command: Command,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    pub filter: String,
}

#[derive(Debug, Clone)]
#[expect(
    clippy::large_enum_variant,
    reason = "resolved once per process; boxing would only add indirection"
)]
pub enum Command {
    Serve(ServeConfig),
    Produce(ProduceConfig),
    Endpoint(EndpointConfig),
}

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub site_root: Option<PathBuf>,
    pub heartbeat_interval: Duration,
    /// Longest interval between two live publisher pushes (`/ws` updates).
    pub live_tick: Duration,
    /// Shortest interval between two pushes, used when new records were ingested.
    pub live_min_interval: Duration,
    pub shutdown_timeout: Duration,
    /// Streams the consumer reads (empty: the consumer is idle).
    pub streams: Vec<StreamSpec>,
    /// Consumer application name; keys the checkpoints.
    pub application: String,
    pub discovery_interval: Duration,
    pub idle_poll_interval: Duration,
    /// Metric definitions from the config file (`[[metrics]]`); the API can add more.
    pub metrics: Vec<crate::metric::MetricDefinition>,
    /// Where Kinesis is read from.
    pub source: KinesisSource,
    /// Metrics engine tunables.
    pub engine: EngineSettings,
}

/// The metrics engine's settings (`--allowed-lateness`, `--max-series-per-metric`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct EngineSettings {
    pub allowed_lateness: Duration,
    pub future_tolerance: Duration,
    pub max_series_per_metric: usize,
    pub flush_interval: Duration,
    /// Retention of the 1 s, 1 min and 1 h tiers.
    pub retention: [Duration; 3],
}

impl Default for EngineSettings {
    fn default() -> Self {
        let shell = crate::engine::ShellConfig::default();
        Self {
            allowed_lateness: shell.engine.allowed_lateness,
            future_tolerance: shell.engine.future_tolerance,
            max_series_per_metric: shell.engine.max_series_per_metric,
            flush_interval: shell.flush_interval,
            retention: shell.retention,
        }
    }
}

impl EngineSettings {
    /// The engine task's configuration with these settings.
    pub fn apply(&self, mut shell: crate::engine::ShellConfig) -> crate::engine::ShellConfig {
        shell.engine.allowed_lateness = self.allowed_lateness;
        shell.engine.future_tolerance = self.future_tolerance;
        shell.engine.max_series_per_metric = self.max_series_per_metric;
        shell.flush_interval = self.flush_interval;
        shell.retention = self.retention;
        shell
    }
}

impl ServeConfig {
    /// Defaults for tests and embedding: loopback on an OS-chosen port, data in `data_dir`.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            site_root: None,
            heartbeat_interval: DEFAULT_HEARTBEAT,
            live_tick: DEFAULT_LIVE_TICK,
            live_min_interval: DEFAULT_LIVE_MIN_INTERVAL,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            streams: Vec::new(),
            application: DEFAULT_APPLICATION.to_string(),
            discovery_interval: DEFAULT_DISCOVERY_INTERVAL,
            idle_poll_interval: DEFAULT_IDLE_POLL_INTERVAL,
            metrics: Vec::new(),
            source: KinesisSource::External(KinesisTarget::Aws),
            engine: EngineSettings::default(),
        }
    }
}

/// A configuration value that cannot be used, with where it came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Flags or environment variables did not parse; clap's message names the option.
    #[error("{0}")]
    Cli(#[from] clap::Error),
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    File { path: PathBuf, message: String },
    /// A value that parsed but cannot be used; the message names the option.
    #[error("{0}")]
    Invalid(String),
}

impl ConfigError {
    /// Help and version requests are not errors: they print to stdout and exit 0.
    pub fn exit_code(&self) -> u8 {
        match self {
            ConfigError::Cli(error) if !error.use_stderr() => 0,
            _ => 2,
        }
    }

    /// Prints the error the way its kind expects (clap formats its own, with colour and usage).
    pub fn print(&self) {
        match self {
            ConfigError::Cli(error) => {
                let _ = error.print();
            }
            other => eprintln!("error: {other}"),
        }
    }
}

impl Config {
    /// Parses the process's arguments and environment, then the config file if one is named.
    pub fn load() -> Result<Self, ConfigError> {
        Self::load_from(std::env::args_os())
    }

    /// As [`Config::load`], with explicit arguments (the environment is still read).
    pub fn load_from<I, T>(args: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let cli = Cli::try_parse_from(args)?;
        let cli_config_path = cli.config.clone();
        let file = match &cli.config {
            Some(path) => FileConfig::read(path)?,
            None => FileConfig::default(),
        };
        Self::resolve(cli, file).map_err(|message| match cli_config_path {
            Some(path) => ConfigError::File { path, message },
            None => ConfigError::Invalid(message),
        })
    }

    /// Layers flags/environment over the file over the defaults. The error names the file key
    /// or option whose value cannot be used.
    pub fn resolve(cli: Cli, file: FileConfig) -> Result<Self, String> {
        let log = LogConfig {
            format: cli.log_format.or(file.log_format).unwrap_or_default(),
            filter: cli
                .log
                .or(file.log.clone())
                .unwrap_or_else(|| "info".to_string()),
        };
        let command = match cli.command {
            None => Command::Serve(ServeConfig::resolve(ServeArgs::default(), &file)?),
            Some(CliCommand::Serve(args)) => Command::Serve(ServeConfig::resolve(args, &file)?),
            Some(CliCommand::Produce(args)) => Command::Produce(ProduceConfig::resolve(args)?),
            Some(CliCommand::Endpoint(args)) => Command::Endpoint(resolve_endpoint(args, &file)),
        };
        Ok(Config { log, command })
    }
}

impl ServeConfig {
    fn resolve(args: ServeArgs, file: &FileConfig) -> Result<Self, String> {
        let streams = if args.streams.is_empty() {
            file.streams
                .iter()
                .enumerate()
                .map(|(index, stream)| stream.to_spec(index))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            let start = args.start.unwrap_or_default();
            args.streams
                .iter()
                .map(|name_or_arn| StreamSpec {
                    name_or_arn: name_or_arn.clone(),
                    start,
                })
                .collect()
        };
        let application = args
            .application
            .or_else(|| file.application.clone())
            .unwrap_or_else(|| DEFAULT_APPLICATION.to_string());
        if application.trim().is_empty() {
            return Err("application: must not be empty".to_string());
        }
        let kinesis_endpoint = match args.kinesis_endpoint {
            Some(url) => Some(url),
            None => file
                .kinesis_endpoint
                .as_deref()
                .map(|url| parse_endpoint_url(url).map_err(|e| format!("kinesis_endpoint: {e}")))
                .transpose()?,
        };
        let source = match kinesis_endpoint {
            Some(endpoint_url) => KinesisSource::External(KinesisTarget::Local { endpoint_url }),
            None if !streams.is_empty() || aws_configured(|name| std::env::var(name).ok()) => {
                KinesisSource::External(KinesisTarget::Aws)
            }
            None => KinesisSource::Embedded {
                listen: args
                    .embedded_listen
                    .or(file.embedded_listen)
                    .unwrap_or_else(|| {
                        DEFAULT_EMBEDDED_LISTEN
                            .parse()
                            .expect("the default embedded address parses")
                    }),
                demo_rate: args
                    .demo_rate
                    .or(file.demo_rate)
                    .unwrap_or(DEFAULT_DEMO_RATE),
            },
        };
        if file.max_series_per_metric == Some(0) {
            return Err("max_series_per_metric: must be at least 1".to_string());
        }
        let live_tick = args
            .live_tick
            .or(file.live_tick.map(|d| d.0))
            .unwrap_or(DEFAULT_LIVE_TICK);
        let live_min_interval = args
            .live_min_interval
            .or(file.live_min_interval.map(|d| d.0))
            .unwrap_or(DEFAULT_LIVE_MIN_INTERVAL.min(live_tick));
        if live_min_interval > live_tick {
            return Err(format!(
                "live_min_interval (--live-min-interval) is {live_min_interval:?}: it must not exceed \
                 live_tick (--live-tick), {live_tick:?}"
            ));
        }
        Ok(Self {
            source,
            streams,
            application,
            discovery_interval: args
                .discovery_interval
                .or(file.discovery_interval.map(|d| d.0))
                .unwrap_or(DEFAULT_DISCOVERY_INTERVAL),
            idle_poll_interval: args
                .idle_poll_interval
                .or(file.idle_poll_interval.map(|d| d.0))
                .unwrap_or(DEFAULT_IDLE_POLL_INTERVAL),
            listen: args.listen.or(file.listen).unwrap_or_else(|| {
                DEFAULT_LISTEN
                    .parse()
                    .expect("the default listen address parses")
            }),
            data_dir: args
                .data_dir
                .or_else(|| file.data_dir.clone())
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            site_root: args.site_root.or_else(|| file.site_root.clone()),
            heartbeat_interval: args
                .heartbeat_interval
                .or(file.heartbeat_interval.map(|d| d.0))
                .unwrap_or(DEFAULT_HEARTBEAT),
            live_tick,
            live_min_interval,
            shutdown_timeout: args
                .shutdown_timeout
                .or(file.shutdown_timeout.map(|d| d.0))
                .unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT),
            metrics: file.metrics.clone(),
            engine: {
                let defaults = EngineSettings::default();
                let pick = |arg: Option<Duration>, file: Option<PositiveDuration>, default| {
                    arg.or(file.map(|d| d.0)).unwrap_or(default)
                };
                EngineSettings {
                    allowed_lateness: pick(
                        args.allowed_lateness,
                        file.allowed_lateness,
                        defaults.allowed_lateness,
                    ),
                    future_tolerance: pick(
                        args.future_tolerance,
                        file.future_tolerance,
                        defaults.future_tolerance,
                    ),
                    max_series_per_metric: args
                        .max_series_per_metric
                        .or(file.max_series_per_metric)
                        .map_or(defaults.max_series_per_metric, |n| n as usize),
                    flush_interval: pick(
                        args.flush_interval,
                        file.flush_interval,
                        defaults.flush_interval,
                    ),
                    retention: [
                        pick(args.retention_1s, file.retention_1s, defaults.retention[0]),
                        pick(args.retention_1m, file.retention_1m, defaults.retention[1]),
                        pick(args.retention_1h, file.retention_1h, defaults.retention[2]),
                    ],
                }
            },
        })
    }

    /// Path of the SQLite database inside the data directory.
    pub fn database_path(&self) -> PathBuf {
        crate::storage::database_path(&self.data_dir)
    }
}

/// Layers `streamboard endpoint` flags/environment over the file's `[endpoint]` table (and its
/// top-level `data_dir`) over the defaults.
fn resolve_endpoint(args: EndpointArgs, file: &FileConfig) -> EndpointConfig {
    let table = file.endpoint.clone().unwrap_or_default();
    let data_dir = args
        .data_dir
        .or(table.data_dir)
        .or_else(|| file.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    let mut config = EndpointConfig::for_data_dir(data_dir);
    config.listen = args.listen.or(table.listen).unwrap_or_else(|| {
        DEFAULT_ENDPOINT_LISTEN
            .parse()
            .expect("the default endpoint address parses")
    });
    config.iterator_ttl = args
        .iterator_ttl
        .or(table.iterator_ttl.map(|d| d.0))
        .unwrap_or(DEFAULT_ITERATOR_TTL);
    config.throughput_limits = args
        .throughput_limits
        .or(table.throughput_limits)
        .unwrap_or(false);
    config.shard_limit = args
        .shard_limit
        .or(table.shard_limit)
        .unwrap_or(DEFAULT_SHARD_LIMIT);
    config.faults = FaultConfig {
        error_rate: args
            .fault_rate
            .or(table.fault_rate.map(|p| p.0))
            .unwrap_or(0.0),
        operations: args
            .fault_operations
            .map(|l| l.0)
            .or(table.fault_operations)
            .unwrap_or_default(),
        kind: args.fault_kind.or(table.fault_kind).unwrap_or_default(),
        added_latency: args
            .added_latency
            .or(table.added_latency.map(|d| d.0))
            .unwrap_or(Duration::ZERO),
    };
    config.shutdown_timeout = file
        .shutdown_timeout
        .map(|d| d.0)
        .unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT);
    config
}

/// clap value parser: a [`parse_duration`] duration that is not zero.
pub(crate) fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err(format!(
            "must be greater than zero (got {})",
            format_duration(duration)
        ));
    }
    Ok(duration)
}

/// A duration in a config file, written as in the CLI: `"250ms"`, `"5s"`, `"1m"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PositiveDuration(pub Duration);

impl<'de> serde::Deserialize<'de> for PositiveDuration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_positive_duration(&text)
            .map(PositiveDuration)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
