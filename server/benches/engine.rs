//! Metrics engine benchmarks (`cargo bench -p streamboard --bench engine`; harness = false).
//!
//! 1. Throughput in-process: decode + extract + filter + aggregate of 150-byte JSON records,
//!    3 metrics, 100 series, read from 8 shards, one core (the pure `Engine` on this thread).
//! 2. Partitioned throughput (`partitions`): the same input through the engine task
//!    (`engine::shell::spawn`: the coordinator, one thread per partition, the writer with a
//!    real SQLite file), with 1 and 2 partitions (`PARTITIONS=1,2,4` to choose), by wall clock
//!    from the first batch sent to the commit of the flush that holds the last.
//! 3. Memory per live series with all windows filled (1 h of data), 10,000 series: RSS delta.
//! 4. Flush cost with 10,000 changed series per second into a real SQLite file (1-second rows,
//!    roll-up marks, and the minute roll-up when its period closes; V2 histograms; one
//!    transaction per flush), averaged over a minute, as a share of one core. Flushes come
//!    every second, half-way through it (as the server's, not aligned to second boundaries),
//!    and take the complete seconds (`take_flush_before` the current one). `FLUSH_TRACE=1`
//!    prints each flush's time and its `take_flush` part. `FLUSH_BACKEND=postgres` runs it on
//!    PostgreSQL instead (a server started as the tests start one, or `STREAMBOARD_TEST_POSTGRES`)
//!    and also reports the CPU of the PostgreSQL server's processes.
//!
//! "Per core" figures use CPU time (`clock_gettime`: the thread's for throughput, the process's
//! for the flush: all its threads, sqlx's SQLite worker included), as the machine is shared.
//!
//! Run `engine <names>` (throughput, partitions, memory or flush, comma-separated) to run only
//! those; `engine throughput,partitions` gives the speed-up line.
//! `ENGINE_PASSES=N` scales the throughput runs (passes over the input: 5 through the pure
//! engine, twice that through the engine task); with both throughput parts run, the closing
//! line prints the partitions' speed-up over one partition and over the pure engine, with the
//! load average at the start (the wall-clock figures need idle cores).

#[path = "../tests/support/postgres.rs"]
mod test_postgres;

