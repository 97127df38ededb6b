//! The thin async shell around [`Engine`]: one task owns all engine state. It is fed batches by
//! a bounded mpsc (back-pressure reaches the consumer when the engine falls behind), answers
//! [`EngineHandle`] requests, and flushes every `flush_interval`: the deltas since the last
//! flush and — through the [`CheckpointHook`] — the consumer's checkpoints, in ONE transaction.
//!
//! The transaction is written by a second task, the writer, which owns the [`FlushState`] and
//! the hook: the engine task takes a flush ([`Engine::take_flush_before`] the current second on a
//! tick, so a flush writes complete seconds; [`Engine::take_flush`], everything, for
//! [`EngineHandle::flush`] and at shutdown; either already adds it to the live windows), hands
//! it over and goes on ingesting and answering while it is written. At most
//! one flush is in flight; a tick that comes meanwhile starts the next one as soon as it is
//! done. A failed write hands the flush back and the engine puts it back ([`Engine::restore`])
//! to be written by the next flush. [`EngineHandle::flush`] and shutdown wait for the commit.
//!
//! A third tracked task applies retention in small batches so it never holds up ingest.

use super::{
    core::{
        Builtin, Engine, EngineConfig, Flush, MetricCounters, MetricKey, MetricWindow, PreviewRow,
        SeriesWindows,
    },
    definition::CompiledMetric,
    fields::FieldStats,
    input::RecordBatch,
};
use crate::{
    kinesis::{ShardId, StreamName},
    storage::{
        Database, StorageError,
        metrics::{BucketWrite, SparseRow, TIERS_S, builtin_metric_id, upsert_rows, write_buckets},
        raw::with_raw,
        rollup::{self, SeriesMap},
    },
};
use sqlx::SqliteConnection;
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    future::Future,
    pin::Pin,
    sync::Arc,
    time::Duration,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Settings of the engine task.
#[derive(Debug, Clone)]
pub struct ShellConfig {
    pub engine: EngineConfig,
    /// How often changed buckets and checkpoints are committed (default 1 s).
    pub flush_interval: Duration,
    /// Capacity of the batch channel (default 64 batches).
    pub batch_capacity: usize,
    /// How long each tier is kept: 1 s rows, 1 min rows, 1 h rows (6 h, 14 d, 400 d).
    pub retention: [Duration; 3],
    /// How often retention runs (default 60 s).
    pub retention_interval: Duration,
    /// Streams a definition may name; `None` accepts any stream name.
    pub known_streams: Option<HashSet<String>>,
}

impl Default for ShellConfig {
    fn default() -> Self {
        Self {
            engine: EngineConfig::default(),
            flush_interval: Duration::from_secs(1),
            batch_capacity: 64,
            retention: [
                Duration::from_secs(6 * 3600),
                Duration::from_secs(14 * 86_400),
                Duration::from_secs(400 * 86_400),
            ],
            retention_interval: Duration::from_secs(60),
            known_streams: None,
        }
    }
}

/// THE CHECKPOINT HOOK: called inside every flush transaction, after the bucket deltas are
/// written and before the commit, with the newest position of every shard whose records those
/// deltas include. The lead plugs the consumer's checkpoint writer in here; an error rolls the
/// whole flush back (it is retried at the next flush).
pub trait CheckpointHook<P>: Send + 'static {
    fn write<'a>(
        &'a mut self,
        tx: &'a mut SqliteConnection,
        positions: &'a [(StreamName, ShardId, P)],
    ) -> Pin<Box<dyn Future<Output = Result<(), sqlx::Error>> + Send + 'a>>;
}

/// A hook that stores nothing (tests, and until the consumer is wired in).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoCheckpoints;

impl<P: Sync> CheckpointHook<P> for NoCheckpoints {
    fn write<'a>(
        &'a mut self,
        _tx: &'a mut SqliteConnection,
        _positions: &'a [(StreamName, ShardId, P)],
    ) -> Pin<Box<dyn Future<Output = Result<(), sqlx::Error>> + Send + 'a>> {
        Box::pin(async { Ok(()) })
    }
}

enum Request {
    ReloadDefinitions(oneshot::Sender<Result<usize, StorageError>>),
    Fields(
        String,
        oneshot::Sender<Option<BTreeMap<String, FieldStats>>>,
    ),
    Streams(oneshot::Sender<Vec<StreamName>>),
    Preview(
        Box<CompiledMetric>,
        usize,
        oneshot::Sender<Option<Vec<PreviewRow>>>,
    ),
    Windows(i64, oneshot::Sender<Vec<SeriesWindows>>),
    Window(WindowQuery, oneshot::Sender<Vec<Option<MetricWindow>>>),
    Counters(oneshot::Sender<Vec<(MetricKey, String, MetricCounters)>>),
    FlushNow(oneshot::Sender<Result<(), StorageError>>),
}

