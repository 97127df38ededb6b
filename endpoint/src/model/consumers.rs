//! Enhanced fan-out consumers of a stream: registering (at most [`MAX_CONSUMERS`] per stream,
//! names unique per stream), describing, listing and deregistering them, their ARNs, and
//! where a SubscribeToShard starts reading. Consumers are part of the persisted topology
//! (`Stream::consumers`, absent in files written before consumers existed).

use super::{Model, ModelError, records::IteratorStart, streams::Stream};
use serde::{Deserialize, Serialize};

/// AWS's limit of registered consumers per stream.
pub const MAX_CONSUMERS: usize = 20;

/// A registered consumer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consumer {
    pub name: String,
    pub created_ms: i64,
}

impl Consumer {
    /// `arn:aws:kinesis:<region>:<account>:stream/<stream>/consumer/<name>:<creation seconds>`.
    pub fn arn(&self, stream: &Stream) -> String {
        format!(
            "{}/consumer/{}:{}",
            stream.arn(),
            self.name,
            self.created_ms.div_euclid(1000)
        )
    }
}

/// A consumer ARN taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerArn {
    pub stream: String,
    pub consumer: String,
    pub created_secs: i64,
}

/// Parses a consumer ARN; anything else is refused with the text it was given.
pub fn parse_consumer_arn(arn: &str) -> Result<ConsumerArn, ModelError> {
    let invalid = || ModelError::InvalidConsumerArn {
        arn: arn.to_string(),
    };
    let rest = arn
        .strip_prefix("arn:aws:kinesis:")
        .and_then(|rest| rest.split_once(":stream/"))
        .map(|(_, rest)| rest)
        .ok_or_else(invalid)?;
    let (stream, rest) = rest.split_once("/consumer/").ok_or_else(invalid)?;
    let (consumer, secs) = rest.rsplit_once(':').ok_or_else(invalid)?;
    let created_secs = secs.parse().map_err(|_| invalid())?;
    if stream.is_empty() || consumer.is_empty() {
        return Err(invalid());
    }
    Ok(ConsumerArn {
        stream: stream.to_string(),
        consumer: consumer.to_string(),
        created_secs,
    })
}

/// Validates a consumer name (1-128 of `[a-zA-Z0-9_.-]`, as for streams).
pub fn validate_consumer_name(name: &str) -> Result<(), ModelError> {
    let ok = (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ModelError::InvalidConsumerName {
            name: name.to_string(),
        })
    }
}

/// How a request names a consumer: by ARN, or by stream and consumer name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerRef {
    Arn(String),
    Named { stream: String, consumer: String },
}

/// A consumer with its stream's name, as the operations answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerView {
    pub stream_name: String,
    pub stream_arn: String,
    pub consumer: Consumer,
    pub arn: String,
}

/// A resolved SubscribeToShard: the stream, shard and first sequence number to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriptionStart {
    pub stream_id: u64,
    pub shard: u32,
    pub position: u128,
}

impl Model {
    /// Registers `consumer` on `stream`.
    pub fn register_consumer(
        &mut self,
        stream: &str,
        consumer: &str,
        now_ms: i64,
    ) -> Result<ConsumerView, ModelError> {
        validate_consumer_name(consumer)?;
        let entry = self.stream_mut(stream)?;
        if entry.consumers.iter().any(|c| c.name == consumer) {
            return Err(ModelError::ConsumerExists {
                stream: stream.to_string(),
                consumer: consumer.to_string(),
            });
        }
        if entry.consumers.len() >= MAX_CONSUMERS {
            return Err(ModelError::ConsumerLimit {
                stream: stream.to_string(),
                limit: MAX_CONSUMERS,
            });
        }
        entry.consumers.push(Consumer {
            name: consumer.to_string(),
            created_ms: now_ms,
        });
        self.consumer(&ConsumerRef::Named {
            stream: stream.to_string(),
            consumer: consumer.to_string(),
        })
    }

    /// Looks a consumer up by ARN (whose creation time must match: a consumer registered
    /// again under the same name is a different consumer) or by stream and name.
    pub fn consumer(&self, reference: &ConsumerRef) -> Result<ConsumerView, ModelError> {
        let (stream, name, created_secs) = match reference {
            ConsumerRef::Arn(arn) => {
                let parsed = parse_consumer_arn(arn)?;
                (parsed.stream, parsed.consumer, Some(parsed.created_secs))
            }
            ConsumerRef::Named { stream, consumer } => (stream.clone(), consumer.clone(), None),
        };
        let not_found = || ModelError::ConsumerNotFound {
            stream: stream.clone(),
            consumer: name.clone(),
        };
        let entry = self.streams.get(&stream).ok_or_else(not_found)?;
        let consumer = entry
            .consumers
            .iter()
            .find(|c| c.name == name)
            .filter(|c| created_secs.is_none_or(|s| s == c.created_ms.div_euclid(1000)))
            .ok_or_else(not_found)?;
        Ok(ConsumerView {
            stream_name: entry.name.clone(),
            stream_arn: entry.arn(),
            arn: consumer.arn(entry),
            consumer: consumer.clone(),
        })
    }

    /// The consumers of `stream`, in registration order.
    pub fn list_consumers(&self, stream: &str) -> Result<Vec<ConsumerView>, ModelError> {
        let entry = self.stream(stream)?;
        Ok(entry
            .consumers
            .iter()
            .map(|c| ConsumerView {
                stream_name: entry.name.clone(),
                stream_arn: entry.arn(),
                arn: c.arn(entry),
                consumer: c.clone(),
            })
            .collect())
    }

    /// Deregisters a consumer; returns what it was.
    pub fn deregister_consumer(
        &mut self,
        reference: &ConsumerRef,
    ) -> Result<ConsumerView, ModelError> {
        let view = self.consumer(reference)?;
        let entry = self.stream_mut(&view.stream_name)?;
        entry.consumers.retain(|c| c.name != view.consumer.name);
        Ok(view)
    }

    /// Whether the consumer with this ARN is still registered.
    pub fn consumer_exists(&self, arn: &str) -> bool {
        self.consumer(&ConsumerRef::Arn(arn.to_string())).is_ok()
    }

    /// Where a subscription of consumer `arn` to `shard` starts.
    pub fn subscription_start(
        &self,
        arn: &str,
        shard: &str,
        start: IteratorStart,
    ) -> Result<SubscriptionStart, ModelError> {
        let view = self.consumer(&ConsumerRef::Arn(arn.to_string()))?;
        let stream = self.stream(&view.stream_name)?;
        let shard = stream.shard_by_id(shard)?;
        let position = self.start_position(stream, shard, start)?;
        Ok(SubscriptionStart {
            stream_id: stream.id,
            shard: shard.index,
            position,
        })
    }
}
