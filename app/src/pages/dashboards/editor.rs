//! The panel form (add or edit one panel) and the dashboard's settings form (name, default
//! range, refresh, variables). Both check the edited document with the contract's
//! `Dashboard::check` before applying it, so a refusal shows at its field at once; the server
//! checks the same way when the dashboard is saved.

use crate::components::form::{FieldError, Refusal, SelectField, TextField};
use contract::{
    api::MetricInfo,
    dashboard::{
        Dashboard, DashboardError, MAX_QUERIES, Panel, PanelKind, PanelQuery, RANGE_KEYS, Refresh,
        Variable, free_spot, settle,
    },
    summary::Statistic,
};
use leptos::prelude::*;

pub const BUTTON: &str = "rounded-md border border-slate-300 px-2.5 py-1 text-sm font-medium \
                          hover:bg-slate-100 disabled:opacity-50 dark:border-slate-700 dark:hover:bg-slate-800";
pub const PRIMARY: &str = "rounded-md bg-sky-600 px-3 py-1 text-sm font-medium text-white \
                           hover:bg-sky-700 disabled:opacity-50";
const CONTROL: &str = "rounded-md border border-slate-300 bg-white px-2 py-1 text-sm \
                       aria-invalid:border-red-500 dark:border-slate-700 dark:bg-slate-900";

const KINDS: &[(&str, &str)] = &[
    ("timeseries", "Time series"),
    ("stat", "Stat"),
    ("table", "Table"),
    ("distribution", "Distribution"),
    ("heatmap", "Heatmap"),
];

const SERIES_MODES: &[(&str, &str)] = &[
    ("all", "All series merged"),
    ("one", "One series (labels)"),
    ("top", "Top N series"),
];

/// The form key of a refusal's document path for the panel at `index`: its own fields lose
/// the `panels[N].` prefix (`panels[2].queries[1].top` → `queries[1].top`, `panels[2].w` →
/// `w`); a refusal about another panel (or the panel list) shows at `panels`, path and all.
pub fn panel_refusal(error: &DashboardError, index: usize) -> Refusal {
    match error.field.strip_prefix(&format!("panels[{index}].")) {
        Some(own) => Refusal::new(own, error.message.clone()),
        None if error.field == "panels" => Refusal::new("panels", error.message.clone()),
        None => Refusal::new("panels", error.to_string()),
    }
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Which panel the form edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Editing {
    New,
    Panel(usize),
}

/// One query as the form holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryText {
    pub metric: String,
    pub statistics: Vec<Statistic>,
    /// `all`, `one` or `top` ([`SERIES_MODES`]).
    pub mode: String,
    /// The series' labels, separated by commas (`one`).
    pub labels: String,
    /// N (`top`).
    pub top: String,
}

impl QueryText {
    pub fn of(query: &PanelQuery) -> Self {
        QueryText {
            metric: query.metric.clone(),
            statistics: query.statistics.clone(),
            mode: match (&query.series, query.top) {
                (Some(_), _) => "one",
                (_, Some(_)) => "top",
                _ => "all",
            }
            .to_string(),
            labels: query.series.clone().unwrap_or_default().join(", "),
            top: query.top.unwrap_or(5).to_string(),
        }
    }

    /// The query, or the refusal of the field (`queries[j].top`) that does not read.
    pub fn read(&self, j: usize) -> Result<PanelQuery, Refusal> {
        let top = match self.mode.as_str() {
            "top" => match self.top.trim().parse::<u32>() {
                Ok(n) => Some(n),
                Err(_) => {
                    return Err(Refusal::new(
                        format!("queries[{j}].top"),
                        "a whole number of series",
                    ));
                }
            },
            _ => None,
        };
        Ok(PanelQuery {
            metric: self.metric.clone(),
            statistics: self.statistics.clone(),
            series: (self.mode == "one").then(|| split_list(&self.labels)),
            top,
        })
    }
}

/// One query's fields in the form.
#[derive(Debug, Clone, Copy)]
struct QueryDraft {
    metric: RwSignal<String>,
    statistics: RwSignal<Vec<Statistic>>,
    mode: RwSignal<String>,
    labels: RwSignal<String>,
    top: RwSignal<String>,
}