/// `(metric name, window_s)` pairs wanted at `now_ms`.
struct WindowQuery {
    now_ms: i64,
    wanted: Vec<(String, i64)>,
}

/// Asks things of the engine task; cheap to clone. Every call fails with
/// [`EngineGone`] once the task has stopped.
#[derive(Clone)]
pub struct EngineHandle {
    requests: mpsc::Sender<Request>,
    known_streams: Option<HashSet<String>>,
    ingested: watch::Receiver<u64>,
}

/// The engine task has stopped (shutdown).
#[derive(Debug, thiserror::Error)]
#[error("the metrics engine is not running")]
pub struct EngineGone;

impl EngineHandle {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Request,
    ) -> Result<T, EngineGone> {
        let (tx, rx) = oneshot::channel();
        self.requests.send(make(tx)).await.map_err(|_| EngineGone)?;
        rx.await.map_err(|_| EngineGone)
    }

    /// Re-reads the active definitions from the database (after an API change).
    pub async fn reload_definitions(&self) -> Result<Result<usize, StorageError>, EngineGone> {
        self.ask(Request::ReloadDefinitions).await
    }

    pub async fn fields(
        &self,
        stream: &str,
    ) -> Result<Option<BTreeMap<String, FieldStats>>, EngineGone> {
        let stream = stream.to_string();
        self.ask(|tx| Request::Fields(stream, tx)).await
    }

    /// Runs a compiled (not installed) definition over the newest `limit` sampled records of
    /// its stream; `None` when the stream has sent nothing yet.
    pub async fn preview(
        &self,
        metric: CompiledMetric,
        limit: usize,
    ) -> Result<Option<Vec<PreviewRow>>, EngineGone> {
        self.ask(|tx| Request::Preview(Box::new(metric), limit, tx))
            .await
    }

    pub async fn streams(&self) -> Result<Vec<StreamName>, EngineGone> {
        self.ask(Request::Streams).await
    }

    pub async fn windows(&self, now_ms: i64) -> Result<Vec<SeriesWindows>, EngineGone> {
        self.ask(|tx| Request::Windows(now_ms, tx)).await
    }

    /// Several metric windows at once (one round trip per alert evaluation): for each
    /// `(metric name, window_s)` the metric's window, or `None` for an unknown metric.
    pub async fn metric_windows(
        &self,
        now_ms: i64,
        wanted: Vec<(String, i64)>,
    ) -> Result<Vec<Option<MetricWindow>>, EngineGone> {
        self.ask(|tx| Request::Window(WindowQuery { now_ms, wanted }, tx))
            .await
    }

    pub async fn counters(&self) -> Result<Vec<(MetricKey, String, MetricCounters)>, EngineGone> {
        self.ask(Request::Counters).await
    }

    /// Ingests every batch already queued, flushes and waits for the commit.
    pub async fn flush(&self) -> Result<Result<(), StorageError>, EngineGone> {
        self.ask(Request::FlushNow).await
    }

    /// Streams a definition may name (`None`: any).
    pub fn known_streams(&self) -> Option<&HashSet<String>> {
        self.known_streams.as_ref()
    }

    /// Changes after every batch the engine has ingested (the number of batches so far), so a
    /// reader can react to new records. A request sent after a change is seen is answered
    /// with that batch included (the engine task does both in order).
    pub fn ingested(&self) -> watch::Receiver<u64> {
        self.ingested.clone()
    }
}

/// Wall-clock now in epoch milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Loads and compiles the active definitions; a stored definition that no longer compiles is
/// logged and skipped rather than stopping the engine.
pub async fn load_definitions(
    database: &Database,
) -> Result<Vec<(i64, CompiledMetric)>, StorageError> {
    let mut out = Vec::new();
    for metric in database.active_metrics().await? {
        let Some(definition) = metric.definition else {
            continue;
        };
        match definition.compile(None, &HashSet::new()) {
            Ok(compiled) => out.push((metric.id, compiled)),
            Err(error) => {
                tracing::error!(metric = %metric.name, %error, "stored definition skipped")
            }
        }
    }
    Ok(out)
}

/// Starts the engine task and the retention task on `tracker`. Returns the handle and the
/// sender the consumer feeds batches into. On cancellation the task drains what is queued,
/// flushes once more and stops.
pub async fn spawn<P, H>(
    config: ShellConfig,
    database: Database,
    hook: H,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) -> Result<(EngineHandle, mpsc::Sender<RecordBatch<P>>), StorageError>
