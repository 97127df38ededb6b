//! `/alerts`: threshold rules with their live states and values, a form to create and edit
//! them (validation messages at the fields, a preview against the threshold lines), silence,
//! delete, and the transition history filtered by rule, state and time.

use super::{FieldError, PageHeader, Refusal, TextField, refusal};
use crate::{
    api::{
        AlertHistory, AlertPreview, AlertRuleInfo, AlertRuleList, AlertRuleSpec, AlertTarget,
        Created, MetricList, QueryResponse, SeriesScopeSpec,
    },
    fetch::{Method, get_json, now_ms, send_json},
    live::use_topics,
    protocol::{AlertEvent, AlertInstanceLive, AlertRuleLive},
    units::format_number,
};
use leptos::{prelude::*, task::spawn_local};
use leptos_meta::Title;

/// Colours of a state pill.
fn state_class(state: &str) -> &'static str {
    match state {
        "firing" => "bg-red-600 text-white",
        "pending" => "bg-amber-400 text-slate-900",
        "recovering" => "bg-orange-300 text-slate-900",
        "no_data" => "bg-slate-400 text-white",
        "error" => "bg-fuchsia-700 text-white",
        _ => "bg-emerald-600 text-white",
    }
}

fn state_pill(state: String) -> impl IntoView {
    let class = format!(
        "inline-block rounded-full px-2 py-0.5 text-xs font-semibold {}",
        state_class(&state)
    );
    view! { <span class=class data-state=state.clone()>{state.replace('_', " ")}</span> }
}

