//! The one owner of the endpoint's state: the [`Model`] behind a `std::sync::Mutex`, and the
//! [`Log`]; and the one place where the model's refusals ([`ModelError`]) become AWS error
//! answers ([`ApiError`]). Each operation decodes and validates its request outside the lock
//! (JSON, base64, MD5; see [`crate::request`]), takes the lock for a short in-memory step
//! (assign shards and sequence numbers, encode the frame straight onto the log's pending
//! buffer, or copy out a page of records), releases it, and only then waits for I/O (the
//! group-committed fdatasync) or encodes the response.
//!
//! Why one mutex rather than a state-owning task fed by a channel: the critical sections are
//! microseconds and never await, so a mutex costs no more than a channel hop, requests on
//! different streams never queue behind one another's I/O, and GetRecords needs no copy of the
//! request sent to another task. Why one mutex rather than one per stream: resharding, shard
//! limits and iterator validation look across streams, and the log must receive frames in LSN
//! order; with 2 cores there is nothing to gain from finer locks. Topology changes (create,
//! delete, reshard, retention) also rewrite `meta.json` while holding the lock; they run on the
//! blocking pool and are rare.

use super::{
    encode,
    faults::FaultConfig,
    log::{Log, LogError, encode_frame, write_atomic},
    model::{
        ConsumerRef, ConsumerView, IteratorStart, MAX_GET_RECORDS, MAX_PUT_RECORDS,
        MAX_PUT_RECORDS_BYTES, Model, ModelError, NewRecord, PutOutcome, ShardFilter, ShardRead,
        StreamMode, SubscriptionStart, parse_seq, parse_shard_id,
    },
    request::{
        decode_data, decode_entries, iterator_start, open_token, parse, required, seal_token,
        stream_name,
    },
    wire::{self, ApiError, ErrorKind, Operation},
};
use bytes::Bytes;
use serde_json::{Value, json};
use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

struct State {
    model: Model,
    next_lsn: u64,
}

/// The endpoint's state and operations; shared by the HTTP handlers behind an `Arc`.
pub struct Service {
    state: Mutex<State>,
    log: Log,
    meta_path: PathBuf,
    /// Read once per request; replaced whole by [`Service::set_faults`].
    faults: std::sync::RwLock<Arc<FaultConfig>>,
    /// Errors and delays injected so far.
    injected: std::sync::atomic::AtomicU64,
    /// One wake-up channel per stream id: bumped when records of the stream become durable
    /// or the topology changes, so subscriptions read again instead of polling.
    watchers: Mutex<HashMap<u64, watch::Sender<()>>>,
    /// Open subscriptions: (consumer ARN, shard index). A second one is refused.
    subscriptions: Mutex<HashSet<(String, u32)>>,
    subscription: SubscriptionSettings,
    /// Cancelled when the endpoint stops; every subscription ends then.
    shutdown: CancellationToken,
}

/// How SubscribeToShard streams behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriptionSettings {
    /// How long a subscription lasts before the stream ends (AWS: 5 minutes).
    pub duration: Duration,
    /// Longest gap between two events: an empty one is sent when nothing new arrived
    /// (AWS: about 5 seconds).
    pub heartbeat: Duration,
}

impl Default for SubscriptionSettings {
    fn default() -> Self {
        Self {
            duration: Duration::from_secs(300),
            heartbeat: Duration::from_secs(5),
        }
    }
}

