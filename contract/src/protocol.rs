//! The browser/server contract for live push over `/ws`.
//!
//! Both sides serialise these enums as JSON text frames tagged by `type`. The protocol is
//! versioned: the client says which version it speaks in its first message, the server answers
//! `hello` with its own, and a mismatch is refused with an `error` message and a close frame.
//! Nothing else in the tree defines live wire types.
//!
//! # Version 2: subscriptions
//! After `hello` the client sends [`ClientMessage::Subscribe`] with the [`Topic`]s its page
//! shows (at most [`MAX_TOPICS`]; more closes the socket with [`CLOSE_POLICY_VIOLATION`]). The
//! server answers with [`ServerMessage::Snapshot`] followed by one [`ServerMessage::Update`] per
//! topic, then sends a fresh `update` per topic on every publisher tick.
//!
//! Updates carry the topic's *full* payload, not a diff: the server's single publisher computes
//! and serialises each topic's payload once per tick and shares the same text with every
//! subscriber, so a full payload costs the server no more than a delta would, and a client can
//! never drift from the server's state. A client that falls behind gets a new `snapshot` marker
//! and the latest payloads instead of a growing queue.
//!
//! [`Topic::Tail`] is the exception: its updates are the records matched since the previous
//! one, made for that connection alone (see [`crate::tail`]).

use crate::{
    alert::{AlertState, Comparison, NotificationStatus, Severity},
    closed_set,
    summary::{Statistic, Summary},
    tail::{TailQuery, TailUpdate},
};
use serde::{Deserialize, Serialize};

/// Version of the live protocol spoken by this build. Bump on any incompatible change.
pub const PROTOCOL_VERSION: u32 = 2;

/// Most topics one connection may subscribe to.
pub const MAX_TOPICS: usize = 16;

/// WebSocket close code for a limit violation (RFC 6455 1008 "policy violation").
pub const CLOSE_POLICY_VIOLATION: u16 = 1008;

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
    /// Replaces the connection's subscriptions with `topics` (an empty list unsubscribes).
    Subscribe { topics: Vec<Topic> },
}

/// What a page can subscribe to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "topic", rename_all = "snake_case")]
pub enum Topic {
    /// Every stream's summary and every metric's card (the dashboard).
    Overview,
    /// One metric's series with their windows and its error counts (the detail page).
    Metric { name: String },
    /// Every stream's shards (the streams page).
    Streams,
    /// Alert rules, their instances and recent transitions (every page: badge and toasts).
    Alerts,
    /// The newest records of a stream matching a filter (the Records page); at most
    /// [`MAX_TAILS`] per connection. Its updates carry only the records since the previous one.
    Tail(TailQuery),
}

/// Most [`Topic::Tail`]s one connection may subscribe to.
pub const MAX_TAILS: usize = 1;

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
    Error { code: ErrorCode, message: String },
    /// The updates with this `seq` that follow are a full resync: sent after a subscribe and
    /// when the client fell behind the publisher.
    Snapshot { seq: u64 },
    /// One topic's full payload at publisher tick `seq`.
    Update { seq: u64, payload: LivePayload },
}

/// A [`ServerMessage`] as the browser reads it first: its `type` and the fields of `hello`,
/// with an `update`'s payload kept as JSON text ([`LivePayload`], tagged by
/// [`PayloadHead::topic`]). The page that shows a topic decodes its payload, so the browser's
/// first download carries only the decoders of the topics every page shows. Decoding the
/// whole enum would also buffer every payload through serde's internally tagged path, a second
/// decoder per payload type.
#[derive(Debug, Deserialize)]
pub struct ServerMessageHead<'a> {
    /// [`ServerMessage`]'s tag: `hello`, `heartbeat`, `pong`, `error`, `snapshot`, `update`.
    #[serde(rename = "type")]
    pub kind: &'a str,
    /// Of `hello`.
    #[serde(default)]
    pub server_version: Option<String>,
    /// Of `hello`.
    #[serde(default)]
    pub heartbeat_interval_ms: Option<u64>,
    /// Of `update`: the [`LivePayload`]'s JSON object.
    #[serde(borrow, default)]
    pub payload: Option<&'a serde_json::value::RawValue>,
}

