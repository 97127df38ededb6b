//! The alert rule form: its inputs as signals ([`Form`]), the draft rule they make (with the
//! form's own refusals at their fields), preview, backtest and save ([`RuleActions`]), and the
//! parts the form renders. The server's 422s are shown at the fields they name.

use super::{
    BUTTON, PRIMARY, SELECT,
    backtest::{BacktestResult, BacktestView, RANGES, statistic_points},
    templates::{TemplateFields, Templates},
};
use crate::{
    components::form::{CheckboxField, FieldError, Refusal, SelectField, TextField, refusal},
    fetch::{Method, encode_query, get_json, now_ms, send_json},
};
use contract::{
    ParseError,
    alert::{Comparison, NoDataPolicy, SeriesScope, Severity},
    api::{
        AlertBacktest, AlertBacktestRequest, AlertBacktestTransition, AlertPreview, AlertRuleInfo,
        AlertRuleSpec, AlertTarget, Created, QueryResponse,
    },
    summary::Statistic,
    units::format_number,
};
use leptos::{prelude::*, task::spawn_local};
use std::str::FromStr;

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
    datapoints: RwSignal<String>,
    periods: RwSignal<String>,
    keep: RwSignal<String>,
    group: RwSignal<String>,
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
    templates: Templates,
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

/// A signal's whole number, refused at `field` otherwise.
fn whole(field: &str, text: String) -> Result<u32, Refusal> {
    text.parse::<u32>()
        .map_err(|_| Refusal::new(field, format!("{text:?} is not a whole number")))
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
            datapoints: text(""),
            periods: text(""),
            keep: text("0s"),
            group: text(""),
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
            templates: Templates::new(),
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
        let count = |v: Option<u32>| v.map(|n| n.to_string()).unwrap_or_default();
        self.datapoints.set(count(spec.datapoints_to_alarm));
        self.periods.set(count(spec.evaluation_periods));
        self.keep.set(opt(&spec.keep_firing_for, "0s"));
        self.group
            .set(spec.group_interval.clone().unwrap_or_default());
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
        self.templates.load(spec);
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
            datapoints_to_alarm: optional(self.datapoints)
                .map(|m| whole("datapoints_to_alarm", m))
                .transpose()?,
            evaluation_periods: optional(self.periods)
                .map(|n| whole("evaluation_periods", n))
                .transpose()?,
            keep_firing_for: optional(self.keep),
            no_data: Some(choice("no_data", self.no_data)?),
            no_data_after: optional(self.no_data_after),
            notify_on: Vec::new(),
            group_interval: optional(self.group),
            severity: Some(choice("severity", self.severity)?),
            description: optional(self.description),
            runbook_url: optional(self.runbook),
            targets: self.targets(),
            templates: self.templates.spec(),
            enabled: self.enabled.get_untracked(),
            silenced_until: self.silenced_until.get_untracked(),
        })
    }
}

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

    /// Replays the draft over the last `range` of stored history, and reads its statistic
    /// over the same range for the chart.
    fn backtest(&self, range: String, result: RwSignal<Option<BacktestView>>) {
        let Some(spec) = self.spec() else { return };
        let RuleActions { refused, busy, .. } = *self;
        busy.set(true);
        spawn_local(async move {
            let request = AlertBacktestRequest {
                rule: spec.clone(),
                from: Some(format!("-{range}")),
                to: None,
            };
            let answer = send_json::<_, AlertBacktest>(
                Method::Post,
                "/api/v1/alerts/backtest",
                Some(&request),
            )
            .await;
            match answer {
                Ok(found) => {
                    refused.set(None);
                    let values = statistic_points(&spec, found.from_ms, found.to_ms).await;
                    result.set(Some((found, values)));
                }
                Err(e) => {
                    result.set(None);
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
        encode_query(&spec.metric),
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
pub fn RuleForm(
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
    let backtest = RwSignal::new(None::<BacktestView>);
    let backtest_range = RwSignal::new("24h".to_string());
    let sample = RwSignal::new(None::<AlertBacktestTransition>);
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
            <TemplateFields templates=form.templates refused sample
                draft=Callback::new(move |()| actions.spec()) />
            <FieldError key="body" refused />
            <FieldError key="form" refused />
            <div class="mt-4 flex flex-wrap gap-2">
                <button type="submit" class=PRIMARY disabled=move || busy.get()>"Save rule"</button>
                <button type="button" class=BUTTON on:click=move |_| actions.preview(preview) disabled=move || busy.get()>"Preview"</button>
                <select class=SELECT aria-label="Backtest range"
                    on:change=move |ev| backtest_range.set(event_target_value(&ev))>
                    {RANGES.iter().map(|&(v, t)| view! { <option value=v selected=v == "24h">{t}</option> }).collect_view()}
                </select>
                <button type="button" class=BUTTON disabled=move || busy.get()
                    on:click=move |_| actions.backtest(backtest_range.get_untracked(), backtest)>"Backtest"</button>
                <button type="button" class=BUTTON on:click=move |_| on_done.run(())>"Cancel"</button>
            </div>
            <FieldError key="from" refused />
            <RulePreview form preview />
            {move || backtest.get().map(|view| {
                let threshold = form.threshold.get_untracked().trim().parse().unwrap_or(0.0);
                let recovery = form.recovery.get_untracked().trim().parse().ok();
                view! { <BacktestResult view threshold recovery sample /> }
            })}
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
            <TextField label="Datapoints to alarm (M, optional)" key="datapoints_to_alarm" value=form.datapoints refused placeholder="instead of pending for" />
            <TextField label="Out of the last N evaluations" key="evaluation_periods" value=form.periods refused placeholder="N, one per second" />
            <TextField label="Keep firing for" key="keep_firing_for" value=form.keep refused />
            <SelectField label="When no data" key="no_data" value=form.no_data options=NO_DATA refused />
            <TextField label="No data after" key="no_data_after" value=form.no_data_after refused />
            <SelectField label="Severity" key="severity" value=form.severity options=SEVERITY refused />
            <TextField label="Description" key="description" value=form.description refused />
            <TextField label="Runbook URL" key="runbook_url" value=form.runbook refused placeholder="https://…" />
            <TextField label="Group interval (series each)" key="group_interval" value=form.group refused placeholder="10s; 0s: one per instance" />
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
            <TextField label="Webhook URL" key="webhook" value=form.webhook refused placeholder="https://hooks.example/alert"
                help="Credentials in the URL are shown as ***, which keeps the stored ones." />
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