/// How each refusal of the model is answered: its AWS error type (and with it the HTTP status),
/// with the refusal's own text as the message.
impl From<ModelError> for ApiError {
    fn from(error: ModelError) -> Self {
        use ModelError as E;
        let kind = match &error {
            E::StreamNotFound { .. }
            | E::ShardNotFound { .. }
            | E::IteratorStreamGone
            | E::IteratorShardGone
            | E::ConsumerNotFound { .. } => ErrorKind::ResourceNotFound,
            E::StreamExists { .. }
            | E::ConsumerExists { .. }
            | E::SplitOfClosedShard { .. }
            | E::MergeOfClosedShard { .. } => ErrorKind::ResourceInUse,
            E::InvalidStreamName { .. }
            | E::InvalidConsumerName { .. }
            | E::StreamRefMissing
            | E::ShardCountForOnDemand
            | E::ShardCountMissing
            | E::ShardCountOutOfRange { .. }
            | E::ScalingOnDemand
            | E::TargetShardCountOutOfRange { .. }
            | E::PartitionKeyLength { .. }
            | E::RecordTooLarge { .. } => ErrorKind::Validation,
            E::InvalidStreamArn { .. }
            | E::InvalidConsumerArn { .. }
            | E::StreamNameArnMismatch { .. }
            | E::InvalidExplicitHashKey { .. }
            | E::InvalidSequenceNumber { .. }
            | E::SequenceNumberNotInShard { .. }
            | E::InvalidIterator { .. }
            | E::InvalidNewStartingHashKey { .. }
            | E::SplitKeyOutsideShard { .. }
            | E::ShardsNotAdjacent { .. }
            | E::RetentionOutOfRange { .. }
            | E::RetentionIncreaseTooShort { .. }
            | E::RetentionDecreaseTooLong { .. } => ErrorKind::InvalidArgument,
            E::ShardLimit { .. } | E::ScalingOutOfRange { .. } | E::ConsumerLimit { .. } => {
                ErrorKind::LimitExceeded
            }
            E::ExpiredIterator { .. } => ErrorKind::ExpiredIterator,
            E::ReadThrottled { .. } => ErrorKind::ProvisionedThroughputExceeded,
            E::NoShardForHashKey => ErrorKind::InternalFailure,
        };
        ApiError::new(kind, error.to_string())
    }
}

fn internal(error: impl std::fmt::Display) -> ApiError {
    tracing::error!(%error, "endpoint internal failure");
    ApiError::new(ErrorKind::InternalFailure, "Internal service failure")
}

fn to_json(value: &impl serde::Serialize) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(value).map_err(internal)
}

/// A consumer on the wire; DescribeStreamConsumer also names the stream.
fn consumer_out(view: &ConsumerView, with_stream: bool) -> wire::ConsumerOut {
    wire::ConsumerOut {
        consumer_name: view.consumer.name.clone(),
        consumer_arn: view.arn.clone(),
        consumer_status: "ACTIVE",
        consumer_creation_timestamp: wire::epoch_seconds(view.consumer.created_ms),
        stream_arn: with_stream.then(|| view.stream_arn.clone()),
    }
}

/// ConsumerARN, or StreamARN and ConsumerName (AWS refuses a request with neither).
fn consumer_ref(input: wire::ConsumerRefInput) -> Result<ConsumerRef, ApiError> {
    match (input.consumer_arn, input.stream_arn, input.consumer_name) {
        (Some(arn), _, _) => Ok(ConsumerRef::Arn(arn)),
        (None, Some(stream_arn), Some(consumer)) => Ok(ConsumerRef::Named {
            stream: stream_name(&wire::StreamRef {
                stream_name: None,
                stream_arn: Some(stream_arn),
            })?,
            consumer,
        }),
        _ => Err(ApiError::invalid(
            "Either ConsumerARN or both StreamARN and ConsumerName must be provided",
        )),
    }
}

fn stream_mode_json(mode: StreamMode) -> Value {
    json!({ "StreamMode": mode.as_str() })
}

impl Service {
    pub fn new(model: Model, log: Log, meta_path: PathBuf, faults: FaultConfig) -> Self {
        Self {
            state: Mutex::new(State { model, next_lsn: 1 }),
            log,
            meta_path,
            faults: std::sync::RwLock::new(Arc::new(faults)),
            injected: std::sync::atomic::AtomicU64::new(0),
            watchers: Mutex::new(HashMap::new()),
            subscriptions: Mutex::new(HashSet::new()),
            subscription: SubscriptionSettings::default(),
            shutdown: CancellationToken::new(),
        }
    }

    /// Sets how subscriptions behave and the token that ends them (before the service is
    /// shared).
    pub fn with_subscriptions(
        mut self,
        settings: SubscriptionSettings,
        shutdown: CancellationToken,
    ) -> Self {
        self.subscription = settings;
        self.shutdown = shutdown;
        self
    }

