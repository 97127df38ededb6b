//! Export and import of the rules as a file in the config file's `[[alerts]]` format (TOML)
//! or as JSON, so rules can live in git. Import checks every rule before storing any and shows
//! which rule and field a refusal names.

use super::{BUTTON, SELECT};
use crate::fetch::post_text;
use contract::api::AlertImport;
use leptos::{prelude::*, task::spawn_local};

/// Links to download the rules, and a box to paste a rules file into.
#[component]
pub fn RulesFile(on_changed: Callback<()>) -> impl IntoView {
    let text = RwSignal::new(String::new());
    let format = RwSignal::new("toml".to_string());
    let outcome = RwSignal::new(None::<Result<String, String>>);
    let import = move |_| {
        let body = text.get_untracked();
        let format = format.get_untracked();
        spawn_local(async move {
            let content_type = if format == "json" {
                "application/json"
            } else {
                "application/toml"
            };
            let answer = post_text::<AlertImport>(
                &format!("/api/v1/alerts/import?format={format}"),
                content_type,
                body,
            )
            .await;
            outcome.set(Some(match answer {
                Ok(done) => {
                    on_changed.run(());
                    Ok(format!(
                        "Imported: {} created, {} replaced.",
                        done.created, done.replaced
                    ))
                }
                Err(e) => Err(match e.field() {
                    Some(field) => format!("{field}: {e}"),
                    None => e.to_string(),
                }),
            }));
        });
    };
    view! {
        <details class="mb-4 rounded-xl border border-slate-200 bg-white p-3 text-sm dark:border-slate-800 dark:bg-slate-900">
            <summary class="cursor-pointer font-medium">"Export and import rules"</summary>
            <div class="mt-3 flex flex-wrap items-center gap-3">
                <a class=BUTTON href="/api/v1/alerts/export?format=toml" download="streamboard-alerts.toml">"Export TOML"</a>
                <a class=BUTTON href="/api/v1/alerts/export?format=json" download="streamboard-alerts.json">"Export JSON"</a>
                <span class="text-xs text-slate-500 dark:text-slate-400">
                    "The TOML file is the config file's [[alerts]] tables: keep it in git, load it with --config."
                </span>
            </div>
            <label class="mt-3 block">
                <span class="mb-1 block text-xs font-medium">"Rules file"</span>
                <textarea class="h-40 w-full rounded-md border border-slate-300 bg-white p-2 font-mono text-xs dark:border-slate-700 dark:bg-slate-950"
                    prop:value=move || text.get()
                    on:input=move |ev| text.set(event_target_value(&ev))
                    placeholder="[[alerts]]\nname = \"slow checkout\"\n…"></textarea>
            </label>
            <div class="mt-2 flex items-center gap-2">
                <select class=SELECT aria-label="Import format" on:change=move |ev| format.set(event_target_value(&ev))>
                    <option value="toml" selected>"TOML"</option>
                    <option value="json">"JSON"</option>
                </select>
                <button type="button" class=BUTTON on:click=import>"Import"</button>
                {move || outcome.get().map(|o| match o {
                    Ok(done) => view! { <span role="status" class="text-emerald-700 dark:text-emerald-400">{done}</span> }.into_any(),
                    Err(why) => view! { <span role="alert" class="text-red-600">{why}</span> }.into_any(),
                })}
            </div>
        </details>
    }
    .into_any()
}
