//! Who a request is from, and what they may do: users with a [`Role`], login sessions, API
//! tokens, the login throttle and the one-time setup link. The HTTP layer asks this module for
//! an [`Identity`] (from a session cookie, a bearer token or a trusted proxy's header) and
//! checks it against each route's rule; the rules themselves live with the routes.
//!
//! - [`password`]: argon2id hashing (pure).
//! - [`secret`]: random secrets and their stored digests (pure).
//! - [`throttle`]: failed-login counting per name and address (pure).
//! - [`cli`]: `streamboard user add`.
//!
//! State: the users, sessions and tokens are rows owned by `storage`; this module keeps only
//! the throttle's counts and the setup secret in memory, behind short `std::sync::Mutex`
//! sections, and a revocation counter that open WebSockets watch: every logout, ended
//! session, deleted user and revoked token bumps it, and each socket then checks that its own
//! credential still holds ([`Auth::still_valid`]). Secrets are never logged; only their
//! digests are stored.

pub mod cli;
pub mod password;
pub mod secret;
pub mod throttle;

use crate::{
    clock::now_ms,
    storage::{
        Database, StorageError,
        auth::{Holder, is_duplicate_user},
    },
};
pub use contract::auth::Role;
use std::{
    net::IpAddr,
    sync::{Arc, Mutex},
    time::Duration,
};
use throttle::{Limits, Throttle, Throttled};
use tokio::sync::{Semaphore, watch};

/// How requests are authenticated (`--auth`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMode {
    /// No login: every request may do everything (only sensible on loopback).
    None,
    /// Users log in with a name and password; scripts use API tokens.
    Password,
    /// A reverse proxy authenticates and names the user in a header; API tokens still work.
    ProxyHeader,
}

impl AuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::None => "none",
            AuthMode::Password => "password",
            AuthMode::ProxyHeader => "proxy-header",
        }
    }
}

/// How an identity was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `--auth none`: everyone is an anonymous admin.
    Open,
    Session,
    Token,
    Proxy,
}

/// Who a request is from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub role: Role,
    pub via: Via,
    /// The digest of the session or token secret it was established by (to check later that
    /// it still holds); None for `--auth none` and proxy identities.
    pub credential: Option<Credential>,
}

/// The stored digest of the secret an identity was established by.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    Session([u8; 32]),
    Token([u8; 32]),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credential::Session(_) => "Session(..)",
            Credential::Token(_) => "Token(..)",
        })
    }
}

impl Identity {
    /// Everyone, under `--auth none`.
    pub fn open() -> Self {
        Identity {
            name: "anonymous".to_string(),
            role: Role::Admin,
            via: Via::Open,
            credential: None,
        }
    }

    fn from_holder(holder: Holder, credential: Credential) -> Self {
        Identity {
            name: holder.name,
            role: holder.role,
            via: match credential {
                Credential::Session(_) => Via::Session,
                Credential::Token(_) => Via::Token,
            },
            credential: Some(credential),
        }
    }
}

/// The auth settings this module needs (declared in the server's settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    pub mode: AuthMode,
    /// How long a login session lasts.
    pub session_ttl: Duration,
    pub limits: Limits,
    /// Role of a proxy-authenticated user who has no user row.
    pub proxy_default_role: Role,
}

/// Why a login was refused; every message can be shown at the form.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("Wrong user name or password.")]
    Wrong,
    #[error("{}", .0.message())]
    Throttled(Throttled),
    #[error(
        "That setup link was already used or is not valid; log in, or run `streamboard user add NAME --role admin`."
    )]
    SetupUsed,
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("password hashing failed")]
    Busy,
}

/// A started login session: the cookie's secret (never stored) and its lifetime.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub secret: String,
    pub max_age: Duration,
}

/// At most this many password hashes run at once (each takes 19 MiB and ~50 ms of a core):
/// a flood of logins queues instead of exhausting memory or every core.
const CONCURRENT_HASHES: usize = 2;

