//! The flush writer: one transaction per [`Flush`] holding its 1-second rows, the marks and
//! closed roll-ups of the 1-minute and 1-hour rows they touch, and (through the
//! [`CheckpointHook`]) the consumer's checkpoints of the records those rows include. Either all
//! of it commits or none of it: the exactly-once rule of the whole data path.
//!
//! The engine hands flushes in through [`FlushWriter`]; what the writer keeps between
//! transactions ([`FlushState`]) is only a cache of what the database holds, reloaded after a
//! failed transaction or a restart.

use super::{
    Backend, Conn, Database, StorageError,
    metrics::{self, BucketWrite, SparseRow, TIERS_S, write_buckets},
    pg::with_rows,
    raw::with_raw,
    rollup::{self, ROLLUP_LOCK, SeriesMap},
    rows::{RowSql, SqliteRows},
};
use crate::{
    clock::now_ms,
    kinesis::{ShardId, StreamName},
    metric::{Builtin, Flush, MetricKey},
};
use sqlx::Connection;
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    future::Future,
    pin::Pin,
    sync::Arc,
    time::Duration,
};

/// The checkpoint hook: called inside every flush transaction, after the bucket rows are
/// written and before the commit, with the newest position of every shard whose records those
/// rows include. The server plugs the consumer's checkpoint writer in here; an error rolls the
/// whole flush back (it is retried at the next flush).
pub trait CheckpointHook<P>: Send + 'static {
    fn write<'a>(
        &'a mut self,
        tx: Conn<'a>,
        positions: &'a [(StreamName, ShardId, P)],
    ) -> Pin<Box<dyn Future<Output = Result<(), StorageError>> + Send + 'a>>;
}

/// A hook that stores nothing (the engine's own tests and benches).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoCheckpoints;

impl<P: Sync> CheckpointHook<P> for NoCheckpoints {
    fn write<'a>(
        &'a mut self,
        _tx: Conn<'a>,
        _positions: &'a [(StreamName, ShardId, P)],
    ) -> Pin<Box<dyn Future<Output = Result<(), StorageError>> + Send + 'a>> {
        Box::pin(async { Ok(()) })
    }
}

/// The flush writer: the database, the checkpoint hook and the [`FlushState`], writing one
/// flush at a time. The engine's writer task owns one.
pub struct FlushWriter<H> {
    database: Database,
    hook: H,
    state: FlushState,
}

impl<H> FlushWriter<H> {
    /// A writer for a server whose 1-second rows are deleted after `second_retention`.
    pub fn new(database: Database, hook: H, second_retention: Duration) -> Self {
        Self {
            database,
            hook,
            state: FlushState::with_retention(second_retention),
        }
    }

    /// Writes one flush in one transaction (see [`write_flush`]).
    pub async fn write<P>(&mut self, flush: &Flush<P>) -> Result<(), StorageError>
    where
        H: CheckpointHook<P>,
    {
        write_flush(&self.database, flush, &mut self.hook, &mut self.state).await
    }

    /// Rebuilds and unmarks every open roll-up (see [`close_rollups`]).
    pub async fn close_rollups(&mut self) -> Result<(), StorageError> {
        close_rollups(&self.database, &mut self.state).await
    }
}

/// What the flush keeps between transactions: built-in metric ids, the open roll-ups (marked
/// 1-minute and 1-hour rows, see [`super::rollup`]) and the content of the open
/// minutes this writer saw whole. A fresh state (at start, after a crash, after a failed
/// transaction) reloads the marks from the database, which is always the truth: nothing here
/// has to survive a crash.
#[derive(Debug, Clone, Default)]
pub struct FlushState {
    builtin_ids: HashMap<(StreamName, Builtin), i64>,
    /// Marked rows; `None` until loaded from the database.
    marks: Option<Marks>,
    /// Open 1-minute rows whose every 1-second row went through this state, by (metric id,
    /// minute start) and series: the merge of what was written to them. Such a minute closes
    /// by writing this, without reading its sixty 1-second rows back. A minute that had rows
    /// before it was marked by this state (a restart, a late record for a closed minute) is
    /// rebuilt from storage instead.
    minutes: HashMap<(i64, i64), SeriesMap<SparseRow>>,
    /// The content of the newest 1-second rows written (see [`rollup::SecondCache`]).
    seconds: rollup::SecondCache,
    /// No 1-second row is newer than this (loaded with the marks, then kept up to date).
    stored_upto_s: i64,
    /// The newest second any flush has written: a period closes (its row is rebuilt and
    /// unmarked) once this is [`CLOSE_AFTER_S`] past its end.
    newest_s: i64,
    /// 1-second retention, when it applies: a delta for a second so old that the 1-second rows
    /// of its minute may already be deleted is merged straight into all three tiers instead
    /// (its roll-up could not be rebuilt).
    second_retention: Option<Duration>,
}

