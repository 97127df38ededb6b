use super::{EmptyState, PageHeader};
use crate::{
    components::{
        chart::Sparkline,
        range::{RangePicker, use_url_range},
    },
    fetch::{get_json, now_ms},
    live::use_topics,
    range::TimeRange,
};
use contract::{
    api::QueryResponse,
    protocol::{MetricCard, Topic},
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
    let url = use_url_range();
    let range = url.range;
    let cell = "px-3 py-2 text-right tabular-nums";
    view! {
        <Title text="Dashboard" />
        <PageHeader title="Dashboard" subtitle="Every stream and metric, live." />
        {move || overview.with(|o| o.as_ref().and_then(|o| o.storage_error.clone())).map(|message| view! {
            <p role="alert" class="mb-4 rounded-md border border-red-300 bg-red-50 px-3 py-2 text-sm text-red-800 dark:border-red-800 dark:bg-red-950 dark:text-red-200">
                <strong>"Storage: "</strong>{message}
            </p>
        })}
        <RangePicker url />
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
            <div class="mb-3 flex items-baseline justify-between">
                <h2 class="text-lg font-medium">"Metrics"</h2>
                <a href="/metrics/new" class="rounded-md bg-sky-600 px-3 py-1 text-sm font-medium text-white hover:bg-sky-700">"New metric"</a>
            </div>
            <Show
                when=move || !metric_names.with(|m| m.is_empty())
                fallback=|| view! {
                    <EmptyState heading="No metrics defined">
                        <p>"Define a metric with the " <a class="underline" href="/metrics/new">"editor"</a> ", with " <code>"[[metrics]]"</code> " in the config file or " <code>"POST /api/v1/metrics"</code> "; its card appears here."</p>
                    </EmptyState>
                }
            >
                <div class="grid grid-cols-1 gap-4 sm:grid-cols-2 xl:grid-cols-3">
                    <For each=move || metric_names.get() key=|name| name.clone() let:name>
                        {
                            let card = metric(name.clone());
                            let card = Memo::new(move |_| card());
                            view! { <MetricCardView name card range /> }
                        }
                    </For>
                </div>
            </Show>
        </Show>
    }
    .into_any()
}

/// What a metric card shows for the selected range.
#[derive(Debug, Clone, PartialEq, Default)]
struct Figures {
    rate_per_s: f64,
    mean: Option<f64>,
    /// Of all the metric's values, its series merged (live and stored alike: exact, not a bound).
    p99: Option<u64>,
    sparkline: Vec<f64>,
}

impl Figures {
    fn live(card: &MetricCard, window: usize) -> Self {
        let w = card
            .windows
            .get(window)
            .map(|w| w.summary)
            .unwrap_or_default();
        Figures {
            rate_per_s: w.rate_per_s,
            mean: w.mean,
            p99: w.p99,
            sparkline: card.sparkline.clone(),
        }
    }

    fn stored(response: &QueryResponse) -> Self {
        let range = &response.summary.summary;
        Figures {
            rate_per_s: range.rate_per_s,
            mean: range.mean,
            p99: range.p99,
            sparkline: response
                .points
                .iter()
                .map(|p| p.summary.rate_per_s)
                .collect(),
        }
    }
}

/// One metric's card: live windows from the socket, or stored history from `/api/v1/query`.
#[component]
fn MetricCardView(name: String, card: Memo<MetricCard>, range: Memo<TimeRange>) -> impl IntoView {
    let stored = LocalResource::new({
        let name = name.clone();
        move || {
            let range = range.get();
            let url = range.query_url(&name, now_ms(), None);
            async move {
                if range.is_live() {
                    None
                } else {
                    Some(get_json::<QueryResponse>(&url).await)
                }
            }
        }
    });
    let figures = Memo::new(move |_| {
        let range = range.get();
        match range.live_window_index() {
            Some(window) => Some(card.with(|c| Figures::live(c, window))),
            None => stored.with(|s| {
                s.as_ref()
                    .and_then(|s| s.as_ref())
                    .and_then(|r| r.as_ref().ok())
                    .map(Figures::stored)
            }),
        }
    });
    let error = move || {
        stored.with(|s| {
            s.as_ref()
                .and_then(|s| s.as_ref())
                .and_then(|r| r.as_ref().err())
                .map(|e| e.to_string())
        })
    };
    let dash = || "—".to_string();
    let label = "text-xs text-slate-500 dark:text-slate-400";
    view! {
        <a href=format!("/metric/{name}") data-metric=name.clone()
            class="block rounded-xl border border-slate-200 bg-white p-4 hover:border-sky-400 dark:border-slate-800 dark:bg-slate-900 dark:hover:border-sky-500">
            <div class="flex items-baseline justify-between">
                <h3 class="font-medium">{name.clone()}</h3>
                <span class=label>{move || card.with(|c| c.stream.clone())}</span>
            </div>
            <dl class="mt-2 grid grid-cols-3 gap-2 text-sm">
                <div><dt class=label>"Rate"</dt>
                    <dd class="tabular-nums" data-field="rate">{move || figures.with(|f| f.as_ref().map_or_else(dash, |f| format!("{}/s", format_number(f.rate_per_s))))}</dd></div>
                <div><dt class=label>"Mean"</dt>
                    <dd class="tabular-nums" data-field="mean">{move || figures.with(|f| f.as_ref().and_then(|f| f.mean).map_or_else(dash, format_number))}</dd></div>
                <div><dt class=label title="The 99th percentile of every series' values together">"p99"</dt>
                    <dd class="tabular-nums" data-field="p99">{move || figures.with(|f| f.as_ref().and_then(|f| f.p99).map_or_else(dash, |v| format_number(v as f64)))}</dd></div>
            </dl>
            <p class=label>{move || range.get().label()}</p>
            {move || error().map(|e| view! { <p class="text-xs text-red-600 dark:text-red-400">{e}</p> })}
            <div class="mt-2"><Sparkline values=Signal::derive(move || figures.with(|f| f.as_ref().map(|f| f.sparkline.clone()).unwrap_or_default())) /></div>
        </a>
    }
}
