//! The live hub on the real server (loopback port 0, real SQLite file) with tokio-tungstenite
//! clients: subscribe → snapshot → updates whose numbers match the engine, a stalled client
//! that neither slows others nor grows a queue (it gets a resync), the topic limit, and the
//! Origin check.

mod support;

use bytes::Bytes;
use contract::protocol::{
    ClientMessage, LivePayload, MAX_TOPICS, PROTOCOL_VERSION, ServerMessage, Topic,
};
use futures_util::StreamExt;
use serde_json::json;
use std::time::Duration;
use streamboard::{
    Server, config::ServeConfig, kinesis::ConsumedRecord, kinesis::SequenceNumber,
    metric::MetricDefinition,
};
use support::{WsOptions, WsSocket as Socket, ws_connect, ws_send as send, ws_upgrade};
use tokio_tungstenite::tungstenite::{Message, protocol::frame::coding::CloseCode};
use tokio_util::sync::CancellationToken;

/// Upper bound for any single wait; the tests finish far sooner when healthy.
const WAIT: Duration = Duration::from_secs(10);

async fn start(dir: &std::path::Path, stream: &str, tick: Duration) -> Server {
    start_paced(dir, stream, tick, tick).await
}

async fn start_paced(
    dir: &std::path::Path,
    stream: &str,
    tick: Duration,
    min_interval: Duration,
) -> Server {
    let mut config = ServeConfig::for_data_dir(dir);
    config.live.live_tick = tick;
    config.live.live_min_interval = min_interval;
    config.metrics = vec![
        serde_json::from_value::<MetricDefinition>(json!({
            "name": format!("{stream}_amount"), "stream": stream, "value": "/amount",
            "dimensions": ["/country"],
        }))
        .unwrap(),
    ];
    Server::start(config, CancellationToken::new())
        .await
        .unwrap()
}

async fn feed(server: &Server, stream: &str, countries: usize, per_country: usize) {
    let now = streamboard::clock::now_ms();
    let records = (0..countries * per_country)
        .map(|i| ConsumedRecord {
            sequence_number: SequenceNumber::parse("1").unwrap(),
            sub_sequence: None,
            partition_key: "k".into(),
            data: Bytes::from(format!(
                r#"{{"country":"c{}","amount":{}}}"#,
                i % countries,
                10 + i % 7
            )),
            arrival_time_ms: now,
            explicit_hash_key: None,
        })
        .collect();
    support::ingest(server, stream, records).await;
}

async fn next_server_message(socket: &mut Socket) -> ServerMessage {
    loop {
        let message = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("the server answers in time")
            .expect("the socket is open")
            .expect("a valid frame");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

async fn hello(socket: &mut Socket) {
    send(
        socket,
        ClientMessage::Hello {
            protocol: PROTOCOL_VERSION,
        },
    )
    .await;
    assert!(matches!(
        next_server_message(socket).await,
        ServerMessage::Hello {
            protocol: PROTOCOL_VERSION,
            ..
        }
    ));
}

/// Reads until `pick` returns something, within [`WAIT`] overall.
async fn read_until<T>(socket: &mut Socket, mut pick: impl FnMut(ServerMessage) -> Option<T>) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            if let Some(found) = pick(next_server_message(socket).await) {
                return found;
            }
        }
    })
    .await
    .expect("the expected message arrives in time")
}

