//! SQL of the metrics engine: metric definitions (versioned rows), built-in metric rows, the
//! flush's bucket UPSERTs, history reads and retention.
//!
//! Downsampling is exact: the flush merges each delta into its 1-second row, and the 1-minute
//! and 1-hour rows are rebuilt from the tier below ([`super::rollup`]) when their period
//! closes and before any read of their tier (scalar sums/min/max and an HdrHistogram merge).
//! Deltas so old that their 1-second rows may be gone are merged into all three tiers at once
//! ([`write_buckets`] with every tier). Retention only deletes rows older than each tier's
//! horizon that no open roll-up still needs.

use super::{Database, StorageError};
use crate::metric::{
    Builtin, MetricDefinition, Stats,
    histogram::{self, HistBounds},
};
use sqlx::{Row, SqliteConnection};
use std::{collections::HashMap, sync::Arc};

/// History tiers, in seconds per row.
pub const TIERS_S: [i64; 3] = [1, 60, 3600];

/// A stored metric row (a definition version or a built-in).
#[derive(Debug, Clone)]
pub struct MetricRecord {
    pub id: i64,
    pub name: String,
    pub stream: String,
    pub builtin: bool,
    pub definition: Option<MetricDefinition>,
    pub created_ms: i64,
    pub retired_ms: Option<i64>,
}

/// One stored bucket.
#[derive(Debug, Clone)]
pub struct StoredBucket {
    pub series: String,
    pub start_s: i64,
    pub stats: Stats,
    pub hist: Option<hdrhistogram::Histogram<u64>>,
}

/// One delta to merge into storage: `series` is the JSON array of labels.
pub struct BucketWrite<'a> {
    pub metric_id: i64,
    pub series: &'a Arc<str>,
    pub second: i64,
    pub stats: Stats,
    /// Histogram counts as sparse `(bucket index, count)`, ascending (see [`compact`]).
    pub counts: &'a [(u32, u64)],
    /// The histogram's bounds; `None` for a metric without histogram (`hist` is NULL).
    pub hist: Option<HistBounds>,
}

/// One series' rows of a tier over a range (binds: metric, tier, from, to, series).
const SERIES_RANGE: &str = "SELECT series, start_s, count, sum, min, max, hist FROM metric_bucket \
     WHERE metric_id = ? AND tier_s = ? AND start_s >= ? AND start_s < ? AND series = ? \
     ORDER BY start_s";

/// [`SERIES_RANGE`] for a tier above 1 s, through the partial index `metric_bucket_series`
/// (migration 0006), which SQLite uses only when the query says `tier_s <> 1` literally.
const SERIES_RANGE_INDEXED: &str = "SELECT series, start_s, count, sum, min, max, hist \
     FROM metric_bucket INDEXED BY metric_bucket_series \
     WHERE metric_id = ? AND tier_s = ? AND tier_s <> 1 AND start_s >= ? AND start_s < ? \
     AND series = ? ORDER BY start_s";

fn metric_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<MetricRecord, StorageError> {
    let definition: Option<String> = row.try_get("definition")?;
    let definition = match definition {
        Some(text) => match serde_json::from_str(&text) {
            Ok(def) => Some(def),
            Err(error) => {
                return Err(StorageError::Query(sqlx::Error::Decode(Box::new(error))));
            }
        },
        None => None,
    };
    Ok(MetricRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        stream: row.try_get("stream")?,
        builtin: row.try_get::<i64, _>("builtin")? != 0,
        definition,
        created_ms: row.try_get("created_ms")?,
        retired_ms: row.try_get("retired_ms")?,
    })
}

const METRIC_COLUMNS: &str = "id, name, stream, builtin, definition, created_ms, retired_ms";

