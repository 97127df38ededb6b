//! The server's own settings: where it listens, where its data and site are, the WebSocket
//! heartbeat and how long shutdown waits. Handlers read them from [`AppState`](super::AppState).

use crate::settings::{self, Settings, parse_positive_duration};
use clap::{Args, ValueHint};
use serde::{Deserialize, Serialize};
use std::{net::SocketAddr, path::PathBuf, time::Duration};

/// Options of the server itself: where it listens, where its data and site are, the WebSocket
/// heartbeat and how long shutdown waits.
#[derive(Debug, Clone, PartialEq, Eq, Args, Serialize, Deserialize)]
#[command(next_help_heading = "Server")]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address the dashboard and API listen on. Binding to anything but loopback exposes the
    /// dashboard to the network.
    #[arg(
        long,
        env = "STREAMBOARD_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:3000"
    )]
    pub listen: SocketAddr,

    /// Directory for the SQLite database `streamboard.db` (created if missing) and, in the
    /// no-AWS default, the embedded endpoint's records.
    #[arg(long, env = "STREAMBOARD_DATA_DIR", value_name = "DIR", default_value = "./data", value_hint = ValueHint::DirPath)]
    pub data_dir: PathBuf,

    /// Serve the site (wasm, JS, CSS, public/) from this directory instead of the copy embedded
    /// in the binary; for development.
    #[arg(long, env = "STREAMBOARD_SITE_ROOT", value_name = "DIR", value_hint = ValueHint::DirPath)]
    pub site_root: Option<PathBuf>,

    /// Interval between WebSocket heartbeats.
    #[arg(long, env = "STREAMBOARD_HEARTBEAT_INTERVAL", value_name = "DURATION", default_value = "5s", value_parser = parse_positive_duration)]
    #[serde(with = "settings::positive_duration")]
    pub heartbeat_interval: Duration,

    /// How long shutdown waits for in-flight work before giving up.
    #[arg(long, env = "STREAMBOARD_SHUTDOWN_TIMEOUT", value_name = "DURATION", default_value = "10s", value_parser = parse_positive_duration)]
    #[serde(with = "settings::positive_duration")]
    pub shutdown_timeout: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        settings::defaults()
    }
}

impl Settings for ServerSettings {}

impl ServerSettings {
    /// Defaults for tests and embedding: loopback on an OS-chosen port, data in `data_dir`.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            ..Self::default()
        }
    }

    /// Path of the SQLite database inside the data directory.
    pub fn database_path(&self) -> PathBuf {
        crate::storage::database_path(&self.data_dir)
    }
}
