use super::{EmptyState, PageHeader};
use crate::live::{decode, use_topics};
use contract::{
    protocol::{StreamsLive, Topic},
    units::{format_bytes_per_s, format_lag_ms, format_number},
};
use leptos::prelude::*;
use leptos_meta::Title;
use std::collections::HashMap;

/// A reader this close to the tip counts as caught up (no progress bar).
const CAUGHT_UP_MS: i64 = 5_000;

/// How far a reader has caught up: `1 - lag / peak`, or `None` once it is caught up.
pub fn catch_up_progress(lag_ms: i64, peak_lag_ms: i64) -> Option<f64> {
    (lag_ms > CAUGHT_UP_MS).then(|| {
        let peak = peak_lag_ms.max(lag_ms) as f64;
        (1.0 - lag_ms as f64 / peak).clamp(0.0, 1.0)
    })
}

/// `/streams`: every shard of every stream, live; hot shards highlighted.
#[component]
pub fn Streams() -> impl IntoView {
    let live = use_topics(vec![Topic::Streams]);
    let streams = Memo::new(move |_| live.streams.with(decode::<StreamsLive>));
    // The largest lag seen per shard while it is behind, for the catch-up bar (reset once
    // the reader has caught up).
    let peak_lag = RwSignal::new(HashMap::<(String, String), i64>::new());
    Effect::new(move |_| {
        streams.with(|s| {
            let Some(s) = s else { return };
            peak_lag.update(|peaks| {
                for shard in &s.shards {
                    let key = (shard.stream.clone(), shard.shard.clone());
                    match shard.millis_behind_latest {
                        Some(lag) if lag > CAUGHT_UP_MS => {
                            let peak = peaks.entry(key).or_insert(lag);
                            *peak = (*peak).max(lag);
                        }
                        _ => {
                            peaks.remove(&key);
                        }
                    }
                }
            });
        })
    });
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
                                <th class="px-3 py-2">"Lineage"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {move || streams.with(|s| s.as_ref().map(|s| s.shards.iter().map(|shard| {
                                let row_class = if shard.hot {
                                    "border-t border-slate-100 bg-amber-50 dark:border-slate-800 dark:bg-amber-950"
                                } else {
                                    "border-t border-slate-100 dark:border-slate-800"
                                };
                                let children: Vec<String> = s.shards.iter()
                                    .filter(|c| c.stream == shard.stream && c.parents.contains(&shard.shard))
                                    .map(|c| c.shard.clone())
                                    .collect();
                                let key = (shard.stream.clone(), shard.shard.clone());
                                let progress = shard.millis_behind_latest.and_then(|lag| {
                                    let peak = peak_lag.with_untracked(|p| p.get(&key).copied()).unwrap_or(lag);
                                    catch_up_progress(lag, peak)
                                });
                                view! {
                                    <tr class=row_class data-shard=shard.shard.clone() data-hot=shard.hot.to_string()>
                                        <td class="px-3 py-2">{shard.stream.clone()}
                                            <a class="ml-2 text-xs text-sky-700 underline dark:text-sky-400" data-testid="records-link"
                                                href=format!("/streams/{}/records", shard.stream)>"records"</a>
                                        </td>
                                        <td class="px-3 py-2 font-mono text-xs">{shard.shard.clone()}
                                            {shard.hot.then(|| view! { <span class="ml-2 rounded bg-amber-200 px-1.5 py-0.5 font-sans text-xs font-medium text-amber-900 dark:bg-amber-800 dark:text-amber-100" title="Carries at least twice the stream's mean records/s">"hot"</span> })}
                                        </td>
                                        <td class="px-3 py-2">{shard.state.as_str().replace('_', " ")}
                                            {shard.last_error.clone().map(|e| view! { <span class="ml-2 text-xs text-red-600 dark:text-red-400">{e}</span> })}
                                        </td>
                                        <td class=cell>{format_number(shard.records_per_s)}</td>
                                        <td class=cell>{format_bytes_per_s(shard.bytes_per_s)}</td>
                                        <td class=cell>{format_lag_ms(shard.millis_behind_latest)}
                                            {progress.map(|p| view! {
                                                <div class="mt-1 h-1.5 w-24 ml-auto rounded bg-slate-200 dark:bg-slate-700" role="progressbar"
                                                    aria-label="Catch-up" aria-valuemin="0" aria-valuemax="100" aria-valuenow=format!("{:.0}", p * 100.0)>
                                                    <div class="h-1.5 rounded bg-sky-500" style=format!("width: {:.0}%", p * 100.0)></div>
                                                </div>
                                            })}
                                        </td>
                                        <td class="px-3 py-2 font-mono text-xs" data-field="lineage">
                                            {(!shard.parents.is_empty()).then(|| format!("from {}", shard.parents.join(" + ")))}
                                            {(!shard.parents.is_empty() && !children.is_empty()).then_some("; ")}
                                            {(!children.is_empty()).then(|| format!("into {}", children.join(" + ")))}
                                        </td>
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_grows_as_lag_falls() {
        assert_eq!(catch_up_progress(1_000, 60_000), None);
        assert_eq!(catch_up_progress(60_000, 60_000), Some(0.0));
        assert_eq!(catch_up_progress(15_000, 60_000), Some(0.75));
        // A lag above the remembered peak is the new peak.
        assert_eq!(catch_up_progress(90_000, 60_000), Some(0.0));
    }
}
