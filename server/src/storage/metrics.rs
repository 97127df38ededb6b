//! SQL of the metrics engine: metric definitions (versioned rows), built-in metric rows, the
//! flush's bucket UPSERTs, history reads and retention.
//!
//! Downsampling is exact: the flush merges each delta into its 1-second row, and the 1-minute
//! and 1-hour rows are rebuilt from the tier below ([`super::rollup`]) when their period
//! closes and before any read of their tier (scalar sums/min/max and an HdrHistogram merge).
//! Deltas so old that their 1-second rows may be gone are merged into all three tiers at once
//! ([`write_buckets`] with every tier). Retention only deletes rows older than each tier's
//! horizon that no open roll-up still needs.

use super::{
    Database, StorageError, StoredRow, on_backend, per_backend, returned_id,
    rows::{RowKey, RowSql},
};

pub use super::rows::SparseRow;
use crate::metric::{
    Builtin, MetricDefinition, Stats,
    histogram::{self, HistBounds},
};
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
     WHERE metric_id = $1 AND tier_s = $2 AND start_s >= $3 AND start_s < $4 AND series = $5 \
     ORDER BY start_s";

/// [`SERIES_RANGE`] for a tier above 1 s, through the partial index `metric_bucket_series`
/// (migration 0006), which SQLite uses only when the query says `tier_s <> 1` literally (and
/// `INDEXED BY` makes sure; PostgreSQL's planner finds the index by itself).
fn series_range_indexed(pg: bool) -> &'static str {
    if pg {
        "SELECT series, start_s, count, sum, min, max, hist FROM metric_bucket \
         WHERE metric_id = $1 AND tier_s = $2 AND tier_s <> 1 AND start_s >= $3 AND start_s < $4 \
         AND series = $5 ORDER BY start_s"
    } else {
        "SELECT series, start_s, count, sum, min, max, hist \
         FROM metric_bucket INDEXED BY metric_bucket_series \
         WHERE metric_id = $1 AND tier_s = $2 AND tier_s <> 1 AND start_s >= $3 AND start_s < $4 \
         AND series = $5 ORDER BY start_s"
    }
}

fn metric_from_row<R: StoredRow>(row: &R) -> Result<MetricRecord, StorageError> {
    let definition = row.opt_text("definition")?;
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
        id: row.int("id")?,
        name: row.text("name")?,
        stream: row.text("stream")?,
        builtin: row.int("builtin")? != 0,
        definition,
        created_ms: row.int("created_ms")?,
        retired_ms: row.opt_int("retired_ms")?,
    })
}

const METRIC_COLUMNS: &str = "id, name, stream, builtin, definition, created_ms, retired_ms";

impl Database {
    /// Active (not retired) metrics: definitions and built-ins, by name.
    pub async fn active_metrics(&self) -> Result<Vec<MetricRecord>, StorageError> {
        let sql_text = format!(
            "SELECT {METRIC_COLUMNS} FROM metric WHERE retired_ms IS NULL ORDER BY builtin, name"
        );
        on_backend!(self, sql, pool => {
            let rows = sqlx::query(&sql_text).fetch_all(pool).await?;
            rows.iter().map(metric_from_row).collect()
        })
    }

    /// The active metric called `name`.
    pub async fn active_metric(&self, name: &str) -> Result<Option<MetricRecord>, StorageError> {
        let sql_text =
            format!("SELECT {METRIC_COLUMNS} FROM metric WHERE retired_ms IS NULL AND name = $1");
        on_backend!(self, sql, pool => {
            let row = sqlx::query(&sql_text).bind(name).fetch_optional(pool).await?;
            row.as_ref().map(metric_from_row).transpose()
        })
    }

    /// Stores a new definition; the caller has validated it (including the unique name).
    pub async fn insert_definition(
        &self,
        definition: &MetricDefinition,
        now_ms: i64,
    ) -> Result<i64, StorageError> {
        on_backend!(self, sql, pool => {
            let mut conn = pool.acquire().await?;
            sql::insert_definition(&mut conn, definition, now_ms).await
        })
    }

    /// Retires the active version of `name` and stores `definition` as a new version, in one
    /// transaction. Returns the new id, or `None` when no such metric is active.
    pub async fn replace_definition(
        &self,
        name: &str,
        definition: &MetricDefinition,
        now_ms: i64,
    ) -> Result<Option<i64>, StorageError> {
        on_backend!(self, sql, pool => {
            let mut tx = sql::begin_write(pool).await?;
            let retired = sqlx::query(
                "UPDATE metric SET retired_ms = $1 \
                 WHERE name = $2 AND retired_ms IS NULL AND builtin = 0",
            )
            .bind(now_ms)
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if retired == 0 {
                return Ok(None);
            }
            let id = sql::insert_definition(&mut tx, definition, now_ms).await?;
            tx.commit().await?;
            Ok(Some(id))
        })
    }

