//! The partitioned engine against one engine: the same recorded input through 1 partition and
//! through 2, 3 and 4 must give the same flushes (deltas merged per metric, series and second;
//! positions), the same live windows (percentiles included), the same alert windows and the
//! same counters. Values are integers, so sums are exact whatever the order they add up in.

use super::*;
use crate::{
    kinesis::{ConsumedRecord, SequenceNumber},
    metric::MetricDefinition,
};
use bytes::Bytes;
use proptest::prelude::*;
use std::collections::HashSet;
use std::sync::Arc;

const T0: i64 = 1_700_000_000_000;

fn definitions() -> Vec<(i64, CompiledMetric)> {
    let list: Vec<MetricDefinition> = serde_json::from_value(serde_json::json!([
        {"name": "latency", "stream": "a", "value": "/latency_ms", "dimensions": ["/region", "/path"],
         "time": {"field": "/event_time", "format": "epoch_ms"}},
        {"name": "errors", "stream": "a", "filter": "/status >= 500", "dimensions": ["/region"]},
        {"name": "size", "stream": "b", "value": "/bytes", "dimensions": ["/region"],
         "histogram": {"lowest": 1, "highest": 100000000, "significant_figures": 2}}
    ]))
    .expect("definitions");
    list.iter()
        .enumerate()
        .map(|(i, d)| {
            (
                i as i64 + 1,
                d.compile(None, &HashSet::new()).expect("valid"),
            )
        })
        .collect()
}

/// One generated record: region, path, latency, status, bytes, event time offset from the
/// arrival (ms; some late or from the future), and whether it is garbage.
type Rec = (u8, u8, u32, bool, u32, i32, bool);

/// One step of a recorded input.
#[derive(Debug, Clone)]
enum Step {
    /// A batch of a stream's shard, arriving `advance_ms` after the previous step.
    Batch {
        stream: u8,
        shard: u8,
        advance_ms: u16,
        millis_behind: Option<u16>,
        records: Vec<Rec>,
    },
    /// A flush of the complete seconds (or of everything), whose write fails when `fails`.
    Flush { everything: bool, fails: bool },
    /// A live read: every window, and the alert windows of each metric.
    Read,
}

fn rec() -> impl Strategy<Value = Rec> {
    (
        0u8..4,
        0u8..3,
        1u32..5_000,
        any::<bool>(),
        1u32..200_000,
        prop_oneof![8 => -3_000i32..3_000, 1 => -120_000i32..-61_000, 1 => 61_000i32..120_000],
        prop::bool::weighted(0.05),
    )
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0u8..2, 0u8..5, 0u16..700, prop::option::of(0u16..5_000), prop::collection::vec(rec(), 0..12))
            .prop_map(|(stream, shard, advance_ms, millis_behind, records)| Step::Batch {
                stream, shard, advance_ms, millis_behind, records
            }),
        2 => (prop::bool::weighted(0.2), prop::bool::weighted(0.2))
            .prop_map(|(everything, fails)| Step::Flush { everything, fails }),
        1 => Just(Step::Read),
    ]
}

fn record(r: &Rec, arrival_ms: i64) -> ConsumedRecord {
    let (region, path, latency, error, bytes, offset_ms, garbage) = *r;
    let data = if garbage {
        format!("not json {latency}")
    } else {
        format!(
            r#"{{"region":"r{region}","path":"/p{path}","status":{},"latency_ms":{latency},"bytes":{bytes},"event_time":{}}}"#,
            if error { 503 } else { 200 },
            arrival_ms + i64::from(offset_ms),
        )
    };
    ConsumedRecord {
        sequence_number: SequenceNumber::parse("1").expect("digits"),
        sub_sequence: None,
        partition_key: "k".into(),
        data: Bytes::from(data),
        arrival_time_ms: arrival_ms,
        explicit_hash_key: None,
    }
}

/// A flush in a comparable form: deltas merged per (metric, series, second) and sorted,
/// positions sorted.
type Deltas = Vec<(MetricKey, String, i64, u64, i64, i64, i64, Vec<(u32, u64)>)>;

fn normal(flush: Flush<u64>) -> (Deltas, Vec<(String, String, u64)>) {
    let mut deltas: Deltas = merge_deltas(flush.deltas)
        .into_iter()
        .map(|d| {
            (
                d.metric,
                d.series.to_string(),
                d.second,
                d.stats.count,
                d.stats.sum as i64,
                d.stats.min as i64,
                d.stats.max as i64,
                d.counts,
            )
        })
        .collect();
    deltas.sort_by(|a, b| (&a.0, &a.1, a.2).cmp(&(&b.0, &b.1, b.2)));
    let mut positions: Vec<_> = flush
        .positions
        .into_iter()
        .map(|(stream, shard, position)| {
            (
                stream.as_str().to_string(),
                shard.as_str().to_string(),
                position,
            )
        })
        .collect();
    positions.sort();
    (deltas, positions)
}

