//! Storage: owns the database (SQLite or PostgreSQL), its schema and every SQL statement.
//! Callers get typed results; row types stay private to this module. It knows the metrics and
//! Kinesis vocabularies ([`crate::metric`], [`crate::kinesis`]) and nothing above them.
//!
//! # Layout
//! - [`metrics`]: definitions, built-in metric rows, bucket writes and history reads.
//! - [`flush`]: the flush writer (one transaction per flush with its checkpoints).
//! - [`rollup`]: exact 1-minute and 1-hour roll-ups of the 1-second rows.
//! - [`export`]: sorted and paged reads for report export.
//! - [`checkpoints`]: the consumer's shard positions.
//! - [`alerts`]: rules, instance states, transitions and the notification outbox.
//! - [`dashboards`]: user-built dashboards (their JSON documents).
//! - [`auth`]: users, login sessions and API tokens (hashes only).
//! - [`raw`]: the flush's rusqlite handle on a pooled connection.
//! - [`rows`]: the row primitives the flush and the roll-ups are written in, on either backend.
//! - [`pg`]: the PostgreSQL pool and its flush primitives.
//!
//! # Two backends, one set of statements
//! By default the database is one SQLite file, `<data-dir>/streamboard.db`, in WAL mode so
//! readers (dashboard, exports) never block the writer. `--database postgres://…` stores the
//! same tables in PostgreSQL. Each module writes its statements once, in SQL both accept
//! (`$1` parameters, `ON CONFLICT`, `RETURNING`); [`per_backend!`] compiles them once per
//! backend against that backend's typed sqlx driver, and [`on_backend!`] picks the compiled
//! copy at run time. Where the dialects differ, the statement says so with `if sql::PG`.
//! Migrations from `migrations/sqlite/` and `migrations/postgres/` (the same versions) are
//! embedded in the binary and applied at start-up; a database written by a newer Streamboard
//! is refused, not downgraded.

pub mod alerts;
pub mod auth;
pub mod checkpoints;
pub mod dashboards;
pub mod export;
pub mod flush;
pub mod metrics;
pub mod pg;
pub mod raw;
pub mod rollup;
pub mod rows;

pub use flush::{CheckpointHook, FlushWriter, NoCheckpoints};

use crate::metric::histogram::HistogramError;
use futures_util::future::BoxFuture;
use sqlx::{
    Connection, PgPool, SqliteConnection, SqlitePool,
    migrate::{MigrateError, Migrator},
    pool::PoolConnectionMetadata,
    postgres::{PgConnectOptions, PgConnection},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};
use std::{
    fmt,
    path::{Path, PathBuf},
    str::FromStr,
    time::Duration,
};

static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("../migrations/postgres");

/// Compiles the items once per backend: into `mod sqlite` (with `Db = sqlx::Sqlite`) and
/// `mod postgres` (with `Db = sqlx::Postgres`), each also holding that backend's [`dialect`]
/// (`Db`, `Connection`, `Pool`, `PG`, `begin_write`). Invoked once per storage module.
macro_rules! per_backend {
    ($($item:item)*) => {
        #[allow(dead_code, unused_imports)]
        pub(crate) mod sqlite {
            use super::*;
            pub(crate) use $crate::storage::dialect::sqlite::*;
            $($item)*
        }
        #[allow(dead_code, unused_imports)]
        pub(crate) mod postgres {
            use super::*;
            pub(crate) use $crate::storage::dialect::postgres::*;
            $($item)*
        }
    };
}
pub(crate) use per_backend;

/// Runs `$body` with `$sql` naming the calling module's [`per_backend!`] copy for the
/// database's backend and `$pool` its pool: the body is written once and compiled for each.
macro_rules! on_backend {
    ($database:expr, $sql:ident, $pool:ident => $body:expr) => {
        match &$database.backend {
            $crate::storage::Backend::Sqlite(store) => {
                #[allow(unused_imports)]
                use sqlite as $sql;
                let $pool = &store.pool;
                $body
            }
            $crate::storage::Backend::Postgres(store) => {
                #[allow(unused_imports)]
                use postgres as $sql;
                let $pool = &store.pool;
                $body
            }
        }
    };
}
pub(crate) use on_backend;

