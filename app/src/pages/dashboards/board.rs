//! `/dashboards/{id}`: one dashboard's grid of panels. The range (`?range=` or `?from=&to=`),
//! the auto refresh (`?refresh=`) and the variables (`?var-NAME=`) live in the URL, so the
//! link copied is the same view; the document's own defaults apply where the URL names none.
//! Editors switch to edit mode to add, move, resize, edit and remove panels and change the
//! settings, then save the document (`PUT /api/v1/dashboards/{id}`).

use super::{
    drag::{Drag, DragMode, GAP_PX, Pitch, grid_style, snap},
    editor::{BUTTON, Editing, PRIMARY, PanelForm, SettingsForm},
    panels::{PanelBody, Shared},
};
use crate::{
    components::{
        form::Refusal,
        range::{RangePicker, use_ticks, use_url_range_or},
    },
    fetch::{Method, encode_component, get_json, send_json},
    session::can,
};
use contract::{
    api::{AlertRuleList, MetricList, SeriesList},
    auth::Role,
    dashboard::{
        Dashboard, DashboardInfo, Place, Refresh, Step, dimension_index, drop_panel, step_panel,
    },
};
use leptos::{ev::PointerEvent, prelude::*, task::spawn_local};
use leptos_meta::Title;
use leptos_router::hooks::{query_signal, use_location, use_params_map, use_query_map};

