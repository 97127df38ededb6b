//! Storage-level tests of the metrics engine: a generated data set is fed as RecordBatches and
//! flushed into a real SQLite file; what is stored must equal ground truth computed here
//! independently, and must stay equal when the engine "crashes" (is dropped without flushing,
//! or a flush transaction is rolled back) at several points and the uncommitted batches are
//! fed again from the last committed checkpoint.

use bytes::Bytes;
use rand::{Rng, SeedableRng, rngs::StdRng};
use sqlx::Row;
use std::{
    collections::{BTreeMap, HashMap, HashSet},
    future::Future,
    pin::Pin,
};
use streamboard::{
    engine::{Engine, EngineConfig},
    kinesis::{ConsumedRecord, RecordBatch, SequenceNumber, ShardId, StreamName},
    metric::MetricDefinition,
    query::{QueryRequest, query},
    storage::{
        CheckpointHook, Database, StorageError,
        flush::{FlushState, close_rollups, write_flush},
    },
};

const STREAM: &str = "gt-clickstream";
const T0_MS: i64 = 1_700_000_000_000;
const REGIONS: [&str; 3] = ["eu", "us", "ap"];
const PATHS: [&str; 4] = ["/", "/cart", "/pay", "/search"];

/// Writes the consumer's positions (here: the batch index per shard) in the flush transaction,
/// as the real consumer's checkpoint writer will. `fail` makes it return an error, which rolls
/// the whole flush back.
struct TestCheckpoints {
    fail: bool,
}

impl CheckpointHook<u64> for TestCheckpoints {
    fn write<'a>(
        &'a mut self,
        tx: streamboard::storage::Conn<'a>,
        positions: &'a [(StreamName, ShardId, u64)],
    ) -> Pin<Box<dyn Future<Output = Result<(), StorageError>> + Send + 'a>> {
        Box::pin(async move {
            let streamboard::storage::Conn::Sqlite(tx) = tx else {
                unreachable!("these tests run on SQLite")
            };
            sqlx::query(
                "CREATE TABLE IF NOT EXISTS test_checkpoint (shard TEXT PRIMARY KEY, next_batch INTEGER NOT NULL)",
            )
            .execute(&mut *tx)
            .await?;
            for (_, shard, position) in positions {
                sqlx::query(
                    "INSERT OR REPLACE INTO test_checkpoint (shard, next_batch) VALUES (?, ?)",
                )
                .bind(shard.as_str())
                .bind(*position as i64 + 1)
                .execute(&mut *tx)
                .await?;
            }
            if self.fail {
                return Err(StorageError::Query(sqlx::Error::Protocol(
                    "injected failure before commit".into(),
                )));
            }
            Ok(())
        })
    }
}

fn definitions() -> Vec<MetricDefinition> {
    let latency: MetricDefinition = serde_json::from_value(serde_json::json!({
        "name": "gt_latency", "stream": STREAM, "value": "/latency_ms",
        "dimensions": ["/region", "/path"], "unit": "ms",
        "time": {"field": "/event_time", "format": "epoch_ms"},
    }))
    .unwrap();
    let errors: MetricDefinition = serde_json::from_value(serde_json::json!({
        "name": "gt_errors", "stream": STREAM, "filter": "/status >= 500",
        "dimensions": ["/region"], "unit": "count",
        "time": {"field": "/event_time", "format": "epoch_ms"},
    }))
    .unwrap();
    vec![latency, errors]
}

struct Event {
    region: &'static str,
    path: &'static str,
    status: u32,
    latency: u64,
    event_ms: i64,
    late: bool,
    bad: bool,
}