/// What differs between the backends beyond the statements' text.
pub(crate) mod dialect {
    pub(crate) mod sqlite {
        pub(crate) type Db = sqlx::Sqlite;
        pub(crate) type Connection = sqlx::SqliteConnection;
        pub(crate) type Pool = sqlx::SqlitePool;
        pub(crate) const PG: bool = false;

        /// `BEGIN IMMEDIATE`: takes SQLite's write lock up front, so a concurrent writer makes
        /// it wait (busy timeout) instead of failing with SQLITE_BUSY when a deferred
        /// transaction that has read tries to upgrade to a write.
        pub(crate) async fn begin_write(
            pool: &Pool,
        ) -> Result<sqlx::Transaction<'static, Db>, sqlx::Error> {
            pool.begin_with("BEGIN IMMEDIATE").await
        }
    }

    pub(crate) mod postgres {
        pub(crate) type Db = sqlx::Postgres;
        pub(crate) type Connection = sqlx::PgConnection;
        pub(crate) type Pool = sqlx::PgPool;
        pub(crate) const PG: bool = true;

        /// A READ COMMITTED transaction: writers that read before they write take row locks
        /// where it matters (`FOR UPDATE`).
        pub(crate) async fn begin_write(
            pool: &Pool,
        ) -> Result<sqlx::Transaction<'static, Db>, sqlx::Error> {
            pool.begin().await
        }
    }
}

/// The id of an `INSERT … RETURNING id`, read with `fetch_all`: outside a transaction SQLite
/// commits such a statement only when it steps to its end, and a reader that stops at the
/// first row (`fetch_one`) would never see the commit fail (a full disk) although nothing was
/// stored.
pub(crate) fn returned_id(ids: Vec<i64>) -> Result<i64, StorageError> {
    ids.first()
        .copied()
        .ok_or(StorageError::Query(sqlx::Error::RowNotFound))
}

/// A stored document with a name: an alert rule or a dashboard (the `id, name, spec,
/// created_ms, updated_ms` columns both tables share); `spec` is its JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecRow {
    pub id: i64,
    pub name: String,
    pub spec: String,
    pub created_ms: i64,
    pub updated_ms: i64,
}

impl SpecRow {
    fn from_row<R: StoredRow>(row: &R) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.int("id")?,
            name: row.text("name")?,
            spec: row.text("spec")?,
            created_ms: row.int("created_ms")?,
            updated_ms: row.int("updated_ms")?,
        })
    }
}

/// Reading a column of a row of either backend, by name; the types the schema uses (`BIGINT`,
/// `DOUBLE PRECISION`/`REAL`, `TEXT`, `BYTEA`/`BLOB`).
pub(crate) trait StoredRow {
    fn int(&self, column: &str) -> Result<i64, sqlx::Error>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>, sqlx::Error>;
    fn real(&self, column: &str) -> Result<f64, sqlx::Error>;
    fn opt_real(&self, column: &str) -> Result<Option<f64>, sqlx::Error>;
    fn text(&self, column: &str) -> Result<String, sqlx::Error>;
    fn opt_text(&self, column: &str) -> Result<Option<String>, sqlx::Error>;
    fn str(&self, column: &str) -> Result<&str, sqlx::Error>;
    fn blob(&self, column: &str) -> Result<Option<Vec<u8>>, sqlx::Error>;
}

