//! Throughput of the embedded Kinesis endpoint against kinesis-local, through aws-sdk-kinesis
//! on loopback: PutRecords (100-byte records, batches of 500, several requests in flight) and a
//! GetRecords drain (Limit 10,000, one reader per shard). Prints records/s for each and the
//! ratio. A benchmark, not a test: run with `cargo bench --bench endpoint_throughput`.
//!
//! The embedded endpoint runs in a child process (this binary, re-executed) on the same
//! machine, so besides wall-clock records/s the bench reports the CPU time each side spent:
//! the endpoint's, and the client's (aws-sdk-kinesis building, signing and parsing). With
//! other work on the shared cores, records per endpoint CPU-second is the steadier figure.
//!
//! kinesis-local slows as a shard fills, so its part is small (a few thousand records per
//! shard); set `ENDPOINT_BENCH_SKIP_LOCAL=1` to measure the embedded endpoint alone.

#[path = "../tests/support/mod.rs"]
mod support;

mod common;

use aws_sdk_kinesis::{
    Client,
    primitives::Blob,
    types::{PutRecordsRequestEntry, ShardIteratorType},
};
use common::{CHILD_ENV, ChildEndpoint, endpoint_child, load_average, process_cpu};
use std::{
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};
use streamboard::kinesis::client::{KinesisTarget, build_client};

const RECORD_BYTES: usize = 100;
const BATCH: usize = 500;
const IN_FLIGHT: usize = 8;

struct Figures {
    put_per_sec: f64,
    get_per_sec: f64,
    records: usize,
    /// CPU-seconds of (client, endpoint) in the put and the get phase, when measured.
    put_cpu: Option<(f64, f64)>,
    get_cpu: Option<(f64, f64)>,
}

/// CPU time so far of this process (the client) and of the endpoint process.
fn cpu_now(endpoint: &mut Option<&mut ChildEndpoint>) -> Option<(Duration, Duration)> {
    endpoint
        .as_deref_mut()
        .map(|child| (process_cpu(), child.cpu()))
}

fn cpu_since(
    endpoint: &mut Option<&mut ChildEndpoint>,
    before: Option<(Duration, Duration)>,
) -> Option<(f64, f64)> {
    let (client, server) = cpu_now(endpoint)?;
    let (client_before, server_before) = before?;
    Some((
        (client - client_before).as_secs_f64(),
        (server - server_before).as_secs_f64(),
    ))
}

async fn run(
    client: &Client,
    stream: &str,
    shards: i32,
    batches: usize,
    mut endpoint: Option<&mut ChildEndpoint>,
) -> Figures {
    support::create_stream(client, stream, shards).await;
    let payload = Blob::new(vec![b'x'; RECORD_BYTES]);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let cpu_before = cpu_now(&mut endpoint);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..IN_FLIGHT {
        let client = client.clone();
        let stream = stream.to_string();
        let payload = payload.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let batch = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if batch >= batches {
                    return;
                }
                let entries: Vec<_> = (0..BATCH)
                    .map(|i| {
                        PutRecordsRequestEntry::builder()
                            .partition_key(format!("key-{batch}-{i}"))
                            .data(payload.clone())
                            .build()
                            .expect("entry")
                    })
                    .collect();
                let out = client
                    .put_records()
                    .stream_name(&stream)
                    .set_records(Some(entries))
                    .send()
                    .await
                    .expect("PutRecords");
                assert_eq!(out.failed_record_count, Some(0));
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
    let put_secs = started.elapsed().as_secs_f64();
    let put_cpu = cpu_since(&mut endpoint, cpu_before);
    let records = batches * BATCH;

    let shard_ids: Vec<String> = client
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .expect("ListShards")
        .shards
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.shard_id)
        .collect();
    let cpu_before = cpu_now(&mut endpoint);
    let started = Instant::now();
    let mut readers = Vec::new();
    for shard in shard_ids {
        let client = client.clone();
        let stream = stream.to_string();
        readers.push(tokio::spawn(async move {
            let mut iterator = client
                .get_shard_iterator()
                .stream_name(&stream)
                .shard_id(&shard)
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await
                .expect("GetShardIterator")
                .shard_iterator;
            let mut read = 0usize;
            while let Some(it) = iterator {
                let out = client
                    .get_records()
                    .shard_iterator(it)
                    .limit(10_000)
                    .send()
                    .await
                    .expect("GetRecords");
                if out.records.is_empty() {
                    break;
                }
                read += out.records.len();
                iterator = out.next_shard_iterator;
            }
            read
        }));
    }
    let mut read = 0;
    for reader in readers {
        read += reader.await.expect("reader");
    }
    let get_secs = started.elapsed().as_secs_f64();
    let get_cpu = cpu_since(&mut endpoint, cpu_before);
    assert_eq!(read, records, "the drain read every record");
    Figures {
        put_per_sec: records as f64 / put_secs,
        get_per_sec: read as f64 / get_secs,
        records,
        put_cpu,
        get_cpu,
    }
}

