//! The optional TOML config file. Every key is optional; unknown keys are refused so a typo
//! never silently falls back to a default.
//!
//! Top-level keys are the options of the components' settings (the long flag's name with `_`
//! for `-`), checked against each component's struct when the file is read so a wrong type or
//! value is refused with its line; `[[streams]]`, `[[metrics]]`, `[[alerts]]` and `[endpoint]`
//! are tables of their own.

use super::{ConfigError, FileStream, PositiveDuration};
use crate::{
    alerts::AlertsSettings,
    consumer::ConsumerConfig,
    engine::EngineSettings,
    http::ServerSettings,
    live::Pacing,
    pipeline::SourceSettings,
    settings::{self, Settings},
    telemetry::LogSettings,
};
use serde::{
    Deserialize,
    de::{DeserializeSeed, Deserializer, MapAccess, Visitor},
};
use std::{
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
};
use streamboard_endpoint::{
    faults::{FaultKind, parse_operations},
    wire::Operation,
};
use toml::{
    Spanned,
    de::{DeTable, Error as TomlError},
};

/// The parsed file.
#[derive(Debug, Default)]
pub struct FileConfig {
    /// The top-level option keys (`listen = "..."`), each checked against its component.
    pub settings: toml::Table,
    /// `[[streams]]` tables: `name` or `arn`, and `start`.
    pub streams: Vec<FileStream>,
    /// Metric definitions (`[[metrics]]` tables), installed into the database at start-up.
    pub metrics: Vec<crate::metric::MetricDefinition>,
    /// Alert rules (`[[alerts]]` tables, the API's fields), installed at start-up.
    pub alerts: Vec<contract::api::AlertRuleSpec>,
    /// `streamboard endpoint` options.
    pub endpoint: Option<EndpointFileConfig>,
}

/// The file's tables (everything but the components' options).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTables {
    #[serde(default)]
    streams: Vec<FileStream>,
    #[serde(default)]
    metrics: Vec<crate::metric::MetricDefinition>,
    #[serde(default)]
    alerts: Vec<contract::api::AlertRuleSpec>,
    endpoint: Option<EndpointFileConfig>,
}

/// The keys of [`FileTables`].
const TABLE_KEYS: [&str; 4] = ["streams", "metrics", "alerts", "endpoint"];

/// One component whose options may be top-level keys: its keys, the ones that are paths, and
/// the check of a table of its keys.
struct Component {
    ids: fn() -> Vec<String>,
    path_ids: fn() -> Vec<String>,
    check: fn(Spanned<DeTable<'_>>) -> Result<(), TomlError>,
}

impl Component {
    const fn of<S: Settings>() -> Self {
        Self {
            ids: settings::ids::<S>,
            path_ids: settings::path_ids::<S>,
            check: check::<S>,
        }
    }
}

/// Deserialises `S` from a table of its keys (its values' spans kept for the error).
fn check<S: Settings>(table: Spanned<DeTable<'_>>) -> Result<(), TomlError> {
    S::deserialize(toml::de::Deserializer::from(table)).map(drop)
}

/// Every component whose options may be set in the file.
const COMPONENTS: [Component; 7] = [
    Component::of::<LogSettings>(),
    Component::of::<ServerSettings>(),
    Component::of::<Pacing>(),
    Component::of::<ConsumerConfig>(),
    Component::of::<SourceSettings>(),
    Component::of::<EngineSettings>(),
    Component::of::<AlertsSettings>(),
];

/// Every top-level option key the file takes.
pub(super) fn option_keys() -> Vec<String> {
    COMPONENTS.iter().flat_map(|c| (c.ids)()).collect()
}

/// The `[endpoint]` table: `streamboard endpoint`'s options.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointFileConfig {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub iterator_ttl: Option<PositiveDuration>,
    pub throughput_limits: Option<bool>,
    pub shard_limit: Option<u32>,
    pub fault_rate: Option<Probability>,
    #[serde(default, deserialize_with = "operations")]
    pub fault_operations: Option<Vec<Operation>>,
    pub fault_kind: Option<FaultKind>,
    pub added_latency: Option<AnyDuration>,
    pub latency_rate: Option<Probability>,
}

/// A probability in 0..=1 in the config file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Probability(pub f64);

impl<'de> Deserialize<'de> for Probability {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = f64::deserialize(deserializer)?;
        if (0.0..=1.0).contains(&value) {
            Ok(Probability(value))
        } else {
            Err(serde::de::Error::custom(format!(
                "must be between 0 and 1 (got {value})"
            )))
        }
    }
}

