//! Synthetic records for demos and tests: clickstream, logs and market data as JSON lines with
//! realistic shapes. Pure and seeded, so a seed always gives the same records.

use super::settings::DemoKind;
use aws_sdk_kinesis::primitives::{DateTime, DateTimeFormat};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};

const REGIONS: [(&str, u32); 5] = [
    ("us-east-1", 40),
    ("eu-west-1", 25),
    ("us-west-2", 15),
    ("ap-northeast-1", 12),
    ("sa-east-1", 8),
];
const PATHS: [(&str, u32); 7] = [
    ("/", 30),
    ("/search", 20),
    ("/product", 20),
    ("/cart", 10),
    ("/checkout", 5),
    ("/api/recommendations", 10),
    ("/login", 5),
];
const LEVELS: [(&str, u32); 4] = [("INFO", 80), ("WARN", 12), ("ERROR", 5), ("DEBUG", 3)];
const SERVICES: [&str; 5] = ["auth", "catalog", "orders", "payments", "search"];
const MESSAGES: [&str; 6] = [
    "request handled",
    "cache miss",
    "retrying upstream call",
    "slow query",
    "connection reset by peer",
    "user session refreshed",
];
const SYMBOLS: [(&str, f64); 5] = [
    ("AMZN", 185.0),
    ("MSFT", 420.0),
    ("AAPL", 190.0),
    ("GOOG", 170.0),
    ("NVDA", 120.0),
];

/// A seeded generator of one kind of record.
#[derive(Debug)]
pub struct DemoGenerator {
    kind: DemoKind,
    rng: StdRng,
    prices: Vec<f64>,
}

impl DemoGenerator {
    pub fn new(kind: DemoKind, seed: u64) -> Self {
        Self {
            kind,
            rng: StdRng::seed_from_u64(seed),
            prices: SYMBOLS.iter().map(|(_, price)| *price).collect(),
        }
    }

    /// The next record, stamped with `event_time` = `now_epoch_millis`.
    pub fn next_record(&mut self, now_epoch_millis: i64) -> Value {
        let event_time = DateTime::from_millis(now_epoch_millis)
            .fmt(DateTimeFormat::DateTime)
            .unwrap_or_default();
        match self.kind {
            DemoKind::Clickstream => {
                let region = weighted(&mut self.rng, &REGIONS);
                let path = weighted(&mut self.rng, &PATHS);
                let roll: f64 = self.rng.random();
                let status = if roll < 0.90 {
                    200
                } else if roll < 0.93 {
                    301
                } else if roll < 0.975 {
                    404
                } else if roll < 0.99 {
                    500
                } else {
                    503
                };
                // Lognormal: median 80 ms, a long tail into seconds.
                let latency_ms = lognormal(&mut self.rng, 80f64.ln(), 0.7).round().max(1.0);
                let bytes = lognormal(&mut self.rng, 8_000f64.ln(), 1.0).round() as u64;
                let user = format!("user-{:04}", self.rng.random_range(0..1_000));
                json!({
                    "event_time": event_time,
                    "region": region,
                    "path": path,
                    "status": status,
                    "latency_ms": latency_ms,
                    "bytes": bytes,
                    "user": user,
                })
            }
            DemoKind::Logs => {
                let level = weighted(&mut self.rng, &LEVELS);
                let service = SERVICES[self.rng.random_range(0..SERVICES.len())];
                let message = MESSAGES[self.rng.random_range(0..MESSAGES.len())];
                let duration_ms = (lognormal(&mut self.rng, 25f64.ln(), 0.9) * 10.0).round() / 10.0;
                json!({
                    "event_time": event_time,
                    "level": level,
                    "service": service,
                    "message": message,
                    "duration_ms": duration_ms,
                })
            }
            DemoKind::Market => {
                let index = self.rng.random_range(0..SYMBOLS.len());
                // Geometric random walk: ±0.1 % per tick, never below a cent.
                let step = 1.0 + normal(&mut self.rng) * 0.001;
                self.prices[index] = (self.prices[index] * step).max(0.01);
                let price = (self.prices[index] * 100.0).round() / 100.0;
                let volume = lognormal(&mut self.rng, 100f64.ln(), 1.2).round().max(1.0) as u64;
                json!({
                    "event_time": event_time,
                    "symbol": SYMBOLS[index].0,
                    "price": price,
                    "volume": volume,
                })
            }
        }
    }
}

fn weighted<'a>(rng: &mut StdRng, choices: &[(&'a str, u32)]) -> &'a str {
    let total: u32 = choices.iter().map(|(_, w)| w).sum();
    let mut pick = rng.random_range(0..total);
    for (choice, weight) in choices {
        if pick < *weight {
            return choice;
        }
        pick -= weight;
    }
    choices[0].0
}

/// Standard normal by Box-Muller.
fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn lognormal(rng: &mut StdRng, mu: f64, sigma: f64) -> f64 {
    (mu + sigma * normal(rng)).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_records() {
        let mut a = DemoGenerator::new(DemoKind::Clickstream, 1);
        let mut b = DemoGenerator::new(DemoKind::Clickstream, 1);
        for _ in 0..100 {
            assert_eq!(a.next_record(0), b.next_record(0));
        }
    }

    #[test]
    fn clickstream_shape_and_long_tail() {
        let mut generator = DemoGenerator::new(DemoKind::Clickstream, 42);
        let mut latencies = Vec::new();
        for _ in 0..5_000 {
            let record = generator.next_record(1_767_225_600_000);
            assert_eq!(record["event_time"], "2026-01-01T00:00:00Z");
            assert!(REGIONS.iter().any(|(r, _)| record["region"] == *r));
            assert!(record["path"].as_str().unwrap().starts_with('/'));
            let status = record["status"].as_u64().unwrap();
            assert!((200..600).contains(&status));
            assert!(record["bytes"].as_u64().is_some());
            assert!(record["user"].as_str().unwrap().starts_with("user-"));
            latencies.push(record["latency_ms"].as_f64().unwrap());
        }
        latencies.sort_by(f64::total_cmp);
        let median = latencies[latencies.len() / 2];
        let p99 = latencies[latencies.len() * 99 / 100];
        assert!((60.0..100.0).contains(&median), "median {median}");
        assert!(p99 > 3.0 * median, "long tail: p99 {p99}, median {median}");
    }

    #[test]
    fn logs_and_market_shapes() {
        let mut logs = DemoGenerator::new(DemoKind::Logs, 3);
        let mut errors = 0;
        for _ in 0..1_000 {
            let record = logs.next_record(0);
            let level = record["level"].as_str().unwrap();
            assert!(LEVELS.iter().any(|(l, _)| *l == level));
            errors += usize::from(level == "ERROR");
            assert!(SERVICES.contains(&record["service"].as_str().unwrap()));
            assert!(record["message"].is_string());
            assert!(record["duration_ms"].as_f64().unwrap() > 0.0);
            assert!(record["event_time"].is_string());
        }
        assert!((20..100).contains(&errors), "{errors} errors in 1000");

        let mut market = DemoGenerator::new(DemoKind::Market, 4);
        let mut last_amzn = None;
        for _ in 0..2_000 {
            let record = market.next_record(0);
            let price = record["price"].as_f64().unwrap();
            assert!(price > 0.0);
            assert!(record["volume"].as_u64().unwrap() >= 1);
            if record["symbol"] == "AMZN" {
                if let Some(last) = last_amzn {
                    let change: f64 = (price - last) / last;
                    assert!(change.abs() < 0.01, "a random walk moves in small steps");
                }
                last_amzn = Some(price);
            }
        }
    }
}
