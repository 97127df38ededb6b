//! SQL of the roll-ups: the 1-minute and 1-hour tiers built from the tier below.
//!
//! The flush writes 1-second rows and, for every 1-minute and 1-hour period they touch, a
//! marker in `metric_rollup` (migration `0005`), in the same transaction as the consumer's
//! checkpoints. A marked row is *rebuilt*: replaced by the exact merge of the tier below over
//! its period (1-minute rows from 1-second rows, 1-hour rows from 1-minute rows; scalar
//! sums/min/max and an HdrHistogram merge). The flush rebuilds a row and deletes its marker
//! once the period has closed (a minute whose every 1-second row the running writer wrote
//! itself is written from the merge it kept instead: the same content, see
//! [`super::flush::FlushState`]); readers of the 1-minute and 1-hour tiers rebuild the marked
//! rows of their range first and keep the markers ([`Database::materialize`]). A rebuild
//! depends only on committed rows, so it is idempotent and exact after a kill -9 at any moment.

use super::{
    Database, StorageError,
    metrics::{BucketWrite, SparseRow},
    on_backend, per_backend,
    rows::{RowKey, RowSql},
};
use crate::metric::histogram::{self, decode_sparse_histogram};
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::Arc,
};

pub use super::rows::RollupKey;

/// The tier a tier is rebuilt from.
fn lower_tier(tier_s: i64) -> Option<i64> {
    match tier_s {
        60 => Some(1),
        3600 => Some(60),
        _ => None,
    }
}

/// The stored content of the 1-second rows the last flushes wrote, by (metric id, second)
/// and series: a flush that adds to one of them (a second cut in two by the flush boundary)
/// writes the merged row without reading and decoding it. Only valid while every write of
/// those rows goes through [`write_seconds`] with this cache (cleared with the flush state).
pub type SecondCache = HashMap<(i64, i64), SeriesMap<SparseRow>>;

/// Values by series (JSON labels), hashed with a per-process seed (labels come from records).
pub type SeriesMap<T> = HashMap<Arc<str>, T, foldhash::fast::RandomState>;

/// Seconds older than the newest written minus this leave the [`SecondCache`].
const CACHE_SECONDS: i64 = 10;

