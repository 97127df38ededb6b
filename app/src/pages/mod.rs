//! One module per route, plus the 404 and error panels.

mod alerts;
mod dashboard;
mod editor;
mod errors;
mod metric;
mod reports;
mod streams;

pub use alerts::Alerts;
pub use dashboard::Dashboard;
pub use editor::MetricEditor;
pub use errors::{ErrorPanel, NotFound};
pub use metric::MetricDetail;
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

/// A refusal (from the server's 422, or the form itself), shown at the field it names.
#[derive(Debug, Clone, PartialEq, Default)]
struct Refusal {
    field: String,
    message: String,
}

fn refusal(error: &crate::fetch::FetchError) -> Refusal {
    Refusal {
        field: error.field().unwrap_or("form").to_string(),
        message: error.to_string(),
    }
}

/// The refusal's message when it names `key` (`data-error-for` for the end-to-end tests).
#[component]
fn FieldError(key: &'static str, refused: RwSignal<Option<Refusal>>) -> impl IntoView {
    move || {
        refused.with(|r| {
            r.as_ref().filter(|r| r.field == key).map(|r| {
                view! {
                    <p role="alert" data-error-for=key class="text-xs text-red-600 dark:text-red-400">{r.message.clone()}</p>
                }
            })
        })
    }
}

/// A labelled text input with the refusal that names `key` under it.
#[component]
fn TextField(
    label: &'static str,
    key: &'static str,
    value: RwSignal<String>,
    refused: RwSignal<Option<Refusal>>,
    #[prop(optional)] id: Option<&'static str>,
    #[prop(optional)] list: Option<&'static str>,
    #[prop(optional)] placeholder: &'static str,
    #[prop(optional)] help: &'static str,
) -> impl IntoView {
    let id = id.unwrap_or(key);
    view! {
        <div class="flex flex-col gap-1">
            <label for=id class="text-sm font-medium">{label}</label>
            <input id=id name=id type="text" list=list placeholder=placeholder bind:value=value
                aria-invalid=move || refused.with(|r| r.as_ref().is_some_and(|r| r.field == key)).to_string()
                class="rounded-md border border-slate-300 bg-white px-2 py-1 font-mono text-sm aria-invalid:border-red-500 dark:border-slate-700 dark:bg-slate-900" />
            {(!help.is_empty()).then(|| view! { <p class="text-xs text-slate-500 dark:text-slate-400">{help}</p> })}
            <FieldError key refused />
        </div>
    }
}
