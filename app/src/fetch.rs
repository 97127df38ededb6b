//! The browser's calls to the JSON API (`/api/v1`). Pages read through [`get_json`] and write
//! through [`send_json`] from `LocalResource`s and actions, which run only in the browser; on
//! the server (SSR) every call answers [`FetchError::NotInBrowser`] and the page renders its
//! loading state.

use contract::api::ApiErrorBody;
use serde::{Serialize, de::DeserializeOwned};

/// Why an API call produced no body of the expected type.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FetchError {
    /// The server refused the request: its status and `{"error": {field, message}}`.
    #[error("{}", .body.error.message)]
    Api { status: u16, body: ApiErrorBody },
    /// No answer, an unreadable answer, or an error without the API's body.
    #[error("{0}")]
    Transport(String),
    #[error("not available while rendering on the server")]
    NotInBrowser,
}

impl FetchError {
    /// The request field a validation error names, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            FetchError::Api { body, .. } => body.error.field.as_deref(),
            _ => None,
        }
    }
}

/// HTTP method of [`send_json`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Post,
    Put,
    Delete,
}

/// `GET url`, decoding a JSON body.
pub async fn get_json<T: DeserializeOwned>(url: &str) -> Result<T, FetchError> {
    let text = request(None, url, None).await?;
    serde_json::from_str(&text).map_err(|e| FetchError::Transport(e.to_string()))
}

/// `method url` with a JSON body; decodes the JSON answer (`()` for an empty one).
pub async fn send_json<B: Serialize, T: DeserializeOwned>(
    method: Method,
    url: &str,
    body: Option<&B>,
) -> Result<T, FetchError> {
    let body = body
        .map(|b| serde_json::to_string(b).map_err(|e| FetchError::Transport(e.to_string())))
        .transpose()?
        .map(|b| ("application/json", b));
    let text = request(Some(method), url, body).await?;
    let text = if text.is_empty() { "null" } else { &text };
    serde_json::from_str(text).map_err(|e| FetchError::Transport(e.to_string()))
}

/// `POST url` with a text body of `content_type` (a file's text); decodes the JSON answer.
pub async fn post_text<T: DeserializeOwned>(
    url: &str,
    content_type: &'static str,
    body: String,
) -> Result<T, FetchError> {
    let text = request(Some(Method::Post), url, Some((content_type, body))).await?;
    serde_json::from_str(&text).map_err(|e| FetchError::Transport(e.to_string()))
}

/// Turns a non-2xx answer into its [`FetchError`].
fn refused(status: u16, text: &str) -> FetchError {
    match serde_json::from_str::<ApiErrorBody>(text) {
        Ok(body) => FetchError::Api { status, body },
        Err(_) => FetchError::Transport(format!("HTTP {status}")),
    }
}

#[cfg(feature = "hydrate")]
async fn request(
    method: Option<Method>,
    url: &str,
    body: Option<(&'static str, String)>,
) -> Result<String, FetchError> {
    use gloo_net::http::Request;
    let builder = match method {
        None => Request::get(url),
        Some(Method::Post) => Request::post(url),
        Some(Method::Put) => Request::put(url),
        Some(Method::Delete) => Request::delete(url),
    };
    let transport = |e: gloo_net::Error| FetchError::Transport(e.to_string());
    let response = match body {
        Some((content_type, body)) => {
            builder
                .header("content-type", content_type)
                .body(body)
                .map_err(transport)?
                .send()
                .await
        }
        None => builder.send().await,
    }
    .map_err(transport)?;
    let status = response.status();
    let text = response.text().await.map_err(transport)?;
    if (200..300).contains(&status) {
        Ok(text)
    } else {
        Err(refused(status, &text))
    }
}

#[cfg(not(feature = "hydrate"))]
async fn request(
    _method: Option<Method>,
    _url: &str,
    _body: Option<(&'static str, String)>,
) -> Result<String, FetchError> {
    let _ = refused;
    Err(FetchError::NotInBrowser)
}

/// Minimal percent-encoding for a query parameter value.
pub fn encode_query(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Wall-clock now in epoch milliseconds (the browser's clock; the server's on SSR).
pub fn now_ms() -> i64 {
    #[cfg(feature = "hydrate")]
    {
        js_sys::Date::now() as i64
    }
    #[cfg(not(feature = "hydrate"))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }
}

/// Percent-encodes a query component (everything but RFC 3986 unreserved characters).
pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            encode_query("builtin:clicks:records"),
            "builtin%3Aclicks%3Arecords"
        );
        assert_eq!(encode_query("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn refusals_keep_the_field() {
        let e = refused(422, r#"{"error":{"field":"value","message":"bad path"}}"#);
        assert_eq!(e.field(), Some("value"));
        assert_eq!(e.to_string(), "bad path");
        assert_eq!(
            refused(502, "<html>"),
            FetchError::Transport("HTTP 502".into())
        );
    }
}
