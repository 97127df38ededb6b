//! Fan-out of the live hub: N tokio-tungstenite clients (default 1,000) subscribed to one metric
//! with 50 series, at the 250 ms tick, for a fixed time.
//!
//! The server runs in this process on its own tokio runtime whose worker threads are named
//! `srv-worker`, the clients on another (`ws-client`), so the server's CPU is read per thread
//! from `/proc/self/task/*/stat` and does not include the clients'. Tick lag is the time from
//! the publisher's tick (`server_time_ms` of each update) to the client's receipt of it.
//!
//! `cargo bench --bench ws_fanout` (release) or `cargo test --release --bench ws_fanout`;
//! `FANOUT_CLIENTS`, `FANOUT_SECONDS` and `FANOUT_SERIES` change the load; `FANOUT_FEED_MS`
//! (default 1000) is how often a batch reaches the engine: every batch allows an early push (at
//! most every `live_min_interval`, 100 ms), so 50 (twenty batches a second, like four caught-up
//! shards) measures the publisher at its highest push rate.

use bytes::Bytes;
use contract::protocol::{ClientMessage, PROTOCOL_VERSION, Topic};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::json;
use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};
use streamboard::{
    Server,
    clock::now_ms,
    config::ServeConfig,
    kinesis::SequenceNumber,
    kinesis::{ConsumedRecord, RecordBatch},
    metric::MetricDefinition,
};
use tokio::sync::{Barrier, Semaphore};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

mod common;
use common::thread_ticks;

