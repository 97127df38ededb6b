//! SQL of the export: keyset-paged reads of one metric's stored buckets in series order
//! (series, then bucket start), an exact row count for request validation, and a bulk insert
//! of one tier used to seed large data sets in tests and benchmarks.
//!
//! Series order comes from the partial index `metric_bucket_series` for the 1-minute and
//! 1-hour tiers (migration 0006). The 1-second tier has no index in series order (the flush
//! would scatter its entries): there each series' page scans the metric's range, so an export
//! at 1 s resolution costs the range's rows once per series.
//!
//! Pages carry the raw HdrHistogram blobs; decoding is left to the caller so it can run off
//! the async runtime. Memory per page is bounded by the page size, whatever the range.

use super::{Database, StorageError};
use crate::engine::window::Stats;
use hdrhistogram::Histogram;
use sqlx::Row;

/// One stored bucket with its histogram still encoded (V2-deflate), as read for an export.
#[derive(Debug, Clone)]
pub struct RawBucket {
    /// JSON array of labels.
    pub series: String,
    pub start_s: i64,
    pub stats: Stats,
    pub hist: Option<Vec<u8>>,
}

/// Which buckets to read: one metric, one tier, `from_s <= start_s < to_s`, optionally one
/// series (its JSON label array).
#[derive(Debug, Clone)]
pub struct BucketRange {
    pub metric_id: i64,
    pub tier_s: i64,
    pub series: Option<String>,
    pub from_s: i64,
    pub to_s: i64,
}

/// Where the previous page ended: the last (series, start_s) read.
pub type PageCursor = (String, i64);

impl Database {
    /// Up to `limit` buckets of `range` strictly after `after`, ordered by (series, start_s).
    /// Keyset pagination on the series index: within a series an index range on `start_s`,
    /// and the next series found by `MIN(series) > ?` on the index, so each page costs
    /// O(log n + limit) however deep it is (an `OR`ed row comparison would rescan). At 1 s
    /// (no series index) both scan the metric's rows in the range.
    pub async fn export_page(
        &self,
        range: &BucketRange,
        after: Option<&PageCursor>,
        limit: i64,
    ) -> Result<Vec<RawBucket>, StorageError> {
        let mut out = Vec::new();
        let mut current: Option<(String, i64)> = match (after, &range.series) {
            (Some((series, start)), _) => Some((series.clone(), *start)),
            (None, Some(series)) => Some((series.clone(), range.from_s - 1)),
            (None, None) => self
                .next_series(range, None)
                .await?
                .map(|series| (series, range.from_s - 1)),
        };
        while let Some((series, after_start)) = current.take() {
            let sql = if range.tier_s > 1 {
                "SELECT start_s, count, sum, min, max, hist FROM metric_bucket \
                 INDEXED BY metric_bucket_series WHERE metric_id = ? AND tier_s = ? \
                 AND tier_s <> 1 AND series = ? AND start_s > ? AND start_s >= ? AND start_s < ? \
                 ORDER BY start_s LIMIT ?"
            } else {
                "SELECT start_s, count, sum, min, max, hist FROM metric_bucket \
                 WHERE metric_id = ? AND tier_s = ? AND series = ? AND start_s > ? AND start_s >= ? \
                 AND start_s < ? ORDER BY start_s LIMIT ?"
            };
            let rows = sqlx::query(sql)
                .bind(range.metric_id)
                .bind(range.tier_s)
                .bind(&series)
                .bind(after_start)
                .bind(range.from_s)
                .bind(range.to_s)
                .bind(limit - out.len() as i64)
                .fetch_all(&self.pool)
                .await?;
            for row in &rows {
                out.push(RawBucket {
                    series: series.clone(),
                    start_s: row.try_get("start_s")?,
                    stats: Stats {
                        count: row.try_get::<i64, _>("count")? as u64,
                        sum: row.try_get("sum")?,
                        min: row.try_get("min")?,
                        max: row.try_get("max")?,
                    },
                    hist: row.try_get("hist")?,
                });
            }
            if out.len() as i64 >= limit || range.series.is_some() {
                break;
            }
            current = self
                .next_series(range, Some(&series))
                .await?
                .map(|next| (next, range.from_s - 1));
        }
        Ok(out)
    }

    /// The first stored series of the metric and tier after `after`: any time range on the
    /// series index; at 1 s, among the rows of the range (the only ones scanned).
    async fn next_series(
        &self,
        range: &BucketRange,
        after: Option<&str>,
    ) -> Result<Option<String>, StorageError> {
        let next: Option<String> = if range.tier_s > 1 {
            sqlx::query_scalar(
                "SELECT MIN(series) FROM metric_bucket INDEXED BY metric_bucket_series \
                 WHERE metric_id = ? AND tier_s = ? AND tier_s <> 1 AND series > ?",
            )
            .bind(range.metric_id)
            .bind(range.tier_s)
            .bind(after.unwrap_or(""))
            .fetch_one(&self.pool)
            .await?
        } else {
            sqlx::query_scalar(
                "SELECT MIN(series) FROM metric_bucket WHERE metric_id = ? AND tier_s = ? \
                 AND series > ? AND start_s >= ? AND start_s < ?",
            )
            .bind(range.metric_id)
            .bind(range.tier_s)
            .bind(after.unwrap_or(""))
            .bind(range.from_s)
            .bind(range.to_s)
            .fetch_one(&self.pool)
            .await?
        };
        Ok(next)
    }

    /// How many buckets `range` holds (the export's row count before summary rows).
    pub async fn count_buckets(&self, range: &BucketRange) -> Result<(i64, i64), StorageError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS rows, COUNT(DISTINCT series) AS series FROM metric_bucket \
             WHERE metric_id = ? AND tier_s = ? AND start_s >= ? AND start_s < ? \
             AND (? IS NULL OR series = ?)",
        )
        .bind(range.metric_id)
        .bind(range.tier_s)
        .bind(range.from_s)
        .bind(range.to_s)
        .bind(range.series.as_deref())
        .bind(range.series.as_deref())
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get("rows")?, row.try_get("series")?))
    }

    /// Inserts (or replaces) rows of one tier in one transaction, without touching the other
    /// tiers. For seeding large data sets in tests and benchmarks; the engine writes through
    /// [`super::metrics::write_buckets`].
    pub async fn insert_tier_buckets(
        &self,
        metric_id: i64,
        tier_s: i64,
        rows: &[(String, i64, Stats, Option<&Histogram<u64>>)],
    ) -> Result<(), StorageError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        // 100 rows per statement (9 binds each, under SQLite's 32,766-variable limit).
        for chunk in rows.chunks(100) {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT OR REPLACE INTO metric_bucket \
                 (metric_id, tier_s, series, start_s, count, sum, min, max, hist) ",
            );
            insert.push_values(chunk, |mut row, (series, start_s, stats, hist)| {
                row.push_bind(metric_id)
                    .push_bind(tier_s)
                    .push_bind(series.clone())
                    .push_bind(*start_s)
                    .push_bind(stats.count as i64)
                    .push_bind(stats.sum)
                    .push_bind(stats.min)
                    .push_bind(stats.max)
                    .push_bind(hist.map(super::metrics::encode_histogram));
            });
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
