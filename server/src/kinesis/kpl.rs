//! KPL record aggregation, both ways: pure functions on bytes, no I/O and no protobuf crate.
//!
//! An aggregated Kinesis record is `F3 89 9A C2` (magic) + a protobuf `AggregatedRecord` +
//! the 16-byte MD5 of that protobuf body. The message is tiny, so it is encoded and decoded by
//! hand here:
//!
//! ```text
//! AggregatedRecord { 1: repeated string partition_key_table,
//!                    2: repeated string explicit_hash_key_table,
//!                    3: repeated Record records }
//! Record           { 1: uint64 partition_key_index, 2: optional uint64 explicit_hash_key_index,
//!                    3: bytes data, 4: repeated Tag tags }
//! ```
//!
//! [`deaggregate`] follows the KCL: a record without the magic, whose MD5 does not match, whose
//! protobuf does not parse or whose table indexes are out of range is a plain record, returned
//! whole. The consumer numbers user records by their index (the sub-sequence number); the
//! producer builds aggregated records with [`Aggregator`].

use md5::{Digest, Md5};

/// The four bytes that open every aggregated record.
pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];
const DIGEST_LEN: usize = 16;

/// One user record inside (or instead of) an aggregated Kinesis record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub partition_key: String,
    pub explicit_hash_key: Option<String>,
    pub data: Vec<u8>,
}

/// What one Kinesis record turned out to hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deaggregated {
    /// Not an aggregated record (or a corrupt one): use the Kinesis record as it is.
    Plain,
    /// The user records, in order; the index is the sub-sequence number.
    Aggregated(Vec<UserRecord>),
}

/// Why bytes that carry the magic are not a valid aggregated record (reported, then treated as
/// plain).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KplError {
    #[error("aggregated record is too short")]
    TooShort,
    #[error("MD5 trailer does not match the body")]
    DigestMismatch,
    #[error("protobuf body does not parse: {0}")]
    Protobuf(&'static str),
    #[error("record {record} refers to {table} index {index}, table has {len}")]
    IndexOutOfRange {
        record: usize,
        table: &'static str,
        index: u64,
        len: usize,
    },
}

/// True when `data` starts with the KPL magic (it may still be corrupt).
pub fn has_magic(data: &[u8]) -> bool {
    data.starts_with(&MAGIC)
}

/// Splits an aggregated record into its user records, or says it is plain (as the KCL does).
pub fn deaggregate(data: &[u8]) -> Deaggregated {
    match try_deaggregate(data) {
        Ok(Some(records)) => Deaggregated::Aggregated(records),
        Ok(None) | Err(_) => Deaggregated::Plain,
    }
}

/// As [`deaggregate`], but says why a record with the magic was not accepted.
/// `Ok(None)`: no magic, a plain record.
pub fn try_deaggregate(data: &[u8]) -> Result<Option<Vec<UserRecord>>, KplError> {
    if !has_magic(data) {
        return Ok(None);
    }
    if data.len() < MAGIC.len() + DIGEST_LEN {
        return Err(KplError::TooShort);
    }
    let body = &data[MAGIC.len()..data.len() - DIGEST_LEN];
    let trailer = &data[data.len() - DIGEST_LEN..];
    if Md5::digest(body).as_slice() != trailer {
        return Err(KplError::DigestMismatch);
    }
    decode_body(body).map(Some)
}

struct RawRecord {
    partition_key_index: u64,
    explicit_hash_key_index: Option<u64>,
    data: Vec<u8>,
}