/// Marked roll-up rows: (tier, period start) -> metric id -> series.
type Marks = BTreeMap<(i64, i64), HashMap<i64, SeriesMap<()>>>;

/// How far past its end (in data seconds) a period's roll-up is rebuilt and unmarked: records
/// for a second still arrive for a moment after it (the flush boundary falls inside seconds).
/// Later records simply mark the period again.
pub const CLOSE_AFTER_S: i64 = 5;

/// Margin before the 1-second retention horizon inside which deltas bypass the roll-ups.
const ROLLUP_MARGIN: Duration = Duration::from_secs(3600);

impl FlushState {
    /// A state for a server whose 1-second rows are deleted after `second_retention`.
    pub fn with_retention(second_retention: Duration) -> Self {
        Self {
            second_retention: Some(second_retention),
            ..Self::default()
        }
    }

    /// Forgets everything (as after a restart); the marks are reloaded from the database.
    pub fn clear(&mut self) {
        *self = Self {
            second_retention: self.second_retention,
            ..Self::default()
        };
    }

    /// Number of marked (open) roll-up rows known.
    pub fn open_rollups(&self) -> usize {
        self.marks.as_ref().map_or(0, |marks| {
            marks
                .values()
                .flat_map(HashMap::values)
                .map(HashMap::len)
                .sum()
        })
    }
}

/// Writes one flush in one transaction: the 1-second rows of the bucket deltas, the marks of
/// the 1-minute and 1-hour rows they touch, the roll-ups of periods that closed, then the
/// checkpoint hook. When the transaction fails, `state` is cleared (reloaded from the database
/// by the next flush).
pub async fn write_flush<P, H: CheckpointHook<P>>(
    database: &Database,
    flush: &Flush<P>,
    hook: &mut H,
    state: &mut FlushState,
) -> Result<(), StorageError> {
    let now = now_ms();
    match &database.backend {
        Backend::Sqlite(store) => {
            let mut conn = store.flush_writer.acquire().await?;
            let result = async {
                let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
                for (stream, kind) in missing_builtins(flush, state) {
                    let id =
                        metrics::sqlite::builtin_metric_id(&mut tx, stream.as_str(), kind, now)
                            .await?;
                    state.builtin_ids.insert((stream, kind), id);
                }
                let writes = bucket_writes(flush, state);
                with_raw(&mut tx, |db| {
                    write_rollups(&mut SqliteRows(db), writes, state, now)
                })
                .await?;
                hook.write(Conn::Sqlite(&mut tx), &flush.positions).await?;
                tx.commit().await?;
                Ok::<_, StorageError>(())
            }
            .await;
            if result.is_err() {
                // Ids and marks this transaction created are gone with it: start over from
                // the database, on a fresh connection.
                state.clear();
                discard_sqlite_connection(conn).await;
            }
            result
        }
        Backend::Postgres(store) => {
            let result = async {
                let mut tx = store.pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(ROLLUP_LOCK)
                    .execute(&mut *tx)
                    .await?;
                for (stream, kind) in missing_builtins(flush, state) {
                    let id =
                        metrics::postgres::builtin_metric_id(&mut tx, stream.as_str(), kind, now)
                            .await?;
                    state.builtin_ids.insert((stream, kind), id);
                }
                let writes = bucket_writes(flush, state);
                with_rows(&mut tx, |db| write_rollups(db, writes, state, now)).await?;
                hook.write(Conn::Postgres(&mut tx), &flush.positions)
                    .await?;
                tx.commit().await?;
                Ok::<_, StorageError>(())
            }
            .await;
            if result.is_err() {
                state.clear();
            }
            result
        }
    }
}

/// Closes the flush's SQLite connection after a failed transaction; the next flush opens a
/// fresh one. When a COMMIT fails with SQLITE_FULL, SQLite may already have rolled the
/// transaction back; sqlx then still counts it as open (its ROLLBACK fails) and the connection
/// could never begin another, so a full disk would stop the flush for good.
async fn discard_sqlite_connection(conn: sqlx::pool::PoolConnection<sqlx::Sqlite>) {
    if let Err(error) = conn.close().await {
        tracing::warn!(%error, "closing the flush's connection after a failure");
    }
}

