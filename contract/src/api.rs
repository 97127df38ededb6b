//! JSON bodies of the REST API under `/api/v1` (metrics, queries, field discovery, alerts,
//! export estimates, errors). The server produces them and the browser consumes them; nothing
//! else defines these shapes. Metric definitions themselves travel as JSON objects with the
//! field names `name`, `stream`, `format`, `value`, `filter`, `dimensions`, `unit`, `time`,
//! `histogram` (see the README).

use crate::{
    alert::{
        AlertState, Comparison, NoDataPolicy, NotifyOn, PreviewVerdict, SeriesScope, Severity,
    },
    closed_set,
    summary::{Statistic, Summary},
};
use serde::{Deserialize, Serialize};

/// One metric as listed by `GET /api/v1/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricInfo {
    pub id: i64,
    pub name: String,
    pub stream: String,
    /// Built-in metrics exist per stream without a definition and cannot be changed.
    pub builtin: bool,
    pub unit: Option<String>,
    /// Dimension names (field paths for defined metrics).
    pub dimensions: Vec<String>,
    /// The definition (absent for built-ins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<serde_json::Value>,
    pub created_ms: i64,
}

/// `GET /api/v1/metrics` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricList {
    pub metrics: Vec<MetricInfo>,
}

/// Aggregates of one time bucket (or of a whole range, for the summary): `start_ms` and the
/// [`Summary`] fields side by side in one JSON object.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(from = "PointWire")]
pub struct Point {
    /// Bucket start, epoch milliseconds (the range start for a summary).
    pub start_ms: i64,
    #[serde(flatten)]
    pub summary: Summary,
}

crate::summary::summary_beside!(PointWire, start_ms, Point);

/// `GET /api/v1/query` body: a time series and one summary over the range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryResponse {
    pub metric: String,
    pub unit: Option<String>,
    /// Seconds per point: 1, 60 or 3600.
    pub tier_s: i64,
    pub from_ms: i64,
    pub to_ms: i64,
    /// The series' labels, or none when all series are merged.
    pub series: Option<Vec<String>>,
    pub points: Vec<Point>,
    pub summary: Point,
    /// The value distribution over the whole range (merged histograms), when asked for with
    /// `bins=N`: up to N equal-width bins from the smallest to the largest recorded value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub distribution: Vec<HistogramBin>,
    /// The value distribution per time column, when asked for with `bins=N&columns=M`: each
    /// column counts its values in the bins of `distribution`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heatmap: Option<Heatmap>,
}

/// A heatmap of a range's values: up to `columns=M` columns of equal span, each with one count
/// per bin of the range's distribution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heatmap {
    /// Milliseconds each column spans (a whole number of tier steps).
    pub column_ms: i64,
    pub columns: Vec<HeatmapColumn>,
}

/// One time column of a [`Heatmap`]: counts per distribution bin, in bin order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeatmapColumn {
    pub start_ms: i64,
    pub counts: Vec<u64>,
}

/// One bin of a value distribution: values in `[low, high]` (histogram precision).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistogramBin {
    pub low: u64,
    pub high: u64,
    pub count: u64,
}

/// `GET /api/v1/metrics/{name}/series` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesList {
    pub metric: String,
    pub series: Vec<Vec<String>>,
}

/// One field found in a stream's recent records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldInfo {
    /// JSON Pointer, e.g. `/latency_ms`.
    pub path: String,
    pub kind: FieldKind,
    /// How many sampled records carried it.
    pub seen: u64,
    /// For strings: the distinct values seen.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

closed_set! {
    /// What a discovered field holds.
    pub enum FieldKind ("field kind") {
        /// Numbers in most sampled records.
        Number = "number",
        /// Strings of low cardinality (the values are listed).
        String = "string",
    }
    refused: ": use number or string";
}

/// `GET /api/v1/streams/{name}/fields` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldList {
    pub stream: String,
    pub sampled_records: u64,
    pub fields: Vec<FieldInfo>,
}

