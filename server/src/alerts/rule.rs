//! Alert rules: a request body read into the API's [`AlertRuleSpec`] ([`parse_spec`]), then
//! checked into a typed [`Rule`] ([`check`]). Pure: no I/O; the caller says which metrics exist.
//! The closed sets (statistic, comparison, no-data policy, severity, ...) are the contract's
//! enums, so reading the body already refuses a value outside them, naming the field.

use super::{
    machine::{MOfN, Params},
    template,
    time::parse_rfc3339_ms,
};
use contract::{
    alert::{NotifyOn, SeriesScope, Severity},
    api::{AlertRuleSpec, AlertTarget, TargetKind},
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

/// The fields of [`AlertRuleSpec`]: a value of one that does not read is refused at it.
const SPEC_FIELDS: [&str; 23] = [
    "name",
    "metric",
    "series",
    "statistic",
    "window",
    "comparison",
    "threshold",
    "recovery_threshold",
    "for",
    "datapoints_to_alarm",
    "evaluation_periods",
    "keep_firing_for",
    "no_data",
    "no_data_after",
    "notify_on",
    "group_interval",
    "severity",
    "description",
    "runbook_url",
    "targets",
    "templates",
    "enabled",
    "silenced_until",
];

/// Reads a request body into a spec. A value that does not read is refused at its field with
/// serde's message (for a closed set, the contract's: what is accepted); any other shape error
/// (an unknown field, not an object) is refused at `body`.
pub fn parse_spec(body: serde_json::Value) -> Result<AlertRuleSpec, RuleError> {
    serde_path_to_error::deserialize(body).map_err(|error| {
        let field = match error.path().iter().next() {
            Some(serde_path_to_error::Segment::Map { key }) => {
                SPEC_FIELDS.into_iter().find(|f| *f == key.as_str())
            }
            _ => None,
        };
        match field {
            Some(field) => refuse(field, error.inner().to_string()),
            None => refuse(
                "body",
                format!("Failed to deserialize the JSON body into the target type: {error}"),
            ),
        }
    })
}

/// Instance name of [`SeriesScope::All`].
pub const ALL_INSTANCE: &str = "all";

/// Instance name of a series.
pub fn instance_name(labels: &[String]) -> String {
    if labels.is_empty() {
        ALL_INSTANCE.to_string()
    } else {
        labels.join(", ")
    }
}

/// A checked rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: i64,
    pub spec: AlertRuleSpec,
    pub window_s: i64,
    pub params: Params,
    pub severity: Severity,
    pub notify_no_data: bool,
    pub notify_error: bool,
    pub silenced_until_ms: Option<i64>,
    /// Notifications to external targets are grouped per this interval (`series = "each"`
    /// only; 0: one per transition).
    pub group_interval_ms: i64,
}