macro_rules! stored_row {
    ($row:ty) => {
        impl StoredRow for $row {
            fn int(&self, column: &str) -> Result<i64, sqlx::Error> {
                sqlx::Row::try_get(self, column)
            }
            fn opt_int(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
                sqlx::Row::try_get(self, column)
            }
            fn real(&self, column: &str) -> Result<f64, sqlx::Error> {
                sqlx::Row::try_get(self, column)
            }
            fn opt_real(&self, column: &str) -> Result<Option<f64>, sqlx::Error> {
                sqlx::Row::try_get(self, column)
            }
            fn text(&self, column: &str) -> Result<String, sqlx::Error> {
                sqlx::Row::try_get(self, column)
            }
            fn opt_text(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
                sqlx::Row::try_get(self, column)
            }
            fn str(&self, column: &str) -> Result<&str, sqlx::Error> {
                sqlx::Row::try_get(self, column)
            }
            fn blob(&self, column: &str) -> Result<Option<Vec<u8>>, sqlx::Error> {
                sqlx::Row::try_get(self, column)
            }
        }
    };
}
stored_row!(sqlx::sqlite::SqliteRow);
stored_row!(sqlx::postgres::PgRow);

/// Why the database could not be opened. Each message says which database and what to do.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open database {location}: {source}")]
    Open {
        location: String,
        source: sqlx::Error,
    },
    #[error(
        "database {location} has schema version {found}, newer than this Streamboard knows (up to {known}); \
         run a newer Streamboard or point --database (or --data-dir) at another database"
    )]
    NewerSchema {
        location: String,
        found: i64,
        known: i64,
    },
    #[error("database {location}: applying migrations failed: {source}")]
    Migrate {
        location: String,
        source: MigrateError,
    },
    #[error("database query failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error("database query failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("unexpected value in the database: {0}")]
    Value(#[from] rusqlite::types::FromSqlError),
    #[error("unexpected value in the database: {0}")]
    Histogram(#[from] HistogramError),
}

impl StorageError {
    /// True when the write failed because the database's disk (or its size limit) is full
    /// (SQLITE_FULL, PostgreSQL's disk_full, or ENOSPC from the file system).
    pub fn is_disk_full(&self) -> bool {
        match self {
            StorageError::Sqlite(rusqlite::Error::SqliteFailure(error, _)) => {
                error.code == rusqlite::ErrorCode::DiskFull
            }
            StorageError::Query(sqlx::Error::Database(error)) => {
                // SQLite's primary code 13, PostgreSQL's SQLSTATE 53100.
                matches!(error.code().as_deref(), Some("13" | "53100"))
                    || error.message().contains("disk is full")
            }
            StorageError::Query(sqlx::Error::Io(error)) => {
                error.kind() == std::io::ErrorKind::StorageFull
            }
            _ => false,
        }
    }
}

/// The pool's check on every connection handed back: one still inside a transaction is closed
/// (which rolls the transaction back and releases SQLite's write lock) rather than reused.
///
/// A write that fails inside `BEGIN IMMEDIATE` drops its transaction, and sqlx rolls it back
/// before this check runs (the check reaches the connection through the same queue). But when
/// SQLite has already rolled the transaction back itself, as it may on SQLITE_FULL, that
/// ROLLBACK fails and sqlx still counts the transaction as open: every later `BEGIN IMMEDIATE`
/// on the connection would then fail. Either way the connection goes; the pool opens a fresh one.
fn release_outside_transaction(
    conn: &mut SqliteConnection,
    _: PoolConnectionMetadata,
) -> BoxFuture<'_, Result<bool, sqlx::Error>> {
    Box::pin(async move {
        let mut locked = conn.lock_handle().await?;
        // SAFETY: the locked handle is this task's alone until `locked` drops;
        // sqlite3_get_autocommit only reads the connection's state.
        let autocommit =
            unsafe { rusqlite::ffi::sqlite3_get_autocommit(locked.as_raw_handle().as_ptr()) } != 0;
        drop(locked);
        let clean = autocommit && !conn.is_in_transaction();
        if !clean {
            tracing::warn!(
                sqlite_in_transaction = !autocommit,
                "a database connection was handed back inside a transaction; closing it"
            );
        }
        Ok(clean)
    })
}

/// `<data_dir>/streamboard.db`.
pub fn database_path(data_dir: &Path) -> PathBuf {
    data_dir.join("streamboard.db")
}