where
    P: Clone + Send + Sync + 'static,
    H: CheckpointHook<P>,
{
    let mut engine = Engine::<P>::new(config.engine.clone());
    engine.set_definitions(load_definitions(&database).await?);
    let (batch_tx, batch_rx) = mpsc::channel(config.batch_capacity.max(1));
    let (request_tx, request_rx) = mpsc::channel(16);
    let (ingested_tx, ingested) = watch::channel(0);
    let handle = EngineHandle {
        requests: request_tx,
        known_streams: config.known_streams.clone(),
        ingested,
    };
    // Capacity 1 is enough: at most one flush is in flight, and the writer takes it at once.
    let (writer_tx, writer_rx) = mpsc::channel(1);
    tracker.spawn(write_loop(
        database.clone(),
        hook,
        FlushState::with_retention(config.retention[0].min(config.retention[1])),
        writer_rx,
    ));
    let task = EngineTask {
        engine,
        ingested: ingested_tx,
        database: database.clone(),
        writer: writer_tx,
        in_flight: None,
        waiting: Vec::new(),
        waiting_next: Vec::new(),
        flush_due: false,
    };
    tracker.spawn(task.run(
        config.flush_interval,
        batch_rx,
        request_rx,
        shutdown.clone(),
    ));
    tracker.spawn(retention_loop(
        database,
        config.retention,
        config.retention_interval,
        shutdown,
    ));
    Ok((handle, batch_tx))
}

/// A flush's outcome from the writer: committed, or failed and handed back.
type Written<P> = Result<(), (StorageError, Flush<P>)>;

/// What the engine task asks of the writer.
enum WriterJob<P> {
    /// Write one flush in one transaction.
    Write(Flush<P>, oneshot::Sender<Written<P>>),
    /// Rebuild and unmark every open roll-up (shutdown, after the final flush).
    CloseRollups(oneshot::Sender<Result<(), StorageError>>),
}

/// Answers to `FlushNow` requests.
type FlushWaiter = oneshot::Sender<Result<(), StorageError>>;

/// The writer task: owns the flush state and the checkpoint hook, writes the flushes it is
/// handed one at a time, and stops when the engine task drops its sender (after the final
/// flush), so it never needs the shutdown token itself.
async fn write_loop<P, H>(
    database: Database,
    mut hook: H,
    mut state: FlushState,
    mut jobs: mpsc::Receiver<WriterJob<P>>,
) where
    P: Send + Sync + 'static,
    H: CheckpointHook<P>,
{
    while let Some(job) = jobs.recv().await {
        match job {
            WriterJob::Write(flush, reply) => {
                let result = write_flush(&database, &flush, &mut hook, &mut state).await;
                let _ = reply.send(result.map_err(|error| (error, flush)));
            }
            WriterJob::CloseRollups(reply) => {
                let _ = reply.send(close_rollups(&database, &mut state).await);
            }
        }
    }
}

/// The writer is gone (it only stops after the engine task, so: it panicked).
fn writer_gone() -> StorageError {
    StorageError::Query(sqlx::Error::WorkerCrashed)
}

/// Sends `result` to every waiter: the error itself to the first, its text to the others.
fn answer_waiters(waiters: &mut Vec<FlushWaiter>, result: Result<(), StorageError>) {
    let mut waiters = std::mem::take(waiters).into_iter();
    let Some(first) = waiters.next() else {
        return;
    };
    for waiter in waiters {
        let _ = waiter.send(match &result {
            Ok(()) => Ok(()),
            Err(error) => Err(StorageError::Query(sqlx::Error::Protocol(format!(
                "flush failed: {error}"
            )))),
        });
    }
    let _ = first.send(result);
}

struct EngineTask<P> {
    engine: Engine<P>,
    /// Counts ingested batches; see [`EngineHandle::ingested`].
    ingested: watch::Sender<u64>,
    database: Database,
    writer: mpsc::Sender<WriterJob<P>>,
    /// The outcome of the flush being written, if one is.
    in_flight: Option<oneshot::Receiver<Written<P>>>,
    /// `FlushNow` requests answered when the flush in flight (or the one about to start) ends.
    waiting: Vec<FlushWaiter>,
    /// `FlushNow` requests that came while a flush was in flight: their records are in the
    /// next one.
    waiting_next: Vec<FlushWaiter>,
    /// A tick came while a flush was in flight: start the next flush when it ends.
    flush_due: bool,
}

