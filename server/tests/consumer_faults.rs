//! Consumer recovery against the embedded endpoint's fault injection: throttled and failing
//! GetRecords calls and expired iterators lose nothing and repeat nothing.

mod support;

use std::time::Duration;
use streamboard::{
    config::StartPosition, kinesis::ConsumedRecord, kinesis::ShardId, producer::Producer,
    storage::Database,
};
use streamboard_endpoint::{
    EndpointConfig,
    faults::{FaultConfig, FaultKind},
    wire::Operation,
};
use support::consumer_harness::*;
use support::start_embedded_with;

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
    // Read once the consumer has stopped: its last health snapshot holds every reader event
    // (earlier, a throttle could still be in the event queue behind the batches it delayed).
    let health = running.health.clone();
    let records = running.stop().await;
    let throttles = health
        .borrow()
        .shards
        .values()
        .map(|shard| shard.throttle_count)
        .sum();
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
                ..FaultConfig::default()
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
