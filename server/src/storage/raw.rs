//! Synchronous SQL on a connection of the pool, through rusqlite prepared statements: the
//! flush's hot path (thousands of single-row statements per transaction).
//!
//! sqlx runs every statement on the connection's worker thread and copies each argument and
//! each row across a channel; batched multi-row statements hid the round trips but made SQLite
//! keep a statement journal (every modified page copied to a temporary file before the
//! change). Here the caller locks the connection's handle (sqlx stays the owner: transactions
//! begin and commit through it) and runs plain single-row statements on its own thread,
//! borrowing rows instead of copying them.

use super::StorageError;
use sqlx::SqliteConnection;

/// Runs `f` on the raw SQLite handle of `conn` (inside whatever transaction `conn` has open).
///
/// `f` blocks the calling thread: on a multi-thread runtime (the server's) it runs in
/// `block_in_place`, so the runtime moves its other tasks to another worker meanwhile; on a
/// current-thread runtime (tests, benches) it runs inline.
pub async fn with_raw<T>(
    conn: &mut SqliteConnection,
    f: impl FnOnce(&rusqlite::Connection) -> Result<T, StorageError>,
) -> Result<T, StorageError> {
    let mut locked = conn.lock_handle().await?;
    let handle = locked.as_raw_handle();
    // SAFETY: `locked` gives this thread exclusive use of the handle until it drops, and the
    // rusqlite connection (which does not own the handle: it neither closes it nor touches
    // its hooks) is dropped first, finalising the statements it prepared.
    let raw = unsafe { rusqlite::Connection::from_handle(handle.as_ptr()) }?;
    let multi_thread = tokio::runtime::Handle::try_current().is_ok_and(|runtime| {
        runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
    });
    let result = if multi_thread {
        tokio::task::block_in_place(|| f(&raw))
    } else {
        f(&raw)
    };
    drop(raw);
    drop(locked);
    result
}