fn format_time_ms(ms: i64) -> String {
    // UTC, to the second: `2026-11-26 01:02:03`.
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = crate::range::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The form's fields, as text the user types.
#[derive(Clone, Copy)]
struct Form {
    name: RwSignal<String>,
    metric: RwSignal<String>,
    series: RwSignal<String>,
    statistic: RwSignal<String>,
    window: RwSignal<String>,
    comparison: RwSignal<String>,
    threshold: RwSignal<String>,
    recovery: RwSignal<String>,
    for_: RwSignal<String>,
    keep: RwSignal<String>,
    no_data: RwSignal<String>,
    no_data_after: RwSignal<String>,
    severity: RwSignal<String>,
    description: RwSignal<String>,
    runbook: RwSignal<String>,
    in_app: RwSignal<bool>,
    webhook: RwSignal<String>,
    kinesis: RwSignal<String>,
    enabled: RwSignal<bool>,
    silenced_until: RwSignal<Option<String>>,
}

impl Form {
    fn new() -> Self {
        let text = |s: &str| RwSignal::new(s.to_string());
        Self {
            name: text(""),
            metric: text(""),
            series: text("all"),
            statistic: text("p99"),
            window: text("1m"),
            comparison: text(">"),
            threshold: text(""),
            recovery: text(""),
            for_: text("0s"),
            keep: text("0s"),
            no_data: text("no_data"),
            no_data_after: text("2m"),
            severity: text("warning"),
            description: text(""),
            runbook: text(""),
            in_app: RwSignal::new(true),
            webhook: text(""),
            kinesis: text(""),
            enabled: RwSignal::new(true),
            silenced_until: RwSignal::new(None),
        }
    }

    fn load(&self, spec: &AlertRuleSpec) {
        let opt = |v: &Option<String>, default: &str| v.clone().unwrap_or_else(|| default.into());
        self.name.set(spec.name.clone());
        self.metric.set(spec.metric.clone());
        self.series.set(spec.series.label());
        self.statistic.set(spec.statistic.clone());
        self.window.set(spec.window.clone());
        self.comparison.set(spec.comparison.clone());
        self.threshold.set(spec.threshold.to_string());
        self.recovery.set(
            spec.recovery_threshold
                .map(|r| r.to_string())
                .unwrap_or_default(),
        );
        self.for_.set(opt(&spec.for_, "0s"));
        self.keep.set(opt(&spec.keep_firing_for, "0s"));
        self.no_data.set(opt(&spec.no_data, "no_data"));
        self.no_data_after.set(opt(&spec.no_data_after, "2m"));
        self.severity.set(opt(&spec.severity, "warning"));
        self.description
            .set(spec.description.clone().unwrap_or_default());
        self.runbook
            .set(spec.runbook_url.clone().unwrap_or_default());
        self.in_app.set(spec.targets.contains(&AlertTarget::InApp));
        self.webhook.set(
            spec.targets
                .iter()
                .find_map(|t| match t {
                    AlertTarget::Webhook { url } => Some(url.clone()),
                    _ => None,
                })
                .unwrap_or_default(),
        );
        self.kinesis.set(
            spec.targets
                .iter()
                .find_map(|t| match t {
                    AlertTarget::Kinesis { stream } => Some(stream.clone()),
                    _ => None,
                })
                .unwrap_or_default(),
        );
        self.enabled.set(spec.enabled);
        self.silenced_until.set(spec.silenced_until.clone());
    }

    /// The rule JSON, or the field the form itself can already refuse.
    fn spec(&self) -> Result<AlertRuleSpec, Refusal> {
        let get = |s: RwSignal<String>| s.get_untracked().trim().to_string();
        let optional = |s: RwSignal<String>| Some(get(s)).filter(|v| !v.is_empty());
        let number = |field: &str, text: String| {
            text.parse::<f64>().map_err(|_| Refusal {
                field: field.into(),
                message: format!("{text:?} is not a number"),
            })
        };
        let threshold = number("threshold", get(self.threshold))?;
        let recovery_threshold = optional(self.recovery)
            .map(|r| number("recovery_threshold", r))
            .transpose()?;
        let series = match get(self.series).as_str() {
            "all" | "each" | "" => SeriesScopeSpec::Keyword(
                Some(get(self.series))
                    .filter(|s| !s.is_empty())
                    .unwrap_or("all".into()),
            ),
            labels => {
                SeriesScopeSpec::One(labels.split(',').map(|l| l.trim().to_string()).collect())
            }
        };
        let mut targets = Vec::new();
        if self.in_app.get_untracked() {
            targets.push(AlertTarget::InApp);
        }
        if let Some(url) = optional(self.webhook) {
            targets.push(AlertTarget::Webhook { url });
        }
        if let Some(stream) = optional(self.kinesis) {
            targets.push(AlertTarget::Kinesis { stream });
        }
        Ok(AlertRuleSpec {
            name: get(self.name),
            metric: get(self.metric),
            series,
            statistic: get(self.statistic),
            window: get(self.window),
            comparison: get(self.comparison),
            threshold,
            recovery_threshold,
            for_: optional(self.for_),
            keep_firing_for: optional(self.keep),
            no_data: optional(self.no_data),
            no_data_after: optional(self.no_data_after),
            notify_on: Vec::new(),
            severity: optional(self.severity),
            description: optional(self.description),
            runbook_url: optional(self.runbook),
            targets,
            enabled: self.enabled.get_untracked(),
            silenced_until: self.silenced_until.get_untracked(),
        })
    }
}

const INPUT: &str = "w-full rounded-md border border-slate-300 bg-white px-2 py-1 text-sm dark:border-slate-700 dark:bg-slate-900";
const LABEL: &str = "flex flex-col gap-1 text-sm";
const BUTTON: &str = "rounded-md border border-slate-300 px-3 py-1 text-sm hover:bg-slate-100 dark:border-slate-700 dark:hover:bg-slate-800";
const PRIMARY: &str = "rounded-md bg-slate-900 px-3 py-1 text-sm font-medium text-white hover:bg-slate-700 disabled:opacity-50 dark:bg-slate-100 dark:text-slate-900";

/// A select bound to `value`.
#[component]
fn SelectField(
    label: &'static str,
    key: &'static str,
    value: RwSignal<String>,
    options: &'static [(&'static str, &'static str)],
    refused: RwSignal<Option<Refusal>>,
) -> impl IntoView {
    view! {
        <label class=LABEL>
            <span>{label}</span>
            <select
                class=INPUT
                name=key
                prop:value=move || value.get()
                on:change=move |ev| value.set(event_target_value(&ev))
            >
                {options.iter().map(|(v, text)| view! {
                    <option value=*v selected=move || value.get() == *v>{*text}</option>
                }).collect_view()}
            </select>
            <FieldError key refused />
        </label>
    }
}

const STATISTICS: &[(&str, &str)] = &[
    ("count", "count"),
    ("rate", "rate/s"),
    ("sum", "sum"),
    ("mean", "mean"),
    ("min", "min"),
    ("max", "max"),
    ("p50", "p50"),
    ("p90", "p90"),
    ("p99", "p99"),
    ("p99.9", "p99.9"),
];
const COMPARISONS: &[(&str, &str)] = &[(">", ">"), (">=", ">="), ("<", "<"), ("<=", "<=")];
const NO_DATA: &[(&str, &str)] = &[
    ("no_data", "no data state"),
    ("ok", "treat as ok"),
    ("alerting", "treat as alerting"),
    ("keep_last", "keep last state"),
];
const SEVERITY: &[(&str, &str)] = &[
    ("info", "info"),
    ("warning", "warning"),
    ("critical", "critical"),
];

/// One stored bucket's value of `statistic` (for the preview chart).
fn point_value(p: &crate::api::Point, statistic: &str) -> Option<f64> {
    match statistic {
        "count" => Some(p.count as f64),
        "rate" => Some(p.rate_per_s),
        "sum" => Some(p.sum),
        "mean" => p.mean,
        "min" => p.min,
        "max" => p.max,
        "p50" => p.p50.map(|v| v as f64),
        "p90" => p.p90.map(|v| v as f64),
        "p99" => p.p99.map(|v| v as f64),
        "p99.9" => p.p999.map(|v| v as f64),
        _ => None,
    }
}

/// The statistic per stored second over the last 15 minutes, with the threshold lines.
#[component]
fn PreviewChart(values: Vec<f64>, threshold: f64, recovery: Option<f64>) -> impl IntoView {
    const W: f64 = 600.0;
    const H: f64 = 120.0;
    let top = values
        .iter()
        .copied()
        .chain([threshold])
        .chain(recovery)
        .fold(0.0_f64, f64::max)
        * 1.1;
    let y = move |v: f64| if top > 0.0 { H - v / top * H } else { H };
    let points = crate::components::chart::polyline_points(&values, top, W, H);
    let line = move |v: f64, class: &'static str| {
        let yy = format!("{:.1}", y(v));
        view! { <line x1="0" x2="600" y1=yy.clone() y2=yy class=class stroke-width="1.5" stroke-dasharray="6 4" /> }
    };
    view! {
        <figure class="mt-2">
            <svg class="h-32 w-full" viewBox="0 0 600 120" preserveAspectRatio="none" role="img"
                aria-label="recent values against the threshold" data-testid="alert-preview-chart">
                <polyline class="text-sky-500" fill="none" stroke="currentColor" stroke-width="2" points=points />
                {line(threshold, "stroke-red-500")}
                {recovery.map(|r| line(r, "stroke-amber-500"))}
            </svg>
            <figcaption class="text-xs text-slate-500 dark:text-slate-400">
                "Per-second values of the last 15 minutes (the rule evaluates its rolling window); "
                <span class="text-red-600">"threshold " {format_number(threshold)}</span>
                {recovery.map(|r| view! { <span class="text-amber-600">", recovery " {format_number(r)}</span> })}
            </figcaption>
        </figure>
    }
}