closed_set! {
    /// The file format of `GET /api/v1/export` (`format=`).
    pub enum ExportFormat ("export format") {
        Csv = "csv",
        Json = "json",
        /// A printable report with a chart and a table per metric.
        Html = "html",
    }
    refused: ": use csv, json or html";
}

impl ExportFormat {
    /// The file name extension.
    pub fn extension(self) -> &'static str {
        self.as_str()
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Json => "application/json",
            ExportFormat::Html => "text/html; charset=utf-8",
        }
    }

    /// Most rows an export of this format may have (the HTML report keeps a metric's points
    /// for its chart, and a printable report of millions of rows helps nobody).
    pub fn max_rows(self) -> i64 {
        match self {
            ExportFormat::Csv | ExportFormat::Json => 20_000_000,
            ExportFormat::Html => 20_000,
        }
    }
}

/// `GET /api/v1/export/estimate` body: what `GET /api/v1/export` with the same parameters
/// would return right now (same validation, same row count as its `X-Export-Rows` header).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportEstimate {
    /// Every row: `buckets` plus one `total` row per series.
    pub rows: i64,
    /// Series with data in the range, over all chosen metrics.
    pub series: i64,
    /// Stored buckets in the range (the non-total rows).
    pub buckets: i64,
    /// Seconds per bucket: 1, 60 or 3600 (`auto` resolved).
    pub resolution_s: i64,
    /// Metrics exported.
    pub metrics: i64,
    /// The resolved range, epoch milliseconds.
    pub from_ms: i64,
    pub to_ms: i64,
    /// Most rows the chosen format allows.
    pub max_rows: i64,
}

/// Every API error body: `{"error": {"field": ..., "message": ...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    pub error: ApiErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiErrorDetail {
    /// The request field at fault (validation errors), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
}

/// An alert rule as the API and the UI exchange it (`/api/v1/alerts`). Closed sets are enums
/// that travel as their names (a bad name is refused with a message that lists the accepted
/// ones); durations are strings like `"30s"`, `"5m"`, checked by the server. See the README for
/// every field's meaning and default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRuleSpec {
    pub name: String,
    pub metric: String,
    /// `"all"` (all series together, the default), `"each"` (one instance per series) or the
    /// labels of one series, e.g. `["eu-west", "/cart"]`.
    #[serde(default)]
    pub series: SeriesScope,
    pub statistic: Statistic,
    /// Rolling window: 1 s to 60 s, or whole minutes up to 60 m.
    pub window: String,
    pub comparison: Comparison,
    pub threshold: f64,
    /// Hysteresis: once firing, the alert recovers only when the value passes this threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_threshold: Option<f64>,
    /// Pending period before firing (default `"0s"`).
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    /// "M out of N" (instead of `for`): fire when at least this many (M) of the last
    /// `evaluation_periods` evaluations breached. Both or neither.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datapoints_to_alarm: Option<u32>,
    /// N of "M out of N": how many of the latest evaluations (one per second) are counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation_periods: Option<u32>,
    /// How long a recovered alert keeps firing (default `"0s"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_firing_for: Option<String>,
    /// Absent: [`NoDataPolicy::NoData`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_data: Option<NoDataPolicy>,
    /// Silence after which the no-data policy applies (default `"2m"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_data_after: Option<String>,
    /// Also notify on entering these states.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify_on: Vec<NotifyOn>,
    /// `series = "each"` only: the webhook and Kinesis targets get one notification per
    /// interval listing every instance that changed (default `"10s"`; `"0s"`: one per
    /// transition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_interval: Option<String>,
    /// Absent: [`Severity::Warning`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook_url: Option<String>,
    #[serde(default)]
    pub targets: Vec<AlertTarget>,
    /// Notification templates per target kind (absent: the documented JSON payload, and the
    /// default in-app text).
    #[serde(default, skip_serializing_if = "NotificationTemplates::is_empty")]
    pub templates: NotificationTemplates,
    #[serde(default = "enabled_default")]
    pub enabled: bool,
    /// RFC 3339; notifications are held back until then (transitions are still recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silenced_until: Option<String>,
}

fn enabled_default() -> bool {
    true
}

