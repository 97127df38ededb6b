//! Parsing and validation of export parameters into an [`ExportPlan`], with typed errors that
//! say what to change. Pure apart from the clock value handed in, so it is unit-tested.
//!
//! Times: RFC 3339 (`2026-11-25T10:00:00Z`), epoch milliseconds, `now`, or relative to now
//! (`-24h`, `-15m`, via `contract::units::parse_duration`). Resolution: `1s`, `1m`, `1h` or `auto`
//! (the query API's rule: ≤ 2 h → 1 s, ≤ 3 d → 1 min, else 1 h).

use crate::query::pick_tier;
use contract::api::ExportFormat;
use std::time::Duration;

/// Raw query parameters, as strings.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct ExportParams {
    /// Comma-separated metric names, or `all` / absent for every active metric.
    pub metrics: Option<String>,
    /// One series as a JSON array of labels.
    pub series: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub resolution: Option<String>,
    pub format: Option<String>,
}

/// A validated export (metric names still to be resolved against storage).
#[derive(Debug, Clone, PartialEq)]
pub struct ExportPlan {
    /// None means every active metric.
    pub metrics: Option<Vec<String>>,
    /// The series' JSON label array, as stored.
    pub series: Option<String>,
    pub from_ms: i64,
    pub to_ms: i64,
    pub resolution_s: i64,
    pub format: ExportFormat,
}

impl ExportPlan {
    /// Bucket-aligned start (buckets overlapping `from` are included, as in the query API).
    pub fn from_s(&self) -> i64 {
        self.from_ms.div_euclid(1000).div_euclid(self.resolution_s) * self.resolution_s
    }

    pub fn to_s(&self) -> i64 {
        (self.to_ms + 999).div_euclid(1000)
    }
}

/// Why a request was refused; each names the parameter and says what to change.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExportError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("no metric named {0:?}; list them with GET /api/v1/metrics")]
    UnknownMetric(String),
    #[error(
        "from: the range starts before the {resolution} history's retention ({keep}); \
         choose a coarser resolution or a later from"
    )]
    BeyondRetention { resolution: String, keep: String },
    #[error(
        "resolution: this export would have {rows} rows, more than {max} for {format}; \
         choose a coarser resolution, a shorter range, fewer metrics or another format"
    )]
    TooManyRows {
        rows: i64,
        max: i64,
        format: &'static str,
    },
}

impl ExportError {
    pub fn field(&self) -> &'static str {
        match self {
            ExportError::Invalid { field, .. } => field,
            ExportError::UnknownMetric(_) => "metrics",
            ExportError::BeyondRetention { .. } => "from",
            ExportError::TooManyRows { .. } => "resolution",
        }
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> ExportError {
    ExportError::Invalid {
        field,
        message: message.into(),
    }
}

/// Parses one time parameter.
pub fn parse_time(field: &'static str, text: &str, now_ms: i64) -> Result<i64, ExportError> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("now") {
        return Ok(now_ms);
    }
    if let Some(ago) = text.strip_prefix('-') {
        let ago = contract::units::parse_duration(ago).map_err(|e| invalid(field, e))?;
        return Ok(now_ms - ago.as_millis() as i64);
    }
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|e| {
            invalid(
                field,
                format!("{text:?} is not a time ({e}); write RFC 3339 (2026-11-25T10:00:00Z), epoch ms, now, or -24h"),
            )
        })
}

pub fn label(resolution_s: i64) -> &'static str {
    match resolution_s {
        1 => "1s",
        60 => "1m",
        _ => "1h",
    }
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(86_400) {
        format!("{}d", s / 86_400)
    } else if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else {
        format!("{s}s")
    }
}