/// Create or edit a rule. `editing` is the rule id, `None` for a new one.
#[component]
fn RuleForm(
    editing: Option<i64>,
    initial: Option<AlertRuleSpec>,
    metrics: Signal<Vec<String>>,
    on_done: Callback<()>,
) -> impl IntoView {
    let form = Form::new();
    if let Some(spec) = &initial {
        form.load(spec);
    }
    let refused = RwSignal::new(None::<Refusal>);
    let busy = RwSignal::new(false);
    let preview = RwSignal::new(None::<(AlertPreview, Vec<f64>)>);

    let run_preview = move |_| {
        let spec = match form.spec() {
            Ok(spec) => spec,
            Err(r) => return refused.set(Some(r)),
        };
        busy.set(true);
        spawn_local(async move {
            let result =
                send_json::<_, AlertPreview>(Method::Post, "/api/v1/alerts/preview", Some(&spec))
                    .await;
            match result {
                Ok(now) => {
                    refused.set(None);
                    let to = now_ms();
                    let url = format!(
                        "/api/v1/query?metric={}&from={}&to={to}&tier=1s",
                        encode(&spec.metric),
                        to - 15 * 60_000
                    );
                    let values = get_json::<QueryResponse>(&url)
                        .await
                        .map(|q| {
                            q.points
                                .iter()
                                .filter_map(|p| point_value(p, &spec.statistic))
                                .collect()
                        })
                        .unwrap_or_default();
                    preview.set(Some((now, values)));
                }
                Err(e) => {
                    preview.set(None);
                    refused.set(Some(refusal(&e)));
                }
            }
            busy.set(false);
        });
    };
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let spec = match form.spec() {
            Ok(spec) => spec,
            Err(r) => return refused.set(Some(r)),
        };
        busy.set(true);
        spawn_local(async move {
            let result = match editing {
                Some(id) => send_json::<_, AlertRuleInfo>(
                    Method::Put,
                    &format!("/api/v1/alerts/{id}"),
                    Some(&spec),
                )
                .await
                .map(|_| ()),
                None => send_json::<_, Created>(Method::Post, "/api/v1/alerts", Some(&spec))
                    .await
                    .map(|_| ()),
            };
            busy.set(false);
            match result {
                Ok(()) => on_done.run(()),
                Err(e) => refused.set(Some(refusal(&e))),
            }
        });
    };
    let heading = if editing.is_some() {
        "Edit rule"
    } else {
        "New rule"
    };
    view! {
        <form
            on:submit=save
            data-testid="rule-form"
            class="mb-6 rounded-xl border border-slate-200 bg-white p-4 dark:border-slate-800 dark:bg-slate-900"
        >
            <h2 class="mb-3 text-lg font-semibold">{heading}</h2>
            <datalist id="alert-metrics">
                {move || metrics.get().into_iter().map(|m| view! { <option value=m></option> }).collect_view()}
            </datalist>
            <div class="grid gap-3 sm:grid-cols-2 lg:grid-cols-4">
                <TextField label="Name" key="name" value=form.name refused />
                <TextField label="Metric" key="metric" value=form.metric refused list="alert-metrics" placeholder="choose a metric" />
                <TextField label="Series (all, each, or labels a, b)" key="series" value=form.series refused />
                <SelectField label="Statistic" key="statistic" value=form.statistic options=STATISTICS refused />
                <TextField label="Window (1s–60s, or 1m–60m)" key="window" value=form.window refused />
                <SelectField label="Comparison" key="comparison" value=form.comparison options=COMPARISONS refused />
                <TextField label="Threshold" key="threshold" value=form.threshold refused />
                <TextField label="Recovery threshold (optional)" key="recovery_threshold" value=form.recovery refused />
                <TextField label="Pending for" key="for" value=form.for_ refused />
                <TextField label="Keep firing for" key="keep_firing_for" value=form.keep refused />
                <SelectField label="When no data" key="no_data" value=form.no_data options=NO_DATA refused />
                <TextField label="No data after" key="no_data_after" value=form.no_data_after refused />
                <SelectField label="Severity" key="severity" value=form.severity options=SEVERITY refused />
                <TextField label="Description" key="description" value=form.description refused />
                <TextField label="Runbook URL" key="runbook_url" value=form.runbook refused placeholder="https://…" />
                <label class="flex items-center gap-2 text-sm">
                    <input type="checkbox" name="enabled" prop:checked=move || form.enabled.get()
                        on:change=move |ev| form.enabled.set(event_target_checked(&ev)) />
                    "Enabled"
                </label>
            </div>
            <fieldset class="mt-3 grid gap-3 sm:grid-cols-3">
                <legend class="mb-1 text-sm font-medium">"Notify"</legend>
                <label class="flex items-center gap-2 text-sm">
                    <input type="checkbox" name="in_app" prop:checked=move || form.in_app.get()
                        on:change=move |ev| form.in_app.set(event_target_checked(&ev)) />
                    "In the app (toast and badge)"
                </label>
                <TextField label="Webhook URL" key="webhook" value=form.webhook refused placeholder="https://hooks.example/alert" />
                <TextField label="Kinesis stream" key="kinesis" value=form.kinesis refused placeholder="alerts" />
            </fieldset>
            <FieldError key="targets" refused />
            <FieldError key="body" refused />
            <FieldError key="form" refused />
            <div class="mt-4 flex flex-wrap gap-2">
                <button type="submit" class=PRIMARY disabled=move || busy.get()>"Save rule"</button>
                <button type="button" class=BUTTON on:click=run_preview disabled=move || busy.get()>"Preview"</button>
                <button type="button" class=BUTTON on:click=move |_| on_done.run(())>"Cancel"</button>
            </div>
            {move || preview.get().map(|(now, values)| -> AnyView {
                let threshold = form.threshold.get_untracked().trim().parse().unwrap_or(0.0);
                let recovery = form.recovery.get_untracked().trim().parse().ok();
                view! {
                    <section class="mt-4" data-testid="alert-preview">
                        <ul class="flex flex-wrap gap-3 text-sm">
                            {now.instances.into_iter().map(|i| view! {
                                <li class="rounded-md bg-slate-100 px-2 py-1 dark:bg-slate-800">
                                    <span class="font-mono">{i.instance}</span> ": "
                                    {i.value.map(format_number).unwrap_or_else(|| "no data".into())}
                                    " — " {i.verdict}
                                </li>
                            }).collect_view()}
                        </ul>
                        <PreviewChart values threshold recovery />
                    </section>
                }
                .into_any()
            })}
        </form>
    }
    .into_any()
}

