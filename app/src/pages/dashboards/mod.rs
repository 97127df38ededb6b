//! User-built dashboards: `/dashboards` lists them, creates an empty one and imports a shared
//! file; `/dashboards/{id}` ([`board`]) shows one as a grid of panels ([`panels`]) and edits
//! it ([`editor`]). Documents are the contract's `Dashboard`, stored through
//! `/api/v1/dashboards`.

mod board;
mod drag;
mod editor;
mod panels;

pub use board::DashboardBoard;

use super::PageHeader;
use crate::{
    fetch::{Method, get_json, post_text, send_json},
    session::can,
};
use contract::{
    api::Created,
    auth::Role,
    dashboard::{Dashboard, DashboardList},
};
use editor::{BUTTON, PRIMARY};
use leptos::{prelude::*, task::spawn_local};
use leptos_meta::Title;
use leptos_router::hooks::use_navigate;

/// `/dashboards`: every dashboard, a form to create one and the import of a file.
#[component]
pub fn Dashboards() -> impl IntoView {
    let list =
        LocalResource::new(|| async { get_json::<DashboardList>("/api/v1/dashboards").await });
    let editor = can(Role::Editor);
    let name = RwSignal::new(String::new());
    let create_error = RwSignal::new(None::<String>);
    let navigate = use_navigate();
    let create = {
        let navigate = navigate.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let dashboard = Dashboard::new(name.get_untracked().trim());
            let navigate = navigate.clone();
            spawn_local(async move {
                match send_json::<Dashboard, Created>(
                    Method::Post,
                    "/api/v1/dashboards",
                    Some(&dashboard),
                )
                .await
                {
                    Ok(created) => {
                        navigate(&format!("/dashboards/{}", created.id), Default::default())
                    }
                    Err(e) => create_error.set(Some(match e.field() {
                        Some(field) => format!("{field}: {e}"),
                        None => e.to_string(),
                    })),
                }
            });
        }
    };
    let file_text = RwSignal::new(String::new());
    let import_error = RwSignal::new(None::<String>);
    let import = move |_| {
        let body = file_text.get_untracked();
        let navigate = navigate.clone();
        import_error.set(None);
        spawn_local(async move {
            match post_text::<Created>("/api/v1/dashboards/import", "application/json", body).await
            {
                Ok(created) => navigate(&format!("/dashboards/{}", created.id), Default::default()),
                Err(e) => import_error.set(Some(match e.field() {
                    Some(field) => format!("{field}: {e}"),
                    None => e.to_string(),
                })),
            }
        });
    };
    let on_file = move |ev: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            let file = ev
                .target()
                .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
                .and_then(|input| input.files())
                .and_then(|files| files.get(0));
            if let Some(file) = file {
                spawn_local(async move {
                    let text = wasm_bindgen_futures::JsFuture::from(file.text()).await;
                    match text.ok().and_then(|t| t.as_string()) {
                        Some(text) => file_text.set(text),
                        None => import_error.set(Some("the file could not be read".into())),
                    }
                });
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = ev;
    };
    let input = "rounded-md border border-slate-300 bg-white px-2 py-1 text-sm dark:border-slate-700 dark:bg-slate-900";
    view! {
        <Title text="Dashboards" />
        <PageHeader title="Dashboards" subtitle="Your own grids of panels over stored history, shareable as a link or a file." />
        <section class="mb-6 overflow-x-auto rounded-xl border border-slate-200 bg-white dark:border-slate-800 dark:bg-slate-900">
            <table class="w-full text-sm" aria-label="Dashboards">
                <thead class="text-left text-xs uppercase text-slate-500 dark:text-slate-400">
                    <tr>
                        <th class="px-3 py-2">"Name"</th>
                        <th class="px-3 py-2">"Description"</th>
                        <th class="px-3 py-2 text-right">"Panels"</th>
                    </tr>
                </thead>
                <tbody>
                    {move || list.with(|l| match l.as_ref() {
                        None => view! { <tr><td class="px-3 py-2 text-slate-500" colspan="3">"Loading…"</td></tr> }.into_any(),
                        Some(Err(e)) => view! { <tr><td role="alert" class="px-3 py-2 text-red-600" colspan="3">{e.to_string()}</td></tr> }.into_any(),
                        Some(Ok(list)) if list.dashboards.is_empty() => view! {
                            <tr><td class="px-3 py-2 text-slate-500 dark:text-slate-400" colspan="3">"No dashboards yet: create one below or import a file."</td></tr>
                        }.into_any(),
                        Some(Ok(list)) => list.dashboards.iter().map(|d| view! {
                            <tr class="border-t border-slate-100 dark:border-slate-800" data-dashboard=d.name.clone()>
                                <td class="px-3 py-2"><a class="font-medium text-sky-700 underline dark:text-sky-400" href=format!("/dashboards/{}", d.id)>{d.name.clone()}</a></td>
                                <td class="px-3 py-2 text-slate-600 dark:text-slate-400">{d.description.clone()}</td>
                                <td class="px-3 py-2 text-right tabular-nums">{d.panels}</td>
                            </tr>
                        }).collect_view().into_any(),
                    })}
                </tbody>
            </table>
        </section>
        <Show when=move || editor.get()>
            <div class="grid gap-4 lg:grid-cols-2">
                <form class="flex flex-col gap-2 rounded-xl border border-slate-200 bg-white p-4 dark:border-slate-800 dark:bg-slate-900" on:submit=create.clone()>
                    <h2 class="font-medium">"New dashboard"</h2>
                    <label class="flex flex-col gap-1 text-sm">"Name"
                        <input name="name" class=input required bind:value=name />
                    </label>
                    <div><button type="submit" class=PRIMARY>"Create"</button></div>
                    {move || create_error.get().map(|e| view! { <p role="alert" class="text-sm text-red-600">{e}</p> })}
                </form>
                <div class="flex flex-col gap-2 rounded-xl border border-slate-200 bg-white p-4 dark:border-slate-800 dark:bg-slate-900">
                    <h2 class="font-medium">"Import a dashboard"</h2>
                    <p class="text-xs text-slate-500 dark:text-slate-400">"A file exported from a dashboard (Export JSON). It becomes a new dashboard."</p>
                    <label class="flex flex-col gap-1 text-sm">"Dashboard file"
                        <input type="file" name="dashboard-file" accept="application/json,.json" on:change=on_file />
                    </label>
                    <label class="flex flex-col gap-1 text-sm">"or its JSON"
                        <textarea name="dashboard-json" class="h-32 rounded-md border border-slate-300 bg-white p-2 font-mono text-xs dark:border-slate-700 dark:bg-slate-950"
                            prop:value=move || file_text.get() on:input=move |ev| file_text.set(event_target_value(&ev))></textarea>
                    </label>
                    <div><button type="button" class=BUTTON on:click=import.clone()>"Import"</button></div>
                    {move || import_error.get().map(|e| view! { <p role="alert" data-testid="import-error" class="text-sm text-red-600">{e}</p> })}
                </div>
            </div>
        </Show>
    }
    .into_any()
}
