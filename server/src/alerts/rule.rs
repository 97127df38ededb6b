//! Alert rules: the API's [`AlertRuleSpec`] checked into a typed [`Rule`]. Pure: no I/O; the
//! caller says which metrics exist.

use super::machine::{Comparison, NoDataPolicy, Params};
use app::{
    api::{AlertRuleSpec, AlertTarget, SeriesScopeSpec},
    units::{format_duration, parse_duration},
};
use std::time::Duration;

/// A refused rule: the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct RuleError {
    pub field: &'static str,
    pub message: String,
}

fn refuse(field: &'static str, message: impl Into<String>) -> RuleError {
    RuleError {
        field,
        message: message.into(),
    }
}

/// The statistic of a window a rule compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statistic {
    Count,
    Rate,
    Sum,
    Mean,
    Min,
    Max,
    P50,
    P90,
    P99,
    P999,
}

impl Statistic {
    pub const ALL: [(&'static str, Statistic); 10] = [
        ("count", Statistic::Count),
        ("rate", Statistic::Rate),
        ("sum", Statistic::Sum),
        ("mean", Statistic::Mean),
        ("min", Statistic::Min),
        ("max", Statistic::Max),
        ("p50", Statistic::P50),
        ("p90", Statistic::P90),
        ("p99", Statistic::P99),
        ("p99.9", Statistic::P999),
    ];

    pub fn parse(text: &str) -> Option<Self> {
        let text = match text {
            "rate/s" => "rate",
            "p999" => "p99.9",
            other => other,
        };
        Self::ALL.iter().find(|(n, _)| *n == text).map(|(_, s)| *s)
    }

    /// Count, rate and sum of an empty window are zero; the others are undefined (no data).
    pub fn is_additive(self) -> bool {
        matches!(self, Statistic::Count | Statistic::Rate | Statistic::Sum)
    }
}

/// Which series of the metric a rule watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// All series merged into one instance (histograms merged exactly).
    All,
    /// One instance per series.
    Each,
    /// One series, by its labels.
    One(Vec<String>),
}

/// Instance name of [`Scope::All`].
pub const ALL_INSTANCE: &str = "all";

/// Instance name of a series.
pub fn instance_name(labels: &[String]) -> String {
    if labels.is_empty() {
        ALL_INSTANCE.to_string()
    } else {
        labels.join(", ")
    }
}

/// Severity of a rule (shown and sent; it changes nothing in evaluation).
pub const SEVERITIES: [&str; 3] = ["info", "warning", "critical"];

/// A checked rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: i64,
    pub spec: AlertRuleSpec,
    pub scope: Scope,
    pub statistic: Statistic,
    pub window_s: i64,
    pub params: Params,
    pub severity: &'static str,
    pub notify_no_data: bool,
    pub notify_error: bool,
    pub silenced_until_ms: Option<i64>,
}

/// Longest pending, keep-firing and no-data periods.
const MAX_PERIOD: Duration = Duration::from_secs(7 * 86_400);

fn duration_field(
    field: &'static str,
    value: &Option<String>,
    default: Duration,
) -> Result<Duration, RuleError> {
    match value {
        None => Ok(default),
        Some(text) => {
            let text = text.trim();
            if text.starts_with('-') {
                return Err(refuse(
                    field,
                    format!("{text:?} is negative; durations are >= 0"),
                ));
            }
            let duration = parse_duration(text).map_err(|e| refuse(field, e))?;
            if duration > MAX_PERIOD {
                return Err(refuse(field, "at most 7d"));
            }
            Ok(duration)
        }
    }
}

