//! The live record tail: the newest records of a stream, filtered on the server, for the
//! Records page (over `/ws`, [`TailService::start`]) and as a JSON lines download
//! ([`TailService::download`]).
//!
//! A tail reads with its **own** shard readers ([`ShardReader`], the consumer's reader: paced
//! GetRecords, back-off, KPL de-aggregation) and its own iterators, into its own bounded
//! channel. Nothing it reads reaches the engine and no checkpoint is written for it, so the
//! consumer's positions never move because someone watches.
//!
//! # Data flow
//! ```text
//! TailService::start(query) ─► tail task (one per viewer, tracked, stops with the viewer)
//!   ListShards → one ShardReader per shard ── RecordBatch ──► bounded channel (2 batches)
//!   every record: Matcher (search, then filter) ─► Reservoir (a uniform sample, bounded)
//!   every 250 ms: the sample as TailRecords + rates ──► bounded channel (4) ──► /ws session
//! ```
//! Bounded everywhere: the readers block when the tail is busy (at most [`BATCH_CHANNEL`]
//! batches wait), the sample holds at most [`MAX_SHOWN_PER_S`] / 4 records, and an update the
//! session has no room for is dropped (its counts still reach the next one). Dropping the
//! [`Tail`] (the page left, the socket closed, the query changed) cancels its readers. At most
//! [`MAX_TAILS`] tails read at once.
//!
//! A caught-up tail reader polls each shard once a second ([`IDLE_POLL_INTERVAL`]); one reading
//! a backlog (TRIM_HORIZON, a timestamp) polls as fast as the 5 calls per second per shard
//! allow, which on AWS shares the shard's read budget with the consumer.

mod matcher;
mod sample;

pub use matcher::{Matcher, view};
pub use sample::{Rates, Reservoir};

use crate::{
    consumer::{
        health::{ReaderEvent, ReaderEventKind, ShardState},
        list_shards,
        plan::IteratorStart,
        policy::Backoff,
        reader::{ReaderOutcome, ShardReader},
    },
    kinesis::{
        ConsumedRecord, RecordBatch, SequenceNumber, ShardId, StartPosition, StreamRef, StreamSpec,
    },
};
use aws_sdk_kinesis::Client;
use bytes::Bytes;
use contract::{
    api::ApiErrorDetail,
    tail::{MAX_BODY_BYTES, TailQuery, TailShard, TailStart, TailUpdate},
};
use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};
use tokio::{sync::mpsc, task::JoinSet};
use tokio_util::{
    sync::{CancellationToken, DropGuard},
    task::TaskTracker,
};

/// How often a live tail sends what it matched.
pub const UPDATE_INTERVAL: Duration = Duration::from_millis(250);
/// Most records a live tail sends per second; when more match, a uniform sample of them.
pub const MAX_SHOWN_PER_S: usize = 40;
/// Most tails (live viewers and downloads together) reading at once.
pub const MAX_TAILS: usize = 8;
/// Most records a download writes.
pub const MAX_DOWNLOAD_RECORDS: usize = 100_000;
/// A download ends after this long even if its shards are still behind.
pub const DOWNLOAD_DEADLINE: Duration = Duration::from_secs(60);
/// How often a caught-up tail reader polls its shard.
pub const IDLE_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Batches waiting between a tail's readers and the tail.
const BATCH_CHANNEL: usize = 2;
/// Updates waiting for the session.
const UPDATE_CHANNEL: usize = 4;
/// GetRecords limit of a tail reader.
const RECORDS_PER_CALL: i32 = 10_000;
/// Rate figures cover this many update intervals (4 s).
const RATE_INTERVALS: usize = 16;

/// Starts tails of the streams this server reads. Cheap to clone.
#[derive(Clone)]
pub struct TailService {
    client: Client,
    streams: Arc<Vec<StreamRef>>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    active: Arc<AtomicUsize>,
}

/// A running live tail: its updates, until it is dropped (which stops its readers).
pub struct Tail {
    pub updates: mpsc::Receiver<TailUpdate>,
    _stop: DropGuard,
}

impl Tail {
    /// A tail that never read: its only update carries why.
    pub fn refused(query: TailQuery, error: ApiErrorDetail) -> Self {
        let (updates_tx, updates) = mpsc::channel(1);
        let _ = updates_tx.try_send(TailUpdate {
            query,
            server_time_ms: crate::clock::now_ms(),
            error: Some(error),
            ..TailUpdate::default()
        });
        Tail {
            updates,
            _stop: CancellationToken::new().drop_guard(),
        }
    }
}

