//! Authentication at the edge: the middleware that finds who a request is from (session
//! cookie, bearer token or trusted proxy header) and checks the route's rule
//! ([`super::access`]), and the login, logout and first-run setup forms.
//!
//! The session cookie is `HttpOnly`, `SameSite=Lax` and `Secure` when the request came over
//! TLS (directly, or through a proxy that says `X-Forwarded-Proto: https`). CSRF is handled by
//! SameSite=Lax plus the `Origin` check on every mutation ([`super::guard`]); there are no CSRF
//! tokens. Refusals: an anonymous page request is redirected to `/login?next=...`; an API
//! request gets 401 (no identity) or 403 (a role too low) with the API's error body.

use super::{AppState, access, api::ApiError};
use crate::auth::{Identity, LoginError, NewSession, Via};
use axum::{
    Extension, Form, Json,
    extract::{ConnectInfo, MatchedPath, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
};
use contract::{
    api::{ApiErrorBody, ApiErrorDetail},
    auth::Me,
};
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "streamboard_session";

/// The value of cookie `name` in the request, if any.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Who the request is from, if anyone.
async fn identify(state: &AppState, headers: &HeaderMap) -> Result<Option<Identity>, ApiError> {
    let auth = &state.auth;
    if auth.mode() == crate::auth::AuthMode::None {
        return Ok(Some(Identity::open()));
    }
    if let Some(token) = bearer(headers) {
        return Ok(auth.token(token).await?);
    }
    if auth.mode() == crate::auth::AuthMode::ProxyHeader {
        let named = headers
            .get(state.config.auth_proxy_header.as_str())
            .and_then(|v| v.to_str().ok());
        return Ok(match named {
            Some(name) => auth.proxy_user(name).await?,
            None => None,
        });
    }
    match cookie(headers, SESSION_COOKIE) {
        Some(secret) => Ok(auth.session(secret).await?),
        None => Ok(None),
    }
}

/// True for requests a browser makes for a page (redirect to the login form rather than 401).
fn wants_page(request: &Request) -> bool {
    let path = request.uri().path();
    !(path.starts_with("/api/") || path == "/ws" || path == "/metrics" || path == "/healthz")
}

fn refusal(status: StatusCode, message: String) -> Response {
    let body = ApiErrorBody {
        error: ApiErrorDetail {
            field: None,
            message,
        },
    };
    let mut response = (status, Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    response
}

/// Where to go after logging in: a path on this server only (never another site).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(next)
            if next.starts_with('/')
                && !next.starts_with("//")
                && !next.starts_with("/\\")
                && !next.starts_with("/login")
                && !next.chars().any(char::is_control) =>
        {
            next.to_string()
        }
        _ => "/".to_string(),
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The middleware: identifies the request and applies its route's rule. The identity travels
/// on as a request extension for handlers (`/api/v1/me`, token creation, the WebSocket).
pub async fn authorize(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let access = match &path {
        Some(path) => access::rule(path, request.method()),
        None => Some(access::FALLBACK),
    };
    let Some(access) = access else {
        tracing::error!(path = ?path, "route has no access rule; refused");
        return refusal(
            StatusCode::FORBIDDEN,
            "this route has no access rule".into(),
        );
    };
    let identity = match identify(&state, request.headers()).await {
        Ok(identity) => identity,
        Err(error) => return error.into_response(),
    };
    if !access.allows(identity.as_ref().map(|i| i.role)) {
        let needed = match access {
            access::Access::At(role) => format!("the {role} role"),
            _ => "a method this route does not offer".to_string(),
        };
        return match &identity {
            None if wants_page(&request) && access != access::Access::Nobody => {
                let target = request
                    .uri()
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                Redirect::to(&format!("/login?next={}", percent_encode(target))).into_response()
            }
            None => refusal(
                StatusCode::UNAUTHORIZED,
                "log in, or send an API token as `Authorization: Bearer <token>`".into(),
            ),
            Some(identity) if wants_page(&request) => (
                StatusCode::FORBIDDEN,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                format!(
                    "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Forbidden · Streamboard</title></head>\
                     <body><h1>Forbidden</h1><p>This page needs {needed}; you are signed in as a {}.</p>\
                     <p><a href=\"/\">Back to the dashboard</a></p></body></html>",
                    identity.role
                ),
            )
                .into_response(),
            Some(identity) => refusal(
                StatusCode::FORBIDDEN,
                format!("this needs {needed}; this identity has the {} role", identity.role),
            ),
        };
    }
    if let Some(identity) = identity {
        request.extensions_mut().insert(identity);
    }
    next.run(request).await
}

fn me_of(identity: Identity, mode: &str) -> Me {
    Me {
        name: identity.name,
        role: identity.role,
        auth: mode.to_string(),
        session: identity.via == Via::Session,
    }
}

/// Gives a page's render who the request is from (the app writes it into the page for
/// hydration; see `app::session`). Called in the rendering context of every page.
pub fn provide_page_identity() {
    use leptos::prelude::{provide_context, use_context};
    let me = use_context::<axum::http::request::Parts>().and_then(|parts| {
        let identity = parts.extensions.get::<Identity>()?.clone();
        let mode = match identity.via {
            Via::Open => "none",
            Via::Session | Via::Token => "password",
            Via::Proxy => "proxy-header",
        };
        Some(me_of(identity, mode))
    });
    provide_context(app::session::ServerMe(me));
}

/// `GET /api/v1/me`: who this is (401 when nobody).
pub async fn me(State(state): State<AppState>, identity: Option<Extension<Identity>>) -> Response {
    match identity {
        Some(Extension(identity)) => {
            Json(me_of(identity, state.auth.mode().as_str())).into_response()
        }
        None => refusal(StatusCode::UNAUTHORIZED, "not logged in".into()),
    }
}

fn secure(state: &AppState, headers: &HeaderMap) -> bool {
    state.config.tls_enabled()
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn session_cookie(value: &str, max_age_s: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_s}{secure}"
    ))
    .expect("cookie text is ASCII without control characters")
}

