//! Streams and shards: their persisted shape, shard ids and hash-key ranges, and the stream
//! lifecycle (create, delete, retention and its trim) with the listing reads (ListShards'
//! filters, a shard's children). Shards are opened and closed here for every caller; which
//! shards a reshard closes and opens is decided in `resharding`.

use super::{
    ARN_PREFIX, DEFAULT_RETENTION_HOURS, MAX_RETENTION_HOURS, Model, ModelError, ON_DEMAND_SHARDS,
    SEQ_BASE, consumers::Consumer, not_found, records::Record,
};
use crate::{
    limits::ShardBudget,
    wire::{ChildShardOut, HashKeyRangeOut, SequenceNumberRangeOut, ShardOut},
};
use serde::{Deserialize, Serialize};
use std::{collections::VecDeque, time::Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamMode {
    #[serde(rename = "PROVISIONED")]
    Provisioned,
    #[serde(rename = "ON_DEMAND")]
    OnDemand,
}

impl StreamMode {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamMode::Provisioned => "PROVISIONED",
            StreamMode::OnDemand => "ON_DEMAND",
        }
    }
}

/// A shard's topology (persisted) and its records (in memory, rebuilt from the log).
#[derive(Debug, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub parents: Vec<u32>,
    pub start_hash: u128,
    pub end_hash: u128,
    pub starting_seq: u128,
    pub ending_seq: Option<u128>,
    pub created_ms: i64,
    pub closed_ms: Option<i64>,
    #[serde(skip)]
    pub records: VecDeque<Record>,
    #[serde(skip)]
    pub budget: Option<ShardBudget>,
}

impl Shard {
    pub fn is_open(&self) -> bool {
        self.ending_seq.is_none()
    }

    pub fn id(&self) -> String {
        shard_id(self.index)
    }

    pub(super) fn budget(&mut self, now: Instant) -> &mut ShardBudget {
        self.budget.get_or_insert_with(|| ShardBudget::new(now))
    }

    /// Index of the first record with `seq >= position`.
    pub(super) fn position_index(&self, position: u128) -> usize {
        self.records.partition_point(|r| r.seq < position)
    }

    pub fn to_wire(&self) -> ShardOut {
        ShardOut {
            shard_id: self.id(),
            parent_shard_id: self.parents.first().map(|p| shard_id(*p)),
            adjacent_parent_shard_id: self.parents.get(1).map(|p| shard_id(*p)),
            hash_key_range: self.hash_range_wire(),
            sequence_number_range: SequenceNumberRangeOut {
                starting_sequence_number: self.starting_seq.to_string(),
                ending_sequence_number: self.ending_seq.map(|s| s.to_string()),
            },
        }
    }

    fn hash_range_wire(&self) -> HashKeyRangeOut {
        HashKeyRangeOut {
            starting_hash_key: self.start_hash.to_string(),
            ending_hash_key: self.end_hash.to_string(),
        }
    }
}

/// `shardId-000000000003`.
pub fn shard_id(index: u32) -> String {
    format!("shardId-{index:012}")
}

/// Parses `shardId-000000000003` (AWS also accepts a bare number).
pub fn parse_shard_id(text: &str) -> Option<u32> {
    text.strip_prefix("shardId-").unwrap_or(text).parse().ok()
}

/// One stream: topology (persisted in the metadata file) and shards.
#[derive(Debug, Serialize, Deserialize)]
pub struct Stream {
    pub id: u64,
    pub name: String,
    pub mode: StreamMode,
    pub retention_hours: u32,
    pub created_ms: i64,
    /// Next sequence number to hand out.
    pub next_seq: u128,
    pub shards: Vec<Shard>,
    /// Enhanced fan-out consumers (absent in topology files written before they existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumers: Vec<Consumer>,
}

impl Stream {
    pub fn arn(&self) -> String {
        format!("{ARN_PREFIX}{}", self.name)
    }

    pub fn open_shards(&self) -> impl Iterator<Item = &Shard> {
        self.shards.iter().filter(|s| s.is_open())
    }

    pub fn open_shard_count(&self) -> usize {
        self.open_shards().count()
    }

    pub fn shard(&self, index: u32) -> Option<&Shard> {
        self.shards.get(index as usize)
    }

    pub(super) fn shard_by_id(&self, id: &str) -> Result<&Shard, ModelError> {
        parse_shard_id(id)
            .and_then(|i| self.shard(i))
            .ok_or_else(|| ModelError::ShardNotFound {
                stream: self.name.clone(),
                shard: id.to_string(),
            })
    }

