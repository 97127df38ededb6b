//! The whole data path of `serve`, with real parts: a Kinesis-compatible peer, the consumer,
//! the metrics engine and a SQLite file. Counts stored in SQLite must equal what was put,
//! across a restart (checkpoints and summaries commit together: nothing re-read, nothing lost).

mod support;

use std::time::Duration;
use streamboard::{
    Server,
    config::{KinesisSource, ServeConfig, StartPosition, StreamRef, StreamSpec},
    kinesis::StreamName,
    producer::{Producer, ProducerRecord},
    query::{QueryRequest, query},
    storage::Database,
};
use support::{Peer, eventually, unique_stream};
use tokio_util::sync::CancellationToken;

fn now_ms() -> i64 {
    streamboard::clock::now_ms()
}

/// Total records of `stream` stored by the engine's built-in records metric.
async fn stored_records(database: &Database, stream: &str) -> u64 {
    let request = QueryRequest {
        metric: format!("builtin:{stream}:records"),
        series: None,
        from_ms: now_ms() - 3_600_000,
        to_ms: now_ms() + 60_000,
        tier_s: Some(1),
    };
    match query(database, &request).await {
        Ok(response) => response.summary.summary.count,
        Err(_) => 0, // the built-in metric appears with the first batch
    }
}

async fn put(producer: &Producer, from: u32, to: u32) {
    let records = (from..to)
        .map(|i| ProducerRecord {
            partition_key: format!("key-{}", i % 7),
            explicit_hash_key: None,
            data: format!(r#"{{"n":{i},"latency_ms":{}}}"#, i % 100)
                .into_bytes()
                .into(),
        })
        .collect();
    let report = producer.put(records).await;
    assert_eq!(report.failed, 0, "every record is acknowledged");
}

#[tokio::test]
async fn records_are_counted_exactly_once_across_a_restart() {
    let peer = Peer::start().await;
    let client = peer.client().await;
    let stream = unique_stream("pipeline");
    support::create_stream(&client, &stream, 2).await;
    let producer = Producer::new(client.clone(), StreamName::from(stream.as_str()));
    put(&producer, 0, 300).await;

    let dir = tempfile::tempdir().unwrap();
    let mut config = ServeConfig::for_data_dir(dir.path());
    config.consumer.streams = vec![StreamSpec {
        name_or_arn: StreamRef::Name(StreamName::from(stream.as_str())),
        start: StartPosition::TrimHorizon,
        efo: false,
    }];
    config.source = KinesisSource::External(peer.target());
    config.consumer.idle_poll_interval = Duration::from_millis(50);

    let server = Server::start(config.clone(), CancellationToken::new())
        .await
        .unwrap();
    let database = Database::open(dir.path()).await.unwrap();
    eventually("300 records stored", || async {
        stored_records(&database, &stream).await >= 300
    })
    .await;
    server.shutdown();
    server.wait().await.unwrap();
    assert_eq!(stored_records(&database, &stream).await, 300);

    // Written while Streamboard is down: read after the restart, and only these.
    put(&producer, 300, 500).await;
    let server = Server::start(config, CancellationToken::new())
        .await
        .unwrap();
    eventually("500 records stored", || async {
        stored_records(&database, &stream).await >= 500
    })
    .await;
    // Quiet stream, everything flushed: the count is exact (a re-read would exceed it).
    server.engine().flush().await.unwrap().unwrap();
    assert_eq!(stored_records(&database, &stream).await, 500);
    server.shutdown();
    server.wait().await.unwrap();
    database.close().await;
}

#[tokio::test]
async fn the_embedded_default_serves_demo_data_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServeConfig::for_data_dir(dir.path());
    config.source = KinesisSource::Embedded {
        listen: "127.0.0.1:0".parse().unwrap(),
        demo_rate: 200,
    };
    let server = Server::start(config, CancellationToken::new())
        .await
        .unwrap();
    let url = server
        .pipeline()
        .embedded_endpoint_url
        .clone()
        .expect("the embedded endpoint runs");
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let database = Database::open(dir.path()).await.unwrap();
    for stream in ["clickstream", "logs", "market"] {
        eventually(&format!("{stream} records stored"), || async {
            stored_records(&database, stream).await > 0
        })
        .await;
    }
    // Every demo definition matches what the demo producers write (latency by region and
    // path, error counts, prices...): each one gets values.
    for definition in streamboard::metric::demo_definitions() {
        eventually(&format!("{} stored", definition.name), || async {
            let request = QueryRequest {
                metric: definition.name.clone(),
                series: None,
                from_ms: now_ms() - 600_000,
                to_ms: now_ms() + 60_000,
                tier_s: Some(1),
            };
            query(&database, &request)
                .await
                .map(|r| r.summary.summary.count > 0)
                .unwrap_or(false)
        })
        .await;
    }
    let health = server
        .pipeline()
        .consumer_health
        .clone()
        .expect("the consumer runs");
    assert_eq!(health.borrow().shards.len(), 4, "2 + 1 + 1 demo shards");
    server.shutdown();
    server.wait().await.unwrap();
    database.close().await;
}
