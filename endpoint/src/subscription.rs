//! SubscribeToShard: one open subscription of a consumer to a shard, streamed as AWS
//! event-stream messages.
//!
//! The request is checked and the (consumer, shard) slot claimed before the answer starts, so
//! refusals (unknown consumer or shard, a second subscription, bad StartingPosition) are
//! ordinary HTTP errors. Then the body is a stream that the connection polls: an
//! `initial-response` event first (aws-sdk-kinesis's `send()` waits for the first message and
//! consumes it when it is one), then `SubscribeToShardEvent`s. Each event carries the durable
//! records read since the previous one; the stream sleeps on the service's per-stream watch
//! channel (woken when a write becomes durable or the topology changes), sending an empty
//! event when [`SubscriptionSettings::heartbeat`] passes without news. It ends after
//! [`SubscriptionSettings::duration`], after the last event of a closed shard (with its
//! ChildShards), when the consumer, stream or shard goes away (a ResourceNotFoundException
//! message), on shutdown, or when the client hangs up (the body is dropped, which releases
//! the slot).

use crate::{
    eventstream,
    model::{IteratorStart, ShardRead},
    request::{iterator_start, parse, required},
    service::{Service, SubscriptionSettings},
    wire::{self, ApiError},
};
use base64::Engine as _;
use bytes::Bytes;
use std::sync::Arc;
use tokio::{sync::watch, time::Instant};

/// Holds a (consumer ARN, shard) slot; frees it when dropped.
struct Claim {
    service: Arc<Service>,
    key: (String, u32),
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.service.release_subscription(&self.key);
    }
}

/// An accepted subscription, not yet streaming.
pub struct Subscription {
    claim: Claim,
    stream_id: u64,
    position: u128,
    changes: watch::Receiver<()>,
    settings: SubscriptionSettings,
}

/// Checks a SubscribeToShard request and claims its slot.
pub fn subscribe(service: &Arc<Service>, body: &[u8]) -> Result<Subscription, ApiError> {
    let input: wire::SubscribeToShardInput = parse(body)?;
    let arn = required(input.consumer_arn, "consumerARN")?;
    let shard = required(input.shard_id, "shardId")?;
    let position = required(input.starting_position, "startingPosition")?;
    let kind = required(position.position_type, "startingPosition.type")?;
    let start: IteratorStart = iterator_start(
        &kind,
        position.sequence_number.as_deref(),
        position.timestamp,
        "startingPosition.type",
    )?;
    let start = service.subscription_start(&arn, &shard, start)?;
    // Subscribe to changes before the first read, so nothing durable after it is missed.
    let changes = service.watch(start.stream_id);
    let key = (arn, start.shard);
    if !service.claim_subscription(key.clone()) {
        return Err(ApiError::in_use(format!(
            "Another active subscription exists for consumer {} on shard {shard}",
            key.0
        )));
    }
    Ok(Subscription {
        claim: Claim {
            service: service.clone(),
            key,
        },
        stream_id: start.stream_id,
        position: start.position,
        changes,
        settings: service.subscription_settings(),
    })
}

/// Where a running subscription is.
struct Running {
    sub: Subscription,
    ends_at: Instant,
    /// When the last event left (the heartbeat counts from it); `None` before the first.
    last_event: Option<Instant>,
    phase: Phase,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Initial,
    Events,
    Done,
}

impl Subscription {
    /// The answer body: event-stream messages until the subscription ends.
    pub fn into_body(self) -> axum::body::Body {
        let running = Running {
            ends_at: Instant::now() + self.settings.duration,
            sub: self,
            last_event: None,
            phase: Phase::Initial,
        };
        let stream = futures_util::stream::unfold(running, |mut running| async move {
            let message = running.next_message().await?;
            Some((Ok::<_, std::convert::Infallible>(message), running))
        });
        axum::body::Body::from_stream(stream)
    }
}

impl Running {
    async fn next_message(&mut self) -> Option<Bytes> {
        match self.phase {
            Phase::Done => return None,
            Phase::Initial => {
                self.phase = Phase::Events;
                let mut out = Vec::new();
                eventstream::encode_event("initial-response", b"{}", &mut out);
                return Some(Bytes::from(out));
            }
            Phase::Events => {}
        }
        let service = self.sub.claim.service.clone();
        let shutdown = service.shutdown_token().clone();
        loop {
            if shutdown.is_cancelled() || Instant::now() >= self.ends_at {
                self.phase = Phase::Done;
                return None;
            }
            self.sub.changes.borrow_and_update();
            let (arn, shard) = &self.sub.claim.key;
            let read =
                match service.read_subscription(arn, self.sub.stream_id, *shard, self.sub.position)
                {
                    Ok(Some(read)) => read,
                    Ok(None) => {
                        self.phase = Phase::Done;
                        return Some(gone_message(arn, *shard));
                    }
                    Err(error) => {
                        tracing::warn!(%error, "a subscription read failed; ending it");
                        self.phase = Phase::Done;
                        return None;
                    }
                };
            let now = Instant::now();
            let heartbeat_due = self
                .last_event
                .is_none_or(|at| now >= at + self.sub.settings.heartbeat);
            if !read.records.is_empty() || read.child_shards.is_some() || heartbeat_due {
                self.sub.position = read.next_position;
                self.last_event = Some(now);
                if read.child_shards.is_some() {
                    self.phase = Phase::Done;
                }
                return Some(event_message(&read));
            }
            let next_heartbeat = self
                .last_event
                .map_or(now, |at| at + self.sub.settings.heartbeat);
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep_until(self.ends_at) => {}
                _ = tokio::time::sleep_until(next_heartbeat) => {}
                changed = self.sub.changes.changed() => {
                    if changed.is_err() {
                        // The service dropped the stream's channel (it is gone); the next
                        // read says so.
                        self.sub.changes = service.watch(self.sub.stream_id);
                    }
                }
            }
        }
    }
}

/// A SubscribeToShardEvent message with `read`'s records.
fn event_message(read: &ShardRead) -> Bytes {
    const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
    let event = wire::SubscribeToShardEventOut {
        records: read
            .records
            .iter()
            .map(|r| wire::RecordOut {
                sequence_number: r.seq.to_string(),
                approximate_arrival_timestamp: wire::epoch_seconds(r.arrival_ms),
                data: B64.encode(&r.data),
                partition_key: String::from_utf8_lossy(&r.partition_key).into_owned(),
            })
            .collect(),
        continuation_sequence_number: read.continuation.map(|c| c.to_string()),
        millis_behind_latest: read.millis_behind_latest,
        child_shards: read.child_shards.clone(),
    };
    let payload = serde_json::to_vec(&event).expect("an event of strings and numbers serialises");
    let mut out = Vec::with_capacity(payload.len() + 128);
    eventstream::encode_event("SubscribeToShardEvent", &payload, &mut out);
    Bytes::from(out)
}

/// The ResourceNotFoundException that ends a subscription whose consumer, stream or shard
/// went away.
fn gone_message(arn: &str, shard: u32) -> Bytes {
    let payload = serde_json::json!({
        "message": format!(
            "Consumer {arn} or shard {} no longer exists",
            crate::model::shard_id(shard)
        )
    })
    .to_string();
    let mut out = Vec::new();
    eventstream::encode_exception("ResourceNotFoundException", payload.as_bytes(), &mut out);
    Bytes::from(out)
}
