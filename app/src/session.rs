//! Who the browser is logged in as, provided as context so the navigation can show the user
//! and the logout button and pages can hide controls a role cannot use (the server refuses
//! them anyway).
//!
//! The server knows the identity when it renders a page: it provides [`ServerMe`] to the
//! render, [`shell`](crate::shell) writes it into a `<meta name="streamboard-me">` tag, and the
//! browser reads that tag before hydrating, so the server's HTML and the hydrated page always
//! agree (no request, no flash, no hydration mismatch). `/api/v1/me` answers the same for
//! scripts.

use contract::auth::{Me, Role};
use leptos::prelude::*;

/// The meta tag's name.
pub const META_NAME: &str = "streamboard-me";

/// The identity of the request being rendered, provided by the server.
#[derive(Debug, Clone, Default)]
pub struct ServerMe(pub Option<Me>);

/// The identity, in context.
#[derive(Clone, Copy)]
pub struct SessionInfo(Signal<Option<Me>>);

/// The identity as the meta tag carries it (JSON), on the server.
pub fn meta_content() -> String {
    use_context::<ServerMe>()
        .and_then(|me| me.0)
        .and_then(|me| serde_json::to_string(&me).ok())
        .unwrap_or_default()
}

#[cfg(feature = "hydrate")]
fn read_identity() -> Option<Me> {
    let document = web_sys::window()?.document()?;
    let meta = document
        .query_selector(&format!("meta[name=\"{META_NAME}\"]"))
        .ok()??;
    serde_json::from_str(&meta.get_attribute("content")?).ok()
}

#[cfg(not(feature = "hydrate"))]
fn read_identity() -> Option<Me> {
    use_context::<ServerMe>().and_then(|me| me.0)
}

/// Provides the identity: the server's on the server, the meta tag's in the browser.
pub fn provide_session() {
    provide_context(SessionInfo(Signal::stored(read_identity())));
}

/// Who this is (`None`: nobody logged in).
pub fn use_me() -> Signal<Option<Me>> {
    use_context::<SessionInfo>()
        .map(|SessionInfo(me)| me)
        .unwrap_or_else(|| Signal::stored(None))
}

/// True when the user has at least `role`.
pub fn can(role: Role) -> Signal<bool> {
    let me = use_me();
    Signal::derive(move || me.with(|m| m.as_ref().is_some_and(|m| m.role >= role)))
}
