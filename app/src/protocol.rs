//! The browser/server contract for live push over `/ws`.
//!
//! Both sides serialise these enums as JSON text frames tagged by `type`. The protocol is
//! versioned: the client says which version it speaks in its first message, the server answers
//! `hello` with its own, and a mismatch is refused with an `error` message and a close frame.
//! The live-data issue adds subscriptions, snapshots and deltas here; nothing else in the tree
//! defines wire types.

use serde::{Deserialize, Serialize};

/// Version of the live protocol spoken by this build. Bump on any incompatible change.
pub const PROTOCOL_VERSION: u32 = 1;

/// WebSocket close code sent when the client speaks another protocol version (RFC 6455 1002).
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;

/// Messages the browser sends to the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// First message on every connection.
    Hello { protocol: u32 },
    /// Round-trip probe; answered by [`ServerMessage::Pong`] with the same nonce.
    Ping { nonce: u64 },
}

/// Messages the server sends to the browser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Answer to the client's hello.
    Hello {
        protocol: u32,
        server_version: String,
        heartbeat_interval_ms: u64,
    },
    /// Sent every `heartbeat_interval_ms`; a client that misses several reconnects.
    Heartbeat { seq: u64, server_time_ms: i64 },
    /// Answer to [`ClientMessage::Ping`].
    Pong { nonce: u64 },
    /// The server refuses something the client sent; `code` is stable, `message` is for people.
    Error { code: String, message: String },
}

impl ClientMessage {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("client messages always serialise")
    }
}

impl ServerMessage {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialise")
    }
}

/// `GET /healthz` response body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// `ok` when every check passes, `degraded` otherwise.
    pub status: String,
    pub version: String,
    pub uptime_secs: u64,
    pub database_ok: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_tagged_snake_case() {
        let json = ClientMessage::Hello { protocol: 1 }.to_json();
        assert_eq!(json, r#"{"type":"hello","protocol":1}"#);
        let back: ServerMessage =
            serde_json::from_str(r#"{"type":"heartbeat","seq":3,"server_time_ms":5}"#).unwrap();
        assert_eq!(
            back,
            ServerMessage::Heartbeat {
                seq: 3,
                server_time_ms: 5
            }
        );
    }

    #[test]
    fn unknown_message_type_is_an_error() {
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"subscribe"}"#).is_err());
    }
}
