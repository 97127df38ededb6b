use leptos::prelude::*;
use leptos_meta::Title;

/// Rendered for any path no route matches (the server's fallback answers it with HTTP 404).
#[component]
pub fn NotFound() -> impl IntoView {
    view! {
        <Title text="Not found" />
        <section class="py-16 text-center">
            <p class="text-sm font-semibold text-emerald-600">"404"</p>
            <h1 class="mt-2 text-3xl font-semibold tracking-tight">"Page not found"</h1>
            <p class="mt-2 text-slate-600 dark:text-slate-400">"There is nothing at this address."</p>
            <a href="/" class="mt-6 inline-block rounded-md bg-slate-900 px-4 py-2 text-sm text-white dark:bg-slate-100 dark:text-slate-900">
                "Back to the dashboard"
            </a>
        </section>
    }
}

/// What the error boundary shows when a page fails to render.
#[component]
pub fn ErrorPanel(errors: ArcRwSignal<Errors>) -> impl IntoView {
    let messages = move || {
        errors
            .get()
            .into_iter()
            .map(|(_, error)| view! { <li>{error.to_string()}</li> })
            .collect_view()
    };
    view! {
        <section role="alert" class="rounded-xl border border-rose-300 bg-rose-50 p-6 dark:border-rose-800 dark:bg-rose-950">
            <h1 class="text-lg font-semibold">"Something went wrong"</h1>
            <ul class="mt-2 list-disc pl-6 text-sm">{messages}</ul>
        </section>
    }
}
