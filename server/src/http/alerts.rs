//! `/api/v1/alerts`: alert rules (list, create, get, update, delete, silence), the transition
//! history, and a preview of what a draft rule would see now. Errors are the API's
//! [`ApiError`]: 422 naming the field, 404 for an unknown id. Rule bodies are read with
//! [`parse_spec`], so a value outside a closed set is refused at its field.

use super::{AppState, access::Routes, api::ApiError};
use crate::{
    alerts::{
        evaluate::observations,
        machine::Observation,
        rule::{Rule, check, format_rfc3339_ms, parse_rfc3339_ms, parse_spec},
        service::parse_stored,
    },
    clock::now_ms,
    storage::alerts::{HistoryFilter, RuleRow, is_duplicate_name},
};
use axum::{
    Json,
    extract::{Path, Query, State, rejection::JsonRejection},
    http::{StatusCode, header},
    response::IntoResponse,
    routing::{get, post},
};
use contract::{
    ParseError,
    alert::{AlertState, PreviewVerdict},
    api::{
        AlertHistory, AlertPreview, AlertPreviewInstance, AlertRuleInfo, AlertRuleList,
        AlertRuleSpec, Created,
    },
    units::parse_duration,
};
use serde::Deserialize;
use std::{collections::HashSet, str::FromStr};

pub fn router() -> Routes {
    Routes::new()
        .route("/api/v1/alerts", get(list).post(create))
        .route("/api/v1/alerts/history", get(history))
        .route("/api/v1/alerts/preview", post(preview))
        .route(
            "/api/v1/alerts/{id}",
            get(get_one).put(update).delete(delete),
        )
        .route("/api/v1/alerts/{id}/silence", post(silence))
}

fn unprocessable(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::Unprocessable {
        field: field.to_string(),
        message: message.into(),
    }
}

async fn active_metrics(state: &AppState) -> Result<HashSet<String>, ApiError> {
    Ok(state
        .database
        .active_metrics()
        .await?
        .into_iter()
        .map(|m| m.name)
        .collect())
}

/// The rule in a request body; refusals name the field at fault.
fn rule_body(
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<AlertRuleSpec, ApiError> {
    let Json(body) = body?;
    parse_spec(body).map_err(|e| unprocessable(e.field, e.message))
}

async fn validate(state: &AppState, id: i64, spec: &AlertRuleSpec) -> Result<Rule, ApiError> {
    let metrics = active_metrics(state).await?;
    check(id, spec, |m| metrics.contains(m)).map_err(|e| unprocessable(e.field, e.message))
}

fn info(state: &AppState, row: &RuleRow) -> Result<AlertRuleInfo, ApiError> {
    let (spec, _) = parse_stored(row).map_err(ApiError::Internal)?;
    let instances = state
        .alerts
        .as_ref()
        .and_then(|a| {
            a.latest()
                .live
                .rules
                .iter()
                .find(|r| r.id == row.id)
                .map(|r| r.instances.clone())
        })
        .unwrap_or_default();
    Ok(AlertRuleInfo {
        id: row.id,
        spec,
        created_ms: row.created_ms,
        updated_ms: row.updated_ms,
        instances,
    })
}

fn changed(state: &AppState) {
    if let Some(alerts) = &state.alerts {
        alerts.rules_changed();
    }
}

fn duplicate(name: &str) -> ApiError {
    unprocessable("name", format!("a rule named {name:?} already exists"))
}

async fn list(State(state): State<AppState>) -> Result<Json<AlertRuleList>, ApiError> {
    let rows = state.database.alert_rules().await?;
    let rules = rows
        .iter()
        .map(|row| info(&state, row))
        .collect::<Result<_, _>>()?;
    Ok(Json(AlertRuleList { rules }))
}

async fn create(
    State(state): State<AppState>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let spec = rule_body(body)?;
    let rule = validate(&state, 0, &spec).await?;
    let json = serde_json::to_string(&rule.spec).map_err(|e| ApiError::Internal(e.to_string()))?;
    let id = match state
        .database
        .insert_alert_rule(&rule.spec.name, &json, now_ms())
        .await
    {
        Ok(id) => id,
        Err(e) if is_duplicate_name(&e) => return Err(duplicate(&rule.spec.name)),
        Err(e) => return Err(e.into()),
    };
    changed(&state);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/alerts/{id}"))],
        Json(Created { id }),
    ))
}