    /// The open shard whose hash-key range holds `hash`.
    pub fn shard_for_hash(&self, hash: u128) -> Option<u32> {
        self.open_shards()
            .find(|s| s.start_hash <= hash && hash <= s.end_hash)
            .map(|s| s.index)
    }

    pub(super) fn take_seq(&mut self) -> u128 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    pub(super) fn add_shard(
        &mut self,
        parents: Vec<u32>,
        start_hash: u128,
        end_hash: u128,
        now_ms: i64,
    ) {
        let index = self.shards.len() as u32;
        // The shard's StartingSequenceNumber is taken, so every record it holds is above it
        // and "after StartingSequenceNumber" means "from its first record".
        let starting_seq = self.take_seq();
        self.shards.push(Shard {
            index,
            parents,
            start_hash,
            end_hash,
            starting_seq,
            ending_seq: None,
            created_ms: now_ms,
            closed_ms: None,
            records: VecDeque::new(),
            budget: None,
        });
    }

    pub(super) fn close_shard(&mut self, index: u32, now_ms: i64) {
        let ending = self.take_seq();
        if let Some(shard) = self.shards.get_mut(index as usize) {
            shard.ending_seq = Some(ending);
            shard.closed_ms = Some(now_ms);
        }
    }

    /// Children of a closed shard: shards naming it as a parent.
    pub fn children(&self, index: u32) -> Vec<ChildShardOut> {
        self.shards
            .iter()
            .filter(|s| s.parents.contains(&index))
            .map(|s| ChildShardOut {
                shard_id: s.id(),
                parent_shards: s.parents.iter().map(|p| shard_id(*p)).collect(),
                hash_key_range: s.hash_range_wire(),
            })
            .collect()
    }

    /// How long the stream keeps records, in milliseconds.
    fn retention_ms(&self) -> i64 {
        i64::from(self.retention_hours) * 3_600_000
    }
}

/// The `i`-th of `n` uniform hash-key ranges over 0..=2^128-1 (AWS's even split).
pub fn uniform_range(i: u32, n: u32) -> (u128, u128) {
    let start = |i: u32| -> u128 {
        // ceil(i * 2^128 / n) without overflow: 2^128 = q*n + r (n >= 2 when i > 0).
        if i == 0 {
            return 0;
        }
        let n128 = u128::from(n);
        let (mut q, mut r) = (u128::MAX / n128, u128::MAX % n128 + 1);
        if r == n128 {
            q += 1;
            r = 0;
        }
        let i128 = u128::from(i);
        i128 * q + (i128 * r).div_ceil(n128)
    };
    let end = if i + 1 == n {
        u128::MAX
    } else {
        start(i + 1) - 1
    };
    (start(i), end)
}

/// Validates a stream name (1-128 of `[a-zA-Z0-9_.-]`).
pub fn validate_stream_name(name: &str) -> Result<(), ModelError> {
    let ok = (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ModelError::InvalidStreamName {
            name: name.to_string(),
        })
    }
}

impl Model {
    /// Resolves StreamName or StreamARN to a stream name.
    pub fn resolve_name(
        stream_name: Option<&str>,
        stream_arn: Option<&str>,
    ) -> Result<String, ModelError> {
        let from_arn = match stream_arn {
            Some(arn) => {
                let name = arn
                    .strip_prefix("arn:aws:kinesis:")
                    .and_then(|rest| rest.split_once(":stream/"))
                    .map(|(_, name)| name)
                    .filter(|name| !name.is_empty())
                    .ok_or_else(|| ModelError::InvalidStreamArn {
                        arn: arn.to_string(),
                    })?;
                Some(name.to_string())
            }
            None => None,
        };
        match (stream_name, from_arn) {
            (Some(name), Some(arn_name)) if name != arn_name => {
                Err(ModelError::StreamNameArnMismatch {
                    name: name.to_string(),
                    arn_name,
                })
            }
            (Some(name), _) => Ok(name.to_string()),
            (None, Some(name)) => Ok(name),
            (None, None) => Err(ModelError::StreamRefMissing),
        }
    }

