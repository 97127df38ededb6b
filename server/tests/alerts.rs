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
    serve_hooks(
        Router::new()
            .route("/hook", post(hook))
            .with_state(receiver),
        shutdown,
    )
    .await
}

/// Serves a webhook receiver `app` on a loopback port until `shutdown`; returns its address.
async fn serve_hooks(app: Router, shutdown: CancellationToken) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .unwrap();
    });
    addr
}

/// A server reading `source` from the peer from its start, with one metric definition.
fn reading(dir: &std::path::Path, peer: &Peer, source: &str, metric: Value) -> ServeConfig {
    let mut config = ServeConfig::for_data_dir(dir);
    // The webhook receivers here listen on loopback: internal, so they must be allowed.
    config.alerts.alerts_webhook_allow = vec!["127.0.0.1".to_string()];
    config.consumer.streams = vec![StreamSpec {
        name_or_arn: StreamRef::Name(StreamName::from(source)),
        start: StartPosition::TrimHorizon,
        efo: false,
    }];
    config.source = KinesisSource::External(peer.target());
    config.consumer.idle_poll_interval = Duration::from_millis(50);
    config.metrics = vec![serde_json::from_value::<MetricDefinition>(metric).unwrap()];
    config
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
    let config = reading(
        dir.path(),
        &peer,
        &source,
        json!({
            "name": "latency", "stream": source, "value": "/latency_ms", "unit": "ms",
        }),
    );
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
    // The webhook receivers here listen on loopback: internal, so they must be allowed.
    config.alerts.alerts_webhook_allow = vec!["127.0.0.1".to_string()];
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

/// Per second of the recorded run: (records, value). Bursts and gaps exercise `for`,
/// hysteresis (70 is below the threshold but above the recovery threshold), keep firing,
/// M of N and a rate over a series younger than its window.
const RUN: [(u32, u32); 25] = [
    (1, 10),
    (2, 10),
    (3, 300),
    (4, 300),
    (1, 300),
    (2, 10),
    (3, 300),
    (4, 10),
    (1, 10),
    (2, 10),
    (3, 70),
    (4, 70),
    (1, 70),
    (2, 10),
    (3, 10),
    (4, 300),
    (1, 10),
    (2, 300),
    (3, 10),
    (4, 300),
    (1, 300),
    (2, 10),
    (3, 10),
    (4, 10),
    (1, 10),
];

/// A transition as (instance, from, to, at_ms, value), from the history or a backtest.
fn transition_of(t: &Value) -> (String, String, String, i64, Option<f64>) {
    (
        t["instance"].as_str().unwrap().to_string(),
        t["from"].as_str().unwrap().to_string(),
        t["to"].as_str().unwrap().to_string(),
        t["at_ms"].as_i64().unwrap(),
        t["value"].as_f64(),
    )
}

#[tokio::test]
async fn a_backtest_makes_exactly_the_transitions_the_live_evaluator_made() {
    let peer = Peer::start().await;
    let client = peer.client().await;
    let source = unique_stream("alert-backtest");
    create_stream(&client, &source, 1).await;
    let producer = Producer::new(client.clone(), StreamName::from(source.as_str()));
    let dir = tempfile::tempdir().unwrap();
    let config = reading(
        dir.path(),
        &peer,
        &source,
        json!({
            "name": "bt_latency", "stream": source, "value": "/v", "unit": "ms",
            "time": {"field": "/t", "format": "epoch_ms"},
        }),
    );
    let server = Server::start(config, CancellationToken::new())
        .await
        .unwrap();
    let addr = server.local_addr();

    let base = json!({"metric": "bt_latency", "comparison": ">", "targets": [{"type": "in_app"}]});
    let rules = [
        json!({"name": "for, hysteresis, keep firing", "statistic": "max", "window": "3s",
               "threshold": 100, "recovery_threshold": 50, "for": "2s", "keep_firing_for": "2s"}),
        json!({"name": "two of four", "statistic": "p50", "window": "1s", "threshold": 100,
               "datapoints_to_alarm": 2, "evaluation_periods": 4}),
        json!({"name": "busy", "statistic": "rate", "window": "5s", "threshold": 2.5}),
    ];
    let mut created = Vec::new();
    for rule in &rules {
        let mut body = base.clone();
        for (k, v) in rule.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, answer) = http_json(addr, "POST", "/api/v1/alerts", Some(body.clone())).await;
        assert_eq!(status, 201, "{answer}");
        created.push((answer["id"].as_i64().unwrap(), body));
    }
    let (_, first) = http_json(
        addr,
        "GET",
        &format!("/api/v1/alerts/{}", created[0].0),
        None,
    )
    .await;
    let from_ms = first["created_ms"].as_i64().unwrap();

    // The recorded run, put at once with event times in the coming seconds: every live
    // evaluation then sees complete seconds, as the replay of the stored rows does.
    let start_s = streamboard::clock::now_ms() / 1000 + 6;
    let records: Vec<ProducerRecord> = RUN
        .iter()
        .enumerate()
        .flat_map(|(i, &(count, value))| {
            (0..count).map(move |k| ProducerRecord {
                partition_key: format!("k{i}-{k}"),
                explicit_hash_key: None,
                data: format!(
                    r#"{{"v":{value},"t":{}}}"#,
                    (start_s + i as i64) * 1000 + 100 * k as i64
                )
                .into_bytes()
                .into(),
            })
        })
        .collect();
    let total: u64 = RUN.iter().map(|&(c, _)| u64::from(c)).sum();
    assert_eq!(producer.put(records).await.failed, 0);
    let end_s = start_s + RUN.len() as i64 - 1;
    eventually("the run is in the engine's windows", || async {
        let windows = server
            .engine()
            .metric_windows(end_s * 1000, vec![("bt_latency".into(), 60)])
            .await
            .unwrap();
        windows[0]
            .as_ref()
            .is_some_and(|w| w.merged.summary.count == total)
    })
    .await;
    assert!(
        streamboard::clock::now_ms() < start_s * 1000,
        "the run must be ingested before its first second"
    );
    // Let the live evaluator run over the whole run and a few seconds more (longer than
    // `eventually`'s deadline: the run is 25 s).
    let to_s = end_s + 6;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while streamboard::clock::now_ms() < (to_s + 2) * 1000 {
        assert!(std::time::Instant::now() < deadline, "the run did not end");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let to = streamboard::alerts::time::format_rfc3339_ms(to_s * 1000);
    let from = streamboard::alerts::time::format_rfc3339_ms(from_ms);
    // The history's `to` is exclusive, the backtest evaluates `to`'s second.
    let history_to = streamboard::alerts::time::format_rfc3339_ms((to_s + 1) * 1000);
    for (id, rule) in &created {
        let (status, history) = http_json(
            addr,
            "GET",
            &format!("/api/v1/alerts/history?rule_id={id}&from={from}&to={history_to}&limit=1000"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{history}");
        let mut live: Vec<_> = history["transitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(transition_of)
            .collect();
        live.reverse();
        let notified = history["transitions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["notification"] != "none")
            .count() as u64;
        assert!(
            live.iter().any(|t| t.2 == "firing"),
            "{}: the run fires the rule live: {live:?}",
            rule["name"]
        );
        let (status, replay) = http_json(
            addr,
            "POST",
            "/api/v1/alerts/backtest",
            Some(json!({"rule": rule, "from": from, "to": to})),
        )
        .await;
        assert_eq!(status, 200, "{replay}");
        let replayed: Vec<_> = replay["transitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(transition_of)
            .collect();
        assert_eq!(
            replayed, live,
            "{}: backtest against live history",
            rule["name"]
        );
        assert_eq!(replay["notifications"], notified, "{}", rule["name"]);
        assert_eq!(replay["tier_s"], 1);
    }

    // Refusals name the field and the limit.
    for (body, field) in [
        (json!({"rule": created[0].1, "from": "-3d"}), None),
        (
            json!({"rule": created[0].1, "from": "yesterday"}),
            Some("from"),
        ),
        (json!({"rule": {"name": "x"}}), Some("body")),
        (json!({"from": "-1h"}), Some("rule")),
        (
            json!({"rule": {"name": "x", "metric": "bt_latency", "statistic": "p42",
                             "window": "1s", "comparison": ">", "threshold": 1}}),
            Some("statistic"),
        ),
    ] {
        let (status, answer) =
            http_json(addr, "POST", "/api/v1/alerts/backtest", Some(body.clone())).await;
        match field {
            None => {
                assert_eq!(status, 200, "{answer}");
                assert!(
                    answer["note"].as_str().unwrap().contains("retains"),
                    "{answer}"
                );
            }
            Some(field) => assert_eq!(
                (status, answer["error"]["field"].as_str()),
                (422, Some(field)),
                "{body}: {answer}"
            ),
        }
    }
    server.shutdown();
    server.wait().await.unwrap();
}

/// POSTs `body` to `path` and asserts the answer is a 422 naming `field`.
async fn assert_refused_at(addr: SocketAddr, path: &str, body: Value, field: &str) {
    let (status, answer) = http_json(addr, "POST", path, Some(body.clone())).await;
    assert_eq!(
        (status, answer["error"]["field"].as_str()),
        (422, Some(field)),
        "{path} {body}: {answer}"
    );
}

/// A receiver that keeps each request's content type and body and answers 202 with a body.
#[derive(Clone, Default)]
struct Recorder {
    got: Arc<Mutex<Vec<(String, String)>>>,
}

async fn record(
    State(recorder): State<Recorder>,
    headers: axum::http::HeaderMap,
    body: String,
) -> (StatusCode, String) {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut got = recorder.got.lock().unwrap();
    got.push((content_type, body));
    (StatusCode::ACCEPTED, format!("queued as #{}", got.len()))
}

/// A server without Kinesis with the metric `orders`.
async fn orders_server(dir: &std::path::Path) -> Server {
    let mut config = ServeConfig::for_data_dir(dir);
    // The webhook receivers here listen on loopback: internal, so they must be allowed.
    config.alerts.alerts_webhook_allow = vec!["127.0.0.1".to_string()];
    config.metrics = vec![
        serde_json::from_value::<MetricDefinition>(json!({
            "name": "orders", "stream": "alert-actions-orders", "value": "/amount",
        }))
        .unwrap(),
    ];
    Server::start(config, CancellationToken::new())
        .await
        .unwrap()
}

#[tokio::test]
async fn templates_test_sends_and_rule_actions_over_the_api() {
    let recorder = Recorder::default();
    let hooks_stop = CancellationToken::new();
    let hook_addr = serve_hooks(
        Router::new()
            .route("/hook", post(record))
            .with_state(recorder.clone()),
        hooks_stop.clone(),
    )
    .await;

    let dir = tempfile::tempdir().unwrap();
    let server = orders_server(dir.path()).await;
    let addr = server.local_addr();
    let rule = json!({
        "name": "big orders", "metric": "orders", "statistic": "max", "window": "1m",
        "comparison": ">", "threshold": 1000, "datapoints_to_alarm": 2, "evaluation_periods": 3,
        "targets": [{"type": "webhook", "url": format!("http://{hook_addr}/hook")}, {"type": "in_app"}],
        "templates": {
            "webhook": "{\"text\": {{ (rule ~ \" is \" ~ to ~ \" at \" ~ value)|tojson }}}",
            "in_app": "{{ rule }}: {{ to }}",
        },
    });

    // Template errors are refused at their field, in rules and in previews.
    for (templates, field) in [
        (json!({"webhook": "{{ rule }"}), "templates.webhook"),
        (json!({"kinesis": "{{ nope }}"}), "templates.kinesis"),
        (
            json!({"in_app": "{{ rule|frobnicate }}"}),
            "templates.in_app",
        ),
    ] {
        let mut bad = rule.clone();
        bad["templates"] = templates;
        assert_refused_at(addr, "/api/v1/alerts", bad.clone(), field).await;
        assert_refused_at(
            addr,
            "/api/v1/alerts/notification/preview",
            json!({"rule": bad, "target": "webhook"}),
            field,
        )
        .await;
    }

    // A preview renders a sample, or the transition given.
    let (status, preview) = http_json(
        addr,
        "POST",
        "/api/v1/alerts/notification/preview",
        Some(json!({"rule": rule, "target": "in_app", "transition": {
            "instance": "all", "from": "firing", "to": "ok", "at_ms": 1_800_000_000_000i64,
            "value": 12.0, "notifies": true}})),
    )
    .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["text"], "big orders: ok");

    // A test send reaches the real receiver and shows its answer.
    let (status, sent) = http_json(
        addr,
        "POST",
        "/api/v1/alerts/notification/test",
        Some(json!({"rule": rule, "target": "webhook"})),
    )
    .await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["delivered"], true, "{sent}");
    assert_eq!(sent["status"], 202);
    assert_eq!(sent["answer"], "queued as #1");
    let got = recorder.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "application/json");
    assert_eq!(
        serde_json::from_str::<Value>(&got[0].1).unwrap(),
        json!({"text": "big orders is firing at 1100.0"})
    );
    assert_refused_at(
        addr,
        "/api/v1/alerts/notification/test",
        json!({"rule": rule, "target": "kinesis"}),
        "target",
    )
    .await;

    // Pause, resume, duplicate.
    let (status, body) = http_json(addr, "POST", "/api/v1/alerts", Some(rule.clone())).await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_i64().unwrap();
    let (status, body) = http_json(addr, "POST", &format!("/api/v1/alerts/{id}/pause"), None).await;
    assert_eq!((status, &body["enabled"]), (200, &json!(false)), "{body}");
    let (_, body) = http_json(addr, "POST", &format!("/api/v1/alerts/{id}/resume"), None).await;
    assert_eq!(body["enabled"], true);
    let (status, body) = http_json(
        addr,
        "POST",
        &format!("/api/v1/alerts/{id}/duplicate"),
        None,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let copy = body["id"].as_i64().unwrap();
    let (_, body) = http_json(addr, "GET", &format!("/api/v1/alerts/{copy}"), None).await;
    assert_eq!(
        (&body["name"], &body["enabled"], &body["templates"]),
        (
            &json!("big orders (copy)"),
            &json!(false),
            &rule["templates"]
        )
    );
    let (_, body) = http_json(
        addr,
        "POST",
        &format!("/api/v1/alerts/{id}/duplicate"),
        None,
    )
    .await;
    let (_, body) = http_json(addr, "GET", &format!("/api/v1/alerts/{}", body["id"]), None).await;
    assert_eq!(body["name"], "big orders (copy 2)");
    let (status, _) = http_json(addr, "POST", "/api/v1/alerts/999/pause", None).await;
    assert_eq!(status, 404);

    // Export, then import into a fresh server: the same rules, the same file.
    let (status, toml) = http_text(addr, "GET", "/api/v1/alerts/export?format=toml", None).await;
    assert_eq!(status, 200);
    assert!(
        toml.contains("[[alerts]]") && toml.contains("datapoints_to_alarm = 2"),
        "{toml}"
    );
    let (status, json_file) =
        http_text(addr, "GET", "/api/v1/alerts/export?format=json", None).await;
    assert_eq!(status, 200);
    server.shutdown();
    server.wait().await.unwrap();

    let other = tempfile::tempdir().unwrap();
    let server = orders_server(other.path()).await;
    let addr = server.local_addr();
    let (status, body) = import(addr, "toml", &toml).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["created"].as_u64(), body["replaced"].as_u64()),
        (Some(3), Some(0))
    );
    let (_, again) = http_text(addr, "GET", "/api/v1/alerts/export?format=toml", None).await;
    assert_eq!(again, toml, "TOML round trip");
    let (status, body) = import(addr, "json", &json_file).await;
    assert_eq!(
        (body["created"].as_u64(), body["replaced"].as_u64()),
        (Some(0), Some(3))
    );
    assert_eq!(status, 200);
    let (_, again) = http_text(addr, "GET", "/api/v1/alerts/export?format=json", None).await;
    assert_eq!(again, json_file, "JSON round trip");

    // A bad rule refuses the whole file, naming the rule and the field.
    let broken = toml.replacen("threshold = 1000.0", "threshold = \"lots\"", 1);
    assert_ne!(broken, toml);
    let (status, body) = import(addr, "toml", &broken).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["field"], "alerts[0].threshold", "{body}");
    let unknown_metric = toml.replacen("metric = \"orders\"", "metric = \"nope\"", 1);
    let (status, body) = import(addr, "toml", &unknown_metric).await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["field"], "alerts[0].metric", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("rule \"big orders\""),
        "{body}"
    );
    let (status, body) = import(addr, "yaml", &toml).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("format"))
    );
    server.shutdown();
    server.wait().await.unwrap();
    hooks_stop.cancel();
}

