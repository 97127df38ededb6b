//! Who may do what: every route the router registers, walked with each role and anonymously
//! (a route without an access rule fails here); API tokens; login throttling; session expiry;
//! and the browser defences (cross-origin mutations and WebSockets, forged Host names, body
//! limits). Against the real router and a real SQLite file; the WebSocket and size checks
//! against the real server on a loopback port.

mod support;

use axum::{
    body::{Body, to_bytes},
    http::{Method, Request, StatusCode, header},
};
use contract::auth::Role;
use std::{sync::Arc, time::Instant};
use streamboard::{
    Server,
    auth::AuthMode,
    config::{Command, Config, FileConfig, ServeConfig},
    http::{
        AppState, ServerSettings,
        access::{self, Access},
        router_and_paths,
    },
    storage::Database,
    telemetry::ProcessMetrics,
};
use support::{WsOptions, ws_upgrade};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower::ServiceExt;

const PASSWORD: &str = "a long enough password";

async fn state(dir: &std::path::Path, tune: impl FnOnce(&mut ServerSettings)) -> AppState {
    let mut config = ServerSettings::for_data_dir(dir);
    config.auth = Some(AuthMode::Password);
    tune(&mut config);
    AppState::new(
        Arc::new(config),
        "127.0.0.1:0".parse().unwrap(),
        Database::open(dir).await.unwrap(),
        Arc::new(ProcessMetrics::new(Instant::now())),
        CancellationToken::new(),
        TaskTracker::new(),
    )
}

struct Answer {
    status: StatusCode,
    location: Option<String>,
    set_cookie: Option<String>,
    body: String,
}

