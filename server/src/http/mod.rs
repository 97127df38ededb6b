//! The axum router: Leptos pages (SSR + hydration), the JSON API (`/api/v1`), the operational
//! endpoints and site assets.
//!
//! [`router`] builds everything from an [`AppState`] so tests can drive it with `oneshot` or a
//! real listener. Each concern has its own module with its own handlers.
//!
//! Every request passes, outermost first: request counting, [`guard`] (Host, Origin, sizes,
//! security headers), then [`session::authorize`] (who it is from, and the route's rule in
//! [`access`]).

pub mod access;
mod alerts;
pub mod api;
mod assets;
mod dashboards;
mod export;
pub mod guard;
mod health;
pub mod listener;
pub mod session;
mod settings;
mod tail;
mod users;
mod ws;

use crate::{
    auth::Auth,
    engine::{EngineHandle, EngineSettings},
    storage::Database,
    telemetry::ProcessMetrics,
};
use access::Routes;
use app::{App, shell};
use axum::{
    Router,
    extract::{DefaultBodyLimit, FromRef, MatchedPath, Request, State},
    middleware::{self, Next},
    response::Response,
    routing::{get, post},
};
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};
use std::{net::SocketAddr, sync::Arc};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower_http::compression::CompressionLayer;

pub use assets::SiteAssets;
pub use settings::{DatabaseUrlParser, ServerSettings};

/// What handlers share. Cheap to clone; each field has one owner elsewhere. `config` is the
/// server's own settings (the heartbeat, the site root).
#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub config: Arc<ServerSettings>,
    pub database: Database,
    /// Users, sessions, tokens and the login throttle (`--auth`).
    pub auth: Auth,
    pub metrics: Arc<ProcessMetrics>,
    pub assets: SiteAssets,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    /// The metrics engine, when running (definition reloads, field discovery).
    pub engine: Option<EngineHandle>,
    pub pipeline: Option<crate::pipeline::Pipeline>,
    /// The live publisher, when running (`/ws` subscriptions).
    pub live: Option<crate::live::LiveHub>,
    /// Alert evaluation, when running (rule reloads, the alerts topic).
    pub alerts: Option<crate::alerts::AlertsHandle>,
    /// Record tails of the streams read, when any are (the `tail` topic, record downloads).
    pub tails: Option<crate::tail::TailService>,
    /// How long each history tier (1 s, 1 min, 1 h) is kept; exports refuse older ranges
    /// (the engine's defaults until [`AppState::with_retention`]).
    pub retention: [std::time::Duration; 3],
}

impl AppState {
    pub fn new(
        config: Arc<ServerSettings>,
        local_addr: SocketAddr,
        database: Database,
        metrics: Arc<ProcessMetrics>,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> Self {
        let assets = match &config.site_root {
            Some(dir) => SiteAssets::Directory(dir.clone()),
            None => SiteAssets::Embedded,
        };
        let leptos_options = LeptosOptions::builder()
            .output_name(env!("LEPTOS_OUTPUT_NAME"))
            .site_root(
                config
                    .site_root
                    .as_ref()
                    .map(|dir| dir.display().to_string())
                    .unwrap_or_else(|| ".".to_string()),
            )
            .site_pkg_dir("pkg")
            .env(leptos::config::Env::PROD)
            .site_addr(local_addr)
            .build();
        let retention = EngineSettings::default().retention();
        let auth = Auth::new(database.clone(), config.auth_config());
        Self {
            leptos_options,
            config,
            auth,
            database,
            metrics,
            assets,
            shutdown,
            tracker,
            engine: None,
            pipeline: None,
            live: None,
            alerts: None,
            tails: None,
            retention,
        }
    }

    /// Sets the history retention the export checks ranges against (the engine's own).
    pub fn with_retention(mut self, retention: [std::time::Duration; 3]) -> Self {
        self.retention = retention;
        self
    }

    /// Attaches the running metrics engine.
    /// Attaches the running data path (consumer health for `/metrics`).
    pub fn with_pipeline(mut self, pipeline: crate::pipeline::Pipeline) -> Self {
        self.pipeline = Some(pipeline);
        self
    }

    /// Attaches the live publisher.
    pub fn with_alerts(mut self, alerts: crate::alerts::AlertsHandle) -> Self {
        self.alerts = Some(alerts);
        self
    }

    pub fn with_live(mut self, live: crate::live::LiveHub) -> Self {
        self.live = Some(live);
        self
    }

    /// Attaches the record tails.
    pub fn with_tails(mut self, tails: crate::tail::TailService) -> Self {
        self.tails = Some(tails);
        self
    }

    pub fn with_engine(mut self, engine: EngineHandle) -> Self {
        self.engine = Some(engine);
        self
    }
}

/// Every route of the server.
pub fn router(state: AppState) -> Router {
    router_and_paths(state).0
}

/// Every route of the server, and every path registered on it (pages included), so tests can
/// check that each has an access rule.
pub fn router_and_paths(state: AppState) -> (Router, Vec<String>) {
    let pages = generate_route_list(App);
    let shell_options = state.leptos_options.clone();
    let Routes { router, mut paths } = Routes::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::prometheus))
        .route("/ws", get(ws::upgrade))
        .route("/login", post(session::login))
        .route("/logout", post(session::logout))
        .route("/setup", post(session::setup))
        .route("/api/v1/me", get(session::me))
        .merge(users::routes())
        .merge(api::router())
        .merge(alerts::router())
        .merge(dashboards::router())
        .route("/api/v1/export", get(export::export))
        .route("/api/v1/export/estimate", get(export::estimate))
        .route("/api/v1/streams/{name}/records", get(tail::download));
    paths.extend(pages.iter().map(|page| page.path().to_string()));
    let router = router
        .leptos_routes_with_context(&state, pages, page_context, move || {
            shell(shell_options.clone())
        })
        .fallback(assets::asset_or_not_found)
        .layer(CompressionLayer::new())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            session::authorize,
        ))
        .layer(DefaultBodyLimit::max(
            usize::try_from(state.config.max_body_bytes).unwrap_or(usize::MAX),
        ))
        .layer(middleware::from_fn_with_state(state.clone(), guard::check))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .with_state(state);
    (router, paths)
}

/// What every page's render gets besides the app's own context: its CSP (from the render's
/// nonce) and who the request is from.
pub(crate) fn page_context() {
    guard::provide_page_csp();
    session::provide_page_identity();
}

/// Counts every response by route template and status for `/metrics`.
async fn count_requests(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_string());
    let response = next.run(request).await;
    let route = route.unwrap_or_else(|| {
        if response.status().is_success() || response.status().is_redirection() {
            "asset".to_string()
        } else {
            "fallback".to_string()
        }
    });
    state
        .metrics
        .record_http(&route, response.status().as_u16());
    response
}

#[cfg(test)]
mod tests;
