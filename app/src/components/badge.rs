//! The connection badge: shows whether live updates are flowing.

use crate::live::{ConnectionState, use_live_connection};
use leptos::prelude::*;

#[component]
pub fn ConnectionBadge() -> impl IntoView {
    let live = use_live_connection();
    let state = live.state;
    let label = move || match state.get() {
        ConnectionState::Connecting => "Connecting…".to_string(),
        ConnectionState::Connected => "Live".to_string(),
        ConnectionState::Reconnecting { retry_in_ms, .. } => {
            format!("Reconnecting in {:.1} s", f64::from(retry_in_ms) / 1000.0)
        }
    };
    let dot = move || match state.get() {
        ConnectionState::Connected => "bg-emerald-500",
        ConnectionState::Connecting => "bg-amber-400 animate-pulse",
        ConnectionState::Reconnecting { .. } => "bg-rose-500 animate-pulse",
    };
    let title = move || match live.server_version.get() {
        Some(version) => format!("Streamboard server {version}"),
        None => "Live connection to the Streamboard server".to_string(),
    };
    view! {
        <span
            role="status"
            aria-label="Connection"
            data-state=move || state.get().as_str()
            title=title
            class="inline-flex items-center gap-2 rounded-full border border-slate-200 px-3 py-1 text-xs font-medium dark:border-slate-700"
        >
            <span aria-hidden="true" class=move || format!("inline-block h-2 w-2 rounded-full {}", dot())></span>
            {label}
        </span>
    }
}
