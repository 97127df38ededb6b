//! Putting records into Kinesis: [`Producer`] (PutRecords batching within the API's limits,
//! optional KPL aggregation, retry of failed entries with exponential back-off and jitter),
//! the synthetic generators in [`demo`], and the `streamboard produce` command in [`cli`] with
//! its options in [`settings`].

pub mod cli;
pub mod demo;
pub mod settings;

use crate::{
    consumer::policy::{Backoff, KinesisError},
    kinesis::{
        StreamName,
        kpl::{Aggregator, UserRecord},
    },
};
use aws_sdk_kinesis::{Client, primitives::Blob, types::PutRecordsRequestEntry};
use bytes::Bytes;
use std::time::Duration;

/// PutRecords: at most this many entries per call.
pub const MAX_RECORDS_PER_CALL: usize = 500;
/// PutRecords: at most this many bytes (data + partition keys) per call.
pub const MAX_BYTES_PER_CALL: usize = 5 * 1024 * 1024;
/// One Kinesis record (data + partition key) is at most 1 MiB.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;

/// One record to put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerRecord {
    pub partition_key: String,
    pub explicit_hash_key: Option<String>,
    pub data: Bytes,
}

/// What one [`Producer::put`] did, in user records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PutReport {
    pub sent: u64,
    pub failed: u64,
    /// Kinesis records put (fewer than `sent` with aggregation).
    pub kinesis_records: u64,
    /// Entries re-sent after a partial failure or a throttled call.
    pub retried: u64,
}

impl PutReport {
    pub fn add(&mut self, other: PutReport) {
        self.sent += other.sent;
        self.failed += other.failed;
        self.kinesis_records += other.kinesis_records;
        self.retried += other.retried;
    }
}

/// Batches, aggregates and retries PutRecords for one stream.
#[derive(Debug, Clone)]
pub struct Producer {
    client: Client,
    stream: StreamName,
    stream_arn: Option<String>,
    aggregate: bool,
    /// Attempts per entry, the first included.
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

/// An entry of a PutRecords call and how many user records it carries.
struct Entry {
    partition_key: String,
    explicit_hash_key: Option<String>,
    data: Vec<u8>,
    user_records: u64,
}

impl Entry {
    fn size(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }
}

impl Producer {
    pub fn new(client: Client, stream: StreamName) -> Self {
        Self {
            client,
            stream,
            stream_arn: None,
            aggregate: false,
            max_attempts: 8,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
        }
    }

    /// Address the stream by ARN (cross-account, or to be unambiguous).
    pub fn with_stream_arn(mut self, arn: Option<String>) -> Self {
        self.stream_arn = arn;
        self
    }

    /// Pack user records into KPL aggregated records.
    pub fn with_aggregation(mut self, aggregate: bool) -> Self {
        self.aggregate = aggregate;
        self
    }

    /// Puts `records`, in order, in as few PutRecords calls as the limits allow; failed entries
    /// are retried with back-off up to `max_attempts`. Records that can never be put (too
    /// large, bad key) count as failed and are logged.
    pub async fn put(&self, records: Vec<ProducerRecord>) -> PutReport {
        let mut report = PutReport::default();
        let entries = self.entries(records, &mut report);
        for chunk in chunk_entries(entries) {
            report.add(self.put_chunk(chunk).await);
        }
        report
    }

    fn entries(&self, records: Vec<ProducerRecord>, report: &mut PutReport) -> Vec<Entry> {
        let mut entries = Vec::with_capacity(records.len());
        let valid = records.into_iter().filter(|record| {
            let key_len = record.partition_key.chars().count();
            let ok = (1..=256).contains(&key_len)
                && record.data.len() + record.partition_key.len() <= MAX_RECORD_BYTES;
            if !ok {
                tracing::warn!(
                    partition_key_chars = key_len,
                    bytes = record.data.len(),
                    "record refused: partition key must be 1-256 characters and the record at most 1 MiB"
                );
                report.failed += 1;
            }
            ok
        });
        if !self.aggregate {
            entries.extend(valid.map(|record| Entry {
                partition_key: record.partition_key,
                explicit_hash_key: record.explicit_hash_key,
                data: record.data.to_vec(),
                user_records: 1,
            }));
            return entries;
        }
        let mut aggregator = Aggregator::default();
        let flush = |aggregator: &mut Aggregator, entries: &mut Vec<Entry>| {
            if aggregator.is_empty() {
                return;
            }
            let partition_key = aggregator.first_partition_key().unwrap_or("a").to_string();
            let user_records = aggregator.len() as u64;
            entries.push(Entry {
                partition_key,
                explicit_hash_key: None,
                data: aggregator.finish(),
                user_records,
            });
        };
        for record in valid {
            let user = UserRecord {
                partition_key: record.partition_key,
                explicit_hash_key: record.explicit_hash_key,
                data: record.data.to_vec(),
            };
            // 256 bytes of headroom for the aggregated record's own partition key.
            if !aggregator.is_empty() && aggregator.encoded_len_with(&user) + 256 > MAX_RECORD_BYTES
            {
                flush(&mut aggregator, &mut entries);
            }
            aggregator.push(user);
        }
        flush(&mut aggregator, &mut entries);
        entries
    }

