use super::{EmptyState, PageHeader};
use crate::{
    components::{
        chart::{Distribution, LineChart},
        range::{RangePicker, use_refresh, use_url_range},
    },
    fetch::{get_json, now_ms},
    live::{decode, use_topics},
    range::TimeRange,
};
use contract::{
    api::{MetricInfo, Point, QueryResponse},
    protocol::{MetricLive, SeriesLive, Topic},
    units::{format_count, format_number},
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

/// Bins of the value distribution.
const DISTRIBUTION_BINS: u32 = 30;

/// One slot per tier step from the range start to its end: the point stored for that step, or
/// `None` where nothing was recorded (so a chart's x axis is time, not "points that exist").
pub fn align_points(
    points: &[Point],
    from_ms: i64,
    to_ms: i64,
    tier_s: i64,
) -> Vec<Option<&Point>> {
    let step_ms = tier_s.max(1) * 1000;
    let first = from_ms.div_euclid(step_ms);
    let last = (to_ms - 1).div_euclid(step_ms);
    if last < first || last - first > 100_000 {
        return points.iter().map(Some).collect();
    }
    let mut slots = vec![None; (last - first + 1) as usize];
    for point in points {
        let i = point.start_ms.div_euclid(step_ms) - first;
        if let Some(slot) = usize::try_from(i).ok().and_then(|i| slots.get_mut(i)) {
            *slot = Some(point);
        }
    }
    slots
}

/// `/metric/{name}`: the selected range's figures, rate and p50/p90/p99 charts, the value
/// distribution, the top series, the definition and the records the metric could not use.
#[component]
pub fn MetricDetail() -> impl IntoView {
    let params = use_params_map();
    let name = params.with_untracked(|p| p.get("name").unwrap_or_default());
    let live = use_topics(vec![Topic::Metric { name: name.clone() }]);
    let url = use_url_range();
    let range = url.range;
    let refresh = use_refresh(range);
    let metric = Memo::new({
        let name = name.clone();
        move |_| {
            live.metric
                .with(decode::<MetricLive>)
                .filter(|m| m.name == name)
        }
    });
    // Stored history of the range: re-read on every refresh tick while live.
    let history = LocalResource::new({
        let name = name.clone();
        move || {
            refresh.track();
            let url = range
                .get()
                .query_url(&name, now_ms(), Some(DISTRIBUTION_BINS));
            async move { get_json::<QueryResponse>(&url).await }
        }
    });
    let definition = LocalResource::new({
        let name = name.clone();
        move || {
            let url = format!("/api/v1/metrics/{name}");
            async move { get_json::<MetricInfo>(&url).await.ok() }
        }
    });
    let stored =
        Memo::new(move |_| history.with(|h| h.as_ref().and_then(|r| r.as_ref().ok()).cloned()));
    let stored_error = move || {
        history.with(|h| {
            h.as_ref()
                .and_then(|r| r.as_ref().err())
                .map(|e| e.to_string())
        })
    };
    let window_index = move || range.with(TimeRange::live_window_index);
    // The page heads with one type: a live window's summary, or the stored range's.
    let summary = Memo::new(move |_| match window_index() {
        Some(i) => metric.with(|m| {
            m.as_ref()
                .and_then(|m| m.card.as_ref())
                .and_then(|c| c.windows.get(i))
                .map(|w| w.summary)
        }),
        None => stored.with(|s| s.as_ref().map(|r| r.summary.summary)),
    });
    let aligned = move |pick: fn(&Point) -> f64| {
        stored.with(|s| {
            s.as_ref()
                .map(|r| {
                    align_points(&r.points, r.from_ms, r.to_ms, r.tier_s)
                        .into_iter()
                        .map(|p| p.map_or(0.0, pick))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
    };
    // The periods its alert rules were pending or firing, drawn on both charts.
    let alert_bands = crate::components::alerts::use_alert_bands(
        name.clone(),
        Signal::derive(move || stored.with(|s| s.as_ref().map(|r| (r.from_ms, r.to_ms)))),
    );
    let rate = Signal::derive(move || {
        vec![(
            "rate/s".to_string(),
            "text-sky-500",
            aligned(|p| p.summary.rate_per_s),
        )]
    });
    let percentiles = Signal::derive(move || {
        vec![
            (
                "p50".to_string(),
                "text-emerald-500",
                aligned(|p| p.summary.p50.unwrap_or(0) as f64),
            ),
            (
                "p90".to_string(),
                "text-amber-500",
                aligned(|p| p.summary.p90.unwrap_or(0) as f64),
            ),
            (
                "p99".to_string(),
                "text-rose-500",
                aligned(|p| p.summary.p99.unwrap_or(0) as f64),
            ),
        ]
    });
    let bins = Signal::derive(move || {
        stored.with(|s| {
            s.as_ref()
                .map(|r| r.distribution.clone())
                .unwrap_or_default()
        })
    });
    let tier = move || stored.with(|s| s.as_ref().map(|r| r.tier_s));
    let title = name.clone();
    let dash = || "—".to_string();
    let figure =
        "rounded-xl border border-slate-200 bg-white p-3 dark:border-slate-800 dark:bg-slate-900";
    let label = "text-xs text-slate-500 dark:text-slate-400";
    let edit_href = format!("/metrics/{name}/edit");
    view! {
        <Title text=title.clone() />
        <PageHeader title="Metric" subtitle="Rate, percentiles, distribution and series over the selected range." />
        <div class="mb-4 flex flex-wrap items-baseline gap-3">
            <h2 class="font-mono text-lg" data-testid="metric-name">{name.clone()}</h2>
            <Show when=move || definition.with(|d| d.as_ref().and_then(|d| d.as_ref()).is_some_and(|d| !d.builtin))>
                <a href=edit_href.clone() class="text-sm text-sky-700 underline dark:text-sky-400">"Edit definition"</a>
            </Show>
        </div>
        <RangePicker url />
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
                <dl class="mb-4 grid grid-cols-2 gap-3 sm:grid-cols-3 lg:grid-cols-6" data-testid="range-summary">
                    <div class=figure><dt class=label>"Records"</dt>
                        <dd class="text-lg tabular-nums" data-field="count">{move || summary.with(|s| s.as_ref().map_or_else(dash, |s| format_number(s.count as f64)))}</dd></div>
                    <div class=figure><dt class=label>"Rate"</dt>
                        <dd class="text-lg tabular-nums" data-field="rate">{move || summary.with(|s| s.as_ref().map_or_else(dash, |s| format!("{}/s", format_number(s.rate_per_s))))}</dd></div>
                    <div class=figure><dt class=label>"Mean"</dt>
                        <dd class="text-lg tabular-nums">{move || summary.with(|s| s.as_ref().and_then(|s| s.mean).map_or_else(dash, format_number))}</dd></div>
                    <div class=figure><dt class=label>"p50"</dt>
                        <dd class="text-lg tabular-nums" data-field="p50">{move || summary.with(|s| s.as_ref().and_then(|s| s.p50).map_or_else(dash, |v| format_number(v as f64)))}</dd></div>
                    <div class=figure><dt class=label>"p90"</dt>
                        <dd class="text-lg tabular-nums" data-field="p90">{move || summary.with(|s| s.as_ref().and_then(|s| s.p90).map_or_else(dash, |v| format_number(v as f64)))}</dd></div>
                    <div class=figure><dt class=label>"p99"</dt>
                        <dd class="text-lg tabular-nums" data-field="p99">{move || summary.with(|s| s.as_ref().and_then(|s| s.p99).map_or_else(dash, |v| format_number(v as f64)))}</dd></div>
                </dl>
                <p class="mb-2 text-xs text-slate-500 dark:text-slate-400" data-testid="chart-source">
                    {move || match (tier(), stored_error()) {
                        (_, Some(error)) => format!("History unavailable: {error}"),
                        (Some(tier), None) => format!(
                            "Charts: stored {} buckets{}",
                            match tier { 1 => "1-s", 60 => "1-min", _ => "1-h" },
                            if range.get().is_live() { ", refreshed while live" } else { "" }
                        ),
                        (None, None) => "Loading history…".to_string(),
                    }}
                </p>
                <div class="grid grid-cols-1 gap-4 lg:grid-cols-2">
                    <LineChart label="Rate" series=rate bands=alert_bands />
                    <LineChart label="Percentiles" series=percentiles bands=alert_bands />
                    <Distribution label="Value distribution" bins />
                </div>
                <h3 class="mt-6 mb-2 font-medium">"Top series (by records in the live window)"</h3>
                <SeriesTable metric range />
                <h3 class="mt-6 mb-2 font-medium">"Definition"</h3>
                <pre class="overflow-x-auto rounded-xl border border-slate-200 bg-white p-3 text-xs dark:border-slate-800 dark:bg-slate-900" data-testid="definition">
                    {move || definition.with(|d| match d.as_ref().and_then(|d| d.as_ref()) {
                        Some(info) => match &info.definition {
                            Some(def) => serde_json::to_string_pretty(def).unwrap_or_default(),
                            None => "Built-in metric: no definition.".to_string(),
                        },
                        None => "…".to_string(),
                    })}
                </pre>
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

/// The 20 busiest series in the live window matching the range (the 1-h window for stored
/// ranges, which the live socket does not carry per series).
#[component]
fn SeriesTable(
    metric: Memo<Option<contract::protocol::MetricLive>>,
    range: Memo<TimeRange>,
) -> impl IntoView {
    let cell = "px-3 py-2 text-right tabular-nums";
    view! {
        <table class="w-full text-sm" aria-label="Series">
            <thead class="text-left text-xs uppercase text-slate-500 dark:text-slate-400">
                <tr>
                    <th class="px-3 py-2">"Dimensions"</th>
                    <th class="px-3 py-2 text-right">"Count"</th>
                    <th class="px-3 py-2 text-right">"Rate/s"</th>
                    <th class="px-3 py-2 text-right">"Mean"</th>
                    <th class="px-3 py-2 text-right">"p50"</th>
                    <th class="px-3 py-2 text-right">"p99"</th>
                </tr>
            </thead>
            <tbody>
                {move || {
                    let window = range.with(TimeRange::live_window_index).unwrap_or(3);
                    metric.with(|m| m.as_ref().map(|m| {
                        let stats = |s: &SeriesLive| s.windows.get(window).map(|w| w.summary).unwrap_or_default();
                        let mut series = m.series.clone();
                        series.sort_by_key(|s| std::cmp::Reverse(stats(s).count));
                        series.truncate(20);
                        series.into_iter().map(|s| {
                            let w = stats(&s);
                            let labels = if s.labels.is_empty() { "(all)".to_string() } else { s.labels.join(", ") };
                            let dash = || "—".to_string();
                            view! {
                                <tr class="border-t border-slate-100 dark:border-slate-800">
                                    <td class="px-3 py-2">{labels}</td>
                                    <td class=cell data-testid="series-count">{format_count(w.count)}</td>
                                    <td class=cell>{format_number(w.rate_per_s)}</td>
                                    <td class=cell>{w.mean.map(format_number).unwrap_or_else(dash)}</td>
                                    <td class=cell>{w.p50.map(|v| format_number(v as f64)).unwrap_or_else(dash)}</td>
                                    <td class=cell>{w.p99.map(|v| format_number(v as f64)).unwrap_or_else(dash)}</td>
                                </tr>
                            }
                        }).collect_view()
                    }))
                }}
            </tbody>
        </table>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract::summary::Summary;

    fn point(start_ms: i64, count: u64) -> Point {
        Point {
            start_ms,
            summary: Summary {
                count,
                ..Summary::default()
            },
        }
    }

    #[test]
    fn points_align_to_tier_steps_with_gaps() {
        let points = [point(10_000, 1), point(13_000, 3)];
        let slots = align_points(&points, 10_500, 15_000, 1);
        assert_eq!(
            slots
                .iter()
                .map(|p| p.map(|p| p.summary.count))
                .collect::<Vec<_>>(),
            vec![Some(1), None, None, Some(3), None]
        );
        // A point outside the range is left out.
        assert_eq!(align_points(&[point(99_000, 1)], 0, 2_000, 1).len(), 2);
    }
}
