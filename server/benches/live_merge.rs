//! What exact merged live percentiles cost (`cargo bench -p streamboard --bench live_merge`;
//! harness = false): one metric of 1,000 series (a dimension with 1,000 values), 4 values per
//! series and second spread over 1..2,000, one hour of data flushed second by second into the
//! windows (so every window is full), then:
//!
//! 1. per push, the merge alone ([`Engine::merged_windows`]: the metric's merged windows plus
//!    every series' unflushed second, all four windows, percentiles included), and the whole of
//!    [`Engine::windows`] (every series' four windows and the merge) for comparison;
//! 2. per flush, what feeding the merged windows adds: 1,000 series' seconds added to one
//!    [`Windows`], as `take_flush_before` does next to each series' own windows;
//! 3. memory: the merged windows' heap bytes against all the series' windows.
//!
//! Times are the median and the minimum of the rounds, wall clock on one thread (the minimum
//! is what the code costs when the cores are not shared).

use bytes::Bytes;
use rand::{Rng, SeedableRng, rngs::StdRng};
use std::{collections::HashSet, time::Instant};
use streamboard::{
    engine::{Engine, EngineConfig, window::Windows},
    kinesis::{ConsumedRecord, RecordBatch, SequenceNumber},
    metric::{MetricDefinition, Stats, histogram::sparse_of},
};

const T0_S: i64 = 1_700_000_000;
const SERIES: usize = 1_000;
const VALUES_PER_SECOND: usize = 4;

/// One series' second: its stats and its sparse histogram counts.
type SecondOf = (Stats, Vec<(u32, u64)>);

fn median_and_min(mut times: Vec<f64>) -> (f64, f64) {
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[0])
}

fn batch(second: i64, rng: &mut StdRng) -> RecordBatch<()> {
    let records = (0..SERIES * VALUES_PER_SECOND)
        .map(|i| ConsumedRecord {
            sequence_number: SequenceNumber::parse("1").expect("digits"),
            sub_sequence: None,
            partition_key: "pk".into(),
            data: Bytes::from(format!(
                r#"{{"user":"u{}","latency_ms":{}}}"#,
                i % SERIES,
                rng.random_range(1..2000)
            )),
            arrival_time_ms: second * 1000 + (i * 1000 / (SERIES * VALUES_PER_SECOND)) as i64,
            explicit_hash_key: None,
        })
        .collect();
    RecordBatch {
        stream: "s".into(),
        shard: "shardId-0".into(),
        records,
        millis_behind_latest: Some(0),
        position: (),
    }
}

fn main() {
    let mut rng = StdRng::seed_from_u64(7);
    let definition: MetricDefinition = serde_json::from_value(serde_json::json!(
        {"name": "latency", "stream": "s", "value": "/latency_ms", "dimensions": ["/user"]}
    ))
    .expect("a definition");
    let mut engine: Engine = Engine::new(EngineConfig {
        max_series_per_metric: SERIES,
        ..EngineConfig::default()
    });
    engine.set_definitions(vec![(
        1,
        definition
            .compile(None, &HashSet::new())
            .expect("a valid definition"),
    )]);
    // One hour, flushed every second: every window full.
    let hour_s = 3600;
    let mut flush_times = Vec::new();
    for t in 0..hour_s {
        let second = T0_S + t;
        engine.ingest(&batch(second, &mut rng), second * 1000 + 999);
        let started = Instant::now();
        let _ = engine.take_flush_before(second + 1);
        flush_times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    // A push between two flushes: every series has an unflushed second.
    let now_s = T0_S + hour_s;
    engine.ingest(&batch(now_s, &mut rng), now_s * 1000 + 999);
    let now_ms = now_s * 1000 + 999;
    let rounds = 40;
    let mut merge = Vec::new();
    let mut whole = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        let merged = engine.merged_windows(now_ms);
        merge.push(started.elapsed().as_secs_f64() * 1e3);
        let started = Instant::now();
        let live = engine.windows(now_ms);
        whole.push(started.elapsed().as_secs_f64() * 1e3);
        // The merge holds every series' values.
        let of_series: u64 = live
            .series
            .iter()
            .filter(|s| s.name == "latency")
            .map(|s| s.windows[3].summary.count)
            .sum();
        let latency = merged.iter().find(|m| m.name == "latency");
        assert_eq!(latency.map(|m| m.windows[3].summary.count), Some(of_series));
    }
    let (merge_median, merge_min) = median_and_min(merge);
    let (whole_median, whole_min) = median_and_min(whole);
    println!(
        "per push: merge of {SERIES} series (4 windows, 1 h full) median {merge_median:.2} ms, min {merge_min:.2} ms; \
         Engine::windows (every series + merge) median {whole_median:.1} ms, min {whole_min:.1} ms"
    );

    // Feeding the merged windows: one second of every series added to one Windows.
    let seconds: Vec<Vec<SecondOf>> = (0..60)
        .map(|_| {
            (0..SERIES)
                .map(|_| {
                    let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000, 2)
                        .expect("bounds");
                    let mut stats = Stats::EMPTY;
                    for _ in 0..VALUES_PER_SECOND {
                        let v: u64 = rng.random_range(1..2000);
                        h.record(v).expect("in range");
                        stats.add(v as f64);
                    }
                    let mut sparse = Vec::new();
                    sparse_of(&h, &mut sparse);
                    (stats, sparse)
                })
                .collect()
        })
        .collect();
    let mut merged = Windows::new();
    let mut add = Vec::new();
    for round in 0..3 {
        for (t, second) in seconds.iter().enumerate() {
            let started = Instant::now();
            for (stats, sparse) in second {
                merged.add_sparse(T0_S + round * 60 + t as i64, stats, sparse);
            }
            add.push(started.elapsed().as_secs_f64() * 1e3);
        }
    }
    let (add_median, add_min) = median_and_min(add);
    let (flush_median, flush_min) = median_and_min(flush_times);
    println!(
        "per flush: adding {SERIES} series' second to the merged windows median {add_median:.2} ms, min {add_min:.2} ms \
         (the whole take_flush_before of {SERIES} series: median {flush_median:.2} ms, min {flush_min:.2} ms)"
    );
    let merged_bytes = engine.merged_heap_bytes();
    let all_bytes = engine.heap_bytes();
    println!(
        "memory: merged windows of every metric (this one and the stream's built-ins, one series each) {:.1} KiB; \
         the series' own windows {:.1} MiB",
        merged_bytes as f64 / 1024.0,
        (all_bytes - merged_bytes) as f64 / (1 << 20) as f64,
    );
}
