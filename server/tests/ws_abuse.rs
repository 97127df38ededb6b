//! WebSocket abuse against the real `streamboard serve` binary with live data flowing: many
//! idle connections, clients flooding frames without reading a byte back, and clients churning
//! their subscriptions. Asserted: the server's memory is bounded (per connection, and flat
//! while the floods go on), well-behaved clients keep their tick lag, and every abusive
//! session is gone once its client disconnects.
//!
//! `make test` opens 1,000 connections; `STREAMBOARD_SOAK=1` (`make soak`) opens 10,000 (the
//! test raises its open-file limit to the hard limit, which the server inherits).

mod support;

use contract::protocol::{ClientMessage, LivePayload, PROTOCOL_VERSION, ServerMessage, Topic};
use futures_util::{SinkExt, StreamExt};
use rand::{Rng, SeedableRng, rngs::StdRng};
use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use streamboard::{kinesis::StreamName, producer::Producer};
use support::{
    Peer, create_stream, eventually_within,
    serve::{METRIC, Serve, Truth, soak, write_config},
    unique_stream, ws_connect, ws_send,
};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

const OBSERVERS: usize = 5;
const FLOODERS: usize = 40;
const CHURNERS: usize = 20;
/// Frames a flooder sends per second: 4 times what the server reads from one client (the
/// rest queues in the socket); more would only spend this process's CPU, not the server's.
const FLOOD_FRAMES_PER_SEC: u64 = 200;

/// Raises this process's open-file limit to its hard limit; returns the new soft limit.
fn raise_fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a stack value.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    limit.rlim_cur
}

async fn open(addr: SocketAddr, topics: Vec<Topic>) -> support::WsSocket {
    let mut socket = ws_connect(addr, support::WsOptions::default()).await;
    ws_send(
        &mut socket,
        ClientMessage::Hello {
            protocol: PROTOCOL_VERSION,
        },
    )
    .await;
    if !topics.is_empty() {
        ws_send(&mut socket, ClientMessage::Subscribe { topics }).await;
    }
    socket
}

/// A well-behaved client: reads every frame and records each overview update's tick lag
/// (receipt time minus the push's `server_time_ms`) while `measuring` is on.
fn observer(
    addr: SocketAddr,
    lags: Arc<Mutex<Vec<i64>>>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut socket = open(addr, vec![Topic::Overview]).await;
        loop {
            let frame = tokio::select! {
                _ = stop.cancelled() => return,
                frame = socket.next() => frame,
            };
            let Some(Ok(Message::Text(text))) = frame else {
                panic!("an observer's session ended: {frame:?}");
            };
            let received_ms = streamboard::clock::now_ms();
            if let Ok(ServerMessage::Update {
                payload: LivePayload::Overview(overview),
                ..
            }) = serde_json::from_str(&text)
            {
                lags.lock()
                    .await
                    .push(received_ms - overview.server_time_ms);
            }
        }
    })
}