/// Validates parameters. `retention` is each tier's horizon (1 s, 1 min, 1 h).
pub fn plan(
    params: &ExportParams,
    now_ms: i64,
    retention: [Duration; 3],
) -> Result<ExportPlan, ExportError> {
    let metrics = match params.metrics.as_deref().map(str::trim) {
        None | Some("") | Some("all") => None,
        Some(list) => Some(
            list.split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(String::from)
                .collect::<Vec<_>>(),
        ),
    };
    let series = match params.series.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(text) => {
            let labels: Vec<String> = serde_json::from_str(text).map_err(|e| {
                invalid(
                    "series",
                    format!("must be a JSON array of strings like [\"eu\"]: {e}"),
                )
            })?;
            Some(serde_json::to_string(&labels).expect("labels always serialise"))
        }
    };
    let to_ms = match params.to.as_deref().filter(|t| !t.is_empty()) {
        Some(text) => parse_time("to", text, now_ms)?,
        None => now_ms,
    };
    let from_ms = match params.from.as_deref().filter(|t| !t.is_empty()) {
        Some(text) => parse_time("from", text, now_ms)?,
        None => to_ms - 3_600_000,
    };
    if from_ms >= to_ms {
        return Err(invalid(
            "to",
            "must be after from; swap them or move from earlier",
        ));
    }
    let resolution_s = match params.resolution.as_deref().unwrap_or("auto") {
        "auto" | "" => pick_tier(from_ms, to_ms),
        "1s" => 1,
        "1m" => 60,
        "1h" => 3600,
        other => {
            return Err(invalid(
                "resolution",
                format!("{other:?}: use 1s, 1m, 1h or auto"),
            ));
        }
    };
    let format = match params.format.as_deref().unwrap_or("") {
        "" => ExportFormat::Csv,
        other => other
            .parse()
            .map_err(|e: contract::ParseError| invalid("format", e.0))?,
    };
    let tier_index = match resolution_s {
        1 => 0,
        60 => 1,
        _ => 2,
    };
    let keep = retention[tier_index];
    if from_ms < now_ms - keep.as_millis() as i64 {
        return Err(ExportError::BeyondRetention {
            resolution: label(resolution_s).into(),
            keep: human(keep),
        });
    }
    Ok(ExportPlan {
        metrics,
        series,
        from_ms,
        to_ms,
        resolution_s,
        format,
    })
}

/// `streamboard-<what>-<from>-<to>-<resolution>.<ext>`, times as compact UTC.
pub fn file_name(plan: &ExportPlan, metric_names: &[String]) -> String {
    let what = match (&plan.metrics, metric_names) {
        (Some(_), [one]) => one
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect::<String>(),
        (None, _) => "all-metrics".to_string(),
        (_, many) => format!("{}-metrics", many.len()),
    };
    let stamp = |ms: i64| {
        let mut out = Vec::new();
        super::write_rfc3339(&mut out, ms.div_euclid(1000));
        String::from_utf8(out)
            .unwrap_or_default()
            .replace(['-', ':'], "")
    };
    format!(
        "streamboard-{what}-{}-{}-{}.{}",
        stamp(plan.from_ms),
        stamp(plan.to_ms),
        label(plan.resolution_s),
        plan.format.extension()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_111_600_000; // 2025-11-25T23:00:00Z
    const KEEP: [Duration; 3] = [
        Duration::from_secs(6 * 3600),
        Duration::from_secs(14 * 86_400),
        Duration::from_secs(400 * 86_400),
    ];

    fn params(pairs: &[(&str, &str)]) -> ExportParams {
        let mut p = ExportParams::default();
        for (k, v) in pairs {
            let v = Some(v.to_string());
            match *k {
                "metrics" => p.metrics = v,
                "series" => p.series = v,
                "from" => p.from = v,
                "to" => p.to = v,
                "resolution" => p.resolution = v,
                "format" => p.format = v,
                _ => unreachable!(),
            }
        }
        p
    }

    #[test]
    fn relative_and_rfc3339_times_and_auto_resolution() {
        let plan =
            plan(&params(&[("from", "-24h"), ("metrics", "a, b")]), NOW, KEEP).expect("valid");
        assert_eq!(plan.from_ms, NOW - 86_400_000);
        assert_eq!(plan.to_ms, NOW);
        assert_eq!(plan.resolution_s, 60);
        assert_eq!(plan.metrics, Some(vec!["a".into(), "b".into()]));
        assert_eq!(plan.format, ExportFormat::Csv);
        assert_eq!(
            parse_time("from", "2025-11-25T22:00:00Z", NOW),
            Ok(NOW - 3_600_000)
        );
        assert_eq!(
            file_name(&plan, &["a".into(), "b".into()]),
            "streamboard-2-metrics-20251124T230000Z-20251125T230000Z-1m.csv"
        );
    }

    #[test]
    fn bad_requests_say_what_to_change() {
        let e = plan(&params(&[("from", "-1h"), ("to", "-2h")]), NOW, KEEP).unwrap_err();
        assert_eq!(e.field(), "to");
        let e = plan(&params(&[("from", "-7d"), ("resolution", "1s")]), NOW, KEEP).unwrap_err();
        assert!(e.to_string().contains("coarser resolution"), "{e}");
        let e = plan(&params(&[("resolution", "5m")]), NOW, KEEP).unwrap_err();
        assert_eq!(e.field(), "resolution");
        let e = plan(&params(&[("from", "yesterday")]), NOW, KEEP).unwrap_err();
        assert_eq!(e.field(), "from");
        let e = plan(&params(&[("format", "xml")]), NOW, KEEP).unwrap_err();
        assert_eq!(e.field(), "format");
        let e = plan(&params(&[("series", "eu")]), NOW, KEEP).unwrap_err();
        assert_eq!(e.field(), "series");
    }
}
