//! `/streams/{name}/records`: the stream's newest records as they arrive (the live `tail`
//! topic), newest on top, filtered on the server (the filter language of metric definitions
//! and a free-text search), from the latest record, TRIM_HORIZON, a time or a sequence number,
//! for one shard or all. Pause freezes the list; every field of a JSON or logfmt record links
//! to the definition editor with that field filled in; the matching records download as JSON
//! lines (`GET /api/v1/streams/{name}/records`).

use super::PageHeader;
use crate::{
    components::form::{FieldError, Refusal, SelectField, TextField},
    fetch::encode_component,
    live::{apply_tail_inbox, decode, use_topics},
};
use contract::{
    date::{format_utc_minute, parse_utc_minute},
    protocol::{StreamsLive, Topic},
    tail::{RecordBody, TailQuery, TailRecord, TailStart},
    units::{format_count, format_number},
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;
use serde_json::Value;

const STARTS: &[(&str, &str)] = &[
    ("latest", "Newest (from now)"),
    ("trim_horizon", "Oldest (TRIM_HORIZON)"),
    ("timestamp", "At a time (UTC)"),
    ("sequence", "At a sequence number"),
];

/// The tail controls as typed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TailInputs {
    /// A shard id, or empty for all.
    pub shard: String,
    /// One of [`STARTS`].
    pub start: String,
    /// `YYYY-MM-DDTHH:MM`, UTC.
    pub at: String,
    pub sequence_number: String,
    pub filter: String,
    pub search: String,
}

impl TailInputs {
    /// The query these inputs ask for, or the field at fault.
    pub fn query(&self, stream: &str) -> Result<TailQuery, Refusal> {
        let start = match self.start.as_str() {
            "trim_horizon" => TailStart::TrimHorizon,
            "timestamp" => TailStart::Timestamp {
                epoch_ms: parse_utc_minute(&self.at)
                    .ok_or_else(|| Refusal::new("at", "give the time as YYYY-MM-DDTHH:MM (UTC)"))?,
            },
            "sequence" => {
                if self.sequence_number.trim().is_empty() {
                    return Err(Refusal::new("sequence_number", "give a sequence number"));
                }
                TailStart::Sequence {
                    sequence_number: self.sequence_number.trim().to_string(),
                }
            }
            _ => TailStart::Latest,
        };
        Ok(TailQuery {
            stream: stream.to_string(),
            shard: (!self.shard.is_empty()).then(|| self.shard.clone()),
            start,
            filter: self.filter.trim().to_string(),
            search: self.search.trim().to_string(),
        })
    }
}

/// The download URL of a query's matching records: from its start, TRIM_HORIZON for a tail
/// of the newest records (which would have nothing to download yet).
pub fn download_url(query: &TailQuery) -> String {
    let mut url = format!(
        "/api/v1/streams/{}/records?filter={}&search={}",
        encode_component(&query.stream),
        encode_component(&query.filter),
        encode_component(&query.search)
    );
    if let Some(shard) = &query.shard {
        url.push_str(&format!("&shard={}", encode_component(shard)));
    }
    match &query.start {
        TailStart::Latest | TailStart::TrimHorizon => url.push_str("&start=trim_horizon"),
        TailStart::Timestamp { epoch_ms } => {
            url.push_str(&format!("&start=timestamp&from_ms={epoch_ms}"))
        }
        TailStart::Sequence { sequence_number } => url.push_str(&format!(
            "&start=sequence&sequence_number={}",
            encode_component(sequence_number)
        )),
    }
    url
}

/// A field's JSON Pointer token (`~` and `/` escaped).
fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The definition editor for a new metric of `stream` with the field at `path` filled in: as
/// the value when it holds numbers, as the first dimension otherwise.
pub fn metric_link(stream: &str, format: &str, path: &str, numeric: bool) -> String {
    format!(
        "/metrics/new?stream={}&format={format}&{}={}",
        encode_component(stream),
        if numeric { "value" } else { "dimension" },
        encode_component(path)
    )
}

/// `YYYY-MM-DD HH:MM:SS.mmm` UTC.
fn format_arrival(ms: i64) -> String {
    let minute = format_utc_minute(ms).replace('T', " ");
    let within = ms.rem_euclid(60_000);
    format!("{minute}:{:02}.{:03}", within / 1000, within % 1000)
}

