//! `GET /ws`: the live WebSocket. A session greets (version check), answers pings, sends
//! heartbeats, and forwards the live hub's frames for the topics the client subscribed to
//! (see [`crate::live`] and `contract::protocol`).
//!
//! A `tail` topic starts a record tail for this session alone ([`crate::tail`]): its updates
//! are sent as they come from the tail's bounded channel, and it stops when the topic is
//! dropped, replaced or the socket closes.
//!
//! Limits: the upgrade is refused with 403 when the `Origin` header names another host than the
//! one served (here and in [`super::guard`]); the upgrade needs a viewer (the route's rule),
//! and a subscription to a topic the session's role may not read closes it with 1008; client
//! frames are at most 64 KiB, and a session reads at most 50 of them a second (bursts of
//! 100): a flooding client waits on its own socket; a connection holds at most
//! [`MAX_TOPICS`] topics (more closes it with 1008). The send queue is the hub's bounded
//! broadcast, received only while a topic needs its frames (idle sessions are not woken by
//! every push): a session that falls behind skips to a fresh snapshot.
//!
//! A socket lives only while the session or token it was opened with holds: a logout, an ended
//! session, a deleted user or a revoked token closes it at once with 1008, and an expired
//! session within [`CREDENTIAL_RECHECK`].
//!
//! Each session is a task tracked by the server's [`TaskTracker`](tokio_util::task::TaskTracker)
//! and ends when the shutdown token is cancelled, with a "going away" close frame.

use super::{AppState, access};
use crate::{auth::Identity, live::Frame};
use axum::{
    Extension,
    extract::{
        State, WebSocketUpgrade,
        ws::{CloseFrame, Message, Utf8Bytes, WebSocket, close_code},
    },
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use contract::{
    api::ApiErrorDetail,
    protocol::{
        CLOSE_POLICY_VIOLATION, CLOSE_PROTOCOL_ERROR, ClientMessage, ErrorCode, LivePayload,
        MAX_TAILS, MAX_TOPICS, MetricLive, PROTOCOL_VERSION, ServerMessage, Topic,
    },
    tail::{TailQuery, TailUpdate},
};
use std::sync::Arc;
use std::{
    convert::Infallible,
    time::{Duration, SystemTime, UNIX_EPOCH},
};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

/// How often an open socket checks that its session or token still holds, besides on every
/// revocation (so an expired session's socket closes within this time).
const CREDENTIAL_RECHECK: Duration = Duration::from_secs(60);
/// A client must say hello within this time or the socket is closed.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the close frame may take to send before the session just ends.
const CLOSE_SEND_TIMEOUT: Duration = Duration::from_secs(1);
/// Largest text frame a client may send; live-protocol requests are small.
const MAX_CLIENT_MESSAGE_BYTES: usize = 64 * 1024;
/// Initial read buffer of a session (tungstenite's default, 128 KiB, made an idle connection
/// cost about 170 KiB); it grows for a larger frame.
const READ_BUFFER_BYTES: usize = 4 * 1024;
/// Client frames a session reads per second on average, and in a burst. A page sends a hello,
/// a subscription per navigation and a ping per heartbeat; a client that floods waits (its
/// frames queue in its own socket) instead of costing the server the CPU its other clients'
/// pushes need.
const CLIENT_FRAMES_PER_SEC: f64 = 50.0;
const CLIENT_FRAME_BURST: f64 = 100.0;

pub async fn upgrade(
    State(state): State<AppState>,
    identity: Option<Extension<Identity>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !same_origin(&headers) {
        return (
            StatusCode::FORBIDDEN,
            "cross-origin WebSocket connections are refused",
        )
            .into_response();
    }
    let tracker = state.tracker.clone();
    let identity = identity.map(|Extension(identity)| identity);
    ws.max_message_size(MAX_CLIENT_MESSAGE_BYTES)
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| tracker.track_future(session(socket, state, identity)))
}

/// True when there is no `Origin` (not a browser) or its host:port equals the `Host` header.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let (Ok(origin), Some(Ok(host))) = (
        origin.to_str(),
        headers.get(header::HOST).map(|h| h.to_str()),
    ) else {
        return false;
    };
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    origin_host.eq_ignore_ascii_case(host)
}

