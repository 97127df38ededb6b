//! The endpoint's pure core: streams, shards, hash-key ranges, sequence numbering, resharding,
//! iterator tokens and record positions. No I/O and no clock of its own: callers pass `now`.
//! Requests enter as plain values (names, decoded records, parsed positions); answers leave as
//! model types and wire output shapes, refusals as [`ModelError`]s.
//!
//! - Hash keys are 128-bit (`u128`); MD5 of the partition key, read big-endian, or the
//!   ExplicitHashKey, picks the open shard whose range contains it.
//! - Sequence numbers come from one counter per stream (`SEQ_BASE + n`, about 38 digits), so
//!   they strictly increase within a shard and a child's first number exceeds its parents'
//!   last, as on AWS. They are `u128`s inside and leave as decimal strings of one length, so
//!   clients order them alike as numbers or as text; [`parse_seq`] reads them back.
//! - Closing a shard (split, merge, UpdateShardCount) sets its EndingSequenceNumber to a fresh
//!   number above every record it holds; its children start above that.
//! - Every stored record carries the log sequence number (LSN) of the write that holds it; reads
//!   return only records whose write is durable (`lsn <= durable_lsn`), so nothing is seen that a
//!   crash could take back.
//! - Iterator tokens are opaque: stream id, shard, next sequence number to read and issue time,
//!   sealed with a keyed MD5 tag so tampering is detected; see [`IteratorToken`].
//!
//! # Layout
//! - this file: the [`Model`] (all streams), its settings, the persisted [`Topology`], lookups
//!   and the account-wide shard limit.
//! - `streams`: streams and shards, their lifecycle (create, delete, retention, trim) and
//!   listing.
//! - `records`: records, writes, iterators and reads.
//! - `resharding`: SplitShard, MergeShards, UpdateShardCount.
//! - `consumers`: enhanced fan-out consumers and where a subscription starts.
//! - `error`: [`ModelError`], why an operation refused.

mod consumers;
mod error;
mod records;
mod resharding;
mod streams;
#[cfg(test)]
mod tests;

pub use consumers::{
    Consumer, ConsumerArn, ConsumerRef, ConsumerView, MAX_CONSUMERS, SubscriptionStart,
    parse_consumer_arn, validate_consumer_name,
};
pub use error::ModelError;
pub use records::{
    IteratorStart, IteratorToken, NewRecord, PutOutcome, ReadBatch, Record, ShardRead,
    hash_partition_key, parse_hash_key, parse_seq,
};
pub use streams::{
    Shard, ShardFilter, Stream, StreamMode, parse_shard_id, shard_id, uniform_range,
    validate_stream_name,
};

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// First sequence number of every stream; numbers have AWS's look (long decimal strings).
pub const SEQ_BASE: u128 = 49_000_000_000_000_000_000_000_000_000_000_000_000;
/// The ARN prefix of every stream (region and account are fixed for a local endpoint).
pub const ARN_PREFIX: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/";
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
pub const MAX_PUT_RECORDS: usize = 500;
pub const MAX_PUT_RECORDS_BYTES: usize = 5 * 1024 * 1024;
pub const MAX_GET_RECORDS: usize = 10_000;
pub const MAX_GET_BYTES: usize = 10 * 1024 * 1024;
/// Most record bytes in one SubscribeToShard event (a shard's 2 MiB/s of fan-out).
pub const MAX_EVENT_BYTES: usize = 2 * 1024 * 1024;
pub const DEFAULT_RETENTION_HOURS: u32 = 24;
pub const MAX_RETENTION_HOURS: u32 = 8760;
pub const ON_DEMAND_SHARDS: u32 = 4;

/// Model-wide settings.
#[derive(Debug, Clone)]
pub struct ModelSettings {
    pub shard_limit: u32,
    pub throughput_limits: bool,
    pub iterator_ttl_ms: i64,
}

/// Persisted part of the model (the metadata file).
#[derive(Debug, Serialize, Deserialize)]
pub struct Topology {
    pub version: u32,
    pub secret: [u8; 16],
    pub next_stream_id: u64,
    pub streams: Vec<Stream>,
}

/// All streams. One owner (the service's mutex); every method is a short, synchronous step.
#[derive(Debug)]
pub struct Model {
    pub streams: BTreeMap<String, Stream>,
    pub next_stream_id: u64,
    pub secret: [u8; 16],
    pub settings: ModelSettings,
}

impl Model {
    pub fn new(secret: [u8; 16], settings: ModelSettings) -> Self {
        Self {
            streams: BTreeMap::new(),
            next_stream_id: 1,
            secret,
            settings,
        }
    }

    pub fn from_topology(topology: Topology, settings: ModelSettings) -> Self {
        Self {
            streams: topology
                .streams
                .into_iter()
                .map(|s| (s.name.clone(), s))
                .collect(),
            next_stream_id: topology.next_stream_id,
            secret: topology.secret,
            settings,
        }
    }

    /// A serialisable snapshot of the topology (records excluded), for the metadata file.
    pub fn topology_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        #[derive(Serialize)]
        struct View<'a> {
            version: u32,
            secret: [u8; 16],
            next_stream_id: u64,
            streams: Vec<&'a Stream>,
        }
        serde_json::to_vec(&View {
            version: 1,
            secret: self.secret,
            next_stream_id: self.next_stream_id,
            streams: self.streams.values().collect(),
        })
    }

    pub fn stream(&self, name: &str) -> Result<&Stream, ModelError> {
        self.streams.get(name).ok_or_else(|| not_found(name))
    }

    fn stream_mut(&mut self, name: &str) -> Result<&mut Stream, ModelError> {
        self.streams.get_mut(name).ok_or_else(|| not_found(name))
    }

    fn stream_by_id(&self, id: u64) -> Option<&Stream> {
        self.streams.values().find(|s| s.id == id)
    }

    fn stream_by_id_mut(&mut self, id: u64) -> Option<&mut Stream> {
        self.streams.values_mut().find(|s| s.id == id)
    }

    /// Stream id of `name`, for log frames.
    pub fn stream_id(&self, name: &str) -> Result<u64, ModelError> {
        Ok(self.stream(name)?.id)
    }

    pub fn stream_name_by_id(&self, id: u64) -> Option<&str> {
        self.stream_by_id(id).map(|s| s.name.as_str())
    }

    fn total_open_shards(&self) -> usize {
        self.streams.values().map(Stream::open_shard_count).sum()
    }

    /// Refuses a change that would open `extra` more shards than the account limit allows.
    fn check_shard_budget(&self, extra: usize) -> Result<(), ModelError> {
        let limit = self.settings.shard_limit as usize;
        let open = self.total_open_shards();
        if open + extra > limit {
            return Err(ModelError::ShardLimit {
                open,
                requested: extra,
                limit,
            });
        }
        Ok(())
    }
}

fn not_found(name: &str) -> ModelError {
    ModelError::StreamNotFound {
        name: name.to_string(),
    }
}
