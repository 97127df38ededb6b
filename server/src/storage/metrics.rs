//! SQL of the metrics engine: metric definitions (versioned rows), built-in metric rows, the
//! flush's bucket UPSERTs over the three history tiers, history reads and retention.
//!
//! Downsampling happens at write time and is exact: every delta a flush writes is merged into
//! its 1-second, 1-minute and 1-hour rows in the same transaction (scalar sums/min/max and an
//! HdrHistogram merge), so all tiers always agree and a crash can never leave one tier ahead
//! of another. Retention then only deletes rows older than each tier's horizon.

use super::{Database, StorageError};
use crate::engine::{
    core::Builtin,
    definition::MetricDefinition,
    window::{Bucket, Stats},
};
use hdrhistogram::{
    Histogram,
    serialization::{Deserializer, Serializer, V2DeflateSerializer},
};
use sqlx::{Row, SqliteConnection};
use std::collections::HashMap;

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
    pub hist: Option<Histogram<u64>>,
}

/// One delta to merge into storage: `series` is the JSON array of labels.
pub struct BucketWrite<'a> {
    pub metric_id: i64,
    pub series: String,
    pub second: i64,
    pub bucket: &'a Bucket,
    pub has_histogram: bool,
}

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
        let rows = sqlx::query(
            "SELECT series, start_s, count, sum, min, max, hist FROM metric_bucket \
             WHERE metric_id = ? AND tier_s = ? AND start_s >= ? AND start_s < ? \
             AND (? IS NULL OR series = ?) ORDER BY start_s, series",
        )
        .bind(metric_id)
        .bind(tier_s)
        .bind(from_s)
        .bind(to_s)
        .bind(series)
        .bind(series)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let blob: Option<Vec<u8>> = row.try_get("hist")?;
                Ok(StoredBucket {
                    series: row.try_get("series")?,
                    start_s: row.try_get("start_s")?,
                    stats: Stats {
                        count: row.try_get::<i64, _>("count")? as u64,
                        sum: row.try_get("sum")?,
                        min: row.try_get("min")?,
                        max: row.try_get("max")?,
                    },
                    hist: blob.as_deref().map(decode_histogram).transpose()?,
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

    /// Deletes at most `limit` rows of `tier_s` older than `before_s`; returns how many.
    /// Small batches keep each write transaction short so the flush is never held up long.
    pub async fn delete_expired_buckets(
        &self,
        tier_s: i64,
        before_s: i64,
        limit: i64,
    ) -> Result<u64, StorageError> {
        let deleted = sqlx::query(
            "DELETE FROM metric_bucket WHERE (metric_id, tier_s, series, start_s) IN \
             (SELECT metric_id, tier_s, series, start_s FROM metric_bucket \
              WHERE tier_s = ? AND start_s < ? LIMIT ?)",
        )
        .bind(tier_s)
        .bind(before_s)
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

pub fn encode_histogram(hist: &Histogram<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    // Serialising into a Vec cannot fail for a valid histogram.
    if let Err(error) = V2DeflateSerializer::new().serialize(hist, &mut out) {
        tracing::error!(?error, "histogram serialisation failed");
        out.clear();
    }
    out
}

pub fn decode_histogram(blob: &[u8]) -> Result<Histogram<u64>, StorageError> {
    Deserializer::new()
        .deserialize(&mut &blob[..])
        .map_err(|error| {
            StorageError::Query(sqlx::Error::Decode(
                format!("bad stored histogram: {error:?}").into(),
            ))
        })
}

/// Merges every delta into its rows of all three tiers. Runs inside the flush transaction.
/// Deltas for the same row are combined in memory first, so each row is read and written once.
pub async fn write_buckets(
    conn: &mut SqliteConnection,
    writes: &[BucketWrite<'_>],
) -> Result<usize, StorageError> {
    let mut rows: HashMap<(i64, i64, &str, i64), (Bucket, bool)> = HashMap::new();
    for write in writes {
        for tier in TIERS_S {
            let start = write.second.div_euclid(tier) * tier;
            rows.entry((write.metric_id, tier, write.series.as_str(), start))
                .and_modify(|(bucket, _)| bucket.merge(write.bucket))
                .or_insert_with(|| (write.bucket.clone(), write.has_histogram));
        }
    }
    let written = rows.len();
    for ((metric_id, tier, series, start), (mut bucket, has_histogram)) in rows {
        let stored = sqlx::query(
            "SELECT count, sum, min, max, hist FROM metric_bucket \
             WHERE metric_id = ? AND tier_s = ? AND series = ? AND start_s = ?",
        )
        .bind(metric_id)
        .bind(tier)
        .bind(series)
        .bind(start)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(row) = stored {
            bucket.stats.merge(&Stats {
                count: row.try_get::<i64, _>("count")? as u64,
                sum: row.try_get("sum")?,
                min: row.try_get("min")?,
                max: row.try_get("max")?,
            });
            let blob: Option<Vec<u8>> = row.try_get("hist")?;
            if let Some(blob) = blob {
                let stored = decode_histogram(&blob)?;
                if let Err(error) = bucket.hist.add(&stored) {
                    tracing::warn!(%error, metric_id, "stored histogram does not fit; kept the new counts only");
                }
            }
        }
        let blob = has_histogram.then(|| encode_histogram(&bucket.hist));
        sqlx::query(
            "INSERT INTO metric_bucket (metric_id, tier_s, series, start_s, count, sum, min, max, hist) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (metric_id, tier_s, series, start_s) DO UPDATE SET \
             count = excluded.count, sum = excluded.sum, min = excluded.min, max = excluded.max, \
             hist = excluded.hist",
        )
        .bind(metric_id)
        .bind(tier)
        .bind(series)
        .bind(start)
        .bind(bucket.stats.count as i64)
        .bind(bucket.stats.sum)
        .bind(bucket.stats.min)
        .bind(bucket.stats.max)
        .bind(blob)
        .execute(&mut *conn)
        .await?;
    }
    Ok(written)
}