use bytes::Bytes;
use rand::{Rng, SeedableRng, rngs::StdRng};
use std::{collections::HashSet, time::Instant};
use streamboard::{
    engine::{Engine, EngineConfig, ShellConfig, shell, window::Windows},
    kinesis::{ConsumedRecord, RecordBatch, SequenceNumber},
    metric::{MetricDefinition, Stats, histogram::sparse_of},
    storage::{
        Database, NoCheckpoints,
        flush::{CLOSE_AFTER_S, FlushState, write_flush},
    },
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

const T0_MS: i64 = 1_700_000_000_000;

fn defs(json: serde_json::Value) -> Vec<(i64, streamboard::metric::CompiledMetric)> {
    let list: Vec<MetricDefinition> = serde_json::from_value(json).expect("definitions");
    list.iter()
        .enumerate()
        .map(|(i, d)| {
            (
                i as i64 + 1,
                d.compile(None, &HashSet::new()).expect("valid"),
            )
        })
        .collect()
}

fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<usize>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

/// Shards the throughput input is read from (a batch per shard in turn).
const SHARDS: usize = 8;

/// The throughput input: 200,000 records of about 150 bytes in batches of 500 over
/// [`SHARDS`] shards, and the three metrics.
fn throughput_input() -> (Vec<RecordBatch<()>>, serde_json::Value) {
    let mut rng = StdRng::seed_from_u64(1);
    let regions = [
        "eu-west-1",
        "us-east-1",
        "ap-south-1",
        "sa-east-1",
        "eu-north-1",
    ];
    let paths = [
        "/",
        "/cart",
        "/checkout",
        "/search",
        "/product",
        "/login",
        "/logout",
        "/api/v1/items",
        "/help",
        "/about",
        "/a",
        "/b",
        "/c",
        "/d",
        "/e",
        "/f",
        "/g",
        "/h",
        "/i",
        "/j",
    ];
    // 5 regions x 20 paths = 100 series for the latency metric.
    let records: Vec<ConsumedRecord> = (0..200_000)
        .map(|i| {
            let data = format!(
                r#"{{"region":"{}","path":"{}","status":{},"latency_ms":{},"bytes":{},"event_time":{},"ua":"bench/1.0 (x86_64) streamboard-load"}}"#,
                regions[rng.random_range(0..regions.len())],
                paths[rng.random_range(0..paths.len())],
                if rng.random_bool(0.05) { 503 } else { 200 },
                rng.random_range(1..2000),
                rng.random_range(100..90_000),
                T0_MS + i / 100,
            );
            ConsumedRecord {
                sequence_number: SequenceNumber::parse("1").expect("digits"),
                sub_sequence: None,
                partition_key: "pk".into(),
                data: Bytes::from(data),
                arrival_time_ms: T0_MS + i / 100,
                explicit_hash_key: None,
            }
        })
        .collect();
    let batches: Vec<RecordBatch<()>> = records
        .chunks(500)
        .enumerate()
        .map(|(i, c)| RecordBatch {
            stream: "clickstream".into(),
            shard: format!("shardId-{}", i % SHARDS).as_str().into(),
            records: c.to_vec(),
            millis_behind_latest: Some(0),
            position: (),
        })
        .collect();
    let definitions = serde_json::json!([
        {"name": "latency", "stream": "clickstream", "value": "/latency_ms", "dimensions": ["/region", "/path"],
         "time": {"field": "/event_time", "format": "epoch_ms"}},
        {"name": "errors", "stream": "clickstream", "filter": "/status >= 500", "dimensions": ["/region"]},
        {"name": "bytes", "stream": "clickstream", "value": "/bytes", "dimensions": ["/region"],
         "histogram": {"lowest": 1, "highest": 100000000, "significant_figures": 2}}
    ]);
    (batches, definitions)
}

/// Passes over the throughput input through the pure engine (`ENGINE_PASSES`, default 5).
fn passes() -> usize {
    std::env::var("ENGINE_PASSES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5)
}

/// The 1-minute load average (`/proc/loadavg`).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

/// Returns records/s: (per thread CPU-second, by wall clock).
fn throughput() -> (f64, f64) {
    let (batches, definitions) = throughput_input();
    let records = batches.iter().map(|b| b.records.len()).sum::<usize>();
    let avg_len = batches
        .iter()
        .flat_map(|b| &b.records)
        .map(|r| r.data.len())
        .sum::<usize>()
        / records;
    let mut engine: Engine = Engine::new(EngineConfig::default());
    engine.set_definitions(defs(definitions));
    // Warm up (series created), then measure several passes.
    for b in &batches {
        engine.ingest(b, T0_MS);
    }
    let _ = engine.take_flush();
    let passes = passes();
    let start = Instant::now();
    let cpu_start = thread_cpu();
    let mut flush_time = std::time::Duration::ZERO;
    for _ in 0..passes {
        for (i, b) in batches.iter().enumerate() {
            engine.ingest(b, T0_MS);
            if i % 200 == 199 {
                let f = Instant::now();
                let _ = engine.take_flush();
                flush_time += f.elapsed();
            }
        }
    }
    let elapsed = start.elapsed();
    let cpu = thread_cpu() - cpu_start;
    let n = (records * passes) as f64;
    println!(
        "throughput: {:.2} M records/s per core of thread CPU time ({:.2} M/s by wall clock; {} records \
         of {} bytes avg, 3 metrics, {} series; take_flush share {:.1}%)",
        n / cpu.as_secs_f64() / 1e6,
        n / elapsed.as_secs_f64() / 1e6,
        n,
        avg_len,
        engine.series_count(),
        100.0 * flush_time.as_secs_f64() / elapsed.as_secs_f64(),
    );
    (n / cpu.as_secs_f64(), n / elapsed.as_secs_f64())
}

/// The throughput input through the engine task with `partitions` partitions: wall clock and
/// process CPU from the first batch sent to the commit of the flush that holds the last.
/// Returns records/s by wall clock.
fn throughput_partitioned(partitions: usize) -> f64 {
    let (batches, definitions) = throughput_input();
    let passes = 2 * passes();
    // Built before the clock starts: the sender only moves them into the channel.
    let warm_up: Vec<RecordBatch<()>> = batches.iter().take(40).cloned().collect();
    let input: Vec<RecordBatch<()>> = (0..passes).flat_map(|_| batches.iter().cloned()).collect();
    let n = input.iter().map(|b| b.records.len()).sum::<usize>() as f64;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = tempfile_dir();
        let db = Database::open(&dir).await.expect("database");
        for (_, c) in &defs(definitions) {
            db.insert_definition(&c.definition, T0_MS).await.expect("insert");
        }
        let tracker = TaskTracker::new();
        let shutdown = CancellationToken::new();
        let config = ShellConfig {
            partitions,
            ..ShellConfig::default()
        };
        let (handle, sender) =
            shell::spawn(config, db.clone(), NoCheckpoints, &tracker, shutdown.clone())
                .await
                .expect("engine");
        for batch in warm_up {
            sender.send(batch).await.expect("engine running");
        }
        handle.flush().await.expect("engine running").expect("flush");
        let start = Instant::now();
        let cpu_start = process_cpu();
        for batch in input {
            sender.send(batch).await.expect("engine running");
        }
        handle.flush().await.expect("engine running").expect("flush");
        let elapsed = start.elapsed();
        let cpu = process_cpu() - cpu_start;
        println!(
            "throughput, engine task with {partitions} partition(s), {SHARDS} shards: {:.2} M records/s by \
             wall clock ({:.2} M records per CPU-second of the process; {} records)",
            n / elapsed.as_secs_f64() / 1e6,
            n / cpu.as_secs_f64() / 1e6,
            n,
        );
        shutdown.cancel();
        tracker.close();
        tracker.wait().await;
        db.close().await;
        let _ = std::fs::remove_dir_all(&dir);
        n / elapsed.as_secs_f64()
    })
}

