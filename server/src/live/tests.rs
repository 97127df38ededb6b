use super::*;
use crate::{
    consumer::health::{ShardHealth, ShardState},
    engine::{
        core::{MergedWindows, SeriesWindows},
        window::WINDOWS_S,
    },
    kinesis::{ShardId, StreamName},
};

fn summary(count: u64, sum: f64, p99: u64) -> [WindowSummary; 4] {
    WINDOWS_S.map(|w| WindowSummary {
        window_s: w,
        summary: Summary {
            count,
            rate_per_s: count as f64 / w as f64,
            sum,
            mean: Some(sum / count as f64),
            p99: Some(p99),
            ..Summary::default()
        },
    })
}

#[test]
fn cards_merge_series_and_shards_flag_hot_ones() {
    let series = vec![
        SeriesWindows {
            metric: MetricKey::Defined(7),
            name: "latency".into(),
            labels: vec!["fr".into()],
            windows: summary(10, 100.0, 50),
        },
        SeriesWindows {
            metric: MetricKey::Defined(7),
            name: "latency".into(),
            labels: vec!["de".into()],
            windows: summary(30, 900.0, 90),
        },
    ];
    // The engine's merge of both series' histograms.
    let windows = LiveWindows {
        series,
        metrics: vec![MergedWindows {
            metric: MetricKey::Defined(7),
            name: "latency".into(),
            windows: summary(40, 1000.0, 80),
        }],
    };
    let mut counters = MetricCounters::default();
    counters.bad.insert(
        crate::engine::counters::BadReason::InvalidJson,
        crate::engine::counters::BadRecords {
            count: 4,
            examples: Default::default(),
        },
    );
    let counters = vec![(MetricKey::Defined(7), "latency".to_string(), counters)];
    let mut health = ConsumerHealth::default();
    for (shard, rate) in [("s0", 100.0), ("s1", 5.0), ("s2", 5.0)] {
        health.shards.insert(
            (StreamName::new("orders"), ShardId::new(shard)),
            ShardHealth {
                state: ShardState::Reading,
                records_per_sec: rate,
                millis_behind_latest: Some(if shard == "s1" { 900 } else { 0 }),
                parents: if shard == "s2" {
                    vec![ShardId::new("s0")]
                } else {
                    Vec::new()
                },
                ..ShardHealth::default()
            },
        );
    }
    let streams = HashMap::from([(7, "orders".to_string())]);
    let payloads = build(
        1_000,
        &windows,
        &counters,
        Some(&health),
        &streams,
        &History::default(),
    );

    let card = &payloads.overview.metrics[0];
    assert_eq!((card.stream.as_str(), card.series), ("orders", 2));
    assert_eq!(card.windows[0].summary.count, 40);
    assert_eq!(
        card.windows[0].summary.mean,
        Some(25.0),
        "mean of all records, not of means"
    );
    assert_eq!(
        card.windows[0].summary.p99,
        Some(80),
        "the merged histogram's p99, not the largest series'"
    );
    assert_eq!(card.windows[0].summary.sum, 1000.0);
    assert_eq!(card.parse_errors, 4);

    let row = &payloads.overview.streams[0];
    assert_eq!((row.name.as_str(), row.shards), ("orders", 3));
    assert_eq!(row.records_per_s, 110.0);
    assert_eq!(row.lag_ms, Some(900));
    assert_eq!(row.parse_errors, 4);

    let hot: Vec<_> = payloads
        .streams
        .shards
        .iter()
        .filter(|s| s.hot)
        .map(|s| s.shard.as_str())
        .collect();
    assert_eq!(hot, ["s0"]);
    let child = payloads.streams.shards.iter().find(|s| s.shard == "s2");
    assert_eq!(
        child.map(|s| s.parents.clone()),
        Some(vec!["s0".to_string()])
    );
    assert_eq!(
        payloads.metrics[0].errors,
        [("invalid_json".to_string(), 4)]
    );
}

#[test]
fn history_samples_once_per_second_and_keeps_a_minute() {
    let mut history = History::default();
    let overview = Overview {
        streams: vec![StreamSummary {
            name: "orders".into(),
            records_per_s: 3.0,
            ..StreamSummary::default()
        }],
        ..Overview::default()
    };
    for tick in 0..(4 * 70) {
        history.sample(tick * 250, &overview);
    }
    assert_eq!(history.streams["orders"].len(), SPARKLINE_POINTS);
    let mut fresh = History::default();
    fresh.sample(0, &overview);
    fresh.sample(500, &overview);
    assert_eq!(
        fresh.streams["orders"].len(),
        1,
        "two ticks in one second give one sample"
    );
}

#[test]
fn pacing_pushes_early_on_new_records_but_never_more_often_than_allowed() {
    let ms = Duration::from_millis;
    let pacing = Pacing {
        live_tick: ms(250),
        live_min_interval: ms(100),
    };
    // Nothing new: the tick.
    assert_eq!(pacing.next_after(ms(3), false), ms(250));
    // New records: the shortest interval, unless building the last push was expensive.
    assert_eq!(pacing.next_after(ms(3), true), ms(100));
    assert_eq!(pacing.next_after(ms(30), true), ms(150));
    // Never later than the tick.
    assert_eq!(pacing.next_after(ms(80), true), ms(250));
    // A push longer than the tick: a full tick of rest after it, records or not.
    assert_eq!(pacing.next_after(ms(400), false), ms(650));
    assert_eq!(pacing.next_after(ms(400), true), ms(650));
    // Tick only: records change nothing.
    let tick_only = Pacing {
        live_tick: ms(250),
        live_min_interval: ms(250),
    };
    assert_eq!(tick_only.next_after(Duration::ZERO, true), ms(250));
}
