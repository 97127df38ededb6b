//! Consumer-only throughput: records/s read from a prefilled stream of 1, 4, 16 and 25 shards
//! (100-byte records) into a [`CheckpointSink`], timed from start to the last committed record.
//! `cargo bench --bench consumer_throughput`.
//!
//! The goal is per core (keep up with 25 shards × 2 MB/s on one core), so the consumer's
//! CPU time is measured apart from the endpoint's: by default the embedded endpoint runs in a
//! child process (this same binary, re-executed), and the figures are
//! - wall-clock records/s (both processes on the machine's shared cores),
//! - records per consumer CPU-second (`getrusage` of this process over the consuming phase:
//!   the consumer, aws-sdk-kinesis's request signing and response parsing, hyper, the SQLite
//!   checkpoint sink), and MB/s of record data per consumer core,
//! - the endpoint process's CPU-seconds over the same phase.
//!
//! The sink is the real [`CheckpointSink`] (one SQLite transaction per drain of the channel),
//! not a counter; the metrics engine, which replaces it in `serve`, is measured by its own
//! bench. `STREAMBOARD_TEST_PEER=kinesis-local` runs against kinesis-local instead (its own
//! speed then dominates, and it takes about 1,000 puts/s: use a small `BENCH_RECORDS`). `BENCH_RECORDS` sets the records per shard (default 40,000),
//! `BENCH_SHARDS` the configurations (default `1,4,16,25`), `BENCH_WORKERS` the consumer's
//! runtime worker threads (default 1: one core's worth of runtime).

#[path = "../tests/support/mod.rs"]
mod support;

mod common;

use aws_sdk_kinesis::Client;
use bytes::Bytes;
use common::{CHILD_ENV, ChildEndpoint, endpoint_child, load_average, process_cpu};
use std::time::{Duration, Instant};
use streamboard::{
    config::{StartPosition, StreamRef, StreamSpec},
    consumer::{Consumer, ConsumerConfig},
    kinesis::{
        StreamName,
        client::{KinesisTarget, build_client},
    },
    producer::{Producer, ProducerRecord, cli::ensure_stream},
    storage::Database,
};
use support::{Peer, PeerKind, checkpoint_sink::CheckpointSink, unique_stream};
use tokio::sync::mpsc;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

const RECORD_BYTES: usize = 100;
/// PutRecords calls in flight while prefilling.
const PREFILL_IN_FLIGHT: usize = 8;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        return endpoint_child(dir);
    }
    // SAFETY: set before any thread is started.
    unsafe {
        std::env::set_var("AWS_REGION", "us-east-1");
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    }
    let workers: usize = env_or("BENCH_WORKERS", 1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(run(workers));
}

async fn prefill(client: &Client, stream: &StreamName, total: usize) -> f64 {
    let started = Instant::now();
    let chunks = total.div_ceil(500);
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..PREFILL_IN_FLIGHT {
        let producer = Producer::new(client.clone(), stream.clone());
        writers.spawn(async move {
            for chunk in (writer..chunks).step_by(PREFILL_IN_FLIGHT) {
                let records = (chunk * 500..((chunk + 1) * 500).min(total))
                    .map(|i| ProducerRecord {
                        partition_key: format!("key-{i}"),
                        explicit_hash_key: None,
                        data: Bytes::from(vec![b'x'; RECORD_BYTES]),
                    })
                    .collect();
                assert_eq!(producer.put(records).await.failed, 0);
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.expect("a prefill writer");
    }
    total as f64 / started.elapsed().as_secs_f64()
}

async fn run(workers: usize) {
    let per_shard: usize = env_or("BENCH_RECORDS", 40_000);
    let configurations: Vec<u32> = std::env::var("BENCH_SHARDS")
        .unwrap_or_else(|_| "1,4,16,25".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let (mut child, _peer, client, name) = match PeerKind::from_env() {
        PeerKind::Embedded => {
            let child = ChildEndpoint::start();
            let client = build_client(&KinesisTarget::Local {
                endpoint_url: child.url.clone(),
            })
            .await;
            (
                Some(child),
                None,
                client,
                "the embedded endpoint (child process)",
            )
        }
        PeerKind::KinesisLocal => {
            let peer = Peer::start().await;
            let client = peer.client().await;
            (None, Some(peer), client, "kinesis-local")
        }
    };
    println!(
        "consumer throughput against {name}: {per_shard} records of {RECORD_BYTES} B per shard, \
         consumer runtime with {workers} worker thread(s), load average {}",
        load_average()
    );
    for shards in configurations {
        let total = per_shard * shards as usize;
        let stream = StreamName::new(unique_stream(&format!("bench{shards}")));
        ensure_stream(&client, &stream, shards, Duration::from_secs(60))
            .await
            .expect("stream created");
        let put_rate = prefill(&client, &stream, total).await;

        let dir = tempfile::tempdir().expect("a temp dir");
        let database = Database::open(dir.path()).await.expect("database");
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let config = ConsumerConfig::new(
            "bench",
            vec![StreamSpec {
                name_or_arn: StreamRef::Name(stream.clone()),
                start: StartPosition::TrimHorizon,
                efo: false,
            }],
        );
        let (batch_tx, batch_rx) = config.batch_channel();
        let (observer_tx, mut observed) = mpsc::channel(1024);
        CheckpointSink::new(database.clone(), "bench")
            .with_observer(observer_tx)
            .spawn(batch_rx, &tracker);
        let endpoint_cpu_before = child.as_mut().map(ChildEndpoint::cpu);
        let cpu_before = process_cpu();
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
        let mut bytes = 0usize;
        while read < total {
            match tokio::time::timeout(Duration::from_secs(120), observed.recv()).await {
                Ok(Some(batch)) => {
                    read += batch.records.len();
                    bytes += batch.records.iter().map(|r| r.data.len()).sum::<usize>();
                }
                _ => panic!("consumer stalled at {read} of {total} records"),
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        let consumer_cpu = (process_cpu() - cpu_before).as_secs_f64();
        let endpoint_cpu = child
            .as_mut()
            .zip(endpoint_cpu_before)
            .map(|(child, before)| (child.cpu() - before).as_secs_f64());
        shutdown.cancel();
        tracker.close();
        while observed.recv().await.is_some() {}
        tracker.wait().await;
        database.close().await;
        let _ = client
            .delete_stream()
            .stream_name(stream.as_str())
            .send()
            .await;
        println!(
            "{shards:>2} shards: {:>8.0} records/s wall ({:.1} MB/s), {total} records in {elapsed:.2} s; \
             consumer {consumer_cpu:.2} CPU-s = {:>8.0} records per CPU-s ({:.1} MB/s per core); \
             endpoint {} CPU-s; prefill {put_rate:.0} records/s; load average {}",
            total as f64 / elapsed,
            bytes as f64 / elapsed / 1e6,
            total as f64 / consumer_cpu,
            bytes as f64 / consumer_cpu / 1e6,
            endpoint_cpu.map_or("n/a".to_string(), |s| format!("{s:.2}")),
            load_average(),
        );
    }
}