/// The tag of a [`LivePayload`]'s JSON object: `overview`, `metric`, `streams`, `alerts` or
/// `tail`. The rest of the object is the variant's struct (with `topic` an ignored field).
#[derive(Debug, Deserialize)]
pub struct PayloadHead<'a> {
    pub topic: &'a str,
}

closed_set! {
    /// Why the server refused a client message ([`ServerMessage::Error`]).
    pub enum ErrorCode ("error code") {
        /// The text frame is not a [`ClientMessage`].
        BadMessage = "bad_message",
        /// The client's hello names another [`PROTOCOL_VERSION`].
        ProtocolVersion = "protocol_version",
    }
    refused: ": use bad_message or protocol_version";
}

/// One topic's payload; the variant says which topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "topic", rename_all = "snake_case")]
pub enum LivePayload {
    Overview(Overview),
    Metric(MetricLive),
    Streams(StreamsLive),
    Alerts(AlertsLive),
    /// Boxed: far larger than the other payloads.
    Tail(Box<TailUpdate>),
}

impl LivePayload {
    /// The topic this payload answers.
    pub fn topic(&self) -> Topic {
        match self {
            LivePayload::Overview(_) => Topic::Overview,
            LivePayload::Metric(m) => Topic::Metric {
                name: m.name.clone(),
            },
            LivePayload::Streams(_) => Topic::Streams,
            LivePayload::Alerts(_) => Topic::Alerts,
            LivePayload::Tail(t) => Topic::Tail(t.query.clone()),
        }
    }
}

/// Aggregates of one rolling window: `window_s` and the [`Summary`] fields side by side in one
/// JSON object.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(from = "WindowStatsWire")]
pub struct WindowStats {
    pub window_s: i64,
    #[serde(flatten)]
    pub summary: Summary,
}

crate::summary::summary_beside!(WindowStatsWire, window_s, WindowStats);

/// One stream's row on the dashboard.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StreamSummary {
    pub name: String,
    pub shards: usize,
    pub records_per_s: f64,
    pub bytes_per_s: f64,
    /// Largest MillisBehindLatest over the stream's shards.
    pub lag_ms: Option<i64>,
    /// Records the stream's metrics could not parse (since start).
    pub parse_errors: u64,
    /// The last discovery error, if the last discovery failed.
    pub error: Option<String>,
    /// Records/s, one sample per second, oldest first (up to 60).
    pub sparkline: Vec<f64>,
}

/// One metric's card: all its series merged.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MetricCard {
    pub name: String,
    pub stream: String,
    pub series: usize,
    /// Windows of 60 s, 5 min, 15 min and 1 h.
    pub windows: Vec<WindowStats>,
    /// The 60-s rolling rate, sampled once per second, oldest first (up to 60).
    pub sparkline: Vec<f64>,
    pub parse_errors: u64,
}

/// [`Topic::Overview`] payload.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Overview {
    pub server_time_ms: i64,
    pub streams: Vec<StreamSummary>,
    pub metrics: Vec<MetricCard>,
    /// Set while the database cannot be written (e.g. its disk is full) and ingest is paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_error: Option<String>,
}

/// One series of a metric with its windows.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SeriesLive {
    pub labels: Vec<String>,
    pub windows: Vec<WindowStats>,
}

/// [`Topic::Metric`] payload. `found` is false for a name the engine does not know.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MetricLive {
    pub name: String,
    pub found: bool,
    pub server_time_ms: i64,
    pub card: Option<MetricCard>,
    pub series: Vec<SeriesLive>,
    /// Records refused, by reason (e.g. `not_json`), since start.
    pub errors: Vec<(String, u64)>,
    pub late_records: u64,
}

/// One shard's row.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ShardRow {
    pub stream: String,
    pub shard: String,
    pub state: ShardState,
    pub records_per_s: f64,
    pub bytes_per_s: f64,
    pub millis_behind_latest: Option<i64>,
    pub parents: Vec<String>,
    pub last_error: Option<String>,
    /// Carries at least twice the stream's mean records/s (and more than 1 record/s).
    pub hot: bool,
}

