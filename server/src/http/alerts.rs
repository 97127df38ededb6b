//! `/api/v1/alerts`: alert rules (list, create, get, update, delete, silence, pause, resume,
//! duplicate, export and import as a file), the transition history, a preview of what a draft
//! rule would see now, its backtest over stored history, and its notifications rendered
//! (preview) or sent now (test). Errors are the API's [`ApiError`]: 422 naming the field, 404
//! for an unknown id. Rule bodies are read with [`parse_spec`], so a value that does not read
//! is refused at its field.

use super::{AppState, access::Routes, api::ApiError};
use crate::{
    alerts::{
        backtest::{self, BacktestError},
        evaluate::observations,
        machine::{Observation, Transition},
        notify::{Body, WebhookGuard},
        redact,
        rule::{Rule, check, parse_spec},
        rules_file::{self, RulesFormat},
        service::parse_stored,
        template,
        time::{format_rfc3339_ms, parse_rfc3339_ms},
    },
    clock::now_ms,
    storage::alerts::{HistoryFilter, RuleRow, is_duplicate_name},
};
use axum::{
    Json,
    extract::{
        Path, Query, State,
        rejection::{JsonRejection, QueryRejection},
    },
    http::{StatusCode, header},
    response::IntoResponse,
    routing::{get, post},
};
use contract::{
    ParseError,
    alert::{AlertState, PreviewVerdict},
    api::{
        AlertBacktest, AlertBacktestTransition, AlertHistory, AlertPreview, AlertPreviewInstance,
        AlertRuleInfo, AlertRuleList, AlertRuleSpec, Created, NotificationOutcome, TargetKind,
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
        .route("/api/v1/alerts/backtest", post(backtest))
        .route(
            "/api/v1/alerts/notification/preview",
            post(notification_preview),
        )
        .route("/api/v1/alerts/notification/test", post(notification_test))
        .route(
            "/api/v1/alerts/{id}",
            get(get_one).put(update).delete(delete),
        )
        .route("/api/v1/alerts/{id}/silence", post(silence))
        .route("/api/v1/alerts/{id}/pause", post(pause))
        .route("/api/v1/alerts/{id}/resume", post(resume))
        .route("/api/v1/alerts/{id}/duplicate", post(duplicate_rule))
        .route("/api/v1/alerts/export", get(export_rules))
        .route("/api/v1/alerts/import", post(import_rules))
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

/// Checks a draft rule into a [`Rule`]. Webhook URLs whose credentials were shown masked get
/// the stored credentials back first ([`redact`]), so the checked rule is the one to store
/// and deliver with.
async fn validate(state: &AppState, id: i64, spec: &AlertRuleSpec) -> Result<Rule, ApiError> {
    let mut spec = spec.clone();
    let masked = spec.targets.iter().any(|target| {
        matches!(target, contract::api::AlertTarget::Webhook { url } if redact::is_masked(url))
    });
    if masked {
        let stored = state
            .database
            .alert_rules()
            .await?
            .iter()
            .map(|row| parse_stored(row).map(|(spec, _)| spec))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ApiError::Internal)?;
        redact::unmask_spec(&mut spec, &stored)
            .map_err(|url| unprocessable("targets", redact::unknown_mask_message(&url)))?;
    }
    let spec = &spec;
    let metrics = active_metrics(state).await?;
    let rule =
        check(id, spec, |m| metrics.contains(m)).map_err(|e| unprocessable(e.field, e.message))?;
    // Webhooks may not point at internal addresses (unless allowed); delivery checks again.
    let default_guard = WebhookGuard::default();
    let guard = state
        .alerts
        .as_ref()
        .map_or(&default_guard, |alerts| alerts.notifier().guard());
    for target in &spec.targets {
        if let contract::api::AlertTarget::Webhook { url } = target {
            guard
                .check_url(url)
                .await
                .map_err(|message| unprocessable("targets", message))?;
        }
    }
    Ok(rule)
}

/// A stored rule as the API shows it: webhook credentials masked ([`redact`]).
fn info(state: &AppState, row: &RuleRow) -> Result<AlertRuleInfo, ApiError> {
    let (mut spec, _) = parse_stored(row).map_err(ApiError::Internal)?;
    redact::mask_spec(&mut spec);
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
    insert(&state, &rule.spec).await
}

/// Stores a new rule (checked by the caller): 201 `{"id"}`, 422 at `name` when it is taken.
async fn insert(
    state: &AppState,
    spec: &AlertRuleSpec,
) -> Result<impl IntoResponse + use<>, ApiError> {
    let json = serde_json::to_string(spec).map_err(|e| ApiError::Internal(e.to_string()))?;
    let id = match state
        .database
        .insert_alert_rule(&spec.name, &json, now_ms())
        .await
    {
        Ok(id) => id,
        Err(e) if is_duplicate_name(&e) => return Err(duplicate(&spec.name)),
        Err(e) => return Err(e.into()),
    };
    changed(state);
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

/// Pauses (`enabled: false`) or resumes a rule's evaluation. A paused firing rule sends no
/// resolve notification; resumed, it starts from its stored state.
async fn set_enabled(state: &AppState, id: i64, enabled: bool) -> Result<AlertRuleInfo, ApiError> {
    let row = load(state, id).await?;
    let (mut spec, _) = parse_stored(&row).map_err(ApiError::Internal)?;
    spec.enabled = enabled;
    store(state, id, &spec).await
}

async fn pause(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<AlertRuleInfo>, ApiError> {
    Ok(Json(set_enabled(&state, id, false).await?))
}

async fn resume(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<AlertRuleInfo>, ApiError> {
    Ok(Json(set_enabled(&state, id, true).await?))
}

/// `POST /api/v1/alerts/{id}/duplicate`: a paused copy named "NAME (copy)" (or "(copy 2)",
/// ...), without the silence; 201 `{"id"}`.
async fn duplicate_rule(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<impl IntoResponse, ApiError> {
    let row = load(&state, id).await?;
    let (mut spec, _) = parse_stored(&row).map_err(ApiError::Internal)?;
    let names: HashSet<String> = state
        .database
        .alert_rules()
        .await?
        .into_iter()
        .map(|r| r.name)
        .collect();
    spec.name = (1..)
        .map(|n| match n {
            1 => format!("{} (copy)", spec.name),
            n => format!("{} (copy {n})", spec.name),
        })
        .find(|name| !names.contains(name))
        .expect("an unused name exists");
    spec.enabled = false;
    spec.silenced_until = None;
    insert(&state, &spec).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FormatParam {
    format: Option<String>,
}

fn rules_format(
    params: Result<Query<FormatParam>, QueryRejection>,
) -> Result<RulesFormat, ApiError> {
    let Query(params) = params.map_err(|r| unprocessable("query", r.body_text()))?;
    RulesFormat::parse(params.format.as_deref().unwrap_or("json"))
        .map_err(|e| unprocessable("format", e))
}

/// `GET /api/v1/alerts/export?format=json|toml`: every rule, as a file in the config file's
/// `[[alerts]]` format (silences left out; webhook credentials masked, which an import into
/// the same server puts back).
async fn export_rules(
    State(state): State<AppState>,
    params: Result<Query<FormatParam>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let format = rules_format(params)?;
    let specs = state
        .database
        .alert_rules()
        .await?
        .iter()
        .map(|row| {
            parse_stored(row).map(|(mut spec, _)| {
                redact::mask_spec(&mut spec);
                spec
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::Internal)?;
    let text = rules_file::export(&specs, format).map_err(ApiError::Internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"streamboard-alerts.{}\"",
                    format.extension()
                ),
            ),
        ],
        text,
    ))
}

/// `POST /api/v1/alerts/import?format=json|toml` with the file as the body: every rule is
/// checked first (a refusal names `alerts[i].field` and the rule), then all are stored in one
/// transaction, each replacing the rule of its name.
async fn import_rules(
    State(state): State<AppState>,
    params: Result<Query<FormatParam>, QueryRejection>,
    body: String,
) -> Result<Json<contract::api::AlertImport>, ApiError> {
    let format = rules_format(params)?;
    let refused = |e: rules_file::FileRuleError| unprocessable(&e.field(), e.message());
    let specs = rules_file::parse(&body, format).map_err(refused)?;
    match rules_file::install(&state.database, &specs, now_ms()).await {
        Ok((created, replaced)) => {
            changed(&state);
            Ok(Json(contract::api::AlertImport { created, replaced }))
        }
        Err(rules_file::InstallError::Refused(e)) => Err(refused(e)),
        Err(rules_file::InstallError::Storage(e)) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryParams {
    rule_id: Option<i64>,
    metric: Option<String>,
    state: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<i64>,
}

fn time_param(field: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    let Some(text) = value.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(Some(ms)); // epoch milliseconds
    }
    if let Some(ago) = text.strip_prefix('-') {
        let d = parse_duration(ago).map_err(|e| unprocessable(field, e))?;
        return Ok(Some(now_ms() - d.as_millis() as i64));
    }
    parse_rfc3339_ms(text).map(Some).ok_or_else(|| {
        unprocessable(
            field,
            format!("{text:?} is neither RFC 3339, epoch milliseconds nor relative like -24h"),
        )
    })
}

async fn history(
    State(state): State<AppState>,
    params: Result<Query<HistoryParams>, QueryRejection>,
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
        metric: params.metric.filter(|m| !m.is_empty()),
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

/// A body `{"rule": {…}, …}`: the rule (read with [`parse_spec`], refused at its own fields)
/// and the other fields, which must be among `others`.
fn body_with_rule(
    body: Result<Json<serde_json::Value>, JsonRejection>,
    others: &[&str],
) -> Result<(AlertRuleSpec, serde_json::Map<String, serde_json::Value>), ApiError> {
    let expected = format!("rule, {}", others.join(", "));
    let Json(body) = body?;
    let serde_json::Value::Object(mut object) = body else {
        return Err(unprocessable(
            "body",
            format!("a JSON object with {expected}"),
        ));
    };
    if let Some(extra) = object
        .keys()
        .find(|k| *k != "rule" && !others.contains(&k.as_str()))
    {
        return Err(unprocessable(
            "body",
            format!("unknown field {extra:?}; expected {expected}"),
        ));
    }
    let rule = object
        .remove("rule")
        .ok_or_else(|| unprocessable("rule", "the draft rule"))?;
    let spec = parse_spec(rule).map_err(|e| unprocessable(e.field, e.message))?;
    Ok((spec, object))
}

/// `POST /api/v1/alerts/backtest`: the draft rule's state machine replayed over the stored
/// 1-second history of `from..to` (default the last 24 h, clamped to what the 1-second tier
/// retains), as the live evaluator would have run it every second.
async fn backtest(
    State(state): State<AppState>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Json<AlertBacktest>, ApiError> {
    let (spec, mut rest) = body_with_rule(body, &["from", "to"])?;
    let from = take_field::<String>(&mut rest, "from")?;
    let to = take_field::<String>(&mut rest, "to")?;
    let rule = validate(&state, 0, &spec).await?;
    let now = now_ms();
    let to_ms = time_param("to", to.as_deref())?.unwrap_or(now).min(now);
    let from_ms = time_param("from", Some(from.as_deref().unwrap_or("-24h")))?.unwrap_or(now);
    if from_ms >= to_ms {
        return Err(unprocessable("from", "must be before to"));
    }
    let retained_1s = state.retention[0];
    let oldest_ms = now - retained_1s.as_millis() as i64;
    let note = (from_ms < oldest_ms).then(|| {
        format!(
            "from moved to the oldest second the 1-second tier retains ({} back)",
            contract::units::format_duration(retained_1s)
        )
    });
    let from_ms = from_ms.max(oldest_ms).min(to_ms);
    let limits = backtest::Limits::default();
    let outcome = backtest::run(&state.database, rule, from_ms, to_ms, limits)
        .await
        .map_err(|e| match e {
            BacktestError::Refused { field, message } => unprocessable(field, message),
            BacktestError::Storage(e) => e.into(),
            BacktestError::Task(e) => ApiError::Internal(e),
        })?;
    let truncated = outcome.transition_count > outcome.transitions.len() as u64;
    Ok(Json(AlertBacktest {
        from_ms,
        to_ms,
        tier_s: 1,
        evaluations: outcome.evaluations,
        instances: outcome.instances,
        series: outcome.series,
        transitions: outcome
            .transitions
            .into_iter()
            .map(|r| AlertBacktestTransition {
                instance: r.instance,
                from: r.transition.from,
                to: r.transition.to,
                at_ms: r.transition.at_ms,
                value: r.transition.value,
                notifies: r.notifies,
            })
            .collect(),
        transition_count: outcome.transition_count,
        truncated,
        notifications: outcome.notifications,
        note,
    }))
}

/// Takes field `key` out of a body object, read as `T` and refused at `key` otherwise.
fn take_field<T: serde::de::DeserializeOwned>(
    object: &mut serde_json::Map<String, serde_json::Value>,
    key: &'static str,
) -> Result<Option<T>, ApiError> {
    match object.remove(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(value) => serde_json::from_value(value)
            .map(Some)
            .map_err(|e| unprocessable(key, e.to_string())),
    }
}

/// A notification preview or test send: the rule, the target kind and the transition.
struct NotificationBody {
    spec: AlertRuleSpec,
    target: TargetKind,
    transition: Option<AlertBacktestTransition>,
}

fn notification_body(
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<NotificationBody, ApiError> {
    let (spec, mut rest) = body_with_rule(body, &["target", "transition"])?;
    let target = take_field::<TargetKind>(&mut rest, "target")?
        .ok_or_else(|| unprocessable("target", "name the target: webhook, kinesis or in_app"))?;
    let transition = take_field::<AlertBacktestTransition>(&mut rest, "transition")?;
    Ok(NotificationBody {
        spec,
        target,
        transition,
    })
}

/// The text the rule would send to a `target` for `transition` (default: a sample firing
/// one): its template's rendering, or the JSON payload (in-app: the default text). Also the
/// JSON payload, which a test send without a template sends.
fn notification_text(
    rule: &Rule,
    target: TargetKind,
    transition: Option<&AlertBacktestTransition>,
    test: bool,
) -> Result<(String, Body), ApiError> {
    let (instance, transition) = match transition {
        Some(t) => (
            t.instance.clone(),
            Transition {
                from: t.from,
                to: t.to,
                at_ms: t.at_ms,
                value: t.value,
            },
        ),
        None => (
            "all".to_string(),
            template::sample_transition(&rule.spec, now_ms()),
        ),
    };
    let id = (target != TargetKind::InApp).then_some(0);
    let grouped = rule.group_interval_ms > 0 && target != TargetKind::InApp;
    let context = template::context(
        &rule.spec,
        rule.params.recovery_threshold,
        rule.id,
        id,
        &instance,
        transition,
        grouped,
    );
    let field = match target {
        TargetKind::Webhook => "templates.webhook",
        TargetKind::Kinesis => "templates.kinesis",
        TargetKind::InApp => "templates.in_app",
    };
    let body = match rule.spec.templates.of(target) {
        Some(source) => Body::rendered(
            template::render(source, &context).map_err(|e| unprocessable(field, e.0))?,
        ),
        None if target == TargetKind::InApp => {
            Body::rendered(template::default_in_app_text(&context))
        }
        None => {
            let mut payload = context;
            if test {
                payload["test"] = true.into();
            }
            Body::json(payload.to_string())
        }
    };
    Ok((format!("{}/{instance}", rule.spec.name), body))
}

/// `POST /api/v1/alerts/notification/preview`: what the draft rule would send to a target.
async fn notification_preview(
    State(state): State<AppState>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Json<NotificationOutcome>, ApiError> {
    let request = notification_body(body)?;
    let rule = validate(&state, 0, &request.spec).await?;
    let (_, body) = notification_text(&rule, request.target, request.transition.as_ref(), false)?;
    Ok(Json(NotificationOutcome {
        target: request.target,
        text: body.text,
        delivered: None,
        status: None,
        answer: None,
        error: None,
    }))
}

/// `POST /api/v1/alerts/notification/test`: renders the draft rule's notification for its
/// webhook or Kinesis target and delivers it now (once, no retry, the delivery timeout),
/// answering with what the receiver said. A payload without a template carries `"test": true`.
async fn notification_test(
    State(state): State<AppState>,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Json<NotificationOutcome>, ApiError> {
    let request = notification_body(body)?;
    let rule = validate(&state, 0, &request.spec).await?;
    if request.target == TargetKind::InApp {
        return Err(unprocessable(
            "target",
            "in-app notifications are shown in the browser; preview the text instead",
        ));
    }
    let target = rule
        .spec
        .targets
        .iter()
        .find(|t| t.kind() == request.target)
        .cloned()
        .ok_or_else(|| {
            unprocessable(
                "target",
                format!("the rule has no {} target", request.target.as_str()),
            )
        })?;
    let (key, body) = notification_text(&rule, request.target, request.transition.as_ref(), true)?;
    let alerts = state.alerts.as_ref().ok_or(ApiError::EngineUnavailable)?;
    let idempotency = format!("streamboard-alert-test-{}", now_ms());
    let sent = alerts
        .notifier()
        .send(&target, &idempotency, &key, &body)
        .await;
    let (delivered, status, answer, error) = match sent {
        Ok(answer) => (
            answer.status.is_none_or(|s| (200..300).contains(&s)),
            answer.status,
            Some(answer.excerpt),
            None,
        ),
        Err(e) => (false, None, None, Some(e.to_string())),
    };
    tracing::info!(
        rule = %rule.spec.name, target = request.target.as_str(), ?status, delivered,
        "test notification sent"
    );
    Ok(Json(NotificationOutcome {
        target: request.target,
        text: body.text,
        delivered: Some(delivered),
        status,
        answer,
        error,
    }))
}