fn memory() {
    let series = 10_000;
    let mut rng = StdRng::seed_from_u64(2);
    // A realistic second: 20 latency values, spread over 1..2000 ms.
    let seconds: Vec<(Stats, Vec<(u32, u64)>)> = (0..64)
        .map(|_| {
            let mut h =
                hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000, 2).expect("bounds");
            let mut stats = Stats::EMPTY;
            for _ in 0..20 {
                let v: u64 = rng.random_range(1..2000);
                h.record(v).expect("in range");
                stats.add(v as f64);
            }
            let mut sparse = Vec::new();
            sparse_of(&h, &mut sparse);
            (stats, sparse)
        })
        .collect();
    let before = rss_bytes();
    let mut all: Vec<Windows> = Vec::with_capacity(series);
    let mut heap = 0;
    for s in 0..series {
        let mut w = Windows::new();
        for t in 0..3600 {
            let (stats, sparse) = &seconds[(s + t) % seconds.len()];
            w.add_sparse(T0_MS / 1000 + t as i64, stats, sparse);
        }
        heap += w.heap_bytes();
        all.push(w);
    }
    let after = rss_bytes();
    println!(
        "memory: {series} series with all windows filled (1 h, 20 values/s): RSS +{:.0} MiB = {:.1} KiB per series \
         (windows' own estimate {:.1} KiB); plus while a second is pending flush, one dense u32 count \
         per bucket (8 KiB at 1..3.6e6, 2 s.f.) per changed series",
        (after - before) as f64 / (1 << 20) as f64,
        (after - before) as f64 / series as f64 / 1024.0,
        heap as f64 / series as f64 / 1024.0,
    );
    drop(all);
}

