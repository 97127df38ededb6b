//! Pure: what each instance of a rule observes in its metric's window.

use super::{
    machine::Observation,
    rule::{ALL_INSTANCE, Rule, instance_name},
};
use crate::engine::{core::MetricWindow, window::WindowSummary};
use contract::{alert::SeriesScope, summary::Statistic};

/// The rule's statistic in one window summary; `None` when the window is empty and the
/// statistic is undefined there (mean, min, max, percentiles). Count, rate and sum of an
/// empty window are 0.
pub fn statistic(window: &WindowSummary, statistic: Statistic) -> Option<f64> {
    window.summary.statistic(statistic)
}

fn observe(summary: &WindowSummary, stat: Statistic) -> Observation {
    match statistic(summary, stat) {
        Some(value) => Observation::Value(value),
        None => Observation::NoData,
    }
}

/// Every instance's observation. `window` is the metric's window (`None`: the metric does not
/// exist in the engine). `known` are the instances that already exist: with scope `each`, a
/// known instance whose series is gone observes no data.
pub fn observations(
    rule: &Rule,
    window: Option<&MetricWindow>,
    metric_active: bool,
    known: impl Iterator<Item = String>,
) -> Vec<(String, Observation)> {
    let Some(window) = window else {
        let seen = if metric_active {
            // Defined but nothing received yet since start.
            Observation::NoData
        } else {
            Observation::Error(format!("metric {:?} no longer exists", rule.spec.metric))
        };
        let mut names: Vec<String> = known.collect();
        if names.is_empty() && rule.spec.series != SeriesScope::Each {
            names.push(scope_instance(&rule.spec.series));
        }
        return names.into_iter().map(|n| (n, seen.clone())).collect();
    };
    let stat = rule.spec.statistic;
    match &rule.spec.series {
        SeriesScope::All => vec![(ALL_INSTANCE.to_string(), observe(&window.merged, stat))],
        SeriesScope::One(labels) => {
            let seen = window
                .series
                .iter()
                .find(|(l, _)| l == labels)
                .map(|(_, s)| observe(s, stat))
                .unwrap_or(Observation::NoData);
            vec![(instance_name(labels), seen)]
        }
        SeriesScope::Each => {
            let mut out: Vec<(String, Observation)> = window
                .series
                .iter()
                .map(|(labels, s)| (instance_name(labels), observe(s, stat)))
                .collect();
            for name in known {
                if !out.iter().any(|(n, _)| *n == name) {
                    out.push((name, Observation::NoData));
                }
            }
            out
        }
    }
}

fn scope_instance(scope: &SeriesScope) -> String {
    match scope {
        SeriesScope::One(labels) => instance_name(labels),
        _ => ALL_INSTANCE.to_string(),
    }
}

/// The instance names a scope can have right now (others are dropped from memory).
pub fn belongs(scope: &SeriesScope, instance: &str) -> bool {
    match scope {
        SeriesScope::All => instance == ALL_INSTANCE,
        SeriesScope::One(labels) => instance == instance_name(labels),
        SeriesScope::Each => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::rule::check;
    use contract::api::AlertRuleSpec;
    use contract::summary::Summary;

    fn summary(count: u64, mean: f64) -> WindowSummary {
        WindowSummary {
            window_s: 60,
            summary: Summary {
                count,
                rate_per_s: count as f64 / 60.0,
                sum: mean * count as f64,
                min: (count > 0).then_some(mean),
                max: (count > 0).then_some(mean),
                mean: (count > 0).then_some(mean),
                p50: (count > 0).then_some(mean as u64),
                p90: None,
                p99: None,
                p999: None,
            },
        }
    }

    fn rule(series: SeriesScope, statistic: &str) -> Rule {
        let spec: AlertRuleSpec = serde_json::from_value(serde_json::json!({
            "name": "r", "metric": "m", "statistic": statistic, "window": "1m",
            "comparison": ">", "threshold": 1.0, "series": series,
        }))
        .unwrap();
        check(1, &spec, |_| true).unwrap()
    }

    fn window() -> MetricWindow {
        MetricWindow {
            series: vec![
                (vec!["eu".into()], summary(10, 5.0)),
                (vec!["us".into()], summary(0, 0.0)),
            ],
            merged: summary(10, 5.0),
        }
    }

    #[test]
    fn scopes_pick_their_series() {
        let all = rule(SeriesScope::All, "mean");
        assert_eq!(
            observations(&all, Some(&window()), true, std::iter::empty()),
            vec![("all".into(), Observation::Value(5.0))]
        );
        let each = rule(SeriesScope::Each, "mean");
        let seen = observations(
            &each,
            Some(&window()),
            true,
            ["asia".to_string()].into_iter(),
        );
        assert_eq!(
            seen,
            vec![
                ("eu".into(), Observation::Value(5.0)),
                ("us".into(), Observation::NoData),
                ("asia".into(), Observation::NoData),
            ]
        );
        let one = rule(SeriesScope::One(vec!["us".into()]), "count");
        assert_eq!(
            observations(&one, Some(&window()), true, std::iter::empty()),
            vec![("us".into(), Observation::Value(0.0))]
        );
    }

    #[test]
    fn a_deleted_metric_is_an_error_and_a_quiet_one_no_data() {
        let all = rule(SeriesScope::All, "mean");
        let seen = observations(&all, None, false, std::iter::empty());
        assert!(matches!(&seen[0].1, Observation::Error(m) if m.contains("no longer exists")));
        let seen = observations(&all, None, true, std::iter::empty());
        assert_eq!(seen, vec![("all".into(), Observation::NoData)]);
    }
}
