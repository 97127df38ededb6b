//! Export serialisation benchmark (`cargo bench -p streamboard --bench export`; harness = false).
//!
//! The pure row-writing core, in-process, one core, no I/O:
//! 1. `CsvWriter` / `JsonWriter` over pre-built rows (all columns filled): rows/s and MB/s.
//! 2. The whole shaping path: `Shaper` over pages of stored buckets (one V2-deflate histogram
//!    per bucket decoded, totals merged) into CSV: rows/s.
//!
//! Goal: ≥ 500,000 rows/s for (1).

use contract::summary::Summary;
use hdrhistogram::Histogram;
use std::time::Instant;
use streamboard::{
    export::{Row, RowWriter, Shaper, csv::CsvWriter, json::JsonWriter},
    metric::{Stats, histogram::encode_histogram},
    storage::export::RawBucket,
};

const ROWS: u64 = 1_000_000;
const T0_S: i64 = 1_700_000_000;

fn rows_per_s(name: &str, writer: &mut dyn RowWriter) {
    let series: Vec<String> = (0..100)
        .map(|s| format!("[\"eu-{s}\",\"/api/v1/items\"]"))
        .collect();
    let started = Instant::now();
    let mut out = Vec::with_capacity(1 << 20);
    let mut bytes = 0usize;
    writer.begin(&mut out);
    for i in 0..ROWS {
        let row = Row {
            metric: "request_latency",
            series: &series[(i % 100) as usize],
            bucket_start_s: Some(T0_S + (i / 100) as i64 * 60),
            resolution_s: 60,
            summary: Summary {
                count: 1_000 + i % 977,
                rate_per_s: (1_000 + i % 977) as f64 / 60.0,
                sum: 123_456.789 + i as f64,
                min: Some(1.0),
                max: Some(4_321.5),
                mean: Some(123.456_789_012 + (i % 1000) as f64 / 7.0),
                p50: Some(97),
                p90: Some(480),
                p99: Some(1_983),
                p999: Some(4_095),
            },
            unit: Some("ms"),
        };
        writer.row(&row, &mut out);
        if out.len() > 1 << 20 {
            bytes += out.len();
            out.clear();
        }
    }
    writer.end(&mut out);
    bytes += out.len();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{name}: {ROWS} rows in {secs:.3} s = {:.0} rows/s, {:.1} MB/s",
        ROWS as f64 / secs,
        bytes as f64 / secs / 1e6
    );
}

fn shaping() {
    let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000, 2).expect("bounds");
    for v in [3, 40, 97, 480, 1_983, 4_095] {
        h.record(v).expect("in range");
    }
    let blob = encode_histogram(&h);
    let stats = Stats {
        count: 6,
        sum: 6_698.0,
        min: 3.0,
        max: 4_095.0,
    };
    let pages: u64 = 100;
    let per_page: i64 = 2_000;
    let started = Instant::now();
    let mut shaper = Shaper::new("request_latency".into(), Some("ms".into()), 60);
    let mut writer = CsvWriter;
    let mut bytes = 0usize;
    for p in 0..pages {
        let page: Vec<RawBucket> = (0..per_page)
            .map(|i| RawBucket {
                series: format!("[\"s{}\"]", p / 10),
                start_s: T0_S + (p as i64 % 10 * per_page + i) * 60,
                stats,
                hist: Some(blob.clone()),
            })
            .collect();
        let mut out = Vec::new();
        shaper.page(page, &mut writer, &mut out);
        bytes += out.len();
    }
    let mut out = Vec::new();
    shaper.finish(&mut writer, &mut out);
    bytes += out.len();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "shaping (decode + merge + CSV): {} rows in {secs:.3} s = {:.0} rows/s, {bytes} bytes",
        shaper.rows,
        shaper.rows as f64 / secs
    );
}

fn main() {
    rows_per_s("csv", &mut CsvWriter);
    rows_per_s("json", &mut JsonWriter::default());
    shaping();
}
