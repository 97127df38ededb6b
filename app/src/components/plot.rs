//! The dashboard panels' charts, drawn as inline SVG like [`super::chart`]: [`TimeChart`]
//! (lines over time with a y axis in the unit, a time axis, a legend, a hover tooltip with
//! exact values and dashed threshold lines) and [`HeatmapChart`] (value bins × time columns).
//!
//! The plot area is an SVG stretched to its box (`preserveAspectRatio="none"`, strokes that do
//! not scale), and the axis labels, legend and tooltip are HTML placed in percent, so a chart
//! fills a panel of any size with readable text. The scale and label math is pure and tested.

use contract::{
    api::{Heatmap, HistogramBin},
    date::civil_from_days,
    units::format_number,
};
use leptos::prelude::*;

/// Line colours, in the order lines get them (text colour classes: strokes use
/// `currentColor`).
pub const PALETTE: [&str; 8] = [
    "text-sky-500",
    "text-emerald-500",
    "text-amber-500",
    "text-rose-500",
    "text-violet-500",
    "text-teal-500",
    "text-orange-500",
    "text-fuchsia-500",
];

/// The plot's coordinate box (stretched to the element).
const BOX: f64 = 1000.0;

/// One line of a [`TimeChart`]: one value per time step, `None` where nothing was stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartLine {
    pub name: String,
    pub colour: &'static str,
    pub values: Vec<Option<f64>>,
}

/// A horizontal threshold line and what it is (an alert rule's name and comparison).
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdLine {
    pub value: f64,
    pub label: String,
}

/// Axis ticks from 0 up to at least `max`: about `count` steps of 1, 2, 2.5 or 5 × 10^n.
pub fn nice_ticks(max: f64, count: usize) -> Vec<f64> {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let raw = max / count.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let steps = (max / step).ceil().max(1.0) as usize;
    (0..=steps).map(|i| i as f64 * step).collect()
}

