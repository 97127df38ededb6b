//! The real `streamboard serve` binary as a child process, and the ground truth its stored
//! summaries are checked against: the reliability tests (crashes, faults, disk full) put a
//! known data set through a real producer and compare what SQLite holds with it.

use super::free_port;
use contract::api::Point;
use rand::{Rng, rngs::StdRng};
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
};
use streamboard::{
    producer::{Producer, ProducerRecord},
    query::{QueryRequest, query},
    storage::Database,
};

/// The regions records are spread over (the metric's one dimension).
pub const REGIONS: [&str; 3] = ["eu", "us", "ap"];
/// The metric every reliability test defines: `latency_ms` by region.
pub const METRIC: &str = "latency";

/// Writes a config file reading `stream` from its start with the [`METRIC`] definition.
pub fn write_config(dir: &Path, stream: &str) -> PathBuf {
    let path = dir.join("streamboard.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[[streams]]
name = "{stream}"
start = "trim_horizon"

[[metrics]]
name = "{METRIC}"
stream = "{stream}"
value = "/latency_ms"
dimensions = ["/region"]
"#
        ),
    )
    .expect("the config file is written");
    path
}

/// A running `streamboard serve`, killed with SIGKILL when dropped.
pub struct Serve {
    child: Child,
    pub addr: SocketAddr,
}

