//! The I/O shell of alerting: the evaluator task (one owner of every instance's state) and the
//! outbox worker. Both stop when the shutdown token is cancelled.

use super::{
    AlertsSettings,
    evaluate::{belongs, observations},
    machine::{Instance, Transition},
    notify::{Body, Notifier, retry_delay},
    rule::{Rule, check},
    template,
};
use crate::{
    clock::now_ms,
    engine::EngineHandle,
    storage::{
        Database,
        alerts::{NewTransition, OutboxRow, RuleRow},
    },
};
use contract::{
    alert::{AlertState, NotificationStatus},
    api::{AlertRuleSpec, AlertTarget},
    protocol::{
        AlertEvent, AlertInstanceLive, AlertRuleLive, AlertsLive, LivePayload, RECENT_ALERT_EVENTS,
        ServerMessage,
    },
};
use std::{
    collections::{BTreeMap, HashMap, HashSet, VecDeque},
    sync::Arc,
    time::Duration,
};
use tokio::sync::{Notify, watch};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// The latest alerts payload, and its `update` message serialised once for every session.
#[derive(Debug, Default)]
pub struct AlertsFrame {
    pub live: AlertsLive,
    pub text: Arc<str>,
}

/// What the API and the sessions hold; cheap to clone.
#[derive(Clone)]
pub struct AlertsHandle {
    reload: Arc<Notify>,
    frames: watch::Receiver<Arc<AlertsFrame>>,
    notifier: Notifier,
}

impl AlertsHandle {
    /// Tells the evaluator that rules changed (it reloads before its next evaluation).
    pub fn rules_changed(&self) {
        self.reload.notify_one();
    }

