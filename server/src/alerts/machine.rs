//! The pure state machine of one rule instance.
//!
//! ```text
//!            breach (for = 0)                      recovered (keep_firing_for = 0)
//!   ┌────┐ ───────────────────────────▶ ┌────────┐ ──────────────────────────────▶ ┌────┐
//!   │ ok │ ──breach──▶ pending ──for──▶ │ firing │ ──recovered──▶ recovering ──keep─▶│ ok │
//!   └────┘ ◀──clear── pending           └────────┘ ◀──breach again── recovering     └────┘
//! ```
//! plus `no_data` (the rule's policy after `no_data_after` of silence) and `error` (the metric
//! is gone). A value arriving in `no_data` or `error` is judged as from `ok`.
//!
//! With "M out of N" (`m_of_n`, CloudWatch's datapoints to alarm) instead of `for`, every
//! evaluation is a datapoint: the instance fires once at least M of its last N datapoints
//! breached, is `pending` while at least one but fewer than M did, and recovers once fewer
//! than M of the last N are still past the recovery threshold. A second without data is a
//! datapoint that does not breach (the `alerting` no-data policy makes it one that does).
//!
//! "Breach" is `value <comparison> threshold`; "recovered" is the value no longer satisfying
//! `value <comparison> recovery_threshold` (the recovery threshold defaults to the threshold;
//! set lower for `>` it gives hysteresis, so a value wobbling around the threshold does not
//! flap). Time is whatever the caller says (`now_ms`), so the machine is tested with scripts.
//! States, comparisons and no-data policies are the contract's closed sets (`contract::alert`).

use contract::alert::{AlertState, Comparison, NoDataPolicy};
use std::collections::VecDeque;

/// A rule's evaluation parameters (durations in milliseconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    pub comparison: Comparison,
    pub threshold: f64,
    pub recovery_threshold: f64,
    pub for_ms: i64,
    pub keep_firing_for_ms: i64,
    pub no_data: NoDataPolicy,
    pub no_data_after_ms: i64,
    /// "M out of N" datapoints to alarm (`for_ms` is 0 then).
    pub m_of_n: Option<MOfN>,
}

/// "M out of N": at least `m` of the last `n` datapoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MOfN {
    pub m: u32,
    pub n: u32,
}

/// One datapoint of the M-of-N memory: whether it breached, and whether it was still past the
/// recovery threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datapoint {
    pub breach: bool,
    pub holding: bool,
}

impl Params {
    pub fn breaches(&self, value: f64) -> bool {
        self.comparison.holds(value, self.threshold)
    }

    pub fn recovered(&self, value: f64) -> bool {
        !self.comparison.holds(value, self.recovery_threshold)
    }
}

/// What one evaluation saw for an instance.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    Value(f64),
    NoData,
    Error(String),
}

/// One instance's memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub state: AlertState,
    /// When `state` was entered.
    pub since_ms: i64,
    /// When a value was last seen (or the instance created).
    pub last_data_ms: i64,
    pub value: Option<f64>,
    pub error: Option<String>,
    /// The last N datapoints, oldest first (only with M of N; empty after a restart).
    pub datapoints: VecDeque<Datapoint>,
}

/// A change of state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transition {
    pub from: AlertState,
    pub to: AlertState,
    pub at_ms: i64,
    pub value: Option<f64>,
}

impl Transition {
    /// Whether the transition notifies: entering `firing` (except back from `recovering`,
    /// which is the same incident), resolving (to `ok` from `firing` or `recovering`), and
    /// entering `no_data` / `error` when the rule asks.
    pub fn notifies(&self, no_data: bool, error: bool) -> bool {
        match self.to {
            AlertState::Firing => self.from != AlertState::Recovering,
            AlertState::Ok => self.from.is_firing(),
            AlertState::NoData => no_data,
            AlertState::Error => error,
            AlertState::Pending | AlertState::Recovering => false,
        }
    }
}

impl Datapoint {
    const CLEAR: Datapoint = Datapoint {
        breach: false,
        holding: false,
    };
    const BREACH: Datapoint = Datapoint {
        breach: true,
        holding: true,
    };
}

