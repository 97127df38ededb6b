//! `/api/v1/dashboards`: user-built dashboards (list, get, create, update, delete) and their
//! shareable file (export, import as a new dashboard). Bodies are the contract's `Dashboard`
//! document, read by `dashboards::parse`, so a refusal is a 422 naming the field as a path
//! (`panels[2].kind`); an unknown id is a 404.

use super::{AppState, access::Routes, api::ApiError};
use crate::{
    clock::now_ms,
    dashboards::{self, DashboardsError},
};
use axum::{
    Json,
    extract::{Path, State, rejection::JsonRejection},
    http::{StatusCode, header},
    response::IntoResponse,
    routing::{get, post},
};
use contract::{
    api::Created,
    dashboard::{DashboardInfo, DashboardList},
};

pub fn router() -> Routes {
    Routes::new()
        .route("/api/v1/dashboards", get(list).post(create))
        .route("/api/v1/dashboards/import", post(import))
        .route(
            "/api/v1/dashboards/{id}",
            get(get_one).put(update).delete(delete),
        )
        .route("/api/v1/dashboards/{id}/export", get(export))
}

impl From<DashboardsError> for ApiError {
    fn from(error: DashboardsError) -> Self {
        match error {
            DashboardsError::Invalid(e) => ApiError::Unprocessable {
                field: e.field,
                message: e.message,
            },
            DashboardsError::NotFound(_) => ApiError::NotFound(error.to_string()),
            DashboardsError::Storage(e) => e.into(),
            DashboardsError::Corrupt { .. } => ApiError::Internal(error.to_string()),
        }
    }
}

fn document(
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<contract::dashboard::Dashboard, ApiError> {
    let Json(body) = body?;
    Ok(dashboards::parse_value(body).map_err(DashboardsError::from)?)
}

fn created(id: i64) -> impl IntoResponse {
    (
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/dashboards/{id}"))],
        Json(Created { id }),
    )
}

async fn list(State(state): State<AppState>) -> Result<Json<DashboardList>, ApiError> {
    Ok(Json(DashboardList {
        dashboards: dashboards::list(&state.database).await?,
    }))
}

async fn create(
    State(state): State<AppState>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let dashboard = document(body)?;
    let id = dashboards::create(&state.database, &dashboard, now_ms()).await?;
    Ok(created(id))
}

async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<DashboardInfo>, ApiError> {
    Ok(Json(dashboards::get(&state.database, id).await?))
}

async fn update(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Json<DashboardInfo>, ApiError> {
    let dashboard = document(body)?;
    Ok(Json(
        dashboards::update(&state.database, id, &dashboard, now_ms()).await?,
    ))
}

async fn delete(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    dashboards::delete(&state.database, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/dashboards/{id}/export`: the document as a JSON file to download.
async fn export(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<impl IntoResponse, ApiError> {
    let info = dashboards::get(&state.database, id).await?;
    let file_name: String = info
        .dashboard
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"dashboard-{file_name}.json\""),
            ),
        ],
        dashboards::to_file(&info.dashboard),
    ))
}

/// `POST /api/v1/dashboards/import` with an exported file as the body (any content type):
/// checked like a create and stored as a new dashboard; 201 `{"id"}`.
async fn import(
    State(state): State<AppState>,
    body: String,
) -> Result<impl IntoResponse, ApiError> {
    let dashboard = dashboards::parse(&body).map_err(DashboardsError::from)?;
    let id = dashboards::create(&state.database, &dashboard, now_ms()).await?;
    Ok(created(id))
}