/// The data set: per shard, a list of batches; each record is also described as an [`Event`].
fn generate(seed: u64) -> (Vec<Vec<RecordBatch<u64>>>, Vec<Event>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut shards = Vec::new();
    let mut events = Vec::new();
    for shard in 0..2 {
        let mut batches = Vec::new();
        for b in 0..40u64 {
            let mut records = Vec::new();
            for i in 0..100 {
                let arrival = T0_MS + (b as i64) * 1_700 + i * 17 + shard * 3;
                let late = rng.random_bool(0.01);
                let bad = rng.random_bool(0.005);
                let event_ms = if late {
                    arrival - 75_000
                } else {
                    arrival - rng.random_range(0..4_000)
                };
                let e = Event {
                    region: REGIONS[rng.random_range(0..3)],
                    path: PATHS[rng.random_range(0..4)],
                    status: if rng.random_bool(0.05) { 503 } else { 200 },
                    // Heavy tail: mostly tens of ms, some seconds.
                    latency: (rng.random::<f64>().powi(4) * 5000.0) as u64 + 1,
                    event_ms,
                    late,
                    bad,
                };
                let data = if bad {
                    format!("{{\"region\":\"{}\",\"latency_ms\":", e.region)
                } else {
                    format!(
                        r#"{{"region":"{}","path":"{}","status":{},"latency_ms":{},"bytes":120,"event_time":{}}}"#,
                        e.region, e.path, e.status, e.latency, e.event_ms
                    )
                };
                records.push(ConsumedRecord {
                    sequence_number: SequenceNumber::parse(&format!("{}", b * 1000 + i as u64))
                        .unwrap(),
                    sub_sequence: None,
                    partition_key: format!("pk{i}"),
                    data: Bytes::from(data),
                    arrival_time_ms: arrival,
                    explicit_hash_key: None,
                });
                events.push(e);
            }
            batches.push(RecordBatch {
                stream: STREAM.into(),
                shard: format!("shardId-{shard:012}").as_str().into(),
                records,
                millis_behind_latest: Some(1000 - b as i64),
                position: b,
            });
        }
        shards.push(batches);
    }
    (shards, events)
}

async fn open(
    dir: &std::path::Path,
) -> (Database, Vec<(i64, streamboard::metric::CompiledMetric)>) {
    let db = Database::open(dir).await.unwrap();
    let mut compiled = Vec::new();
    for def in definitions() {
        let id = db.insert_definition(&def, T0_MS).await.unwrap();
        compiled.push((id, def.compile(None, &HashSet::new()).unwrap()));
    }
    (db, compiled)
}

/// Feeds the shards interleaved, flushing every `flush_every` batches; `crash_after` lists batch
/// counts after which the engine is dropped without flushing (odd entries: with a flush that is
/// rolled back first). Returns the database.
async fn run(
    dir: &std::path::Path,
    flush_every: usize,
    crash_after: &[usize],
    close: bool,
) -> Database {
    let (shards, _) = generate(7);
    let (db, compiled) = open(dir).await;
    let mut builtin_ids = FlushState::default();
    let mut fed = 0usize;
    let mut crashes = crash_after.iter().copied().peekable();
    let mut crash_count = 0;
    'restart: loop {
        // (Re)start: read the committed checkpoints, like a consumer would.
        let mut next: HashMap<String, u64> = HashMap::new();
        if let Ok(rows) = sqlx::query("SELECT shard, next_batch FROM test_checkpoint")
            .fetch_all(db.pool())
            .await
        {
            for row in rows {
                next.insert(row.get(0), row.get::<i64, _>(1) as u64);
            }
        }
        let mut engine: Engine<u64> = Engine::new(EngineConfig::default());
        engine.set_definitions(compiled.clone());
        let mut since_flush = 0;
        let max_batches = shards[0].len();
        for b in 0..max_batches {
            for shard in &shards {
                let batch = &shard[b];
                if batch.position < next.get(batch.shard.as_str()).copied().unwrap_or(0) {
                    continue;
                }
                engine.ingest(batch, T0_MS);
                let now_s = batch.records.last().map_or(0, |r| r.arrival_time_ms / 1000);
                fed += 1;
                since_flush += 1;
                if crashes.peek() == Some(&fed) {
                    crashes.next();
                    crash_count += 1;
                    if crash_count % 2 == 0 {
                        let flush = engine.take_flush_before(now_s);
                        let mut failing = TestCheckpoints { fail: true };
                        let mut ids = builtin_ids.clone();
                        assert!(
                            write_flush(&db, &flush, &mut failing, &mut ids)
                                .await
                                .is_err()
                        );
                    }
                    drop(engine);
                    // Ids created by rolled-back transactions must not be trusted.
                    builtin_ids.clear();
                    continue 'restart;
                }
                if since_flush >= flush_every {
                    since_flush = 0;
                    // As the server's periodic flush: complete seconds only (the batch's
                    // newest arrival second is "now"); their positions only.
                    let flush = engine.take_flush_before(now_s);
                    write_flush(
                        &db,
                        &flush,
                        &mut TestCheckpoints { fail: false },
                        &mut builtin_ids,
                    )
                    .await
                    .unwrap();
                }
            }
        }
        let flush = engine.take_flush();
        write_flush(
            &db,
            &flush,
            &mut TestCheckpoints { fail: false },
            &mut builtin_ids,
        )
        .await
        .unwrap();
        if close {
            // As the server's shutdown does: rebuild the roll-ups still open, so every run's
            // rows are final and comparable.
            close_rollups(&db, &mut builtin_ids).await.unwrap();
        }
        break;
    }
    db
}

