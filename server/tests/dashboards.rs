//! Dashboards on the real server (loopback port 0, real SQLite file): create, list, get,
//! update and delete through `/api/v1/dashboards`; export → import gives the same document as
//! a new dashboard; bad documents and imports are refused with a 422 naming the field as a
//! path; the query API's label patterns and heatmap that dashboard panels read.

mod support;

use bytes::Bytes;
use serde_json::{Value, json};
use streamboard::{
    Server,
    config::ServeConfig,
    kinesis::{ConsumedRecord, SequenceNumber},
    metric::MetricDefinition,
};
use support::ingest;
use tokio_util::sync::CancellationToken;

const STREAM: &str = "dashboards-test-orders";

async fn http(server: &Server, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    support::http_json(server.local_addr(), method, path, body).await
}

async fn start(dir: &std::path::Path) -> Server {
    let mut config = ServeConfig::for_data_dir(dir);
    config.metrics = vec![
        serde_json::from_value::<MetricDefinition>(json!({
            "name": "latency", "stream": STREAM, "value": "/latency_ms",
            "dimensions": ["/region", "/path"], "unit": "ms",
        }))
        .unwrap(),
    ];
    Server::start(config, CancellationToken::new())
        .await
        .unwrap()
}

fn document() -> Value {
    json!({
        "version": 1,
        "name": "Checkout",
        "description": "Latency by region",
        "range": "6h",
        "refresh": "30s",
        "variables": [{"name": "region", "default": "eu"}],
        "panels": [
            {"title": "Latency", "kind": "timeseries", "x": 0, "y": 0, "w": 8, "h": 4,
             "queries": [{"metric": "latency", "statistics": ["p50", "p99"], "top": 3}]},
            {"title": "Rate", "kind": "stat", "x": 8, "y": 0, "w": 4, "h": 2,
             "queries": [{"metric": "latency", "statistics": ["rate"]}], "thresholds": [10.0, 20.0]},
            {"title": "Series", "kind": "table", "x": 0, "y": 4, "w": 6, "h": 4,
             "queries": [{"metric": "latency", "top": 5}]},
            {"title": "Values", "kind": "heatmap", "x": 6, "y": 4, "w": 6, "h": 4,
             "queries": [{"metric": "latency"}], "unit": "ms"}
        ]
    })
}

fn assert_refused(answer: &(u16, Value), field: &str, message: &str) {
    let (status, body) = answer;
    assert_eq!(*status, 422, "{body}");
    assert_eq!(body["error"]["field"], field, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains(message),
        "{body}"
    );
}

