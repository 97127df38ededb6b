//! The server's own settings: where it listens, where its data and site are, the WebSocket
//! heartbeat, how long shutdown waits, and how it is secured (authentication, login sessions
//! and throttling, the names it serves, TLS, request limits). Handlers read them from
//! [`AppState`](super::AppState).

use crate::{
    auth::{AuthConfig, AuthMode, Role, throttle::Limits},
    settings::{self, Given, Settings, parse_positive_duration},
    storage::DatabaseUrl,
};
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

    /// Where metrics, checkpoints, rules, dashboards and users are stored:
    /// `postgres://USER:PASSWORD@HOST:PORT/DATABASE` for PostgreSQL, or `sqlite:PATH`.
    /// Default: the SQLite file `streamboard.db` in --data-dir. The password is never logged.
    #[arg(long, env = "STREAMBOARD_DATABASE", value_name = "URL", value_parser = DatabaseUrlParser)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseUrl>,

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

    /// How requests are authenticated: `none` (everyone may do everything), `password`
    /// (users log in; scripts use API tokens) or `proxy-header` (a reverse proxy names the
    /// user in --auth-proxy-header). Default: `none` while listening on loopback; any other
    /// --listen address needs it set.
    #[arg(
        long,
        env = "STREAMBOARD_AUTH",
        value_enum,
        value_name = "MODE",
        help_heading = "Security"
    )]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<AuthMode>,

    /// With `--auth proxy-header`: the request header in which the authenticating reverse
    /// proxy names the user. Only safe when nothing but the proxy can reach the server.
    #[arg(
        long,
        env = "STREAMBOARD_AUTH_PROXY_HEADER",
        value_name = "NAME",
        default_value = "X-Webauth-User",
        help_heading = "Security"
    )]
    pub auth_proxy_header: String,

    /// With `--auth proxy-header`: the role of a proxy-named user who has no user of their
    /// own (a user added with `streamboard user add` keeps theirs).
    #[arg(
        long,
        env = "STREAMBOARD_AUTH_PROXY_ROLE",
        value_name = "ROLE",
        default_value = "viewer",
        help_heading = "Security"
    )]
    pub auth_proxy_role: Role,

    /// How long a login session lasts.
    #[arg(long, env = "STREAMBOARD_SESSION_TTL", value_name = "DURATION", default_value = "12h", value_parser = parse_positive_duration, help_heading = "Security")]
    #[serde(with = "settings::positive_duration")]
    pub session_ttl: Duration,

    /// Failed logins for one user name within --login-lockout before that name is locked
    /// out for the rest of it.
    #[arg(
        long,
        env = "STREAMBOARD_LOGIN_FAILURES_PER_USER",
        value_name = "N",
        default_value = "5",
        help_heading = "Security"
    )]
    pub login_failures_per_user: u32,

    /// Failed logins from one client address within --login-lockout before that address is
    /// locked out for the rest of it (behind a proxy, every client shares the proxy's).
    #[arg(
        long,
        env = "STREAMBOARD_LOGIN_FAILURES_PER_ADDRESS",
        value_name = "N",
        default_value = "20",
        help_heading = "Security"
    )]
    pub login_failures_per_address: u32,

    /// The window failed logins are counted in, and how long a lockout lasts at most.
    #[arg(long, env = "STREAMBOARD_LOGIN_LOCKOUT", value_name = "DURATION", default_value = "15m", value_parser = parse_positive_duration, help_heading = "Security")]
    #[serde(with = "settings::positive_duration")]
    pub login_lockout: Duration,

    /// Host names the server answers to, comma-separated (e.g. `dash.example.com`), besides
    /// loopback names and IP addresses; a request for any other `Host` is refused (DNS
    /// rebinding). `*` answers to every name.
    #[arg(
        long,
        env = "STREAMBOARD_ALLOWED_HOSTS",
        value_name = "NAMES",
        value_delimiter = ',',
        help_heading = "Security"
    )]
    pub allowed_hosts: Vec<String>,

    /// Largest request body accepted, in bytes; a larger one is refused with 413 before it
    /// is read.
    #[arg(
        long,
        env = "STREAMBOARD_MAX_BODY_BYTES",
        value_name = "BYTES",
        default_value = "1048576",
        help_heading = "Security"
    )]
    pub max_body_bytes: u64,

    /// PEM certificate chain to serve HTTPS with (with --tls-key). Pages then set
    /// Strict-Transport-Security and the session cookie is `Secure`.
    #[arg(long, env = "STREAMBOARD_TLS_CERT", value_name = "FILE", value_hint = ValueHint::FilePath, help_heading = "Security")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "STREAMBOARD_TLS_KEY", value_name = "FILE", value_hint = ValueHint::FilePath, help_heading = "Security")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,

    /// Longest a client may take to complete the TLS handshake and to send each request's
    /// headers; a slower one is disconnected.
    #[arg(long, env = "STREAMBOARD_HEADER_READ_TIMEOUT", value_name = "DURATION", default_value = "10s", value_parser = parse_positive_duration, help_heading = "Security")]
    #[serde(with = "settings::positive_duration")]
    pub header_read_timeout: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        settings::defaults()
    }
}

