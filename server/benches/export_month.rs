//! A month of 1-minute history for 100 series, exported through the real HTTP stack with the
//! server's peak memory measured (`cargo bench -p streamboard --bench export_month`;
//! harness = false). Issue #8: "a 30-day export at 1 min resolution for 100 series streams
//! with bounded server memory".
//!
//! 1. Seeds a real SQLite file (a temp dir) with `SERIES` × `DAYS` × 1,440 rows at the 1-min
//!    tier through the storage layer (one transaction per series); every `HIST_EVERY`-th bucket
//!    carries a V2-deflate histogram (60 by default: hourly, which keeps seeding to a minute or
//!    two; set 1 for a histogram in every bucket).
//! 2. Serves `router(state)` on 127.0.0.1:0 with 1-min retention set to `DAYS + 1` days (the
//!    default, 14 d, would refuse the range with 422).
//! 3. For CSV and JSON: resets the process's peak RSS (`5 > /proc/self/clear_refs`), GETs
//!    the export over HTTP/1.0 (close-delimited body, no chunk framing) with a fixed 64 KiB
//!    read buffer, counts bytes and lines, samples VmRSS every 4 MiB, then reads VmHWM.
//!
//! Server and client share the process; the client holds one 64 KiB buffer, so the peak is
//! the server's (SQLite page cache, the export's page and channel, hyper's buffers).

use hdrhistogram::Histogram;
use serde_json::json;
use std::{net::SocketAddr, sync::Arc, time::Instant};
use streamboard::{
    clock::now_ms,
    config::ServeConfig,
    engine::ShellConfig,
    http::{AppState, router},
    metric::{MetricDefinition, Stats},
    storage::Database,
    telemetry::ProcessMetrics,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

fn env_or(name: &str, default: i64) -> i64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn status_kib(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .expect("procfs")
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("field present")
}

fn reset_peak_rss() {
    std::fs::write("/proc/self/clear_refs", "5").expect("clear_refs (Linux >= 4.0)");
}

#[tokio::main]
async fn main() {
    let (series_n, days, hist_every) = (
        env_or("SERIES", 100),
        env_or("DAYS", 30),
        env_or("HIST_EVERY", 60),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let database = Database::open(dir.path()).await.expect("database");
    let definition: MetricDefinition = serde_json::from_value(json!({
        "name": "month_latency", "stream": "bench", "value": "/v",
        "dimensions": ["/region"], "unit": "ms",
    }))
    .expect("definition");
    let id = database
        .insert_definition(&definition, now_ms())
        .await
        .expect("insert definition");

    let minutes = days * 1_440;
    let last_s = now_ms() / 1000 / 60 * 60;
    let first_s = last_s - minutes * 60;
    let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000, 2).expect("bounds");
    for v in [3, 40, 97, 480, 1_983, 4_095] {
        h.record(v).expect("in range");
    }
    let stats = Stats {
        count: 6,
        sum: 6_698.0,
        min: 3.0,
        max: 4_095.0,
    };
    let seeding = Instant::now();
    for s in 0..series_n {
        let series = format!("[\"region-{s:03}\"]");
        let rows: Vec<_> = (0..minutes)
            .map(|m| {
                let hist = (m % hist_every == 0).then_some(&h);
                (series.clone(), first_s + m * 60, stats, hist)
            })
            .collect();
        database
            .insert_tier_buckets(id, 60, &rows)
            .await
            .expect("seed");
    }
    let db_bytes: u64 = std::fs::read_dir(dir.path())
        .expect("data dir")
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!(
        "seeded {} rows ({series_n} series x {days} d x 1,440 min, a histogram every {hist_every} buckets) \
         in {:.1} s; database {:.0} MB",
        series_n * minutes,
        seeding.elapsed().as_secs_f64(),
        db_bytes as f64 / 1e6
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("address");
    let mut retention = ShellConfig::default().retention;
    retention[1] = std::time::Duration::from_secs((days as u64 + 1) * 86_400);
    let state = AppState::new(
        Arc::new(ServeConfig::for_data_dir(dir.path()).server),
        addr,
        database.clone(),
        Arc::new(ProcessMetrics::new(Instant::now())),
        CancellationToken::new(),
        TaskTracker::new(),
    )
    .with_retention(retention);
    tokio::spawn(async move { axum::serve(listener, router(state)).await });

    for format in ["csv", "json"] {
        let path = format!(
            "/api/v1/export?metrics=month_latency&from={}&to={}&resolution=1m&format={format}",
            first_s * 1000,
            (last_s + 60) * 1000
        );
        reset_peak_rss();
        let rss_before = status_kib("VmRSS:");
        let started = Instant::now();
        let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
        socket
            .write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await
            .expect("request");
        let mut buffer = vec![0u8; 64 * 1024];
        let (mut head, mut body_bytes, mut lines, mut rss_max) =
            (Vec::new(), 0u64, 0u64, rss_before);
        let mut in_body = false;
        let mut next_sample = 4u64 << 20;
        loop {
            let n = socket.read(&mut buffer).await.expect("read");
            if n == 0 {
                break;
            }
            let mut chunk = &buffer[..n];
            if !in_body {
                head.extend_from_slice(chunk);
                let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                in_body = true;
                let body_start = end + 4 - (head.len() - n);
                chunk = &buffer[body_start..n];
                head.truncate(end);
            }
            body_bytes += chunk.len() as u64;
            lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
            if body_bytes >= next_sample {
                rss_max = rss_max.max(status_kib("VmRSS:"));
                next_sample += 4 << 20;
            }
        }
        let secs = started.elapsed().as_secs_f64();
        let head = String::from_utf8_lossy(&head);
        assert!(
            head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
            "{head}"
        );
        let rows: u64 = head
            .lines()
            .find_map(|l| l.strip_prefix("x-export-rows: "))
            .and_then(|v| v.parse().ok())
            .expect("x-export-rows header");
        // CSV: a header line and one line per row; JSON: `[`, one line per row, `]`.
        let expected_lines = if format == "csv" { rows + 1 } else { rows + 2 };
        assert_eq!(lines, expected_lines, "{format}: every row arrived");
        println!(
            "{format}: {rows} rows, {:.1} MB in {secs:.1} s = {:.0} rows/s over HTTP; server RSS \
             before {} MiB, max sampled {} MiB, peak (VmHWM) {} MiB",
            body_bytes as f64 / 1e6,
            rows as f64 / secs,
            rss_before / 1024,
            rss_max / 1024,
            status_kib("VmHWM:") / 1024,
        );
    }
}