    /// Retires a definition; its history stays until retention removes it.
    pub async fn retire_definition(&self, name: &str, now_ms: i64) -> Result<bool, StorageError> {
        let retired = on_backend!(self, sql, pool => {
            sqlx::query(
                "UPDATE metric SET retired_ms = $1 \
                 WHERE name = $2 AND retired_ms IS NULL AND builtin = 0",
            )
            .bind(now_ms)
            .bind(name)
            .execute(pool)
            .await?
            .rows_affected()
        });
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
        // ([`series_range_indexed`]) above the 1-second tier; at 1 s the key's range, filtered.
        let all = "SELECT series, start_s, count, sum, min, max, hist FROM metric_bucket \
                   WHERE metric_id = $1 AND tier_s = $2 AND start_s >= $3 AND start_s < $4 \
                   ORDER BY start_s, series";
        on_backend!(self, sql, pool => {
            let sql_text = match series {
                None => all,
                Some(_) if tier_s > 1 => series_range_indexed(sql::PG),
                Some(_) => SERIES_RANGE,
            };
            let mut query = sqlx::query(sql_text)
                .bind(metric_id)
                .bind(tier_s)
                .bind(from_s)
                .bind(to_s);
            if let Some(series) = series {
                query = query.bind(series);
            }
            let rows = query.fetch_all(pool).await?;
            rows.iter()
                .map(|row| {
                    Ok(StoredBucket {
                        series: row.text("series")?,
                        start_s: row.int("start_s")?,
                        stats: stored_stats(row)?,
                        hist: row
                            .blob("hist")?
                            .as_deref()
                            .map(histogram::decode_histogram)
                            .transpose()?,
                    })
                })
                .collect()
        })
    }

    /// Distinct series of a metric stored in a tier (newest first by last bucket).
    pub async fn series_of(
        &self,
        metric_id: i64,
        tier_s: i64,
    ) -> Result<Vec<String>, StorageError> {
        let rows: Vec<String> = on_backend!(self, sql, pool => {
            sqlx::query_scalar(
                "SELECT series FROM metric_bucket WHERE metric_id = $1 AND tier_s = $2 \
                 GROUP BY series ORDER BY MAX(start_s) DESC, series LIMIT 10000",
            )
            .bind(metric_id)
            .bind(tier_s)
            .fetch_all(pool)
            .await?
        });
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
        let deleted = on_backend!(self, sql, pool => {
            sqlx::query(
                "DELETE FROM metric_bucket WHERE (metric_id, tier_s, series, start_s) IN \
                 (SELECT metric_id, tier_s, series, start_s FROM metric_bucket b \
                  WHERE tier_s = $1 AND start_s < $2 AND NOT EXISTS \
                  (SELECT 1 FROM metric_rollup r WHERE r.metric_id = b.metric_id \
                   AND r.tier_s = $3 AND r.series = b.series \
                   AND r.start_s = b.start_s - (b.start_s % $3)) LIMIT $4)",
            )
            .bind(tier_s)
            .bind(before_s)
            .bind(tier_s * 60)
            .bind(limit)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(deleted)
    }
}

per_backend! {
    pub(crate) async fn insert_definition(
        conn: &mut Connection,
        definition: &MetricDefinition,
        now_ms: i64,
    ) -> Result<i64, StorageError> {
        let json = serde_json::to_string(definition).expect("definitions always serialise");
        let id = sqlx::query_scalar(
            "INSERT INTO metric (name, stream, builtin, definition, created_ms) \
             VALUES ($1, $2, 0, $3, $4) RETURNING id",
        )
        .bind(&definition.name)
        .bind(&definition.stream)
        .bind(json)
        .bind(now_ms)
        .fetch_all(conn)
        .await?;
        returned_id(id)
    }

    /// The id of a stream's built-in metric, created on first use (inside the flush
    /// transaction).
    pub(crate) async fn builtin_metric_id(
        conn: &mut Connection,
        stream: &str,
        kind: Builtin,
        now_ms: i64,
    ) -> Result<i64, StorageError> {
        let name = kind.metric_name(stream);
        let found: Option<i64> =
            sqlx::query_scalar("SELECT id FROM metric WHERE name = $1 AND retired_ms IS NULL")
                .bind(&name)
                .fetch_optional(&mut *conn)
                .await?;
        if let Some(id) = found {
            return Ok(id);
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO metric (name, stream, builtin, created_ms) VALUES ($1, $2, 1, $3) \
             RETURNING id",
        )
        .bind(&name)
        .bind(stream)
        .bind(now_ms)
        .fetch_one(conn)
        .await?;
        Ok(id)
    }
}

/// Merges every delta into its rows of `tiers` (see [`TIERS_S`]). Runs inside the flush
/// transaction.
/// Deltas for the same row are combined in memory first, so each row is read and written once.
pub fn write_buckets(
    db: &mut dyn RowSql,
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
    let keys: Vec<RowKey<'_>> = rows.iter().map(|(key, _)| *key).collect();
    let mut stored_counts = Vec::new();
    db.read_rows(&keys, &mut |i, stats, blob| {
        let (key, bucket) = &mut rows[i];
        bucket.stats.merge(&stats);
        if let Some(blob) = blob {
            stored_counts.clear();
            let bounds = histogram::decode_sparse_histogram(blob, &mut stored_counts)?;
            if *bucket.bounds.get_or_insert(bounds) == bounds {
                histogram::merge_sparse(&mut bucket.counts, &stored_counts);
            } else {
                tracing::warn!(
                    metric_id = key.0,
                    "stored histogram does not fit; kept the new counts only"
                );
            }
        }
        Ok(())
    })?;
    // Write every row back.
    let refs: Vec<(RowKey<'_>, &SparseRow)> = rows.iter().map(|(key, row)| (*key, row)).collect();
    db.upsert_rows(refs)?;
    Ok(rows.len())
}

/// The `count, sum, min, max` columns of a stored bucket row, by name.
pub(crate) fn stored_stats<R: StoredRow>(row: &R) -> Result<Stats, sqlx::Error> {
    Ok(Stats {
        count: row.int("count")? as u64,
        sum: row.real("sum")?,
        min: row.real("min")?,
        max: row.real("max")?,
    })
}
