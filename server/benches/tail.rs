//! A live record tail of a 20,000 records/s stream (`cargo bench -p streamboard --bench tail`;
//! harness = false): what one viewer costs the server, and that its memory stays bounded.
//!
//! The server (`serve`'s embedded default with the demo producer off: the embedded endpoint,
//! the consumer and the engine reading `clickstream`, 2 shards) runs on its own runtime whose
//! threads are named `srv-worker`; a producer putting `TAIL_RATE` (20,000) records/s of ~130
//! bytes into `clickstream` and the WebSocket viewer run on another (`load`), so the server's
//! CPU is read from its own threads. Phases of `TAIL_SECONDS` (10) each:
//!
//! 1. no viewer (the consumer, the engine and the endpoint taking the puts: the baseline);
//! 2. one viewer tailing with a filter that matches about 5 % (`/status >= 500`);
//! 3. one viewer tailing everything (every record matches: the server samples 40/s);
//! 4. one viewer that stops reading its socket (a frozen browser tab).
//!
//! Each phase prints the server's CPU (share of one core), the tail's read, matched and shown
//! records per second from its last update, and the process's RSS at the phase's end.

use contract::{
    protocol::{ClientMessage, LivePayload, PROTOCOL_VERSION, ServerMessage, Topic},
    tail::{TailQuery, TailUpdate},
};
use futures_util::{SinkExt, StreamExt};
use std::time::{Duration, Instant};
use streamboard::{
    Server,
    config::{KinesisSource, ServeConfig},
    kinesis::{
        StreamName,
        client::{KinesisTarget, build_client},
    },
    producer::{Producer, ProducerRecord},
};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

mod common;
use common::thread_ticks;

const STREAM: &str = "clickstream";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    (unsafe { libc::sysconf(libc::_SC_CLK_TCK) }) as f64
}

/// Puts `rate` records/s into the stream until `stop`; returns how many were put.
async fn produce(endpoint_url: String, rate: u64, stop: CancellationToken) -> u64 {
    let client = build_client(&KinesisTarget::Local { endpoint_url }).await;
    let producer = Producer::new(client, StreamName::from(STREAM));
    let tick = Duration::from_millis(50);
    let per_tick = (rate as f64 * tick.as_secs_f64()) as usize;
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut put = 0u64;
    let mut n = 0u64;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return put,
            _ = interval.tick() => {}
        }
        let records = (0..per_tick)
            .map(|_| {
                n += 1;
                let status = if n.is_multiple_of(20) { 503 } else { 200 };
                ProducerRecord {
                    partition_key: format!("user-{}", n % 997),
                    explicit_hash_key: None,
                    data: format!(
                        r#"{{"region":"eu-west-1","path":"/cart/{}","status":{status},"latency_ms":{},"user":"u{}"}}"#,
                        n % 50,
                        n % 1000,
                        n % 997
                    )
                    .into_bytes()
                    .into(),
                }
            })
            .collect();
        let report = producer.put(records).await;
        put += (per_tick as u64).saturating_sub(report.failed);
    }
}

/// A viewer: subscribes to a tail, reads (unless `stalled`) until `stop`, returns its last update.
async fn view(
    addr: std::net::SocketAddr,
    filter: &str,
    stalled: bool,
    stop: CancellationToken,
) -> Option<TailUpdate> {
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .expect("the WebSocket opens");
    for message in [
        ClientMessage::Hello {
            protocol: PROTOCOL_VERSION,
        },
        ClientMessage::Subscribe {
            topics: vec![Topic::Tail(TailQuery {
                stream: STREAM.into(),
                filter: filter.into(),
                ..TailQuery::default()
            })],
        },
    ] {
        socket
            .send(Message::text(message.to_json()))
            .await
            .expect("the server takes the message");
    }
    if stalled {
        stop.cancelled().await;
        return None;
    }
    let mut last = None;
    loop {
        let message = tokio::select! {
            _ = stop.cancelled() => return last,
            message = socket.next() => message,
        };
        let Some(Ok(Message::Text(text))) = message else {
            continue;
        };
        if let Ok(ServerMessage::Update {
            payload: LivePayload::Tail(update),
            ..
        }) = serde_json::from_str(&text)
        {
            last = Some(*update);
        }
    }
}

fn main() {
    let rate = env_or("TAIL_RATE", 20_000);
    let seconds = env_or("TAIL_SECONDS", 10);
    let dir = tempfile::tempdir().expect("a temp dir");
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("srv-worker")
        .enable_all()
        .build()
        .expect("server runtime");
    let load_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("load")
        .enable_all()
        .build()
        .expect("load runtime");
    let shutdown = CancellationToken::new();
    let server = server_rt.block_on(async {
        let mut config = ServeConfig::for_data_dir(dir.path());
        config.source = KinesisSource::Embedded {
            listen: "127.0.0.1:0".parse().expect("an address"),
            demo_rate: 0,
        };
        Server::start(config, shutdown.clone())
            .await
            .expect("the server starts")
    });
    let addr = server.local_addr();
    let endpoint_url = server
        .pipeline()
        .embedded_endpoint_url
        .clone()
        .expect("the embedded endpoint runs");
    let produce_stop = CancellationToken::new();
    let producing = load_rt.spawn(produce(endpoint_url, rate, produce_stop.clone()));
    // Let the consumer catch up with the load first.
    std::thread::sleep(Duration::from_secs(3));

    println!(
        "tail bench: {rate} records/s asked into {STREAM} (2 shards), {seconds} s per phase, load {}",
        common::load_average()
    );
    let phases: [(&str, Option<(&str, bool)>); 4] = [
        ("no viewer", None),
        (
            "one viewer, filter /status >= 500",
            Some(("/status >= 500", false)),
        ),
        ("one viewer, no filter", Some(("", false))),
        ("one viewer that stopped reading", Some(("", true))),
    ];
    let hz = ticks_per_second();
    for (name, viewer) in phases {
        let stop = CancellationToken::new();
        let viewing = viewer
            .map(|(filter, stalled)| load_rt.spawn(view(addr, filter, stalled, stop.clone())));
        let started = Instant::now();
        let ticks = thread_ticks("srv-worker");
        std::thread::sleep(Duration::from_secs(seconds));
        let cpu_s = (thread_ticks("srv-worker") - ticks) as f64 / hz;
        let wall_s = started.elapsed().as_secs_f64();
        stop.cancel();
        let last = viewing.and_then(|v| load_rt.block_on(v).ok().flatten());
        let tail = last.map_or_else(
            || "-".to_string(),
            |u| {
                format!(
                    "tail read {:.0}/s, matched {:.0}/s, shown {:.1}/s",
                    u.read_per_s, u.matched_per_s, u.shown_per_s
                )
            },
        );
        println!(
            "{name}: server CPU {:.1} % of a core; {tail}; RSS {:.1} MiB",
            100.0 * cpu_s / wall_s,
            rss_mib()
        );
        // The tail's readers stop once its viewer has gone.
        std::thread::sleep(Duration::from_secs(1));
    }
    produce_stop.cancel();
    let put = load_rt.block_on(producing).unwrap_or(0);
    println!(
        "producer put {put} records ({:.0}/s on average over the run)",
        put as f64 / (3 + 4 * (seconds + 1)) as f64
    );
    server.shutdown();
    server_rt
        .block_on(server.wait())
        .expect("the server stops cleanly");
}
