//! Alert rules, instance states, transitions and the notification outbox.

use super::{Database, SpecRow, StorageError, StoredRow, on_backend, per_backend, returned_id};
use contract::{ParseError, protocol::AlertEvent};
use std::str::FromStr;

/// A stored rule: its id, the spec JSON and its times.
pub type RuleRow = SpecRow;

/// A stored instance state.
#[derive(Debug, Clone)]
pub struct InstanceRow {
    pub rule_id: i64,
    pub instance: String,
    pub state: String,
    pub since_ms: i64,
    pub last_data_ms: i64,
}

/// A transition to store, with the targets it notifies (as JSON, each with the template its
/// payload is rendered with) and the notification payload, which gets the transition's id as
/// `"id"` once it is stored.
#[derive(Debug, Clone)]
pub struct NewTransition {
    pub event: AlertEvent,
    /// Notified in its rule's next group (no outbox rows of its own).
    pub grouped: bool,
    pub last_data_ms: i64,
    pub targets: Vec<(String, Option<String>)>,
    pub payload: serde_json::Map<String, serde_json::Value>,
}

/// One outbox row due for delivery.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub transition_id: i64,
    pub target: String,
    pub payload: String,
    /// The template the payload is rendered with (`None`: sent as JSON).
    pub template: Option<String>,
    pub attempts: i64,
}

/// One stored 1-second row of a metric, its histogram as sparse counts (a backtest's input).
#[derive(Debug, Clone)]
pub struct SecondRow {
    /// The series' labels as their JSON array.
    pub series: String,
    pub second: i64,
    pub stats: crate::metric::Stats,
    /// Ascending `(bucket index, count)`; empty without a histogram.
    pub counts: Vec<(u32, u64)>,
    /// The histogram's bounds (`None` without one).
    pub bounds: Option<crate::metric::histogram::HistBounds>,
}

/// A notifying transition waiting for its group's notification.
#[derive(Debug, Clone)]
pub struct WaitingTransition {
    pub id: i64,
    pub instance: String,
    pub from: contract::alert::AlertState,
    pub to: contract::alert::AlertState,
    pub value: Option<f64>,
    pub at_ms: i64,
}

/// Filters of the history.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    pub rule_id: Option<i64>,
    /// Transitions of rules on this metric.
    pub metric: Option<String>,
    pub state: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub limit: i64,
}

/// A column holding a closed set's name.
fn named<T: FromStr<Err = ParseError>, R: StoredRow>(
    row: &R,
    column: &str,
) -> Result<T, sqlx::Error> {
    row.str(column)?
        .parse()
        .map_err(|e: ParseError| sqlx::Error::ColumnDecode {
            index: column.to_string(),
            source: Box::new(e),
        })
}

fn event_from<R: StoredRow>(row: &R) -> Result<AlertEvent, sqlx::Error> {
    Ok(AlertEvent {
        id: row.int("id")?,
        rule_id: row.int("rule_id")?,
        rule: row.text("rule")?,
        metric: row.text("metric")?,
        instance: row.text("instance")?,
        from: named(row, "from_state")?,
        to: named(row, "to_state")?,
        value: row.opt_real("value")?,
        threshold: row.real("threshold")?,
        at_ms: row.int("at_ms")?,
        severity: named(row, "severity")?,
        notification: named(row, "notification")?,
        in_app: row.int("in_app")? != 0,
        message: row.opt_text("message")?,
    })
}

const EVENT_COLUMNS: &str = "id, rule_id, rule, metric, instance, from_state, to_state, value, \
     threshold, at_ms, severity, notification, in_app, message";

/// Whether an error is the UNIQUE constraint on the rule name.
pub fn is_duplicate_name(error: &StorageError) -> bool {
    matches!(error, StorageError::Query(sqlx::Error::Database(e)) if e.is_unique_violation())
}

