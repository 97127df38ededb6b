//! The live hub: one publisher for every `/ws` connection.
//!
//! A single task ([`spawn`]) wakes when the engine has ingested new records (at most every
//! `live_min_interval` after the previous push) and at the latest every `live_tick` (windows
//! slide and health changes without new records; see [`Pacing`]), reads the engine's windows and
//! counters and the consumer's health **once**, builds every topic's payload with the pure [`build`] and
//! serialises each payload once into an `Arc<str>`. The resulting [`Frame`] goes to the sessions
//! over a bounded `tokio::sync::broadcast` channel and is also kept as the latest frame on a
//! `watch` channel. A session that falls behind gets `RecvError::Lagged` and answers it by
//! sending a fresh snapshot from the latest frame, so no per-client queue grows and the
//! publisher never waits for a slow client.
//!
//! Updates are full payloads, not diffs (see `contract::protocol`): computing a topic costs the same
//! whatever the number of subscribers, and sharing the serialised text makes fan-out a refcount.

use crate::{
    consumer::health::ConsumerHealth,
    engine::{EngineHandle, core::LiveWindows, counters::MetricCounters, window::WindowSummary},
    metric::MetricKey,
    settings::{self, Given, Settings, parse_positive_duration},
    storage::Database,
};
use clap::Args;
use contract::{
    protocol::{
        LivePayload, MetricCard, MetricLive, Overview, SeriesLive, ServerMessage, ShardRow,
        StreamSummary, StreamsLive, WindowStats,
    },
    summary::Summary,
};
use serde::{Deserialize, Serialize};
use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::Arc,
    time::Duration,
};
use tokio::sync::{broadcast, watch};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Frames a session may fall behind before it is resynchronised with a snapshot.
pub const BROADCAST_CAPACITY: usize = 16;
/// Samples kept for sparklines: one per second.
pub const SPARKLINE_POINTS: usize = 60;

/// Every topic's serialised `update` message at one publisher tick.
#[derive(Debug, Default)]
pub struct Frame {
    pub seq: u64,
    pub server_time_ms: i64,
    pub overview: Arc<str>,
    pub streams: Arc<str>,
    /// By metric name.
    pub metrics: HashMap<String, Arc<str>>,
}

/// What sessions hold: the broadcast of frames and the latest one.
#[derive(Clone)]
pub struct LiveHub {
    updates: broadcast::Sender<Arc<Frame>>,
    latest: watch::Receiver<Arc<Frame>>,
}

impl LiveHub {
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Frame>> {
        self.updates.subscribe()
    }

    /// The most recent frame (an empty one with `seq` 0 before the first tick).
    pub fn latest(&self) -> Arc<Frame> {
        self.latest.borrow().clone()
    }
}

/// When the publisher pushes: the live publisher's settings. Pure, so the schedule is tested
/// without a clock.
///
/// Pushing only on a fixed tick makes a record wait for its reader's next poll (a caught-up
/// reader polls every 200 ms) *and* then for the next tick; pushing as soon as a batch is
/// ingested removes the second wait. `live_min_interval` bounds how often that happens (fan-out
/// cost grows with pushes per second), and a push that was expensive to build (many series)
/// spaces the next early one further, so early pushes never take more than a fifth of the
/// publisher's time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Args, Serialize, Deserialize)]
#[command(next_help_heading = "Live updates")]
#[serde(default, deny_unknown_fields)]
pub struct Pacing {
    /// How often the live publisher pushes fresh figures to browsers at the latest (windows
    /// slide and health changes without new records).
    #[arg(long, env = "STREAMBOARD_LIVE_TICK", value_name = "DURATION", default_value = "250ms", value_parser = parse_positive_duration)]
    #[serde(with = "settings::positive_duration")]
    pub live_tick: Duration,

    /// The shortest time between two live pushes: when the engine has read new records the
    /// publisher pushes this soon after the previous push instead of waiting for the tick;
    /// equal to the tick pushes on the tick only. Not given, it is the tick when the tick is
    /// shorter; more than the tick is refused.
    #[arg(long, env = "STREAMBOARD_LIVE_MIN_INTERVAL", value_name = "DURATION", default_value = "100ms", value_parser = parse_positive_duration)]
    #[serde(with = "settings::positive_duration")]
    pub live_min_interval: Duration,
}

impl Default for Pacing {
    fn default() -> Self {
        settings::defaults()
    }
}

