//! The partitioned engine task against one partition: the same recorded input (6 shards of two
//! streams, late, future and bad records among them) fed to the real engine task
//! (`engine::shell::spawn`) with 1, 2, 3 and 4 partitions, flushing on its own 20 ms tick
//! (so where the flushes fall differs from run to run) into a real SQLite file. What is stored
//! (every 1-second, 1-minute and 1-hour row: counts, sums, min, max, histograms, so every
//! percentile) and the checkpoints must be the same, and so must the live windows and counters
//! read through the handle.

use bytes::Bytes;
use rand::{Rng, SeedableRng, rngs::StdRng};
use sqlx::Row as _;
use std::{future::Future, pin::Pin, time::Duration};
use streamboard::{
    clock::Clock,
    engine::{ShellConfig, shell},
    kinesis::{ConsumedRecord, RecordBatch, SequenceNumber, ShardId, StreamName},
    metric::MetricDefinition,
    storage::{CheckpointHook, Database, StorageError},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

const T0_MS: i64 = 1_700_000_000_000;

/// Stores each shard's position (its batch number) in the flush transaction.
struct Checkpoints;

impl CheckpointHook<u64> for Checkpoints {
    fn write<'a>(
        &'a mut self,
        tx: streamboard::storage::Conn<'a>,
        positions: &'a [(StreamName, ShardId, u64)],
    ) -> Pin<Box<dyn Future<Output = Result<(), StorageError>> + Send + 'a>> {
        Box::pin(async move {
            let streamboard::storage::Conn::Sqlite(tx) = tx else {
                unreachable!("these tests run on SQLite")
            };
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS test_checkpoint (stream TEXT, shard TEXT, batch INTEGER NOT NULL, PRIMARY KEY (stream, shard))",
            )
            .execute(&mut *tx)
            .await?;
            for (stream, shard, position) in positions {
                sqlx::query("INSERT OR REPLACE INTO test_checkpoint VALUES (?, ?, ?)")
                    .bind(stream.as_str())
                    .bind(shard.as_str())
                    .bind(*position as i64)
                    .execute(&mut *tx)
                    .await?;
            }
            Ok(())
        })
    }
}

fn definitions() -> Vec<MetricDefinition> {
    serde_json::from_value(serde_json::json!([
        {"name": "latency", "stream": "orders", "value": "/latency_ms", "dimensions": ["/region", "/path"],
         "time": {"field": "/event_time", "format": "epoch_ms"}},
        {"name": "errors", "stream": "orders", "filter": "/status >= 500", "dimensions": ["/region"]},
        {"name": "size", "stream": "clicks", "value": "/bytes", "dimensions": ["/region"],
         "histogram": {"lowest": 1, "highest": 100000000, "significant_figures": 2}}
    ]))
    .unwrap()
}

/// The recorded input: batches of 6 shards (4 of `orders`, 2 of `clicks`) interleaved, each
/// with the manual clock's time when it is fed.
fn recorded() -> Vec<(i64, RecordBatch<u64>)> {
    let mut rng = StdRng::seed_from_u64(11);
    let mut out = Vec::new();
    let mut now_ms = T0_MS;
    for b in 0..40u64 {
        for shard in 0..6 {
            now_ms += rng.random_range(0..150);
            let stream = if shard < 4 { "orders" } else { "clicks" };
            // At least one record: an empty batch's MillisBehindLatest counts at the clock's second
            // when the engine task routes it, which depends on how far it lags the sender.
            let records = (0..rng.random_range(1..60))
                .map(|i| {
                    let arrival = now_ms - 100 + i;
                    let event = match rng.random_range(0..50) {
                        0 => arrival - 90_000,
                        1 => arrival + 90_000,
                        _ => arrival - rng.random_range(0..3_000),
                    };
                    let data = if rng.random_range(0..100) == 0 {
                        "{\"region\":".to_string()
                    } else {
                        format!(
                            r#"{{"region":"r{}","path":"/p{}","status":{},"latency_ms":{},"bytes":{},"event_time":{event}}}"#,
                            rng.random_range(0..4),
                            rng.random_range(0..3),
                            if rng.random_bool(0.1) { 503 } else { 200 },
                            (rng.random::<f64>().powi(3) * 5000.0) as u64 + 1,
                            rng.random_range(10..200_000),
                        )
                    };
                    ConsumedRecord {
                        sequence_number: SequenceNumber::parse("1").unwrap(),
                        sub_sequence: None,
                        partition_key: "pk".into(),
                        data: Bytes::from(data),
                        arrival_time_ms: arrival,
                        explicit_hash_key: None,
                    }
                })
                .collect();
            out.push((
                now_ms,
                RecordBatch {
                    stream: stream.into(),
                    shard: format!("shardId-{shard}").as_str().into(),
                    records,
                    millis_behind_latest: Some(rng.random_range(0..2_000)),
                    position: b,
                },
            ));
        }
    }
    out
}