async fn load(state: &AppState, id: i64) -> Result<RuleRow, ApiError> {
    state
        .database
        .alert_rule(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no alert rule with id {id}")))
}

async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<AlertRuleInfo>, ApiError> {
    let row = load(&state, id).await?;
    Ok(Json(info(&state, &row)?))
}

async fn store(state: &AppState, id: i64, spec: &AlertRuleSpec) -> Result<AlertRuleInfo, ApiError> {
    let rule = validate(state, id, spec).await?;
    let json = serde_json::to_string(&rule.spec).map_err(|e| ApiError::Internal(e.to_string()))?;
    match state
        .database
        .update_alert_rule(id, &rule.spec.name, &json, now_ms())
        .await
    {
        Ok(true) => {}
        Ok(false) => return Err(ApiError::NotFound(format!("no alert rule with id {id}"))),
        Err(e) if is_duplicate_name(&e) => return Err(duplicate(&rule.spec.name)),
        Err(e) => return Err(e.into()),
    }
    changed(state);
    info(state, &load(state, id).await?)
}

async fn update(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Json<AlertRuleInfo>, ApiError> {
    let spec = rule_body(body)?;
    Ok(Json(store(&state, id, &spec).await?))
}

async fn delete(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    if !state.database.delete_alert_rule(id).await? {
        return Err(ApiError::NotFound(format!("no alert rule with id {id}")));
    }
    changed(&state);
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/alerts/{id}/silence` body: `{"for": "1h"}`; `"0s"` lifts a silence.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SilenceBody {
    #[serde(rename = "for")]
    for_: String,
}

async fn silence(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    body: Result<Json<SilenceBody>, JsonRejection>,
) -> Result<Json<AlertRuleInfo>, ApiError> {
    let Json(body) = body?;
    let duration = parse_duration(&body.for_).map_err(|e| unprocessable("for", e))?;
    if duration > std::time::Duration::from_secs(30 * 86_400) {
        return Err(unprocessable("for", "silence for at most 30d"));
    }
    let row = load(&state, id).await?;
    let (mut spec, _) = parse_stored(&row).map_err(ApiError::Internal)?;
    spec.silenced_until =
        (!duration.is_zero()).then(|| format_rfc3339_ms(now_ms() + duration.as_millis() as i64));
    Ok(Json(store(&state, id, &spec).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryParams {
    rule_id: Option<i64>,
    state: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<i64>,
}

fn time_param(field: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    let Some(text) = value.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if let Some(ago) = text.strip_prefix('-') {
        let d = parse_duration(ago).map_err(|e| unprocessable(field, e))?;
        return Ok(Some(now_ms() - d.as_millis() as i64));
    }
    parse_rfc3339_ms(text).map(Some).ok_or_else(|| {
        unprocessable(
            field,
            format!("{text:?} is neither RFC 3339 nor relative like -24h"),
        )
    })
}

async fn history(
    State(state): State<AppState>,
    params: Result<Query<HistoryParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AlertHistory>, ApiError> {
    let Query(params) = params.map_err(|r| unprocessable("query", r.body_text()))?;
    let to_state = params
        .state
        .as_deref()
        .map(AlertState::from_str)
        .transpose()
        .map_err(|e: ParseError| unprocessable("state", e.0))?;
    let limit = params.limit.unwrap_or(200);
    if !(1..=10_000).contains(&limit) {
        return Err(unprocessable("limit", "between 1 and 10000"));
    }
    let filter = HistoryFilter {
        rule_id: params.rule_id,
        state: to_state.map(|s| s.as_str().to_string()),
        from_ms: time_param("from", params.from.as_deref())?,
        to_ms: time_param("to", params.to.as_deref())?,
        limit,
    };
    let transitions = state.database.alert_history(&filter).await?;
    Ok(Json(AlertHistory { transitions }))
}

async fn preview(
    State(state): State<AppState>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Json<AlertPreview>, ApiError> {
    let spec = rule_body(body)?;
    let rule = validate(&state, 0, &spec).await?;
    let engine = state.engine.as_ref().ok_or(ApiError::EngineUnavailable)?;
    let mut windows = engine
        .metric_windows(now_ms(), vec![(rule.spec.metric.clone(), rule.window_s)])
        .await
        .map_err(|_| ApiError::EngineUnavailable)?;
    let window = windows.pop().flatten();
    let instances = observations(&rule, window.as_ref(), true, std::iter::empty())
        .into_iter()
        .map(|(instance, seen)| {
            let (value, verdict) = match seen {
                Observation::Value(v) if rule.params.breaches(v) => {
                    (Some(v), PreviewVerdict::Breaching)
                }
                Observation::Value(v) => (Some(v), PreviewVerdict::Ok),
                _ => (None, PreviewVerdict::NoData),
            };
            AlertPreviewInstance {
                instance,
                value,
                verdict,
            }
        })
        .collect();
    Ok(Json(AlertPreview { instances }))
}
