//! The consumer against a real Kinesis-compatible peer (kinesis-local for now; see
//! `support::Peer`) and a real SQLite file: exactly-once in-order reading across a split and a
//! merge done while a producer writes, restarts from checkpoints, KPL de-aggregation (with a
//! corrupt record), start positions, and independent applications.

mod support;

use aws_sdk_kinesis::{Client, primitives::Blob};
use bytes::Bytes;
use std::{
    collections::{BTreeMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use streamboard::{
    config::{StartPosition, StreamRef, StreamSpec},
    consumer::{
        CheckpointSink, ConsumedRecord, Consumer, ConsumerConfig, ConsumerHealth, RecordBatch,
    },
    kinesis::{ShardId, StreamName, kpl},
    producer::{Producer, ProducerRecord, cli::ensure_stream},
    storage::Database,
};
use support::{Peer, unique_stream};
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

async fn wait_active(client: &Client, stream: &StreamName) {
    ensure_stream(client, stream, 1, WAIT).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_once_in_order_across_split_and_merge_while_producing() {
    let peer = Peer::start().await;
    let client = peer.client().await;
    let stream = create_stream(&client, "reshard", 1).await;
    let dir = tempfile::tempdir().unwrap();
    let database = Database::open(dir.path()).await.unwrap();
    let mut consumer = Running::start(
        &client,
        &database,
        config("app", vec![spec(&stream, StartPosition::TrimHorizon)]),
    );

    const KEYS: usize = 20;
    const PER_KEY: u64 = 60;
    let sent = Arc::new(AtomicU64::new(0));
    let writer = tokio::spawn({
        let producer = Producer::new(client.clone(), stream.clone());
        let sent = sent.clone();
        async move {
            // Rounds of one record per key, sequential: order per key is the put order.
            for n in 0..PER_KEY {
                let round = (0..KEYS).map(|k| keyed(&format!("k{k}"), n)).collect();
                put_all(&producer, round).await;
                sent.fetch_add(KEYS as u64, Ordering::SeqCst);
            }
        }
    });
    let total = KEYS as u64 * PER_KEY;
    let wait_sent = |at_least: u64| {
        let sent = sent.clone();
        async move {
            let deadline = Instant::now() + WAIT;
            while sent.load(Ordering::SeqCst) < at_least {
                assert!(Instant::now() < deadline, "producer stalled");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    wait_sent(total / 3).await;
    client
        .split_shard()
        .stream_name(stream.as_str())
        .shard_to_split("shardId-000000000000")
        .new_starting_hash_key((1u128 << 127).to_string())
        .send()
        .await
        .unwrap();
    wait_active(&client, &stream).await;
    wait_sent(2 * total / 3).await;
    client
        .merge_shards()
        .stream_name(stream.as_str())
        .shard_to_merge("shardId-000000000001")
        .adjacent_shard_to_merge("shardId-000000000002")
        .send()
        .await
        .unwrap();
    wait_active(&client, &stream).await;
    writer.await.unwrap();

    consumer
        .collect_until("all records", |records| records.len() as u64 >= total)
        .await;
    let health = consumer.health.borrow().clone();
    let records = consumer.stop().await;
    assert_exactly_once_in_order(&records, KEYS, PER_KEY);
    let shards: HashSet<&str> = records.iter().map(|(s, _)| s.as_str()).collect();
    assert!(
        shards.len() >= 3,
        "records came from parent, children and merged shard: {shards:?}"
    );
    assert!(
        health.count(streamboard::consumer::ShardState::Finished) >= 3,
        "{health:#?}"
    );

    // A second application starting after the resharding sees all five shards at once and
    // must still read parents before children; small batches make the readers interleave.
    let mut late = Running::start(
        &client,
        &database,
        ConsumerConfig {
            records_per_call: 50,
            ..config("late", vec![spec(&stream, StartPosition::TrimHorizon)])
        },
    );
    late.collect_until("all records", |records| records.len() as u64 >= total)
        .await;
    let late = late.stop().await;
    assert_exactly_once_in_order(&late, KEYS, PER_KEY);
    database.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_after_the_checkpoint_and_applications_are_independent() {
    let peer = Peer::start().await;
    let client = peer.client().await;
    let stream = create_stream(&client, "restart", 2).await;
    let dir = tempfile::tempdir().unwrap();
    let database = Database::open(dir.path()).await.unwrap();
    let producer = Producer::new(client.clone(), stream.clone());
    const KEYS: usize = 10;
    let round = |n: u64| {
        (0..KEYS)
            .map(move |k| keyed(&format!("k{k}"), n))
            .collect::<Vec<_>>()
    };
    for n in 0..40 {
        put_all(&producer, round(n)).await;
    }

    let streams = vec![spec(&stream, StartPosition::TrimHorizon)];
    let mut first = Running::start(&client, &database, config("a", streams.clone()));
    first
        .collect_until("some records", |r| r.len() >= 100)
        .await;
    let first = first.stop().await;
    assert!(first.len() >= 100 && first.len() <= 400, "{}", first.len());

    for n in 40..60 {
        put_all(&producer, round(n)).await;
    }
    let mut second = Running::start(&client, &database, config("a", streams.clone()));
    let expected = 600 - first.len();
    second
        .collect_until("the rest", |r| r.len() >= expected)
        .await;
    let second = second.stop().await;
    let mut all = first.clone();
    all.extend(second);
    // Nothing committed was read again, nothing was skipped.
    assert_exactly_once_in_order(&all, KEYS, 60);

    // Another application reads the whole stream on its own checkpoints.
    let mut other = Running::start(&client, &database, config("b", streams));
    other.collect_until("everything", |r| r.len() >= 600).await;
    let other = other.stop().await;
    assert_exactly_once_in_order(&other, KEYS, 60);
    database.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpl_aggregated_records_are_deaggregated_and_a_corrupt_one_is_plain() {
    let peer = Peer::start().await;
    let client = peer.client().await;
    let stream = create_stream(&client, "kpl", 1).await;
    let dir = tempfile::tempdir().unwrap();
    let database = Database::open(dir.path()).await.unwrap();

    let producer = Producer::new(client.clone(), stream.clone()).with_aggregation(true);
    const KEYS: usize = 25;
    const PER_KEY: u64 = 40;
    for n in 0..PER_KEY {
        let report = producer
            .put((0..KEYS).map(|k| keyed(&format!("k{k}"), n)).collect())
            .await;
        assert_eq!(report.sent, KEYS as u64);
        assert_eq!(report.kinesis_records, 1, "one aggregated record per put");
    }
    let mut corrupt = kpl::aggregate(&[kpl::UserRecord {
        partition_key: "hidden".into(),
        explicit_hash_key: None,
        data: b"never seen".to_vec(),
    }]);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xFF;
    client
        .put_record()
        .stream_name(stream.as_str())
        .partition_key("corrupt")
        .data(Blob::new(corrupt.clone()))
        .send()
        .await
        .unwrap();

    let mut consumer = Running::start(
        &client,
        &database,
        config("app", vec![spec(&stream, StartPosition::TrimHorizon)]),
    );
    let total = KEYS * PER_KEY as usize + 1;
    consumer
        .collect_until("all user records", |r| r.len() >= total)
        .await;
    let records = consumer.stop().await;
    assert_eq!(records.len(), total);
    let (plain, user): (Vec<_>, Vec<_>) = records
        .into_iter()
        .partition(|(_, r)| r.partition_key == "corrupt");
    assert_eq!(plain.len(), 1);
    assert_eq!(plain[0].1.sub_sequence, None);
    assert_eq!(plain[0].1.data.as_ref(), corrupt.as_slice());
    assert!(user.iter().all(|(_, r)| r.sub_sequence.is_some()));
    assert_eq!(user[1].1.sub_sequence, Some(1));
    assert_exactly_once_in_order(&user, KEYS, PER_KEY);
    database.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_positions_latest_trim_horizon_and_at_timestamp() {
    let peer = Peer::start().await;
    let client = peer.client().await;
    let stream = create_stream(&client, "start", 1).await;
    let dir = tempfile::tempdir().unwrap();
    let database = Database::open(dir.path()).await.unwrap();
    let producer = Producer::new(client.clone(), stream.clone());
    put_all(&producer, (0..50).map(|n| keyed("before", n)).collect()).await;

    // LATEST: nothing already in the stream, everything put after the first poll.
    let mut latest = Running::start(
        &client,
        &database,
        config("latest", vec![spec(&stream, StartPosition::Latest)]),
    );
    let deadline = Instant::now() + WAIT;
    loop {
        let polled = latest
            .health
            .borrow()
            .shards
            .values()
            .any(|shard| shard.get_records_latency.is_some());
        if polled {
            break;
        }
        assert!(Instant::now() < deadline, "the LATEST reader never polled");
        tokio::time::timeout(WAIT, latest.health.changed())
            .await
            .unwrap()
            .unwrap();
    }
    // Make sure the arrival times of the two groups differ by a margin larger than the
    // endpoint's timestamp rounding, for the AT_TIMESTAMP part below.
    let boundary_wall = std::time::SystemTime::now() + Duration::from_millis(20);
    while std::time::SystemTime::now() < boundary_wall {
        tokio::task::yield_now().await;
    }
    put_all(&producer, (0..30).map(|n| keyed("after", n)).collect()).await;
    latest
        .collect_until("the new records", |r| r.len() >= 30)
        .await;
    let latest = latest.stop().await;
    assert!(
        latest.iter().all(|(_, r)| r.partition_key == "after"),
        "LATEST read only new records"
    );
    assert_eq!(latest.len(), 30);

    // TRIM_HORIZON: everything.
    let mut horizon = Running::start(
        &client,
        &database,
        config("horizon", vec![spec(&stream, StartPosition::TrimHorizon)]),
    );
    horizon.collect_until("everything", |r| r.len() >= 80).await;
    let horizon = horizon.stop().await;
    assert_eq!(horizon.len(), 80);

    // AT_TIMESTAMP between the two groups: only the second.
    let last_before = horizon
        .iter()
        .filter(|(_, r)| r.partition_key == "before")
        .map(|(_, r)| r.arrival_time_ms)
        .max()
        .unwrap();
    let first_after = horizon
        .iter()
        .filter(|(_, r)| r.partition_key == "after")
        .map(|(_, r)| r.arrival_time_ms)
        .min()
        .unwrap();
    assert!(
        first_after - last_before >= 10,
        "{last_before} {first_after}"
    );
    let at = StartPosition::AtTimestamp {
        epoch_millis: (last_before + first_after) / 2,
    };
    let mut timed = Running::start(&client, &database, config("timed", vec![spec(&stream, at)]));
    timed
        .collect_until("records after the time", |r| r.len() >= 30)
        .await;
    let timed = timed.stop().await;
    assert_eq!(timed.len(), 30);
    assert!(timed.iter().all(|(_, r)| r.partition_key == "after"));
    database.close().await;
}