/// The built-in metrics of a flush whose ids the state does not know yet.
fn missing_builtins<P>(flush: &Flush<P>, state: &FlushState) -> Vec<(StreamName, Builtin)> {
    let mut missing: Vec<(StreamName, Builtin)> = Vec::new();
    for delta in &flush.deltas {
        if let MetricKey::Builtin { stream, kind } = &delta.metric {
            let key = (stream.clone(), *kind);
            if !state.builtin_ids.contains_key(&key) && !missing.contains(&key) {
                missing.push(key);
            }
        }
    }
    missing
}

/// The flush's deltas as bucket writes (every built-in id is in `state`).
fn bucket_writes<'f, P>(flush: &'f Flush<P>, state: &FlushState) -> Vec<BucketWrite<'f>> {
    flush
        .deltas
        .iter()
        .map(|delta| {
            let (metric_id, hist) = match &delta.metric {
                MetricKey::Defined(id) => (*id, delta.bounds.filter(|_| !delta.counts.is_empty())),
                MetricKey::Builtin { stream, kind } => {
                    let id = state.builtin_ids[&(stream.clone(), *kind)];
                    let has_histogram =
                        matches!(kind, Builtin::Bytes | Builtin::MillisBehindLatest);
                    (id, delta.bounds.filter(|_| has_histogram))
                }
            };
            BucketWrite {
                metric_id,
                series: &delta.series,
                second: delta.second,
                stats: delta.stats,
                counts: &delta.counts,
                hist,
            }
        })
        .collect()
}

