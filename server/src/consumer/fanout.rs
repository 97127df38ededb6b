//! Enhanced fan-out: a stream consumer registered for the application
//! ([`ensure_consumer`]), and one task per shard that reads by SubscribeToShard instead of
//! polling. Kinesis pushes each shard's records to the subscription as they arrive (an event
//! at least every 5 s), with dedicated throughput per consumer, and ends every subscription
//! after 5 minutes.
//!
//! A [`FanOutReader`] hands each event over exactly as a polling reader hands over a
//! GetRecords answer ([`ShardReader::hand_over`]): the same de-aggregation, the same
//! checkpoints, the same shard-end batch. It resubscribes at once when a subscription ends,
//! after the event's continuation sequence number (or after the last record handed over, or
//! at the reader's start), so nothing is skipped or read twice across subscriptions; errors
//! go through the same recovery policy (back-off, stop when the shard or stream is gone).

use super::{
    health::ShardState,
    plan::IteratorStart,
    policy::KinesisError,
    reader::{Position, Read, ReaderOutcome, ShardReader},
};
use crate::kinesis::{SequenceNumber, ShardId, StreamRef};
use aws_sdk_kinesis::{
    Client,
    primitives::DateTime,
    types::{ConsumerStatus, ShardIteratorType, StartingPosition, SubscribeToShardEventStream},
};
use std::time::Duration;

/// A consumer registered with a stream, as [`ensure_consumer`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    Active {
        consumer_arn: String,
    },
    /// Registered but not yet ACTIVE (AWS takes a few seconds): ask again later.
    Pending {
        status: String,
    },
}

/// Makes sure consumer `name` is registered with `stream`: RegisterStreamConsumer, or, when
/// it already exists, DescribeStreamConsumer. The stream's ARN comes from the spec or from
/// DescribeStreamSummary.
pub async fn ensure_consumer(
    client: &Client,
    stream: &StreamRef,
    name: &str,
) -> Result<Registration, KinesisError> {
    let stream_arn = match stream.arn() {
        Some(arn) => arn.to_string(),
        None => client
            .describe_stream_summary()
            .stream_name(stream.name().as_str())
            .send()
            .await
            .map_err(|error| KinesisError::from_sdk(&error))?
            .stream_description_summary()
            .map(|summary| summary.stream_arn().to_string())
            .ok_or_else(|| KinesisError::Transient("DescribeStreamSummary gave no ARN".into()))?,
    };
    let registered = client
        .register_stream_consumer()
        .stream_arn(&stream_arn)
        .consumer_name(name)
        .send()
        .await;
    let (arn, status) = match registered {
        Ok(output) => match output.consumer() {
            Some(consumer) => (
                consumer.consumer_arn().to_string(),
                consumer.consumer_status().clone(),
            ),
            None => {
                return Err(KinesisError::Transient(
                    "RegisterStreamConsumer gave no consumer".into(),
                ));
            }
        },
        Err(error) if is_in_use(&error) => {
            let output = client
                .describe_stream_consumer()
                .stream_arn(&stream_arn)
                .consumer_name(name)
                .send()
                .await
                .map_err(|error| KinesisError::from_sdk(&error))?;
            let description = output.consumer_description().ok_or_else(|| {
                KinesisError::Transient("DescribeStreamConsumer gave no consumer".into())
            })?;
            (
                description.consumer_arn().to_string(),
                description.consumer_status().clone(),
            )
        }
        Err(error) => return Err(KinesisError::from_sdk(&error)),
    };
    Ok(match status {
        ConsumerStatus::Active => Registration::Active { consumer_arn: arn },
        other => Registration::Pending {
            status: other.as_str().to_string(),
        },
    })
}

