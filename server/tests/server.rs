//! The real server on a loopback port with a real SQLite file: WebSocket round trips with
//! tokio-tungstenite, and graceful shutdown.

mod support;

use contract::protocol::{ClientMessage, PROTOCOL_VERSION, ServerMessage};
use futures_util::StreamExt;
use std::time::Duration;
use streamboard::{Server, config::ServeConfig};
use support::{WsOptions, WsSocket as Socket, ws_connect, ws_send as send};
use tokio_tungstenite::tungstenite::{Message, protocol::frame::coding::CloseCode};
use tokio_util::sync::CancellationToken;

/// Upper bound for any single wait in these tests; they finish in milliseconds when healthy.
const WAIT: Duration = Duration::from_secs(10);

async fn start(dir: &std::path::Path, heartbeat: Duration) -> Server {
    let mut config = ServeConfig::for_data_dir(dir);
    config.server.heartbeat_interval = heartbeat;
    Server::start(config, CancellationToken::new())
        .await
        .unwrap()
}

async fn next_message(socket: &mut Socket) -> Message {
    tokio::time::timeout(WAIT, socket.next())
        .await
        .expect("the server answers in time")
        .expect("the socket is open")
        .expect("a valid frame")
}

async fn next_server_message(socket: &mut Socket) -> ServerMessage {
    match next_message(socket).await {
        Message::Text(text) => serde_json::from_str(&text).unwrap(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

#[tokio::test]
async fn websocket_hello_ping_and_heartbeats() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), Duration::from_millis(100)).await;
    let mut socket = ws_connect(server.local_addr(), WsOptions::default()).await;

    send(
        &mut socket,
        ClientMessage::Hello {
            protocol: PROTOCOL_VERSION,
        },
    )
    .await;
    match next_server_message(&mut socket).await {
        ServerMessage::Hello {
            protocol,
            server_version,
            heartbeat_interval_ms,
        } => {
            assert_eq!(protocol, PROTOCOL_VERSION);
            assert_eq!(server_version, env!("CARGO_PKG_VERSION"));
            assert_eq!(heartbeat_interval_ms, 100);
        }
        other => panic!("expected hello, got {other:?}"),
    }

    send(&mut socket, ClientMessage::Ping { nonce: 42 }).await;
    // Heartbeats may interleave with the pong; collect until both are seen.
    let mut pong = false;
    let mut heartbeats = Vec::new();
    while !(pong && heartbeats.len() >= 2) {
        match next_server_message(&mut socket).await {
            ServerMessage::Pong { nonce } => {
                assert_eq!(nonce, 42);
                pong = true;
            }
            ServerMessage::Heartbeat { seq, .. } => heartbeats.push(seq),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(heartbeats[..2], [1, 2], "heartbeats are numbered from 1");

    // The gauge counts this session while it is open.
    let metrics = reqwest_get(&server, "/metrics").await;
    assert!(
        metrics.contains("streamboard_websocket_connections 1"),
        "{metrics}"
    );

    socket.close(None).await.unwrap();
    server.shutdown();
    server.wait().await.unwrap();
}

#[tokio::test]
async fn websocket_refuses_another_protocol_version() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), Duration::from_secs(5)).await;
    let mut socket = ws_connect(server.local_addr(), WsOptions::default()).await;
    send(
        &mut socket,
        ClientMessage::Hello {
            protocol: PROTOCOL_VERSION + 1,
        },
    )
    .await;
    match next_server_message(&mut socket).await {
        ServerMessage::Error { code, message } => {
            assert_eq!(code, "protocol_version");
            assert!(message.contains("reload"), "{message}");
        }
        other => panic!("expected an error, got {other:?}"),
    }
    match next_message(&mut socket).await {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Protocol),
        other => panic!("expected a close frame, got {other:?}"),
    }
    server.shutdown();
    server.wait().await.unwrap();
}

#[tokio::test]
async fn shutdown_closes_live_sessions_with_going_away() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), Duration::from_secs(5)).await;
    let mut socket = ws_connect(server.local_addr(), WsOptions::default()).await;
    send(
        &mut socket,
        ClientMessage::Hello {
            protocol: PROTOCOL_VERSION,
        },
    )
    .await;
    assert!(matches!(
        next_server_message(&mut socket).await,
        ServerMessage::Hello { .. }
    ));
    server.shutdown();
    match next_message(&mut socket).await {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Away),
        other => panic!("expected a close frame, got {other:?}"),
    }
    tokio::time::timeout(WAIT, server.wait())
        .await
        .expect("the server stops promptly")
        .unwrap();
}

/// A minimal HTTP/1.1 GET over a raw socket (keeps the test free of an HTTP client crate).
async fn reqwest_get(server: &Server, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut response))
        .await
        .unwrap()
        .unwrap();
    response
}
