//! The thin async shell around the partitioned engine ([`super::partition`]): one task, the
//! engine task, owns the [`Coordinator`], and each partition's [`Engine`] is owned by a thread
//! of its own (`--engine-partitions`, one per core by default). The engine task is fed batches
//! by a bounded mpsc (back-pressure reaches the consumer when the engine falls behind) and
//! routes each to its shard's partition over that partition's bounded channel (the batches
//! waiting in the mpsc at once go as one job per partition, so under load a partition's thread
//! is woken once for many batches rather than once each); it answers
//! [`EngineHandle`] requests, asking the partitions for their part over the same channels (so
//! a request is answered with every batch routed before it), and flushes every
//! `flush_interval`: the deltas since the last flush and — through the [`CheckpointHook`] —
//! the consumer's checkpoints, in ONE transaction.
//!
//! A flush is an epoch: the engine task asks every partition for its pending deltas and
//! positions before one cutoff ([`Engine::take_pending_before`] the current second on a tick,
//! so a flush writes complete seconds; everything for [`EngineHandle::flush`] and at shutdown)
//! and waits for all of them; each partition has then ingested every batch routed to it before,
//! and a shard's position comes only with all of its batches' deltas, from the one partition
//! that has them. The coordinator merges the answers (and adds them to the live windows).
//!
//! The transaction is written by another task, the writer, which owns the [`FlushState`] and
//! the hook: the engine task hands it the merged flush and goes on routing and answering
//! while it is written. At most
//! one flush is in flight; a tick that comes meanwhile starts the next one as soon as it is
//! done. A failed write hands the flush back and the coordinator keeps it
//! ([`Coordinator::restore`]) to be written with the next flush; until one commits, ingest is paused (batches wait in the
//! channel, so the consumer's readers stop) and [`EngineHandle::storage_failure`] says why.
//! [`EngineHandle::flush`] and shutdown wait for the commit.
//!
//! A tracked task applies retention in small batches so it never holds up ingest. The
//! partitions' threads stop when the engine task, after its final flush, drops their channels.

use super::{
    PreviewRow,
    core::{Engine, LiveWindows, MetricWindow},
    counters::MetricCounters,
    fields::FieldStats,
    partition::{Coordinator, PendingIndex, PendingView},
};
use crate::{
    clock::Clock,
    kinesis::{RecordBatch, StreamName},
    metric::{CompiledMetric, Flush, MetricKey},
    storage::{CheckpointHook, Database, FlushWriter, StorageError, metrics::TIERS_S},
};
use bytes::Bytes;
use std::{
    collections::{BTreeMap, HashSet},
    future::Future,
    time::Duration,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use super::settings::ShellConfig;

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
    Windows(i64, oneshot::Sender<LiveWindows>),
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
    storage: watch::Receiver<Option<StorageFailure>>,
}

/// Flushes are failing: ingest is paused (the consumer's readers wait on the full batch
/// channel) until a flush commits again, so nothing piles up in memory while, say, the disk is
/// full.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageFailure {
    /// What is wrong and what happens now, for `/healthz` and the dashboard.
    pub message: String,
    /// When the first of the failing flushes failed.
    pub since_ms: i64,
    /// Flushes failed in a row since `since_ms`.
    pub failed_flushes: u64,
}

impl StorageFailure {
    fn new(error: &StorageError, since_ms: i64, failed_flushes: u64) -> Self {
        let message = if error.is_disk_full() {
            format!(
                "the database's disk is full: ingest is paused and resumes by itself when space \
                 is freed ({error})"
            )
        } else {
            format!(
                "writing to the database fails: ingest is paused and the write is retried every \
                 flush ({error})"
            )
        };
        Self {
            message,
            since_ms,
            failed_flushes,
        }
    }
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