/// Merges deltas into their 1-second rows, writes them, and keeps their new content in
/// `cache`. A row is read only when it is neither in `cache` nor known to be absent: no
/// 1-second row is newer than `stored_upto_s`. `writes` are sorted by (metric id, second,
/// series), as the table's key. Runs inside the flush transaction.
pub fn write_seconds(
    db: &mut dyn RowSql,
    writes: &[BucketWrite<'_>],
    cache: &mut SecondCache,
    stored_upto_s: i64,
) -> Result<usize, StorageError> {
    fn key<'w>(write: &'w BucketWrite<'_>) -> (i64, i64, &'w str) {
        (write.metric_id, write.second, write.series)
    }
    debug_assert!(writes.is_sorted_by(|a, b| key(a) <= key(b)));
    let mut rows: Vec<(&Arc<str>, i64, i64, SparseRow)> = Vec::with_capacity(writes.len());
    // Rows neither in the cache nor known to be absent: read back, all in one call.
    let mut unread: Vec<(usize, RowKey<'_>)> = Vec::new();
    for group in writes.chunk_by(|a, b| key(a) == key(b)) {
        let (metric_id, second, series) = (group[0].metric_id, group[0].second, group[0].series);
        let mut row = SparseRow::default();
        for write in group {
            row.add(write.stats, write.hist, write.counts);
        }
        // What is stored: from the cache, else read.
        if let Some(stored) = cache
            .get(&(metric_id, second))
            .and_then(|rows| rows.get(&**series))
        {
            merge_content(&mut row, stored);
        } else if second <= stored_upto_s {
            unread.push((rows.len(), (metric_id, 1, &**series, second)));
        }
        rows.push((series, metric_id, second, row));
    }
    if !unread.is_empty() {
        let keys: Vec<RowKey<'_>> = unread.iter().map(|(_, key)| *key).collect();
        let mut sparse = Vec::new();
        db.read_rows(&keys, &mut |index, stats, blob| {
            let row = &mut rows[unread[index].0].3;
            row.stats.merge(&stats);
            if let Some(blob) = blob {
                sparse.clear();
                let bounds = decode_sparse_histogram(blob, &mut sparse)?;
                row.bounds.get_or_insert(bounds);
                histogram::merge_sparse(&mut row.counts, &sparse);
            }
            Ok(())
        })?;
    }
    db.upsert_rows(
        rows.iter()
            .map(|(series, metric_id, second, row)| ((*metric_id, 1, &***series, *second), row))
            .collect(),
    )?;
    let written = rows.len();
    if let Some(newest) = rows.iter().map(|row| row.2).max() {
        cache.retain(|key, _| key.1 >= newest.saturating_sub(CACHE_SECONDS));
    }
    for (series, metric_id, second, row) in rows {
        cache
            .entry((metric_id, second))
            .or_default()
            .insert(series.clone(), row);
    }
    Ok(written)
}

/// Adds stored content to a row's new deltas.
fn merge_content(row: &mut SparseRow, stored: &SparseRow) {
    row.stats.merge(&stored.stats);
    if let Some(bounds) = stored.bounds {
        row.bounds.get_or_insert(bounds);
        histogram::merge_sparse(&mut row.counts, &stored.counts);
    }
}

/// Rebuilds the rows of `keys` (all 1-minute or 1-hour; rebuild 1-minute rows before the
/// 1-hour rows that contain them) from the tier below and writes them; a key whose period has
/// no rows below is left alone. Marks are not touched. Returns the rows written.
pub fn rebuild(db: &mut dyn RowSql, keys: &[RollupKey]) -> Result<usize, StorageError> {
    // One range read per period and metric: with the time-ordered key (migration 0006) the
    // period's rows of one metric are adjacent, whatever the number of series; rows of series
    // not asked for are skipped before their histogram is decoded.
    let mut periods: BTreeMap<(i64, i64, i64), HashSet<&str>> = BTreeMap::new();
    for (metric_id, tier, series, start) in keys {
        periods
            .entry((*tier, *start, *metric_id))
            .or_default()
            .insert(series.as_str());
    }
    let mut written = 0;
    for ((tier, start, metric_id), wanted) in periods {
        let Some(lower) = lower_tier(tier) else {
            continue;
        };
        let mut rebuilt: HashMap<&str, SparseRow> = HashMap::new();
        db.read_period(
            metric_id,
            lower,
            start,
            start + tier,
            &mut |series, stats, blob| {
                let Some(&series) = wanted.get(series) else {
                    return Ok(());
                };
                let acc = rebuilt.entry(series).or_default();
                acc.stats.merge(&stats);
                if let Some(blob) = blob {
                    acc.bounds = Some(decode_sparse_histogram(blob, &mut acc.counts)?);
                }
                Ok(())
            },
        )?;
        for acc in rebuilt.values_mut() {
            histogram::combine_sparse(&mut acc.counts);
        }
        written += rebuilt.len();
        db.upsert_rows(
            rebuilt
                .iter()
                .map(|(series, acc)| ((metric_id, tier, *series, start), acc))
                .collect(),
        )?;
    }
    Ok(written)
}

/// Rebuilds the marked rows of one metric's tier in a range, 1-hour rows after the 1-minute
/// rows inside them (see [`Database::materialize`]).
fn materialize_marked(
    db: &mut dyn RowSql,
    metric_id: i64,
    tier_s: i64,
    series: Option<&str>,
    from_s: i64,
    to_s: i64,
) -> Result<usize, StorageError> {
    let mut written = 0;
    if tier_s == 3600 {
        let minutes = db.marks_in(metric_id, 60, series, from_s, to_s + 3600)?;
        written += rebuild(db, &minutes)?;
    }
    let marked = db.marks_in(metric_id, tier_s, series, from_s, to_s)?;
    Ok(written + rebuild(db, &marked)?)
}

per_backend! {
    /// Whether any row of the range (or of the tiers below it) is marked.
    pub(crate) async fn any_marked(
        pool: &Pool,
        metric_id: i64,
        tier_s: i64,
        series: Option<&str>,
        from_s: i64,
        to_s: i64,
    ) -> Result<bool, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM metric_rollup WHERE metric_id = $1 AND tier_s <= $2 \
             AND start_s >= $3 AND start_s < $4 AND ($5 IS NULL OR series = $5))",
        )
        .bind(metric_id)
        .bind(tier_s)
        .bind(from_s)
        .bind(to_s)
        .bind(series)
        .fetch_one(pool)
        .await
    }
}

impl Database {
    /// Brings the marked rows of one metric's `tier_s` (60 or 3600) with
    /// `from_s <= start_s < to_s` (optionally one series) up to date before they are read,
    /// 1-hour rows after the 1-minute rows inside them. The marks stay: the flush deletes a
    /// mark only when the period has closed.
    pub async fn materialize(
        &self,
        metric_id: i64,
        tier_s: i64,
        series: Option<&str>,
        from_s: i64,
        to_s: i64,
    ) -> Result<usize, StorageError> {
        if lower_tier(tier_s).is_none() {
            return Ok(0);
        }
        // Most reads find nothing marked: ask without taking the write lock.
        let any = on_backend!(self, sql, pool => {
            sql::any_marked(pool, metric_id, tier_s, series, from_s, to_s + tier_s).await?
        });
        if !any {
            return Ok(0);
        }
        self.in_row_transaction(|rows| {
            materialize_marked(rows, metric_id, tier_s, series, from_s, to_s)
        })
        .await
    }

