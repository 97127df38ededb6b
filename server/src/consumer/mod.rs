//! The Kinesis consumer: discovers the shards of the configured streams, runs one reader per
//! shard (parents before children), polling GetRecords or, with enhanced fan-out, subscribed
//! by SubscribeToShard ([`fanout`]), de-aggregates KPL records, and hands record batches with
//! their checkpoints to a sink over a bounded channel.
//!
//! # Data flow
//! ```text
//! Consumer::start ─► coordinator task (owns the shard map and ConsumerHealth)
//!                      │ ListShards (paged), at start and every discovery interval
//!                      │ plan::plan: which shards start, from where, which wait
//!                      ├─► reader task per shard ── RecordBatch ──► bounded mpsc ──► sink
//!                      │     (GetShardIterator, paced GetRecords, kpl de-aggregation)
//!                      ◄── ReaderEvent (state, figures) ── readers
//!                      └─► watch::Sender<ConsumerHealth>
//! ```
//! The sink (the metrics engine) commits each batch's effect
//! with its [`Checkpoint`] in one transaction. Readers resume strictly after the committed
//! checkpoint, so a batch sent but never committed is read again: at-least-once delivery to the
//! sink, exactly-once effect. A finished shard's checkpoint says so, and it is never re-read.
//!
//! Shutdown: cancel the token. Readers stop polling, hand over any batch already fetched, and
//! end; the coordinator then drops its sender, and the sink ends once it has drained the channel.

pub mod fanout;
pub mod health;
pub mod plan;
pub mod policy;
pub mod reader;
mod settings;

pub use health::{ConsumerHealth, ShardHealth, ShardState};
pub use settings::ConsumerConfig;