    pub async fn windows(&self, now_ms: i64) -> Result<LiveWindows, EngineGone> {
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

    /// `Some` while flushes fail and ingest is paused.
    pub fn storage_failure(&self) -> Option<StorageFailure> {
        self.storage.borrow().clone()
    }
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
    let definitions = load_definitions(&database).await?;
    let mut coordinator = Coordinator::<P>::new(config.engine.clone(), config.partitions);
    let mut parts = Vec::with_capacity(coordinator.partitions());
    for _ in 0..coordinator.partitions() {
        let mut engine = coordinator.partition_engine();
        engine.set_definitions(definitions.clone());
        let (jobs_tx, jobs) = mpsc::channel(PARTITION_CAPACITY);
        tracker.spawn_blocking(move || partition_loop(engine, jobs));
        parts.push(jobs_tx);
    }
    coordinator.set_definitions(definitions);
    let (batch_tx, batch_rx) = mpsc::channel(config.batch_capacity.max(1));
    let (request_tx, request_rx) = mpsc::channel(16);
    let (ingested_tx, ingested) = watch::channel(0);
    let (storage_tx, storage) = watch::channel(None);
    let handle = EngineHandle {
        requests: request_tx,
        known_streams: config.known_streams.clone(),
        ingested,
        storage,
    };
    // Capacity 1 is enough: at most one flush is in flight, and the writer takes it at once.
    let (writer_tx, writer_rx) = mpsc::channel(1);
    let second_retention = config.retention[0].min(config.retention[1]);
    tracker.spawn(write_loop(
        FlushWriter::new(database.clone(), hook, second_retention),
        writer_rx,
    ));
    let task = EngineTask {
        coordinator,
        parts,
        ingested: ingested_tx,
        storage: storage_tx,
        database: database.clone(),
        writer: writer_tx,
        in_flight: None,
        waiting: Vec::new(),
        waiting_next: Vec::new(),
        flush_due: false,
        clock: config.clock.clone(),
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
        config.clock.clone(),
        shutdown,
    ));
    Ok((handle, batch_tx))
}

/// Most batches routed at once (taken from the batch channel while they wait there).
const ROUTE_AT_ONCE: u64 = 16;

/// Jobs queued per partition (batches and requests): enough to keep it busy while the engine
/// task routes the next batches, few enough (with [`ROUTE_AT_ONCE`] batches a job at most) that
/// a flush's epoch is not held up long.
const PARTITION_CAPACITY: usize = 4;

/// What the engine task asks of a partition. A partition does its jobs in order, so a request
/// is answered with every batch sent before it ingested.
enum PartJob<P> {
    /// Batches of its shards, in the order they came, and the time they were routed.
    Ingest(Vec<RecordBatch<P>>, i64),
    Definitions(Vec<(i64, CompiledMetric)>),
    /// Its pending deltas and positions before the cutoff second (`i64::MAX`: everything).
    Take(i64, oneshot::Sender<Flush<P>>),
    Pending(oneshot::Sender<PendingView>),
    Counters(oneshot::Sender<Vec<(MetricKey, String, MetricCounters)>>),
    /// Its recent records of a stream (fields, preview).
    Sample(StreamName, oneshot::Sender<Vec<(i64, Bytes)>>),
}

/// A partition's thread: owns its engine and does its jobs until the engine task drops the
/// channel (after the final flush).
fn partition_loop<P: Clone>(mut engine: Engine<P>, mut jobs: mpsc::Receiver<PartJob<P>>) {
    while let Some(job) = jobs.blocking_recv() {
        match job {
            PartJob::Ingest(batches, now_ms) => {
                for batch in &batches {
                    engine.ingest(batch, now_ms);
                }
            }
            PartJob::Definitions(definitions) => engine.set_definitions(definitions),
            PartJob::Take(cutoff_s, reply) => {
                let _ = reply.send(engine.take_pending_before(cutoff_s));
            }
            PartJob::Pending(reply) => {
                let _ = reply.send(engine.pending_view());
            }
            PartJob::Counters(reply) => {
                let _ = reply.send(engine.counters());
            }
            PartJob::Sample(stream, reply) => {
                let _ = reply.send(engine.sample(&stream));
            }
        }
    }
}

