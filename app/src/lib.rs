//! Streamboard's user interface and the contract between browser and server.
//!
//! # Layout
//! - [`protocol`]: wire types shared with the server (live messages).
//! - [`api`]: REST API bodies (`/api/v1`).
//! - [`fetch`]: the browser's calls to `/api/v1`.
//! - [`range`]: the time range a page shows, as kept in its URL.
//! - [`live`]: the browser's WebSocket connection and its state, provided as context.
//! - `components`: the shell pieces every page shares (navigation, badge, theme switch).
//! - `pages`: one file per route.
//!
//! The server renders [`shell`] (SSR, feature `ssr`); the `frontend` crate hydrates [`App`] in
//! the browser (feature `hydrate`).
#![recursion_limit = "256"]

use leptos::prelude::*;
use leptos_meta::{Link, MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    components::{Route, Router, Routes},
    path,
};

pub mod api;
mod components;
pub mod fetch;
pub mod live;
mod pages;
pub mod protocol;
pub mod range;
pub mod units;

/// Runs before first paint so a dark-mode user never sees a white flash: the stored choice,
/// else the system preference.
const THEME_BOOT_SCRIPT: &str = "(function(){try{var t=localStorage.getItem('streamboard-theme');\
if(t==='dark'||(!t&&window.matchMedia('(prefers-color-scheme: dark)').matches))\
{document.documentElement.classList.add('dark');}}catch(e){}})();";

/// The HTML document the server renders around [`App`].
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light dark" />
                <script inner_html=THEME_BOOT_SCRIPT></script>
                <AutoReload options=options.clone() />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body class="min-h-screen bg-slate-50 text-slate-900 antialiased dark:bg-slate-950 dark:text-slate-100">
                <App />
            </body>
        </html>
    }
}

/// The application: shell layout, live connection and routes.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    live::provide_live_connection();

    view! {
        <Stylesheet id="leptos" href="/pkg/streamboard.css" />
        <Link rel="icon" href="/favicon.ico" />
        <Title formatter=|page: String| format!("{page} · Streamboard") />
        <Router>
            <components::TopNav />
            <components::Toasts />
            <main class="mx-auto w-full max-w-screen-2xl px-4 py-6 sm:px-6">
                <ErrorBoundary fallback=|errors| {
                    view! { <pages::ErrorPanel errors /> }
                }>
                    <Routes fallback=pages::NotFound>
                        <Route path=path!("") view=pages::Dashboard />
                        <Route path=path!("/streams") view=pages::Streams />
                        <Route path=path!("/metric/:name") view=pages::MetricDetail />
                        <Route path=path!("/metrics/new") view=pages::MetricEditor />
                        <Route path=path!("/metrics/:name/edit") view=pages::MetricEditor />
                        <Route path=path!("/alerts") view=pages::Alerts />
                        <Route path=path!("/reports") view=pages::Reports />
                    </Routes>
                </ErrorBoundary>
            </main>
        </Router>
    }
}