/// A rule's notification templates (MiniJinja syntax, the transition's fields as variables):
/// the webhook body, the Kinesis record data and the in-app text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationTemplates {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinesis: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_app: Option<String>,
}

impl NotificationTemplates {
    pub fn is_empty(&self) -> bool {
        self.webhook.is_none() && self.kinesis.is_none() && self.in_app.is_none()
    }

    /// The template of a target kind.
    pub fn of(&self, kind: TargetKind) -> Option<&str> {
        match kind {
            TargetKind::Webhook => self.webhook.as_deref(),
            TargetKind::Kinesis => self.kinesis.as_deref(),
            TargetKind::InApp => self.in_app.as_deref(),
        }
    }
}

closed_set! {
    /// The kind of a notification target (`AlertTarget`'s `type`).
    pub enum TargetKind ("target kind") {
        InApp = "in_app",
        Webhook = "webhook",
        Kinesis = "kinesis",
    }
    refused: ": use in_app, webhook or kinesis";
}

impl AlertTarget {
    pub fn kind(&self) -> TargetKind {
        match self {
            AlertTarget::InApp => TargetKind::InApp,
            AlertTarget::Webhook { .. } => TargetKind::Webhook,
            AlertTarget::Kinesis { .. } => TargetKind::Kinesis,
        }
    }
}

/// `POST /api/v1/alerts/notification/preview` and `/notification/test` body: a draft rule,
/// the target kind, and the transition to render (default: a sample firing one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationRequest {
    pub rule: AlertRuleSpec,
    pub target: TargetKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition: Option<AlertBacktestTransition>,
}

/// A rendered notification, and for a test send what the target answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationOutcome {
    pub target: TargetKind,
    /// What is (or was) sent: the webhook body, the record data or the in-app text.
    pub text: String,
    /// A test send: whether the target accepted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered: Option<bool>,
    /// A test send to a webhook: the HTTP status it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// A test send: the start of the receiver's answer (at most 2 KiB), or the Kinesis record's
    /// shard and sequence number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// A test send that failed: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Where a rule's notifications go.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AlertTarget {
    /// A toast and the badge count in every open browser.
    InApp,
    /// POST of the notification JSON to `url` (http or https).
    Webhook { url: String },
    /// The notification JSON as a record in a Kinesis stream.
    Kinesis { stream: String },
}

/// One rule as listed by `GET /api/v1/alerts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRuleInfo {
    pub id: i64,
    #[serde(flatten)]
    pub spec: AlertRuleSpec,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub instances: Vec<crate::protocol::AlertInstanceLive>,
}

/// `GET /api/v1/alerts` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRuleList {
    pub rules: Vec<AlertRuleInfo>,
}

/// `POST /api/v1/alerts` answer (201).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Created {
    pub id: i64,
}

/// `GET /api/v1/alerts/history` body: transitions, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertHistory {
    pub transitions: Vec<crate::protocol::AlertEvent>,
}

/// `POST /api/v1/alerts/preview` body: what the draft rule would see now, per instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertPreview {
    pub instances: Vec<AlertPreviewInstance>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertPreviewInstance {
    pub instance: String,
    pub value: Option<f64>,
    pub verdict: PreviewVerdict,
}

/// `POST /api/v1/alerts/import` answer: rules created and rules replaced (same name).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertImport {
    pub created: usize,
    pub replaced: usize,
}

/// `POST /api/v1/alerts/backtest` body: a draft rule and the stored range to replay it over
/// (`from` default `-24h`, `to` default now; RFC 3339 or relative like `-6h`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertBacktestRequest {
    pub rule: AlertRuleSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// One transition a backtest found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertBacktestTransition {
    pub instance: String,
    pub from: AlertState,
    pub to: AlertState,
    pub at_ms: i64,
    pub value: Option<f64>,
    /// Whether the rule would have notified its targets.
    pub notifies: bool,
}

