//! The live record tail on the real server (loopback port 0, real SQLite file) reading a real
//! Kinesis-compatible peer (the embedded endpoint, or kinesis-local with
//! `STREAMBOARD_TEST_PEER=kinesis-local`) through `/ws` and the JSON lines download: new
//! records arrive filtered on the server, KPL user records are shown as such, a tail from
//! TRIM_HORIZON leaves the consumer's checkpoints and the engine alone, a tail stops reading
//! when its viewer leaves, and refusals name the field at fault.

mod support;

use contract::{
    protocol::{ClientMessage, LivePayload, PROTOCOL_VERSION, ServerMessage, Topic},
    tail::{RecordBody, TailQuery, TailStart, TailUpdate},
};
use futures_util::StreamExt;
use std::{collections::HashMap, net::SocketAddr, time::Duration};
use streamboard::{
    Server,
    config::{KinesisSource, ServeConfig, StartPosition, StreamRef, StreamSpec},
    kinesis::{
        Checkpoint, ShardId, StreamName,
        kpl::{UserRecord, aggregate},
    },
    producer::{Producer, ProducerRecord},
    storage::Database,
    tail::{MAX_TAILS, TailService},
};
use support::{Peer, WAIT, WsOptions, WsSocket, eventually, unique_stream, ws_connect, ws_send};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

async fn start_server(peer: &Peer, stream: &str, dir: &std::path::Path) -> Server {
    let mut config = ServeConfig::for_data_dir(dir);
    config.consumer.streams = vec![StreamSpec {
        name_or_arn: StreamRef::Name(StreamName::from(stream)),
        start: StartPosition::TrimHorizon,
        efo: false,
    }];
    config.source = KinesisSource::External(peer.target());
    config.consumer.idle_poll_interval = Duration::from_millis(50);
    Server::start(config, CancellationToken::new())
        .await
        .unwrap()
}

async fn put(producer: &Producer, docs: impl IntoIterator<Item = String>) {
    let records: Vec<ProducerRecord> = docs
        .into_iter()
        .enumerate()
        .map(|(i, doc)| ProducerRecord {
            partition_key: format!("key-{i}"),
            explicit_hash_key: None,
            data: doc.into_bytes().into(),
        })
        .collect();
    let report = producer.put(records).await;
    assert_eq!(report.failed, 0, "every record is acknowledged");
}

async fn subscribe_tail(addr: SocketAddr, query: TailQuery) -> WsSocket {
    let mut socket = ws_connect(addr, WsOptions::default()).await;
    ws_send(
        &mut socket,
        ClientMessage::Hello {
            protocol: PROTOCOL_VERSION,
        },
    )
    .await;
    ws_send(
        &mut socket,
        ClientMessage::Subscribe {
            topics: vec![Topic::Tail(query)],
        },
    )
    .await;
    socket
}

/// The next tail update on the socket (other messages skipped).
async fn next_update(socket: &mut WsSocket) -> TailUpdate {
    loop {
        let message = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("the server sends in time")
            .expect("the socket is open")
            .expect("a valid frame");
        let Message::Text(text) = message else {
            continue;
        };
        if let ServerMessage::Update {
            payload: LivePayload::Tail(update),
            ..
        } = serde_json::from_str(&text).unwrap()
        {
            return *update;
        }
    }
}

/// Reads updates until `done` holds for the latest, gathering every record shown.
async fn updates_until(
    socket: &mut WsSocket,
    mut done: impl FnMut(&TailUpdate) -> bool,
) -> (TailUpdate, Vec<contract::tail::TailRecord>) {
    let mut shown = Vec::new();
    tokio::time::timeout(WAIT, async {
        loop {
            let mut update = next_update(socket).await;
            assert_eq!(update.error, None, "the tail reads");
            shown.append(&mut update.records);
            if done(&update) {
                return update;
            }
        }
    })
    .await
    .map(|update| (update, shown))
    .expect("the tail gets there in time")
}

fn level(record: &contract::tail::TailRecord) -> Option<&str> {
    match &record.body {
        RecordBody::Json { value } => value["level"].as_str(),
        _ => None,
    }
}

