//! The embedded endpoint's optional realism, through aws-sdk-kinesis: per-shard throughput
//! limits, fault injection and a short iterator lifetime. (kinesis-local has none of these.)

mod support;

use aws_sdk_kinesis::{
    Client,
    config::retry::RetryConfig,
    primitives::Blob,
    types::{PutRecordsRequestEntry, ShardIteratorType},
};
use std::time::Duration;
use streamboard_endpoint::{
    EndpointConfig,
    faults::{FaultConfig, FaultKind},
    wire::Operation,
};
use support::{Peer, create_stream, eventually, start_embedded_with, unique_name};

async fn embedded(configure: impl FnOnce(&mut EndpointConfig)) -> Peer {
    let dir = tempfile::tempdir().unwrap();
    let mut config = EndpointConfig::for_data_dir(dir.path());
    configure(&mut config);
    start_embedded_with(config, dir).await
}

/// The same client without retries, so injected errors reach the test at once.
fn no_retries(client: &Client) -> Client {
    Client::from_conf(
        client
            .config()
            .to_builder()
            .retry_config(RetryConfig::disabled())
            .build(),
    )
}

#[tokio::test]
async fn throughput_limits_fail_records_not_batches() {
    let peer = embedded(|c| c.throughput_limits = true).await;
    let client = no_retries(&peer.client);
    let name = unique_name("limits");
    create_stream(&client, &name, 1).await;
    let mut failed = 0;
    let started = std::time::Instant::now();
    for _ in 0..5 {
        let entries: Vec<_> = (0..500)
            .map(|i| {
                PutRecordsRequestEntry::builder()
                    .partition_key(format!("k{i}"))
                    .data(Blob::new(vec![1u8; 100]))
                    .build()
                    .unwrap()
            })
            .collect();
        let out = client
            .put_records()
            .stream_name(&name)
            .set_records(Some(entries))
            .send()
            .await
            .expect("a throttled batch still succeeds as a call");
        failed += out.failed_record_count.unwrap_or(0);
        for r in out.records.iter().filter(|r| r.error_code.is_some()) {
            assert_eq!(
                r.error_code.as_deref(),
                Some("ProvisionedThroughputExceededException")
            );
            assert!(r.sequence_number.is_none());
        }
    }
    // The bucket holds one second's worth (1,000 records) and refills at 1,000 records/s.
    let elapsed = started.elapsed().as_secs_f64();
    let stored = 2500.0 - f64::from(failed);
    assert!(
        stored <= 1000.0 + 1000.0 * elapsed + 1.0,
        "{stored} records stored in {elapsed:.2}s exceeds 1,000 records/s"
    );
    assert!(failed > 0, "some records were throttled");

    // More than five reads a second on one shard are throttled.
    let iterator = client
        .get_shard_iterator()
        .stream_name(&name)
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::Latest)
        .send()
        .await
        .unwrap()
        .shard_iterator
        .unwrap();
    let mut throttled = false;
    for _ in 0..10 {
        if let Err(error) = client.get_records().shard_iterator(&iterator).send().await {
            let error = error.into_service_error();
            assert!(
                error.is_provisioned_throughput_exceeded_exception(),
                "{error:?}"
            );
            throttled = true;
        }
    }
    assert!(throttled);
}

#[tokio::test]
async fn injected_faults_hit_chosen_operations() {
    let peer = embedded(|c| {
        c.faults = FaultConfig {
            error_rate: 1.0,
            operations: vec![Operation::GetShardIterator],
            kind: FaultKind::InternalFailure,
            added_latency: Duration::from_millis(5),
            ..FaultConfig::default()
        }
    })
    .await;
    let client = no_retries(&peer.client);
    let name = unique_name("faults");
    create_stream(&client, &name, 1).await;
    let error = client
        .get_shard_iterator()
        .stream_name(&name)
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap_err();
    let raw = error.raw_response().expect("an HTTP answer");
    assert_eq!(raw.status().as_u16(), 500);
    assert_eq!(
        aws_sdk_kinesis::error::ProvideErrorMetadata::code(&error),
        Some("InternalFailure")
    );
    let (status, body) = support::raw_post(
        peer.addr,
        Some("Kinesis_20131202.GetShardIterator"),
        true,
        b"{}",
    )
    .await;
    assert_eq!(status, 500, "{body}");
    // Other operations are untouched.
    client.list_streams().send().await.unwrap();
}

#[tokio::test]
async fn short_iterator_ttl_gives_expired_iterator() {
    let peer = embedded(|c| c.iterator_ttl = Duration::from_millis(200)).await;
    let client = no_retries(&peer.client);
    let name = unique_name("ttl");
    create_stream(&client, &name, 1).await;
    let iterator = client
        .get_shard_iterator()
        .stream_name(&name)
        .shard_id("shardId-000000000000")
        .shard_iterator_type(ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap()
        .shard_iterator
        .unwrap();
    client
        .get_records()
        .shard_iterator(&iterator)
        .send()
        .await
        .expect("a fresh iterator works");
    eventually("the iterator expires", || {
        let client = client.clone();
        let iterator = iterator.clone();
        async move {
            match client.get_records().shard_iterator(iterator).send().await {
                Ok(_) => false,
                Err(error) => {
                    let error = error.into_service_error();
                    assert!(error.is_expired_iterator_exception(), "{error:?}");
                    true
                }
            }
        }
    })
    .await;
}