    async fn put_chunk(&self, mut pending: Vec<Entry>) -> PutReport {
        let mut report = PutReport::default();
        let mut backoff = Backoff::new(self.backoff_base, self.backoff_max);
        for attempt in 1..=self.max_attempts.max(1) {
            if attempt > 1 {
                report.retried += pending.len() as u64;
                tokio::time::sleep(backoff.next_delay(rand::random::<f64>())).await;
            }
            let request_entries = pending
                .iter()
                .map(|entry| {
                    PutRecordsRequestEntry::builder()
                        .partition_key(&entry.partition_key)
                        .set_explicit_hash_key(entry.explicit_hash_key.clone())
                        .data(Blob::new(entry.data.clone()))
                        .build()
                })
                .collect::<Result<Vec<_>, _>>();
            let request_entries = match request_entries {
                Ok(entries) => entries,
                Err(error) => {
                    tracing::error!(%error, "cannot build PutRecords entries");
                    report.failed += pending.iter().map(|e| e.user_records).sum::<u64>();
                    return report;
                }
            };
            let output = self
                .client
                .put_records()
                .set_stream_name(self.stream_arn.is_none().then(|| self.stream.to_string()))
                .set_stream_arn(self.stream_arn.clone())
                .set_records(Some(request_entries))
                .send()
                .await;
            match output {
                Ok(output) => {
                    let results = output.records();
                    let mut failed = Vec::new();
                    let mut first_error = None;
                    for (index, entry) in pending.into_iter().enumerate() {
                        match results.get(index).and_then(|r| r.error_code()) {
                            None if index < results.len() => {
                                report.sent += entry.user_records;
                                report.kinesis_records += 1;
                            }
                            code => {
                                first_error.get_or_insert_with(|| {
                                    code.unwrap_or("missing result").to_string()
                                });
                                failed.push(entry);
                            }
                        }
                    }
                    if failed.is_empty() {
                        return report;
                    }
                    tracing::debug!(failed = failed.len(), error = ?first_error, attempt, "PutRecords partly failed; retrying those entries");
                    pending = failed;
                }
                Err(error) => {
                    let error = KinesisError::from_sdk(&error);
                    match error {
                        KinesisError::Throttled(_) | KinesisError::Transient(_) => {
                            tracing::debug!(%error, attempt, "PutRecords failed; retrying");
                        }
                        _ => {
                            tracing::error!(stream = %self.stream, %error, "PutRecords refused");
                            report.failed += pending.iter().map(|e| e.user_records).sum::<u64>();
                            return report;
                        }
                    }
                }
            }
        }
        let lost: u64 = pending.iter().map(|e| e.user_records).sum();
        tracing::warn!(
            records = lost,
            attempts = self.max_attempts,
            "giving up on records after retries"
        );
        report.failed += lost;
        report
    }
}

/// Splits entries into PutRecords calls of at most 500 entries and 5 MiB, keeping order.
fn chunk_entries(entries: Vec<Entry>) -> Vec<Vec<Entry>> {
    let mut chunks = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0;
    for entry in entries {
        if !current.is_empty()
            && (current.len() == MAX_RECORDS_PER_CALL || bytes + entry.size() > MAX_BYTES_PER_CALL)
        {
            chunks.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += entry.size();
        current.push(entry);
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(bytes: usize) -> Entry {
        Entry {
            partition_key: "k".into(),
            explicit_hash_key: None,
            data: vec![0; bytes],
            user_records: 1,
        }
    }

    #[test]
    fn chunks_respect_count_and_size_limits() {
        let chunks = chunk_entries((0..1_201).map(|_| entry(10)).collect());
        assert_eq!(
            chunks.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![500, 500, 201]
        );
        let chunks = chunk_entries((0..12).map(|_| entry(1_000_000)).collect());
        assert!(
            chunks
                .iter()
                .all(|c| c.iter().map(Entry::size).sum::<usize>() <= MAX_BYTES_PER_CALL)
        );
        assert_eq!(chunks.iter().map(Vec::len).sum::<usize>(), 12);
        assert_eq!(chunks[0].len(), 5);
    }
}
