//! Router-level tests through `oneshot`, against a real SQLite file.

use super::*;
use axum::{
    body::{Body, to_bytes},
    http::{Request as HttpRequest, StatusCode},
};
use std::time::Instant;
use tower::ServiceExt;

async fn state(dir: &std::path::Path) -> AppState {
    let config = ServerSettings::for_data_dir(dir);
    let database = Database::open(dir).await.unwrap();
    AppState::new(
        Arc::new(config),
        "127.0.0.1:0".parse().unwrap(),
        database,
        Arc::new(ProcessMetrics::new(Instant::now())),
        CancellationToken::new(),
        TaskTracker::new(),
    )
}

async fn get(router: &Router, uri: &str) -> (StatusCode, String, axum::http::HeaderMap) {
    let response = router
        .clone()
        .oneshot(HttpRequest::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, String::from_utf8_lossy(&body).into_owned(), headers)
}

#[tokio::test]
async fn healthz_reports_version_and_database() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path()).await;
    let router = router(state.clone());
    let (status, body, headers) = get(&router, "/healthz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers[axum::http::header::CONTENT_TYPE],
        "application/json"
    );
    let health: contract::protocol::Health = serde_json::from_str(&body).unwrap();
    assert_eq!(health.status, "ok");
    assert!(health.database_ok);
    assert_eq!(health.version, env!("CARGO_PKG_VERSION"));

    // A closed database makes the server degraded, and says so.
    state.database.close().await;
    let (status, body, _) = get(&router, "/healthz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let health: contract::protocol::Health = serde_json::from_str(&body).unwrap();
    assert_eq!(health.status, "degraded");
    assert!(!health.database_ok);
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let dir = tempfile::tempdir().unwrap();
    let router = router(state(dir.path()).await);
    get(&router, "/healthz").await;
    get(&router, "/healthz").await;
    get(&router, "/no/such/page").await;
    let (status, body, headers) = get(&router, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[axum::http::header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    assert!(body.contains(&format!(
        "streamboard_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    )));
    assert!(body.contains("# TYPE streamboard_uptime_seconds gauge"));
    assert!(
        body.contains("streamboard_http_requests_total{route=\"/healthz\",status=\"200\"} 2"),
        "{body}"
    );
    assert!(
        body.contains("streamboard_http_requests_total{route=\"fallback\",status=\"404\"} 1"),
        "{body}"
    );
    assert!(body.contains("streamboard_websocket_connections 0"));
}

#[tokio::test]
async fn pages_render_on_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let router = router(state(dir.path()).await);
    for (path, heading) in [
        ("/", "Dashboard"),
        ("/streams", "Streams"),
        ("/alerts", "Alerts"),
        ("/reports", "Reports"),
    ] {
        let (status, body, _) = get(&router, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(body.contains(&format!(">{heading}</h1>")), "{path}: {body}");
        assert!(
            body.contains("/pkg/streamboard.js"),
            "hydration script on {path}"
        );
        assert!(
            body.contains("/pkg/streamboard.css"),
            "stylesheet on {path}"
        );
        assert!(
            body.contains("data-state=\"connecting\""),
            "badge on {path}"
        );
    }
}

#[tokio::test]
async fn unknown_paths_get_the_404_page() {
    let dir = tempfile::tempdir().unwrap();
    let router = router(state(dir.path()).await);
    let (status, body, _) = get(&router, "/definitely/not/here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("Page not found"), "{body}");
    let (status, _, _) = get(&router, "/../Cargo.toml").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn site_root_override_serves_files_with_their_type() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir_all(site.join("pkg")).unwrap();
    std::fs::write(site.join("pkg/streamboard.css"), "body{}").unwrap();
    let mut config = ServerSettings::for_data_dir(dir.path());
    config.site_root = Some(site);
    let database = Database::open(dir.path()).await.unwrap();
    let state = AppState::new(
        Arc::new(config),
        "127.0.0.1:0".parse().unwrap(),
        database,
        Arc::new(ProcessMetrics::new(Instant::now())),
        CancellationToken::new(),
        TaskTracker::new(),
    );
    let router = router(state);
    let (status, body, headers) = get(&router, "/pkg/streamboard.css").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "body{}");
    assert_eq!(headers[axum::http::header::CONTENT_TYPE], "text/css");
}
