//! Pieces pages share: the top navigation with the alert and connection badges and the theme
//! switch, the toasts, charts (the dashboards' panel charts in `plot`), the range picker and
//! form fields.

pub mod alerts;
mod badge;
pub mod chart;
pub mod form;
pub mod plot;
pub mod range;
mod theme;

pub use alerts::{AlertBadge, Toasts};
pub use badge::ConnectionBadge;
pub use theme::ThemeToggle;

use crate::session::use_me;
use contract::auth::Role;
use leptos::prelude::*;
use leptos_router::components::A;

/// The navigation bar: product name, one link per page, connection badge, theme switch, and
/// who is logged in with the logout button (a form posted to `/logout`).
#[component]
pub fn TopNav() -> impl IntoView {
    let link = "rounded-md px-3 py-2 text-sm font-medium text-slate-600 hover:bg-slate-200 \
                hover:text-slate-900 aria-[current=page]:bg-slate-900 aria-[current=page]:text-white \
                dark:text-slate-300 dark:hover:bg-slate-800 dark:hover:text-white \
                dark:aria-[current=page]:bg-slate-100 dark:aria-[current=page]:text-slate-900";
    let me = use_me();
    let admin = move || {
        me.with(|m| {
            m.as_ref()
                .is_some_and(|m| m.role == Role::Admin && m.auth != "none")
        })
    };
    view! {
        <header class="border-b border-slate-200 bg-white/80 backdrop-blur dark:border-slate-800 dark:bg-slate-900/80">
            <nav
                aria-label="Main"
                class="mx-auto flex w-full max-w-screen-2xl flex-wrap items-center gap-2 px-4 py-2 sm:px-6"
            >
                <a href="/" class="mr-4 flex items-center gap-2 text-lg font-semibold tracking-tight">
                    <span aria-hidden="true" class="inline-block h-3 w-3 rounded-sm bg-emerald-500"></span>
                    "Streamboard"
                </a>
                <A href="/" exact=true attr:class=link>"Dashboard"</A>
                <A href="/dashboards" attr:class=link>"Dashboards"</A>
                <A href="/streams" attr:class=link>"Streams"</A>
                <A href="/alerts" attr:class=link>"Alerts"</A>
                <A href="/reports" attr:class=link>"Reports"</A>
                {move || admin().then(|| view! { <A href="/admin" attr:class=link>"Admin"</A> })}
                <div class="ml-auto flex items-center gap-3">
                    <AlertBadge />
                    <ConnectionBadge />
                    <ThemeToggle />
                    {move || me.get().filter(|m| m.session).map(|m| view! {
                        <span class="text-sm text-slate-500 dark:text-slate-400" data-testid="whoami">{format!("{} ({})", m.name, m.role)}</span>
                        <form method="post" action="/logout">
                            <button type="submit" class="rounded-md px-2 py-1 text-sm hover:bg-slate-200 dark:hover:bg-slate-800">"Log out"</button>
                        </form>
                    })}
                </div>
            </nav>
        </header>
    }
}
