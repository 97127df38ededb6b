//! The endpoint's pure core: streams, shards, hash-key ranges, sequence numbering, resharding,
//! iterator tokens and record positions. No I/O and no clock of its own: callers pass `now`.
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

use super::{
    limits::ShardBudget,
    wire::{ApiError, ChildShardOut, ErrorKind, HashKeyRangeOut, SequenceNumberRangeOut, ShardOut},
};
use base64::Engine as _;
use bytes::Bytes;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use std::{
    collections::{BTreeMap, VecDeque},
    time::Instant,
};

/// First sequence number of every stream; numbers have AWS's look (long decimal strings).
pub const SEQ_BASE: u128 = 49_000_000_000_000_000_000_000_000_000_000_000_000;
/// The ARN prefix of every stream (region and account are fixed for a local endpoint).
pub const ARN_PREFIX: &str = "arn:aws:kinesis:us-east-1:000000000000:stream/";
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
pub const MAX_PUT_RECORDS: usize = 500;
pub const MAX_PUT_RECORDS_BYTES: usize = 5 * 1024 * 1024;
pub const MAX_GET_RECORDS: usize = 10_000;
pub const MAX_GET_BYTES: usize = 10 * 1024 * 1024;
pub const DEFAULT_RETENTION_HOURS: u32 = 24;
pub const MAX_RETENTION_HOURS: u32 = 8760;
pub const ON_DEMAND_SHARDS: u32 = 4;

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

/// One stored record. `partition_key` and `data` are usually slices of one buffer shared by
/// all the records of a write (or of a log segment on replay), so storing a record allocates
/// nothing of its own.
#[derive(Debug, Clone)]
pub struct Record {
    pub seq: u128,
    pub arrival_ms: i64,
    pub lsn: u64,
    /// UTF-8, validated on entry.
    pub partition_key: Bytes,
    pub data: Bytes,
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

    fn budget(&mut self, now: Instant) -> &mut ShardBudget {
        self.budget.get_or_insert_with(|| ShardBudget::new(now))
    }

    /// Index of the first record with `seq >= position`.
    fn position_index(&self, position: u128) -> usize {
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

    fn shard_by_id(&self, id: &str) -> Result<&Shard, ApiError> {
        parse_shard_id(id)
            .and_then(|i| self.shard(i))
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "Shard {id} in stream {} under account 000000000000 does not exist",
                    self.name
                ))
            })
    }

    /// The open shard whose hash-key range holds `hash`.
    pub fn shard_for_hash(&self, hash: u128) -> Option<u32> {
        self.open_shards()
            .find(|s| s.start_hash <= hash && hash <= s.end_hash)
            .map(|s| s.index)
    }

    fn take_seq(&mut self) -> u128 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    fn add_shard(&mut self, parents: Vec<u32>, start_hash: u128, end_hash: u128, now_ms: i64) {
        let index = self.shards.len() as u32;
        let starting_seq = self.next_seq;
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

    fn close_shard(&mut self, index: u32, now_ms: i64) {
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

    /// The newest record's arrival, across open shards, for MillisBehindLatest.
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

/// MD5 of a partition key as a 128-bit hash key.
pub fn hash_partition_key(partition_key: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(partition_key.as_bytes()).into())
}

/// A decoded record ready to store: validated, hashed.
#[derive(Debug, Clone)]
pub struct NewRecord {
    /// UTF-8 (checked by [`NewRecord::check`] on the text it was copied from).
    pub partition_key: Bytes,
    pub hash: u128,
    pub data: Bytes,
}

impl NewRecord {
    /// Validates sizes and keys and computes the hash key. `data` is already base64-decoded.
    pub fn new(
        partition_key: &str,
        explicit_hash_key: Option<&str>,
        data: Bytes,
    ) -> Result<Self, ApiError> {
        let hash = Self::check(partition_key, explicit_hash_key, data.len())?;
        Ok(Self {
            partition_key: Bytes::copy_from_slice(partition_key.as_bytes()),
            hash,
            data,
        })
    }

    /// Validates a record's partition key, explicit hash key and size (`data_len` decoded
    /// bytes); returns its hash key. For callers that place keys and data in a shared buffer.
    pub fn check(
        partition_key: &str,
        explicit_hash_key: Option<&str>,
        data_len: usize,
    ) -> Result<u128, ApiError> {
        let key_chars = partition_key.chars().count();
        if !(1..=256).contains(&key_chars) {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value at 'partitionKey' failed to satisfy constraint: Member must have length between 1 and 256 (got {key_chars})"
            )));
        }
        if data_len + partition_key.len() > MAX_RECORD_BYTES {
            return Err(ApiError::validation(format!(
                "1 validation error detected: record of {} bytes (data + partition key) exceeds the 1 MiB limit",
                data_len + partition_key.len()
            )));
        }
        match explicit_hash_key {
            Some(text) => parse_hash_key(text).ok_or_else(|| {
                ApiError::invalid(format!(
                    "ExplicitHashKey {text:?} is not a decimal integer in 0..=2^128-1"
                ))
            }),
            None => Ok(hash_partition_key(partition_key)),
        }
    }

    pub fn size(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }
}

