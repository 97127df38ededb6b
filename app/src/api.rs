//! JSON bodies of the REST API under `/api/v1` (metrics, queries, field discovery, errors).
//! The server produces them and the browser consumes them; nothing else defines these shapes.
//! Metric definitions themselves travel as JSON objects with the field names `name`, `stream`,
//! `format`, `value`, `filter`, `dimensions`, `unit`, `time`, `histogram` (see the README).

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

/// Aggregates of one time bucket (or of a whole range, for the summary).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Point {
    /// Bucket start, epoch milliseconds (the range start for a summary).
    pub start_ms: i64,
    pub count: u64,
    pub rate_per_s: f64,
    pub sum: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    pub p50: Option<u64>,
    pub p90: Option<u64>,
    pub p99: Option<u64>,
    pub p999: Option<u64>,
}

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
    /// `number` or `string` (low-cardinality strings only).
    pub kind: String,
    /// How many sampled records carried it.
    pub seen: u64,
    /// For strings: the distinct values seen.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// `GET /api/v1/streams/{name}/fields` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldList {
    pub stream: String,
    pub sampled_records: u64,
    pub fields: Vec<FieldInfo>,
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
