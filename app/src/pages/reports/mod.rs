//! `/reports`: choose metrics (searchable, multi-select or all), a range (presets or a custom
//! UTC from/to), a resolution and a format; see the row count the export will have; download
//! it with a progress indicator.
//!
//! Data: the metric list from `GET /api/v1/metrics`; the estimate from
//! `GET /api/v1/export/estimate` (the export's own validation and row count, refreshed every
//! few seconds while history accumulates); the file from `GET /api/v1/export` with the same
//! query string ([`form::ReportForm::query`]). The server renders the loading state; the
//! browser (feature `hydrate`, [`browser`]) does every request.

#[cfg(feature = "hydrate")]
mod browser;
mod form;

use super::{EmptyState, PageHeader};
use contract::api::{ApiErrorDetail, ExportEstimate, ExportFormat, MetricInfo};
use form::{CUSTOM, FORMATS, Progress, RANGES, RESOLUTIONS, ReportForm, describe_estimate};
use leptos::prelude::*;
use leptos_meta::Title;

/// How often the estimate is asked again while the page is open (history keeps arriving).
#[cfg(feature = "hydrate")]
const ESTIMATE_REFRESH: std::time::Duration = std::time::Duration::from_secs(3);

/// The estimate line's state (the server renders `Pending`; the browser fills it in).
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
#[derive(Debug, Clone, PartialEq)]
enum Estimate {
    /// Asked, no answer yet (or the form is not complete).
    Pending,
    Ready(ExportEstimate),
    Refused(ApiErrorDetail),
}

/// The download's state (moved on only in the browser).
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
#[derive(Debug, Clone, PartialEq)]
enum Download {
    Idle,
    Streaming(Progress),
    Saved {
        file_name: String,
        progress: Progress,
    },
    Cancelled,
    Failed(ApiErrorDetail),
}

impl Download {
    fn is_streaming(&self) -> bool {
        matches!(self, Download::Streaming(_))
    }
}

const PANEL: &str =
    "rounded-xl border border-slate-200 bg-white p-4 dark:border-slate-800 dark:bg-slate-900";
const LEGEND: &str = "px-1 text-sm font-medium";
const INPUT: &str = "rounded-md border border-slate-300 bg-white px-2 py-1 text-sm \
                     dark:border-slate-700 dark:bg-slate-950";

/// `/reports`.
#[component]
pub fn Reports() -> impl IntoView {
    let metric_list = RwSignal::new(None::<Result<Vec<MetricInfo>, ApiErrorDetail>>);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        leptos::task::spawn_local(async move {
            let list = browser::get_json::<contract::api::MetricList>("/api/v1/metrics").await;
            metric_list.set(Some(list.map(|l| l.metrics)));
        });
    });
    view! {
        <Title text="Reports" />
        <PageHeader title="Reports" subtitle="CSV, JSON and printable reports for any range." />
        {move || match metric_list.get() {
            None => view! {
                <p class="text-sm text-slate-500 dark:text-slate-400">"Loading metrics…"</p>
            }
            .into_any(),
            Some(Err(error)) => view! {
                <p role="alert" class="text-sm text-rose-600 dark:text-rose-400">
                    "Could not list the metrics: " {error.message}
                </p>
            }
            .into_any(),
            Some(Ok(list)) if list.is_empty() => view! {
                <EmptyState heading="Nothing to report yet">
                    <p>
                        "Reports cover stored metric history. Define a metric (or name a stream) \
                         and its history starts accumulating once records arrive."
                    </p>
                </EmptyState>
            }
            .into_any(),
            Some(Ok(list)) => view! { <ReportBuilder metrics=list /> }.into_any(),
        }}
    }
}

/// Everything the user chose, one signal per input.
#[derive(Clone, Copy)]
struct Choices {
    search: RwSignal<String>,
    all_metrics: RwSignal<bool>,
    selected: RwSignal<Vec<String>>,
    range: RwSignal<&'static str>,
    custom_from: RwSignal<String>,
    custom_to: RwSignal<String>,
    resolution: RwSignal<&'static str>,
    format: RwSignal<ExportFormat>,
}

impl Choices {
    fn new() -> Self {
        Choices {
            search: RwSignal::new(String::new()),
            all_metrics: RwSignal::new(false),
            selected: RwSignal::new(Vec::new()),
            range: RwSignal::new(RANGES[0].1),
            custom_from: RwSignal::new(String::new()),
            custom_to: RwSignal::new(String::new()),
            resolution: RwSignal::new(RESOLUTIONS[0].1),
            format: RwSignal::new(ExportFormat::Csv),
        }
    }