fn logged_in(state: &AppState, headers: &HeaderMap, session: NewSession, next: &str) -> Response {
    let mut response = Redirect::to(next).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(
            &session.secret,
            session.max_age.as_secs(),
            secure(state, headers),
        ),
    );
    response
}

/// The login form's fields.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    name: String,
    password: String,
    next: Option<String>,
}

fn client_address(request_addr: Option<Extension<ConnectInfo<SocketAddr>>>) -> IpAddr {
    request_addr
        .map(|Extension(ConnectInfo(addr))| addr.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// Where the login form shows a refusal: `/login?error=CODE[&retry=S]&next=...`.
fn back_to_login(error: &LoginError, next: &str, extra: &str) -> Response {
    let code = match error {
        LoginError::Wrong => "wrong".to_string(),
        LoginError::Throttled(t) => format!("throttled&retry={}", (t.retry_after_ms + 999) / 1000),
        LoginError::SetupUsed => "setup-used".to_string(),
        LoginError::Invalid { field, .. } => format!("invalid-{field}"),
        LoginError::Storage(_) | LoginError::Busy => "unavailable".to_string(),
    };
    Redirect::to(&format!(
        "/login?error={code}&next={}{extra}",
        percent_encode(next)
    ))
    .into_response()
}

/// `POST /login` (form): checks the name and password; on success sets the session cookie
/// and redirects to `next`, otherwise back to the form with the reason.
pub async fn login(
    State(state): State<AppState>,
    address: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    if state.auth.mode() != crate::auth::AuthMode::Password {
        return Redirect::to(&next).into_response();
    }
    let address = client_address(address);
    match state.auth.login(&form.name, &form.password, address).await {
        Ok(session) => logged_in(&state, &headers, session, &next),
        Err(error) => {
            if let LoginError::Storage(e) = &error {
                tracing::error!(%e, "login failed on storage");
            }
            back_to_login(&error, &next, "")
        }
    }
}

/// `POST /logout`: ends the session (its row is deleted, so the cookie is dead even if a copy
/// was kept) and clears the cookie.
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(secret) = cookie(&headers, SESSION_COOKIE)
        && let Err(error) = state.auth.logout(secret).await
    {
        return ApiError::from(error).into_response();
    }
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie("", 0, secure(&state, &headers)),
    );
    response
}

/// The setup form's fields (`/login?setup=SECRET` shows it).
#[derive(Debug, Deserialize)]
pub struct SetupForm {
    setup: String,
    name: String,
    password: String,
}

/// `POST /setup`: with the one-time secret from the log, creates the first admin and logs
/// them in.
pub async fn setup(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SetupForm>,
) -> Response {
    match state
        .auth
        .complete_setup(&form.setup, &form.name, &form.password)
        .await
    {
        Ok(session) => {
            tracing::info!(user = %form.name.trim(), "first admin created through the setup link");
            logged_in(&state, &headers, session, "/admin")
        }
        Err(error) => {
            let extra = if matches!(error, LoginError::Invalid { .. }) {
                format!("&setup={}", percent_encode(&form.setup))
            } else {
                String::new()
            };
            back_to_login(&error, "/", &extra)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_server() {
        assert_eq!(safe_next(Some("/alerts?x=1")), "/alerts?x=1");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "/login",
            "x",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn cookies_and_bearers_are_read() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; streamboard_session=abc; b=2"),
        );
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer sbt_x"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(bearer(&headers), Some("sbt_x"));
        let text = session_cookie("v", 60, true);
        assert_eq!(
            text,
            "streamboard_session=v; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
        );
    }
}
