//! History queries over the stored tiers: a metric's series, a time series over any range at
//! any tier (all series merged, or one), and one summary over the whole range whose
//! percentiles come from the merged HdrHistograms. Pure shaping ([`shape`]) is separate from
//! the reads so it is unit-tested without a database.

use crate::{
    metric::Stats,
    storage::{
        Database, StorageError,
        metrics::{MetricRecord, StoredBucket, TIERS_S},
    },
};
use contract::{
    api::{Heatmap, HeatmapColumn, HistogramBin, Point, QueryResponse},
    dashboard::pattern_matches,
    summary::Summary,
};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;

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

/// Most bins a distribution may have.
pub const MAX_BINS: u32 = 200;
/// Most time columns a heatmap may have.
pub const MAX_COLUMNS: u32 = 200;

/// What a query returns besides its points and summary, and which series it merges.
#[derive(Debug, Clone, Default)]
pub struct QueryOptions {
    /// The range's value distribution in this many bins.
    pub bins: Option<u32>,
    /// With `bins`: the distribution per time column, in this many columns.
    pub columns: Option<u32>,
    /// Merge only the series whose labels match (one entry per dimension, `None` for any
    /// value); instead of the request's `series`.
    pub matching: Option<Vec<Option<String>>>,
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
            .and_then(crate::metric::Builtin::parse)
            .map(|b| b.unit().to_string()),
    }
}

/// Runs a query against the database.
pub async fn query(
    database: &Database,
    request: &QueryRequest,
) -> Result<QueryResponse, QueryError> {
    query_with_distribution(database, request, None).await
}

/// [`query`], with the range's value distribution in `bins` bins when asked for.
pub async fn query_with_distribution(
    database: &Database,
    request: &QueryRequest,
    bins: Option<u32>,
) -> Result<QueryResponse, QueryError> {
    let options = QueryOptions {
        bins,
        ..QueryOptions::default()
    };
    query_with(database, request, &options).await
}

