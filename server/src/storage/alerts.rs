//! Alert rules, instance states, transitions and the notification outbox.

use super::{Database, StorageError};
use contract::{ParseError, protocol::AlertEvent};
use sqlx::{Row, SqliteConnection};
use std::str::FromStr;

/// A stored rule: its id, the spec JSON and its times.
#[derive(Debug, Clone)]
pub struct RuleRow {
    pub id: i64,
    pub name: String,
    pub spec: String,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// A stored instance state.
#[derive(Debug, Clone)]
pub struct InstanceRow {
    pub rule_id: i64,
    pub instance: String,
    pub state: String,
    pub since_ms: i64,
    pub last_data_ms: i64,
}

/// A transition to store, with the targets it notifies (as JSON) and the notification
/// payload, which gets the transition's id as `"id"` once it is stored.
#[derive(Debug, Clone)]
pub struct NewTransition {
    pub event: AlertEvent,
    pub last_data_ms: i64,
    pub targets: Vec<String>,
    pub payload: serde_json::Map<String, serde_json::Value>,
}

/// One outbox row due for delivery.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub transition_id: i64,
    pub target: String,
    pub payload: String,
    pub attempts: i64,
}

/// Filters of the history.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    pub rule_id: Option<i64>,
    pub state: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub limit: i64,
}

fn rule_from(row: &sqlx::sqlite::SqliteRow) -> Result<RuleRow, sqlx::Error> {
    Ok(RuleRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        spec: row.try_get("spec")?,
        created_ms: row.try_get("created_ms")?,
        updated_ms: row.try_get("updated_ms")?,
    })
}

/// A column holding a closed set's name.
fn named<T: FromStr<Err = ParseError>>(
    row: &sqlx::sqlite::SqliteRow,
    column: &str,
) -> Result<T, sqlx::Error> {
    row.try_get::<&str, _>(column)?
        .parse()
        .map_err(|e: ParseError| sqlx::Error::ColumnDecode {
            index: column.to_string(),
            source: Box::new(e),
        })
}

fn event_from(row: &sqlx::sqlite::SqliteRow) -> Result<AlertEvent, sqlx::Error> {
    Ok(AlertEvent {
        id: row.try_get("id")?,
        rule_id: row.try_get("rule_id")?,
        rule: row.try_get("rule")?,
        metric: row.try_get("metric")?,
        instance: row.try_get("instance")?,
        from: named(row, "from_state")?,
        to: named(row, "to_state")?,
        value: row.try_get("value")?,
        threshold: row.try_get("threshold")?,
        at_ms: row.try_get("at_ms")?,
        severity: named(row, "severity")?,
        notification: named(row, "notification")?,
        in_app: row.try_get::<i64, _>("in_app")? != 0,
    })
}

const EVENT_COLUMNS: &str = "id, rule_id, rule, metric, instance, from_state, to_state, value, \
     threshold, at_ms, severity, notification, in_app";

/// Whether an error is the UNIQUE constraint on the rule name.
pub fn is_duplicate_name(error: &StorageError) -> bool {
    matches!(error, StorageError::Query(sqlx::Error::Database(e)) if e.is_unique_violation())
}

impl Database {
    pub async fn alert_rules(&self) -> Result<Vec<RuleRow>, StorageError> {
        let rows = sqlx::query(
            "SELECT id, name, spec, created_ms, updated_ms FROM alert_rule ORDER BY name",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(rule_from).collect::<Result<_, _>>()?)
    }