fn decode_body(body: &[u8]) -> Result<Vec<UserRecord>, KplError> {
    let mut partition_keys = Vec::new();
    let mut hash_keys = Vec::new();
    let mut raw = Vec::new();
    let mut reader = Reader::new(body);
    while !reader.done() {
        let (field, wire) = reader.key()?;
        match (field, wire) {
            (1, WIRE_LEN) => partition_keys.push(reader.string()?),
            (2, WIRE_LEN) => hash_keys.push(reader.string()?),
            (3, WIRE_LEN) => raw.push(decode_record(reader.bytes()?)?),
            _ => reader.skip(wire)?,
        }
    }
    raw.into_iter()
        .enumerate()
        .map(|(record, r)| {
            let partition_key = partition_keys
                .get(r.partition_key_index as usize)
                .ok_or(KplError::IndexOutOfRange {
                    record,
                    table: "partition_key_table",
                    index: r.partition_key_index,
                    len: partition_keys.len(),
                })?
                .clone();
            let explicit_hash_key = match r.explicit_hash_key_index {
                None => None,
                Some(index) => Some(
                    hash_keys
                        .get(index as usize)
                        .ok_or(KplError::IndexOutOfRange {
                            record,
                            table: "explicit_hash_key_table",
                            index,
                            len: hash_keys.len(),
                        })?
                        .clone(),
                ),
            };
            Ok(UserRecord {
                partition_key,
                explicit_hash_key,
                data: r.data,
            })
        })
        .collect()
}

fn decode_record(bytes: &[u8]) -> Result<RawRecord, KplError> {
    let mut reader = Reader::new(bytes);
    let mut partition_key_index = None;
    let mut explicit_hash_key_index = None;
    let mut data = None;
    while !reader.done() {
        let (field, wire) = reader.key()?;
        match (field, wire) {
            (1, WIRE_VARINT) => partition_key_index = Some(reader.varint()?),
            (2, WIRE_VARINT) => explicit_hash_key_index = Some(reader.varint()?),
            (3, WIRE_LEN) => data = Some(reader.bytes()?.to_vec()),
            _ => reader.skip(wire)?,
        }
    }
    Ok(RawRecord {
        // Both are `required` in the KPL's proto2 schema.
        partition_key_index: partition_key_index
            .ok_or(KplError::Protobuf("record without partition_key_index"))?,
        explicit_hash_key_index,
        data: data.ok_or(KplError::Protobuf("record without data"))?,
    })
}

