//! The wasm entry point: hydrates the server-rendered body with the same `App` the server
//! rendered. Everything else lives in the `app` crate. `hydrate_lazy` (not `hydrate_body`)
//! because most pages are lazy routes: hydration waits for the page's wasm chunk.

#![recursion_limit = "256"]

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_lazy(app::App);
}