impl Database {
    /// Active (not retired) metrics: definitions and built-ins, by name.
    pub async fn active_metrics(&self) -> Result<Vec<MetricRecord>, StorageError> {
        let rows = sqlx::query(&format!(
            "SELECT {METRIC_COLUMNS} FROM metric WHERE retired_ms IS NULL ORDER BY builtin, name"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(metric_from_row).collect()
    }

    /// The active metric called `name`.
    pub async fn active_metric(&self, name: &str) -> Result<Option<MetricRecord>, StorageError> {
        let row = sqlx::query(&format!(
            "SELECT {METRIC_COLUMNS} FROM metric WHERE retired_ms IS NULL AND name = ?"
        ))
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(metric_from_row).transpose()
    }

    /// Stores a new definition; the caller has validated it (including the unique name).
    pub async fn insert_definition(
        &self,
        definition: &MetricDefinition,
        now_ms: i64,
    ) -> Result<i64, StorageError> {
        let mut conn = self.pool.acquire().await?;
        insert_definition(&mut conn, definition, now_ms).await
    }

    /// Retires the active version of `name` and stores `definition` as a new version, in one
    /// transaction. Returns the new id, or `None` when no such metric is active.
    pub async fn replace_definition(
        &self,
        name: &str,
        definition: &MetricDefinition,
        now_ms: i64,
    ) -> Result<Option<i64>, StorageError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let retired = sqlx::query(
            "UPDATE metric SET retired_ms = ? WHERE name = ? AND retired_ms IS NULL AND builtin = 0",
        )
        .bind(now_ms)
        .bind(name)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if retired == 0 {
            return Ok(None);
        }
        let id = insert_definition(&mut tx, definition, now_ms).await?;
        tx.commit().await?;
        Ok(Some(id))
    }

    /// Retires a definition; its history stays until retention removes it.
    pub async fn retire_definition(&self, name: &str, now_ms: i64) -> Result<bool, StorageError> {
        let retired = sqlx::query(
            "UPDATE metric SET retired_ms = ? WHERE name = ? AND retired_ms IS NULL AND builtin = 0",
        )
        .bind(now_ms)
        .bind(name)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(retired > 0)
    }

    /// Buckets of one metric and tier with `from_s <= start_s < to_s`, optionally one series.
    pub async fn read_buckets(
        &self,
        metric_id: i64,
        tier_s: i64,
        series: Option<&str>,
        from_s: i64,
        to_s: i64,
    ) -> Result<Vec<StoredBucket>, StorageError> {
        // All series: the time-ordered key's range. One series: the series index
        // ([`SERIES_RANGE_INDEXED`]) above the 1-second tier; at 1 s the key's range, filtered.
        let sql = match series {
            None => {
                "SELECT series, start_s, count, sum, min, max, hist FROM metric_bucket \
                 WHERE metric_id = ? AND tier_s = ? AND start_s >= ? AND start_s < ? \
                 ORDER BY start_s, series"
            }
            Some(_) if tier_s > 1 => SERIES_RANGE_INDEXED,
            Some(_) => SERIES_RANGE,
        };
        let rows = sqlx::query(sql)
            .bind(metric_id)
            .bind(tier_s)
            .bind(from_s)
            .bind(to_s)
            .bind(series)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let blob: Option<Vec<u8>> = row.try_get("hist")?;
                Ok(StoredBucket {
                    series: row.try_get("series")?,
                    start_s: row.try_get("start_s")?,
                    stats: stored_stats(row)?,
                    hist: blob
                        .as_deref()
                        .map(histogram::decode_histogram)
                        .transpose()?,
                })
            })
            .collect()
    }

    /// Distinct series of a metric stored in a tier (newest first by last bucket).
    pub async fn series_of(
        &self,
        metric_id: i64,
        tier_s: i64,
    ) -> Result<Vec<String>, StorageError> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT series FROM metric_bucket WHERE metric_id = ? AND tier_s = ? \
             GROUP BY series ORDER BY MAX(start_s) DESC, series LIMIT 10000",
        )
        .bind(metric_id)
        .bind(tier_s)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// Deletes at most `limit` rows of `tier_s` older than `before_s`; returns how many. Rows
    /// that a marked roll-up of the next tier still needs are kept.
    /// Small batches keep each write transaction short so the flush is never held up long.
    pub async fn delete_expired_buckets(
        &self,
        tier_s: i64,
        before_s: i64,
        limit: i64,
    ) -> Result<u64, StorageError> {
        // A row that a marked (open) roll-up above it is rebuilt from stays until the mark goes.
        let deleted = sqlx::query(
            "DELETE FROM metric_bucket WHERE (metric_id, tier_s, series, start_s) IN \
             (SELECT metric_id, tier_s, series, start_s FROM metric_bucket b \
              WHERE tier_s = ? AND start_s < ? AND NOT EXISTS \
              (SELECT 1 FROM metric_rollup r WHERE r.metric_id = b.metric_id \
               AND r.tier_s = ? AND r.series = b.series \
               AND r.start_s = b.start_s - (b.start_s % ?)) LIMIT ?)",
        )
        .bind(tier_s)
        .bind(before_s)
        .bind(tier_s * 60)
        .bind(tier_s * 60)
        .bind(limit)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(deleted)
    }
}

