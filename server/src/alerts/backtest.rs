//! Backtest: a rule's state machine replayed over stored 1-second history, evaluating every
//! second of a range as the live evaluator does (same windows, same observations, same
//! [`Instance::step`]), so it makes the transitions the live evaluator would have made on the
//! same data.
//!
//! The pure part is [`Replay`]: fed the stored rows in time order ([`Replay::feed`]), it
//! evaluates each second ([`Replay::evaluate_until`]) with the window the engine would have
//! had: windows up to 60 s sum the seconds `(now - window, now]`; longer ones the whole minutes
//! before the current one plus the current minute so far; a series younger than the window
//! divides its rate by its age. [`run`] is the I/O shell: it reads the rows a page at a time
//! and replays each page on a blocking thread (`spawn_blocking`), within [`Limits`].
//!
//! What differs from live evaluation: the live evaluator sees the current second as far as its
//! records have arrived, the replay sees complete seconds; silences are not replayed (the
//! count is of notifications the rule would have sent); an instance starts at the range's
//! first second in `ok` (live, where it was then).

use super::{
    evaluate::observations,
    machine::{Instance, Transition},
    rule::Rule,
};
use crate::{
    engine::{
        core::MetricWindow,
        window::{WindowSummary, window_bounds},
    },
    metric::{
        Stats,
        histogram::{self, HistBounds, Layout},
    },
    storage::{Database, StorageError, alerts::SecondRow},
};
use contract::{alert::SeriesScope, summary::Statistic};
use hdrhistogram::Histogram;
use std::collections::{BTreeMap, HashMap, VecDeque};

/// Bounds of one backtest's work; refusals name the limit.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest range, in seconds (each second is one evaluation).
    pub max_range_s: i64,
    /// Most series the metric may have in the range.
    pub max_series: usize,
    /// Most transitions returned (all are counted).
    pub max_transitions: usize,
    /// Seconds read and replayed per page.
    pub page_s: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_range_s: 86_400,
            max_series: 50,
            max_transitions: 10_000,
            page_s: 600,
        }
    }
}

/// A refused or failed backtest.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    /// The request is outside the limits or wrong: the field and why.
    #[error("{field}: {message}")]
    Refused {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the replay task failed: {0}")]
    Task(String),
}

fn refused(field: &'static str, message: impl Into<String>) -> BacktestError {
    BacktestError::Refused {
        field,
        message: message.into(),
    }
}

/// One transition of the replay.
#[derive(Debug, Clone, PartialEq)]
pub struct Replayed {
    pub instance: String,
    pub transition: Transition,
    /// Whether it would have notified the rule's targets.
    pub notifies: bool,
}

/// What a backtest found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Transitions in time order (at most [`Limits::max_transitions`]).
    pub transitions: Vec<Replayed>,
    /// Every transition, returned or not.
    pub transition_count: u64,
    /// Notifications it would have sent: one per notifying transition, or per group for a
    /// grouped rule.
    pub notifications: u64,
    /// Seconds evaluated.
    pub evaluations: u64,
    /// Instances the rule had.
    pub instances: usize,
    /// Series of the metric seen in the range.
    pub series: usize,
}

/// One period of a series' ring (a second, or a minute for windows over 60 s).
#[derive(Debug, Clone)]
struct Period {
    start_s: i64,
    stats: Stats,
    counts: Vec<(u32, u64)>,
}

/// The periods of one series still inside the window, and its first second.
#[derive(Debug, Clone)]
struct SeriesRing {
    labels: Vec<String>,
    periods: VecDeque<Period>,
    first_s: i64,
}

/// The replay of one rule (pure).
pub struct Replay {
    rule: Rule,
    period_s: i64,
    series: Vec<SeriesRing>,
    by_json: HashMap<String, usize>,
    /// Rows fed but not yet added (seconds after the last evaluated one).
    queued: VecDeque<SecondRow>,
    /// Histogram scratch (the metric's bounds, known from the first histogram).
    scratch: Option<(Histogram<u64>, Histogram<u64>, Layout)>,
    /// An empty histogram: the summaries of a metric without histograms.
    empty: Histogram<u64>,
    instances: BTreeMap<String, Instance>,
    /// When the open group of notifications is sent (grouped rules).
    group_due_ms: Option<i64>,
    next_s: i64,
    max_series: usize,
    max_transitions: usize,
    outcome: Outcome,
}