#[tokio::test]
async fn dashboards_are_stored_exported_and_imported() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;

    // Create, list, get.
    let (status, list) = http(&server, "GET", "/api/v1/dashboards", None).await;
    assert_eq!((status, list), (200, json!({"dashboards": []})));
    let (status, created) = http(&server, "POST", "/api/v1/dashboards", Some(document())).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().unwrap();
    let (status, got) = http(&server, "GET", &format!("/api/v1/dashboards/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(got["dashboard"], document());
    let (_, list) = http(&server, "GET", "/api/v1/dashboards", None).await;
    assert_eq!(list["dashboards"][0]["name"], "Checkout");
    assert_eq!(list["dashboards"][0]["panels"], 4);

    // Update: a panel moved and the name changed.
    let mut changed = document();
    changed["name"] = json!("Checkout (EU)");
    changed["panels"][1]["y"] = json!(2);
    let (status, updated) = http(
        &server,
        "PUT",
        &format!("/api/v1/dashboards/{id}"),
        Some(changed.clone()),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["dashboard"], changed);
    assert!(updated["updated_ms"].as_i64() >= updated["created_ms"].as_i64());

    // Export, then import: a new dashboard with the same document.
    let (status, file) = support::http_text(
        server.local_addr(),
        "GET",
        &format!("/api/v1/dashboards/{id}/export"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let exported: Value = serde_json::from_str(&file).unwrap();
    assert_eq!(exported, changed);
    let (status, imported) = http(
        &server,
        "POST",
        "/api/v1/dashboards/import",
        Some(exported.clone()),
    )
    .await;
    assert_eq!(status, 201, "{imported}");
    let new_id = imported["id"].as_i64().unwrap();
    assert_ne!(new_id, id);
    let (_, again) = support::http_text(
        server.local_addr(),
        "GET",
        &format!("/api/v1/dashboards/{new_id}/export"),
        None,
    )
    .await;
    assert_eq!(again, file, "the round trip gives the same document");

    // Bad documents: refused at the field, nothing stored.
    let mut pie = document();
    pie["panels"][2]["kind"] = json!("pie");
    assert_refused(
        &http(&server, "POST", "/api/v1/dashboards/import", Some(pie)).await,
        "panels[2].kind",
        "unknown panel kind \"pie\"",
    );
    let mut unknown = document();
    unknown["panels"][0]["queries"][0]["metric"] = json!("nope");
    assert_refused(
        &http(&server, "POST", "/api/v1/dashboards/import", Some(unknown)).await,
        "panels[0].queries[0].metric",
        "no metric named \"nope\"",
    );
    let mut wide = document();
    wide["panels"][1]["w"] = json!(6);
    assert_refused(
        &http(&server, "POST", "/api/v1/dashboards", Some(wide)).await,
        "panels[1].x",
        "passes the grid",
    );
    let mut version = document();
    version["version"] = json!(7);
    assert_refused(
        &http(&server, "POST", "/api/v1/dashboards/import", Some(version)).await,
        "version",
        "unsupported version 7",
    );
    let mut stat = document();
    stat["panels"][3]["queries"][0]["statistics"] = json!(["p99"]);
    assert_refused(
        &http(
            &server,
            "PUT",
            &format!("/api/v1/dashboards/{id}"),
            Some(stat),
        )
        .await,
        "panels[3].queries[0].statistics",
        "values themselves",
    );
    assert_refused(
        &http(
            &server,
            "POST",
            "/api/v1/dashboards/import",
            Some(json!("a text")),
        )
        .await,
        "body",
        "a JSON object",
    );
    assert_refused(
        &http(
            &server,
            "POST",
            "/api/v1/dashboards",
            Some(json!({"panels": []})),
        )
        .await,
        "name",
        "missing field `name`",
    );
    let (_, list) = http(&server, "GET", "/api/v1/dashboards", None).await;
    assert_eq!(list["dashboards"].as_array().unwrap().len(), 2);
    let (_, kept) = http(&server, "GET", &format!("/api/v1/dashboards/{id}"), None).await;
    assert_eq!(
        kept["dashboard"], changed,
        "a refused update changes nothing"
    );

    // Delete; unknown ids are 404.
    let (status, _) = http(&server, "DELETE", &format!("/api/v1/dashboards/{id}"), None).await;
    assert_eq!(status, 204);
    for (method, body) in [("GET", None), ("PUT", Some(document())), ("DELETE", None)] {
        let (status, _) = http(&server, method, &format!("/api/v1/dashboards/{id}"), body).await;
        assert_eq!(status, 404, "{method}");
    }
    let (status, _) = http(
        &server,
        "GET",
        &format!("/api/v1/dashboards/{id}/export"),
        None,
    )
    .await;
    assert_eq!(status, 404);

    // The dashboards outlive a restart.
    server.shutdown();
    server.wait().await.unwrap();
    let server = start(dir.path()).await;
    let (_, list) = http(&server, "GET", "/api/v1/dashboards", None).await;
    assert_eq!(list["dashboards"][0]["id"], new_id);
    server.shutdown();
    server.wait().await.unwrap();
}

fn record(region: &str, path: &str, latency_ms: u64, arrival_ms: i64) -> ConsumedRecord {
    ConsumedRecord {
        sequence_number: SequenceNumber::parse("1").unwrap(),
        sub_sequence: None,
        partition_key: "k".into(),
        data: Bytes::from(format!(
            r#"{{"region":"{region}","path":"{path}","latency_ms":{latency_ms}}}"#
        )),
        arrival_time_ms: arrival_ms,
        explicit_hash_key: None,
    }
}

#[tokio::test]
async fn panel_queries_filter_by_label_and_read_heatmaps() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path()).await;
    let now = streamboard::clock::now_ms();
    let mut records = Vec::new();
    for (region, path, latency, n) in [
        ("eu", "/a", 10, 4),
        ("eu", "/b", 20, 6),
        ("us", "/a", 500, 5),
    ] {
        records.extend((0..n).map(|_| record(region, path, latency, now)));
    }
    ingest(&server, STREAM, records).await;
    let range = format!("&from={}&to={}&tier=1s", now - 60_000, now + 1_000);
    let count = |q: &Value| q["summary"]["count"].as_u64().unwrap();

    // `null` matches any value: every eu series merged.
    let (status, eu) = http(
        &server,
        "GET",
        &format!("/api/v1/query?metric=latency&series=%5B%22eu%22%2Cnull%5D{range}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{eu}");
    assert_eq!(count(&eu), 10);
    assert_eq!(eu["summary"]["max"], 20.0);
    let (_, any_a) = http(
        &server,
        "GET",
        &format!("/api/v1/query?metric=latency&series=%5Bnull%2C%22%2Fa%22%5D{range}"),
        None,
    )
    .await;
    assert_eq!(count(&any_a), 9);
    // Every entry fixed: one series; all null: all merged.
    let (_, one) = http(
        &server,
        "GET",
        &format!("/api/v1/query?metric=latency&series=%5B%22us%22%2C%22%2Fa%22%5D{range}"),
        None,
    )
    .await;
    assert_eq!(count(&one), 5);
    let (_, all) = http(
        &server,
        "GET",
        &format!("/api/v1/query?metric=latency&series=%5Bnull%2Cnull%5D{range}"),
        None,
    )
    .await;
    assert_eq!(count(&all), 15);

    // The heatmap: columns over the range, counts per distribution bin adding up.
    let (status, map) = http(
        &server,
        "GET",
        &format!("/api/v1/query?metric=latency&bins=10&columns=6{range}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{map}");
    let columns = map["heatmap"]["columns"].as_array().unwrap();
    assert!(!columns.is_empty() && columns.len() <= 6, "{map}");
    let bins = map["distribution"].as_array().unwrap().len();
    let mut total = 0;
    for column in columns {
        let counts = column["counts"].as_array().unwrap();
        assert_eq!(counts.len(), bins);
        total += counts.iter().map(|c| c.as_u64().unwrap()).sum::<u64>();
    }
    assert_eq!(total, 15);
    let (status, body) = http(
        &server,
        "GET",
        &format!("/api/v1/query?metric=latency&columns=6{range}"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("columns"))
    );
    let (status, body) = http(
        &server,
        "GET",
        &format!("/api/v1/query?metric=latency&series=%5B1%5D{range}"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("series"))
    );
    server.shutdown();
    server.wait().await.unwrap();
}
