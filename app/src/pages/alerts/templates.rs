//! The rule form's notification templates: one MiniJinja template per target kind (webhook
//! body, Kinesis record, in-app text), a preview rendered from a sample transition or one the
//! backtest found, and **Send test notification**, which delivers to the rule's target now and
//! shows the receiver's answer.

use super::BUTTON;
use crate::{
    components::form::{FieldError, Refusal, refusal},
    fetch::{Method, send_json},
};
use contract::api::{
    AlertBacktestTransition, AlertRuleSpec, NotificationOutcome, NotificationRequest, TargetKind,
};
use leptos::{prelude::*, task::spawn_local};

/// The template inputs.
#[derive(Clone, Copy)]
pub struct Templates {
    pub webhook: RwSignal<String>,
    pub kinesis: RwSignal<String>,
    pub in_app: RwSignal<String>,
}

impl Templates {
    pub fn new() -> Self {
        Self {
            webhook: RwSignal::new(String::new()),
            kinesis: RwSignal::new(String::new()),
            in_app: RwSignal::new(String::new()),
        }
    }

    pub fn load(&self, spec: &AlertRuleSpec) {
        let t = &spec.templates;
        self.webhook.set(t.webhook.clone().unwrap_or_default());
        self.kinesis.set(t.kinesis.clone().unwrap_or_default());
        self.in_app.set(t.in_app.clone().unwrap_or_default());
    }

    pub fn spec(&self) -> contract::api::NotificationTemplates {
        let text = |s: RwSignal<String>| Some(s.get_untracked()).filter(|t| !t.trim().is_empty());
        contract::api::NotificationTemplates {
            webhook: text(self.webhook),
            kinesis: text(self.kinesis),
            in_app: text(self.in_app),
        }
    }
}

/// A labelled template box; a refusal naming `key` shows under it.
#[component]
fn TemplateField(
    label: &'static str,
    key: &'static str,
    value: RwSignal<String>,
    refused: RwSignal<Option<Refusal>>,
    placeholder: &'static str,
) -> impl IntoView {
    let invalid = move || {
        refused
            .with(|r| r.as_ref().is_some_and(|r| r.field == key))
            .to_string()
    };
    view! {
        <div class="flex flex-col gap-1">
            <label for=key class="text-sm font-medium">{label}</label>
            <textarea id=key name=key placeholder=placeholder aria-invalid=invalid
                class="h-20 rounded-md border border-slate-300 bg-white p-2 font-mono text-xs aria-invalid:border-red-500 dark:border-slate-700 dark:bg-slate-900"
                prop:value=move || value.get()
                on:input=move |ev| value.set(event_target_value(&ev))></textarea>
            <FieldError key refused />
        </div>
    }
}

const TARGETS: &[(&str, &str)] = &[
    ("webhook", "webhook"),
    ("kinesis", "Kinesis stream"),
    ("in_app", "in the app"),
];

/// The template fields, the target to preview or test, and the outcome.
#[component]
pub fn TemplateFields(
    templates: Templates,
    refused: RwSignal<Option<Refusal>>,
    /// The draft rule (`None` after showing what the form refuses).
    draft: Callback<(), Option<AlertRuleSpec>>,
    /// A transition the backtest found, to render instead of a sample.
    sample: RwSignal<Option<AlertBacktestTransition>>,
) -> impl IntoView {
    let target = RwSignal::new("webhook".to_string());
    let outcome = RwSignal::new(None::<NotificationOutcome>);
    let busy = RwSignal::new(false);
    let run = move |test: bool| {
        let Some(rule) = draft.run(()) else { return };
        let Ok(kind) = target.get_untracked().parse::<TargetKind>() else {
            return;
        };
        let request = NotificationRequest {
            rule,
            target: kind,
            transition: sample.get_untracked(),
        };
        let url = if test {
            "/api/v1/alerts/notification/test"
        } else {
            "/api/v1/alerts/notification/preview"
        };
        busy.set(true);
        spawn_local(async move {
            match send_json::<_, NotificationOutcome>(Method::Post, url, Some(&request)).await {
                Ok(done) => {
                    refused.set(None);
                    outcome.set(Some(done));
                }
                Err(e) => {
                    outcome.set(None);
                    refused.set(Some(refusal(&e)));
                }
            }
            busy.set(false);
        });
    };
    view! {
        <fieldset class="mt-3 grid gap-3 sm:grid-cols-3">
            <legend class="mb-1 text-sm font-medium">"Templates (MiniJinja: {{ rule }}, {{ to }}, {{ value }}, … ; empty: the JSON payload)"</legend>
            <TemplateField label="Webhook body" key="templates.webhook" value=templates.webhook refused
                placeholder="{\"text\": {{ (rule ~ \" is \" ~ to)|tojson }}}" />
            <TemplateField label="Kinesis record" key="templates.kinesis" value=templates.kinesis refused
                placeholder="{{ rule }},{{ to }},{{ value }}" />
            <TemplateField label="In-app text" key="templates.in_app" value=templates.in_app refused
                placeholder="{{ rule }} is {{ to }} ({{ value }})" />
        </fieldset>
        <div class="mt-2 flex flex-wrap items-center gap-2 text-sm">
            <label for="notify-target">"Target"</label>
            <select id="notify-target" class="rounded-md border border-slate-300 bg-white px-2 py-1 text-sm dark:border-slate-700 dark:bg-slate-900"
                on:change=move |ev| target.set(event_target_value(&ev))>
                {TARGETS.iter().map(|&(v, t)| view! { <option value=v>{t}</option> }).collect_view()}
            </select>
            <button type="button" class=BUTTON disabled=move || busy.get() on:click=move |_| run(false)>"Preview notification"</button>
            <button type="button" class=BUTTON disabled=move || busy.get() on:click=move |_| run(true)>"Send test notification"</button>
            {move || sample.get().map(|t| view! {
                <span class="text-xs text-slate-500">{format!("rendering the backtest's {} → {} at {}", t.from.as_str(), t.to.as_str(), super::format_time_ms(t.at_ms))}</span>
                <button type="button" class="text-xs underline" on:click=move |_| sample.set(None)>"use a sample instead"</button>
            })}
        </div>
        <FieldError key="target" refused />
        {move || outcome.get().map(|o| view! {
            <section class="mt-2 rounded-md bg-slate-100 p-2 text-xs dark:bg-slate-800" aria-label="Notification" data-testid="notification-outcome">
                {o.delivered.map(|ok| view! {
                    <p class="font-medium" data-testid="test-send-result">
                        {if ok { "Delivered" } else { "Not delivered" }}
                        {o.status.map(|s| format!(": HTTP {s}"))}
                        {o.error.clone().map(|e| format!(": {e}"))}
                    </p>
                })}
                {o.answer.clone().map(|a| view! {
                    <p>"Receiver answered: "<code data-testid="receiver-answer">{a}</code></p>
                })}
                <pre class="mt-1 whitespace-pre-wrap font-mono" data-testid="notification-text">{o.text.clone()}</pre>
            </section>
        })}
    }
    .into_any()
}