    pub async fn alert_rule(&self, id: i64) -> Result<Option<RuleRow>, StorageError> {
        let row = sqlx::query(
            "SELECT id, name, spec, created_ms, updated_ms FROM alert_rule WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.as_ref().map(rule_from).transpose()?)
    }

    /// Inserts a rule; fails with a unique violation when the name is taken.
    pub async fn insert_alert_rule(
        &self,
        name: &str,
        spec: &str,
        now_ms: i64,
    ) -> Result<i64, StorageError> {
        let id = sqlx::query(
            "INSERT INTO alert_rule (name, spec, created_ms, updated_ms) VALUES (?, ?, ?, ?)",
        )
        .bind(name)
        .bind(spec)
        .bind(now_ms)
        .bind(now_ms)
        .execute(self.pool())
        .await?
        .last_insert_rowid();
        Ok(id)
    }

    /// Replaces a rule's spec; `false` when there is no such rule.
    pub async fn update_alert_rule(
        &self,
        id: i64,
        name: &str,
        spec: &str,
        now_ms: i64,
    ) -> Result<bool, StorageError> {
        let done =
            sqlx::query("UPDATE alert_rule SET name = ?, spec = ?, updated_ms = ? WHERE id = ?")
                .bind(name)
                .bind(spec)
                .bind(now_ms)
                .bind(id)
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes a rule and its instances (not its history); `false` when there is none.
    pub async fn delete_alert_rule(&self, id: i64) -> Result<bool, StorageError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM alert_instance WHERE rule_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM alert_rule WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn alert_instances(&self) -> Result<Vec<InstanceRow>, StorageError> {
        let rows = sqlx::query(
            "SELECT rule_id, instance, state, since_ms, last_data_ms FROM alert_instance",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(InstanceRow {
                    rule_id: row.try_get("rule_id")?,
                    instance: row.try_get("instance")?,
                    state: row.try_get("state")?,
                    since_ms: row.try_get("since_ms")?,
                    last_data_ms: row.try_get("last_data_ms")?,
                })
            })
            .collect()
    }

    /// Stores transitions, the instances' new states and their outbox rows in ONE
    /// transaction, and returns the events with their ids.
    pub async fn record_transitions(
        &self,
        transitions: Vec<NewTransition>,
    ) -> Result<Vec<AlertEvent>, StorageError> {
        let mut tx = self.begin_write().await?;
        let mut stored = Vec::with_capacity(transitions.len());
        for t in transitions {
            let mut event = t.event;
            event.id = insert_transition(&mut tx, &event).await?;
            sqlx::query(
                "INSERT INTO alert_instance (rule_id, instance, state, since_ms, last_data_ms) \
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT (rule_id, instance) DO UPDATE SET \
                 state = excluded.state, since_ms = excluded.since_ms, \
                 last_data_ms = excluded.last_data_ms",
            )
            .bind(event.rule_id)
            .bind(&event.instance)
            .bind(event.to.as_str())
            .bind(event.at_ms)
            .bind(t.last_data_ms)
            .execute(&mut *tx)
            .await?;
            let mut payload = t.payload;
            payload.insert("id".into(), event.id.into());
            let payload = serde_json::Value::Object(payload).to_string();
            for target in &t.targets {
                sqlx::query(
                    "INSERT INTO alert_outbox (transition_id, target, payload, next_attempt_ms) \
                     VALUES (?, ?, ?, ?)",
                )
                .bind(event.id)
                .bind(target)
                .bind(&payload)
                .bind(event.at_ms)
                .execute(&mut *tx)
                .await?;
            }
            stored.push(event);
        }
        tx.commit().await?;
        Ok(stored)
    }

    /// Forgets instances no longer in a rule's scope.
    pub async fn delete_alert_instance(
        &self,
        rule_id: i64,
        instance: &str,
    ) -> Result<(), StorageError> {
        sqlx::query("DELETE FROM alert_instance WHERE rule_id = ? AND instance = ?")
            .bind(rule_id)
            .bind(instance)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Transitions, newest first.
    pub async fn alert_history(
        &self,
        filter: &HistoryFilter,
    ) -> Result<Vec<AlertEvent>, StorageError> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM alert_transition \
             WHERE (?1 IS NULL OR rule_id = ?1) AND (?2 IS NULL OR to_state = ?2) \
             AND (?3 IS NULL OR at_ms >= ?3) AND (?4 IS NULL OR at_ms < ?4) \
             ORDER BY id DESC LIMIT ?5"
        ))
        .bind(filter.rule_id)
        .bind(filter.state.as_deref())
        .bind(filter.from_ms)
        .bind(filter.to_ms)
        .bind(filter.limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(event_from).collect::<Result<_, _>>()?)
    }

    /// Outbox rows due at `now_ms`, oldest first, at most one per target that is not behind
    /// an earlier undelivered row of the same target (so a target sees transitions in order).
    pub async fn due_outbox(
        &self,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StorageError> {
        let rows = sqlx::query(
            "SELECT o.id, o.transition_id, o.target, o.payload, o.attempts FROM alert_outbox o \
             WHERE o.delivered_ms IS NULL AND o.failed_ms IS NULL AND o.next_attempt_ms <= ? \
             AND NOT EXISTS (SELECT 1 FROM alert_outbox p WHERE p.target = o.target \
                 AND p.id < o.id AND p.delivered_ms IS NULL AND p.failed_ms IS NULL) \
             ORDER BY o.id LIMIT ?",
        )
        .bind(now_ms)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(OutboxRow {
                    id: row.try_get("id")?,
                    transition_id: row.try_get("transition_id")?,
                    target: row.try_get("target")?,
                    payload: row.try_get("payload")?,
                    attempts: row.try_get("attempts")?,
                })
            })
            .collect()
    }

    /// When the next deliverable row is due (to sleep until then).
    pub async fn next_outbox_due(&self) -> Result<Option<i64>, StorageError> {
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(o.next_attempt_ms) FROM alert_outbox o \
             WHERE o.delivered_ms IS NULL AND o.failed_ms IS NULL \
             AND NOT EXISTS (SELECT 1 FROM alert_outbox p WHERE p.target = o.target \
                 AND p.id < o.id AND p.delivered_ms IS NULL AND p.failed_ms IS NULL)",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(due)
    }

    pub async fn outbox_delivered(&self, id: i64, now_ms: i64) -> Result<(), StorageError> {
        sqlx::query(
            "UPDATE alert_outbox SET delivered_ms = ?, attempts = attempts + 1 WHERE id = ?",
        )
        .bind(now_ms)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records a failed attempt: retried at `retry_at_ms`, or given up when `None`.
    pub async fn outbox_failed(
        &self,
        id: i64,
        error: &str,
        now_ms: i64,
        retry_at_ms: Option<i64>,
    ) -> Result<(), StorageError> {
        sqlx::query(
            "UPDATE alert_outbox SET attempts = attempts + 1, last_error = ?, \
             next_attempt_ms = COALESCE(?, next_attempt_ms), \
             failed_ms = CASE WHEN ? IS NULL THEN ? ELSE NULL END WHERE id = ?",
        )
        .bind(error)
        .bind(retry_at_ms)
        .bind(retry_at_ms)
        .bind(now_ms)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Transitions into `firing` between `from_ms` and `to_ms`, oldest first (reports).
    pub async fn alerts_fired(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<AlertEvent>, StorageError> {
        let rows = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM alert_transition \
             WHERE to_state = 'firing' AND at_ms >= ? AND at_ms < ? ORDER BY at_ms LIMIT 1000"
        ))
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(event_from).collect::<Result<_, _>>()?)
    }
}

async fn insert_transition(
    conn: &mut SqliteConnection,
    event: &AlertEvent,
) -> Result<i64, StorageError> {
    Ok(sqlx::query(
        "INSERT INTO alert_transition (rule_id, rule, metric, instance, from_state, to_state, \
         value, threshold, at_ms, severity, notification, in_app) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(event.rule_id)
    .bind(&event.rule)
    .bind(&event.metric)
    .bind(&event.instance)
    .bind(event.from.as_str())
    .bind(event.to.as_str())
    .bind(event.value)
    .bind(event.threshold)
    .bind(event.at_ms)
    .bind(event.severity.as_str())
    .bind(event.notification.as_str())
    .bind(i64::from(event.in_app))
    .execute(&mut *conn)
    .await?
    .last_insert_rowid())
}
