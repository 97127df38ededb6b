//! The wasm entry point: hydrates the server-rendered body with the same `App` the server
//! rendered. Everything else lives in the `app` crate. `hydrate_lazy` (not `hydrate_body`)
//! because most pages are lazy routes: hydration waits for the page's wasm chunk.

#![recursion_limit = "256"]

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // `hydrate_lazy`, plus opening the live connection only when hydration is complete
    // (`hydrate_from_async` sets up leptos' executor itself).
    wasm_bindgen_futures::spawn_local(async {
        let body = leptos::tachys::dom::body();
        leptos::mount::hydrate_from_async(body, app::App)
            .await
            .forget();
        app::live::hydrated();
    });
}
