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
    metrics::{BucketWrite, SELECT_ROW, SparseRow, raw_stats, upsert_rows},
    raw::with_raw,
};
use crate::metric::histogram::{self, decode_sparse_histogram};
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::Arc,
};

/// A marked row: metric id, tier (60 or 3600 s), series (JSON labels), period start (s).
pub type RollupKey = (i64, i64, String, i64);

/// The tier a tier is rebuilt from.
fn lower_tier(tier_s: i64) -> Option<i64> {
    match tier_s {
        60 => Some(1),
        3600 => Some(60),
        _ => None,
    }
}

/// Marks rows (existing marks stay).
pub fn mark(db: &rusqlite::Connection, keys: &[RollupKey]) -> Result<(), StorageError> {
    let mut insert = db.prepare_cached(
        "INSERT OR IGNORE INTO metric_rollup (metric_id, tier_s, series, start_s) \
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (metric_id, tier, series, start) in keys {
        insert.execute((metric_id, tier, series, start))?;
    }
    Ok(())
}

/// Deletes marks.
pub fn unmark(db: &rusqlite::Connection, keys: &[RollupKey]) -> Result<(), StorageError> {
    let mut delete = db.prepare_cached(
        "DELETE FROM metric_rollup \
         WHERE metric_id = ?1 AND tier_s = ?2 AND series = ?3 AND start_s = ?4",
    )?;
    for (metric_id, tier, series, start) in keys {
        delete.execute((metric_id, tier, series, start))?;
    }
    Ok(())
}

/// The newest 1-second row's start, if any.
pub fn newest_second(db: &rusqlite::Connection) -> Result<Option<i64>, StorageError> {
    Ok(db.query_row(
        "SELECT MAX(start_s) FROM metric_bucket WHERE tier_s = 1",
        (),
        |row| row.get(0),
    )?)
}