async fn insert_definition(
    conn: &mut SqliteConnection,
    definition: &MetricDefinition,
    now_ms: i64,
) -> Result<i64, StorageError> {
    let json = serde_json::to_string(definition).expect("definitions always serialise");
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO metric (name, stream, builtin, definition, created_ms) VALUES (?, ?, 0, ?, ?) \
         RETURNING id",
    )
    .bind(&definition.name)
    .bind(&definition.stream)
    .bind(json)
    .bind(now_ms)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// The id of a stream's built-in metric, created on first use (inside the flush transaction).
pub async fn builtin_metric_id(
    conn: &mut SqliteConnection,
    stream: &str,
    kind: Builtin,
    now_ms: i64,
) -> Result<i64, StorageError> {
    let name = kind.metric_name(stream);
    let found: Option<i64> =
        sqlx::query_scalar("SELECT id FROM metric WHERE name = ? AND retired_ms IS NULL")
            .bind(&name)
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(id) = found {
        return Ok(id);
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO metric (name, stream, builtin, created_ms) VALUES (?, ?, 1, ?) RETURNING id",
    )
    .bind(&name)
    .bind(stream)
    .bind(now_ms)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// A row's content being merged or written: stats and sparse histogram counts (`bounds` is
/// `None` without a histogram). Used by the flush here and by the roll-ups.
#[derive(Debug, Clone, Default)]
pub struct SparseRow {
    pub(crate) stats: Stats,
    pub(crate) counts: Vec<(u32, u64)>,
    pub(crate) bounds: Option<HistBounds>,
}

impl SparseRow {
    /// Adds a delta (counts sparse and ascending, as [`BucketWrite::counts`]).
    pub(crate) fn add(&mut self, stats: Stats, hist: Option<HistBounds>, counts: &[(u32, u64)]) {
        self.stats.merge(&stats);
        if let Some(bounds) = hist {
            self.bounds.get_or_insert(bounds);
            histogram::merge_sparse(&mut self.counts, counts);
        }
    }

    /// [`SparseRow::add`] for a row that takes many deltas: the counts are appended as they
    /// come and combined only when the vector is full, so an add costs the delta's length,
    /// not the row's. [`SparseRow::combine`] before the row is read or written.
    pub(crate) fn add_unsorted(
        &mut self,
        stats: Stats,
        hist: Option<HistBounds>,
        counts: &[(u32, u64)],
    ) {
        self.stats.merge(&stats);
        if let Some(bounds) = hist {
            self.bounds.get_or_insert(bounds);
            if self.counts.len() + counts.len() > self.counts.capacity() {
                histogram::combine_sparse(&mut self.counts);
            }
            self.counts.extend_from_slice(counts);
        }
    }

    /// Sorts and combines counts added by [`SparseRow::add_unsorted`].
    pub(crate) fn combine(&mut self) {
        histogram::combine_sparse(&mut self.counts);
    }
}

/// A stored row's key: metric id, tier (s), series labels (JSON), period start (s).
pub(crate) type RowKey<'a> = (i64, i64, &'a str, i64);

/// Looks one stored row up by its key (binds: metric, tier, series, start).
pub(crate) const SELECT_ROW: &str = "SELECT count, sum, min, max, hist FROM metric_bucket \
     WHERE metric_id = ?1 AND tier_s = ?2 AND series = ?3 AND start_s = ?4";