    pub fn latest(&self) -> Arc<AlertsFrame> {
        self.frames.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<AlertsFrame>> {
        self.frames.clone()
    }

    /// The notifier the outbox worker delivers with (test sends use it too).
    pub fn notifier(&self) -> &Notifier {
        &self.notifier
    }
}

/// Starts the evaluator and the outbox worker on `tracker`.
pub fn spawn(
    config: AlertsSettings,
    database: Database,
    engine: EngineHandle,
    kinesis: Option<aws_sdk_kinesis::Client>,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) -> AlertsHandle {
    let reload = Arc::new(Notify::new());
    let outbox_wake = Arc::new(Notify::new());
    let (frames_tx, frames) = watch::channel(Arc::new(AlertsFrame::default()));
    let evaluator = Evaluator {
        database: database.clone(),
        engine,
        rules: Vec::new(),
        instances: HashMap::new(),
        recent: VecDeque::new(),
        active_metrics: HashSet::new(),
        metrics_checked_ms: None,
        evaluated_s: None,
        groups: HashMap::new(),
        metrics_refresh: config.alerts_metrics_refresh,
        outbox_wake: outbox_wake.clone(),
    };
    tracker.spawn(evaluator.run(
        config.alerts_eval_interval,
        reload.clone(),
        frames_tx,
        shutdown.clone(),
    ));
    let notifier = Notifier::new(kinesis, config.alerts_delivery_timeout);
    tracker.spawn(outbox_worker(
        config,
        database,
        notifier.clone(),
        outbox_wake,
        shutdown,
    ));
    AlertsHandle {
        reload,
        frames,
        notifier,
    }
}

struct Evaluator {
    database: Database,
    engine: EngineHandle,
    rules: Vec<Rule>,
    /// By (rule id, instance).
    instances: HashMap<(i64, String), Instance>,
    recent: VecDeque<AlertEvent>,
    active_metrics: HashSet<String>,
    /// When the active metrics were last read (`None`: re-read at the next evaluation).
    metrics_checked_ms: Option<i64>,
    /// How often the active metrics are read again.
    metrics_refresh: Duration,
    /// The last second evaluated.
    evaluated_s: Option<i64>,
    /// Rules with a group of notifications open, and when it is sent (epoch ms).
    groups: HashMap<i64, i64>,
    outbox_wake: Arc<Notify>,
}

/// Parses a stored rule. A stored rule was valid when saved; its metric may since be gone,
/// which evaluation reports as `error`, so existence is not checked here.
pub fn parse_stored(row: &RuleRow) -> Result<(AlertRuleSpec, Rule), String> {
    let spec: AlertRuleSpec = serde_json::from_str(&row.spec).map_err(|e| e.to_string())?;
    let rule = check(row.id, &spec, |_| true).map_err(|e| e.to_string())?;
    Ok((spec, rule))
}

impl Evaluator {
    async fn run(
        mut self,
        interval: Duration,
        reload: Arc<Notify>,
        frames: watch::Sender<Arc<AlertsFrame>>,
        shutdown: CancellationToken,
    ) {
        if let Err(error) = self.load().await {
            tracing::error!(%error, "cannot load alert rules");
        }
        match self
            .database
            .alert_history(&crate::storage::alerts::HistoryFilter {
                limit: RECENT_ALERT_EVENTS as i64,
                ..Default::default()
            })
            .await
        {
            Ok(events) => self.recent = events.into_iter().rev().collect(),
            Err(error) => tracing::warn!(%error, "cannot load recent alert transitions"),
        }
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
                _ = reload.notified() => {
                    if let Err(error) = self.load().await {
                        tracing::error!(%error, "cannot reload alert rules");
                    }
                }
            }
            let now = now_ms();
            match self.evaluate_until(now.div_euclid(1000)).await {
                Ok(()) => {}
                Err(EvalError::EngineGone) => break,
                Err(EvalError::Storage(error)) => {
                    tracing::warn!(%error, "alert evaluation could not store its transitions; retrying")
                }
            }
            let live = self.live(now);
            let text = ServerMessage::Update {
                seq: 0,
                payload: LivePayload::Alerts(live.clone()),
            }
            .to_json();
            frames.send_replace(Arc::new(AlertsFrame {
                live,
                text: Arc::from(text),
            }));
        }
        tracing::debug!("alert evaluator stopped");
    }

    /// Reloads the rules and the stored instance states (keeping in-memory values).
    async fn load(&mut self) -> Result<(), crate::storage::StorageError> {
        let rows = self.database.alert_rules().await?;
        self.rules = rows
            .iter()
            .filter_map(|row| match parse_stored(row) {
                Ok((_, rule)) => Some(rule),
                Err(error) => {
                    tracing::error!(rule = %row.name, %error, "stored alert rule cannot be read; skipped");
                    None
                }
            })
            .collect();
        let stored = self.database.alert_instances().await?;
        let mut instances = HashMap::new();
        for row in stored {
            let Some(state) = AlertState::from_name(&row.state) else {
                continue;
            };
            let key = (row.rule_id, row.instance);
            let instance = self
                .instances
                .remove(&key)
                .unwrap_or_else(|| Instance::restored(state, row.since_ms, row.last_data_ms));
            instances.insert(key, instance);
        }
        // Instances never stored (still `ok` since creation) stay if their rule does.
        for (key, instance) in self.instances.drain() {
            if self.rules.iter().any(|r| r.id == key.0) {
                instances.entry(key).or_insert(instance);
            }
        }
        self.instances = instances;
        self.metrics_checked_ms = None;
        // Groups left open (by a restart): sent one interval after their oldest transition.
        self.groups.clear();
        for (rule_id, oldest_ms) in self.database.waiting_groups().await? {
            if let Some(rule) = self.rules.iter().find(|r| r.id == rule_id) {
                self.groups
                    .insert(rule_id, oldest_ms + rule.group_interval_ms);
            }
        }
        Ok(())
    }

    /// Sends every group due at `now`: one outbox row per external target listing the
    /// group's transitions, written with their marks in one transaction.
    async fn send_groups(&mut self, now: i64) -> Result<(), EvalError> {
        let due: Vec<i64> = self
            .groups
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(id, _)| *id)
            .collect();
        for rule_id in due {
            let Some(rule) = self.rules.iter().find(|r| r.id == rule_id) else {
                self.groups.remove(&rule_id);
                continue;
            };
            let sent = self
                .database
                .send_group(rule_id, |waiting| group_record(rule, waiting))
                .await?;
            self.groups.remove(&rule_id);
            if sent > 0 {
                tracing::info!(rule = %rule.spec.name, transitions = sent, "grouped alert notification");
                self.outbox_wake.notify_one();
            }
        }
        Ok(())
    }

    /// Evaluates every second after the last one evaluated up to `now_s` (at most
    /// [`MAX_CATCH_UP_S`] of them: a stalled evaluator skips older seconds), each at its
    /// whole second, so live evaluation makes the transitions a replay of the same data at
    /// 1 s evaluation makes ([`super::backtest`]). A second is evaluated once: a reload
    /// within it waits for the next.
    async fn evaluate_until(&mut self, now_s: i64) -> Result<(), EvalError> {
        let first = self
            .evaluated_s
            .map_or(now_s, |last| (last + 1).max(now_s - MAX_CATCH_UP_S + 1));
        for second in first..=now_s {
            self.evaluate(second * 1000).await?;
            self.evaluated_s = Some(second);
            self.send_groups(second * 1000).await?;
        }
        Ok(())
    }

    async fn evaluate(&mut self, now: i64) -> Result<(), EvalError> {
        if self
            .metrics_checked_ms
            .is_none_or(|at| now - at >= self.metrics_refresh.as_millis() as i64)
        {
            self.active_metrics = self
                .database
                .active_metrics()
                .await?
                .into_iter()
                .map(|m| m.name)
                .collect();
            self.metrics_checked_ms = Some(now);
        }
        let enabled: Vec<usize> = (0..self.rules.len())
            .filter(|&i| self.rules[i].spec.enabled)
            .collect();
        let wanted: Vec<(String, i64)> = enabled
            .iter()
            .map(|&i| (self.rules[i].spec.metric.clone(), self.rules[i].window_s))
            .collect();
        let windows = self
            .engine
            .metric_windows(now, wanted)
            .await
            .map_err(|_| EvalError::EngineGone)?;
        let mut pending: Vec<(Instance, (i64, String), NewTransition)> = Vec::new();
        let mut forgotten: Vec<(i64, String)> = Vec::new();
        for (&i, window) in enabled.iter().zip(&windows) {
            let rule = &self.rules[i];
            let known: Vec<String> = self
                .instances
                .keys()
                .filter(|(id, _)| *id == rule.id)
                .map(|(_, name)| name.clone())
                .collect();
            for name in &known {
                if !belongs(&rule.spec.series, name) {
                    forgotten.push((rule.id, name.clone()));
                }
            }
            let active = self.active_metrics.contains(&rule.spec.metric);
            let seen = observations(
                rule,
                window.as_ref(),
                active,
                known.into_iter().filter(|n| belongs(&rule.spec.series, n)),
            );
            for (name, observation) in seen {
                let key = (rule.id, name);
                let instance = self
                    .instances
                    .entry(key.clone())
                    .or_insert_with(|| Instance::new(now));
                let before = instance.clone();
                if let Some(transition) = instance.step(&rule.params, now, observation) {
                    let new = transition_record(rule, &key.1, &transition, instance, now);
                    pending.push((before, key, new));
                }
            }
        }
        for key in forgotten {
            self.instances.remove(&key);
            self.database.delete_alert_instance(key.0, &key.1).await?;
        }
        if pending.is_empty() {
            return Ok(());
        }
        let new: Vec<NewTransition> = pending.iter().map(|(_, _, n)| n.clone()).collect();
        match self.database.record_transitions(new).await {
            Ok(events) => {
                for (event, (_, _, new)) in events.iter().zip(&pending) {
                    if new.grouped
                        && let Some(rule) = self.rules.iter().find(|r| r.id == event.rule_id)
                    {
                        self.groups
                            .entry(rule.id)
                            .or_insert(event.at_ms + rule.group_interval_ms);
                    }
                }
                for event in events {
                    tracing::info!(
                        rule = %event.rule, instance = %event.instance,
                        from = %event.from, to = %event.to, value = ?event.value,
                        "alert transition"
                    );
                    self.recent.push_back(event);
                    if self.recent.len() > RECENT_ALERT_EVENTS {
                        self.recent.pop_front();
                    }
                }
                self.outbox_wake.notify_one();
                Ok(())
            }
            Err(error) => {
                // Not stored, so not happened: put the states back and detect it again.
                for (before, key, _) in pending {
                    self.instances.insert(key, before);
                }
                Err(error.into())
            }
        }
    }

    fn live(&self, now: i64) -> AlertsLive {
        let mut firing = 0;
        let mut by_rule: BTreeMap<i64, Vec<AlertInstanceLive>> = BTreeMap::new();
        for ((rule_id, name), instance) in &self.instances {
            by_rule
                .entry(*rule_id)
                .or_default()
                .push(AlertInstanceLive {
                    instance: name.clone(),
                    state: instance.state,
                    since_ms: instance.since_ms,
                    value: instance.value,
                    error: instance.error.clone(),
                });
        }
        let rules = self
            .rules
            .iter()
            .map(|rule| {
                let mut instances = by_rule.remove(&rule.id).unwrap_or_default();
                instances.sort_by(|a, b| a.instance.cmp(&b.instance));
                if rule.spec.enabled {
                    firing += instances.iter().filter(|i| i.state.is_firing()).count();
                }
                AlertRuleLive {
                    id: rule.id,
                    name: rule.spec.name.clone(),
                    metric: rule.spec.metric.clone(),
                    statistic: rule.spec.statistic,
                    window: rule.spec.window.clone(),
                    comparison: rule.spec.comparison,
                    threshold: rule.spec.threshold,
                    severity: rule.severity,
                    enabled: rule.spec.enabled,
                    silenced_until_ms: rule.silenced_until_ms.filter(|&u| u > now),
                    instances,
                }
            })
            .collect();
        AlertsLive {
            server_time_ms: now,
            firing,
            rules,
            recent: self.recent.iter().cloned().collect(),
        }
    }
}