/// Default group interval of `series = "each"` rules.
pub const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(10);

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
    if let SeriesScope::One(labels) = &spec.series
        && (labels.is_empty() || labels.len() > 3)
    {
        return Err(refuse("series", "one series has 1 to 3 labels"));
    }
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
    let comparison = spec.comparison;
    if !spec.threshold.is_finite() {
        return Err(refuse("threshold", "must be a finite number"));
    }
    let recovery = match spec.recovery_threshold {
        None => spec.threshold,
        Some(r) if !r.is_finite() => {
            return Err(refuse("recovery_threshold", "must be a finite number"));
        }
        Some(r) => {
            let wrong_side = if comparison.is_upward() {
                r > spec.threshold
            } else {
                r < spec.threshold
            };
            if wrong_side {
                let side = if comparison.is_upward() {
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
    let m_of_n = m_of_n(spec, for_)?;
    let group_interval = match (&spec.series, &spec.group_interval) {
        (SeriesScope::Each, given) => {
            duration_field("group_interval", given, DEFAULT_GROUP_INTERVAL)?
        }
        (_, None) => Duration::ZERO,
        (_, Some(_)) => {
            return Err(refuse(
                "group_interval",
                "only a rule with series \"each\" groups its notifications",
            ));
        }
    };
    if group_interval > Duration::from_secs(3600) {
        return Err(refuse("group_interval", "at most 1h"));
    }
    let notify_no_data = spec.notify_on.contains(&NotifyOn::NoData);
    let notify_error = spec.notify_on.contains(&NotifyOn::Error);
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
    for (field, kind) in [
        ("templates.webhook", TargetKind::Webhook),
        ("templates.kinesis", TargetKind::Kinesis),
        ("templates.in_app", TargetKind::InApp),
    ] {
        if let Some(source) = spec.templates.of(kind) {
            let sample = template::sample_fields(spec, recovery, !group_interval.is_zero(), kind);
            let text = template::render(source, &sample).map_err(|e| refuse(field, e.0))?;
            if text.trim().is_empty() {
                return Err(refuse(field, "renders empty text"));
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
        window_s,
        params: Params {
            comparison,
            threshold: spec.threshold,
            recovery_threshold: recovery,
            for_ms: for_.as_millis() as i64,
            keep_firing_for_ms: keep.as_millis() as i64,
            no_data: spec.no_data.unwrap_or_default(),
            no_data_after_ms: no_data_after.as_millis() as i64,
            m_of_n,
        },
        severity: spec.severity.unwrap_or_default(),
        notify_no_data,
        notify_error,
        silenced_until_ms,
        group_interval_ms: group_interval.as_millis() as i64,
        spec,
    })
}

/// Most datapoints "M out of N" counts (an hour of evaluations).
pub const MAX_EVALUATION_PERIODS: u32 = 3600;

/// The "M out of N" fields: both or neither, 1 <= M <= N <= [`MAX_EVALUATION_PERIODS`], and
/// not together with a `for` period.
fn m_of_n(spec: &AlertRuleSpec, for_: Duration) -> Result<Option<MOfN>, RuleError> {
    let (m, n) = match (spec.datapoints_to_alarm, spec.evaluation_periods) {
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(refuse(
                "evaluation_periods",
                "give N, the evaluations counted, with datapoints_to_alarm",
            ));
        }
        (None, Some(_)) => {
            return Err(refuse(
                "datapoints_to_alarm",
                "give M, the breaching evaluations needed, with evaluation_periods",
            ));
        }
        (Some(m), Some(n)) => (m, n),
    };
    if !(1..=MAX_EVALUATION_PERIODS).contains(&n) {
        return Err(refuse(
            "evaluation_periods",
            format!(
                "{n} is out of range: 1 to {MAX_EVALUATION_PERIODS} evaluations (one per second)"
            ),
        ));
    }
    if !(1..=n).contains(&m) {
        return Err(refuse(
            "datapoints_to_alarm",
            format!("{m} is out of range: 1 to evaluation_periods ({n})"),
        ));
    }
    if !for_.is_zero() {
        return Err(refuse(
            "for",
            "use either a pending period (for) or M out of N (datapoints_to_alarm), not both",
        ));
    }
    Ok(Some(MOfN { m, n }))
}

/// Kinesis stream names: 1 to 128 of `a-z A-Z 0-9 _ . -`.
fn valid_stream_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
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

    use contract::{
        alert::{Comparison, NoDataPolicy},
        summary::Statistic,
    };
    use serde_json::{Value, json};

    fn body() -> Value {
        json!({
            "name": "slow checkout",
            "metric": "latency",
            "statistic": "p99",
            "window": "5m",
            "comparison": ">",
            "threshold": 250.0,
        })
    }

    fn spec() -> AlertRuleSpec {
        parse_spec(body()).unwrap()
    }

    fn field_of(spec: &AlertRuleSpec) -> &'static str {
        check(1, spec, |m| m == "latency").unwrap_err().field
    }

    /// The field a body with `patch` applied is refused at, reading it or checking it.
    fn refused_at(patch: Value) -> &'static str {
        let mut body = body();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        match parse_spec(body) {
            Err(e) => e.field,
            Ok(spec) => field_of(&spec),
        }
    }

    #[test]
    fn a_minimal_rule_gets_defaults() {
        let rule = check(1, &spec(), |m| m == "latency").unwrap();
        assert_eq!(rule.spec.series, SeriesScope::All);
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
        assert_eq!(refused_at(json!({"statistic": "p42"})), "statistic");
        for w in ["90s", "61m", "0s", "1.5s", "soon"] {
            let mut s = spec();
            s.window = w.into();
            assert_eq!(field_of(&s), "window", "{w}");
        }
        assert_eq!(refused_at(json!({"comparison": "=>"})), "comparison");
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
        assert_eq!(refused_at(json!({"no_data": "maybe"})), "no_data");
        assert_eq!(refused_at(json!({"series": "some"})), "series");
        assert_eq!(refused_at(json!({"series": []})), "series");
        assert_eq!(refused_at(json!({"notify_on": ["firing"]})), "notify_on");
        let mut s = spec();
        s.targets = vec![AlertTarget::Webhook {
            url: "ftp://x".into(),
        }];
        assert_eq!(field_of(&s), "targets");
        let mut s = spec();
        s.silenced_until = Some("tomorrow".into());
        assert_eq!(field_of(&s), "silenced_until");
        assert_eq!(refused_at(json!({"severity": "panic"})), "severity");
    }

    #[test]
    fn reading_a_body_names_the_field_and_the_rest_body() {
        let mut b = body();
        b["statistic"] = json!("p42");
        let e = parse_spec(b).unwrap_err();
        assert_eq!(
            e.message,
            "\"p42\" is not a statistic; use one of count, rate, sum, mean, min, max, p50, p90, p99, p99.9"
        );
        let mut b = body();
        b["comparison"] = json!("==");
        assert_eq!(
            parse_spec(b).unwrap_err().message,
            "\"==\" is not a comparison; use >, >=, < or <="
        );
        let mut b = body();
        b["threshold"] = json!("high");
        let e = parse_spec(b).unwrap_err();
        assert_eq!(e.field, "threshold");
        assert!(e.message.contains("expected f64"), "{}", e.message);
        let mut b = body();
        b["colour"] = json!("red");
        assert_eq!(parse_spec(b).unwrap_err().field, "body");
        let mut b = body();
        b["no_data"] = json!("keep_last");
        b["statistic"] = json!("rate/s");
        let rule = check(1, &parse_spec(b).unwrap(), |_| true).unwrap();
        assert_eq!(rule.params.no_data, NoDataPolicy::KeepLast);
        assert_eq!(rule.spec.statistic, Statistic::Rate);
    }

    #[test]
    fn m_of_n_is_both_fields_in_range_and_not_with_for() {
        let mut s = spec();
        s.datapoints_to_alarm = Some(3);
        s.evaluation_periods = Some(5);
        let rule = check(1, &s, |_| true).unwrap();
        assert_eq!(rule.params.m_of_n, Some(MOfN { m: 3, n: 5 }));
        for (m, n, field) in [
            (Some(3), None, "evaluation_periods"),
            (None, Some(5), "datapoints_to_alarm"),
            (Some(6), Some(5), "datapoints_to_alarm"),
            (Some(0), Some(5), "datapoints_to_alarm"),
            (Some(1), Some(0), "evaluation_periods"),
            (Some(1), Some(3601), "evaluation_periods"),
        ] {
            let mut s = spec();
            s.datapoints_to_alarm = m;
            s.evaluation_periods = n;
            assert_eq!(field_of(&s), field, "{m:?} of {n:?}");
        }
        s.for_ = Some("1m".into());
        let e = check(1, &s, |_| true).unwrap_err();
        assert_eq!(e.field, "for");
        assert!(e.message.contains("not both"), "{}", e.message);
        s.for_ = Some("0s".into());
        assert!(check(1, &s, |_| true).is_ok());
    }

    #[test]
    fn each_rules_group_by_default_and_others_cannot() {
        let mut s = spec();
        assert_eq!(check(1, &s, |_| true).unwrap().group_interval_ms, 0);
        s.group_interval = Some("30s".into());
        assert_eq!(field_of_any(&s), "group_interval");
        s.series = SeriesScope::Each;
        assert_eq!(check(1, &s, |_| true).unwrap().group_interval_ms, 30_000);
        s.group_interval = None;
        assert_eq!(check(1, &s, |_| true).unwrap().group_interval_ms, 10_000);
        s.group_interval = Some("2h".into());
        assert_eq!(field_of_any(&s), "group_interval");
        // A grouped rule's templates see the group's transitions.
        s.group_interval = Some("0s".into());
        s.templates.webhook = Some("{% for t in transitions %}{{ t.instance }}{% endfor %}".into());
        assert_eq!(field_of_any(&s), "templates.webhook");
        s.group_interval = None;
        assert!(check(1, &s, |_| true).is_ok());
        // The in-app text is per transition, grouped or not.
        s.templates.in_app = Some("{{ count }}".into());
        assert_eq!(field_of_any(&s), "templates.in_app");
    }

    #[test]
    fn templates_are_refused_at_their_field() {
        let mut s = spec();
        s.templates.webhook = Some(r#"{"text": {{ rule|tojson }}}"#.into());
        s.templates.in_app = Some("{{ rule }} is {{ to }}".into());
        assert!(check(1, &s, |_| true).is_ok());
        s.templates.kinesis = Some("{{ rule }".into());
        let e = check(1, &s, |_| true).unwrap_err();
        assert_eq!(e.field, "templates.kinesis");
        assert!(e.message.contains("syntax error"), "{}", e.message);
        s.templates.kinesis = None;
        s.templates.in_app = Some("{{ nope }}".into());
        assert_eq!(field_of_any(&s), "templates.in_app");
        s.templates.in_app = Some("{% if false %}x{% endif %}".into());
        let e = check(1, &s, |_| true).unwrap_err();
        assert_eq!(
            (e.field, e.message.as_str()),
            ("templates.in_app", "renders empty text")
        );
    }

    fn field_of_any(spec: &AlertRuleSpec) -> &'static str {
        check(1, spec, |_| true).unwrap_err().field
    }

    #[test]
    fn recovery_below_threshold_is_hysteresis_for_greater_than() {
        let mut s = spec();
        s.recovery_threshold = Some(200.0);
        assert!(check(1, &s, |_| true).is_ok());
        s.comparison = Comparison::Lt;
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