const STREAM: &str = "fanout";
const METRIC: &str = "fanout_latency";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One record per series: keeps every series of the metric alive in the live windows.
fn batch(series: usize) -> RecordBatch<streamboard::kinesis::Checkpoint> {
    let now = now_ms();
    RecordBatch {
        stream: STREAM.into(),
        shard: "shardId-000000000000".into(),
        records: (0..series)
            .map(|i| ConsumedRecord {
                sequence_number: SequenceNumber::parse("1").expect("a valid sequence number"),
                sub_sequence: None,
                partition_key: "k".into(),
                data: Bytes::from(format!(r#"{{"key":"k{i:03}","ms":{}}}"#, 10 + i % 90)),
                arrival_time_ms: now,
                explicit_hash_key: None,
            })
            .collect(),
        millis_behind_latest: Some(0),
        position: streamboard::kinesis::Checkpoint::default(),
    }
}

/// `"server_time_ms":N` of an update, found without parsing the whole payload.
fn server_time_ms(text: &str) -> Option<i64> {
    const KEY: &str = "\"server_time_ms\":";
    // The key comes within the first few dozen bytes of an update.
    let head = text.get(..text.len().min(256)).unwrap_or(text);
    let at = head.find(KEY)? + KEY.len();
    let digits: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

struct ClientReport {
    lag_ms: Histogram<u64>,
    updates: u64,
    resyncs: u64,
    bytes: u64,
}

/// Connects, subscribes, waits for everyone, then measures until `stop`.
async fn client(
    addr: SocketAddr,
    connect_slots: Arc<Semaphore>,
    ready: Arc<Barrier>,
    stop: CancellationToken,
) -> ClientReport {
    let permit = connect_slots.acquire().await.expect("never closed");
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .expect("the server accepts");
    drop(permit);
    let hello = ClientMessage::Hello {
        protocol: PROTOCOL_VERSION,
    };
    ws.send(Message::text(hello.to_json())).await.expect("send");
    let subscribe = ClientMessage::Subscribe {
        topics: vec![Topic::Metric {
            name: METRIC.into(),
        }],
    };
    ws.send(Message::text(subscribe.to_json()))
        .await
        .expect("send");
    let mut report = ClientReport {
        lag_ms: Histogram::new_with_bounds(1, 60_000, 2).expect("valid bounds"),
        updates: 0,
        resyncs: 0,
        bytes: 0,
    };
    // Until the first update everyone is still connecting: nothing is measured.
    while let Some(Ok(message)) = ws.next().await {
        if matches!(&message, Message::Text(t) if t.starts_with(r#"{"type":"update""#)) {
            break;
        }
    }
    ready.wait().await;
    loop {
        let message = tokio::select! {
            _ = stop.cancelled() => break,
            message = ws.next() => message,
        };
        let Some(Ok(Message::Text(text))) = message else {
            if message.is_none() {
                break;
            }
            continue;
        };
        let received_ms = now_ms();
        // Only the head is looked at: the clients must cost far less than the server.
        if text.starts_with(r#"{"type":"snapshot""#) {
            report.resyncs += 1;
        } else if let Some(tick_ms) = server_time_ms(&text) {
            report.updates += 1;
            report.bytes += text.len() as u64;
            let _ = report.lag_ms.record((received_ms - tick_ms).max(0) as u64);
        }
    }
    let _ = ws.close(None).await;
    report
}

/// Pins the calling thread to `cpu` when `pin` is set.
fn pin_to(pin: bool, cpu: usize) {
    if !pin {
        return;
    }
    // SAFETY: `set` is a plain bit set on the stack, passed with its own size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            eprintln!("ws_fanout: could not pin a thread to CPU {cpu}");
        }
    }
}

fn main() {
    let clients = env_or("FANOUT_CLIENTS", 1_000);
    let seconds = env_or("FANOUT_SECONDS", 20) as u64;
    let series = env_or("FANOUT_SERIES", 50);
    let feed_ms = env_or("FANOUT_FEED_MS", 1_000) as u64;
    let dir = tempfile::tempdir().expect("a temp dir");

    // FANOUT_PIN=1: the server's threads on CPU 0, the clients' on CPU 1, so the 1,000
    // receiving clients (a separate machine's work in production) do not take the server's core.
    let pin = std::env::var("FANOUT_PIN").is_ok_and(|v| v == "1");
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(if pin { 1 } else { 2 })
        .thread_name("srv-worker")
        .on_thread_start(move || pin_to(pin, 0))
        .enable_all()
        .build()
        .expect("server runtime");
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(if pin { 1 } else { 2 })
        .thread_name("ws-client")
        .on_thread_start(move || pin_to(pin, 1))
        .enable_all()
        .build()
        .expect("client runtime");

    let shutdown = CancellationToken::new();
    let server = server_rt.block_on(async {
        let mut config = ServeConfig::for_data_dir(dir.path());
        config.live.live_tick = Duration::from_millis(250);
        config.metrics = vec![
            serde_json::from_value::<MetricDefinition>(json!({
                "name": METRIC, "stream": STREAM, "value": "/ms", "dimensions": ["/key"],
            }))
            .expect("a valid definition"),
        ];
        Server::start(config, shutdown.clone())
            .await
            .expect("the server starts")
    });
    let addr = server.local_addr();
    // A feeder keeps all series alive: one record per series per `feed_ms`.
    let feeder_stop = CancellationToken::new();
    let batches = server.engine_batches();
    server_rt.spawn({
        let stop = feeder_stop.clone();
        async move {
            let mut tick = tokio::time::interval(Duration::from_millis(feed_ms));
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                if batches.send(batch(series)).await.is_err() {
                    return;
                }
            }
        }
    });

    let stop = CancellationToken::new();
    let ready = Arc::new(Barrier::new(clients + 1));
    let connect_slots = Arc::new(Semaphore::new(64));
    let started = Instant::now();
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            client_rt.spawn(client(
                addr,
                connect_slots.clone(),
                ready.clone(),
                stop.clone(),
            ))
        })
        .collect();
    client_rt.block_on(ready.wait());
    let connect_s = started.elapsed().as_secs_f64();

    let ticks_before = thread_ticks("srv-worker");
    let measured = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    let ticks_after = thread_ticks("srv-worker");
    let elapsed_s = measured.elapsed().as_secs_f64();
    stop.cancel();

    let mut lag = Histogram::<u64>::new_with_bounds(1, 60_000, 2).expect("valid bounds");
    let (mut updates, mut resyncs, mut bytes) = (0u64, 0u64, 0u64);
    client_rt.block_on(async {
        for handle in handles {
            let report = handle.await.expect("a client task");
            lag.add(&report.lag_ms).expect("same bounds");
            updates += report.updates;
            resyncs += report.resyncs;
            bytes += report.bytes;
        }
    });
    feeder_stop.cancel();
    server.shutdown();
    server_rt.block_on(async {
        let _ = tokio::time::timeout(Duration::from_secs(10), server.wait()).await;
    });

    // /proc stat times are in USER_HZ, which Linux fixes at 100 for user space.
    const CLOCK_TICKS_PER_S: f64 = 100.0;
    let server_cpu = (ticks_after - ticks_before) as f64 / CLOCK_TICKS_PER_S / elapsed_s;
    println!(
        "ws_fanout: {clients} clients × {series} series, 250 ms tick, a batch every {feed_ms} ms, \
         {elapsed_s:.1} s measured (connect + first update: {connect_s:.1} s){}",
        if pin {
            "; server on CPU 0, clients on CPU 1"
        } else {
            ""
        }
    );
    println!(
        "  server CPU {:.0}% of one core; updates received {updates} ({:.2} per client per \
         second), resyncs {resyncs}, {:.1} MB/s sent",
        server_cpu * 100.0,
        updates as f64 / clients as f64 / elapsed_s,
        bytes as f64 / elapsed_s / 1e6
    );
    println!(
        "  tick lag ms: p50 {} p90 {} p99 {} max {}",
        lag.value_at_quantile(0.5),
        lag.value_at_quantile(0.9),
        lag.value_at_quantile(0.99),
        lag.max()
    );
}
