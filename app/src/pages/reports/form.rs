//! The Reports form as plain data, and the pure steps between it and the export API: the
//! query string for `/api/v1/export` and `/api/v1/export/estimate`, UTC conversion of the
//! custom range, the file name from `Content-Disposition`, and the texts the page shows.
//! No signals and no browser here, so all of it is unit-tested natively.

use contract::api::{ApiErrorDetail, ExportEstimate, ExportFormat};

/// The range choice's value for a custom from/to.
pub const CUSTOM: &str = "custom";

/// Ranges: (label, `from` relative to now, or [`CUSTOM`]).
pub const RANGES: [(&str, &str); 6] = [
    ("Last 1 h", "1h"),
    ("Last 6 h", "6h"),
    ("Last 24 h", "24h"),
    ("Last 7 d", "7d"),
    ("Last 30 d", "30d"),
    ("Custom (UTC)", CUSTOM),
];

/// Resolutions: (label, parameter value).
pub const RESOLUTIONS: [(&str, &str); 4] = [
    ("Auto (from the range)", "auto"),
    ("1 second", "1s"),
    ("1 minute", "1m"),
    ("1 hour", "1h"),
];

/// Formats: (label, format).
pub const FORMATS: [(&str, ExportFormat); 3] = [
    ("CSV", ExportFormat::Csv),
    ("JSON", ExportFormat::Json),
    ("Printable HTML", ExportFormat::Html),
];

/// Everything the user chose.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportForm {
    /// Every active metric (`metrics=all`); `metrics` is then ignored.
    pub all_metrics: bool,
    pub metrics: Vec<String>,
    /// A range's `from` value (`1h`, ...) or [`CUSTOM`].
    pub range: String,
    /// `datetime-local` values, read as UTC.
    pub custom_from: String,
    pub custom_to: String,
    pub resolution: String,
    pub format: ExportFormat,
}

pub use crate::fetch::encode_component;

/// A `datetime-local` value (`2026-11-25T10:00` or with seconds) as RFC 3339 UTC.
pub fn local_input_to_utc(field: &str, value: &str) -> Result<String, ApiErrorDetail> {
    let value = value.trim();
    let bytes = value.as_bytes();
    let shaped = matches!(bytes.len(), 16 | 19)
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10] == b'T'
        && bytes[13] == b':'
        && (bytes.len() == 16 || bytes[16] == b':')
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| matches!(i, 4 | 7 | 10 | 13 | 16) || b.is_ascii_digit());
    if value.is_empty() {
        return Err(invalid(field, "choose a date and time (UTC)"));
    }
    if !shaped {
        return Err(invalid(
            field,
            format!("{value:?} is not a date and time like 2026-11-25T10:00"),
        ));
    }
    Ok(if bytes.len() == 16 {
        format!("{value}:00Z")
    } else {
        format!("{value}Z")
    })
}

fn invalid(field: &str, message: impl Into<String>) -> ApiErrorDetail {
    ApiErrorDetail {
        field: Some(field.to_string()),
        message: message.into(),
    }
}

impl ReportForm {
    /// The query string shared by the export and its estimate, or what to fix first.
    pub fn query(&self) -> Result<String, ApiErrorDetail> {
        let metrics = if self.all_metrics {
            "all".to_string()
        } else if self.metrics.is_empty() {
            return Err(invalid("metrics", "choose at least one metric, or all"));
        } else {
            self.metrics.join(",")
        };
        let (from, to) = if self.range == CUSTOM {
            let from = local_input_to_utc("from", &self.custom_from)?;
            let to = local_input_to_utc("to", &self.custom_to)?;
            if from >= to {
                return Err(invalid("to", "must be after from"));
            }
            (from, to)
        } else {
            (format!("-{}", self.range), "now".to_string())
        };
        Ok(format!(
            "metrics={}&from={}&to={}&resolution={}&format={}",
            encode_component(&metrics),
            encode_component(&from),
            encode_component(&to),
            encode_component(&self.resolution),
            self.format,
        ))
    }
}

/// The file name of an `attachment; filename="..."` header, if it has one.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
pub fn attachment_file_name(disposition: &str) -> Option<String> {
    let start = disposition.find("filename=\"")? + "filename=\"".len();
    let rest = &disposition[start..];
    let name = &rest[..rest.find('"')?];
    (!name.is_empty()).then(|| name.to_string())
}