/// Every stored row, by metric name: (tier, series, start) -> (count, sum, min, max, histogram counts).
type Rows = BTreeMap<(String, i64, String, i64), (i64, f64, f64, f64, Vec<(u64, u64)>)>;

async fn dump(db: &Database) -> Rows {
    let rows = sqlx::query(
        "SELECT m.name, b.tier_s, b.series, b.start_s, b.count, b.sum, b.min, b.max, b.hist \
         FROM metric_bucket b JOIN metric m ON m.id = b.metric_id",
    )
    .fetch_all(db.pool())
    .await
    .unwrap();
    rows.iter()
        .map(|r| {
            let blob: Option<Vec<u8>> = r.get(8);
            let hist = blob
                .map(|b| {
                    streamboard::metric::histogram::decode_histogram(&b)
                        .unwrap()
                        .iter_recorded()
                        .map(|v| (v.value_iterated_to(), v.count_at_value()))
                        .collect()
                })
                .unwrap_or_default();
            (
                (r.get(0), r.get(1), r.get(2), r.get(3)),
                (r.get(4), r.get(5), r.get(6), r.get(7), hist),
            )
        })
        .collect()
}

fn exact_quantile(sorted: &[u64], q: f64) -> u64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn within_precision(reported: u64, exact: u64) -> bool {
    // 2 significant figures: HdrHistogram reports a value in the same bucket, within 1%.
    let tolerance = (exact as f64 * 0.01).ceil() as u64 + 1;
    reported.abs_diff(exact) <= tolerance
}