/// Asks every partition the same question; `None` when one is gone.
async fn ask_parts<P, T>(
    parts: &[mpsc::Sender<PartJob<P>>],
    make: impl Fn(oneshot::Sender<T>) -> PartJob<P>,
) -> Option<Vec<T>> {
    let mut replies = Vec::with_capacity(parts.len());
    for part in parts {
        let (tx, rx) = oneshot::channel();
        part.send(make(tx)).await.ok()?;
        replies.push(rx);
    }
    let mut answers = Vec::with_capacity(replies.len());
    for reply in replies {
        answers.push(reply.await.ok()?);
    }
    Some(answers)
}

/// A partition's thread is gone (it only stops after the engine task, so: it panicked).
fn partition_gone() -> StorageError {
    StorageError::Query(sqlx::Error::Protocol(
        "a partition of the metrics engine stopped; nothing more is stored".into(),
    ))
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

/// Where the engine hands its flushes: storage's [`FlushWriter`] in the server; anything that
/// commits a flush atomically (or fails without a trace) can stand in.
pub trait FlushSink<P>: Send + 'static {
    /// Commits one flush (its rows and positions) in one transaction, or nothing of it.
    fn write(&mut self, flush: &Flush<P>) -> impl Future<Output = Result<(), StorageError>> + Send;
    /// Closes every open roll-up (shutdown, after the final flush).
    fn close_rollups(&mut self) -> impl Future<Output = Result<(), StorageError>> + Send;
}

impl<P, H> FlushSink<P> for FlushWriter<H>
where
    P: Sync,
    H: CheckpointHook<P>,
{
    fn write(&mut self, flush: &Flush<P>) -> impl Future<Output = Result<(), StorageError>> + Send {
        FlushWriter::write(self, flush)
    }

    fn close_rollups(&mut self) -> impl Future<Output = Result<(), StorageError>> + Send {
        FlushWriter::close_rollups(self)
    }
}