impl<P> EngineTask<P>
where
    P: Clone + Send + Sync + 'static,
{
    async fn run(
        mut self,
        flush_interval: Duration,
        mut batches: mpsc::Receiver<RecordBatch<P>>,
        mut requests: mpsc::Receiver<Request>,
        shutdown: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(flush_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                // Order matters under load: the flush's outcome, the flush tick and requests
                // come before batches so a busy channel can never starve the flush.
                biased;
                _ = shutdown.cancelled() => break,
                outcome = async {
                    self.in_flight.as_mut().expect("guarded by the condition").await
                }, if self.in_flight.is_some() => self.finish(outcome),
                _ = tick.tick() => self.start_flush(false),
                Some(request) = requests.recv() => self.answer(request, &mut batches).await,
                Some(batch) = batches.recv() => self.ingest(&batch),
            }
        }
        // Shutdown: take what the consumer already queued, let the flush in flight (and any it
        // starts) end, then one last flush and the roll-ups.
        batches.close();
        while let Ok(batch) = batches.try_recv() {
            self.ingest(&batch);
        }
        while let Some(in_flight) = self.in_flight.as_mut() {
            let outcome = in_flight.await;
            self.finish(outcome);
        }
        self.start_flush(true);
        let mut committed = true;
        if let Some(in_flight) = self.in_flight.take() {
            committed = match in_flight.await {
                Ok(Ok(())) => true,
                Ok(Err((error, _))) => {
                    tracing::error!(%error, "final flush failed; the consumer will re-read from its last checkpoint");
                    false
                }
                Err(_) => false,
            };
        }
        if !committed {
            return;
        }
        let (reply, closed) = oneshot::channel();
        if self
            .writer
            .send(WriterJob::CloseRollups(reply))
            .await
            .is_err()
        {
            return;
        }
        if let Ok(Err(error)) = closed.await {
            tracing::warn!(%error, "open roll-ups stay marked; they are rebuilt after the restart");
        }
    }

    fn ingest(&mut self, batch: &RecordBatch<P>) {
        self.engine.ingest(batch, now_ms());
        self.ingested.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Takes a flush and hands it to the writer, unless one is in flight (then the next starts
    /// when it ends). An empty flush answers the waiting requests at once.
    ///
    /// A flush takes the seconds before the current one (complete seconds), or `everything`
    /// (shutdown), as it does whenever `FlushNow` requests wait: they are answered once all
    /// records sent before them are stored.
    fn start_flush(&mut self, everything: bool) {
        if self.in_flight.is_some() {
            self.flush_due = true;
            return;
        }
        self.flush_due = false;
        let flush = if everything || !self.waiting.is_empty() {
            self.engine.take_flush()
        } else {
            self.engine.take_flush_before(now_ms().div_euclid(1000))
        };
        if flush.is_empty() {
            answer_waiters(&mut self.waiting, Ok(()));
            return;
        }
        let (reply, outcome) = oneshot::channel();
        match self.writer.try_send(WriterJob::Write(flush, reply)) {
            Ok(()) => self.in_flight = Some(outcome),
            Err(mpsc::error::TrySendError::Full(job) | mpsc::error::TrySendError::Closed(job)) => {
                // Full cannot happen (nothing is in flight); closed: the writer is gone.
                if let WriterJob::Write(flush, _) = job {
                    self.engine.restore(flush);
                }
                tracing::error!("the flush writer is gone; nothing more is stored");
                answer_waiters(&mut self.waiting, Err(writer_gone()));
            }
        }
    }

    /// The flush in flight ended: a failed one goes back into the engine (the next flush
    /// writes it again), the requests waiting for it are answered, and the next flush starts
    /// if one is due or asked for.
    fn finish(&mut self, outcome: Result<Written<P>, oneshot::error::RecvError>) {
        self.in_flight = None;
        let result = match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err((error, flush))) => {
                self.engine.restore(flush);
                tracing::error!(%error, "flush failed; it will be retried");
                Err(error)
            }
            Err(_) => {
                // The writer dropped the flush (it panicked): nothing of it is stored, nor are
                // its positions, so the consumer re-reads those records after a restart.
                tracing::error!("the flush writer is gone; nothing more is stored");
                Err(writer_gone())
            }
        };
        answer_waiters(&mut self.waiting, result);
        self.waiting.append(&mut self.waiting_next);
        if self.flush_due || !self.waiting.is_empty() {
            self.start_flush(false);
        }
    }

    async fn answer(&mut self, request: Request, batches: &mut mpsc::Receiver<RecordBatch<P>>) {
        match request {
            Request::ReloadDefinitions(reply) => {
                let result = load_definitions(&self.database).await.map(|defs| {
                    let n = defs.len();
                    self.engine.set_definitions(defs);
                    n
                });
                let _ = reply.send(result);
            }
            Request::Fields(stream, reply) => {
                let _ = reply.send(self.engine.discover_fields(&stream));
            }
            Request::Preview(metric, limit, reply) => {
                let _ = reply.send(self.engine.preview(&metric, limit));
            }
            Request::Streams(reply) => {
                let _ = reply.send(self.engine.streams().cloned().collect());
            }
            Request::Windows(now, reply) => {
                let _ = reply.send(self.engine.windows(now));
            }
            Request::Window(query, reply) => {
                let answers = query
                    .wanted
                    .iter()
                    .map(|(name, window_s)| self.engine.window(query.now_ms, name, *window_s))
                    .collect();
                let _ = reply.send(answers);
            }
            Request::Counters(reply) => {
                let _ = reply.send(self.engine.counters());
            }
            Request::FlushNow(reply) => {
                // Everything sent before the request is included: in the flush started now,
                // or in the one after the flush in flight.
                while let Ok(batch) = batches.try_recv() {
                    self.ingest(&batch);
                }
                if self.in_flight.is_some() {
                    self.waiting_next.push(reply);
                } else {
                    self.waiting.push(reply);
                    self.start_flush(false);
                }
            }
        }
    }
}

