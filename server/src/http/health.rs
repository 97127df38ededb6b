//! `GET /healthz` (JSON liveness and readiness) and `GET /metrics` (Prometheus text).

use super::AppState;
use crate::telemetry::prometheus;
use axum::{
    Json,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
};
use contract::protocol::{Health, HealthStatus};
use std::time::Duration;

/// How long the database check may take before the server counts as degraded.
const DATABASE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// 200 with `status: ok` when every check passes, 503 with `status: degraded` otherwise: the
/// database does not answer, or its writes fail (`storage_error`, e.g. a full disk).
pub async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    let database_ok = matches!(
        tokio::time::timeout(DATABASE_CHECK_TIMEOUT, state.database.ping()).await,
        Ok(Ok(()))
    );
    let storage_failure = state
        .engine
        .as_ref()
        .and_then(|engine| engine.storage_failure());
    let failed_flushes = storage_failure.as_ref().map(|f| f.failed_flushes);
    let storage_error = storage_failure.map(|failure| failure.message);
    let healthy = database_ok && storage_error.is_none();
    let health = Health {
        status: if healthy {
            HealthStatus::Ok
        } else {
            HealthStatus::Degraded
        },
        version: env!("CARGO_PKG_VERSION").to_string(),
        uptime_secs: state.metrics.uptime_secs_f64() as u64,
        database_ok,
        storage_error,
        failed_flushes,
    };
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(health))
}

pub async fn prometheus(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, prometheus::CONTENT_TYPE)],
        render_metrics(&state),
    )
}

/// The process's figures, then the consumer's per-shard figures when it runs.
fn render_metrics(state: &AppState) -> String {
    let mut text = state.metrics.render();
    if let Some(health) = state
        .pipeline
        .as_ref()
        .and_then(|pipeline| pipeline.consumer_health.as_ref())
    {
        let mut consumer = prometheus::Exposition::default();
        health.borrow().render_prometheus(&mut consumer);
        text.push_str(&consumer.finish());
    }
    text
}