#[tokio::test]
async fn stored_summaries_match_ground_truth() {
    let dir = tempfile::tempdir().unwrap();
    // Not closed: the newest minute and the hour are open roll-ups, which queries must rebuild.
    let db = run(dir.path(), 5, &[3, 30], false).await;
    let open: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM metric_rollup WHERE tier_s = 3600")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert!(open > 0, "the hour is still open");
    let (_, events) = generate(7);
    let good: Vec<&Event> = events.iter().filter(|e| !e.late && !e.bad).collect();
    let mut per_series: BTreeMap<(&str, &str), Vec<u64>> = BTreeMap::new();
    for e in &good {
        per_series
            .entry((e.region, e.path))
            .or_default()
            .push(e.latency);
    }
    let from_ms = T0_MS - 200_000;
    let to_ms = T0_MS + 300_000;
    for tier in [1, 60, 3600] {
        for ((region, path), values) in &per_series {
            let mut sorted = values.clone();
            sorted.sort_unstable();
            let response = query(
                &db,
                &QueryRequest {
                    metric: "gt_latency".into(),
                    series: Some(vec![region.to_string(), path.to_string()]),
                    from_ms,
                    to_ms,
                    tier_s: Some(tier),
                },
            )
            .await
            .unwrap();
            let s = &response.summary;
            assert_eq!(
                s.summary.count,
                sorted.len() as u64,
                "tier {tier} {region}{path}"
            );
            assert_eq!(s.summary.sum, sorted.iter().sum::<u64>() as f64);
            assert_eq!(s.summary.min, Some(sorted[0] as f64));
            assert_eq!(s.summary.max, Some(*sorted.last().unwrap() as f64));
            for (q, got) in [
                (0.5, s.summary.p50),
                (0.9, s.summary.p90),
                (0.99, s.summary.p99),
                (0.999, s.summary.p999),
            ] {
                let exact = exact_quantile(&sorted, q);
                let got = got.unwrap();
                assert!(
                    within_precision(got, exact),
                    "tier {tier} q{q}: {got} vs exact {exact}"
                );
            }
            assert_eq!(
                response.points.iter().map(|p| p.summary.count).sum::<u64>(),
                s.summary.count
            );
        }
    }
    // All series merged, per-second points: counts per event second match.
    let merged = query(
        &db,
        &QueryRequest {
            metric: "gt_latency".into(),
            series: None,
            from_ms,
            to_ms,
            tier_s: Some(1),
        },
    )
    .await
    .unwrap();
    let mut per_second: BTreeMap<i64, u64> = BTreeMap::new();
    for e in &good {
        *per_second
            .entry(e.event_ms.div_euclid(1000) * 1000)
            .or_default() += 1;
    }
    let got: BTreeMap<i64, u64> = merged
        .points
        .iter()
        .map(|p| (p.start_ms, p.summary.count))
        .collect();
    assert_eq!(got, per_second);
    // Filtered count metric.
    let errors = query(
        &db,
        &QueryRequest {
            metric: "gt_errors".into(),
            series: None,
            from_ms,
            to_ms,
            tier_s: Some(60),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        errors.summary.summary.count,
        good.iter().filter(|e| e.status >= 500).count() as u64
    );
    // Built-ins: every record is counted by arrival; late records by metric.
    let records = query(
        &db,
        &QueryRequest {
            metric: format!("builtin:{STREAM}:records"),
            series: None,
            from_ms,
            to_ms,
            tier_s: Some(3600),
        },
    )
    .await
    .unwrap();
    assert_eq!(records.summary.summary.count, events.len() as u64);
    let late = query(
        &db,
        &QueryRequest {
            metric: format!("builtin:{STREAM}:late_records"),
            series: Some(vec!["gt_latency".into()]),
            from_ms,
            to_ms,
            tier_s: Some(60),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        late.summary.summary.count,
        events.iter().filter(|e| e.late && !e.bad).count() as u64
    );
    let parse_errors = query(
        &db,
        &QueryRequest {
            metric: format!("builtin:{STREAM}:parse_errors"),
            series: Some(vec!["gt_latency".into(), "invalid_json".into()]),
            from_ms,
            to_ms,
            tier_s: Some(60),
        },
    )
    .await
    .unwrap();
    assert_eq!(
        parse_errors.summary.summary.count,
        events.iter().filter(|e| e.bad).count() as u64
    );
    db.close().await;
}

#[tokio::test]
async fn crashes_at_any_point_store_what_a_clean_run_stores() {
    let clean_dir = tempfile::tempdir().unwrap();
    let clean = run(clean_dir.path(), 4, &[], true).await;
    let expected = dump(&clean).await;
    clean.close().await;
    assert!(expected.len() > 1000, "{} rows", expected.len());
    for (flush_every, crashes) in [(4, vec![3, 10, 41, 42, 77]), (7, vec![1, 8, 60])] {
        let dir = tempfile::tempdir().unwrap();
        let db = run(dir.path(), flush_every, &crashes, true).await;
        let got = dump(&db).await;
        db.close().await;
        // Built-in MillisBehindLatest and records are per read, identical here; compare all.
        assert_eq!(
            got.len(),
            expected.len(),
            "flush every {flush_every}, crashes {crashes:?}"
        );
        for (key, want) in &expected {
            let have = got
                .get(key)
                .unwrap_or_else(|| panic!("missing row {key:?}"));
            assert_eq!(have, want, "row {key:?} (crashes {crashes:?})");
        }
    }
}
