//! Alert pieces of the shell: the firing count in the navigation, the toasts every page
//! shows when a rule with an in-app target fires or resolves, and the pending and firing
//! periods of transitions ([`periods`]) that charts draw as bands.

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

/// A period one instance spent pending, or firing (recovering included).
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    pub instance: String,
    /// [`AlertState::Pending`] or [`AlertState::Firing`].
    pub state: AlertState,
    pub from_ms: i64,
    pub to_ms: i64,
}

/// The pending and firing periods of `transitions` (instance, state left, state entered,
/// when), in time order, over `start_ms..end_ms`: a period open at the end lasts until
/// `end_ms`, one whose start is before the first transition (its state left is pending or
/// firing) from `start_ms`. Sorted by start.
pub fn periods<'a>(
    transitions: impl IntoIterator<Item = (&'a str, AlertState, AlertState, i64)>,
    start_ms: i64,
    end_ms: i64,
) -> Vec<Period> {
    fn band(state: AlertState) -> Option<AlertState> {
        match state {
            AlertState::Pending => Some(AlertState::Pending),
            AlertState::Firing | AlertState::Recovering => Some(AlertState::Firing),
            _ => None,
        }
    }
    let mut open: std::collections::BTreeMap<&str, (AlertState, i64)> = Default::default();
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for (instance, from, to, at_ms) in transitions {
        if seen.insert(instance)
            && let Some(state) = band(from)
        {
            open.insert(instance, (state, start_ms));
        }
        let next = band(to);
        let current = open.get(instance).map(|(state, _)| *state);
        if current == next {
            continue;
        }
        if let Some((state, from_ms)) = open.remove(instance) {
            out.push(Period {
                instance: instance.to_string(),
                state,
                from_ms,
                to_ms: at_ms,
            });
        }
        if let Some(state) = next {
            open.insert(instance, (state, at_ms));
        }
    }
    out.extend(open.into_iter().map(|(instance, (state, from_ms))| Period {
        instance: instance.to_string(),
        state,
        from_ms,
        to_ms: end_ms,
    }));
    out.sort_by_key(|p| p.from_ms);
    out
}

/// A band a chart draws: its start and end as fractions of the chart's width, its colour
/// class and what it says on hover.
pub type Band = (f64, f64, &'static str, String);

/// The periods as bands of a chart spanning `from_ms..to_ms`.
pub fn bands(periods: &[Period], from_ms: i64, to_ms: i64) -> Vec<Band> {
    let span = (to_ms - from_ms).max(1) as f64;
    let at = |t: i64| ((t - from_ms) as f64 / span).clamp(0.0, 1.0);
    periods
        .iter()
        .filter(|p| p.to_ms > from_ms && p.from_ms < to_ms)
        .map(|p| {
            let class = match p.state {
                AlertState::Pending => "fill-amber-400/30",
                _ => "fill-red-500/25",
            };
            let title = format!("{} {}", p.instance, p.state.as_str());
            (at(p.from_ms), at(p.to_ms), class, title)
        })
        .collect()
}

/// The pending and firing periods of every rule on `metric` over the range `range` gives
/// (`from_ms`, `to_ms`), read from the alert history, as bands.
pub fn use_alert_bands(metric: String, range: Signal<Option<(i64, i64)>>) -> Signal<Vec<Band>> {
    let history = LocalResource::new(move || {
        let range = range.get();
        let metric = metric.clone();
        async move {
            let (from_ms, to_ms) = range?;
            let url = format!(
                "/api/v1/alerts/history?metric={}&from={from_ms}&to={to_ms}&limit=10000",
                crate::fetch::encode_query(&metric)
            );
            let history = crate::fetch::get_json::<contract::api::AlertHistory>(&url)
                .await
                .ok()?;
            let mut events = history.transitions;
            events.reverse(); // oldest first
            // One band per rule instance: "rule" or "rule [instance]".
            let keys: Vec<String> = events
                .iter()
                .map(|e| match e.instance.as_str() {
                    "all" => e.rule.clone(),
                    instance => format!("{} [{instance}]", e.rule),
                })
                .collect();
            let found = periods(
                keys.iter()
                    .zip(&events)
                    .map(|(key, e)| (key.as_str(), e.from, e.to, e.at_ms)),
                from_ms,
                to_ms,
            );
            Some(bands(&found, from_ms, to_ms))
        }
    });
    Signal::derive(move || history.get().flatten().unwrap_or_default())
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
    if let Some(message) = &event.message {
        return message.clone();
    }
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
    fn periods_join_firing_and_recovering_and_close_at_the_end() {
        use AlertState::*;
        let transitions = [
            ("all", Ok, Pending, 1_000),
            ("all", Pending, Firing, 3_000),
            ("all", Firing, Recovering, 5_000),
            ("all", Recovering, Firing, 6_000),
            ("all", Firing, Ok, 8_000),
            ("eu", Ok, Firing, 7_000),
            ("us", Firing, Ok, 2_000),
        ];
        let p = periods(transitions, 0, 10_000);
        let spans: Vec<_> = p
            .iter()
            .map(|p| (p.instance.as_str(), p.state, p.from_ms, p.to_ms))
            .collect();
        assert_eq!(
            spans,
            vec![
                ("us", Firing, 0, 2_000),
                ("all", Pending, 1_000, 3_000),
                ("all", Firing, 3_000, 8_000),
                ("eu", Firing, 7_000, 10_000),
            ]
        );
    }

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
