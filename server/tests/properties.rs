//! Generated bad input for every parser a record, a request or a frame passes through: the KPL
//! decoder, the flat JSON scanner, logfmt, the filter language, every API request body (through
//! the real server's deserialisation and validation) and the WebSocket client frames. Each
//! property says: no panic, and a refusal is a clear error (a message, a position or a field).
//!
//! The number of cases per property is modest by default so `make test` stays quick;
//! `PROPTEST_CASES=N` (what `make soak` sets) runs N cases of each instead.

mod support;

use bytes::Bytes;
use md5::{Digest, Md5};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};
use std::net::SocketAddr;
use streamboard::{
    Server,
    config::ServeConfig,
    engine::{fields::Logfmt, fields::json_get, json_scan::FlatJson},
    kinesis::{
        ConsumedRecord, SequenceNumber,
        kpl::{self, KplError, UserRecord},
    },
    metric::{
        MetricDefinition,
        field::{FieldValue, Pointer},
        filter,
    },
};
use tokio_util::sync::CancellationToken;

/// `PROPTEST_CASES` when set, otherwise `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default)
}

/// A config of `cases(default)` cases; failures are reported, not persisted to files (a
/// failure found here becomes a named regression test instead).
fn config(default: u32) -> Config {
    Config {
        cases: cases(default),
        failure_persistence: None,
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------------------------
// KPL
// ---------------------------------------------------------------------------------------------

fn user_record() -> impl Strategy<Value = UserRecord> {
    (
        "\\PC{1,12}",
        proptest::option::of("[0-9]{1,39}"),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(partition_key, explicit_hash_key, data)| UserRecord {
            partition_key,
            explicit_hash_key,
            data,
        })
}

/// `MAGIC + body + MD5(body)`: a record whose digest matches, so the protobuf decoder runs.
fn with_digest(body: &[u8]) -> Vec<u8> {
    let mut out = kpl::MAGIC.to_vec();
    out.extend_from_slice(body);
    out.extend_from_slice(&Md5::digest(body));
    out
}

fn check_kpl_verdict(data: &[u8]) -> Result<(), TestCaseError> {
    match kpl::try_deaggregate(data) {
        Ok(None) => prop_assert!(!kpl::has_magic(data)),
        Ok(Some(records)) => {
            prop_assert!(kpl::has_magic(data));
            prop_assert_eq!(
                kpl::deaggregate(data),
                kpl::Deaggregated::Aggregated(records)
            );
        }
        Err(error) => {
            prop_assert!(!error.to_string().is_empty());
            // A corrupt aggregated record is used whole, as the KCL does.
            prop_assert_eq!(kpl::deaggregate(data), kpl::Deaggregated::Plain);
        }
    }
    Ok(())
}

#[test]
fn kpl_aggregates_round_trip() {
    TestRunner::new(config(1_000))
        .run(
            &proptest::collection::vec(user_record(), 1..20),
            |records| {
                let data = kpl::aggregate(&records);
                prop_assert_eq!(kpl::try_deaggregate(&data), Ok(Some(records)));
                Ok(())
            },
        )
        .unwrap();
}

#[test]
fn kpl_decoder_refuses_any_bytes_without_panicking() {
    // Raw bytes, bytes behind the magic, and protobuf-looking bodies with a valid digest.
    let bytes = proptest::collection::vec(any::<u8>(), 0..200);
    let strategy = prop_oneof![
        bytes.clone(),
        bytes
            .clone()
            .prop_map(|b| [kpl::MAGIC.as_slice(), &b].concat()),
        bytes.prop_map(|b| with_digest(&b)),
    ];
    TestRunner::new(config(3_000))
        .run(&strategy, |data| check_kpl_verdict(&data))
        .unwrap();
}

#[test]
fn kpl_decoder_survives_corrupted_aggregates() {
    // A valid aggregate with bytes of its body overwritten, truncated or extended, then
    // re-signed: the protobuf decoder sees almost-valid input.
    let strategy = (
        proptest::collection::vec(user_record(), 1..6),
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        any::<prop::sample::Index>(),
        any::<bool>(),
    );
    TestRunner::new(config(3_000))
        .run(&strategy, |(records, edits, cut, truncate)| {
            let data = kpl::aggregate(&records);
            let mut body = data[kpl::MAGIC.len()..data.len() - 16].to_vec();
            for (at, byte) in edits {
                let i = at.index(body.len());
                body[i] = byte;
            }
            if truncate {
                body.truncate(cut.index(body.len() + 1));
            }
            let corrupted = with_digest(&body);
            check_kpl_verdict(&corrupted)?;
            // An index past a table is reported with its record and table.
            if let Err(KplError::IndexOutOfRange { index, len, .. }) =
                kpl::try_deaggregate(&corrupted)
            {
                prop_assert!(index as usize >= len);
            }
            Ok(())
        })
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// JSON scanner
// ---------------------------------------------------------------------------------------------

/// JSON values, nested a few levels, with awkward numbers and strings.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
        "[\\x00-\\x1f\"\\\\/é€😀]{0,6}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z_é\"\\\\]{0,6}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Text that is JSON, almost JSON (edited) or JSON-flavoured noise.
fn json_text() -> impl Strategy<Value = String> {
    let valid = json_value().prop_map(|v| v.to_string());
    let pretty = json_value().prop_map(|v| serde_json::to_string_pretty(&v).unwrap_or_default());
    let edited = (
        json_value().prop_map(|v| v.to_string()),
        proptest::collection::vec(
            (
                any::<prop::sample::Index>(),
                prop::sample::select(vec![
                    "", "{", "}", "[", "]", ",", ":", "\"", "\\", "\\u", "\\ud800", "-", "0",
                    "1e999", ".5", "tru", "nul", " ", "\u{0}", "é", "01", "1.", "-0",
                ]),
            ),
            1..4,
        ),
    )
        .prop_map(|(mut text, edits)| {
            for (at, piece) in edits {
                let mut i = at.index(text.len() + 1);
                while !text.is_char_boundary(i) {
                    i -= 1;
                }
                text.insert_str(i, piece);
            }
            text
        });
    let noise = "[{}\\[\\]\",:\\\\ 0-9eE.+\\-tfnrula\\x00-\\x1fé]{0,40}";
    let numbers = "-?[0-9]{1,400}(\\.[0-9]{0,20})?([eE][+-]?[0-9]{1,5})?";
    prop_oneof![
        3 => valid,
        1 => pretty,
        3 => edited,
        2 => noise,
        1 => numbers.prop_map(|n| format!("{{\"n\":{n}}}")),
        1 => (1usize..200).prop_map(|depth| format!("{{\"a\":{}{}}}", "[".repeat(depth), "]".repeat(depth))),
    ]
}

/// How many representable `f64` values lie between `a` and `b` (finite, same sign).
fn ulps_apart(a: f64, b: f64) -> u64 {
    if a.is_sign_negative() != b.is_sign_negative() {
        return u64::MAX;
    }
    a.to_bits().abs_diff(b.to_bits())
}

#[test]
fn json_scanner_agrees_with_serde_json() {
    TestRunner::new(config(5_000))
        .run(&json_text(), |text| {
            let scanned = FlatJson::parse(&text);
            let reference = serde_json::from_str::<Value>(&text);
            match (&scanned, &reference) {
                (Ok(doc), Ok(value)) => {
                    // Every top-level field reads the same through both.
                    if let Value::Object(map) = value {
                        for key in map.keys() {
                            let escaped = key.replace('~', "~0").replace('/', "~1");
                            let pointer = Pointer::parse(&format!("/{escaped}"))
                                .expect("an escaped key is a valid pointer");
                            match (doc.get(&pointer), json_get(value, &pointer)) {
                                // serde_json's default float parsing may be an ulp or so
                                // off the correctly rounded value the scanner returns;
                                // counted in ulps, so subnormals (1e-309) compare too.
                                (FieldValue::Num(a), FieldValue::Num(b)) => prop_assert!(
                                    a == b || ulps_apart(a, b) <= 4,
                                    "field {key:?} of {text:?}: {a} vs {b}"
                                ),
                                (scanned, parsed) => prop_assert_eq!(
                                    scanned,
                                    parsed,
                                    "field {:?} of {:?}",
                                    key,
                                    text
                                ),
                            }
                        }
                    }
                }
                (Err(error), Err(_)) => {
                    prop_assert!(error.0 <= text.len(), "{error} past the end of {text:?}");
                    prop_assert!(error.to_string().contains("invalid JSON at byte"));
                }
                _ => prop_assert!(
                    false,
                    "scanner {:?} but serde_json {:?} for {:?}",
                    scanned.as_ref().map(|_| ()),
                    reference.as_ref().map(|_| ()),
                    text
                ),
            }
            Ok(())
        })
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// logfmt
// ---------------------------------------------------------------------------------------------

/// A value written the way logfmt writers quote: `"` and `\` escaped with a backslash.
fn quote(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[test]
fn logfmt_quoted_values_round_trip() {
    let pair = ("[a-z_][a-z0-9_.]{0,8}", "\\PC{0,16}");
    TestRunner::new(config(3_000))
        .run(&proptest::collection::vec(pair, 1..6), |pairs| {
            let line = pairs
                .iter()
                .map(|(k, v)| format!("{k}={}", quote(v)))
                .collect::<Vec<_>>()
                .join(" ");
            let parsed =
                Logfmt::parse(&line).map_err(|e| TestCaseError::fail(format!("{e}: {line:?}")))?;
            let got: Vec<(&str, &str)> =
                parsed.pairs.iter().map(|(k, v)| (*k, v.as_ref())).collect();
            let want: Vec<(&str, &str)> = pairs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            prop_assert_eq!(got, want, "line {:?}", line);
            Ok(())
        })
        .unwrap();
}

#[test]
fn logfmt_refuses_any_line_without_panicking() {
    let strategy = prop_oneof![
        "\\PC{0,60}",
        "[a-z=\" \\\\\té€😀\\x00]{0,40}",
        any::<Vec<u8>>().prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ];
    TestRunner::new(config(5_000))
        .run(&strategy, |line| {
            match Logfmt::parse(&line) {
                Ok(parsed) => {
                    for (key, _) in &parsed.pairs {
                        prop_assert!(!key.is_empty());
                    }
                }
                Err(message) => prop_assert!(message.starts_with("logfmt: ")),
            }
            Ok(())
        })
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// The filter language
// ---------------------------------------------------------------------------------------------

/// Filter text built from the language's own tokens, mostly well-formed, sometimes not.
fn filter_text() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "/a",
        "/b/c",
        "/~0x",
        "/~2",
        "/",
        "=",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "!",
        "and",
        "or",
        "not",
        "exists",
        "(",
        ")",
        "1",
        "-2.5e3",
        "1e999",
        "\"eu\"",
        "\"unterminated",
        "\"a\\\"b\"",
        "true",
        "false",
        "null",
        "AND",
        "xor",
        "é",
        "😀",
        "\u{0}",
        "'x'",
    ]);
    let soup = proptest::collection::vec(token, 0..12).prop_map(|t| t.join(" "));
    let tight = proptest::collection::vec(
        prop::sample::select(vec!["/a", "=", "(", ")", "\"", "1", "!", "<", "é"]),
        0..10,
    )
    .prop_map(|t| t.concat());
    prop_oneof![
        2 => soup,
        1 => tight,
        1 => "\\PC{0,40}",
        1 => well_formed_filter(),
    ]
}

fn well_formed_filter() -> impl Strategy<Value = String> {
    let compare = (
        "/[a-z]{1,4}",
        prop::sample::select(vec!["=", "!=", "<", "<=", ">", ">="]),
        prop_oneof![
            any::<i32>().prop_map(|n| n.to_string()),
            "[a-z é]{0,5}".prop_map(|s| format!("{s:?}")),
            Just("true".to_string()),
            Just("null".to_string()),
        ],
    )
        .prop_map(|(path, op, literal)| format!("{path} {op} {literal}"));
    let leaf = prop_oneof![compare, "/[a-z]{1,4}".prop_map(|p| format!("exists {p}"))];
    leaf.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} and {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) or ({b})")),
            inner.prop_map(|a| format!("not ({a})")),
        ]
    })
}