/// Parses a non-empty string of ASCII digits (no sign) that fits in a `u128`.
fn parse_decimal_u128(text: &str) -> Option<u128> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Parses a decimal hash key in 0..=2^128-1.
pub fn parse_hash_key(text: &str) -> Option<u128> {
    parse_decimal_u128(text)
}

/// Parses a client's sequence number into our numbering; anything that is not one of ours
/// (too large, not digits) is an InvalidArgumentException.
pub fn parse_seq(text: &str) -> Result<u128, ApiError> {
    parse_decimal_u128(text)
        .ok_or_else(|| ApiError::invalid(format!("StartingSequenceNumber {text:?} is invalid")))
}

/// Where a GetShardIterator call starts.
#[derive(Debug, Clone, PartialEq)]
pub enum IteratorStart {
    TrimHorizon,
    Latest,
    AtSequence(u128),
    AfterSequence(u128),
    AtTimestamp(i64),
}

/// An iterator: which shard and which sequence number to read from next. Sealed into an
/// opaque string by [`IteratorToken::seal`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IteratorToken {
    pub stream_id: u64,
    pub shard: u32,
    /// Read records with `seq >= position`.
    pub position: u128,
    pub issued_ms: i64,
}

const TOKEN_PAYLOAD: usize = 8 + 4 + 16 + 8;
const TOKEN_TAG: usize = 12;

impl IteratorToken {
    fn tag(secret: &[u8; 16], payload: &[u8]) -> [u8; TOKEN_TAG] {
        let mut hasher = Md5::new();
        hasher.update(secret);
        hasher.update(payload);
        hasher.update(secret);
        let digest = hasher.finalize();
        let mut tag = [0u8; TOKEN_TAG];
        tag.copy_from_slice(&digest[..TOKEN_TAG]);
        tag
    }

    pub fn seal(&self, secret: &[u8; 16]) -> String {
        let mut bytes = Vec::with_capacity(TOKEN_PAYLOAD + TOKEN_TAG);
        bytes.extend_from_slice(&self.stream_id.to_be_bytes());
        bytes.extend_from_slice(&self.shard.to_be_bytes());
        bytes.extend_from_slice(&self.position.to_be_bytes());
        bytes.extend_from_slice(&self.issued_ms.to_be_bytes());
        let tag = Self::tag(secret, &bytes);
        bytes.extend_from_slice(&tag);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Opens a token; a garbage or tampered one is an InvalidArgumentException.
    pub fn open(text: &str, secret: &[u8; 16]) -> Result<Self, ApiError> {
        let invalid = || ApiError::invalid(format!("Invalid ShardIterator: {text:?}"));
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| invalid())?;
        if bytes.len() != TOKEN_PAYLOAD + TOKEN_TAG {
            return Err(invalid());
        }
        let (payload, tag) = bytes.split_at(TOKEN_PAYLOAD);
        if Self::tag(secret, payload) != tag {
            return Err(invalid());
        }
        let take = |from: usize, to: usize| &payload[from..to];
        let array8 = |s: &[u8]| <[u8; 8]>::try_from(s).map_err(|_| invalid());
        Ok(Self {
            stream_id: u64::from_be_bytes(array8(take(0, 8))?),
            shard: u32::from_be_bytes(<[u8; 4]>::try_from(take(8, 12)).map_err(|_| invalid())?),
            position: u128::from_be_bytes(
                <[u8; 16]>::try_from(take(12, 28)).map_err(|_| invalid())?,
            ),
            issued_ms: i64::from_be_bytes(array8(take(28, 36))?),
        })
    }
}

/// What a GetRecords call read, before encoding.
#[derive(Debug)]
pub struct ReadBatch {
    pub records: Vec<Record>,
    pub next: Option<IteratorToken>,
    pub millis_behind_latest: i64,
    pub child_shards: Option<Vec<ChildShardOut>>,
}

/// Where each record of a write went.
#[derive(Debug, Clone, PartialEq)]
pub enum PutOutcome {
    Stored { shard: u32, seq: u128 },
    Throttled,
}

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