    /// Runs `f` on the [`RowSql`] of one write transaction (committed when `f` succeeds): on
    /// SQLite the raw handle of a `BEGIN IMMEDIATE` transaction, on PostgreSQL a transaction
    /// holding [`ROLLUP_LOCK`] (readers and the flush that rebuild the same rows wait for each
    /// other there, as SQLite's write lock makes them).
    pub(crate) async fn in_row_transaction<T>(
        &self,
        f: impl FnOnce(&mut dyn RowSql) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        match &self.backend {
            super::Backend::Sqlite(store) => {
                let mut tx = sqlite::begin_write(&store.pool).await?;
                let result =
                    super::raw::with_raw(&mut tx, |raw| f(&mut super::rows::SqliteRows(raw)))
                        .await?;
                tx.commit().await?;
                Ok(result)
            }
            super::Backend::Postgres(store) => {
                let mut tx = postgres::begin_write(&store.pool).await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(ROLLUP_LOCK)
                    .execute(&mut *tx)
                    .await?;
                let result = super::pg::with_rows(&mut tx, |rows| f(rows)).await?;
                tx.commit().await?;
                Ok(result)
            }
        }
    }
}

/// The PostgreSQL advisory lock that the flush and the readers' roll-ups take inside their
/// transactions: SQLite serialises writers by itself, PostgreSQL would let two rebuilds of one
/// row race (and an upsert of one row twice in one statement fails).
pub(crate) const ROLLUP_LOCK: i64 = 0x5342_524f_4c4c_5550; // "SBROLLUP"

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::{MetricDefinition, histogram::HistBounds, stats::tests::bucket};
    use hdrhistogram::Histogram;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn marked_rows_are_rebuilt_exactly_and_kept_from_retention() {
        for (_dir, db) in crate::storage::test_databases().await {
            let def: MetricDefinition =
                serde_json::from_str(r#"{"name":"m","stream":"s","value":"/v"}"#).unwrap();
            let id = db.insert_definition(&def, 0).await.unwrap();
            let seconds: [(i64, &[u64]); 4] =
                [(121, &[1, 2]), (150, &[1000]), (179, &[5]), (185, &[7])];
            let buckets: Vec<_> = seconds
                .iter()
                .map(|(s, v)| {
                    let bucket = bucket(v);
                    let mut counts = Vec::new();
                    histogram::sparse_of(&bucket.hist, &mut counts);
                    (*s, bucket, counts)
                })
                .collect();
            let series: Arc<str> = "[]".into();
            let writes: Vec<BucketWrite<'_>> = buckets
                .iter()
                .map(|(second, bucket, counts)| BucketWrite {
                    metric_id: id,
                    series: &series,
                    second: *second,
                    stats: bucket.stats,
                    counts,
                    hist: Some(HistBounds::of(&bucket.hist)),
                })
                .collect();
            let mut cache = SecondCache::new();
            let marks: Vec<RollupKey> = vec![
                (id, 60, "[]".into(), 120),
                (id, 60, "[]".into(), 180),
                (id, 3600, "[]".into(), 0),
            ];
            db.in_row_transaction(|raw| {
                write_seconds(raw, &writes, &mut cache, i64::MAX)?;
                // The same second again adds to it (from the cache, and from storage).
                write_seconds(raw, &writes[..1], &mut cache, i64::MAX)?;
                write_seconds(raw, &writes[..1], &mut SecondCache::new(), i64::MAX)?;
                raw.mark(&marks)
            })
            .await
            .unwrap();

            // A reader of the hour tier rebuilds the minutes, then the hour.
            assert_eq!(db.materialize(id, 3600, None, 0, 3600).await.unwrap(), 3);
            let want = bucket(&[1, 2, 1, 2, 1, 2, 1000, 5, 7]);
            let hour = db.read_buckets(id, 3600, None, 0, 3600).await.unwrap();
            assert_eq!(hour.len(), 1);
            assert_eq!(hour[0].stats, want.stats);
            let recorded = |h: &Histogram<u64>| -> Vec<(u64, u64)> {
                h.iter_recorded()
                    .map(|v| (v.value_iterated_to(), v.count_at_value()))
                    .collect()
            };
            assert_eq!(
                recorded(hour[0].hist.as_ref().unwrap()),
                recorded(&want.hist)
            );
            let minutes = db.read_buckets(id, 60, None, 0, 3600).await.unwrap();
            assert_eq!(
                minutes
                    .iter()
                    .map(|m| (m.start_s, m.stats.count))
                    .collect::<Vec<_>>(),
                [(120, 8), (180, 1)]
            );
            // Idempotent: again, same rows.
            db.materialize(id, 3600, None, 0, 3600).await.unwrap();
            assert_eq!(
                db.read_buckets(id, 3600, None, 0, 3600).await.unwrap()[0].stats,
                want.stats
            );

            // Retention keeps the 1-second rows of marked minutes, and deletes them once unmarked.
            assert_eq!(db.delete_expired_buckets(1, 10_000, 100).await.unwrap(), 0);
            db.in_row_transaction(|raw| raw.unmark(&marks[..1]))
                .await
                .unwrap();
            assert_eq!(db.delete_expired_buckets(1, 10_000, 100).await.unwrap(), 3);
            let left = db.in_row_transaction(|raw| raw.all_marks()).await.unwrap();
            assert_eq!(left.len(), 2);
        }
    }
}