closed_set! {
    /// A shard reader's state.
    #[derive(Default)]
    pub enum ShardState ("shard state") {
        /// Known, not yet planned.
        #[default]
        Pending = "pending",
        /// A reader is polling it.
        Reading = "reading",
        /// Waits until its parent shards have been read to their end.
        WaitingForParent = "waiting_for_parent",
        /// Read to its end (or nothing to read); never read again.
        Finished = "finished",
        /// Retrying after a throttle or a failure.
        BackingOff = "backing_off",
        /// Stopped on an error it cannot recover from (see `last_error`).
        Failed = "failed",
    }
    refused: ": use pending, reading, waiting_for_parent, finished, backing_off or failed";
}

/// [`Topic::Streams`] payload.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct StreamsLive {
    pub server_time_ms: i64,
    pub shards: Vec<ShardRow>,
    pub stream_errors: Vec<(String, String)>,
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
    pub status: HealthStatus,
    pub version: String,
    pub uptime_secs: u64,
    pub database_ok: bool,
    /// Set while the database cannot be written (e.g. its disk is full) and ingest is paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_error: Option<String>,
    /// With `storage_error`: how many flushes in a row have failed since the writes began to
    /// fail (each is retried at the next flush).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_flushes: Option<u64>,
}

closed_set! {
    /// [`Health::status`].
    pub enum HealthStatus ("health status") {
        /// Every check passes.
        Ok = "ok",
        /// At least one check fails.
        Degraded = "degraded",
    }
    refused: ": use ok or degraded";
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
    fn windows_carry_the_summary_fields_flat() {
        let window = WindowStats {
            window_s: 60,
            summary: Summary {
                count: 2,
                rate_per_s: 0.5,
                p99: Some(7),
                ..Summary::default()
            },
        };
        let json = serde_json::to_value(&window).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"window_s": 60, "count": 2, "rate_per_s": 0.5, "sum": 0.0,
                "min": null, "max": null, "mean": null, "p50": null, "p90": null, "p99": 7,
                "p999": null})
        );
        assert_eq!(serde_json::from_value::<WindowStats>(json).unwrap(), window);
    }

    #[test]
    fn closed_sets_travel_as_their_names() {
        let error = ServerMessage::Error {
            code: ErrorCode::ProtocolVersion,
            message: "no".into(),
        };
        assert_eq!(
            error.to_json(),
            r#"{"type":"error","code":"protocol_version","message":"no"}"#
        );
        let row: ShardRow = serde_json::from_value(serde_json::json!({"stream": "s", "shard": "a",
                "state": "waiting_for_parent", "records_per_s": 0.0, "bytes_per_s": 0.0,
                "millis_behind_latest": null, "parents": [], "last_error": null, "hot": false}))
        .unwrap();
        assert_eq!(row.state, ShardState::WaitingForParent);
        assert!(
            serde_json::from_value::<ShardState>(serde_json::json!("sleeping"))
                .unwrap_err()
                .to_string()
                .contains("waiting_for_parent")
        );
    }

    #[test]
    fn the_browser_reads_heads_and_payloads_apart() {
        let hello = ServerMessage::Hello {
            protocol: PROTOCOL_VERSION,
            server_version: "1.2.3".into(),
            heartbeat_interval_ms: 5_000,
        }
        .to_json();
        let head: ServerMessageHead = serde_json::from_str(&hello).unwrap();
        assert_eq!(head.kind, "hello");
        assert_eq!(head.server_version.as_deref(), Some("1.2.3"));
        assert_eq!(head.heartbeat_interval_ms, Some(5_000));
        assert!(head.payload.is_none());

        let overview = Overview {
            server_time_ms: 7,
            metrics: vec![MetricCard {
                name: "lat".into(),
                windows: vec![WindowStats {
                    window_s: 60,
                    summary: Summary {
                        count: 3,
                        p99: Some(9),
                        ..Summary::default()
                    },
                }],
                ..MetricCard::default()
            }],
            ..Overview::default()
        };
        let payloads = [
            ("overview", LivePayload::Overview(overview.clone())),
            ("streams", LivePayload::Streams(StreamsLive::default())),
            ("alerts", LivePayload::Alerts(AlertsLive::default())),
            ("tail", LivePayload::Tail(Box::default())),
        ];
        for (topic, payload) in payloads {
            let text = ServerMessage::Update {
                seq: 4,
                payload: payload.clone(),
            }
            .to_json();
            let head: ServerMessageHead = serde_json::from_str(&text).unwrap();
            assert_eq!(head.kind, "update");
            let raw = head.payload.expect("an update has a payload").get();
            let tag: PayloadHead = serde_json::from_str(raw).unwrap();
            assert_eq!(tag.topic, topic);
            // The variant's struct reads from the same object.
            let back = match payload {
                LivePayload::Overview(_) => {
                    LivePayload::Overview(serde_json::from_str(raw).unwrap())
                }
                LivePayload::Streams(_) => LivePayload::Streams(serde_json::from_str(raw).unwrap()),
                LivePayload::Alerts(_) => LivePayload::Alerts(serde_json::from_str(raw).unwrap()),
                LivePayload::Tail(_) => LivePayload::Tail(serde_json::from_str(raw).unwrap()),
                LivePayload::Metric(_) => unreachable!(),
            };
            assert_eq!(back, payload);
        }
    }

    #[test]
    fn unknown_message_type_is_an_error() {
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"unsubscribe"}"#).is_err());
    }

    #[test]
    fn subscribe_names_topics() {
        let json = ClientMessage::Subscribe {
            topics: vec![
                Topic::Overview,
                Topic::Metric {
                    name: "latency".into(),
                },
            ],
        }
        .to_json();
        assert_eq!(
            json,
            r#"{"type":"subscribe","topics":[{"topic":"overview"},{"topic":"metric","name":"latency"}]}"#
        );
        let update = ServerMessage::Update {
            seq: 1,
            payload: LivePayload::Streams(StreamsLive::default()),
        };
        let back: ServerMessage = serde_json::from_str(&update.to_json()).unwrap();
        assert_eq!(back, update);
    }
}