const WIRE_VARINT: u8 = 0;
const WIRE_I64: u8 = 1;
const WIRE_LEN: u8 = 2;
const WIRE_I32: u8 = 5;

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn varint(&mut self) -> Result<u64, KplError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .bytes
                .get(self.at)
                .ok_or(KplError::Protobuf("truncated varint"))?;
            self.at += 1;
            value |= u64::from(byte & 0x7F) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(KplError::Protobuf("varint longer than 10 bytes"))
    }

    fn key(&mut self) -> Result<(u64, u8), KplError> {
        let key = self.varint()?;
        let field = key >> 3;
        if field == 0 {
            return Err(KplError::Protobuf("field number 0"));
        }
        Ok((field, (key & 7) as u8))
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], KplError> {
        let len = usize::try_from(len).map_err(|_| KplError::Protobuf("length too large"))?;
        let end = self
            .at
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(KplError::Protobuf("length past the end"))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn bytes(&mut self) -> Result<&'a [u8], KplError> {
        let len = self.varint()?;
        self.take(len)
    }

    fn string(&mut self) -> Result<String, KplError> {
        let bytes = self.bytes()?;
        String::from_utf8(bytes.to_vec()).map_err(|_| KplError::Protobuf("string is not UTF-8"))
    }

    fn skip(&mut self, wire: u8) -> Result<(), KplError> {
        match wire {
            WIRE_VARINT => self.varint().map(drop),
            WIRE_I64 => self.take(8).map(drop),
            WIRE_LEN => self.bytes().map(drop),
            WIRE_I32 => self.take(4).map(drop),
            _ => Err(KplError::Protobuf("unsupported wire type")),
        }
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_len_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_varint(out, (field << 3) | u64::from(WIRE_LEN));
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn varint_len(value: u64) -> usize {
    (64 - value.max(1).leading_zeros() as usize).div_ceil(7)
}

fn len_field_size(field: u64, len: usize) -> usize {
    varint_len(field << 3) + varint_len(len as u64) + len
}

/// Encodes user records as one aggregated record (magic + body + MD5).
/// Keys are de-duplicated into the tables, as the KPL does.
pub fn aggregate(records: &[UserRecord]) -> Vec<u8> {
    let mut aggregator = Aggregator::default();
    for record in records {
        aggregator.push(record.clone());
    }
    aggregator.finish()
}

/// Builds an aggregated record incrementally and knows its encoded size, so the producer can
/// stop before the 1 MiB record limit.
#[derive(Debug, Default)]
pub struct Aggregator {
    partition_keys: Vec<String>,
    hash_keys: Vec<String>,
    /// Encoded `Record` messages.
    records: Vec<Vec<u8>>,
    body_len: usize,
}

impl Aggregator {
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Size of [`Aggregator::finish`]'s output now.
    pub fn encoded_len(&self) -> usize {
        MAGIC.len() + self.body_len + DIGEST_LEN
    }

    /// Encoded size if `record` were added (an upper bound: its keys may already be in the tables).
    pub fn encoded_len_with(&self, record: &UserRecord) -> usize {
        let mut extra = len_field_size(1, record.partition_key.len());
        if let Some(hash_key) = &record.explicit_hash_key {
            extra += len_field_size(2, hash_key.len());
        }
        // Record message: two index varints (≤ 10 bytes each with keys) + data field.
        let record_len = 2 + 10 + 2 + 10 + len_field_size(3, record.data.len());
        self.encoded_len() + extra + len_field_size(3, record_len)
    }

    /// The first record's partition key: the one the aggregated Kinesis record is put with.
    pub fn first_partition_key(&self) -> Option<&str> {
        self.partition_keys.first().map(String::as_str)
    }

    pub fn push(&mut self, record: UserRecord) {
        let partition_key_index = index_of(
            &mut self.partition_keys,
            record.partition_key,
            &mut self.body_len,
            1,
        );
        let hash_key_index = record
            .explicit_hash_key
            .map(|key| index_of(&mut self.hash_keys, key, &mut self.body_len, 2));
        let mut message = Vec::with_capacity(record.data.len() + 16);
        put_varint(&mut message, (1 << 3) | u64::from(WIRE_VARINT));
        put_varint(&mut message, partition_key_index);
        if let Some(index) = hash_key_index {
            put_varint(&mut message, (2 << 3) | u64::from(WIRE_VARINT));
            put_varint(&mut message, index);
        }
        put_len_field(&mut message, 3, &record.data);
        self.body_len += len_field_size(3, message.len());
        self.records.push(message);
    }

    /// The aggregated record's bytes; the aggregator is reset.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut body = Vec::with_capacity(self.body_len);
        for key in &self.partition_keys {
            put_len_field(&mut body, 1, key.as_bytes());
        }
        for key in &self.hash_keys {
            put_len_field(&mut body, 2, key.as_bytes());
        }
        for record in &self.records {
            put_len_field(&mut body, 3, record);
        }
        let mut out = Vec::with_capacity(MAGIC.len() + body.len() + DIGEST_LEN);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&body);
        out.extend_from_slice(&Md5::digest(&body));
        *self = Self::default();
        out
    }
}

