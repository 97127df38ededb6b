//! History queries over the stored tiers: a metric's series, a time series over any range at
//! any tier (all series merged, or one), and one summary over the whole range whose
//! percentiles come from the merged HdrHistograms. Pure shaping ([`shape`]) is separate from
//! the reads so it is unit-tested without a database.

use crate::storage::{
    Database, StorageError,
    metrics::{MetricRecord, StoredBucket, TIERS_S},
};
use app::api::{Point, QueryResponse};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;

use super::window::Stats;

/// What to query.
#[derive(Debug, Clone)]
pub struct QueryRequest {
    /// Active metric name (a definition, or `builtin:<stream>:<kind>`).
    pub metric: String,
    /// One series' labels; none merges all series.
    pub series: Option<Vec<String>>,
    pub from_ms: i64,
    pub to_ms: i64,
    /// 1, 60 or 3600; none picks by range (≤ 2 h: 1 s, ≤ 3 d: 1 min, else 1 h).
    pub tier_s: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("no metric named {0:?}")]
    UnknownMetric(String),
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The tier `auto` picks for a range.
pub fn pick_tier(from_ms: i64, to_ms: i64) -> i64 {
    let span_s = (to_ms - from_ms) / 1000;
    if span_s <= 2 * 3600 {
        1
    } else if span_s <= 3 * 86_400 {
        60
    } else {
        3600
    }
}

/// The unit a metric declares (definitions) or has (built-ins).
pub fn unit_of(metric: &MetricRecord) -> Option<String> {
    match &metric.definition {
        Some(def) => def.unit.clone(),
        None => metric
            .name
            .rsplit(':')
            .next()
            .and_then(super::core::Builtin::parse)
            .map(|b| b.unit().to_string()),
    }
}

/// Runs a query against the database.
pub async fn query(
    database: &Database,
    request: &QueryRequest,
) -> Result<QueryResponse, QueryError> {
    if request.to_ms <= request.from_ms {
        return Err(QueryError::Invalid {
            field: "to",
            message: "must be after from".into(),
        });
    }
    let tier = request
        .tier_s
        .unwrap_or_else(|| pick_tier(request.from_ms, request.to_ms));
    if !TIERS_S.contains(&tier) {
        return Err(QueryError::Invalid {
            field: "tier",
            message: "must be 1s, 1m or 1h".into(),
        });
    }
    let metric = database
        .active_metric(&request.metric)
        .await?
        .ok_or_else(|| QueryError::UnknownMetric(request.metric.clone()))?;
    let series_json = request
        .series
        .as_ref()
        .map(|labels| serde_json::to_string(labels).expect("labels always serialise"));
    // Buckets that start before `from` but overlap it are included (tier alignment).
    let from_s = request.from_ms.div_euclid(1000).div_euclid(tier) * tier;
    let to_s = (request.to_ms + 999).div_euclid(1000);
    let buckets = database
        .read_buckets(metric.id, tier, series_json.as_deref(), from_s, to_s)
        .await?;
    let (points, summary) = shape(&buckets, tier, from_s, to_s);
    Ok(QueryResponse {
        metric: metric.name.clone(),
        unit: unit_of(&metric),
        tier_s: tier,
        from_ms: request.from_ms,
        to_ms: request.to_ms,
        series: request.series.clone(),
        points,
        summary,
    })
}

/// The stored series of a metric (label lists), most recently active first.
pub async fn series(database: &Database, metric: &str) -> Result<Vec<Vec<String>>, QueryError> {
    let record = database
        .active_metric(metric)
        .await?
        .ok_or_else(|| QueryError::UnknownMetric(metric.to_string()))?;
    let rows = database.series_of(record.id, 60).await?;
    let mut seen: Vec<Vec<String>> = rows
        .iter()
        .filter_map(|s| serde_json::from_str(s).ok())
        .collect();
    if seen.is_empty() {
        seen = database
            .series_of(record.id, 1)
            .await?
            .iter()
            .filter_map(|s| serde_json::from_str(s).ok())
            .collect();
    }
    Ok(seen)
}

struct Acc {
    stats: Stats,
    hist: Option<Histogram<u64>>,
}

impl Acc {
    fn add(&mut self, bucket: &StoredBucket) {
        self.stats.merge(&bucket.stats);
        if let Some(h) = &bucket.hist {
            match &mut self.hist {
                Some(acc) => {
                    if let Err(error) = acc.add(h) {
                        tracing::warn!(%error, "histograms with different bounds; percentiles partial");
                    }
                }
                None => self.hist = Some(h.clone()),
            }
        }
    }

    fn point(&self, start_ms: i64, span_s: i64) -> Point {
        let some = self.stats.count > 0;
        let q = |q: f64| {
            self.hist
                .as_ref()
                .filter(|h| !h.is_empty())
                .map(|h| h.value_at_quantile(q))
        };
        Point {
            start_ms,
            count: self.stats.count,
            rate_per_s: self.stats.count as f64 / span_s.max(1) as f64,
            sum: self.stats.sum,
            min: some.then_some(self.stats.min),
            max: some.then_some(self.stats.max),
            mean: some.then(|| self.stats.sum / self.stats.count as f64),
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
        }
    }
}

/// Merges buckets per start time into points, and all of them into the summary.
pub fn shape(buckets: &[StoredBucket], tier_s: i64, from_s: i64, to_s: i64) -> (Vec<Point>, Point) {
    let mut per_start: BTreeMap<i64, Acc> = BTreeMap::new();
    let mut total = Acc {
        stats: Stats::EMPTY,
        hist: None,
    };
    for bucket in buckets {
        per_start
            .entry(bucket.start_s)
            .or_insert(Acc {
                stats: Stats::EMPTY,
                hist: None,
            })
            .add(bucket);
        total.add(bucket);
    }
    let points = per_start
        .iter()
        .map(|(start, acc)| acc.point(start * 1000, tier_s))
        .collect();
    (points, total.point(from_s * 1000, to_s - from_s))
}
