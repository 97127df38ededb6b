//! Users, login sessions and API tokens. Secrets never reach this module: sessions and tokens
//! are stored and looked up by the SHA-256 of their secret (computed by `auth`), passwords as
//! argon2id PHC strings.

use super::{Database, StorageError, StoredRow, on_backend, per_backend, returned_id};
use contract::auth::{Role, TokenInfo, UserInfo};

/// A stored user with its password hash (for login checks only; never sent anywhere).
#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub password_hash: String,
}

/// Who a live session or token belongs to, as the request's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub name: String,
    pub role: Role,
}

fn role<R: StoredRow>(row: &R, column: &str) -> Result<Role, StorageError> {
    row.str(column)?
        .parse::<Role>()
        .map_err(|e| StorageError::Query(sqlx::Error::Decode(e.0.into())))
}

fn holder<R: StoredRow>(row: &R) -> Result<Holder, StorageError> {
    Ok(Holder {
        name: row.text("name")?,
        role: role(row, "role")?,
    })
}

/// How stale a token's `last_used_ms` may get: a token used by a script on every request
/// writes it at most once per this period, not once per request.
pub const TOKEN_USE_RESOLUTION_MS: i64 = 60_000;

fn user_row<R: StoredRow>(row: &R) -> Result<UserRow, StorageError> {
    Ok(UserRow {
        id: row.int("id")?,
        name: row.text("name")?,
        role: role(row, "role")?,
        password_hash: row.text("password_hash")?,
    })
}

fn token_info<R: StoredRow>(row: &R) -> Result<TokenInfo, StorageError> {
    Ok(TokenInfo {
        id: row.int("id")?,
        name: row.text("name")?,
        role: role(row, "role")?,
        created_by: row.text("created_by")?,
        created_ms: row.int("created_ms")?,
        last_used_ms: row.opt_int("last_used_ms")?,
        revoked_ms: row.opt_int("revoked_ms")?,
    })
}

per_backend! {}

/// True when `error` is the unique constraint on a user's name.
pub fn is_duplicate_user(error: &StorageError) -> bool {
    matches!(error, StorageError::Query(sqlx::Error::Database(e)) if e.is_unique_violation())
}

impl Database {
    /// How many users exist (none: the server offers the one-time setup link).
    pub async fn user_count(&self) -> Result<i64, StorageError> {
        on_backend!(self, sql, pool => {
            Ok(sqlx::query_scalar("SELECT COUNT(*) FROM auth_user")
                .fetch_one(pool)
                .await?)
        })
    }

