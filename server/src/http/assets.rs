//! Site assets (`/pkg/streamboard.{js,wasm,css}`, `public/`) and the 404 page.
//!
//! The release binary carries the built site (`target/site`) inside itself, so it runs from any
//! directory; `--site-root` serves a directory instead, for development. Anything that is not
//! an asset renders the app's 404 page with status 404.

use super::AppState;
use axum::{
    body::Body,
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use rust_embed::Embed;
use std::path::{Component, Path, PathBuf};

#[derive(Embed)]
#[folder = "$CARGO_MANIFEST_DIR/../target/site"]
#[allow_missing = true]
struct EmbeddedSite;

/// Where the site's files come from.
#[derive(Debug, Clone)]
pub enum SiteAssets {
    /// Built into the binary.
    Embedded,
    /// Read from this directory on each request (`--site-root`).
    Directory(PathBuf),
}

struct Asset {
    bytes: Vec<u8>,
    etag: Option<String>,
}

impl SiteAssets {
    async fn get(&self, path: &str) -> Option<Asset> {
        match self {
            SiteAssets::Embedded => EmbeddedSite::get(path).map(|file| Asset {
                etag: Some(format!("\"{}\"", hex(&file.metadata.sha256_hash()[..12]))),
                bytes: file.data.into_owned(),
            }),
            SiteAssets::Directory(root) => {
                let bytes = tokio::fs::read(root.join(path)).await.ok()?;
                Some(Asset { bytes, etag: None })
            }
        }
    }

    /// Whether the embedded copy holds a built site (false in a binary built before the site).
    pub fn has_embedded_site() -> bool {
        EmbeddedSite::get("pkg/streamboard.js").is_some()
    }
}

/// A request path as a relative file path, or `None` if it tries to leave the site root.
fn relative_path(uri_path: &str) -> Option<String> {
    let trimmed = uri_path.trim_start_matches('/');
    if trimmed.is_empty() {
        return None;
    }
    let safe = Path::new(trimmed)
        .components()
        .all(|component| matches!(component, Component::Normal(_)));
    safe.then(|| trimmed.to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The router's fallback: a site file if there is one, else the app's 404 page.
pub async fn asset_or_not_found(State(state): State<AppState>, request: Request) -> Response {
    if let Some(path) = relative_path(request.uri().path())
        && let Some(asset) = state.assets.get(&path).await
    {
        return asset_response(&path, asset, request.headers());
    }
    let options = state.leptos_options.clone();
    let render = leptos_axum::render_app_to_stream_with_context(super::page_context, move || {
        app::shell(options.clone())
    });
    let mut response = render(request).await;
    *response.status_mut() = StatusCode::NOT_FOUND;
    response
}

fn asset_response(path: &str, asset: Asset, request_headers: &HeaderMap) -> Response {
    let mime = mime_guess::from_path(path).first_or_octet_stream();
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(mime.as_ref()) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    // File names are not content-hashed, so browsers revalidate with the ETag on every load.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Some(etag) = asset
        .etag
        .as_deref()
        .and_then(|e| HeaderValue::from_str(e).ok())
    {
        if request_headers.get(header::IF_NONE_MATCH) == Some(&etag) {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        headers.insert(header::ETAG, etag);
    }
    (headers, Body::from(asset.bytes)).into_response()
}

#[cfg(test)]
mod tests {
    use super::relative_path;

    #[test]
    fn paths_cannot_escape_the_site_root() {
        assert_eq!(
            relative_path("/pkg/streamboard.js").as_deref(),
            Some("pkg/streamboard.js")
        );
        assert_eq!(
            relative_path("/favicon.ico").as_deref(),
            Some("favicon.ico")
        );
        assert_eq!(relative_path("/../etc/passwd"), None);
        assert_eq!(relative_path("/pkg/../../x"), None);
        assert_eq!(relative_path("/"), None);
    }
}
