use super::{EmptyState, PageHeader};
use crate::{
    live::use_topics,
    protocol::Topic,
    units::{format_bytes_per_s, format_lag_ms, format_number},
};
use leptos::prelude::*;
use leptos_meta::Title;

/// `/streams`: every shard of every stream, live; hot shards highlighted.
#[component]
pub fn Streams() -> impl IntoView {
    let live = use_topics(vec![Topic::Streams]);
    let streams = live.streams;
    let cell = "px-3 py-2 text-right tabular-nums";
    view! {
        <Title text="Streams" />
        <PageHeader title="Streams" subtitle="Shards, readers and lag per stream." />
        <Show
            when=move || streams.with(|s| s.is_some())
            fallback=|| view! { <p class="text-sm text-slate-500 dark:text-slate-400">"Waiting for the first live figures…"</p> }
        >
            <Show
                when=move || streams.with(|s| s.as_ref().is_some_and(|s| !s.shards.is_empty() || !s.stream_errors.is_empty()))
                fallback=|| view! {
                    <EmptyState heading="No streams configured">
                        <p>"Add a stream to the configuration to see its shards, their state and how far behind each reader is."</p>
                    </EmptyState>
                }
            >
                <ul class="mb-4 text-sm text-red-600 dark:text-red-400">
                    {move || streams.with(|s| s.as_ref().map(|s| s.stream_errors.iter().map(|(stream, error)| view! {
                        <li>{format!("{stream}: {error}")}</li>
                    }).collect_view()))}
                </ul>
                <section class="overflow-x-auto rounded-xl border border-slate-200 bg-white dark:border-slate-800 dark:bg-slate-900">
                    <table class="w-full text-sm" aria-label="Shards">
                        <thead class="text-left text-xs uppercase text-slate-500 dark:text-slate-400">
                            <tr>
                                <th class="px-3 py-2">"Stream"</th>
                                <th class="px-3 py-2">"Shard"</th>
                                <th class="px-3 py-2">"State"</th>
                                <th class="px-3 py-2 text-right">"Records/s"</th>
                                <th class="px-3 py-2 text-right">"Bytes/s"</th>
                                <th class="px-3 py-2 text-right">"MillisBehindLatest"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {move || streams.with(|s| s.as_ref().map(|s| s.shards.iter().map(|shard| {
                                let row_class = if shard.hot {
                                    "border-t border-slate-100 bg-amber-50 dark:border-slate-800 dark:bg-amber-950"
                                } else {
                                    "border-t border-slate-100 dark:border-slate-800"
                                };
                                view! {
                                    <tr class=row_class data-shard=shard.shard.clone() data-hot=shard.hot.to_string()>
                                        <td class="px-3 py-2">{shard.stream.clone()}</td>
                                        <td class="px-3 py-2 font-mono text-xs">{shard.shard.clone()}</td>
                                        <td class="px-3 py-2">{shard.state.clone()}
                                            {shard.last_error.clone().map(|e| view! { <span class="ml-2 text-xs text-red-600 dark:text-red-400">{e}</span> })}
                                        </td>
                                        <td class=cell>{format_number(shard.records_per_s)}</td>
                                        <td class=cell>{format_bytes_per_s(shard.bytes_per_s)}</td>
                                        <td class=cell>{format_lag_ms(shard.millis_behind_latest)}</td>
                                    </tr>
                                }
                            }).collect_view()))}
                        </tbody>
                    </table>
                </section>
            </Show>
        </Show>
    }
    .into_any()
}
