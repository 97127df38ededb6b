//! Small inline SVG charts: [`Sparkline`], [`LineChart`] and [`Distribution`] (a histogram).
//!
//! Drawn by hand rather than with leptos-chartistry: that crate would add a dependency and a
//! wasm-size cost we could not measure in time, and these charts need only polylines. Only the
//! `points` attributes are reactive, so a chart follows the live tick without re-rendering the
//! page around it.

use leptos::prelude::*;

/// `points` attribute for `values` scaled into a `width` × `height` box (y grows downwards).
pub fn polyline_points(values: &[f64], max: f64, width: f64, height: f64) -> String {
    if values.is_empty() {
        return String::new();
    }
    let max = if max > 0.0 { max } else { 1.0 };
    let step = if values.len() > 1 {
        width / (values.len() - 1) as f64
    } else {
        0.0
    };
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let y = height - (v.max(0.0) / max).min(1.0) * height;
            format!("{:.1},{:.1}", i as f64 * step, y)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn peak(values: &[f64]) -> f64 {
    values.iter().copied().fold(0.0, f64::max)
}

/// A 120×28 trend line.
#[component]
pub fn Sparkline(#[prop(into)] values: Signal<Vec<f64>>) -> impl IntoView {
    let points = move || values.with(|v| polyline_points(v, peak(v), 120.0, 28.0));
    view! {
        <svg class="h-7 w-30 text-sky-500 dark:text-sky-400" viewBox="0 0 120 28" role="img" aria-label="sparkline">
            <polyline fill="none" stroke="currentColor" stroke-width="1.5" points=points />
        </svg>
    }
}

/// A line chart of several series sharing one y axis; `series` is (label, css colour class, values).
#[component]
pub fn LineChart(
    #[prop(into)] series: Signal<Vec<(String, &'static str, Vec<f64>)>>,
    #[prop(into)] label: String,
    /// Bands behind the lines (alert periods): start and end as fractions of the width.
    #[prop(optional, into)]
    bands: Option<Signal<Vec<crate::components::alerts::Band>>>,
) -> impl IntoView {
    const W: f64 = 600.0;
    const H: f64 = 160.0;
    let max = Memo::new(move |_| {
        series.with(|all| all.iter().map(|(_, _, v)| peak(v)).fold(0.0, f64::max))
    });
    view! {
        <figure class="rounded-xl border border-slate-200 bg-white p-4 dark:border-slate-800 dark:bg-slate-900">
            <figcaption class="mb-2 flex flex-wrap gap-3 text-sm text-slate-600 dark:text-slate-400">
                <span class="font-medium text-slate-900 dark:text-slate-100">{label.clone()}</span>
                <span>"max " {move || contract::units::format_number(max.get())}</span>
                {move || series.with(|all| all.iter().map(|(name, class, _)| view! {
                    <span class=*class>"— " {name.clone()}</span>
                }).collect_view())}
            </figcaption>
            <svg class="h-40 w-full" viewBox="0 0 600 160" preserveAspectRatio="none" role="img" aria-label=label>
                {move || bands.map(|b| b.with(|all| all.iter().map(|(x0, x1, class, title)| view! {
                    <rect x=format!("{:.1}", x0 * W) y="0" width=format!("{:.1}", ((x1 - x0) * W).max(1.0))
                        height="160" class=*class data-testid="alert-band">
                        <title>{title.clone()}</title>
                    </rect>
                }).collect_view()))}
                <line x1="0" y1="159" x2="600" y2="159" class="stroke-slate-300 dark:stroke-slate-700" stroke-width="1" />
                {move || series.with(|all| all.iter().map(|(_, class, values)| {
                    let points = polyline_points(values, max.get(), W, H);
                    view! { <polyline class=*class fill="none" stroke="currentColor" stroke-width="2" points=points /> }
                }).collect_view())}
            </svg>
        </figure>
    }
}

/// The value distribution as bars, one per bin; `bins` are (low, high, count).
#[component]
pub fn Distribution(
    #[prop(into)] bins: Signal<Vec<contract::api::HistogramBin>>,
    #[prop(into)] label: String,
) -> impl IntoView {
    const W: f64 = 600.0;
    const H: f64 = 160.0;
    let bars = move || {
        bins.with(|bins| {
            let most = bins.iter().map(|b| b.count).max().unwrap_or(0).max(1) as f64;
            let width = W / bins.len().max(1) as f64;
            bins.iter()
                .enumerate()
                .map(|(i, b)| {
                    let height = b.count as f64 / most * (H - 1.0);
                    let title = format!(
                        "{}–{}: {}",
                        contract::units::format_number(b.low as f64),
                        contract::units::format_number(b.high as f64),
                        b.count
                    );
                    view! {
                        <rect class="fill-sky-500 dark:fill-sky-400" data-count=b.count
                            x=format!("{:.1}", i as f64 * width + 0.5) y=format!("{:.1}", H - height)
                            width=format!("{:.1}", (width - 1.0).max(0.5)) height=format!("{height:.1}")>
                            <title>{title}</title>
                        </rect>
                    }
                })
                .collect_view()
        })
    };
    let axis = move || {
        bins.with(|bins| match (bins.first(), bins.last()) {
            (Some(first), Some(last)) => (
                contract::units::format_number(first.low as f64),
                contract::units::format_number(last.high as f64),
            ),
            _ => (String::new(), String::new()),
        })
    };
    view! {
        <figure class="rounded-xl border border-slate-200 bg-white p-4 dark:border-slate-800 dark:bg-slate-900">
            <figcaption class="mb-2 text-sm font-medium">{label.clone()}</figcaption>
            <svg class="h-40 w-full" viewBox="0 0 600 160" preserveAspectRatio="none" role="img" aria-label=label>
                <line x1="0" y1="159" x2="600" y2="159" class="stroke-slate-300 dark:stroke-slate-700" stroke-width="1" />
                {bars}
            </svg>
            <div class="mt-1 flex justify-between text-xs text-slate-500 dark:text-slate-400">
                <span>{move || axis().0}</span>
                <span>{move || axis().1}</span>
            </div>
        </figure>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_scale_into_the_box() {
        assert_eq!(polyline_points(&[], 1.0, 10.0, 10.0), "");
        assert_eq!(
            polyline_points(&[0.0, 5.0, 10.0], 10.0, 100.0, 20.0),
            "0.0,20.0 50.0,10.0 100.0,0.0"
        );
        // A flat zero series stays on the baseline instead of dividing by zero.
        assert_eq!(
            polyline_points(&[0.0, 0.0], 0.0, 10.0, 10.0),
            "0.0,10.0 10.0,10.0"
        );
    }
}