async fn send(
    router: &axum::Router,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "localhost:3000");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let text = |name| {
        response
            .headers()
            .get(name)
            .map(|v: &header::HeaderValue| v.to_str().unwrap().to_string())
    };
    let location = text(header::LOCATION);
    let set_cookie = text(header::SET_COOKIE);
    let status = response.status();
    let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    Answer {
        status,
        location,
        set_cookie,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// Logs in through `POST /login` and returns the `Cookie` header value.
async fn login(router: &axum::Router, name: &str, password: &str) -> Result<String, Answer> {
    let form = format!(
        "name={name}&password={}&next=%2F",
        password.replace(' ', "+")
    );
    let answer = send(
        router,
        Method::POST,
        "/login",
        &[(
            header::CONTENT_TYPE.as_str(),
            "application/x-www-form-urlencoded",
        )],
        &form,
    )
    .await;
    match answer.set_cookie.as_deref() {
        Some(cookie) if answer.status == StatusCode::SEE_OTHER => {
            assert!(
                cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
                "{cookie}"
            );
            Ok(cookie.split(';').next().unwrap().to_string())
        }
        _ => Err(answer),
    }
}

fn concrete(path: &str) -> String {
    path.split('/')
        .map(|part| match part {
            "{id}" => "999999",
            p if p.starts_with('{') => "no-such-thing",
            p => p,
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_route_is_walked_with_each_role_and_anonymously() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path(), |_| {}).await;
    for role in Role::ALL {
        state
            .auth
            .create_user(role.as_str(), role, PASSWORD)
            .await
            .unwrap();
    }
    let (router, paths) = router_and_paths(state);
    let mut identities: Vec<(Option<Role>, Option<String>)> = vec![(None, None)];
    for role in Role::ALL {
        let cookie = login(&router, role.as_str(), PASSWORD).await.ok().unwrap();
        identities.push((Some(role), Some(cookie)));
    }
    assert!(paths.len() >= 30, "the router lists its paths: {paths:?}");
    let mut checked = 0;
    for path in &paths {
        assert!(
            access::rule(path, &Method::GET).is_some(),
            "route {path} has no access rule: add one to server/src/http/access.rs"
        );
        if path == "/logout" {
            continue; // would end the walk's own sessions; tested below
        }
        let uri = concrete(path);
        for method in [Method::GET, Method::POST, Method::PUT, Method::DELETE] {
            let rule = access::rule(path, &method).unwrap();
            for (role, cookie) in &identities {
                let mut headers = vec![(header::CONTENT_TYPE.as_str(), "application/json")];
                if let Some(cookie) = cookie {
                    headers.push((header::COOKIE.as_str(), cookie.as_str()));
                }
                let answer = send(&router, method.clone(), &uri, &headers, "{}").await;
                let to_login = answer
                    .location
                    .as_deref()
                    .is_some_and(|l| l.starts_with("/login?next="));
                let what = format!(
                    "{method} {uri} as {role:?}: {} {}",
                    answer.status, answer.body
                );
                if rule.allows(*role) {
                    // `/api/v1/me` is open to all and answers 401 to nobody in particular.
                    let unauthorized_ok = path == "/api/v1/me" && role.is_none();
                    assert!(
                        answer.status != StatusCode::FORBIDDEN
                            && (answer.status != StatusCode::UNAUTHORIZED || unauthorized_ok)
                            && !to_login,
                        "allowed but refused: {what}"
                    );
                } else if role.is_none() {
                    let page =
                        !uri.starts_with("/api/") && !matches!(uri.as_str(), "/ws" | "/metrics");
                    if page && rule != Access::Nobody {
                        assert!(
                            to_login,
                            "an anonymous page request goes to the login form: {what}"
                        );
                    } else {
                        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{what}");
                    }
                } else {
                    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{what}");
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 400, "{checked} requests checked");
}

#[tokio::test]
async fn tokens_act_with_their_role_and_stop_at_once_when_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path(), |_| {}).await;
    state
        .auth
        .create_user("root", Role::Admin, PASSWORD)
        .await
        .unwrap();
    let (router, _) = router_and_paths(state);
    let admin = login(&router, "root", PASSWORD).await.ok().unwrap();
    let json = [
        (header::CONTENT_TYPE.as_str(), "application/json"),
        (header::COOKIE.as_str(), admin.as_str()),
    ];
    let created = send(
        &router,
        Method::POST,
        "/api/v1/tokens",
        &json,
        r#"{"name":"ci","role":"editor"}"#,
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let created: contract::auth::CreatedToken = serde_json::from_str(&created.body).unwrap();
    assert!(created.secret.starts_with("sbt_"));
    let listed = send(&router, Method::GET, "/api/v1/tokens", &json, "").await;
    assert!(listed.body.contains("\"ci\""));
    assert!(
        !listed.body.contains(&created.secret),
        "the list never shows a secret"
    );

    let bearer = format!("Bearer {}", created.secret);
    let with_token = [
        (header::AUTHORIZATION.as_str(), bearer.as_str()),
        (header::CONTENT_TYPE.as_str(), "application/json"),
    ];
    let read = send(&router, Method::GET, "/api/v1/metrics", &with_token, "").await;
    assert_eq!(read.status, StatusCode::OK);
    let me = send(&router, Method::GET, "/api/v1/me", &with_token, "").await;
    assert!(me.body.contains("\"role\":\"editor\""), "{}", me.body);
    // An editor token may not manage tokens.
    let refused = send(&router, Method::GET, "/api/v1/tokens", &with_token, "").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let revoke = format!("/api/v1/tokens/{}", created.token.id);
    let revoked = send(&router, Method::DELETE, &revoke, &json, "").await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    let after = send(&router, Method::GET, "/api/v1/metrics", &with_token, "").await;
    assert_eq!(
        after.status,
        StatusCode::UNAUTHORIZED,
        "revoked: refused at once"
    );
    let forged = send(
        &router,
        Method::GET,
        "/api/v1/metrics",
        &[(header::AUTHORIZATION.as_str(), "Bearer sbt_0000")],
        "",
    )
    .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn brute_force_logins_are_throttled_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path(), |c| {
        c.login_failures_per_user = 3;
        c.login_failures_per_address = 6;
    })
    .await;
    for name in ["ada", "bob"] {
        state
            .auth
            .create_user(name, Role::Viewer, PASSWORD)
            .await
            .unwrap();
    }
    let (router, _) = router_and_paths(state);
    for _ in 0..3 {
        let refused = login(&router, "ada", "wrong password").await.err().unwrap();
        assert!(refused.location.unwrap().starts_with("/login?error=wrong"));
    }
    // The right password no longer helps while the name is locked.
    let locked = login(&router, "ada", PASSWORD).await.err().unwrap();
    let location = locked.location.unwrap();
    assert!(
        location.starts_with("/login?error=throttled&retry="),
        "{location}"
    );
    let retry: u64 = location
        .split("retry=")
        .nth(1)
        .and_then(|r| r.split('&').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!((800..=900).contains(&retry), "about 15 minutes: {retry}");
    // Another name from the same address still works until the address's limit.
    assert!(login(&router, "bob", PASSWORD).await.is_ok());
    for _ in 0..3 {
        let _ = login(&router, "carol", "wrong password").await;
    }
    let locked = login(&router, "bob", PASSWORD).await.err().unwrap();
    assert!(locked.location.unwrap().contains("error=throttled"));
}

#[tokio::test]
async fn sessions_expire_and_logout_ends_them() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path(), |c| {
        c.session_ttl = std::time::Duration::from_millis(1500)
    })
    .await;
    state
        .auth
        .create_user("ada", Role::Viewer, PASSWORD)
        .await
        .unwrap();
    let (router, _) = router_and_paths(state);
    let cookie = login(&router, "ada", PASSWORD).await.ok().unwrap();
    let with_cookie = [(header::COOKIE.as_str(), cookie.as_str())];
    let me = send(&router, Method::GET, "/api/v1/me", &with_cookie, "").await;
    assert_eq!(me.status, StatusCode::OK);
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let page = send(&router, Method::GET, "/alerts", &with_cookie, "").await;
        if page.location.as_deref() == Some("/login?next=/alerts") {
            break;
        }
        assert_eq!(page.status, StatusCode::OK);
        assert!(Instant::now() < deadline, "the session never expired");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let cookie = login(&router, "ada", PASSWORD).await.ok().unwrap();
    let with_cookie = [(header::COOKIE.as_str(), cookie.as_str())];
    let out = send(&router, Method::POST, "/logout", &with_cookie, "").await;
    assert_eq!(out.location.as_deref(), Some("/login"));
    assert!(out.set_cookie.unwrap().contains("Max-Age=0"));
    let me = send(&router, Method::GET, "/api/v1/me", &with_cookie, "").await;
    assert_eq!(
        me.status,
        StatusCode::UNAUTHORIZED,
        "the old cookie is dead"
    );
}

#[tokio::test]
async fn cross_origin_mutations_and_forged_hosts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path(), |c| c.auth = Some(AuthMode::None)).await;
    let (router, _) = router_and_paths(state);
    let body = r#"{"name":"x","stream":"s"}"#;
    let json = (header::CONTENT_TYPE.as_str(), "application/json");
    let cross = send(
        &router,
        Method::POST,
        "/api/v1/metrics",
        &[json, (header::ORIGIN.as_str(), "http://evil.example")],
        body,
    )
    .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN, "{}", cross.body);
    let no_origin_cross_site = send(
        &router,
        Method::DELETE,
        "/api/v1/metrics/x",
        &[("sec-fetch-site", "cross-site")],
        "",
    )
    .await;
    assert_eq!(no_origin_cross_site.status, StatusCode::FORBIDDEN);
    let same = send(
        &router,
        Method::POST,
        "/api/v1/metrics",
        &[json, (header::ORIGIN.as_str(), "http://localhost:3000")],
        body,
    )
    .await;
    assert_eq!(same.status, StatusCode::CREATED, "{}", same.body);

    // DNS rebinding: a page on evil.example whose name now resolves to this server.
    let response = router
        .clone()
        .oneshot(
            Request::get("/api/v1/metrics")
                .header(header::HOST, "evil.example:3000")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::MISDIRECTED_REQUEST);

    // Pages carry the security headers; the CSP lets only the page's own nonce run inline.
    let page = router
        .clone()
        .oneshot(
            Request::get("/")
                .header(header::HOST, "127.0.0.1:3000")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let headers = page.headers().clone();
    let html =
        String::from_utf8(to_bytes(page.into_body(), 1 << 22).await.unwrap().to_vec()).unwrap();
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|n| n.split('\'').next())
        .unwrap();
    assert!(
        html.contains(&format!("nonce=\"{nonce}\"")),
        "scripts carry the nonce"
    );
    let scripts = html.matches("<script").count();
    let with_nonce = html.matches(&format!("nonce=\"{nonce}\"")).count();
    assert!(
        with_nonce >= scripts,
        "every script has the nonce: {scripts} scripts, {with_nonce} nonces"
    );
}

