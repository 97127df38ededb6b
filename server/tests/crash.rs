//! Crash test of the whole data path in the real binary: while a data set is being put, the
//! `streamboard serve` process is killed with SIGKILL at random moments and restarted, several
//! times. The summaries stored in SQLite at the end must equal the ground truth computed here
//! from the data set: nothing lost, nothing counted twice (the engine's buckets and the
//! consumer's checkpoints commit in one transaction).

mod support;

use rand::{Rng, SeedableRng, rngs::StdRng};
use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};
use streamboard::{
    kinesis::StreamName,
    producer::{Producer, ProducerRecord},
    query::{QueryRequest, query},
    storage::Database,
};
use support::{Peer, create_stream, eventually, free_port, unique_stream};

const REGIONS: [&str; 3] = ["eu", "us", "ap"];
const RECORDS: usize = 6_000;
const BATCH: usize = 200;

/// The serve process, killed when dropped.
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(config: &Path, data_dir: &Path, endpoint: &str) -> Serve {
    let child = Command::new(env!("CARGO_BIN_EXE_streamboard"))
        .args(["serve", "--config"])
        .arg(config)
        .arg("--data-dir")
        .arg(data_dir)
        .args([
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--kinesis-endpoint",
            endpoint,
            "--idle-poll-interval",
            "50ms",
            "--flush-interval",
            "200ms",
        ])
        .env("STREAMBOARD_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the streamboard binary starts");
    Serve(child)
}

fn now_ms() -> i64 {
    streamboard::clock::now_ms()
}

async fn summary(database: &Database, series: Option<&str>) -> Option<contract::api::Point> {
    let request = QueryRequest {
        metric: "latency".into(),
        series: series.map(|s| vec![s.to_string()]),
        from_ms: now_ms() - 3_600_000,
        to_ms: now_ms() + 60_000,
        tier_s: Some(1),
    };
    query(database, &request).await.ok().map(|r| r.summary)
}

/// The exact figures of a set of values.
struct Truth {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    p50: f64,
    p99: f64,
}

fn truth(values: &mut [u64]) -> Truth {
    values.sort_unstable();
    let at = |q: f64| values[((q * values.len() as f64).ceil() as usize).max(1) - 1] as f64;
    Truth {
        count: values.len() as u64,
        sum: values.iter().sum::<u64>() as f64,
        min: values[0] as f64,
        max: values[values.len() - 1] as f64,
        p50: at(0.5),
        p99: at(0.99),
    }
}

fn check(what: &str, stored: &contract::api::Point, expected: &Truth) {
    assert_eq!(stored.summary.count, expected.count, "{what}: count");
    assert_eq!(stored.summary.sum, expected.sum, "{what}: sum");
    assert_eq!(stored.summary.min, Some(expected.min), "{what}: min");
    assert_eq!(stored.summary.max, Some(expected.max), "{what}: max");
    // Two significant figures: a recorded value is within 1 % of the exact one.
    for (name, got, want) in [
        ("p50", stored.summary.p50, expected.p50),
        ("p99", stored.summary.p99, expected.p99),
    ] {
        let got = got.unwrap_or_else(|| panic!("{what}: {name} missing")) as f64;
        assert!(
            (got - want).abs() <= want * 0.01 + 1.0,
            "{what}: {name} {got} vs exact {want}"
        );
    }
}

#[tokio::test]
async fn summaries_equal_the_ground_truth_after_repeated_kill_9() {
    let peer = Peer::start().await;
    let client = peer.client().await;
    let stream = unique_stream("crash");
    create_stream(&client, &stream, 2).await;

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("streamboard.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[streams]]
name = "{stream}"
start = "trim_horizon"

[[metrics]]
name = "latency"
stream = "{stream}"
value = "/latency_ms"
dimensions = ["/region"]
"#
        ),
    )
    .unwrap();
    let data_dir = dir.path().join("data");

    // The data set, and its ground truth per region and overall.
    let mut rng = StdRng::seed_from_u64(7);
    let data: Vec<(usize, u64)> = (0..RECORDS)
        .map(|_| {
            (
                rng.random_range(0..REGIONS.len()),
                rng.random_range(1..=50_000u64),
            )
        })
        .collect();

    // Put it in batches while the server is killed and restarted.
    let producer = Producer::new(client.clone(), StreamName::from(stream.as_str()));
    let putting = {
        let data = data.clone();
        tokio::spawn(async move {
            for (i, chunk) in data.chunks(BATCH).enumerate() {
                let records = chunk
                    .iter()
                    .enumerate()
                    .map(|(j, (region, value))| ProducerRecord {
                        partition_key: format!("k{}", (i * BATCH + j) % 17),
                        explicit_hash_key: None,
                        data: format!(
                            r#"{{"region":"{}","latency_ms":{value}}}"#,
                            REGIONS[*region]
                        )
                        .into_bytes()
                        .into(),
                    })
                    .collect();
                assert_eq!(producer.put(records).await.failed, 0);
                tokio::time::sleep(Duration::from_millis(100)).await; // a steady producer
            }
        })
    };

    let mut kills = 0;
    while !putting.is_finished() || kills < 4 {
        let serve = spawn(&config, &data_dir, &peer.url);
        // A random moment: during start-up, catch-up or steady ingest.
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..2_000))).await;
        drop(serve); // SIGKILL
        kills += 1;
    }
    putting.await.unwrap();

    let serve = spawn(&config, &data_dir, &peer.url);
    let database = Database::open(&data_dir).await.unwrap();
    eventually("every record stored", || async {
        summary(&database, None)
            .await
            .is_some_and(|s| s.summary.count >= RECORDS as u64)
    })
    .await;
    drop(serve); // one more kill -9, after everything was stored

    let mut all: Vec<u64> = data.iter().map(|(_, v)| *v).collect();
    let overall = summary(&database, None).await.unwrap();
    check("all regions", &overall, &truth(&mut all));
    for (r, region) in REGIONS.iter().enumerate() {
        let mut values: Vec<u64> = data
            .iter()
            .filter(|(g, _)| *g == r)
            .map(|(_, v)| *v)
            .collect();
        let stored = summary(&database, Some(region)).await.unwrap();
        check(region, &stored, &truth(&mut values));
    }
    eprintln!("crash test: {kills} kill -9 during ingest, {RECORDS} records, summaries exact");
    database.close().await;
}
