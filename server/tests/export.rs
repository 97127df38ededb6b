//! `/api/v1/export` over the real router and a real SQLite file: exported numbers equal the
//! query API's, `total` rows equal the merge of the range's histograms, CSV parses (RFC 4180
//! reader below) with exactly the documented columns, bad requests get 4xx naming the
//! parameter, and a multi-hundred-thousand-row export streams in many chunks with bounded
//! memory (peak RSS of this process measured from /proc/self/status).

use axum::{
    Router,
    body::Body,
    http::{Request, StatusCode},
};
use hdrhistogram::Histogram;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::{net::SocketAddr, sync::Arc, time::Instant};
use streamboard::{
    clock::now_ms,
    config::ServeConfig,
    http::{AppState, router},
    metric::{MetricDefinition, Stats},
    query::{QueryRequest, query},
    storage::Database,
    telemetry::ProcessMetrics,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower::ServiceExt;

const COLUMNS: &str =
    "metric,series,bucket_start,resolution_s,count,sum,min,max,mean,p50,p90,p99,p999,unit";

/// A real SQLite file in a temp dir (kept alive by the returned guard) and the real router.
async fn setup() -> (tempfile::TempDir, Database, Router) {
    let dir = tempfile::tempdir().unwrap();
    let database = Database::open(dir.path()).await.unwrap();
    let config = Arc::new(ServeConfig::for_data_dir(dir.path()).server);
    let state = AppState::new(
        config,
        SocketAddr::from(([127, 0, 0, 1], 0)),
        database.clone(),
        Arc::new(ProcessMetrics::new(Instant::now())),
        CancellationToken::new(),
        TaskTracker::new(),
    );
    (dir, database, router(state))
}

async fn define(database: &Database, name: &str, stream: &str) -> i64 {
    let def: MetricDefinition = serde_json::from_value(json!({
        "name": name, "stream": stream, "value": "/v", "dimensions": ["/region"], "unit": "ms",
    }))
    .unwrap();
    database.insert_definition(&def, now_ms()).await.unwrap()
}

fn hist_of(values: &[u64]) -> (Stats, Histogram<u64>) {
    let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000, 2).unwrap();
    let mut stats = Stats::EMPTY;
    for v in values {
        h.record(*v).unwrap();
        stats.merge(&Stats {
            count: 1,
            sum: *v as f64,
            min: *v as f64,
            max: *v as f64,
        });
    }
    (stats, h)
}

/// A small RFC 4180 reader: quoted fields, `""` escapes, CRLF records.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                _ => field.push(c),
            }
        } else {
            match c {
                '"' => quoted = true,
                ',' => record.push(std::mem::take(&mut field)),
                '\r' => {
                    assert_eq!(chars.next(), Some('\n'), "CR without LF");
                    record.push(std::mem::take(&mut field));
                    records.push(std::mem::take(&mut record));
                }
                '\n' => panic!("bare LF line end"),
                _ => field.push(c),
            }
        }
    }
    assert!(
        !quoted && field.is_empty() && record.is_empty(),
        "unterminated record"
    );
    records
}

async fn get(app: &Router, uri: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>, usize) {
    let response = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let mut body = response.into_body();
    let (mut bytes, mut frames) = (Vec::new(), 0);
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            frames += 1;
            bytes.extend_from_slice(&data);
        }
    }
    (status, headers, bytes, frames)
}

fn opt_num(text: &str) -> Option<f64> {
    (!text.is_empty()).then(|| text.parse().unwrap())
}

