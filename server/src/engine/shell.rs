//! The thin async shell around [`Engine`]: one task owns all engine state. It is fed batches by
//! a bounded mpsc (back-pressure reaches the consumer when the engine falls behind), answers
//! [`EngineHandle`] requests, and flushes every `flush_interval`: the deltas since the last
//! flush and — through the [`CheckpointHook`] — the consumer's checkpoints, in ONE transaction.
//! A second tracked task applies retention in small batches so it never holds up ingest.

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
        metrics::{BucketWrite, TIERS_S, builtin_metric_id, write_buckets},
        rollup,
    },
};
use sqlx::SqliteConnection;
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    future::Future,
    pin::Pin,
    time::Duration,
};
use tokio::sync::{mpsc, oneshot};
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
    let handle = EngineHandle {
        requests: request_tx,
        known_streams: config.known_streams.clone(),
    };
    let task = EngineTask {
        engine,
        database: database.clone(),
        hook,
        flush_state: FlushState::with_retention(config.retention[0].min(config.retention[1])),
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

struct EngineTask<P, H> {
    engine: Engine<P>,
    database: Database,
    hook: H,
    flush_state: FlushState,
}

impl<P, H> EngineTask<P, H>
where
    P: Clone + Send + Sync + 'static,
    H: CheckpointHook<P>,
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
                // Order matters under load: the flush tick and requests come before batches so
                // a busy channel can never starve the flush.
                biased;
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {
                    if let Err(error) = self.flush().await {
                        tracing::error!(%error, "flush failed; it will be retried");
                    }
                }
                Some(request) = requests.recv() => self.answer(request, &mut batches).await,
                Some(batch) = batches.recv() => self.engine.ingest(&batch, now_ms()),
            }
        }
        // Shutdown: take what the consumer already queued, then one last flush.
        batches.close();
        while let Ok(batch) = batches.try_recv() {
            self.engine.ingest(&batch, now_ms());
        }
        if let Err(error) = self.flush().await {
            tracing::error!(%error, "final flush failed; the consumer will re-read from its last checkpoint");
        } else if let Err(error) = close_rollups(&self.database, &mut self.flush_state).await {
            tracing::warn!(%error, "open roll-ups stay marked; they are rebuilt after the restart");
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
                // Everything sent before the request is included.
                while let Ok(batch) = batches.try_recv() {
                    self.engine.ingest(&batch, now_ms());
                }
                let _ = reply.send(self.flush().await);
            }
        }
    }

    async fn flush(&mut self) -> Result<(), StorageError> {
        let flush = self.engine.take_flush();
        if flush.is_empty() {
            return Ok(());
        }
        match write_flush(
            &self.database,
            &flush,
            &mut self.hook,
            &mut self.flush_state,
        )
        .await
        {
            Ok(()) => Ok(()),
            Err(error) => {
                self.engine.restore(flush);
                Err(error)
            }
        }
    }
}

/// What the flush keeps between transactions: built-in metric ids, and the open roll-ups
/// (marked 1-minute and 1-hour rows, see [`crate::storage::rollup`]). A fresh state (at start,
/// after a crash, after a failed transaction) reloads the marks from the database, which is
/// always the truth: nothing here has to survive a crash.
#[derive(Debug, Clone, Default)]
pub struct FlushState {
    builtin_ids: HashMap<(StreamName, Builtin), i64>,
    /// Marked rows, per (tier, period start); `None` until loaded from the database.
    marks: Option<Marks>,
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

/// Marked roll-up rows: (tier, period start) -> (metric id, series).
type Marks = BTreeMap<(i64, i64), HashSet<(i64, String)>>;

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
        self.marks
            .as_ref()
            .map_or(0, |m| m.values().map(HashSet::len).sum())
    }
}