#[tokio::test]
async fn subscribe_gets_snapshot_then_updates_matching_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let stream = "live-test-match";
    let metric = format!("{stream}_amount");
    let server = start(dir.path(), stream, Duration::from_millis(20)).await;
    let mut socket = ws_connect(server.local_addr(), WsOptions::default()).await;
    hello(&mut socket).await;
    send(
        &mut socket,
        ClientMessage::Subscribe {
            topics: vec![
                Topic::Overview,
                Topic::Metric {
                    name: metric.clone(),
                },
                Topic::Metric {
                    name: "no_such_metric".into(),
                },
            ],
        },
    )
    .await;
    assert!(
        matches!(
            next_server_message(&mut socket).await,
            ServerMessage::Snapshot { .. }
        ),
        "a subscribe is answered with a snapshot first"
    );

    feed(&server, stream, 2, 25).await;
    let now = streamboard::clock::now_ms();
    let engine_count: u64 = server
        .engine()
        .windows(now)
        .await
        .unwrap()
        .series
        .iter()
        .filter(|s| s.name == metric)
        .map(|s| s.windows[0].summary.count)
        .sum();
    assert_eq!(engine_count, 50);

    let live = read_until(&mut socket, |m| match m {
        ServerMessage::Update {
            payload: LivePayload::Metric(live),
            ..
        } if live.name == metric
            && live
                .card
                .as_ref()
                .is_some_and(|c| c.windows.first().is_some_and(|w| w.summary.count == 50)) =>
        {
            Some(live)
        }
        _ => None,
    })
    .await;
    let card = live.card.unwrap();
    assert_eq!(card.series, 2);
    assert_eq!(card.stream, stream);
    let expected_mean = (0..50).map(|i| (10 + i % 7) as f64).sum::<f64>() / 50.0;
    let mean = card.windows[0].summary.mean.unwrap();
    assert!(
        (mean - expected_mean).abs() < 1e-9,
        "{mean} vs {expected_mean}"
    );
    let mut labels: Vec<_> = live.series.iter().map(|s| s.labels.clone()).collect();
    labels.sort();
    assert_eq!(labels, [vec!["c0".to_string()], vec!["c1".to_string()]]);
    assert!(live.series.iter().all(|s| s.windows[0].summary.count == 25));

    let overview = read_until(&mut socket, |m| match m {
        ServerMessage::Update {
            payload: LivePayload::Overview(o),
            ..
        } => Some(o),
        _ => None,
    })
    .await;
    assert!(
        overview
            .metrics
            .iter()
            .any(|c| c.name == metric && c.windows[0].summary.count == 50)
    );
    let unknown = read_until(&mut socket, |m| match m {
        ServerMessage::Update {
            payload: LivePayload::Metric(live),
            ..
        } if live.name == "no_such_metric" => Some(live),
        _ => None,
    })
    .await;
    assert!(!unknown.found);
    server.shutdown();
    server.wait().await.unwrap();
}

#[tokio::test]
async fn new_records_are_pushed_without_waiting_for_the_tick() {
    // A tick far longer than the test may wait: only the push on ingest can deliver the update.
    let dir = tempfile::tempdir().unwrap();
    let stream = "live-test-early";
    let metric = format!("{stream}_amount");
    let server = start_paced(
        dir.path(),
        stream,
        Duration::from_secs(3600),
        Duration::from_millis(10),
    )
    .await;
    let mut socket = ws_connect(server.local_addr(), WsOptions::default()).await;
    hello(&mut socket).await;
    send(
        &mut socket,
        ClientMessage::Subscribe {
            topics: vec![Topic::Metric {
                name: metric.clone(),
            }],
        },
    )
    .await;
    assert!(matches!(
        next_server_message(&mut socket).await,
        ServerMessage::Snapshot { .. }
    ));
    for round in 1..=3u64 {
        feed(&server, stream, 1, 10).await;
        let count = read_until(&mut socket, |m| match m {
            ServerMessage::Update {
                payload: LivePayload::Metric(live),
                ..
            } if live.name == metric => live
                .card
                .and_then(|c| c.windows.first().map(|w| w.summary.count))
                .filter(|count| *count == 10 * round),
            _ => None,
        })
        .await;
        assert_eq!(count, 10 * round);
    }
    server.shutdown();
    server.wait().await.unwrap();
}