/// What the flush keeps between transactions: built-in metric ids, the open roll-ups (marked
/// 1-minute and 1-hour rows, see [`crate::storage::rollup`]) and the content of the open
/// minutes this writer saw whole. A fresh state (at start, after a crash, after a failed
/// transaction) reloads the marks from the database, which is always the truth: nothing here
/// has to survive a crash.
#[derive(Debug, Clone, Default)]
pub struct FlushState {
    builtin_ids: HashMap<(StreamName, Builtin), i64>,
    /// Marked rows; `None` until loaded from the database.
    marks: Option<Marks>,
    /// Open 1-minute rows whose every 1-second row went through this state, by (metric id,
    /// minute start) and series: the merge of what was written to them. Such a minute closes
    /// by writing this, without reading its sixty 1-second rows back. A minute that had rows
    /// before it was marked by this state (a restart, a late record for a closed minute) is
    /// rebuilt from storage instead.
    minutes: HashMap<(i64, i64), SeriesMap<SparseRow>>,
    /// The content of the newest 1-second rows written (see [`rollup::SecondCache`]).
    seconds: rollup::SecondCache,
    /// No 1-second row is newer than this (loaded with the marks, then kept up to date).
    stored_upto_s: i64,
    /// The newest second any flush has written: a period closes (its row is rebuilt and
    /// unmarked) once this is [`CLOSE_AFTER_S`] past its end.
    newest_s: i64,
    /// 1-second retention, when it applies: a delta for a second so old that the 1-second rows
    /// of its minute may already be deleted is merged straight into all three tiers instead
    /// (its roll-up could not be rebuilt).
    second_retention: Option<Duration>,
}

/// Marked roll-up rows: (tier, period start) -> metric id -> series.
type Marks = BTreeMap<(i64, i64), HashMap<i64, SeriesMap<()>>>;

/// How far past its end (in data seconds) a period's roll-up is rebuilt and unmarked: records
/// for a second still arrive for a moment after it (the flush boundary falls inside seconds).
/// Later records simply mark the period again.
pub const CLOSE_AFTER_S: i64 = 5;

/// Margin before the 1-second retention horizon inside which deltas bypass the roll-ups.
const ROLLUP_MARGIN: Duration = Duration::from_secs(3600);

impl FlushState {
    /// A state for a server whose 1-second rows are deleted after `second_retention`.
    pub fn with_retention(second_retention: Duration) -> Self {
        Self {
            second_retention: Some(second_retention),
            ..Self::default()
        }
    }

    /// Forgets everything (as after a restart); the marks are reloaded from the database.
    pub fn clear(&mut self) {
        *self = Self {
            second_retention: self.second_retention,
            ..Self::default()
        };
    }

    /// Number of marked (open) roll-up rows known.
    pub fn open_rollups(&self) -> usize {
        self.marks.as_ref().map_or(0, |marks| {
            marks
                .values()
                .flat_map(HashMap::values)
                .map(HashMap::len)
                .sum()
        })
    }
}

