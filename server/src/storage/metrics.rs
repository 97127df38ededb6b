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
use crate::engine::{compact, core::Builtin, definition::MetricDefinition, window::Stats};
use hdrhistogram::{
    Histogram,
    serialization::{Deserializer, Serializer, V2Serializer},
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
    pub hist: Option<Histogram<u64>>,
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

/// HdrHistogram's V2 compressed cookie (`0x1c849304 | 0x10`): a V2 encoding inside a zlib stream.
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9314;

/// Reused per thread: serialising and inflating allocate nothing after the first call.
struct Codec {
    v2: V2Serializer,
    plain: Vec<u8>,
    inflate: flate2::Decompress,
    deserializer: Deserializer,
}

thread_local! {
    static CODEC: std::cell::RefCell<Codec> = std::cell::RefCell::new(Codec {
        v2: V2Serializer::new(),
        plain: Vec::new(),
        inflate: flate2::Decompress::new(true),
        deserializer: Deserializer::new(),
    });
}

/// Adler-32 of `data` (the zlib trailer).
fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5_552) {
        for &byte in chunk {
            a += u32::from(byte);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

/// Encodes a histogram in the standard HdrHistogram V2 compressed format, which any V2 reader
/// (this crate's `Deserializer`, the Java and Go libraries) decodes: the V2 encoding inside a
/// zlib stream. The zlib stream uses stored (uncompressed) deflate blocks: a fresh deflate
/// compressor costs ~400 µs (it allocates and clears ~300 KB of tables), a reset one still
/// ~30 µs, against ~2 µs here, and the V2 encoding is already compact (zig-zag LEB128 counts,
/// runs of zeros as one number), so most rows (1-second buckets) lose nothing in size.
pub fn encode_histogram(hist: &Histogram<u64>) -> Vec<u8> {
    CODEC.with_borrow_mut(|codec| {
        codec.plain.clear();
        if let Err(error) = codec.v2.serialize(hist, &mut codec.plain) {
            // Serialising into a Vec cannot fail for a valid histogram.
            tracing::error!(?error, "histogram serialisation failed");
            return Vec::new();
        }
        let mut out = Vec::new();
        wrap_stored_zlib(&codec.plain, &mut out);
        out
    })
}

pub use crate::engine::compact::HistBounds;

/// HdrHistogram's V2 (uncompressed) cookie (`0x1c849303 | 0x10`).
const V2_COOKIE: u32 = 0x1c84_9313;
/// Bytes of the V2 header: cookie, payload length, normalising offset, significant figures,
/// lowest, highest, integer-to-double ratio.
const V2_HEADER: usize = 40;

/// [`encode_histogram`] from sparse `(bucket index, count)` counts (ascending; see
/// [`crate::engine::compact`]): the same bytes as encoding the dense histogram, without
/// building it.
pub fn encode_sparse_histogram(bounds: HistBounds, sparse: &[(u32, u64)]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_sparse_histogram_into(bounds, sparse, &mut out);
    out
}

/// [`encode_sparse_histogram`] into `out` (cleared first), reusing its allocation.
pub fn encode_sparse_histogram_into(bounds: HistBounds, sparse: &[(u32, u64)], out: &mut Vec<u8>) {
    CODEC.with_borrow_mut(|codec| {
        let plain = &mut codec.plain;
        plain.clear();
        plain.extend_from_slice(&V2_COOKIE.to_be_bytes());
        plain.extend_from_slice(&[0; 8]); // payload length (below), normalising offset 0
        plain.extend_from_slice(&u32::from(bounds.sigfig).to_be_bytes());
        plain.extend_from_slice(&bounds.low.to_be_bytes());
        plain.extend_from_slice(&bounds.high.to_be_bytes());
        plain.extend_from_slice(&1.0_f64.to_be_bytes());
        compact::encode_counts(sparse.iter().copied(), plain);
        let payload = (plain.len() - V2_HEADER) as u32;
        plain[4..8].copy_from_slice(&payload.to_be_bytes());
        wrap_stored_zlib(plain, out);
    })
}

/// A zlib stream of stored (uncompressed) deflate blocks around `plain`, behind the V2
/// compressed cookie and payload length, into `out` (cleared first).
fn wrap_stored_zlib(plain: &[u8], out: &mut Vec<u8>) {
    let blocks = plain.len().div_ceil(usize::from(u16::MAX)).max(1);
    out.clear();
    out.reserve(8 + 2 + 5 * blocks + plain.len() + 4);
    out.extend_from_slice(&V2_COMPRESSED_COOKIE.to_be_bytes());
    out.extend_from_slice(&[0; 4]); // payload length, below
    out.extend_from_slice(&[0x78, 0x01]); // zlib: deflate, 32 KiB window, no dictionary
    let mut chunks = plain.chunks(usize::from(u16::MAX)).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]); // one empty final block
    }
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        let len = chunk.len() as u16;
        out.push(u8::from(last)); // BFINAL, BTYPE = 00 (stored)
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&adler32(plain).to_be_bytes());
    let payload = (out.len() - 8) as u32;
    out[4..8].copy_from_slice(&payload.to_be_bytes());
}