impl Database {
    /// The 1-second rows of `metric_id` with `from_s <= second < to_s` (one series when
    /// given), in time order, histograms decoded to sparse counts (no dense histogram per row).
    pub async fn second_rows(
        &self,
        metric_id: i64,
        series: Option<&str>,
        from_s: i64,
        to_s: i64,
    ) -> Result<Vec<SecondRow>, StorageError> {
        on_backend!(self, sql, pool => {
            let sql = match series {
                None => {
                    "SELECT series, start_s, count, sum, min, max, hist FROM metric_bucket \
                     WHERE metric_id = $1 AND tier_s = 1 AND start_s >= $2 AND start_s < $3 \
                     ORDER BY start_s, series"
                }
                Some(_) => {
                    "SELECT series, start_s, count, sum, min, max, hist FROM metric_bucket \
                     WHERE metric_id = $1 AND tier_s = 1 AND start_s >= $2 AND start_s < $3 \
                     AND series = $4 ORDER BY start_s"
                }
            };
            let rows = sqlx::query(sql)
                .bind(metric_id)
                .bind(from_s)
                .bind(to_s)
                .bind(series)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|row| {
                    let blob = row.blob("hist")?;
                    let mut counts = Vec::new();
                    let bounds = blob
                        .as_deref()
                        .map(|b| crate::metric::histogram::decode_sparse_histogram(b, &mut counts))
                        .transpose()?;
                    Ok(SecondRow {
                        series: row.text("series")?,
                        second: row.int("start_s")?,
                        stats: super::metrics::stored_stats(row)?,
                        counts,
                        bounds,
                    })
                })
                .collect()
        })
    }

    pub async fn alert_rules(&self) -> Result<Vec<RuleRow>, StorageError> {
        on_backend!(self, sql, pool => {
            let rows = sqlx::query(
                "SELECT id, name, spec, created_ms, updated_ms FROM alert_rule ORDER BY name",
            )
            .fetch_all(pool)
            .await?;
            Ok(rows.iter().map(SpecRow::from_row).collect::<Result<_, _>>()?)
        })
    }

    pub async fn alert_rule(&self, id: i64) -> Result<Option<RuleRow>, StorageError> {
        on_backend!(self, sql, pool => {
            let row = sqlx::query(
                "SELECT id, name, spec, created_ms, updated_ms FROM alert_rule WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?;
            Ok(row.as_ref().map(SpecRow::from_row).transpose()?)
        })
    }

    /// Stores every `(name, spec JSON)` in one transaction: a rule of that name is replaced,
    /// others are created. Returns how many were (created, replaced).
    pub async fn upsert_alert_rules(
        &self,
        rules: &[(String, String)],
        now_ms: i64,
    ) -> Result<(usize, usize), StorageError> {
        on_backend!(self, sql, pool => {
            let mut tx = sql::begin_write(pool).await?;
            let (mut created, mut replaced) = (0, 0);
            for (name, spec) in rules {
                let updated =
                    sqlx::query("UPDATE alert_rule SET spec = $1, updated_ms = $2 WHERE name = $3")
                        .bind(spec)
                        .bind(now_ms)
                        .bind(name)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                if updated > 0 {
                    replaced += 1;
                    continue;
                }
                sqlx::query(
                    "INSERT INTO alert_rule (name, spec, created_ms, updated_ms) VALUES ($1, $2, $3, $4)",
                )
                .bind(name)
                .bind(spec)
                .bind(now_ms)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                created += 1;
            }
            tx.commit().await?;
            Ok((created, replaced))
        })
    }

    /// Inserts a rule; fails with a unique violation when the name is taken.
    pub async fn insert_alert_rule(
        &self,
        name: &str,
        spec: &str,
        now_ms: i64,
    ) -> Result<i64, StorageError> {
        on_backend!(self, sql, pool => {
            let id = sqlx::query_scalar(
                "INSERT INTO alert_rule (name, spec, created_ms, updated_ms) \
                 VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(name)
            .bind(spec)
            .bind(now_ms)
            .bind(now_ms)
            .fetch_all(pool)
            .await?;
            returned_id(id)
        })
    }

    /// Replaces a rule's spec; `false` when there is no such rule.
    pub async fn update_alert_rule(
        &self,
        id: i64,
        name: &str,
        spec: &str,
        now_ms: i64,
    ) -> Result<bool, StorageError> {
        on_backend!(self, sql, pool => {
            let done =
                sqlx::query("UPDATE alert_rule SET name = $1, spec = $2, updated_ms = $3 WHERE id = $4")
                    .bind(name)
                    .bind(spec)
                    .bind(now_ms)
                    .bind(id)
                    .execute(pool)
                    .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Deletes a rule and its instances (not its history); `false` when there is none.
    pub async fn delete_alert_rule(&self, id: i64) -> Result<bool, StorageError> {
        on_backend!(self, sql, pool => {
            let mut tx = sql::begin_write(pool).await?;
            sqlx::query("DELETE FROM alert_instance WHERE rule_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let done = sqlx::query("DELETE FROM alert_rule WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(done.rows_affected() == 1)
        })
    }

    pub async fn alert_instances(&self) -> Result<Vec<InstanceRow>, StorageError> {
        on_backend!(self, sql, pool => {
            let rows = sqlx::query(
                "SELECT rule_id, instance, state, since_ms, last_data_ms FROM alert_instance",
            )
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(InstanceRow {
                        rule_id: row.int("rule_id")?,
                        instance: row.text("instance")?,
                        state: row.text("state")?,
                        since_ms: row.int("since_ms")?,
                        last_data_ms: row.int("last_data_ms")?,
                    })
                })
                .collect()
        })
    }

    /// Stores transitions, the instances' new states and their outbox rows in ONE
    /// transaction, and returns the events with their ids.
    pub async fn record_transitions(
        &self,
        transitions: Vec<NewTransition>,
    ) -> Result<Vec<AlertEvent>, StorageError> {
        on_backend!(self, sql, pool => {
            let mut tx = sql::begin_write(pool).await?;
            let mut stored = Vec::with_capacity(transitions.len());
            for t in transitions {
                let mut event = t.event;
                event.id = sql::insert_transition(&mut tx, &event, t.grouped).await?;
                sqlx::query(
                    "INSERT INTO alert_instance (rule_id, instance, state, since_ms, last_data_ms) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (rule_id, instance) DO UPDATE SET \
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
                for (target, template) in &t.targets {
                    sqlx::query(
                        "INSERT INTO alert_outbox (transition_id, target, payload, template, \
                         next_attempt_ms) VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(event.id)
                    .bind(target)
                    .bind(&payload)
                    .bind(template)
                    .bind(event.at_ms)
                    .execute(&mut *tx)
                    .await?;
                }
                stored.push(event);
            }
            tx.commit().await?;
            Ok(stored)
        })
    }

    /// The rules with transitions waiting for their group, and the oldest one's time.
    pub async fn waiting_groups(&self) -> Result<Vec<(i64, i64)>, StorageError> {
        on_backend!(self, sql, pool => {
            let rows: Vec<(i64, i64)> = sqlx::query_as(
                "SELECT rule_id, MIN(at_ms) FROM alert_transition WHERE grouped = 0 GROUP BY rule_id",
            )
            .fetch_all(pool)
            .await?;
            Ok(rows)
        })
    }

    /// Sends rule `rule_id`'s group, in ONE transaction: its waiting transitions (oldest
    /// first) are given to `build`, which returns the targets (JSON, with their templates) and
    /// the payload; one outbox row per target is written under the first transition's id and
    /// the transitions are marked sent. Returns how many transitions the group holds (0: none
    /// was waiting, nothing written).
    pub async fn send_group(
        &self,
        rule_id: i64,
        build: impl FnOnce(&[WaitingTransition]) -> (Vec<(String, Option<String>)>, String),
    ) -> Result<usize, StorageError> {
        on_backend!(self, sql, pool => {
            let mut tx = sql::begin_write(pool).await?;
            let rows = sqlx::query(
                "SELECT id, instance, from_state, to_state, value, at_ms FROM alert_transition \
                 WHERE rule_id = $1 AND grouped = 0 ORDER BY id",
            )
            .bind(rule_id)
            .fetch_all(&mut *tx)
            .await?;
            let waiting = rows
                .iter()
                .map(|row| {
                    Ok(WaitingTransition {
                        id: row.int("id")?,
                        instance: row.text("instance")?,
                        from: named(row, "from_state")?,
                        to: named(row, "to_state")?,
                        value: row.opt_real("value")?,
                        at_ms: row.int("at_ms")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()?;
            let (Some(first), Some(last)) = (waiting.first(), waiting.last()) else {
                return Ok(0);
            };
            let (first_id, last_id, at_ms) = (first.id, last.id, last.at_ms);
            let (targets, payload) = build(&waiting);
            for (target, template) in &targets {
                sqlx::query(
                    "INSERT INTO alert_outbox (transition_id, target, payload, template, \
                     next_attempt_ms) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(first_id)
                .bind(target)
                .bind(&payload)
                .bind(template)
                .bind(at_ms)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(
                "UPDATE alert_transition SET grouped = 1 \
                 WHERE rule_id = $1 AND grouped = 0 AND id <= $2",
            )
            .bind(rule_id)
            .bind(last_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(waiting.len())
        })
    }

    /// Forgets instances no longer in a rule's scope.
    pub async fn delete_alert_instance(
        &self,
        rule_id: i64,
        instance: &str,
    ) -> Result<(), StorageError> {
        on_backend!(self, sql, pool => {
            sqlx::query("DELETE FROM alert_instance WHERE rule_id = $1 AND instance = $2")
                .bind(rule_id)
                .bind(instance)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Transitions, newest first.
    pub async fn alert_history(
        &self,
        filter: &HistoryFilter,
    ) -> Result<Vec<AlertEvent>, StorageError> {
        on_backend!(self, sql, pool => {
            let rows = sqlx::query(&format!(
                "SELECT {EVENT_COLUMNS} FROM alert_transition \
                 WHERE ($1 IS NULL OR rule_id = $1) AND ($2 IS NULL OR to_state = $2) \
                 AND ($3 IS NULL OR at_ms >= $3) AND ($4 IS NULL OR at_ms < $4) \
                 AND ($6 IS NULL OR metric = $6) \
                 ORDER BY id DESC LIMIT $5"
            ))
            .bind(filter.rule_id)
            .bind(filter.state.as_deref())
            .bind(filter.from_ms)
            .bind(filter.to_ms)
            .bind(filter.limit)
            .bind(filter.metric.as_deref())
            .fetch_all(pool)
            .await?;
            Ok(rows.iter().map(event_from).collect::<Result<_, _>>()?)
        })
    }

    /// Outbox rows due at `now_ms`, oldest first, at most one per target that is not behind
    /// an earlier undelivered row of the same target (so a target sees transitions in order).
    pub async fn due_outbox(
        &self,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StorageError> {
        on_backend!(self, sql, pool => {
            let rows = sqlx::query(
                "SELECT o.id, o.transition_id, o.target, o.payload, o.template, o.attempts \
                 FROM alert_outbox o \
                 WHERE o.delivered_ms IS NULL AND o.failed_ms IS NULL AND o.next_attempt_ms <= $1 \
                 AND NOT EXISTS (SELECT 1 FROM alert_outbox p WHERE p.target = o.target \
                     AND p.id < o.id AND p.delivered_ms IS NULL AND p.failed_ms IS NULL) \
                 ORDER BY o.id LIMIT $2",
            )
            .bind(now_ms)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(OutboxRow {
                        id: row.int("id")?,
                        transition_id: row.int("transition_id")?,
                        target: row.text("target")?,
                        payload: row.text("payload")?,
                        template: row.opt_text("template")?,
                        attempts: row.int("attempts")?,
                    })
                })
                .collect()
        })
    }

    /// When the next deliverable row is due (to sleep until then).
    pub async fn next_outbox_due(&self) -> Result<Option<i64>, StorageError> {
        on_backend!(self, sql, pool => {
            let due: Option<i64> = sqlx::query_scalar(
                "SELECT MIN(o.next_attempt_ms) FROM alert_outbox o \
                 WHERE o.delivered_ms IS NULL AND o.failed_ms IS NULL \
                 AND NOT EXISTS (SELECT 1 FROM alert_outbox p WHERE p.target = o.target \
                     AND p.id < o.id AND p.delivered_ms IS NULL AND p.failed_ms IS NULL)",
            )
            .fetch_one(pool)
            .await?;
            Ok(due)
        })
    }

    pub async fn outbox_delivered(&self, id: i64, now_ms: i64) -> Result<(), StorageError> {
        on_backend!(self, sql, pool => {
            sqlx::query(
                "UPDATE alert_outbox SET delivered_ms = $1, attempts = attempts + 1 WHERE id = $2",
            )
            .bind(now_ms)
            .bind(id)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Records a failed attempt: retried at `retry_at_ms`, or given up when `None`.
    pub async fn outbox_failed(
        &self,
        id: i64,
        error: &str,
        now_ms: i64,
        retry_at_ms: Option<i64>,
    ) -> Result<(), StorageError> {
        on_backend!(self, sql, pool => {
            sqlx::query(
                "UPDATE alert_outbox SET attempts = attempts + 1, last_error = $1, \
                 next_attempt_ms = COALESCE($2, next_attempt_ms), \
                 failed_ms = CASE WHEN $3 IS NULL THEN $4 ELSE NULL END WHERE id = $5",
            )
            .bind(error)
            .bind(retry_at_ms)
            .bind(retry_at_ms)
            .bind(now_ms)
            .bind(id)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Transitions into `firing` between `from_ms` and `to_ms`, oldest first (reports).
    pub async fn alerts_fired(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<AlertEvent>, StorageError> {
        on_backend!(self, sql, pool => {
            let rows = sqlx::query(&format!(
                "SELECT {EVENT_COLUMNS} FROM alert_transition \
                 WHERE to_state = 'firing' AND at_ms >= $1 AND at_ms < $2 ORDER BY at_ms LIMIT 1000"
            ))
            .bind(from_ms)
            .bind(to_ms)
            .fetch_all(pool)
            .await?;
            Ok(rows.iter().map(event_from).collect::<Result<_, _>>()?)
        })
    }
}

per_backend! {
    pub(crate) async fn insert_transition(
        conn: &mut Connection,
        event: &AlertEvent,
        grouped: bool,
    ) -> Result<i64, StorageError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO alert_transition (rule_id, rule, metric, instance, from_state, \
             to_state, value, threshold, at_ms, severity, notification, in_app, message, \
             grouped) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             RETURNING id",
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
        .bind(&event.message)
        .bind(grouped.then_some(0_i64))
        .fetch_one(&mut *conn)
        .await?)
    }
}
