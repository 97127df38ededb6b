//! PostgreSQL: the pool, and [`PgRows`], the flush's row primitives ([`RowSql`]) on a
//! connection of it.
//!
//! The flush's logic is synchronous (it runs on SQLite's raw handle without round trips);
//! on PostgreSQL each primitive is one statement over arrays (`UNNEST`), so a flush costs a
//! handful of round trips whatever its number of rows. The primitives block the flush's
//! worker thread in `block_in_place` while their statement runs, as SQLite's do.

use super::{
    StorageError,
    rows::{KeyVisitor, RollupKey, RowKey, RowSql, RowVisitor, SparseRow, sort_in_key_order},
};
use crate::metric::{Stats, histogram};
use sqlx::{
    PgConnection, PgPool, Row,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use std::{str::FromStr, time::Duration};

/// Connects a pool to `url` (which may hold a password: never log it).
pub async fn connect(url: &str) -> Result<PgPool, sqlx::Error> {
    let options = PgConnectOptions::from_str(url)?.application_name("streamboard");
    PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
}

/// Runs `f` with [`PgRows`] on `conn` (inside whatever transaction `conn` has open). Needs the
/// multi-thread runtime (the server's): each statement blocks the thread in `block_in_place`.
pub async fn with_rows<T>(
    conn: &mut PgConnection,
    f: impl FnOnce(&mut PgRows<'_>) -> Result<T, StorageError>,
) -> Result<T, StorageError> {
    let runtime = tokio::runtime::Handle::current();
    if runtime.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        return Err(StorageError::Query(sqlx::Error::Protocol(
            "the PostgreSQL flush runs on a multi-thread tokio runtime".into(),
        )));
    }
    tokio::task::block_in_place(|| f(&mut PgRows { conn, runtime }))
}

/// [`RowSql`] on a PostgreSQL connection: one statement per call, over arrays.
pub struct PgRows<'c> {
    conn: &'c mut PgConnection,
    runtime: tokio::runtime::Handle,
}

impl PgRows<'_> {
    fn block<'a, T>(
        &'a mut self,
        f: impl AsyncFnOnce(&'a mut PgConnection) -> Result<T, sqlx::Error>,
    ) -> Result<T, StorageError> {
        let runtime = self.runtime.clone();
        Ok(runtime.block_on(f(self.conn))?)
    }
}

/// The columns of rollup keys, as arrays.
fn key_arrays(keys: &[RollupKey]) -> (Vec<i64>, Vec<i64>, Vec<&str>, Vec<i64>) {
    let mut arrays = (
        Vec::with_capacity(keys.len()),
        Vec::with_capacity(keys.len()),
        Vec::with_capacity(keys.len()),
        Vec::with_capacity(keys.len()),
    );
    for (metric_id, tier, series, start) in keys {
        arrays.0.push(*metric_id);
        arrays.1.push(*tier);
        arrays.2.push(series.as_str());
        arrays.3.push(*start);
    }
    arrays
}

fn stats_of(row: &sqlx::postgres::PgRow, first: usize) -> Result<Stats, sqlx::Error> {
    Ok(Stats {
        count: row.try_get::<i64, _>(first)? as u64,
        sum: row.try_get(first + 1)?,
        min: row.try_get(first + 2)?,
        max: row.try_get(first + 3)?,
    })
}

