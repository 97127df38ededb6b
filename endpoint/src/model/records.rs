//! Records, writes, iterators and reads: validating and hashing a new record, placing a write
//! on its shards with fresh sequence numbers (or throttling it when limits are on), replaying
//! the log at start-up, issuing sealed iterator tokens and reading a page of durable records
//! from one.

use super::{
    MAX_EVENT_BYTES, MAX_GET_BYTES, MAX_GET_RECORDS, MAX_RECORD_BYTES, Model, ModelError,
    streams::{Shard, Stream},
};
use crate::wire::ChildShardOut;
use base64::Engine as _;
use bytes::Bytes;
use md5::{Digest, Md5};
use std::time::Instant;

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
    ) -> Result<Self, ModelError> {
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
    ) -> Result<u128, ModelError> {
        let key_chars = partition_key.chars().count();
        if !(1..=256).contains(&key_chars) {
            return Err(ModelError::PartitionKeyLength { chars: key_chars });
        }
        if data_len + partition_key.len() > MAX_RECORD_BYTES {
            return Err(ModelError::RecordTooLarge {
                bytes: data_len + partition_key.len(),
            });
        }
        match explicit_hash_key {
            Some(text) => parse_hash_key(text).ok_or_else(|| ModelError::InvalidExplicitHashKey {
                text: text.to_string(),
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
/// (too large, not digits) is refused.
pub fn parse_seq(text: &str) -> Result<u128, ModelError> {
    parse_decimal_u128(text).ok_or_else(|| ModelError::InvalidSequenceNumber {
        text: text.to_string(),
    })
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

    /// Opens a token; a garbage or tampered one is refused.
    pub fn open(text: &str, secret: &[u8; 16]) -> Result<Self, ModelError> {
        let invalid = || ModelError::InvalidIterator {
            text: text.to_string(),
        };
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

/// What a read of one shard found, for GetRecords and SubscribeToShard alike.
#[derive(Debug)]
pub struct ShardRead {
    pub records: Vec<Record>,
    /// Sequence number to read from next.
    pub next_position: u128,
    pub millis_behind_latest: i64,
    /// The children, when the read reached the end of a closed shard.
    pub child_shards: Option<Vec<ChildShardOut>>,
    /// Where a reader resumes with AFTER_SEQUENCE_NUMBER (None at the end of a closed
    /// shard): the last record returned, or the number just below the next record the shard
    /// will hold, never below the shard's StartingSequenceNumber.
    pub continuation: Option<u128>,
}

impl Stream {
    /// Reads up to `limit` durable records (and at least one, else at most `max_bytes`) of
    /// shard `index` from `position` on. The shard must exist.
    fn read_shard(
        &self,
        index: u32,
        position: u128,
        limit: usize,
        max_bytes: usize,
        durable_lsn: u64,
        now_ms: i64,
    ) -> ShardRead {
        let shard = &self.shards[index as usize];
        let first = shard.position_index(position);
        let mut bytes = 0usize;
        let mut records = Vec::with_capacity(limit.min(shard.records.len() - first));
        for record in shard.records.range(first..) {
            if records.len() >= limit || record.lsn > durable_lsn {
                break;
            }
            let size = record.data.len() + record.partition_key.len();
            if !records.is_empty() && bytes + size > max_bytes {
                break;
            }
            bytes += size;
            records.push(record.clone());
        }
        let next_position = records.last().map(|r| r.seq + 1).unwrap_or(position);
        let remaining = shard.records.len() - first - records.len();
        let next_unread = shard.records.get(first + records.len());
        let millis_behind_latest = match next_unread {
            Some(record) if remaining > 0 => (now_ms - record.arrival_ms).max(0),
            _ => 0,
        };
        let at_end_of_closed = remaining == 0 && shard.ending_seq.is_some();
        // The next record this shard can return has this number or a higher one.
        let next_possible = match (next_unread, shard.ending_seq) {
            (Some(record), _) => record.seq,
            (None, Some(end)) => next_position.max(end),
            (None, None) => next_position.max(self.next_seq),
        };
        ShardRead {
            records,
            next_position,
            millis_behind_latest,
            child_shards: at_end_of_closed.then(|| self.children(index)),
            continuation: (!at_end_of_closed)
                .then(|| next_possible.saturating_sub(1).max(shard.starting_seq)),
        }
    }
}

/// Where each record of a write went.
#[derive(Debug, Clone, PartialEq)]
pub enum PutOutcome {
    Stored { shard: u32, seq: u128 },
    Throttled,
}

impl Model {
    /// Stores `records` in `stream` (already validated), all stamped with `lsn`. Returns one
    /// outcome per record, in order; throttled records (limits on) are not stored.
    pub fn put(
        &mut self,
        name: &str,
        records: &[NewRecord],
        lsn: u64,
        now_ms: i64,
        now: Instant,
    ) -> Result<Vec<PutOutcome>, ModelError> {
        let limits = self.settings.throughput_limits;
        let stream = self.stream_mut(name)?;
        let mut outcomes = Vec::with_capacity(records.len());
        for record in records {
            let shard_index = stream
                .shard_for_hash(record.hash)
                .ok_or(ModelError::NoShardForHashKey)?;
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

    pub fn shard_iterator(
        &self,
        name: &str,
        shard: &str,
        start: IteratorStart,
        now_ms: i64,
    ) -> Result<String, ModelError> {
        let stream = self.stream(name)?;
        let shard = stream.shard_by_id(shard)?;
        let position = self.start_position(stream, shard, start)?;
        Ok(IteratorToken {
            stream_id: stream.id,
            shard: shard.index,
            position,
            issued_ms: now_ms,
        }
        .seal(&self.secret))
    }

    /// The first sequence number a read from `start` returns (records with `seq >=` it).
    pub(super) fn start_position(
        &self,
        stream: &Stream,
        shard: &Shard,
        start: IteratorStart,
    ) -> Result<u128, ModelError> {
        Ok(match start {
            IteratorStart::TrimHorizon => 0,
            IteratorStart::Latest => match shard.ending_seq {
                Some(end) => end,
                None => stream.next_seq,
            },
            IteratorStart::AtSequence(seq) | IteratorStart::AfterSequence(seq) => {
                let beyond_end = shard.ending_seq.is_some_and(|end| seq > end);
                if seq < shard.starting_seq || beyond_end {
                    return Err(ModelError::SequenceNumberNotInShard {
                        seq,
                        stream: stream.name.clone(),
                        shard: shard.id(),
                    });
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
        })
    }

    /// Reads from an iterator. `durable_lsn` hides records whose write is not yet on disk.
    pub fn get_records(
        &mut self,
        iterator: &str,
        limit: usize,
        durable_lsn: u64,
        now_ms: i64,
        now: Instant,
    ) -> Result<ReadBatch, ModelError> {
        let token = IteratorToken::open(iterator, &self.secret)?;
        if now_ms - token.issued_ms > self.settings.iterator_ttl_ms
            || now_ms < token.issued_ms - 60_000
        {
            return Err(ModelError::ExpiredIterator {
                issued_ms: token.issued_ms,
                now_ms,
                ttl_ms: self.settings.iterator_ttl_ms,
            });
        }
        let limits = self.settings.throughput_limits;
        let stream = self
            .stream_by_id_mut(token.stream_id)
            .ok_or(ModelError::IteratorStreamGone)?;
        let shard = stream
            .shards
            .get_mut(token.shard as usize)
            .ok_or(ModelError::IteratorShardGone)?;
        if limits && !shard.budget(now).admit_get(now) {
            return Err(ModelError::ReadThrottled { shard: shard.id() });
        }
        let read = stream.read_shard(
            token.shard,
            token.position,
            limit,
            MAX_GET_BYTES,
            durable_lsn,
            now_ms,
        );
        if limits {
            let bytes = read
                .records
                .iter()
                .map(|r| r.data.len() + r.partition_key.len())
                .sum();
            stream.shards[token.shard as usize]
                .budget(now)
                .charge_get_bytes(bytes, now);
        }
        let next = read.child_shards.is_none().then_some(IteratorToken {
            stream_id: token.stream_id,
            shard: token.shard,
            position: read.next_position,
            issued_ms: now_ms,
        });
        Ok(ReadBatch {
            records: read.records,
            next,
            millis_behind_latest: read.millis_behind_latest,
            child_shards: read.child_shards,
        })
    }

    /// One SubscribeToShard event's worth of durable records from `position` on, or `None`
    /// when the stream or shard is gone.
    pub fn read_subscription(
        &self,
        stream_id: u64,
        shard: u32,
        position: u128,
        durable_lsn: u64,
        now_ms: i64,
    ) -> Option<ShardRead> {
        let stream = self.stream_by_id(stream_id)?;
        stream.shard(shard)?;
        Some(stream.read_shard(
            shard,
            position,
            MAX_GET_RECORDS,
            MAX_EVENT_BYTES,
            durable_lsn,
            now_ms,
        ))
    }

    pub fn seal(&self, token: &IteratorToken) -> String {
        token.seal(&self.secret)
    }
}
