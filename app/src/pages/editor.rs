//! `/metrics/new` and `/metrics/{name}/edit`: the metric definition editor.
//!
//! Every definition field has an input; the stream's discovered fields are offered as choices
//! (a datalist fed by `/api/v1/streams/{name}/fields`); "Preview" runs the draft over the
//! stream's recent records (`POST /api/v1/metrics/preview`) before anything is saved; a 422
//! from preview, create or update is shown next to the field it names.

use super::PageHeader;
use crate::{
    components::form::{FieldError, Refusal, SelectField, TextField, refusal},
    fetch::{Method, get_json, send_json},
    live::use_topics,
};
use contract::{
    api::{FieldList, MetricInfo, PreviewResponse},
    protocol::Topic,
    units::format_number,
};
use leptos::{prelude::*, task::spawn_local};
use leptos_meta::Title;
use leptos_router::{
    NavigateOptions,
    hooks::{use_navigate, use_params_map, use_query_map},
};
use serde_json::{Map, Value, json};

/// The editor's inputs as typed, before they become a definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub name: String,
    pub stream: String,
    /// `json`, `logfmt` or `regex`.
    pub format: String,
    pub regex: String,
    pub value: String,
    pub filter: String,
    pub dimensions: [String; 3],
    pub unit: String,
    pub time_field: String,
    /// `rfc3339`, `epoch_s` or `epoch_ms`.
    pub time_format: String,
    pub hist_lowest: String,
    pub hist_highest: String,
    pub hist_figures: String,
}

impl Default for Draft {
    fn default() -> Self {
        Self {
            name: String::new(),
            stream: String::new(),
            format: "json".into(),
            regex: String::new(),
            value: String::new(),
            filter: String::new(),
            dimensions: Default::default(),
            unit: String::new(),
            time_field: String::new(),
            time_format: "rfc3339".into(),
            hist_lowest: "1".into(),
            hist_highest: "3600000".into(),
            hist_figures: "2".into(),
        }
    }
}