    /// Adds a user; a taken name (case-insensitive) is a unique violation
    /// ([`is_duplicate_user`]).
    pub async fn insert_user(
        &self,
        name: &str,
        role: Role,
        password_hash: &str,
        now_ms: i64,
    ) -> Result<i64, StorageError> {
        on_backend!(self, sql, pool => {
            let id = sqlx::query_scalar(
                "INSERT INTO auth_user (name, role, password_hash, created_ms) \
                 VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(name)
            .bind(role.as_str())
            .bind(password_hash)
            .bind(now_ms)
            .fetch_all(pool)
            .await?;
            let id = returned_id(id)?;
            Ok(id)
        })
    }

    /// Replaces a user's password and role and ends all their sessions; false when no such
    /// user.
    pub async fn update_user(
        &self,
        name: &str,
        role: Role,
        password_hash: &str,
    ) -> Result<bool, StorageError> {
        on_backend!(self, sql, pool => {
            let mut tx = sql::begin_write(pool).await?;
            let updated =
                sqlx::query("UPDATE auth_user SET role = $1, password_hash = $2 WHERE lower(name) = lower($3)")
                    .bind(role.as_str())
                    .bind(password_hash)
                    .bind(name)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            sqlx::query(
                "DELETE FROM auth_session WHERE user_id IN (SELECT id FROM auth_user WHERE lower(name) = lower($1))",
            )
            .bind(name)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(updated > 0)
        })
    }

    /// The user named `name` (case-insensitive), with their password hash.
    pub async fn user_by_name(&self, name: &str) -> Result<Option<UserRow>, StorageError> {
        on_backend!(self, sql, pool => {
            sqlx::query("SELECT id, name, role, password_hash FROM auth_user WHERE lower(name) = lower($1)")
                .bind(name)
                .fetch_optional(pool)
                .await?
                .as_ref()
                .map(user_row)
                .transpose()
        })
    }

    /// Every user with their count of unexpired sessions, by name.
    pub async fn users(&self, now_ms: i64) -> Result<Vec<UserInfo>, StorageError> {
        on_backend!(self, sql, pool => {
            let rows = sqlx::query(
                "SELECT u.id, u.name, u.role, u.created_ms, \
                   (SELECT COUNT(*) FROM auth_session s WHERE s.user_id = u.id AND s.expires_ms > $1) \
                     AS sessions \
                 FROM auth_user u ORDER BY u.name",
            )
            .bind(now_ms)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(UserInfo {
                        id: row.int("id")?,
                        name: row.text("name")?,
                        role: role(row, "role")?,
                        created_ms: row.int("created_ms")?,
                        sessions: u32::try_from(row.int("sessions")?).unwrap_or(0),
                    })
                })
                .collect()
        })
    }

    /// Deletes a user (their sessions go with them); false when no such user.
    pub async fn delete_user(&self, id: i64) -> Result<bool, StorageError> {
        on_backend!(self, sql, pool => {
            let deleted = sqlx::query("DELETE FROM auth_user WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected();
            Ok(deleted > 0)
        })
    }

    /// Starts a session for `user_id` until `expires_ms`.
    pub async fn insert_session(
        &self,
        secret_hash: &[u8],
        user_id: i64,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<(), StorageError> {
        on_backend!(self, sql, pool => {
            // Expired sessions are removed as new ones start, so the table stays small.
            sqlx::query("DELETE FROM auth_session WHERE expires_ms <= $1")
                .bind(now_ms)
                .execute(pool)
                .await?;
            sqlx::query(
                "INSERT INTO auth_session (secret_hash, user_id, created_ms, expires_ms) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(secret_hash)
            .bind(user_id)
            .bind(now_ms)
            .bind(expires_ms)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Who holds the unexpired session `secret_hash`, if anyone.
    pub async fn session_holder(
        &self,
        secret_hash: &[u8],
        now_ms: i64,
    ) -> Result<Option<Holder>, StorageError> {
        on_backend!(self, sql, pool => {
            sqlx::query(
                "SELECT u.name, u.role FROM auth_session s JOIN auth_user u ON u.id = s.user_id \
                 WHERE s.secret_hash = $1 AND s.expires_ms > $2",
            )
            .bind(secret_hash)
            .bind(now_ms)
            .fetch_optional(pool)
            .await?
            .map(|row| holder(&row))
            .transpose()
        })
    }

    /// Ends one session (logout).
    pub async fn delete_session(&self, secret_hash: &[u8]) -> Result<(), StorageError> {
        on_backend!(self, sql, pool => {
            sqlx::query("DELETE FROM auth_session WHERE secret_hash = $1")
                .bind(secret_hash)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Ends every session of a user ("sign out everywhere"); the count ended.
    pub async fn delete_sessions_of(&self, user_id: i64) -> Result<u64, StorageError> {
        on_backend!(self, sql, pool => {
            Ok(sqlx::query("DELETE FROM auth_session WHERE user_id = $1")
                .bind(user_id)
                .execute(pool)
                .await?
                .rows_affected())
        })
    }

    /// Stores a new API token (its hash) and returns it as listed.
    pub async fn insert_token(
        &self,
        name: &str,
        secret_hash: &[u8],
        role: Role,
        created_by: &str,
        now_ms: i64,
    ) -> Result<TokenInfo, StorageError> {
        on_backend!(self, sql, pool => {
            let id = sqlx::query_scalar(
                "INSERT INTO auth_token (name, secret_hash, role, created_by, created_ms) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(name)
            .bind(secret_hash)
            .bind(role.as_str())
            .bind(created_by)
            .bind(now_ms)
            .fetch_all(pool)
            .await?;
            let id = returned_id(id)?;
            Ok(TokenInfo {
                id,
                name: name.to_string(),
                role,
                created_by: created_by.to_string(),
                created_ms: now_ms,
                last_used_ms: None,
                revoked_ms: None,
            })
        })
    }

    /// Every token, newest first (revoked ones too, marked).
    pub async fn tokens(&self) -> Result<Vec<TokenInfo>, StorageError> {
        on_backend!(self, sql, pool => {
            let rows = sqlx::query(
                "SELECT id, name, role, created_by, created_ms, last_used_ms, revoked_ms \
                 FROM auth_token ORDER BY id DESC",
            )
            .fetch_all(pool)
            .await?;
            rows.iter().map(token_info).collect()
        })
    }

    /// The role and name of the unrevoked token `secret_hash`, noting its use (at most once
    /// per [`TOKEN_USE_RESOLUTION_MS`], so scripted API calls do not each cost a write).
    pub async fn use_token(
        &self,
        secret_hash: &[u8],
        now_ms: i64,
    ) -> Result<Option<Holder>, StorageError> {
        on_backend!(self, sql, pool => {
            let Some(row) = sqlx::query(
                "SELECT id, name, role, last_used_ms FROM auth_token \
                 WHERE secret_hash = $1 AND revoked_ms IS NULL",
            )
            .bind(secret_hash)
            .fetch_optional(pool)
            .await?
            else {
                return Ok(None);
            };
            let last_used_ms = row.opt_int("last_used_ms")?;
            if last_used_ms.is_none_or(|used| now_ms - used >= TOKEN_USE_RESOLUTION_MS) {
                let id = row.int("id")?;
                sqlx::query("UPDATE auth_token SET last_used_ms = $1 WHERE id = $2")
                    .bind(now_ms)
                    .bind(id)
                    .execute(pool)
                    .await?;
            }
            holder(&row).map(Some)
        })
    }

    /// Revokes a token; false when there is no such unrevoked token.
    pub async fn revoke_token(&self, id: i64, now_ms: i64) -> Result<bool, StorageError> {
        on_backend!(self, sql, pool => {
            let revoked =
                sqlx::query("UPDATE auth_token SET revoked_ms = $1 WHERE id = $2 AND revoked_ms IS NULL")
                    .bind(now_ms)
                    .bind(id)
                    .execute(pool)
                    .await?
                    .rows_affected();
            Ok(revoked > 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sessions_expire_and_go_with_their_user() {
        for (_dir, db) in crate::storage::test_databases().await {
            let id = db
                .insert_user("Ada", Role::Editor, "$argon2id$x", 1)
                .await
                .unwrap();
            let duplicate = db.insert_user("ada", Role::Viewer, "$argon2id$y", 2).await;
            assert!(is_duplicate_user(&duplicate.unwrap_err()));
            db.insert_session(b"s1", id, 10, 100).await.unwrap();
            let holder = db.session_holder(b"s1", 99).await.unwrap();
            assert_eq!(
                holder,
                Some(Holder {
                    name: "Ada".into(),
                    role: Role::Editor
                })
            );
            assert_eq!(db.session_holder(b"s1", 100).await.unwrap(), None);
            assert_eq!(db.users(50).await.unwrap()[0].sessions, 1);
            assert!(db.delete_user(id).await.unwrap());
            assert_eq!(db.session_holder(b"s1", 50).await.unwrap(), None);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn revoked_tokens_are_not_found() {
        for (_dir, db) in crate::storage::test_databases().await {
            let token = db
                .insert_token("ci", b"h", Role::Viewer, "ada", 5)
                .await
                .unwrap();
            assert_eq!(
                db.use_token(b"h", 6).await.unwrap().map(|h| h.role),
                Some(Role::Viewer)
            );
            assert_eq!(db.tokens().await.unwrap()[0].last_used_ms, Some(6));
            // A use within the resolution is not written again; one past it is.
            assert!(db.use_token(b"h", 7).await.unwrap().is_some());
            assert_eq!(db.tokens().await.unwrap()[0].last_used_ms, Some(6));
            let later = 6 + TOKEN_USE_RESOLUTION_MS;
            assert!(db.use_token(b"h", later).await.unwrap().is_some());
            assert_eq!(db.tokens().await.unwrap()[0].last_used_ms, Some(later));
            assert!(db.revoke_token(token.id, later + 1).await.unwrap());
            assert!(!db.revoke_token(token.id, later + 2).await.unwrap());
            assert_eq!(db.use_token(b"h", later + 3).await.unwrap(), None);
        }
    }
}