impl Replay {
    /// A replay whose first evaluation is at `from_s`.
    pub fn new(rule: Rule, from_s: i64, limits: &Limits) -> Self {
        let period_s = if rule.window_s <= 60 { 1 } else { 60 };
        Self {
            rule,
            period_s,
            series: Vec::new(),
            by_json: HashMap::new(),
            queued: VecDeque::new(),
            scratch: None,
            empty: Histogram::new(1).expect("1 significant figure is valid"),
            instances: BTreeMap::new(),
            group_due_ms: None,
            next_s: from_s,
            max_series: limits.max_series,
            max_transitions: limits.max_transitions,
            outcome: Outcome::default(),
        }
    }

    /// The first second the replay should be fed from: every row that can be in the first
    /// evaluation's window, and a minute more so a series' age is known.
    pub fn feed_from(&self) -> i64 {
        self.next_s - self.rule.window_s - 120
    }

    /// Queues rows (in time order, after every row fed before).
    pub fn feed(&mut self, rows: Vec<SecondRow>) -> Result<(), BacktestError> {
        for row in rows {
            if !self.by_json.contains_key(&row.series) {
                if self.series.len() == self.max_series {
                    return Err(refused(
                        "series",
                        format!(
                            "the metric has more than {} series in the range; a backtest \
                             replays at most {}: watch one series or a shorter range",
                            self.max_series, self.max_series
                        ),
                    ));
                }
                let labels: Vec<String> = serde_json::from_str(&row.series).unwrap_or_default();
                self.by_json.insert(row.series.clone(), self.series.len());
                self.series.push(SeriesRing {
                    labels,
                    periods: VecDeque::new(),
                    first_s: i64::MAX,
                });
            }
            if self.scratch.is_none()
                && let Some(bounds) = row.bounds
            {
                self.scratch = scratch_of(bounds);
            }
            self.queued.push_back(row);
        }
        Ok(())
    }

    /// Evaluates every second up to `to_s` (inclusive) with the rows fed so far.
    pub fn evaluate_until(&mut self, to_s: i64) {
        while self.next_s <= to_s {
            let now_s = self.next_s;
            while self.queued.front().is_some_and(|r| r.second <= now_s) {
                let row = self.queued.pop_front().expect("just looked at it");
                self.add(row);
            }
            self.evaluate(now_s);
            self.next_s += 1;
        }
    }

    /// The outcome so far (a group still open counts as sent).
    pub fn finish(mut self) -> Outcome {
        if self.group_due_ms.take().is_some() {
            self.outcome.notifications += 1;
        }
        self.outcome.instances = self.instances.len();
        self.outcome.series = self.series.len();
        self.outcome
    }

    fn add(&mut self, row: SecondRow) {
        let Some(&index) = self.by_json.get(&row.series) else {
            return;
        };
        let ring = &mut self.series[index];
        ring.first_s = ring.first_s.min(row.second);
        let start_s = row.second.div_euclid(self.period_s) * self.period_s;
        match ring.periods.back_mut() {
            Some(last) if last.start_s == start_s => {
                last.stats.merge(&row.stats);
                histogram::merge_sparse(&mut last.counts, &row.counts);
            }
            _ => ring.periods.push_back(Period {
                start_s,
                stats: row.stats,
                counts: row.counts,
            }),
        }
    }