impl Settings for Pacing {
    fn finish(&mut self, given: &Given) -> Result<(), String> {
        if !given.contains("live_min_interval") {
            self.live_min_interval = self.live_min_interval.min(self.live_tick);
        }
        if self.live_min_interval > self.live_tick {
            return Err(format!(
                "{} is {:?}: it must not exceed {}, {:?}",
                settings::option("live_min_interval"),
                self.live_min_interval,
                settings::option("live_tick"),
                self.live_tick
            ));
        }
        Ok(())
    }
}

/// How many times its own build time an early push waits after the previous push.
const EARLY_PUSH_COST_FACTOR: u32 = 5;

impl Pacing {
    /// How long after the start of the previous push the next one is due, given how long the
    /// previous one took to build and whether records were ingested since it read the engine.
    /// A push that took longer than the tick is followed by a full tick of rest, not by
    /// another push at once (the publisher never takes all of a core).
    pub fn next_after(&self, previous_cost: Duration, ingested: bool) -> Duration {
        let tick = if previous_cost < self.live_tick {
            self.live_tick
        } else {
            previous_cost + self.live_tick
        };
        if ingested {
            self.live_min_interval
                .max(previous_cost * EARLY_PUSH_COST_FACTOR)
                .min(tick)
        } else {
            tick
        }
    }
}

/// Per-second samples for sparklines; owned by the publisher.
#[derive(Debug, Default)]
pub struct History {
    last_sample_ms: Option<i64>,
    pub streams: HashMap<String, VecDeque<f64>>,
    pub metrics: HashMap<String, VecDeque<f64>>,
}

impl History {
    /// Appends one sample per stream and metric when a second has passed since the last one.
    pub fn sample(&mut self, now_ms: i64, overview: &Overview) {
        if self
            .last_sample_ms
            .is_some_and(|last| now_ms - last < 1_000)
        {
            return;
        }
        self.last_sample_ms = Some(now_ms);
        fn push(ring: &mut VecDeque<f64>, value: f64) {
            if ring.len() == SPARKLINE_POINTS {
                ring.pop_front();
            }
            ring.push_back(value);
        }
        for stream in &overview.streams {
            push(
                self.streams.entry(stream.name.clone()).or_default(),
                stream.records_per_s,
            );
        }
        for metric in &overview.metrics {
            let rate = metric.windows.first().map_or(0.0, |w| w.summary.rate_per_s);
            push(self.metrics.entry(metric.name.clone()).or_default(), rate);
        }
    }
}

fn stats(w: &WindowSummary) -> WindowStats {
    WindowStats {
        window_s: w.window_s,
        summary: w.summary,
    }
}

/// Both values' `pick`, or the one that is there.
fn either(a: Option<f64>, b: Option<f64>, pick: fn(f64, f64) -> f64) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(pick(a, b)),
        _ => a.or(b),
    }
}

/// Sum of `bad` counts of one metric.
fn parse_errors(counters: &MetricCounters) -> u64 {
    counters.bad.values().map(|b| b.count).sum()
}

/// The stream a metric reads: built-ins carry it, defined metrics are looked up by id.
fn metric_stream(key: &MetricKey, streams_by_id: &HashMap<i64, String>) -> String {
    match key {
        MetricKey::Builtin { stream, .. } => stream.as_str().to_string(),
        MetricKey::Defined(id) => streams_by_id.get(id).cloned().unwrap_or_default(),
    }
}

/// Everything one tick publishes, before serialisation. Pure: same inputs, same payloads.
#[derive(Debug, Default)]
pub struct Payloads {
    pub overview: Overview,
    pub streams: StreamsLive,
    pub metrics: Vec<MetricLive>,
}