use crate::{
    kinesis::{Checkpoint, RecordBatch, ShardId, StreamName, StreamSpec},
    storage::Database,
};
use aws_sdk_kinesis::Client;
use health::{RateWindow, ReaderEvent, ReaderEventKind};
use plan::{Action, ShardEntry, ShardStatus};
use policy::{Backoff, KinesisError};
use reader::{ReaderOutcome, ShardReader};
use std::{collections::BTreeMap, time::Duration};
use tokio::{
    sync::{mpsc, watch},
    task::JoinSet,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Default capacity of the reader → sink channel, in batches.
pub const DEFAULT_BATCH_CHANNEL_CAPACITY: usize = 64;
/// GetRecords' maximum (and default) records per call.
pub const MAX_RECORDS_PER_CALL: i32 = 10_000;

/// A running consumer.
pub struct ConsumerHandle {
    /// Per-shard health, updated as readers report and once a second for rates.
    pub health: watch::Receiver<ConsumerHealth>,
}

/// Entry point; see the module documentation.
pub struct Consumer;

impl Consumer {
    /// Starts the coordinator on `tracker`. Batches go to `batch_tx` (its receiver is the
    /// sink); checkpoints are read from `database`. Cancel `shutdown` to stop: the coordinator
    /// ends after its readers, dropping the last sender so the sink can drain and end.
    pub fn start(
        client: Client,
        config: ConsumerConfig,
        database: Database,
        batch_tx: mpsc::Sender<RecordBatch>,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> ConsumerHandle {
        let health = ConsumerHealth {
            application: config.application.clone(),
            ..Default::default()
        };
        let (health_tx, health_rx) = watch::channel(health.clone());
        let (events_tx, events_rx) = mpsc::channel(1024);
        let streams = config
            .streams
            .iter()
            .map(|spec| StreamState {
                spec: spec.clone(),
                shards: BTreeMap::new(),
                consumer_arn: None,
            })
            .collect();
        let coordinator = Coordinator {
            client,
            config,
            database,
            batch_tx,
            shutdown,
            tracker: tracker.clone(),
            health_tx,
            health,
            events_tx,
            events_rx,
            streams,
            readers: JoinSet::new(),
            rates: RateWindow::default(),
        };
        tracker.spawn(coordinator.run());
        ConsumerHandle { health: health_rx }
    }
}

struct StreamState {
    spec: StreamSpec,
    shards: BTreeMap<ShardId, ShardEntry>,
    /// With enhanced fan-out: the application's registered consumer, once ACTIVE.
    consumer_arn: Option<String>,
}

struct Coordinator {
    client: Client,
    config: ConsumerConfig,
    database: Database,
    batch_tx: mpsc::Sender<RecordBatch>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    health_tx: watch::Sender<ConsumerHealth>,
    health: ConsumerHealth,
    events_tx: mpsc::Sender<ReaderEvent>,
    events_rx: mpsc::Receiver<ReaderEvent>,
    streams: Vec<StreamState>,
    readers: JoinSet<(usize, ShardId, ReaderOutcome)>,
    rates: RateWindow,
}

impl Coordinator {
    async fn run(mut self) {
        let mut discovery = tokio::time::interval(self.config.discovery_interval);
        discovery.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut rate_tick = tokio::time::interval(Duration::from_secs(1));
        let mut last_rate_tick = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                _ = discovery.tick() => {
                    for index in 0..self.streams.len() {
                        self.discover(index).await;
                    }
                    self.publish();
                }
                Some(event) = self.events_rx.recv() => {
                    self.health.apply(&event);
                    self.publish();
                }
                Some(joined) = self.readers.join_next(), if !self.readers.is_empty() => {
                    self.reader_ended(joined).await;
                    self.publish();
                }
                now = rate_tick.tick() => {
                    self.rates.tick(&mut self.health, now - last_rate_tick);
                    last_rate_tick = now;
                    self.publish();
                }
            }
        }
        // Readers see the same token: wait for them (they hand over batches already fetched),
        // still folding their events so the last health snapshot is accurate.
        while !self.readers.is_empty() {
            tokio::select! {
                Some(joined) = self.readers.join_next() => {
                    self.record_outcome(joined);
                }
                Some(event) = self.events_rx.recv() => self.health.apply(&event),
            }
        }
        while let Ok(event) = self.events_rx.try_recv() {
            self.health.apply(&event);
        }
        self.publish();
        tracing::info!(application = %self.config.application, "consumer stopped");
        // Dropping `self` drops the last batch sender: the sink drains and ends.
    }

    fn publish(&self) {
        self.health_tx.send_replace(self.health.clone());
    }

    fn set_state(&mut self, stream: &StreamName, shard: &ShardId, state: ShardState) {
        self.health.apply(&ReaderEvent {
            stream: stream.clone(),
            shard: shard.clone(),
            kind: ReaderEventKind::State { state, error: None },
        });
    }

    /// Lists the stream's shards, merges them into the map, reloads checkpoints of shards not
    /// yet started, and acts on the plan.
    async fn discover(&mut self, index: usize) {
        let spec = self.streams[index].spec.clone();
        let name = spec.name_or_arn.name().clone();
        if spec.efo && self.streams[index].consumer_arn.is_none() {
            let registered = tokio::select! {
                registered = fanout::ensure_consumer(&self.client, &spec.name_or_arn, &self.config.application) => registered,
                _ = self.shutdown.cancelled() => return,
            };
            match registered {
                Ok(fanout::Registration::Active { consumer_arn }) => {
                    tracing::info!(stream = %name, consumer = %consumer_arn, "enhanced fan-out consumer active");
                    self.streams[index].consumer_arn = Some(consumer_arn);
                }
                Ok(fanout::Registration::Pending { status }) => {
                    self.health.stream_errors.insert(
                        name,
                        format!("enhanced fan-out consumer is {status}; reading starts once it is ACTIVE"),
                    );
                    return;
                }
                Err(error) => {
                    tracing::warn!(stream = %name, %error, "registering the enhanced fan-out consumer failed; retrying at the next discovery");
                    self.health.stream_errors.insert(
                        name,
                        format!("registering the enhanced fan-out consumer: {error}"),
                    );
                    return;
                }
            }
        }
        let listed = tokio::select! {
            listed = list_shards(&self.client, &spec) => listed,
            _ = self.shutdown.cancelled() => return,
        };
        let listed = match listed {
            Ok(listed) => listed,
            Err(error) => {
                tracing::warn!(stream = %name, %error, "listing shards failed; retrying at the next discovery");
                self.health.stream_errors.insert(name, error.to_string());
                return;
            }
        };
        self.health.stream_errors.remove(&name);
        let stored = match self.load_checkpoints(&name).await {
            Ok(stored) => stored,
            Err(error) => {
                tracing::error!(stream = %name, %error, "reading checkpoints failed; retrying at the next discovery");
                self.health
                    .stream_errors
                    .insert(name, format!("reading checkpoints: {error}"));
                return;
            }
        };
        let shards = &mut self.streams[index].shards;
        for (id, parents, closed) in listed {
            let entry = shards.entry(id.clone()).or_insert_with(|| ShardEntry {
                parents,
                closed,
                checkpoint: None,
                status: ShardStatus::Pending,
            });
            entry.closed |= closed;
            if entry.status == ShardStatus::Pending {
                entry.checkpoint = stored.get(&id).cloned();
            }
        }
        let known: Vec<(ShardId, Vec<ShardId>)> = shards
            .iter()
            .map(|(id, entry)| (id.clone(), entry.parents.clone()))
            .collect();
        for (shard, parents) in known {
            let key = (name.clone(), shard.clone());
            if !self.health.shards.contains_key(&key) {
                self.set_state(&name, &shard, ShardState::Pending);
            }
            if let Some(health) = self.health.shards.get_mut(&key) {
                health.parents = parents;
            }
        }
        self.act(index);
    }

    async fn load_checkpoints(
        &self,
        stream: &StreamName,
    ) -> Result<std::collections::HashMap<ShardId, Checkpoint>, crate::storage::StorageError> {
        self.database
            .load_checkpoints(&self.config.application, stream)
            .await
    }

    fn act(&mut self, index: usize) {
        let start = self.streams[index].spec.start;
        let actions = plan::plan(&mut self.streams[index].shards, start);
        let stream_ref = self.streams[index].spec.name_or_arn.clone();
        let name = stream_ref.name().clone();
        for action in actions {
            match action {
                Action::Start(shard, iterator_start) => {
                    tracing::info!(stream = %name, %shard, start = ?iterator_start, "starting shard reader");
                    let reader = ShardReader {
                        client: self.client.clone(),
                        stream: stream_ref.clone(),
                        shard: shard.clone(),
                        start: iterator_start,
                        records_per_call: self
                            .config
                            .records_per_call
                            .clamp(1, MAX_RECORDS_PER_CALL),
                        idle_poll_interval: self.config.idle_poll_interval,
                        backoff: Backoff::new(self.config.backoff_base, self.config.backoff_max),
                        batch_tx: self.batch_tx.clone(),
                        events: self.events_tx.clone(),
                        shutdown: self.shutdown.clone(),
                    };
                    self.set_state(&name, &shard, ShardState::Reading);
                    let run: std::pin::Pin<Box<dyn Future<Output = ReaderOutcome> + Send>> =
                        match &self.streams[index].consumer_arn {
                            Some(consumer_arn) => Box::pin(
                                fanout::FanOutReader {
                                    reader,
                                    consumer_arn: consumer_arn.clone(),
                                }
                                .run(),
                            ),
                            None => Box::pin(reader.run()),
                        };
                    let run = self.tracker.track_future(run);
                    self.readers.spawn(async move { (index, shard, run.await) });
                }
                Action::Skip { shard, .. } => self.set_state(&name, &shard, ShardState::Finished),
                Action::Wait(shard, _) => {
                    self.set_state(&name, &shard, ShardState::WaitingForParent)
                }
            }
        }
    }

    fn record_outcome(
        &mut self,
        joined: Result<(usize, ShardId, ReaderOutcome), tokio::task::JoinError>,
    ) -> Option<(usize, bool)> {
        let (index, shard, outcome) = match joined {
            Ok(joined) => joined,
            Err(error) => {
                // Readers do not panic on bad input; if one does, it is a bug: log it loudly.
                tracing::error!(%error, "a shard reader task failed");
                return None;
            }
        };
        let entry = self.streams.get_mut(index)?.shards.get_mut(&shard)?;
        match outcome {
            ReaderOutcome::Finished { children } => {
                entry.status = ShardStatus::Done { read: true };
                let shards = &self.streams[index].shards;
                let unknown_child = children.iter().any(|child| !shards.contains_key(child));
                Some((index, unknown_child))
            }
            ReaderOutcome::Stopped => {
                entry.status = ShardStatus::Pending;
                None
            }
            ReaderOutcome::Failed(_) => {
                entry.status = ShardStatus::Failed;
                None
            }
        }
    }

    async fn reader_ended(
        &mut self,
        joined: Result<(usize, ShardId, ReaderOutcome), tokio::task::JoinError>,
    ) {
        match self.record_outcome(joined) {
            // A new child appeared: list the shards now rather than at the next interval.
            Some((index, true)) => self.discover(index).await,
            Some((index, false)) => self.act(index),
            None => {}
        }
    }
}

