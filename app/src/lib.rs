//! Streamboard's user interface: the pages, the components they share and the browser's live
//! connection. What travels between browser and server (REST bodies, live messages, closed
//! sets) is the `contract` crate's; this crate only renders it and sends it back.
//!
//! # Layout
//! - [`fetch`]: the browser's calls to `/api/v1`, answering `contract::api` bodies.
//! - [`range`]: the time range a page shows, as kept in its URL.
//! - [`session`]: who the browser is logged in as (`/api/v1/me`), in context.
//! - [`live`]: the browser's WebSocket connection (`contract::protocol`) and its state,
//!   provided as context.
//! - `components`: the pieces pages share (navigation, badge, theme switch, charts, range
//!   picker, form fields).
//! - `pages`: one module per route.
//!
//! The server renders [`shell`] (SSR, feature `ssr`); the `frontend` crate hydrates [`App`] in
//! the browser (feature `hydrate`).
#![recursion_limit = "256"]

use leptos::prelude::*;
use leptos_meta::{Link, MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::{
    Lazy, LazyRoute,
    components::{Route, Router, Routes},
    lazy_route, path,
};

mod components;
pub mod fetch;
pub mod live;
mod pages;
pub mod range;
pub mod session;

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
                <meta name=session::META_NAME content=session::meta_content() />
                <script nonce=leptos::nonce::use_nonce() inner_html=THEME_BOOT_SCRIPT></script>
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
    session::provide_session();

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
                        <Route path=path!("/streams") view={Lazy::<StreamsRoute>::new()} />
                        <Route path=path!("/streams/:name/records") view={Lazy::<RecordsRoute>::new()} />
                        <Route path=path!("/metric/:name") view={Lazy::<MetricRoute>::new()} />
                        <Route path=path!("/metrics/new") view={Lazy::<EditorRoute>::new()} />
                        <Route path=path!("/metrics/:name/edit") view={Lazy::<EditorRoute>::new()} />
                        <Route path=path!("/alerts") view={Lazy::<AlertsRoute>::new()} />
                        <Route path=path!("/reports") view={Lazy::<ReportsRoute>::new()} />
                        <Route path=path!("/dashboards") view={Lazy::<DashboardsRoute>::new()} />
                        <Route path=path!("/dashboards/:id") view={Lazy::<BoardRoute>::new()} />
                        <Route path=path!("/login") view=pages::Login />
                        <Route path=path!("/admin") view={Lazy::<AdminRoute>::new()} />
                    </Routes>
                </ErrorBoundary>
            </main>
        </Router>
    }
}

// Every page but the dashboard is a lazy route: a release build split with `cargo leptos build
// --split` ships each page's code in its own wasm chunk, loaded when the page is first shown
// (and before hydrating it when it is the page first loaded), so the dashboard's initial
// download does not carry the editor, the reports or the alerts forms. Without `--split` a lazy
// route is an ordinary async view.
macro_rules! lazy_page {
    ($route:ident, $page:path) => {
        struct $route;

        #[lazy_route]
        impl LazyRoute for $route {
            fn data() -> Self {
                $route
            }

            fn view(_this: Self) -> AnyView {
                $page().into_any()
            }
        }
    };
}

lazy_page!(StreamsRoute, pages::Streams);
lazy_page!(RecordsRoute, pages::Records);
lazy_page!(MetricRoute, pages::MetricDetail);
lazy_page!(EditorRoute, pages::MetricEditor);
lazy_page!(AlertsRoute, pages::Alerts);
lazy_page!(ReportsRoute, pages::Reports);
lazy_page!(AdminRoute, pages::Admin);
lazy_page!(DashboardsRoute, pages::Dashboards);
lazy_page!(BoardRoute, pages::DashboardBoard);
