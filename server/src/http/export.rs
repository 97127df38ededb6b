//! `GET /api/v1/export`: the thin HTTP shell over [`crate::export`]. Validation errors are
//! answered as 422 (404 for an unknown metric) through [`ApiError`] before any byte is sent;
//! then the body streams from the export task's bounded channel.
//!
//! `GET /api/v1/export/estimate` takes the same parameters and runs the same validation and
//! row count as the export itself (one [`prepare`] for both), answering
//! [`ExportEstimate`] instead of streaming: what the Reports page shows before a download.
//!
//! Parameters: `metrics` (comma-separated names, or `all`), `series` (JSON label array),
//! `from`/`to` (RFC 3339, epoch ms, `now`, or `-24h`), `resolution` (`1s`, `1m`, `1h`, `auto`),
//! `format` (`csv`, `json`, `html`).

use super::{AppState, api::ApiError};
use crate::{
    clock::now_ms,
    export::{
        request::{self, ExportError, ExportParams},
        stream::{self, PrepareError, Prepared},
    },
};
use axum::{
    Json,
    body::Body,
    extract::{Query, State, rejection::QueryRejection},
    http::header,
    response::{IntoResponse, Response},
};
use contract::api::ExportEstimate;
use futures_util::stream::poll_fn;

impl From<ExportError> for ApiError {
    fn from(error: ExportError) -> Self {
        match error {
            ExportError::UnknownMetric(_) => ApiError::NotFound(error.to_string()),
            other => ApiError::Unprocessable {
                field: other.field().to_string(),
                message: match &other {
                    ExportError::Invalid { message, .. } => message.clone(),
                    _ => other.to_string(),
                },
            },
        }
    }
}

impl From<PrepareError> for ApiError {
    fn from(error: PrepareError) -> Self {
        match error {
            PrepareError::Request(e) => e.into(),
            PrepareError::Storage(e) => e.into(),
        }
    }
}

/// Validates the parameters and counts the rows: the common first step of both handlers.
async fn prepare(
    state: &AppState,
    params: Result<Query<ExportParams>, QueryRejection>,
) -> Result<Prepared, ApiError> {
    let Query(params) = params.map_err(|r| ApiError::Unprocessable {
        field: "query".into(),
        message: r.body_text(),
    })?;
    let plan = request::plan(&params, now_ms(), state.retention)?;
    Ok(stream::prepare(&state.database, plan).await?)
}

/// The exact row count the export would have now (the data keeps arriving, so a later
/// download of a range ending `now` may have a few more).
pub(super) async fn estimate(
    State(state): State<AppState>,
    params: Result<Query<ExportParams>, QueryRejection>,
) -> Result<Json<ExportEstimate>, ApiError> {
    let prepared = prepare(&state, params).await?;
    let plan = &prepared.plan;
    Ok(Json(ExportEstimate {
        rows: prepared.rows,
        series: prepared.series,
        buckets: prepared.buckets,
        resolution_s: plan.resolution_s,
        metrics: prepared.metrics.len() as i64,
        from_ms: plan.from_ms,
        to_ms: plan.to_ms,
        max_rows: plan.format.max_rows(),
    }))
}

pub(super) async fn export(
    State(state): State<AppState>,
    params: Result<Query<ExportParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let prepared = prepare(&state, params).await?;
    let names: Vec<String> = prepared.metrics.iter().map(|m| m.name.clone()).collect();
    let file_name = request::file_name(&prepared.plan, &names);
    let content_type = prepared.plan.format.content_type();
    let rows = prepared.rows;
    let rx = stream::spawn(
        state.database.clone(),
        prepared,
        &state.tracker,
        state.shutdown.clone(),
    );
    // `poll_recv` keeps answering `None` once the channel is done, so the body may be polled
    // again after its end (the gzip layer does; `stream::unfold` panics there).
    let mut rx = rx;
    let body = Body::from_stream(poll_fn(move |cx| rx.poll_recv(cx)));
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
            (
                header::HeaderName::from_static("x-export-rows"),
                rows.to_string(),
            ),
        ],
        body,
    )
        .into_response())
}
