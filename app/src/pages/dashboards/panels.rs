//! What a dashboard panel reads and draws. Each panel's queries become `/api/v1/query` calls
//! over the page's range (a label pattern when a variable is chosen, one call per series for
//! `top N`), and the answers are drawn by kind: [`TimeChart`] lines per series and statistic
//! with the metric's alert thresholds, a stat's big number and sparkline, a sortable table,
//! the value distribution, or the heatmap.

use super::super::metric::align_points;
use crate::{
    components::{
        chart::{Distribution, Sparkline},
        plot::{ChartLine, HeatmapChart, PALETTE, ThresholdLine, TimeChart, format_exact},
    },
    fetch::{encode_component, get_json, now_ms},
    range::TimeRange,
};
use contract::{
    api::{AlertRuleInfo, MetricInfo, QueryResponse, SeriesList},
    dashboard::{Panel, PanelKind, PanelQuery, pattern_matches, series_pattern},
    summary::Statistic,
    units::format_number,
};
use leptos::prelude::*;

/// Bins of a distribution panel, and rows and columns of a heatmap.
const DISTRIBUTION_BINS: u32 = 30;
const HEATMAP_BINS: u32 = 20;
const HEATMAP_COLUMNS: u32 = 60;
/// Series a `top N` query ranks (the most recently active of the metric's series).
const TOP_CANDIDATES: usize = 40;

/// What every panel of a page shares.
#[derive(Clone, Copy)]
pub struct Shared {
    pub metrics: Memo<Vec<MetricInfo>>,
    pub rules: Memo<Vec<AlertRuleInfo>>,
    pub range: Memo<TimeRange>,
    pub tick: ReadSignal<u64>,
    /// The chosen variable values: (name, value).
    pub chosen: Memo<Vec<(String, String)>>,
}

/// One series a panel query read.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesResult {
    /// Index of the panel's query.
    pub query: usize,
    pub metric: String,
    /// The series' name in legends and tables.
    pub label: String,
    pub response: QueryResponse,
}

/// The `/api/v1/query` URL of `metric` over `from..to` at `tier`, merging the series that
/// match `pattern` (`None`: any value; an all-`None` or empty pattern leaves `series` out).
pub fn query_url(
    metric: &str,
    pattern: &[Option<String>],
    (from_ms, to_ms): (i64, i64),
    tier: &str,
    extra: &str,
) -> String {
    let mut url = format!(
        "/api/v1/query?metric={}&from={from_ms}&to={to_ms}&tier={tier}",
        encode_component(metric)
    );
    if pattern.iter().any(Option::is_some) {
        let json = serde_json::to_string(pattern).expect("labels always serialise");
        url.push_str(&format!("&series={}", encode_component(&json)));
    }
    url.push_str(extra);
    url
}

/// The name of a query's series: the metric, and the labels that are fixed.
fn series_label(metric: &str, pattern: &[Option<String>], queries: usize) -> String {
    let fixed: Vec<&str> = pattern.iter().flatten().map(String::as_str).collect();
    match (fixed.is_empty(), queries > 1) {
        (true, _) => metric.to_string(),
        (false, true) => format!("{metric} {}", fixed.join(", ")),
        (false, false) => fixed.join(", "),
    }
}

