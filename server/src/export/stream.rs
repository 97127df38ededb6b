//! The export's I/O shell: resolves metrics, validates the row count, then one task pages
//! through storage (keyset pages of [`PAGE_ROWS`] at 1 min and 1 h; at 1 s pages of one sorted
//! read, see [`Database::export_sorted`]), shapes each page on `spawn_blocking`
//! (histogram decoding is CPU work) and sends byte chunks over a bounded channel that feeds
//! the HTTP body. A client that goes away closes the channel and the task stops; so does
//! server shutdown. Memory: at most one page plus [`CHANNEL_CHUNKS`] chunks in flight.

use super::{
    RowWriter, Shaper,
    csv::CsvWriter,
    html::HtmlWriter,
    json::JsonWriter,
    request::{ExportError, ExportPlan},
};
use crate::{
    query::unit_of,
    storage::{
        Database, StorageError,
        export::{BucketRange, PageCursor, RawBucket},
        metrics::MetricRecord,
    },
};
use bytes::Bytes;
use contract::api::ExportFormat;
use tokio::sync::mpsc;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Buckets read per storage page.
pub const PAGE_ROWS: i64 = 2_000;
/// Chunks buffered between the reader task and the HTTP body.
pub const CHANNEL_CHUNKS: usize = 4;

/// Errors while preparing an export (before the first byte is sent).
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Request(#[from] ExportError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A checked export, ready to stream.
pub struct Prepared {
    pub plan: ExportPlan,
    pub metrics: Vec<MetricRecord>,
    /// Bucket rows plus one total row per series.
    pub rows: i64,
    /// Stored buckets in the range (the rows without the totals).
    pub buckets: i64,
    /// Series with at least one bucket in the range (one `total` row each).
    pub series: i64,
}

fn range(plan: &ExportPlan, metric_id: i64) -> BucketRange {
    BucketRange {
        metric_id,
        tier_s: plan.resolution_s,
        series: plan.series.clone(),
        from_s: plan.from_s(),
        to_s: plan.to_s(),
    }
}

/// Resolves metric names and counts rows; refuses unknown metrics and oversize exports.
pub async fn prepare(database: &Database, plan: ExportPlan) -> Result<Prepared, PrepareError> {
    let metrics = match &plan.metrics {
        None => database.active_metrics().await?,
        Some(names) => {
            let mut found = Vec::with_capacity(names.len());
            for name in names {
                let metric = database
                    .active_metric(name)
                    .await?
                    .ok_or_else(|| ExportError::UnknownMetric(name.clone()))?;
                found.push(metric);
            }
            found
        }
    };
    let (mut buckets, mut series) = (0, 0);
    for metric in &metrics {
        let range = range(&plan, metric.id);
        // Open 1-minute / 1-hour roll-ups in the range are brought up to date first.
        database
            .materialize(
                metric.id,
                range.tier_s,
                range.series.as_deref(),
                range.from_s,
                range.to_s,
            )
            .await?;
        let (metric_buckets, metric_series) = database.count_buckets(&range).await?;
        buckets += metric_buckets;
        series += metric_series;
    }
    let rows = buckets + series;
    let max = plan.format.max_rows();
    if rows > max {
        return Err(ExportError::TooManyRows {
            rows,
            max,
            format: plan.format.extension(),
        }
        .into());
    }
    Ok(Prepared {
        plan,
        metrics,
        rows,
        buckets,
        series,
    })
}

async fn writer(
    database: &Database,
    plan: &ExportPlan,
) -> Result<Box<dyn RowWriter>, StorageError> {
    Ok(match plan.format {
        ExportFormat::Csv => Box::new(CsvWriter),
        ExportFormat::Json => Box::new(JsonWriter::default()),
        ExportFormat::Html => {
            let fired = database.alerts_fired(plan.from_ms, plan.to_ms).await?;
            Box::new(HtmlWriter::new(
                plan.from_ms,
                plan.to_ms,
                plan.resolution_s,
                fired,
            ))
        }
    })
}

/// Starts the reader task; the receiver yields the body's chunks (an `Err` ends the body
/// early, which the client sees as a truncated download rather than a silent short file).
pub fn spawn(
    database: Database,
    prepared: Prepared,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) -> mpsc::Receiver<Result<Bytes, std::io::Error>> {
    let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
    tracker.spawn(async move {
        tokio::select! {
            result = run(&database, prepared, &tx) => {
                if let Err(error) = result {
                    tracing::warn!(%error, "export stopped");
                    let _ = tx.send(Err(std::io::Error::other(error.to_string()))).await;
                }
            }
            () = shutdown.cancelled() => {}
        }
    });
    rx
}

#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("export shaping task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("client went away")]
    Closed,
}

async fn send(
    tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
    out: Vec<u8>,
) -> Result<(), RunError> {
    if out.is_empty() {
        return Ok(());
    }
    tx.send(Ok(Bytes::from(out)))
        .await
        .map_err(|_| RunError::Closed)
}

/// Where a metric's pages come from: keyset pages on the series index (1 min, 1 h), or one
/// sorted read (1 s).
enum Pages {
    Keyset {
        range: BucketRange,
        cursor: Option<PageCursor>,
        done: bool,
    },
    Sorted(mpsc::Receiver<Result<Vec<RawBucket>, StorageError>>),
}

impl Pages {
    /// The next non-empty page, or `None` after the last.
    async fn next(&mut self, database: &Database) -> Result<Option<Vec<RawBucket>>, StorageError> {
        match self {
            Pages::Keyset {
                range,
                cursor,
                done,
            } => {
                if *done {
                    return Ok(None);
                }
                let page = database
                    .export_page(range, cursor.as_ref(), PAGE_ROWS)
                    .await?;
                *done = (page.len() as i64) < PAGE_ROWS;
                *cursor = page.last().map(|b| (b.series.clone(), b.start_s));
                Ok((!page.is_empty()).then_some(page))
            }
            Pages::Sorted(pages) => pages.recv().await.transpose(),
        }
    }
}

async fn run(
    database: &Database,
    prepared: Prepared,
    tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> Result<(), RunError> {
    let plan = prepared.plan;
    let mut writer = writer(database, &plan).await?;
    let mut out = Vec::new();
    writer.begin(&mut out);
    send(tx, out).await?;
    for metric in &prepared.metrics {
        let range = range(&plan, metric.id);
        let unit = unit_of(metric);
        let mut out = Vec::new();
        writer.metric_start(&metric.name, unit.as_deref(), &mut out);
        send(tx, out).await?;
        let mut shaper = Shaper::new(metric.name.clone(), unit, plan.resolution_s);
        let mut pages = if range.tier_s == 1 {
            Pages::Sorted(database.export_sorted(range, PAGE_ROWS as usize))
        } else {
            Pages::Keyset {
                range,
                cursor: None,
                done: false,
            }
        };
        while let Some(page) = pages.next(database).await? {
            let (back_shaper, back_writer, out) = tokio::task::spawn_blocking(move || {
                let mut out = Vec::with_capacity(page.len() * 96);
                shaper.page(page, writer.as_mut(), &mut out);
                (shaper, writer, out)
            })
            .await?;
            shaper = back_shaper;
            writer = back_writer;
            send(tx, out).await?;
        }
        let mut out = Vec::new();
        shaper.finish(writer.as_mut(), &mut out);
        writer.metric_end(&mut out);
        send(tx, out).await?;
    }
    let mut out = Vec::new();
    writer.end(&mut out);
    send(tx, out).await?;
    Ok(())
}
