//! Cost of one live-publisher tick without the engine round trip: building every topic's
//! payload ([`streamboard::live::build`]) and serialising each once
//! ([`streamboard::live::serialise`]) for N series spread over 20 metrics.
//!
//! `cargo bench --bench live_publish` for release figures; `cargo test --bench live_publish`
//! runs the same loop in a debug build (figures then only show the trend).

use contract::summary::Summary;
use std::{collections::HashMap, time::Instant};
use streamboard::{
    engine::{
        core::{LiveWindows, MergedWindows, SeriesWindows},
        counters::MetricCounters,
        window::{WINDOWS_S, WindowSummary},
    },
    live::{History, build, serialise},
    metric::MetricKey,
};

fn main() {
    const METRICS: i64 = 20;
    for series in [100usize, 1_000, 10_000] {
        let windows: Vec<SeriesWindows> = (0..series)
            .map(|i| {
                let metric = i as i64 % METRICS;
                SeriesWindows {
                    metric: MetricKey::Defined(metric),
                    name: format!("metric_{metric}"),
                    labels: vec![format!("value-{i}")],
                    windows: WINDOWS_S.map(|w| WindowSummary {
                        window_s: w,
                        summary: Summary {
                            count: 1_000 + i as u64,
                            rate_per_s: 12.5,
                            sum: 5_000.0,
                            min: Some(1.0),
                            max: Some(90.0),
                            mean: Some(5.0),
                            p50: Some(4),
                            p90: Some(20),
                            p99: Some(80),
                            p999: Some(89),
                        },
                    }),
                }
            })
            .collect();
        let metrics = (0..METRICS)
            .map(|m| MergedWindows {
                metric: MetricKey::Defined(m),
                name: format!("metric_{m}"),
                windows: windows[m as usize].windows,
            })
            .collect();
        let windows = LiveWindows {
            series: windows,
            metrics,
        };
        let counters: Vec<_> = (0..METRICS)
            .map(|m| {
                (
                    MetricKey::Defined(m),
                    format!("metric_{m}"),
                    MetricCounters::default(),
                )
            })
            .collect();
        let streams: HashMap<i64, String> =
            (0..METRICS).map(|m| (m, "orders".to_string())).collect();
        let history = History::default();
        let rounds = 20;
        let started = Instant::now();
        let mut bytes = 0usize;
        for seq in 0..rounds {
            let payloads = build(0, &windows, &counters, None, &streams, &history);
            let frame = serialise(seq, 0, payloads);
            bytes = frame.overview.len() + frame.metrics.values().map(|m| m.len()).sum::<usize>();
        }
        let per_tick = started.elapsed() / rounds as u32;
        println!("live_publish series={series:>6} per_tick={per_tick:>10.2?} frame_bytes={bytes}");
    }
}
