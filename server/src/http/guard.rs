//! Defences against hostile browsers and inputs, applied to every request before routing
//! rules and handlers see it:
//!
//! - **Host** ([`check_host`]): a request must name a host the server serves: a loopback name,
//!   an IP address, or one of `--allowed-hosts`. A DNS-rebinding page (an attacker's name
//!   that resolves to this server) is refused with 421.
//! - **Origin** ([`check_origin`]): a mutation (any method but GET, HEAD, OPTIONS) and a
//!   WebSocket upgrade must come from this server's own origin: an `Origin` header naming
//!   another host, or `null`, or a `Sec-Fetch-Site: cross-site` without `Origin`, is refused
//!   with 403. Requests without either header (scripts, curl) pass; they carry no ambient
//!   cookie a victim's browser would add. Together with the `SameSite=Lax` session cookie this
//!   is the CSRF defence; there are no CSRF tokens.
//! - **Size**: a request target longer than [`MAX_URI_BYTES`] is refused with 414; bodies are
//!   limited by `--max-body-bytes` (413, checked against `Content-Length` before reading and
//!   while streaming); a request head over [`super::listener::MAX_HEAD_BYTES`] gets 431 (the
//!   HTTP server buffers at most about that much of it, and at most 100 headers).
//! - **Response headers** ([`security_headers`]): `X-Content-Type-Options: nosniff`,
//!   `X-Frame-Options: DENY`, `Referrer-Policy: same-origin` on everything, and on HTML pages
//!   a `Content-Security-Policy` whose script source is the page's own nonce (leptos puts it
//!   on its hydration scripts), `'self'` and `'wasm-unsafe-eval'`, with
//!   `frame-ancestors 'none'`.

use super::AppState;
use axum::{
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use std::net::IpAddr;

/// Longest request target (path and query) accepted.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// The host part of a `Host` header or an origin's authority: lower case, without the port
/// or a trailing dot; IPv6 literals keep their brackets off.
fn host_name(authority: &str) -> String {
    let name = if let Some(rest) = authority.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        match authority.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => authority,
        }
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// True when the server answers to `host` (the `Host` header's value).
pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let name = host_name(host);
    if name == "localhost" || name.ends_with(".localhost") || name.parse::<IpAddr>().is_ok() {
        return true;
    }
    allowed.iter().any(|a| {
        let a = a.trim();
        a == "*" || host_name(a) == name
    })
}

/// True when a browser request is same-origin, or not from a browser page at all.
pub fn origin_allowed(headers: &HeaderMap) -> bool {
    match headers.get(header::ORIGIN) {
        Some(origin) => {
            let Ok(origin) = origin.to_str() else {
                return false;
            };
            let Some(authority) = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
            else {
                return false; // `null`, file:, extensions
            };
            headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .is_some_and(|host| authority.eq_ignore_ascii_case(host))
        }
        None => headers
            .get("sec-fetch-site")
            .is_none_or(|site| site.as_bytes() != b"cross-site"),
    }
}

fn is_mutation_or_upgrade(request: &Request) -> bool {
    !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) || request.headers().contains_key(header::UPGRADE)
}

fn plain(status: StatusCode, message: &str) -> Response {
    (status, message.to_string()).into_response()
}

/// The middleware: Host, Origin and size checks, then the response headers.
pub async fn check(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(host) = request.headers().get(header::HOST) {
        let ok = host
            .to_str()
            .is_ok_and(|host| host_allowed(host, &state.config.allowed_hosts));
        if !ok {
            tracing::warn!(host = ?host, "request for a host this server does not serve");
            return plain(
                StatusCode::MISDIRECTED_REQUEST,
                "this server does not answer to that host name; add it with --allowed-hosts",
            );
        }
    }
    if is_mutation_or_upgrade(&request) && !origin_allowed(request.headers()) {
        tracing::warn!(origin = ?request.headers().get(header::ORIGIN), "cross-origin request refused");
        return plain(
            StatusCode::FORBIDDEN,
            "cross-origin requests that change something are refused",
        );
    }
    if request
        .uri()
        .path_and_query()
        .is_some_and(|p| p.as_str().len() > MAX_URI_BYTES)
    {
        return plain(StatusCode::URI_TOO_LONG, "the request target is too long");
    }
    // The HTTP server bounds what it buffers of a head; whatever chunks it read it in, a head
    // over the limit is refused the same way.
    let head_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if head_bytes > super::listener::MAX_HEAD_BYTES {
        return plain(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "the request headers are too large",
        );
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > state.config.max_body_bytes) {
        return plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is too large",
        );
    }
    let mut response = next.run(request).await;
    security_headers(response.headers_mut(), state.config.tls_enabled());
    response
}

/// Adds the headers every response carries (see the module documentation).
pub fn security_headers(headers: &mut HeaderMap, tls: bool) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if tls {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html && !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        // A page rendered without a nonce (the 403 page): no script at all.
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; script-src 'none'; object-src 'none'; \
                 frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
            ),
        );
    }
}

/// The Content-Security-Policy of a page whose scripts carry `nonce`.
pub fn page_csp(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
         object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )
}

/// Sets the page's CSP from the nonce leptos generated for this render (called in the
/// rendering context of every page).
pub fn provide_page_csp() {
    use leptos::prelude::use_context;
    if let (Some(nonce), Some(response)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) && let Ok(value) = HeaderValue::from_str(&page_csp(&nonce))
    {
        response.insert_header(header::CONTENT_SECURITY_POLICY, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_loopback_ips_and_allowed_names_pass() {
        let allowed = vec!["dash.example.com".to_string()];
        for ok in [
            "localhost:3000",
            "127.0.0.1:3000",
            "[::1]:3000",
            "10.1.2.3",
            "Dash.Example.com.",
            "app.localhost",
        ] {
            assert!(host_allowed(ok, &allowed), "{ok}");
        }
        for bad in [
            "evil.example",
            "dash.example.com.evil.example:3000",
            "localhost.evil",
        ] {
            assert!(!host_allowed(bad, &allowed), "{bad}");
        }
        assert!(host_allowed("anything", &["*".to_string()]));
    }

    #[test]
    fn origins_must_match_the_host() {
        let mut headers = HeaderMap::new();
        assert!(origin_allowed(&headers), "no Origin: not a browser page");
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:3000"));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:3000"),
        );
        assert!(origin_allowed(&headers));
        for bad in ["http://evil.example", "null", "http://127.0.0.1:3001"] {
            headers.insert(header::ORIGIN, HeaderValue::from_static(bad));
            assert!(!origin_allowed(&headers), "{bad}");
        }
        headers.remove(header::ORIGIN);
        headers.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!origin_allowed(&headers));
    }
}