#[tokio::test]
async fn websockets_need_a_session_and_the_same_origin() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServeConfig::for_data_dir(dir.path());
    config.server.auth = Some(AuthMode::Password);
    let server = Server::start(config, CancellationToken::new())
        .await
        .unwrap();
    let addr = server.local_addr();
    let anonymous = ws_upgrade(addr, WsOptions::default()).await.unwrap_err();
    assert!(anonymous.to_string().contains("401"), "{anonymous}");
    server.shutdown();
    server.wait().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let config = ServeConfig::for_data_dir(dir.path());
    let server = Server::start(config, CancellationToken::new())
        .await
        .unwrap();
    let addr = server.local_addr();
    let cross = ws_upgrade(
        addr,
        WsOptions {
            origin: Some("http://evil.example"),
            ..WsOptions::default()
        },
    )
    .await
    .unwrap_err();
    assert!(cross.to_string().contains("403"), "{cross}");
    let same = format!("http://{addr}");
    ws_upgrade(
        addr,
        WsOptions {
            origin: Some(&same),
            ..WsOptions::default()
        },
    )
    .await
    .expect("a same-origin WebSocket is accepted");
    server.shutdown();
    server.wait().await.unwrap();
}

#[test]
fn a_network_listen_without_auth_is_refused_with_how_to_add_a_user() {
    let error = Config::resolve(
        ["streamboard", "serve", "--listen", "0.0.0.0:3000"],
        FileConfig::default(),
    )
    .unwrap_err();
    assert!(
        error.contains("streamboard user add NAME --role admin"),
        "{error}"
    );
    assert!(error.contains("--auth none"), "{error}");
    for args in [
        [
            "streamboard",
            "serve",
            "--listen",
            "0.0.0.0:3000",
            "--auth",
            "none",
        ],
        [
            "streamboard",
            "serve",
            "--listen",
            "0.0.0.0:3000",
            "--auth",
            "password",
        ],
    ] {
        assert!(Config::resolve(args, FileConfig::default()).is_ok());
    }
    let loopback = Config::resolve(["streamboard", "serve"], FileConfig::default()).unwrap();
    match loopback.command {
        Command::Serve(serve) => assert_eq!(serve.server.auth_mode(), AuthMode::None),
        other => panic!("{other:?}"),
    }
}
