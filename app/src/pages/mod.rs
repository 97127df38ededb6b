//! One module per route, plus the 404 and error panels.

mod admin;
mod alerts;
mod dashboard;
mod dashboards;
mod editor;
mod errors;
mod login;
mod metric;
mod records;
mod reports;
mod streams;

pub use admin::Admin;
pub use alerts::Alerts;
pub use dashboard::Dashboard;
pub use dashboards::{DashboardBoard, Dashboards};
pub use editor::MetricEditor;
pub use errors::{ErrorPanel, NotFound};
pub use login::Login;
pub use metric::MetricDetail;
pub use records::Records;
pub use reports::Reports;
pub use streams::Streams;

use leptos::prelude::*;

/// Page heading with an optional one-line description.
#[component]
fn PageHeader(title: &'static str, subtitle: &'static str) -> impl IntoView {
    view! {
        <div class="mb-6">
            <h1 class="text-2xl font-semibold tracking-tight">{title}</h1>
            <p class="mt-1 text-sm text-slate-500 dark:text-slate-400">{subtitle}</p>
        </div>
    }
}

/// A panel that says why a page is empty and what the user can do about it.
#[component]
fn EmptyState(heading: &'static str, children: Children) -> impl IntoView {
    view! {
        <section class="rounded-xl border border-dashed border-slate-300 bg-white p-8 text-center dark:border-slate-700 dark:bg-slate-900">
            <h2 class="text-lg font-medium">{heading}</h2>
            <div class="mx-auto mt-2 max-w-prose text-sm text-slate-600 dark:text-slate-400">
                {children()}
            </div>
        </section>
    }
}