/// Reads every query of a panel.
async fn load(
    kind: PanelKind,
    queries: Vec<PanelQuery>,
    metrics: Vec<MetricInfo>,
    chosen: Vec<(String, String)>,
    range: TimeRange,
) -> Result<Vec<SeriesResult>, String> {
    let bounds = range.bounds(now_ms());
    let tier = range.tier();
    let extra = match kind {
        PanelKind::Distribution => format!("&bins={DISTRIBUTION_BINS}"),
        PanelKind::Heatmap => format!("&bins={HEATMAP_BINS}&columns={HEATMAP_COLUMNS}"),
        _ => String::new(),
    };
    let mut out = Vec::new();
    for (i, query) in queries.iter().enumerate() {
        let dimensions = metrics
            .iter()
            .find(|m| m.name == query.metric)
            .map(|m| m.dimensions.clone())
            .unwrap_or_default();
        let pattern = series_pattern(&dimensions, query.series.as_deref(), &chosen);
        match query.top {
            Some(n) => {
                let url = format!("/api/v1/metrics/{}/series", encode_component(&query.metric));
                let list = get_json::<SeriesList>(&url)
                    .await
                    .map_err(|e| e.to_string())?;
                let mut found = Vec::new();
                for labels in list
                    .series
                    .into_iter()
                    .filter(|l| pattern.is_empty() || pattern_matches(&pattern, l))
                    .take(TOP_CANDIDATES)
                {
                    let exact: Vec<Option<String>> = labels.iter().cloned().map(Some).collect();
                    let url = query_url(&query.metric, &exact, bounds, tier, &extra);
                    let response = get_json::<QueryResponse>(&url)
                        .await
                        .map_err(|e| e.to_string())?;
                    if response.summary.summary.count > 0 {
                        let label = series_label(&query.metric, &exact, queries.len());
                        found.push((label, response));
                    }
                }
                found.sort_by_key(|(_, r)| std::cmp::Reverse(r.summary.summary.count));
                out.extend(found.into_iter().take(n as usize).map(|(label, response)| {
                    SeriesResult {
                        query: i,
                        metric: query.metric.clone(),
                        label,
                        response,
                    }
                }));
            }
            None => {
                let url = query_url(&query.metric, &pattern, bounds, tier, &extra);
                let response = get_json::<QueryResponse>(&url)
                    .await
                    .map_err(|e| e.to_string())?;
                out.push(SeriesResult {
                    query: i,
                    metric: query.metric.clone(),
                    label: series_label(&query.metric, &pattern, queries.len()),
                    response,
                });
            }
        }
    }
    Ok(out)
}

/// The alert rules' thresholds drawn on a panel: rules on one of its metrics with one of the
/// statistics it shows.
pub fn thresholds_of(rules: &[AlertRuleInfo], panel: &Panel) -> Vec<ThresholdLine> {
    let mut lines: Vec<ThresholdLine> = rules
        .iter()
        .filter(|r| {
            panel.queries.iter().any(|q| {
                q.metric == r.spec.metric
                    && q.statistics_for(panel.kind).contains(&r.spec.statistic)
            })
        })
        .map(|r| ThresholdLine {
            value: r.spec.threshold,
            label: format!(
                "{}: {} {} {}",
                r.spec.name, r.spec.statistic, r.spec.comparison, r.spec.threshold
            ),
        })
        .collect();
    lines.dedup_by(|a, b| a.value == b.value);
    lines
}

/// A stat's colour class: the panel's thresholds (amber from the first, red from the last),
/// else red when one of the metric's alert rules on that statistic is breached.
pub fn stat_colour(
    value: Option<f64>,
    thresholds: &[f64],
    rules: &[AlertRuleInfo],
    metric: &str,
    statistic: Statistic,
) -> &'static str {
    let Some(v) = value else {
        return "text-slate-400";
    };
    if let (Some(first), Some(last)) = (thresholds.first(), thresholds.last()) {
        return if v >= *last {
            "text-red-600 dark:text-red-400"
        } else if v >= *first {
            "text-amber-600 dark:text-amber-400"
        } else {
            "text-emerald-600 dark:text-emerald-400"
        };
    }
    let breached = rules.iter().any(|r| {
        r.spec.metric == metric
            && r.spec.statistic == statistic
            && r.spec.comparison.holds(v, r.spec.threshold)
    });
    if breached {
        "text-red-600 dark:text-red-400"
    } else {
        "text-emerald-600 dark:text-emerald-400"
    }
}

/// The unit a statistic is in: a rate is the unit per second, a count has none of its own.
fn stat_unit(unit: Option<String>, statistic: Statistic) -> Option<String> {
    match statistic {
        Statistic::Rate => Some(match unit.as_deref() {
            None | Some("") | Some("count") => "/s".to_string(),
            Some(u) => format!("{u}/s"),
        }),
        Statistic::Count => None,
        _ => unit,
    }
}