/// One of the [`MAX_TAILS`] places; given back when dropped.
struct Place(Arc<AtomicUsize>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn refused(field: Option<&str>, message: String) -> ApiErrorDetail {
    ApiErrorDetail {
        field: field.map(str::to_string),
        message,
    }
}

/// A checked query: the stream, the selection and the shards' start.
struct Plan {
    stream: StreamRef,
    matcher: Matcher,
    start: IteratorStart,
    place: Place,
}

impl TailService {
    /// Tails may read `streams` (the streams the consumer reads) with `client`.
    pub fn new(
        client: Client,
        streams: Vec<StreamRef>,
        tracker: TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            client,
            streams: Arc::new(streams),
            tracker,
            shutdown,
            active: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Tails reading now.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// Checks a query and takes a place; the error names the field at fault.
    fn plan(&self, query: &TailQuery) -> Result<Plan, ApiErrorDetail> {
        let stream = self
            .streams
            .iter()
            .find(|s| s.name().as_str() == query.stream)
            .cloned()
            .ok_or_else(|| {
                let names: Vec<&str> = self.streams.iter().map(|s| s.name().as_str()).collect();
                refused(
                    Some("stream"),
                    format!(
                        "{:?} is not a stream this server reads (it reads: {})",
                        query.stream,
                        if names.is_empty() {
                            "none".to_string()
                        } else {
                            names.join(", ")
                        }
                    ),
                )
            })?;
        let start = match &query.start {
            TailStart::Latest => IteratorStart::Latest,
            TailStart::TrimHorizon => IteratorStart::TrimHorizon,
            TailStart::Timestamp { epoch_ms } => IteratorStart::AtTimestamp {
                epoch_millis: *epoch_ms,
            },
            TailStart::Sequence { sequence_number } => {
                if query.shard.is_none() {
                    return Err(refused(
                        Some("shard"),
                        "a sequence number belongs to one shard: choose the shard".into(),
                    ));
                }
                IteratorStart::At(SequenceNumber::parse(sequence_number.trim()).ok_or_else(
                    || {
                        refused(
                            Some("sequence_number"),
                            format!("{sequence_number:?} is not a sequence number (digits only)"),
                        )
                    },
                )?)
            }
        };
        let matcher = Matcher::new(query)?;
        if self.active.fetch_add(1, Ordering::Relaxed) >= MAX_TAILS {
            self.active.fetch_sub(1, Ordering::Relaxed);
            return Err(refused(
                None,
                format!("{MAX_TAILS} tails are reading already; close one and try again"),
            ));
        }
        Ok(Plan {
            stream,
            matcher,
            start,
            place: Place(self.active.clone()),
        })
    }

    /// Starts a live tail. A refused query gives a tail whose only update carries the error.
    pub fn start(&self, query: TailQuery) -> Tail {
        let plan = match self.plan(&query) {
            Ok(plan) => plan,
            Err(error) => return Tail::refused(query, error),
        };
        let (updates_tx, updates) = mpsc::channel(UPDATE_CHANNEL);
        let stop = self.shutdown.child_token();
        let client = self.client.clone();
        let reader_stop = stop.clone();
        self.tracker.spawn(async move {
            let reading = Reading::open(client, &plan, &query, reader_stop).await;
            let Plan { matcher, place, .. } = plan;
            live(reading, matcher, query, updates_tx).await;
            drop(place);
        });
        Tail {
            updates,
            _stop: stop.drop_guard(),
        }
    }

    /// Reads the records matching `query` from its start until every shard has caught up (or
    /// `limit` records, or [`DOWNLOAD_DEADLINE`]), each as one JSON line ([`view`] of the whole
    /// record). The shards are listed before this returns, so a bad stream or shard is refused
    /// here; dropping the receiver ends the download.
    pub async fn download(
        &self,
        query: TailQuery,
        limit: usize,
    ) -> Result<mpsc::Receiver<Bytes>, ApiErrorDetail> {
        let plan = self.plan(&query)?;
        let stop = self.shutdown.child_token();
        let reading = Reading::open(self.client.clone(), &plan, &query, stop.clone()).await?;
        let (lines_tx, lines) = mpsc::channel(16);
        self.tracker.spawn(async move {
            // Its readers stop with it.
            let _stop = stop.drop_guard();
            write_lines(reading, &plan.matcher, limit, lines_tx).await;
            drop(plan);
        });
        Ok(lines)
    }
}

/// What one shard of a tail has done.
#[derive(Debug, Default)]
struct ShardProgress {
    millis_behind_latest: Option<i64>,
    /// A poll came back empty with nothing behind.
    caught_up: bool,
    finished: bool,
    failed: Option<String>,
}

/// A tail's shard readers and what they report.
struct Reading {
    client: Client,
    stream: StreamRef,
    stop: CancellationToken,
    readers: JoinSet<(ShardId, ReaderOutcome)>,
    batches_tx: mpsc::Sender<RecordBatch>,
    batches: mpsc::Receiver<RecordBatch>,
    events_tx: mpsc::Sender<ReaderEvent>,
    events: mpsc::Receiver<ReaderEvent>,
    shards: BTreeMap<ShardId, ShardProgress>,
}

/// What [`Reading::next`] saw.
enum Step {
    Batch(RecordBatch),
    /// A reader's progress changed.
    Progress,
    /// Stopped (the viewer left, or shutdown).
    Stopped,
}

impl Reading {
    /// Lists the stream's shards and starts a reader on each one the query reads: the one it
    /// names, else the open ones for `latest` and every one otherwise (closed shards are read to
    /// their end; children found then are read from their start).
    async fn open(
        client: Client,
        plan: &Plan,
        query: &TailQuery,
        stop: CancellationToken,
    ) -> Result<Self, ApiErrorDetail> {
        let spec = StreamSpec {
            name_or_arn: plan.stream.clone(),
            start: StartPosition::Latest,
            efo: false,
        };
        let listed = list_shards(&client, &spec)
            .await
            .map_err(|error| refused(Some("stream"), format!("cannot list its shards: {error}")))?;
        let wanted: Vec<ShardId> = match &query.shard {
            Some(shard) => {
                if !listed.iter().any(|(id, ..)| id.as_str() == shard) {
                    return Err(refused(
                        Some("shard"),
                        format!("{shard:?} is not a shard of {}", query.stream),
                    ));
                }
                vec![ShardId::new(shard.as_str())]
            }
            None => listed
                .into_iter()
                .filter(|(_, _, closed)| !closed || plan.start != IteratorStart::Latest)
                .map(|(id, ..)| id)
                .collect(),
        };
        let (batches_tx, batches) = mpsc::channel(BATCH_CHANNEL);
        let (events_tx, events) = mpsc::channel(64);
        let mut reading = Reading {
            client,
            stream: plan.stream.clone(),
            stop,
            readers: JoinSet::new(),
            batches_tx,
            batches,
            events_tx,
            events,
            shards: BTreeMap::new(),
        };
        for shard in wanted {
            reading.spawn(shard, plan.start.clone());
        }
        Ok(reading)
    }

    fn spawn(&mut self, shard: ShardId, start: IteratorStart) {
        if self.shards.contains_key(&shard) {
            return;
        }
        self.shards.insert(shard.clone(), ShardProgress::default());
        let reader = ShardReader {
            client: self.client.clone(),
            stream: self.stream.clone(),
            shard: shard.clone(),
            start,
            records_per_call: RECORDS_PER_CALL,
            idle_poll_interval: IDLE_POLL_INTERVAL,
            backoff: Backoff::new(Duration::from_millis(200), Duration::from_secs(5)),
            batch_tx: self.batches_tx.clone(),
            events: self.events_tx.clone(),
            shutdown: self.stop.clone(),
        };
        self.readers
            .spawn(async move { (shard, reader.run().await) });
    }

    /// The next batch or change of progress.
    async fn next(&mut self) -> Step {
        tokio::select! {
            _ = self.stop.cancelled() => Step::Stopped,
            Some(batch) = self.batches.recv() => Step::Batch(batch),
            Some(event) = self.events.recv() => {
                if let Some(progress) = self.shards.get_mut(&event.shard) {
                    match event.kind {
                        ReaderEventKind::Polled { records, millis_behind_latest, .. } => {
                            progress.millis_behind_latest = millis_behind_latest;
                            progress.caught_up = records == 0 && millis_behind_latest == Some(0);
                        }
                        ReaderEventKind::State { state: ShardState::Finished, .. } => {
                            progress.finished = true;
                        }
                        _ => {}
                    }
                }
                Step::Progress
            }
            Some(joined) = self.readers.join_next() => {
                if let Ok((shard, outcome)) = joined {
                    match outcome {
                        ReaderOutcome::Finished { children } => {
                            if let Some(progress) = self.shards.get_mut(&shard) {
                                progress.finished = true;
                            }
                            for child in children {
                                self.spawn(child, IteratorStart::TrimHorizon);
                            }
                        }
                        ReaderOutcome::Failed(error) => {
                            if let Some(progress) = self.shards.get_mut(&shard) {
                                progress.failed = Some(error.to_string());
                            }
                        }
                        ReaderOutcome::Stopped => {}
                    }
                }
                Step::Progress
            }
        }
    }

    /// Every shard has caught up, finished or failed.
    fn caught_up(&self) -> bool {
        self.shards
            .values()
            .all(|p| p.caught_up || p.finished || p.failed.is_some())
    }

    /// Why nothing can be read any more: every shard failed.
    fn failure(&self) -> Option<String> {
        let mut failures = self.shards.values().map(|p| p.failed.as_ref());
        match failures.next() {
            Some(Some(first)) if failures.all(|f| f.is_some()) => Some(first.clone()),
            _ => None,
        }
    }

    fn shard_figures(&self) -> Vec<TailShard> {
        self.shards
            .iter()
            .map(|(shard, p)| TailShard {
                shard: shard.as_str().to_string(),
                millis_behind_latest: p.millis_behind_latest,
                finished: p.finished,
            })
            .collect()
    }
}

/// A live tail's loop: match every record read, keep a bounded sample, send it every
/// [`UPDATE_INTERVAL`] until the viewer leaves.
async fn live(
    reading: Result<Reading, ApiErrorDetail>,
    matcher: Matcher,
    query: TailQuery,
    updates: mpsc::Sender<TailUpdate>,
) {
    let mut reading = match reading {
        Ok(reading) => reading,
        Err(error) => {
            let _ = updates
                .send(TailUpdate {
                    query,
                    server_time_ms: crate::clock::now_ms(),
                    error: Some(error),
                    ..TailUpdate::default()
                })
                .await;
            return;
        }
    };
    let per_update = (MAX_SHOWN_PER_S as f64 * UPDATE_INTERVAL.as_secs_f64()).ceil() as usize;
    let mut sample: Reservoir<(ShardId, ConsumedRecord)> = Reservoir::new(per_update);
    let mut rates = Rates::new(UPDATE_INTERVAL.as_secs_f64(), RATE_INTERVALS);
    let (mut read, mut matched, mut shown) = (0u64, 0u64, 0u64);
    let mut interval_read = 0u64;
    let mut tick = tokio::time::interval(UPDATE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let (records, interval_matched) = sample.take();
                let records: Vec<_> = records
                    .iter()
                    .map(|(shard, record)| view(shard, record, MAX_BODY_BYTES))
                    .collect();
                let count = records.len() as u64;
                rates.push(interval_read, interval_matched, count);
                interval_read = 0;
                let [read_per_s, matched_per_s, shown_per_s] = rates.per_s();
                let failure = reading.failure();
                let update = TailUpdate {
                    query: query.clone(),
                    server_time_ms: crate::clock::now_ms(),
                    records,
                    read_per_s,
                    matched_per_s,
                    shown_per_s,
                    read,
                    matched,
                    shown: shown + count,
                    shards: reading.shard_figures(),
                    error: failure.as_ref().map(|f| refused(None, format!("cannot read the stream: {f}"))),
                };
                match updates.try_send(update) {
                    Ok(()) => shown += count,
                    // The session is behind: these records are not shown; the counts carry on.
                    Err(mpsc::error::TrySendError::Full(_)) => {}
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
                }
                if failure.is_some() {
                    return;
                }
            }
            step = reading.next() => match step {
                Step::Stopped => return,
                Step::Progress => {}
                Step::Batch(batch) => {
                    let n = batch.records.len() as u64;
                    read += n;
                    interval_read += n;
                    for record in batch.records {
                        if matcher.matches(&record) {
                            matched += 1;
                            sample.offer((batch.shard.clone(), record), rand::random());
                        }
                    }
                }
            },
        }
    }
}