/// The alerts topic: every rule's instances with their states and current values, the number
/// of firing instances (the badge), and the most recent transitions (toasts, history).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AlertsLive {
    pub server_time_ms: i64,
    /// Instances in `firing` or `recovering` over all enabled rules.
    pub firing: usize,
    pub rules: Vec<AlertRuleLive>,
    /// Newest last; at most [`RECENT_ALERT_EVENTS`].
    pub recent: Vec<AlertEvent>,
}

/// Transitions carried in [`AlertsLive::recent`].
pub const RECENT_ALERT_EVENTS: usize = 20;

/// One rule with its instances ([`AlertsLive::rules`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRuleLive {
    pub id: i64,
    pub name: String,
    pub metric: String,
    pub statistic: Statistic,
    pub window: String,
    pub comparison: Comparison,
    pub threshold: f64,
    pub severity: Severity,
    pub enabled: bool,
    pub silenced_until_ms: Option<i64>,
    pub instances: Vec<AlertInstanceLive>,
}

/// One instance of a rule: its state and current value.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AlertInstanceLive {
    /// `all` for all series together, else the series labels joined with `, `.
    pub instance: String,
    pub state: AlertState,
    pub since_ms: i64,
    pub value: Option<f64>,
    /// Why the instance is in `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One stored transition of one rule instance.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AlertEvent {
    pub id: i64,
    pub rule_id: i64,
    pub rule: String,
    pub metric: String,
    pub instance: String,
    pub from: AlertState,
    pub to: AlertState,
    pub value: Option<f64>,
    pub threshold: f64,
    pub at_ms: i64,
    pub severity: Severity,
    pub notification: NotificationStatus,
    /// The rule has an in-app target: browsers show a toast.
    pub in_app: bool,
    /// The in-app text rendered from the rule's `in_app` template, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
