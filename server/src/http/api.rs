//! The JSON API under `/api/v1`: metric definitions (list, get, create, update, delete), a
//! metric's series, history queries, and field discovery per stream. Bodies are the DTOs of
//! `contract::api`; definitions use the same field names as the config file's `[[metrics]]`.
//!
//! Errors go through one [`ApiError`]: 422 `{"error": {"field", "message"}}` for a request the
//! server understood but refuses, 404 for an unknown name, 503 when the engine is not running,
//! 507 when the database's disk is full, 500 with a generic body (the detail is logged).

use super::{AppState, access::Routes};
use crate::{
    catalog::{self, CatalogError},
    clock::now_ms,
    metric::{Builtin, MetricDefinition},
    query::{self, QueryError, QueryRequest},
    storage::{StorageError, metrics::MetricRecord},
};
use axum::{
    Json,
    extract::{Path, Query, State, rejection::JsonRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use contract::api::{
    ApiErrorBody, ApiErrorDetail, FieldInfo, FieldKind, FieldList, MetricInfo, MetricList,
    PreviewRecord, PreviewResponse, QueryResponse, SeriesList,
};
use serde::Deserialize;

/// The API's routes.
pub fn router() -> Routes {
    Routes::new()
        .route("/api/v1/metrics", get(list_metrics).post(create_metric))
        .route("/api/v1/metrics/preview", post(preview_metric))
        .route(
            "/api/v1/metrics/{name}",
            get(get_metric).put(update_metric).delete(delete_metric),
        )
        .route("/api/v1/metrics/{name}/series", get(metric_series))
        .route("/api/v1/query", get(run_query))
        .route("/api/v1/streams/{name}/fields", get(stream_fields))
}

/// Every way an API request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{field}: {message}")]
    Unprocessable { field: String, message: String },
    #[error("{0}")]
    NotFound(String),
    #[error("the metrics engine is not running")]
    EngineUnavailable,
    #[error("the request body is too large")]
    TooLarge,
    /// A write (or a read that first brings roll-ups up to date) failed with SQLITE_FULL.
    #[error(
        "the database's disk is full: nothing can be saved until space is freed on it; \
         try again then"
    )]
    DiskFull,
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    fn invalid(field: &str, message: impl Into<String>) -> Self {
        ApiError::Unprocessable {
            field: field.to_string(),
            message: message.into(),
        }
    }

    pub fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::EngineUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::DiskFull => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (field, message) = match &self {
            ApiError::Unprocessable { field, message } => (Some(field.clone()), message.clone()),
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "API request failed");
                (None, "internal server error".to_string())
            }
            other => (None, other.to_string()),
        };
        let body = ApiErrorBody {
            error: ApiErrorDetail { field, message },
        };
        (self.status_code(), Json(body)).into_response()
    }
}

impl From<StorageError> for ApiError {
    fn from(error: StorageError) -> Self {
        if error.is_disk_full() {
            tracing::warn!(%error, "API request failed: the database's disk is full");
            return ApiError::DiskFull;
        }
        ApiError::Internal(error.to_string())
    }
}

