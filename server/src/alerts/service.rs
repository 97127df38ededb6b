//! The I/O shell of alerting: the evaluator task (one owner of every instance's state) and the
//! outbox worker. Both stop when the shutdown token is cancelled.

use super::{
    AlertsSettings,
    evaluate::{belongs, observations},
    machine::{Instance, Transition},
    notify::{Notifier, retry_delay},
    rule::{Rule, check, format_rfc3339_ms},
};
use crate::{
    clock::now_ms,
    engine::EngineHandle,
    storage::{
        Database,
        alerts::{NewTransition, RuleRow},
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
        notifier,
        outbox_wake,
        shutdown,
    ));
    AlertsHandle { reload, frames }
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
            match self.evaluate(now).await {
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
            let instance = self.instances.remove(&key).unwrap_or(Instance {
                state,
                since_ms: row.since_ms,
                last_data_ms: row.last_data_ms,
                value: None,
                error: None,
            });
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
    let targets = if notification == NotificationStatus::Sent {
        rule.spec
            .targets
            .iter()
            .filter(|t| !matches!(t, AlertTarget::InApp))
            .map(|t| serde_json::to_string(t).expect("targets serialise"))
            .collect()
    } else {
        Vec::new()
    };
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
        in_app: notification == NotificationStatus::Sent && rule.in_app(),
    };
    let payload = serde_json::json!({
        "rule_id": rule.id,
        "rule": rule.spec.name,
        "instance": instance_name,
        "from": transition.from.as_str(),
        "to": transition.to.as_str(),
        "value": transition.value,
        "threshold": rule.params.threshold,
        "recovery_threshold": rule.params.recovery_threshold,
        "at": format_rfc3339_ms(transition.at_ms),
        "metric": rule.spec.metric,
        "statistic": rule.spec.statistic,
        "window": rule.spec.window,
        "comparison": rule.spec.comparison,
        "severity": rule.severity,
        "description": rule.spec.description,
        "runbook_url": rule.spec.runbook_url,
        "error": instance.error,
    });
    let serde_json::Value::Object(payload) = payload else {
        unreachable!("a JSON object literal")
    };
    NewTransition {
        event,
        last_data_ms: instance.last_data_ms,
        targets,
        payload,
    }
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
            // Not abandoned at shutdown: a delivery the target accepted must be marked, or it
            // would be sent again after the restart. It is bounded by the delivery timeout.
            let result = notifier
                .deliver(&target, row.transition_id, &key, &row.payload)
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

/// The target's kind, for logs (URLs may carry secrets and are never logged).
fn target_kind(target: &AlertTarget) -> &'static str {
    match target {
        AlertTarget::InApp => "in_app",
        AlertTarget::Webhook { .. } => "webhook",
        AlertTarget::Kinesis { .. } => "kinesis",
    }
}