/// A draft the browser refuses before asking the server: (field, message).
pub type DraftError = (&'static str, String);

impl Draft {
    /// The definition JSON (`/api/v1/metrics` body). Empty optional inputs are left out.
    pub fn to_json(&self) -> Result<Value, DraftError> {
        let mut out = Map::new();
        out.insert("name".into(), json!(self.name.trim()));
        out.insert("stream".into(), json!(self.stream.trim()));
        out.insert(
            "format".into(),
            match self.format.as_str() {
                "logfmt" => json!("logfmt"),
                "regex" => json!({ "regex": self.regex }),
                _ => json!("json"),
            },
        );
        let optional = |text: &str| {
            let text = text.trim();
            (!text.is_empty()).then(|| json!(text))
        };
        for (key, text) in [
            ("value", &self.value),
            ("filter", &self.filter),
            ("unit", &self.unit),
        ] {
            if let Some(v) = optional(text) {
                out.insert(key.into(), v);
            }
        }
        let dimensions: Vec<&str> = self
            .dimensions
            .iter()
            .map(|d| d.trim())
            .filter(|d| !d.is_empty())
            .collect();
        out.insert("dimensions".into(), json!(dimensions));
        if let Some(field) = optional(&self.time_field) {
            out.insert(
                "time".into(),
                json!({ "field": field, "format": self.time_format }),
            );
        }
        let number = |text: &str, what: &str| {
            text.trim().parse::<u64>().map_err(|_| {
                (
                    "histogram",
                    format!("{what} must be a whole number, got {text:?}"),
                )
            })
        };
        out.insert(
            "histogram".into(),
            json!({
                "lowest": number(&self.hist_lowest, "lowest")?,
                "highest": number(&self.hist_highest, "highest")?,
                "significant_figures": number(&self.hist_figures, "significant figures")?,
            }),
        );
        Ok(Value::Object(out))
    }

    /// A new definition with a record field filled in (the Records page's "make a metric from
    /// this field" link: `?stream=&format=&value=` or `&dimension=`).
    pub fn prefilled(
        stream: Option<String>,
        format: Option<String>,
        value: Option<String>,
        dimension: Option<String>,
    ) -> Self {
        let mut draft = Draft {
            stream: stream.unwrap_or_default(),
            value: value.unwrap_or_default(),
            ..Draft::default()
        };
        if format.as_deref() == Some("logfmt") {
            draft.format = "logfmt".into();
        }
        draft.dimensions[0] = dimension.unwrap_or_default();
        draft
    }

    /// The inputs for a stored definition (the `definition` of `GET /api/v1/metrics/{name}`).
    pub fn from_json(definition: &Value) -> Self {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let mut draft = Draft {
            name: text(&definition["name"]),
            stream: text(&definition["stream"]),
            value: text(&definition["value"]),
            filter: text(&definition["filter"]),
            unit: text(&definition["unit"]),
            ..Draft::default()
        };
        match &definition["format"] {
            Value::String(f) if f == "logfmt" => draft.format = "logfmt".into(),
            Value::Object(o) if o.contains_key("regex") => {
                draft.format = "regex".into();
                draft.regex = text(&o["regex"]);
            }
            _ => {}
        }
        if let Some(dims) = definition["dimensions"].as_array() {
            for (slot, dim) in draft.dimensions.iter_mut().zip(dims) {
                *slot = text(dim);
            }
        }
        if let Some(time) = definition["time"].as_object() {
            draft.time_field = time.get("field").map(text).unwrap_or_default();
            draft.time_format = time.get("format").map(text).unwrap_or_default();
        }
        let hist = &definition["histogram"];
        for (slot, key) in [
            (&mut draft.hist_lowest, "lowest"),
            (&mut draft.hist_highest, "highest"),
            (&mut draft.hist_figures, "significant_figures"),
        ] {
            if let Some(n) = hist[key].as_u64() {
                *slot = n.to_string();
            }
        }
        draft
    }
}

/// One signal per input.
#[derive(Clone, Copy)]
struct Form {
    name: RwSignal<String>,
    stream: RwSignal<String>,
    format: RwSignal<String>,
    regex: RwSignal<String>,
    value: RwSignal<String>,
    filter: RwSignal<String>,
    dimensions: [RwSignal<String>; 3],
    unit: RwSignal<String>,
    time_field: RwSignal<String>,
    time_format: RwSignal<String>,
    hist_lowest: RwSignal<String>,
    hist_highest: RwSignal<String>,
    hist_figures: RwSignal<String>,
}

impl Form {
    fn new(draft: Draft) -> Self {
        let [d0, d1, d2] = draft.dimensions;
        Form {
            name: RwSignal::new(draft.name),
            stream: RwSignal::new(draft.stream),
            format: RwSignal::new(draft.format),
            regex: RwSignal::new(draft.regex),
            value: RwSignal::new(draft.value),
            filter: RwSignal::new(draft.filter),
            dimensions: [RwSignal::new(d0), RwSignal::new(d1), RwSignal::new(d2)],
            unit: RwSignal::new(draft.unit),
            time_field: RwSignal::new(draft.time_field),
            time_format: RwSignal::new(draft.time_format),
            hist_lowest: RwSignal::new(draft.hist_lowest),
            hist_highest: RwSignal::new(draft.hist_highest),
            hist_figures: RwSignal::new(draft.hist_figures),
        }
    }

    fn load(&self, draft: Draft) {
        let [d0, d1, d2] = draft.dimensions;
        self.name.set(draft.name);
        self.stream.set(draft.stream);
        self.format.set(draft.format);
        self.regex.set(draft.regex);
        self.value.set(draft.value);
        self.filter.set(draft.filter);
        for (signal, dim) in self.dimensions.iter().zip([d0, d1, d2]) {
            signal.set(dim);
        }
        self.unit.set(draft.unit);
        self.time_field.set(draft.time_field);
        self.time_format.set(draft.time_format);
        self.hist_lowest.set(draft.hist_lowest);
        self.hist_highest.set(draft.hist_highest);
        self.hist_figures.set(draft.hist_figures);
    }

    fn draft(&self) -> Draft {
        let get = |s: RwSignal<String>| s.get_untracked();
        Draft {
            name: get(self.name),
            stream: get(self.stream),
            format: get(self.format),
            regex: get(self.regex),
            value: get(self.value),
            filter: get(self.filter),
            dimensions: self.dimensions.map(get),
            unit: get(self.unit),
            time_field: get(self.time_field),
            time_format: get(self.time_format),
            hist_lowest: get(self.hist_lowest),
            hist_highest: get(self.hist_highest),
            hist_figures: get(self.hist_figures),
        }
    }
}

/// `/metrics/new` and `/metrics/{name}/edit`.
#[component]
pub fn MetricEditor() -> impl IntoView {
    let editing = use_params_map().with_untracked(|p| p.get("name"));
    let live = use_topics(vec![Topic::Overview]);
    let draft = if editing.is_some() {
        Draft::default()
    } else {
        use_query_map().with_untracked(|q| {
            Draft::prefilled(
                q.get("stream"),
                q.get("format"),
                q.get("value"),
                q.get("dimension"),
            )
        })
    };
    let form = Form::new(draft);
    let refused = RwSignal::new(None::<Refusal>);
    let preview = RwSignal::new(None::<PreviewResponse>);
    let busy = RwSignal::new(false);
    if let Some(name) = &editing {
        load_definition(name.clone(), form, refused);
    }
    let streams = Memo::new(move |_| {
        live.overview.with(|o| {
            o.as_ref()
                .map(|o| o.streams.iter().map(|s| s.name.clone()).collect::<Vec<_>>())
                .unwrap_or_default()
        })
    });
    let field_list = discovered_fields(form.stream, streams);
    let actions = Actions {
        editing: StoredValue::new(editing.clone()),
        form,
        refused,
        busy,
    };
    let heading = if editing.is_some() {
        "Edit metric"
    } else {
        "New metric"
    };
    let is_edit = editing.is_some();
    let navigate = use_navigate();
    view! {
        <Title text=heading />
        <PageHeader title=heading subtitle="Define what to measure in a stream's records; preview it on recent records before saving." />
        <datalist id="stream-names">
            {move || streams.get().into_iter().map(|s| view! { <option value=s></option> }).collect_view()}
        </datalist>
        <datalist id="field-paths">
            {move || field_list.with(|f| f.as_ref().map(|f| f.fields.iter().map(|field| view! {
                <option value=field.path.clone()>{field.kind.as_str()}</option>
            }).collect_view()))}
        </datalist>
        <form class="flex flex-col gap-4" on:submit=move |ev| actions.save(ev, navigate.clone()) aria-label="Metric definition">
            <FieldError key="form" refused />
            <FieldError key="body" refused />
            <RecordFields form refused is_edit />
            <DimensionFields form refused />
            <TimeAndHistogramFields form refused />
            <DiscoveredFields fields=field_list />
            <EditorButtons actions preview is_edit />
        </form>
        <PreviewTable preview />
    }
    .into_any()
}

/// Editing: fills the form with the stored definition of `name` once it arrives.
fn load_definition(name: String, form: Form, refused: RwSignal<Option<Refusal>>) {
    let loaded = LocalResource::new(move || {
        let url = format!("/api/v1/metrics/{name}");
        async move { get_json::<MetricInfo>(&url).await }
    });
    Effect::new(move |_| {
        loaded.with(|l| match l {
            None => {}
            Some(Ok(info)) => match &info.definition {
                Some(def) => form.load(Draft::from_json(def)),
                None => refused.set(Some(Refusal::new(
                    "form",
                    "Built-in metrics have no definition to edit.",
                ))),
            },
            Some(Err(e)) => refused.set(Some(refusal(e))),
        })
    });
}

/// The chosen stream's discovered fields (only for streams the server reads).
fn discovered_fields(
    stream: RwSignal<String>,
    streams: Memo<Vec<String>>,
) -> Memo<Option<FieldList>> {
    let fields = LocalResource::new(move || {
        let stream = stream.get();
        let known = streams.with(|s| s.contains(&stream));
        async move {
            if known {
                get_json::<FieldList>(&format!("/api/v1/streams/{stream}/fields"))
                    .await
                    .ok()
            } else {
                None
            }
        }
    });
    Memo::new(move |_| fields.with(|f| f.clone().flatten()))
}

/// What the editor's buttons do: preview, save and delete the draft, reporting refusals at
/// their fields.
#[derive(Clone, Copy)]
struct Actions {
    /// The metric being edited (`None`: a new one).
    editing: StoredValue<Option<String>>,
    form: Form,
    refused: RwSignal<Option<Refusal>>,
    busy: RwSignal<bool>,
}

impl Actions {
    /// The definition JSON, or `None` after showing what the browser already refuses.
    fn body(&self) -> Option<serde_json::Value> {
        match self.form.draft().to_json() {
            Ok(body) => Some(body),
            Err((field, message)) => {
                self.refused.set(Some(Refusal::new(field, message)));
                None
            }
        }
    }

    /// Runs the draft over the stream's recent records.
    fn preview(&self, preview: RwSignal<Option<PreviewResponse>>) {
        let Some(body) = self.body() else { return };
        let replaces = self
            .editing
            .with_value(|e| e.as_ref().map(|n| format!("?replaces={n}")))
            .unwrap_or_default();
        let url = format!("/api/v1/metrics/preview{replaces}");
        let Actions { refused, busy, .. } = *self;
        busy.set(true);
        spawn_local(async move {
            match send_json::<_, PreviewResponse>(Method::Post, &url, Some(&body)).await {
                Ok(result) => {
                    refused.set(None);
                    preview.set(Some(result));
                }
                Err(e) => {
                    preview.set(None);
                    refused.set(Some(refusal(&e)));
                }
            }
            busy.set(false);
        });
    }

    /// Creates or replaces the metric, then shows its page.
    fn save(
        &self,
        ev: leptos::ev::SubmitEvent,
        navigate: impl Fn(&str, NavigateOptions) + 'static,
    ) {
        ev.prevent_default();
        let Some(body) = self.body() else { return };
        let name = self.form.name.get_untracked().trim().to_string();
        let (method, url) = match self.editing.get_value() {
            Some(current) => (Method::Put, format!("/api/v1/metrics/{current}")),
            None => (Method::Post, "/api/v1/metrics".to_string()),
        };
        let Actions { refused, busy, .. } = *self;
        busy.set(true);
        spawn_local(async move {
            match send_json::<_, MetricInfo>(method, &url, Some(&body)).await {
                Ok(_) => navigate(&format!("/metric/{name}"), Default::default()),
                Err(e) => refused.set(Some(refusal(&e))),
            }
            busy.set(false);
        });
    }

    /// Deletes the edited metric on the second click (`confirm` holds the first), then shows
    /// the dashboard.
    fn delete(&self, confirm: RwSignal<bool>, navigate: impl Fn(&str, NavigateOptions) + 'static) {
        let Some(name) = self.editing.get_value() else {
            return;
        };
        if !confirm.get_untracked() {
            confirm.set(true);
            return;
        }
        let refused = self.refused;
        spawn_local(async move {
            match send_json::<(), ()>(Method::Delete, &format!("/api/v1/metrics/{name}"), None)
                .await
            {
                Ok(()) => navigate("/", Default::default()),
                Err(e) => refused.set(Some(refusal(&e))),
            }
        });
    }
}

const FIELDSET: &str = "grid grid-cols-1 gap-4 rounded-xl border border-slate-200 bg-white p-4 sm:grid-cols-2 dark:border-slate-800 dark:bg-slate-900";

const RECORD_FORMATS: &[(&str, &str)] = &[
    ("json", "JSON"),
    ("logfmt", "logfmt"),
    ("regex", "Regular expression"),
];
const TIME_FORMATS: &[(&str, &str)] = &[
    ("rfc3339", "RFC 3339"),
    ("epoch_s", "Epoch seconds"),
    ("epoch_ms", "Epoch milliseconds"),
];

/// Name, stream, record format, value, filter and unit.
#[component]
fn RecordFields(form: Form, refused: RwSignal<Option<Refusal>>, is_edit: bool) -> impl IntoView {
    view! {
        <div class=FIELDSET>
            <div class="flex flex-col gap-1">
                <label for="name" class="text-sm font-medium">"Name"</label>
                <input id="name" name="name" type="text" bind:value=form.name readonly=is_edit placeholder="request_latency"
                    class="rounded-md border border-slate-300 bg-white px-2 py-1 font-mono text-sm read-only:bg-slate-100 dark:border-slate-700 dark:bg-slate-900 dark:read-only:bg-slate-800" />
                <FieldError key="name" refused />
            </div>
            <TextField label="Stream" key="stream" value=form.stream refused list="stream-names" placeholder="clickstream" />
            <SelectField label="Record format" key="format" value=form.format options=RECORD_FORMATS>
                <Show when=move || form.format.get() == "regex">
                    <TextField label="Pattern (named captures)" key="format" id="regex" value=form.regex refused placeholder="(?P<ms>\\d+)ms" />
                </Show>
                <Show when=move || form.format.get() != "regex"><FieldError key="format" refused /></Show>
            </SelectField>
            <TextField label="Value" key="value" value=form.value refused list="field-paths" placeholder="/latency_ms"
                help="JSON Pointer of the measured number; leave empty to count records." />
            <TextField label="Filter" key="filter" value=form.filter refused placeholder="/status >= 500 and /region = \"eu\""
                help="Optional: only records that match are measured." />
            <TextField label="Unit" key="unit" value=form.unit refused placeholder="ms" help="ms, s, bytes, count, percent or free text." />
        </div>
    }
    .into_any()
}

/// Up to three dimensions (field paths to group by).
#[component]
fn DimensionFields(form: Form, refused: RwSignal<Option<Refusal>>) -> impl IntoView {
    view! {
        <fieldset class=FIELDSET>
            <legend class="px-1 text-sm font-medium">"Dimensions (group by, up to 3)"</legend>
            <TextField label="Dimension 1" key="dimension-1" id="dimension-1" value=form.dimensions[0] refused list="field-paths" placeholder="/region" />
            <TextField label="Dimension 2" key="dimension-2" id="dimension-2" value=form.dimensions[1] refused list="field-paths" />
            <TextField label="Dimension 3" key="dimension-3" id="dimension-3" value=form.dimensions[2] refused list="field-paths" />
            <FieldError key="dimensions" refused />
        </fieldset>
    }
    .into_any()
}

/// The event time field and format, and the histogram's bounds and precision.
#[component]
fn TimeAndHistogramFields(form: Form, refused: RwSignal<Option<Refusal>>) -> impl IntoView {
    view! {
        <fieldset class=FIELDSET>
            <legend class="px-1 text-sm font-medium">"Time and histogram"</legend>
            <TextField label="Event time field" key="time" id="time-field" value=form.time_field refused list="field-paths"
                help="Leave empty to use the Kinesis arrival time." />
            <SelectField label="Event time format" key="time-format" value=form.time_format options=TIME_FORMATS />
            <TextField label="Histogram lowest" key="histogram-lowest" id="hist-lowest" value=form.hist_lowest refused />
            <TextField label="Histogram highest" key="histogram-highest" id="hist-highest" value=form.hist_highest refused />
            <TextField label="Significant figures" key="histogram-figures" id="hist-figures" value=form.hist_figures refused help="0 to 5; 2 is about 1% precision." />
            <FieldError key="histogram" refused />
        </fieldset>
    }
    .into_any()
}

/// Preview, save and (when editing) delete.
#[component]
fn EditorButtons(
    actions: Actions,
    preview: RwSignal<Option<PreviewResponse>>,
    is_edit: bool,
) -> impl IntoView {
    let busy = actions.busy;
    let confirm_delete = RwSignal::new(false);
    let navigate = use_navigate();
    view! {
        <div class="flex flex-wrap gap-2">
            <button type="button" on:click=move |_| actions.preview(preview) disabled=move || busy.get()
                class="rounded-md border border-sky-600 px-3 py-1.5 text-sm font-medium text-sky-700 hover:bg-sky-50 dark:text-sky-300 dark:hover:bg-slate-800">"Preview"</button>
            <button type="submit" disabled=move || busy.get()
                class="rounded-md bg-sky-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-sky-700">"Save"</button>
            {is_edit.then(|| view! {
                <button type="button" on:click=move |_| actions.delete(confirm_delete, navigate.clone())
                    class="ml-auto rounded-md border border-red-600 px-3 py-1.5 text-sm font-medium text-red-700 hover:bg-red-50 dark:text-red-400 dark:hover:bg-slate-800">
                    {move || if confirm_delete.get() { "Confirm delete" } else { "Delete" }}
                </button>
            })}
        </div>
    }
    .into_any()
}

/// What field discovery found in the stream's recent records.
#[component]
fn DiscoveredFields(fields: Memo<Option<FieldList>>) -> impl IntoView {
    move || {
        fields.with(|f| {
            f.as_ref().map(|f| {
                view! {
                    <section class="text-sm" aria-label="Discovered fields">
                        <h2 class="font-medium">{format!("Fields in the last {} records of {}", f.sampled_records, f.stream)}</h2>
                        <ul class="mt-1 flex flex-wrap gap-2">
                            {f.fields.iter().map(|field| {
                                let values = if field.values.is_empty() { String::new() } else { format!(": {}", field.values.join(", ")) };
                                view! {
                                    <li class="rounded bg-slate-100 px-2 py-0.5 font-mono text-xs dark:bg-slate-800">
                                        {format!("{} ({}{values})", field.path, field.kind)}
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    </section>
                }
            })
        })
    }
}

/// The draft's values on recent records, newest first.
#[component]
fn PreviewTable(preview: RwSignal<Option<PreviewResponse>>) -> impl IntoView {
    let cell = "px-3 py-1.5";
    move || {
        preview.with(|p| {
            p.as_ref().map(|p| {
                view! {
                    <section class="mt-6">
                        <h2 class="mb-2 font-medium" data-testid="preview-summary">
                            {format!("Preview on {} recent records of {}: {} values, {} skipped by the filter, {} unusable",
                                p.records.len(), p.stream, p.extracted, p.skipped, p.errors)}
                        </h2>
                        <div class="overflow-x-auto rounded-xl border border-slate-200 bg-white dark:border-slate-800 dark:bg-slate-900">
                            <table class="w-full text-sm" aria-label="Preview">
                                <thead class="text-left text-xs uppercase text-slate-500 dark:text-slate-400">
                                    <tr>
                                        <th class=cell>"Value"</th>
                                        <th class=cell>"Dimensions"</th>
                                        <th class=cell>"Event time (UTC)"</th>
                                        <th class=cell>"Record"</th>
                                    </tr>
                                </thead>
                                <tbody>
                                    {p.records.iter().map(|r| {
                                        let value = match (&r.error, r.skipped, r.value) {
                                            (Some(e), _, _) => e.clone(),
                                            (None, true, _) => "skipped".to_string(),
                                            (None, false, Some(v)) => format_number(v),
                                            _ => "—".to_string(),
                                        };
                                        let class = if r.error.is_some() { "text-red-600 dark:text-red-400" } else { "" };
                                        view! {
                                            <tr class="border-t border-slate-100 dark:border-slate-800">
                                                <td class=format!("{cell} tabular-nums {class}")>{value}</td>
                                                <td class=cell>{r.labels.join(", ")}</td>
                                                <td class=format!("{cell} tabular-nums")>{r.event_ms.map(|ms| contract::date::format_utc_minute(ms).replace('T', " ") + &format!(":{:02}", (ms / 1000).rem_euclid(60))).unwrap_or_default()}</td>
                                                <td class=format!("{cell} max-w-md truncate font-mono text-xs")>{r.excerpt.clone()}</td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    </section>
                }
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_field_prefills_a_new_definition() {
        let value = Draft::prefilled(
            Some("logs".into()),
            Some("logfmt".into()),
            Some("/took_ms".into()),
            None,
        );
        assert_eq!(
            (
                value.stream.as_str(),
                value.format.as_str(),
                value.value.as_str()
            ),
            ("logs", "logfmt", "/took_ms")
        );
        let dimension =
            Draft::prefilled(Some("orders".into()), None, None, Some("/country".into()));
        assert_eq!(
            (dimension.format.as_str(), dimension.dimensions[0].as_str()),
            ("json", "/country")
        );
    }

    #[test]
    fn drafts_round_trip_through_definition_json() {
        let draft = Draft {
            name: "lat".into(),
            stream: "clicks".into(),
            format: "regex".into(),
            regex: "(?P<ms>\\d+)ms".into(),
            value: "/ms".into(),
            filter: " ".into(),
            dimensions: ["/region".into(), String::new(), "/path".into()],
            unit: "ms".into(),
            time_field: "/t".into(),
            time_format: "epoch_ms".into(),
            ..Draft::default()
        };
        let json = draft.to_json().unwrap();
        assert_eq!(json["format"], json!({"regex": "(?P<ms>\\d+)ms"}));
        assert_eq!(json["dimensions"], json!(["/region", "/path"]));
        assert!(json.get("filter").is_none());
        assert_eq!(json["time"], json!({"field": "/t", "format": "epoch_ms"}));
        assert_eq!(json["histogram"]["highest"], 3_600_000);
        let back = Draft::from_json(&json);
        assert_eq!(
            back.dimensions,
            ["/region".to_string(), "/path".into(), String::new()]
        );
        assert_eq!(back.filter, "");
        assert_eq!(back.regex, draft.regex);
        assert_eq!(back.time_format, "epoch_ms");
        assert_eq!(Draft::from_json(&back.to_json().unwrap()), back);
    }

    #[test]
    fn bad_histogram_numbers_name_the_histogram() {
        let draft = Draft {
            hist_highest: "lots".into(),
            ..Draft::default()
        };
        assert_eq!(draft.to_json().unwrap_err().0, "histogram");
    }
}
