//! `/alerts`: threshold rules with their live states and values, a form to create and edit
//! them (validation messages at the fields, a preview against the threshold lines), silence,
//! delete, and the transition history filtered by rule, state and time.

use super::PageHeader;
use crate::{
    components::form::{CheckboxField, FieldError, Refusal, SelectField, TextField, refusal},
    fetch::{Method, get_json, now_ms, send_json},
    live::use_topics,
};
use contract::{
    ParseError,
    alert::{AlertState, Comparison, NoDataPolicy, NotificationStatus, SeriesScope, Severity},
    api::{
        AlertHistory, AlertPreview, AlertRuleInfo, AlertRuleList, AlertRuleSpec, AlertTarget,
        Created, MetricList, QueryResponse,
    },
    protocol::{AlertEvent, AlertInstanceLive, AlertRuleLive},
    summary::Statistic,
    units::format_number,
};
use leptos::{prelude::*, task::spawn_local};
use leptos_meta::Title;
use std::str::FromStr;

/// Colours of a state pill.
fn state_class(state: AlertState) -> &'static str {
    match state {
        AlertState::Firing => "bg-red-600 text-white",
        AlertState::Pending => "bg-amber-400 text-slate-900",
        AlertState::Recovering => "bg-orange-300 text-slate-900",
        AlertState::NoData => "bg-slate-400 text-white",
        AlertState::Error => "bg-fuchsia-700 text-white",
        AlertState::Ok => "bg-emerald-600 text-white",
    }
}

fn state_pill(state: AlertState) -> impl IntoView {
    let class = format!(
        "inline-block rounded-full px-2 py-0.5 text-xs font-semibold {}",
        state_class(state)
    );
    view! { <span class=class data-state=state.as_str()>{state.as_str().replace('_', " ")}</span> }
}