/// The SVG path of `values` in the plot box, x spread evenly over the steps, y from 0 (bottom)
/// to `top`; a missing value breaks the line.
pub fn line_path(values: &[Option<f64>], top: f64) -> String {
    let top = if top > 0.0 { top } else { 1.0 };
    let step = if values.len() > 1 {
        BOX / (values.len() - 1) as f64
    } else {
        0.0
    };
    let mut d = String::new();
    let mut pen_down = false;
    for (i, value) in values.iter().enumerate() {
        match value {
            Some(v) => {
                let y = BOX - (v / top).clamp(0.0, 1.0) * BOX;
                let x = i as f64 * step;
                d.push_str(&format!(
                    "{}{x:.1},{y:.1} ",
                    if pen_down { "L" } else { "M" }
                ));
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    d.trim_end().to_string()
}

/// A value as exactly as it is stored: integers with separators, others to 3 decimals.
pub fn format_exact(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        let digits = contract::units::format_count(value.abs() as u64);
        if value < 0.0 {
            format!("-{digits}")
        } else {
            digits
        }
    } else {
        let text = format!("{value:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A time label in UTC: `HH:MM` (`HH:MM:SS` with `seconds`), or `MM-DD HH:MM` when the
/// chart spans more than a day.
pub fn format_time(ms: i64, span_ms: i64, seconds: bool) -> String {
    let s = ms.div_euclid(1000);
    let (_, month, day) = civil_from_days(s.div_euclid(86_400));
    let of_day = s.rem_euclid(86_400);
    let (h, m, sec) = (of_day / 3600, of_day / 60 % 60, of_day % 60);
    match (span_ms > 86_400_000, seconds) {
        (true, _) => format!("{month:02}-{day:02} {h:02}:{m:02}"),
        (false, true) => format!("{h:02}:{m:02}:{sec:02}"),
        (false, false) => format!("{h:02}:{m:02}"),
    }
}

fn with_unit(text: String, unit: Option<&str>) -> String {
    match unit {
        Some(unit) if !unit.is_empty() => format!("{text} {unit}"),
        _ => text,
    }
}

/// Lines over time sharing a y axis in `unit`; the x axis runs from `start_ms` in steps of
/// `step_ms`. Hovering shows every line's exact value at that step.
#[component]
pub fn TimeChart(
    #[prop(into)] lines: Signal<Vec<ChartLine>>,
    #[prop(into)] start_ms: Signal<i64>,
    #[prop(into)] step_ms: Signal<i64>,
    #[prop(into)] unit: Signal<Option<String>>,
    #[prop(into)] thresholds: Signal<Vec<ThresholdLine>>,
    #[prop(into)] label: String,
) -> impl IntoView {
    let steps =
        Memo::new(move |_| lines.with(|all| all.iter().map(|l| l.values.len()).max().unwrap_or(0)));
    let ticks = Memo::new(move |_| {
        let data = lines.with(|all| {
            all.iter()
                .flat_map(|l| l.values.iter().flatten())
                .copied()
                .fold(0.0, f64::max)
        });
        let marks = thresholds.with(|t| t.iter().map(|t| t.value).fold(0.0, f64::max));
        nice_ticks(data.max(marks), 4)
    });
    let top = move || ticks.with(|t| t.last().copied().unwrap_or(1.0));
    let hovered = RwSignal::new(None::<usize>);
    let span_ms = move || step_ms.get() * steps.get().saturating_sub(1) as i64;
    let x_labels = move || {
        let n = steps.get();
        if n == 0 {
            return Vec::new();
        }
        (0..5)
            .map(|i| {
                let idx = (n - 1) * i / 4;
                format_time(
                    start_ms.get() + idx as i64 * step_ms.get(),
                    span_ms(),
                    false,
                )
            })
            .collect::<Vec<_>>()
    };
    let on_move = move |ev: leptos::ev::MouseEvent| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            let n = steps.get_untracked();
            let Some(target) = ev
                .current_target()
                .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            else {
                return;
            };
            let rect = target.get_bounding_client_rect();
            if n == 0 || rect.width() <= 0.0 {
                return;
            }
            let fx = ((f64::from(ev.client_x()) - rect.left()) / rect.width()).clamp(0.0, 1.0);
            hovered.set(Some((fx * (n - 1) as f64).round() as usize));
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = ev;
    };
    let figure_label = label.clone();
    view! {
        <figure class="flex h-full min-h-0 flex-col text-[11px]" aria-label=figure_label data-chart="timeseries">
            <div class="flex min-h-0 flex-1">
                <div class="relative w-12 shrink-0 text-slate-500 dark:text-slate-400" aria-hidden="true">
                    {move || ticks.get().into_iter().map(|t| view! {
                        <span class="absolute right-1 -translate-y-1/2 tabular-nums"
                            style=format!("top:{:.2}%", 100.0 - t / top() * 100.0)>{format_number(t)}</span>
                    }).collect_view()}
                </div>
                <div class="relative min-w-0 flex-1 border-b border-l border-slate-300 dark:border-slate-700"
                    data-testid="plot" on:mousemove=on_move on:mouseleave=move |_| hovered.set(None)>
                    <svg class="absolute inset-0 h-full w-full overflow-visible" viewBox="0 0 1000 1000"
                        preserveAspectRatio="none" role="img" aria-label=label>
                        {move || ticks.get().into_iter().skip(1).map(|t| {
                            let y = format!("{:.1}", BOX - t / top() * BOX);
                            view! { <line x1="0" x2="1000" y1=y.clone() y2=y class="stroke-slate-200 dark:stroke-slate-800"
                                stroke-width="1" vector-effect="non-scaling-stroke" /> }
                        }).collect_view()}
                        {move || thresholds.get().into_iter().map(|t| {
                            let y = format!("{:.1}", BOX - (t.value / top()).clamp(0.0, 1.0) * BOX);
                            view! {
                                <line x1="0" x2="1000" y1=y.clone() y2=y class="stroke-red-500" stroke-width="1.5"
                                    stroke-dasharray="6 4" vector-effect="non-scaling-stroke" data-testid="threshold"
                                    data-value=t.value.to_string()>
                                    <title>{t.label.clone()}</title>
                                </line>
                            }
                        }).collect_view()}
                        {move || lines.get().into_iter().map(|l| {
                            let d = line_path(&l.values, top());
                            view! { <path class=l.colour d=d fill="none" stroke="currentColor" stroke-width="2"
                                vector-effect="non-scaling-stroke" data-line=l.name.clone() /> }
                        }).collect_view()}
                        {move || hovered.get().filter(|_| steps.get() > 1).map(|i| {
                            let x = format!("{:.1}", i as f64 * BOX / (steps.get() - 1) as f64);
                            view! { <line x1=x.clone() x2=x y1="0" y2="1000" class="stroke-slate-400" stroke-width="1"
                                vector-effect="non-scaling-stroke" /> }
                        })}
                    </svg>
                    {move || hovered.get().map(|i| {
                        let n = steps.get().max(2);
                        let left = i as f64 / (n - 1) as f64 * 100.0;
                        let side = if left > 60.0 { format!("right:{:.2}%", 100.0 - left) } else { format!("left:{left:.2}%") };
                        let at = start_ms.get() + i as i64 * step_ms.get();
                        let unit = unit.get();
                        view! {
                            <div role="tooltip" data-testid="tooltip"
                                class="pointer-events-none absolute top-1 z-10 ml-2 mr-2 rounded-md border border-slate-200 bg-white/95 px-2 py-1 text-xs shadow dark:border-slate-700 dark:bg-slate-900/95"
                                style=side>
                                <div class="font-medium">{format_time(at, span_ms(), step_ms.get() < 60_000)} " UTC"</div>
                                {lines.get().into_iter().map(|l| {
                                    let value = l.values.get(i).copied().flatten();
                                    view! {
                                        <div class="flex gap-2 whitespace-nowrap">
                                            <span class=l.colour>"■"</span>
                                            <span>{l.name.clone()}</span>
                                            <span class="ml-auto tabular-nums" data-testid="tooltip-value">
                                                {value.map_or_else(|| "—".to_string(), |v| with_unit(format_exact(v), unit.as_deref()))}
                                            </span>
                                        </div>
                                    }
                                }).collect_view()}
                            </div>
                        }
                    })}
                </div>
            </div>
            <div class="ml-12 flex justify-between text-slate-500 dark:text-slate-400" aria-hidden="true">
                {move || x_labels().into_iter().map(|t| view! { <span>{t}</span> }).collect_view()}
            </div>
            <ul class="mt-1 flex max-h-12 flex-wrap gap-x-3 overflow-y-auto" data-testid="legend">
                {move || {
                    let unit = unit.get();
                    lines.get().into_iter().map(|l| {
                        let last = l.values.iter().rev().flatten().next().copied();
                        view! {
                            <li class="flex items-center gap-1">
                                <span class=l.colour>"■"</span>
                                <span>{l.name.clone()}</span>
                                <span class="tabular-nums text-slate-500 dark:text-slate-400">
                                    {last.map(|v| with_unit(format_number(v), unit.as_deref()))}
                                </span>
                            </li>
                        }
                    }).collect_view()
                }}
                {move || unit.get().map(|u| view! { <li class="ml-auto text-slate-500 dark:text-slate-400">"y: " {u}</li> })}
            </ul>
        </figure>
    }
}

/// The fill opacity of a heatmap cell holding `count` of the busiest cell's `most`.
pub fn cell_opacity(count: u64, most: u64) -> f64 {
    if count == 0 || most == 0 {
        0.0
    } else {
        // A square root so that rare values stay visible next to the mode.
        0.15 + 0.85 * (count as f64 / most as f64).sqrt()
    }
}

/// Value bins (rows, low values at the bottom) × time columns; a cell's shade is its count.
#[component]
pub fn HeatmapChart(
    #[prop(into)] heatmap: Signal<Option<Heatmap>>,
    #[prop(into)] bins: Signal<Vec<HistogramBin>>,
    #[prop(into)] unit: Signal<Option<String>>,
    #[prop(into)] label: String,
) -> impl IntoView {
    let cells = move || {
        let Some(map) = heatmap.get() else {
            return Vec::new();
        };
        let bins = bins.get();
        let rows = bins.len().max(1) as f64;
        let cols = map.columns.len().max(1) as f64;
        let most = map
            .columns
            .iter()
            .flat_map(|c| c.counts.iter())
            .copied()
            .max()
            .unwrap_or(0);
        let span = map.column_ms * map.columns.len() as i64;
        let unit = unit.get();
        let mut out = Vec::new();
        for (c, column) in map.columns.iter().enumerate() {
            for (r, count) in column.counts.iter().enumerate() {
                if *count == 0 {
                    continue;
                }
                let bin = bins.get(r).copied();
                let title = format!(
                    "{}: {}–{}: {}",
                    format_time(column.start_ms, span, false),
                    bin.map_or_else(String::new, |b| format_number(b.low as f64)),
                    bin.map_or_else(String::new, |b| with_unit(
                        format_number(b.high as f64),
                        unit.as_deref()
                    )),
                    contract::units::format_count(*count)
                );
                out.push(view! {
                    <rect class="fill-sky-600 dark:fill-sky-400" data-count=*count
                        x=format!("{:.2}", c as f64 * BOX / cols) width=format!("{:.2}", BOX / cols)
                        y=format!("{:.2}", BOX - (r as f64 + 1.0) * BOX / rows) height=format!("{:.2}", BOX / rows)
                        fill-opacity=format!("{:.2}", cell_opacity(*count, most))>
                        <title>{title}</title>
                    </rect>
                });
            }
        }
        out
    };
    let axis = move || {
        let bins = bins.get();
        let unit = unit.get();
        match (bins.first(), bins.last()) {
            (Some(first), Some(last)) => (
                format_number(first.low as f64),
                with_unit(format_number(last.high as f64), unit.as_deref()),
            ),
            _ => (String::new(), String::new()),
        }
    };
    let times = move || {
        heatmap
            .get()
            .filter(|m| !m.columns.is_empty())
            .map(|m| {
                let span = m.column_ms * m.columns.len() as i64;
                let first = m.columns.first().map_or(0, |c| c.start_ms);
                (
                    format_time(first, span, false),
                    format_time(first + span, span, false),
                )
            })
            .unwrap_or_default()
    };
    view! {
        <figure class="flex h-full min-h-0 flex-col text-[11px]" data-chart="heatmap">
            <div class="flex min-h-0 flex-1">
                <div class="flex w-12 shrink-0 flex-col justify-between pr-1 text-right text-slate-500 dark:text-slate-400">
                    <span>{move || axis().1}</span>
                    <span>{move || axis().0}</span>
                </div>
                <div class="relative min-w-0 flex-1 border-b border-l border-slate-300 dark:border-slate-700">
                    <svg class="absolute inset-0 h-full w-full" viewBox="0 0 1000 1000" preserveAspectRatio="none"
                        role="img" aria-label=label>
                        {cells}
                    </svg>
                </div>
            </div>
            <div class="ml-12 flex justify-between text-slate-500 dark:text-slate-400">
                <span>{move || times().0}</span>
                <span>{move || times().1}</span>
            </div>
        </figure>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_maximum() {
        assert_eq!(nice_ticks(87.0, 4), vec![0.0, 25.0, 50.0, 75.0, 100.0]);
        assert_eq!(nice_ticks(1.0, 4), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        assert_eq!(nice_ticks(0.0, 4), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        assert_eq!(nice_ticks(60.0, 4), vec![0.0, 20.0, 40.0, 60.0]);
        assert_eq!(nice_ticks(4_200.0, 4), vec![0.0, 2_000.0, 4_000.0, 6_000.0]);
        assert!(nice_ticks(f64::NAN, 4).len() > 1);
    }

    #[test]
    fn gaps_break_the_line() {
        assert_eq!(line_path(&[], 1.0), "");
        assert_eq!(
            line_path(&[Some(0.0), Some(10.0), None, Some(5.0), Some(20.0)], 10.0),
            "M0.0,1000.0 L250.0,0.0 M750.0,500.0 L1000.0,0.0"
        );
    }

    #[test]
    fn labels() {
        assert_eq!(format_exact(1234.0), "1,234");
        assert_eq!(format_exact(-3.0), "-3");
        assert_eq!(format_exact(2.5), "2.5");
        assert_eq!(format_exact(0.1234), "0.123");
        // 2026-12-07 19:05:09 UTC.
        let ms = 1_796_670_309_000;
        assert_eq!(format_time(ms, 3_600_000, false), "19:05");
        assert_eq!(format_time(ms, 3_600_000, true), "19:05:09");
        assert_eq!(format_time(ms, 7 * 86_400_000, false), "12-07 19:05");
        assert_eq!(cell_opacity(0, 10), 0.0);
        assert_eq!(cell_opacity(10, 10), 1.0);
    }
}
