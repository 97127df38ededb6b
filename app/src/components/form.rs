//! Form pieces the editor and the alert rule form share: labelled text, select and checkbox
//! fields, and the refusal (the server's 422, or the form's own check) shown at the field it
//! names.
//!
//! Every field is a `<label for=id>` and its control, so tests and assistive technology find
//! it by its label; the control's `name` is the request field it fills, and a refusal naming
//! that field marks the control `aria-invalid` and shows its message under it
//! (`data-error-for`).

use crate::fetch::FetchError;
use leptos::prelude::*;

/// A refusal (from the server's 422, or the form itself), shown at the field it names.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Refusal {
    pub field: String,
    pub message: String,
}

impl Refusal {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Refusal {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The refusal of a failed API call: at the field the server names, else at `form`.
pub fn refusal(error: &FetchError) -> Refusal {
    Refusal::new(error.field().unwrap_or("form"), error.to_string())
}

const CONTROL: &str = "rounded-md border border-slate-300 bg-white px-2 py-1 text-sm \
                       aria-invalid:border-red-500 dark:border-slate-700 dark:bg-slate-900";

fn names(refused: RwSignal<Option<Refusal>>, key: &'static str) -> impl Fn() -> String + Copy {
    move || {
        refused
            .with(|r| r.as_ref().is_some_and(|r| r.field == key))
            .to_string()
    }
}

/// The refusal's message when it names `key` (`data-error-for` for the end-to-end tests).
#[component]
pub fn FieldError(key: &'static str, refused: RwSignal<Option<Refusal>>) -> impl IntoView {
    move || {
        refused.with(|r| {
            r.as_ref().filter(|r| r.field == key).map(|r| {
                view! {
                    <p role="alert" data-error-for=key class="text-xs text-red-600 dark:text-red-400">{r.message.clone()}</p>
                }
            })
        })
    }
}

/// A labelled text input with the refusal that names `key` under it.
#[component]
pub fn TextField(
    label: &'static str,
    key: &'static str,
    value: RwSignal<String>,
    refused: RwSignal<Option<Refusal>>,
    /// The input's id and name (default: `key`).
    #[prop(optional)]
    id: Option<&'static str>,
    #[prop(optional)] list: Option<&'static str>,
    #[prop(optional)] placeholder: &'static str,
    #[prop(optional)] help: &'static str,
) -> impl IntoView {
    let id = id.unwrap_or(key);
    view! {
        <div class="flex flex-col gap-1">
            <label for=id class="text-sm font-medium">{label}</label>
            <input id=id name=id type="text" list=list placeholder=placeholder bind:value=value
                aria-invalid=names(refused, key)
                class=format!("{CONTROL} font-mono") />
            {(!help.is_empty()).then(|| view! { <p class="text-xs text-slate-500 dark:text-slate-400">{help}</p> })}
            <FieldError key refused />
        </div>
    }
}

/// A checkbox named `key` bound to `checked`, with its label after it.
#[component]
pub fn CheckboxField(
    label: &'static str,
    key: &'static str,
    checked: RwSignal<bool>,
) -> impl IntoView {
    view! {
        <label class="flex items-center gap-2 text-sm">
            <input type="checkbox" name=key prop:checked=move || checked.get()
                on:change=move |ev| checked.set(event_target_checked(&ev)) />
            {label}
        </label>
    }
}

/// A labelled choice among `options` (value, text) bound to `value`. With `refused`, the
/// refusal that names `key` shows under it; `children` follow it (a field that depends on the
/// choice).
#[component]
pub fn SelectField(
    label: &'static str,
    /// The select's name and id, and the field its refusals name.
    key: &'static str,
    value: RwSignal<String>,
    options: &'static [(&'static str, &'static str)],
    /// The select's id when it differs from `key`.
    #[prop(optional)]
    id: Option<&'static str>,
    #[prop(optional)] refused: Option<RwSignal<Option<Refusal>>>,
    #[prop(optional)] children: Option<Children>,
) -> impl IntoView {
    let id = id.unwrap_or(key);
    let invalid = move || refused.map(|r| names(r, key)());
    view! {
        <div class="flex flex-col gap-1">
            <label for=id class="text-sm font-medium">{label}</label>
            <select id=id name=key class=CONTROL aria-invalid=invalid
                prop:value=move || value.get()
                on:change=move |ev| value.set(event_target_value(&ev))>
                {options.iter().map(|(v, text)| view! {
                    <option value=*v selected=move || value.get() == *v>{*text}</option>
                }).collect_view()}
            </select>
            {refused.map(|refused| view! { <FieldError key refused /> })}
            {children.map(|children| children())}
        </div>
    }
}
