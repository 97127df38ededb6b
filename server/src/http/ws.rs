//! `GET /ws`: the live WebSocket. For now a session greets (version check), answers pings and
//! sends heartbeats; the live-data hub will add subscriptions, snapshots and deltas here.
//!
//! Each session is a task tracked by the server's [`TaskTracker`](tokio_util::task::TaskTracker)
//! and ends when the shutdown token is cancelled, with a "going away" close frame.

use super::AppState;
use app::protocol::{CLOSE_PROTOCOL_ERROR, ClientMessage, PROTOCOL_VERSION, ServerMessage};
use axum::{
    extract::{
        State, WebSocketUpgrade,
        ws::{CloseFrame, Message, Utf8Bytes, WebSocket, close_code},
    },
    response::Response,
};
use std::{
    convert::Infallible,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// A client must say hello within this time or the socket is closed.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest text frame a client may send; live-protocol requests are small.
const MAX_CLIENT_MESSAGE_BYTES: usize = 64 * 1024;

pub async fn upgrade(State(state): State<AppState>, ws: WebSocketUpgrade) -> Response {
    let tracker = state.tracker.clone();
    ws.max_message_size(MAX_CLIENT_MESSAGE_BYTES)
        .on_upgrade(move |socket| tracker.track_future(session(socket, state)))
}

/// Why a session ended; only logged.
#[derive(Debug)]
enum End {
    ClientClosed,
    Shutdown,
    Refused(&'static str),
    Transport(axum::Error),
}

async fn session(mut socket: WebSocket, state: AppState) {
    let _open = state.metrics.websocket_opened();
    let Err(end) = run_session(&mut socket, &state).await;
    let close = match &end {
        End::Shutdown => Some((close_code::AWAY, "server shutting down")),
        End::Refused(reason) => Some((CLOSE_PROTOCOL_ERROR, *reason)),
        End::ClientClosed | End::Transport(_) => None,
    };
    if let Some((code, reason)) = close {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from(reason),
        };
        let _ = socket.send(Message::Close(Some(frame))).await;
    }
    match end {
        End::Transport(error) => {
            tracing::debug!(%error, "websocket session ended by a transport error")
        }
        other => tracing::debug!(end = ?other, "websocket session ended"),
    }
}

async fn send(socket: &mut WebSocket, message: &ServerMessage) -> Result<(), End> {
    socket
        .send(Message::Text(message.to_json().into()))
        .await
        .map_err(End::Transport)
}

/// Runs until the session ends; the error says why.
async fn run_session(socket: &mut WebSocket, state: &AppState) -> Result<Infallible, End> {
    wait_for_hello(socket, state).await?;
    let heartbeat_interval = state.config.heartbeat_interval;
    send(
        socket,
        &ServerMessage::Hello {
            protocol: PROTOCOL_VERSION,
            server_version: env!("CARGO_PKG_VERSION").to_string(),
            heartbeat_interval_ms: heartbeat_interval.as_millis() as u64,
        },
    )
    .await?;
    let mut heartbeat = tokio::time::interval_at(
        tokio::time::Instant::now() + heartbeat_interval,
        heartbeat_interval,
    );
    let mut seq = 0u64;
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => return Err(End::Shutdown),
            _ = heartbeat.tick() => {
                seq += 1;
                send(socket, &ServerMessage::Heartbeat { seq, server_time_ms: now_millis() }).await?;
            }
            incoming = socket.recv() => match incoming {
                None | Some(Ok(Message::Close(_))) => return Err(End::ClientClosed),
                Some(Err(error)) => return Err(End::Transport(error)),
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<ClientMessage>(&text) {
                    Ok(ClientMessage::Ping { nonce }) => send(socket, &ServerMessage::Pong { nonce }).await?,
                    Ok(ClientMessage::Hello { .. }) => {}
                    Err(error) => send(socket, &ServerMessage::Error {
                        code: "bad_message".into(),
                        message: format!("cannot read this message: {error}"),
                    }).await?,
                },
                Some(Ok(_)) => {} // pings are answered by axum; binary frames are not part of the protocol
            }
        }
    }
}

/// Waits for the client's hello and checks its protocol version.
async fn wait_for_hello(socket: &mut WebSocket, state: &AppState) -> Result<(), End> {
    let hello = tokio::select! {
        _ = state.shutdown.cancelled() => return Err(End::Shutdown),
        hello = tokio::time::timeout(HELLO_TIMEOUT, socket.recv()) => hello,
    };
    match hello {
        Err(_elapsed) => Err(End::Refused("no hello within 10 s")),
        Ok(None | Some(Ok(Message::Close(_)))) => Err(End::ClientClosed),
        Ok(Some(Err(error))) => Err(End::Transport(error)),
        Ok(Some(Ok(Message::Text(text)))) => match serde_json::from_str::<ClientMessage>(&text) {
            Ok(ClientMessage::Hello { protocol }) if protocol == PROTOCOL_VERSION => Ok(()),
            Ok(ClientMessage::Hello { protocol }) => {
                send(
                    socket,
                    &ServerMessage::Error {
                        code: "protocol_version".into(),
                        message: format!(
                            "this server speaks live protocol {PROTOCOL_VERSION}, the client {protocol}; reload the page"
                        ),
                    },
                )
                .await?;
                Err(End::Refused("unsupported protocol version"))
            }
            _ => Err(End::Refused("the first message must be hello")),
        },
        Ok(Some(Ok(_))) => Err(End::Refused("the first message must be hello")),
    }
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}