/// Builds every topic's payload from one reading of the engine and the consumer.
///
/// A card merges its metric's series: counts, rates, sums and means add up, min and max are
/// exact, and p50/p90/p99/p99.9 are the exact percentiles of the merged distribution (the
/// engine's merged windows of the metric, [`LiveWindows::metrics`]).
pub fn build(
    now_ms: i64,
    windows: &LiveWindows,
    counters: &[(MetricKey, String, MetricCounters)],
    health: Option<&ConsumerHealth>,
    streams_by_id: &HashMap<i64, String>,
    history: &History,
) -> Payloads {
    // Metrics, in the order the engine lists them (counters lists every metric, even without series).
    let mut metrics: Vec<MetricLive> = Vec::with_capacity(counters.len());
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut errors_by_stream: HashMap<String, u64> = HashMap::new();
    for (key, name, counter) in counters {
        if let MetricKey::Builtin { .. } = key {
            continue; // built-ins show on the stream rows
        }
        let stream = metric_stream(key, streams_by_id);
        let errors = parse_errors(counter);
        *errors_by_stream.entry(stream.clone()).or_default() += errors;
        index.insert(name.as_str(), metrics.len());
        metrics.push(MetricLive {
            name: name.clone(),
            found: true,
            server_time_ms: now_ms,
            card: Some(MetricCard {
                name: name.clone(),
                stream,
                series: 0,
                windows: Vec::new(),
                sparkline: history
                    .metrics
                    .get(name)
                    .map(|r| r.iter().copied().collect())
                    .unwrap_or_default(),
                parse_errors: errors,
            }),
            series: Vec::new(),
            errors: counter
                .bad
                .iter()
                .map(|(reason, bad)| (reason.as_str().to_string(), bad.count))
                .collect(),
            late_records: counter.late_records,
        });
    }
    // Merged windows per metric: counts, rates and sums add up, min and max are exact; the
    // percentiles are the merged histogram's, below.
    let mut sums: HashMap<usize, Vec<WindowStats>> = HashMap::new();
    for series in &windows.series {
        let Some(&i) = index.get(series.name.as_str()) else {
            continue;
        };
        metrics[i].series.push(SeriesLive {
            labels: series.labels.clone(),
            windows: series.windows.iter().map(stats).collect(),
        });
        let acc = sums.entry(i).or_insert_with(|| {
            series
                .windows
                .iter()
                .map(|w| WindowStats {
                    window_s: w.window_s,
                    summary: Summary::default(),
                })
                .collect()
        });
        for (total, window) in acc.iter_mut().zip(&series.windows) {
            let (total, w) = (&mut total.summary, &window.summary);
            total.count += w.count;
            total.rate_per_s += w.rate_per_s;
            total.sum += w.sum;
            total.min = either(total.min, w.min, f64::min);
            total.max = either(total.max, w.max, f64::max);
        }
    }
    for merged in &windows.metrics {
        let Some(acc) = index
            .get(merged.name.as_str())
            .and_then(|i| sums.get_mut(i))
        else {
            continue;
        };
        for (total, window) in acc.iter_mut().zip(&merged.windows) {
            let (total, w) = (&mut total.summary, &window.summary);
            (total.p50, total.p90, total.p99, total.p999) = (w.p50, w.p90, w.p99, w.p999);
        }
    }
    for (i, metric) in metrics.iter_mut().enumerate() {
        let series = metric.series.len();
        let merged: Vec<WindowStats> = match sums.remove(&i) {
            Some(mut acc) => {
                for window in &mut acc {
                    let total = &mut window.summary;
                    total.mean = (total.count > 0).then(|| total.sum / total.count as f64);
                }
                acc
            }
            None => Vec::new(),
        };
        if let Some(card) = metric.card.as_mut() {
            card.series = series;
            card.windows = merged;
        }
    }

    // Streams and shards from the consumer's health.
    let mut stream_rows: BTreeMap<String, StreamSummary> = BTreeMap::new();
    let mut shards = Vec::new();
    let mut stream_errors = Vec::new();
    if let Some(health) = health {
        for ((stream, shard), h) in &health.shards {
            let row = stream_rows
                .entry(stream.as_str().to_string())
                .or_insert_with(|| StreamSummary {
                    name: stream.as_str().to_string(),
                    ..StreamSummary::default()
                });
            row.shards += 1;
            row.records_per_s += h.records_per_sec;
            row.bytes_per_s += h.bytes_per_sec;
            row.lag_ms = row.lag_ms.max(h.millis_behind_latest);
            shards.push(ShardRow {
                stream: stream.as_str().to_string(),
                shard: shard.as_str().to_string(),
                state: h.state,
                records_per_s: h.records_per_sec,
                bytes_per_s: h.bytes_per_sec,
                millis_behind_latest: h.millis_behind_latest,
                parents: h.parents.iter().map(|p| p.as_str().to_string()).collect(),
                last_error: h.last_error.clone(),
                hot: false,
            });
        }
        for (stream, error) in &health.stream_errors {
            stream_errors.push((stream.as_str().to_string(), error.clone()));
            stream_rows
                .entry(stream.as_str().to_string())
                .or_insert_with(|| StreamSummary {
                    name: stream.as_str().to_string(),
                    ..StreamSummary::default()
                })
                .error = Some(error.clone());
        }
    }
    for shard in &mut shards {
        if let Some(row) = stream_rows.get(&shard.stream) {
            let mean = row.records_per_s / row.shards.max(1) as f64;
            shard.hot =
                row.shards > 1 && shard.records_per_s > 1.0 && shard.records_per_s >= 2.0 * mean;
        }
    }
    for row in stream_rows.values_mut() {
        row.parse_errors = errors_by_stream.get(&row.name).copied().unwrap_or(0);
        row.sparkline = history
            .streams
            .get(&row.name)
            .map(|r| r.iter().copied().collect())
            .unwrap_or_default();
    }

    Payloads {
        overview: Overview {
            server_time_ms: now_ms,
            streams: stream_rows.into_values().collect(),
            metrics: metrics.iter().filter_map(|m| m.card.clone()).collect(),
            storage_error: None,
        },
        streams: StreamsLive {
            server_time_ms: now_ms,
            shards,
            stream_errors,
        },
        metrics,
    }
}

