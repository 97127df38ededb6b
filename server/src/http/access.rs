//! Who may use which route: one rule per route path, for reads (GET, HEAD, OPTIONS) and for
//! writes (every other method), and one per live topic. The router records every path it
//! registers ([`Routes`]); a path without a rule here is refused to everyone (fail closed),
//! and `server/tests/access.rs` walks every recorded path with each role so a new route
//! without a rule fails the test.

use crate::auth::Role;
use axum::{Router, http::Method, routing::MethodRouter};
use contract::protocol::Topic;

use super::AppState;

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, logged in or not (the login page, health checks, site assets).
    Public,
    /// At least this role.
    At(Role),
    /// No one (a method the route does not offer to anyone).
    Nobody,
}

impl Access {
    pub fn allows(self, role: Option<Role>) -> bool {
        match self {
            Access::Public => true,
            Access::At(needed) => role.is_some_and(|role| role >= needed),
            Access::Nobody => false,
        }
    }
}

const VIEWER: Access = Access::At(Role::Viewer);
const EDITOR: Access = Access::At(Role::Editor);
const ADMIN: Access = Access::At(Role::Admin);

/// (path as registered, read access, write access). Pages are read-only.
const RULES: &[(&str, Access, Access)] = &[
    // Operational endpoints: a load balancer's health check needs no login; the process's
    // Prometheus figures are a viewer's (a scraper uses a viewer token).
    ("/healthz", Access::Public, Access::Nobody),
    ("/metrics", VIEWER, Access::Nobody),
    ("/ws", VIEWER, Access::Nobody),
    // Login, logout and first-run setup.
    ("/login", Access::Public, Access::Public),
    ("/logout", Access::Public, Access::Public),
    ("/setup", Access::Nobody, Access::Public),
    ("/api/v1/me", Access::Public, Access::Nobody),
    // Users and tokens.
    ("/api/v1/users", ADMIN, ADMIN),
    ("/api/v1/users/{id}", ADMIN, ADMIN),
    ("/api/v1/users/{id}/sessions", ADMIN, ADMIN),
    ("/api/v1/tokens", ADMIN, ADMIN),
    ("/api/v1/tokens/{id}", ADMIN, ADMIN),
    // Metric definitions and history.
    ("/api/v1/metrics", VIEWER, EDITOR),
    ("/api/v1/metrics/preview", Access::Nobody, EDITOR),
    ("/api/v1/metrics/{name}", VIEWER, EDITOR),
    ("/api/v1/metrics/{name}/series", VIEWER, Access::Nobody),
    ("/api/v1/query", VIEWER, Access::Nobody),
    ("/api/v1/streams/{name}/fields", VIEWER, Access::Nobody),
    ("/api/v1/streams/{name}/records", VIEWER, Access::Nobody),
    // Alerts.
    ("/api/v1/alerts", VIEWER, EDITOR),
    ("/api/v1/alerts/history", VIEWER, Access::Nobody),
    ("/api/v1/alerts/preview", Access::Nobody, EDITOR),
    ("/api/v1/alerts/{id}", VIEWER, EDITOR),
    ("/api/v1/alerts/backtest", Access::Nobody, EDITOR),
    (
        "/api/v1/alerts/notification/preview",
        Access::Nobody,
        EDITOR,
    ),
    ("/api/v1/alerts/notification/test", Access::Nobody, EDITOR),
    ("/api/v1/alerts/{id}/silence", Access::Nobody, EDITOR),
    ("/api/v1/alerts/{id}/pause", Access::Nobody, EDITOR),
    ("/api/v1/alerts/{id}/resume", Access::Nobody, EDITOR),
    ("/api/v1/alerts/{id}/duplicate", Access::Nobody, EDITOR),
    ("/api/v1/alerts/export", VIEWER, Access::Nobody),
    ("/api/v1/alerts/import", Access::Nobody, EDITOR),
    // Dashboards.
    ("/api/v1/dashboards", VIEWER, EDITOR),
    ("/api/v1/dashboards/import", Access::Nobody, EDITOR),
    ("/api/v1/dashboards/{id}", VIEWER, EDITOR),
    ("/api/v1/dashboards/{id}/export", VIEWER, Access::Nobody),
    // Reports.
    ("/api/v1/export", VIEWER, Access::Nobody),
    ("/api/v1/export/estimate", VIEWER, Access::Nobody),
    // Pages.
    ("/", VIEWER, Access::Nobody),
    ("/streams", VIEWER, Access::Nobody),
    ("/streams/{name}/records", VIEWER, Access::Nobody),
    ("/metric/{name}", VIEWER, Access::Nobody),
    ("/metrics/new", EDITOR, Access::Nobody),
    ("/metrics/{name}/edit", EDITOR, Access::Nobody),
    ("/alerts", VIEWER, Access::Nobody),
    ("/reports", VIEWER, Access::Nobody),
    ("/dashboards", VIEWER, Access::Nobody),
    ("/dashboards/{id}", VIEWER, Access::Nobody),
    ("/admin", ADMIN, Access::Nobody),
];

/// What the site's files and the 404 page need (the router's fallback): nothing, so the
/// login page can load its script and style.
pub const FALLBACK: Access = Access::Public;

fn is_read(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The rule of a registered path for `method`; `None` when the path has no rule.
pub fn rule(path: &str, method: &Method) -> Option<Access> {
    RULES
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, read, write)| if is_read(method) { *read } else { *write })
}

/// What a live topic needs: every topic is a read.
pub fn topic(topic: &Topic) -> Access {
    match topic {
        Topic::Overview
        | Topic::Metric { .. }
        | Topic::Streams
        | Topic::Alerts
        | Topic::Tail(_) => VIEWER,
    }
}

/// A router that remembers the paths registered on it, so the rules can be checked against
/// every one (see the module documentation).
pub struct Routes {
    pub router: Router<AppState>,
    pub paths: Vec<String>,
}

impl Default for Routes {
    fn default() -> Self {
        Self::new()
    }
}

impl Routes {
    pub fn new() -> Self {
        Self {
            router: Router::new(),
            paths: Vec::new(),
        }
    }

    pub fn route(mut self, path: &str, method_router: MethodRouter<AppState>) -> Self {
        self.router = self.router.route(path, method_router);
        if !self.paths.iter().any(|p| p == path) {
            self.paths.push(path.to_string());
        }
        self
    }

    pub fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        for path in other.paths {
            if !self.paths.contains(&path) {
                self.paths.push(path);
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_climb_and_unknown_paths_have_no_rule() {
        assert!(EDITOR.allows(Some(Role::Admin)));
        assert!(!EDITOR.allows(Some(Role::Viewer)));
        assert!(!VIEWER.allows(None));
        assert!(Access::Public.allows(None));
        assert!(!Access::Nobody.allows(Some(Role::Admin)));
        assert_eq!(
            rule("/api/v1/alerts", &Method::POST),
            Some(Access::At(Role::Editor))
        );
        assert_eq!(rule("/api/v1/alerts", &Method::HEAD), Some(VIEWER));
        assert_eq!(rule("/api/v1/new-thing", &Method::GET), None);
    }
}
