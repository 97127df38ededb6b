//! The consumer test harness shared by `consumer.rs` and `consumer_faults.rs`: a consumer
//! whose committed batches the test observes, keyed test records and the exactly-once check.

use super::checkpoint_sink::CheckpointSink;
use aws_sdk_kinesis::Client;
use bytes::Bytes;
use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};
use streamboard::{
    config::{StartPosition, StreamRef, StreamSpec},
    consumer::{Consumer, ConsumerConfig, ConsumerHealth},
    kinesis::{ConsumedRecord, RecordBatch, ShardId, StreamName},
    producer::{Producer, ProducerRecord, cli::ensure_stream},
    storage::Database,
};
use tokio::sync::{mpsc, watch};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::unique_stream;

/// Upper bound for any wait; healthy runs take a fraction of it.
pub const WAIT: Duration = Duration::from_secs(60);

pub async fn create_stream(client: &Client, prefix: &str, shards: u32) -> StreamName {
    let stream = StreamName::new(unique_stream(prefix));
    ensure_stream(client, &stream, shards, WAIT).await.unwrap();
    stream
}

pub fn spec(stream: &StreamName, start: StartPosition) -> StreamSpec {
    StreamSpec {
        name_or_arn: StreamRef::Name(stream.clone()),
        start,
        efo: false,
    }
}

pub fn config(application: &str, streams: Vec<StreamSpec>) -> ConsumerConfig {
    ConsumerConfig {
        discovery_interval: Duration::from_millis(500),
        idle_poll_interval: Duration::from_millis(50),
        ..ConsumerConfig::new(application, streams)
    }
}

/// A consumer with a [`CheckpointSink`] whose committed batches the test observes.
pub struct Running {
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    pub observed: mpsc::Receiver<RecordBatch>,
    pub health: watch::Receiver<ConsumerHealth>,
    pub records: Vec<(ShardId, ConsumedRecord)>,
}

impl Running {
    pub fn start(client: &Client, database: &Database, config: ConsumerConfig) -> Self {
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let (batch_tx, batch_rx) = config.batch_channel();
        let (observer_tx, observed) = mpsc::channel(1024);
        CheckpointSink::new(database.clone(), config.application.clone())
            .with_observer(observer_tx)
            .spawn(batch_rx, &tracker);
        let handle = Consumer::start(
            client.clone(),
            config,
            database.clone(),
            batch_tx,
            shutdown.clone(),
            tracker.clone(),
        );
        Self {
            shutdown,
            tracker,
            observed,
            health: handle.health,
            records: Vec::new(),
        }
    }

    /// Collects committed records until `done` holds (panics after [`WAIT`]).
    pub async fn collect_until(
        &mut self,
        what: &str,
        done: impl Fn(&[(ShardId, ConsumedRecord)]) -> bool,
    ) {
        let deadline = Instant::now() + WAIT;
        while !done(&self.records) {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(remaining, self.observed.recv()).await {
                Ok(Some(batch)) => self
                    .records
                    .extend(batch.records.into_iter().map(|r| (batch.shard.clone(), r))),
                Ok(None) => panic!("the sink stopped while waiting for {what}"),
                Err(_) => panic!(
                    "timed out waiting for {what}: {} records so far; health: {:#?}",
                    self.records.len(),
                    *self.health.borrow()
                ),
            }
        }
    }

    /// Graceful shutdown: everything handed over is committed and observed.
    pub async fn stop(mut self) -> Vec<(ShardId, ConsumedRecord)> {
        self.shutdown.cancel();
        self.tracker.close();
        let drain = async {
            while let Some(batch) = self.observed.recv().await {
                self.records
                    .extend(batch.records.into_iter().map(|r| (batch.shard.clone(), r)));
            }
        };
        tokio::time::timeout(WAIT, async {
            tokio::join!(drain, self.tracker.wait());
        })
        .await
        .expect("the consumer and sink stop in time");
        self.records
    }
}

pub fn keyed(key: &str, n: u64) -> ProducerRecord {
    ProducerRecord {
        partition_key: key.to_string(),
        explicit_hash_key: None,
        data: Bytes::from(format!("{key}:{n}")),
    }
}

/// Asserts each key's records are `key:0, key:1, ...` with nothing missing or repeated.
pub fn assert_exactly_once_in_order(
    records: &[(ShardId, ConsumedRecord)],
    keys: usize,
    per_key: u64,
) {
    let mut by_key: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (_, record) in records {
        let text = std::str::from_utf8(&record.data).unwrap();
        let (key, n) = text.split_once(':').unwrap();
        assert_eq!(key, record.partition_key);
        by_key
            .entry(key.to_string())
            .or_default()
            .push(n.parse().unwrap());
    }
    assert_eq!(by_key.len(), keys, "every key seen");
    for (key, ns) in by_key {
        let expected: Vec<u64> = (0..per_key).collect();
        assert_eq!(ns, expected, "records of {key} exactly once and in order");
    }
}

pub async fn put_all(producer: &Producer, records: Vec<ProducerRecord>) {
    let count = records.len() as u64;
    let report = producer.put(records).await;
    assert_eq!((report.sent, report.failed), (count, 0), "{report:?}");
}