fn value_text(value: Option<f64>, unit: Option<&str>) -> String {
    match (value, unit) {
        (Some(v), Some(u)) if u.starts_with('/') => format!("{}{u}", format_number(v)),
        (Some(v), Some(u)) if !u.is_empty() => format!("{} {u}", format_number(v)),
        (Some(v), _) => format_number(v),
        (None, _) => "—".to_string(),
    }
}

/// A panel's content: reads its queries (again on every refresh tick, range or variable
/// change) and draws them by kind.
#[component]
pub fn PanelBody(panel: Memo<Option<Panel>>, shared: Shared) -> impl IntoView {
    // Only what the data depends on: moving or resizing a panel does not re-read it.
    let reads = Memo::new(move |_| panel.with(|p| p.as_ref().map(|p| (p.kind, p.queries.clone()))));
    let data = LocalResource::new(move || {
        shared.tick.track();
        let reads = reads.get();
        let metrics = shared.metrics.get();
        let chosen = shared.chosen.get();
        let range = shared.range.get();
        async move {
            match reads {
                Some((kind, queries)) => load(kind, queries, metrics, chosen, range).await,
                None => Ok(Vec::new()),
            }
        }
    });
    let results =
        Memo::new(move |_| data.with(|d| d.as_ref().and_then(|r| r.as_ref().ok()).cloned()));
    let error = move || data.with(|d| d.as_ref().and_then(|r| r.as_ref().err()).cloned());
    let kind = Memo::new(move |_| panel.with(|p| p.as_ref().map(|p| p.kind)));
    let unit = Signal::derive(move || {
        panel
            .with(|p| p.as_ref().and_then(|p| p.unit.clone()))
            .or_else(|| {
                results.with(|r| {
                    r.as_ref()
                        .and_then(|r| r.first())
                        .and_then(|s| s.response.unit.clone())
                })
            })
    });
    let body = move || {
        let Some(kind) = kind.get() else {
            return ().into_any();
        };
        match kind {
            PanelKind::Timeseries => {
                view! { <TimeseriesPanel panel results shared unit /> }.into_any()
            }
            PanelKind::Stat => view! { <StatPanel panel results shared unit /> }.into_any(),
            PanelKind::Table => view! { <TablePanel panel results /> }.into_any(),
            PanelKind::Distribution => {
                let bins = Signal::derive(move || {
                    results.with(|r| {
                        r.as_ref()
                            .and_then(|r| r.first())
                            .map(|s| s.response.distribution.clone())
                            .unwrap_or_default()
                    })
                });
                view! { <div class="min-h-0 flex-1 overflow-hidden" data-chart="distribution"><Distribution label="Value distribution" bins /></div> }.into_any()
            }
            PanelKind::Heatmap => {
                let first = move || {
                    results.with(|r| {
                        r.as_ref()
                            .and_then(|r| r.first())
                            .map(|s| s.response.clone())
                    })
                };
                let heatmap = Signal::derive(move || first().and_then(|r| r.heatmap));
                let bins =
                    Signal::derive(move || first().map(|r| r.distribution).unwrap_or_default());
                view! { <HeatmapChart heatmap bins unit label="Value heatmap" /> }.into_any()
            }
        }
    };
    view! {
        {move || error().map(|e| view! { <p role="alert" class="text-xs text-red-600 dark:text-red-400">{e}</p> })}
        {move || (results.with(|r| r.is_none()) && error().is_none()).then(|| view! {
            <p class="text-xs text-slate-500 dark:text-slate-400">"Loading…"</p>
        })}
        <div class="flex min-h-0 flex-1 flex-col" data-testid="panel-body">{body}</div>
    }
}

