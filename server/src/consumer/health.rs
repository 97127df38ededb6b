//! The consumer's health, per shard: state, lag, throughput, latency, throttles. Owned by the
//! coordinator (readers send it [`ReaderEvent`]s), published as a snapshot on a
//! `tokio::sync::watch` channel, and rendered for `/metrics`.

use crate::{
    kinesis::{ShardId, StreamName},
    telemetry::prometheus::{Exposition, MetricType},
};
use std::{collections::BTreeMap, time::Duration};

/// A shard reader's state: the contract's, as the streams page shows it.
pub use contract::protocol::ShardState;

/// One shard's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardHealth {
    pub state: ShardState,
    /// The shard's parents (one after a split, two after a merge), as ListShards reports them.
    pub parents: Vec<ShardId>,
    pub last_error: Option<String>,
    pub millis_behind_latest: Option<i64>,
    pub records_per_sec: f64,
    pub bytes_per_sec: f64,
    /// Latency of the last GetRecords call.
    pub get_records_latency: Option<Duration>,
    /// Age of the newest record in the last batch (0 when caught up).
    pub iterator_age_millis: Option<i64>,
    pub throttle_count: u64,
    pub records_total: u64,
    pub bytes_total: u64,
}

impl Default for ShardHealth {
    fn default() -> Self {
        Self {
            state: ShardState::Pending,
            parents: Vec::new(),
            last_error: None,
            millis_behind_latest: None,
            records_per_sec: 0.0,
            bytes_per_sec: 0.0,
            get_records_latency: None,
            iterator_age_millis: None,
            throttle_count: 0,
            records_total: 0,
            bytes_total: 0,
        }
    }
}

/// A snapshot of every stream and shard the consumer knows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConsumerHealth {
    pub application: String,
    pub shards: BTreeMap<(StreamName, ShardId), ShardHealth>,
    /// Per stream: the last discovery error, if the last discovery failed.
    pub stream_errors: BTreeMap<StreamName, String>,
}

/// What readers tell the coordinator.
#[derive(Debug, Clone)]
pub struct ReaderEvent {
    pub stream: StreamName,
    pub shard: ShardId,
    pub kind: ReaderEventKind,
}

#[derive(Debug, Clone)]
pub enum ReaderEventKind {
    State {
        state: ShardState,
        error: Option<String>,
    },
    Polled {
        records: u64,
        bytes: u64,
        /// How long the GetRecords call took (None for a fan-out event).
        latency: Option<Duration>,
        millis_behind_latest: Option<i64>,
        iterator_age_millis: Option<i64>,
    },
    Throttled,
}

impl ConsumerHealth {
    /// Number of shards in `state`.
    pub fn count(&self, state: ShardState) -> usize {
        self.shards.values().filter(|s| s.state == state).count()
    }

    pub fn shard(&self, stream: &StreamName, shard: &ShardId) -> Option<&ShardHealth> {
        self.shards.get(&(stream.clone(), shard.clone()))
    }

    /// Folds one reader event into the snapshot (rates are computed by [`RateWindow`]).
    pub fn apply(&mut self, event: &ReaderEvent) {
        let shard = self
            .shards
            .entry((event.stream.clone(), event.shard.clone()))
            .or_default();
        match &event.kind {
            ReaderEventKind::State { state, error } => {
                shard.state = *state;
                if error.is_some() {
                    shard.last_error.clone_from(error);
                }
            }
            ReaderEventKind::Polled {
                records,
                bytes,
                latency,
                millis_behind_latest,
                iterator_age_millis,
            } => {
                shard.records_total += records;
                shard.bytes_total += bytes;
                shard.get_records_latency = *latency;
                shard.millis_behind_latest = *millis_behind_latest;
                shard.iterator_age_millis = *iterator_age_millis;
                if shard.state == ShardState::BackingOff {
                    shard.state = ShardState::Reading;
                }
            }
            ReaderEventKind::Throttled => shard.throttle_count += 1,
        }
    }