/// Everything stored and read live after the recorded input went through `partitions`
/// partitions.
/// One stored row: metric name, tier, series, start, count, sum, min, max, histogram.
type Row = (
    String,
    i64,
    String,
    i64,
    i64,
    i64,
    i64,
    i64,
    Option<Vec<u8>>,
);

#[derive(Debug, PartialEq)]
struct Outcome {
    rows: Vec<Row>,
    checkpoints: Vec<(String, String, i64)>,
    live: Vec<String>,
    counters: Vec<String>,
}

async fn run(partitions: usize) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let database = Database::open(dir.path()).await.unwrap();
    for definition in definitions() {
        database
            .insert_definition(&definition, T0_MS)
            .await
            .unwrap();
    }
    let clock = Clock::manual(T0_MS);
    let config = ShellConfig {
        partitions,
        flush_interval: Duration::from_millis(20),
        clock: clock.clone(),
        ..ShellConfig::default()
    };
    let tracker = TaskTracker::new();
    let shutdown = CancellationToken::new();
    let (handle, batches) = shell::spawn(
        config,
        database.clone(),
        Checkpoints,
        &tracker,
        shutdown.clone(),
    )
    .await
    .unwrap();
    let input = recorded();
    let end_ms = input.last().unwrap().0;
    for (i, (now_ms, batch)) in input.into_iter().enumerate() {
        clock.set_ms(now_ms);
        batches.send(batch).await.unwrap();
        if i % 50 == 49 {
            // Let some ticks flush what is complete, wherever they fall.
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    handle.flush().await.unwrap().unwrap();
    // Live figures at the end: the windows of every series, and the counters.
    let mut live: Vec<String> = handle
        .windows(end_ms)
        .await
        .unwrap()
        .series
        .iter()
        .map(|s| format!("{} {:?} {:?}", s.name, s.labels, s.windows))
        .collect();
    live.sort();
    let counters = handle
        .counters()
        .await
        .unwrap()
        .into_iter()
        .map(|(_, name, c)| {
            let bad: Vec<_> = c.bad.iter().map(|(r, b)| (r.as_str(), b.count)).collect();
            format!(
                "{name} late {} future {} overflowed {} bad {bad:?}",
                c.late_records, c.future_records, c.overflowed_records
            )
        })
        .collect();
    shutdown.cancel();
    tracker.close();
    tracker.wait().await;
    let rows = sqlx::query(
        "SELECT m.name, b.tier_s, b.series, b.start_s, b.count, b.sum, b.min, b.max, b.hist \
         FROM metric_bucket b JOIN metric m ON m.id = b.metric_id \
         ORDER BY m.name, b.tier_s, b.series, b.start_s",
    )
    .fetch_all(database.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.get(0),
            r.get(1),
            r.get(2),
            r.get(3),
            r.get(4),
            r.get::<f64, _>(5) as i64,
            r.get::<f64, _>(6) as i64,
            r.get::<f64, _>(7) as i64,
            r.get(8),
        )
    })
    .collect();
    let checkpoints = sqlx::query("SELECT stream, shard, batch FROM test_checkpoint ORDER BY 1, 2")
        .fetch_all(database.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    database.close().await;
    Outcome {
        rows,
        checkpoints,
        live,
        counters,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_store_and_show_what_one_partition_does() {
    let one = run(1).await;
    assert!(one.rows.len() > 500, "{} rows", one.rows.len());
    assert_eq!(one.checkpoints.len(), 6, "every shard checkpointed");
    assert!(
        one.checkpoints.iter().all(|(_, _, batch)| *batch == 39),
        "{:?}",
        one.checkpoints
    );
    assert!(one.live.len() > 20, "{} live series", one.live.len());
    assert!(
        one.counters
            .iter()
            .any(|c| c.contains("InvalidJson") || c.contains("invalid_json")),
        "{:?}",
        one.counters
    );
    for partitions in [2, 3, 4] {
        let many = run(partitions).await;
        assert_eq!(one.rows.len(), many.rows.len(), "{partitions} partitions");
        for (a, b) in one.rows.iter().zip(&many.rows) {
            assert_eq!(a, b, "{partitions} partitions");
        }
        assert_eq!(one.checkpoints, many.checkpoints, "{partitions} partitions");
        assert_eq!(one.live, many.live, "{partitions} partitions");
        assert_eq!(one.counters, many.counters, "{partitions} partitions");
    }
}