impl Instance {
    pub fn new(now_ms: i64) -> Self {
        Self {
            state: AlertState::Ok,
            since_ms: now_ms,
            last_data_ms: now_ms,
            value: None,
            error: None,
            datapoints: VecDeque::new(),
        }
    }

    /// An instance restored in `state` (entered at `since_ms`) with no datapoints remembered.
    pub fn restored(state: AlertState, since_ms: i64, last_data_ms: i64) -> Self {
        Self {
            state,
            since_ms,
            last_data_ms,
            ..Self::new(since_ms)
        }
    }

    /// Remembers one datapoint (M of N only) and counts (breaching, holding) among the last N.
    fn datapoint(&mut self, params: &Params, point: Datapoint) -> (u32, u32) {
        let Some(MOfN { n, .. }) = params.m_of_n else {
            return (0, 0);
        };
        self.datapoints.push_back(point);
        while self.datapoints.len() > n as usize {
            self.datapoints.pop_front();
        }
        self.datapoints.iter().fold((0, 0), |(b, h), p| {
            (b + u32::from(p.breach), h + u32::from(p.holding))
        })
    }

    /// Advances the machine by one evaluation at `now_ms`.
    pub fn step(&mut self, params: &Params, now_ms: i64, seen: Observation) -> Option<Transition> {
        let next = match seen {
            Observation::Error(message) => {
                self.error = Some(message);
                self.value = None;
                self.datapoint(params, Datapoint::CLEAR);
                AlertState::Error
            }
            Observation::Value(value) => {
                self.error = None;
                self.value = Some(value);
                self.last_data_ms = now_ms;
                let point = Datapoint {
                    breach: params.breaches(value),
                    holding: !params.recovered(value),
                };
                let counts = self.datapoint(params, point);
                self.judge(params, now_ms, point, counts)
            }
            Observation::NoData => {
                self.value = None;
                let silent_long = now_ms - self.last_data_ms >= params.no_data_after_ms;
                let alerting = silent_long && params.no_data == NoDataPolicy::Alerting;
                let point = if alerting {
                    Datapoint::BREACH
                } else {
                    Datapoint::CLEAR
                };
                let counts = self.datapoint(params, point);
                if !silent_long {
                    return None; // silence not long enough yet: hold
                }
                match params.no_data {
                    NoDataPolicy::KeepLast => return None,
                    NoDataPolicy::NoData => AlertState::NoData,
                    NoDataPolicy::Ok => AlertState::Ok,
                    NoDataPolicy::Alerting => self.judge(params, now_ms, point, counts),
                }
            }
        };
        (next != self.state).then(|| {
            let transition = Transition {
                from: self.state,
                to: next,
                at_ms: now_ms,
                value: self.value,
            };
            self.state = next;
            self.since_ms = now_ms;
            transition
        })
    }

