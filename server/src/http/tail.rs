//! `GET /api/v1/streams/{name}/records`: the records of a stream matching a filter, as JSON
//! lines (the Records page's download); the thin HTTP shell over [`crate::tail`]. The live
//! tail itself is the `/ws` topic `tail` (see `ws.rs`).
//!
//! Parameters: `shard` (one shard; all when absent), `start` (`trim_horizon`, the default,
//! `latest`, `timestamp` with `from_ms`, or `sequence` with `sequence_number` and `shard`),
//! `filter` (the metric definitions' filter language), `search` (case-insensitive text),
//! `limit` (records, default 10,000, at most [`MAX_DOWNLOAD_RECORDS`]). A refused parameter is
//! a 422 naming it, before any byte is sent.

use super::AppState;
use axum::{
    Json,
    body::Body,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use contract::{
    api::{ApiErrorBody, ApiErrorDetail},
    tail::{TailQuery, TailStart},
};
use futures_util::stream::poll_fn;
use serde::Deserialize;

pub use crate::tail::MAX_DOWNLOAD_RECORDS;

/// Records a download writes when no `limit` is given.
const DEFAULT_LIMIT: usize = 10_000;

#[derive(Debug, Deserialize)]
pub(super) struct DownloadParams {
    shard: Option<String>,
    start: Option<String>,
    from_ms: Option<i64>,
    sequence_number: Option<String>,
    #[serde(default)]
    filter: String,
    #[serde(default)]
    search: String,
    limit: Option<usize>,
}

fn refusal(field: Option<&str>, message: String) -> Response {
    let status = if field.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = ApiErrorBody {
        error: ApiErrorDetail {
            field: field.map(str::to_string),
            message,
        },
    };
    (status, Json(body)).into_response()
}

/// The tail query the parameters describe, or the field at fault.
fn query_of(stream: String, params: DownloadParams) -> Result<TailQuery, (&'static str, String)> {
    let start = match params.start.as_deref().unwrap_or("trim_horizon") {
        "trim_horizon" => TailStart::TrimHorizon,
        "latest" => TailStart::Latest,
        "timestamp" => TailStart::Timestamp {
            epoch_ms: params.from_ms.ok_or((
                "from_ms",
                "start=timestamp needs from_ms (epoch milliseconds)".to_string(),
            ))?,
        },
        "sequence" => TailStart::Sequence {
            sequence_number: params.sequence_number.ok_or((
                "sequence_number",
                "start=sequence needs sequence_number".to_string(),
            ))?,
        },
        other => {
            return Err((
                "start",
                format!(
                    "{other:?} is not a start; use trim_horizon, latest, timestamp or sequence"
                ),
            ));
        }
    };
    Ok(TailQuery {
        stream,
        shard: params.shard.filter(|s| !s.is_empty()),
        start,
        filter: params.filter,
        search: params.search,
    })
}

pub(super) async fn download(
    State(state): State<AppState>,
    Path(stream): Path<String>,
    params: Result<Query<DownloadParams>, QueryRejection>,
) -> Response {
    let Some(tails) = &state.tails else {
        return refusal(
            None,
            "no streams are read, so there is nothing to tail".into(),
        );
    };
    let Query(params) = match params {
        Ok(params) => params,
        Err(rejection) => return refusal(Some("query"), rejection.body_text()),
    };
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_DOWNLOAD_RECORDS).contains(&limit) {
        return refusal(
            Some("limit"),
            format!("limit is {limit}: it must be between 1 and {MAX_DOWNLOAD_RECORDS}"),
        );
    }
    let file_name = format!("{stream}-records.jsonl");
    let query = match query_of(stream, params) {
        Ok(query) => query,
        Err((field, message)) => return refusal(Some(field), message),
    };
    let mut lines = match tails.download(query, limit).await {
        Ok(lines) => lines,
        Err(detail) => return refusal(detail.field.as_deref(), detail.message),
    };
    // `poll_recv` keeps answering `None` once the channel is done (the body may be polled
    // again after its end).
    let body = Body::from_stream(poll_fn(move |cx| {
        lines
            .poll_recv(cx)
            .map(|line| line.map(Ok::<_, std::convert::Infallible>))
    }));
    (
        [
            (header::CONTENT_TYPE, "application/x-ndjson".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
        ],
        body,
    )
        .into_response()
}