fn percentile(values: &mut [i64], q: f64) -> i64 {
    if values.is_empty() {
        return 0;
    }
    values.sort_unstable();
    values[((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1]
}

async fn websocket_sessions(serve: &Serve) -> Option<u64> {
    serve
        .metric_values("streamboard_websocket_connections")
        .await
        .first()
        .map(|v| *v as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_leaves_memory_bounded_and_other_clients_on_time() {
    let connections = if soak() { 10_000 } else { 1_000 };
    let fd_limit = raise_fd_limit();
    assert!(
        fd_limit as usize > connections + 1_000,
        "the open-file limit {fd_limit} is too low for {connections} connections"
    );

    // Live data: a producer putting 200 records/s through the embedded endpoint.
    let peer = Peer::start().await;
    let stream = unique_stream("wsabuse");
    create_stream(&peer.client, &stream, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &stream);
    let mut serve = Serve::spawn(&config, &dir.path().join("data"), &peer.url, &[]);
    let addr = serve.addr;
    serve.wait_ready().await;
    let stop = CancellationToken::new();
    let producing = {
        let producer = Producer::new(peer.client.clone(), StreamName::from(stream.as_str()));
        let stop = stop.clone();
        tokio::spawn(async move {
            let (truth, mut rng) = (Truth::default(), StdRng::seed_from_u64(5));
            while !stop.is_cancelled() {
                truth.put(&producer, &mut rng, 20).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    // Baseline: the observers' tick lag with nobody else connected.
    let lags = Arc::new(Mutex::new(Vec::new()));
    let observers_stop = CancellationToken::new();
    let observers: Vec<_> = (0..OBSERVERS)
        .map(|_| observer(addr, lags.clone(), observers_stop.clone()))
        .collect();
    tokio::time::sleep(Duration::from_secs(5)).await; // a measuring window, not a wait
    let mut baseline = std::mem::take(&mut *lags.lock().await);
    assert!(baseline.len() > 10, "the observers received updates");
    let rss_before = serve.rss_kib().expect("the server's RSS");

    // Many idle connections (hello, no topics: heartbeats only).
    let opened = Instant::now();
    let mut idle = Vec::with_capacity(connections);
    for chunk in 0..connections.div_ceil(200) {
        let batch = (0..200.min(connections - chunk * 200)).map(|_| open(addr, vec![]));
        idle.extend(futures_util::future::join_all(batch).await);
    }
    let open_secs = opened.elapsed().as_secs_f64();
    eventually_within("every session open", Duration::from_secs(60), || async {
        websocket_sessions(&serve).await >= Some((connections + OBSERVERS) as u64)
    })
    .await;
    let rss_connected = serve.rss_kib().expect("the server's RSS");
    lags.lock().await.clear();

    // Floods and churn on top, for a measured period.
    let sent = Arc::new(AtomicU64::new(0));
    let abuse_stop = CancellationToken::new();
    let mut abusers = Vec::new();
    for i in 0..FLOODERS {
        let (sent, stop) = (sent.clone(), abuse_stop.clone());
        abusers.push(tokio::spawn(async move {
            // Never reads: the server's answers back up and its session must not buffer them.
            let mut socket = open(addr, vec![Topic::Overview]).await;
            let mut n = 0u64;
            let mut pace =
                tokio::time::interval(Duration::from_micros(1_000_000 / FLOOD_FRAMES_PER_SEC));
            while !stop.is_cancelled() {
                pace.tick().await;
                n += 1;
                let frame = match (i % 3, n % 4) {
                    (0, _) => Message::text(format!(r#"{{"type":"ping","nonce":{n}}}"#)),
                    (1, _) => Message::text("{\"type\":\"nonsense\"".repeat(1_000)),
                    (_, 0) => Message::binary(vec![0u8; 60 * 1024]),
                    _ => Message::text(r#"{"type":"subscribe","topics":[{"topic":"streams"}]}"#),
                };
                tokio::select! {
                    _ = stop.cancelled() => break,
                    result = socket.send(frame) => if result.is_err() { break },
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for i in 0..CHURNERS {
        let (sent, stop) = (sent.clone(), abuse_stop.clone());
        abusers.push(tokio::spawn(async move {
            let mut socket = open(addr, vec![]).await;
            let mut rng = StdRng::seed_from_u64(i as u64);
            while !stop.is_cancelled() {
                let topics = match rng.random_range(0..4) {
                    0 => vec![],
                    1 => vec![Topic::Overview, Topic::Streams],
                    2 => vec![Topic::Metric {
                        name: METRIC.into(),
                    }],
                    _ => (0..16)
                        .map(|k| Topic::Metric {
                            name: format!("m{k}"),
                        })
                        .collect(),
                };
                ws_send(&mut socket, ClientMessage::Subscribe { topics }).await;
                sent.fetch_add(1, Ordering::Relaxed);
                // Reads until the snapshot marker of this subscription.
                loop {
                    let frame = tokio::select! {
                        _ = stop.cancelled() => return,
                        frame = socket.next() => frame,
                    };
                    match frame {
                        Some(Ok(Message::Text(text))) if text.contains("\"type\":\"snapshot\"") => {
                            break;
                        }
                        Some(Ok(_)) => {}
                        other => panic!("a churner's session ended: {other:?}"),
                    }
                }
            }
        }));
    }
    let abuse_period = if soak() { 60 } else { 15 };
    let mut rss_during = Vec::new();
    for _ in 0..abuse_period {
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(serve.is_running(), "serve exited under abuse");
        rss_during.extend(serve.rss_kib());
    }
    let mut under_abuse = std::mem::take(&mut *lags.lock().await);
    abuse_stop.cancel();
    for abuser in abusers {
        abuser.await.unwrap();
    }
    let frames = sent.load(Ordering::Relaxed);

    // Everyone but the observers leaves; their sessions end.
    drop(idle);
    eventually_within(
        "abusive sessions closed",
        Duration::from_secs(60),
        || async { websocket_sessions(&serve).await == Some(OBSERVERS as u64) },
    )
    .await;
    observers_stop.cancel();
    for observer in observers {
        observer.await.unwrap();
    }
    stop.cancel();
    producing.await.unwrap();

    let half = rss_during.len() / 2;
    let (first, second) = (
        rss_during[..half].iter().max().copied().unwrap_or(0),
        rss_during[half..].iter().max().copied().unwrap_or(0),
    );
    let per_connection_kib = rss_connected.saturating_sub(rss_before) as f64 / connections as f64;
    let (b50, b99) = (
        percentile(&mut baseline, 0.5),
        percentile(&mut baseline, 0.99),
    );
    let (a50, a99) = (
        percentile(&mut under_abuse, 0.5),
        percentile(&mut under_abuse, 0.99),
    );
    eprintln!(
        "ws_abuse: {connections} connections opened in {open_secs:.1} s; RSS {} MiB before, {} MiB \
         with them ({per_connection_kib:.1} KiB each), peak {} / {} MiB in the two halves of \
         {abuse_period} s of {FLOODERS} floods and {CHURNERS} churners ({frames} frames sent); \
         observers' tick lag p50/p99 {b50}/{b99} ms alone, {a50}/{a99} ms under abuse \
         ({} updates)",
        rss_before / 1024,
        rss_connected / 1024,
        first / 1024,
        second / 1024,
        under_abuse.len()
    );
    assert!(
        per_connection_kib < 100.0,
        "{per_connection_kib:.1} KiB per idle connection"
    );
    assert!(
        second <= first + first / 10 + 16 * 1024,
        "memory grew under floods: {first} KiB, then {second} KiB"
    );
    assert!(
        under_abuse.len() > abuse_period * OBSERVERS,
        "the observers kept receiving updates"
    );
    // Tick lag: the push to the observers is not held up by the abusers (a generous bound:
    // the same cores also run the abusers and the producer).
    assert!(
        a50 <= b50 + 150 && a99 <= b99.max(100) * 5,
        "tick lag p50/p99 {b50}/{b99} ms alone, {a50}/{a99} ms under abuse"
    );
    drop(serve);
}
