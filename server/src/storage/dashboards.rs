//! User-built dashboards: one row per dashboard holding its checked JSON document. The SQL
//! for `/api/v1/dashboards` lives here; callers get [`DashboardRow`]s and never see SQL rows.

use super::{Database, SpecRow, StorageError, on_backend, per_backend, returned_id};

/// A stored dashboard: its id, name, the document JSON and its times.
pub type DashboardRow = SpecRow;

per_backend! {}

impl Database {
    /// Every dashboard, by name (then id).
    pub async fn dashboards(&self) -> Result<Vec<DashboardRow>, StorageError> {
        let rows = on_backend!(self, _sql, pool => {
            sqlx::query(
                "SELECT id, name, spec, created_ms, updated_ms FROM dashboard ORDER BY name, id",
            )
            .fetch_all(pool)
            .await?
            .iter()
            .map(SpecRow::from_row)
            .collect::<Result<_, _>>()?
        });
        Ok(rows)
    }

    pub async fn dashboard(&self, id: i64) -> Result<Option<DashboardRow>, StorageError> {
        let row = on_backend!(self, _sql, pool => {
            sqlx::query(
                "SELECT id, name, spec, created_ms, updated_ms FROM dashboard WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
            .as_ref()
            .map(SpecRow::from_row)
            .transpose()?
        });
        Ok(row)
    }

    /// Stores a new dashboard; returns its id.
    pub async fn insert_dashboard(
        &self,
        name: &str,
        spec: &str,
        now_ms: i64,
    ) -> Result<i64, StorageError> {
        let id = on_backend!(self, _sql, pool => {
            sqlx::query_scalar(
                "INSERT INTO dashboard (name, spec, created_ms, updated_ms) \
                 VALUES ($1, $2, $3, $3) RETURNING id",
            )
            .bind(name)
            .bind(spec)
            .bind(now_ms)
            .fetch_all(pool)
            .await?
        });
        returned_id(id)
    }

    /// Replaces a dashboard's document; `false` when there is no such dashboard.
    pub async fn update_dashboard(
        &self,
        id: i64,
        name: &str,
        spec: &str,
        now_ms: i64,
    ) -> Result<bool, StorageError> {
        let done = on_backend!(self, _sql, pool => {
            sqlx::query("UPDATE dashboard SET name = $1, spec = $2, updated_ms = $3 WHERE id = $4")
                .bind(name)
                .bind(spec)
                .bind(now_ms)
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    }

    /// Deletes a dashboard; `false` when there is none.
    pub async fn delete_dashboard(&self, id: i64) -> Result<bool, StorageError> {
        let done = on_backend!(self, _sql, pool => {
            sqlx::query("DELETE FROM dashboard WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dashboards_are_created_listed_replaced_and_deleted() {
        for (_dir, db) in crate::storage::test_databases().await {
            assert!(db.dashboards().await.unwrap().is_empty());
            let b = db
                .insert_dashboard("b", "{\"name\":\"b\"}", 1)
                .await
                .unwrap();
            let a = db
                .insert_dashboard("a", "{\"name\":\"a\"}", 2)
                .await
                .unwrap();
            let names: Vec<_> = db
                .dashboards()
                .await
                .unwrap()
                .into_iter()
                .map(|d| (d.id, d.name))
                .collect();
            assert_eq!(names, vec![(a, "a".to_string()), (b, "b".to_string())]);
            assert!(
                db.update_dashboard(b, "c", "{\"name\":\"c\"}", 5)
                    .await
                    .unwrap()
            );
            let row = db.dashboard(b).await.unwrap().unwrap();
            assert_eq!(
                (row.created_ms, row.updated_ms, row.spec.as_str()),
                (1, 5, "{\"name\":\"c\"}")
            );
            assert!(!db.update_dashboard(99, "x", "{}", 5).await.unwrap());
            assert!(db.delete_dashboard(a).await.unwrap());
            assert!(!db.delete_dashboard(a).await.unwrap());
            assert_eq!(db.dashboard(a).await.unwrap(), None);
        }
    }
}