/// Checks `spec`. `metric_exists` says whether an active metric has that name.
pub fn check(
    id: i64,
    spec: &AlertRuleSpec,
    metric_exists: impl Fn(&str) -> bool,
) -> Result<Rule, RuleError> {
    let name = spec.name.trim();
    if name.is_empty() {
        return Err(refuse("name", "a rule needs a name"));
    }
    if name.len() > 200 {
        return Err(refuse("name", "at most 200 characters"));
    }
    if spec.metric.trim().is_empty() {
        return Err(refuse("metric", "name the metric to watch"));
    }
    if !metric_exists(&spec.metric) {
        return Err(refuse(
            "metric",
            format!("unknown metric {:?}; see GET /api/v1/metrics", spec.metric),
        ));
    }
    let scope = match &spec.series {
        SeriesScopeSpec::Keyword(k) if k == "all" => Scope::All,
        SeriesScopeSpec::Keyword(k) if k == "each" => Scope::Each,
        SeriesScopeSpec::Keyword(k) => {
            return Err(refuse(
                "series",
                format!("{k:?} is not a scope: use \"all\", \"each\" or a list of labels"),
            ));
        }
        SeriesScopeSpec::One(labels) if labels.is_empty() || labels.len() > 3 => {
            return Err(refuse("series", "one series has 1 to 3 labels"));
        }
        SeriesScopeSpec::One(labels) => Scope::One(labels.clone()),
    };
    let statistic = Statistic::parse(&spec.statistic).ok_or_else(|| {
        refuse(
            "statistic",
            format!(
                "{:?} is not a statistic; use one of {}",
                spec.statistic,
                Statistic::ALL.map(|(n, _)| n).join(", ")
            ),
        )
    })?;
    let window = parse_duration(spec.window.trim()).map_err(|e| refuse("window", e))?;
    let window_s = window.as_secs() as i64;
    let valid_window = window.subsec_nanos() == 0
        && ((1..=60).contains(&window_s)
            || (window_s % 60 == 0 && (60..=3600).contains(&window_s)));
    if !valid_window {
        return Err(refuse(
            "window",
            format!(
                "{} is not a window: use 1s to 60s, or whole minutes up to 60m",
                spec.window
            ),
        ));
    }
    let comparison = Comparison::parse(&spec.comparison).ok_or_else(|| {
        refuse(
            "comparison",
            format!(
                "{:?} is not a comparison; use >, >=, < or <=",
                spec.comparison
            ),
        )
    })?;
    if !spec.threshold.is_finite() {
        return Err(refuse("threshold", "must be a finite number"));
    }
    let recovery = match spec.recovery_threshold {
        None => spec.threshold,
        Some(r) if !r.is_finite() => {
            return Err(refuse("recovery_threshold", "must be a finite number"));
        }
        Some(r) => {
            let wrong_side = match comparison {
                Comparison::Gt | Comparison::Ge => r > spec.threshold,
                Comparison::Lt | Comparison::Le => r < spec.threshold,
            };
            if wrong_side {
                let side = if matches!(comparison, Comparison::Gt | Comparison::Ge) {
                    "at or below"
                } else {
                    "at or above"
                };
                return Err(refuse(
                    "recovery_threshold",
                    format!(
                        "{r} is on the wrong side: with {} {} it must be {side} the threshold",
                        comparison.as_str(),
                        spec.threshold
                    ),
                ));
            }
            r
        }
    };
    let for_ = duration_field("for", &spec.for_, Duration::ZERO)?;
    let keep = duration_field("keep_firing_for", &spec.keep_firing_for, Duration::ZERO)?;
    let no_data_after = duration_field(
        "no_data_after",
        &spec.no_data_after,
        Duration::from_secs(120),
    )?;
    if no_data_after.is_zero() {
        return Err(refuse("no_data_after", "must be longer than 0s"));
    }
    let no_data = match spec.no_data.as_deref() {
        None => NoDataPolicy::NoData,
        Some(text) => NoDataPolicy::parse(text).ok_or_else(|| {
            refuse(
                "no_data",
                format!("{text:?} is not a policy; use ok, alerting, no_data or keep_last"),
            )
        })?,
    };
    let mut notify_no_data = false;
    let mut notify_error = false;
    for state in &spec.notify_on {
        match state.as_str() {
            "no_data" => notify_no_data = true,
            "error" => notify_error = true,
            other => {
                return Err(refuse(
                    "notify_on",
                    format!(
                        "{other:?}: only no_data and error can be added (firing and resolved always notify)"
                    ),
                ));
            }
        }
    }
    let severity = match spec.severity.as_deref() {
        None => "warning",
        Some(s) => SEVERITIES
            .into_iter()
            .find(|v| *v == s)
            .ok_or_else(|| refuse("severity", format!("{s:?}: use info, warning or critical")))?,
    };
    if let Some(url) = &spec.runbook_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(refuse("runbook_url", "must be an http:// or https:// URL"));
    }
    for target in &spec.targets {
        match target {
            AlertTarget::InApp => {}
            AlertTarget::Webhook { url } => {
                let uri: Result<axum::http::Uri, _> = url.parse();
                let ok = uri.as_ref().is_ok_and(|u| {
                    matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some()
                });
                if !ok {
                    return Err(refuse(
                        "targets",
                        format!("webhook url {url:?} is not an http:// or https:// URL"),
                    ));
                }
            }
            AlertTarget::Kinesis { stream } => {
                if !valid_stream_name(stream) {
                    return Err(refuse(
                        "targets",
                        format!("kinesis stream {stream:?} is not a valid stream name"),
                    ));
                }
            }
        }
    }
    let silenced_until_ms = match &spec.silenced_until {
        None => None,
        Some(text) => Some(parse_rfc3339_ms(text).ok_or_else(|| {
            refuse(
                "silenced_until",
                format!("{text:?} is not an RFC 3339 time like 2026-01-31T12:00:00Z"),
            )
        })?),
    };
    let mut spec = spec.clone();
    spec.name = name.to_string();
    // Stored normalised, so what the API returns is what is evaluated.
    spec.window = format_duration(window);
    Ok(Rule {
        id,
        scope,
        statistic,
        window_s,
        params: Params {
            comparison,
            threshold: spec.threshold,
            recovery_threshold: recovery,
            for_ms: for_.as_millis() as i64,
            keep_firing_for_ms: keep.as_millis() as i64,
            no_data,
            no_data_after_ms: no_data_after.as_millis() as i64,
        },
        severity,
        notify_no_data,
        notify_error,
        silenced_until_ms,
        spec,
    })
}