/// Most seconds one tick evaluates after the evaluator fell behind.
const MAX_CATCH_UP_S: i64 = 10;

#[derive(Debug, thiserror::Error)]
enum EvalError {
    #[error("the metrics engine stopped")]
    EngineGone,
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
}

/// The stored form of a transition: the event, and (when it notifies and is not silenced)
/// the external targets and the documented payload.
fn transition_record(
    rule: &Rule,
    instance_name: &str,
    transition: &Transition,
    instance: &Instance,
    now: i64,
) -> NewTransition {
    let notifies = transition.notifies(rule.notify_no_data, rule.notify_error);
    let silenced = rule.silenced_at(now);
    let notification = match (notifies, silenced) {
        (false, _) => NotificationStatus::None,
        (true, true) => NotificationStatus::Silenced,
        (true, false) => NotificationStatus::Sent,
    };
    let fields = template::fields(
        &rule.spec,
        rule.params.recovery_threshold,
        instance_name,
        transition,
        instance.error.as_deref(),
    );
    let grouped = notification == NotificationStatus::Sent && rule.group_interval_ms > 0;
    let targets = if notification == NotificationStatus::Sent && !grouped {
        external_targets(rule)
    } else {
        Vec::new()
    };
    let in_app = notification == NotificationStatus::Sent && rule.in_app();
    let message = rule
        .spec
        .templates
        .in_app
        .as_deref()
        .filter(|_| in_app)
        .and_then(|source| {
            let context = template::context(
                &rule.spec,
                rule.params.recovery_threshold,
                rule.id,
                None,
                instance_name,
                *transition,
                false,
            );
            template::render(source, &context)
                .inspect_err(|error| {
                    tracing::warn!(rule = %rule.spec.name, %error, "in-app template failed; default text shown")
                })
                .ok()
        });
    let event = AlertEvent {
        id: 0,
        rule_id: rule.id,
        rule: rule.spec.name.clone(),
        metric: rule.spec.metric.clone(),
        instance: instance_name.to_string(),
        from: transition.from,
        to: transition.to,
        value: transition.value,
        threshold: rule.params.threshold,
        at_ms: transition.at_ms,
        severity: rule.severity,
        notification,
        in_app,
        message,
    };
    let mut payload = fields;
    payload.insert("rule_id".into(), rule.id.into());
    NewTransition {
        event,
        grouped,
        last_data_ms: instance.last_data_ms,
        targets,
        payload,
    }
}

