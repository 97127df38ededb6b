use super::{EmptyState, PageHeader};
use crate::{
    components::chart::LineChart, live::use_topics, protocol::Topic, units::format_number,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use std::collections::VecDeque;

/// Points kept for the live charts: one per tick (a minute at the default 250 ms tick).
const LIVE_POINTS: usize = 240;

/// One live chart sample: 60-s window rate and percentiles.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Sample {
    time_ms: i64,
    rate: f64,
    p50: f64,
    p90: f64,
    p99: f64,
}

/// `/metric/{name}`: live rate and p50/p90/p99 charts, the top series, parse errors.
#[component]
pub fn MetricDetail() -> impl IntoView {
    let params = use_params_map();
    let name = params.with_untracked(|p| p.get("name").unwrap_or_default());
    let live = use_topics(vec![Topic::Metric { name: name.clone() }]);
    let metric = Memo::new({
        let name = name.clone();
        move |_| live.metric.get().filter(|m| m.name == name)
    });
    let samples = RwSignal::new(VecDeque::<Sample>::new());
    Effect::new(move |_| {
        let Some(m) = metric.get() else { return };
        let Some(w) = m.card.as_ref().and_then(|c| c.windows.first().cloned()) else {
            return;
        };
        samples.update(|s| {
            if s.back()
                .is_some_and(|last| last.time_ms == m.server_time_ms)
            {
                return;
            }
            if s.len() == LIVE_POINTS {
                s.pop_front();
            }
            let q = |v: Option<u64>| v.unwrap_or(0) as f64;
            s.push_back(Sample {
                time_ms: m.server_time_ms,
                rate: w.rate_per_s,
                p50: q(w.p50),
                p90: q(w.p90),
                p99: q(w.p99),
            });
        });
    });
    let rate = Signal::derive(move || {
        let values = samples.with(|s| s.iter().map(|x| x.rate).collect());
        vec![("rate/s (1 min)".to_string(), "text-sky-500", values)]
    });
    let percentiles = Signal::derive(move || {
        samples.with(|s| {
            vec![
                (
                    "p50".to_string(),
                    "text-emerald-500",
                    s.iter().map(|x| x.p50).collect(),
                ),
                (
                    "p90".to_string(),
                    "text-amber-500",
                    s.iter().map(|x| x.p90).collect(),
                ),
                (
                    "p99".to_string(),
                    "text-rose-500",
                    s.iter().map(|x| x.p99).collect(),
                ),
            ]
        })
    });
    let title = name.clone();
    view! {
        <Title text=title.clone() />
        <PageHeader title="Metric" subtitle="Live rate, percentiles and series." />
        <h2 class="mb-4 font-mono text-lg" data-testid="metric-name">{name.clone()}</h2>
        <Show
            when=move || metric.with(|m| m.is_some())
            fallback=|| view! { <p class="text-sm text-slate-500 dark:text-slate-400">"Waiting for the first live figures…"</p> }
        >
            <Show
                when=move || metric.with(|m| m.as_ref().is_some_and(|m| m.found))
                fallback=|| view! {
                    <EmptyState heading="No such metric">
                        <p>"The engine does not know this metric. Check the name on the " <a class="underline" href="/">"dashboard"</a> "."</p>
                    </EmptyState>
                }
            >
                <div class="grid grid-cols-1 gap-4 lg:grid-cols-2">
                    <LineChart label="Rate" series=rate />
                    <LineChart label="Percentiles (1 min)" series=percentiles />
                </div>
                <h3 class="mt-6 mb-2 font-medium">"Top series (by records in the last minute)"</h3>
                <table class="w-full text-sm" aria-label="Series">
                    <thead class="text-left text-xs uppercase text-slate-500 dark:text-slate-400">
                        <tr>
                            <th class="px-3 py-2">"Dimensions"</th>
                            <th class="px-3 py-2 text-right">"Rate/s"</th>
                            <th class="px-3 py-2 text-right">"Mean"</th>
                            <th class="px-3 py-2 text-right">"p50"</th>
                            <th class="px-3 py-2 text-right">"p99"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {move || metric.with(|m| m.as_ref().map(|m| {
                            let mut series = m.series.clone();
                            series.sort_by(|a, b| {
                                let count = |s: &crate::protocol::SeriesLive| s.windows.first().map_or(0, |w| w.count);
                                count(b).cmp(&count(a))
                            });
                            series.truncate(20);
                            series.into_iter().map(|s| {
                                let w = s.windows.first().cloned().unwrap_or_default();
                                let labels = if s.labels.is_empty() { "(all)".to_string() } else { s.labels.join(", ") };
                                let dash = || "—".to_string();
                                view! {
                                    <tr class="border-t border-slate-100 dark:border-slate-800">
                                        <td class="px-3 py-2">{labels}</td>
                                        <td class="px-3 py-2 text-right tabular-nums">{format_number(w.rate_per_s)}</td>
                                        <td class="px-3 py-2 text-right tabular-nums">{w.mean.map(format_number).unwrap_or_else(dash)}</td>
                                        <td class="px-3 py-2 text-right tabular-nums">{w.p50.map(|v| format_number(v as f64)).unwrap_or_else(dash)}</td>
                                        <td class="px-3 py-2 text-right tabular-nums">{w.p99.map(|v| format_number(v as f64)).unwrap_or_else(dash)}</td>
                                    </tr>
                                }
                            }).collect_view()
                        }))}
                    </tbody>
                </table>
                <h3 class="mt-6 mb-2 font-medium">"Records this metric could not use"</h3>
                <p class="text-sm text-slate-600 dark:text-slate-400">
                    {move || metric.with(|m| m.as_ref().map(|m| {
                        if m.errors.is_empty() {
                            format!("None (late records: {}).", m.late_records)
                        } else {
                            m.errors.iter().map(|(reason, count)| format!("{reason}: {count}")).collect::<Vec<_>>().join(", ")
                        }
                    }))}
                </p>
            </Show>
        </Show>
    }
    .into_any()
}