/// `POST /api/v1/alerts/import?format=` with the file as a raw text body.
async fn import(addr: SocketAddr, format: &str, text: &str) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /api/v1/alerts/import?format={format} HTTP/1.1\r\nHost: localhost\r\n\
         Connection: close\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{text}",
        text.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_each_rule_sends_one_notification_per_group_listing_every_instance() {
    let peer = Peer::start().await;
    let client = peer.client().await;
    let source = unique_stream("alert-group");
    create_stream(&client, &source, 1).await;
    let producer = Producer::new(client.clone(), StreamName::from(source.as_str()));
    let receiver = Receiver::default();
    let hooks_stop = CancellationToken::new();
    let hook_addr = start_receiver(receiver.clone(), hooks_stop.clone()).await;

    let dir = tempfile::tempdir().unwrap();
    let config = reading(
        dir.path(),
        &peer,
        &source,
        json!({
            "name": "regional", "stream": source, "value": "/v", "dimensions": ["/region"],
        }),
    );
    let server = Server::start(config, CancellationToken::new())
        .await
        .unwrap();
    let addr = server.local_addr();
    let (status, body) = http_json(
        addr,
        "POST",
        "/api/v1/alerts",
        Some(
            json!({"name": "hot regions", "metric": "regional", "series": "each",
            "statistic": "max", "window": "2s", "comparison": ">", "threshold": 100,
            "group_interval": "3s",
            "targets": [{"type": "webhook", "url": format!("http://{hook_addr}/hook")}]}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    let records = ["eu", "us", "ap"]
        .iter()
        .map(|region| ProducerRecord {
            partition_key: region.to_string(),
            explicit_hash_key: None,
            data: format!(r#"{{"v":500,"region":"{region}"}}"#)
                .into_bytes()
                .into(),
        })
        .collect();
    assert_eq!(producer.put(records).await.failed, 0);
    eventually("the grouped notification", || async {
        !receiver.accepted.lock().unwrap().is_empty()
    })
    .await;
    let database = Database::open(dir.path()).await.unwrap();
    // Each instance has its own transition; the webhook got one notification for the three.
    let stored = transitions(&database).await;
    assert_eq!(
        stored.iter().filter(|t| t.1 == "firing").count(),
        3,
        "{stored:?}"
    );
    let accepted = receiver.accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), 1, "{accepted:#?}");
    let group = &accepted[0];
    assert_eq!(
        (&group["group"], &group["count"]),
        (&json!(true), &json!(3))
    );
    let mut instances: Vec<&str> = group["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["instance"].as_str().unwrap())
        .collect();
    instances.sort();
    assert_eq!(instances, ["ap", "eu", "us"]);
    assert!(
        group["transitions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["to"] == "firing")
    );
    server.shutdown();
    server.wait().await.unwrap();
    hooks_stop.cancel();
}

/// A receiver that keeps each request's `Authorization` header.
async fn record_authorization(
    State(seen): State<Arc<Mutex<Vec<Option<String>>>>>,
    headers: axum::http::HeaderMap,
) -> StatusCode {
    seen.lock().unwrap().push(
        headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    );
    StatusCode::NO_CONTENT
}

#[tokio::test]
async fn webhook_credentials_are_sent_but_never_shown() {
    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let hooks_stop = CancellationToken::new();
    let hook_addr = serve_hooks(
        Router::new()
            .route("/hook", post(record_authorization))
            .with_state(seen.clone()),
        hooks_stop.clone(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let server = orders_server(dir.path()).await;
    let addr = server.local_addr();
    let secret_url = format!("http://alice:s3cret@{hook_addr}/hook");
    let masked_url = format!("http://***@{hook_addr}/hook");
    let rule = json!({
        "name": "big orders", "metric": "orders", "statistic": "max", "window": "1m",
        "comparison": ">", "threshold": 1000,
        "targets": [{"type": "webhook", "url": secret_url}],
    });
    let (status, body) = http_json(addr, "POST", "/api/v1/alerts", Some(rule.clone())).await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_i64().unwrap();

    // Nothing the server shows has the password: the rule, the list, both exports.
    let (_, shown) = http_json(addr, "GET", &format!("/api/v1/alerts/{id}"), None).await;
    assert_eq!(shown["targets"][0]["url"], masked_url, "{shown}");
    for path in [
        "/api/v1/alerts",
        "/api/v1/alerts/export?format=json",
        "/api/v1/alerts/export?format=toml",
    ] {
        let (status, text) = http_text(addr, "GET", path, None).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            !text.contains("s3cret") && !text.contains("alice"),
            "{path}: {text}"
        );
        assert!(text.contains(&masked_url), "{path}: {text}");
    }

    // The rule as shown, saved back unchanged, keeps its credentials: a test send of it
    // reaches the receiver with them as Basic authorization (base64 of alice:s3cret).
    let mut edited = shown.clone();
    for key in ["id", "created_ms", "updated_ms", "instances"] {
        edited.as_object_mut().unwrap().remove(key);
    }
    let (status, body) =
        http_json(addr, "PUT", &format!("/api/v1/alerts/{id}"), Some(edited)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["targets"][0]["url"], masked_url);
    let mut draft = rule.clone();
    draft["targets"][0]["url"] = json!(masked_url);
    let (status, sent) = http_json(
        addr,
        "POST",
        "/api/v1/alerts/notification/test",
        Some(json!({"rule": draft, "target": "webhook"})),
    )
    .await;
    assert_eq!((status, &sent["delivered"]), (200, &json!(true)), "{sent}");
    assert_eq!(
        seen.lock().unwrap().clone(),
        vec![Some("Basic YWxpY2U6czNjcmV0".to_string())]
    );

    // A re-imported export keeps them too; a masked URL that stands for nothing is refused.
    let (_, exported) = http_text(addr, "GET", "/api/v1/alerts/export?format=toml", None).await;
    let (status, body) = import(addr, "toml", &exported).await;
    assert_eq!(status, 200, "{body}");
    let (status, sent) = http_json(
        addr,
        "POST",
        "/api/v1/alerts/notification/test",
        Some(json!({"rule": draft, "target": "webhook"})),
    )
    .await;
    assert_eq!((status, &sent["delivered"]), (200, &json!(true)), "{sent}");
    assert_eq!(seen.lock().unwrap().len(), 2);
    assert_eq!(
        seen.lock().unwrap()[1].as_deref(),
        Some("Basic YWxpY2U6czNjcmV0")
    );
    let mut forged = rule.clone();
    forged["name"] = json!("forged");
    forged["targets"][0]["url"] = json!(format!("http://***@{hook_addr}/other"));
    assert_refused_at(addr, "/api/v1/alerts", forged, "targets").await;
    server.shutdown();
    server.wait().await.unwrap();
    hooks_stop.cancel();
}
