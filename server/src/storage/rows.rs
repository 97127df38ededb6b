//! The row primitives the flush and the roll-ups are written in ([`RowSql`]): marks, single-row
//! and period reads of `metric_bucket`, and whole-row upserts, inside the caller's transaction.
//! The flush's logic ([`super::flush`], [`super::rollup`], [`super::metrics::write_buckets`])
//! is written once against this trait; SQLite runs it on the connection's raw handle
//! ([`SqliteRows`], prepared single-row statements, no round trips) and PostgreSQL on a
//! connection of its pool ([`super::pg::PgRows`], one statement per batch).

use super::StorageError;
use crate::metric::{
    Stats,
    histogram::{self, HistBounds},
};

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

/// A marked roll-up row: metric id, tier (60 or 3600 s), series (JSON labels), period start (s).
pub type RollupKey = (i64, i64, String, i64);

/// A stored row's key: metric id, tier (s), series labels (JSON), period start (s).
pub type RowKey<'a> = (i64, i64, &'a str, i64);

/// A visitor of stored rows: series, `count, sum, min, max`, and the encoded histogram.
pub type RowVisitor<'v> = dyn FnMut(&str, Stats, Option<&[u8]>) -> Result<(), StorageError> + 'v;

/// A visitor of rows read by key: the key's index, `count, sum, min, max`, the histogram.
pub type KeyVisitor<'v> = dyn FnMut(usize, Stats, Option<&[u8]>) -> Result<(), StorageError> + 'v;