    pub(crate) fn subscription_settings(&self) -> SubscriptionSettings {
        self.subscription
    }

    pub(crate) fn shutdown_token(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// A receiver that changes whenever stream `stream_id` has news.
    pub(crate) fn watch(&self, stream_id: u64) -> watch::Receiver<()> {
        let mut watchers = self
            .watchers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        watchers
            .entry(stream_id)
            .or_insert_with(|| watch::channel(()).0)
            .subscribe()
    }

    fn notify(&self, stream_id: u64) {
        let watchers = self
            .watchers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(sender) = watchers.get(&stream_id) {
            sender.send_replace(());
        }
    }

    /// Wakes every subscription (after a topology change: a shard closed, a consumer or a
    /// stream went away). Senders nobody listens to any more are dropped.
    fn notify_all(&self) {
        let mut watchers = self
            .watchers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        watchers.retain(|_, sender| {
            sender.send_replace(());
            sender.receiver_count() > 0
        });
    }

    /// Claims the (consumer, shard) slot; `false` if a subscription already holds it.
    pub(crate) fn claim_subscription(&self, key: (String, u32)) -> bool {
        self.subscriptions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key)
    }

    pub(crate) fn release_subscription(&self, key: &(String, u32)) {
        self.subscriptions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
    }

    /// Resolves a SubscribeToShard under the lock.
    pub(crate) fn subscription_start(
        &self,
        arn: &str,
        shard: &str,
        start: IteratorStart,
    ) -> Result<SubscriptionStart, ApiError> {
        Ok(self.lock()?.model.subscription_start(arn, shard, start)?)
    }

    /// The next event's worth of durable records of a subscription, `Ok(None)` when the
    /// consumer, stream or shard is gone.
    pub(crate) fn read_subscription(
        &self,
        arn: &str,
        stream_id: u64,
        shard: u32,
        position: u128,
    ) -> Result<Option<ShardRead>, ApiError> {
        let durable = self.log.durable_lsn();
        let state = self.lock()?;
        if !state.model.consumer_exists(arn) {
            return Ok(None);
        }
        Ok(state
            .model
            .read_subscription(stream_id, shard, position, durable, now_millis()))
    }