#[component]
fn TimeseriesPanel(
    panel: Memo<Option<Panel>>,
    results: Memo<Option<Vec<SeriesResult>>>,
    shared: Shared,
    unit: Signal<Option<String>>,
) -> impl IntoView {
    let lines = Signal::derive(move || {
        let Some(panel) = panel.get() else {
            return Vec::new();
        };
        let mut lines = Vec::new();
        results.with(|r| {
            for result in r.iter().flatten() {
                let statistics = panel
                    .queries
                    .get(result.query)
                    .map(|q| q.statistics_for(panel.kind))
                    .unwrap_or_default();
                let r = &result.response;
                let slots = align_points(&r.points, r.from_ms, r.to_ms, r.tier_s);
                for statistic in statistics {
                    lines.push(ChartLine {
                        name: format!("{} {statistic}", result.label),
                        colour: PALETTE[lines.len() % PALETTE.len()],
                        values: slots
                            .iter()
                            .map(|p| p.and_then(|p| p.summary.statistic(statistic)))
                            .collect(),
                    });
                }
            }
        });
        lines
    });
    let start_ms = Signal::derive(move || {
        results.with(|r| {
            r.as_ref().and_then(|r| r.first()).map_or(0, |s| {
                let step = s.response.tier_s.max(1) * 1000;
                s.response.from_ms.div_euclid(step) * step
            })
        })
    });
    let step_ms = Signal::derive(move || {
        results.with(|r| {
            r.as_ref()
                .and_then(|r| r.first())
                .map_or(1000, |s| s.response.tier_s.max(1) * 1000)
        })
    });
    let thresholds = Signal::derive(move || {
        panel.with(|p| match p {
            Some(p) => shared.rules.with(|rules| thresholds_of(rules, p)),
            None => Vec::new(),
        })
    });
    let label = panel.with_untracked(|p| p.as_ref().map(|p| p.title.clone()).unwrap_or_default());
    view! { <TimeChart lines start_ms step_ms unit thresholds label /> }
}

#[component]
fn StatPanel(
    panel: Memo<Option<Panel>>,
    results: Memo<Option<Vec<SeriesResult>>>,
    shared: Shared,
    unit: Signal<Option<String>>,
) -> impl IntoView {
    let statistic = Memo::new(move |_| {
        panel.with(|p| {
            p.as_ref()
                .and_then(|p| p.queries.first().map(|q| q.statistics_for(p.kind)))
                .and_then(|s| s.first().copied())
                .unwrap_or(Statistic::Rate)
        })
    });
    let first = move || results.with(|r| r.as_ref().and_then(|r| r.first()).cloned());
    let value = Memo::new(move |_| {
        first().and_then(|s| s.response.summary.summary.statistic(statistic.get()))
    });
    let colour = move || {
        let (thresholds, metric) = panel.with(|p| {
            p.as_ref().map_or((Vec::new(), String::new()), |p| {
                (
                    p.thresholds.clone(),
                    p.queries
                        .first()
                        .map(|q| q.metric.clone())
                        .unwrap_or_default(),
                )
            })
        });
        shared
            .rules
            .with(|rules| stat_colour(value.get(), &thresholds, rules, &metric, statistic.get()))
    };
    let sparkline = Signal::derive(move || {
        first()
            .map(|s| {
                s.response
                    .points
                    .iter()
                    .map(|p| p.summary.statistic(statistic.get()).unwrap_or(0.0))
                    .collect()
            })
            .unwrap_or_default()
    });
    view! {
        <div class="flex min-h-0 flex-1 flex-col items-center justify-center gap-1">
            <p class=move || format!("text-4xl font-semibold tabular-nums {}", colour()) data-testid="stat-value"
                title=move || value.get().map(format_exact)>
                {move || value_text(value.get(), stat_unit(unit.get(), statistic.get()).as_deref())}
            </p>
            <p class="text-xs text-slate-500 dark:text-slate-400">{move || statistic.get().to_string()}</p>
            <Sparkline values=sparkline />
        </div>
    }
}

