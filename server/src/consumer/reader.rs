//! One task per shard: GetShardIterator, then GetRecords in a paced loop; de-aggregates KPL
//! records, drops what the checkpoint says is already processed, and sends each non-empty batch
//! (and the shard-end batch) to the sink over the bounded channel. Errors are classified in
//! [`super::policy`] and handled on purpose; no error makes a batch disappear, because the
//! position only advances after a batch is handed over.

use super::{
    health::{ReaderEvent, ReaderEventKind, ShardState},
    plan::IteratorStart,
    policy::{Backoff, KinesisError, Pacer, Recovery, next_poll_delay},
};
use crate::{
    kinesis::StreamRef,
    kinesis::{
        Checkpoint, ConsumedRecord, RecordBatch, SequenceNumber, ShardId, StreamName,
        kpl::{self, Deaggregated},
    },
};
use aws_sdk_kinesis::{
    Client,
    primitives::DateTime,
    types::{Record, ShardIteratorType},
};
use bytes::Bytes;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How a reader ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderOutcome {
    /// Read to the end; the shard-end batch was sent. Children (from GetRecords) listed.
    Finished { children: Vec<ShardId> },
    /// Shutdown was requested (or the sink went away).
    Stopped,
    /// Stopped on an error it cannot recover from (stream or shard gone).
    Failed(KinesisError),
}

/// Everything one reader needs.
pub struct ShardReader {
    pub client: Client,
    pub stream: StreamRef,
    pub shard: ShardId,
    pub start: IteratorStart,
    pub records_per_call: i32,
    pub idle_poll_interval: Duration,
    pub backoff: Backoff,
    pub batch_tx: mpsc::Sender<RecordBatch>,
    pub events: mpsc::Sender<ReaderEvent>,
    pub shutdown: CancellationToken,
}

/// The last user record handed to the sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Position {
    sequence_number: SequenceNumber,
    sub_sequence: Option<u64>,
}

impl Position {
    /// Where a reader starting at `start` stands before it has read anything.
    pub(super) fn initial(start: &IteratorStart) -> Option<Self> {
        match start {
            IteratorStart::After(sequence_number) => Some(Position {
                sequence_number: sequence_number.clone(),
                sub_sequence: None,
            }),
            IteratorStart::AtSubSequence(sequence_number, sub) => Some(Position {
                sequence_number: sequence_number.clone(),
                sub_sequence: Some(*sub),
            }),
            _ => None,
        }
    }

    /// Where to read from to resume after this position.
    pub(super) fn resume(&self) -> IteratorStart {
        IteratorStart::resume(self.sequence_number.clone(), self.sub_sequence)
    }
}

/// What one GetRecords call, or one fan-out event, read.
pub(super) struct Read {
    pub records: Vec<Record>,
    pub millis_behind_latest: Option<i64>,
    /// The shard ended with this read.
    pub ended: bool,
    /// How long the call took (polling only).
    pub latency: Option<Duration>,
}

/// The sink (the engine) has gone away: the reader stops.
pub(super) struct SinkGone;

impl Position {
    /// True when (sequence_number, sub_sequence) is at or before this position: already sent.
    fn covers(&self, sequence_number: &SequenceNumber, sub_sequence: Option<u64>) -> bool {
        match sequence_number.cmp(&self.sequence_number) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Greater => false,
            std::cmp::Ordering::Equal => match (sub_sequence, self.sub_sequence) {
                (Some(sub), Some(last)) => sub <= last,
                _ => true,
            },
        }
    }
}

impl ShardReader {
    pub(super) fn name(&self) -> &StreamName {
        self.stream.name()
    }

    pub(super) async fn event(&self, kind: ReaderEventKind) {
        let _ = self
            .events
            .send(ReaderEvent {
                stream: self.name().clone(),
                shard: self.shard.clone(),
                kind,
            })
            .await;
    }

    pub(super) async fn state(&self, state: ShardState, error: Option<String>) {
        self.event(ReaderEventKind::State { state, error }).await;
    }

    /// Sleeps unless shutdown comes first; false when shutting down.
    pub(super) async fn sleep(&self, duration: Duration) -> bool {
        if duration.is_zero() {
            return !self.shutdown.is_cancelled();
        }
        tokio::select! {
            _ = tokio::time::sleep(duration) => !self.shutdown.is_cancelled(),
            _ = self.shutdown.cancelled() => false,
        }
    }

