//! The panel form (add or edit one panel) and the dashboard's settings form (name, default
//! range, refresh, variables). Both check the edited document with the contract's
//! `Dashboard::check` before applying it, so a refusal shows at its field at once; the server
//! checks the same way when the dashboard is saved.

use crate::components::form::{FieldError, Refusal, SelectField, TextField};
use contract::{
    api::MetricInfo,
    dashboard::{
        Dashboard, Panel, PanelKind, PanelQuery, RANGE_KEYS, Refresh, Variable, free_spot, settle,
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

/// The form key a document path names: `panels[2].queries[0].top` → `top`.
pub fn form_key(path: &str) -> String {
    path.rsplit('.')
        .next()
        .unwrap_or(path)
        .split('[')
        .next()
        .unwrap_or(path)
        .to_string()
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

/// The panel form: fills from the panel edited (or defaults), applies into `doc` when the
/// document with it passes the checks.
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
        metrics.with_untracked(|m| m.first().map(|m| m.name.clone()).unwrap_or_default());
    let start = start.unwrap_or_else(|| Panel::new(PanelKind::Timeseries, "", first_metric));
    let query = start.queries.first().cloned().unwrap_or(PanelQuery {
        metric: String::new(),
        statistics: Vec::new(),
        series: None,
        top: None,
    });
    let title = RwSignal::new(start.title.clone());
    let kind = RwSignal::new(start.kind.to_string());
    let metric = RwSignal::new(query.metric.clone());
    let statistics = RwSignal::new(query.statistics.clone());
    let mode = RwSignal::new(
        match (&query.series, query.top) {
            (Some(_), _) => "one",
            (_, Some(_)) => "top",
            _ => "all",
        }
        .to_string(),
    );
    let labels = RwSignal::new(query.series.clone().unwrap_or_default().join(", "));
    let top = RwSignal::new(query.top.unwrap_or(5).to_string());
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
        let top_value = match mode.get_untracked().as_str() {
            "top" => match top.get_untracked().trim().parse::<u32>() {
                Ok(n) => Some(n),
                Err(_) => {
                    refused.set(Some(Refusal::new("top", "a whole number of series")));
                    return;
                }
            },
            _ => None,
        };
        let mut panel = start.clone();
        panel.title = title.get_untracked().trim().to_string();
        panel.kind = kind_value;
        let mut queries = start.queries.clone();
        let first = PanelQuery {
            metric: metric.get_untracked(),
            statistics: statistics.get_untracked(),
            series: (mode.get_untracked() == "one").then(|| split_list(&labels.get_untracked())),
            top: top_value,
        };
        if queries.is_empty() {
            queries.push(first);
        } else {
            queries[0] = first;
        }
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
            Err(e) => refused.set(Some(Refusal::new(form_key(&e.field), e.message))),
        }
    };
    let checkbox = move |statistic: Statistic| {
        let checked = move || statistics.with(|s| s.contains(&statistic));
        view! {
            <label class="flex items-center gap-1 text-sm">
                <input type="checkbox" name="statistics" value=statistic.as_str() prop:checked=checked
                    on:change=move |ev| {
                        let on = event_target_checked(&ev);
                        statistics.update(|s| {
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
            <div class="flex flex-col gap-1">
                <label for="metric" class="text-sm font-medium">"Metric"</label>
                <select id="metric" name="metric" class=CONTROL prop:value=move || metric.get()
                    on:change=move |ev| metric.set(event_target_value(&ev))>
                    {move || metrics.get().into_iter().map(|m| {
                        let name = m.name.clone();
                        let selected = move || metric.get() == name;
                        view! { <option value=m.name.clone() selected=selected>{m.name.clone()}</option> }
                    }).collect_view()}
                </select>
                <FieldError key="metric" refused />
            </div>
            <fieldset class="flex flex-col gap-1">
                <legend class="text-sm font-medium">"Statistics (none: the kind's default)"</legend>
                <div class="flex flex-wrap gap-x-3">{Statistic::ALL.into_iter().map(checkbox).collect_view()}</div>
                <FieldError key="statistics" refused />
            </fieldset>
            <SelectField label="Series" key="series" id="series-mode" value=mode options=SERIES_MODES refused>
                <Show when=move || mode.get() == "one">
                    <input name="labels" aria-label="Series labels" placeholder="eu-west, /cart" class=CONTROL bind:value=labels />
                </Show>
                <Show when=move || mode.get() == "top">
                    <input name="top" type="number" aria-label="Top N" class=CONTROL bind:value=top />
                    <FieldError key="top" refused />
                </Show>
            </SelectField>
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
                    form_key(&e.field)
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
        assert_eq!(form_key("panels[2].queries[0].top"), "top");
        assert_eq!(form_key("panels[1].w"), "w");
        assert_eq!(form_key("variables[0].name"), "name");
        assert_eq!(form_key("panels"), "panels");
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