/// Where the data lives: `--database`. A PostgreSQL URL keeps its password out of every
/// `Debug` and `Display` (logs, errors).
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// An SQLite file (`sqlite:PATH`; the default is `<data-dir>/streamboard.db`).
    Sqlite(PathBuf),
    /// A PostgreSQL database (`postgres://` or `postgresql://`).
    Postgres(String),
}

impl FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if let Some(path) = text.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err("an sqlite: URL needs a file path, e.g. sqlite:/var/lib/streamboard/streamboard.db".into());
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            // Checked now, so a typo is refused at start with the option named.
            PgConnectOptions::from_str(text)
                .map_err(|error| format!("not a PostgreSQL URL ({}): {error}", redact_url(text)))?;
            return Ok(Self::Postgres(text.to_string()));
        }
        Err(format!(
            "{} is neither `sqlite:PATH` nor `postgres://USER:PASSWORD@HOST:PORT/DATABASE`",
            redact_url(text)
        ))
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            Self::Postgres(url) => f.write_str(&redact_url(url)),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for DatabaseUrl {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.expose())
    }
}

impl<'de> serde::Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl DatabaseUrl {
    /// The URL with its password, for the connection (never for a log or an error).
    pub fn expose(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite:{}", path.display()),
            Self::Postgres(url) => url.clone(),
        }
    }
}

/// A URL with the password of its user-info replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split(':').next().unwrap_or_default();
            let masked = if user_info.contains(':') {
                format!("{user}:***")
            } else {
                user.to_string()
            };
            format!("{scheme}://{masked}@{host}{tail}")
        }
        None => url.to_string(),
    }
}

/// The database: one backend's pools, shared by every part of the server (cheap to clone).
#[derive(Debug, Clone)]
pub struct Database {
    backend: Backend,
}