/// Validates a stream name (1-128 of `[a-zA-Z0-9_.-]`).
pub fn validate_stream_name(name: &str) -> Result<(), ApiError> {
    let ok = (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::validation(format!(
            "1 validation error detected: Value {name:?} at 'streamName' failed to satisfy constraint: Member must have length between 1 and 128 and match [a-zA-Z0-9_.-]+"
        )))
    }
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

    /// Resolves StreamName or StreamARN to a stream name.
    pub fn resolve_name(
        stream_name: Option<&str>,
        stream_arn: Option<&str>,
    ) -> Result<String, ApiError> {
        let from_arn = match stream_arn {
            Some(arn) => {
                let name = arn
                    .strip_prefix("arn:aws:kinesis:")
                    .and_then(|rest| rest.split_once(":stream/"))
                    .map(|(_, name)| name)
                    .filter(|name| !name.is_empty())
                    .ok_or_else(|| {
                        ApiError::invalid(format!("StreamARN {arn:?} is not a Kinesis stream ARN"))
                    })?;
                Some(name.to_string())
            }
            None => None,
        };
        match (stream_name, from_arn) {
            (Some(name), Some(arn_name)) if name != arn_name => Err(ApiError::invalid(format!(
                "StreamName {name:?} and StreamARN name {arn_name:?} differ"
            ))),
            (Some(name), _) => Ok(name.to_string()),
            (None, Some(name)) => Ok(name),
            (None, None) => Err(ApiError::validation(
                "Either StreamName or StreamARN must be provided",
            )),
        }
    }

    pub fn stream(&self, name: &str) -> Result<&Stream, ApiError> {
        self.streams.get(name).ok_or_else(|| not_found(name))
    }

    fn stream_mut(&mut self, name: &str) -> Result<&mut Stream, ApiError> {
        self.streams.get_mut(name).ok_or_else(|| not_found(name))
    }

    fn stream_by_id(&self, id: u64) -> Option<&Stream> {
        self.streams.values().find(|s| s.id == id)
    }

    fn stream_by_id_mut(&mut self, id: u64) -> Option<&mut Stream> {
        self.streams.values_mut().find(|s| s.id == id)
    }

    fn total_open_shards(&self) -> usize {
        self.streams.values().map(Stream::open_shard_count).sum()
    }

    fn check_shard_budget(&self, extra: usize) -> Result<(), ApiError> {
        let limit = self.settings.shard_limit as usize;
        if self.total_open_shards() + extra > limit {
            return Err(ApiError::new(
                ErrorKind::LimitExceeded,
                format!(
                    "This request would exceed the shard limit for the account: {} open + {extra} requested > {limit}",
                    self.total_open_shards()
                ),
            ));
        }
        Ok(())
    }

    pub fn create_stream(
        &mut self,
        name: &str,
        shard_count: Option<i64>,
        mode: StreamMode,
        now_ms: i64,
    ) -> Result<(), ApiError> {
        validate_stream_name(name)?;
        let count = match (mode, shard_count) {
            (StreamMode::OnDemand, None) => ON_DEMAND_SHARDS,
            (StreamMode::OnDemand, Some(_)) => {
                return Err(ApiError::validation(
                    "ShardCount must not be given for an ON_DEMAND stream",
                ));
            }
            (StreamMode::Provisioned, None) => {
                return Err(ApiError::validation(
                    "ShardCount is required for a PROVISIONED stream",
                ));
            }
            (StreamMode::Provisioned, Some(n)) if !(1..=100_000).contains(&n) => {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value {n} at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1"
                )));
            }
            (StreamMode::Provisioned, Some(n)) => n as u32,
        };
        if self.streams.contains_key(name) {
            return Err(ApiError::in_use(format!(
                "Stream {name} under account 000000000000 already exists."
            )));
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
        };
        self.next_stream_id += 1;
        for i in 0..count {
            let (start, end) = uniform_range(i, count);
            stream.add_shard(Vec::new(), start, end, now_ms);
        }
        self.streams.insert(name.to_string(), stream);
        Ok(())
    }

    pub fn delete_stream(&mut self, name: &str) -> Result<Stream, ApiError> {
        self.streams.remove(name).ok_or_else(|| not_found(name))
    }

    /// Stores `records` in `stream` (already validated), all stamped with `lsn`. Returns one
    /// outcome per record, in order; throttled records (limits on) are not stored.
    pub fn put(
        &mut self,
        name: &str,
        records: &[NewRecord],
        lsn: u64,
        now_ms: i64,
        now: Instant,
    ) -> Result<Vec<PutOutcome>, ApiError> {
        let limits = self.settings.throughput_limits;
        let stream = self.stream_mut(name)?;
        let mut outcomes = Vec::with_capacity(records.len());
        for record in records {
            let shard_index = stream.shard_for_hash(record.hash).ok_or_else(|| {
                ApiError::new(
                    ErrorKind::InternalFailure,
                    "no open shard covers the hash key",
                )
            })?;
            if limits {
                let shard = &mut stream.shards[shard_index as usize];
                if !shard.budget(now).admit_put(record.size(), now) {
                    outcomes.push(PutOutcome::Throttled);
                    continue;
                }
            }
            let seq = stream.take_seq();
            stream.shards[shard_index as usize]
                .records
                .push_back(Record {
                    seq,
                    arrival_ms: now_ms,
                    lsn,
                    partition_key: record.partition_key.clone(),
                    data: record.data.clone(),
                });
            outcomes.push(PutOutcome::Stored {
                shard: shard_index,
                seq,
            });
        }
        Ok(outcomes)
    }

    /// Replays a record from the log (recovery). Unknown streams (deleted) are skipped.
    pub fn replay(&mut self, stream_id: u64, shard: u32, record: Record) {
        if let Some(stream) = self.stream_by_id_mut(stream_id) {
            stream.next_seq = stream.next_seq.max(record.seq + 1);
            if let Some(shard) = stream.shards.get_mut(shard as usize)
                && shard
                    .records
                    .back()
                    .is_none_or(|last| last.seq < record.seq)
            {
                shard.records.push_back(record);
            }
        }
    }

    /// Stream id of `name`, for log frames.
    pub fn stream_id(&self, name: &str) -> Result<u64, ApiError> {
        Ok(self.stream(name)?.id)
    }

    pub fn shard_iterator(
        &self,
        name: &str,
        shard: &str,
        start: IteratorStart,
        now_ms: i64,
    ) -> Result<String, ApiError> {
        let stream = self.stream(name)?;
        let shard = stream.shard_by_id(shard)?;
        let position = match start {
            IteratorStart::TrimHorizon => 0,
            IteratorStart::Latest => match shard.ending_seq {
                Some(end) => end,
                None => stream.next_seq,
            },
            IteratorStart::AtSequence(seq) | IteratorStart::AfterSequence(seq) => {
                let beyond_end = shard.ending_seq.is_some_and(|end| seq > end);
                if seq < shard.starting_seq || beyond_end {
                    return Err(ApiError::invalid(format!(
                        "StartingSequenceNumber {seq} used in GetShardIterator on shard {} in stream {name} under account 000000000000 is invalid because it did not come from this stream.",
                        shard.id()
                    )));
                }
                if matches!(start, IteratorStart::AfterSequence(_)) {
                    seq + 1
                } else {
                    seq
                }
            }
            IteratorStart::AtTimestamp(ts_ms) => shard
                .records
                .iter()
                .find(|r| r.arrival_ms >= ts_ms)
                .map(|r| r.seq)
                .unwrap_or(match shard.ending_seq {
                    Some(end) => end,
                    None => stream.next_seq,
                }),
        };
        Ok(IteratorToken {
            stream_id: stream.id,
            shard: shard.index,
            position,
            issued_ms: now_ms,
        }
        .seal(&self.secret))
    }

    /// Reads from an iterator. `durable_lsn` hides records whose write is not yet on disk.
    pub fn get_records(
        &mut self,
        iterator: &str,
        limit: usize,
        durable_lsn: u64,
        now_ms: i64,
        now: Instant,
    ) -> Result<ReadBatch, ApiError> {
        let token = IteratorToken::open(iterator, &self.secret)?;
        if now_ms - token.issued_ms > self.settings.iterator_ttl_ms
            || now_ms < token.issued_ms - 60_000
        {
            return Err(ApiError::new(
                ErrorKind::ExpiredIterator,
                format!(
                    "Iterator expired. The iterator was created at time {} while right now it is {} and this exceeds the iterator TTL of {} ms.",
                    token.issued_ms, now_ms, self.settings.iterator_ttl_ms
                ),
            ));
        }
        let limits = self.settings.throughput_limits;
        let stream = self.stream_by_id_mut(token.stream_id).ok_or_else(|| {
            ApiError::not_found("The stream of this ShardIterator no longer exists")
        })?;
        let stream_id = stream.id;
        let shard = stream
            .shards
            .get_mut(token.shard as usize)
            .ok_or_else(|| ApiError::not_found("The shard of this ShardIterator does not exist"))?;
        if limits && !shard.budget(now).admit_get(now) {
            return Err(ApiError::new(
                ErrorKind::ProvisionedThroughputExceeded,
                format!(
                    "Rate exceeded for shard {} in stream: more than 5 GetRecords calls or 2 MiB per second",
                    shard.id()
                ),
            ));
        }
        let first = shard.position_index(token.position);
        let mut bytes = 0usize;
        let mut records = Vec::with_capacity(limit.min(shard.records.len() - first));
        for record in shard.records.range(first..) {
            if records.len() >= limit || record.lsn > durable_lsn {
                break;
            }
            let size = record.data.len() + record.partition_key.len();
            if !records.is_empty() && bytes + size > MAX_GET_BYTES {
                break;
            }
            bytes += size;
            records.push(record.clone());
        }
        if limits {
            shard.budget(now).charge_get_bytes(bytes, now);
        }
        let next_position = records.last().map(|r| r.seq + 1).unwrap_or(token.position);
        let remaining = shard.records.len() - first - records.len();
        let next_unread = shard.records.get(first + records.len());
        let millis_behind_latest = match next_unread {
            Some(record) if remaining > 0 => (now_ms - record.arrival_ms).max(0),
            _ => 0,
        };
        let at_end_of_closed = remaining == 0 && shard.ending_seq.is_some();
        let shard_index = shard.index;
        let (next, child_shards) = if at_end_of_closed {
            (None, Some(stream.children(shard_index)))
        } else {
            (
                Some(IteratorToken {
                    stream_id,
                    shard: shard_index,
                    position: next_position,
                    issued_ms: now_ms,
                }),
                None,
            )
        };
        Ok(ReadBatch {
            records,
            next,
            millis_behind_latest,
            child_shards,
        })
    }

    pub fn seal(&self, token: &IteratorToken) -> String {
        token.seal(&self.secret)
    }

    pub fn split_shard(
        &mut self,
        name: &str,
        shard: &str,
        new_starting_hash_key: &str,
        now_ms: i64,
    ) -> Result<(), ApiError> {
        self.check_shard_budget(1)?;
        let stream = self.stream_mut(name)?;
        let parent = stream.shard_by_id(shard)?;
        if !parent.is_open() {
            return Err(ApiError::in_use(format!(
                "Shard {shard} in stream {name} is closed and cannot be split"
            )));
        }
        let key = parse_hash_key(new_starting_hash_key).ok_or_else(|| {
            ApiError::invalid(format!(
                "NewStartingHashKey {new_starting_hash_key:?} is not a decimal integer in 0..=2^128-1"
            ))
        })?;
        if key <= parent.start_hash || key > parent.end_hash {
            return Err(ApiError::invalid(format!(
                "NewStartingHashKey {key} must be greater than the shard's StartingHashKey {} and at most its EndingHashKey {}",
                parent.start_hash, parent.end_hash
            )));
        }
        let (index, start, end) = (parent.index, parent.start_hash, parent.end_hash);
        stream.close_shard(index, now_ms);
        stream.add_shard(vec![index], start, key - 1, now_ms);
        stream.add_shard(vec![index], key, end, now_ms);
        Ok(())
    }

    pub fn merge_shards(
        &mut self,
        name: &str,
        shard: &str,
        adjacent: &str,
        now_ms: i64,
    ) -> Result<(), ApiError> {
        let stream = self.stream_mut(name)?;
        let a = stream.shard_by_id(shard)?;
        let b = stream.shard_by_id(adjacent)?;
        if !a.is_open() || !b.is_open() {
            return Err(ApiError::in_use(format!(
                "Shards {shard} and {adjacent} in stream {name} must both be open to merge"
            )));
        }
        let adjacent_ranges = a.end_hash.checked_add(1) == Some(b.start_hash)
            || b.end_hash.checked_add(1) == Some(a.start_hash);
        if !adjacent_ranges {
            return Err(ApiError::invalid(format!(
                "Shards {shard} and {adjacent} in stream {name} are not adjacent"
            )));
        }
        let (ai, bi) = (a.index, b.index);
        let (start, end) = (a.start_hash.min(b.start_hash), a.end_hash.max(b.end_hash));
        stream.close_shard(ai, now_ms);
        stream.close_shard(bi, now_ms);
        stream.add_shard(vec![ai, bi], start, end, now_ms);
        Ok(())
    }

    /// UNIFORM_SCALING: closes every open shard and opens `target` shards of equal ranges;
    /// each child's parents are the closed shards its range overlaps. Returns the previous
    /// open shard count.
    pub fn update_shard_count(
        &mut self,
        name: &str,
        target: i64,
        now_ms: i64,
    ) -> Result<u32, ApiError> {
        let current = self.stream(name)?.open_shard_count() as i64;
        if self.stream(name)?.mode == StreamMode::OnDemand {
            return Err(ApiError::validation(
                "UpdateShardCount is not supported for ON_DEMAND streams",
            ));
        }
        if !(1..=100_000).contains(&target) {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value {target} at 'targetShardCount' failed to satisfy constraint: Member must have value greater than or equal to 1"
            )));
        }
        if target > current * 2 || target * 2 < current {
            return Err(ApiError::new(
                ErrorKind::LimitExceeded,
                format!(
                    "UpdateShardCount can scale between half and double the open shard count ({current}); {target} is outside"
                ),
            ));
        }
        self.check_shard_budget((target - current).max(0) as usize)?;
        let stream = self.stream_mut(name)?;
        let mut parents: Vec<(u32, u128, u128)> = stream
            .open_shards()
            .map(|s| (s.index, s.start_hash, s.end_hash))
            .collect();
        parents.sort_by_key(|p| p.1);
        let target = target as u32;
        let already_uniform = parents.len() == target as usize
            && parents
                .iter()
                .enumerate()
                .all(|(i, p)| (p.1, p.2) == uniform_range(i as u32, target));
        if already_uniform {
            return Ok(current as u32);
        }
        for (index, _, _) in &parents {
            stream.close_shard(*index, now_ms);
        }
        for i in 0..target {
            let (start, end) = uniform_range(i, target);
            let overlapping = parents
                .iter()
                .filter(|p| p.1 <= end && start <= p.2)
                .map(|p| p.0)
                .collect();
            stream.add_shard(overlapping, start, end, now_ms);
        }
        Ok(current as u32)
    }

    pub fn set_retention(
        &mut self,
        name: &str,
        hours: i64,
        increase: bool,
    ) -> Result<(), ApiError> {
        let stream = self.stream_mut(name)?;
        let current = i64::from(stream.retention_hours);
        if !(i64::from(DEFAULT_RETENTION_HOURS)..=i64::from(MAX_RETENTION_HOURS)).contains(&hours) {
            return Err(ApiError::invalid(format!(
                "Minimum allowed retention period is {DEFAULT_RETENTION_HOURS} hours and maximum is {MAX_RETENTION_HOURS} hours; got {hours}"
            )));
        }
        if increase && hours < current {
            return Err(ApiError::invalid(format!(
                "Requested retention period ({hours} hours) for stream {name} can not be shorter than existing retention period ({current} hours). Use DecreaseRetentionPeriod API."
            )));
        }
        if !increase && hours > current {
            return Err(ApiError::invalid(format!(
                "Requested retention period ({hours} hours) for stream {name} can not be longer than existing retention period ({current} hours). Use IncreaseRetentionPeriod API."
            )));
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
    ) -> Result<Vec<ShardOut>, ApiError> {
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
    pub fn child_shards(&self, name: &str, shard: u32) -> Result<Vec<ChildShardOut>, ApiError> {
        Ok(self.stream(name)?.children(shard))
    }

    pub fn stream_name_by_id(&self, id: u64) -> Option<&str> {
        self.stream_by_id(id).map(|s| s.name.as_str())
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

fn not_found(name: &str) -> ApiError {
    ApiError::not_found(format!(
        "Stream {name} under account 000000000000 not found."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: [u8; 16] = [7; 16];

    fn model() -> Model {
        Model::new(
            SECRET,
            ModelSettings {
                shard_limit: 100,
                throughput_limits: false,
                iterator_ttl_ms: 300_000,
            },
        )
    }

    fn rec(key: &str, data: &str) -> NewRecord {
        NewRecord::new(key, None, Bytes::from(data.to_string())).unwrap()
    }

    #[test]
    fn uniform_ranges_match_aws() {
        assert_eq!(uniform_range(0, 1), (0, u128::MAX));
        let (s0, e0) = uniform_range(0, 2);
        let (s1, e1) = uniform_range(1, 2);
        assert_eq!(s0, 0);
        assert_eq!(e0.to_string(), "170141183460469231731687303715884105727");
        assert_eq!(s1.to_string(), "170141183460469231731687303715884105728");
        assert_eq!(e1, u128::MAX);
        for n in [3u32, 5, 7, 10] {
            let mut next = 0u128;
            for i in 0..n {
                let (s, e) = uniform_range(i, n);
                assert_eq!(s, next);
                assert!(e >= s);
                next = e.wrapping_add(1);
            }
            assert_eq!(next, 0, "ranges cover the whole key space");
        }
        assert_eq!(
            uniform_range(1, 4).0.to_string(),
            "85070591730234615865843651857942052864"
        );
    }

    #[test]
    fn md5_picks_the_shard() {
        // MD5("a") = 0cc175b9c0f1b6a831c399e269772661, below 2^127: first of two shards.
        assert_eq!(hash_partition_key("a"), 0x0cc175b9c0f1b6a831c399e269772661);
        let mut m = model();
        m.create_stream("s", Some(2), StreamMode::Provisioned, 0)
            .unwrap();
        let outcomes = m.put("s", &[rec("a", "x")], 1, 0, Instant::now()).unwrap();
        assert!(matches!(outcomes[0], PutOutcome::Stored { shard: 0, .. }));
    }

    #[test]
    fn sequence_numbers_increase_per_shard_and_children_start_above_parents() {
        let mut m = model();
        m.create_stream("s", Some(1), StreamMode::Provisioned, 0)
            .unwrap();
        let recs: Vec<_> = (0..10).map(|i| rec(&format!("k{i}"), "x")).collect();
        let out = m.put("s", &recs, 1, 0, Instant::now()).unwrap();
        let seqs: Vec<u128> = out
            .iter()
            .map(|o| match o {
                PutOutcome::Stored { seq, .. } => *seq,
                PutOutcome::Throttled => panic!(),
            })
            .collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]));
        m.split_shard(
            "s",
            "shardId-000000000000",
            "170141183460469231731687303715884105728",
            5,
        )
        .unwrap();
        let stream = m.stream("s").unwrap();
        let parent = &stream.shards[0];
        let end = parent.ending_seq.unwrap();
        assert!(end > *seqs.last().unwrap());
        assert_eq!(stream.shards[1].parents, vec![0]);
        assert!(stream.shards[1].starting_seq > end);
        assert_eq!(stream.shards[2].start_hash, 1u128 << 127);
        assert_eq!(stream.shards[1].end_hash, (1u128 << 127) - 1);
        assert_eq!(m.child_shards("s", 0).unwrap().len(), 2);
        // They leave as decimal strings of one length: text order is number order.
        let (a, b) = (seqs[0].to_string(), seqs[1].to_string());
        assert_eq!(a.len(), b.len());
        assert!(a < b);
        assert!(parse_seq(&a).unwrap() < parse_seq(&b).unwrap());
    }

    #[test]
    fn merge_requires_adjacent_open_shards() {
        let mut m = model();
        m.create_stream("s", Some(3), StreamMode::Provisioned, 0)
            .unwrap();
        let e = m
            .merge_shards("s", "shardId-000000000000", "shardId-000000000002", 1)
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
        m.merge_shards("s", "shardId-000000000001", "shardId-000000000000", 1)
            .unwrap();
        let s = m.stream("s").unwrap();
        assert_eq!(s.shards[3].parents, vec![1, 0]);
        assert_eq!(s.shards[3].start_hash, 0);
        assert_eq!(s.open_shard_count(), 2);
        let e = m
            .merge_shards("s", "shardId-000000000000", "shardId-000000000003", 1)
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::ResourceInUse);
    }

    #[test]
    fn update_shard_count_scales_uniformly_with_overlapping_parents() {
        let mut m = model();
        m.create_stream("s", Some(2), StreamMode::Provisioned, 0)
            .unwrap();
        assert_eq!(m.update_shard_count("s", 3, 1).unwrap(), 2);
        let s = m.stream("s").unwrap();
        assert_eq!(s.open_shard_count(), 3);
        assert_eq!(s.shards[2].parents, vec![0]);
        assert_eq!(s.shards[3].parents, vec![0, 1]);
        assert_eq!(s.shards[4].parents, vec![1]);
        assert_eq!(
            m.update_shard_count("s", 7, 1).unwrap_err().kind,
            ErrorKind::LimitExceeded
        );
    }

    #[test]
    fn iterators_are_sealed_and_expire() {
        let mut m = model();
        m.create_stream("s", Some(1), StreamMode::Provisioned, 0)
            .unwrap();
        m.put("s", &[rec("a", "1"), rec("b", "2")], 1, 10, Instant::now())
            .unwrap();
        let it = m
            .shard_iterator("s", "shardId-000000000000", IteratorStart::TrimHorizon, 100)
            .unwrap();
        let batch = m.get_records(&it, 1, 0, 200, Instant::now()).unwrap();
        assert!(
            batch.records.is_empty(),
            "records of a write not yet durable are hidden"
        );
        let batch = m.get_records(&it, 1, 1, 200, Instant::now()).unwrap();
        assert_eq!(batch.records.len(), 1);
        assert!(batch.millis_behind_latest > 0);
        let next = m.seal(&batch.next.unwrap());
        let batch = m.get_records(&next, 10, 1, 200, Instant::now()).unwrap();
        assert_eq!(&batch.records[0].data[..], b"2");
        assert_eq!(batch.millis_behind_latest, 0);

        let e = m
            .get_records(&it, 1, 1, 100 + 300_001, Instant::now())
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::ExpiredIterator);
        let mut tampered = it.clone().into_bytes();
        tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(
            m.get_records(&tampered, 1, 1, 200, Instant::now())
                .unwrap_err()
                .kind,
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            m.get_records("garbage!", 1, 1, 200, Instant::now())
                .unwrap_err()
                .kind,
            ErrorKind::InvalidArgument
        );
    }

    #[test]
    fn closed_shard_end_gives_children_and_no_next_iterator() {
        let mut m = model();
        m.create_stream("s", Some(2), StreamMode::Provisioned, 0)
            .unwrap();
        m.put("s", &[rec("a", "1")], 1, 0, Instant::now()).unwrap();
        m.merge_shards("s", "shardId-000000000000", "shardId-000000000001", 1)
            .unwrap();
        let it = m
            .shard_iterator("s", "shardId-000000000000", IteratorStart::TrimHorizon, 2)
            .unwrap();
        let batch = m.get_records(&it, 100, 1, 2, Instant::now()).unwrap();
        assert_eq!(batch.records.len(), 1);
        assert!(batch.next.is_none());
        let children = batch.child_shards.unwrap();
        assert_eq!(children[0].shard_id, "shardId-000000000002");
        assert_eq!(children[0].parent_shards.len(), 2);
    }

    #[test]
    fn sequence_and_timestamp_iterators() {
        let mut m = model();
        m.create_stream("s", Some(1), StreamMode::Provisioned, 0)
            .unwrap();
        m.put("s", &[rec("a", "1")], 1, 1000, Instant::now())
            .unwrap();
        m.put("s", &[rec("a", "2")], 1, 2000, Instant::now())
            .unwrap();
        let seq = m.stream("s").unwrap().shards[0].records[0].seq;
        let read = |m: &mut Model, start| {
            let it = m
                .shard_iterator("s", "shardId-000000000000", start, 3000)
                .unwrap();
            m.get_records(&it, 100, 1, 3000, Instant::now())
                .unwrap()
                .records
                .iter()
                .map(|r| r.data.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(read(&mut m, IteratorStart::AtSequence(seq)).len(), 2);
        assert_eq!(read(&mut m, IteratorStart::AfterSequence(seq)).len(), 1);
        assert_eq!(read(&mut m, IteratorStart::AtTimestamp(1500)).len(), 1);
        assert_eq!(read(&mut m, IteratorStart::Latest).len(), 0);
        let e = m
            .shard_iterator("s", "shardId-000000000000", IteratorStart::AtSequence(5), 0)
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidArgument);
    }

    #[test]
    fn validation_errors() {
        let mut m = model();
        assert_eq!(
            m.create_stream("bad name", Some(1), StreamMode::Provisioned, 0)
                .unwrap_err()
                .kind,
            ErrorKind::Validation
        );
        m.create_stream("s", Some(1), StreamMode::Provisioned, 0)
            .unwrap();
        assert_eq!(
            m.create_stream("s", Some(1), StreamMode::Provisioned, 0)
                .unwrap_err()
                .kind,
            ErrorKind::ResourceInUse
        );
        assert_eq!(
            m.create_stream("big", Some(200), StreamMode::Provisioned, 0)
                .unwrap_err()
                .kind,
            ErrorKind::LimitExceeded
        );
        assert!(NewRecord::new("", None, Bytes::new()).is_err());
        assert!(NewRecord::new(&"k".repeat(257), None, Bytes::new()).is_err());
        assert!(NewRecord::new("k", None, Bytes::from(vec![0u8; MAX_RECORD_BYTES])).is_err());
        assert!(NewRecord::new("k", Some("12x"), Bytes::new()).is_err());
        assert_eq!(
            m.set_retention("s", 12, false).unwrap_err().kind,
            ErrorKind::InvalidArgument
        );
        m.set_retention("s", 48, true).unwrap();
        assert_eq!(
            m.set_retention("s", 72, false).unwrap_err().kind,
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            Model::resolve_name(None, Some(&format!("{ARN_PREFIX}s"))).unwrap(),
            "s"
        );
    }

    #[test]
    fn retention_trims_old_records() {
        let mut m = model();
        m.create_stream("s", Some(1), StreamMode::Provisioned, 0)
            .unwrap();
        m.put("s", &[rec("a", "1")], 1, 0, Instant::now()).unwrap();
        m.put("s", &[rec("a", "2")], 1, 3_600_000, Instant::now())
            .unwrap();
        assert_eq!(m.trim(24 * 3_600_000 + 1), 1);
        assert_eq!(m.stream("s").unwrap().shards[0].records.len(), 1);
    }

    #[test]
    fn throughput_limits_throttle_per_record() {
        let mut m = model();
        m.settings.throughput_limits = true;
        m.create_stream("s", Some(1), StreamMode::Provisioned, 0)
            .unwrap();
        let recs: Vec<_> = (0..1200).map(|i| rec(&format!("k{i}"), "x")).collect();
        let out = m.put("s", &recs, 1, 0, Instant::now()).unwrap();
        let throttled = out.iter().filter(|o| **o == PutOutcome::Throttled).count();
        assert_eq!(throttled, 200);
    }
}