/// Writes one flush in one transaction: the 1-second rows of the bucket deltas, the marks of
/// the 1-minute and 1-hour rows they touch, the roll-ups of periods that closed, then the
/// checkpoint hook. When the transaction fails, `state` is cleared (reloaded from the database
/// by the next flush).
pub async fn write_flush<P, H: CheckpointHook<P>>(
    database: &Database,
    flush: &Flush<P>,
    hook: &mut H,
    state: &mut FlushState,
) -> Result<(), StorageError> {
    let now = now_ms();
    let mut tx = database.begin_flush().await?;
    let result = async {
        let mut writes = Vec::with_capacity(flush.deltas.len());
        for delta in &flush.deltas {
            let (metric_id, hist) = match &delta.metric {
                MetricKey::Defined(id) => (*id, delta.bounds.filter(|_| !delta.counts.is_empty())),
                MetricKey::Builtin { stream, kind } => {
                    let key = (stream.clone(), *kind);
                    let id = match state.builtin_ids.get(&key) {
                        Some(id) => *id,
                        None => {
                            let id =
                                builtin_metric_id(&mut tx, stream.as_str(), *kind, now).await?;
                            state.builtin_ids.insert(key, id);
                            id
                        }
                    };
                    let has_histogram =
                        matches!(kind, Builtin::Bytes | Builtin::MillisBehindLatest);
                    (id, delta.bounds.filter(|_| has_histogram))
                }
            };
            writes.push(BucketWrite {
                metric_id,
                series: &delta.series,
                second: delta.second,
                stats: delta.stats,
                counts: &delta.counts,
                hist,
            });
        }
        with_raw(&mut tx, |db| write_rollups(db, writes, state, now)).await?;
        hook.write(&mut tx, &flush.positions).await?;
        tx.commit().await?;
        Ok::<_, StorageError>(())
    }
    .await;
    if result.is_err() {
        // Ids and marks this transaction created are gone with it: start over from the
        // database.
        state.clear();
    }
    result
}

