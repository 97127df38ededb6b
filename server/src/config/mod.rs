//! Typed configuration: command-line flags, `STREAMBOARD_*` environment variables and an
//! optional TOML file, resolved once at start-up into plain structs.
//!
//! `serve`'s options are declared by the components that use them, one settings struct each
//! (see [`crate::settings`]); [`ServeArgs`] flattens them into the `serve` command, and
//! [`ServeConfig`] holds them resolved. Precedence is flag > environment variable > config
//! file > built-in default, by the one [`settings::merge`]; every default works offline.
//! [`Config::load`] is the only entry point and returns a [`ConfigError`] that names the
//! option and says what is wrong; `main` prints it and exits with code 2.

mod file;
mod streams;

use crate::{
    alerts::AlertsSettings,
    consumer::ConsumerConfig,
    engine::EngineSettings,
    http::ServerSettings,
    kinesis::client::KinesisTarget,
    live::Pacing,
    pipeline::SourceSettings,
    settings::{self, parse_duration, parse_positive_duration},
    telemetry::LogSettings,
};
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use std::{net::SocketAddr, path::PathBuf, time::Duration};
use streamboard_endpoint::{
    DEFAULT_ENDPOINT_LISTEN, DEFAULT_ITERATOR_TTL, DEFAULT_SHARD_LIMIT, EndpointConfig,
    faults::{FaultConfig, FaultKind, parse_operations},
    wire::Operation,
};

pub use crate::kinesis::{StartPosition, StreamRef, StreamSpec};
pub use crate::pipeline::KinesisSource;
pub use crate::producer::settings::{
    DemoKind, PartitionKeySource, ProduceArgs, ProduceConfig, ProduceSource,
};
pub use crate::telemetry::LogFormat;
pub use file::{EndpointFileConfig, FileConfig};
pub use streams::FileStream;

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

    #[command(flatten)]
    pub log: LogSettings,

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
    /// Manage the users who log in (with `serve --auth password`).
    #[command(subcommand)]
    User(UserArgs),
}

/// `streamboard user ...`.
#[derive(Debug, Subcommand)]
pub enum UserArgs {
    /// Add a user (or, with --replace, set an existing user's password and role and end their
    /// sessions). The password is prompted for on a terminal, else read as the first line of
    /// standard input.
    Add {
        /// The user's name: letters, digits, `.`, `_`, `-` or `@`.
        name: String,
        /// What the user may do: viewer, editor or admin.
        #[arg(long, value_name = "ROLE")]
        role: crate::auth::Role,
        /// Replace the password and role of an existing user.
        #[arg(long)]
        replace: bool,
        /// Directory holding `streamboard.db` [default: the serve setting, ./data].
        #[arg(long, env = "STREAMBOARD_DATA_DIR", value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// The database, as `serve --database` [default: the serve setting; without one,
        /// `streamboard.db` in the data directory].
        #[arg(long, env = "STREAMBOARD_DATABASE", value_name = "URL", value_parser = crate::http::DatabaseUrlParser)]
        database: Option<crate::storage::DatabaseUrl>,
    },
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

    /// Fault injection: delay added to answers to --fault-operations, e.g. 50ms [default: 0ms].
    #[arg(long, env = "STREAMBOARD_ENDPOINT_ADDED_LATENCY", value_name = "DURATION", value_parser = parse_duration)]
    pub added_latency: Option<Duration>,

    /// Fault injection: probability (0 to 1) that --added-latency is added to an answer
    /// [default: 1].
    #[arg(long, env = "STREAMBOARD_ENDPOINT_LATENCY_RATE", value_name = "P", value_parser = parse_probability)]
    pub latency_rate: Option<f64>,
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

/// Options of `streamboard serve`: each component's settings, and the streams to read.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub server: ServerSettings,

    #[command(flatten)]
    pub live: Pacing,