    /// Runs until the shard ends, shutdown, or a fatal error.
    pub async fn run(mut self) -> ReaderOutcome {
        let mut position = Position::initial(&self.start);
        let mut iterator: Option<String> = None;
        let mut pacer = Pacer::default();
        let mut delay = Duration::ZERO;
        self.state(ShardState::Reading, None).await;
        loop {
            delay = delay.max(pacer.wait_before_call(Instant::now()));
            if !self.sleep(delay).await {
                return ReaderOutcome::Stopped;
            }
            let current = match iterator.take() {
                Some(iterator) => iterator,
                None => {
                    pacer.record_call(Instant::now());
                    match self.get_iterator(position.as_ref()).await {
                        Ok(iterator) => iterator,
                        Err(error) => match self.recover(&error).await {
                            Some(wait) => {
                                delay = wait;
                                continue;
                            }
                            None => return ReaderOutcome::Failed(error),
                        },
                    }
                }
            };
            delay = pacer.wait_before_call(Instant::now());
            if !self.sleep(delay).await {
                return ReaderOutcome::Stopped;
            }
            pacer.record_call(Instant::now());
            let started = Instant::now();
            let output = self
                .client
                .get_records()
                .shard_iterator(&current)
                .limit(self.records_per_call)
                .set_stream_arn(self.stream.arn().map(str::to_string))
                .send()
                .await;
            let latency = started.elapsed();
            let mut output = match output {
                Ok(output) => output,
                Err(error) => {
                    let error = KinesisError::from_sdk(&error);
                    match self.recover(&error).await {
                        Some(wait) => {
                            delay = wait;
                            // Keep the iterator unless the policy says to renew it.
                            if !matches!(
                                error.recovery(),
                                Recovery::RenewIterator
                                    | Recovery::BackOff {
                                        renew_iterator: true,
                                        ..
                                    }
                            ) {
                                iterator = Some(current);
                            }
                            continue;
                        }
                        None => return ReaderOutcome::Failed(error),
                    }
                }
            };
            if self.backoff.failures() > 0 {
                self.backoff.reset();
                self.state(ShardState::Reading, None).await;
            }
            let returned = output.records().len();
            let millis_behind_latest = output.millis_behind_latest();
            let ended = output.next_shard_iterator().is_none();
            let children: Vec<ShardId> = output
                .child_shards()
                .iter()
                .map(|child| ShardId::new(child.shard_id()))
                .collect();
            let next_iterator = output.next_shard_iterator.take();
            let read = Read {
                records: std::mem::take(&mut output.records),
                millis_behind_latest,
                ended,
                latency: Some(latency),
            };
            if self.hand_over(read, &mut position).await.is_err() {
                return ReaderOutcome::Stopped;
            }
            if ended {
                self.state(ShardState::Finished, None).await;
                return ReaderOutcome::Finished { children };
            }
            iterator = next_iterator;
            delay = next_poll_delay(
                returned,
                usize::try_from(self.records_per_call).unwrap_or(usize::MAX),
                millis_behind_latest,
                self.idle_poll_interval,
            );
        }
    }

    /// Hands over what one call read: reports it, and sends the records not covered by
    /// `position` (and the shard-end batch) to the sink, advancing `position`. Err when the
    /// sink has gone away.
    pub(super) async fn hand_over(
        &self,
        read: Read,
        position: &mut Option<Position>,
    ) -> Result<(), SinkGone> {
        let now_millis = now_epoch_millis();
        let (records, bytes) = consumed_records(read.records, position.as_ref());
        let iterator_age_millis = match records.last() {
            Some(last) => Some((now_millis - last.arrival_time_ms).max(0)),
            None if read.millis_behind_latest == Some(0) => Some(0),
            None => None,
        };
        self.event(ReaderEventKind::Polled {
            records: records.len() as u64,
            bytes,
            latency: read.latency,
            millis_behind_latest: read.millis_behind_latest,
            iterator_age_millis,
        })
        .await;
        if let Some(last) = records.last() {
            *position = Some(Position {
                sequence_number: last.sequence_number.clone(),
                sub_sequence: last.sub_sequence,
            });
        }
        if records.is_empty() && !read.ended {
            return Ok(());
        }
        let batch = RecordBatch {
            stream: self.name().clone(),
            shard: self.shard.clone(),
            position: Checkpoint {
                sequence_number: records.last().map(|r| r.sequence_number.clone()),
                sub_sequence: records.last().and_then(|r| r.sub_sequence),
                shard_finished: read.ended,
            },
            records,
            millis_behind_latest: read.millis_behind_latest,
        };
        // Blocks while the sink is busy: a slow sink slows the readers.
        self.batch_tx.send(batch).await.map_err(|_| SinkGone)
    }