impl Serve {
    /// Starts `serve` with `config`, `data_dir` and the Kinesis `endpoint`, polling fast and
    /// flushing every 200 ms; `extra` flags are appended.
    pub fn spawn(config: &Path, data_dir: &Path, endpoint: &str, extra: &[&str]) -> Serve {
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let child = Command::new(env!("CARGO_BIN_EXE_streamboard"))
            .args(["serve", "--config"])
            .arg(config)
            .arg("--data-dir")
            .arg(data_dir)
            .args([
                "--listen",
                &addr.to_string(),
                "--kinesis-endpoint",
                endpoint,
                "--idle-poll-interval",
                "50ms",
                "--flush-interval",
                "200ms",
            ])
            .args(extra)
            .env("STREAMBOARD_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the streamboard binary starts");
        Serve { child, addr }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory of the process in KiB (Linux `/proc`).
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.pid())
    }

    /// `GET path` on the server: status and body, or `None` while it does not listen yet.
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        tokio::net::TcpStream::connect(self.addr).await.ok()?;
        Some(super::http_text(self.addr, "GET", path, None).await)
    }

    /// Waits until the server answers `/healthz` (it migrates and starts in a moment).
    pub async fn wait_ready(&self) {
        super::eventually_within(
            "the server answers",
            std::time::Duration::from_secs(30),
            || async { self.get("/healthz").await.is_some() },
        )
        .await;
    }

    /// A line of its Prometheus `/metrics`: the values of every sample of `name`.
    pub async fn metric_values(&self, name: &str) -> Vec<f64> {
        let Some((200, text)) = self.get("/metrics").await else {
            return Vec::new();
        };
        text.lines()
            .filter(|line| {
                line.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(['{', ' ']))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse().ok())
            .collect()
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // SIGKILL: this child only, by its pid.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `VmRSS` of process `pid` in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The values put so far, per region: the ground truth. Shared by the producing tasks.
#[derive(Clone, Default)]
pub struct Truth(Arc<Mutex<Vec<(usize, u64)>>>);

impl Truth {
    /// Puts `count` random records (`{"region","latency_ms"}`) with `producer` and, once they
    /// are acknowledged, adds them to the truth; panics when the producer gives up on any.
    pub async fn put(&self, producer: &Producer, rng: &mut StdRng, count: usize) {
        let data: Vec<(usize, u64)> = (0..count)
            .map(|_| {
                (
                    rng.random_range(0..REGIONS.len()),
                    rng.random_range(1..=50_000u64),
                )
            })
            .collect();
        let records = data
            .iter()
            .map(|(region, value)| ProducerRecord {
                partition_key: format!("k{}", rng.random_range(0..64u32)),
                explicit_hash_key: None,
                data: format!(
                    r#"{{"region":"{}","latency_ms":{value}}}"#,
                    REGIONS[*region]
                )
                .into_bytes()
                .into(),
            })
            .collect();
        let report = producer.put(records).await;
        assert_eq!(report.failed, 0, "the producer gave up on records");
        self.0
            .lock()
            .expect("no test thread panicked holding the truth")
            .extend(data);
    }

    /// How many records were put.
    pub fn len(&self) -> u64 {
        self.0.lock().expect("the truth lock").len() as u64
    }

    /// The exact figures of one region's values (or all of them).
    pub fn figures(&self, region: Option<usize>) -> Figures {
        let mut values: Vec<u64> = self
            .0
            .lock()
            .expect("the truth lock")
            .iter()
            .filter(|(r, _)| region.is_none_or(|want| *r == want))
            .map(|(_, v)| *v)
            .collect();
        Figures::of(&mut values)
    }

    /// Checks the stored summaries (all regions, then each) against the truth.
    pub async fn check_stored(&self, database: &Database) {
        let overall = stored_summary(database, None)
            .await
            .expect("a stored summary");
        check(&overall, &self.figures(None), "all regions");
        for (r, region) in REGIONS.iter().enumerate() {
            let stored = stored_summary(database, Some(region))
                .await
                .expect("a stored summary");
            check(&stored, &self.figures(Some(r)), region);
        }
    }
}

/// The exact figures of a set of values.
pub struct Figures {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub p50: f64,
    pub p99: f64,
}

impl Figures {
    pub fn of(values: &mut [u64]) -> Figures {
        assert!(!values.is_empty(), "no values to summarise");
        values.sort_unstable();
        let at = |q: f64| values[((q * values.len() as f64).ceil() as usize).max(1) - 1] as f64;
        Figures {
            count: values.len() as u64,
            sum: values.iter().sum::<u64>() as f64,
            min: values[0] as f64,
            max: values[values.len() - 1] as f64,
            p50: at(0.5),
            p99: at(0.99),
        }
    }
}

/// The stored 1-second summary of [`METRIC`] over the last hour (one series, or all).
pub async fn stored_summary(database: &Database, series: Option<&str>) -> Option<Point> {
    let now = streamboard::clock::now_ms();
    let request = QueryRequest {
        metric: METRIC.into(),
        series: series.map(|s| vec![s.to_string()]),
        from_ms: now - 3_600_000,
        to_ms: now + 60_000,
        tier_s: Some(1),
    };
    query(database, &request).await.ok().map(|r| r.summary)
}

/// How many records the stored summary counts.
pub async fn stored_count(database: &Database) -> u64 {
    stored_summary(database, None)
        .await
        .map_or(0, |p| p.summary.count)
}

/// Count, sum, min and max exact; percentiles within HdrHistogram's two significant figures.
pub fn check(stored: &Point, expected: &Figures, what: &str) {
    assert_eq!(stored.summary.count, expected.count, "{what}: count");
    assert_eq!(stored.summary.sum, expected.sum, "{what}: sum");
    assert_eq!(stored.summary.min, Some(expected.min), "{what}: min");
    assert_eq!(stored.summary.max, Some(expected.max), "{what}: max");
    for (name, got, want) in [
        ("p50", stored.summary.p50, expected.p50),
        ("p99", stored.summary.p99, expected.p99),
    ] {
        let got = got.unwrap_or_else(|| panic!("{what}: {name} missing")) as f64;
        assert!(
            (got - want).abs() <= want * 0.01 + 1.0,
            "{what}: {name} {got} vs exact {want}"
        );
    }
}

/// `STREAMBOARD_SOAK` is set (by `make soak`): run the long version of a test.
pub fn soak() -> bool {
    std::env::var_os("STREAMBOARD_SOAK").is_some_and(|v| !v.is_empty() && v != "0")
}