/// A download's loop: every matching record as a JSON line until caught up, the limit, the
/// deadline, or the client goes.
async fn write_lines(
    mut reading: Reading,
    matcher: &Matcher,
    limit: usize,
    lines: mpsc::Sender<Bytes>,
) {
    if reading.shards.is_empty() {
        return;
    }
    let deadline = tokio::time::Instant::now() + DOWNLOAD_DEADLINE;
    let mut written = 0usize;
    let mut write = async |shard: &ShardId, record: &ConsumedRecord| -> bool {
        if written >= limit || !matcher.matches(record) {
            return written < limit;
        }
        let mut line = serde_json::to_vec(&view(shard, record, usize::MAX))
            .expect("a record view always serialises");
        line.push(b'\n');
        written += 1;
        lines.send(Bytes::from(line)).await.is_ok() && written < limit
    };
    loop {
        let step = tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return,
            step = reading.next() => step,
        };
        match step {
            Step::Stopped => return,
            Step::Batch(batch) => {
                for record in &batch.records {
                    if !write(&batch.shard, record).await {
                        return;
                    }
                }
            }
            Step::Progress if reading.caught_up() => {
                // Batches sent before the empty polls that caught up are in the channel.
                while let Ok(batch) = reading.batches.try_recv() {
                    for record in &batch.records {
                        if !write(&batch.shard, record).await {
                            return;
                        }
                    }
                }
                return;
            }
            Step::Progress => {}
        }
    }
}