/// Minimal percent-encoding for a query parameter value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn instance_row(i: AlertInstanceLive) -> impl IntoView {
    view! {
        <li class="flex items-center gap-2" data-instance=i.instance.clone()>
            {state_pill(i.state.clone())}
            <span class="font-mono text-xs">{i.instance.clone()}</span>
            <span class="tabular-nums" data-testid="alert-value">
                {i.value.map(format_number).unwrap_or_else(|| "–".into())}
            </span>
            {i.error.map(|e| view! { <span class="text-xs text-fuchsia-700">{e}</span> })}
        </li>
    }
}

/// The rules with their live states.
#[component]
fn RuleRow(
    rule: AlertRuleLive,
    on_edit: Callback<i64>,
    on_changed: Callback<()>,
    problem: RwSignal<Option<String>>,
) -> impl IntoView {
    let id = rule.id;
    let silence_for = RwSignal::new("1h".to_string());
    let confirm = RwSignal::new(false);
    let silence = move |duration: String| {
        spawn_local(async move {
            let body = serde_json::json!({ "for": duration });
            match send_json::<_, AlertRuleInfo>(
                Method::Post,
                &format!("/api/v1/alerts/{id}/silence"),
                Some(&body),
            )
            .await
            {
                Ok(_) => on_changed.run(()),
                Err(e) => problem.set(Some(e.to_string())),
            }
        });
    };
    let delete = move |_| {
        if !confirm.get_untracked() {
            confirm.set(true);
            return;
        }
        spawn_local(async move {
            match send_json::<(), ()>(Method::Delete, &format!("/api/v1/alerts/{id}"), None).await {
                Ok(()) => on_changed.run(()),
                Err(e) => problem.set(Some(e.to_string())),
            }
        });
    };
    let condition = format!(
        "{} {} over {} {} {}",
        rule.statistic,
        rule.metric,
        rule.window,
        rule.comparison,
        format_number(rule.threshold)
    );
    let silenced = rule.silenced_until_ms.map(format_time_ms);
    let is_silenced = silenced.is_some();
    view! {
        <tr class="border-t border-slate-100 align-top dark:border-slate-800" data-rule=rule.name.clone()>
            <td class="px-3 py-2">
                <div class="font-medium">{rule.name.clone()}</div>
                <div class="text-xs text-slate-500 dark:text-slate-400">{rule.severity.clone()}
                    {(!rule.enabled).then_some(" · disabled")}
                </div>
            </td>
            <td class="px-3 py-2 font-mono text-xs">{condition}</td>
            <td class="px-3 py-2">
                <ul class="flex flex-col gap-1">
                    {if rule.instances.is_empty() {
                        view! { <li>{state_pill("ok".into())}</li> }.into_any()
                    } else {
                        rule.instances.into_iter().map(instance_row).collect_view().into_any()
                    }}
                </ul>
            </td>
            <td class="px-3 py-2 text-xs" data-testid="silenced">
                {silenced.map(|s| format!("silenced until {s} UTC"))}
            </td>
            <td class="px-3 py-2">
                <div class="flex flex-wrap items-center gap-2">
                    <button type="button" class=BUTTON on:click=move |_| on_edit.run(id)>"Edit"</button>
                    <select class=INPUT.replace("w-full", "w-20") aria-label="Silence for"
                        on:change=move |ev| silence_for.set(event_target_value(&ev))>
                        {["15m", "1h", "4h", "24h"].map(|d| view! { <option value=d selected=d == "1h">{d}</option> }).collect_view()}
                    </select>
                    <button type="button" class=BUTTON on:click=move |_| silence(silence_for.get_untracked())>"Silence"</button>
                    <Show when=move || is_silenced>
                        <button type="button" class=BUTTON on:click=move |_| silence("0s".into())>"Unsilence"</button>
                    </Show>
                    <button type="button" class=BUTTON on:click=delete>
                        {move || if confirm.get() { "Confirm delete" } else { "Delete" }}
                    </button>
                </div>
            </td>
        </tr>
    }
    .into_any()
}

