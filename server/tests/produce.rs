//! `streamboard produce` as a process against a real Kinesis-compatible peer: creates the
//! stream, sends synthetic records (aggregated) keyed by a JSON field, and stops at --count.

mod support;

use std::{process::Command, time::Duration};
use streamboard::kinesis::kpl::{self, Deaggregated};
use support::{Peer, unique_stream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_demo_records_with_aggregation_and_json_keys() {
    let peer = Peer::start().await;
    let stream = unique_stream("produce");
    let output = tokio::task::spawn_blocking({
        let endpoint = peer.endpoint_url();
        let stream = stream.clone();
        move || {
            Command::new(env!("CARGO_BIN_EXE_streamboard"))
                .args(["produce", "--endpoint-url", &endpoint, "--stream", &stream])
                .args(["--create-stream", "--shards", "2", "--demo", "clickstream"])
                .args(["--rate", "2000", "--count", "300", "--seed", "7"])
                .args(["--partition-key-field", "/user", "--aggregate"])
                .env("STREAMBOARD_LOG", "warn")
                .output()
                .expect("the binary runs")
        }
    });
    let output = tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("produce finishes")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("300 records sent"), "{stderr}");
    assert!(stderr.contains("0 failed"), "{stderr}");
    assert!(
        !stderr.contains("\x1b["),
        "no progress line when stderr is not a terminal"
    );

    // Read the raw Kinesis records back and de-aggregate them.
    let client = peer.client().await;
    let shards = client
        .list_shards()
        .stream_name(&stream)
        .send()
        .await
        .unwrap();
    assert_eq!(shards.shards().len(), 2);
    let mut users = Vec::new();
    let mut kinesis_records = 0;
    for shard in shards.shards() {
        let iterator = client
            .get_shard_iterator()
            .stream_name(&stream)
            .shard_id(shard.shard_id())
            .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap();
        let records = client
            .get_records()
            .shard_iterator(iterator.shard_iterator().unwrap())
            .send()
            .await
            .unwrap();
        for record in records.records() {
            kinesis_records += 1;
            match kpl::deaggregate(record.data().as_ref()) {
                Deaggregated::Aggregated(records) => users.extend(records),
                Deaggregated::Plain => panic!("expected aggregated records"),
            }
        }
    }
    assert_eq!(users.len(), 300);
    assert!(
        kinesis_records < 300,
        "{kinesis_records} Kinesis records for 300 user records"
    );
    for user in &users {
        let value: serde_json::Value = serde_json::from_slice(&user.data).unwrap();
        assert_eq!(value["user"].as_str(), Some(user.partition_key.as_str()));
        assert!(value["latency_ms"].is_number());
        assert!(value["event_time"].as_str().unwrap().ends_with('Z'));
    }
}