/// Live windows in a comparable form: series sorted by metric and labels.
fn normal_windows(mut windows: LiveWindows) -> LiveWindowsNormal {
    windows
        .series
        .sort_by(|a, b| (&a.metric, &a.labels).cmp(&(&b.metric, &b.labels)));
    LiveWindowsNormal {
        series: windows
            .series
            .into_iter()
            .map(|s| (s.metric, s.name, s.labels, s.windows))
            .collect(),
        metrics: windows
            .metrics
            .into_iter()
            .map(|m| (m.metric, m.name, m.windows))
            .collect(),
    }
}

#[derive(Debug, PartialEq)]
struct LiveWindowsNormal {
    series: Vec<(MetricKey, String, Vec<String>, [WindowSummary; 4])>,
    metrics: Vec<(MetricKey, String, [WindowSummary; 4])>,
}

fn normal_window(window: Option<MetricWindow>) -> Option<MetricWindow> {
    window.map(|mut w| {
        w.series.sort_by(|a, b| a.0.cmp(&b.0));
        w
    })
}

/// A metric's key, name, late, future and overflowed records, and bad records per reason.
type CountersOf = (MetricKey, String, u64, u64, u64, Vec<(String, u64)>);

/// Counters without the bad records' examples (which recent ones are kept depends on the
/// interleaving of the partitions).
fn normal_counters(counters: Vec<(MetricKey, String, MetricCounters)>) -> Vec<CountersOf> {
    counters
        .into_iter()
        .map(|(key, name, c)| {
            let bad = c
                .bad
                .iter()
                .map(|(reason, bad)| (reason.as_str().to_string(), bad.count))
                .collect();
            (
                key,
                name,
                c.late_records,
                c.future_records,
                c.overflowed_records,
                bad,
            )
        })
        .collect()
}

/// Runs `steps` through one engine and through `partitions` partitions, comparing every flush
/// and read.
fn same_results(steps: &[Step], partitions: usize) -> Result<(), TestCaseError> {
    let config = EngineConfig::default();
    let mut single: Engine<u64> = Engine::new(config.clone());
    let mut parted: Partitioned<u64> = Partitioned::new(config, partitions);
    single.set_definitions(definitions());
    parted.set_definitions(definitions());
    let mut now_ms = T0;
    let mut positions: HashMap<(u8, u8), u64> = HashMap::new();
    for (at, step) in steps.iter().enumerate() {
        match step {
            Step::Batch {
                stream,
                shard,
                advance_ms,
                millis_behind,
                records,
            } => {
                now_ms += i64::from(*advance_ms);
                let position = positions.entry((*stream, *shard)).or_default();
                *position += 1;
                let batch = RecordBatch {
                    stream: if *stream == 0 { "a" } else { "b" }.into(),
                    shard: format!("shardId-{shard}").as_str().into(),
                    records: records
                        .iter()
                        .enumerate()
                        .map(|(i, r)| record(r, now_ms - 50 + i as i64))
                        .collect(),
                    millis_behind_latest: millis_behind.map(i64::from),
                    position: *position,
                };
                single.ingest(&batch, now_ms);
                parted.ingest(&batch, now_ms);
            }
            Step::Flush { everything, fails } => {
                let cutoff_s = if *everything {
                    i64::MAX
                } else {
                    now_ms.div_euclid(1000)
                };
                let one = single.take_flush_before(cutoff_s);
                let many = parted.take_flush_before(cutoff_s);
                if *fails {
                    single.restore(one.clone());
                    parted.restore(many.clone());
                }
                prop_assert_eq!(normal(one), normal(many), "flush at step {}", at);
            }
            Step::Read => {
                prop_assert_eq!(
                    normal_windows(single.windows(now_ms)),
                    normal_windows(parted.windows(now_ms)),
                    "windows at step {}",
                    at
                );
                for name in ["latency", "errors", "size", "builtin:a:records"] {
                    for window_s in [10, 60, 300] {
                        prop_assert_eq!(
                            normal_window(single.window(now_ms, name, window_s)),
                            normal_window(parted.window(now_ms, name, window_s)),
                            "window {} {} s at step {}",
                            name,
                            window_s,
                            at
                        );
                    }
                }
                prop_assert_eq!(
                    normal_counters(single.counters()),
                    normal_counters(parted.counters()),
                    "counters at step {}",
                    at
                );
            }
        }
    }
    let (one, many) = (normal(single.take_flush()), normal(parted.take_flush()));
    prop_assert_eq!(one, many, "the final flush");
    prop_assert_eq!(
        normal_windows(single.windows(now_ms)),
        normal_windows(parted.windows(now_ms)),
        "the final windows"
    );
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(48)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn partitions_give_the_results_of_one_engine(
        steps in prop::collection::vec(step(), 1..80),
        partitions in 2usize..=4,
    ) {
        same_results(&steps, partitions)?;
    }
}