impl QueryDraft {
    fn new(text: QueryText) -> Self {
        QueryDraft {
            metric: RwSignal::new(text.metric),
            statistics: RwSignal::new(text.statistics),
            mode: RwSignal::new(text.mode),
            labels: RwSignal::new(text.labels),
            top: RwSignal::new(text.top),
        }
    }

    fn text(&self) -> QueryText {
        QueryText {
            metric: self.metric.get_untracked(),
            statistics: self.statistics.get_untracked(),
            mode: self.mode.get_untracked(),
            labels: self.labels.get_untracked(),
            top: self.top.get_untracked(),
        }
    }
}

/// A refusal of one query's field (`queries[1].metric`), shown under that field.
#[component]
fn QueryError(key: String, refused: RwSignal<Option<Refusal>>) -> impl IntoView {
    move || {
        refused.with(|r| {
            r.as_ref().filter(|r| r.field == key).map(|r| {
                view! {
                    <p role="alert" data-error-for=key.clone() class="text-xs text-red-600 dark:text-red-400">{r.message.clone()}</p>
                }
            })
        })
    }
}

/// The fields of query `j` (of `count`): metric, statistics and which series.
fn query_fields(
    j: usize,
    count: usize,
    query: QueryDraft,
    metrics: Memo<Vec<MetricInfo>>,
    drafts: RwSignal<Vec<QueryDraft>>,
    refused: RwSignal<Option<Refusal>>,
) -> impl IntoView {
    let invalid = move |name: &'static str| {
        move || {
            refused
                .with(|r| {
                    r.as_ref()
                        .is_some_and(|r| r.field == format!("queries[{j}].{name}"))
                })
                .to_string()
        }
    };
    let checkbox = move |statistic: Statistic| {
        let checked = move || query.statistics.with(|s| s.contains(&statistic));
        view! {
            <label class="flex items-center gap-1 text-sm">
                <input type="checkbox" name="statistics" value=statistic.as_str() prop:checked=checked
                    on:change=move |ev| {
                        let on = event_target_checked(&ev);
                        query.statistics.update(|s| {
                            s.retain(|x| *x != statistic);
                            if on {
                                s.push(statistic);
                                s.sort_by_key(|x| Statistic::ALL.iter().position(|a| a == x));
                            }
                        });
                    } />
                {statistic.as_str()}
            </label>
        }
    };
    let metric_id = format!("query-{j}-metric");
    let series_id = format!("query-{j}-series");
    let remove = move |_| {
        drafts.update(|d| {
            if d.len() > 1 && j < d.len() {
                d.remove(j);
            }
        });
        refused.set(None);
    };
    view! {
        <fieldset class="grid gap-3 rounded-lg border border-slate-200 p-3 sm:col-span-2 sm:grid-cols-2 dark:border-slate-700"
            data-query=j>
            <legend class="px-1 text-sm font-medium">{format!("Query {}", j + 1)}</legend>
            <div class="flex flex-col gap-1">
                <label for=metric_id.clone() class="text-sm font-medium">"Metric"</label>
                <select id=metric_id name="metric" class=CONTROL aria-invalid=invalid("metric")
                    prop:value=move || query.metric.get()
                    on:change=move |ev| query.metric.set(event_target_value(&ev))>
                    {move || metrics.get().into_iter().map(|m| {
                        let name = m.name.clone();
                        let selected = move || query.metric.get() == name;
                        view! { <option value=m.name.clone() selected=selected>{m.name.clone()}</option> }
                    }).collect_view()}
                </select>
                <QueryError key=format!("queries[{j}].metric") refused />
            </div>
            <div class="flex flex-col gap-1">
                <label for=series_id.clone() class="text-sm font-medium">"Series"</label>
                <select id=series_id name="series" class=CONTROL aria-invalid=invalid("series")
                    prop:value=move || query.mode.get()
                    on:change=move |ev| query.mode.set(event_target_value(&ev))>
                    {SERIES_MODES.iter().map(|(v, text)| view! {
                        <option value=*v selected=move || query.mode.get() == *v>{*text}</option>
                    }).collect_view()}
                </select>
                <Show when=move || query.mode.get() == "one">
                    <input name="labels" aria-label="Series labels" placeholder="eu-west, /cart" class=CONTROL
                        aria-invalid=invalid("series") bind:value=query.labels />
                </Show>
                <QueryError key=format!("queries[{j}].series") refused />
                <Show when=move || query.mode.get() == "top">
                    <input name="top" type="number" aria-label="Top N" class=CONTROL
                        aria-invalid=invalid("top") bind:value=query.top />
                </Show>
                <QueryError key=format!("queries[{j}].top") refused />
            </div>
            <fieldset class="flex flex-col gap-1 sm:col-span-2">
                <legend class="text-sm font-medium">"Statistics (none: the kind's default)"</legend>
                <div class="flex flex-wrap gap-x-3">{Statistic::ALL.into_iter().map(checkbox).collect_view()}</div>
                <QueryError key=format!("queries[{j}].statistics") refused />
            </fieldset>
            {(count > 1).then(|| view! {
                <div class="sm:col-span-2">
                    <button type="button" class=BUTTON aria-label=format!("Remove query {}", j + 1) on:click=remove>"Remove query"</button>
                </div>
            })}
        </fieldset>
    }
}

