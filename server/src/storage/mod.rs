//! SQLite storage: owns the connection pool, the schema and every SQL statement. Callers get
//! typed results; row types stay private to this module. It knows the metrics and Kinesis
//! vocabularies ([`crate::metric`], [`crate::kinesis`]) and nothing above them.
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
//!
//! The database is one file, `<data-dir>/streamboard.db`, in WAL mode so readers (dashboard,
//! exports) never block the writer. Migrations from `migrations/` are embedded in the binary and
//! applied at start-up; a database written by a newer Streamboard is refused, not downgraded.

pub mod alerts;
pub mod auth;
pub mod checkpoints;
pub mod dashboards;
pub mod export;
pub mod flush;
pub mod metrics;
pub mod raw;
pub mod rollup;

pub use flush::{CheckpointHook, FlushWriter, NoCheckpoints};

use crate::metric::histogram::HistogramError;
use futures_util::future::BoxFuture;
use sqlx::{
    Connection, SqliteConnection, SqlitePool,
    migrate::{MigrateError, Migrator},
    pool::PoolConnectionMetadata,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};
use std::{
    path::{Path, PathBuf},
    time::Duration,
};

static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// Why the database could not be opened. Each message says which file and what to do.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open database {path}: {source}")]
    Open { path: PathBuf, source: sqlx::Error },
    #[error(
        "database {path} has schema version {found}, newer than this Streamboard knows (up to {known}); \
         run a newer Streamboard or point --data-dir at another directory"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("database {path}: applying migrations failed: {source}")]
    Migrate { path: PathBuf, source: MigrateError },
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
    /// (SQLITE_FULL, or ENOSPC from the file system).
    pub fn is_disk_full(&self) -> bool {
        match self {
            StorageError::Sqlite(rusqlite::Error::SqliteFailure(error, _)) => {
                error.code == rusqlite::ErrorCode::DiskFull
            }
            StorageError::Query(sqlx::Error::Database(error)) => {
                error.code().as_deref() == Some("13") || error.message().contains("disk is full")
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

/// The pool plus where it lives.
#[derive(Debug, Clone)]
pub struct Database {
    pool: SqlitePool,
    /// One connection for the engine's flush (see [`Database::flush_connection`]).
    flush_writer: SqlitePool,
    path: PathBuf,
}

/// Highest schema version embedded in this binary.
pub fn latest_schema_version() -> i64 {
    MIGRATOR
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
        let path = database_path(data_dir);
        let options = SqliteConnectOptions::new()
            .filename(&path)
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
                path: path.clone(),
                source,
            })?;
        // The flush shares the pool until the migrations are done.
        let mut database = Self {
            pool: pool.clone(),
            flush_writer: pool,
            path,
        };
        database.migrate().await?;
        // The flush's own connection, opened after the migrations: a page cache of 32 MiB
        // (SQLite's default is 2 MiB) keeps the newest rows, which the next flush partly
        // rewrites (one second of 1-second rows at 10,000 series is ~2 MiB); with the
        // default those pages were read back every flush. Readers keep the default.
        database.flush_writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.pragma("cache_size", "-32768"))
            .await
            .map_err(|source| StorageError::Open {
                path: database.path.clone(),
                source,
            })?;
        Ok(database)
    }

    async fn migrate(&self) -> Result<(), StorageError> {
        let known = latest_schema_version();
        match MIGRATOR.run(&self.pool).await {
            Ok(()) => Ok(()),
            Err(MigrateError::VersionMissing(found)) if found > known => {
                Err(StorageError::NewerSchema {
                    path: self.path.clone(),
                    found,
                    known,
                })
            }
            Err(source) => Err(StorageError::Migrate {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Starts a write transaction with `BEGIN IMMEDIATE`: it takes SQLite's write lock up front,
    /// so a concurrent writer makes it wait (busy timeout) instead of failing with
    /// SQLITE_BUSY when a deferred transaction that has read tries to upgrade to a write.
    pub async fn begin_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// The flush's own connection (a larger page cache); the flush begins its transaction on
    /// it with `BEGIN IMMEDIATE`, as [`Database::begin_write`] does.
    pub async fn flush_connection(
        &self,
    ) -> Result<sqlx::pool::PoolConnection<sqlx::Sqlite>, sqlx::Error> {
        self.flush_writer.acquire().await
    }

    /// Closes the flush's connection after a failed transaction; the next flush opens a fresh
    /// one. When a COMMIT fails with SQLITE_FULL, SQLite may already have rolled the
    /// transaction back; sqlx then still counts it as open (its ROLLBACK fails) and the
    /// connection could never begin another, so a full disk would stop the flush for good.
    pub async fn discard_flush_connection(conn: sqlx::pool::PoolConnection<sqlx::Sqlite>) {
        if let Err(error) = conn.close().await {
            tracing::warn!(%error, "closing the flush's connection after a failure");
        }
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Highest migration version applied to this database.
    pub async fn schema_version(&self) -> Result<i64, StorageError> {
        let version: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success = 1")
                .fetch_one(&self.pool)
                .await?;
        Ok(version.unwrap_or(0))
    }

    /// A cheap round trip used by `/healthz`.
    pub async fn ping(&self) -> Result<(), StorageError> {
        sqlx::query_scalar::<_, i64>("SELECT 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(())
    }

    /// Waits for checked-out connections and closes the pool (checkpointing the WAL).
    pub async fn close(&self) {
        self.flush_writer.close().await;
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