/// Every marked row.
pub fn all_marks(db: &rusqlite::Connection) -> Result<Vec<RollupKey>, StorageError> {
    let mut select = db.prepare("SELECT metric_id, tier_s, series, start_s FROM metric_rollup")?;
    let marks = select
        .query_map((), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    Ok(marks)
}

/// Marked rows of one metric and tier with `from_s <= start_s < to_s`, optionally one series.
fn marks_in(
    db: &rusqlite::Connection,
    metric_id: i64,
    tier_s: i64,
    series: Option<&str>,
    from_s: i64,
    to_s: i64,
) -> Result<Vec<RollupKey>, StorageError> {
    let mut select = db.prepare_cached(
        "SELECT series, start_s FROM metric_rollup WHERE metric_id = ?1 AND tier_s = ?2 \
         AND start_s >= ?3 AND start_s < ?4 AND (?5 IS NULL OR series = ?5)",
    )?;
    let marks = select
        .query_map((metric_id, tier_s, from_s, to_s, series), |r| {
            Ok((metric_id, tier_s, r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    Ok(marks)
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
    db: &rusqlite::Connection,
    writes: &[BucketWrite<'_>],
    cache: &mut SecondCache,
    stored_upto_s: i64,
) -> Result<usize, StorageError> {
    fn key<'w>(write: &'w BucketWrite<'_>) -> (i64, i64, &'w str) {
        (write.metric_id, write.second, write.series)
    }
    debug_assert!(writes.is_sorted_by(|a, b| key(a) <= key(b)));
    let mut rows: Vec<(&Arc<str>, i64, i64, SparseRow)> = Vec::with_capacity(writes.len());
    let mut sparse = Vec::new();
    let mut select = db.prepare_cached(SELECT_ROW)?;
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
            let mut found = select.query((metric_id, 1, &**series, second))?;
            if let Some(stored) = found.next()? {
                row.stats.merge(&raw_stats(stored, 0)?);
                if let Some(blob) = stored.get_ref(4)?.as_blob_or_null()? {
                    sparse.clear();
                    let bounds = decode_sparse_histogram(blob, &mut sparse)?;
                    row.bounds.get_or_insert(bounds);
                    histogram::merge_sparse(&mut row.counts, &sparse);
                }
            }
        }
        rows.push((series, metric_id, second, row));
    }
    drop(select);
    upsert_rows(
        db,
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
pub fn rebuild(db: &rusqlite::Connection, keys: &[RollupKey]) -> Result<usize, StorageError> {
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
    let mut select = db.prepare_cached(
        "SELECT series, count, sum, min, max, hist FROM metric_bucket \
         WHERE metric_id = ?1 AND tier_s = ?2 AND start_s >= ?3 AND start_s < ?4",
    )?;
    let mut written = 0;
    for ((tier, start, metric_id), wanted) in periods {
        let Some(lower) = lower_tier(tier) else {
            continue;
        };
        let mut rows = select.query((metric_id, lower, start, start + tier))?;
        let mut rebuilt: HashMap<&str, SparseRow> = HashMap::new();
        while let Some(row) = rows.next()? {
            let Some(&series) = wanted.get(row.get_ref(0)?.as_str()?) else {
                continue;
            };
            let acc = rebuilt.entry(series).or_default();
            acc.stats.merge(&raw_stats(row, 1)?);
            if let Some(blob) = row.get_ref(5)?.as_blob_or_null()? {
                acc.bounds = Some(decode_sparse_histogram(blob, &mut acc.counts)?);
            }
        }
        drop(rows);
        for acc in rebuilt.values_mut() {
            histogram::combine_sparse(&mut acc.counts);
        }
        written += rebuilt.len();
        upsert_rows(
            db,
            rebuilt
                .iter()
                .map(|(series, acc)| ((metric_id, tier, *series, start), acc))
                .collect(),
        )?;
    }
    Ok(written)
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
        let any: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM metric_rollup WHERE metric_id = ? AND tier_s <= ? \
             AND start_s >= ? AND start_s < ? AND (? IS NULL OR series = ?))",
        )
        .bind(metric_id)
        .bind(tier_s)
        .bind(from_s)
        .bind(to_s + tier_s)
        .bind(series)
        .bind(series)
        .fetch_one(&self.pool)
        .await?;
        if !any {
            return Ok(0);
        }
        let mut tx = self.begin_write().await?;
        let written = with_raw(&mut tx, |db| {
            let mut written = 0;
            if tier_s == 3600 {
                let minutes = marks_in(db, metric_id, 60, series, from_s, to_s + 3600)?;
                written += rebuild(db, &minutes)?;
            }
            let marked = marks_in(db, metric_id, tier_s, series, from_s, to_s)?;
            Ok(written + rebuild(db, &marked)?)
        })
        .await?;
        tx.commit().await?;
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::{MetricDefinition, histogram::HistBounds, stats::tests::bucket};
    use hdrhistogram::Histogram;

    #[tokio::test]
    async fn marked_rows_are_rebuilt_exactly_and_kept_from_retention() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path()).await.unwrap();
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
        let mut tx = db.begin_write().await.unwrap();
        let marks: Vec<RollupKey> = vec![
            (id, 60, "[]".into(), 120),
            (id, 60, "[]".into(), 180),
            (id, 3600, "[]".into(), 0),
        ];
        with_raw(&mut tx, |raw| {
            write_seconds(raw, &writes, &mut cache, i64::MAX)?;
            // The same second again adds to it (from the cache, and from storage).
            write_seconds(raw, &writes[..1], &mut cache, i64::MAX)?;
            write_seconds(raw, &writes[..1], &mut SecondCache::new(), i64::MAX)?;
            mark(raw, &marks)
        })
        .await
        .unwrap();
        tx.commit().await.unwrap();

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
        let mut conn = db.pool().acquire().await.unwrap();
        with_raw(&mut conn, |raw| unmark(raw, &marks[..1]))
            .await
            .unwrap();
        assert_eq!(db.delete_expired_buckets(1, 10_000, 100).await.unwrap(), 3);
        let left = with_raw(&mut conn, all_marks).await.unwrap();
        assert_eq!(left.len(), 2);
    }
}