    /// Writes the consumer's families in the Prometheus text format.
    pub fn render_prometheus(&self, out: &mut Exposition) {
        let app = self.application.as_str();
        {
            let mut family = out.family(
                "streamboard_consumer_shards",
                "Shards known to the consumer, by state.",
                MetricType::Gauge,
            );
            for state in ShardState::ALL {
                family.sample(
                    &[("application", app), ("state", state.as_str())],
                    self.count(state) as f64,
                );
            }
        }
        type Getter = fn(&ShardHealth) -> Option<f64>;
        let gauges: [(&'static str, &str, MetricType, Getter); 8] = [
            (
                "streamboard_consumer_millis_behind_latest",
                "MillisBehindLatest of the last GetRecords call.",
                MetricType::Gauge,
                |s| s.millis_behind_latest.map(|v| v as f64),
            ),
            (
                "streamboard_consumer_records_per_second",
                "Records read per second (last second).",
                MetricType::Gauge,
                |s| Some(s.records_per_sec),
            ),
            (
                "streamboard_consumer_bytes_per_second",
                "Record bytes read per second (last second).",
                MetricType::Gauge,
                |s| Some(s.bytes_per_sec),
            ),
            (
                "streamboard_consumer_get_records_latency_seconds",
                "Latency of the last GetRecords call.",
                MetricType::Gauge,
                |s| s.get_records_latency.map(|d| d.as_secs_f64()),
            ),
            (
                "streamboard_consumer_iterator_age_milliseconds",
                "Age of the newest record of the last batch (0 when caught up).",
                MetricType::Gauge,
                |s| s.iterator_age_millis.map(|v| v as f64),
            ),
            (
                "streamboard_consumer_throttles_total",
                "GetRecords calls throttled (ProvisionedThroughputExceeded).",
                MetricType::Counter,
                |s| Some(s.throttle_count as f64),
            ),
            (
                "streamboard_consumer_records_total",
                "Records read.",
                MetricType::Counter,
                |s| Some(s.records_total as f64),
            ),
            (
                "streamboard_consumer_bytes_total",
                "Record bytes read.",
                MetricType::Counter,
                |s| Some(s.bytes_total as f64),
            ),
        ];
        for (name, help, kind, get) in gauges {
            let mut family = out.family(name, help, kind);
            for ((stream, shard), health) in &self.shards {
                if let Some(value) = get(health) {
                    family.sample(
                        &[
                            ("application", app),
                            ("stream", stream.as_str()),
                            ("shard", shard.as_str()),
                        ],
                        value,
                    );
                }
            }
        }
    }
}

/// Turns running totals into per-second rates over the interval between two ticks.
#[derive(Debug, Default)]
pub struct RateWindow {
    previous: BTreeMap<(StreamName, ShardId), (u64, u64)>,
}

impl RateWindow {
    /// Sets `records_per_sec` and `bytes_per_sec` from the totals' change over `elapsed`.
    pub fn tick(&mut self, health: &mut ConsumerHealth, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if seconds <= 0.0 {
            return;
        }
        for (key, shard) in &mut health.shards {
            let (records, bytes) = self.previous.get(key).copied().unwrap_or((0, 0));
            shard.records_per_sec = shard.records_total.saturating_sub(records) as f64 / seconds;
            shard.bytes_per_sec = shard.bytes_total.saturating_sub(bytes) as f64 / seconds;
            self.previous
                .insert(key.clone(), (shard.records_total, shard.bytes_total));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: ReaderEventKind) -> ReaderEvent {
        ReaderEvent {
            stream: StreamName::new("s"),
            shard: ShardId::new("shardId-0"),
            kind,
        }
    }

    #[test]
    fn events_fold_into_the_snapshot_and_render() {
        let mut health = ConsumerHealth {
            application: "app".into(),
            ..Default::default()
        };
        health.apply(&event(ReaderEventKind::State {
            state: ShardState::BackingOff,
            error: Some("throttled".into()),
        }));
        health.apply(&event(ReaderEventKind::Throttled));
        health.apply(&event(ReaderEventKind::Polled {
            records: 10,
            bytes: 1000,
            latency: Some(Duration::from_millis(20)),
            millis_behind_latest: Some(0),
            iterator_age_millis: Some(0),
        }));
        let shard = health
            .shard(&StreamName::new("s"), &ShardId::new("shardId-0"))
            .unwrap();
        assert_eq!(shard.state, ShardState::Reading);
        assert_eq!(shard.throttle_count, 1);
        assert_eq!(shard.last_error.as_deref(), Some("throttled"));

        let mut rates = RateWindow::default();
        rates.tick(&mut health, Duration::from_secs(2));
        let shard = health.shards.values().next().unwrap();
        assert_eq!(shard.records_per_sec, 5.0);
        assert_eq!(shard.bytes_per_sec, 500.0);
        rates.tick(&mut health, Duration::from_secs(1));
        assert_eq!(health.shards.values().next().unwrap().records_per_sec, 0.0);

        let mut out = Exposition::default();
        health.render_prometheus(&mut out);
        let text = out.finish();
        assert!(
            text.contains("streamboard_consumer_shards{application=\"app\",state=\"reading\"} 1"),
            "{text}"
        );
        assert!(text.contains(
            "streamboard_consumer_throttles_total{application=\"app\",stream=\"s\",shard=\"shardId-0\"} 1"
        ));
        assert!(text.contains("streamboard_consumer_get_records_latency_seconds{"));
    }
}