/// Writes one flush in one transaction: the 1-second rows of the bucket deltas, the marks of
/// the 1-minute and 1-hour rows they touch, the rebuilt roll-ups of periods that closed, then
/// the checkpoint hook. When the transaction fails, `state` is cleared (reloaded from the
/// database by the next flush).
pub async fn write_flush<P, H: CheckpointHook<P>>(
    database: &Database,
    flush: &Flush<P>,
    hook: &mut H,
    state: &mut FlushState,
) -> Result<(), StorageError> {
    let now = now_ms();
    let mut tx = database.begin_write().await?;
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
                series: serde_json::to_string(&delta.labels).expect("labels always serialise"),
                second: delta.second,
                stats: delta.stats,
                counts: &delta.counts,
                hist,
            });
        }
        write_rollups(&mut tx, writes, state, now).await?;
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
async fn write_rollups(
    tx: &mut SqliteConnection,
    writes: Vec<BucketWrite<'_>>,
    state: &mut FlushState,
    now_ms: i64,
) -> Result<(), StorageError> {
    if state.marks.is_none() {
        let mut marks = Marks::new();
        for (metric_id, tier, series, start) in rollup::all_marks(tx).await? {
            marks
                .entry((tier, start))
                .or_default()
                .insert((metric_id, series));
        }
        state.marks = Some(marks);
        state.stored_upto_s = rollup::newest_second(tx).await?.unwrap_or(i64::MIN);
    }
    let marks = state.marks.as_mut().expect("loaded above");
    let oldest_rolled_s = state.second_retention.map_or(i64::MIN, |keep| {
        now_ms / 1000 - keep.saturating_sub(ROLLUP_MARGIN).as_secs() as i64
    });
    let (rolled, direct): (Vec<BucketWrite<'_>>, Vec<BucketWrite<'_>>) = writes
        .into_iter()
        .partition(|w| w.second >= oldest_rolled_s);
    if !direct.is_empty() {
        for write in &direct {
            state
                .seconds
                .remove(&(write.metric_id, write.series.clone(), write.second));
        }
        write_buckets(tx, &direct, &TIERS_S).await?;
    }
    rollup::write_seconds(tx, &rolled, &mut state.seconds, state.stored_upto_s).await?;
    state.stored_upto_s = rolled
        .iter()
        .chain(&direct)
        .map(|w| w.second)
        .fold(state.stored_upto_s, i64::max);
    let mut new_marks = Vec::new();
    for write in &rolled {
        state.newest_s = state.newest_s.max(write.second);
        for tier in [60, 3600] {
            let start = write.second.div_euclid(tier) * tier;
            let set = marks.entry((tier, start)).or_default();
            if !set.contains(&(write.metric_id, write.series.clone())) {
                set.insert((write.metric_id, write.series.clone()));
                new_marks.push((write.metric_id, tier, write.series.clone(), start));
            }
        }
    }
    rollup::mark(tx, &new_marks).await?;
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
                    .flat_map(|(_, set)| set.iter().map(|(m, s)| (*m, s.as_str())))
                    .collect()
            } else {
                HashSet::new()
            };
            let Some(set) = marks.get(&(tier, start)) else {
                continue;
            };
            let closed: Vec<(i64, String)> = set
                .iter()
                .filter(|(m, s)| !open_minutes.contains(&(*m, s.as_str())))
                .cloned()
                .collect();
            let set = marks.get_mut(&(tier, start)).expect("present");
            for key in &closed {
                set.remove(key);
            }
            if set.is_empty() {
                marks.remove(&(tier, start));
            }
            keys.extend(closed.into_iter().map(|(m, s)| (m, tier, s, start)));
        }
        rollup::rebuild(tx, &keys).await?;
        rollup::unmark(tx, &keys).await?;
    }
    Ok(())
}

/// Rebuilds and unmarks every open roll-up (a clean shutdown leaves none), in one transaction.
pub async fn close_rollups(
    database: &Database,
    state: &mut FlushState,
) -> Result<(), StorageError> {
    let mut tx = database.begin_write().await?;
    let marks = rollup::all_marks(&mut tx).await?;
    for tier in [60, 3600] {
        let keys: Vec<_> = marks.iter().filter(|k| k.1 == tier).cloned().collect();
        rollup::rebuild(&mut tx, &keys).await?;
        rollup::unmark(&mut tx, &keys).await?;
    }
    tx.commit().await?;
    state.marks = Some(BTreeMap::new());
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