/// The authentication service, shared by the HTTP layer. Cheap to clone.
#[derive(Clone)]
pub struct Auth {
    database: Database,
    config: Arc<AuthConfig>,
    throttle: Arc<Mutex<Throttle>>,
    hashing: Arc<Semaphore>,
    /// Digest of the one-time setup secret, while there are no users.
    setup: Arc<Mutex<Option<[u8; 32]>>>,
    /// Bumped whenever a session or token stops holding (see the module documentation).
    revocations: Arc<watch::Sender<u64>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("config", &self.config)
            .finish()
    }
}

impl Auth {
    pub fn new(database: Database, config: AuthConfig) -> Self {
        Self {
            database,
            throttle: Arc::new(Mutex::new(Throttle::new(config.limits))),
            config: Arc::new(config),
            hashing: Arc::new(Semaphore::new(CONCURRENT_HASHES)),
            setup: Arc::new(Mutex::new(None)),
            revocations: Arc::new(watch::Sender::new(0)),
        }
    }

    /// Changes whenever a session or token may have stopped holding.
    pub fn revocations(&self) -> watch::Receiver<u64> {
        self.revocations.subscribe()
    }

    fn revoked(&self) {
        self.revocations.send_modify(|count| *count += 1);
    }

    /// True while the session or token `identity` was established by still holds (not
    /// logged out, ended, expired, revoked or its user deleted). Identities without a stored
    /// credential (`--auth none`, a proxy's) always hold.
    pub async fn still_valid(&self, identity: &Identity) -> Result<bool, StorageError> {
        let now = now_ms();
        Ok(match identity.credential {
            None => true,
            Some(Credential::Session(digest)) => {
                self.database.session_holder(&digest, now).await?.is_some()
            }
            Some(Credential::Token(digest)) => {
                self.database.use_token(&digest, now).await?.is_some()
            }
        })
    }

    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    pub fn mode(&self) -> AuthMode {
        self.config.mode
    }

    /// With password auth and no users yet: a one-time setup secret for the first admin (the
    /// caller logs the link). None when there are users or another mode is in force.
    pub async fn offer_setup(&self) -> Result<Option<String>, StorageError> {
        if self.config.mode != AuthMode::Password || self.database.user_count().await? > 0 {
            return Ok(None);
        }
        let secret = secret::generate("setup_");
        *self.setup.lock().expect("setup lock poisoned") = Some(secret::digest(&secret));
        Ok(Some(secret))
    }

    /// True while `secret` is the valid setup secret.
    pub fn setup_valid(&self, secret: &str) -> bool {
        let digest = secret::digest(secret);
        *self.setup.lock().expect("setup lock poisoned") == Some(digest)
    }

    /// Uses the setup secret: creates the first admin and logs them in. The secret works once,
    /// and only while there are no users.
    pub async fn complete_setup(
        &self,
        setup_secret: &str,
        name: &str,
        password: &str,
    ) -> Result<NewSession, LoginError> {
        {
            let mut setup = self.setup.lock().expect("setup lock poisoned");
            if *setup != Some(secret::digest(setup_secret)) {
                return Err(LoginError::SetupUsed);
            }
            *setup = None;
        }
        if self.database.user_count().await? > 0 {
            return Err(LoginError::SetupUsed);
        }
        let created = self.create_user(name, Role::Admin, password).await;
        if created.is_err() {
            // A refused name or password: the link stays usable for another try.
            *self.setup.lock().expect("setup lock poisoned") = Some(secret::digest(setup_secret));
        }
        created?;
        let user = self
            .database
            .user_by_name(name.trim())
            .await?
            .ok_or(LoginError::Wrong)?;
        self.start_session(user.id).await
    }

    /// Adds a user (name checked, password hashed).
    pub async fn create_user(
        &self,
        name: &str,
        role: Role,
        password: &str,
    ) -> Result<i64, LoginError> {
        let name = check_user_name(name)?;
        let hash = self.hash(password).await?;
        match self
            .database
            .insert_user(&name, role, &hash, now_ms())
            .await
        {
            Ok(id) => Ok(id),
            Err(e) if is_duplicate_user(&e) => Err(LoginError::Invalid {
                field: "name",
                message: format!("a user named {name:?} already exists"),
            }),
            Err(e) => Err(e.into()),
        }
    }

