//! `/api/v1/users` and `/api/v1/tokens`: the admin page's users (list, add, delete, end their
//! sessions) and API tokens (list, create, revoke). Admin only (see [`super::access`]).
//! A token's secret is in the create answer only; the list never has it.

use super::{AppState, access::Routes, api::ApiError};
use crate::{auth::Identity, auth::LoginError, clock::now_ms};
use axum::{
    Extension, Json,
    extract::{Path, State, rejection::JsonRejection},
    http::StatusCode,
    routing::{delete, get},
};
use contract::auth::{CreatedToken, NewToken, NewUser, TokenList, UserInfo, UserList};

pub fn routes() -> Routes {
    Routes::new()
        .route("/api/v1/users", get(list_users).post(create_user))
        .route("/api/v1/users/{id}", delete(delete_user))
        .route("/api/v1/users/{id}/sessions", delete(end_sessions))
        .route("/api/v1/tokens", get(list_tokens).post(create_token))
        .route("/api/v1/tokens/{id}", delete(revoke_token))
}

impl From<LoginError> for ApiError {
    fn from(error: LoginError) -> Self {
        match error {
            LoginError::Invalid { field, message } => ApiError::Unprocessable {
                field: field.to_string(),
                message,
            },
            LoginError::Storage(e) => e.into(),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

async fn list_users(State(state): State<AppState>) -> Result<Json<UserList>, ApiError> {
    Ok(Json(UserList {
        users: state.database.users(now_ms()).await?,
    }))
}

async fn create_user(
    State(state): State<AppState>,
    body: Result<Json<NewUser>, JsonRejection>,
) -> Result<(StatusCode, Json<UserInfo>), ApiError> {
    let Json(new) = body?;
    let id = state
        .auth
        .create_user(&new.name, new.role, &new.password)
        .await?;
    let user = state
        .database
        .users(now_ms())
        .await?
        .into_iter()
        .find(|u| u.id == id)
        .ok_or_else(|| ApiError::Internal("the new user is not listed".into()))?;
    tracing::info!(user = %user.name, role = %user.role, "user added");
    Ok((StatusCode::CREATED, Json(user)))
}

async fn delete_user(
    State(state): State<AppState>,
    Extension(me): Extension<Identity>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let users = state.database.users(now_ms()).await?;
    let user = users
        .iter()
        .find(|u| u.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("no user with id {id}")))?;
    if user.name.eq_ignore_ascii_case(&me.name) {
        return Err(ApiError::Unprocessable {
            field: "id".into(),
            message: "you cannot delete yourself; ask another admin".into(),
        });
    }
    state.auth.delete_user(id).await?;
    tracing::info!(user = %user.name, by = %me.name, "user deleted");
    Ok(StatusCode::NO_CONTENT)
}

async fn end_sessions(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let ended = state.auth.end_sessions(id).await?;
    tracing::info!(user_id = id, ended, "sessions ended");
    Ok(StatusCode::NO_CONTENT)
}

async fn list_tokens(State(state): State<AppState>) -> Result<Json<TokenList>, ApiError> {
    Ok(Json(TokenList {
        tokens: state.database.tokens().await?,
    }))
}

async fn create_token(
    State(state): State<AppState>,
    Extension(me): Extension<Identity>,
    body: Result<Json<NewToken>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let Json(new) = body?;
    let (token, secret) = state
        .auth
        .create_token(&new.name, new.role, &me.name)
        .await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { token, secret })))
}

async fn revoke_token(
    State(state): State<AppState>,
    Extension(me): Extension<Identity>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    if !state.auth.revoke_token(id).await? {
        return Err(ApiError::NotFound(format!(
            "no unrevoked token with id {id}"
        )));
    }
    tracing::info!(token_id = id, by = %me.name, "API token revoked");
    Ok(StatusCode::NO_CONTENT)
}