#[test]
fn one_partition_gives_the_results_of_one_engine() {
    let steps: Vec<Step> = (0..40)
        .map(|i| match i % 7 {
            3 => Step::Flush {
                everything: false,
                fails: i % 2 == 0,
            },
            6 => Step::Read,
            _ => Step::Batch {
                stream: (i % 2) as u8,
                shard: (i % 3) as u8,
                advance_ms: 300,
                millis_behind: Some(10),
                records: (0..8)
                    .map(|j| (j % 4, j % 3, 10 + i * 7 + j as u32, j == 0, 100, 0, false))
                    .collect(),
            },
        })
        .collect();
    same_results(&steps, 1).unwrap();
}

#[test]
fn shards_go_to_the_partition_with_the_fewest() {
    let mut coordinator: Coordinator<u64> = Coordinator::new(EngineConfig::default(), 3);
    let batch = |stream: &str, shard: &str| RecordBatch {
        stream: stream.into(),
        shard: shard.into(),
        records: Vec::new(),
        millis_behind_latest: None,
        position: 0,
    };
    let routed: Vec<usize> = [
        ("a", "s0"),
        ("a", "s1"),
        ("b", "s0"),
        ("a", "s0"),
        ("a", "s2"),
        ("b", "s0"),
    ]
    .iter()
    .map(|(stream, shard)| coordinator.route(&batch(stream, shard)))
    .collect();
    assert_eq!(routed, [0, 1, 2, 0, 0, 2]);
}

#[test]
fn merged_deltas_add_up_stats_and_counts() {
    let delta = |count: u64, sum: f64, counts: Vec<(u32, u64)>| BucketDelta {
        metric: MetricKey::Defined(1),
        series: Arc::from("[\"x\"]"),
        second: 7,
        stats: Stats {
            count,
            sum,
            min: sum / count as f64,
            max: sum,
        },
        counts,
        bounds: None,
    };
    let merged = merge_deltas(vec![
        delta(1, 5.0, vec![(1, 1)]),
        delta(2, 8.0, vec![(1, 1), (3, 1)]),
    ]);
    assert_eq!(merged.len(), 1);
    assert_eq!(merged[0].stats.count, 3);
    assert_eq!(merged[0].stats.sum, 13.0);
    assert_eq!(merged[0].stats.min, 4.0);
    assert_eq!(merged[0].stats.max, 8.0);
    assert_eq!(merged[0].counts, vec![(1, 2), (3, 1)]);
}

#[test]
fn the_series_limit_holds_over_all_partitions() {
    let config = EngineConfig {
        max_series_per_metric: 3,
        ..EngineConfig::default()
    };
    let mut parted: Partitioned<u64> = Partitioned::new(config, 2);
    parted.set_definitions(definitions());
    // Two shards, so two partitions, each with 3 regions of its own: 6 series over both.
    for (shard, regions) in [(0, [0u8, 1, 2]), (1, [3, 4, 5])] {
        let records = regions
            .iter()
            .map(|&region| record(&(region, 0, 100, false, 10, 0, false), T0))
            .collect();
        parted.ingest(
            &RecordBatch {
                stream: "a".into(),
                shard: format!("shardId-{shard}").as_str().into(),
                records,
                millis_behind_latest: None,
                position: 1,
            },
            T0,
        );
    }
    let flush = parted.take_flush();
    let mut series: Vec<String> = flush
        .deltas
        .iter()
        .filter(|d| d.metric == MetricKey::Defined(1))
        .map(|d| d.series.to_string())
        .collect();
    series.sort();
    assert_eq!(
        series,
        [
            r#"["__other__","__other__"]"#,
            r#"["r0","/p0"]"#,
            r#"["r1","/p0"]"#,
            r#"["r2","/p0"]"#
        ]
    );
    let other = flush
        .deltas
        .iter()
        .find(|d| d.metric == MetricKey::Defined(1) && d.series.contains("__other__"))
        .expect("folded");
    assert_eq!(other.stats.count, 3);
    let latency = parted
        .counters()
        .into_iter()
        .find(|(key, _, _)| *key == MetricKey::Defined(1))
        .expect("the metric");
    assert_eq!(latency.2.overflowed_records, 3);
    let live = parted.windows(T0);
    let shown = live
        .series
        .iter()
        .filter(|s| s.metric == MetricKey::Defined(1))
        .count();
    assert_eq!(shown, 4, "three series and __other__");
}