/// `1234567` as `1,234,567`.
pub fn group_digits(value: i64) -> String {
    let digits = value.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if value < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1 s`, `1 min`, `1 h`.
pub fn resolution_label(resolution_s: i64) -> String {
    match resolution_s {
        1 => "1 s".to_string(),
        60 => "1 min".to_string(),
        3600 => "1 h".to_string(),
        other => format!("{other} s"),
    }
}

/// A byte count in decimal units: `950 B`, `12.3 KB`, `4.5 MB`.
pub fn format_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1_000_000 => format!("{:.1} MB", b as f64 / 1e6),
        b if b >= 1_000 => format!("{:.1} KB", b as f64 / 1e3),
        b => format!("{b} B"),
    }
}

/// What the estimate line says.
pub fn describe_estimate(estimate: &ExportEstimate) -> String {
    if estimate.rows == 0 {
        return "No stored history in this range yet: the file would have only its header."
            .to_string();
    }
    let plural = |n: i64, one: &str, many: &str| {
        format!("{} {}", group_digits(n), if n == 1 { one } else { many })
    };
    format!(
        "{}: {} of {} and {} (one per series), from {} of {}.",
        plural(estimate.rows, "row", "rows"),
        plural(estimate.buckets, "bucket", "buckets"),
        resolution_label(estimate.resolution_s),
        plural(estimate.series, "total", "totals"),
        plural(estimate.series, "series", "series"),
        plural(estimate.metrics, "metric", "metrics"),
    )
}

/// How far a streamed download has come.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Progress {
    pub bytes: u64,
    /// Rows received (None for HTML, which has no row lines).
    pub rows: Option<u64>,
    /// The export's row count (its `X-Export-Rows` header).
    pub expected_rows: Option<u64>,
}

impl Progress {
    /// `12,345 of 50,000 rows (1.2 MB)`, or the bytes alone.
    pub fn describe(&self) -> String {
        match (self.rows, self.expected_rows) {
            (Some(rows), Some(expected)) => format!(
                "{} of {} rows ({})",
                group_digits(rows.min(expected) as i64),
                group_digits(expected as i64),
                format_bytes(self.bytes)
            ),
            (Some(rows), None) => {
                format!(
                    "{} rows ({})",
                    group_digits(rows as i64),
                    format_bytes(self.bytes)
                )
            }
            (None, _) => format_bytes(self.bytes),
        }
    }
}

/// Rows seen so far in a streamed body, from its line ends: CSV is a header line and one line
/// per row; JSON is `[`, then each row on its own line, then a line with `]`. None for HTML
/// (no row lines).
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
pub fn rows_from_lines(format: ExportFormat, line_ends: u64, finished: bool) -> Option<u64> {
    match (format, finished) {
        (ExportFormat::Csv, _) => Some(line_ends.saturating_sub(1)),
        (ExportFormat::Json, false) => Some(line_ends),
        (ExportFormat::Json, true) => Some(line_ends.saturating_sub(2)),
        (ExportFormat::Html, _) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> ReportForm {
        ReportForm {
            all_metrics: false,
            metrics: vec!["request_latency".into(), "a b,c".into()],
            range: "24h".into(),
            custom_from: String::new(),
            custom_to: String::new(),
            resolution: "auto".into(),
            format: ExportFormat::Csv,
        }
    }

    #[test]
    fn presets_are_relative_and_names_are_encoded() {
        assert_eq!(
            form().query().unwrap(),
            "metrics=request_latency%2Ca%20b%2Cc&from=-24h&to=now&resolution=auto&format=csv"
        );
        let all = ReportForm {
            all_metrics: true,
            format: ExportFormat::Html,
            ..form()
        };
        assert!(all.query().unwrap().starts_with("metrics=all&"));
        assert!(all.query().unwrap().ends_with("&format=html"));
    }

    #[test]
    fn custom_ranges_are_utc() {
        let custom = ReportForm {
            range: CUSTOM.into(),
            custom_from: "2026-11-25T10:00".into(),
            custom_to: "2026-11-25T11:30:15".into(),
            resolution: "1m".into(),
            ..form()
        };
        assert!(
            custom.query().unwrap().contains(
                "&from=2026-11-25T10%3A00%3A00Z&to=2026-11-25T11%3A30%3A15Z&resolution=1m"
            )
        );
        let backwards = ReportForm {
            custom_to: "2026-11-25T09:00".into(),
            ..custom.clone()
        };
        assert_eq!(backwards.query().unwrap_err().field.as_deref(), Some("to"));
        let empty = ReportForm {
            custom_from: String::new(),
            ..custom
        };
        assert_eq!(empty.query().unwrap_err().field.as_deref(), Some("from"));
        assert!(local_input_to_utc("from", "25/11/2026 10:00").is_err());
    }

    #[test]
    fn no_metric_chosen_is_refused() {
        let none = ReportForm {
            metrics: Vec::new(),
            ..form()
        };
        assert_eq!(none.query().unwrap_err().field.as_deref(), Some("metrics"));
    }

    #[test]
    fn texts() {
        assert_eq!(
            attachment_file_name("attachment; filename=\"streamboard-x-1m.csv\""),
            Some("streamboard-x-1m.csv".into())
        );
        assert_eq!(attachment_file_name("inline"), None);
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1_234_567), "1,234,567");
        assert_eq!(format_bytes(12_345), "12.3 KB");
        assert_eq!(rows_from_lines(ExportFormat::Csv, 11, false), Some(10));
        assert_eq!(rows_from_lines(ExportFormat::Json, 10, false), Some(10));
        assert_eq!(rows_from_lines(ExportFormat::Json, 12, true), Some(10));
        assert_eq!(rows_from_lines(ExportFormat::Html, 11, true), None);
        let estimate = ExportEstimate {
            rows: 3_603,
            series: 3,
            buckets: 3_600,
            resolution_s: 1,
            metrics: 1,
            from_ms: 0,
            to_ms: 3_600_000,
            max_rows: 20_000_000,
        };
        assert_eq!(
            describe_estimate(&estimate),
            "3,603 rows: 3,600 buckets of 1 s and 3 totals (one per series), from 3 series of 1 metric."
        );
    }
}