impl Settings for ServerSettings {
    fn finish(&mut self, _given: &Given) -> Result<(), String> {
        if self.auth.is_none() && !self.listen.ip().is_loopback() {
            return Err(format!(
                "{}: listening on {} (not loopback) without authentication is refused: anyone \
                 who reaches the port could change metrics, rules and webhooks. Add a user with \
                 `streamboard user add NAME --role admin` and start with `--auth password` (or \
                 `--auth proxy-header` behind an authenticating proxy); to serve without login \
                 anyway, pass `--auth none`",
                settings::option("auth"),
                self.listen
            ));
        }
        for (id, value) in [
            ("login_failures_per_user", self.login_failures_per_user),
            (
                "login_failures_per_address",
                self.login_failures_per_address,
            ),
        ] {
            settings::check_range(id, value, 1..=1_000_000)?;
        }
        settings::check_range("max_body_bytes", self.max_body_bytes, 1024..=(1 << 30))?;
        if let Some(bad) = self
            .allowed_hosts
            .iter()
            .find(|h| h.trim().is_empty() || h.contains('/'))
        {
            return Err(format!(
                "{}: {bad:?} is not a host name",
                settings::option("allowed_hosts")
            ));
        }
        let unpaired = match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => Some(("tls_cert", "tls_key")),
            (None, Some(_)) => Some(("tls_key", "tls_cert")),
            _ => None,
        };
        if let Some((given, missing)) = unpaired {
            return Err(format!(
                "{} is given without {}: HTTPS needs both the certificate chain and its key",
                settings::option(given),
                settings::option(missing)
            ));
        }
        let header_ok = !self.auth_proxy_header.is_empty()
            && self
                .auth_proxy_header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !header_ok {
            return Err(format!(
                "{}: {:?} is not a header name",
                settings::option("auth_proxy_header"),
                self.auth_proxy_header
            ));
        }
        Ok(())
    }
}

/// Parses `--database` like `DatabaseUrl::from_str`, but a refusal never echoes the value
/// (clap's own message would repeat it, password included).
#[derive(Debug, Clone, Copy)]
pub struct DatabaseUrlParser;

impl clap::builder::TypedValueParser for DatabaseUrlParser {
    type Value = DatabaseUrl;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<DatabaseUrl, clap::Error> {
        let refuse = |message: &str| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid value for '--database <URL>': {message}\n"),
            )
            .with_cmd(cmd)
        };
        value
            .to_str()
            .ok_or_else(|| refuse("not UTF-8"))?
            .parse()
            .map_err(|message: String| refuse(&message))
    }
}

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

    /// The authentication mode in force (`none` when not set, which [`Settings::finish`]
    /// allows only on loopback).
    pub fn auth_mode(&self) -> AuthMode {
        self.auth.unwrap_or(AuthMode::None)
    }

    /// True when the server itself terminates TLS.
    pub fn tls_enabled(&self) -> bool {
        self.tls_cert.is_some()
    }

    /// What the auth service needs of these settings.
    pub fn auth_config(&self) -> AuthConfig {
        AuthConfig {
            mode: self.auth_mode(),
            session_ttl: self.session_ttl,
            limits: Limits {
                failures_per_user: self.login_failures_per_user,
                failures_per_address: self.login_failures_per_address,
                window_ms: i64::try_from(self.login_lockout.as_millis()).unwrap_or(i64::MAX),
            },
            proxy_default_role: self.auth_proxy_role,
        }
    }
}
