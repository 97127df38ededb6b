//! The live record tail: what the Records page asks for ([`TailQuery`], sent as
//! [`crate::protocol::Topic::Tail`]; the same fields are the query string of the JSON lines
//! download) and what it is sent ([`TailUpdate`], a [`crate::protocol::LivePayload::Tail`]).
//!
//! Unlike the other topics, a tail's updates are *increments*: each carries the records
//! matched since the previous one (a sample of them when more matched than the page is shown),
//! and [`TailFeed`] keeps the newest of them for the page.

use crate::api::ApiErrorDetail;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// Where a tail starts reading its shards.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(tag = "at", rename_all = "snake_case")]
pub enum TailStart {
    /// Records put from now on.
    #[default]
    Latest,
    /// The oldest record each shard still holds.
    TrimHorizon,
    /// The first record that arrived at or after this time.
    Timestamp { epoch_ms: i64 },
    /// This record of one shard (the query's `shard`) and what follows it.
    Sequence { sequence_number: String },
}

/// One tail: a stream (one shard or all), where to start, and which records to show.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct TailQuery {
    pub stream: String,
    /// One shard's id; `None` reads every shard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    #[serde(default)]
    pub start: TailStart,
    /// An expression of the metric definitions' filter language (`/status >= 500 and exists
    /// /user`); empty shows every record.
    #[serde(default)]
    pub filter: String,
    /// Text the record's data or partition key must contain (case-insensitive); empty for any.
    #[serde(default)]
    pub search: String,
}

/// A record's data as the page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecordBody {
    /// A JSON document.
    Json { value: serde_json::Value },
    /// A logfmt line, its `key=value` pairs in order.
    Logfmt { pairs: Vec<(String, String)> },
    /// Other UTF-8 text.
    Text { text: String },
    /// Anything else, as lower-case hex.
    Binary { hex: String },
}

/// One record (a KPL user record when `sub_sequence` is set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TailRecord {
    pub shard: String,
    pub sequence_number: String,
    /// The index of this user record inside its KPL aggregated record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_sequence: Option<u64>,
    pub partition_key: String,
    /// ApproximateArrivalTimestamp, epoch milliseconds.
    pub arrival_time_ms: i64,
    /// The data's full size; `body` shows at most [`MAX_BODY_BYTES`] of it.
    pub size_bytes: usize,
    /// `body` shows only the first [`MAX_BODY_BYTES`] (as text or hex).
    #[serde(default)]
    pub truncated: bool,
    pub body: RecordBody,
}

/// Most bytes of a record's data a tail sends; longer data is cut and shown as text or hex.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// How far one shard of a tail has read.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TailShard {
    pub shard: String,
    pub millis_behind_latest: Option<i64>,
    /// Read to its end (a closed shard).
    pub finished: bool,
}

/// [`crate::protocol::Topic::Tail`] payload: the records matched since the previous update.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TailUpdate {
    /// The tail these records belong to.
    pub query: TailQuery,
    pub server_time_ms: i64,
    /// Oldest first. When more records match than the server shows (see `shown_per_s`), a
    /// uniform sample of them.
    pub records: Vec<TailRecord>,
    /// Records read from the stream, per second over the last few seconds.
    pub read_per_s: f64,
    /// Records that passed the filter and the search, per second.
    pub matched_per_s: f64,
    /// Records sent to the page, per second (at most the server's limit).
    pub shown_per_s: f64,
    /// Totals since the tail started.
    pub read: u64,
    pub matched: u64,
    pub shown: u64,
    pub shards: Vec<TailShard>,
    /// The query was refused (`field` names the part at fault) or the stream cannot be read;
    /// no more updates follow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiErrorDetail>,
}

/// The newest records of one tail, newest first, at most `keep`; what the Records page shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TailFeed {
    pub query: Option<TailQuery>,
    /// Newest first.
    pub records: VecDeque<TailRecord>,
    /// The latest update's figures (its records moved into `records`).
    pub latest: Option<TailUpdate>,
}

impl TailFeed {
    /// Takes in one update: a new query starts a new feed; records go on top, newest first,
    /// and the oldest beyond `keep` are dropped.
    pub fn apply(&mut self, mut update: TailUpdate, keep: usize) {
        if self.query.as_ref() != Some(&update.query) {
            *self = TailFeed {
                query: Some(update.query.clone()),
                ..TailFeed::default()
            };
        }
        for record in update.records.drain(..) {
            self.records.push_front(record);
        }
        self.records.truncate(keep);
        self.latest = Some(update);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(sequence_number: &str) -> TailRecord {
        TailRecord {
            shard: "shardId-000000000000".into(),
            sequence_number: sequence_number.into(),
            sub_sequence: None,
            partition_key: "k".into(),
            arrival_time_ms: 0,
            size_bytes: 2,
            truncated: false,
            body: RecordBody::Text { text: "hi".into() },
        }
    }

    #[test]
    fn a_feed_keeps_the_newest_on_top_and_restarts_with_a_new_query() {
        let query = TailQuery {
            stream: "orders".into(),
            ..TailQuery::default()
        };
        let mut feed = TailFeed::default();
        for batch in [["1", "2"], ["3", "4"]] {
            feed.apply(
                TailUpdate {
                    query: query.clone(),
                    records: batch.into_iter().map(record).collect(),
                    ..TailUpdate::default()
                },
                3,
            );
        }
        let order: Vec<_> = feed
            .records
            .iter()
            .map(|r| r.sequence_number.as_str())
            .collect();
        assert_eq!(order, ["4", "3", "2"]);
        let other = TailQuery {
            filter: "/x = 1".into(),
            ..query
        };
        feed.apply(
            TailUpdate {
                query: other.clone(),
                records: vec![record("9")],
                ..TailUpdate::default()
            },
            3,
        );
        assert_eq!(feed.records.len(), 1);
        assert_eq!(feed.query, Some(other));
    }

    #[test]
    fn queries_travel_with_their_start_tagged() {
        let query = TailQuery {
            stream: "orders".into(),
            shard: Some("shardId-000000000001".into()),
            start: TailStart::Sequence {
                sequence_number: "42".into(),
            },
            filter: "/status >= 500".into(),
            search: String::new(),
        };
        let json = serde_json::to_value(&query).unwrap();
        assert_eq!(json["start"]["at"], "sequence");
        assert_eq!(serde_json::from_value::<TailQuery>(json).unwrap(), query);
        let minimal: TailQuery = serde_json::from_str(r#"{"stream":"s"}"#).unwrap();
        assert_eq!(minimal.start, TailStart::Latest);
    }
}