#[tokio::test]
async fn a_tail_shows_new_matching_records_and_kpl_user_records_as_such() {
    let peer = Peer::start().await;
    let client = peer.client().await;
    let stream = unique_stream("tail-new");
    support::create_stream(&client, &stream, 2).await;
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(&peer, &stream, dir.path()).await;
    let mut socket = subscribe_tail(
        server.local_addr(),
        TailQuery {
            stream: stream.clone(),
            filter: r#"/level = "error""#.into(),
            ..TailQuery::default()
        },
    )
    .await;
    // Both shards polled once: their iterators (LATEST) exist, so what is put now is seen.
    updates_until(&mut socket, |u| {
        u.shards.len() == 2 && u.shards.iter().all(|s| s.millis_behind_latest.is_some())
    })
    .await;

    let producer = Producer::new(client.clone(), StreamName::from(stream.as_str()));
    put(
        &producer,
        (0..12).map(|i| {
            let level = if i % 2 == 0 { "error" } else { "info" };
            format!(r#"{{"n":{i},"level":"{level}"}}"#)
        }),
    )
    .await;
    let aggregated = aggregate(&["error", "info", "error"].map(|level| UserRecord {
        partition_key: format!("kpl-{level}"),
        explicit_hash_key: None,
        data: format!(r#"{{"level":"{level}","kpl":true}}"#).into_bytes(),
    }));
    client
        .put_record()
        .stream_name(&stream)
        .partition_key("kpl")
        .data(aws_sdk_kinesis::primitives::Blob::new(aggregated))
        .send()
        .await
        .unwrap();

    let (last, shown) = updates_until(&mut socket, |u| u.read == 15 && u.matched == 8).await;
    assert_eq!(
        shown.len(),
        8,
        "every match shown: fewer than the sampling limit"
    );
    assert_eq!(last.shown, 8);
    assert!(shown.iter().all(|r| level(r) == Some("error")), "{shown:?}");
    let kpl: Vec<_> = shown.iter().filter_map(|r| r.sub_sequence).collect();
    assert_eq!(kpl, [0, 2], "the KPL user records, by their index");
    assert!(
        shown
            .iter()
            .all(|r| !r.shard.is_empty() && r.arrival_time_ms > 0)
    );
    server.shutdown();
    server.wait().await.unwrap();
}

/// The consumer's checkpoints of `stream`.
async fn stored_checkpoints(database: &Database, stream: &str) -> HashMap<ShardId, Checkpoint> {
    database
        .load_checkpoints("streamboard", &StreamName::from(stream))
        .await
        .unwrap()
}

/// Records of `stream` in the engine's live 1-hour window.
async fn engine_records(server: &Server, stream: &str) -> u64 {
    let name = format!("builtin:{stream}:records");
    server
        .engine()
        .windows(streamboard::clock::now_ms())
        .await
        .unwrap()
        .series
        .iter()
        .filter(|s| s.name == name)
        .map(|s| s.windows[3].summary.count)
        .sum()
}

#[tokio::test]
async fn a_tail_from_trim_horizon_moves_no_checkpoint_and_feeds_no_metric() {
    let peer = Peer::start().await;
    let client = peer.client().await;
    let stream = unique_stream("tail-old");
    support::create_stream(&client, &stream, 1).await;
    let producer = Producer::new(client.clone(), StreamName::from(stream.as_str()));
    put(&producer, (0..50).map(|i| format!(r#"{{"n":{i}}}"#))).await;
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(&peer, &stream, dir.path()).await;
    let database = Database::open(dir.path()).await.unwrap();
    eventually("the consumer read and checkpointed all 50", || async {
        engine_records(&server, &stream).await == 50
            && server.engine().flush().await.is_ok()
            && !stored_checkpoints(&database, &stream).await.is_empty()
    })
    .await;
    let before = stored_checkpoints(&database, &stream).await;

    let mut socket = subscribe_tail(
        server.local_addr(),
        TailQuery {
            stream: stream.clone(),
            start: TailStart::TrimHorizon,
            ..TailQuery::default()
        },
    )
    .await;
    let (last, _) = updates_until(&mut socket, |u| u.read == 50).await;
    assert_eq!(last.matched, 50);
    server.engine().flush().await.unwrap().unwrap();
    assert_eq!(
        engine_records(&server, &stream).await,
        50,
        "nothing read twice"
    );
    assert_eq!(stored_checkpoints(&database, &stream).await, before);
    server.shutdown();
    server.wait().await.unwrap();
}

/// A GET over HTTP/1.0 (no chunked framing): status and body.
async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut response))
        .await
        .expect("the server answers in time")
        .unwrap();
    let text = String::from_utf8(response).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (
        head.split(' ').nth(1).unwrap().parse().unwrap(),
        body.to_string(),
    )
}

#[tokio::test]
async fn downloads_are_json_lines_of_the_matching_records_and_refusals_name_the_field() {
    let peer = Peer::start().await;
    let client = peer.client().await;
    let stream = unique_stream("tail-download");
    support::create_stream(&client, &stream, 1).await;
    let producer = Producer::new(client.clone(), StreamName::from(stream.as_str()));
    put(&producer, (0..30).map(|i| format!(r#"{{"n":{i}}}"#))).await;
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(&peer, &stream, dir.path()).await;
    let addr = server.local_addr();

    let (status, body) = http_get(
        addr,
        &format!("/api/v1/streams/{stream}/records?filter=%2Fn%20%3E%3D%2020"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let lines: Vec<serde_json::Value> = body
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let n: Vec<u64> = lines
        .iter()
        .map(|l| l["body"]["value"]["n"].as_u64().unwrap())
        .collect();
    assert_eq!(
        n,
        (20..30).collect::<Vec<_>>(),
        "the matching records, in order"
    );
    let (_, limited) = http_get(addr, &format!("/api/v1/streams/{stream}/records?limit=3")).await;
    assert_eq!(limited.lines().count(), 3);

    for (query, field) in [
        (
            format!("/api/v1/streams/{stream}/records?filter=%2Fn%20%3E%3E%201"),
            "filter",
        ),
        (
            "/api/v1/streams/no-such-stream/records".to_string(),
            "stream",
        ),
        (
            format!("/api/v1/streams/{stream}/records?start=sequence&sequence_number=1"),
            "shard",
        ),
        (
            format!("/api/v1/streams/{stream}/records?start=yesterday"),
            "start",
        ),
        (
            format!("/api/v1/streams/{stream}/records?shard=shardId-9"),
            "shard",
        ),
        (format!("/api/v1/streams/{stream}/records?limit=0"), "limit"),
    ] {
        let (status, body) = http_get(addr, &query).await;
        assert_eq!(status, 422, "{query}: {body}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }
    server.shutdown();
    server.wait().await.unwrap();
}

#[tokio::test]
async fn a_tail_stops_reading_when_its_viewer_leaves_and_tails_are_limited() {
    let peer = Peer::start().await;
    let client = peer.client().await;
    let stream = unique_stream("tail-stop");
    support::create_stream(&client, &stream, 1).await;
    let tracker = TaskTracker::new();
    let shutdown = CancellationToken::new();
    let tails = TailService::new(
        client.clone(),
        vec![StreamRef::Name(StreamName::from(stream.as_str()))],
        tracker.clone(),
        shutdown.clone(),
    );
    let query = TailQuery {
        stream: stream.clone(),
        ..TailQuery::default()
    };
    let mut open: Vec<_> = (0..MAX_TAILS).map(|_| tails.start(query.clone())).collect();
    for tail in &mut open {
        let update = tokio::time::timeout(WAIT, tail.updates.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(update.error, None);
    }
    assert_eq!(tails.active(), MAX_TAILS);
    let mut refused = tails.start(query.clone());
    let update = refused.updates.recv().await.unwrap();
    let error = update.error.expect("one tail too many is refused");
    assert!(error.message.contains("tails are reading"), "{error:?}");

    // The viewers leave: every reader stops and every place is given back.
    drop(open);
    eventually("every tail stopped", || async { tails.active() == 0 }).await;
    let unknown = tails
        .start(TailQuery {
            stream: "elsewhere".into(),
            ..TailQuery::default()
        })
        .updates
        .recv()
        .await
        .unwrap();
    assert_eq!(
        unknown.error.and_then(|e| e.field).as_deref(),
        Some("stream")
    );
    shutdown.cancel();
    tracker.close();
    tokio::time::timeout(WAIT, tracker.wait())
        .await
        .expect("the tail tasks end");
}