    async fn hash(&self, password: &str) -> Result<String, LoginError> {
        password::check_new(password).map_err(|e| LoginError::Invalid {
            field: "password",
            message: e.to_string(),
        })?;
        let _permit = self.hashing.acquire().await.map_err(|_| LoginError::Busy)?;
        let password = password.to_string();
        tokio::task::spawn_blocking(move || password::hash(&password))
            .await
            .map_err(|_| LoginError::Busy)?
            .map_err(|e| LoginError::Invalid {
                field: "password",
                message: e.to_string(),
            })
    }

    /// Checks a name and password from `address`, throttled; on success starts a session.
    pub async fn login(
        &self,
        name: &str,
        password: &str,
        address: IpAddr,
    ) -> Result<NewSession, LoginError> {
        let name = name.trim();
        let now = now_ms();
        self.throttle
            .lock()
            .expect("throttle lock poisoned")
            .check(name, address, now)
            .map_err(LoginError::Throttled)?;
        let user = self.database.user_by_name(name).await?;
        let stored = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| password::decoy().to_string());
        let matches = {
            let _permit = self.hashing.acquire().await.map_err(|_| LoginError::Busy)?;
            let password = password.to_string();
            tokio::task::spawn_blocking(move || password::verify(&password, &stored))
                .await
                .map_err(|_| LoginError::Busy)?
        };
        match user {
            Some(user) if matches => {
                self.throttle
                    .lock()
                    .expect("throttle lock poisoned")
                    .succeeded(name);
                tracing::info!(user = %user.name, %address, "login");
                self.start_session(user.id).await
            }
            _ => {
                self.throttle
                    .lock()
                    .expect("throttle lock poisoned")
                    .failed(name, address, now_ms());
                tracing::warn!(user = %name, %address, "login refused");
                Err(LoginError::Wrong)
            }
        }
    }

    async fn start_session(&self, user_id: i64) -> Result<NewSession, LoginError> {
        let secret = secret::generate("");
        let now = now_ms();
        let ttl_ms = i64::try_from(self.config.session_ttl.as_millis()).unwrap_or(i64::MAX);
        self.database
            .insert_session(
                &secret::digest(&secret),
                user_id,
                now,
                now.saturating_add(ttl_ms),
            )
            .await?;
        Ok(NewSession {
            secret,
            max_age: self.config.session_ttl,
        })
    }

    /// The identity of a session cookie's secret, if it is live.
    pub async fn session(&self, secret: &str) -> Result<Option<Identity>, StorageError> {
        Ok(self
            .database
            .session_holder(&secret::digest(secret), now_ms())
            .await?
            .map(|h| Identity::from_holder(h, Credential::Session(secret::digest(secret)))))
    }

    /// Ends a session (logout).
    pub async fn logout(&self, secret: &str) -> Result<(), StorageError> {
        self.database
            .delete_session(&secret::digest(secret))
            .await?;
        self.revoked();
        Ok(())
    }

    /// Ends every session of user `id`; returns how many there were.
    pub async fn end_sessions(&self, user_id: i64) -> Result<u64, StorageError> {
        let ended = self.database.delete_sessions_of(user_id).await?;
        self.revoked();
        Ok(ended)
    }

    /// Deletes user `id` with their sessions and tokens; false when there is no such user.
    pub async fn delete_user(&self, user_id: i64) -> Result<bool, StorageError> {
        let deleted = self.database.delete_user(user_id).await?;
        self.revoked();
        Ok(deleted)
    }

    /// Revokes API token `id`; false when there is no unrevoked token with that id.
    pub async fn revoke_token(&self, token_id: i64) -> Result<bool, StorageError> {
        let revoked = self.database.revoke_token(token_id, now_ms()).await?;
        self.revoked();
        Ok(revoked)
    }

    /// The identity of a bearer token, if it exists and is not revoked.
    pub async fn token(&self, token: &str) -> Result<Option<Identity>, StorageError> {
        if !token.starts_with(secret::TOKEN_PREFIX) {
            return Ok(None);
        }
        Ok(self
            .database
            .use_token(&secret::digest(token), now_ms())
            .await?
            .map(|h| Identity::from_holder(h, Credential::Token(secret::digest(token)))))
    }

    /// The identity a trusted proxy names: the user row's role, else the default role.
    pub async fn proxy_user(&self, name: &str) -> Result<Option<Identity>, StorageError> {
        let Ok(name) = check_user_name(name) else {
            return Ok(None);
        };
        let role = match self.database.user_by_name(&name).await? {
            Some(user) => user.role,
            None => self.config.proxy_default_role,
        };
        Ok(Some(Identity {
            name,
            role,
            via: Via::Proxy,
            credential: None,
        }))
    }

    /// Creates an API token; the secret is returned once and only its digest is stored.
    pub async fn create_token(
        &self,
        name: &str,
        role: Role,
        created_by: &str,
    ) -> Result<(contract::auth::TokenInfo, String), LoginError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(LoginError::Invalid {
                field: "name",
                message: "must be 1 to 100 characters".to_string(),
            });
        }
        let secret = secret::generate(secret::TOKEN_PREFIX);
        let info = self
            .database
            .insert_token(name, &secret::digest(&secret), role, created_by, now_ms())
            .await?;
        tracing::info!(token = %name, %role, by = %created_by, "API token created");
        Ok((info, secret))
    }
}