    /// Applies the recovery policy: `Some(delay)` to retry after it, `None` to stop.
    pub(super) async fn recover(&mut self, error: &KinesisError) -> Option<Duration> {
        match error.recovery() {
            Recovery::Stop => {
                tracing::error!(stream = %self.name(), shard = %self.shard, %error, "shard reader stopped");
                self.state(ShardState::Failed, Some(error.to_string()))
                    .await;
                None
            }
            Recovery::RenewIterator => {
                tracing::info!(stream = %self.name(), shard = %self.shard, %error, "renewing the shard iterator");
                Some(Duration::ZERO)
            }
            Recovery::BackOff { throttled, .. } => {
                if throttled {
                    self.event(ReaderEventKind::Throttled).await;
                }
                let delay = self.backoff.next_delay(rand::random::<f64>());
                tracing::warn!(stream = %self.name(), shard = %self.shard, %error, ?delay, "backing off");
                self.state(ShardState::BackingOff, Some(error.to_string()))
                    .await;
                Some(delay)
            }
        }
    }

    /// GetShardIterator after `position` (the last record handed over), or from the start.
    async fn get_iterator(&self, position: Option<&Position>) -> Result<String, KinesisError> {
        let start = match position {
            Some(p) => p.resume(),
            None => self.start.clone(),
        };
        let request = self
            .client
            .get_shard_iterator()
            .shard_id(self.shard.as_str())
            .set_stream_arn(self.stream.arn().map(str::to_string));
        let request = match self.stream.arn() {
            Some(_) => request,
            None => request.stream_name(self.name().as_str()),
        };
        let request = match start {
            IteratorStart::Latest => request.shard_iterator_type(ShardIteratorType::Latest),
            IteratorStart::TrimHorizon => {
                request.shard_iterator_type(ShardIteratorType::TrimHorizon)
            }
            IteratorStart::AtTimestamp { epoch_millis } => request
                .shard_iterator_type(ShardIteratorType::AtTimestamp)
                .timestamp(DateTime::from_millis(epoch_millis)),
            IteratorStart::At(sequence_number) => request
                .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                .starting_sequence_number(sequence_number.as_str()),
            IteratorStart::After(sequence_number) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .starting_sequence_number(sequence_number.as_str()),
            // AT the aggregated record; its processed sub-records are dropped by `covers`.
            IteratorStart::AtSubSequence(sequence_number, _) => request
                .shard_iterator_type(ShardIteratorType::AtSequenceNumber)
                .starting_sequence_number(sequence_number.as_str()),
        };
        let output = request
            .send()
            .await
            .map_err(|error| KinesisError::from_sdk(&error))?;
        output
            .shard_iterator()
            .map(str::to_string)
            .ok_or_else(|| KinesisError::Transient("GetShardIterator returned no iterator".into()))
    }
}