fn flush_cost() {
    let postgres = std::env::var("FLUSH_BACKEND").is_ok_and(|b| b == "postgres");
    // PostgreSQL's flush blocks its worker in `block_in_place`: a multi-thread runtime (one
    // worker, as the flush has one task).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = tempfile_dir();
        let url: Option<streamboard::storage::DatabaseUrl> = if postgres {
            Some(test_postgres::fresh_database().await.parse().expect("a URL"))
        } else {
            None
        };
        let db = Database::connect(url.as_ref(), &dir).await.expect("database");
        let backend = if postgres { "PostgreSQL" } else { "SQLite" };
        let compiled = defs(serde_json::json!([
            {"name": "latency", "stream": "s", "value": "/latency_ms", "dimensions": ["/user"]}
        ]));
        for (_, c) in &compiled {
            db.insert_definition(&c.definition, T0_MS).await.expect("insert");
        }
        let mut engine: Engine = Engine::new(EngineConfig {
            max_series_per_metric: 20_000,
            ..EngineConfig::default()
        });
        engine.set_definitions(compiled);
        let mut rng = StdRng::seed_from_u64(3);
        let mut state = FlushState::default();
        // From the start of a minute to just past its close, so the average includes one
        // minute roll-up (the hour roll-up, once an hour, costs about as much as a minute one).
        let minute_s = (T0_MS / 1000).div_euclid(60) * 60 + 60;
        let seconds = 60 + CLOSE_AFTER_S + 2;
        let mut times = Vec::new();
        let mut rows = 0;
        let mut cpu = std::time::Duration::ZERO;
        let mut server_cpu = std::time::Duration::ZERO;
        let mut take = std::time::Duration::ZERO;
        for s in 0..seconds {
            // A flush does not fall on a second boundary: it comes half-way through second s.
            // Since the last one, 30,000 records (3 per series) arrived, spread evenly, read as
            // the consumer does, a batch per 200 ms poll of the shard (polls at .1, .3, ... so
            // one batch per second spans a boundary). The flush takes the complete seconds of
            // the batches whose seconds are all complete (exactly-once: a batch's deltas go
            // with its position): second s - 1, but the spanning batch's part of it only with
            // that batch, a second later, merged into the row already written.
            let now_ms = (minute_s + s) * 1000 + 500;
            let arrival = |i: i64| now_ms - 1000 + 1 + i / 30;
            let records: Vec<ConsumedRecord> = (0..10_000 * 3)
                .map(|i| ConsumedRecord {
                    sequence_number: SequenceNumber::parse("1").expect("digits"),
                    sub_sequence: None,
                    partition_key: "pk".into(),
                    data: Bytes::from(format!(r#"{{"user":"u{}","latency_ms":{}}}"#, i % 10_000, rng.random_range(1..2000))),
                    arrival_time_ms: arrival(i),
                    explicit_hash_key: None,
                })
                .collect();
            for poll in records.chunk_by(|a, b| {
                (a.arrival_time_ms - 100).div_euclid(200) == (b.arrival_time_ms - 100).div_euclid(200)
            }) {
                engine.ingest(
                    &RecordBatch { stream: "s".into(), shard: "shardId-0".into(), records: poll.to_vec(), millis_behind_latest: Some(0), position: () },
                    now_ms,
                );
            }
            let start = Instant::now();
            let cpu_start = process_cpu();
            let server_start = postgres_server_cpu();
            let flush = engine.take_flush_before(now_ms.div_euclid(1000));
            let taken = start.elapsed();
            take += taken;
            rows += flush.deltas.len();
            write_flush(&db, &flush, &mut NoCheckpoints, &mut state).await.expect("flush");
            let took = start.elapsed();
            if s > 0 {
                times.push(took);
                if std::env::var_os("FLUSH_TRACE").is_some() {
                    eprintln!(
                        "flush {s}: {:.0} ms (take_flush {:.0} ms), {} deltas",
                        took.as_secs_f64() * 1000.0,
                        taken.as_secs_f64() * 1000.0,
                        flush.deltas.len()
                    );
                }
                cpu += process_cpu() - cpu_start;
                server_cpu += postgres_server_cpu().saturating_sub(server_start);
            }
        }
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        let median = |t: &[std::time::Duration]| {
            let mut t = t.to_vec();
            t.sort();
            t[t.len() / 2]
        };
        println!(
            "flush: median of the first 5 flushes {:.0} ms, of the last 10 {:.0} ms (the table \
             grows by ~10,000 rows per flush); take_flush {:.0} ms per flush on average",
            ms(median(&times[..5])),
            ms(median(&times[times.len() - 10..])),
            ms(take) / seconds as f64,
        );
        let total: std::time::Duration = times.iter().sum();
        let per_second = total / times.len() as u32;
        let mut sorted = times.clone();
        sorted.sort();
        println!(
            "flush on {backend}: 10,000 changed series per second (+ built-ins), {} deltas per flush (the \
             complete second, new rows, + the spanning batch's part of the second before, merged), over {} flushes including one minute roll-up: {:.0} ms per flush on average = {:.1}% of one core \
             (wall; process CPU {:.1}% incl. sqlx's worker threads; PostgreSQL's server processes {:.1}%); median {:.0} ms, slowest \
             (the roll-up) {:.0} ms",
            rows / seconds as usize,
            times.len(),
            per_second.as_secs_f64() * 1000.0,
            per_second.as_secs_f64() * 100.0,
            cpu.as_secs_f64() * 100.0 / times.len() as f64,
            server_cpu.as_secs_f64() * 100.0 / times.len() as f64,
            sorted[sorted.len() / 2].as_secs_f64() * 1000.0,
            sorted[sorted.len() - 1].as_secs_f64() * 1000.0,
        );
        db.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    });
}