/// Merges every delta into its rows of `tiers` (see [`TIERS_S`]). Runs inside the flush
/// transaction, on its locked handle ([`super::raw`]).
/// Deltas for the same row are combined in memory first, so each row is read and written once.
pub fn write_buckets(
    db: &rusqlite::Connection,
    writes: &[BucketWrite<'_>],
    tiers: &[i64],
) -> Result<usize, StorageError> {
    let mut index: HashMap<RowKey<'_>, usize> = HashMap::new();
    let mut rows: Vec<(RowKey<'_>, SparseRow)> = Vec::new();
    for write in writes {
        for &tier in tiers {
            let key = (
                write.metric_id,
                tier,
                &**write.series,
                write.second.div_euclid(tier) * tier,
            );
            let row = match index.get(&key) {
                Some(&i) => &mut rows[i].1,
                None => {
                    index.insert(key, rows.len());
                    rows.push((key, SparseRow::default()));
                    &mut rows.last_mut().expect("just pushed").1
                }
            };
            row.stats.merge(&write.stats);
            if let Some(bounds) = write.hist {
                row.bounds.get_or_insert(bounds);
                histogram::merge_sparse(&mut row.counts, write.counts);
            }
        }
    }
    // Merge what is stored.
    let mut stored_counts = Vec::new();
    let mut select = db.prepare_cached(SELECT_ROW)?;
    for ((metric_id, tier, series, start), bucket) in &mut rows {
        let mut found = select.query((*metric_id, *tier, *series, *start))?;
        let Some(row) = found.next()? else { continue };
        bucket.stats.merge(&raw_stats(row, 0)?);
        if let Some(blob) = row.get_ref(4)?.as_blob_or_null()? {
            stored_counts.clear();
            let bounds = histogram::decode_sparse_histogram(blob, &mut stored_counts)?;
            if *bucket.bounds.get_or_insert(bounds) == bounds {
                histogram::merge_sparse(&mut bucket.counts, &stored_counts);
            } else {
                tracing::warn!(
                    metric_id,
                    "stored histogram does not fit; kept the new counts only"
                );
            }
        }
    }
    // Write every row back.
    let refs: Vec<(RowKey<'_>, &SparseRow)> = rows.iter().map(|(key, row)| (*key, row)).collect();
    upsert_rows(db, refs)?;
    Ok(rows.len())
}

/// Writes whole rows, replacing stored ones (INSERT … ON CONFLICT DO UPDATE), one prepared
/// single-row statement each, in key order (the table's B-tree is then filled left to right);
/// the histogram is encoded from the sparse counts.
pub(crate) fn upsert_rows(
    db: &rusqlite::Connection,
    mut rows: Vec<(RowKey<'_>, &SparseRow)>,
) -> Result<(), rusqlite::Error> {
    rows.sort_unstable_by(|(a, _), (b, _)| (a.0, a.1, a.3, a.2).cmp(&(b.0, b.1, b.3, b.2)));
    let mut upsert = db.prepare_cached(
        "INSERT INTO metric_bucket (metric_id, tier_s, series, start_s, count, sum, min, max, hist) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
         ON CONFLICT (metric_id, tier_s, start_s, series) DO UPDATE SET \
         count = excluded.count, sum = excluded.sum, min = excluded.min, max = excluded.max, \
         hist = excluded.hist",
    )?;
    let mut blob = Vec::new();
    for ((metric_id, tier, series, start), content) in rows {
        let hist = content.bounds.map(|bounds| {
            histogram::encode_sparse_histogram_into(bounds, &content.counts, &mut blob);
            blob.as_slice()
        });
        upsert.execute((
            metric_id,
            tier,
            series,
            start,
            content.stats.count as i64,
            content.stats.sum,
            content.stats.min,
            content.stats.max,
            hist,
        ))?;
    }
    Ok(())
}

/// The `count, sum, min, max` columns of a rusqlite row, from column `first` on.
pub(crate) fn raw_stats(row: &rusqlite::Row<'_>, first: usize) -> Result<Stats, rusqlite::Error> {
    Ok(Stats {
        count: row.get::<_, i64>(first)? as u64,
        sum: row.get(first + 1)?,
        min: row.get(first + 2)?,
        max: row.get(first + 3)?,
    })
}

/// The `count, sum, min, max` columns of a stored bucket row, by name.
pub(crate) fn stored_stats(row: &sqlx::sqlite::SqliteRow) -> Result<Stats, sqlx::Error> {
    Ok(Stats {
        count: row.try_get::<i64, _>("count")? as u64,
        sum: row.try_get("sum")?,
        min: row.try_get("min")?,
        max: row.try_get("max")?,
    })
}