impl RowSql for PgRows<'_> {
    fn all_marks(&mut self) -> Result<Vec<RollupKey>, StorageError> {
        self.block(async |conn| {
            sqlx::query_as("SELECT metric_id, tier_s, series, start_s FROM metric_rollup")
                .fetch_all(conn)
                .await
        })
    }

    fn marks_in(
        &mut self,
        metric_id: i64,
        tier_s: i64,
        series: Option<&str>,
        from_s: i64,
        to_s: i64,
    ) -> Result<Vec<RollupKey>, StorageError> {
        let found: Vec<(String, i64)> = self.block(async |conn| {
            sqlx::query_as(
                "SELECT series, start_s FROM metric_rollup WHERE metric_id = $1 AND tier_s = $2 \
                 AND start_s >= $3 AND start_s < $4 AND ($5::text IS NULL OR series = $5)",
            )
            .bind(metric_id)
            .bind(tier_s)
            .bind(from_s)
            .bind(to_s)
            .bind(series)
            .fetch_all(conn)
            .await
        })?;
        Ok(found
            .into_iter()
            .map(|(series, start)| (metric_id, tier_s, series, start))
            .collect())
    }

    fn mark(&mut self, keys: &[RollupKey]) -> Result<(), StorageError> {
        if keys.is_empty() {
            return Ok(());
        }
        let (metrics, tiers, series, starts) = key_arrays(keys);
        self.block(async |conn| {
            sqlx::query(
                "INSERT INTO metric_rollup (metric_id, tier_s, series, start_s) \
                 SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::bigint[]) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(&metrics)
            .bind(&tiers)
            .bind(&series)
            .bind(&starts)
            .execute(conn)
            .await
        })?;
        Ok(())
    }

    fn unmark(&mut self, keys: &[RollupKey]) -> Result<(), StorageError> {
        if keys.is_empty() {
            return Ok(());
        }
        let (metrics, tiers, series, starts) = key_arrays(keys);
        self.block(async |conn| {
            sqlx::query(
                "DELETE FROM metric_rollup r \
                 USING UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::bigint[]) \
                   AS k(metric_id, tier_s, series, start_s) \
                 WHERE r.metric_id = k.metric_id AND r.tier_s = k.tier_s \
                   AND r.series = k.series AND r.start_s = k.start_s",
            )
            .bind(&metrics)
            .bind(&tiers)
            .bind(&series)
            .bind(&starts)
            .execute(conn)
            .await
        })?;
        Ok(())
    }

    fn newest_second(&mut self) -> Result<Option<i64>, StorageError> {
        self.block(async |conn| {
            sqlx::query_scalar("SELECT MAX(start_s) FROM metric_bucket WHERE tier_s = 1")
                .fetch_one(conn)
                .await
        })
    }

    fn read_rows(
        &mut self,
        keys: &[RowKey<'_>],
        found: &mut KeyVisitor<'_>,
    ) -> Result<(), StorageError> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut arrays = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for &(metric_id, tier, series, start) in keys {
            arrays.0.push(metric_id);
            arrays.1.push(tier);
            arrays.2.push(series);
            arrays.3.push(start);
        }
        let rows = self.block(async |conn| {
            sqlx::query(
                "SELECT k.i, b.count, b.sum, b.min, b.max, b.hist FROM metric_bucket b \
                 JOIN UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::bigint[]) \
                   WITH ORDINALITY AS k(metric_id, tier_s, series, start_s, i) \
                 ON b.metric_id = k.metric_id AND b.tier_s = k.tier_s \
                   AND b.start_s = k.start_s AND b.series = k.series",
            )
            .bind(&arrays.0)
            .bind(&arrays.1)
            .bind(&arrays.2)
            .bind(&arrays.3)
            .fetch_all(conn)
            .await
        })?;
        for row in &rows {
            let index = row.try_get::<i64, _>(0)? as usize - 1;
            let hist: Option<&[u8]> = row.try_get(5)?;
            found(index, stats_of(row, 1)?, hist)?;
        }
        Ok(())
    }

    fn read_period(
        &mut self,
        metric_id: i64,
        tier_s: i64,
        from_s: i64,
        to_s: i64,
        each: &mut RowVisitor<'_>,
    ) -> Result<(), StorageError> {
        let rows = self.block(async |conn| {
            sqlx::query(
                "SELECT series, count, sum, min, max, hist FROM metric_bucket \
                 WHERE metric_id = $1 AND tier_s = $2 AND start_s >= $3 AND start_s < $4",
            )
            .bind(metric_id)
            .bind(tier_s)
            .bind(from_s)
            .bind(to_s)
            .fetch_all(conn)
            .await
        })?;
        for row in &rows {
            let series: &str = row.try_get(0)?;
            let hist: Option<&[u8]> = row.try_get(5)?;
            each(series, stats_of(row, 1)?, hist)?;
        }
        Ok(())
    }

    /// One statement for all rows, over arrays.
    fn upsert_rows(&mut self, mut rows: Vec<(RowKey<'_>, &SparseRow)>) -> Result<(), StorageError> {
        if rows.is_empty() {
            return Ok(());
        }
        sort_in_key_order(&mut rows);
        let n = rows.len();
        let (mut metrics, mut tiers, mut series, mut starts) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut counts, mut sums, mut mins, mut maxes, mut hists) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for ((metric_id, tier, name, start), content) in rows {
            metrics.push(metric_id);
            tiers.push(tier);
            series.push(name);
            starts.push(start);
            counts.push(content.stats.count as i64);
            sums.push(content.stats.sum);
            mins.push(content.stats.min);
            maxes.push(content.stats.max);
            hists.push(content.bounds.map(|bounds| {
                let mut blob = Vec::new();
                histogram::encode_sparse_histogram_into(bounds, &content.counts, &mut blob);
                blob
            }));
        }
        self.block(async |conn| {
            sqlx::query(
                "INSERT INTO metric_bucket \
                 (metric_id, tier_s, series, start_s, count, sum, min, max, hist) \
                 SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], \
                   $5::bigint[], $6::float8[], $7::float8[], $8::float8[], $9::bytea[]) \
                 ON CONFLICT (metric_id, tier_s, start_s, series) DO UPDATE SET \
                 count = excluded.count, sum = excluded.sum, min = excluded.min, \
                 max = excluded.max, hist = excluded.hist",
            )
            .bind(&metrics)
            .bind(&tiers)
            .bind(&series)
            .bind(&starts)
            .bind(&counts)
            .bind(&sums)
            .bind(&mins)
            .bind(&maxes)
            .bind(&hists)
            .execute(conn)
            .await
        })?;
        Ok(())
    }
}