#[component]
pub fn DashboardBoard() -> impl IntoView {
    let params = use_params_map();
    let id =
        params.with_untracked(|p| p.get("id").and_then(|s| s.parse::<i64>().ok()).unwrap_or(0));
    let loaded = LocalResource::new(move || async move {
        get_json::<DashboardInfo>(&format!("/api/v1/dashboards/{id}")).await
    });
    // The working copy, and the document as last saved.
    let doc = RwSignal::new(None::<Dashboard>);
    let saved = RwSignal::new(None::<Dashboard>);
    Effect::new(move |_| {
        loaded.with(|l| {
            if let Some(Ok(info)) = l
                && saved.get_untracked().is_none()
            {
                doc.set(Some(info.dashboard.clone()));
                saved.set(Some(info.dashboard.clone()));
            }
        })
    });
    let load_error = move || {
        loaded.with(|l| {
            l.as_ref()
                .and_then(|r| r.as_ref().err())
                .map(|e| e.to_string())
        })
    };
    let metrics_list =
        LocalResource::new(|| async { get_json::<MetricList>("/api/v1/metrics").await });
    let metrics = Memo::new(move |_| {
        metrics_list.with(|m| {
            m.as_ref()
                .and_then(|m| m.as_ref().ok())
                .map(|m| m.metrics.clone())
                .unwrap_or_default()
        })
    });
    let rules_list =
        LocalResource::new(|| async { get_json::<AlertRuleList>("/api/v1/alerts").await });
    let rules = Memo::new(move |_| {
        rules_list.with(|r| {
            r.as_ref()
                .and_then(|r| r.as_ref().ok())
                .map(|r| r.rules.clone())
                .unwrap_or_default()
        })
    });

    let url = use_url_range_or(Signal::derive(move || {
        doc.with(|d| d.as_ref().map(|d| d.range.clone()))
    }));
    let range = url.range;
    let (refresh_key, set_refresh) = query_signal::<String>("refresh");
    let refresh = Memo::new(move |_| {
        refresh_key
            .get()
            .and_then(|k| k.parse::<Refresh>().ok())
            .or_else(|| doc.with(|d| d.as_ref().map(|d| d.refresh)))
            .unwrap_or_default()
    });
    let tick = use_ticks(Signal::derive(move || match refresh.get() {
        Refresh::Auto => range.get().refresh_ms(),
        other => other.interval_ms(),
    }));
    let query = use_query_map();
    let chosen = Memo::new(move |_| {
        doc.with(|d| {
            d.as_ref()
                .map(|d| {
                    d.variables
                        .iter()
                        .filter_map(|v| {
                            let value = query
                                .with(|q| q.get_str(&format!("var-{}", v.name)).map(str::to_string))
                                .or_else(|| v.default.clone())?;
                            (!value.is_empty() && value != "*").then(|| (v.name.clone(), value))
                        })
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
    });
    let shared = Shared {
        metrics,
        rules,
        range,
        tick,
        chosen,
    };

    let editor = can(Role::Editor);
    let edit_mode = RwSignal::new(false);
    let drag = RwSignal::new(None::<Drag>);
    // Only the drag's start and end, not each pointer move.
    let dragged = Memo::new(move |_| drag.with(|d| d.as_ref().map(|d| d.index)));
    let placeholder = move || {
        let index = dragged.get()?;
        doc.with(|d| {
            d.as_ref()?
                .panels
                .get(index)
                .map(|p| grid_style(Place::of(p)))
        })
    };
    let form = RwSignal::new(None::<Editing>);
    let settings_open = RwSignal::new(false);
    let dirty = move || doc.get() != saved.get();
    let save_state = RwSignal::new(None::<Result<&'static str, Refusal>>);
    let save = move |_| {
        let Some(next) = doc.get_untracked() else {
            return;
        };
        save_state.set(None);
        spawn_local(async move {
            let answer = send_json::<Dashboard, DashboardInfo>(
                Method::Put,
                &format!("/api/v1/dashboards/{id}"),
                Some(&next),
            )
            .await;
            match answer {
                Ok(info) => {
                    doc.set(Some(info.dashboard.clone()));
                    saved.set(Some(info.dashboard));
                    save_state.set(Some(Ok("Saved.")));
                }
                Err(e) => save_state.set(Some(Err(crate::components::form::refusal(&e)))),
            }
        });
    };
    let discard = move |_| {
        doc.set(saved.get_untracked());
        form.set(None);
        settings_open.set(false);
    };
    let panel_count = Memo::new(move |_| doc.with(|d| d.as_ref().map_or(0, |d| d.panels.len())));
    let location = use_location();
    let (pathname, url_query) = (location.pathname, location.query);
    let link = move || {
        let qs = url_query.with(|q| q.to_query_string());
        format!("{}{}{qs}", origin(), pathname.get())
    };
    // The same view at this exact time: the named range as fixed bounds.
    let fixed_link = move || {
        let (from, to) = range.get().bounds(crate::fetch::now_ms());
        let mut q = url_query.get();
        q.remove("range");
        q.replace("from", from.to_string());
        q.replace("to", to.to_string());
        format!("{}{}{}", origin(), pathname.get(), q.to_query_string())
    };
    let copied = RwSignal::new(None::<&'static str>);
    let copy = move |text: String, what: &'static str| {
        copy_text(text);
        copied.set(Some(what));
    };
    let variable_values = LocalResource::new(move || {
        let wanted = doc.with(|d| d.as_ref().map(variable_sources).unwrap_or_default());
        let metrics = metrics.get();
        async move { load_variable_values(wanted, metrics).await }
    });
    let title = move || {
        doc.with(|d| {
            d.as_ref()
                .map(|d| d.name.clone())
                .unwrap_or_else(|| "Dashboard".into())
        })
    };

    view! {
        <Title text=title />
        {move || load_error().map(|e| view! {
            <p role="alert" class="rounded-md border border-red-300 bg-red-50 px-3 py-2 text-sm text-red-800 dark:border-red-800 dark:bg-red-950 dark:text-red-200">{e}</p>
        })}
        <Show when=move || doc.with(|d| d.is_some())
            fallback=move || view! { <p class="text-sm text-slate-500 dark:text-slate-400">"Loading the dashboard…"</p> }>
            <div class="mb-4 flex flex-wrap items-baseline gap-3">
                <h1 class="text-2xl font-semibold tracking-tight" data-testid="dashboard-name">{title}</h1>
                <span class="text-sm text-slate-500 dark:text-slate-400">
                    {move || doc.with(|d| d.as_ref().map(|d| d.description.clone()))}
                </span>
                <a href="/dashboards" class="text-sm text-sky-700 underline dark:text-sky-400">"All dashboards"</a>
                <div class="ml-auto flex flex-wrap items-center gap-2">
                    <Show when=move || !edit_mode.get()>
                        <a class=BUTTON href=format!("/api/v1/dashboards/{id}/export") download="">"Export JSON"</a>
                        <button type="button" class=BUTTON on:click=move |_| copy(link(), "link")>"Copy link"</button>
                        <button type="button" class=BUTTON on:click=move |_| copy(fixed_link(), "fixed")>"Copy link at this time"</button>
                        <Show when=move || editor.get()>
                            <button type="button" class=PRIMARY on:click=move |_| edit_mode.set(true)>"Edit"</button>
                        </Show>
                    </Show>
                    <Show when=move || edit_mode.get()>
                        <button type="button" class=BUTTON on:click=move |_| { settings_open.set(false); form.set(Some(Editing::New)) }>"Add panel"</button>
                        <button type="button" class=BUTTON on:click=move |_| { form.set(None); settings_open.set(true) }>"Settings"</button>
                        <button type="button" class=BUTTON disabled=move || !dirty() on:click=discard>"Discard changes"</button>
                        <button type="button" class=PRIMARY disabled=move || !dirty() on:click=save>"Save"</button>
                        <button type="button" class=BUTTON on:click=move |_| { form.set(None); settings_open.set(false); edit_mode.set(false) }>"Done"</button>
                    </Show>
                </div>
            </div>
            <div class="mb-2 flex flex-wrap items-center gap-3 text-sm">
                {move || copied.get().map(|what| view! {
                    <span role="status" class="text-emerald-700 dark:text-emerald-400">
                        {if what == "fixed" { "Link at this time copied." } else { "Link copied." }}
                    </span>
                    <input readonly class="w-96 max-w-full rounded-md border border-slate-300 bg-white px-2 py-1 font-mono text-xs dark:border-slate-700 dark:bg-slate-900"
                        aria-label="Dashboard link" data-testid="dashboard-link"
                        prop:value=move || if what == "fixed" { fixed_link() } else { link() } />
                })}
                {move || save_state.get().map(|s| match s {
                    Ok(done) => view! { <span role="status" data-testid="save-status" class="text-emerald-700 dark:text-emerald-400">{done}</span> }.into_any(),
                    Err(r) => view! { <span role="alert" data-testid="save-status" class="text-red-600 dark:text-red-400">{format!("{}: {}", r.field, r.message)}</span> }.into_any(),
                })}
                <Show when=move || dirty()>
                    <span class="text-amber-700 dark:text-amber-400" data-testid="unsaved">"Unsaved changes"</span>
                </Show>
            </div>
            <RangePicker url />
            <div class="mb-4 flex flex-wrap items-end gap-3">
                <label class="flex flex-col text-xs font-medium">"Auto refresh"
                    <select name="refresh" class="rounded-md border border-slate-300 bg-white px-2 py-1 text-sm dark:border-slate-700 dark:bg-slate-900"
                        on:change=move |ev| set_refresh.set(Some(event_target_value(&ev)))>
                        {Refresh::ALL.into_iter().map(|r| view! {
                            <option value=r.as_str() selected=move || refresh.get() == r>{r.as_str()}</option>
                        }).collect_view()}
                    </select>
                </label>
                <For each=move || doc.with(|d| d.as_ref().map(|d| d.variables.clone()).unwrap_or_default())
                    key=|v| v.name.clone() let:variable>
                    <VariablePicker name=variable.name.clone() default=variable.default.clone()
                        values=Signal::derive({
                            let name = variable.name.clone();
                            move || variable_values.with(|v| v.as_ref().and_then(|all| all.iter().find(|(n, _)| *n == name).map(|(_, values)| values.clone())).unwrap_or_default())
                        }) />
                </For>
            </div>
            {move || form.get().map(|editing| view! {
                <PanelForm doc editing metrics on_done=Callback::new(move |_| form.set(None)) />
            })}
            {move || settings_open.get().then(|| view! {
                <SettingsForm doc metrics on_done=Callback::new(move |_| settings_open.set(false)) />
            })}
            <Show when=move || panel_count.get() == 0>
                <p class="rounded-xl border border-dashed border-slate-300 p-8 text-center text-sm text-slate-600 dark:border-slate-700 dark:text-slate-400">
                    "No panels yet. " {move || if editor.get() { "Choose Edit, then Add panel." } else { "An editor can add them." }}
                </p>
            </Show>
            <div class="grid grid-cols-12 auto-rows-[88px] gap-3" data-testid="grid">
                <For each=move || 0..panel_count.get() key=|i| *i let:index>
                    <PanelFrame index doc shared edit_mode form drag />
                </For>
                // Where the dragged panel lands.
                <div aria-hidden="true" data-testid="drop-placeholder" hidden=move || dragged.get().is_none()
                    class="pointer-events-none rounded-xl border-2 border-dashed border-sky-500 bg-sky-100/50 dark:bg-sky-900/30"
                    style=move || placeholder().unwrap_or_default()></div>
            </div>
        </Show>
    }
    .into_any()
}

/// One panel on the grid, with the edit toolbar in edit mode. In edit mode its header drags
/// it to another cell and the handle at its bottom right corner resizes it (see [`super::drag`]).
#[component]
fn PanelFrame(
    index: usize,
    doc: RwSignal<Option<Dashboard>>,
    shared: Shared,
    edit_mode: RwSignal<bool>,
    form: RwSignal<Option<Editing>>,
    drag: RwSignal<Option<Drag>>,
) -> impl IntoView {
    let panel =
        Memo::new(move |_| doc.with(|d| d.as_ref().and_then(|d| d.panels.get(index).cloned())));
    // Moved by its header, the panel follows the pointer from its starting cell while the
    // placeholder shows where it lands; resized, it takes each snapped size at once.
    let place = move || {
        let moving = drag.with(|d| {
            d.as_ref()
                .filter(|d| d.index == index && d.mode == DragMode::Move)
                .map(|d| (d.from, d.offset_px))
        });
        if let Some((from, (dx, dy))) = moving {
            return format!(
                "{};transform:translate({dx}px,{dy}px);z-index:20;opacity:0.9",
                grid_style(from)
            );
        }
        let resizing = drag.with(|d| d.as_ref().is_some_and(|d| d.index == index));
        panel.with(|p| {
            p.as_ref().map_or_else(String::new, |p| {
                let style = grid_style(Place::of(p));
                if resizing {
                    format!("{style};z-index:20;opacity:0.9")
                } else {
                    style
                }
            })
        })
    };
    let step = move |s: Step| {
        doc.update(|d| {
            if let Some(d) = d {
                step_panel(&mut d.panels, index, s);
            }
        })
    };
    let remove = move |_| {
        doc.update(|d| {
            if let Some(d) = d
                && index < d.panels.len()
            {
                d.panels.remove(index);
                contract::dashboard::settle(&mut d.panels, None);
            }
        });
        form.set(None);
    };
    let begin = move |ev: PointerEvent, mode: DragMode| {
        if !edit_mode.get_untracked() || ev.button() != 0 || drag.with_untracked(Option::is_some) {
            return;
        }
        let Some(start) = doc.with_untracked(|d| d.as_ref().map(|d| d.panels.clone())) else {
            return;
        };
        let Some(from) = start.get(index).map(Place::of) else {
            return;
        };
        let Some(pitch) = capture(&ev, mode) else {
            return;
        };
        ev.prevent_default();
        drag.set(Some(Drag {
            index,
            mode,
            pointer_id: ev.pointer_id(),
            origin_px: (f64::from(ev.client_x()), f64::from(ev.client_y())),
            pitch,
            start,
            from,
            to: from,
            offset_px: (0.0, 0.0),
        }));
    };
    let motion = move |ev: PointerEvent| {
        let next = drag.with_untracked(|d| {
            let d = d
                .as_ref()
                .filter(|d| d.index == index && d.pointer_id == ev.pointer_id())?;
            let offset = (
                f64::from(ev.client_x()) - d.origin_px.0,
                f64::from(ev.client_y()) - d.origin_px.1,
            );
            let to = snap(d.mode, d.from, offset, d.pitch);
            // A new cell: lay the grid out again from where the drag started.
            let layout = (to != d.to).then(|| {
                let mut panels = d.start.clone();
                drop_panel(&mut panels, index, to);
                panels
            });
            Some((offset, to, layout))
        });
        let Some((offset, to, layout)) = next else {
            return;
        };
        if let Some(layout) = layout {
            doc.update(|d| {
                if let Some(d) = d {
                    d.panels = layout;
                }
            });
        }
        drag.update(|d| {
            if let Some(d) = d {
                (d.offset_px, d.to) = (offset, to);
            }
        });
    };
    // Released: the grid stays as laid out for the last cell.
    let finish = move |ev: PointerEvent| {
        if drag.with_untracked(|d| {
            d.as_ref()
                .is_some_and(|d| d.index == index && d.pointer_id == ev.pointer_id())
        }) {
            drag.set(None);
        }
    };
    // Taken over by the browser: back to where the drag started.
    let cancel = move |ev: PointerEvent| {
        let start = drag.with_untracked(|d| {
            d.as_ref()
                .filter(|d| d.index == index && d.pointer_id == ev.pointer_id())
                .map(|d| d.start.clone())
        });
        if let Some(start) = start {
            doc.update(|d| {
                if let Some(d) = d {
                    d.panels = start;
                }
            });
            drag.set(None);
        }
    };
    let tool = "rounded px-1 text-xs hover:bg-slate-200 dark:hover:bg-slate-700";
    let title = move || panel.with(|p| p.as_ref().map(|p| p.title.clone()).unwrap_or_default());
    let kind = move || panel.with(|p| p.as_ref().map(|p| p.kind.as_str()).unwrap_or_default());
    let header_class = move || {
        if edit_mode.get() {
            "mb-1 flex cursor-move touch-none select-none items-center gap-1"
        } else {
            "mb-1 flex items-center gap-1"
        }
    };
    view! {
        <section class="relative flex min-h-0 min-w-0 flex-col overflow-hidden rounded-xl border border-slate-200 bg-white p-3 dark:border-slate-800 dark:bg-slate-900"
            style=place data-panel=title data-kind=kind aria-label=title>
            <header class=header_class data-testid="panel-header"
                on:pointerdown=move |ev| begin(ev, DragMode::Move)
                on:pointermove=motion on:pointerup=finish on:lostpointercapture=finish on:pointercancel=cancel>
                <h2 class="truncate text-sm font-medium">{title}</h2>
                <Show when=move || edit_mode.get()>
                    <div class="ml-auto flex flex-wrap gap-0.5" role="toolbar" aria-label="Panel layout">
                        <button type="button" class=tool aria-label="Move left" on:click=move |_| step(Step::Left)>"←"</button>
                        <button type="button" class=tool aria-label="Move right" on:click=move |_| step(Step::Right)>"→"</button>
                        <button type="button" class=tool aria-label="Move up" on:click=move |_| step(Step::Up)>"↑"</button>
                        <button type="button" class=tool aria-label="Move down" on:click=move |_| step(Step::Down)>"↓"</button>
                        <button type="button" class=tool aria-label="Narrower" on:click=move |_| step(Step::Narrower)>"⇤"</button>
                        <button type="button" class=tool aria-label="Wider" on:click=move |_| step(Step::Wider)>"⇥"</button>
                        <button type="button" class=tool aria-label="Shorter" on:click=move |_| step(Step::Shorter)>"⤒"</button>
                        <button type="button" class=tool aria-label="Taller" on:click=move |_| step(Step::Taller)>"⤓"</button>
                        <button type="button" class=tool aria-label="Edit panel" on:click=move |_| form.set(Some(Editing::Panel(index)))>"Edit"</button>
                        <button type="button" class=format!("{tool} text-red-600") aria-label="Remove panel" on:click=remove>"✕"</button>
                    </div>
                </Show>
            </header>
            <PanelBody panel shared />
            <Show when=move || edit_mode.get()>
                // Pointer only: the toolbar's buttons resize from the keyboard.
                <div aria-hidden="true" data-testid="resize-handle" title="Drag to resize"
                    class="absolute bottom-0 right-0 h-5 w-5 cursor-se-resize touch-none select-none rounded-br-xl border-b-4 border-r-4 border-slate-400 hover:border-sky-500 dark:border-slate-500"
                    on:pointerdown=move |ev| begin(ev, DragMode::Resize)
                    on:pointermove=motion on:pointerup=finish on:lostpointercapture=finish on:pointercancel=cancel></div>
            </Show>
        </section>
    }
}

/// Starts a drag in the browser: a move must not start on one of the header's buttons; the
/// element pressed keeps the pointer until it is released (pointer capture), and the grid's
/// width and gaps give the cell pitch. `None`: no drag.
fn capture(ev: &PointerEvent, mode: DragMode) -> Option<Pitch> {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        let pressed = ev.target()?.dyn_into::<web_sys::Element>().ok()?;
        if mode == DragMode::Move && pressed.closest("button, a, input, select").ok()?.is_some() {
            return None;
        }
        let handle = ev.current_target()?.dyn_into::<web_sys::Element>().ok()?;
        let grid = handle.closest("[data-testid=grid]").ok()??;
        let gap = |name: &str| {
            web_sys::window()
                .and_then(|w| w.get_computed_style(&grid).ok().flatten())
                .and_then(|style| style.get_property_value(name).ok())
                .and_then(|value| value.trim_end_matches("px").trim().parse::<f64>().ok())
                .unwrap_or(GAP_PX)
        };
        let pitch = Pitch::of_grid(
            grid.get_bounding_client_rect().width(),
            gap("column-gap"),
            gap("row-gap"),
        );
        handle.set_pointer_capture(ev.pointer_id()).ok()?;
        Some(pitch)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = (ev, mode, GAP_PX, Pitch::of_grid);
        None
    }
}

/// A variable's choice: every value (`*`) or one of the values its dimension has.
#[component]
fn VariablePicker(
    name: String,
    default: Option<String>,
    values: Signal<Vec<String>>,
) -> impl IntoView {
    let (value, set_value) = query_signal::<String>(format!("var-{name}"));
    let current = move || {
        value
            .get()
            .or_else(|| default.clone())
            .unwrap_or_else(|| "*".to_string())
    };
    let current = Memo::new(move |_| current());
    let label = name.clone();
    view! {
        <label class="flex flex-col text-xs font-medium">{label}
            <select name=format!("var-{name}") data-variable=name.clone()
                class="rounded-md border border-slate-300 bg-white px-2 py-1 text-sm dark:border-slate-700 dark:bg-slate-900"
                on:change=move |ev| set_value.set(Some(event_target_value(&ev)))>
                <option value="*" selected=move || current.get() == "*">"All"</option>
                {move || {
                    let mut all = values.get();
                    let chosen = current.get();
                    if chosen != "*" && !all.contains(&chosen) {
                        all.insert(0, chosen.clone());
                    }
                    all.into_iter().map(|v| {
                        let selected = v == chosen;
                        view! { <option value=v.clone() selected=selected>{v.clone()}</option> }
                    }).collect_view()
                }}
            </select>
        </label>
    }
}

/// For each variable, the panels' metrics that have its dimension.
fn variable_sources(d: &Dashboard) -> Vec<(String, Vec<String>)> {
    d.variables
        .iter()
        .map(|v| {
            let mut metrics: Vec<String> = d
                .panels
                .iter()
                .flat_map(|p| p.queries.iter().map(|q| q.metric.clone()))
                .collect();
            metrics.sort();
            metrics.dedup();
            (v.name.clone(), metrics)
        })
        .collect()
}

/// The values each variable's dimension has in the stored series of those metrics.
async fn load_variable_values(
    wanted: Vec<(String, Vec<String>)>,
    metrics: Vec<contract::api::MetricInfo>,
) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for (variable, names) in wanted {
        let mut values: Vec<String> = Vec::new();
        for name in names {
            let Some(index) = metrics
                .iter()
                .find(|m| m.name == name)
                .and_then(|m| dimension_index(&m.dimensions, &variable))
            else {
                continue;
            };
            let url = format!("/api/v1/metrics/{}/series", encode_component(&name));
            if let Ok(list) = get_json::<SeriesList>(&url).await {
                values.extend(
                    list.series
                        .into_iter()
                        .filter_map(|labels| labels.get(index).cloned()),
                );
            }
        }
        values.sort();
        values.dedup();
        out.push((variable, values));
    }
    out
}

fn origin() -> String {
    #[cfg(feature = "hydrate")]
    {
        web_sys::window()
            .and_then(|w| w.location().origin().ok())
            .unwrap_or_default()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        String::new()
    }
}

/// Puts `text` on the clipboard (where the browser allows it; the link is also shown).
fn copy_text(text: String) {
    #[cfg(feature = "hydrate")]
    {
        if let Some(window) = web_sys::window() {
            let promise = window.navigator().clipboard().write_text(&text);
            // A refusal (no permission, no focus) is not an error: the link is shown too.
            spawn_local(async move {
                let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
            });
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = text;
}