/// The outbox rows of a group: the rule's external targets with their templates, and the
/// group payload listing `waiting`.
fn group_record(
    rule: &Rule,
    waiting: &[crate::storage::alerts::WaitingTransition],
) -> (Vec<(String, Option<String>)>, String) {
    let targets = external_targets(rule);
    let members: Vec<template::GroupMember> = waiting
        .iter()
        .map(|w| template::GroupMember {
            id: w.id,
            instance: w.instance.clone(),
            transition: Transition {
                from: w.from,
                to: w.to,
                at_ms: w.at_ms,
                value: w.value,
            },
        })
        .collect();
    let payload = template::group_fields(
        &rule.spec,
        rule.params.recovery_threshold,
        rule.id,
        &members,
    );
    (targets, serde_json::Value::Object(payload).to_string())
}

/// The rule's webhook and Kinesis targets (as stored in the outbox) with their templates.
fn external_targets(rule: &Rule) -> Vec<(String, Option<String>)> {
    rule.spec
        .targets
        .iter()
        .filter(|t| !matches!(t, AlertTarget::InApp))
        .map(|t| {
            let target = serde_json::to_string(t).expect("targets serialise");
            (target, rule.spec.templates.of(t.kind()).map(str::to_string))
        })
        .collect()
}

/// Delivers due outbox rows until shutdown; sleeps until the next due row or a wake-up.
async fn outbox_worker(
    config: AlertsSettings,
    database: Database,
    notifier: Notifier,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let idle = config.alerts_outbox_poll_interval;
    loop {
        let now = now_ms();
        let due = match database
            .due_outbox(now, i64::from(config.alerts_outbox_batch))
            .await
        {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "cannot read the alert outbox");
                Vec::new()
            }
        };
        for row in &due {
            let target: AlertTarget = match serde_json::from_str(&row.target) {
                Ok(t) => t,
                Err(error) => {
                    let _ = database
                        .outbox_failed(row.id, &format!("unreadable target: {error}"), now, None)
                        .await;
                    continue;
                }
            };
            let key = serde_json::from_str::<serde_json::Value>(&row.payload)
                .ok()
                .map(|p| {
                    format!(
                        "{}/{}",
                        p["rule"].as_str().unwrap_or(""),
                        p["instance"].as_str().unwrap_or("")
                    )
                })
                .unwrap_or_else(|| row.transition_id.to_string());
            let body = rendered(row, &target);
            // Not abandoned at shutdown: a delivery the target accepted must be marked, or it
            // would be sent again after the restart. It is bounded by the delivery timeout.
            let result = notifier
                .deliver(&target, row.transition_id, &key, &body)
                .await;
            let stored = match result {
                Ok(()) => database.outbox_delivered(row.id, now_ms()).await,
                Err(error) => {
                    let attempts = row.attempts as u32 + 1;
                    let retry_at = (attempts < config.alerts_max_attempts).then(|| {
                        now_ms()
                            + retry_delay(attempts, config.alerts_max_retry_delay).as_millis()
                                as i64
                    });
                    tracing::warn!(
                        transition = row.transition_id, target = target_kind(&target), attempts,
                        %error, gave_up = retry_at.is_none(), "alert notification failed"
                    );
                    database
                        .outbox_failed(row.id, &error.to_string(), now_ms(), retry_at)
                        .await
                }
            };
            if let Err(error) = stored {
                tracing::warn!(%error, "cannot update the alert outbox");
            }
        }
        if shutdown.is_cancelled() {
            return;
        }
        if !due.is_empty() {
            continue;
        }
        let sleep = match database.next_outbox_due().await {
            Ok(Some(at)) => {
                Duration::from_millis((at - now_ms()).clamp(0, idle.as_millis() as i64) as u64)
            }
            _ => idle,
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(sleep.max(Duration::from_millis(50))) => {}
        }
    }
}

/// The body of an outbox row: its payload rendered with its template, or the JSON payload
/// (also when the template fails: a notification is never dropped for its template).
fn rendered(row: &OutboxRow, target: &AlertTarget) -> Body {
    let Some(source) = &row.template else {
        return Body::json(row.payload.clone());
    };
    let fields = serde_json::from_str(&row.payload).unwrap_or(serde_json::Value::Null);
    match template::render(source, &fields) {
        Ok(text) => Body::rendered(text),
        Err(error) => {
            tracing::warn!(
                transition = row.transition_id, target = target_kind(target), %error,
                "notification template failed; the JSON payload is sent"
            );
            Body::json(row.payload.clone())
        }
    }
}

/// The target's kind, for logs (URLs may carry secrets and are never logged).
fn target_kind(target: &AlertTarget) -> &'static str {
    match target {
        AlertTarget::InApp => "in_app",
        AlertTarget::Webhook { .. } => "webhook",
        AlertTarget::Kinesis { .. } => "kinesis",
    }
}