fn is_in_use<E, R>(error: &aws_sdk_kinesis::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_kinesis::error::ProvideErrorMetadata,
{
    error
        .as_service_error()
        .and_then(|service| service.code())
        .is_some_and(|code| code == "ResourceInUseException")
}

/// One shard read by SubscribeToShard (see the module documentation).
pub struct FanOutReader {
    /// The shard, the sink, the health events, the back-off and the shutdown token, as a
    /// polling reader has them.
    pub reader: ShardReader,
    pub consumer_arn: String,
}

impl FanOutReader {
    /// Runs until the shard ends, shutdown, or a fatal error.
    pub async fn run(mut self) -> ReaderOutcome {
        let mut position = Position::initial(&self.reader.start);
        let mut continuation: Option<SequenceNumber> = None;
        let mut delay = Duration::ZERO;
        self.reader.state(ShardState::Reading, None).await;
        loop {
            if !self.reader.sleep(delay).await {
                return ReaderOutcome::Stopped;
            }
            delay = Duration::ZERO;
            let start = match (&continuation, &position) {
                (Some(after), _) => IteratorStart::After(after.clone()),
                (None, Some(position)) => position.resume(),
                (None, None) => self.reader.start.clone(),
            };
            let subscribed = tokio::select! {
                _ = self.reader.shutdown.cancelled() => return ReaderOutcome::Stopped,
                subscribed = self.subscribe(&start) => subscribed,
            };
            let mut events = match subscribed {
                Ok(output) => output.event_stream,
                Err(error) => match self.reader.recover(&error).await {
                    Some(wait) => {
                        delay = wait;
                        continue;
                    }
                    None => return ReaderOutcome::Failed(error),
                },
            };
            loop {
                let next = tokio::select! {
                    _ = self.reader.shutdown.cancelled() => return ReaderOutcome::Stopped,
                    next = events.recv() => next,
                };
                let mut event = match next {
                    Ok(Some(SubscribeToShardEventStream::SubscribeToShardEvent(event))) => event,
                    Ok(Some(_)) => continue, // an event type this build does not know
                    Ok(None) => break,       // the subscription's 5 minutes are up
                    Err(error) => {
                        let error = KinesisError::from_sdk(&error);
                        match self.reader.recover(&error).await {
                            Some(wait) => {
                                delay = wait;
                                break;
                            }
                            None => return ReaderOutcome::Failed(error),
                        }
                    }
                };
                if self.reader.backoff.failures() > 0 {
                    self.reader.backoff.reset();
                    self.reader.state(ShardState::Reading, None).await;
                }
                let children: Vec<ShardId> = event
                    .child_shards()
                    .iter()
                    .map(|child| ShardId::new(child.shard_id()))
                    .collect();
                let next = SequenceNumber::parse(event.continuation_sequence_number());
                // The shard's last event has the children and no continuation.
                let ended = next.is_none() || !children.is_empty();
                let read = Read {
                    records: std::mem::take(&mut event.records),
                    millis_behind_latest: Some(event.millis_behind_latest()),
                    ended,
                    latency: None,
                };
                if self.reader.hand_over(read, &mut position).await.is_err() {
                    return ReaderOutcome::Stopped;
                }
                if ended {
                    self.reader.state(ShardState::Finished, None).await;
                    return ReaderOutcome::Finished { children };
                }
                continuation = next;
            }
        }
    }

    async fn subscribe(
        &self,
        start: &IteratorStart,
    ) -> Result<aws_sdk_kinesis::operation::subscribe_to_shard::SubscribeToShardOutput, KinesisError>
    {
        let position = StartingPosition::builder();
        let position = match start {
            IteratorStart::Latest => position.r#type(ShardIteratorType::Latest),
            IteratorStart::TrimHorizon => position.r#type(ShardIteratorType::TrimHorizon),
            IteratorStart::AtTimestamp { epoch_millis } => position
                .r#type(ShardIteratorType::AtTimestamp)
                .timestamp(DateTime::from_millis(*epoch_millis)),
            IteratorStart::At(sequence_number) => position
                .r#type(ShardIteratorType::AtSequenceNumber)
                .sequence_number(sequence_number.as_str()),
            IteratorStart::After(sequence_number) => position
                .r#type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(sequence_number.as_str()),
            // AT the aggregated record; its processed sub-records are dropped on hand-over.
            IteratorStart::AtSubSequence(sequence_number, _) => position
                .r#type(ShardIteratorType::AtSequenceNumber)
                .sequence_number(sequence_number.as_str()),
        };
        let position = position
            .build()
            .map_err(|error| KinesisError::Refused(error.to_string()))?;
        self.reader
            .client
            .subscribe_to_shard()
            .consumer_arn(&self.consumer_arn)
            .shard_id(self.reader.shard.as_str())
            .starting_position(position)
            .send()
            .await
            .map_err(|error| KinesisError::from_sdk(&error))
    }
}
