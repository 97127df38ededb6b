//! Alert pieces of the shell: the firing count in the navigation and the toasts every page
//! shows when a rule with an in-app target fires or resolves.

use crate::live::use_live_connection;
use contract::{alert::AlertState, protocol::AlertEvent};
use leptos::prelude::*;

/// Link to `/alerts` with the number of firing instances (hidden at zero).
#[component]
pub fn AlertBadge() -> impl IntoView {
    let live = use_live_connection();
    let firing = move || live.alerts.with(|a| a.as_ref().map_or(0, |a| a.firing));
    view! {
        <a
            href="/alerts"
            data-testid="alert-badge"
            data-count=move || firing().to_string()
            class="rounded-full bg-red-600 px-2 py-0.5 text-xs font-semibold text-white"
            class:hidden=move || firing() == 0
            title="Firing alerts"
        >
            {move || format!("{} firing", firing())}
        </a>
    }
}

/// How long a toast stays.
const TOAST_MS: u64 = 10_000;

/// One visible toast.
#[derive(Debug, Clone, PartialEq)]
struct Toast {
    id: i64,
    event: AlertEvent,
}

/// The words of a toast for a transition.
pub fn toast_text(event: &AlertEvent) -> String {
    let what = match (event.from, event.to) {
        (_, AlertState::Firing) => "is firing",
        (from, AlertState::Ok) if from.is_firing() => "resolved",
        (_, AlertState::NoData) => "has no data",
        (_, AlertState::Error) => "is in error",
        (_, other) => other.as_str(),
    };
    let value = event
        .value
        .map(|v| {
            format!(
                " (value {}, threshold {})",
                contract::units::format_number(v),
                contract::units::format_number(event.threshold)
            )
        })
        .unwrap_or_default();
    let instance = if event.instance == "all" {
        String::new()
    } else {
        format!(" [{}]", event.instance)
    };
    format!("{}{instance} {what}{value}", event.rule)
}

/// New in-app transitions since the page loaded, as toasts (bottom right, dismissable).
#[component]
pub fn Toasts() -> impl IntoView {
    let live = use_live_connection();
    let toasts = RwSignal::new(Vec::<Toast>::new());
    // The newest transition id already seen; `None` until the first payload, whose history
    // is not toasted.
    let seen = StoredValue::new(None::<i64>);
    Effect::new(move |_| {
        let Some(newest) = live.alerts.with(|a| a.as_ref().map(|a| a.recent.clone())) else {
            return;
        };
        let last = seen.get_value();
        let max = newest.iter().map(|e| e.id).max();
        if let Some(last) = last {
            let fresh: Vec<Toast> = newest
                .into_iter()
                .filter(|e| e.id > last && e.in_app)
                .map(|event| Toast {
                    id: event.id,
                    event,
                })
                .collect();
            for toast in &fresh {
                let id = toast.id;
                #[cfg(feature = "hydrate")]
                set_timeout(
                    move || toasts.update(|t| t.retain(|x| x.id != id)),
                    std::time::Duration::from_millis(TOAST_MS),
                );
                #[cfg(not(feature = "hydrate"))]
                let _ = (id, TOAST_MS);
            }
            toasts.update(|t| t.extend(fresh));
        }
        seen.set_value(max.max(last).or(Some(0)));
    });
    view! {
        <div
            role="status"
            aria-live="polite"
            class="pointer-events-none fixed bottom-4 right-4 z-50 flex w-96 max-w-[90vw] flex-col gap-2"
        >
            <For each=move || toasts.get() key=|t| t.id let(toast)>
                {
                    let id = toast.id;
                    let firing = toast.event.to == AlertState::Firing;
                    let class = if firing {
                        "pointer-events-auto flex items-start gap-3 rounded-lg border border-red-300 bg-red-50 p-3 text-sm text-red-900 shadow-lg dark:border-red-800 dark:bg-red-950 dark:text-red-100"
                    } else {
                        "pointer-events-auto flex items-start gap-3 rounded-lg border border-emerald-300 bg-emerald-50 p-3 text-sm text-emerald-900 shadow-lg dark:border-emerald-800 dark:bg-emerald-950 dark:text-emerald-100"
                    };
                    view! {
                        <div class=class data-testid="toast" data-to=toast.event.to.as_str()>
                            <a href="/alerts" class="flex-1">{toast_text(&toast.event)}</a>
                            <button
                                type="button"
                                aria-label="Dismiss"
                                class="text-lg leading-none opacity-60 hover:opacity-100"
                                on:click=move |_| toasts.update(|t| t.retain(|x| x.id != id))
                            >
                                "×"
                            </button>
                        </div>
                    }
                }
            </For>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toasts_say_what_happened() {
        let event = AlertEvent {
            rule: "slow".into(),
            instance: "eu, /cart".into(),
            from: AlertState::Pending,
            to: AlertState::Firing,
            value: Some(512.0),
            threshold: 250.0,
            ..AlertEvent::default()
        };
        assert_eq!(
            toast_text(&event),
            "slow [eu, /cart] is firing (value 512, threshold 250)"
        );
        let resolved = AlertEvent {
            from: AlertState::Firing,
            to: AlertState::Ok,
            instance: "all".into(),
            value: None,
            ..event
        };
        assert_eq!(toast_text(&resolved), "slow resolved");
    }
}
