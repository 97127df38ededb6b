//! `/alerts`: threshold rules with their live states and values, a form to create and edit
//! them ([`rule_form`]: validation messages at the fields, a preview against the threshold
//! lines, a [`backtest`] over stored history), the row actions (pause and resume, silence,
//! duplicate, delete), export and import of the rules ([`rules_io`]), and the transition
//! history filtered by rule, state and time.

mod backtest;
mod rule_form;
mod rules_io;
mod templates;

use super::PageHeader;
use crate::{
    fetch::{Method, get_json, send_json},
    live::use_topics,
};
use contract::{
    alert::{AlertState, NotificationStatus},
    api::{AlertHistory, AlertRuleInfo, AlertRuleList, MetricList},
    protocol::{AlertEvent, AlertInstanceLive, AlertRuleLive},
    units::format_number,
};
use leptos::{prelude::*, task::spawn_local};
use leptos_meta::Title;
use rule_form::RuleForm;

const BUTTON: &str = "rounded-md border border-slate-300 px-3 py-1 text-sm hover:bg-slate-100 dark:border-slate-700 dark:hover:bg-slate-800";
const PRIMARY: &str = "rounded-md bg-slate-900 px-3 py-1 text-sm font-medium text-white hover:bg-slate-700 disabled:opacity-50 dark:bg-slate-100 dark:text-slate-900";
const SELECT: &str = "w-auto rounded-md border border-slate-300 bg-white px-2 py-1 text-sm dark:border-slate-700 dark:bg-slate-900";

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
    // Pause, resume, duplicate: a POST without a body.
    let act = move |action: &'static str| {
        spawn_local(async move {
            match send_json::<(), serde_json::Value>(
                Method::Post,
                &format!("/api/v1/alerts/{id}/{action}"),
                None,
            )
            .await
            {
                Ok(_) => on_changed.run(()),
                Err(e) => problem.set(Some(e.to_string())),
            }
        });
    };
    let enabled = rule.enabled;
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
                    {(!rule.enabled).then_some(" · paused")}
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
                    <button type="button" class=BUTTON
                        on:click=move |_| act(if enabled { "pause" } else { "resume" })>
                        {if enabled { "Pause" } else { "Resume" }}
                    </button>
                    <button type="button" class=BUTTON on:click=move |_| act("duplicate")>"Duplicate"</button>
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
    let may_edit = crate::session::can(contract::auth::Role::Editor);
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
            <Show when=move || may_edit.get()>
                <button type="button" class=PRIMARY data-testid="new-rule"
                    on:click=move |_| editing.set(Some(None))>"New rule"</button>
            </Show>
            {move || problem.get().map(|p| view! { <p role="alert" class="text-sm text-red-600">{p}</p> })}
        </div>
        <rules_io::RulesFile on_changed=changed />
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
}