#[test]
fn filter_parser_answers_every_text_with_a_filter_or_a_positioned_error() {
    TestRunner::new(config(5_000))
        .run(&filter_text(), |text| {
            match filter::parse(&text) {
                Ok(parsed) => {
                    // It evaluates on a record without panicking.
                    let _ = parsed.eval(&|_: &Pointer| FieldValue::Missing);
                }
                Err(error) => {
                    prop_assert!(error.position <= text.len(), "{error} for {text:?}");
                    prop_assert!(!error.message.is_empty());
                }
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn well_formed_filters_parse() {
    TestRunner::new(config(2_000))
        .run(&well_formed_filter(), |text| {
            prop_assert!(filter::parse(&text).is_ok(), "{:?}", text);
            Ok(())
        })
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// API bodies, through the real server
// ---------------------------------------------------------------------------------------------

const STREAM: &str = "props-orders";

/// A JSON body edited from a valid one: a field removed, replaced by another value, an
/// unknown field added, or the whole body replaced.
#[derive(Debug, Clone)]
enum Edit {
    Remove(prop::sample::Index),
    Replace(prop::sample::Index, Value),
    ReplaceNested(prop::sample::Index, Value),
    Add(String, Value),
    Whole(Value),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<prop::sample::Index>().prop_map(Edit::Remove),
        (any::<prop::sample::Index>(), json_value()).prop_map(|(i, v)| Edit::Replace(i, v)),
        (any::<prop::sample::Index>(), awkward_scalar()).prop_map(|(i, v)| Edit::Replace(i, v)),
        (any::<prop::sample::Index>(), awkward_scalar())
            .prop_map(|(i, v)| Edit::ReplaceNested(i, v)),
        ("[a-z_]{1,8}", json_value()).prop_map(|(k, v)| Edit::Add(k, v)),
        json_value().prop_map(Edit::Whole),
    ]
}

/// Values that sit at the edges of what a field accepts.
fn awkward_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(vec![
            json!(""),
            json!(" "),
            json!("0s"),
            json!("-1s"),
            json!("99999999999d"),
            json!("1x"),
            json!("/"),
            json!("/a/"),
            json!("~"),
            json!("/~2"),
            json!("(?P<x>"),
            json!("(?P<x>.)"),
            json!("/a >"),
            json!("eu"),
            json!("http://"),
            json!("ftp://x"),
            json!("\u{0}"),
            json!(0),
            json!(-1),
            json!(1),
            json!(3),
            json!(6),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(1e300),
            json!(-0.0),
            json!(0.5),
            json!(null),
            json!(true),
            json!([]),
            json!({}),
            json!(["/a", "/b", "/c", "/d"]),
            json!([{"type": "webhook", "url": "x"}]),
            json!({"regex": "("}),
            json!({"field": "/t", "format": "nope"}),
            json!({"lowest": 0, "highest": 1, "significant_figures": 9}),
        ]),
        "\\PC{0,300}".prop_map(Value::String),
    ]
}

fn apply(base: &Value, edits: &[Edit]) -> Value {
    let mut body = base.clone();
    for edit in edits {
        match (edit, &mut body) {
            (Edit::Whole(v), _) => body = v.clone(),
            (Edit::Remove(i), Value::Object(map)) if !map.is_empty() => {
                let key = map.keys().nth(i.index(map.len())).cloned();
                if let Some(key) = key {
                    map.remove(&key);
                }
            }
            (Edit::Replace(i, v), Value::Object(map)) if !map.is_empty() => {
                let n = i.index(map.len());
                if let Some((_, slot)) = map.iter_mut().nth(n) {
                    *slot = v.clone();
                }
            }
            (Edit::ReplaceNested(i, v), Value::Object(map)) if !map.is_empty() => {
                let n = i.index(map.len());
                if let Some((_, slot)) = map.iter_mut().nth(n) {
                    match slot {
                        Value::Object(inner) if !inner.is_empty() => {
                            let m = i.index(inner.len());
                            if let Some((_, s)) = inner.iter_mut().nth(m) {
                                *s = v.clone();
                            }
                        }
                        Value::Array(items) if !items.is_empty() => {
                            let m = i.index(items.len());
                            items[m] = v.clone();
                        }
                        other => *other = v.clone(),
                    }
                }
            }
            (Edit::Add(k, v), Value::Object(map)) => {
                map.insert(k.clone(), v.clone());
            }
            _ => {}
        }
    }
    body
}

/// One request route: its method, path and a valid body to edit.
struct Route {
    method: &'static str,
    path: &'static str,
    valid: Value,
}

fn routes() -> Vec<Route> {
    let definition = json!({
        "name": "prop_latency", "stream": STREAM, "value": "/latency_ms",
        "dimensions": ["/region"], "unit": "ms", "filter": "/status >= 500 or exists /error",
        "time": {"field": "/ts", "format": "epoch_ms"},
        "histogram": {"lowest": 1, "highest": 3600000, "significant_figures": 2},
    });
    let rule = json!({
        "name": "slow", "metric": "order_value", "statistic": "p99", "window": "10s",
        "comparison": ">", "threshold": 100.0, "recovery_threshold": 90.0, "for": "5s",
        "keep_firing_for": "0s", "no_data": "ok", "no_data_after": "2m", "notify_on": ["no_data"],
        "severity": "critical", "description": "d", "runbook_url": "https://example.invalid/r",
        "series": "each", "targets": [{"type": "in_app"}], "enabled": true,
    });
    vec![
        Route {
            method: "POST",
            path: "/api/v1/metrics",
            valid: definition.clone(),
        },
        Route {
            method: "PUT",
            path: "/api/v1/metrics/order_value",
            valid: {
                let mut d = definition.clone();
                d["name"] = json!("order_value");
                d
            },
        },
        Route {
            method: "POST",
            path: "/api/v1/metrics/preview",
            valid: {
                let mut d = definition;
                d["name"] = json!("prop_preview");
                d
            },
        },
        Route {
            method: "POST",
            path: "/api/v1/alerts",
            valid: rule.clone(),
        },
        Route {
            method: "POST",
            path: "/api/v1/alerts/preview",
            valid: rule.clone(),
        },
        Route {
            method: "POST",
            path: "/api/v1/alerts/backtest",
            valid: json!({"rule": rule.clone(), "from": "-1h"}),
        },
        Route {
            method: "POST",
            path: "/api/v1/alerts/notification/preview",
            valid: json!({"rule": rule.clone(), "target": "in_app"}),
        },
        Route {
            method: "PUT",
            path: "/api/v1/alerts/1",
            valid: rule,
        },
        Route {
            method: "POST",
            path: "/api/v1/alerts/1/silence",
            valid: json!({"for": "10m"}),
        },
    ]
}

/// Checks one answer: never a server error; a refusal carries a message, a 422 names its field.
fn check_answer(what: &str, status: u16, body: &Value) -> Result<(), TestCaseError> {
    prop_assert!(status < 500, "{what}: status {status}, body {body}");
    if status >= 400 {
        let message = body["error"]["message"].as_str().unwrap_or_default();
        prop_assert!(
            !message.is_empty(),
            "{what}: {status} without a message: {body}"
        );
        if status == 422 {
            let field = body["error"]["field"].as_str().unwrap_or_default();
            prop_assert!(!field.is_empty(), "{what}: 422 without a field: {body}");
        }
    }
    Ok(())
}

async fn api_server(dir: &std::path::Path) -> Server {
    let mut config = ServeConfig::for_data_dir(dir);
    config.metrics = vec![
        serde_json::from_value::<MetricDefinition>(json!({
            "name": "order_value", "stream": STREAM, "value": "/amount",
            "dimensions": ["/country"], "unit": "count",
        }))
        .expect("a valid definition"),
    ];
    let server = Server::start(config, CancellationToken::new())
        .await
        .expect("the server starts");
    // A record on the stream, so a preview has something to run over.
    let record = ConsumedRecord {
        sequence_number: SequenceNumber::parse("1").expect("a sequence number"),
        sub_sequence: None,
        partition_key: "k".into(),
        data: Bytes::from_static(br#"{"amount":12,"country":"de","latency_ms":5,"region":"eu","status":503,"ts":1700000000000}"#),
        arrival_time_ms: streamboard::clock::now_ms(),
        explicit_hash_key: None,
    };
    support::ingest(&server, STREAM, vec![record]).await;
    server
}

#[test]
fn api_bodies_are_answered_with_a_result_or_a_named_error() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = runtime.block_on(api_server(dir.path()));
    let addr = server.local_addr();
    let routes = routes();

    // Each route's valid body is accepted, so the edits below start from something that works
    // (the rule created by the fourth is the one the last two change).
    runtime.block_on(async {
        for route in &routes {
            let (status, body) =
                support::http_json(addr, route.method, route.path, Some(route.valid.clone())).await;
            assert!(
                (200..300).contains(&status),
                "{} {}: {status} {body}",
                route.method,
                route.path
            );
        }
    });

    let strategy = (0..routes.len(), proptest::collection::vec(edit(), 1..4));
    TestRunner::new(config(1_500))
        .run(&strategy, |(r, edits)| {
            let route = &routes[r];
            let body = apply(&route.valid, &edits);
            let (status, answer) = runtime.block_on(support::http_json(
                addr,
                route.method,
                route.path,
                Some(body.clone()),
            ));
            check_answer(
                &format!("{} {} {body}", route.method, route.path),
                status,
                &answer,
            )
        })
        .unwrap();

    // Bodies that are not JSON at all, or not `application/json`.
    TestRunner::new(config(300))
        .run(&(0..routes.len(), any::<Vec<u8>>()), |(r, bytes)| {
            let route = &routes[r];
            let (status, answer) =
                runtime.block_on(raw_request(addr, route.method, route.path, &bytes));
            check_answer(
                &format!("{} {} {bytes:?}", route.method, route.path),
                status,
                &answer,
            )
        })
        .unwrap();
    runtime.block_on(async {
        server.shutdown();
        server.wait().await.unwrap();
    });
}

/// A request whose body is `bytes` as they are (not JSON-encoded).
async fn raw_request(addr: SocketAddr, method: &str, path: &str, bytes: &[u8]) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        bytes.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// Query strings of the GET routes: parameters dropped, replaced or added.
#[test]
fn api_query_strings_are_answered_with_a_result_or_a_named_error() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = runtime.block_on(api_server(dir.path()));
    let addr = server.local_addr();
    let routes: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "/api/v1/query",
            vec![
                ("metric", "order_value"),
                ("from", "0"),
                ("to", "4102444800000"),
                ("tier", "1m"),
                ("bins", "20"),
            ],
        ),
        (
            "/api/v1/export/estimate",
            vec![
                ("metrics", "order_value"),
                ("from", "-1h"),
                ("to", "-0s"),
                ("resolution", "1m"),
                ("format", "csv"),
            ],
        ),
        (
            "/api/v1/alerts/history",
            vec![
                ("rule_id", "1"),
                ("state", "firing"),
                ("from", "-24h"),
                ("limit", "10"),
            ],
        ),
        ("/api/v1/metrics/order_value/series", vec![]),
        ("/api/v1/streams/props-orders/fields", vec![]),
    ];
    let value = prop_oneof![
        prop::sample::select(vec![
            "",
            "-",
            "-1h",
            "now",
            "1s",
            "1m",
            "0",
            "-1",
            "99999999999999999999",
            "%",
            "%zz",
            "%00",
            "a%20b",
            "1e9",
            "NaN",
            "csv",
            "html",
            "pdf",
            "firing",
            "2026-01-01T00:00:00Z"
        ])
        .prop_map(str::to_string),
        "[a-zA-Z0-9%&=+/_.-]{0,20}",
    ];
    let strategy = (
        0..routes.len(),
        proptest::collection::vec(
            (
                any::<prop::sample::Index>(),
                any::<bool>(),
                value,
                "[a-z_]{1,8}",
            ),
            0..4,
        ),
    );
    let target = |path: &str, params: &[(String, String)]| {
        let query = params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        format!("{path}?{query}")
    };
    // Each route's valid query is answered with 200.
    for (path, valid) in &routes {
        let params: Vec<(String, String)> = valid
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let (status, text) = runtime.block_on(support::http_text(
            addr,
            "GET",
            &target(path, &params),
            None,
        ));
        assert_eq!(status, 200, "{path}: {text}");
    }
    TestRunner::new(config(1_000))
        .run(&strategy, |(r, edits)| {
            let (path, valid) = &routes[r];
            let mut params: Vec<(String, String)> = valid
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            for (at, replace, value, key) in edits {
                if replace && !params.is_empty() {
                    let i = at.index(params.len());
                    params[i].1 = value;
                } else {
                    params.push((key, value));
                }
            }
            let target = target(path, &params);
            let (status, text) = runtime.block_on(support::http_text(addr, "GET", &target, None));
            let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            check_answer(&target, status, &body)
        })
        .unwrap();
    runtime.block_on(async {
        server.shutdown();
        server.wait().await.unwrap();
    });
}