/// A user name: 1 to 64 letters, digits, `.`, `_`, `-` or `@` (trimmed).
pub fn check_user_name(name: &str) -> Result<String, LoginError> {
    let name = name.trim();
    let ok = !name.is_empty()
        && name.chars().count() <= 64
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(name.to_string())
    } else {
        Err(LoginError::Invalid {
            field: "name",
            message: "use 1 to 64 letters, digits, '.', '_', '-' or '@'".to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AuthConfig {
        AuthConfig {
            mode: AuthMode::Password,
            session_ttl: Duration::from_secs(3600),
            limits: Limits {
                failures_per_user: 2,
                failures_per_address: 10,
                window_ms: 60_000,
            },
            proxy_default_role: Role::Viewer,
        }
    }

    #[tokio::test]
    async fn login_starts_a_session_that_logout_ends() {
        let dir = tempfile::tempdir().unwrap();
        let auth = Auth::new(Database::open(dir.path()).await.unwrap(), config());
        let setup = auth.offer_setup().await.unwrap().expect("no users yet");
        let first = auth
            .complete_setup(&setup, "root", "long enough")
            .await
            .unwrap();
        assert!(matches!(
            auth.complete_setup(&setup, "again", "long enough").await,
            Err(LoginError::SetupUsed)
        ));
        assert_eq!(
            auth.session(&first.secret).await.unwrap().unwrap().role,
            Role::Admin
        );
        let address = IpAddr::from([127, 0, 0, 1]);
        assert!(matches!(
            auth.login("root", "wrong password", address).await,
            Err(LoginError::Wrong)
        ));
        let session = auth.login("ROOT", "long enough", address).await.unwrap();
        let me = auth.session(&session.secret).await.unwrap().unwrap();
        assert_eq!((me.name.as_str(), me.via), ("root", Via::Session));
        auth.logout(&session.secret).await.unwrap();
        assert_eq!(auth.session(&session.secret).await.unwrap(), None);
        assert!(auth.offer_setup().await.unwrap().is_none());
    }

    #[test]
    fn user_names_are_checked() {
        assert_eq!(check_user_name(" ada.l@x ").unwrap(), "ada.l@x");
        for bad in ["", "a b", "<script>", &"x".repeat(65)] {
            assert!(check_user_name(bad).is_err(), "{bad:?}");
        }
    }
}