/// The panel form: fills from the panel edited (or defaults), applies into `doc` when the
/// document with it passes the checks. Time series and table panels may read several
/// queries (*Add query*), each with its metric, statistics and series.
#[component]
pub fn PanelForm(
    doc: RwSignal<Option<Dashboard>>,
    editing: Editing,
    metrics: Memo<Vec<MetricInfo>>,
    on_done: Callback<()>,
) -> impl IntoView {
    let start = doc.with_untracked(|d| match (d, editing) {
        (Some(d), Editing::Panel(i)) => d.panels.get(i).cloned(),
        _ => None,
    });
    let first_metric =
        move || metrics.with_untracked(|m| m.first().map(|m| m.name.clone()).unwrap_or_default());
    let start = start.unwrap_or_else(|| Panel::new(PanelKind::Timeseries, "", first_metric()));
    let title = RwSignal::new(start.title.clone());
    let kind = RwSignal::new(start.kind.to_string());
    let drafts = RwSignal::new(
        start
            .queries
            .iter()
            .map(|q| QueryDraft::new(QueryText::of(q)))
            .collect::<Vec<_>>(),
    );
    let thresholds = RwSignal::new(
        start
            .thresholds
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(", "),
    );
    let unit = RwSignal::new(start.unit.clone().unwrap_or_default());
    let refused = RwSignal::new(None::<Refusal>);
    // Queries added later belong to the form, not to the click that added them.
    let owner = Owner::current();
    let add_query = move |_| {
        let fresh =
            QueryText::of(&Panel::new(PanelKind::Timeseries, "", first_metric()).queries[0]);
        let draft = match &owner {
            Some(owner) => owner.with(|| QueryDraft::new(fresh)),
            None => QueryDraft::new(fresh),
        };
        drafts.update(|d| d.push(draft));
    };
    let several = move || {
        matches!(
            kind.get().parse::<PanelKind>(),
            Ok(PanelKind::Timeseries | PanelKind::Table)
        )
    };
    let apply = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Ok(kind_value) = kind.get_untracked().parse::<PanelKind>() else {
            refused.set(Some(Refusal::new("kind", "choose a panel kind")));
            return;
        };
        let thresholds_value: Result<Vec<f64>, _> = split_list(&thresholds.get_untracked())
            .iter()
            .map(|t| t.parse::<f64>())
            .collect();
        let Ok(thresholds_value) = thresholds_value else {
            refused.set(Some(Refusal::new(
                "thresholds",
                "numbers separated by commas",
            )));
            return;
        };
        let queries: Result<Vec<PanelQuery>, Refusal> = drafts
            .get_untracked()
            .iter()
            .enumerate()
            .map(|(j, q)| q.text().read(j))
            .collect();
        let queries = match queries {
            Ok(queries) => queries,
            Err(refusal) => {
                refused.set(Some(refusal));
                return;
            }
        };
        let mut panel = start.clone();
        panel.title = title.get_untracked().trim().to_string();
        panel.kind = kind_value;
        panel.queries = queries;
        panel.thresholds = thresholds_value;
        panel.unit = Some(unit.get_untracked().trim().to_string()).filter(|u| !u.is_empty());
        let Some(mut next) = doc.get_untracked() else {
            return;
        };
        let index = match editing {
            Editing::Panel(i) if i < next.panels.len() => {
                next.panels[i] = panel;
                i
            }
            _ => {
                // A new panel gets its kind's size and takes the first free place.
                (panel.w, panel.h) = panel.kind.default_size();
                (panel.x, panel.y) = free_spot(&next.panels, panel.w, panel.h);
                next.panels.push(panel);
                next.panels.len() - 1
            }
        };
        settle(&mut next.panels, Some(index));
        let known = metrics.get_untracked();
        match next.check(|m| known.iter().any(|k| k.name == m)) {
            Ok(()) => {
                refused.set(None);
                doc.set(Some(next));
                on_done.run(());
            }
            Err(e) => refused.set(Some(panel_refusal(&e, index))),
        }
    };
    let heading = match editing {
        Editing::New => "Add panel",
        Editing::Panel(_) => "Edit panel",
    };
    view! {
        <form class="mb-4 grid gap-3 rounded-xl border border-sky-300 bg-white p-4 sm:grid-cols-2 dark:border-sky-800 dark:bg-slate-900"
            data-testid="panel-form" on:submit=apply>
            <h2 class="font-medium sm:col-span-2">{heading}</h2>
            <TextField label="Title" key="title" value=title refused />
            <SelectField label="Kind" key="kind" value=kind options=KINDS refused />
            {move || {
                let list = drafts.get();
                let count = list.len();
                list.into_iter()
                    .enumerate()
                    .map(|(j, query)| query_fields(j, count, query, metrics, drafts, refused))
                    .collect_view()
            }}
            <div class="flex flex-col items-start gap-1 sm:col-span-2">
                <Show when=move || several() && drafts.with(|d| d.len() < MAX_QUERIES)>
                    <button type="button" class=BUTTON on:click=add_query.clone()>"Add query"</button>
                </Show>
                <FieldError key="queries" refused />
            </div>
            <TextField label="Thresholds (stat colours)" key="thresholds" value=thresholds refused placeholder="100, 250" />
            <TextField label="Unit (instead of the metric's)" key="unit" value=unit refused />
            <div class="flex items-center gap-2 sm:col-span-2">
                <button type="submit" class=PRIMARY>"Apply"</button>
                <button type="button" class=BUTTON on:click=move |_| on_done.run(())>"Cancel"</button>
                <FieldError key="w" refused />
                <FieldError key="x" refused />
                <FieldError key="panels" refused />
            </div>
        </form>
    }
}

