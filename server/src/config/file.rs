//! The optional TOML config file. Every key is optional; unknown keys are refused so a typo
//! never silently falls back to a default.

use super::{ConfigError, FileStream, LogFormat, PositiveDuration};
use serde::Deserialize;
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

/// The file's keys, each the long flag's name with `_` for `-`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub log_format: Option<LogFormat>,
    pub log: Option<String>,
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub site_root: Option<PathBuf>,
    pub heartbeat_interval: Option<PositiveDuration>,
    pub shutdown_timeout: Option<PositiveDuration>,
    /// `[[streams]]` tables: `name` or `arn`, and `start`.
    #[serde(default)]
    pub streams: Vec<FileStream>,
    pub application: Option<String>,
    pub discovery_interval: Option<PositiveDuration>,
    pub idle_poll_interval: Option<PositiveDuration>,
    /// Metric definitions (`[[metrics]]` tables), installed into the database at start-up.
    #[serde(default)]
    pub metrics: Vec<crate::engine::MetricDefinition>,
}

impl FileConfig {
    /// Reads and parses `path`. Relative paths inside the file are relative to the file's
    /// directory, so a config works from wherever the binary is started.
    pub fn read(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Self::parse(&text).map_err(|message| ConfigError::File {
            path: path.to_path_buf(),
            message,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        for dir in [&mut config.data_dir, &mut config.site_root]
            .into_iter()
            .flatten()
        {
            if dir.is_relative() {
                *dir = base.join(&*dir);
            }
        }
        Ok(config)
    }

    /// Parses TOML text; the error names the key, the line and the reason.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|error| error.to_string().trim_end().to_string())
    }
}