fn index_of(table: &mut Vec<String>, key: String, body_len: &mut usize, field: u64) -> u64 {
    if let Some(index) = table.iter().position(|existing| *existing == key) {
        return index as u64;
    }
    *body_len += len_field_size(field, key.len());
    table.push(key);
    (table.len() - 1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    fn user(pk: &str, ehk: Option<&str>, data: &[u8]) -> UserRecord {
        UserRecord {
            partition_key: pk.into(),
            explicit_hash_key: ehk.map(Into::into),
            data: data.to_vec(),
        }
    }

    #[test]
    fn round_trip_with_shared_keys_and_hash_keys() {
        let records = vec![
            user("a", None, b"one"),
            user("b", Some("1234"), b""),
            user("a", Some("1234"), &[0u8; 300]),
        ];
        let mut aggregator = Aggregator::default();
        for record in &records {
            aggregator.push(record.clone());
        }
        assert_eq!(aggregator.first_partition_key(), Some("a"));
        let predicted = aggregator.encoded_len();
        let bytes = aggregator.finish();
        assert_eq!(bytes.len(), predicted);
        assert!(has_magic(&bytes));
        assert_eq!(deaggregate(&bytes), Deaggregated::Aggregated(records));
        assert!(aggregator.is_empty());
    }

    #[test]
    fn size_prediction_is_an_upper_bound() {
        let mut aggregator = Aggregator::default();
        for i in 0..200 {
            let record = user(&format!("key-{}", i % 7), None, &vec![1u8; i * 3]);
            let bound = aggregator.encoded_len_with(&record);
            aggregator.push(record);
            assert!(aggregator.encoded_len() <= bound);
        }
        let len = aggregator.encoded_len();
        assert_eq!(aggregator.finish().len(), len);
    }

    #[test]
    fn decodes_a_body_written_by_another_encoder() {
        // Hand-assembled: table ["pk"], one record {1: 0, 3: "hi"}, plus an unknown field 9
        // and a tag (field 4) that must be skipped.
        let mut record = vec![0x08, 0x00, 0x1A, 0x02, b'h', b'i'];
        record.extend_from_slice(&[0x22, 0x04, 0x0A, 0x02, b'k', b'v']);
        let mut body = vec![0x0A, 0x02, b'p', b'k', 0x48, 0x05];
        body.push(0x1A);
        body.push(record.len() as u8);
        body.extend_from_slice(&record);
        let mut data = MAGIC.to_vec();
        data.extend_from_slice(&body);
        data.extend_from_slice(&Md5::digest(&body));
        assert_eq!(
            deaggregate(&data),
            Deaggregated::Aggregated(vec![user("pk", None, b"hi")])
        );
    }

    #[test]
    fn corrupt_records_are_plain() {
        let good = aggregate(&[user("a", None, b"x"), user("b", None, b"y")]);
        // Wrong MD5 trailer.
        let mut bad_digest = good.clone();
        let last = bad_digest.len() - 1;
        bad_digest[last] ^= 0xFF;
        assert_eq!(try_deaggregate(&bad_digest), Err(KplError::DigestMismatch));
        assert_eq!(deaggregate(&bad_digest), Deaggregated::Plain);
        // A flipped body byte also fails the digest.
        let mut bad_body = good.clone();
        bad_body[6] ^= 0x01;
        assert_eq!(deaggregate(&bad_body), Deaggregated::Plain);
        // Magic only, too short.
        assert_eq!(try_deaggregate(&MAGIC), Err(KplError::TooShort));
        // Not aggregated at all.
        assert_eq!(try_deaggregate(b"{\"plain\":true}"), Ok(None));
        // Valid digest over a body that is not protobuf.
        let body = [0xFFu8, 0xFF, 0xFF];
        let mut data = MAGIC.to_vec();
        data.extend_from_slice(&body);
        data.extend_from_slice(&Md5::digest(body));
        assert!(matches!(try_deaggregate(&data), Err(KplError::Protobuf(_))));
        // Valid protobuf, index past the table.
        let body = [0x1A, 0x04, 0x08, 0x03, 0x1A, 0x00];
        let mut data = MAGIC.to_vec();
        data.extend_from_slice(&body);
        data.extend_from_slice(&Md5::digest(body));
        assert!(matches!(
            try_deaggregate(&data),
            Err(KplError::IndexOutOfRange { index: 3, .. })
        ));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = StdRng::seed_from_u64(7);
        let valid = aggregate(&[user("a", Some("9"), b"hello"), user("b", None, b"")]);
        for round in 0..20_000 {
            let data: Vec<u8> = if round % 2 == 0 {
                // Random bodies with a correct digest reach the protobuf parser.
                let len = rng.random_range(0..64);
                let body: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                let mut data = MAGIC.to_vec();
                data.extend_from_slice(&body);
                data.extend_from_slice(&Md5::digest(&body));
                data
            } else {
                let mut data = valid.clone();
                let flips = rng.random_range(1..4);
                for _ in 0..flips {
                    let at = rng.random_range(0..data.len());
                    data[at] = rng.random();
                }
                data.truncate(rng.random_range(0..=data.len()));
                data
            };
            let _ = deaggregate(&data);
        }
    }
}