/// Why a session ended; only logged.
#[derive(Debug)]
enum End {
    ClientClosed,
    Shutdown,
    /// The session or token the socket was opened with was revoked, ended or expired.
    Revoked,
    Refused(&'static str),
    Policy(&'static str),
    Transport(axum::Error),
}

async fn session(mut socket: WebSocket, state: AppState, identity: Option<Identity>) {
    let _open = state.metrics.websocket_opened();
    let Err(end) = run_session(&mut socket, &state, identity.as_ref()).await;
    let close = match &end {
        End::Shutdown => Some((close_code::AWAY, "server shutting down")),
        End::Revoked => Some((CLOSE_POLICY_VIOLATION, "the session ended; log in again")),
        End::Refused(reason) => Some((CLOSE_PROTOCOL_ERROR, *reason)),
        End::Policy(reason) => Some((CLOSE_POLICY_VIOLATION, *reason)),
        End::ClientClosed | End::Transport(_) => None,
    };
    if let Some((code, reason)) = close {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from(reason),
        };
        // Bounded: a client that stopped reading must not hold up shutdown.
        let _ = tokio::time::timeout(CLOSE_SEND_TIMEOUT, socket.send(Message::Close(Some(frame))))
            .await;
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
async fn run_session(
    socket: &mut WebSocket,
    state: &AppState,
    identity: Option<&Identity>,
) -> Result<Infallible, End> {
    let role = identity.map(|identity| identity.role);
    let mut revocations = state.auth.revocations();
    let mut recheck = tokio::time::interval_at(
        tokio::time::Instant::now() + CREDENTIAL_RECHECK,
        CREDENTIAL_RECHECK,
    );
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
    // The hub's frames, only while a topic needs them: a connection without such a topic (an
    // idle one, or one with only a tail or alerts) is not woken by every push.
    let mut frames: Option<broadcast::Receiver<Arc<Frame>>> = None;
    let mut alerts = state.alerts.as_ref().map(|a| a.subscribe());
    let mut topics: Vec<Topic> = Vec::new();
    // The session's record tail, and the query it was started for (kept when it ends, so an
    // identical subscribe does not restart a refused one).
    let mut tail: Option<crate::tail::Tail> = None;
    let mut tail_query: Option<TailQuery> = None;
    let mut tail_seq = 0u64;
    let mut pacer = Pacer::new(tokio::time::Instant::now());
    loop {
        let ready = pacer.ready(tokio::time::Instant::now());
        tokio::select! {
            _ = state.shutdown.cancelled() => return Err(End::Shutdown),
            // A logout, ended session, deleted user or revoked token anywhere, or the periodic
            // check (session expiry): the socket lives only while its credential holds.
            _ = revocations.changed() => check_credential(state, identity).await?,
            _ = recheck.tick() => check_credential(state, identity).await?,
            _ = heartbeat.tick() => {
                seq += 1;
                send(socket, &ServerMessage::Heartbeat { seq, server_time_ms: now_millis() }).await?;
            }
            frame = next_frame(&mut frames) => match frame {
                Ok(frame) => send_topics(socket, &state.shutdown, &frame, &topics).await?,
                Err(RecvError::Lagged(skipped)) => {
                    tracing::debug!(skipped, "live session fell behind; resynchronising");
                    if let Some(hub) = &state.live {
                        send_snapshot(socket, &state.shutdown, &hub.latest(), &topics).await?;
                    }
                }
                Err(RecvError::Closed) => frames = None, // the publisher stopped (shutdown)
            },
            update = next_tail(&mut tail) => match update {
                Some(update) => {
                    tail_seq += 1;
                    send(socket, &ServerMessage::Update { seq: tail_seq, payload: LivePayload::Tail(Box::new(update)) }).await?;
                }
                None => tail = None, // the tail ended (refused, or its stream cannot be read)
            },
            changed = next_alerts(&mut alerts) => match changed {
                Some(text) if topics.contains(&Topic::Alerts) => {
                    send_text(socket, &state.shutdown, &text).await?
                }
                Some(_) => {}
                None => alerts = None, // the evaluator stopped (shutdown)
            },
            // Over its frame budget: the session reads nothing until the next token.
            _ = tokio::time::sleep_until(ready.err().unwrap_or_else(tokio::time::Instant::now)), if ready.is_err() => {}
            incoming = socket.recv(), if ready.is_ok() => match incoming {
                None | Some(Ok(Message::Close(_))) => return Err(End::ClientClosed),
                Some(Err(error)) => return Err(End::Transport(error)),
                Some(Ok(Message::Text(text))) => match pacer.take(serde_json::from_str::<ClientMessage>(&text)) {
                    Ok(ClientMessage::Ping { nonce }) => send(socket, &ServerMessage::Pong { nonce }).await?,
                    Ok(ClientMessage::Hello { .. }) => {}
                    Ok(ClientMessage::Subscribe { topics: wanted }) => {
                        if wanted.len() > MAX_TOPICS {
                            return Err(End::Policy("too many topics (at most 16)"));
                        }
                        if !wanted.iter().all(|topic| access::topic(topic).allows(role)) {
                            return Err(End::Policy("a topic needs a role this session does not have"));
                        }
                        let mut tails = wanted.iter().filter_map(|t| match t {
                            Topic::Tail(query) => Some(query),
                            _ => None,
                        });
                        let wanted_tail = tails.next().cloned();
                        if tails.next().is_some() {
                            const _: () = assert!(MAX_TAILS == 1);
                            return Err(End::Policy("too many tails (at most 1)"));
                        }
                        if wanted_tail != tail_query {
                            tail = wanted_tail.clone().map(|query| start_tail(state, query));
                            tail_query = wanted_tail;
                        }
                        topics = wanted;
                        if !topics.iter().any(from_frames) {
                            frames = None;
                        } else if frames.is_none() {
                            // Before the snapshot, so no frame after it is missed.
                            frames = state.live.as_ref().map(|hub| hub.subscribe());
                        }
                        if let Some(hub) = &state.live {
                            send_snapshot(socket, &state.shutdown, &hub.latest(), &topics).await?;
                        }
                        if let Some(rx) = alerts.as_mut().filter(|_| topics.contains(&Topic::Alerts)) {
                            let text = rx.borrow_and_update().text.clone();
                            if !text.is_empty() {
                                send_text(socket, &state.shutdown, &text).await?;
                            }
                        }
                    }
                    Err(error) => send(socket, &ServerMessage::Error {
                        code: ErrorCode::BadMessage,
                        message: format!("cannot read this message: {error}"),
                    }).await?,
                },
                Some(Ok(_)) => pacer.take(()), // pings are answered by axum; binary frames are not part of the protocol
            }
        }
    }
}

/// Ends the session unless the credential it was opened with still holds. A storage error
/// keeps the session (the next check decides).
async fn check_credential(state: &AppState, identity: Option<&Identity>) -> Result<(), End> {
    let Some(identity) = identity else {
        return Ok(());
    };
    match state.auth.still_valid(identity).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(End::Revoked),
        Err(error) => {
            tracing::warn!(%error, "cannot check a WebSocket's credential");
            Ok(())
        }
    }
}

/// A token bucket of client frames: [`CLIENT_FRAME_BURST`] tokens, refilled at
/// [`CLIENT_FRAMES_PER_SEC`].
struct Pacer {
    tokens: f64,
    at: tokio::time::Instant,
}

impl Pacer {
    fn new(now: tokio::time::Instant) -> Self {
        Self {
            tokens: CLIENT_FRAME_BURST,
            at: now,
        }
    }

    /// `Ok` when a frame may be read now, else `Err(when one may)`.
    fn ready(&mut self, now: tokio::time::Instant) -> Result<(), tokio::time::Instant> {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * CLIENT_FRAMES_PER_SEC;
        self.tokens = (self.tokens + refill).min(CLIENT_FRAME_BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            Ok(())
        } else {
            Err(now + Duration::from_secs_f64((1.0 - self.tokens) / CLIENT_FRAMES_PER_SEC))
        }
    }

    /// Spends a token on the frame just read; returns `read` unchanged.
    fn take<T>(&mut self, read: T) -> T {
        self.tokens -= 1.0;
        read
    }
}

/// The next alerts update (its serialised text), `None` when the evaluator stopped, or never
/// when alerting does not run. Only the newest state counts: a slow session skips
/// intermediate ones (a `watch`, not a queue).
async fn next_alerts(
    alerts: &mut Option<tokio::sync::watch::Receiver<Arc<crate::alerts::service::AlertsFrame>>>,
) -> Option<Arc<str>> {
    match alerts {
        Some(rx) => match rx.changed().await {
            Ok(()) => Some(rx.borrow_and_update().text.clone()),
            Err(_) => None,
        },
        None => std::future::pending().await,
    }
}

/// Starts a record tail for this session; without tails (no streams read) a tail whose only
/// update says so.
fn start_tail(state: &AppState, query: TailQuery) -> crate::tail::Tail {
    match &state.tails {
        Some(tails) => tails.start(query),
        None => crate::tail::Tail::refused(
            query,
            ApiErrorDetail {
                field: Some("stream".into()),
                message: "this server reads no streams".into(),
            },
        ),
    }
}

/// The session tail's next update, `None` when it ended, or never without a tail.
async fn next_tail(tail: &mut Option<crate::tail::Tail>) -> Option<TailUpdate> {
    match tail {
        Some(tail) => tail.updates.recv().await,
        None => std::future::pending().await,
    }
}

/// The next frame, or never when there is no hub.
/// True for the topics the live hub's frames carry.
fn from_frames(topic: &Topic) -> bool {
    match topic {
        Topic::Overview | Topic::Streams | Topic::Metric { .. } => true,
        Topic::Alerts | Topic::Tail(_) => false,
    }
}

async fn next_frame(
    frames: &mut Option<broadcast::Receiver<Arc<Frame>>>,
) -> Result<Arc<Frame>, RecvError> {
    match frames {
        Some(frames) => frames.recv().await,
        None => std::future::pending().await,
    }
}

/// Sends one update; a socket that does not drain cannot hold up shutdown.
async fn send_text(
    socket: &mut WebSocket,
    shutdown: &CancellationToken,
    text: &str,
) -> Result<(), End> {
    tokio::select! {
        _ = shutdown.cancelled() => Err(End::Shutdown),
        sent = socket.send(Message::Text(Utf8Bytes::from(text))) => sent.map_err(End::Transport),
    }
}

/// Sends the `snapshot` marker and then the frame's updates for `topics`.
async fn send_snapshot(
    socket: &mut WebSocket,
    shutdown: &CancellationToken,
    frame: &Frame,
    topics: &[Topic],
) -> Result<(), End> {
    let marker = ServerMessage::Snapshot { seq: frame.seq }.to_json();
    send_text(socket, shutdown, &marker).await?;
    send_topics(socket, shutdown, frame, topics).await
}

/// Sends the frame's pre-serialised update of each subscribed topic (nothing before the
/// publisher's first tick).
async fn send_topics(
    socket: &mut WebSocket,
    shutdown: &CancellationToken,
    frame: &Frame,
    topics: &[Topic],
) -> Result<(), End> {
    if frame.seq == 0 {
        return Ok(());
    }
    for topic in topics {
        match topic {
            Topic::Overview => send_text(socket, shutdown, &frame.overview).await?,
            Topic::Streams => send_text(socket, shutdown, &frame.streams).await?,
            Topic::Alerts => {} // sent from the alerts watch, not the publisher's frames
            Topic::Tail(_) => {} // sent from the session's own tail
            Topic::Metric { name } => match frame.metrics.get(name) {
                Some(text) => send_text(socket, shutdown, text).await?,
                None => {
                    let payload = LivePayload::Metric(MetricLive {
                        name: name.clone(),
                        found: false,
                        server_time_ms: frame.server_time_ms,
                        ..MetricLive::default()
                    });
                    send(
                        socket,
                        &ServerMessage::Update {
                            seq: frame.seq,
                            payload,
                        },
                    )
                    .await?
                }
            },
        }
    }
    Ok(())
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
                        code: ErrorCode::ProtocolVersion,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pacer_allows_a_burst_then_the_rate() {
        let start = tokio::time::Instant::now();
        let mut pacer = Pacer::new(start);
        for _ in 0..CLIENT_FRAME_BURST as usize {
            assert!(pacer.ready(start).is_ok());
            pacer.take(());
        }
        let next = pacer.ready(start).unwrap_err();
        assert_eq!(next - start, Duration::from_millis(20));
        // One second later, 50 more frames and no more.
        let later = start + Duration::from_secs(1);
        for _ in 0..CLIENT_FRAMES_PER_SEC as usize {
            assert!(pacer.ready(later).is_ok());
            pacer.take(());
        }
        assert!(pacer.ready(later).is_err());
    }
}