#[tokio::test]
async fn csv_and_json_equal_the_query_api_and_totals_merge_histograms() {
    let (_dir, database, app) = setup().await;
    let metric = "export_latency_a";
    let id = define(&database, metric, "export-test-a").await;
    let now_s = now_ms() / 1000;
    let first = (now_s - 3 * 3600) / 60 * 60;
    let regions = ["eu", "us", "ap,\"x\""];
    let mut rows = Vec::new();
    let mut merged: Vec<Histogram<u64>> = Vec::new();
    for (r, region) in regions.iter().enumerate() {
        let series = serde_json::to_string(&[region]).unwrap();
        let mut all = Histogram::<u64>::new_with_bounds(1, 3_600_000, 2).unwrap();
        for m in 0..90_i64 {
            let values: Vec<u64> = (0..(5 + m as u64 % 7))
                .map(|i| 1 + (i * 37 + m as u64 * 11 + r as u64 * 101) % 5000)
                .collect();
            let (stats, h) = hist_of(&values);
            all.add(&h).unwrap();
            rows.push((series.clone(), first + m * 60, stats, h));
        }
        merged.push(all);
    }
    let borrowed: Vec<_> = rows
        .iter()
        .map(|(s, t, st, h)| (s.clone(), *t, *st, Some(h)))
        .collect();
    database
        .insert_tier_buckets(id, 60, &borrowed)
        .await
        .unwrap();

    let from_ms = first * 1000;
    let to_ms = (first + 90 * 60) * 1000;
    let (status, headers, body, _) = get(
        &app,
        &format!(
            "/api/v1/export?metrics={metric}&from={from_ms}&to={to_ms}&resolution=1m&format=csv"
        ),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"streamboard-export_latency_a-"),
        "{disposition}"
    );
    assert!(disposition.ends_with("-1m.csv\""), "{disposition}");
    let records = parse_csv(std::str::from_utf8(&body).unwrap());
    assert_eq!(records[0].join(","), COLUMNS);
    assert!(records.iter().all(|r| r.len() == 14));
    assert_eq!(records.len(), 1 + 3 * 91);

    for (r, region) in regions.iter().enumerate() {
        let series = serde_json::to_string(&[region]).unwrap();
        let answer = query(
            &database,
            &QueryRequest {
                metric: metric.into(),
                series: Some(vec![region.to_string()]),
                from_ms,
                to_ms,
                tier_s: Some(60),
            },
        )
        .await
        .unwrap();
        let mine: Vec<&Vec<String>> = records[1..].iter().filter(|rec| rec[1] == series).collect();
        assert_eq!(mine.len(), 91);
        for (point, rec) in answer.points.iter().zip(&mine) {
            let start = time::OffsetDateTime::parse(
                &rec[2],
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap();
            assert_eq!(start.unix_timestamp() * 1000, point.start_ms);
            assert_eq!(rec[3], "60");
            assert_eq!(rec[4].parse::<u64>().unwrap(), point.summary.count);
            assert_eq!(rec[5].parse::<f64>().unwrap(), point.summary.sum);
            assert_eq!(opt_num(&rec[6]), point.summary.min);
            assert_eq!(opt_num(&rec[7]), point.summary.max);
            assert_eq!(opt_num(&rec[8]), point.summary.mean);
            assert_eq!(opt_num(&rec[9]), point.summary.p50.map(|v| v as f64));
            assert_eq!(opt_num(&rec[12]), point.summary.p999.map(|v| v as f64));
            assert_eq!(rec[13], "ms");
        }
        let total = mine[90];
        assert_eq!(total[2], "total");
        assert_eq!(
            total[4].parse::<u64>().unwrap(),
            answer.summary.summary.count
        );
        assert_eq!(opt_num(&total[8]), answer.summary.summary.mean);
        let h = &merged[r];
        for (col, q) in [(9, 0.5), (10, 0.9), (11, 0.99), (12, 0.999)] {
            assert_eq!(
                total[col].parse::<u64>().unwrap(),
                h.value_at_quantile(q),
                "q{q}"
            );
        }
        assert_eq!(
            opt_num(&total[9]),
            answer.summary.summary.p50.map(|v| v as f64)
        );
    }

    // JSON: same rows, same numbers.
    let (status, _, body, _) = get(
        &app,
        &format!(
            "/api/v1/export?metrics={metric}&from={from_ms}&to={to_ms}&resolution=1m&format=json"
        ),
    )
    .await;
    assert_eq!(status, 200);
    let json: Vec<Value> = serde_json::from_slice(&body).unwrap();
    assert_eq!(json.len(), records.len() - 1);
    let keys: Vec<&String> = json[0].as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 14);
    for (obj, rec) in json.iter().zip(&records[1..]) {
        assert_eq!(
            obj["count"].as_u64().unwrap(),
            rec[4].parse::<u64>().unwrap()
        );
        assert_eq!(obj["bucket_start"].as_str().unwrap(), rec[2]);
        assert_eq!(obj["series"].to_string(), rec[1]);
        assert_eq!(obj["p99"].as_u64(), opt_num(&rec[11]).map(|v| v as u64));
    }

    // HTML: self-contained report.
    let (status, headers, body, _) = get(
        &app,
        &format!(
            "/api/v1/export?metrics={metric}&from={from_ms}&to={to_ms}&resolution=1m&format=html"
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = String::from_utf8(body).unwrap();
    assert!(html.contains("<svg") && html.contains("@media print") && html.contains(metric));
    assert!(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"));
}

#[tokio::test]
async fn bad_requests_get_4xx_saying_what_to_change() {
    let (_dir, database, app) = setup().await;
    let id = define(&database, "export_bad_b", "export-test-b").await;
    let now_s = now_ms() / 1000;
    let rows: Vec<_> = (0..21_000_i64)
        .map(|i| {
            let one = Stats {
                count: 1,
                sum: 1.0,
                min: 1.0,
                max: 1.0,
            };
            ("[\"x\"]".to_string(), now_s - 21_500 + i, one, None)
        })
        .collect();
    database.insert_tier_buckets(id, 1, &rows).await.unwrap();
    let cases = [
        ("metrics=nope", 404, None),
        ("metrics=export_bad_b&from=-1h&to=-2h", 422, Some("to")),
        (
            "metrics=export_bad_b&from=-2d&resolution=1s",
            422,
            Some("from"),
        ),
        (
            "metrics=export_bad_b&from=-6h&resolution=1s&format=html",
            422,
            Some("resolution"),
        ),
        ("metrics=export_bad_b&format=pdf", 422, Some("format")),
    ];
    for (query, expected, field) in cases {
        let (status, _, body, _) = get(&app, &format!("/api/v1/export?{query}")).await;
        assert_eq!(status.as_u16(), expected, "{query}");
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["field"].as_str(), field, "{query}: {body}");
        assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    }
}

#[tokio::test]
async fn the_estimate_counts_exactly_what_the_export_returns() {
    let (_dir, database, app) = setup().await;
    let a = define(&database, "export_estimate_d", "export-test-d").await;
    let b = define(&database, "export_estimate_e", "export-test-e").await;
    let now_s = now_ms() / 1000;
    let first = (now_s - 4 * 3600) / 60 * 60;
    let (stats, h) = hist_of(&[5, 50]);
    // Metric a: 3 series x 40 minutes; metric b: 1 series x 25 minutes, plus 1-s rows that a
    // 1-min export must not count.
    for (id, series_n, minutes) in [(a, 3, 40), (b, 1, 25)] {
        let rows: Vec<_> = (0..series_n)
            .flat_map(|s| (0..minutes).map(move |m| (format!("[\"s{s}\"]"), first + m * 60)))
            .map(|(series, start)| (series, start, stats, Some(&h)))
            .collect();
        database.insert_tier_buckets(id, 60, &rows).await.unwrap();
    }
    let one_s: Vec<_> = (0..30)
        .map(|t| ("[\"s0\"]".to_string(), now_s - 100 + t, stats, None))
        .collect();
    database.insert_tier_buckets(b, 1, &one_s).await.unwrap();

    let range = format!("from={}&to={}", first * 1000, (first + 3 * 3600) * 1000);
    for (metrics, buckets, series) in [
        ("export_estimate_d", 120, 3),
        ("export_estimate_e", 25, 1),
        ("export_estimate_d,export_estimate_e", 145, 4),
        ("all", 145, 4),
    ] {
        let query = format!("metrics={metrics}&{range}&resolution=auto");
        let (status, _, body, _) = get(&app, &format!("/api/v1/export/estimate?{query}")).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let estimate: contract::api::ExportEstimate = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (estimate.buckets, estimate.series, estimate.rows),
            (buckets, series, buckets + series),
            "{metrics}"
        );
        assert_eq!(estimate.resolution_s, 60, "auto for 3 h of range is 1 min");
        assert_eq!(estimate.max_rows, 20_000_000);
        // The export has exactly that many rows, and says so in its header.
        let (status, headers, body, _) = get(&app, &format!("/api/v1/export?{query}")).await;
        assert_eq!(status, 200);
        assert_eq!(headers["x-export-rows"], estimate.rows.to_string().as_str());
        let records = parse_csv(std::str::from_utf8(&body).unwrap());
        assert_eq!(records.len() as i64, 1 + estimate.rows, "{metrics}");
    }

    // Refusals are the export's own, with the same status and field.
    for (query, status, field) in [
        ("metrics=nope", 404, None),
        ("metrics=export_estimate_d&from=-1h&to=-2h", 422, Some("to")),
        ("metrics=export_estimate_d&format=pdf", 422, Some("format")),
    ] {
        let (estimate_status, _, estimate_body, _) =
            get(&app, &format!("/api/v1/export/estimate?{query}")).await;
        let (export_status, _, export_body, _) =
            get(&app, &format!("/api/v1/export?{query}")).await;
        assert_eq!(estimate_status.as_u16(), status, "{query}");
        assert_eq!(export_status.as_u16(), status, "{query}");
        assert_eq!(estimate_body, export_body, "{query}");
        let body: Value = serde_json::from_slice(&estimate_body).unwrap();
        assert_eq!(body["error"]["field"].as_str(), field, "{query}");
    }
}