/// ListShards, all pages: (shard, parents, closed). Paged with NextToken (which must be sent
/// without the stream name); the SDK's default retry covers throttling of this control call.
pub async fn list_shards(
    client: &Client,
    spec: &StreamSpec,
) -> Result<Vec<(ShardId, Vec<ShardId>, bool)>, KinesisError> {
    let mut shards = Vec::new();
    let mut next_token: Option<String> = None;
    loop {
        let request = client.list_shards();
        let request = match &next_token {
            Some(token) => request.next_token(token),
            None => match spec.name_or_arn.arn() {
                Some(arn) => request.stream_arn(arn),
                None => request.stream_name(spec.name_or_arn.name().as_str()),
            },
        };
        let output = request
            .send()
            .await
            .map_err(|error| KinesisError::from_sdk(&error))?;
        for shard in output.shards() {
            let parents = [shard.parent_shard_id(), shard.adjacent_parent_shard_id()]
                .into_iter()
                .flatten()
                .map(ShardId::new)
                .collect();
            let closed = shard
                .sequence_number_range()
                .and_then(|range| range.ending_sequence_number())
                .is_some();
            shards.push((ShardId::new(shard.shard_id()), parents, closed));
        }
        match output.next_token() {
            Some(token) if !token.is_empty() && !output.shards().is_empty() => {
                next_token = Some(token.to_string())
            }
            _ => return Ok(shards),
        }
    }
}
