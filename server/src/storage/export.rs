//! SQL of the export: keyset-paged reads of one metric's stored buckets in series order
//! (series, then bucket start), an exact row count for request validation, and a bulk insert
//! of one tier used to seed large data sets in tests and benchmarks.
//!
//! Series order comes from the partial index `metric_bucket_series` for the 1-minute and
//! 1-hour tiers (migration 0006). The 1-second tier has no index in series order (the flush
//! would scatter its entries): keyset pages there would scan the metric's range once per
//! series, so the export reads the 1-second tier with [`Database::export_sorted`] instead: one
//! query over the range in key order, sorted by SQLite into (series, start_s) order (its sorter
//! spills to temporary files beyond its memory budget), read in pages on one connection.
//!
//! Pages carry the raw HdrHistogram blobs; decoding is left to the caller so it can run off
//! the async runtime. Memory per page is bounded by the page size, whatever the range.

use super::{Database, StorageError, StoredRow, on_backend, per_backend};
use crate::metric::Stats;
use futures_util::TryStreamExt;
use hdrhistogram::Histogram;
use tokio::sync::mpsc;

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

/// A stored row (`start_s, count, sum, min, max, hist`) of `series`.
fn raw_bucket<R: StoredRow>(series: String, row: &R) -> Result<RawBucket, sqlx::Error> {
    Ok(RawBucket {
        series,
        start_s: row.int("start_s")?,
        stats: super::metrics::stored_stats(row)?,
        hist: row.blob("hist")?,
    })
}

per_backend! {}

impl Database {
    /// Every bucket of `range` in (series, start_s) order, in pages of `limit`, from ONE query
    /// held on one pooled connection by a task that stops when the receiver is dropped (the
    /// next page is read only once the previous one was taken). SQLite reads the range once in
    /// key order and sorts it (memory bounded: its sorter spills to temporary files), so the
    /// cost is O(n log n) for n rows whatever the number of series — where keyset pages in
    /// series order without an index cost n per series. The read transaction stays open for
    /// the whole range (in WAL mode writers go on; the WAL is checkpointed after it ends).
    pub fn export_sorted(
        &self,
        range: BucketRange,
        limit: usize,
    ) -> mpsc::Receiver<Result<Vec<RawBucket>, StorageError>> {
        let (tx, rx) = mpsc::channel(1);
        on_backend!(self, _sql, pool => {
            let pool = pool.clone();
            tokio::spawn(async move {
                let read = async {
                    let mut conn = pool.acquire().await?;
                    // One series or all: the key's range either way (no series index at 1 s).
                    let mut rows = sqlx::query(
                        "SELECT series, start_s, count, sum, min, max, hist FROM metric_bucket \
                         WHERE metric_id = $1 AND tier_s = $2 AND start_s >= $3 AND start_s < $4 \
                         AND ($5 IS NULL OR series = $5) ORDER BY series, start_s",
                    )
                    .bind(range.metric_id)
                    .bind(range.tier_s)
                    .bind(range.from_s)
                    .bind(range.to_s)
                    .bind(range.series.as_deref())
                    .fetch(&mut *conn);
                    let mut page = Vec::with_capacity(limit);
                    while let Some(row) = rows.try_next().await? {
                        page.push(raw_bucket(row.text("series")?, &row)?);
                        if page.len() >= limit {
                            let full = std::mem::replace(&mut page, Vec::with_capacity(limit));
                            if tx.send(Ok(full)).await.is_err() {
                                return Ok(()); // the export was dropped
                            }
                        }
                    }
                    if !page.is_empty() {
                        let _ = tx.send(Ok(page)).await;
                    }
                    Ok::<_, StorageError>(())
                };
                if let Err(error) = read.await {
                    let _ = tx.send(Err(error)).await;
                }
            });
        });
        rx
    }

