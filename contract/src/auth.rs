//! Users, roles and API tokens: the bodies of `/api/v1/me`, `/api/v1/users` and
//! `/api/v1/tokens`, and the [`Role`] every access rule is written in.

use crate::closed_set;
use serde::{Deserialize, Serialize};

closed_set! {
    /// What a user or token may do. Ordered: each role may do everything the roles before it
    /// may.
    #[derive(PartialOrd, Ord)]
    pub enum Role ("role") {
        /// Read pages, the API and exports.
        Viewer = "viewer",
        /// Also change metric definitions, alert rules and silences.
        Editor = "editor",
        /// Also manage users and API tokens.
        Admin = "admin",
    }
    refused: ": use viewer, editor or admin";
}

/// `GET /api/v1/me`: who the request is from. `auth` is the server's mode (`none`,
/// `password`, `proxy-header`); with `none` everyone is an anonymous admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub name: String,
    pub role: Role,
    pub auth: String,
    /// True when the identity is a login session (so logging out means something).
    pub session: bool,
}

/// A user as listed on the admin page (never the password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub created_ms: i64,
    /// Login sessions that have not expired.
    pub sessions: u32,
}

/// `GET /api/v1/users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserList {
    pub users: Vec<UserInfo>,
}

/// `POST /api/v1/users`: a new user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUser {
    pub name: String,
    pub role: Role,
    pub password: String,
}

/// An API token as listed on the admin page (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub created_by: String,
    pub created_ms: i64,
    pub last_used_ms: Option<i64>,
    pub revoked_ms: Option<i64>,
}

/// `GET /api/v1/tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenList {
    pub tokens: Vec<TokenInfo>,
}

/// `POST /api/v1/tokens`: a new token for scripts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewToken {
    pub name: String,
    pub role: Role,
}

/// The answer to [`NewToken`]: the only time the token's secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreatedToken {
    pub token: TokenInfo,
    /// Send as `Authorization: Bearer <secret>`.
    pub secret: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_named() {
        assert!(Role::Viewer < Role::Editor && Role::Editor < Role::Admin);
        assert_eq!("editor".parse::<Role>(), Ok(Role::Editor));
        assert_eq!(
            "root".parse::<Role>().unwrap_err().to_string(),
            "\"root\": use viewer, editor or admin"
        );
    }
}
