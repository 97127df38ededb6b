//! The metrics API on the real server (loopback port 0, real SQLite file): definitions from the
//! config file and through `/api/v1/metrics`, validation errors as 422 naming the field,
//! batches fed into the running engine, queries and field discovery over HTTP.

mod support;

use support::ingest;

use bytes::Bytes;
use serde_json::{Value, json};
use std::time::Duration;
use streamboard::{
    Server, config::ServeConfig, kinesis::ConsumedRecord, kinesis::SequenceNumber,
    metric::MetricDefinition,
};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(10);

/// A JSON request to the server (see `support::http_json`).
async fn http(server: &Server, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    support::http_json(server.local_addr(), method, path, body).await
}

fn record(data: &str, arrival_ms: i64) -> ConsumedRecord {
    ConsumedRecord {
        sequence_number: SequenceNumber::parse("1").unwrap(),
        sub_sequence: None,
        partition_key: "k".into(),
        data: Bytes::from(data.to_string()),
        arrival_time_ms: arrival_ms,
        explicit_hash_key: None,
    }
}

#[tokio::test]
async fn definitions_queries_and_fields_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let stream = "api-test-orders";
    let mut config = ServeConfig::for_data_dir(dir.path());
    config.metrics = vec![
        serde_json::from_value::<MetricDefinition>(json!({
            "name": "order_value", "stream": stream, "value": "/amount",
            "dimensions": ["/country"], "unit": "count",
        }))
        .unwrap(),
    ];
    let server = Server::start(config, CancellationToken::new())
        .await
        .unwrap();

    // Validation: 422 naming the field.
    let (status, body) = http(
        &server,
        "POST",
        "/api/v1/metrics",
        Some(json!({"name": "bad", "stream": stream, "filter": "/amount >"})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["field"], "filter");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("position 9"),
        "{body}"
    );
    let (status, body) = http(
        &server,
        "POST",
        "/api/v1/metrics",
        Some(json!({"name": "order_value", "stream": stream})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("name"))
    );
    let (status, body) = http(&server, "POST", "/api/v1/metrics", Some(json!({"name": 3}))).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("body"))
    );

    // Create, then records flow in.
    let (status, created) = http(
        &server,
        "POST",
        "/api/v1/metrics",
        Some(json!({"name": "big_orders", "stream": stream, "filter": "/amount >= 100"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let now = streamboard::clock::now_ms();
    let records = (0..50)
        .map(|i| {
            record(
                &format!(
                    r#"{{"country":"{}","amount":{}}}"#,
                    if i % 2 == 0 { "fr" } else { "de" },
                    i * 5
                ),
                now,
            )
        })
        .collect();
    ingest(&server, stream, records).await;

    let (status, list) = http(&server, "GET", "/api/v1/metrics", None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"order_value") && names.contains(&"big_orders"),
        "{names:?}"
    );
    let records_metric = format!("builtin:{stream}:records");
    assert!(names.contains(&records_metric.as_str()), "{names:?}");
    assert!(
        list["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["builtin"] == true)
    );

    let (status, q) = http(
        &server,
        "GET",
        "/api/v1/query?metric=order_value&tier=1m",
        None,
    )
    .await;
    assert_eq!(status, 200, "{q}");
    assert_eq!(q["summary"]["count"], 50);
    assert_eq!(
        q["summary"]["sum"],
        (0..50).map(|i| i * 5).sum::<i64>() as f64
    );
    let (_, q) = http(
        &server,
        "GET",
        "/api/v1/query?metric=order_value&series=%5B%22fr%22%5D",
        None,
    )
    .await;
    assert_eq!(q["summary"]["count"], 25);
    let (_, q) = http(&server, "GET", "/api/v1/query?metric=big_orders", None).await;
    assert_eq!(q["summary"]["count"], 30);
    let (status, body) = http(
        &server,
        "GET",
        "/api/v1/query?metric=order_value&tier=2m",
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("tier"))
    );
    let (status, _) = http(&server, "GET", "/api/v1/query?metric=nope", None).await;
    assert_eq!(status, 404);
    let (_, series) = http(&server, "GET", "/api/v1/metrics/order_value/series", None).await;
    assert_eq!(series["series"].as_array().unwrap().len(), 2);

    // Update makes a new version (new id); history of the old one stays.
    let (status, updated) = http(
        &server,
        "PUT",
        "/api/v1/metrics/big_orders",
        Some(json!({"name": "big_orders", "stream": stream, "filter": "/amount >= 200"})),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_ne!(updated["id"], created["id"]);
    let (status, _) = http(&server, "DELETE", "/api/v1/metrics/big_orders", None).await;
    assert_eq!(status, 204);
    let (status, _) = http(&server, "GET", "/api/v1/metrics/big_orders", None).await;
    assert_eq!(status, 404);
    let (status, body) = http(
        &server,
        "DELETE",
        &format!("/api/v1/metrics/{records_metric}"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("name"))
    );

    // Field discovery from the engine's sample.
    let (status, fields) = http(
        &server,
        "GET",
        &format!("/api/v1/streams/{stream}/fields"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{fields}");
    let fields = fields["fields"].as_array().unwrap();
    assert!(
        fields
            .iter()
            .any(|f| f["path"] == "/amount" && f["kind"] == "number")
    );
    assert!(fields.iter().any(|f| f["path"] == "/country"
        && f["kind"] == "string"
        && f["values"].as_array().unwrap().len() == 2));
    let (status, _) = http(&server, "GET", "/api/v1/streams/never-seen/fields", None).await;
    assert_eq!(status, 404);

    server.shutdown();
    tokio::time::timeout(WAIT, server.wait())
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn preview_runs_a_draft_over_recent_records_and_query_returns_a_distribution() {
    let dir = tempfile::tempdir().unwrap();
    let stream = "api-test-preview";
    let mut config = ServeConfig::for_data_dir(dir.path());
    config.metrics = vec![
        serde_json::from_value::<MetricDefinition>(json!({
            "name": "amounts", "stream": stream, "value": "/amount",
        }))
        .unwrap(),
    ];
    let server = Server::start(config, CancellationToken::new())
        .await
        .unwrap();
    let draft = json!({"name": "draft", "stream": stream, "value": "/amount",
        "filter": "/amount >= 10", "dimensions": ["/country"]});

    // Nothing read from the stream yet: the preview says so on the stream field.
    let (status, body) = http(
        &server,
        "POST",
        "/api/v1/metrics/preview",
        Some(draft.clone()),
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("stream")),
        "{body}"
    );

    let now = streamboard::clock::now_ms();
    let mut records: Vec<ConsumedRecord> = (0..20)
        .map(|i| {
            record(
                &format!(r#"{{"country":"c{}","amount":{}}}"#, i % 2, i),
                now + i,
            )
        })
        .collect();
    records.push(record(r#"{"country":"fr"}"#, now + 20));
    records.push(record("not json", now + 21));
    ingest(&server, stream, records).await;

    let (status, preview) = http(&server, "POST", "/api/v1/metrics/preview", Some(draft)).await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["stream"], stream);
    assert_eq!(preview["extracted"], 10, "{preview}");
    // A missing field fails the filter (skipped); the text record is an error.
    assert_eq!(preview["skipped"], 11);
    assert_eq!(preview["errors"], 1);
    let rows = preview["records"].as_array().unwrap();
    // Newest first.
    assert_eq!(rows[0]["error"], "invalid_json");
    assert_eq!(rows[1]["skipped"], true);
    assert_eq!(rows[2]["value"], 19.0);
    assert_eq!(rows[2]["labels"], json!(["c1"]));
    assert_eq!(rows[2]["event_ms"], now + 19);
    assert_eq!(rows[2]["arrival_ms"], now + 19);
    assert_eq!(rows.last().unwrap()["skipped"], true);
    // Nothing was stored or installed.
    let (status, _) = http(&server, "GET", "/api/v1/metrics/draft", None).await;
    assert_eq!(status, 404);

    // The same validation as a create: a bad path names its field, a taken name is refused
    // unless the draft replaces that metric.
    let (status, body) = http(
        &server,
        "POST",
        "/api/v1/metrics/preview",
        Some(json!({"name": "draft", "stream": stream, "value": "amount"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("value"))
    );
    let taken = json!({"name": "amounts", "stream": stream, "value": "/amount"});
    let (status, body) = http(
        &server,
        "POST",
        "/api/v1/metrics/preview",
        Some(taken.clone()),
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("name"))
    );
    let (status, body) = http(
        &server,
        "POST",
        "/api/v1/metrics/preview?replaces=amounts",
        Some(taken),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["extracted"], 20);

    // The stored values' distribution: 20 values 0..19 in bins that add up.
    let (status, q) = http(&server, "GET", "/api/v1/query?metric=amounts&bins=5", None).await;
    assert_eq!(status, 200, "{q}");
    let bins = q["distribution"].as_array().unwrap();
    assert!(!bins.is_empty() && bins.len() <= 5, "{q}");
    assert_eq!(
        bins.iter()
            .map(|b| b["count"].as_u64().unwrap())
            .sum::<u64>(),
        20
    );
    let (status, body) = http(&server, "GET", "/api/v1/query?metric=amounts&bins=0", None).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("bins"))
    );
    let (_, q) = http(&server, "GET", "/api/v1/query?metric=amounts", None).await;
    assert!(q.get("distribution").is_none(), "{q}");

    server.shutdown();
    tokio::time::timeout(WAIT, server.wait())
        .await
        .unwrap()
        .unwrap();
}