/// The writer task: owns the flush sink, writes the flushes it is handed one at a time, and
/// stops when the engine task drops its sender (after the final flush), so it never needs the
/// shutdown token itself.
async fn write_loop<P, S>(mut sink: S, mut jobs: mpsc::Receiver<WriterJob<P>>)
where
    P: Send + Sync + 'static,
    S: FlushSink<P>,
{
    while let Some(job) = jobs.recv().await {
        match job {
            WriterJob::Write(flush, reply) => {
                let result = sink.write(&flush).await;
                let _ = reply.send(result.map_err(|error| (error, flush)));
            }
            WriterJob::CloseRollups(reply) => {
                let _ = reply.send(sink.close_rollups().await);
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
    coordinator: Coordinator<P>,
    /// Each partition's jobs.
    parts: Vec<mpsc::Sender<PartJob<P>>>,
    /// Arrival-relative judgements and flush cutoffs read this clock.
    clock: Clock,
    /// Counts ingested batches; see [`EngineHandle::ingested`].
    ingested: watch::Sender<u64>,
    /// Set while flushes fail: batches wait in the channel until one commits.
    storage: watch::Sender<Option<StorageFailure>>,
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
                }, if self.in_flight.is_some() => self.finish(outcome).await,
                _ = tick.tick() => self.start_flush(false).await,
                Some(request) = requests.recv() => self.answer(request, &mut batches).await,
                Some(batch) = batches.recv(), if self.storage.borrow().is_none() => {
                    self.ingest(batch, &mut batches).await
                }
            }
        }
        // Shutdown: take what the consumer already queued, let the flush in flight (and any it
        // starts) end, then one last flush and the roll-ups.
        batches.close();
        while let Ok(batch) = batches.try_recv() {
            self.ingest(batch, &mut batches).await;
        }
        while let Some(in_flight) = self.in_flight.as_mut() {
            let outcome = in_flight.await;
            self.finish(outcome).await;
        }
        self.start_flush(true).await;
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

    /// Routes `first` and the batches already waiting behind it (up to [`ROUTE_AT_ONCE`]) to
    /// their shards' partitions, one job per partition in the order they came (waiting while a
    /// partition's queue is full).
    async fn ingest(
        &mut self,
        first: RecordBatch<P>,
        batches: &mut mpsc::Receiver<RecordBatch<P>>,
    ) {
        let mut routed: Vec<Vec<RecordBatch<P>>> =
            (0..self.parts.len()).map(|_| Vec::new()).collect();
        let mut count = 0u64;
        let mut next = Some(first);
        while let Some(batch) = next {
            routed[self.coordinator.route(&batch)].push(batch);
            count += 1;
            next = if count < ROUTE_AT_ONCE {
                batches.try_recv().ok()
            } else {
                None
            };
        }
        let now_ms = self.clock.now_ms();
        for (partition, group) in routed.into_iter().enumerate() {
            if group.is_empty() {
                continue;
            }
            if self.parts[partition]
                .send(PartJob::Ingest(group, now_ms))
                .await
                .is_err()
            {
                tracing::error!(
                    partition,
                    "a partition of the metrics engine is gone; its batches are dropped"
                );
            }
        }
        self.ingested.send_modify(|n| *n = n.wrapping_add(count));
    }

    /// Gathers the partitions' recent records of `stream` into the coordinator's sample;
    /// `false` when a partition is gone.
    async fn refresh_samples(&mut self, stream: StreamName) -> bool {
        let Some(samples) = ask_parts(&self.parts, |tx| PartJob::Sample(stream.clone(), tx)).await
        else {
            return false;
        };
        self.coordinator.set_samples(&stream, samples);
        true
    }

    /// The flush epoch: every partition's deltas and positions before `cutoff_s`, merged by the
    /// coordinator (and added to the live windows).
    async fn take(&mut self, cutoff_s: i64) -> Result<Flush<P>, StorageError> {
        let mut replies = Vec::with_capacity(self.parts.len());
        let mut gone = false;
        for part in &self.parts {
            let (tx, rx) = oneshot::channel();
            gone |= part.send(PartJob::Take(cutoff_s, tx)).await.is_err();
            replies.push(rx);
        }
        let mut flushes = Vec::with_capacity(replies.len());
        for reply in replies {
            match reply.await {
                Ok(flush) => flushes.push(flush),
                Err(_) => gone = true,
            }
        }
        let flush = self.coordinator.finish_flush(flushes);
        if gone {
            // What the others handed over stays for a later flush; the positions of the gone
            // partition's shards are never stored, so the consumer re-reads them after a restart.
            self.coordinator.restore(flush);
            return Err(partition_gone());
        }
        Ok(flush)
    }

    /// Takes a flush and hands it to the writer, unless one is in flight (then the next starts
    /// when it ends). An empty flush answers the waiting requests at once.
    ///
    /// A flush takes the seconds before the current one (complete seconds), or `everything`
    /// (shutdown), as it does whenever `FlushNow` requests wait: they are answered once all
    /// records sent before them are stored.
    async fn start_flush(&mut self, everything: bool) {
        if self.in_flight.is_some() {
            self.flush_due = true;
            return;
        }
        self.flush_due = false;
        let cutoff_s = if everything || !self.waiting.is_empty() {
            i64::MAX
        } else {
            self.clock.now_ms().div_euclid(1000)
        };
        let flush = match self.take(cutoff_s).await {
            Ok(flush) => flush,
            Err(error) => {
                tracing::error!(%error, "flush not taken");
                answer_waiters(&mut self.waiting, Err(error));
                return;
            }
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
                    self.coordinator.restore(flush);
                }
                tracing::error!("the flush writer is gone; nothing more is stored");
                answer_waiters(&mut self.waiting, Err(writer_gone()));
            }
        }
    }

    /// The flush in flight ended: a failed one goes back into the engine (the next flush
    /// writes it again), the requests waiting for it are answered, and the next flush starts
    /// if one is due or asked for.
    async fn finish(&mut self, outcome: Result<Written<P>, oneshot::error::RecvError>) {
        self.in_flight = None;
        let result = match outcome {
            Ok(Ok(())) => {
                if self.storage.borrow().is_some() {
                    self.storage.send_replace(None);
                    tracing::info!("a flush committed again; ingest resumes");
                }
                Ok(())
            }
            Ok(Err((error, flush))) => {
                self.coordinator.restore(flush);
                let now_ms = self.clock.now_ms();
                self.storage.send_modify(|state| {
                    let (since_ms, failed_before) = state.as_ref().map_or((now_ms, 0), |before| {
                        (before.since_ms, before.failed_flushes)
                    });
                    *state = Some(StorageFailure::new(&error, since_ms, failed_before + 1));
                });
                tracing::error!(%error, "flush failed; ingest is paused until a retry commits");
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
            self.start_flush(false).await;
        }
    }

    async fn answer(&mut self, request: Request, batches: &mut mpsc::Receiver<RecordBatch<P>>) {
        match request {
            Request::ReloadDefinitions(reply) => {
                let result = match load_definitions(&self.database).await {
                    Ok(definitions) => {
                        let n = definitions.len();
                        for part in &self.parts {
                            let _ = part.send(PartJob::Definitions(definitions.clone())).await;
                        }
                        self.coordinator.set_definitions(definitions);
                        Ok(n)
                    }
                    Err(error) => Err(error),
                };
                let _ = reply.send(result);
            }
            Request::Fields(stream, reply) => {
                if self.refresh_samples(StreamName::new(stream.as_str())).await {
                    let _ = reply.send(self.coordinator.view().discover_fields(&stream));
                }
            }
            Request::Preview(metric, limit, reply) => {
                let stream = StreamName::new(metric.definition.stream.as_str());
                if self.refresh_samples(stream).await {
                    let _ = reply.send(self.coordinator.view().preview(&metric, limit));
                }
            }
            Request::Streams(reply) => {
                let _ = reply.send(self.coordinator.view().streams().cloned().collect());
            }
            Request::Windows(now, reply) => {
                // A partition gone drops the reply: the caller sees the engine gone.
                if let Some(views) = ask_parts(&self.parts, PartJob::Pending).await {
                    let _ = reply.send(self.coordinator.windows(now, views));
                }
            }
            Request::Window(query, reply) => {
                if let Some(views) = ask_parts(&self.parts, PartJob::Pending).await {
                    let pending = PendingIndex::of(views);
                    let view = self.coordinator.view();
                    let answers = query
                        .wanted
                        .iter()
                        .map(|(name, window_s)| {
                            view.window_with(query.now_ms, name, *window_s, &pending)
                        })
                        .collect();
                    let _ = reply.send(answers);
                }
            }
            Request::Counters(reply) => {
                if let Some(counters) = ask_parts(&self.parts, PartJob::Counters).await {
                    let _ = reply.send(self.coordinator.counters(counters));
                }
            }
            Request::FlushNow(reply) => {
                // Everything sent before the request is included: in the flush started now,
                // or in the one after the flush in flight.
                while let Ok(batch) = batches.try_recv() {
                    self.ingest(batch, batches).await;
                }
                if self.in_flight.is_some() {
                    self.waiting_next.push(reply);
                } else {
                    self.waiting.push(reply);
                    self.start_flush(false).await;
                }
            }
        }
    }
}

async fn retention_loop(
    database: Database,
    retention: [Duration; 3],
    interval: Duration,
    clock: Clock,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now_s = clock.now_ms() / 1000;
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
    use crate::clock::now_ms;
    use crate::{
        kinesis::{ConsumedRecord, SequenceNumber, ShardId},
        metric::Builtin,
    };
    use bytes::Bytes;
    use std::pin::Pin;

    /// A checkpoint hook that holds the flush transaction open: it says when it is entered and
    /// waits for a go (or for the sender to be dropped).
    struct Gate {
        entered: mpsc::Sender<()>,
        go: mpsc::Receiver<()>,
    }

    impl CheckpointHook<u32> for Gate {
        fn write<'a>(
            &'a mut self,
            _tx: crate::storage::Conn<'a>,
            _positions: &'a [(StreamName, ShardId, u32)],
        ) -> Pin<Box<dyn Future<Output = Result<(), StorageError>> + Send + 'a>> {
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

    fn records_in_window(windows: &LiveWindows) -> u64 {
        windows
            .series
            .iter()
            .filter(|w| {
                w.metric
                    == MetricKey::Builtin {
                        stream: "s".into(),
                        kind: Builtin::Records,
                    }
            })
            .map(|w| w.windows[0].summary.count)
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