/// The transition history with filters.
#[component]
fn History(rules: Signal<Vec<(i64, String)>>, newest: Signal<Option<i64>>) -> impl IntoView {
    let state = RwSignal::new(String::new());
    let range = RwSignal::new("24h".to_string());
    let rule = RwSignal::new(String::new());
    let history = LocalResource::new(move || {
        newest.track(); // refresh when a transition happens
        let mut url = format!("/api/v1/alerts/history?limit=200&from=-{}", range.get());
        if !state.get().is_empty() {
            url.push_str(&format!("&state={}", state.get()));
        }
        if !rule.get().is_empty() {
            url.push_str(&format!("&rule_id={}", rule.get()));
        }
        async move { get_json::<AlertHistory>(&url).await }
    });
    let select = INPUT.replace("w-full", "w-auto");
    view! {
        <section class="mt-8">
            <h2 class="mb-3 text-lg font-semibold">"History"</h2>
            <div class="mb-3 flex flex-wrap gap-3 text-sm">
                <select class=select.clone() aria-label="Rule" on:change=move |ev| rule.set(event_target_value(&ev))>
                    <option value="">"All rules"</option>
                    {move || rules.get().into_iter().map(|(id, name)| view! { <option value=id.to_string()>{name}</option> }).collect_view()}
                </select>
                <select class=select.clone() aria-label="State" data-testid="history-state" on:change=move |ev| state.set(event_target_value(&ev))>
                    <option value="">"Any state"</option>
                    {["firing", "ok", "pending", "recovering", "no_data", "error"].map(|s| view! { <option value=s>{s.replace('_', " ")}</option> }).collect_view()}
                </select>
                <select class=select aria-label="Range" on:change=move |ev| range.set(event_target_value(&ev))>
                    {[("1h", "last hour"), ("24h", "last 24 hours"), ("7d", "last 7 days"), ("30d", "last 30 days")]
                        .map(|(v, t)| view! { <option value=v selected=v == "24h">{t}</option> }).collect_view()}
                </select>
            </div>
            <Suspense fallback=|| view! { <p class="text-sm text-slate-500">"Loading…"</p> }>
                {move || history.get().map(|h| match h {
                    Err(e) => view! { <p class="text-sm text-red-600">{e.to_string()}</p> }.into_any(),
                    Ok(h) if h.transitions.is_empty() => view! {
                        <p class="text-sm text-slate-500 dark:text-slate-400" data-testid="history-empty">"No transitions in this range."</p>
                    }.into_any(),
                    Ok(h) => view! {
                        <ol class="flex flex-col gap-1 text-sm" data-testid="history">
                            {h.transitions.into_iter().map(history_row).collect_view()}
                        </ol>
                    }.into_any(),
                })}
            </Suspense>
        </section>
    }
    .into_any()
}