/// `POST /api/v1/alerts/backtest` answer: what the rule would have done over the range,
/// evaluated every second of the 1-second tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertBacktest {
    /// The range replayed (after clamping to the 1-second tier's retention).
    pub from_ms: i64,
    pub to_ms: i64,
    /// The tier replayed, in seconds (1).
    pub tier_s: i64,
    /// Seconds evaluated.
    pub evaluations: u64,
    /// Instances the rule had, and series of the metric seen.
    pub instances: usize,
    pub series: usize,
    /// Transitions in time order; at most 10,000 (`truncated` then).
    pub transitions: Vec<AlertBacktestTransition>,
    pub transition_count: u64,
    pub truncated: bool,
    /// Notifications the rule would have sent (silences are not replayed).
    pub notifications: u64,
    /// Why the range differs from the one asked for, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One recent record run through a draft definition (`POST /api/v1/metrics/preview`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreviewRecord {
    /// Kinesis arrival time, epoch milliseconds.
    pub arrival_ms: i64,
    /// What the metric would record; absent when the filter skipped the record or it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The record's event time (the arrival time without a `time` field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_ms: Option<i64>,
    /// Dimension values, one per dimension.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// The filter did not match.
    #[serde(default)]
    pub skipped: bool,
    /// Why the metric could not use the record (e.g. `value_missing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The record's first 200 bytes.
    pub excerpt: String,
}

/// `POST /api/v1/metrics/preview` body: the draft over the stream's recent records, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreviewResponse {
    pub stream: String,
    /// Records with a value.
    pub extracted: usize,
    /// Records the filter skipped.
    pub skipped: usize,
    /// Records the metric could not use.
    pub errors: usize,
    pub records: Vec<PreviewRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn points_are_flat_objects() {
        let point = Point {
            start_ms: 1_000,
            summary: Summary {
                count: 3,
                rate_per_s: 3.0,
                sum: 6.0,
                min: Some(1.0),
                max: Some(3.0),
                mean: Some(2.0),
                p50: Some(2),
                p90: Some(3),
                p99: Some(3),
                p999: Some(3),
            },
        };
        let json = serde_json::to_value(&point).unwrap();
        assert_eq!(
            json,
            json!({"start_ms": 1000, "count": 3, "rate_per_s": 3.0, "sum": 6.0, "min": 1.0,
                "max": 3.0, "mean": 2.0, "p50": 2, "p90": 3, "p99": 3, "p999": 3})
        );
        assert_eq!(serde_json::from_value::<Point>(json).unwrap(), point);
    }

    #[test]
    fn rule_specs_keep_their_wire_names() {
        let json = json!({
            "name": "slow", "metric": "latency", "series": ["eu"], "statistic": "p99.9",
            "window": "5m", "comparison": ">=", "threshold": 1.0, "no_data": "keep_last",
            "notify_on": ["no_data", "error"], "severity": "critical", "targets": [],
            "enabled": true,
        });
        let spec: AlertRuleSpec = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(spec.statistic, Statistic::P999);
        assert_eq!(spec.comparison, Comparison::Ge);
        assert_eq!(spec.series, SeriesScope::One(vec!["eu".into()]));
        assert_eq!(spec.no_data, Some(NoDataPolicy::KeepLast));
        assert_eq!(spec.notify_on, [NotifyOn::NoData, NotifyOn::Error]);
        assert_eq!(spec.severity, Some(Severity::Critical));
        assert_eq!(serde_json::to_value(&spec).unwrap(), json);
        let minimal: AlertRuleSpec = serde_json::from_value(json!({
            "name": "n", "metric": "m", "statistic": "count", "window": "1m",
            "comparison": "<", "threshold": 0,
        }))
        .unwrap();
        assert_eq!(minimal.series, SeriesScope::All);
        assert_eq!(serde_json::to_value(&minimal).unwrap()["series"], "all");
    }

    #[test]
    fn export_formats() {
        assert_eq!("html".parse::<ExportFormat>(), Ok(ExportFormat::Html));
        assert_eq!(
            "pdf".parse::<ExportFormat>().unwrap_err().0,
            "\"pdf\": use csv, json or html"
        );
        assert_eq!(ExportFormat::Csv.extension(), "csv");
        assert_eq!(serde_json::to_value(FieldKind::Number).unwrap(), "number");
    }
}