    /// The metric's window at `now_s` as the engine builds it ([`MetricWindow`]).
    fn window(&mut self, now_s: i64) -> MetricWindow {
        let window_s = self.rule.window_s;
        let (from, to, nominal_s) = window_bounds(now_s, window_s);
        let percentiles = !self.rule.spec.statistic.is_additive()
            && !matches!(
                self.rule.spec.statistic,
                Statistic::Mean | Statistic::Min | Statistic::Max
            );
        // The observations read the merge for `all` and the series' own windows otherwise: only
        // those get percentiles (the rest is never read, and costs a histogram per second).
        let all = self.rule.spec.series == SeriesScope::All;
        let (series_percentiles, merged_percentiles) = (percentiles && !all, percentiles && all);
        let mut merged_stats = Stats::EMPTY;
        let mut covered_s = 1;
        if let Some((_, merged, _)) = &mut self.scratch
            && !merged.is_empty()
        {
            merged.reset();
        }
        let mut series = Vec::with_capacity(self.series.len());
        for ring in &mut self.series {
            while ring.periods.front().is_some_and(|p| p.start_s <= from) {
                ring.periods.pop_front();
            }
            if ring.first_s > now_s {
                continue; // not seen yet
            }
            let mut stats = Stats::EMPTY;
            let mut one = None;
            if let Some((hist, merged, layout)) = &mut self.scratch {
                if !hist.is_empty() {
                    hist.reset();
                }
                for period in ring.periods.iter().filter(|p| p.start_s <= to) {
                    stats.merge(&period.stats);
                    if series_percentiles {
                        histogram::record_sparse(hist, layout, &period.counts);
                    }
                    if merged_percentiles {
                        histogram::record_sparse(merged, layout, &period.counts);
                    }
                }
                one = Some(&*hist);
            } else {
                for period in ring.periods.iter().filter(|p| p.start_s <= to) {
                    stats.merge(&period.stats);
                }
            }
            let covered = nominal_s.min(now_s - ring.first_s + 1);
            covered_s = covered_s.max(covered);
            merged_stats.merge(&stats);
            let summary = match one {
                Some(hist) => WindowSummary::of(window_s, covered, &stats, hist),
                None => WindowSummary::of(window_s, covered, &stats, &self.empty),
            };
            series.push((ring.labels.clone(), summary));
        }
        let merged = match &self.scratch {
            Some((_, merged, _)) => WindowSummary::of(window_s, covered_s, &merged_stats, merged),
            None => WindowSummary::of(window_s, covered_s, &merged_stats, &self.empty),
        };
        MetricWindow { series, merged }
    }

    fn evaluate(&mut self, now_s: i64) {
        let window = self.window(now_s);
        let now_ms = now_s * 1000;
        let known: Vec<String> = self.instances.keys().cloned().collect();
        let seen = observations(&self.rule, Some(&window), true, known.into_iter());
        for (name, observation) in seen {
            let instance = self
                .instances
                .entry(name.clone())
                .or_insert_with(|| Instance::new(now_ms));
            if let Some(transition) = instance.step(&self.rule.params, now_ms, observation) {
                let notifies =
                    transition.notifies(self.rule.notify_no_data, self.rule.notify_error);
                self.outcome.transition_count += 1;
                if notifies && self.rule.group_interval_ms > 0 {
                    self.group_due_ms
                        .get_or_insert(now_ms + self.rule.group_interval_ms);
                } else {
                    self.outcome.notifications += u64::from(notifies);
                }
                if self.outcome.transitions.len() < self.max_transitions {
                    self.outcome.transitions.push(Replayed {
                        instance: name,
                        transition,
                        notifies,
                    });
                }
            }
        }
        self.outcome.evaluations += 1;
        // As the live evaluator: a group due now is sent after this second's transitions.
        if self.group_due_ms.is_some_and(|due| due <= now_ms) {
            self.group_due_ms = None;
            self.outcome.notifications += 1;
        }
    }
}

/// Two empty histograms with `bounds` (one series, all merged) and their layout.
fn scratch_of(bounds: HistBounds) -> Option<(Histogram<u64>, Histogram<u64>, Layout)> {
    let hist = Histogram::new_with_bounds(bounds.low, bounds.high, bounds.sigfig).ok()?;
    let layout = Layout::of(&hist);
    Some((hist.clone(), hist, layout))
}