/// "client 1.23 CPU-s, endpoint 0.45 CPU-s = 890,000 records per endpoint CPU-s".
fn cpu_line(records: usize, cpu: Option<(f64, f64)>) -> String {
    match cpu {
        Some((client, endpoint)) => format!(
            "client {client:.2} CPU-s, endpoint {endpoint:.2} CPU-s = {:.0} records per endpoint CPU-s, {:.0} per client+endpoint CPU-s",
            records as f64 / endpoint,
            records as f64 / (client + endpoint)
        ),
        None => "CPU not measured".into(),
    }
}

struct KinesisLocal(Child);

impl Drop for KinesisLocal {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn start_kinesis_local() -> Option<(KinesisLocal, Client)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()?
        .to_path_buf();
    let package = root.join("node_modules/kinesis-local");
    if !package.join("main.js").exists() {
        eprintln!("node_modules/kinesis-local is missing: run `npm ci`; skipping its part");
        return None;
    }
    let (plain, tls) = (free_port(), free_port());
    let child = Command::new("node")
        .arg(package.join("main.js"))
        .env("KINESIS_MOCK_CERT_PATH", package.join("server.json"))
        .env("KINESIS_MOCK_PLAIN_PORT", plain.to_string())
        .env("KINESIS_MOCK_TLS_PORT", tls.to_string())
        .env("CREATE_STREAM_DURATION", "0ms")
        .env("SHARD_LIMIT", "1000")
        .env("LOG_LEVEL", "WARN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let guard = KinesisLocal(child);
    let client = build_client(&KinesisTarget::Local {
        endpoint_url: format!("http://127.0.0.1:{plain}"),
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.list_streams().send().await.is_err() {
        if Instant::now() > deadline {
            eprintln!("kinesis-local did not start; skipping its part");
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Some((guard, client))
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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut endpoint = ChildEndpoint::start();
        let client = build_client(&KinesisTarget::Local {
            endpoint_url: endpoint.url.clone(),
        })
        .await;
        let batches: usize = std::env::var("ENDPOINT_BENCH_BATCHES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(800);
        // Warm-up (connections, allocator), not measured.
        run(&client, "bench-warmup", 4, 20, None).await;
        let load_before = load_average();
        let embedded = run(&client, "bench-embedded", 4, batches, Some(&mut endpoint)).await;
        println!(
            "embedded endpoint: {} records of {RECORD_BYTES} B, {IN_FLIGHT} PutRecords in flight, load average {load_before} before, {} after",
            embedded.records,
            load_average()
        );
        println!(
            "  put {:.0} records/s wall; {}",
            embedded.put_per_sec,
            cpu_line(embedded.records, embedded.put_cpu)
        );
        println!(
            "  GetRecords drain {:.0} records/s wall; {}",
            embedded.get_per_sec,
            cpu_line(embedded.records, embedded.get_cpu)
        );
        drop(endpoint);

        if std::env::var_os("ENDPOINT_BENCH_SKIP_LOCAL").is_some() {
            return;
        }
        if let Some((_guard, local_client)) = start_kinesis_local().await {
            // 2 shards x ~2,000 records: kinesis-local slows as a shard fills.
            let local = run(&local_client, "bench-local", 2, 8, None).await;
            println!(
                "kinesis-local:     {} records of {RECORD_BYTES} B: put {:.0} records/s, GetRecords drain {:.0} records/s",
                local.records, local.put_per_sec, local.get_per_sec
            );
            println!(
                "ratio embedded/kinesis-local: put {:.1}x, get {:.1}x",
                embedded.put_per_sec / local.put_per_sec,
                embedded.get_per_sec / local.get_per_sec
            );
        }
    });
}