/// The 1-second rows, marks and closed roll-ups of one flush (inside its transaction).
fn write_rollups(
    db: &rusqlite::Connection,
    mut writes: Vec<BucketWrite<'_>>,
    state: &mut FlushState,
    now_ms: i64,
) -> Result<(), StorageError> {
    if state.marks.is_none() {
        let mut marks = Marks::new();
        for (metric_id, tier, series, start) in rollup::all_marks(db)? {
            marks
                .entry((tier, start))
                .or_default()
                .entry(metric_id)
                .or_default()
                .insert(series.into(), ());
        }
        state.marks = Some(marks);
        state.stored_upto_s = rollup::newest_second(db)?.unwrap_or(i64::MIN);
    }
    // In the table's key order: rows of one (metric, second) come together.
    writes.sort_unstable_by(|a, b| {
        (a.metric_id, a.second, a.series).cmp(&(b.metric_id, b.second, b.series))
    });
    let oldest_rolled_s = state.second_retention.map_or(i64::MIN, |keep| {
        now_ms / 1000 - keep.saturating_sub(ROLLUP_MARGIN).as_secs() as i64
    });
    let (rolled, direct): (Vec<BucketWrite<'_>>, Vec<BucketWrite<'_>>) = writes
        .into_iter()
        .partition(|w| w.second >= oldest_rolled_s);
    if !direct.is_empty() {
        for write in &direct {
            if let Some(rows) = state.seconds.get_mut(&(write.metric_id, write.second)) {
                rows.remove(&**write.series);
            }
            // Its minute's 1-second rows no longer hold everything that minute does.
            let minute = write.second.div_euclid(60) * 60;
            if let Some(minute) = state.minutes.get_mut(&(write.metric_id, minute)) {
                minute.remove(&**write.series);
            }
        }
        write_buckets(db, &direct, &TIERS_S)?;
    }
    rollup::write_seconds(db, &rolled, &mut state.seconds, state.stored_upto_s)?;
    let stored_before_s = state.stored_upto_s;
    state.stored_upto_s = rolled
        .iter()
        .chain(&direct)
        .map(|w| w.second)
        .fold(state.stored_upto_s, i64::max);
    let marks = state.marks.as_mut().expect("loaded above");
    let mut new_marks = Vec::new();
    for group in rolled.chunk_by(|a, b| (a.metric_id, a.second) == (b.metric_id, b.second)) {
        let (metric_id, second) = (group[0].metric_id, group[0].second);
        state.newest_s = state.newest_s.max(second);
        let minute_s = second.div_euclid(60) * 60;
        let hour_s = second.div_euclid(3600) * 3600;
        for (tier, start) in [(60, minute_s), (3600, hour_s)] {
            let series = marks
                .entry((tier, start))
                .or_default()
                .entry(metric_id)
                .or_default();
            for write in group {
                if series.contains_key(&**write.series) {
                    continue;
                }
                series.insert(write.series.clone(), ());
                new_marks.push((metric_id, tier, write.series.to_string(), start));
                if tier == 60 && start > stored_before_s {
                    // No 1-second row of this minute was stored: from here on this state sees
                    // every one.
                    state
                        .minutes
                        .entry((metric_id, start))
                        .or_default()
                        .insert(write.series.clone(), SparseRow::default());
                }
            }
        }
        if let Some(minute) = state.minutes.get_mut(&(metric_id, minute_s)) {
            for write in group {
                if let Some(row) = minute.get_mut(&**write.series) {
                    row.add_unsorted(write.stats, write.hist, write.counts);
                }
            }
        }
    }
    rollup::mark(db, &new_marks)?;
    // Close: minutes first, then hours none of whose minutes is still open.
    for tier in [60, 3600] {
        let closing: Vec<(i64, i64)> = marks
            .range((tier, i64::MIN)..(tier, i64::MAX))
            .map(|(key, _)| *key)
            .filter(|(_, start)| start + tier + CLOSE_AFTER_S <= state.newest_s)
            .collect();
        let mut keys = Vec::new();
        for (tier, start) in closing {
            let open_minutes: HashSet<(i64, &str)> = if tier == 3600 {
                marks
                    .range((60, start)..(60, start + 3600))
                    .flat_map(|(_, metrics)| metrics.iter())
                    .flat_map(|(m, set)| set.keys().map(|s| (*m, &**s)))
                    .collect()
            } else {
                HashSet::new()
            };
            let Some(metrics) = marks.get(&(tier, start)) else {
                continue;
            };
            let closed: Vec<(i64, Arc<str>)> = metrics
                .iter()
                .flat_map(|(m, set)| set.keys().map(move |s| (*m, s)))
                .filter(|(m, s)| !open_minutes.contains(&(*m, &***s)))
                .map(|(m, s)| (m, s.clone()))
                .collect();
            let metrics = marks.get_mut(&(tier, start)).expect("present");
            for (metric_id, series) in &closed {
                if let Some(set) = metrics.get_mut(metric_id) {
                    set.remove(series);
                    if set.is_empty() {
                        metrics.remove(metric_id);
                    }
                }
            }
            if metrics.is_empty() {
                marks.remove(&(tier, start));
            }
            keys.extend(
                closed
                    .into_iter()
                    .map(|(m, s)| (m, tier, s.to_string(), start)),
            );
        }
        // A minute seen whole is written from memory; the others are rebuilt from storage.
        let mut whole = Vec::new();
        let mut rebuild = Vec::new();
        for key in keys.iter().cloned() {
            let seen = (tier == 60)
                .then(|| state.minutes.get_mut(&(key.0, key.3)))
                .flatten()
                .and_then(|minute| minute.remove(key.2.as_str()));
            match seen {
                Some(mut row) => {
                    row.combine();
                    whole.push((key, row));
                }
                None => rebuild.push(key),
            }
        }
        upsert_rows(
            db,
            whole
                .iter()
                .map(|((metric_id, tier, series, start), row)| {
                    ((*metric_id, *tier, series.as_str(), *start), row)
                })
                .collect(),
        )?;
        rollup::rebuild(db, &rebuild)?;
        rollup::unmark(db, &keys)?;
    }
    state.minutes.retain(|_, minute| !minute.is_empty());
    Ok(())
}

/// Rebuilds and unmarks every open roll-up (a clean shutdown leaves none), in one transaction.
pub async fn close_rollups(
    database: &Database,
    state: &mut FlushState,
) -> Result<(), StorageError> {
    let mut tx = database.begin_flush().await?;
    with_raw(&mut tx, |db| {
        let marks = rollup::all_marks(db)?;
        for tier in [60, 3600] {
            let keys: Vec<_> = marks.iter().filter(|k| k.1 == tier).cloned().collect();
            rollup::rebuild(db, &keys)?;
            rollup::unmark(db, &keys)?;
        }
        Ok(())
    })
    .await?;
    tx.commit().await?;
    state.marks = Some(BTreeMap::new());
    state.minutes.clear();
    Ok(())
}