fn history_row(e: AlertEvent) -> impl IntoView {
    view! {
        <li class="flex flex-wrap items-center gap-2 border-l-4 border-slate-200 pl-3 dark:border-slate-700"
            data-testid="history-row" data-to=e.to.clone()>
            <span class="font-mono text-xs text-slate-500">{format_time_ms(e.at_ms)}</span>
            <span class="font-medium">{e.rule.clone()}</span>
            {(e.instance != "all").then(|| view! { <span class="font-mono text-xs">{e.instance.clone()}</span> })}
            {state_pill(e.from.clone())} "→" {state_pill(e.to.clone())}
            <span class="tabular-nums">{e.value.map(format_number).unwrap_or_default()}</span>
            <span class="text-xs text-slate-500">{match e.notification.as_str() {
                "sent" => "notified",
                "silenced" => "silenced",
                _ => "",
            }}</span>
        </li>
    }
}

/// `/alerts`: threshold rules and their history.
#[component]
pub fn Alerts() -> impl IntoView {
    let live = use_topics(Vec::new()); // the alerts topic is always subscribed
    // `Some(None)`: a new rule; `Some(Some(id))`: editing `id`.
    let editing = RwSignal::new(None::<Option<i64>>);
    let version = RwSignal::new(0u32);
    let problem = RwSignal::new(None::<String>);
    let rules = LocalResource::new(move || {
        version.track();
        async move { get_json::<AlertRuleList>("/api/v1/alerts").await }
    });
    let metrics = LocalResource::new(|| async { get_json::<MetricList>("/api/v1/metrics").await });
    let metric_names = Signal::derive(move || {
        metrics.with(|m| match m {
            Some(Ok(list)) => list.metrics.iter().map(|m| m.name.clone()).collect(),
            _ => Vec::new(),
        })
    });
    let live_rules = Memo::new(move |_| live.alerts.with(|a| a.as_ref().map(|a| a.rules.clone())));
    let rule_names = Signal::derive(move || {
        live_rules.with(|r| {
            r.iter()
                .flatten()
                .map(|r| (r.id, r.name.clone()))
                .collect::<Vec<_>>()
        })
    });
    let newest = Signal::derive(move || {
        live.alerts
            .with(|a| a.as_ref().and_then(|a| a.recent.last().map(|e| e.id)))
    });
    let changed = Callback::new(move |()| {
        editing.set(None);
        problem.set(None);
        version.update(|v| *v += 1);
    });
    let edit = Callback::new(move |id: i64| editing.set(Some(Some(id))));
    let spec_of = move |id: i64| {
        rules.with(|r| match r {
            Some(Ok(list)) => list
                .rules
                .iter()
                .find(|r| r.id == id)
                .map(|r| r.spec.clone()),
            _ => None,
        })
    };
    view! {
        <Title text="Alerts" />
        <PageHeader title="Alerts" subtitle="Threshold rules on any metric, with their history." />
        <div class="mb-4 flex items-center gap-3">
            <button type="button" class=PRIMARY data-testid="new-rule"
                on:click=move |_| editing.set(Some(None))>"New rule"</button>
            {move || problem.get().map(|p| view! { <p role="alert" class="text-sm text-red-600">{p}</p> })}
        </div>
        {move || editing.get().map(|target| {
            let initial = target.and_then(spec_of);
            view! { <RuleForm editing=target initial metrics=metric_names on_done=changed /> }
        })}
        {move || match live_rules.get() {
            None => view! { <p class="text-sm text-slate-500 dark:text-slate-400">"Waiting for the live alert states…"</p> }.into_any(),
            Some(rules) if rules.is_empty() => view! {
                <section class="rounded-xl border border-dashed border-slate-300 bg-white p-8 text-center dark:border-slate-700 dark:bg-slate-900">
                    <h2 class="text-lg font-semibold">"No alert rules"</h2>
                    <p class="mt-2 text-sm text-slate-600 dark:text-slate-400">
                        "A rule watches a statistic of a metric (say p99 latency over 5 minutes) against a threshold and notifies in the app, by webhook or into a Kinesis stream. Create one with “New rule”."
                    </p>
                </section>
            }.into_any(),
            Some(rules) => view! {
                <section class="overflow-x-auto rounded-xl border border-slate-200 bg-white dark:border-slate-800 dark:bg-slate-900">
                    <table class="w-full text-sm" aria-label="Alert rules">
                        <thead class="text-left text-xs uppercase text-slate-500 dark:text-slate-400">
                            <tr>
                                <th class="px-3 py-2">"Rule"</th>
                                <th class="px-3 py-2">"Condition"</th>
                                <th class="px-3 py-2">"State and value"</th>
                                <th class="px-3 py-2">"Silence"</th>
                                <th class="px-3 py-2">"Actions"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {rules.into_iter().map(|rule| view! {
                                <RuleRow rule on_edit=edit on_changed=changed problem />
                            }.into_any()).collect_view()}
                        </tbody>
                    </table>
                </section>
            }.into_any(),
        }}
        <History rules=rule_names newest />
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_calendar_dates() {
        assert_eq!(format_time_ms(0), "1970-01-01 00:00:00");
        assert_eq!(format_time_ms(1_795_651_323_000), "2026-11-26 00:02:03");
        assert_eq!(format_time_ms(951_782_400_000), "2000-02-29 00:00:00");
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            encode("builtin:clicks:records"),
            "builtin%3Aclicks%3Arecords"
        );
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
    }
}
