//! The time range picker and the hooks pages use with it: [`use_url_range`] keeps the range in
//! the URL (`?range=` or `?from=&to=`, through leptos_router query signals) so a view can be
//! shared and reloaded; [`use_refresh`] ticks while a live range is shown.

use crate::range::{PRESETS, TimeRange};
use contract::date::{format_utc_minute, parse_utc_minute};
use leptos::prelude::*;
use leptos_router::hooks::query_signal;

/// The page's range, read from and written to the URL.
#[derive(Clone, Copy)]
pub struct UrlRange {
    pub range: Memo<TimeRange>,
    set_range: SignalSetter<Option<String>>,
    set_from: SignalSetter<Option<i64>>,
    set_to: SignalSetter<Option<i64>>,
}

impl UrlRange {
    /// Navigates to the same page showing `range` (one history entry for all three values).
    pub fn set(&self, range: TimeRange) {
        let (key, from, to) = range.to_query();
        self.set_range.set(key);
        self.set_from.set(from);
        self.set_to.set(to);
    }
}

pub fn use_url_range() -> UrlRange {
    use_url_range_or(Signal::stored(None))
}

/// [`use_url_range`], showing the named range `default` (a `?range=` key) when the URL names
/// none (a dashboard's own default range).
pub fn use_url_range_or(default: Signal<Option<String>>) -> UrlRange {
    let (key, set_range) = query_signal::<String>("range");
    let (from, set_from) = query_signal::<i64>("from");
    let (to, set_to) = query_signal::<i64>("to");
    let range = Memo::new(move |_| {
        let key = key.get().or_else(|| default.get());
        TimeRange::from_query(key.as_deref(), from.get(), to.get())
    });
    UrlRange {
        range,
        set_range,
        set_from,
        set_to,
    }
}

/// A counter that goes up every [`TimeRange::refresh_ms`] while `range` is live (in the
/// browser only); resources that read it re-fetch on each tick.
pub fn use_refresh(range: Memo<TimeRange>) -> ReadSignal<u64> {
    use_ticks(Signal::derive(move || range.get().refresh_ms()))
}

/// A counter that goes up every `interval_ms` while it is `Some` (in the browser only).
pub fn use_ticks(interval_ms: Signal<Option<u32>>) -> ReadSignal<u64> {
    let (tick, set_tick) = signal(0u64);
    #[cfg(feature = "hydrate")]
    {
        use std::time::Duration;
        let current = StoredValue::new(None::<IntervalHandle>);
        Effect::new(move |_| {
            if let Some(handle) = current.get_value() {
                handle.clear();
            }
            let handle = interval_ms.get().and_then(|ms| {
                set_interval_with_handle(
                    move || set_tick.update(|t| *t += 1),
                    Duration::from_millis(u64::from(ms)),
                )
                .ok()
            });
            current.set_value(handle);
        });
        on_cleanup(move || {
            if let Some(handle) = current.try_get_value().flatten() {
                handle.clear();
            }
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (interval_ms, set_tick);
    tick
}

/// Buttons for the named ranges and a custom from/to form (UTC).
#[component]
pub fn RangePicker(url: UrlRange) -> impl IntoView {
    let range = url.range;
    let from_input = NodeRef::<leptos::html::Input>::new();
    let to_input = NodeRef::<leptos::html::Input>::new();
    let custom_error = RwSignal::new(None::<&'static str>);
    let apply_custom = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let read = |input: NodeRef<leptos::html::Input>| {
            input.get().and_then(|i| parse_utc_minute(&i.value()))
        };
        match (read(from_input), read(to_input)) {
            (Some(from_ms), Some(to_ms)) if from_ms < to_ms => {
                custom_error.set(None);
                url.set(TimeRange::Custom { from_ms, to_ms });
            }
            (Some(_), Some(_)) => custom_error.set(Some("“To” must be after “from”.")),
            _ => custom_error.set(Some("Enter both times as YYYY-MM-DD HH:MM.")),
        }
    };
    // The form starts from the range shown (in UTC).
    let initial = move |end: usize| {
        let (from, to) = range.get().bounds(crate::fetch::now_ms());
        format_utc_minute(if end == 0 { from } else { to })
    };
    let button = "rounded-md px-2.5 py-1 text-sm font-medium text-slate-600 hover:bg-slate-200 \
                  aria-pressed:bg-slate-900 aria-pressed:text-white dark:text-slate-300 \
                  dark:hover:bg-slate-800 dark:aria-pressed:bg-slate-100 dark:aria-pressed:text-slate-900";
    let input = "rounded-md border border-slate-300 bg-white px-2 py-1 text-sm dark:border-slate-700 dark:bg-slate-900";
    view! {
        <div class="mb-4 flex flex-wrap items-center gap-2" data-testid="range-picker">
            <div role="group" aria-label="Time range" class="flex flex-wrap gap-1 rounded-lg border border-slate-200 bg-white p-1 dark:border-slate-800 dark:bg-slate-900">
                {PRESETS.iter().map(|preset| {
                    let preset = *preset;
                    let pressed = move || (range.get() == TimeRange::Preset(preset)).to_string();
                    view! {
                        <button type="button" class=button aria-pressed=pressed data-range=preset.key
                            on:click=move |_| url.set(TimeRange::Preset(preset))>
                            {preset.label}
                        </button>
                    }
                }).collect_view()}
            </div>
            <span class="text-xs text-slate-500 dark:text-slate-400" data-testid="range-mode">
                {move || if range.get().is_live() { "live, refreshing" } else { "stored history" }}
            </span>
            <details class="text-sm">
                <summary class="cursor-pointer text-slate-600 dark:text-slate-300">"Custom range"</summary>
                <form class="mt-2 flex flex-wrap items-end gap-2" on:submit=apply_custom>
                    <label class="flex flex-col text-xs">"From (UTC)"
                        <input node_ref=from_input type="datetime-local" class=input prop:value=move || initial(0) />
                    </label>
                    <label class="flex flex-col text-xs">"To (UTC)"
                        <input node_ref=to_input type="datetime-local" class=input prop:value=move || initial(1) />
                    </label>
                    <button type="submit" class="rounded-md bg-sky-600 px-3 py-1 text-sm font-medium text-white hover:bg-sky-700">"Show"</button>
                    {move || custom_error.get().map(|e| view! { <span class="text-xs text-red-600 dark:text-red-400">{e}</span> })}
                </form>
            </details>
            <span class="text-sm text-slate-600 dark:text-slate-400" data-testid="range-label">{move || range.get().label()}</span>
        </div>
    }
}