/// No histogram of ours encodes to more than a few hundred KiB; a blob inflating further is
/// corrupt (or hostile).
const MAX_INFLATED: usize = 16 << 20;

fn bad_histogram(detail: impl std::fmt::Display) -> StorageError {
    StorageError::Query(sqlx::Error::Decode(
        format!("bad stored histogram: {detail}").into(),
    ))
}

/// Decodes any V2 encoding (compressed with any deflate blocks, or plain), reusing the
/// inflater of the thread.
pub fn decode_histogram(blob: &[u8]) -> Result<Histogram<u64>, StorageError> {
    with_plain(blob, |codec, plain| {
        codec
            .deserializer
            .deserialize(&mut &plain[..])
            .map_err(|e| bad_histogram(format!("{e:?}")))
    })
}

/// Decodes a stored histogram (as [`decode_histogram`]) into sparse `(bucket index, count)`
/// counts appended to `out` (ascending), without building a dense histogram; returns its
/// bounds.
pub fn decode_sparse_histogram(
    blob: &[u8],
    out: &mut Vec<(u32, u64)>,
) -> Result<HistBounds, StorageError> {
    with_plain(blob, |_, plain| {
        if plain.len() < V2_HEADER || plain[..4] != V2_COOKIE.to_be_bytes() {
            return Err(bad_histogram("not a V2 encoding"));
        }
        let u32_at = |at: usize| u32::from_be_bytes(plain[at..at + 4].try_into().expect("4 bytes"));
        let u64_at = |at: usize| u64::from_be_bytes(plain[at..at + 8].try_into().expect("8 bytes"));
        let payload = u32_at(4) as usize;
        if u32_at(8) != 0 || plain.len() < V2_HEADER + payload {
            return Err(bad_histogram("unsupported or truncated V2 header"));
        }
        let bounds = HistBounds {
            low: u64_at(16),
            high: u64_at(24),
            sigfig: u8::try_from(u32_at(12)).map_err(|_| bad_histogram("significant figures"))?,
        };
        compact::decode_counts(&plain[V2_HEADER..V2_HEADER + payload], |i, c| {
            out.push((i, c))
        })
        .ok_or_else(|| bad_histogram("bad counts"))?;
        Ok(bounds)
    })
}