// ---------------------------------------------------------------------------------------------
// WebSocket client frames
// ---------------------------------------------------------------------------------------------

/// Client frames: real messages, edited ones and noise.
fn client_frame() -> impl Strategy<Value = String> {
    let valid = prop_oneof![
        any::<u64>().prop_map(|nonce| json!({"type": "ping", "nonce": nonce})),
        Just(json!({"type": "hello", "protocol": contract::protocol::PROTOCOL_VERSION})),
        proptest::collection::vec(
            prop_oneof![
                Just(json!({"topic": "overview"})),
                Just(json!({"topic": "streams"})),
                Just(json!({"topic": "alerts"})),
                "\\PC{0,20}".prop_map(|name| json!({"topic": "metric", "name": name})),
            ],
            0..20,
        )
        .prop_map(|topics| json!({"type": "subscribe", "topics": topics})),
    ];
    prop_oneof![
        3 => valid.clone().prop_map(|v| v.to_string()),
        3 => (valid, proptest::collection::vec(edit(), 1..3)).prop_map(|(v, edits)| apply(&v, &edits).to_string()),
        2 => json_text(),
        1 => "\\PC{0,100}",
    ]
}

#[test]
fn websocket_frames_are_answered_and_the_session_survives() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = runtime.block_on(api_server(dir.path()));
    let addr = server.local_addr();

    let connect = || async move {
        let mut socket = support::ws_connect(addr, support::WsOptions::default()).await;
        support::ws_send(
            &mut socket,
            contract::protocol::ClientMessage::Hello {
                protocol: contract::protocol::PROTOCOL_VERSION,
            },
        )
        .await;
        socket
    };
    // The runner takes a `Fn`: the sessions and the ping counter live in a cell. Cases take
    // turns on 8 sessions: a session reads at most 50 frames a second.
    let sessions: Vec<_> = (0..8).map(|_| runtime.block_on(connect())).collect();
    let session = std::cell::RefCell::new((sessions, 0u64));

    TestRunner::new(config(1_500))
        .run(
            &prop_oneof![
                9 => client_frame().prop_map(Message::text),
                1 => any::<Vec<u8>>().prop_map(Message::binary),
            ],
            |frame| {
                let mut session = session.borrow_mut();
                let (sockets, nonce) = &mut *session;
                let socket = &mut sockets[*nonce as usize % 8];
                runtime.block_on(async {
                    let sent = frame.clone();
                    socket
                        .send(frame)
                        .await
                        .map_err(|e| TestCaseError::fail(format!("send: {e}")))?;
                    // Then a ping: the session must answer it (after any error or snapshot), or
                    // have closed with a policy code and a reason.
                    *nonce += 1;
                    let _ = socket
                        .send(Message::text(
                            json!({"type": "ping", "nonce": *nonce}).to_string(),
                        ))
                        .await;
                    let deadline = tokio::time::Instant::now() + support::WAIT;
                    loop {
                        let next = tokio::time::timeout_at(deadline, socket.next())
                            .await
                            .map_err(|_| TestCaseError::fail(format!("no answer to {sent:?}")))?;
                        match next {
                            Some(Ok(Message::Text(text))) => {
                                let message: Value = serde_json::from_str(&text)
                                    .map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
                                match message["type"].as_str() {
                                    Some("pong") if message["nonce"] == json!(*nonce) => {
                                        return Ok(());
                                    }
                                    Some("error") => prop_assert!(
                                        message["message"].as_str().is_some_and(
                                            |m| m.starts_with("cannot read this message: ")
                                        ),
                                        "{text}"
                                    ),
                                    _ => {}
                                }
                            }
                            Some(Ok(Message::Close(Some(close)))) => {
                                prop_assert_eq!(
                                    u16::from(close.code),
                                    contract::protocol::CLOSE_POLICY_VIOLATION,
                                    "{:?} after {:?}",
                                    close,
                                    sent
                                );
                                prop_assert!(!close.reason.is_empty());
                                *socket = connect().await;
                                return Ok(());
                            }
                            Some(Ok(_)) => {}
                            other => prop_assert!(false, "session ended after {sent:?}: {other:?}"),
                        }
                    }
                })
            },
        )
        .unwrap();

    // The first frame decides the session: anything but a hello is refused with 1002.
    TestRunner::new(config(200))
        .run(&client_frame(), |first| {
            runtime.block_on(async {
                let mut socket = support::ws_connect(addr, support::WsOptions::default()).await;
                socket.send(Message::text(first.clone())).await.map_err(|e| TestCaseError::fail(e.to_string()))?;
                let is_hello = serde_json::from_str::<contract::protocol::ClientMessage>(&first)
                    .is_ok_and(|m| matches!(m, contract::protocol::ClientMessage::Hello { protocol } if protocol == contract::protocol::PROTOCOL_VERSION));
                loop {
                    let next = tokio::time::timeout(support::WAIT, socket.next()).await
                        .map_err(|_| TestCaseError::fail(format!("no answer to {first:?}")))?;
                    match next {
                        Some(Ok(Message::Text(text))) if text.contains("\"type\":\"hello\"") => {
                            prop_assert!(is_hello, "hello answered to {first:?}");
                            return Ok(());
                        }
                        Some(Ok(Message::Close(Some(close)))) => {
                            prop_assert!(!is_hello, "{first:?} refused: {close:?}");
                            prop_assert_eq!(u16::from(close.code), contract::protocol::CLOSE_PROTOCOL_ERROR);
                            prop_assert!(!close.reason.is_empty());
                            return Ok(());
                        }
                        Some(Ok(_)) => {}
                        other => prop_assert!(false, "no close frame after {first:?}: {other:?}"),
                    }
                }
            })
        })
        .unwrap();
    runtime.block_on(async {
        drop(session);
        server.shutdown();
        server.wait().await.unwrap();
    });
}