/// The SQL the flush and the roll-ups need, inside one open transaction.
pub trait RowSql {
    /// Every marked roll-up row.
    fn all_marks(&mut self) -> Result<Vec<RollupKey>, StorageError>;
    /// Marked rows of one metric and tier with `from_s <= start_s < to_s`, optionally one series.
    fn marks_in(
        &mut self,
        metric_id: i64,
        tier_s: i64,
        series: Option<&str>,
        from_s: i64,
        to_s: i64,
    ) -> Result<Vec<RollupKey>, StorageError>;
    /// Marks rows (existing marks stay).
    fn mark(&mut self, keys: &[RollupKey]) -> Result<(), StorageError>;
    /// Deletes marks.
    fn unmark(&mut self, keys: &[RollupKey]) -> Result<(), StorageError>;
    /// The newest 1-second row's start, if any.
    fn newest_second(&mut self) -> Result<Option<i64>, StorageError>;
    /// Calls `found` with the index in `keys` and the content of each stored row among `keys`
    /// (each at most once, in any order).
    fn read_rows(
        &mut self,
        keys: &[RowKey<'_>],
        found: &mut KeyVisitor<'_>,
    ) -> Result<(), StorageError>;
    /// Calls `each` with every row of one metric and tier with `from_s <= start_s < to_s`.
    fn read_period(
        &mut self,
        metric_id: i64,
        tier_s: i64,
        from_s: i64,
        to_s: i64,
        each: &mut RowVisitor<'_>,
    ) -> Result<(), StorageError>;
    /// Writes whole rows, replacing stored ones; the histogram is encoded from the sparse
    /// counts.
    fn upsert_rows(&mut self, rows: Vec<(RowKey<'_>, &SparseRow)>) -> Result<(), StorageError>;
}

/// [`RowSql`] on SQLite: prepared single-row statements on the connection's raw handle
/// (see [`super::raw`]).
pub struct SqliteRows<'c>(pub &'c rusqlite::Connection);

/// The `count, sum, min, max` columns of a rusqlite row, from column `first` on.
fn raw_stats(row: &rusqlite::Row<'_>, first: usize) -> Result<Stats, rusqlite::Error> {
    Ok(Stats {
        count: row.get::<_, i64>(first)? as u64,
        sum: row.get(first + 1)?,
        min: row.get(first + 2)?,
        max: row.get(first + 3)?,
    })
}

impl RowSql for SqliteRows<'_> {
    fn all_marks(&mut self) -> Result<Vec<RollupKey>, StorageError> {
        let mut select = self
            .0
            .prepare("SELECT metric_id, tier_s, series, start_s FROM metric_rollup")?;
        let marks = select
            .query_map((), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<_, _>>()?;
        Ok(marks)
    }

    fn marks_in(
        &mut self,
        metric_id: i64,
        tier_s: i64,
        series: Option<&str>,
        from_s: i64,
        to_s: i64,
    ) -> Result<Vec<RollupKey>, StorageError> {
        let mut select = self.0.prepare_cached(
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

    fn mark(&mut self, keys: &[RollupKey]) -> Result<(), StorageError> {
        let mut insert = self.0.prepare_cached(
            "INSERT OR IGNORE INTO metric_rollup (metric_id, tier_s, series, start_s) \
             VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (metric_id, tier, series, start) in keys {
            insert.execute((metric_id, tier, series, start))?;
        }
        Ok(())
    }

    fn unmark(&mut self, keys: &[RollupKey]) -> Result<(), StorageError> {
        let mut delete = self.0.prepare_cached(
            "DELETE FROM metric_rollup \
             WHERE metric_id = ?1 AND tier_s = ?2 AND series = ?3 AND start_s = ?4",
        )?;
        for (metric_id, tier, series, start) in keys {
            delete.execute((metric_id, tier, series, start))?;
        }
        Ok(())
    }

    fn newest_second(&mut self) -> Result<Option<i64>, StorageError> {
        Ok(self.0.query_row(
            "SELECT MAX(start_s) FROM metric_bucket WHERE tier_s = 1",
            (),
            |row| row.get(0),
        )?)
    }

    fn read_rows(
        &mut self,
        keys: &[RowKey<'_>],
        found: &mut KeyVisitor<'_>,
    ) -> Result<(), StorageError> {
        let mut select = self.0.prepare_cached(
            "SELECT count, sum, min, max, hist FROM metric_bucket \
             WHERE metric_id = ?1 AND tier_s = ?2 AND series = ?3 AND start_s = ?4",
        )?;
        for (index, &(metric_id, tier, series, start)) in keys.iter().enumerate() {
            let mut rows = select.query((metric_id, tier, series, start))?;
            if let Some(row) = rows.next()? {
                found(
                    index,
                    raw_stats(row, 0)?,
                    row.get_ref(4)?.as_blob_or_null()?,
                )?;
            }
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
        let mut select = self.0.prepare_cached(
            "SELECT series, count, sum, min, max, hist FROM metric_bucket \
             WHERE metric_id = ?1 AND tier_s = ?2 AND start_s >= ?3 AND start_s < ?4",
        )?;
        let mut rows = select.query((metric_id, tier_s, from_s, to_s))?;
        while let Some(row) = rows.next()? {
            each(
                row.get_ref(0)?.as_str()?,
                raw_stats(row, 1)?,
                row.get_ref(5)?.as_blob_or_null()?,
            )?;
        }
        Ok(())
    }

    /// One prepared single-row statement each, in key order (the table's B-tree is then
    /// filled left to right).
    fn upsert_rows(&mut self, mut rows: Vec<(RowKey<'_>, &SparseRow)>) -> Result<(), StorageError> {
        sort_in_key_order(&mut rows);
        let mut upsert = self.0.prepare_cached(
            "INSERT INTO metric_bucket \
             (metric_id, tier_s, series, start_s, count, sum, min, max, hist) \
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
}

/// Sorts rows into the table's key order: (metric, tier, start, series).
pub(crate) fn sort_in_key_order(rows: &mut [(RowKey<'_>, &SparseRow)]) {
    rows.sort_unstable_by(|(a, _), (b, _)| (a.0, a.1, a.3, a.2).cmp(&(b.0, b.1, b.3, b.2)));
}