    /// The next state for datapoint `point`; `(breaching, holding)` are the M-of-N counts.
    fn judge(
        &self,
        params: &Params,
        now_ms: i64,
        point: Datapoint,
        (breaching, holding): (u32, u32),
    ) -> AlertState {
        let in_state_ms = now_ms - self.since_ms;
        if let Some(MOfN { m, .. }) = params.m_of_n {
            let recovered = holding < m;
            return match self.state {
                _ if breaching >= m && !self.state.is_firing() => AlertState::Firing,
                AlertState::Ok | AlertState::NoData | AlertState::Error | AlertState::Pending => {
                    if breaching > 0 {
                        AlertState::Pending
                    } else {
                        AlertState::Ok
                    }
                }
                AlertState::Firing if !recovered => AlertState::Firing,
                AlertState::Firing if params.keep_firing_for_ms == 0 => AlertState::Ok,
                AlertState::Firing => AlertState::Recovering,
                AlertState::Recovering if !recovered => AlertState::Firing,
                AlertState::Recovering if in_state_ms >= params.keep_firing_for_ms => {
                    AlertState::Ok
                }
                AlertState::Recovering => AlertState::Recovering,
            };
        }
        let (breach, recovered) = (point.breach, !point.holding);
        match self.state {
            AlertState::Ok | AlertState::NoData | AlertState::Error => {
                match (breach, params.for_ms == 0) {
                    (false, _) => AlertState::Ok,
                    (true, true) => AlertState::Firing,
                    (true, false) => AlertState::Pending,
                }
            }
            AlertState::Pending if !breach => AlertState::Ok,
            AlertState::Pending if in_state_ms >= params.for_ms => AlertState::Firing,
            AlertState::Pending => AlertState::Pending,
            AlertState::Firing if !recovered => AlertState::Firing,
            AlertState::Firing if params.keep_firing_for_ms == 0 => AlertState::Ok,
            AlertState::Firing => AlertState::Recovering,
            AlertState::Recovering if !recovered => AlertState::Firing,
            AlertState::Recovering if in_state_ms >= params.keep_firing_for_ms => AlertState::Ok,
            AlertState::Recovering => AlertState::Recovering,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AlertState::*;

    fn params() -> Params {
        Params {
            comparison: Comparison::Gt,
            threshold: 100.0,
            recovery_threshold: 100.0,
            for_ms: 0,
            keep_firing_for_ms: 0,
            no_data: NoDataPolicy::NoData,
            no_data_after_ms: 5_000,
            m_of_n: None,
        }
    }

    /// Runs one observation per second from t = 0 and returns the (time, state) of every
    /// transition.
    fn script(params: Params, seen: &[Observation]) -> Vec<(i64, AlertState)> {
        let mut instance = Instance::new(0);
        seen.iter()
            .enumerate()
            .filter_map(|(i, o)| {
                let now = (i as i64 + 1) * 1000;
                instance
                    .step(&params, now, o.clone())
                    .map(|t| (t.at_ms / 1000, t.to))
            })
            .collect()
    }

    fn values(v: &[f64]) -> Vec<Observation> {
        v.iter().map(|&x| Observation::Value(x)).collect()
    }

    #[test]
    fn fires_and_resolves_without_pending() {
        let t = script(params(), &values(&[50.0, 150.0, 150.0, 90.0, 90.0]));
        assert_eq!(t, vec![(2, Firing), (4, Ok)]);
    }

    #[test]
    fn flapping_without_hysteresis_fires_every_crossing() {
        let t = script(params(), &values(&[101.0, 99.0, 101.0, 99.0, 101.0]));
        assert_eq!(
            t,
            vec![(1, Firing), (2, Ok), (3, Firing), (4, Ok), (5, Firing)]
        );
    }

    #[test]
    fn hysteresis_stops_the_flapping() {
        let p = Params {
            recovery_threshold: 80.0,
            ..params()
        };
        let t = script(p, &values(&[101.0, 99.0, 101.0, 99.0, 85.0, 79.0, 99.0]));
        // Fires once; only dropping below 80 resolves it; 99 afterwards is not a breach.
        assert_eq!(t, vec![(1, Firing), (6, Ok)]);
    }

    #[test]
    fn pending_resets_when_the_condition_clears() {
        let p = Params {
            for_ms: 3_000,
            ..params()
        };
        let t = script(
            p,
            &values(&[150.0, 150.0, 50.0, 150.0, 150.0, 150.0, 150.0]),
        );
        // Pending at 1, cleared at 3, pending again at 4: fires 3 s later, at 7.
        assert_eq!(t, vec![(1, Pending), (3, Ok), (4, Pending), (7, Firing)]);
    }

    #[test]
    fn keep_firing_for_holds_a_recovered_alert() {
        let p = Params {
            keep_firing_for_ms: 2_000,
            ..params()
        };
        // Recovers at 3, breaches again at 4 (same incident, back to firing), recovers at 5
        // and stays recovered: ok at 7.
        let t = script(p, &values(&[150.0, 150.0, 50.0, 150.0, 50.0, 50.0, 50.0]));
        assert_eq!(
            t,
            vec![
                (1, Firing),
                (3, Recovering),
                (4, Firing),
                (5, Recovering),
                (7, Ok)
            ]
        );
    }

    #[test]
    fn no_data_waits_for_the_silence_then_applies_the_policy() {
        let mut seen = values(&[150.0]);
        seen.extend(std::iter::repeat_n(Observation::NoData, 6));
        seen.push(Observation::Value(50.0));
        assert_eq!(
            script(params(), &seen),
            vec![(1, Firing), (6, NoData), (8, Ok)]
        );

        let ok = Params {
            no_data: NoDataPolicy::Ok,
            ..params()
        };
        assert_eq!(script(ok, &seen[..7]), vec![(1, Firing), (6, Ok)]);

        let keep = Params {
            no_data: NoDataPolicy::KeepLast,
            ..params()
        };
        assert_eq!(script(keep, &seen[..7]), vec![(1, Firing)]);

        let alerting = Params {
            no_data: NoDataPolicy::Alerting,
            ..params()
        };
        let silent: Vec<_> = std::iter::repeat_n(Observation::NoData, 7).collect();
        assert_eq!(script(alerting, &silent), vec![(5, Firing)]);
    }

    #[test]
    fn error_and_back() {
        let seen = vec![
            Observation::Value(150.0),
            Observation::Error("metric deleted".into()),
            Observation::Value(10.0),
        ];
        assert_eq!(
            script(params(), &seen),
            vec![(1, Firing), (2, Error), (3, Ok)]
        );
    }

    #[test]
    fn which_transitions_notify() {
        let t = |from, to| Transition {
            from,
            to,
            at_ms: 0,
            value: None,
        };
        assert!(t(Ok, Firing).notifies(false, false));
        assert!(t(Pending, Firing).notifies(false, false));
        assert!(!t(Recovering, Firing).notifies(false, false));
        assert!(t(Firing, Ok).notifies(false, false));
        assert!(t(Recovering, Ok).notifies(false, false));
        assert!(!t(Pending, Ok).notifies(false, false));
        assert!(!t(Ok, Pending).notifies(false, false));
        assert!(!t(Ok, NoData).notifies(false, true));
        assert!(t(Ok, NoData).notifies(true, false));
        assert!(t(Ok, Error).notifies(false, true));
    }

    #[test]
    fn m_of_n_fires_on_enough_breaches_in_the_last_n() {
        let p = Params {
            m_of_n: Some(MOfN { m: 3, n: 5 }),
            ..params()
        };
        // Breaches at 1, 3, 5: three of the last five at 5 fires; 2 and 4 in between do not
        // clear the pending state (one or two breaches among the last five).
        let t = script(
            p,
            &values(&[
                150.0, 50.0, 150.0, 50.0, 150.0, 50.0, 50.0, 50.0, 50.0, 50.0,
            ]),
        );
        // At 6 only two of 2..=6 breach: recovered (fewer than 3 still past the threshold),
        // so it resolves; pending again while any breach stays among the last five, ok at 10.
        assert_eq!(
            t,
            vec![(1, Pending), (5, Firing), (6, Ok), (7, Pending), (10, Ok)]
        );
    }

    #[test]
    fn m_of_n_recovery_counts_the_recovery_threshold() {
        let p = Params {
            m_of_n: Some(MOfN { m: 2, n: 3 }),
            recovery_threshold: 80.0,
            ..params()
        };
        // Two breaches fire at 2; 90 is no breach but still past 80, so it keeps firing
        // until fewer than two of the last three are above 80 (at 6).
        let t = script(p, &values(&[150.0, 150.0, 90.0, 90.0, 50.0, 50.0, 50.0]));
        assert_eq!(t, vec![(1, Pending), (2, Firing), (6, Ok)]);
    }

    #[test]
    fn less_than_rules_mirror() {
        let p = Params {
            comparison: Comparison::Lt,
            threshold: 10.0,
            recovery_threshold: 20.0,
            ..params()
        };
        let t = script(p, &values(&[15.0, 5.0, 15.0, 25.0]));
        assert_eq!(t, vec![(2, Firing), (4, Ok)]);
    }
}