/// Browsers ask for gzip: the compressed body must end cleanly (the compression layer polls
/// the body again after its last chunk).
#[tokio::test]
async fn a_gzip_export_ends_cleanly() {
    let (_dir, database, app) = setup().await;
    let id = define(&database, "export_gzip_f", "export-test-f").await;
    let now_s = now_ms() / 1000;
    let (stats, _) = hist_of(&[7]);
    let rows: Vec<_> = (0..600)
        .map(|t| ("[\"eu\"]".to_string(), now_s - 900 + t, stats, None))
        .collect();
    database.insert_tier_buckets(id, 1, &rows).await.unwrap();
    let response = app
        .oneshot(
            Request::get("/api/v1/export?metrics=export_gzip_f&from=-1h")
                .header("accept-encoding", "gzip")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body ends cleanly");
    assert!(!body.to_bytes().is_empty());
}

fn rss_kib(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[tokio::test]
async fn a_large_export_streams_in_many_chunks_with_bounded_memory() {
    let (_dir, database, app) = setup().await;
    let id = define(&database, "export_big_c", "export-test-c").await;
    let now_s = now_ms() / 1000;
    let (series_n, seconds) = (100_i64, 3000_i64);
    let first = now_s - 4 * 3600;
    let (stats, h) = hist_of(&[3, 40, 500]);
    for s in 0..series_n {
        let series = format!("[\"s{s:03}\"]");
        let rows: Vec<_> = (0..seconds)
            .map(|t| {
                (
                    series.clone(),
                    first + t,
                    stats,
                    (t % 50 == 0).then_some(&h),
                )
            })
            .collect();
        database.insert_tier_buckets(id, 1, &rows).await.unwrap();
    }
    let uri = format!(
        "/api/v1/export?metrics=export_big_c&from={}&to={}&resolution=1s&format=csv",
        first * 1000,
        (first + seconds) * 1000
    );
    let rss_before = rss_kib("VmRSS:");
    let started = Instant::now();
    let response = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let (mut bytes, mut frames, mut lines, mut rss_max) = (0_usize, 0_usize, 0_usize, rss_before);
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            frames += 1;
            bytes += data.len();
            lines += data.iter().filter(|b| **b == b'\n').count();
            if frames % 16 == 0 {
                rss_max = rss_max.max(rss_kib("VmRSS:"));
            }
        }
    }
    let elapsed = started.elapsed();
    let rows = (series_n * seconds + series_n) as usize;
    assert_eq!(lines, rows + 1);
    let growth_kib = rss_max.saturating_sub(rss_before);
    eprintln!(
        "large export: {rows} rows, {bytes} bytes in {frames} chunks, {elapsed:?}; \
         RSS before {rss_before} KiB, max during {rss_max} KiB (growth {growth_kib} KiB), VmHWM {} KiB",
        rss_kib("VmHWM:")
    );
    assert!(frames >= rows / 2_000, "streamed in {frames} chunks");
    // Whole body is ~25 MB; a buffering server would grow by at least that much.
    assert!(
        (growth_kib as usize) * 1024 < bytes / 2,
        "RSS grew {growth_kib} KiB for a {bytes}-byte body"
    );
}
