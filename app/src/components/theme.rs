//! Dark/light switch. The choice is kept in `localStorage` under `streamboard-theme`; the
//! shell's boot script applies it before first paint.

use leptos::prelude::*;

#[component]
pub fn ThemeToggle() -> impl IntoView {
    // The server cannot know the user's theme; the browser corrects this right after hydration.
    let dark = RwSignal::new(false);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| dark.set(browser::is_dark()));

    let toggle = move |_| {
        let next = !dark.get_untracked();
        dark.set(next);
        #[cfg(feature = "hydrate")]
        browser::set_dark(next);
    };
    view! {
        <button
            type="button"
            on:click=toggle
            aria-label=move || if dark.get() { "Switch to light mode" } else { "Switch to dark mode" }
            aria-pressed=move || dark.get().to_string()
            class="rounded-md border border-slate-200 px-2 py-1 text-sm hover:bg-slate-100 dark:border-slate-700 dark:hover:bg-slate-800"
        >
            {move || if dark.get() { "☀ Light" } else { "☾ Dark" }}
        </button>
    }
}

#[cfg(feature = "hydrate")]
mod browser {
    const KEY: &str = "streamboard-theme";

    pub fn is_dark() -> bool {
        web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.document_element())
            .map(|html| html.class_list().contains("dark"))
            .unwrap_or(false)
    }

    pub fn set_dark(dark: bool) {
        let Some(window) = web_sys::window() else {
            return;
        };
        if let Some(html) = window.document().and_then(|d| d.document_element()) {
            let _ = html.class_list().toggle_with_force("dark", dark);
        }
        if let Ok(Some(storage)) = window.local_storage() {
            let _ = storage.set_item(KEY, if dark { "dark" } else { "light" });
        }
    }
}