fn now_epoch_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Turns Kinesis records into user records (de-aggregating KPL records), dropping those at or
/// before `position`. Returns them with their total data bytes. Pure.
///
/// Takes the SDK's records by value: sequence numbers, partition keys and data move into the
/// user records without a copy (a record is copied only when it is split into KPL user
/// records). Sequence numbers increase along a shard, so once one record is past `position`
/// the rest are too and are no longer compared.
fn consumed_records(
    records: Vec<Record>,
    position: Option<&Position>,
) -> (Vec<ConsumedRecord>, u64) {
    let mut out = Vec::with_capacity(records.len());
    let mut bytes = 0u64;
    let mut position = position;
    for record in records {
        let Record {
            sequence_number,
            approximate_arrival_timestamp,
            data,
            partition_key,
            ..
        } = record;
        let sequence_number = match SequenceNumber::from_string(sequence_number) {
            Ok(sequence_number) => sequence_number,
            Err(invalid) => {
                tracing::warn!(
                    sequence_number = invalid,
                    "record with an invalid sequence number skipped"
                );
                continue;
            }
        };
        let arrival_time_ms = approximate_arrival_timestamp
            .and_then(|t| t.to_millis().ok())
            .unwrap_or(0);
        let data = data.into_inner();
        bytes += data.len() as u64;
        // Only a record with the KPL magic prefix is checked (MD5, protobuf) at all.
        if kpl::has_magic(&data) {
            match kpl::deaggregate(&data) {
                Deaggregated::Aggregated(users) => {
                    for (index, user) in users.into_iter().enumerate() {
                        let sub_sequence = Some(index as u64);
                        if position.is_some_and(|p| p.covers(&sequence_number, sub_sequence)) {
                            continue;
                        }
                        position = None;
                        out.push(ConsumedRecord {
                            sequence_number: sequence_number.clone(),
                            sub_sequence,
                            partition_key: user.partition_key,
                            data: Bytes::from(user.data),
                            arrival_time_ms,
                            explicit_hash_key: user.explicit_hash_key,
                        });
                    }
                    continue;
                }
                Deaggregated::Plain => tracing::warn!(
                    sequence_number = %sequence_number,
                    "record has the KPL magic but is not a valid aggregated record; kept as a plain record"
                ),
            }
        }
        if position.is_some_and(|p| p.covers(&sequence_number, None)) {
            continue;
        }
        position = None;
        out.push(ConsumedRecord {
            sequence_number,
            sub_sequence: None,
            partition_key: partition_key.unwrap_or_default(),
            data: Bytes::from(data),
            arrival_time_ms,
            explicit_hash_key: None,
        });
    }
    (out, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinesis::kpl::UserRecord;
    use aws_sdk_kinesis::primitives::Blob;

    fn record(seq: &str, pk: &str, data: Vec<u8>) -> Record {
        Record::builder()
            .sequence_number(seq)
            .partition_key(pk)
            .data(Blob::new(data))
            .approximate_arrival_timestamp(DateTime::from_millis(1_000))
            .build()
            .unwrap()
    }

    fn seq(text: &str) -> SequenceNumber {
        SequenceNumber::parse(text).unwrap()
    }

    #[test]
    fn deaggregates_and_skips_what_the_position_covers() {
        let aggregated = kpl::aggregate(&[
            UserRecord {
                partition_key: "a".into(),
                explicit_hash_key: None,
                data: b"1".to_vec(),
            },
            UserRecord {
                partition_key: "b".into(),
                explicit_hash_key: Some("42".into()),
                data: b"2".to_vec(),
            },
            UserRecord {
                partition_key: "a".into(),
                explicit_hash_key: None,
                data: b"3".to_vec(),
            },
        ]);
        let mut corrupt = aggregated.clone();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        let records = vec![
            record("10", "p", b"plain".to_vec()),
            record("11", "agg", aggregated),
            record("12", "bad", corrupt.clone()),
        ];
        let (all, bytes) = consumed_records(records.clone(), None);
        assert_eq!(all.len(), 5);
        assert_eq!(
            bytes,
            records
                .iter()
                .map(|r| r.data().as_ref().len() as u64)
                .sum::<u64>()
        );
        assert_eq!(all[1].partition_key, "a");
        assert_eq!(all[2].explicit_hash_key.as_deref(), Some("42"));
        assert_eq!(
            all.iter().map(|r| r.sub_sequence).collect::<Vec<_>>(),
            vec![None, Some(0), Some(1), Some(2), None]
        );
        assert_eq!(all[4].partition_key, "bad");
        assert_eq!(all[4].data.as_ref(), corrupt.as_slice());
        assert_eq!(all[0].arrival_time_ms, 1_000);

        // Resuming inside the aggregated record: sub-records 0 and 1 were processed.
        let position = Position {
            sequence_number: seq("11"),
            sub_sequence: Some(1),
        };
        let (rest, _) = consumed_records(records.clone(), Some(&position));
        assert_eq!(rest.len(), 2);
        assert_eq!(
            (rest[0].sequence_number.as_str(), rest[0].sub_sequence),
            ("11", Some(2))
        );
        assert_eq!(rest[1].sequence_number.as_str(), "12");

        let after_plain = Position {
            sequence_number: seq("10"),
            sub_sequence: None,
        };
        assert_eq!(consumed_records(records, Some(&after_plain)).0.len(), 4);
    }
}
