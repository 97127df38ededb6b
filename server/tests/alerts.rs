//! Alerts end to end on the server side, with real parts: a Kinesis-compatible peer, the
//! consumer, the engine, a SQLite file, a real webhook receiver on loopback and a second
//! reader of the alert stream.
//!
//! The webhook must get exactly one `firing` and one resolving payload, although the first
//! deliveries are refused and the server is restarted between the transition and the
//! delivery; the alert records land in the output stream exactly once.

mod support;

use axum::{Json, Router, extract::State, http::StatusCode, routing::post};
use serde_json::{Value, json};
use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use streamboard::{
    Server,
    config::{KinesisSource, ServeConfig, StartPosition, StreamRef, StreamSpec},
    kinesis::StreamName,
    metric::MetricDefinition,
    producer::{Producer, ProducerRecord},
    storage::Database,
};
use support::{Peer, create_stream, eventually, http_json, http_text, unique_stream};
use tokio_util::sync::CancellationToken;

/// A webhook receiver: keeps the payloads it accepted; refuses with 503 while `refuse` is set.
#[derive(Clone, Default)]
struct Receiver {
    accepted: Arc<Mutex<Vec<Value>>>,
    refused: Arc<Mutex<usize>>,
    refuse: Arc<AtomicBool>,
}

async fn hook(State(receiver): State<Receiver>, Json(payload): Json<Value>) -> StatusCode {
    if receiver.refuse.load(Ordering::SeqCst) {
        *receiver.refused.lock().unwrap() += 1;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    receiver.accepted.lock().unwrap().push(payload);
    StatusCode::NO_CONTENT
}

async fn start_receiver(receiver: Receiver, shutdown: CancellationToken) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(receiver);
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .unwrap();
    });
    addr
}

