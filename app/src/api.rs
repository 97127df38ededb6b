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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
