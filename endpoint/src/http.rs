//! The HTTP face of the endpoint: one axum handler on `POST /` that checks for an
//! Authorization header, reads a bounded body, dispatches on `X-Amz-Target` and answers in
//! awsJson1_1 with AWS's error shapes, or, for SubscribeToShard, with a streamed
//! `application/vnd.amazon.eventstream` body (see [`crate::subscription`]), sent with
//! HTTP/1.1 chunked transfer. Signatures are not checked.

use super::{
    service::Service,
    subscription,
    wire::{ApiError, ErrorKind, Operation},
};
use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

/// Largest request body accepted: a 5 MiB PutRecords is about 6.7 MiB once base64-encoded,
/// plus JSON; anything beyond this is refused before it is buffered.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
const EVENT_STREAM_CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

#[derive(Clone)]
struct HttpState {
    service: Arc<Service>,
    request_ids: Arc<AtomicU64>,
}

/// The endpoint's router.
pub fn router(service: Arc<Service>) -> Router {
    let state = HttpState {
        service,
        request_ids: Arc::new(AtomicU64::new(1)),
    };
    Router::new()
        .route("/", post(handle))
        .fallback(post(handle))
        .with_state(state)
}

fn respond(status: u16, body: Vec<u8>, request_id: u64) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(id) = HeaderValue::from_str(&format!("{request_id:016x}")) {
        headers.insert("x-amzn-RequestId", id);
    }
    response
}

fn error_response(error: &ApiError, request_id: u64) -> Response {
    let mut response = respond(error.kind.status(), error.body().into_bytes(), request_id);
    if let Ok(kind) = HeaderValue::from_str(error.kind.aws_type()) {
        response.headers_mut().insert("x-amzn-ErrorType", kind);
    }
    response
}

/// A successful answer: a JSON body, or SubscribeToShard's event stream.
enum Answer {
    Json(Vec<u8>),
    Events(Body),
}

async fn handle(State(state): State<HttpState>, request: Request) -> Response {
    let request_id = state.request_ids.fetch_add(1, Ordering::Relaxed);
    match dispatch(&state, request).await {
        Ok(Answer::Json(body)) => respond(200, body, request_id),
        Ok(Answer::Events(body)) => {
            let mut response = Response::new(body);
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(EVENT_STREAM_CONTENT_TYPE),
            );
            if let Ok(id) = HeaderValue::from_str(&format!("{request_id:016x}")) {
                headers.insert("x-amzn-RequestId", id);
            }
            response
        }
        Err(error) => {
            if error.kind == ErrorKind::InternalFailure {
                tracing::warn!(%error, "answering InternalFailure");
            } else {
                tracing::debug!(%error, "answering a client error");
            }
            error_response(&error, request_id)
        }
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn dispatch(state: &HttpState, request: Request) -> Result<Answer, ApiError> {
    let (parts, body) = request.into_parts();
    if !parts.headers.contains_key(header::AUTHORIZATION) {
        return Err(ApiError::new(
            ErrorKind::MissingAuthenticationToken,
            "Missing Authentication Token",
        ));
    }
    let target = header_str(&parts.headers, "x-amz-target").ok_or_else(|| {
        ApiError::new(
            ErrorKind::UnknownOperation,
            "missing X-Amz-Target header (expected Kinesis_20131202.<Operation>)",
        )
    })?;
    let op = Operation::from_target(target)?;
    let body = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|error| {
            ApiError::validation(format!(
                "request body unreadable or larger than {MAX_BODY_BYTES} bytes: {error}"
            ))
        })?;
    let faults = state.service.faults();
    if faults.is_active() {
        if let Some(delay) = faults.latency(op, rand::random::<f64>()) {
            state.service.count_injected();
            tokio::time::sleep(delay).await;
        }
        if let Some(error) = faults.inject(op, rand::random::<f64>()) {
            state.service.count_injected();
            return Err(error);
        }
    }
    if op == Operation::SubscribeToShard {
        return Ok(Answer::Events(
            subscription::subscribe(&state.service, &body)?.into_body(),
        ));
    }
    state.service.handle(op, body).await.map(Answer::Json)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error_response(&self, 0)
    }
}