    pub fn create_stream(
        &mut self,
        name: &str,
        shard_count: Option<i64>,
        mode: StreamMode,
        now_ms: i64,
    ) -> Result<(), ModelError> {
        validate_stream_name(name)?;
        let count = match (mode, shard_count) {
            (StreamMode::OnDemand, None) => ON_DEMAND_SHARDS,
            (StreamMode::OnDemand, Some(_)) => return Err(ModelError::ShardCountForOnDemand),
            (StreamMode::Provisioned, None) => return Err(ModelError::ShardCountMissing),
            (StreamMode::Provisioned, Some(n)) if !(1..=100_000).contains(&n) => {
                return Err(ModelError::ShardCountOutOfRange { count: n });
            }
            (StreamMode::Provisioned, Some(n)) => n as u32,
        };
        if self.streams.contains_key(name) {
            return Err(ModelError::StreamExists {
                name: name.to_string(),
            });
        }
        self.check_shard_budget(count as usize)?;
        let mut stream = Stream {
            id: self.next_stream_id,
            name: name.to_string(),
            mode,
            retention_hours: DEFAULT_RETENTION_HOURS,
            created_ms: now_ms,
            next_seq: SEQ_BASE,
            shards: Vec::new(),
            consumers: Vec::new(),
        };
        self.next_stream_id += 1;
        for i in 0..count {
            let (start, end) = uniform_range(i, count);
            stream.add_shard(Vec::new(), start, end, now_ms);
        }
        self.streams.insert(name.to_string(), stream);
        Ok(())
    }

    pub fn delete_stream(&mut self, name: &str) -> Result<Stream, ModelError> {
        self.streams.remove(name).ok_or_else(|| not_found(name))
    }

    pub fn set_retention(
        &mut self,
        name: &str,
        hours: i64,
        increase: bool,
    ) -> Result<(), ModelError> {
        let stream = self.stream_mut(name)?;
        let current = i64::from(stream.retention_hours);
        if !(i64::from(DEFAULT_RETENTION_HOURS)..=i64::from(MAX_RETENTION_HOURS)).contains(&hours) {
            return Err(ModelError::RetentionOutOfRange { hours });
        }
        if increase && hours < current {
            return Err(ModelError::RetentionIncreaseTooShort {
                stream: name.to_string(),
                hours,
                current,
            });
        }
        if !increase && hours > current {
            return Err(ModelError::RetentionDecreaseTooLong {
                stream: name.to_string(),
                hours,
                current,
            });
        }
        stream.retention_hours = hours as u32;
        Ok(())
    }

    /// Drops records older than each stream's retention period. Returns how many went.
    pub fn trim(&mut self, now_ms: i64) -> usize {
        let mut dropped = 0;
        for stream in self.streams.values_mut() {
            let horizon = now_ms - stream.retention_ms();
            for shard in &mut stream.shards {
                while shard
                    .records
                    .front()
                    .is_some_and(|r| r.arrival_ms < horizon)
                {
                    shard.records.pop_front();
                    dropped += 1;
                }
            }
        }
        dropped
    }

    /// The longest retention of any stream, for deciding which log segments can go.
    pub fn max_retention_ms(&self) -> i64 {
        self.streams
            .values()
            .map(Stream::retention_ms)
            .max()
            .unwrap_or(i64::from(DEFAULT_RETENTION_HOURS) * 3_600_000)
    }

    /// Shards after `after` (exclusive), filtered, for ListShards.
    pub fn list_shards(
        &self,
        name: &str,
        after: Option<u32>,
        filter: &ShardFilter,
    ) -> Result<Vec<ShardOut>, ModelError> {
        let stream = self.stream(name)?;
        Ok(stream
            .shards
            .iter()
            .filter(|s| after.is_none_or(|a| s.index > a))
            .filter(|s| filter.matches(stream, s))
            .map(Shard::to_wire)
            .collect())
    }

    /// A stream's child shards of `shard`, for tests and ChildShards.
    pub fn child_shards(&self, name: &str, shard: u32) -> Result<Vec<ChildShardOut>, ModelError> {
        Ok(self.stream(name)?.children(shard))
    }
}

/// ListShards' ShardFilter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ShardFilter {
    None,
    AfterShardId(u32),
    AtTrimHorizon,
    FromTrimHorizon,
    AtLatest,
    AtTimestamp(i64),
    FromTimestamp(i64),
}

impl ShardFilter {
    fn matches(&self, stream: &Stream, shard: &Shard) -> bool {
        let open_at = |ts: i64| shard.created_ms <= ts && shard.closed_ms.is_none_or(|c| c > ts);
        match self {
            ShardFilter::None | ShardFilter::FromTrimHorizon => true,
            ShardFilter::AfterShardId(after) => shard.index > *after,
            ShardFilter::AtTrimHorizon => shard.parents.iter().all(|p| stream.shard(*p).is_none()),
            ShardFilter::AtLatest => shard.is_open(),
            ShardFilter::AtTimestamp(ts) => {
                open_at(*ts) || (shard.created_ms > *ts && shard.parents.is_empty())
            }
            ShardFilter::FromTimestamp(ts) => open_at(*ts) || shard.created_ms > *ts,
        }
    }
}
