//! The whole data path under Kinesis faults: the real `streamboard serve` binary reads from the
//! embedded endpoint while a real producer puts records through it, and the endpoint throttles
//! and fails 10 % of GetRecords and PutRecords calls (half ProvisionedThroughputExceeded, half
//! InternalFailure 500), delays 10 % of them by 2 s, and expires iterators after 10 s. Then the
//! faults stop. Asserted: the consumer's lag recovers within 30 s, the server's memory stays
//! flat, and the summaries stored in SQLite equal the ground truth of what was put.
//!
//! `make test` runs 20 s of faults at 500 records/s; `STREAMBOARD_SOAK=1` (`make soak`) runs
//! 10 minutes at 2,000 records/s.

mod support;

use rand::{SeedableRng, rngs::StdRng};
use std::{
    sync::Arc,
    time::{Duration, Instant},
};
use streamboard::{kinesis::StreamName, producer::Producer, storage::Database};
use streamboard_endpoint::{
    EndpointConfig,
    faults::{FaultConfig, FaultKind},
    wire::Operation,
};
use support::{
    create_stream, eventually_within,
    serve::{Serve, Truth, soak, stored_count, write_config},
    start_embedded_with, unique_stream,
};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// The faults of the fault period.
fn faults() -> FaultConfig {
    FaultConfig {
        error_rate: 0.10,
        operations: vec![Operation::GetRecords, Operation::PutRecords],
        kind: FaultKind::Mixed,
        added_latency: Duration::from_secs(2),
        latency_rate: 0.10,
    }
}

/// The largest `MillisBehindLatest` over the server's shards, from its `/metrics`.
async fn max_lag_millis(serve: &Serve) -> Option<i64> {
    serve
        .metric_values("streamboard_consumer_millis_behind_latest")
        .await
        .into_iter()
        .map(|v| v as i64)
        .max()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summaries_equal_the_truth_after_throttles_failures_latency_and_expiring_iterators() {
    let (fault_period, rate_per_sec) = if soak() {
        (Duration::from_secs(600), 2_000)
    } else {
        (Duration::from_secs(20), 500)
    };
    let endpoint_dir = tempfile::tempdir().unwrap();
    let mut endpoint = EndpointConfig::for_data_dir(endpoint_dir.path());
    endpoint.iterator_ttl = Duration::from_secs(10);
    let peer = start_embedded_with(endpoint, endpoint_dir).await;
    let stream = unique_stream("faults");
    create_stream(&peer.client, &stream, 2).await;

    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &stream);
    let data_dir = dir.path().join("data");
    let mut serve = Serve::spawn(&config, &data_dir, &peer.url, &[]);
    serve.wait_ready().await;
    peer.set_faults(faults());

    // The producer: a batch every 100 ms, each put on its own task (a put may take seconds
    // under faults), at most 16 in flight; the SDK's and the producer's retries absorb faults.
    let truth = Truth::default();
    let stop = CancellationToken::new();
    let producing = {
        let mut producer = Producer::new(peer.client.clone(), StreamName::from(stream.as_str()));
        producer.max_attempts = 30;
        producer.backoff_max = Duration::from_secs(1);
        let producer = Arc::new(producer);
        let truth = truth.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let in_flight = Arc::new(Semaphore::new(16));
            let mut tasks = tokio::task::JoinSet::new();
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            let mut seed = 0u64;
            while !stop.is_cancelled() {
                tick.tick().await;
                let permit = in_flight.clone().acquire_owned().await.expect("open");
                let (producer, truth) = (producer.clone(), truth.clone());
                seed += 1;
                tasks.spawn(async move {
                    let mut rng = StdRng::seed_from_u64(seed);
                    truth.put(&producer, &mut rng, rate_per_sec / 10).await;
                    drop(permit);
                });
            }
            while let Some(done) = tasks.join_next().await {
                done.expect("a put task panicked");
            }
        })
    };

    // The fault period, sampling the server's memory every second.
    let started = Instant::now();
    let mut rss_kib = Vec::new();
    while started.elapsed() < fault_period {
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(serve.is_running(), "serve exited under faults");
        rss_kib.extend(serve.rss_kib());
    }
    let lag_at_end = max_lag_millis(&serve).await;
    peer.set_faults(FaultConfig::default());
    let injected = peer.injected_faults();
    assert!(injected > 0, "no fault was injected");
    let faults_stopped = Instant::now();

    // The lag recovers within 30 s while the producer goes on.
    let mut recovered_after = None;
    while faults_stopped.elapsed() < Duration::from_secs(30) {
        if max_lag_millis(&serve).await.is_some_and(|lag| lag <= 1_000) {
            recovered_after = Some(faults_stopped.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let recovered_after = recovered_after.unwrap_or_else(|| {
        panic!("lag did not recover within 30 s of the faults stopping (was {lag_at_end:?} ms)")
    });
    stop.cancel();
    producing.await.unwrap();

    // Every record put is stored, exactly once.
    let database = Database::open(&data_dir).await.unwrap();
    let total = truth.len();
    eventually_within("every record stored", Duration::from_secs(60), || async {
        stored_count(&database).await >= total
    })
    .await;
    truth.check_stored(&database).await;

    // Memory is flat: the fault period's second half peaks no higher than its first half
    // (plus 10 % and 16 MiB for the allocator's noise).
    let half = rss_kib.len() / 2;
    let first = rss_kib[..half].iter().max().copied().unwrap_or(0);
    let second = rss_kib[half..].iter().max().copied().unwrap_or(0);
    eprintln!(
        "faults: {} s at {rate_per_sec} records/s, {total} records, {injected} faults injected; \
         lag {lag_at_end:?} ms when the faults stopped, recovered after {:.1} s; RSS peak {} MiB (first half) / {} MiB \
         (second half)",
        fault_period.as_secs(),
        recovered_after.as_secs_f64(),
        first / 1024,
        second / 1024
    );
    assert!(
        second <= first + first / 10 + 16 * 1024,
        "memory grew under faults: {first} KiB, then {second} KiB"
    );
    database.close().await;
    drop(serve);
}
