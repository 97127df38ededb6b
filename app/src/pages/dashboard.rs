use super::{EmptyState, PageHeader};
use crate::{
    components::chart::Sparkline,
    live::use_topics,
    protocol::Topic,
    units::{format_bytes_per_s, format_lag_ms, format_number},
};
use leptos::prelude::*;
use leptos_meta::Title;

/// `/`: every stream and every metric at a glance, live.
#[component]
pub fn Dashboard() -> impl IntoView {
    let live = use_topics(vec![Topic::Overview]);
    let overview = live.overview;
    let stream_names = Memo::new(move |_| {
        overview.with(|o| {
            o.as_ref()
                .map(|o| o.streams.iter().map(|s| s.name.clone()).collect::<Vec<_>>())
                .unwrap_or_default()
        })
    });
    let metric_names = Memo::new(move |_| {
        overview.with(|o| {
            o.as_ref()
                .map(|o| o.metrics.iter().map(|m| m.name.clone()).collect::<Vec<_>>())
                .unwrap_or_default()
        })
    });
    let stream = move |name: String| {
        move || {
            overview
                .with(|o| {
                    o.as_ref()
                        .and_then(|o| o.streams.iter().find(|s| s.name == name).cloned())
                })
                .unwrap_or_default()
        }
    };
    let metric = move |name: String| {
        move || {
            overview
                .with(|o| {
                    o.as_ref()
                        .and_then(|o| o.metrics.iter().find(|m| m.name == name).cloned())
                })
                .unwrap_or_default()
        }
    };
    let cell = "px-3 py-2 text-right tabular-nums";
    view! {
        <Title text="Dashboard" />
        <PageHeader title="Dashboard" subtitle="Every stream and metric, live." />
        <Show
            when=move || overview.with(|o| o.is_some())
            fallback=|| view! {
                <p class="text-sm text-slate-500 dark:text-slate-400">"Waiting for the first live figures…"</p>
            }
        >
            <Show
                when=move || !stream_names.with(|s| s.is_empty())
                fallback=|| view! {
                    <EmptyState heading="No streams are being read yet">
                        <p>
                            "Streamboard reads the Kinesis streams named in its configuration ("
                            <code>"[[streams]]"</code> " in the config file, or " <code>"--stream NAME"</code>
                            "). Their records per second, lag and metrics appear here as soon as a reader starts."
                        </p>
                    </EmptyState>
                }
            >
                <section class="mb-8 overflow-x-auto rounded-xl border border-slate-200 bg-white dark:border-slate-800 dark:bg-slate-900">
                    <table class="w-full text-sm" aria-label="Streams">
                        <thead class="text-left text-xs uppercase text-slate-500 dark:text-slate-400">
                            <tr>
                                <th class="px-3 py-2">"Stream"</th>
                                <th class="px-3 py-2 text-right">"Records/s"</th>
                                <th class="px-3 py-2 text-right">"Bytes/s"</th>
                                <th class="px-3 py-2 text-right">"Lag"</th>
                                <th class="px-3 py-2 text-right">"Parse errors"</th>
                                <th class="px-3 py-2">"Last minute"</th>
                            </tr>
                        </thead>
                        <tbody>
                            <For each=move || stream_names.get() key=|name| name.clone() let:name>
                                {
                                    let row = stream(name.clone());
                                    let row = Memo::new(move |_| row());
                                    view! {
                                        <tr class="border-t border-slate-100 dark:border-slate-800" data-stream=name.clone()>
                                            <td class="px-3 py-2 font-medium">{name.clone()}
                                                {move || row.with(|r| r.error.clone()).map(|e| view! { <span class="ml-2 text-xs text-red-600 dark:text-red-400">{e}</span> })}
                                            </td>
                                            <td class=cell data-field="records">{move || format_number(row.with(|r| r.records_per_s))}</td>
                                            <td class=cell>{move || format_bytes_per_s(row.with(|r| r.bytes_per_s))}</td>
                                            <td class=cell>{move || format_lag_ms(row.with(|r| r.lag_ms))}</td>
                                            <td class=cell>{move || row.with(|r| r.parse_errors)}</td>
                                            <td class="px-3 py-2"><Sparkline values=Signal::derive(move || row.with(|r| r.sparkline.clone())) /></td>
                                        </tr>
                                    }
                                }
                            </For>
                        </tbody>
                    </table>
                </section>
            </Show>
            <h2 class="mb-3 text-lg font-medium">"Metrics"</h2>
            <Show
                when=move || !metric_names.with(|m| m.is_empty())
                fallback=|| view! {
                    <EmptyState heading="No metrics defined">
                        <p>"Define a metric with " <code>"[[metrics]]"</code> " in the config file or " <code>"POST /api/v1/metrics"</code> "; its card appears here."</p>
                    </EmptyState>
                }
            >
                <div class="grid grid-cols-1 gap-4 sm:grid-cols-2 xl:grid-cols-3">
                    <For each=move || metric_names.get() key=|name| name.clone() let:name>
                        {
                            let card = metric(name.clone());
                            let card = Memo::new(move |_| card());
                            let window = move |i: usize| card.with(|c| c.windows.get(i).cloned().unwrap_or_default());
                            view! {
                                <a href=format!("/metric/{name}") data-metric=name.clone()
                                    class="block rounded-xl border border-slate-200 bg-white p-4 hover:border-sky-400 dark:border-slate-800 dark:bg-slate-900 dark:hover:border-sky-500">
                                    <div class="flex items-baseline justify-between">
                                        <h3 class="font-medium">{name.clone()}</h3>
                                        <span class="text-xs text-slate-500 dark:text-slate-400">{move || card.with(|c| c.stream.clone())}</span>
                                    </div>
                                    <dl class="mt-2 grid grid-cols-3 gap-2 text-sm">
                                        <div><dt class="text-xs text-slate-500 dark:text-slate-400">"Rate (1 min)"</dt>
                                            <dd class="tabular-nums" data-field="rate">{move || format!("{}/s", format_number(window(0).rate_per_s))}</dd></div>
                                        <div><dt class="text-xs text-slate-500 dark:text-slate-400">"Mean (5 min)"</dt>
                                            <dd class="tabular-nums">{move || window(1).mean.map(format_number).unwrap_or_else(|| "—".into())}</dd></div>
                                        <div><dt class="text-xs text-slate-500 dark:text-slate-400">"p99 (5 min)"</dt>
                                            <dd class="tabular-nums">{move || window(1).p99.map(|v| format_number(v as f64)).unwrap_or_else(|| "—".into())}</dd></div>
                                    </dl>
                                    <div class="mt-2"><Sparkline values=Signal::derive(move || card.with(|c| c.sparkline.clone())) /></div>
                                </a>
                            }
                        }
                    </For>
                </div>
            </Show>
        </Show>
    }
    .into_any()
}