/// Variables as typed in the settings form: `region=eu, path` (a default after `=`).
pub fn parse_variables(text: &str) -> Vec<Variable> {
    split_list(text)
        .into_iter()
        .map(|item| match item.split_once('=') {
            Some((name, value)) => Variable {
                name: name.trim().to_string(),
                default: Some(value.trim().to_string()).filter(|v| !v.is_empty()),
            },
            None => Variable {
                name: item,
                default: None,
            },
        })
        .collect()
}

pub fn format_variables(variables: &[Variable]) -> String {
    variables
        .iter()
        .map(|v| match &v.default {
            Some(d) => format!("{}={d}", v.name),
            None => v.name.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

const RANGES: &[(&str, &str)] = &[
    ("5m", "Last 5 min"),
    ("15m", "Last 15 min"),
    ("1h", "Last 1 h"),
    ("6h", "Last 6 h"),
    ("24h", "Last 24 h"),
    ("7d", "Last 7 d"),
];

const REFRESHES: &[(&str, &str)] = &[
    ("auto", "Auto (live ranges)"),
    ("off", "Off"),
    ("5s", "5 s"),
    ("10s", "10 s"),
    ("30s", "30 s"),
    ("1m", "1 min"),
    ("5m", "5 min"),
];

/// The dashboard's own fields.
#[component]
pub fn SettingsForm(
    doc: RwSignal<Option<Dashboard>>,
    metrics: Memo<Vec<MetricInfo>>,
    on_done: Callback<()>,
) -> impl IntoView {
    let start = doc.get_untracked().unwrap_or_else(|| Dashboard::new(""));
    let name = RwSignal::new(start.name.clone());
    let description = RwSignal::new(start.description.clone());
    let range = RwSignal::new(start.range.clone());
    let refresh = RwSignal::new(start.refresh.to_string());
    let variables = RwSignal::new(format_variables(&start.variables));
    let refused = RwSignal::new(None::<Refusal>);
    let apply = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(mut next) = doc.get_untracked() else {
            return;
        };
        next.name = name.get_untracked().trim().to_string();
        next.description = description.get_untracked().trim().to_string();
        next.range = range.get_untracked();
        next.refresh = refresh
            .get_untracked()
            .parse::<Refresh>()
            .unwrap_or_default();
        next.variables = parse_variables(&variables.get_untracked());
        let known = metrics.get_untracked();
        match next.check(|m| known.iter().any(|k| k.name == m)) {
            Ok(()) => {
                refused.set(None);
                doc.set(Some(next));
                on_done.run(());
            }
            Err(e) => {
                let key = if e.field.starts_with("variables") {
                    "variables".to_string()
                } else {
                    e.field.clone()
                };
                refused.set(Some(Refusal::new(key, e.message)));
            }
        }
    };
    debug_assert_eq!(RANGES.len(), RANGE_KEYS.len());
    view! {
        <form class="mb-4 grid gap-3 rounded-xl border border-sky-300 bg-white p-4 sm:grid-cols-2 dark:border-sky-800 dark:bg-slate-900"
            data-testid="settings-form" on:submit=apply>
            <h2 class="font-medium sm:col-span-2">"Dashboard settings"</h2>
            <TextField label="Name" key="name" value=name refused />
            <TextField label="Description" key="description" value=description refused />
            <SelectField label="Default range" key="range" value=range options=RANGES refused />
            <SelectField label="Auto refresh" key="refresh" value=refresh options=REFRESHES refused />
            <TextField label="Variables" key="variables" value=variables refused placeholder="region=eu, path"
                help="Label names (a metric dimension's name), each with an optional default after =." />
            <div class="flex items-center gap-2 sm:col-span-2">
                <button type="submit" class=PRIMARY>"Apply"</button>
                <button type="button" class=BUTTON on:click=move |_| on_done.run(())>"Cancel"</button>
            </div>
        </form>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_form_fields() {
        let at = |field: &str, index| {
            let r = panel_refusal(&DashboardError::new(field, "bad"), index);
            (r.field, r.message)
        };
        assert_eq!(at("panels[2].queries[1].top", 2).0, "queries[1].top");
        assert_eq!(at("panels[2].queries", 2).0, "queries");
        assert_eq!(at("panels[12].w", 12).0, "w");
        assert_eq!(at("panels", 0), ("panels".into(), "bad".into()));
        // Another panel's refusal shows at the panel list, naming its path.
        assert_eq!(
            at("panels[1].queries[0].metric", 12),
            ("panels".into(), "panels[1].queries[0].metric: bad".into())
        );
    }

    #[test]
    fn queries_read_from_the_form() {
        let text = |mode: &str, labels: &str, top: &str| QueryText {
            metric: "latency".into(),
            statistics: vec![Statistic::P99],
            mode: mode.into(),
            labels: labels.into(),
            top: top.into(),
        };
        let all = text("all", "eu", "x").read(0).unwrap();
        assert_eq!((&all.series, all.top), (&None, None));
        assert_eq!(all.statistics, vec![Statistic::P99]);
        let one = text("one", " eu-west , /cart,", "x").read(0).unwrap();
        assert_eq!(one.series, Some(vec!["eu-west".into(), "/cart".into()]));
        assert_eq!(text("top", "", " 3 ").read(0).unwrap().top, Some(3));
        let refused = text("top", "", "three").read(2).unwrap_err();
        assert_eq!(refused.field, "queries[2].top");
        // A query read back into the form is the same query.
        for query in [all, one] {
            assert_eq!(QueryText::of(&query).read(0).unwrap(), query);
        }
    }

    #[test]
    fn variables_read_and_print() {
        let vars = parse_variables("region=eu, path ,");
        assert_eq!(vars.len(), 2);
        assert_eq!(vars[0].default.as_deref(), Some("eu"));
        assert_eq!(vars[1].default, None);
        assert_eq!(format_variables(&vars), "region=eu, path");
    }
}