#[tokio::test]
async fn a_stalled_client_does_not_slow_others_and_is_resynchronised() {
    let dir = tempfile::tempdir().unwrap();
    let stream = "live-test-stall";
    let metric = format!("{stream}_amount");
    let server = start(dir.path(), stream, Duration::from_millis(5)).await;
    // Many series make each update large, so an unread socket fills in a fraction of a second.
    feed(&server, stream, 300, 1).await;
    let topics = vec![Topic::Metric { name: metric }, Topic::Overview];

    let mut stalled = ws_connect(
        server.local_addr(),
        WsOptions {
            recv_buffer: Some(64 * 1024),
            ..WsOptions::default()
        },
    )
    .await;
    hello(&mut stalled).await;
    send(
        &mut stalled,
        ClientMessage::Subscribe {
            topics: topics.clone(),
        },
    )
    .await;
    let first = read_until(&mut stalled, |m| match m {
        ServerMessage::Snapshot { seq } => Some(seq),
        _ => None,
    })
    .await;

    // The stalled client reads nothing now; a healthy one keeps receiving every tick's figures.
    let mut healthy = ws_connect(server.local_addr(), WsOptions::default()).await;
    hello(&mut healthy).await;
    send(&mut healthy, ClientMessage::Subscribe { topics }).await;
    let start = read_until(&mut healthy, |m| match m {
        ServerMessage::Update { seq, .. } => Some(seq),
        _ => None,
    })
    .await;
    let started = std::time::Instant::now();
    read_until(&mut healthy, |m| match m {
        ServerMessage::Update { seq, .. } if seq >= start + 100 => Some(()),
        _ => None,
    })
    .await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(5),
        "100 ticks of 5 ms took {elapsed:?} with a stalled client connected"
    );

    // Reading again, the stalled client drains what the kernel buffered and then gets a
    // fresh snapshot instead of a backlog.
    let resync = read_until(&mut stalled, |m| match m {
        ServerMessage::Snapshot { seq } if seq > first => Some(seq),
        _ => None,
    })
    .await;
    assert!(resync > first);
    // The stalled client stops reading again; it must not hold up a graceful shutdown.
    let stopping = std::time::Instant::now();
    server.shutdown();
    server.wait().await.unwrap();
    assert!(
        stopping.elapsed() < Duration::from_secs(3),
        "shutdown took {:?} with a stalled client",
        stopping.elapsed()
    );
}

#[tokio::test]
async fn too_many_topics_close_the_socket_with_1008() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), "live-test-limit", Duration::from_millis(50)).await;
    let mut socket = ws_connect(server.local_addr(), WsOptions::default()).await;
    hello(&mut socket).await;
    let topics = (0..=MAX_TOPICS)
        .map(|i| Topic::Metric {
            name: format!("m{i}"),
        })
        .collect();
    send(&mut socket, ClientMessage::Subscribe { topics }).await;
    let frame = tokio::time::timeout(WAIT, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    })
    .await
    .expect("the server closes in time")
    .expect("the close frame has a code");
    assert_eq!(frame.code, CloseCode::Policy);
    assert!(frame.reason.contains("too many topics"), "{}", frame.reason);
    server.shutdown();
    server.wait().await.unwrap();
}

#[tokio::test]
async fn cross_origin_upgrade_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), "live-test-origin", Duration::from_millis(50)).await;
    let addr = server.local_addr();
    let evil = WsOptions {
        origin: Some("http://evil.example"),
        ..WsOptions::default()
    };
    match ws_upgrade(addr, evil).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        Err(other) => panic!("expected 403, got {other}"),
        Ok(_) => panic!("a cross-origin upgrade was accepted"),
    }
    // The same origin as the served host is accepted.
    let origin = format!("http://{addr}");
    let same_origin = WsOptions {
        origin: Some(&origin),
        ..WsOptions::default()
    };
    let mut socket = ws_connect(addr, same_origin).await;
    hello(&mut socket).await;
    server.shutdown();
    server.wait().await.unwrap();
}
