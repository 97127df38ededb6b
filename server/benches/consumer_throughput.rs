//! Consumer-only throughput: records/s read from a prefilled stream of 1, 4 and 16 shards
//! (100-byte records) into a [`CheckpointSink`], timed from start to the last committed record.
//! Runs against the test peer (kinesis-local by default: its own speed dominates; rerun with
//! the embedded endpoint for the consumer's figures). `cargo bench --bench consumer_throughput`.
//! `BENCH_RECORDS` sets the records per configuration (default 6000).

#[path = "../tests/support/mod.rs"]
mod support;

use bytes::Bytes;
use std::time::{Duration, Instant};
use streamboard::{
    config::{StartPosition, StreamRef, StreamSpec},
    consumer::{CheckpointSink, Consumer, ConsumerConfig},
    kinesis::StreamName,
    producer::{Producer, ProducerRecord, cli::ensure_stream},
    storage::Database,
};
use support::{Peer, unique_stream};
use tokio::sync::mpsc;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(run());
}

async fn run() {
    let total: usize = std::env::var("BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6_000);
    let peer = Peer::start().await;
    let client = peer.client().await;
    println!(
        "consumer throughput against {} ({} records of 100 bytes per configuration)",
        peer.name(),
        total
    );
    if peer.name() == "kinesis-local" {
        println!(
            "note: kinesis-local is slow (JavaScript, ~1,000 puts/s, GetRecords cost grows with shard size); \
             these figures bound the endpoint, not the consumer"
        );
    }
    for shards in [1u32, 4, 16] {
        let stream = StreamName::new(unique_stream(&format!("bench{shards}")));
        ensure_stream(&client, &stream, shards, Duration::from_secs(60))
            .await
            .expect("stream created");
        let producer = Producer::new(client.clone(), stream.clone());
        let put_started = Instant::now();
        for chunk in 0..total.div_ceil(500) {
            let records = (chunk * 500..((chunk + 1) * 500).min(total))
                .map(|i| ProducerRecord {
                    partition_key: format!("key-{i}"),
                    explicit_hash_key: None,
                    data: Bytes::from(vec![b'x'; 100]),
                })
                .collect();
            let report = producer.put(records).await;
            assert_eq!(report.failed, 0);
        }
        let put_rate = total as f64 / put_started.elapsed().as_secs_f64();

        let dir = tempfile::tempdir().expect("a temp dir");
        let database = Database::open(dir.path()).await.expect("database");
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let config = ConsumerConfig::new(
            "bench",
            vec![StreamSpec {
                name_or_arn: StreamRef::Name(stream.clone()),
                start: StartPosition::TrimHorizon,
            }],
        );
        let (batch_tx, batch_rx) = config.batch_channel();
        let (observer_tx, mut observed) = mpsc::channel(1024);
        CheckpointSink::new(database.clone(), "bench")
            .with_observer(observer_tx)
            .spawn(batch_rx, &tracker);
        let started = Instant::now();
        let _handle = Consumer::start(
            client.clone(),
            config,
            database.clone(),
            batch_tx,
            shutdown.clone(),
            tracker.clone(),
        );
        let mut read = 0usize;
        let mut first_record = None;
        while read < total {
            match tokio::time::timeout(Duration::from_secs(120), observed.recv()).await {
                Ok(Some(batch)) => {
                    if !batch.records.is_empty() && first_record.is_none() {
                        first_record = Some(started.elapsed());
                    }
                    read += batch.records.len();
                }
                _ => panic!("consumer stalled at {read} of {total} records"),
            }
        }
        let elapsed = started.elapsed();
        shutdown.cancel();
        tracker.close();
        while observed.recv().await.is_some() {}
        tracker.wait().await;
        database.close().await;
        println!(
            "{shards:>2} shards: {:>8.0} records/s consumed ({total} records in {:.2}s, first batch after {:.0} ms); \
             prefill put rate {:.0} records/s",
            total as f64 / elapsed.as_secs_f64(),
            elapsed.as_secs_f64(),
            first_record.unwrap_or_default().as_secs_f64() * 1e3,
            put_rate
        );
    }
}