    /// The choices as plain data (tracked: a memo over it follows every input).
    fn form(&self) -> ReportForm {
        ReportForm {
            all_metrics: self.all_metrics.get(),
            metrics: self.selected.get(),
            range: self.range.get().to_string(),
            custom_from: self.custom_from.get(),
            custom_to: self.custom_to.get(),
            resolution: self.resolution.get().to_string(),
            format: self.format.get(),
        }
    }
}

/// The form, the estimate, the download and its progress.
#[component]
fn ReportBuilder(metrics: Vec<MetricInfo>) -> impl IntoView {
    let choices = Choices::new();
    let estimate = RwSignal::new(Estimate::Pending);
    let download = RwSignal::new(Download::Idle);
    let cancel = RwSignal::new(false);
    let query = Memo::new(move |_| choices.form().query());

    #[cfg(feature = "hydrate")]
    {
        refresh_estimate(query, estimate);
        start_custom_ranges_at_the_last_hour(choices);
    }
    // A finished, failed or cancelled download's line belongs to the previous choice.
    Effect::new(move |_| {
        query.track();
        if download.with_untracked(|d| !matches!(d, Download::Idle | Download::Streaming(_))) {
            download.set(Download::Idle);
        }
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Ok(q) = query.get_untracked() else { return };
        if download.with_untracked(Download::is_streaming) {
            return;
        }
        start_download(q, choices.format.get_untracked(), download, cancel);
    };

    // Each part ends type-erased (`into_any`): one nested view type would overflow the
    // compiler's query depth in the server crate.
    view! {
        <form class="grid grid-cols-1 gap-6 lg:grid-cols-[minmax(0,2fr)_minmax(0,3fr)]" on:submit=on_submit>
            <MetricPicker metrics choices />
            <div class="space-y-4">
                <RangeChoice choices />
                <OutputOptions choices />
                <EstimatePanel query estimate download cancel />
            </div>
        </form>
    }
}

/// Asks for the estimate whenever the query changes, and again on a timer; only the newest
/// answer is shown.
#[cfg(feature = "hydrate")]
fn refresh_estimate(query: Memo<Result<String, ApiErrorDetail>>, estimate: RwSignal<Estimate>) {
    let tick = RwSignal::new(0u64);
    if let Ok(handle) = set_interval_with_handle(move || tick.update(|t| *t += 1), ESTIMATE_REFRESH)
    {
        on_cleanup(move || handle.clear());
    }
    let asked = StoredValue::new((0u64, String::new()));
    Effect::new(move |_| {
        tick.track();
        let Ok(q) = query.get() else {
            estimate.set(Estimate::Pending);
            return;
        };
        let generation = asked.with_value(|(g, last)| {
            if *last != q {
                estimate.set(Estimate::Pending);
            }
            g + 1
        });
        asked.set_value((generation, q.clone()));
        leptos::task::spawn_local(async move {
            let answer =
                browser::get_json::<ExportEstimate>(&format!("/api/v1/export/estimate?{q}")).await;
            if asked.with_value(|(g, _)| *g == generation) {
                estimate.set(match answer {
                    Ok(e) => Estimate::Ready(e),
                    Err(e) => Estimate::Refused(e),
                });
            }
        });
    });
}

/// A custom range starts as the last hour.
#[cfg(feature = "hydrate")]
fn start_custom_ranges_at_the_last_hour(choices: Choices) {
    Effect::new(move |_| {
        if choices.range.get() == CUSTOM && choices.custom_from.get_untracked().is_empty() {
            choices
                .custom_from
                .set(browser::utc_input_value(3_600_000.0));
            choices.custom_to.set(browser::utc_input_value(0.0));
        }
    });
}

/// Streams the export of `query` into a file (in the browser), moving `download` along;
/// `cancel` turning true stops it.
fn start_download(
    query: String,
    format: ExportFormat,
    download: RwSignal<Download>,
    cancel: RwSignal<bool>,
) {
    cancel.set(false);
    download.set(Download::Streaming(Progress::default()));
    #[cfg(feature = "hydrate")]
    leptos::task::spawn_local(async move {
        let result = browser::download(
            &format!("/api/v1/export?{query}"),
            format,
            |p| download.set(Download::Streaming(p)),
            || cancel.get_untracked(),
        )
        .await;
        download.set(match result {
            Ok(Some(saved)) => Download::Saved {
                file_name: saved.file_name,
                progress: saved.progress,
            },
            Ok(None) => Download::Cancelled,
            Err(e) => Download::Failed(e),
        });
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = (query, format);
}

/// The searchable metric list with "all metrics".
#[component]
fn MetricPicker(metrics: Vec<MetricInfo>, choices: Choices) -> impl IntoView {
    let Choices {
        search,
        all_metrics,
        selected,
        ..
    } = choices;
    let total_metrics = metrics.len();
    let metrics = StoredValue::new(metrics);
    let shown = Memo::new(move |_| {
        let needle = search.get().trim().to_lowercase();
        metrics.with_value(|all| {
            all.iter()
                .filter(|m| {
                    needle.is_empty()
                        || m.name.to_lowercase().contains(&needle)
                        || m.stream.to_lowercase().contains(&needle)
                })
                .cloned()
                .collect::<Vec<_>>()
        })
    });
    view! {
        <fieldset class=PANEL>
            <legend class=LEGEND>"Metrics"</legend>
            <input
                type="search"
                class=format!("{INPUT} w-full")
                placeholder="Search metrics or streams"
                aria-label="Search metrics"
                bind:value=search
            />
            <label class="mt-3 flex items-center gap-2 text-sm font-medium">
                <input type="checkbox" bind:checked=all_metrics />
                {format!("All metrics ({total_metrics})")}
            </label>
            <ul
                aria-label="Metrics"
                class="mt-2 max-h-80 space-y-1 overflow-y-auto text-sm"
                class:opacity-50=move || all_metrics.get()
            >
                <For each=move || shown.get() key=|m| m.id let:metric>
                    <MetricChoice metric choices />
                </For>
            </ul>
            <p class="mt-2 text-xs text-slate-500 dark:text-slate-400">
                {move || if all_metrics.get() {
                    "Every metric is exported.".to_string()
                } else {
                    let shown_n = shown.with(|s| s.len());
                    format!("{} selected · {shown_n} of {total_metrics} shown", selected.with(|s| s.len()))
                }}
            </p>
        </fieldset>
    }
    .into_any()
}

/// One metric's checkbox (disabled while "all metrics" is on).
#[component]
fn MetricChoice(metric: MetricInfo, choices: Choices) -> impl IntoView {
    let Choices {
        all_metrics,
        selected,
        ..
    } = choices;
    let name = metric.name.clone();
    let checked_name = name.clone();
    let detail = match &metric.unit {
        Some(unit) => format!("{} · {unit}", metric.stream),
        None => metric.stream.clone(),
    };
    view! {
        <li>
            <label class="flex items-baseline gap-2">
                <input
                    type="checkbox"
                    disabled=move || all_metrics.get()
                    prop:checked=move || selected.with(|s| s.contains(&checked_name))
                    on:change=move |_| selected.update(|s| {
                        match s.iter().position(|n| *n == name) {
                            Some(i) => { s.remove(i); }
                            None => s.push(name.clone()),
                        }
                    })
                />
                <span class="font-mono">{metric.name.clone()}</span>
                <span class="text-xs text-slate-500 dark:text-slate-400">{detail}</span>
            </label>
        </li>
    }
}

/// The range presets, and the UTC from/to of a custom range.
#[component]
fn RangeChoice(choices: Choices) -> impl IntoView {
    let Choices {
        range,
        custom_from,
        custom_to,
        ..
    } = choices;
    view! {
        <fieldset class=PANEL>
            <legend class=LEGEND>"Range"</legend>
            <div class="flex flex-wrap gap-3 text-sm">
                <Radios name="range" options=&RANGES choice=range />
            </div>
            <Show when=move || range.get() == CUSTOM>
                <div class="mt-3 flex flex-wrap items-end gap-4 text-sm">
                    <label class="flex flex-col gap-1">
                        "From (UTC)"
                        <input type="datetime-local" class=INPUT bind:value=custom_from />
                    </label>
                    <label class="flex flex-col gap-1">
                        "To (UTC)"
                        <input type="datetime-local" class=INPUT bind:value=custom_to />
                    </label>
                    <p class="text-xs text-slate-500 dark:text-slate-400">
                        "Times are UTC, not your local time."
                    </p>
                </div>
            </Show>
        </fieldset>
    }
    .into_any()
}

/// The resolution and the file format.
#[component]
fn OutputOptions(choices: Choices) -> impl IntoView {
    let Choices {
        resolution, format, ..
    } = choices;
    view! {
        <div class=format!("{PANEL} flex flex-wrap gap-6 text-sm")>
            <label class="flex items-center gap-2">
                "Resolution"
                <select
                    class=INPUT
                    on:change=move |ev| {
                        let value = event_target_value(&ev);
                        if let Some((_, r)) = RESOLUTIONS.iter().find(|(_, r)| *r == value) {
                            resolution.set(r);
                        }
                    }
                    prop:value=move || resolution.get()
                >
                    {RESOLUTIONS.iter().map(|(label, value)| view! {
                        <option value=*value>{*label}</option>
                    }).collect_view()}
                </select>
            </label>
            <fieldset class="flex flex-wrap items-center gap-3">
                <legend class="sr-only">"Format"</legend>
                <span aria-hidden="true">"Format"</span>
                <Radios name="format" options=&FORMATS choice=format />
            </fieldset>
        </div>
    }
    .into_any()
}

/// The row count the export will have, what to fix first, the download buttons and status.
#[component]
fn EstimatePanel(
    query: Memo<Result<String, ApiErrorDetail>>,
    estimate: RwSignal<Estimate>,
    download: RwSignal<Download>,
    cancel: RwSignal<bool>,
) -> impl IntoView {
    let streaming = move || download.with(Download::is_streaming);
    let export_url = move || {
        query
            .get()
            .map(|q| format!("/api/v1/export?{q}"))
            .unwrap_or_default()
    };
    // What to fix, first from the form itself, then from the server.
    let problem = move || {
        if let Err(e) = query.get() {
            return Some(e);
        }
        if let Download::Failed(e) = download.get() {
            return Some(e);
        }
        match estimate.get() {
            Estimate::Refused(e) => Some(e),
            _ => None,
        }
    };
    view! {
        <section class=PANEL aria-label="Estimate">
            <p
                class="text-sm"
                data-testid="estimate"
                data-rows=move || match estimate.get() {
                    Estimate::Ready(e) => e.rows.to_string(),
                    _ => String::new(),
                }
            >
                {move || match estimate.get() {
                    Estimate::Ready(e) => describe_estimate(&e),
                    Estimate::Pending => "Counting rows…".to_string(),
                    Estimate::Refused(_) => "No estimate: see below.".to_string(),
                }}
            </p>
            {move || problem().map(|e| {
                let field = e.field.clone();
                view! {
                    <p role="alert" class="mt-2 text-sm text-rose-600 dark:text-rose-400" data-field=field>
                        {e.field.map(|f| view! { <strong class="font-mono">{f}</strong> ": " })}
                        {e.message}
                    </p>
                }
            })}
            <div class="mt-4 flex flex-wrap items-center gap-3">
                <button
                    type="submit"
                    class="rounded-md bg-slate-900 px-4 py-2 text-sm font-medium text-white disabled:opacity-50 dark:bg-slate-100 dark:text-slate-900"
                    disabled=move || query.with(|q| q.is_err()) || streaming()
                >
                    "Download"
                </button>
                <Show when=streaming>
                    <button
                        type="button"
                        class="rounded-md border border-slate-300 px-3 py-2 text-sm dark:border-slate-700"
                        on:click=move |_| cancel.set(true)
                    >
                        "Cancel"
                    </button>
                </Show>
                <a
                    class="text-xs text-slate-500 underline dark:text-slate-400"
                    href=export_url
                    class:hidden=move || query.with(|q| q.is_err())
                    title="Opens the export in the browser's own download manager: no progress here, nothing held in the page"
                >
                    "Direct link"
                </a>
            </div>
            <DownloadStatus download />
        </section>
    }
    .into_any()
}

/// One radio button per (label, value) option, bound to `choice`; a value's `value`
/// attribute is its wire name.
#[component]
fn Radios<T>(
    name: &'static str,
    options: &'static [(&'static str, T)],
    choice: RwSignal<T>,
) -> impl IntoView
where
    T: Copy + PartialEq + Into<&'static str> + Send + Sync + 'static,
{
    options
        .iter()
        .map(|&(label, value)| {
            view! {
                <label class="flex items-center gap-1">
                    <input
                        type="radio"
                        name=name
                        value=value.into()
                        prop:checked=move || choice.get() == value
                        on:change=move |_| choice.set(value)
                    />
                    {label}
                </label>
            }
        })
        .collect_view()
}

/// The progress bar while streaming, and what was saved.
#[component]
fn DownloadStatus(download: RwSignal<Download>) -> impl IntoView {
    move || {
        match download.get() {
        Download::Idle | Download::Failed(_) => ().into_any(),
        Download::Streaming(p) => {
            let (value, max) = match (p.rows, p.expected_rows) {
                (Some(rows), Some(expected)) if expected > 0 => {
                    (Some(rows.min(expected) as f64), expected as f64)
                }
                _ => (None, 1.0),
            };
            view! {
                <div class="mt-4 text-sm" data-testid="download-progress">
                    <progress class="w-full" aria-label="Export progress" max=max value=value></progress>
                    <p class="mt-1 tabular-nums">"Downloading… " {p.describe()}</p>
                </div>
            }
            .into_any()
        }
        Download::Saved { file_name, progress } => view! {
            <p class="mt-4 text-sm text-emerald-700 dark:text-emerald-400" data-testid="download-done">
                "Saved " <span class="font-mono">{file_name}</span> ": " {progress.describe()} "."
            </p>
        }
        .into_any(),
        Download::Cancelled => view! {
            <p class="mt-4 text-sm text-slate-500 dark:text-slate-400">"Download cancelled."</p>
        }
        .into_any(),
    }
    }
}