/// The 1-second rows, marks and closed roll-ups of one flush (inside its transaction).
fn write_rollups(
    db: &mut dyn RowSql,
    mut writes: Vec<BucketWrite<'_>>,
    state: &mut FlushState,
    now_ms: i64,
) -> Result<(), StorageError> {
    if state.marks.is_none() {
        let mut marks = Marks::new();
        for (metric_id, tier, series, start) in db.all_marks()? {
            marks
                .entry((tier, start))
                .or_default()
                .entry(metric_id)
                .or_default()
                .insert(series.into(), ());
        }
        state.marks = Some(marks);
        state.stored_upto_s = db.newest_second()?.unwrap_or(i64::MIN);
    }
    // In the table's key order: rows of one (metric, second) come together.
    writes.sort_unstable_by(|a, b| {
        (a.metric_id, a.second, a.series).cmp(&(b.metric_id, b.second, b.series))
    });
    let oldest_rolled_s = state.second_retention.map_or(i64::MIN, |keep| {
        now_ms / 1000 - keep.saturating_sub(ROLLUP_MARGIN).as_secs() as i64
    });
    let (rolled, direct): (Vec<BucketWrite<'_>>, Vec<BucketWrite<'_>>) = writes
        .into_iter()
        .partition(|w| w.second >= oldest_rolled_s);
    if !direct.is_empty() {
        for write in &direct {
            if let Some(rows) = state.seconds.get_mut(&(write.metric_id, write.second)) {
                rows.remove(&**write.series);
            }
            // Its minute's 1-second rows no longer hold everything that minute does.
            let minute = write.second.div_euclid(60) * 60;
            if let Some(minute) = state.minutes.get_mut(&(write.metric_id, minute)) {
                minute.remove(&**write.series);
            }
        }
        write_buckets(db, &direct, &TIERS_S)?;
    }
    rollup::write_seconds(db, &rolled, &mut state.seconds, state.stored_upto_s)?;
    let stored_before_s = state.stored_upto_s;
    state.stored_upto_s = rolled
        .iter()
        .chain(&direct)
        .map(|w| w.second)
        .fold(state.stored_upto_s, i64::max);
    let marks = state.marks.as_mut().expect("loaded above");
    let mut new_marks = Vec::new();
    for group in rolled.chunk_by(|a, b| (a.metric_id, a.second) == (b.metric_id, b.second)) {
        let (metric_id, second) = (group[0].metric_id, group[0].second);
        state.newest_s = state.newest_s.max(second);
        let minute_s = second.div_euclid(60) * 60;
        let hour_s = second.div_euclid(3600) * 3600;
        for (tier, start) in [(60, minute_s), (3600, hour_s)] {
            let series = marks
                .entry((tier, start))
                .or_default()
                .entry(metric_id)
                .or_default();
            for write in group {
                if series.contains_key(&**write.series) {
                    continue;
                }
                series.insert(write.series.clone(), ());
                new_marks.push((metric_id, tier, write.series.to_string(), start));
                if tier == 60 && start > stored_before_s {
                    // No 1-second row of this minute was stored: from here on this state sees
                    // every one.
                    state
                        .minutes
                        .entry((metric_id, start))
                        .or_default()
                        .insert(write.series.clone(), SparseRow::default());
                }
            }
        }
        if let Some(minute) = state.minutes.get_mut(&(metric_id, minute_s)) {
            for write in group {
                if let Some(row) = minute.get_mut(&**write.series) {
                    row.add_unsorted(write.stats, write.hist, write.counts);
                }
            }
        }
    }
    db.mark(&new_marks)?;
    // Close: minutes first, then hours none of whose minutes is still open.
    for tier in [60, 3600] {
        let closing: Vec<(i64, i64)> = marks
            .range((tier, i64::MIN)..(tier, i64::MAX))
            .map(|(key, _)| *key)
            .filter(|(_, start)| start + tier + CLOSE_AFTER_S <= state.newest_s)
            .collect();
        let mut keys = Vec::new();
        for (tier, start) in closing {
            let open_minutes: HashSet<(i64, &str)> = if tier == 3600 {
                marks
                    .range((60, start)..(60, start + 3600))
                    .flat_map(|(_, metrics)| metrics.iter())
                    .flat_map(|(m, set)| set.keys().map(|s| (*m, &**s)))
                    .collect()
            } else {
                HashSet::new()
            };
            let Some(metrics) = marks.get(&(tier, start)) else {
                continue;
            };
            let closed: Vec<(i64, Arc<str>)> = metrics
                .iter()
                .flat_map(|(m, set)| set.keys().map(move |s| (*m, s)))
                .filter(|(m, s)| !open_minutes.contains(&(*m, &***s)))
                .map(|(m, s)| (m, s.clone()))
                .collect();
            let metrics = marks.get_mut(&(tier, start)).expect("present");
            for (metric_id, series) in &closed {
                if let Some(set) = metrics.get_mut(metric_id) {
                    set.remove(series);
                    if set.is_empty() {
                        metrics.remove(metric_id);
                    }
                }
            }
            if metrics.is_empty() {
                marks.remove(&(tier, start));
            }
            keys.extend(
                closed
                    .into_iter()
                    .map(|(m, s)| (m, tier, s.to_string(), start)),
            );
        }
        // A minute seen whole is written from memory; the others are rebuilt from storage.
        let mut whole = Vec::new();
        let mut rebuild = Vec::new();
        for key in keys.iter().cloned() {
            let seen = (tier == 60)
                .then(|| state.minutes.get_mut(&(key.0, key.3)))
                .flatten()
                .and_then(|minute| minute.remove(key.2.as_str()));
            match seen {
                Some(mut row) => {
                    row.combine();
                    whole.push((key, row));
                }
                None => rebuild.push(key),
            }
        }
        db.upsert_rows(
            whole
                .iter()
                .map(|((metric_id, tier, series, start), row)| {
                    ((*metric_id, *tier, series.as_str(), *start), row)
                })
                .collect(),
        )?;
        rollup::rebuild(db, &rebuild)?;
        db.unmark(&keys)?;
    }
    state.minutes.retain(|_, minute| !minute.is_empty());
    Ok(())
}

/// Rebuilds and unmarks every open roll-up (a clean shutdown leaves none), in one transaction.
pub async fn close_rollups(
    database: &Database,
    state: &mut FlushState,
) -> Result<(), StorageError> {
    fn close_all(db: &mut dyn RowSql) -> Result<(), StorageError> {
        let marks = db.all_marks()?;
        for tier in [60, 3600] {
            let keys: Vec<_> = marks.iter().filter(|k| k.1 == tier).cloned().collect();
            rollup::rebuild(db, &keys)?;
            db.unmark(&keys)?;
        }
        Ok(())
    }
    match &database.backend {
        Backend::Sqlite(store) => {
            let mut conn = store.flush_writer.acquire().await?;
            let result = async {
                let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
                with_raw(&mut tx, |db| close_all(&mut SqliteRows(db))).await?;
                tx.commit().await?;
                Ok::<_, StorageError>(())
            }
            .await;
            if result.is_err() {
                discard_sqlite_connection(conn).await;
                return result;
            }
        }
        Backend::Postgres(store) => {
            let mut tx = store.pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(ROLLUP_LOCK)
                .execute(&mut *tx)
                .await?;
            with_rows(&mut tx, |rows| close_all(rows)).await?;
            tx.commit().await?;
        }
    }
    state.marks = Some(BTreeMap::new());
    state.minutes.clear();
    Ok(())
}