    /// Counts one injected error or delay.
    pub fn count_injected(&self) {
        self.injected
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Errors and delays injected since the start.
    pub fn injected_faults(&self) -> u64 {
        self.injected.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The fault injection in force.
    pub fn faults(&self) -> Arc<FaultConfig> {
        self.faults
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the fault injection; requests from now on see the new one.
    pub fn set_faults(&self, faults: FaultConfig) {
        *self
            .faults
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(faults);
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, ApiError> {
        self.state
            .lock()
            .map_err(|_| internal("endpoint state lock poisoned"))
    }

    /// Writes the topology file; called with the lock held after a topology change.
    fn save_topology(&self, model: &Model) -> Result<(), ApiError> {
        let bytes = model.topology_json().map_err(internal)?;
        write_atomic(&self.meta_path, &bytes).map_err(internal)
    }

    /// Runs one operation on a JSON body; returns the JSON answer.
    pub async fn handle(self: &Arc<Self>, op: Operation, body: Bytes) -> Result<Vec<u8>, ApiError> {
        match op {
            Operation::PutRecord => self.put_record(&body).await,
            Operation::PutRecords => self.put_records(&body).await,
            Operation::GetRecords => self.get_records(&body),
            Operation::GetShardIterator => self.get_shard_iterator(&body),
            Operation::ListStreams => self.list_streams(&body),
            Operation::DescribeStream => self.describe_stream(&body),
            Operation::DescribeStreamSummary => self.describe_stream_summary(&body),
            Operation::ListShards => self.list_shards(&body),
            Operation::DescribeStreamConsumer => self.describe_stream_consumer(&body),
            Operation::ListStreamConsumers => self.list_stream_consumers(&body),
            Operation::SubscribeToShard => Err(internal(
                "SubscribeToShard answers with a stream, not through handle",
            )),
            Operation::RegisterStreamConsumer
            | Operation::DeregisterStreamConsumer
            | Operation::CreateStream
            | Operation::DeleteStream
            | Operation::SplitShard
            | Operation::MergeShards
            | Operation::UpdateShardCount
            | Operation::IncreaseStreamRetentionPeriod
            | Operation::DecreaseStreamRetentionPeriod => {
                let service = self.clone();
                tokio::task::spawn_blocking(move || service.topology(op, &body))
                    .await
                    .map_err(internal)?
            }
        }
    }

    /// Operations that change the topology and rewrite `meta.json` (blocking I/O).
    fn topology(&self, op: Operation, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let now_ms = now_millis();
        let mut state = self.lock()?;
        let model = &mut state.model;
        let answer = match op {
            Operation::CreateStream => {
                let input: wire::CreateStreamInput = parse(body)?;
                let name = required(input.stream_name, "streamName")?;
                let mode = match input
                    .stream_mode_details
                    .as_ref()
                    .map(|d| d.stream_mode.as_str())
                {
                    None | Some("PROVISIONED") => StreamMode::Provisioned,
                    Some("ON_DEMAND") => StreamMode::OnDemand,
                    Some(other) => {
                        return Err(ApiError::validation(format!(
                            "StreamMode {other:?} is not PROVISIONED or ON_DEMAND"
                        )));
                    }
                };
                model.create_stream(&name, input.shard_count, mode, now_ms)?;
                json!({})
            }
            Operation::DeleteStream => {
                let input: wire::StreamOnlyInput = parse(body)?;
                model.delete_stream(&stream_name(&input.stream)?)?;
                json!({})
            }
            Operation::SplitShard => {
                let input: wire::SplitShardInput = parse(body)?;
                let name = stream_name(&input.stream)?;
                let shard = required(input.shard_to_split, "shardToSplit")?;
                let key = required(input.new_starting_hash_key, "newStartingHashKey")?;
                model.split_shard(&name, &shard, &key, now_ms)?;
                json!({})
            }
            Operation::MergeShards => {
                let input: wire::MergeShardsInput = parse(body)?;
                let name = stream_name(&input.stream)?;
                let a = required(input.shard_to_merge, "shardToMerge")?;
                let b = required(input.adjacent_shard_to_merge, "adjacentShardToMerge")?;
                model.merge_shards(&name, &a, &b, now_ms)?;
                json!({})
            }
            Operation::UpdateShardCount => {
                let input: wire::UpdateShardCountInput = parse(body)?;
                let name = stream_name(&input.stream)?;
                let target = required(input.target_shard_count, "targetShardCount")?;
                let scaling = required(input.scaling_type, "scalingType")?;
                if scaling != "UNIFORM_SCALING" {
                    return Err(ApiError::validation(format!(
                        "ScalingType {scaling:?} is not UNIFORM_SCALING"
                    )));
                }
                let current = model.update_shard_count(&name, target, now_ms)?;
                json!({
                    "StreamName": name,
                    "StreamARN": model.stream(&name)?.arn(),
                    "CurrentShardCount": current,
                    "TargetShardCount": target,
                })
            }
            Operation::IncreaseStreamRetentionPeriod | Operation::DecreaseStreamRetentionPeriod => {
                let input: wire::RetentionInput = parse(body)?;
                let name = stream_name(&input.stream)?;
                let hours = required(input.retention_period_hours, "retentionPeriodHours")?;
                model.set_retention(
                    &name,
                    hours,
                    op == Operation::IncreaseStreamRetentionPeriod,
                )?;
                json!({})
            }
            Operation::RegisterStreamConsumer => {
                let input: wire::RegisterStreamConsumerInput = parse(body)?;
                let arn = required(input.stream_arn, "streamARN")?;
                let name = stream_name(&wire::StreamRef {
                    stream_name: None,
                    stream_arn: Some(arn),
                })?;
                let consumer = required(input.consumer_name, "consumerName")?;
                let view = model.register_consumer(&name, &consumer, now_ms)?;
                json!({ "Consumer": consumer_out(&view, false) })
            }
            Operation::DeregisterStreamConsumer => {
                let input: wire::ConsumerRefInput = parse(body)?;
                model.deregister_consumer(&consumer_ref(input)?)?;
                json!({})
            }
            _ => return Err(internal("not a topology operation")),
        };
        self.save_topology(&state.model)?;
        drop(state);
        self.notify_all();
        to_json(&answer)
    }

    /// Stores `records` in `name`, waits until durable, returns per-record outcomes.
    async fn store(&self, name: &str, records: &[NewRecord]) -> Result<Vec<PutOutcome>, ApiError> {
        let now_ms = now_millis();
        let (lsn, outcomes) = {
            let mut state = self.lock()?;
            let lsn = state.next_lsn;
            let stream_id = state.model.stream_id(name)?;
            let outcomes = state
                .model
                .put(name, records, lsn, now_ms, Instant::now())?;
            let stored = outcomes.iter().zip(records).filter_map(|(o, r)| match o {
                PutOutcome::Stored { shard, seq } => {
                    Some((*shard, *seq, now_ms, &r.partition_key[..], &r.data[..]))
                }
                PutOutcome::Throttled => None,
            });
            let any_stored = outcomes
                .iter()
                .any(|o| matches!(o, PutOutcome::Stored { .. }));
            if any_stored {
                state.next_lsn += 1;
                self.log
                    .append_with(lsn, |buf| encode_frame(stream_id, stored, buf))
                    .map_err(internal)?;
            }
            (any_stored.then_some((lsn, stream_id)), outcomes)
        };
        if let Some((lsn, stream_id)) = lsn {
            self.log
                .wait_durable(lsn)
                .await
                .map_err(|e: LogError| internal(e))?;
            self.notify(stream_id);
        }
        Ok(outcomes)
    }

    async fn put_record(&self, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let input: wire::PutRecordInput = parse(body)?;
        let name = stream_name(&input.stream)?;
        let key = required(input.partition_key, "partitionKey")?;
        let data = decode_data(input.data.as_deref())?;
        let record = NewRecord::new(&key, input.explicit_hash_key.as_deref(), data)?;
        if let Some(seq) = &input.sequence_number_for_ordering {
            parse_seq(seq)?;
        }
        match self
            .store(&name, std::slice::from_ref(&record))
            .await?
            .first()
        {
            Some(PutOutcome::Stored { shard, seq }) => to_json(&json!({
                "ShardId": super::model::shard_id(*shard),
                "SequenceNumber": seq.to_string(),
                "EncryptionType": "NONE",
            })),
            _ => Err(ApiError::new(
                ErrorKind::ProvisionedThroughputExceeded,
                "Rate exceeded for shard in stream: more than 1 MiB or 1,000 records per second",
            )),
        }
    }

    async fn put_records(&self, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let input: wire::PutRecordsInput = parse(body)?;
        let name = Model::resolve_name(input.stream_name.as_deref(), input.stream_arn.as_deref())?;
        let entries = required(input.records, "records")?;
        if entries.is_empty() || entries.len() > MAX_PUT_RECORDS {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value at 'records' failed to satisfy constraint: Member must have length less than or equal to {MAX_PUT_RECORDS} and greater than or equal to 1 (got {})",
                entries.len()
            )));
        }
        let records = decode_entries(&entries)?;
        let total: usize = records.iter().map(NewRecord::size).sum();
        if total > MAX_PUT_RECORDS_BYTES {
            return Err(ApiError::invalid(format!(
                "Records size exceeds 5 MB limit: {total} bytes of data and partition keys"
            )));
        }
        let outcomes = self.store(&name, &records).await?;
        Ok(encode::put_records(&outcomes))
    }

    fn get_shard_iterator(&self, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let input: wire::GetShardIteratorInput = parse(body)?;
        let name = stream_name(&input.stream)?;
        let shard = required(input.shard_id, "shardId")?;
        let kind = required(input.shard_iterator_type, "shardIteratorType")?;
        let start = iterator_start(
            &kind,
            input.starting_sequence_number.as_deref(),
            input.timestamp,
            "shardIteratorType",
        )?;
        let iterator = self
            .lock()?
            .model
            .shard_iterator(&name, &shard, start, now_millis())?;
        to_json(&json!({ "ShardIterator": iterator }))
    }

    fn get_records(&self, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let input: wire::GetRecordsInput = parse(body)?;
        let iterator = required(input.shard_iterator, "shardIterator")?;
        let limit = match input.limit {
            None => MAX_GET_RECORDS,
            Some(n) if (1..=MAX_GET_RECORDS as i64).contains(&n) => n as usize,
            Some(n) => {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value {n} at 'limit' failed to satisfy constraint: Member must have value between 1 and {MAX_GET_RECORDS}"
                )));
            }
        };
        let durable = self.log.durable_lsn();
        let (batch, next) = {
            let mut state = self.lock()?;
            let batch =
                state
                    .model
                    .get_records(&iterator, limit, durable, now_millis(), Instant::now())?;
            let next = batch.next.as_ref().map(|t| state.model.seal(t));
            (batch, next)
        };
        Ok(encode::get_records(
            &batch.records,
            next.as_deref(),
            batch.millis_behind_latest,
            batch.child_shards.as_deref(),
        ))
    }

    fn list_streams(&self, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let input: wire::ListStreamsInput = parse(body)?;
        let limit = input.limit.unwrap_or(100).clamp(1, 10_000) as usize;
        let after = match &input.next_token {
            Some(token) => open_token(token)?["after"].as_str().map(str::to_string),
            None => input.exclusive_start_stream_name.clone(),
        };
        let state = self.lock()?;
        let mut names = Vec::new();
        let mut summaries = Vec::new();
        let mut more = false;
        for stream in state.model.streams.values() {
            if after
                .as_ref()
                .is_some_and(|a| stream.name.as_str() <= a.as_str())
            {
                continue;
            }
            if names.len() == limit {
                more = true;
                break;
            }
            names.push(stream.name.clone());
            summaries.push(json!({
                "StreamName": stream.name,
                "StreamARN": stream.arn(),
                "StreamStatus": "ACTIVE",
                "StreamModeDetails": stream_mode_json(stream.mode),
                "StreamCreationTimestamp": wire::epoch_seconds(stream.created_ms),
            }));
        }
        let mut answer = json!({
            "StreamNames": names,
            "HasMoreStreams": more,
            "StreamSummaries": summaries,
        });
        if more && let Some(last) = names.last() {
            answer["NextToken"] = json!(seal_token(&json!({ "after": last })));
        }
        to_json(&answer)
    }

    fn describe_stream(&self, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let input: wire::DescribeStreamInput = parse(body)?;
        let name = stream_name(&input.stream)?;
        let limit = input.limit.unwrap_or(100).clamp(1, 10_000) as usize;
        let after = match &input.exclusive_start_shard_id {
            Some(id) => Some(parse_shard_id(id).ok_or_else(|| {
                ApiError::invalid(format!("ExclusiveStartShardId {id:?} is not a shard id"))
            })?),
            None => None,
        };
        let state = self.lock()?;
        let stream = state.model.stream(&name)?;
        let shards: Vec<_> = stream
            .shards
            .iter()
            .filter(|s| after.is_none_or(|a| s.index > a))
            .collect();
        let more = shards.len() > limit;
        let page: Vec<_> = shards.iter().take(limit).map(|s| s.to_wire()).collect();
        to_json(&json!({
            "StreamDescription": {
                "StreamName": stream.name,
                "StreamARN": stream.arn(),
                "StreamStatus": "ACTIVE",
                "StreamModeDetails": stream_mode_json(stream.mode),
                "Shards": page,
                "HasMoreShards": more,
                "RetentionPeriodHours": stream.retention_hours,
                "StreamCreationTimestamp": wire::epoch_seconds(stream.created_ms),
                "EnhancedMonitoring": [{ "ShardLevelMetrics": [] }],
                "EncryptionType": "NONE",
            }
        }))
    }

    fn describe_stream_consumer(&self, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let input: wire::ConsumerRefInput = parse(body)?;
        let view = self.lock()?.model.consumer(&consumer_ref(input)?)?;
        to_json(&json!({ "ConsumerDescription": consumer_out(&view, true) }))
    }

    fn list_stream_consumers(&self, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let input: wire::ListStreamConsumersInput = parse(body)?;
        let max = match input.max_results {
            None => 100,
            Some(n) if (1..=10_000).contains(&n) => n as usize,
            Some(n) => {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value {n} at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 10000"
                )));
            }
        };
        let arn = required(input.stream_arn, "streamARN")?;
        let name = stream_name(&wire::StreamRef {
            stream_name: None,
            stream_arn: Some(arn),
        })?;
        let skip = match &input.next_token {
            Some(token) => match open_token(token)?["skip"].as_u64() {
                Some(skip) => skip as usize,
                None => return Err(ApiError::invalid(format!("NextToken {token:?} is invalid"))),
            },
            None => 0,
        };
        let consumers = self.lock()?.model.list_consumers(&name)?;
        let page: Vec<_> = consumers
            .iter()
            .skip(skip)
            .take(max)
            .map(|view| consumer_out(view, false))
            .collect();
        let mut answer = json!({ "Consumers": page });
        if skip + max < consumers.len() {
            answer["NextToken"] = json!(seal_token(&json!({ "skip": skip + max })));
        }
        to_json(&answer)
    }

    fn describe_stream_summary(&self, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let input: wire::StreamOnlyInput = parse(body)?;
        let name = stream_name(&input.stream)?;
        let state = self.lock()?;
        let stream = state.model.stream(&name)?;
        to_json(&json!({
            "StreamDescriptionSummary": {
                "StreamName": stream.name,
                "StreamARN": stream.arn(),
                "StreamStatus": "ACTIVE",
                "StreamModeDetails": stream_mode_json(stream.mode),
                "RetentionPeriodHours": stream.retention_hours,
                "StreamCreationTimestamp": wire::epoch_seconds(stream.created_ms),
                "EnhancedMonitoring": [{ "ShardLevelMetrics": [] }],
                "EncryptionType": "NONE",
                "OpenShardCount": stream.open_shard_count(),
                "ConsumerCount": stream.consumers.len(),
            }
        }))
    }

    fn list_shards(&self, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let input: wire::ListShardsInput = parse(body)?;
        let max = match input.max_results {
            None => 1000,
            Some(n) if (1..=10_000).contains(&n) => n as usize,
            Some(n) => {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value {n} at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 10000"
                )));
            }
        };
        let (name, after, filter) = match &input.next_token {
            Some(token) => {
                if input.stream.stream_name.is_some() || input.stream.stream_arn.is_some() {
                    return Err(ApiError::invalid(
                        "NextToken and StreamName/StreamARN cannot be provided together.",
                    ));
                }
                let value = open_token(token)?;
                let name = value["stream"].as_str().map(str::to_string);
                let after = value["after"].as_u64().map(|a| a as u32);
                let filter: Option<ShardFilter> =
                    serde_json::from_value(value["filter"].clone()).ok();
                match (name, after, filter) {
                    (Some(name), Some(after), Some(filter)) => (name, Some(after), filter),
                    _ => return Err(ApiError::invalid(format!("NextToken {token:?} is invalid"))),
                }
            }
            None => {
                let name = stream_name(&input.stream)?;
                let after = match &input.exclusive_start_shard_id {
                    Some(id) => Some(parse_shard_id(id).ok_or_else(|| {
                        ApiError::invalid(format!("ExclusiveStartShardId {id:?} is not a shard id"))
                    })?),
                    None => None,
                };
                let filter = match &input.shard_filter {
                    None => ShardFilter::None,
                    Some(f) => {
                        let ts = || {
                            f.timestamp.map(wire::epoch_millis).ok_or_else(|| {
                                ApiError::invalid(format!(
                                    "ShardFilter type {} requires a Timestamp",
                                    f.filter_type
                                ))
                            })
                        };
                        match f.filter_type.as_str() {
                            "AFTER_SHARD_ID" => ShardFilter::AfterShardId(
                                f.shard_id.as_deref().and_then(parse_shard_id).ok_or_else(
                                    || {
                                        ApiError::invalid(
                                            "ShardFilter AFTER_SHARD_ID requires a ShardId",
                                        )
                                    },
                                )?,
                            ),
                            "AT_TRIM_HORIZON" => ShardFilter::AtTrimHorizon,
                            "FROM_TRIM_HORIZON" => ShardFilter::FromTrimHorizon,
                            "AT_LATEST" => ShardFilter::AtLatest,
                            "AT_TIMESTAMP" => ShardFilter::AtTimestamp(ts()?),
                            "FROM_TIMESTAMP" => ShardFilter::FromTimestamp(ts()?),
                            other => {
                                return Err(ApiError::validation(format!(
                                    "ShardFilter Type {other:?} is not one of AFTER_SHARD_ID, AT_TRIM_HORIZON, FROM_TRIM_HORIZON, AT_LATEST, AT_TIMESTAMP, FROM_TIMESTAMP"
                                )));
                            }
                        }
                    }
                };
                (name, after, filter)
            }
        };
        let shards = self.lock()?.model.list_shards(&name, after, &filter)?;
        let more = shards.len() > max;
        let page: Vec<_> = shards.into_iter().take(max).collect();
        let mut answer = json!({ "Shards": page });
        if more && let Some(last) = page.last().and_then(|s| parse_shard_id(&s.shard_id)) {
            answer["NextToken"] = json!(seal_token(&json!({
                "stream": name,
                "after": last,
                "filter": filter,
            })));
        }
        to_json(&answer)
    }

    /// Drops records past retention, and log segments no stream can still need (saving the
    /// topology first so sequence counters survive the segments that held them).
    pub fn trim(&self) -> Result<(), ApiError> {
        let now_ms = now_millis();
        let old_segments = {
            let mut state = self.lock()?;
            let dropped = state.model.trim(now_ms);
            if dropped > 0 {
                tracing::debug!(dropped, "trimmed records past retention");
            }
            let horizon = SystemTime::now()
                .checked_sub(std::time::Duration::from_millis(
                    state.model.max_retention_ms() as u64,
                ))
                .unwrap_or(UNIX_EPOCH);
            let old = self.log.take_segments_older_than(horizon);
            if !old.is_empty() {
                self.save_topology(&state.model)?;
            }
            old
        };
        for path in old_segments {
            if let Err(error) = std::fs::remove_file(&path) {
                tracing::warn!(%error, segment = %path.display(), "cannot delete an expired log segment");
            }
        }
        Ok(())
    }

    /// Flushes and stops the log.
    pub fn close(&self) {
        self.log.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_refusals_keep_their_aws_type_and_text() {
        let cases = [
            (
                ModelError::StreamNotFound { name: "s".into() },
                ErrorKind::ResourceNotFound,
                "Stream s under account 000000000000 not found.",
            ),
            (
                ModelError::StreamExists { name: "s".into() },
                ErrorKind::ResourceInUse,
                "Stream s under account 000000000000 already exists.",
            ),
            (
                ModelError::PartitionKeyLength { chars: 0 },
                ErrorKind::Validation,
                "1 validation error detected: Value at 'partitionKey' failed to satisfy constraint: Member must have length between 1 and 256 (got 0)",
            ),
            (
                ModelError::RetentionOutOfRange { hours: 12 },
                ErrorKind::InvalidArgument,
                "Minimum allowed retention period is 24 hours and maximum is 8760 hours; got 12",
            ),
            (
                ModelError::ShardLimit {
                    open: 1,
                    requested: 200,
                    limit: 100,
                },
                ErrorKind::LimitExceeded,
                "This request would exceed the shard limit for the account: 1 open + 200 requested > 100",
            ),
            (
                ModelError::ExpiredIterator {
                    issued_ms: 1,
                    now_ms: 2,
                    ttl_ms: 3,
                },
                ErrorKind::ExpiredIterator,
                "Iterator expired. The iterator was created at time 1 while right now it is 2 and this exceeds the iterator TTL of 3 ms.",
            ),
            (
                ModelError::ReadThrottled {
                    shard: "shardId-000000000000".into(),
                },
                ErrorKind::ProvisionedThroughputExceeded,
                "Rate exceeded for shard shardId-000000000000 in stream: more than 5 GetRecords calls or 2 MiB per second",
            ),
            (
                ModelError::NoShardForHashKey,
                ErrorKind::InternalFailure,
                "no open shard covers the hash key",
            ),
        ];
        for (error, kind, message) in cases {
            let answer = ApiError::from(error);
            assert_eq!((answer.kind, answer.message.as_str()), (kind, message));
        }
    }
}
