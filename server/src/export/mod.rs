//! Report export (`GET /api/v1/export`): CSV, JSON and a printable HTML report of stored
//! history, one row per (metric, series, bucket) plus one `total` row per (metric, series)
//! whose percentiles come from the merged histograms of the range.
//!
//! Pure core: [`request`] parses and validates parameters into an [`request::ExportPlan`];
//! [`Shaper`] turns pages of stored buckets into [`Row`]s (decoding histograms, keeping the
//! running total of the current series); [`csv`], [`json`] and [`html`] write rows as bytes.
//! The I/O shell [`stream`] pages through storage (keyset pagination, bounded pages), runs
//! the shaping on `spawn_blocking` and hands byte chunks to the HTTP body over a bounded
//! channel, so memory stays bounded whatever the range.

pub mod csv;
pub mod html;
pub mod json;
pub mod request;
pub mod stream;

use crate::{
    metric::{Stats, histogram::decode_histogram},
    storage::export::RawBucket,
};
use contract::summary::Summary;
use hdrhistogram::Histogram;

/// The columns, in order.
pub const COLUMNS: [&str; 14] = [
    "metric",
    "series",
    "bucket_start",
    "resolution_s",
    "count",
    "sum",
    "min",
    "max",
    "mean",
    "p50",
    "p90",
    "p99",
    "p999",
    "unit",
];

/// One output row. `bucket_start_s` is `None` for the per-series total over the range.
#[derive(Debug, Clone, PartialEq)]
pub struct Row<'a> {
    pub metric: &'a str,
    /// The series' labels as a JSON array (`["eu","/a"]`, `[]` for an unlabelled metric).
    pub series: &'a str,
    pub bucket_start_s: Option<i64>,
    pub resolution_s: i64,
    /// The bucket's (or the total's) aggregates; every column but the rate is written. A
    /// total's rate is over the seconds from its first bucket's start to its last's end.
    pub summary: Summary,
    pub unit: Option<&'a str>,
}

/// Writes rows in one format. `begin`/`end` frame the whole export; `metric_start` and
/// `metric_end` frame each metric (the HTML report draws a chart and table per metric).
pub trait RowWriter: Send {
    fn begin(&mut self, out: &mut Vec<u8>);
    fn metric_start(&mut self, _metric: &str, _unit: Option<&str>, _out: &mut Vec<u8>) {}
    fn row(&mut self, row: &Row<'_>, out: &mut Vec<u8>);
    fn metric_end(&mut self, _out: &mut Vec<u8>) {}
    fn end(&mut self, out: &mut Vec<u8>);
}

/// Running stats and merged histogram of one series, and the starts of its first and last
/// buckets.
#[derive(Debug, Default)]
struct Total {
    stats: Stats,
    hist: Option<Histogram<u64>>,
    starts_s: Option<(i64, i64)>,
}

fn quantiles(hist: Option<&Histogram<u64>>) -> [Option<u64>; 4] {
    match hist.filter(|h| !h.is_empty()) {
        Some(h) => Summary::QUANTILES.map(|q| Some(h.value_at_quantile(q))),
        None => [None; 4],
    }
}

/// The summary of `stats` and `hist` over `covered_s` seconds.
fn summary(stats: &Stats, hist: Option<&Histogram<u64>>, covered_s: i64) -> Summary {
    Summary::new(
        stats.count,
        stats.sum,
        stats.min,
        stats.max,
        covered_s,
        quantiles(hist),
    )
}

/// Shapes one metric's buckets, page by page, into rows; emits a series' total row when the
/// next series starts and at [`Shaper::finish`]. Pages must arrive ordered by (series, start).
pub struct Shaper {
    metric: String,
    unit: Option<String>,
    resolution_s: i64,
    current: Option<(String, Total)>,
    /// Rows written so far (buckets and totals).
    pub rows: u64,
}

impl Shaper {
    pub fn new(metric: String, unit: Option<String>, resolution_s: i64) -> Self {
        Self {
            metric,
            unit,
            resolution_s,
            current: None,
            rows: 0,
        }
    }

    /// Writes the rows of one page. A histogram that does not decode is logged and treated
    /// as absent (empty percentiles) rather than failing the whole export.
    pub fn page(&mut self, page: Vec<RawBucket>, writer: &mut dyn RowWriter, out: &mut Vec<u8>) {
        for bucket in page {
            if self.current.as_ref().map(|(s, _)| s.as_str()) != Some(bucket.series.as_str()) {
                self.flush_total(writer, out);
                self.current = Some((bucket.series.clone(), Total::default()));
            }
            let hist = match bucket.hist.as_deref().map(decode_histogram).transpose() {
                Ok(hist) => hist,
                Err(error) => {
                    tracing::warn!(%error, metric = %self.metric, "undecodable histogram in export");
                    None
                }
            };
            let row = Row {
                metric: &self.metric,
                series: &bucket.series,
                bucket_start_s: Some(bucket.start_s),
                resolution_s: self.resolution_s,
                summary: summary(&bucket.stats, hist.as_ref(), self.resolution_s),
                unit: self.unit.as_deref(),
            };
            writer.row(&row, out);
            self.rows += 1;
            if let Some((_, total)) = &mut self.current {
                let first_s = total.starts_s.map_or(bucket.start_s, |(first, _)| first);
                total.starts_s = Some((first_s, bucket.start_s));
                total.stats.merge(&bucket.stats);
                if let Some(h) = hist {
                    match &mut total.hist {
                        Some(acc) => {
                            if let Err(error) = acc.add(&h) {
                                tracing::warn!(%error, "histograms with different bounds; total percentiles partial");
                            }
                        }
                        None => total.hist = Some(h),
                    }
                }
            }
        }
    }

