//! Micro-benchmark: KPL de-aggregation, in user records per second (100-byte records, 500 per
//! aggregated record), plus encoding for comparison. `cargo bench --bench kpl_decode`.

use std::{hint::black_box, time::Instant};
use streamboard::kinesis::kpl::{self, Deaggregated, UserRecord};

fn main() {
    let records: Vec<UserRecord> = (0..500)
        .map(|i| UserRecord {
            partition_key: format!("user-{:04}", i % 50),
            explicit_hash_key: None,
            data: vec![b'x'; 100],
        })
        .collect();
    let aggregated = kpl::aggregate(&records);

    let seconds = 2.0;
    let started = Instant::now();
    let mut decoded = 0u64;
    while started.elapsed().as_secs_f64() < seconds {
        match kpl::deaggregate(black_box(&aggregated)) {
            Deaggregated::Aggregated(users) => decoded += users.len() as u64,
            Deaggregated::Plain => panic!("valid record decoded as plain"),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "kpl decode: {:.2} M user records/s ({} bytes per aggregated record of 500 x 100-byte records, MD5 included)",
        decoded as f64 / elapsed / 1e6,
        aggregated.len()
    );

    let started = Instant::now();
    let mut encoded = 0u64;
    while started.elapsed().as_secs_f64() < seconds {
        black_box(kpl::aggregate(black_box(&records)));
        encoded += records.len() as u64;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "kpl encode: {:.2} M user records/s",
        encoded as f64 / elapsed / 1e6
    );

    let plain = vec![b'{'; 100];
    let started = Instant::now();
    let mut checked = 0u64;
    while started.elapsed().as_secs_f64() < 1.0 {
        for _ in 0..1000 {
            black_box(kpl::deaggregate(black_box(&plain)));
        }
        checked += 1000;
    }
    println!(
        "plain-record check: {:.0} M records/s",
        checked as f64 / started.elapsed().as_secs_f64() / 1e6
    );
}