/// The backend a [`Database`] runs on.
#[derive(Debug, Clone)]
pub(crate) enum Backend {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

#[derive(Debug, Clone)]
pub(crate) struct SqliteStore {
    pool: SqlitePool,
    /// One connection for the engine's flush (see [`flush::write_flush`]).
    flush_writer: SqlitePool,
    path: PathBuf,
}

#[derive(Debug, Clone)]
pub(crate) struct PostgresStore {
    pool: PgPool,
    /// The URL without its password.
    location: String,
}

/// A connection (or an open transaction, which derefs to one) of either backend: what the
/// flush hands the checkpoint hook, so checkpoints commit with the flush's rows.
pub enum Conn<'a> {
    Sqlite(&'a mut sqlx::SqliteConnection),
    Postgres(&'a mut PgConnection),
}

/// Highest schema version embedded in this binary (the same on both backends).
pub fn latest_schema_version() -> i64 {
    SQLITE_MIGRATOR
        .iter()
        .map(|migration| migration.version)
        .max()
        .unwrap_or(0)
}

impl Database {
    /// Opens (creating if needed) `<data_dir>/streamboard.db` and applies migrations.
    pub async fn open(data_dir: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StorageError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        Self::open_sqlite(&database_path(data_dir)).await
    }

    /// Opens the database `url` names (`--database`), or `<data_dir>/streamboard.db` without
    /// one, and applies migrations.
    pub async fn connect(url: Option<&DatabaseUrl>, data_dir: &Path) -> Result<Self, StorageError> {
        match url {
            None => Self::open(data_dir).await,
            Some(DatabaseUrl::Sqlite(path)) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|source| StorageError::DataDir {
                        path: parent.to_path_buf(),
                        source,
                    })?;
                }
                Self::open_sqlite(path).await
            }
            Some(url @ DatabaseUrl::Postgres(_)) => Self::open_postgres(url).await,
        }
    }

    async fn open_sqlite(path: &Path) -> Result<Self, StorageError> {
        let location = path.display().to_string();
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL: a commit survives a process crash; an OS crash may lose the last
            // transactions, never corrupt the file.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .after_release(release_outside_transaction)
            .connect_with(options.clone())
            .await
            .map_err(|source| StorageError::Open {
                location: location.clone(),
                source,
            })?;
        migrate(&SQLITE_MIGRATOR, &pool, &location).await?;
        // The flush's own connection, opened after the migrations: a page cache of 32 MiB
        // (SQLite's default is 2 MiB) keeps the newest rows, which the next flush partly
        // rewrites (one second of 1-second rows at 10,000 series is ~2 MiB); with the
        // default those pages were read back every flush. Readers keep the default.
        let flush_writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.pragma("cache_size", "-32768"))
            .await
            .map_err(|source| StorageError::Open { location, source })?;
        Ok(Self {
            backend: Backend::Sqlite(SqliteStore {
                pool,
                flush_writer,
                path: path.to_path_buf(),
            }),
        })
    }

    async fn open_postgres(url: &DatabaseUrl) -> Result<Self, StorageError> {
        let location = url.to_string();
        let pool = pg::connect(&url.expose())
            .await
            .map_err(|source| StorageError::Open {
                location: location.clone(),
                source,
            })?;
        migrate(&POSTGRES_MIGRATOR, &pool, &location).await?;
        Ok(Self {
            backend: Backend::Postgres(PostgresStore { pool, location }),
        })
    }

    /// Where the data is, for logs and errors: the SQLite file or the PostgreSQL URL without
    /// its password.
    pub fn location(&self) -> String {
        match &self.backend {
            Backend::Sqlite(store) => store.path.display().to_string(),
            Backend::Postgres(store) => store.location.clone(),
        }
    }

    /// The SQLite file, on SQLite.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Sqlite(store) => Some(&store.path),
            Backend::Postgres(_) => None,
        }
    }

    /// True on PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// The SQLite pool, for tests and benches that look at the file's own state. SQLite only:
    /// panics on PostgreSQL.
    pub fn pool(&self) -> &SqlitePool {
        match &self.backend {
            Backend::Sqlite(store) => &store.pool,
            Backend::Postgres(store) => {
                panic!(
                    "Database::pool is SQLite's; this database is {}",
                    store.location
                )
            }
        }
    }

    /// Highest migration version applied to this database.
    pub async fn schema_version(&self) -> Result<i64, StorageError> {
        let sql = "SELECT MAX(version) FROM _sqlx_migrations WHERE success";
        let version: Option<i64> = on_backend!(self, _sql, pool => {
            sqlx::query_scalar(sql).fetch_one(pool).await?
        });
        Ok(version.unwrap_or(0))
    }

    /// A cheap round trip used by `/healthz`.
    pub async fn ping(&self) -> Result<(), StorageError> {
        on_backend!(self, _sql, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Waits for checked-out connections and closes the pools (on SQLite, checkpointing the
    /// WAL).
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(store) => {
                store.flush_writer.close().await;
                store.pool.close().await;
            }
            Backend::Postgres(store) => store.pool.close().await,
        }
    }
}

/// Applies the embedded migrations; a database with a newer version than this binary knows is
/// refused with [`StorageError::NewerSchema`].
async fn migrate<DB>(
    migrator: &Migrator,
    pool: &sqlx::Pool<DB>,
    location: &str,
) -> Result<(), StorageError>
where
    DB: sqlx::Database,
    DB::Connection: sqlx::migrate::Migrate,
{
    let known = latest_schema_version();
    match migrator.run(pool).await {
        Ok(()) => Ok(()),
        Err(MigrateError::VersionMissing(found)) if found > known => {
            Err(StorageError::NewerSchema {
                location: location.to_string(),
                found,
                known,
            })
        }
        Err(source) => Err(StorageError::Migrate {
            location: location.to_string(),
            source,
        }),
    }
}

// Empty copies for `on_backend!` calls in this module.
per_backend! {}

/// The test server of `server/tests/support/postgres.rs`, shared with the integration tests.
#[cfg(test)]
#[path = "../../tests/support/postgres.rs"]
pub(crate) mod test_postgres;