impl From<CatalogError> for ApiError {
    fn from(error: CatalogError) -> Self {
        match error {
            CatalogError::Invalid(e) => ApiError::Unprocessable {
                field: e.field,
                message: e.message,
            },
            CatalogError::NotFound(name) => ApiError::NotFound(format!("no metric named {name:?}")),
            CatalogError::Storage(e) => e.into(),
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(error: QueryError) -> Self {
        match error {
            QueryError::UnknownMetric(_) => ApiError::NotFound(error.to_string()),
            QueryError::Invalid { field, message } => ApiError::invalid(field, message),
            QueryError::Storage(e) => e.into(),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::TooLarge;
        }
        ApiError::invalid("body", rejection.body_text())
    }
}

fn info(metric: MetricRecord) -> MetricInfo {
    let (unit, dimensions) = match &metric.definition {
        Some(def) => (def.unit.clone(), def.dimensions.clone()),
        None => {
            let kind = metric.name.rsplit(':').next().and_then(Builtin::parse);
            (
                kind.map(|k| k.unit().to_string()),
                kind.map(|k| k.dimensions().iter().map(|d| d.to_string()).collect())
                    .unwrap_or_default(),
            )
        }
    };
    MetricInfo {
        id: metric.id,
        name: metric.name,
        stream: metric.stream,
        builtin: metric.builtin,
        unit,
        dimensions,
        definition: metric
            .definition
            .map(|d| serde_json::to_value(d).expect("definitions always serialise")),
        created_ms: metric.created_ms,
    }
}

async fn list_metrics(State(state): State<AppState>) -> Result<Json<MetricList>, ApiError> {
    let metrics = state.database.active_metrics().await?;
    Ok(Json(MetricList {
        metrics: metrics.into_iter().map(info).collect(),
    }))
}

async fn get_metric(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<MetricInfo>, ApiError> {
    let metric = state
        .database
        .active_metric(&name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no metric named {name:?}")))?;
    Ok(Json(info(metric)))
}

async fn create_metric(
    State(state): State<AppState>,
    body: Result<Json<MetricDefinition>, JsonRejection>,
) -> Result<(StatusCode, Json<MetricInfo>), ApiError> {
    let Json(definition) = body?;
    let stored = catalog::create(&state.database, state.engine.as_ref(), definition).await?;
    Ok((StatusCode::CREATED, Json(info(stored))))
}

async fn update_metric(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Result<Json<MetricDefinition>, JsonRejection>,
) -> Result<Json<MetricInfo>, ApiError> {
    let Json(definition) = body?;
    let stored = catalog::update(&state.database, state.engine.as_ref(), &name, definition).await?;
    Ok(Json(info(stored)))
}

async fn delete_metric(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    catalog::delete(&state.database, state.engine.as_ref(), &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn metric_series(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<SeriesList>, ApiError> {
    let series = query::series(&state.database, &name).await?;
    Ok(Json(SeriesList {
        metric: name,
        series,
    }))
}

/// `GET /api/v1/query?metric=NAME[&series=["eu","/a"]][&from=MS][&to=MS][&tier=1s|1m|1h|auto][&bins=N][&columns=M]`.
/// `from`/`to` are epoch milliseconds (default: the last hour); `series` is a JSON array of
/// labels (default: all series merged), where `null` matches any value (`["eu",null]`: every
/// series of `eu`, merged); `columns` (with `bins`) adds the heatmap.
#[derive(Debug, Deserialize)]
struct QueryParams {
    metric: Option<String>,
    series: Option<String>,
    from: Option<i64>,
    to: Option<i64>,
    tier: Option<String>,
    /// Bins of the value distribution to return (`1..=200`).
    bins: Option<u32>,
    /// Time columns of the heatmap to return (`1..=200`, with `bins`).
    columns: Option<u32>,
}

async fn run_query(
    State(state): State<AppState>,
    params: Result<Query<QueryParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<QueryResponse>, ApiError> {
    let Query(params) = params.map_err(|r| ApiError::invalid("query", r.body_text()))?;
    let metric = params
        .metric
        .filter(|m| !m.is_empty())
        .ok_or_else(|| ApiError::invalid("metric", "required"))?;
    let pattern = params
        .series
        .map(|s| serde_json::from_str::<Vec<Option<String>>>(&s))
        .transpose()
        .map_err(|e| {
            ApiError::invalid(
                "series",
                format!("must be a JSON array of strings (or null for any value): {e}"),
            )
        })?;
    let to_ms = params.to.unwrap_or_else(now_ms);
    let from_ms = params.from.unwrap_or(to_ms - 3_600_000);
    let tier_s = match params.tier.as_deref() {
        None | Some("auto") => None,
        Some("1s") => Some(1),
        Some("1m") => Some(60),
        Some("1h") => Some(3600),
        Some(other) => {
            return Err(ApiError::invalid(
                "tier",
                format!("{other:?}: use 1s, 1m, 1h or auto"),
            ));
        }
    };
    let response = query::query_with(
        &state.database,
        &QueryRequest {
            metric,
            series: None,
            from_ms,
            to_ms,
            tier_s,
        },
        &query::QueryOptions {
            bins: params.bins,
            columns: params.columns,
            matching: pattern,
        },
    )
    .await?;
    Ok(Json(response))
}

async fn stream_fields(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<FieldList>, ApiError> {
    let engine = state.engine.as_ref().ok_or(ApiError::EngineUnavailable)?;
    let stats = engine
        .fields(&name)
        .await
        .map_err(|_| ApiError::EngineUnavailable)?
        .ok_or_else(|| ApiError::NotFound(format!("no records seen yet on stream {name:?}")))?;
    let sampled_records = stats.values().map(|s| s.seen).max().unwrap_or(0);
    let fields = stats
        .into_iter()
        .filter_map(|(path, s)| {
            if s.numeric * 2 >= s.seen {
                Some(FieldInfo {
                    path,
                    kind: FieldKind::Number,
                    seen: s.seen,
                    values: Vec::new(),
                })
            } else if !s.high_cardinality && !s.strings.is_empty() {
                Some(FieldInfo {
                    path,
                    kind: FieldKind::String,
                    seen: s.seen,
                    values: s.strings.into_keys().collect(),
                })
            } else {
                None
            }
        })
        .collect();
    Ok(Json(FieldList {
        stream: name,
        sampled_records,
        fields,
    }))
}

/// Records a preview runs over (the newest of the engine's per-stream sample).
pub const PREVIEW_RECORDS: usize = 50;

/// `POST /api/v1/metrics/preview[?replaces=NAME]` with a definition body: validates it as a
/// create (or, with `replaces`, as an update of that metric) would, then runs it over the
/// stream's most recent records without storing anything.
#[derive(Debug, Deserialize)]
struct PreviewParams {
    replaces: Option<String>,
}

async fn preview_metric(
    State(state): State<AppState>,
    Query(params): Query<PreviewParams>,
    body: Result<Json<MetricDefinition>, JsonRejection>,
) -> Result<Json<PreviewResponse>, ApiError> {
    let Json(definition) = body?;
    let stream = definition.stream.clone();
    let compiled = catalog::compile_draft(
        &state.database,
        state.engine.as_ref(),
        definition,
        params.replaces.as_deref(),
    )
    .await?;
    let engine = state.engine.as_ref().ok_or(ApiError::EngineUnavailable)?;
    let rows = engine
        .preview(compiled, PREVIEW_RECORDS)
        .await
        .map_err(|_| ApiError::EngineUnavailable)?
        .ok_or_else(|| {
            ApiError::invalid(
                "stream",
                format!("no records seen yet on stream {stream:?}"),
            )
        })?;
    let mut response = PreviewResponse {
        stream,
        extracted: 0,
        skipped: 0,
        errors: 0,
        records: Vec::with_capacity(rows.len()),
    };
    for row in rows {
        let mut record = PreviewRecord {
            arrival_ms: row.arrival_ms,
            value: None,
            event_ms: None,
            labels: Vec::new(),
            skipped: false,
            error: None,
            excerpt: row.excerpt,
        };
        match row.outcome {
            Ok(Some(found)) => {
                response.extracted += 1;
                record.value = Some(found.value);
                record.event_ms = Some(found.event_ms);
                record.labels = found.labels;
            }
            Ok(None) => {
                response.skipped += 1;
                record.skipped = true;
            }
            Err(reason) => {
                response.errors += 1;
                record.error = Some(reason.as_str().to_string());
            }
        }
        response.records.push(record);
    }
    Ok(Json(response))
}