/// Puts `count` records with `latency_ms` into the stream.
async fn put(producer: &Producer, latency_ms: u32, count: usize) {
    let records = (0..count)
        .map(|i| ProducerRecord {
            partition_key: format!("k{i}"),
            explicit_hash_key: None,
            data: format!(r#"{{"latency_ms":{latency_ms}}}"#)
                .into_bytes()
                .into(),
        })
        .collect();
    assert_eq!(producer.put(records).await.failed, 0);
}

fn states(accepted: &[Value]) -> Vec<(String, String)> {
    accepted
        .iter()
        .map(|p| {
            (
                p["from"].as_str().unwrap().to_string(),
                p["to"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn outbox_pending(database: &Database) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM alert_outbox WHERE delivered_ms IS NULL AND failed_ms IS NULL",
    )
    .fetch_one(database.pool())
    .await
    .unwrap()
}

/// Attempts recorded on the first webhook notification (the `firing` one).
async fn first_webhook_attempts(database: &Database) -> i64 {
    sqlx::query_scalar(
        "SELECT attempts FROM alert_outbox WHERE target LIKE '%webhook%' ORDER BY id LIMIT 1",
    )
    .fetch_one(database.pool())
    .await
    .unwrap()
}

async fn transitions(database: &Database) -> Vec<(String, String)> {
    sqlx::query_as("SELECT from_state, to_state FROM alert_transition ORDER BY id")
        .fetch_all(database.pool())
        .await
        .unwrap()
}

/// Every record of a one-shard stream from its start, as JSON (a plain second reader).
async fn read_all(client: &aws_sdk_kinesis::Client, stream: &str) -> Vec<Value> {
    let shards = client
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .unwrap();
    let shard = shards.shards()[0].shard_id().to_string();
    let mut iterator = client
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard)
        .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
        .send()
        .await
        .unwrap()
        .shard_iterator
        .unwrap();
    let mut out = Vec::new();
    loop {
        let page = client
            .get_records()
            .shard_iterator(&iterator)
            .send()
            .await
            .unwrap();
        for record in page.records() {
            out.push(serde_json::from_slice(record.data().as_ref()).unwrap());
        }
        if page.millis_behind_latest() == Some(0) && page.records().is_empty() {
            return out;
        }
        iterator = page.next_shard_iterator().unwrap().to_string();
    }
}

#[tokio::test]
async fn a_rule_fires_and_resolves_once_across_refusals_and_a_restart() {
    let peer = Peer::start().await;
    let client = peer.client().await;
    let source = unique_stream("alert-src");
    let output = unique_stream("alert-out");
    for stream in [&source, &output] {
        create_stream(&client, stream, 1).await;
    }
    let producer = Producer::new(client.clone(), StreamName::from(source.as_str()));

    let receiver = Receiver::default();
    receiver.refuse.store(true, Ordering::SeqCst);
    let hooks_stop = CancellationToken::new();
    let hook_addr = start_receiver(receiver.clone(), hooks_stop.clone()).await;

    let dir = tempfile::tempdir().unwrap();
    let mut config = ServeConfig::for_data_dir(dir.path());
    config.consumer.streams = vec![StreamSpec {
        name_or_arn: StreamRef::Name(StreamName::from(source.as_str())),
        start: StartPosition::TrimHorizon,
    }];
    config.source = KinesisSource::External(peer.target());
    config.consumer.idle_poll_interval = Duration::from_millis(50);
    config.metrics = vec![
        serde_json::from_value::<MetricDefinition>(json!({
            "name": "latency", "stream": source, "value": "/latency_ms", "unit": "ms",
        }))
        .unwrap(),
    ];
    let server = Server::start(config.clone(), CancellationToken::new())
        .await
        .unwrap();
    let addr = server.local_addr();

    // Refused rules name the field.
    let (status, body) = http_json(
        addr,
        "POST",
        "/api/v1/alerts",
        Some(
            json!({"name": "x", "metric": "nope", "statistic": "max", "window": "3s",
                    "comparison": ">", "threshold": 1}),
        ),
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("metric")),
        "{body}"
    );

    let rule = json!({
        "name": "slow", "metric": "latency", "statistic": "max", "window": "3s",
        "comparison": ">", "threshold": 100, "recovery_threshold": 50,
        "targets": [
            {"type": "webhook", "url": format!("http://{hook_addr}/hook")},
            {"type": "kinesis", "stream": output},
            {"type": "in_app"},
        ],
    });
    let (status, body) = http_json(addr, "POST", "/api/v1/alerts", Some(rule.clone())).await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_i64().unwrap();
    let (status, body) = http_json(addr, "POST", "/api/v1/alerts", Some(rule)).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("name"))
    );

    // High latency: the rule fires; the webhook refuses the first deliveries.
    put(&producer, 500, 20).await;
    let database = Database::open(dir.path()).await.unwrap();
    eventually("the rule fires", || async {
        transitions(&database)
            .await
            .contains(&("ok".into(), "firing".into()))
    })
    .await;
    eventually("a refused webhook delivery", || async {
        *receiver.refused.lock().unwrap() >= 1
    })
    .await;
    assert!(receiver.accepted.lock().unwrap().is_empty());

    // Restart with the notification still in the outbox.
    server.shutdown();
    server.wait().await.unwrap();
    assert!(outbox_pending(&database).await >= 1);
    receiver.refuse.store(false, Ordering::SeqCst);
    let server = Server::start(config.clone(), CancellationToken::new())
        .await
        .unwrap();
    let addr = server.local_addr();
    eventually("the firing notification after the restart", || async {
        !receiver.accepted.lock().unwrap().is_empty()
    })
    .await;

    // The state survived the restart: still firing, no second `firing` transition.
    let (_, body) = http_json(addr, "GET", &format!("/api/v1/alerts/{id}"), None).await;
    assert_eq!(body["name"], "slow");

    // Low latency: once the 3 s window holds only low values, the rule resolves.
    let resolve = async {
        loop {
            put(&producer, 10, 5).await;
            if transitions(&database)
                .await
                .contains(&("firing".into(), "ok".into()))
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await; // the producer's pace
        }
    };
    tokio::time::timeout(Duration::from_secs(30), resolve)
        .await
        .expect("the rule resolves");
    eventually("every notification delivered", || async {
        outbox_pending(&database).await == 0
    })
    .await;

    let accepted = receiver.accepted.lock().unwrap().clone();
    assert_eq!(
        states(&accepted),
        vec![
            ("ok".into(), "firing".into()),
            ("firing".into(), "ok".into())
        ],
        "exactly one firing and one resolved payload: {accepted:#?}"
    );
    let firing = &accepted[0];
    for field in [
        "id",
        "rule_id",
        "rule",
        "instance",
        "from",
        "to",
        "value",
        "threshold",
        "at",
    ] {
        assert!(!firing[field].is_null(), "payload has {field}: {firing}");
    }
    assert_eq!(firing["rule_id"], id);
    assert_eq!(firing["instance"], "all");
    assert_eq!(firing["value"], 500.0);
    assert_eq!(
        transitions(&database).await,
        vec![
            ("ok".into(), "firing".into()),
            ("firing".into(), "ok".into())
        ]
    );
    // Every refusal was recorded as an attempt, then one delivery succeeded.
    let refused = *receiver.refused.lock().unwrap() as i64;
    assert_eq!(first_webhook_attempts(&database).await, refused + 1);

    // The alert stream has exactly the two records, readable by any Kinesis application.
    let records = read_all(&client, &output).await;
    assert_eq!(states(&records), states(&accepted));
    assert_eq!(records[0]["id"], accepted[0]["id"]);

    // History over the API, filtered by state.
    let (status, body) = http_json(addr, "GET", "/api/v1/alerts/history?state=firing", None).await;
    assert_eq!(status, 200);
    let list = body["transitions"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["notification"], "sent");
    assert_eq!(list[0]["in_app"], true);

    // The printable report lists the alert under its metric.
    let (status, html) = http_text(
        addr,
        "GET",
        "/api/v1/export?metrics=latency&from=-1h&format=html",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(html.contains("Alerts fired"), "{html}");
    assert!(
        html.contains("slow fired (value 500, threshold 100, warning)"),
        "{html}"
    );

    server.shutdown();
    server.wait().await.unwrap();
    hooks_stop.cancel();
}

#[tokio::test]
async fn rules_are_validated_edited_silenced_and_deleted_over_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let stream = "alert-api-orders";
    let mut config = ServeConfig::for_data_dir(dir.path());
    config.metrics = vec![
        serde_json::from_value::<MetricDefinition>(json!({
            "name": "order_value", "stream": stream, "value": "/amount",
        }))
        .unwrap(),
    ];
    let server = Server::start(config, CancellationToken::new())
        .await
        .unwrap();
    let addr = server.local_addr();
    let base = json!({"name": "big orders", "metric": "order_value", "statistic": "p99",
                      "window": "5m", "comparison": ">", "threshold": 1000});
    let with = |patch: Value| {
        let mut rule = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            rule[k] = v.clone();
        }
        rule
    };
    for (patch, field) in [
        (json!({"statistic": "p42"}), "statistic"),
        (json!({"window": "90s"}), "window"),
        (json!({"comparison": "=="}), "comparison"),
        (json!({"recovery_threshold": 2000}), "recovery_threshold"),
        (json!({"for": "-1m"}), "for"),
        (json!({"no_data": "panic"}), "no_data"),
        (
            json!({"targets": [{"type": "webhook", "url": "mailto:x"}]}),
            "targets",
        ),
        (json!({"name": " "}), "name"),
    ] {
        let (status, body) =
            http_json(addr, "POST", "/api/v1/alerts", Some(with(patch.clone()))).await;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (422, Some(field)),
            "{patch}: {body}"
        );
    }
    let (status, body) = http_json(addr, "GET", "/api/v1/alerts", None).await;
    assert_eq!(status, 200);
    assert!(
        body["rules"].as_array().unwrap().is_empty(),
        "nothing stored half-way"
    );

    let (status, body) = http_json(addr, "POST", "/api/v1/alerts", Some(base.clone())).await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_i64().unwrap();
    let path = format!("/api/v1/alerts/{id}");
    let (status, body) = http_json(
        addr,
        "PUT",
        &path,
        Some(with(json!({"threshold": 5000, "for": "2m"}))),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["threshold"].as_f64(), body["for"].as_str()),
        (Some(5000.0), Some("2m"))
    );
    let (status, _) = http_json(addr, "PUT", &path, Some(with(json!({"window": "0s"})))).await;
    assert_eq!(status, 422);
    let (_, body) = http_json(addr, "GET", &path, None).await;
    assert_eq!(
        body["threshold"], 5000.0,
        "a refused update changes nothing"
    );

    let (status, body) = http_json(
        addr,
        "POST",
        &format!("{path}/silence"),
        Some(json!({"for": "1h"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["silenced_until"].as_str().unwrap().ends_with('Z'));
    let (_, body) = http_json(
        addr,
        "POST",
        &format!("{path}/silence"),
        Some(json!({"for": "0s"})),
    )
    .await;
    assert!(body["silenced_until"].is_null(), "{body}");

    let (status, body) =
        http_json(addr, "POST", "/api/v1/alerts/preview", Some(base.clone())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["instances"][0]["verdict"], "no_data");

    let (status, _) = http_json(addr, "DELETE", &path, None).await;
    assert_eq!(status, 204);
    let (status, _) = http_json(addr, "GET", &path, None).await;
    assert_eq!(status, 404);
    let (status, _) = http_json(addr, "DELETE", &path, None).await;
    assert_eq!(status, 404);
    server.shutdown();
    server.wait().await.unwrap();
}