/// CPU time of every `postgres` process on the host (user + system, from /proc): the test
/// server's, as the bench runs on PostgreSQL. Zero on SQLite.
fn postgres_server_cpu() -> std::time::Duration {
    // SAFETY: sysconf has no preconditions.
    let ticks_per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let mut ticks = 0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((name, rest)) = stat.split_once(") ") else {
            continue;
        };
        if !name.ends_with("(postgres") {
            continue;
        }
        // Fields after the name: state is 3rd overall; utime and stime are the 14th and 15th.
        let fields: Vec<&str> = rest.split(' ').collect();
        if let (Some(user), Some(system)) = (fields.get(11), fields.get(12)) {
            ticks += user.parse::<u64>().unwrap_or(0) + system.parse::<u64>().unwrap_or(0);
        }
    }
    std::time::Duration::from_millis(ticks * 1000 / ticks_per_s)
}

/// CPU time of this process (all threads: the engine and sqlx's SQLite worker).
fn process_cpu() -> std::time::Duration {
    cpu_time(libc_clock::PROCESS)
}

/// CPU time of the calling thread.
fn thread_cpu() -> std::time::Duration {
    cpu_time(libc_clock::THREAD)
}

mod libc_clock {
    pub const PROCESS: i32 = 2; // CLOCK_PROCESS_CPUTIME_ID
    pub const THREAD: i32 = 3; // CLOCK_THREAD_CPUTIME_ID
}

fn cpu_time(clock: i32) -> std::time::Duration {
    // /proc/thread-self/stat would do too; clock_gettime is exact and cheap.
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }
    unsafe extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }
    let mut ts = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid pointer it is given.
    let rc = unsafe { clock_gettime(clock, &mut ts) };
    if rc != 0 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("streamboard-engine-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn main() {
    let only = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    let run = |name: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|o| o == name))
    };
    let load = load_average();
    let pure = run("throughput").then(throughput);
    let mut by_partitions = Vec::new();
    if run("partitions") {
        let counts = std::env::var("PARTITIONS").unwrap_or_else(|_| "1,2".into());
        for partitions in counts
            .split(',')
            .filter_map(|n| n.trim().parse::<usize>().ok())
        {
            by_partitions.push((partitions, throughput_partitioned(partitions)));
        }
    }
    let one = by_partitions.iter().find(|(p, _)| *p == 1).map(|(_, r)| *r);
    for &(partitions, rate) in by_partitions.iter().filter(|(p, _)| *p > 1) {
        let over_one = one.map_or("-".into(), |one| format!("{:.2}x", rate / one));
        let over_pure = pure.map_or("-".into(), |(cpu, wall)| {
            format!(
                "{:.2}x its CPU rate, {:.2}x its wall-clock rate",
                rate / cpu,
                rate / wall
            )
        });
        println!(
            "speed-up, {partitions} partitions by wall clock (load average {load} at the start): \
             {over_one} one partition; over the pure engine: {over_pure}"
        );
    }
    if run("memory") {
        memory();
    }
    if run("flush") {
        flush_cost();
    }
}