    /// Up to `limit` buckets of `range` strictly after `after`, ordered by (series, start_s).
    /// Keyset pagination on the series index: within a series an index range on `start_s`,
    /// and the next series found by `MIN(series) > ?` on the index, so each page costs
    /// O(log n + limit) however deep it is (an `OR`ed row comparison would rescan). The
    /// 1-minute and 1-hour tiers only (the index leaves out the 1-second tier, which
    /// [`Database::export_sorted`] reads).
    pub async fn export_page(
        &self,
        range: &BucketRange,
        after: Option<&PageCursor>,
        limit: i64,
    ) -> Result<Vec<RawBucket>, StorageError> {
        on_backend!(self, sql, pool => {
            debug_assert_ne!(
                range.tier_s, 1,
                "the 1-second tier is read with export_sorted"
            );
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
                let rows = sqlx::query(
                    if sql::PG {
                        "SELECT start_s, count, sum, min, max, hist FROM metric_bucket \
                         WHERE metric_id = $1 AND tier_s = $2 AND tier_s <> 1 AND series = $3 \
                         AND start_s > $4 AND start_s >= $5 AND start_s < $6 \
                         ORDER BY start_s LIMIT $7"
                    } else {
                        "SELECT start_s, count, sum, min, max, hist FROM metric_bucket \
                         INDEXED BY metric_bucket_series WHERE metric_id = $1 AND tier_s = $2 \
                         AND tier_s <> 1 AND series = $3 AND start_s > $4 AND start_s >= $5 \
                         AND start_s < $6 ORDER BY start_s LIMIT $7"
                    },
                )
                .bind(range.metric_id)
                .bind(range.tier_s)
                .bind(&series)
                .bind(after_start)
                .bind(range.from_s)
                .bind(range.to_s)
                .bind(limit - out.len() as i64)
                .fetch_all(pool)
                .await?;
                for row in &rows {
                    out.push(raw_bucket(series.clone(), row)?);
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
        })
    }

    /// The first stored series of the metric and tier after `after` (any time range), on the
    /// series index.
    async fn next_series(
        &self,
        range: &BucketRange,
        after: Option<&str>,
    ) -> Result<Option<String>, StorageError> {
        on_backend!(self, sql, pool => {
            let next: Option<String> = sqlx::query_scalar(
                if sql::PG {
                    "SELECT MIN(series) FROM metric_bucket \
                     WHERE metric_id = $1 AND tier_s = $2 AND tier_s <> 1 AND series > $3"
                } else {
                    "SELECT MIN(series) FROM metric_bucket INDEXED BY metric_bucket_series \
                     WHERE metric_id = $1 AND tier_s = $2 AND tier_s <> 1 AND series > $3"
                },
            )
            .bind(range.metric_id)
            .bind(range.tier_s)
            .bind(after.unwrap_or(""))
            .fetch_one(pool)
            .await?;
            Ok(next)
        })
    }

    /// How many buckets `range` holds (the export's row count before summary rows).
    pub async fn count_buckets(&self, range: &BucketRange) -> Result<(i64, i64), StorageError> {
        on_backend!(self, sql, pool => {
            let row = sqlx::query(
                "SELECT COUNT(*) AS rows, COUNT(DISTINCT series) AS series FROM metric_bucket \
                 WHERE metric_id = $1 AND tier_s = $2 AND start_s >= $3 AND start_s < $4 \
                 AND ($5 IS NULL OR series = $6)",
            )
            .bind(range.metric_id)
            .bind(range.tier_s)
            .bind(range.from_s)
            .bind(range.to_s)
            .bind(range.series.as_deref())
            .bind(range.series.as_deref())
            .fetch_one(pool)
            .await?;
            Ok((row.int("rows")?, row.int("series")?))
        })
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
        on_backend!(self, sql, pool => {
            let mut tx = sql::begin_write(pool).await?;
            // 100 rows per statement (9 binds each, under SQLite's 32,766-variable limit).
            for chunk in rows.chunks(100) {
                let mut insert = sqlx::QueryBuilder::<sql::Db>::new(
                    "INSERT INTO metric_bucket \
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
                        .push_bind(hist.map(crate::metric::histogram::encode_histogram));
                });
                insert.push(
                    " ON CONFLICT (metric_id, tier_s, start_s, series) DO UPDATE SET \
                     count = excluded.count, sum = excluded.sum, min = excluded.min, \
                     max = excluded.max, hist = excluded.hist",
                );
                insert.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::MetricDefinition;

    /// Rows of 7 series over 500 seconds, inserted series by series in reverse so the stored
    /// order is not the answer's.
    async fn seed(database: &Database) -> i64 {
        let definition: MetricDefinition = serde_json::from_value(serde_json::json!({
            "name": "sorted", "stream": "s", "value": "/v", "dimensions": ["/k"],
        }))
        .unwrap();
        let id = database.insert_definition(&definition, 0).await.unwrap();
        for s in (0..7).rev() {
            let rows: Vec<_> = (0..500_i64)
                .filter(|t| (t + s) % 3 != 0)
                .map(|t| {
                    let stats = Stats {
                        count: (s * 1000 + t) as u64,
                        sum: 1.0,
                        min: 1.0,
                        max: 1.0,
                    };
                    (format!("[\"k{s}\"]"), 1_000 + t, stats, None)
                })
                .collect();
            database.insert_tier_buckets(id, 1, &rows).await.unwrap();
        }
        id
    }

    async fn drain(
        mut pages: mpsc::Receiver<Result<Vec<RawBucket>, StorageError>>,
    ) -> Vec<Vec<(String, i64, u64)>> {
        let mut out = Vec::new();
        while let Some(page) = pages.recv().await {
            out.push(
                page.unwrap()
                    .into_iter()
                    .map(|b| (b.series, b.start_s, b.stats.count))
                    .collect(),
            );
        }
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_sorted_read_returns_the_range_in_series_order_in_pages() {
        for (_dir, database) in crate::storage::test_databases().await {
            let id = seed(&database).await;
            let range = BucketRange {
                metric_id: id,
                tier_s: 1,
                series: None,
                from_s: 1_100,
                to_s: 1_400,
            };
            // What the seeding wrote into the range, in (series, start) order.
            let mut expected = Vec::new();
            for k in 0..7_i64 {
                for t in 100..400_i64 {
                    if (t + k) % 3 != 0 {
                        expected.push((format!("[\"k{k}\"]"), 1_000 + t, (k * 1000 + t) as u64));
                    }
                }
            }
            let pages = drain(database.export_sorted(range.clone(), 150)).await;
            assert!(pages.iter().all(|p| !p.is_empty() && p.len() <= 150));
            assert!(pages.len() > 5, "{} pages", pages.len());
            let sorted: Vec<_> = pages.into_iter().flatten().collect();
            assert_eq!(sorted.len(), 7 * 300 - 7 * 100);
            assert_eq!(sorted, expected);

            let one = drain(database.export_sorted(
                BucketRange {
                    series: Some("[\"k4\"]".into()),
                    ..range
                },
                1_000,
            ))
            .await;
            let one: Vec<_> = one.into_iter().flatten().collect();
            assert_eq!(one.len(), 200);
            assert!(one.iter().all(|(s, _, c)| s == "[\"k4\"]" && *c >= 4000));
            assert!(one.windows(2).all(|w| w[0].1 < w[1].1));
        }
    }
}
