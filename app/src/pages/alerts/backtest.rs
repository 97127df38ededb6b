//! The rule form's backtest: what the draft rule would have done over a stored range
//! (`POST /api/v1/alerts/backtest`), drawn over the statistic: pending and firing periods as
//! bands, each transition listed, and the notifications it would have sent.

use super::format_time_ms;
use crate::{
    components::alerts::{Period, periods},
    fetch::{encode_query, get_json},
};
use contract::{
    alert::AlertState,
    api::{AlertBacktest, AlertBacktestTransition, AlertRuleSpec, QueryResponse},
    units::format_number,
};
use leptos::prelude::*;

/// A backtest and the statistic over its range, as `(start_ms, value)` points.
pub type BacktestView = (AlertBacktest, Vec<(i64, f64)>);

/// Ranges the form offers.
pub const RANGES: &[(&str, &str)] = &[
    ("1h", "last hour"),
    ("6h", "last 6 hours"),
    ("24h", "last 24 hours"),
];

/// The rule's statistic over the backtest's range (tier chosen by the query), for the chart.
pub async fn statistic_points(spec: &AlertRuleSpec, from_ms: i64, to_ms: i64) -> Vec<(i64, f64)> {
    let url = format!(
        "/api/v1/query?metric={}&from={from_ms}&to={to_ms}",
        encode_query(&spec.metric)
    );
    get_json::<QueryResponse>(&url)
        .await
        .map(|q| {
            q.points
                .iter()
                .filter_map(|p| p.summary.statistic(spec.statistic).map(|v| (p.start_ms, v)))
                .collect()
        })
        .unwrap_or_default()
}

fn band_class(state: AlertState) -> &'static str {
    match state {
        AlertState::Pending => "fill-amber-400/40",
        _ => "fill-red-500/30",
    }
}

/// The statistic with the threshold lines and the replayed pending and firing periods.
#[component]
fn BacktestChart(
    values: Vec<(i64, f64)>,
    from_ms: i64,
    to_ms: i64,
    threshold: f64,
    recovery: Option<f64>,
    bands: Vec<Period>,
) -> impl IntoView {
    const W: f64 = 600.0;
    const H: f64 = 120.0;
    let span = (to_ms - from_ms).max(1) as f64;
    let x = move |t: i64| ((t - from_ms) as f64 / span * W).clamp(0.0, W);
    let top = values
        .iter()
        .map(|(_, v)| *v)
        .chain([threshold])
        .chain(recovery)
        .fold(0.0_f64, f64::max)
        * 1.1;
    let y = move |v: f64| if top > 0.0 { H - v / top * H } else { H };
    let points = values
        .iter()
        .map(|&(t, v)| format!("{:.1},{:.1}", x(t), y(v)))
        .collect::<Vec<_>>()
        .join(" ");
    let line = move |v: f64, class: &'static str| {
        let yy = format!("{:.1}", y(v));
        view! { <line x1="0" x2="600" y1=yy.clone() y2=yy class=class stroke-width="1.5" stroke-dasharray="6 4" /> }
    };
    view! {
        <svg class="mt-2 h-32 w-full" viewBox="0 0 600 120" preserveAspectRatio="none" role="img"
            aria-label="backtest: the statistic with the periods the rule would have been pending or firing"
            data-testid="backtest-chart">
            {bands.into_iter().map(|b| {
                let (x0, x1) = (x(b.from_ms), x(b.to_ms));
                view! {
                    <rect x=format!("{x0:.1}") y="0" width=format!("{:.1}", (x1 - x0).max(1.0)) height="120"
                        class=band_class(b.state) data-band=b.state.as_str()>
                        <title>{format!("{} {} from {} UTC", b.instance, b.state.as_str(), format_time_ms(b.from_ms))}</title>
                    </rect>
                }
            }).collect_view()}
            <polyline class="text-sky-500" fill="none" stroke="currentColor" stroke-width="2" points=points />
            {line(threshold, "stroke-red-500")}
            {recovery.map(|r| line(r, "stroke-amber-500"))}
        </svg>
    }
}

/// Most transitions listed under the chart.
const LISTED: usize = 50;

/// The backtest's summary, chart and transitions.
#[component]
pub fn BacktestResult(
    view: BacktestView,
    threshold: f64,
    recovery: Option<f64>,
    /// Set to a transition to render the notification templates with it.
    sample: RwSignal<Option<AlertBacktestTransition>>,
) -> impl IntoView {
    let (result, values) = view;
    let bands = periods(
        result
            .transitions
            .iter()
            .map(|t| (t.instance.as_str(), t.from, t.to, t.at_ms)),
        result.from_ms,
        result.to_ms,
    );
    let summary = format!(
        "{} transitions, {} notifications it would have sent, over {} evaluations ({} to {} UTC)",
        result.transition_count,
        result.notifications,
        result.evaluations,
        format_time_ms(result.from_ms),
        format_time_ms(result.to_ms),
    );
    let more = result.transitions.len().saturating_sub(LISTED);
    view! {
        <section class="mt-4" data-testid="backtest" aria-label="Backtest">
            <p class="text-sm font-medium" data-testid="backtest-summary">{summary}</p>
            {result.note.map(|n| view! { <p class="text-xs text-slate-500">{n}</p> })}
            <BacktestChart values from_ms=result.from_ms to_ms=result.to_ms threshold recovery bands />
            <ol class="mt-2 flex flex-col gap-1 text-xs" aria-label="Backtest transitions">
                {result.transitions.into_iter().take(LISTED).map(|t| {
                    let chosen = t.clone();
                    view! {
                        <li class="flex flex-wrap items-center gap-2" data-to=t.to.as_str()>
                            <span class="font-mono text-slate-500">{format_time_ms(t.at_ms)}</span>
                            <span class="font-mono">{t.instance}</span>
                            <span>{t.from.as_str()} " → " {t.to.as_str()}</span>
                            <span class="tabular-nums">{t.value.map(format_number).unwrap_or_default()}</span>
                            {t.notifies.then_some("notifies")}
                            <button type="button" class="underline"
                                on:click=move |_| sample.set(Some(chosen.clone()))>"Render notification"</button>
                        </li>
                    }
                }).collect_view()}
                {(more > 0).then(|| view! { <li class="text-slate-500">{format!("and {more} more")}</li> })}
            </ol>
        </section>
    }
    .into_any()
}