/// Runs `f` on the plain V2 bytes of `blob`: the blob itself, or its inflated payload.
fn with_plain<T>(
    blob: &[u8],
    f: impl FnOnce(&mut Codec, &[u8]) -> Result<T, StorageError>,
) -> Result<T, StorageError> {
    CODEC.with_borrow_mut(|codec| {
        let compressed = blob.len() >= 8 && blob[..4] == V2_COMPRESSED_COOKIE.to_be_bytes();
        if !compressed {
            return f(codec, blob);
        }
        let payload = &blob[8..];
        codec.inflate.reset(true);
        let mut plain = std::mem::take(&mut codec.plain);
        plain.clear();
        plain.reserve(payload.len() * 8 + 64);
        let inflated = loop {
            let consumed = codec.inflate.total_in() as usize;
            let status = match codec.inflate.decompress_vec(
                &payload[consumed..],
                &mut plain,
                flate2::FlushDecompress::Finish,
            ) {
                Ok(status) => status,
                Err(error) => break Err(bad_histogram(error)),
            };
            match status {
                flate2::Status::StreamEnd => break Ok(()),
                _ if plain.len() >= MAX_INFLATED => {
                    break Err(bad_histogram("inflates beyond 16 MiB"));
                }
                _ if plain.len() == plain.capacity() => {
                    plain.reserve(plain.len().max(1024));
                }
                _ => break Err(bad_histogram("truncated deflate stream")),
            }
        };
        let result = inflated.and_then(|()| f(codec, &plain));
        codec.plain = plain;
        result
    })
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
            compact::merge_sparse(&mut self.counts, counts);
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
                compact::combine_sparse(&mut self.counts);
            }
            self.counts.extend_from_slice(counts);
        }
    }

    /// Sorts and combines counts added by [`SparseRow::add_unsorted`].
    pub(crate) fn combine(&mut self) {
        compact::combine_sparse(&mut self.counts);
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
                compact::merge_sparse(&mut row.counts, write.counts);
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
            let bounds = decode_sparse_histogram(blob, &mut stored_counts)?;
            if *bucket.bounds.get_or_insert(bounds) == bounds {
                compact::merge_sparse(&mut bucket.counts, &stored_counts);
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
            encode_sparse_histogram_into(bounds, &content.counts, &mut blob);
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

#[cfg(test)]
mod codec_tests {
    use super::*;
    use hdrhistogram::serialization::V2DeflateSerializer;

    fn histogram(values: impl IntoIterator<Item = u64>) -> Histogram<u64> {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000, 2).unwrap();
        for v in values {
            h.record(v).unwrap();
        }
        h
    }

    #[test]
    fn stored_block_encoding_is_standard_v2_compressed() {
        for h in [
            histogram([]),
            histogram([5]),
            histogram((1..2_000).map(|v| v * 37 % 3_000_000 + 1)),
        ] {
            let blob = encode_histogram(&h);
            assert_eq!(blob[..4], V2_COMPRESSED_COOKIE.to_be_bytes());
            // The library's own reader (a fresh zlib inflater) accepts it.
            let standard: Histogram<u64> = Deserializer::new().deserialize(&mut &blob[..]).unwrap();
            assert_eq!(standard, h);
            assert_eq!(decode_histogram(&blob).unwrap(), h);
        }
    }

    #[test]
    fn sparse_encoding_equals_the_dense_one_and_decodes_back() {
        for h in [
            histogram([]),
            histogram([5]),
            histogram((1..2_000).map(|v| v * 37 % 3_000_000 + 1)),
        ] {
            let mut sparse = Vec::new();
            compact::sparse_of(&h, &mut sparse);
            let bounds = HistBounds {
                low: 1,
                high: 3_600_000,
                sigfig: 2,
            };
            let blob = encode_sparse_histogram(bounds, &sparse);
            assert_eq!(blob, encode_histogram(&h));
            let mut back = Vec::new();
            assert_eq!(decode_sparse_histogram(&blob, &mut back).unwrap(), bounds);
            assert_eq!(back, sparse);
        }
        // Blobs with real deflate blocks decode sparsely too.
        let h = histogram((1..500).map(|v| v * 7));
        let mut blob = Vec::new();
        V2DeflateSerializer::new().serialize(&h, &mut blob).unwrap();
        let (mut back, mut sparse) = (Vec::new(), Vec::new());
        decode_sparse_histogram(&blob, &mut back).unwrap();
        compact::sparse_of(&h, &mut sparse);
        assert_eq!(back, sparse);
        assert!(decode_sparse_histogram(&blob[..blob.len() - 3], &mut back).is_err());
    }

    #[test]
    fn real_deflate_blobs_still_decode() {
        let h = histogram((1..500).map(|v| v * 7));
        let mut blob = Vec::new();
        V2DeflateSerializer::new().serialize(&h, &mut blob).unwrap();
        assert_eq!(decode_histogram(&blob).unwrap(), h);
        // And again with the same thread's inflater (reset between uses).
        assert_eq!(decode_histogram(&encode_histogram(&h)).unwrap(), h);
        assert_eq!(decode_histogram(&blob).unwrap(), h);
    }

    #[test]
    fn corrupt_blobs_are_errors_not_panics() {
        let blob = encode_histogram(&histogram([1, 2, 3]));
        assert!(decode_histogram(&blob[..blob.len() - 6]).is_err());
        assert!(decode_histogram(b"nonsense").is_err());
        let mut flipped = blob.clone();
        let at = flipped.len() - 1;
        flipped[at] ^= 0xff; // adler32 mismatch
        assert!(decode_histogram(&flipped).is_err());
    }

    #[test]
    fn adler32_matches_the_reference() {
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
    }
}