    fn flush_total(&mut self, writer: &mut dyn RowWriter, out: &mut Vec<u8>) {
        if let Some((series, total)) = self.current.take() {
            let covered_s = total
                .starts_s
                .map_or(0, |(first, last)| last - first + self.resolution_s);
            let row = Row {
                metric: &self.metric,
                series: &series,
                bucket_start_s: None,
                resolution_s: self.resolution_s,
                summary: summary(&total.stats, total.hist.as_ref(), covered_s),
                unit: self.unit.as_deref(),
            };
            writer.row(&row, out);
            self.rows += 1;
        }
    }

    /// Writes the last series' total row.
    pub fn finish(&mut self, writer: &mut dyn RowWriter, out: &mut Vec<u8>) {
        self.flush_total(writer, out);
    }
}

/// `2026-11-25T23:00:00Z` for epoch seconds (proleptic Gregorian, UTC), without allocation
/// beyond `out`. Hand-written because it runs once per row.
pub fn write_rfc3339(out: &mut Vec<u8>, epoch_s: i64) {
    let days = epoch_s.div_euclid(86_400);
    let secs = epoch_s.rem_euclid(86_400);
    let (year, month, day) = contract::date::civil_from_days(days);
    let two = |n: i64, out: &mut Vec<u8>| {
        out.push(b'0' + (n / 10) as u8);
        out.push(b'0' + (n % 10) as u8);
    };
    if (0..10_000).contains(&year) {
        two(year / 100, out);
        two(year % 100, out);
    } else {
        out.extend_from_slice(year.to_string().as_bytes());
    }
    out.push(b'-');
    two(month, out);
    out.push(b'-');
    two(day, out);
    out.push(b'T');
    two(secs / 3600, out);
    out.push(b':');
    two(secs / 60 % 60, out);
    out.push(b':');
    two(secs % 60, out);
    out.push(b'Z');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc(s: i64) -> String {
        let mut out = Vec::new();
        write_rfc3339(&mut out, s);
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn rfc3339_matches_the_time_crate() {
        for s in [
            0,
            1,
            951_782_400,
            1_764_111_600,
            4_102_444_799,
            -1,
            1_709_164_800,
        ] {
            let expected = time::OffsetDateTime::from_unix_timestamp(s)
                .expect("in range")
                .format(&time::format_description::well_known::Rfc3339)
                .expect("formats");
            assert_eq!(rfc(s), expected, "{s}");
        }
    }

    struct Collect(Vec<(String, Option<i64>, u64, Option<u64>)>);
    impl RowWriter for Collect {
        fn begin(&mut self, _: &mut Vec<u8>) {}
        fn row(&mut self, row: &Row<'_>, _: &mut Vec<u8>) {
            self.0.push((
                row.series.into(),
                row.bucket_start_s,
                row.summary.count,
                row.summary.p50,
            ));
        }
        fn end(&mut self, _: &mut Vec<u8>) {}
    }

    fn bucket(series: &str, start_s: i64, values: &[u64]) -> RawBucket {
        let mut h = Histogram::<u64>::new_with_bounds(1, 1_000_000, 2).expect("bounds");
        let mut stats = Stats::EMPTY;
        for v in values {
            h.record(*v).expect("in range");
            stats.merge(&Stats {
                count: 1,
                sum: *v as f64,
                min: *v as f64,
                max: *v as f64,
            });
        }
        RawBucket {
            series: series.into(),
            start_s,
            stats,
            hist: Some(crate::metric::histogram::encode_histogram(&h)),
        }
    }

    #[test]
    fn totals_follow_each_series_across_pages() {
        let mut shaper = Shaper::new("m".into(), Some("ms".into()), 60);
        let mut w = Collect(Vec::new());
        let mut out = Vec::new();
        shaper.page(
            vec![bucket("[\"a\"]", 0, &[1, 2]), bucket("[\"a\"]", 60, &[3])],
            &mut w,
            &mut out,
        );
        shaper.page(
            vec![bucket("[\"a\"]", 120, &[100]), bucket("[\"b\"]", 0, &[7])],
            &mut w,
            &mut out,
        );
        shaper.finish(&mut w, &mut out);
        let rows = w.0;
        assert_eq!(rows.len(), 6);
        assert_eq!(rows[3], ("[\"a\"]".into(), None, 4, Some(2)));
        assert_eq!(rows[5], ("[\"b\"]".into(), None, 1, Some(7)));
        assert_eq!(shaper.rows, 6);
    }
}