/// [`query`] with [`QueryOptions`]: a distribution, a heatmap, series matching a pattern.
pub async fn query_with(
    database: &Database,
    request: &QueryRequest,
    options: &QueryOptions,
) -> Result<QueryResponse, QueryError> {
    let bins = options.bins;
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
    if bins.is_some_and(|b| b == 0 || b > MAX_BINS) {
        return Err(QueryError::Invalid {
            field: "bins",
            message: format!("must be 1 to {MAX_BINS}"),
        });
    }
    if let Some(columns) = options.columns {
        if columns == 0 || columns > MAX_COLUMNS {
            return Err(QueryError::Invalid {
                field: "columns",
                message: format!("must be 1 to {MAX_COLUMNS}"),
            });
        }
        if bins.is_none() {
            return Err(QueryError::Invalid {
                field: "columns",
                message: "needs bins (the heatmap's rows)".into(),
            });
        }
    }
    // A pattern with a value for every dimension is one series.
    let (series, matching) = match &options.matching {
        Some(pattern) if pattern.iter().all(Option::is_some) && !pattern.is_empty() => (
            Some(pattern.iter().flatten().cloned().collect::<Vec<_>>()),
            None,
        ),
        Some(pattern) if pattern.iter().any(Option::is_some) => (None, Some(pattern)),
        Some(_) => (None, None),
        None => (request.series.clone(), None),
    };
    let metric = database
        .active_metric(&request.metric)
        .await?
        .ok_or_else(|| QueryError::UnknownMetric(request.metric.clone()))?;
    let series_json = series
        .as_ref()
        .map(|labels| serde_json::to_string(labels).expect("labels always serialise"));
    // Buckets that start before `from` but overlap it are included (tier alignment).
    let from_s = request.from_ms.div_euclid(1000).div_euclid(tier) * tier;
    let to_s = (request.to_ms + 999).div_euclid(1000);
    // Open 1-minute / 1-hour roll-ups in the range are brought up to date first.
    database
        .materialize(metric.id, tier, series_json.as_deref(), from_s, to_s)
        .await?;
    let mut buckets = database
        .read_buckets(metric.id, tier, series_json.as_deref(), from_s, to_s)
        .await?;
    if let Some(pattern) = matching {
        buckets.retain(|b| {
            serde_json::from_str::<Vec<String>>(&b.series)
                .is_ok_and(|labels| pattern_matches(pattern, &labels))
        });
    }
    let (points, summary, merged) = shape(&buckets, tier, from_s, to_s);
    let distribution = match (bins, &merged) {
        (Some(bins), Some(hist)) => distribution(hist, bins),
        _ => Vec::new(),
    };
    let heatmap = options
        .columns
        .map(|columns| heatmap(&buckets, &distribution, tier, from_s, to_s, columns));
    Ok(QueryResponse {
        metric: metric.name.clone(),
        unit: unit_of(&metric),
        tier_s: tier,
        from_ms: request.from_ms,
        to_ms: request.to_ms,
        series,
        points,
        summary,
        distribution,
        heatmap,
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
        let hist = self.hist.as_ref().filter(|h| !h.is_empty());
        Point {
            start_ms,
            summary: Summary::new(
                self.stats.count,
                self.stats.sum,
                self.stats.min,
                self.stats.max,
                span_s,
                Summary::QUANTILES.map(|q| hist.map(|h| h.value_at_quantile(q))),
            ),
        }
    }
}

/// Up to `bins` equal-width bins from the smallest to the largest value recorded in `hist`
/// (empty bins included, so a chart's x axis is linear). Empty for an empty histogram.
pub fn distribution(hist: &Histogram<u64>, bins: u32) -> Vec<HistogramBin> {
    if hist.is_empty() || bins == 0 {
        return Vec::new();
    }
    let (low, high) = (hist.min(), hist.max());
    let width = ((high - low) / u64::from(bins) + 1).max(1);
    let n = ((high - low) / width + 1) as usize;
    let mut out: Vec<HistogramBin> = (0..n as u64)
        .map(|i| HistogramBin {
            low: low + i * width,
            high: low + (i + 1) * width - 1,
            count: 0,
        })
        .collect();
    for value in hist.iter_recorded() {
        let v = hist.median_equivalent(value.value_iterated_to());
        let i = (v.saturating_sub(low) / width) as usize;
        out[i.min(n - 1)].count += value.count_at_value();
    }
    out
}

/// The values of `buckets` counted per time column (`columns` of equal span, a whole number
/// of tier steps each, from `from_s`) and per bin of `bins` (the range's distribution). A value
/// outside the bins (none, when `bins` is the same buckets' distribution) goes to the nearest.
pub fn heatmap(
    buckets: &[StoredBucket],
    bins: &[HistogramBin],
    tier_s: i64,
    from_s: i64,
    to_s: i64,
    columns: u32,
) -> Heatmap {
    let span_s = (to_s - from_s).max(tier_s);
    let steps = (span_s + tier_s - 1) / tier_s;
    let column_s = ((steps + i64::from(columns) - 1) / i64::from(columns)).max(1) * tier_s;
    let n = ((span_s + column_s - 1) / column_s) as usize;
    let mut out: Vec<HeatmapColumn> = (0..n)
        .map(|i| HeatmapColumn {
            start_ms: (from_s + i as i64 * column_s) * 1000,
            counts: vec![0; bins.len()],
        })
        .collect();
    if bins.is_empty() {
        return Heatmap {
            column_ms: column_s * 1000,
            columns: out,
        };
    }
    for bucket in buckets {
        let Some(hist) = &bucket.hist else { continue };
        let Ok(c) = usize::try_from((bucket.start_s - from_s).div_euclid(column_s)) else {
            continue;
        };
        let Some(column) = out.get_mut(c) else {
            continue;
        };
        for value in hist.iter_recorded() {
            let v = hist.median_equivalent(value.value_iterated_to());
            let i = bins.partition_point(|b| b.high < v).min(bins.len() - 1);
            column.counts[i] += value.count_at_value();
        }
    }
    Heatmap {
        column_ms: column_s * 1000,
        columns: out,
    }
}

/// Merges buckets per start time into points, and all of them into the summary; also returns
/// the merged histogram of the whole range (none when no bucket has one).
pub fn shape(
    buckets: &[StoredBucket],
    tier_s: i64,
    from_s: i64,
    to_s: i64,
) -> (Vec<Point>, Point, Option<Histogram<u64>>) {
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
    let summary = total.point(from_s * 1000, to_s - from_s);
    (points, summary, total.hist)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distribution_bins_cover_min_to_max() {
        let mut hist = Histogram::<u64>::new_with_bounds(1, 3_600_000, 2).unwrap();
        for v in 1..=100 {
            hist.record(v).unwrap();
        }
        let bins = distribution(&hist, 10);
        assert_eq!(bins.len(), 10);
        assert_eq!(bins[0].low, 1);
        assert!(bins.last().unwrap().high >= 100);
        assert_eq!(bins.iter().map(|b| b.count).sum::<u64>(), 100);
        assert!(bins.iter().all(|b| b.count == 10), "{bins:?}");
        // One value: one bin.
        let mut one = Histogram::<u64>::new_with_bounds(1, 3_600_000, 2).unwrap();
        one.record_n(42, 3).unwrap();
        assert_eq!(
            distribution(&one, 20),
            vec![HistogramBin {
                low: 42,
                high: 42,
                count: 3
            }]
        );
        assert!(distribution(&Histogram::new(2).unwrap(), 5).is_empty());
    }

    fn bucket(start_s: i64, values: &[u64]) -> StoredBucket {
        let mut hist = Histogram::<u64>::new_with_bounds(1, 3_600_000, 2).unwrap();
        let mut stats = Stats::EMPTY;
        for v in values {
            hist.record(*v).unwrap();
            stats.add(*v as f64);
        }
        StoredBucket {
            series: "[]".into(),
            start_s,
            stats,
            hist: Some(hist),
        }
    }

    #[test]
    fn heatmap_counts_values_per_column_and_bin() {
        // 60 one-second buckets, 6 columns of 10 s; low values early, high values late.
        let buckets: Vec<StoredBucket> = (0..60)
            .map(|s| bucket(1_000 + s, if s < 30 { &[5, 6] } else { &[90] }))
            .collect();
        let (_, _, merged) = shape(&buckets, 1, 1_000, 1_060);
        let bins = distribution(merged.as_ref().unwrap(), 4);
        let map = heatmap(&buckets, &bins, 1, 1_000, 1_060, 6);
        assert_eq!(map.column_ms, 10_000);
        assert_eq!(map.columns.len(), 6);
        assert_eq!(map.columns[0].start_ms, 1_000_000);
        assert_eq!(map.columns[0].counts, vec![20, 0, 0, 0]);
        assert_eq!(map.columns[5].counts, vec![0, 0, 0, 10]);
        let total: u64 = map.columns.iter().flat_map(|c| &c.counts).sum();
        assert_eq!(total, 90);
        // More columns than steps: one step per column.
        assert_eq!(heatmap(&buckets, &bins, 60, 0, 120, 50).columns.len(), 2);
    }
}