/// `/streams/{name}/records`.
#[component]
pub fn Records() -> impl IntoView {
    let stream = use_params_map().with_untracked(|p| p.get("name").unwrap_or_default());
    let first = TailQuery {
        stream: stream.clone(),
        ..TailQuery::default()
    };
    let live = use_topics(vec![Topic::Streams, Topic::Tail(first.clone())]);
    let applied = RwSignal::new(first);
    let inputs = [(); 6].map(|_| RwSignal::new(String::new()));
    let [shard, start, at, sequence_number, filter, search] = inputs;
    start.set("latest".into());
    let refused = RwSignal::new(None::<Refusal>);
    let paused = RwSignal::new(None::<Vec<TailRecord>>);

    // The tail's updates reach the page as text; its decoder ships in this page's chunk.
    Effect::new(move |_| apply_tail_inbox(live));
    // The server's refusal of the applied query, at the field it names.
    Effect::new(move |_| {
        let error = live.tail.with(|feed| {
            feed.latest
                .as_ref()
                .filter(|u| applied.with_untracked(|q| &u.query == q))
                .and_then(|u| u.error.clone())
        });
        if let Some(error) = error {
            refused.set(Some(Refusal::new(
                error.field.unwrap_or_else(|| "form".into()),
                error.message,
            )));
        }
    });
    let apply = {
        let stream = stream.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let typed = TailInputs {
                shard: shard.get_untracked(),
                start: start.get_untracked(),
                at: at.get_untracked(),
                sequence_number: sequence_number.get_untracked(),
                filter: filter.get_untracked(),
                search: search.get_untracked(),
            };
            match typed.query(&stream) {
                Ok(query) => {
                    refused.set(None);
                    paused.set(None);
                    applied.set(query.clone());
                    live.topics.set(vec![Topic::Streams, Topic::Tail(query)]);
                }
                Err(refusal) => refused.set(Some(refusal)),
            }
        }
    };
    let shards = Memo::new({
        let stream = stream.clone();
        move |_| {
            live.streams
                .with(decode::<StreamsLive>)
                .map(|s| {
                    s.shards
                        .iter()
                        .filter(|shard| shard.stream == stream)
                        .map(|shard| shard.shard.clone())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        }
    });
    let shown = move || match paused.get() {
        Some(frozen) => frozen,
        None => live.tail.with(|f| {
            if f.query.as_ref() == Some(&applied.get()) {
                f.records.iter().cloned().collect()
            } else {
                Vec::new()
            }
        }),
    };
    let toggle_pause = move |_| {
        if paused.with_untracked(Option::is_some) {
            paused.set(None);
        } else {
            paused.set(Some(
                live.tail
                    .with_untracked(|f| f.records.iter().cloned().collect()),
            ));
        }
    };
    let title = format!("Records of {stream}");
    let stream_name = StoredValue::new(stream.clone());
    view! {
        <Title text=title.clone() />
        <PageHeader title="Records" subtitle="The stream's newest records as they arrive, filtered on the server." />
        <h2 class="mb-4 font-mono text-lg" data-testid="records-stream">{stream.clone()}</h2>
        <form class="mb-4 grid gap-3 rounded-xl border border-slate-200 bg-white p-4 sm:grid-cols-2 lg:grid-cols-4 dark:border-slate-800 dark:bg-slate-900"
            aria-label="Tail" on:submit=apply>
            <div class="sm:col-span-2">
                <TextField label="Filter" key="filter" value=filter refused placeholder="/status >= 500 and /region = \"eu-west-1\""
                    help="The filter language of metric definitions, on JSON or logfmt fields." />
            </div>
            <TextField label="Search" key="search" value=search refused placeholder="checkout" help="Text in the data or the partition key (any case)." />
            <div class="flex flex-col gap-1">
                <label for="shard" class="text-sm font-medium">"Shard"</label>
                <select id="shard" name="shard" class="rounded-md border border-slate-300 bg-white px-2 py-1 text-sm dark:border-slate-700 dark:bg-slate-900"
                    prop:value=move || shard.get() on:change=move |ev| shard.set(event_target_value(&ev))>
                    <option value="">"All shards"</option>
                    {move || shards.get().into_iter().map(|id| view! { <option value=id.clone()>{id.clone()}</option> }).collect_view()}
                </select>
                <FieldError key="shard" refused />
            </div>
            <SelectField label="Start" key="start" value=start options=STARTS refused />
            {move || (start.get() == "timestamp").then(|| view! {
                <TextField label="Time (UTC)" key="at" value=at refused placeholder="2026-01-31T12:00" />
            })}
            {move || (start.get() == "sequence").then(|| view! {
                <TextField label="Sequence number" key="sequence_number" value=sequence_number refused />
            })}
            <div class="flex items-end gap-2">
                <button type="submit" class="rounded-md bg-sky-600 px-3 py-1.5 text-sm font-medium text-white hover:bg-sky-700">"Apply"</button>
            </div>
            <div class="sm:col-span-2 lg:col-span-4">
                <FieldError key="stream" refused />
                <FieldError key="form" refused />
            </div>
        </form>
        <div class="mb-3 flex flex-wrap items-center gap-3 text-sm">
            <button type="button" on:click=toggle_pause aria-pressed=move || paused.with(Option::is_some).to_string()
                class="rounded-md border border-slate-300 px-3 py-1.5 dark:border-slate-700">
                {move || if paused.with(Option::is_some) { "Resume" } else { "Pause" }}
            </button>
            <p data-testid="tail-rates" class="tabular-nums text-slate-600 dark:text-slate-400">
                {move || live.tail.with(|f| f.latest.as_ref().map(|u| format!(
                    "Showing {}/s of {}/s matching ({}/s read) · {} shown of {} matched, {} read",
                    format_number(u.shown_per_s), format_number(u.matched_per_s), format_number(u.read_per_s),
                    format_count(u.shown), format_count(u.matched), format_count(u.read),
                ))).unwrap_or_else(|| "Starting…".into())}
            </p>
            <a class="ml-auto text-sky-700 underline dark:text-sky-400" data-testid="download"
                href=move || download_url(&applied.get()) download="">
                "Download matching records (JSON lines)"
            </a>
        </div>
        <section aria-label="Records" class="flex flex-col gap-2">
            <For each=shown key=|r| (r.shard.clone(), r.sequence_number.clone(), r.sub_sequence) let:record>
                <RecordView record stream=stream_name.get_value() />
            </For>
        </section>
    }
    .into_any()
}

/// One record: its position and arrival, then its data.
#[component]
fn RecordView(record: TailRecord, stream: String) -> impl IntoView {
    let meta = "text-xs text-slate-500 dark:text-slate-400";
    let body = match &record.body {
        RecordBody::Json { value } => view! {
            <div class="font-mono text-xs">{json_tree(value, String::new(), &stream)}</div>
        }
        .into_any(),
        RecordBody::Logfmt { pairs } => view! {
            <dl class="grid grid-cols-[max-content_1fr] gap-x-3 font-mono text-xs">
                {pairs.iter().map(|(key, value)| {
                    let numeric = value.trim().parse::<f64>().is_ok();
                    let path = format!("/{}", pointer_token(key));
                    view! {
                        <dt><a class="text-sky-700 hover:underline dark:text-sky-400" data-field-path=path.clone()
                            title="Make a metric from this field" href=metric_link(&stream, "logfmt", &path, numeric)>{key.clone()}</a></dt>
                        <dd>{value.clone()}</dd>
                    }
                }).collect_view()}
            </dl>
        }
        .into_any(),
        RecordBody::Text { text } => view! {
            <pre class="whitespace-pre-wrap break-all font-mono text-xs">{text.clone()}</pre>
        }
        .into_any(),
        RecordBody::Binary { hex } => view! {
            <pre class="whitespace-pre-wrap break-all font-mono text-xs" data-kind="binary">{hex.clone()}</pre>
        }
        .into_any(),
    };
    let kind = match &record.body {
        RecordBody::Json { .. } => "json",
        RecordBody::Logfmt { .. } => "logfmt",
        RecordBody::Text { .. } => "text",
        RecordBody::Binary { .. } => "binary",
    };
    view! {
        // `content-visibility: auto`: the browser lays out and paints only the records on
        // screen. Without it every update (4 a second at full rate) laid out all 200 records'
        // trees again: two thirds of the main thread's time went to layout and style.
        <article data-testid="record" data-sequence=record.sequence_number.clone() data-kind=kind
            class="rounded-lg border border-slate-200 bg-white p-3 [contain-intrinsic-size:auto_10rem] [content-visibility:auto] dark:border-slate-800 dark:bg-slate-900">
            <header class=format!("mb-1 flex flex-wrap gap-x-4 {meta}")>
                <time>{format_arrival(record.arrival_time_ms)}</time>
                <span class="font-mono">{record.shard.clone()}</span>
                <span class="font-mono" title="Sequence number">{record.sequence_number.clone()}</span>
                {record.sub_sequence.map(|n| view! {
                    <span class="rounded bg-violet-100 px-1.5 text-violet-900 dark:bg-violet-900 dark:text-violet-100"
                        title="A user record inside a KPL aggregated record">{format!("KPL user record {n}")}</span>
                })}
                <span>"key "<span class="font-mono">{record.partition_key.clone()}</span></span>
                <span>{format!("{} B", format_count(record.size_bytes as u64))}</span>
                {record.truncated.then_some("(cut)")}
            </header>
            {body}
        </article>
    }
}

/// A JSON value as a collapsible tree; every field name links to a new metric of that field.
fn json_tree(value: &Value, path: String, stream: &str) -> AnyView {
    let entries: Vec<(String, &Value)> = match value {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        leaf => return view! { <span class="text-emerald-700 dark:text-emerald-400">{leaf.to_string()}</span> }.into_any(),
    };
    let (open, close) = if value.is_array() {
        ("[", "]")
    } else {
        ("{", "}")
    };
    let summary = format!("{open} {} {close}", entries.len());
    let items = entries
        .into_iter()
        .map(|(key, child)| {
            let child_path = format!("{path}/{}", pointer_token(&key));
            let label = if child.is_object() || child.is_array() {
                view! { <span class="text-slate-700 dark:text-slate-300">{key.clone()}</span> }.into_any()
            } else {
                view! {
                    <a class="text-sky-700 hover:underline dark:text-sky-400" data-field-path=child_path.clone()
                        title="Make a metric from this field"
                        href=metric_link(stream, "json", &child_path, child.is_number())>{key.clone()}</a>
                }
                .into_any()
            };
            view! { <li>{label}": "{json_tree(child, child_path, stream)}</li> }
        })
        .collect_view();
    view! {
        <details open class="inline-block align-top">
            <summary class="cursor-pointer text-slate-500">{summary}</summary>
            <ul class="ml-4">{items}</ul>
        </details>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_make_the_query_or_name_the_field_at_fault() {
        let mut inputs = TailInputs {
            start: "timestamp".into(),
            at: "2026-01-31T12:00".into(),
            filter: " /status >= 500 ".into(),
            ..TailInputs::default()
        };
        let query = inputs.query("orders").unwrap();
        assert_eq!(
            query.start,
            TailStart::Timestamp {
                epoch_ms: parse_utc_minute("2026-01-31T12:00").unwrap()
            }
        );
        assert_eq!(
            (query.filter.as_str(), query.shard),
            ("/status >= 500", None)
        );
        inputs.at = "yesterday".into();
        assert_eq!(inputs.query("orders").unwrap_err().field, "at");
        inputs.start = "sequence".into();
        assert_eq!(inputs.query("orders").unwrap_err().field, "sequence_number");
    }

    #[test]
    fn downloads_and_metric_links_carry_the_query_encoded() {
        let query = TailQuery {
            stream: "orders".into(),
            filter: "/path = \"/a b\"".into(),
            ..TailQuery::default()
        };
        assert_eq!(
            download_url(&query),
            "/api/v1/streams/orders/records?filter=%2Fpath%20%3D%20%22%2Fa%20b%22&search=&start=trim_horizon"
        );
        assert_eq!(
            metric_link("orders", "json", "/user/id", false),
            "/metrics/new?stream=orders&format=json&dimension=%2Fuser%2Fid"
        );
        assert_eq!(pointer_token("a/b~c"), "a~1b~0c");
        assert_eq!(format_arrival(61_001), "1970-01-01 00:01:01.001");
    }
}