/// One database of each backend, empty and migrated: storage tests run against both.
#[cfg(test)]
pub(crate) async fn test_databases() -> Vec<(tempfile::TempDir, Database)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Database::open(dir.path()).await.unwrap();
    let url: DatabaseUrl = test_postgres::fresh_database().await.parse().unwrap();
    let postgres = Database::connect(Some(&url), dir.path()).await.unwrap();
    vec![(dir, sqlite), (tempfile::tempdir().unwrap(), postgres)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn postgres_migrations_apply_and_reopen_cleanly() {
        let url: DatabaseUrl = test_postgres::fresh_database().await.parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let db = Database::connect(Some(&url), dir.path()).await.unwrap();
        assert!(db.is_postgres());
        assert_eq!(db.schema_version().await.unwrap(), latest_schema_version());
        db.ping().await.unwrap();
        db.close().await;
        // Nothing was written to the data directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let again = Database::connect(Some(&url), dir.path()).await.unwrap();
        assert_eq!(
            again.schema_version().await.unwrap(),
            latest_schema_version()
        );
        again.close().await;
    }

    #[test]
    fn database_urls_are_parsed_and_their_passwords_never_shown() {
        let url: DatabaseUrl = "postgres://sb:s3cret@db.internal:5433/metrics?sslmode=require"
            .parse()
            .unwrap();
        assert_eq!(
            url.to_string(),
            "postgres://sb:***@db.internal:5433/metrics?sslmode=require"
        );
        assert_eq!(format!("{url:?}"), url.to_string());
        assert!(url.expose().contains("s3cret"));
        assert_eq!(
            "sqlite:/var/lib/sb/x.db".parse::<DatabaseUrl>().unwrap(),
            DatabaseUrl::Sqlite("/var/lib/sb/x.db".into())
        );
        let error = "mysql://root:hunter2@h/db"
            .parse::<DatabaseUrl>()
            .unwrap_err();
        assert!(
            error.contains("neither `sqlite:PATH` nor `postgres://"),
            "{error}"
        );
        assert!(!error.contains("hunter2"), "{error}");
        assert!("sqlite:".parse::<DatabaseUrl>().is_err());
        assert_eq!(redact_url("postgres://sb@h/db"), "postgres://sb@h/db");
    }

    #[tokio::test]
    async fn migrations_apply_to_a_fresh_file_and_reopen_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("nested/data");
        let db = Database::open(&data_dir).await.unwrap();
        assert!(data_dir.join("streamboard.db").exists());
        assert_eq!(db.schema_version().await.unwrap(), latest_schema_version());
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(mode, "wal");
        let created: String =
            sqlx::query_scalar("SELECT value FROM app_meta WHERE key = 'created_at'")
                .fetch_one(db.pool())
                .await
                .unwrap();
        assert!(created.ends_with('Z'), "{created}");
        db.close().await;

        let again = Database::open(&data_dir).await.unwrap();
        again.ping().await.unwrap();
        again.close().await;
    }

    #[tokio::test]
    async fn a_newer_schema_is_refused_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path()).await.unwrap();
        let future = latest_schema_version() + 1000;
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (?, 'from the future', 1, x'00', 0)",
        )
        .bind(future)
        .execute(db.pool())
        .await
        .unwrap();
        db.close().await;

        let error = Database::open(dir.path()).await.unwrap_err();
        assert!(
            matches!(error, StorageError::NewerSchema { found, .. } if found == future),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(
            message.contains("newer than this Streamboard knows"),
            "{message}"
        );
        assert!(message.contains("streamboard.db"), "{message}");
        assert!(message.contains("--database"), "{message}");
    }

    #[tokio::test]
    async fn an_unwritable_data_dir_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let error = Database::open(&file.join("data")).await.unwrap_err();
        assert!(matches!(error, StorageError::DataDir { .. }), "{error:?}");
        assert!(error.to_string().contains("cannot create data directory"));
    }
}