/// Kinesis stream names: 1 to 128 of `a-z A-Z 0-9 _ . -`.
fn valid_stream_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Milliseconds since the epoch of an RFC 3339 time.
pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let t =
        time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339)
            .ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// RFC 3339 UTC of epoch milliseconds.
pub fn format_rfc3339_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

impl Rule {
    pub fn silenced_at(&self, now_ms: i64) -> bool {
        self.silenced_until_ms.is_some_and(|until| now_ms < until)
    }

    pub fn in_app(&self) -> bool {
        self.spec.targets.contains(&AlertTarget::InApp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> AlertRuleSpec {
        serde_json::from_value(serde_json::json!({
            "name": "slow checkout",
            "metric": "latency",
            "statistic": "p99",
            "window": "5m",
            "comparison": ">",
            "threshold": 250.0,
        }))
        .unwrap()
    }

    fn field_of(spec: &AlertRuleSpec) -> &'static str {
        check(1, spec, |m| m == "latency").unwrap_err().field
    }

    #[test]
    fn a_minimal_rule_gets_defaults() {
        let rule = check(1, &spec(), |m| m == "latency").unwrap();
        assert_eq!(rule.scope, Scope::All);
        assert_eq!(rule.window_s, 300);
        assert_eq!(rule.params.recovery_threshold, 250.0);
        assert_eq!(rule.params.no_data, NoDataPolicy::NoData);
        assert_eq!(rule.params.no_data_after_ms, 120_000);
        assert_eq!(rule.severity, "warning");
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut s = spec();
        s.metric = "nope".into();
        assert_eq!(field_of(&s), "metric");
        let mut s = spec();
        s.statistic = "p42".into();
        assert_eq!(field_of(&s), "statistic");
        for w in ["90s", "61m", "0s", "1.5s", "soon"] {
            let mut s = spec();
            s.window = w.into();
            assert_eq!(field_of(&s), "window", "{w}");
        }
        let mut s = spec();
        s.comparison = "=>".into();
        assert_eq!(field_of(&s), "comparison");
        let mut s = spec();
        s.recovery_threshold = Some(300.0);
        let e = check(1, &s, |_| true).unwrap_err();
        assert_eq!(e.field, "recovery_threshold");
        assert!(e.message.contains("wrong side"), "{}", e.message);
        let mut s = spec();
        s.for_ = Some("-5m".into());
        assert_eq!(field_of(&s), "for");
        let mut s = spec();
        s.keep_firing_for = Some("forever".into());
        assert_eq!(field_of(&s), "keep_firing_for");
        let mut s = spec();
        s.no_data = Some("maybe".into());
        assert_eq!(field_of(&s), "no_data");
        let mut s = spec();
        s.series = SeriesScopeSpec::Keyword("some".into());
        assert_eq!(field_of(&s), "series");
        let mut s = spec();
        s.targets = vec![AlertTarget::Webhook {
            url: "ftp://x".into(),
        }];
        assert_eq!(field_of(&s), "targets");
        let mut s = spec();
        s.silenced_until = Some("tomorrow".into());
        assert_eq!(field_of(&s), "silenced_until");
        let mut s = spec();
        s.severity = Some("panic".into());
        assert_eq!(field_of(&s), "severity");
    }

    #[test]
    fn recovery_below_threshold_is_hysteresis_for_greater_than() {
        let mut s = spec();
        s.recovery_threshold = Some(200.0);
        assert!(check(1, &s, |_| true).is_ok());
        s.comparison = "<".into();
        assert_eq!(
            check(1, &s, |_| true).unwrap_err().field,
            "recovery_threshold"
        );
    }

    #[test]
    fn short_windows_are_seconds_and_long_ones_whole_minutes() {
        for (w, s) in [
            ("5s", 5),
            ("60s", 60),
            ("1m", 60),
            ("15m", 900),
            ("1h", 3600),
        ] {
            let mut spec = spec();
            spec.window = w.into();
            assert_eq!(check(1, &spec, |_| true).unwrap().window_s, s, "{w}");
        }
    }
}
