//! Unit tests of the engine core: ingest, flush cutoffs and positions, restore, windows,
//! lateness, cardinality and bad records.

use super::*;
use crate::{
    engine::counters::BadReason,
    kinesis::{ConsumedRecord, RecordBatch, SequenceNumber},
    metric::{demo_definitions, histogram, key::OTHER_SERIES},
};
use contract::summary::Summary;
use hdrhistogram::Histogram;
use std::collections::HashSet;

const T0: i64 = 1_700_000_000_000;

fn record(data: &str, arrival_ms: i64) -> ConsumedRecord {
    ConsumedRecord {
        sequence_number: SequenceNumber::parse("1").expect("digits"),
        sub_sequence: None,
        partition_key: "k".into(),
        data: Bytes::from(data.to_string()),
        arrival_time_ms: arrival_ms,
        explicit_hash_key: None,
    }
}

fn batch(stream: &str, records: Vec<ConsumedRecord>, position: u32) -> RecordBatch<u32> {
    RecordBatch {
        stream: stream.into(),
        shard: "shardId-0".into(),
        records,
        millis_behind_latest: Some(5),
        position,
    }
}

fn engine_with(defs: &[crate::metric::MetricDefinition], config: EngineConfig) -> Engine<u32> {
    let mut engine = Engine::new(config);
    engine.set_definitions(
        defs.iter()
            .enumerate()
            .map(|(i, d)| {
                (
                    i as i64 + 1,
                    d.compile(None, &HashSet::new()).expect("valid"),
                )
            })
            .collect(),
    );
    engine
}

fn latency_def() -> crate::metric::MetricDefinition {
    demo_definitions().remove(0)
}

fn deltas_of(flush: &Flush<u32>, key: &MetricKey) -> Vec<BucketDelta> {
    flush
        .deltas
        .iter()
        .filter(|d| &d.metric == key)
        .cloned()
        .collect()
}

fn click(region: &str, latency: u64, event_ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(event_ms as i128 * 1_000_000)
        .expect("in range")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formats");
    format!(
        r#"{{"region":"{region}","path":"/a","status":200,"latency_ms":{latency},"bytes":10,"event_time":"{t}"}}"#
    )
}

#[test]
fn extracts_groups_and_hands_out_positions() {
    let mut e = engine_with(&[latency_def()], EngineConfig::default());
    e.ingest(
        &batch(
            "clickstream",
            vec![
                record(&click("eu", 10, T0), T0 + 5),
                record(&click("eu", 30, T0 + 10), T0 + 20),
                record(&click("us", 7, T0 + 1500), T0 + 1600),
            ],
            7,
        ),
        T0,
    );
    let flush = e.take_flush();
    assert_eq!(flush.positions.len(), 1);
    assert_eq!(flush.positions[0].2, 7);
    let mut d = deltas_of(&flush, &MetricKey::Defined(1));
    d.sort_by_key(BucketDelta::labels);
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].labels(), vec!["eu", "/a"]);
    assert_eq!(d[0].second, T0 / 1000);
    assert_eq!(d[0].stats.count, 2);
    assert_eq!(d[0].stats.sum, 40.0);
    assert_eq!(d[0].stats.min, 10.0);
    assert_eq!(d[0].stats.max, 30.0);
    assert_eq!(d[1].second, T0 / 1000 + 1);
    let records = deltas_of(
        &flush,
        &MetricKey::Builtin {
            stream: "clickstream".into(),
            kind: Builtin::Records,
        },
    );
    assert_eq!(records.iter().map(|d| d.stats.count).sum::<u64>(), 3);
    // Nothing new: the next flush is empty, and windows saw the data.
    assert!(e.take_flush().is_empty());
    let w = e.windows(T0 + 2000);
    let eu = w
        .series
        .iter()
        .find(|s| s.metric == MetricKey::Defined(1) && s.labels[0] == "eu")
        .expect("eu series");
    assert_eq!(eu.windows[0].summary.count, 2);
}