    /// A stream to read (name or ARN); repeat for several. Replaces the config file's
    /// `[[streams]]` tables when given.
    #[arg(
        long = "stream",
        env = "STREAMBOARD_STREAMS",
        value_delimiter = ',',
        value_name = "NAME",
        help_heading = "Consumer"
    )]
    pub streams: Vec<StreamRef>,

    /// Where `--stream` streams start when they have no checkpoint: `latest`, `trim_horizon`
    /// or an RFC 3339 time (in the file: `start` in each `[[streams]]` table).
    #[arg(
        long,
        env = "STREAMBOARD_START",
        value_name = "POSITION",
        default_value = "latest",
        help_heading = "Consumer"
    )]
    pub start: StartPosition,

    #[command(flatten)]
    pub consumer: ConsumerConfig,

    #[command(flatten)]
    pub source: SourceSettings,

    #[command(flatten)]
    pub engine: EngineSettings,

    #[command(flatten)]
    pub alerts: AlertsSettings,
}

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

/// The resolved configuration of one run.
#[derive(Debug, Clone)]
pub struct Config {
    pub log: LogSettings,
    pub command: Command,
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
    User(crate::auth::cli::UserCommand),
}

/// Everything `serve` needs: each component's resolved settings, where Kinesis is read from
/// and the file's metric definitions.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub server: ServerSettings,
    /// When the live publisher pushes `/ws` updates.
    pub live: Pacing,
    /// How the consumer reads, with the streams it reads (empty: the consumer is idle).
    pub consumer: ConsumerConfig,
    /// Metrics engine tunables.
    pub engine: EngineSettings,
    /// Alert evaluation and delivery.
    pub alerts: AlertsSettings,
    /// Where Kinesis is read from.
    pub source: KinesisSource,
    /// Metric definitions from the config file (`[[metrics]]`); the API can add more.
    pub metrics: Vec<crate::metric::MetricDefinition>,
    /// Alert rules from the config file (`[[alerts]]`); each replaces the stored rule of its
    /// name at start-up.
    pub alert_rules: Vec<contract::api::AlertRuleSpec>,
}

impl ServeConfig {
    /// Defaults for tests and embedding: loopback on an OS-chosen port, data in `data_dir`,
    /// AWS as the source.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            server: ServerSettings::for_data_dir(data_dir),
            live: Pacing::default(),
            consumer: ConsumerConfig::default(),
            engine: EngineSettings::default(),
            alerts: AlertsSettings::default(),
            source: KinesisSource::External(KinesisTarget::Aws),
            metrics: Vec::new(),
            alert_rules: Vec::new(),
        }
    }

    /// Path of the SQLite database inside the data directory.
    pub fn database_path(&self) -> PathBuf {
        crate::storage::database_path(&self.server.data_dir)
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
        let matches = Cli::command().try_get_matches_from(args)?;
        let cli = Cli::from_arg_matches(&matches)?;
        let file = match &cli.config {
            Some(path) => FileConfig::read(path)?,
            None => FileConfig::default(),
        };
        Self::resolve_matches(&matches, cli, file).map_err(|message| match cli_config(&matches) {
            Some(path) => ConfigError::File { path, message },
            None => ConfigError::Invalid(message),
        })
    }

    /// Layers the flags and environment of `args` over `file` over the defaults. The error
    /// names the file key or option whose value cannot be used.
    pub fn resolve<I, T>(args: I, file: FileConfig) -> Result<Self, String>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = Cli::command()
            .try_get_matches_from(args)
            .map_err(|error| error.to_string())?;
        let cli = Cli::from_arg_matches(&matches).map_err(|error| error.to_string())?;
        Self::resolve_matches(&matches, cli, file)
    }

    fn resolve_matches(matches: &ArgMatches, cli: Cli, file: FileConfig) -> Result<Self, String> {
        let log = settings::merge::<LogSettings>(matches, &file.settings)?;
        let command = match (cli.command, matches.subcommand()) {
            (Some(CliCommand::Serve(args)), Some((_, serve))) => {
                Command::Serve(ServeConfig::resolve(args, serve, &file)?)
            }
            (None, _) => {
                // No command is `serve` with no flags: its environment and the file still apply.
                let matches = Cli::command()
                    .try_get_matches_from(["streamboard", "serve"])
                    .map_err(|error| error.to_string())?;
                let serve = matches
                    .subcommand_matches("serve")
                    .expect("clap matched `serve`");
                let args = ServeArgs::from_arg_matches(serve).map_err(|e| e.to_string())?;
                Command::Serve(ServeConfig::resolve(args, serve, &file)?)
            }
            (Some(CliCommand::Produce(args)), _) => Command::Produce(ProduceConfig::resolve(args)?),
            (Some(CliCommand::Endpoint(args)), _) => {
                Command::Endpoint(resolve_endpoint(args, &file)?)
            }
            (
                Some(CliCommand::User(UserArgs::Add {
                    name,
                    role,
                    replace,
                    data_dir,
                    database,
                })),
                _,
            ) => {
                let serve = settings::from_file::<ServerSettings>(&file.settings)?;
                Command::User(crate::auth::cli::UserCommand {
                    data_dir: data_dir.unwrap_or(serve.data_dir),
                    database: database.or(serve.database),
                    name,
                    role,
                    replace,
                })
            }
            (Some(CliCommand::Serve(_)), None) => unreachable!("clap matched `serve`"),
        };
        Ok(Config { log, command })
    }
}

