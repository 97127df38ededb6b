//! Consumer recovery against the embedded endpoint's fault injection: throttled and failing
//! GetRecords calls and expired iterators lose nothing and repeat nothing.

mod support;

use aws_sdk_kinesis::Client;
use bytes::Bytes;
use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};
use streamboard::{
    config::{StartPosition, StreamRef, StreamSpec},
    consumer::{
        CheckpointSink, ConsumedRecord, Consumer, ConsumerConfig, ConsumerHealth, RecordBatch,
    },
    endpoint::{
        EndpointConfig,
        faults::{FaultConfig, FaultKind},
        wire::Operation,
    },
    kinesis::{ShardId, StreamName},
    producer::{Producer, ProducerRecord, cli::ensure_stream},
    storage::Database,
};
use support::{start_embedded_with, unique_stream};
use tokio::sync::{mpsc, watch};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Upper bound for any wait; healthy runs take a fraction of it.
const WAIT: Duration = Duration::from_secs(60);

async fn create_stream(client: &Client, prefix: &str, shards: u32) -> StreamName {
    let stream = StreamName::new(unique_stream(prefix));
    ensure_stream(client, &stream, shards, WAIT).await.unwrap();
    stream
}

fn spec(stream: &StreamName, start: StartPosition) -> StreamSpec {
    StreamSpec {
        name_or_arn: StreamRef::Name(stream.clone()),
        start,
    }
}

fn config(application: &str, streams: Vec<StreamSpec>) -> ConsumerConfig {
    ConsumerConfig {
        discovery_interval: Duration::from_millis(500),
        idle_poll_interval: Duration::from_millis(50),
        ..ConsumerConfig::new(application, streams)
    }
}

/// A consumer with a [`CheckpointSink`] whose committed batches the test observes.
struct Running {
    shutdown: CancellationToken,
    tracker: TaskTracker,
    observed: mpsc::Receiver<RecordBatch>,
    health: watch::Receiver<ConsumerHealth>,
    records: Vec<(ShardId, ConsumedRecord)>,
}

impl Running {
    fn start(client: &Client, database: &Database, config: ConsumerConfig) -> Self {
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
    async fn collect_until(
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
    async fn stop(mut self) -> Vec<(ShardId, ConsumedRecord)> {
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

fn keyed(key: &str, n: u64) -> ProducerRecord {
    ProducerRecord {
        partition_key: key.to_string(),
        explicit_hash_key: None,
        data: Bytes::from(format!("{key}:{n}")),
    }
}

/// Asserts each key's records are `key:0, key:1, ...` with nothing missing or repeated.
fn assert_exactly_once_in_order(records: &[(ShardId, ConsumedRecord)], keys: usize, per_key: u64) {
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

async fn put_all(producer: &Producer, records: Vec<ProducerRecord>) {
    let count = records.len() as u64;
    let report = producer.put(records).await;
    assert_eq!((report.sent, report.failed), (count, 0), "{report:?}");
}

/// Reads 600 records put in three rounds through an endpoint configured by `configure`.
async fn read_under(
    configure: impl FnOnce(&mut EndpointConfig),
    idle_poll: Duration,
) -> (u64, Vec<(ShardId, ConsumedRecord)>) {
    let dir = tempfile::tempdir().unwrap();
    let endpoint_dir = tempfile::tempdir().unwrap();
    let mut endpoint = EndpointConfig::for_data_dir(endpoint_dir.path());
    configure(&mut endpoint);
    let peer = start_embedded_with(endpoint, endpoint_dir).await;
    let client = peer.client.clone();
    let database = Database::open(dir.path()).await.unwrap();
    let stream = create_stream(&client, "faults", 2).await;
    let producer = Producer::new(client.clone(), stream.clone());
    let mut consumer_config = config("faults", vec![spec(&stream, StartPosition::TrimHorizon)]);
    consumer_config.idle_poll_interval = idle_poll;
    consumer_config.backoff_base = Duration::from_millis(10);
    consumer_config.backoff_max = Duration::from_millis(200);
    let mut running = Running::start(&client, &database, consumer_config);
    // Three rounds, with the consumer idling (and its iterators ageing) in between.
    for round in 0..3u64 {
        let records = (0..8)
            .flat_map(|key| {
                (round * 25..(round + 1) * 25).map(move |n| keyed(&format!("k{key}"), n))
            })
            .collect();
        put_all(&producer, records).await;
        let expected = ((round + 1) * 200) as usize;
        running
            .collect_until(&format!("round {round}"), |records| {
                records.len() >= expected
            })
            .await;
    }
    let throttles = running
        .health
        .borrow()
        .shards
        .values()
        .map(|shard| shard.throttle_count)
        .sum();
    let records = running.stop().await;
    database.close().await;
    (throttles, records)
}

#[tokio::test]
async fn throttled_and_failing_get_records_lose_nothing() {
    for kind in [FaultKind::Throttle, FaultKind::InternalFailure] {
        let configure = |endpoint: &mut EndpointConfig| {
            endpoint.faults = FaultConfig {
                // High, because the SDK's own retries (3 attempts) absorb most single faults.
                error_rate: 0.7,
                operations: vec![Operation::GetRecords, Operation::GetShardIterator],
                kind,
                added_latency: Duration::ZERO,
            };
        };
        let (throttles, records) = read_under(configure, Duration::from_millis(20)).await;
        assert_exactly_once_in_order(&records, 8, 75);
        if kind == FaultKind::Throttle {
            assert!(throttles > 0, "throttles were injected and counted");
        }
    }
}

#[tokio::test]
async fn expired_iterators_are_renewed_after_the_last_record() {
    // Polling less often than iterators live: every idle poll meets ExpiredIteratorException.
    // (The TTL stays above the 200 ms pacing of 5 calls/s, as AWS's 5 minutes does.)
    let configure =
        |endpoint: &mut EndpointConfig| endpoint.iterator_ttl = Duration::from_millis(400);
    let (_, records) = read_under(configure, Duration::from_millis(900)).await;
    assert_exactly_once_in_order(&records, 8, 75);
}