fn format_time_ms(ms: i64) -> String {
    // UTC, to the second: `2026-11-26 01:02:03`.
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = contract::date::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The form's fields, as text the user types or the value of a choice.
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

/// A signal's text, trimmed.
fn text(signal: RwSignal<String>) -> String {
    signal.get_untracked().trim().to_string()
}

/// A signal's text, trimmed; `None` when empty.
fn optional(signal: RwSignal<String>) -> Option<String> {
    Some(text(signal)).filter(|v| !v.is_empty())
}

/// A signal's value in a closed set, refused at `field` otherwise.
fn choice<T: FromStr<Err = ParseError>>(
    field: &str,
    signal: RwSignal<String>,
) -> Result<T, Refusal> {
    text(signal)
        .parse()
        .map_err(|e: ParseError| Refusal::new(field, e.0))
}

/// A signal's number, refused at `field` otherwise.
fn number(field: &str, text: String) -> Result<f64, Refusal> {
    text.parse::<f64>()
        .map_err(|_| Refusal::new(field, format!("{text:?} is not a number")))
}

/// The series input: `all` (or empty), `each`, or labels separated by commas.
fn series_scope(text: &str) -> SeriesScope {
    match text {
        "" | "all" => SeriesScope::All,
        "each" => SeriesScope::Each,
        labels => SeriesScope::One(labels.split(',').map(|l| l.trim().to_string()).collect()),
    }
}

impl Form {
    fn new() -> Self {
        let text = |s: &str| RwSignal::new(s.to_string());
        Self {
            name: text(""),
            metric: text(""),
            series: text("all"),
            statistic: text(Statistic::P99.as_str()),
            window: text("1m"),
            comparison: text(Comparison::Gt.as_str()),
            threshold: text(""),
            recovery: text(""),
            for_: text("0s"),
            keep: text("0s"),
            no_data: text(NoDataPolicy::default().as_str()),
            no_data_after: text("2m"),
            severity: text(Severity::default().as_str()),
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
        self.statistic.set(spec.statistic.as_str().into());
        self.window.set(spec.window.clone());
        self.comparison.set(spec.comparison.as_str().into());
        self.threshold.set(spec.threshold.to_string());
        self.recovery.set(
            spec.recovery_threshold
                .map(|r| r.to_string())
                .unwrap_or_default(),
        );
        self.for_.set(opt(&spec.for_, "0s"));
        self.keep.set(opt(&spec.keep_firing_for, "0s"));
        self.no_data
            .set(spec.no_data.unwrap_or_default().as_str().into());
        self.no_data_after.set(opt(&spec.no_data_after, "2m"));
        self.severity
            .set(spec.severity.unwrap_or_default().as_str().into());
        self.description
            .set(spec.description.clone().unwrap_or_default());
        self.runbook
            .set(spec.runbook_url.clone().unwrap_or_default());
        self.load_targets(&spec.targets);
        self.enabled.set(spec.enabled);
        self.silenced_until.set(spec.silenced_until.clone());
    }

    fn load_targets(&self, targets: &[AlertTarget]) {
        self.in_app.set(targets.contains(&AlertTarget::InApp));
        let (mut webhook, mut kinesis) = (String::new(), String::new());
        for target in targets {
            match target {
                AlertTarget::Webhook { url } if webhook.is_empty() => webhook = url.clone(),
                AlertTarget::Kinesis { stream } if kinesis.is_empty() => kinesis = stream.clone(),
                _ => {}
            }
        }
        self.webhook.set(webhook);
        self.kinesis.set(kinesis);
    }

    /// The notification targets the form names.
    fn targets(&self) -> Vec<AlertTarget> {
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
        targets
    }

    /// The rule JSON, or the field the form itself can already refuse.
    fn spec(&self) -> Result<AlertRuleSpec, Refusal> {
        let threshold = number("threshold", text(self.threshold))?;
        let recovery_threshold = optional(self.recovery)
            .map(|r| number("recovery_threshold", r))
            .transpose()?;
        Ok(AlertRuleSpec {
            name: text(self.name),
            metric: text(self.metric),
            series: series_scope(&text(self.series)),
            statistic: choice("statistic", self.statistic)?,
            window: text(self.window),
            comparison: choice("comparison", self.comparison)?,
            threshold,
            recovery_threshold,
            for_: optional(self.for_),
            keep_firing_for: optional(self.keep),
            no_data: Some(choice("no_data", self.no_data)?),
            no_data_after: optional(self.no_data_after),
            notify_on: Vec::new(),
            severity: Some(choice("severity", self.severity)?),
            description: optional(self.description),
            runbook_url: optional(self.runbook),
            targets: self.targets(),
            enabled: self.enabled.get_untracked(),
            silenced_until: self.silenced_until.get_untracked(),
        })
    }
}

const BUTTON: &str = "rounded-md border border-slate-300 px-3 py-1 text-sm hover:bg-slate-100 dark:border-slate-700 dark:hover:bg-slate-800";
const PRIMARY: &str = "rounded-md bg-slate-900 px-3 py-1 text-sm font-medium text-white hover:bg-slate-700 disabled:opacity-50 dark:bg-slate-100 dark:text-slate-900";
const SELECT: &str = "w-auto rounded-md border border-slate-300 bg-white px-2 py-1 text-sm dark:border-slate-700 dark:bg-slate-900";

const STATISTICS: &[(&str, &str)] = &[
    (Statistic::Count.as_str(), "count"),
    (Statistic::Rate.as_str(), "rate/s"),
    (Statistic::Sum.as_str(), "sum"),
    (Statistic::Mean.as_str(), "mean"),
    (Statistic::Min.as_str(), "min"),
    (Statistic::Max.as_str(), "max"),
    (Statistic::P50.as_str(), "p50"),
    (Statistic::P90.as_str(), "p90"),
    (Statistic::P99.as_str(), "p99"),
    (Statistic::P999.as_str(), "p99.9"),
];
const COMPARISONS: &[(&str, &str)] = &[
    (Comparison::Gt.as_str(), ">"),
    (Comparison::Ge.as_str(), ">="),
    (Comparison::Lt.as_str(), "<"),
    (Comparison::Le.as_str(), "<="),
];
const NO_DATA: &[(&str, &str)] = &[
    (NoDataPolicy::NoData.as_str(), "no data state"),
    (NoDataPolicy::Ok.as_str(), "treat as ok"),
    (NoDataPolicy::Alerting.as_str(), "treat as alerting"),
    (NoDataPolicy::KeepLast.as_str(), "keep last state"),
];
const SEVERITY: &[(&str, &str)] = &[
    (Severity::Info.as_str(), "info"),
    (Severity::Warning.as_str(), "warning"),
    (Severity::Critical.as_str(), "critical"),
];

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

/// What the draft rule sees now, and its statistic over the last 15 minutes.
type Preview = (AlertPreview, Vec<f64>);

/// What the form's buttons do: preview and save the draft, reporting refusals at their fields.
#[derive(Clone, Copy)]
struct RuleActions {
    /// The rule being edited (`None`: a new one).
    editing: Option<i64>,
    form: Form,
    refused: RwSignal<Option<Refusal>>,
    busy: RwSignal<bool>,
}

impl RuleActions {
    /// The draft, or `None` after showing what the form already refuses.
    fn spec(&self) -> Option<AlertRuleSpec> {
        self.form.spec().map_err(|r| self.refused.set(Some(r))).ok()
    }

    /// Asks the server what the draft would see now, and reads its statistic per stored
    /// second over the last 15 minutes.
    fn preview(&self, preview: RwSignal<Option<Preview>>) {
        let Some(spec) = self.spec() else { return };
        let RuleActions { refused, busy, .. } = *self;
        busy.set(true);
        spawn_local(async move {
            let result =
                send_json::<_, AlertPreview>(Method::Post, "/api/v1/alerts/preview", Some(&spec))
                    .await;
            match result {
                Ok(now) => {
                    refused.set(None);
                    let values = recent_values(&spec).await;
                    preview.set(Some((now, values)));
                }
                Err(e) => {
                    preview.set(None);
                    refused.set(Some(refusal(&e)));
                }
            }
            busy.set(false);
        });
    }

    /// Creates or replaces the rule, then runs `on_done`.
    fn save(&self, ev: leptos::ev::SubmitEvent, on_done: Callback<()>) {
        ev.prevent_default();
        let Some(spec) = self.spec() else { return };
        let RuleActions {
            editing,
            refused,
            busy,
            ..
        } = *self;
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
    }
}

/// The rule's statistic per stored second over the last 15 minutes (empty when unreadable).
async fn recent_values(spec: &AlertRuleSpec) -> Vec<f64> {
    let to = now_ms();
    let url = format!(
        "/api/v1/query?metric={}&from={}&to={to}&tier=1s",
        encode(&spec.metric),
        to - 15 * 60_000
    );
    get_json::<QueryResponse>(&url)
        .await
        .map(|q| {
            q.points
                .iter()
                .filter_map(|p| p.summary.statistic(spec.statistic))
                .collect()
        })
        .unwrap_or_default()
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
    let preview = RwSignal::new(None::<Preview>);
    let actions = RuleActions {
        editing,
        form,
        refused,
        busy,
    };
    let heading = if editing.is_some() {
        "Edit rule"
    } else {
        "New rule"
    };
    view! {
        <form
            on:submit=move |ev| actions.save(ev, on_done)
            data-testid="rule-form"
            class="mb-6 rounded-xl border border-slate-200 bg-white p-4 dark:border-slate-800 dark:bg-slate-900"
        >
            <h2 class="mb-3 text-lg font-semibold">{heading}</h2>
            <datalist id="alert-metrics">
                {move || metrics.get().into_iter().map(|m| view! { <option value=m></option> }).collect_view()}
            </datalist>
            <ConditionFields form refused />
            <NotifyFields form refused />
            <FieldError key="targets" refused />
            <FieldError key="body" refused />
            <FieldError key="form" refused />
            <div class="mt-4 flex flex-wrap gap-2">
                <button type="submit" class=PRIMARY disabled=move || busy.get()>"Save rule"</button>
                <button type="button" class=BUTTON on:click=move |_| actions.preview(preview) disabled=move || busy.get()>"Preview"</button>
                <button type="button" class=BUTTON on:click=move |_| on_done.run(())>"Cancel"</button>
            </div>
            <RulePreview form preview />
        </form>
    }
    .into_any()
}

/// What the rule watches and when it fires, resolves and reports no data.
#[component]
fn ConditionFields(form: Form, refused: RwSignal<Option<Refusal>>) -> impl IntoView {
    view! {
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
            <CheckboxField label="Enabled" key="enabled" checked=form.enabled />
        </div>
    }
    .into_any()
}

/// Where the rule's notifications go.
#[component]
fn NotifyFields(form: Form, refused: RwSignal<Option<Refusal>>) -> impl IntoView {
    view! {
        <fieldset class="mt-3 grid gap-3 sm:grid-cols-3">
            <legend class="mb-1 text-sm font-medium">"Notify"</legend>
            <CheckboxField label="In the app (toast and badge)" key="in_app" checked=form.in_app />
            <TextField label="Webhook URL" key="webhook" value=form.webhook refused placeholder="https://hooks.example/alert" />
            <TextField label="Kinesis stream" key="kinesis" value=form.kinesis refused placeholder="alerts" />
        </fieldset>
    }
    .into_any()
}

/// The preview's verdict per instance and the chart against the form's thresholds.
#[component]
fn RulePreview(form: Form, preview: RwSignal<Option<Preview>>) -> impl IntoView {
    move || {
        preview.get().map(|(now, values)| {
            let threshold = form.threshold.get_untracked().trim().parse().unwrap_or(0.0);
            let recovery = form.recovery.get_untracked().trim().parse().ok();
            view! {
                <section class="mt-4" data-testid="alert-preview">
                    <ul class="flex flex-wrap gap-3 text-sm">
                        {now.instances.into_iter().map(|i| view! {
                            <li class="rounded-md bg-slate-100 px-2 py-1 dark:bg-slate-800">
                                <span class="font-mono">{i.instance}</span> ": "
                                {i.value.map(format_number).unwrap_or_else(|| "no data".into())}
                                " — " {i.verdict.as_str()}
                            </li>
                        }).collect_view()}
                    </ul>
                    <PreviewChart values threshold recovery />
                </section>
            }
            .into_any()
        })
    }
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
            {state_pill(i.state)}
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
                <div class="text-xs text-slate-500 dark:text-slate-400">{rule.severity.as_str()}
                    {(!rule.enabled).then_some(" · disabled")}
                </div>
            </td>
            <td class="px-3 py-2 font-mono text-xs">{condition}</td>
            <td class="px-3 py-2">
                <ul class="flex flex-col gap-1">
                    {if rule.instances.is_empty() {
                        view! { <li>{state_pill(AlertState::Ok)}</li> }.into_any()
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
                    <select class=SELECT.replace("w-auto", "w-20") aria-label="Silence for"
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
    view! {
        <section class="mt-8">
            <h2 class="mb-3 text-lg font-semibold">"History"</h2>
            <div class="mb-3 flex flex-wrap gap-3 text-sm">
                <select class=SELECT aria-label="Rule" on:change=move |ev| rule.set(event_target_value(&ev))>
                    <option value="">"All rules"</option>
                    {move || rules.get().into_iter().map(|(id, name)| view! { <option value=id.to_string()>{name}</option> }).collect_view()}
                </select>
                <select class=SELECT aria-label="State" data-testid="history-state" on:change=move |ev| state.set(event_target_value(&ev))>
                    <option value="">"Any state"</option>
                    {HISTORY_STATES.map(|s| view! { <option value=s.as_str()>{s.as_str().replace('_', " ")}</option> }).collect_view()}
                </select>
                <select class=SELECT aria-label="Range" on:change=move |ev| range.set(event_target_value(&ev))>
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

/// The states the history filter offers, in its order.
const HISTORY_STATES: [AlertState; 6] = [
    AlertState::Firing,
    AlertState::Ok,
    AlertState::Pending,
    AlertState::Recovering,
    AlertState::NoData,
    AlertState::Error,
];

fn history_row(e: AlertEvent) -> impl IntoView {
    view! {
        <li class="flex flex-wrap items-center gap-2 border-l-4 border-slate-200 pl-3 dark:border-slate-700"
            data-testid="history-row" data-to=e.to.as_str()>
            <span class="font-mono text-xs text-slate-500">{format_time_ms(e.at_ms)}</span>
            <span class="font-medium">{e.rule.clone()}</span>
            {(e.instance != "all").then(|| view! { <span class="font-mono text-xs">{e.instance.clone()}</span> })}
            {state_pill(e.from)} "→" {state_pill(e.to)}
            <span class="tabular-nums">{e.value.map(format_number).unwrap_or_default()}</span>
            <span class="text-xs text-slate-500">{match e.notification {
                NotificationStatus::Sent => "notified",
                NotificationStatus::Silenced => "silenced",
                NotificationStatus::None => "",
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
    fn every_choice_is_a_value_of_its_set() {
        for (value, _) in STATISTICS {
            assert!(value.parse::<Statistic>().is_ok(), "{value}");
        }
        for (value, _) in COMPARISONS {
            assert!(value.parse::<Comparison>().is_ok(), "{value}");
        }
        for (value, _) in NO_DATA {
            assert!(value.parse::<NoDataPolicy>().is_ok(), "{value}");
        }
        for (value, _) in SEVERITY {
            assert!(value.parse::<Severity>().is_ok(), "{value}");
        }
        assert_eq!(STATISTICS.len(), Statistic::ALL.len());
        assert_eq!(NO_DATA.len(), NoDataPolicy::ALL.len());
    }

    #[test]
    fn series_inputs_are_scopes() {
        assert_eq!(series_scope(""), SeriesScope::All);
        assert_eq!(series_scope("each"), SeriesScope::Each);
        assert_eq!(
            series_scope("eu, /cart"),
            SeriesScope::One(vec!["eu".into(), "/cart".into()])
        );
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