/// A duration (zero allowed) in the config file: `"0ms"`, `"50ms"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnyDuration(pub std::time::Duration);

impl<'de> Deserialize<'de> for AnyDuration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        settings::parse_duration(&text)
            .map(AnyDuration)
            .map_err(serde::de::Error::custom)
    }
}

fn operations<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<Operation>>, D::Error> {
    let names = Vec::<String>::deserialize(deserializer)?;
    parse_operations(&names.join(","))
        .map(Some)
        .map_err(serde::de::Error::custom)
}

impl FileConfig {
    /// Reads and parses `path`. Relative paths inside the file are relative to the file's
    /// directory, so a config works from wherever the binary is started.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_path_buf(),
            source,
        })?;
        let file_error = |message| ConfigError::File {
            path: path.to_path_buf(),
            message,
        };
        let mut config = Self::parse(&text).map_err(file_error)?;
        let base = path.parent().unwrap_or(Path::new("."));
        for id in COMPONENTS.iter().flat_map(|c| (c.path_ids)()) {
            if let Some(toml::Value::String(dir)) = config.settings.get_mut(&id)
                && Path::new(dir.as_str()).is_relative()
            {
                *dir = base
                    .join(&*dir)
                    .into_os_string()
                    .into_string()
                    .map_err(|_| file_error(format!("{id}: the file's directory is not UTF-8")))?;
            }
        }
        if let Some(dir) = config.endpoint.as_mut().and_then(|e| e.data_dir.as_mut())
            && dir.is_relative()
        {
            *dir = base.join(&*dir);
        }
        Ok(config)
    }

    /// Parses TOML text; the error names the key, the line and the reason.
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::check(text).map_err(|mut error| {
            error.set_input(Some(text));
            error.to_string().trim_end().to_string()
        })?;
        let mut all: toml::Table = toml::from_str(text).map_err(|error| error.to_string())?;
        let mut tables = toml::Table::new();
        for key in TABLE_KEYS {
            if let Some(value) = all.remove(key) {
                tables.insert(key.to_string(), value);
            }
        }
        let tables: FileTables = tables.try_into().map_err(|e: TomlError| e.to_string())?;
        Ok(Self {
            settings: all,
            streams: tables.streams,
            metrics: tables.metrics,
            alerts: tables.alerts,
            endpoint: tables.endpoint,
        })
    }

    /// Checks every top-level key against the component that owns it, the tables against
    /// their types, and refuses keys nobody owns. Errors carry the key's or value's span.
    fn check(text: &str) -> Result<(), TomlError> {
        let document = DeTable::parse(text)?;
        let span = document.span();
        let mut rest = document.into_inner();
        for component in &COMPONENTS {
            let ids = (component.ids)();
            let (own, others) = rest
                .into_iter()
                .partition(|(key, _)| ids.iter().any(|id| id == key.get_ref().as_ref()));
            rest = others;
            (component.check)(Spanned::new(span.clone(), own))?;
        }
        let (tables, unknown): (DeTable, DeTable) = rest
            .into_iter()
            .partition(|(key, _)| TABLE_KEYS.contains(&key.get_ref().as_ref()));
        if !unknown.is_empty() {
            let mut expected = option_keys();
            expected.extend(TABLE_KEYS.map(String::from));
            let deserializer = toml::de::Deserializer::from(Spanned::new(span.clone(), unknown));
            RefuseKeys(&expected).deserialize(deserializer)?;
        }
        FileTables::deserialize(toml::de::Deserializer::from(Spanned::new(span, tables))).map(drop)
    }
}

/// Refuses the first key of a table as unknown, listing the `expected` ones. Done as a
/// deserialisation so that TOML's error carries the key's line.
struct RefuseKeys<'a>(&'a [String]);

impl<'de> DeserializeSeed<'de> for RefuseKeys<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RefuseKeys<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table of known keys")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        map.next_key_seed(RefuseKey(self.0)).map(drop)
    }
}

/// A key that is refused whatever it is (see [`RefuseKeys`]).
struct RefuseKey<'a>(&'a [String]);

impl<'de> DeserializeSeed<'de> for RefuseKey<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl<'de> Visitor<'de> for RefuseKey<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a known key")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<(), E> {
        let expected: Vec<String> = self.0.iter().map(|k| format!("`{k}`")).collect();
        Err(E::custom(format!(
            "unknown field `{key}`, expected one of {}",
            expected.join(", ")
        )))
    }
}