/// Serialises every payload once into its `update` message.
pub fn serialise(seq: u64, now_ms: i64, payloads: Payloads) -> Frame {
    let text = |payload: LivePayload| -> Arc<str> {
        Arc::from(ServerMessage::Update { seq, payload }.to_json())
    };
    Frame {
        seq,
        server_time_ms: now_ms,
        overview: text(LivePayload::Overview(payloads.overview)),
        streams: text(LivePayload::Streams(payloads.streams)),
        metrics: payloads
            .metrics
            .into_iter()
            .map(|m| (m.name.clone(), text(LivePayload::Metric(m))))
            .collect(),
    }
}

/// Starts the publisher on `tracker`; it stops when `shutdown` is cancelled or the engine is gone.
pub fn spawn(
    pacing: Pacing,
    engine: EngineHandle,
    health: Option<watch::Receiver<ConsumerHealth>>,
    database: Database,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) -> LiveHub {
    let (updates, _) = broadcast::channel(BROADCAST_CAPACITY);
    let (latest_tx, latest) = watch::channel(Arc::new(Frame::default()));
    let hub = LiveHub {
        updates: updates.clone(),
        latest,
    };
    tracker.spawn(async move {
        let mut ingested = engine.ingested();
        let mut history = History::default();
        let mut streams_by_id: HashMap<i64, String> = HashMap::new();
        let mut seq = 0u64;
        // The first push goes out at once.
        let mut previous: Option<(tokio::time::Instant, Duration)> = None;
        loop {
            if let Some((started, cost)) = previous {
                // Wait for the tick, or for new records and then the early-push deadline.
                let tick_at = started + pacing.next_after(cost, false);
                let new_records = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep_until(tick_at) => false,
                    changed = ingested.changed() => changed.is_ok(),
                };
                if new_records {
                    let due = started + pacing.next_after(cost, true);
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep_until(due) => {}
                    }
                }
            }
            // Batches ingested from here on are seen by the next round, whether or not this
            // round's reading of the engine includes them.
            ingested.borrow_and_update();
            let started = tokio::time::Instant::now();
            let now_ms = crate::clock::now_ms();
            let (windows, counters) = match (engine.windows(now_ms).await, engine.counters().await)
            {
                (Ok(w), Ok(c)) => (w, c),
                _ => break, // the engine stopped: shutdown
            };
            let unknown = counters.iter().any(|(key, _, _)| {
                matches!(key, MetricKey::Defined(id) if !streams_by_id.contains_key(id))
            });
            if unknown {
                match database.active_metrics().await {
                    Ok(records) => {
                        streams_by_id = records.into_iter().map(|r| (r.id, r.stream)).collect();
                    }
                    Err(error) => tracing::warn!(%error, "live publisher cannot list metrics"),
                }
            }
            let health_now = health.as_ref().map(|rx| rx.borrow().clone());
            let mut payloads = build(
                now_ms,
                &windows,
                &counters,
                health_now.as_ref(),
                &streams_by_id,
                &history,
            );
            payloads.overview.storage_error = engine.storage_failure().map(|f| f.message);
            history.sample(now_ms, &payloads.overview);
            // Sparklines include this tick's sample.
            for card in &mut payloads.overview.metrics {
                if let Some(ring) = history.metrics.get(&card.name) {
                    card.sparkline = ring.iter().copied().collect();
                }
            }
            for metric in &mut payloads.metrics {
                if let (Some(card), Some(ring)) =
                    (metric.card.as_mut(), history.metrics.get(&metric.name))
                {
                    card.sparkline = ring.iter().copied().collect();
                }
            }
            for row in &mut payloads.overview.streams {
                if let Some(ring) = history.streams.get(&row.name) {
                    row.sparkline = ring.iter().copied().collect();
                }
            }
            seq += 1;
            let frame = Arc::new(serialise(seq, now_ms, payloads));
            latest_tx.send_replace(frame.clone());
            // No receivers is fine: nobody is watching.
            let _ = updates.send(frame);
            previous = Some((started, started.elapsed()));
        }
        tracing::debug!("live publisher stopped");
    });
    hub
}

#[cfg(test)]
mod tests;