#[test]
fn pending_counts_record_as_the_histogram_would() {
    let def: crate::metric::MetricDefinition = serde_json::from_str(
        r#"{"name":"v","stream":"s","value":"/v","histogram":{"lowest":1,"highest":1000,"significant_figures":2}}"#,
    )
    .expect("json");
    let mut e = engine_with(&[def], EngineConfig::default());
    let values: [f64; 10] = [
        -5.0, 0.0, 0.4, 1.0, 999.0, 1000.0, 1001.0, 1023.0, 5000.0, 1e30,
    ];
    let records = values
        .iter()
        .map(|v| record(&format!(r#"{{"v":{v}}}"#), T0))
        .collect();
    e.ingest(&batch("s", records, 1), T0);
    let flush = e.take_flush();
    let d = deltas_of(&flush, &MetricKey::Defined(1));
    let mut want = Histogram::<u64>::new_with_bounds(1, 1000, 2).unwrap();
    for v in values {
        want.saturating_record(v.round() as u64);
    }
    let mut want_counts = Vec::new();
    histogram::sparse_of(&want, &mut want_counts);
    assert_eq!(d[0].counts, want_counts);
    assert_eq!(d[0].bounds, Some(HistBounds::of(&want)));
    assert_eq!(d[0].stats.count, values.len() as u64);
    // The windows saw the same counts.
    let w = e.window(T0, "v", 60).expect("metric");
    assert_eq!(w.merged.summary.p99, Some(want.value_at_quantile(0.99)));
}

#[test]
fn a_reused_counts_array_starts_from_zero() {
    let def: crate::metric::MetricDefinition = serde_json::from_str(
        r#"{"name":"v","stream":"s","value":"/v","histogram":{"lowest":1,"highest":1000,"significant_figures":2}}"#,
    )
    .expect("json");
    let mut e = engine_with(&[def], EngineConfig::default());
    let sparse_of = |values: &[u64]| {
        let mut want = Histogram::<u64>::new_with_bounds(1, 1000, 2).unwrap();
        for &v in values {
            want.record(v).unwrap();
        }
        let mut counts = Vec::new();
        histogram::sparse_of(&want, &mut counts);
        counts
    };
    // More than SMALL_BUCKETS distinct buckets take a dense array (the second reuses the
    // first's, zeroed); a few values stay inline; then dense again.
    let dense_a: &[u64] = &[5, 700, 700, 10, 20, 30, 40, 50, 60, 70];
    let dense_b: &[u64] = &[6, 6, 999, 11, 21, 31, 41, 51, 61, 71, 81];
    let small: &[u64] = &[9, 9, 300];
    for (i, values) in [dense_a, dense_b, small, dense_a].iter().enumerate() {
        let at = T0 + 1000 * i as i64;
        let records = values
            .iter()
            .map(|v| record(&format!(r#"{{"v":{v}}}"#), at))
            .collect();
        e.ingest(&batch("s", records, i as u32), at);
        let flush = e.take_flush();
        let d = deltas_of(&flush, &MetricKey::Defined(1));
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].counts, sparse_of(values), "flush {i}");
    }
}

#[test]
fn late_and_future_records_are_counted_not_aggregated() {
    let mut e = engine_with(&[latency_def()], EngineConfig::default());
    e.ingest(
        &batch(
            "clickstream",
            vec![
                record(&click("eu", 10, T0 - 61_000), T0),
                record(&click("eu", 10, T0 - 59_000), T0),
                record(&click("eu", 10, T0 + 61_000), T0),
            ],
            1,
        ),
        T0,
    );
    let flush = e.take_flush();
    let d = deltas_of(&flush, &MetricKey::Defined(1));
    assert_eq!(d.iter().map(|d| d.stats.count).sum::<u64>(), 1);
    let counters = e.counters();
    let c = &counters
        .iter()
        .find(|c| c.0 == MetricKey::Defined(1))
        .expect("metric")
        .2;
    assert_eq!((c.late_records, c.future_records), (1, 1));
    let late = deltas_of(
        &flush,
        &MetricKey::Builtin {
            stream: "clickstream".into(),
            kind: Builtin::LateRecords,
        },
    );
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].labels(), vec!["request_latency"]);
}

#[test]
fn cardinality_guard_sends_new_values_to_other() {
    let config = EngineConfig {
        max_series_per_metric: 3,
        ..EngineConfig::default()
    };
    let mut def = latency_def();
    def.dimensions = vec!["/region".into()];
    let mut e = engine_with(&[def], config);
    let records = (0..10)
        .map(|i| record(&click(&format!("r{i}"), 5, T0), T0))
        .collect();
    e.ingest(&batch("clickstream", records, 1), T0);
    let flush = e.take_flush();
    let d = deltas_of(&flush, &MetricKey::Defined(1));
    assert_eq!(d.len(), 4);
    let other = d
        .iter()
        .find(|d| d.labels() == vec![OTHER_SERIES])
        .expect("other");
    assert_eq!(other.stats.count, 7);
    let counters = e.counters();
    let c = &counters
        .iter()
        .find(|c| c.0 == MetricKey::Defined(1))
        .expect("metric")
        .2;
    assert_eq!(c.overflowed_records, 7);
}

#[test]
fn bad_records_are_counted_with_bounded_examples_and_processing_goes_on() {
    let config = EngineConfig {
        bad_examples: 2,
        ..EngineConfig::default()
    };
    let mut e = engine_with(&[latency_def()], config);
    let mut records = vec![
        record("{not json", T0),
        record("{also not", T0),
        record("{still not", T0),
        record(
            r#"{"region":"eu","path":"/a","latency_ms":"fast","event_time":"2023-11-14T22:13:20Z"}"#,
            T0,
        ),
        record(&click("eu", 10, T0), T0),
    ];
    records.push(ConsumedRecord {
        data: Bytes::from_static(&[0xff, 0xfe]),
        ..record("", T0)
    });
    e.ingest(&batch("clickstream", records, 1), T0);
    let counters = e.counters();
    let c = &counters
        .iter()
        .find(|c| c.0 == MetricKey::Defined(1))
        .expect("metric")
        .2;
    assert_eq!(c.bad[&BadReason::InvalidJson].count, 3);
    assert_eq!(
        c.bad[&BadReason::InvalidJson].examples,
        vec!["{also not", "{still not"]
    );
    assert_eq!(c.bad[&BadReason::ValueNotANumber].count, 1);
    assert_eq!(c.bad[&BadReason::NotUtf8].count, 1);
    let flush = e.take_flush();
    assert_eq!(deltas_of(&flush, &MetricKey::Defined(1)).len(), 1);
    let errors = deltas_of(
        &flush,
        &MetricKey::Builtin {
            stream: "clickstream".into(),
            kind: Builtin::ParseErrors,
        },
    );
    assert!(
        errors
            .iter()
            .any(|d| d.labels() == vec!["request_latency", "invalid_json"] && d.stats.count == 3)
    );
}

#[test]
fn logfmt_and_regex_formats_extract() {
    let logfmt: crate::metric::MetricDefinition = serde_json::from_str(
        r#"{"name":"dur","stream":"s","format":"logfmt","value":"/dur","filter":"/level = \"error\"","dimensions":["/svc"]}"#,
    )
    .expect("json");
    let regex: crate::metric::MetricDefinition = serde_json::from_str(
        r#"{"name":"rx","stream":"s","format":{"regex":"took (?P<ms>\\d+)ms"},"value":"/ms"}"#,
    )
    .expect("json");
    let mut e = engine_with(&[logfmt, regex], EngineConfig::default());
    e.ingest(
        &batch(
            "s",
            vec![
                record("level=error svc=api dur=12 msg=\"took 5ms\"", T0),
                record("level=info svc=api dur=99", T0),
                record("nothing here", T0),
            ],
            1,
        ),
        T0,
    );
    let flush = e.take_flush();
    let d = deltas_of(&flush, &MetricKey::Defined(1));
    assert_eq!(d.len(), 1);
    assert_eq!((d[0].stats.count, d[0].stats.sum), (1, 12.0));
    let r = deltas_of(&flush, &MetricKey::Defined(2));
    assert_eq!((r[0].stats.count, r[0].stats.sum), (1, 5.0));
    let counters = e.counters();
    let c = &counters
        .iter()
        .find(|c| c.0 == MetricKey::Defined(2))
        .expect("metric")
        .2;
    assert_eq!(c.bad[&BadReason::RegexNoMatch].count, 2);
}

#[test]
fn nested_paths_decode_the_full_document() {
    let flat: crate::metric::MetricDefinition =
        serde_json::from_str(r#"{"name":"flat","stream":"n","value":"/v"}"#).expect("json");
    let deep: crate::metric::MetricDefinition = serde_json::from_str(
        r#"{"name":"deep","stream":"n","value":"/m/v","dimensions":["/tags/0"]}"#,
    )
    .expect("json");
    let mut e = engine_with(&[flat, deep], EngineConfig::default());
    e.ingest(
        &batch(
            "n",
            vec![record(r#"{"v":3,"m":{"v":4},"tags":["x"]}"#, T0)],
            1,
        ),
        T0,
    );
    let flush = e.take_flush();
    assert_eq!(deltas_of(&flush, &MetricKey::Defined(1))[0].stats.sum, 3.0);
    let d = deltas_of(&flush, &MetricKey::Defined(2));
    assert_eq!(
        (d[0].stats.sum, d[0].labels()),
        (4.0, vec!["x".to_string()])
    );
}

#[test]
fn a_failed_flush_is_restored_and_not_double_windowed() {
    let mut e = engine_with(&[latency_def()], EngineConfig::default());
    e.ingest(
        &batch("clickstream", vec![record(&click("eu", 10, T0), T0)], 1),
        T0,
    );
    let flush = e.take_flush();
    e.ingest(
        &batch("clickstream", vec![record(&click("eu", 20, T0), T0)], 2),
        T0,
    );
    e.restore(flush);
    let again = e.take_flush();
    assert_eq!(again.positions[0].2, 2, "the newer position wins");
    let d = deltas_of(&again, &MetricKey::Defined(1));
    assert_eq!(d.iter().map(|d| d.stats.count).sum::<u64>(), 2);
    let w = e.windows(T0);
    let eu = w
        .series
        .iter()
        .find(|s| s.metric == MetricKey::Defined(1))
        .expect("series");
    assert_eq!(eu.windows[0].summary.count, 2);
}

#[test]
fn a_failed_flush_of_a_metric_retired_meanwhile_is_restored() {
    let mut e = engine_with(&[latency_def()], EngineConfig::default());
    e.ingest(
        &batch("clickstream", vec![record(&click("eu", 10, T0), T0)], 1),
        T0,
    );
    let flush = e.take_flush();
    // Deleted while its last deltas are being written: nothing pending, so it goes.
    e.set_definitions(Vec::new());
    e.restore(flush);
    let again = e.take_flush();
    assert_eq!(again.positions[0].2, 1);
    let d = deltas_of(&again, &MetricKey::Defined(1));
    assert_eq!(d.len(), 1, "the restored delta is written again");
    assert_eq!(
        (d[0].stats.count, d[0].labels()),
        (1, vec!["eu".to_string(), "/a".to_string()])
    );
    assert!(!d[0].counts.is_empty());
    // Once written, the retired metric is dropped again.
    assert!(deltas_of(&e.take_flush(), &MetricKey::Defined(1)).is_empty());
    assert!(e.window(T0, "request_latency", 60).is_none());
}

#[test]
fn live_windows_include_records_not_yet_flushed_exactly_once() {
    let mut e = engine_with(&[latency_def()], EngineConfig::default());
    let eu = |e: &Engine<u32>, now_ms: i64| {
        e.windows(now_ms)
            .series
            .into_iter()
            .find(|s| s.metric == MetricKey::Defined(1))
            .expect("series")
            .windows
    };
    e.ingest(
        &batch("clickstream", vec![record(&click("eu", 10, T0), T0)], 1),
        T0,
    );
    // Before any flush: the 1-min and 1-h windows see it, and its rate covers 1 s of life.
    let w = eu(&e, T0);
    assert_eq!((w[0].summary.count, w[3].summary.count), (1, 1));
    assert_eq!(w[0].summary.rate_per_s, 1.0);
    assert_eq!(w[0].summary.p50, Some(10));
    let flush = e.take_flush();
    e.ingest(
        &batch(
            "clickstream",
            vec![record(&click("eu", 30, T0 + 1000), T0 + 1000)],
            2,
        ),
        T0 + 1000,
    );
    let w = eu(&e, T0 + 1000);
    assert_eq!(
        w[0].summary.count, 2,
        "one flushed + one pending, each once"
    );
    assert_eq!(w[0].summary.max, Some(30.0));
    // A failed flush put back is already in the windows: not counted twice.
    e.restore(flush);
    assert_eq!(eu(&e, T0 + 1000)[0].summary.count, 2);
    // The engine's merged window for alerts sees the pending record too.
    let merged = e
        .window(T0 + 1000, "request_latency", 60)
        .expect("metric")
        .merged;
    assert_eq!(merged.summary.count, 2);
    e.take_flush();
    assert_eq!(eu(&e, T0 + 1000)[0].summary.count, 2);
    // Out of the 1-minute window 61 s later, still in the 1-hour one.
    let w = eu(&e, T0 + 61_000);
    assert_eq!((w[0].summary.count, w[3].summary.count), (0, 2));
}

#[test]
fn a_flush_before_a_cutoff_takes_complete_seconds_and_their_positions_only() {
    let mut e = engine_with(&[latency_def()], EngineConfig::default());
    let s0 = T0.div_euclid(1000);
    let at = |second: i64, ms: i64| second * 1000 + ms;
    // Shard 1: batch 1 ends second s0, batch 2 reaches into s0 + 1 (batch 3, a late record
    // for s0, is coalesced into it), batch 4, ingested in s0 + 2, has a record 4 s later
    // still (event time in the future).
    let b = |records: Vec<ConsumedRecord>, position: u32| batch("clickstream", records, position);
    e.ingest(
        &b(vec![record(&click("eu", 10, at(s0, 900)), at(s0, 900))], 1),
        at(s0, 920),
    );
    e.ingest(
        &b(
            vec![
                record(&click("eu", 20, at(s0, 950)), at(s0, 950)),
                record(&click("eu", 30, at(s0 + 1, 100)), at(s0 + 1, 100)),
            ],
            2,
        ),
        at(s0 + 1, 120),
    );
    e.ingest(
        &b(
            vec![record(&click("eu", 40, at(s0, 990)), at(s0 + 1, 200))],
            3,
        ),
        at(s0 + 1, 220),
    );
    e.ingest(
        &b(
            vec![record(&click("eu", 50, at(s0 + 6, 0)), at(s0 + 1, 300))],
            4,
        ),
        at(s0 + 2, 10),
    );

    // Flushed during s0 + 1: batch 1 only, with its position. Batches 2 and 3 reach into
    // s0 + 1: none of their deltas goes yet, not even for s0 (after a crash they are read
    // again).
    let flush = e.take_flush_before(s0 + 1);
    let d = deltas_of(&flush, &MetricKey::Defined(1));
    assert_eq!(
        d.iter()
            .map(|d| (d.second, d.stats.count))
            .collect::<Vec<_>>(),
        [(s0, 1)]
    );
    assert_eq!(flush.positions.iter().map(|p| p.2).collect::<Vec<_>>(), [1]);
    assert!(flush.deltas.iter().all(|d| d.second == s0));
    // Live windows count everything once, flushed or not.
    let live = |e: &Engine<u32>| {
        e.window(at(s0 + 6, 0), "request_latency", 60)
            .expect("metric")
            .merged
            .summary
            .count
    };
    assert_eq!(live(&e), 5);

    // A failed write is put back and retried by the next flush whatever its cutoff; the
    // position put back is the newest the next flush may take.
    e.restore(flush);
    assert_eq!(live(&e), 5);
    let flush = e.take_flush_before(s0 + 1);
    assert_eq!(deltas_of(&flush, &MetricKey::Defined(1)).len(), 1);
    assert_eq!(flush.positions.iter().map(|p| p.2).collect::<Vec<_>>(), [1]);

    // Once s0 + 1 is complete: batches 2 and 3 (coalesced), not batch 4; their records for
    // s0 go into the row already written.
    let flush = e.take_flush_before(s0 + 2);
    let d = deltas_of(&flush, &MetricKey::Defined(1));
    assert_eq!(
        d.iter()
            .map(|d| (d.second, d.stats.count))
            .collect::<Vec<_>>(),
        [(s0, 2), (s0 + 1, 1)]
    );
    assert_eq!(flush.positions.iter().map(|p| p.2).collect::<Vec<_>>(), [3]);
    // The future record goes with its batch once s0 + 2 is complete: it does not hold its
    // shard's position (and every later batch's deltas) until its own second.
    let flush = e.take_flush_before(s0 + 3);
    let d = deltas_of(&flush, &MetricKey::Defined(1));
    assert_eq!(
        d.iter()
            .map(|d| (d.second, d.stats.count))
            .collect::<Vec<_>>(),
        [(s0 + 6, 1)]
    );
    assert_eq!(flush.positions.iter().map(|p| p.2).collect::<Vec<_>>(), [4]);
    assert!(e.take_flush().is_empty());
    assert_eq!(live(&e), 5);
}

#[test]
fn retired_definitions_flush_their_deltas_then_go() {
    let mut e = engine_with(&[latency_def()], EngineConfig::default());
    e.ingest(
        &batch("clickstream", vec![record(&click("eu", 10, T0), T0)], 1),
        T0,
    );
    e.set_definitions(Vec::new());
    e.ingest(
        &batch("clickstream", vec![record(&click("eu", 10, T0), T0)], 2),
        T0,
    );
    let flush = e.take_flush();
    assert_eq!(deltas_of(&flush, &MetricKey::Defined(1))[0].stats.count, 1);
    assert!(!e.counters().iter().any(|c| c.0 == MetricKey::Defined(1)));
}

/// The `q`-quantile of sorted integer values as HdrHistogram reports it: the value of rank
/// `ceil(q * n)`, as the highest value of its bucket in `template`'s layout.
fn pooled_quantile(template: &Histogram<u64>, sorted: &[u64], q: f64) -> u64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
    template.highest_equivalent(sorted[rank - 1])
}

#[test]
fn merged_live_percentiles_are_the_exact_quantiles_of_the_pooled_values() {
    let mut e = engine_with(&[latency_def()], EngineConfig::default());
    let spec = latency_def().histogram;
    let template =
        Histogram::<u64>::new_with_bounds(spec.lowest, spec.highest, spec.significant_figures)
            .unwrap();
    // 40 series (regions) with shifted, overlapping spreads, 5 records each per second for 90
    // seconds: the first 80 seconds flushed into the windows, the last 10 still pending.
    let mut pooled_1m = Vec::new();
    let mut pooled_1h = Vec::new();
    let mut x = 0x2545_f491_u64;
    let now = T0 + 89_000;
    for s in 0..90_i64 {
        let at = T0 + s * 1000;
        let mut records = Vec::new();
        for series in 0..40_u64 {
            for _ in 0..5 {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let value = 1 + series * 50 + (x >> 33) % (200 + series * 20);
                records.push(record(&click(&format!("r{series}"), value, at), at));
                pooled_1h.push(value);
                if at / 1000 > now / 1000 - 60 {
                    pooled_1m.push(value);
                }
            }
        }
        e.ingest(&batch("clickstream", records, s as u32), at);
        if s == 79 {
            e.take_flush_before(at / 1000 + 1);
        }
    }
    let live = e.windows(now);
    let merged = live
        .metrics
        .iter()
        .find(|m| m.metric == MetricKey::Defined(1))
        .expect("the metric merged");
    pooled_1m.sort_unstable();
    pooled_1h.sort_unstable();
    for (window, pooled) in merged
        .windows
        .iter()
        .zip([&pooled_1m, &pooled_1h, &pooled_1h, &pooled_1h])
    {
        let s = &window.summary;
        assert_eq!(s.count, pooled.len() as u64, "{}-s window", window.window_s);
        for (q, got) in Summary::QUANTILES
            .into_iter()
            .zip([s.p50, s.p90, s.p99, s.p999])
        {
            assert_eq!(
                got,
                Some(pooled_quantile(&template, pooled, q)),
                "q{q} of the {}-s window",
                window.window_s
            );
        }
    }
    // The bound the cards showed before (the largest series' p99) is not the merged p99.
    let largest_p99 = live
        .series
        .iter()
        .filter_map(|s| s.windows[0].summary.p99)
        .max()
        .expect("series have percentiles");
    assert!(largest_p99 > merged.windows[0].summary.p99.expect("merged p99"));
    // All flushed: the merged windows alone give the same figures.
    e.take_flush();
    let flushed = e.windows(now);
    let again = flushed
        .metrics
        .iter()
        .find(|m| m.metric == MetricKey::Defined(1))
        .expect("the metric merged");
    assert_eq!(again.windows, merged.windows);
}