#[component]
fn TablePanel(
    panel: Memo<Option<Panel>>,
    results: Memo<Option<Vec<SeriesResult>>>,
) -> impl IntoView {
    let statistics = Memo::new(move |_| {
        panel.with(|p| {
            p.as_ref()
                .and_then(|p| p.queries.first().map(|q| q.statistics_for(p.kind)))
                .unwrap_or_default()
        })
    });
    // Column to sort by (0: the series name, i + 1: statistic i) and whether descending.
    let sort = RwSignal::new((1usize, true));
    let rows = move || {
        let stats = statistics.get();
        let mut rows: Vec<(String, Vec<Option<f64>>)> = results.with(|r| {
            r.iter()
                .flatten()
                .map(|s| {
                    let summary = s.response.summary.summary;
                    (
                        s.label.clone(),
                        stats.iter().map(|st| summary.statistic(*st)).collect(),
                    )
                })
                .collect()
        });
        let (column, descending) = sort.get();
        rows.sort_by(|a, b| {
            let order = if column == 0 {
                a.0.cmp(&b.0)
            } else {
                let key = |r: &(String, Vec<Option<f64>>)| r.1.get(column - 1).copied().flatten();
                key(a)
                    .partial_cmp(&key(b))
                    .unwrap_or(std::cmp::Ordering::Equal)
            };
            if descending { order.reverse() } else { order }
        });
        rows
    };
    let header = move |column: usize, name: String| {
        let pressed = move || {
            let (c, d) = sort.get();
            if c == column {
                if d { "descending" } else { "ascending" }
            } else {
                "none"
            }
        };
        view! {
            <th class={if column == 0 { "px-2 py-1" } else { "px-2 py-1 text-right" }} aria-sort=pressed>
                <button type="button" class="uppercase hover:underline"
                    on:click=move |_| sort.update(|(c, d)| if *c == column { *d = !*d } else { *c = column; *d = column != 0 })>
                    {name}
                </button>
            </th>
        }
    };
    view! {
        <div class="min-h-0 flex-1 overflow-auto">
            <table class="w-full text-sm" data-testid="panel-table">
                <thead class="text-left text-xs text-slate-500 dark:text-slate-400">
                    <tr>
                        {header(0, "Series".to_string())}
                        {move || statistics.get().into_iter().enumerate().map(|(i, s)| header(i + 1, s.to_string())).collect_view()}
                    </tr>
                </thead>
                <tbody>
                    {move || rows().into_iter().map(|(label, values)| view! {
                        <tr class="border-t border-slate-100 dark:border-slate-800">
                            <td class="px-2 py-1">{label}</td>
                            {values.into_iter().map(|v| view! {
                                <td class="px-2 py-1 text-right tabular-nums" title=v.map(format_exact)>
                                    {v.map_or_else(|| "—".to_string(), format_number)}
                                </td>
                            }).collect_view()}
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_urls_carry_the_pattern() {
        let bounds = (1_000, 2_000);
        assert_eq!(
            query_url("builtin:a:records", &[None, None], bounds, "1s", ""),
            "/api/v1/query?metric=builtin%3Aa%3Arecords&from=1000&to=2000&tier=1s"
        );
        assert_eq!(
            query_url("lat", &[Some("eu".into()), None], bounds, "1m", "&bins=30"),
            "/api/v1/query?metric=lat&from=1000&to=2000&tier=1m&series=%5B%22eu%22%2Cnull%5D&bins=30"
        );
        assert_eq!(series_label("lat", &[Some("eu".into()), None], 1), "eu");
        assert_eq!(series_label("lat", &[Some("eu".into()), None], 2), "lat eu");
        assert_eq!(series_label("lat", &[None], 1), "lat");
    }

    #[test]
    fn stat_colours_follow_thresholds() {
        let c = |v: f64| stat_colour(Some(v), &[10.0, 20.0], &[], "m", Statistic::Rate);
        assert!(c(5.0).contains("emerald"));
        assert!(c(10.0).contains("amber"));
        assert!(c(25.0).contains("red"));
        assert!(stat_colour(None, &[], &[], "m", Statistic::Rate).contains("slate"));
        assert_eq!(
            value_text(
                Some(1.5),
                stat_unit(Some("count".into()), Statistic::Rate).as_deref()
            ),
            "1.50/s"
        );
        assert_eq!(
            stat_unit(Some("ms".into()), Statistic::Rate).as_deref(),
            Some("ms/s")
        );
        assert_eq!(
            stat_unit(Some("ms".into()), Statistic::P99).as_deref(),
            Some("ms")
        );
        assert_eq!(stat_unit(Some("ms".into()), Statistic::Count), None);
    }
}