async fn retention_loop(
    database: Database,
    retention: [Duration; 3],
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now_s = now_ms() / 1000;
        for (tier, keep) in TIERS_S.into_iter().zip(retention) {
            let before = now_s - keep.as_secs() as i64;
            loop {
                if shutdown.is_cancelled() {
                    return;
                }
                match database.delete_expired_buckets(tier, before, 5000).await {
                    Ok(5000) => tokio::task::yield_now().await,
                    Ok(_) => break,
                    Err(error) => {
                        tracing::warn!(%error, tier, "retention failed; will retry");
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        engine::{ConsumedRecord, core::Builtin},
        kinesis::SequenceNumber,
    };
    use bytes::Bytes;

    /// A checkpoint hook that holds the flush transaction open: it says when it is entered and
    /// waits for a go (or for the sender to be dropped).
    struct Gate {
        entered: mpsc::Sender<()>,
        go: mpsc::Receiver<()>,
    }

    impl CheckpointHook<u32> for Gate {
        fn write<'a>(
            &'a mut self,
            _tx: &'a mut SqliteConnection,
            _positions: &'a [(StreamName, ShardId, u32)],
        ) -> Pin<Box<dyn Future<Output = Result<(), sqlx::Error>> + Send + 'a>> {
            Box::pin(async move {
                let _ = self.entered.try_send(());
                let _ = self.go.recv().await;
                Ok(())
            })
        }
    }

    fn batch(position: u32, records: usize) -> RecordBatch<u32> {
        let now = now_ms();
        RecordBatch {
            stream: "s".into(),
            shard: "shardId-0".into(),
            records: (0..records)
                .map(|_| ConsumedRecord {
                    sequence_number: SequenceNumber::parse("1").expect("digits"),
                    sub_sequence: None,
                    partition_key: "k".into(),
                    data: Bytes::from_static(b"{}"),
                    arrival_time_ms: now,
                    explicit_hash_key: None,
                })
                .collect(),
            millis_behind_latest: None,
            position,
        }
    }

    fn records_in_window(windows: &[SeriesWindows]) -> u64 {
        windows
            .iter()
            .filter(|w| {
                w.metric
                    == MetricKey::Builtin {
                        stream: "s".into(),
                        kind: Builtin::Records,
                    }
            })
            .map(|w| w.windows[0].count)
            .sum()
    }

    #[tokio::test]
    async fn the_engine_ingests_and_answers_while_a_flush_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let database = Database::open(dir.path()).await.unwrap();
        let (entered_tx, mut entered) = mpsc::channel(4);
        let (go, go_rx) = mpsc::channel(4);
        let tracker = TaskTracker::new();
        let shutdown = CancellationToken::new();
        let config = ShellConfig {
            // Only the first tick (at start, nothing to flush): flushes come from the test.
            flush_interval: Duration::from_secs(3600),
            ..ShellConfig::default()
        };
        let hook = Gate {
            entered: entered_tx,
            go: go_rx,
        };
        let (handle, batches) = spawn(config, database.clone(), hook, &tracker, shutdown.clone())
            .await
            .unwrap();
        batches.send(batch(1, 2)).await.unwrap();
        let first = tokio::spawn({
            let handle = handle.clone();
            async move { handle.flush().await }
        });
        // The flush's transaction is open, held by the hook.
        entered.recv().await.expect("the flush reached the hook");

        // Meanwhile the engine ingests and answers, live figures included. Requests come
        // before batches, so the batch is taken between two requests: a round trip or two.
        batches.send(batch(2, 3)).await.unwrap();
        let mut live = 0;
        for _ in 0..100 {
            live = records_in_window(&handle.windows(now_ms()).await.unwrap());
            if live == 5 {
                break;
            }
        }
        assert_eq!(live, 5, "both batches in the live windows");
        assert!(!first.is_finished(), "the flush is still being written");

        // A flush asked for now waits for the one in flight, then writes the second batch.
        let second = tokio::spawn({
            let handle = handle.clone();
            async move { handle.flush().await }
        });
        go.send(()).await.unwrap();
        first.await.unwrap().unwrap().unwrap();
        entered
            .recv()
            .await
            .expect("the second flush reached the hook");
        go.send(()).await.unwrap();
        second.await.unwrap().unwrap().unwrap();

        let id: i64 = sqlx::query_scalar("SELECT id FROM metric WHERE name = 'builtin:s:records'")
            .fetch_one(database.pool())
            .await
            .unwrap();
        let stored: i64 = sqlx::query_scalar(
            "SELECT SUM(count) FROM metric_bucket WHERE metric_id = ? AND tier_s = 1",
        )
        .bind(id)
        .fetch_one(database.pool())
        .await
        .unwrap();
        assert_eq!(stored, 5, "both batches stored once");

        drop(go);
        shutdown.cancel();
        tracker.close();
        tracker.wait().await;
    }
}