/// Replays `rule` over the stored 1-second rows of its metric, evaluating every second of
/// `from_ms..=to_ms`. The caller clamps the range to what the 1-second tier retains.
pub async fn run(
    database: &Database,
    rule: Rule,
    from_ms: i64,
    to_ms: i64,
    limits: Limits,
) -> Result<Outcome, BacktestError> {
    let from_s = from_ms.div_euclid(1000);
    let to_s = to_ms.div_euclid(1000);
    if to_s < from_s {
        return Err(refused("to", "must not be before from"));
    }
    if to_s - from_s + 1 > limits.max_range_s {
        return Err(refused(
            "from",
            format!(
                "the range is {} s; a backtest replays at most {} s ({} h) of 1-second history",
                to_s - from_s + 1,
                limits.max_range_s,
                limits.max_range_s / 3600
            ),
        ));
    }
    let metric = database
        .active_metric(&rule.spec.metric)
        .await?
        .ok_or_else(|| refused("metric", format!("unknown metric {:?}", rule.spec.metric)))?;
    let series = match &rule.spec.series {
        contract::alert::SeriesScope::One(labels) => {
            Some(serde_json::to_string(labels).expect("labels serialise"))
        }
        _ => None,
    };
    let mut replay = Replay::new(rule, from_s, &limits);
    let mut page_from = replay.feed_from();
    while page_from <= to_s {
        let page_to = (page_from + limits.page_s).min(to_s + 1);
        let rows = database
            .second_rows(metric.id, series.as_deref(), page_from, page_to)
            .await?;
        replay = tokio::task::spawn_blocking(move || {
            replay.feed(rows)?;
            replay.evaluate_until(page_to - 1);
            Ok::<_, BacktestError>(replay)
        })
        .await
        .map_err(|e| BacktestError::Task(e.to_string()))??;
        page_from = page_to;
    }
    Ok(replay.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::rule::check;
    use contract::{alert::AlertState, api::AlertRuleSpec};

    fn rule(patch: serde_json::Value) -> Rule {
        let mut body = serde_json::json!({
            "name": "r", "metric": "m", "statistic": "max", "window": "3s",
            "comparison": ">", "threshold": 100.0,
        });
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let spec: AlertRuleSpec = serde_json::from_value(body).unwrap();
        check(1, &spec, |_| true).unwrap()
    }

    fn row(series: &str, second: i64, value: f64) -> SecondRow {
        let mut stats = Stats::EMPTY;
        stats.add(value);
        SecondRow {
            series: format!("[\"{series}\"]"),
            second,
            stats,
            counts: Vec::new(),
            bounds: None,
        }
    }

    fn states(outcome: &Outcome) -> Vec<(String, i64, AlertState)> {
        outcome
            .transitions
            .iter()
            .map(|r| {
                (
                    r.instance.clone(),
                    r.transition.at_ms / 1000,
                    r.transition.to,
                )
            })
            .collect()
    }

    #[test]
    fn a_spike_fires_for_the_window_and_resolves() {
        let rule = rule(serde_json::json!({}));
        let mut replay = Replay::new(rule, 100, &Limits::default());
        let rows = (100..120)
            .map(|s| row("a", s, if s == 105 { 500.0 } else { 10.0 }))
            .collect();
        replay.feed(rows).unwrap();
        replay.evaluate_until(119);
        let outcome = replay.finish();
        // In the 3 s max window from 105 to 107, resolved at 108.
        assert_eq!(
            states(&outcome),
            vec![
                ("all".into(), 105, AlertState::Firing),
                ("all".into(), 108, AlertState::Ok)
            ]
        );
        assert_eq!(outcome.notifications, 2);
        assert_eq!(outcome.evaluations, 20);
    }

    #[test]
    fn each_series_is_an_instance_and_pages_join_seamlessly() {
        let rule = rule(serde_json::json!({"series": "each", "window": "1s", "for": "2s"}));
        let rows: Vec<SecondRow> = (0..30)
            .flat_map(|s| {
                [
                    row("eu", 1000 + s, if s >= 10 { 200.0 } else { 1.0 }),
                    row("us", 1000 + s, 1.0),
                ]
            })
            .collect();
        let whole = {
            let mut replay = Replay::new(rule.clone(), 1000, &Limits::default());
            replay.feed(rows.clone()).unwrap();
            replay.evaluate_until(1029);
            replay.finish()
        };
        assert_eq!(
            states(&whole),
            vec![
                ("eu".into(), 1010, AlertState::Pending),
                ("eu".into(), 1012, AlertState::Firing)
            ]
        );
        assert_eq!(whole.instances, 2);
        let mut paged = Replay::new(rule, 1000, &Limits::default());
        for chunk in rows.chunks(7) {
            let last = chunk.last().unwrap().second;
            paged.feed(chunk.to_vec()).unwrap();
            paged.evaluate_until(last - 1);
        }
        paged.evaluate_until(1029);
        assert_eq!(paged.finish(), whole);
    }

    #[test]
    fn grouped_rules_count_one_notification_per_group() {
        // Two series fire at 1003 and 1005 (one group, sent at 1013), resolve at 1020 and
        // 1021 (a second group, still open at the end).
        let rule = rule(serde_json::json!({"series": "each", "window": "1s"}));
        let rows: Vec<SecondRow> = (0..25)
            .flat_map(|s| {
                let high = |from, to| if (from..to).contains(&s) { 500.0 } else { 1.0 };
                [
                    row("eu", 1000 + s, high(3, 20)),
                    row("us", 1000 + s, high(5, 21)),
                ]
            })
            .collect();
        let mut replay = Replay::new(rule, 1000, &Limits::default());
        replay.feed(rows).unwrap();
        replay.evaluate_until(1024);
        let outcome = replay.finish();
        assert_eq!(outcome.transition_count, 4);
        assert_eq!(outcome.notifications, 2);
    }

    /// The cost of the longest backtest: a day of 1-second rows of 10 series, p99 over 5
    /// minutes for each series. `cargo test --release -p streamboard --lib day_of -- --ignored
    /// --nocapture` prints the time.
    #[test]
    #[ignore = "a timing, run by hand"]
    fn a_day_of_ten_series_replays() {
        let rule = rule(
            serde_json::json!({"series": "each", "statistic": "p99", "window": "5m",
                                            "threshold": 900.0}),
        );
        let bounds = HistBounds {
            low: 1,
            high: 3_600_000,
            sigfig: 2,
        };
        let mut hist = Histogram::<u64>::new_with_bounds(1, 3_600_000, 2).unwrap();
        let started = std::time::Instant::now();
        let mut replay = Replay::new(rule, 0, &Limits::default());
        for page in 0..144 {
            let mut rows = Vec::new();
            for s in page * 600..(page + 1) * 600 {
                for series in 0..10 {
                    hist.reset();
                    let mut stats = Stats::EMPTY;
                    for k in 0..20 {
                        let v = ((s * 7 + series * 13 + k * 31) % 1000 + 1) as u64;
                        hist.record(v).unwrap();
                        stats.add(v as f64);
                    }
                    let mut counts = Vec::new();
                    histogram::sparse_of(&hist, &mut counts);
                    rows.push(SecondRow {
                        series: format!("[\"s{series}\"]"),
                        second: s,
                        stats,
                        counts,
                        bounds: Some(bounds),
                    });
                }
            }
            replay.feed(rows).unwrap();
            replay.evaluate_until((page + 1) * 600 - 1);
        }
        let outcome = replay.finish();
        eprintln!(
            "{} evaluations of 10 series (p99 over 5 min): {:?}, {} transitions",
            outcome.evaluations,
            started.elapsed(),
            outcome.transition_count
        );
        assert_eq!(outcome.evaluations, 86_400);
    }

    #[test]
    fn too_many_series_are_refused_naming_the_limit() {
        let limits = Limits {
            max_series: 2,
            ..Limits::default()
        };
        let mut replay = Replay::new(rule(serde_json::json!({})), 0, &limits);
        let error = replay
            .feed(vec![row("a", 0, 1.0), row("b", 0, 1.0), row("c", 0, 1.0)])
            .unwrap_err();
        assert!(
            matches!(&error, BacktestError::Refused { field: "series", message } if message.contains("at most 2")),
            "{error}"
        );
    }

    #[test]
    fn long_windows_count_whole_minutes_and_the_current_one_so_far() {
        // 2-minute count window: the previous full minute plus the current minute so far.
        let rule = rule(serde_json::json!({"statistic": "count", "window": "2m",
                                            "threshold": 90.0}));
        let mut replay = Replay::new(rule, 120, &Limits::default());
        replay
            .feed((0..240).map(|s| row("a", s, 1.0)).collect())
            .unwrap();
        replay.evaluate_until(239);
        // At 120 + k the window holds 60 + k + 1 seconds: above 90 from k = 30; at 180 the
        // window moves a minute on and holds 61 seconds again.
        assert_eq!(
            states(&replay.finish()),
            vec![
                ("all".into(), 150, AlertState::Firing),
                ("all".into(), 180, AlertState::Ok),
                ("all".into(), 210, AlertState::Firing)
            ]
        );
    }
}