/// The `--config` path clap parsed.
fn cli_config(matches: &ArgMatches) -> Option<PathBuf> {
    matches.get_one::<PathBuf>("config").cloned()
}

impl ServeConfig {
    /// Resolves every component of `serve` from its `matches` and the file.
    fn resolve(args: ServeArgs, matches: &ArgMatches, file: &FileConfig) -> Result<Self, String> {
        let mut consumer = settings::merge::<ConsumerConfig>(matches, &file.settings)?;
        consumer.streams = if args.streams.is_empty() {
            file.streams
                .iter()
                .enumerate()
                .map(|(index, stream)| stream.to_spec(index))
                .collect::<Result<Vec<_>, _>>()?
        } else {
            args.streams
                .iter()
                .map(|name_or_arn| StreamSpec {
                    name_or_arn: name_or_arn.clone(),
                    start: args.start,
                    efo: false,
                })
                .collect()
        };
        for spec in &mut consumer.streams {
            spec.efo |= consumer.efo;
        }
        let source = settings::merge::<SourceSettings>(matches, &file.settings)?.source(
            !consumer.streams.is_empty(),
            aws_configured(|name| std::env::var(name).ok()),
        );
        Ok(Self {
            server: settings::merge(matches, &file.settings)?,
            live: settings::merge(matches, &file.settings)?,
            consumer,
            engine: settings::merge(matches, &file.settings)?,
            alerts: settings::merge(matches, &file.settings)?,
            source,
            metrics: file.metrics.clone(),
            alert_rules: file.alerts.clone(),
        })
    }
}

/// Layers `streamboard endpoint` flags/environment over the file's `[endpoint]` table (and its
/// top-level `data_dir` and `shutdown_timeout`) over the defaults.
fn resolve_endpoint(args: EndpointArgs, file: &FileConfig) -> Result<EndpointConfig, String> {
    let table = file.endpoint.clone().unwrap_or_default();
    let server = settings::from_file::<ServerSettings>(&file.settings)?;
    let data_dir = args.data_dir.or(table.data_dir).unwrap_or(server.data_dir);
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
        latency_rate: args
            .latency_rate
            .or(table.latency_rate.map(|p| p.0))
            .unwrap_or(1.0),
    };
    config.shutdown_timeout = server.shutdown_timeout;
    Ok(config)
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
