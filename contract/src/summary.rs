//! The aggregates of a set of values — one stored bucket, one rolling window, a whole range —
//! and the [`Statistic`]s an alert rule or a chart picks from them.
//!
//! [`Summary`] is embedded (flattened) in the query API's points ([`crate::api::Point`]) and
//! in the live windows ([`crate::protocol::WindowStats`]); the server's export writes the
//! same aggregates as its rows. It is built from running count, sum, min and max plus a
//! histogram's quantiles with [`Summary::new`], so every producer derives rate and mean the
//! same way.

use crate::{ParseError, closed_set};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// Count, rate, sum, min, max, mean and percentiles of some values. Fields without values
/// (min, max, mean, percentiles of an empty set) are `None` and travel as `null`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Summary {
    pub count: u64,
    /// `count` over the seconds covered.
    pub rate_per_s: f64,
    pub sum: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    pub p50: Option<u64>,
    pub p90: Option<u64>,
    pub p99: Option<u64>,
    pub p999: Option<u64>,
}

/// Defines the wire form of a struct that carries one `i64` field beside a `#[serde(flatten)]`
/// [`Summary`] (`#[serde(from = "...")]` on the struct): the same JSON object, read field by
/// field. Serde's `flatten` buffers the object and decodes it again, which costs the browser's
/// wasm a generic buffered decoder per type it reaches; these structs need none.
macro_rules! summary_beside {
    ($wire:ident, $key:ident, $target:ident) => {
        #[derive(serde::Deserialize)]
        pub(crate) struct $wire {
            $key: i64,
            count: u64,
            rate_per_s: f64,
            sum: f64,
            min: Option<f64>,
            max: Option<f64>,
            mean: Option<f64>,
            p50: Option<u64>,
            p90: Option<u64>,
            p99: Option<u64>,
            p999: Option<u64>,
        }

        impl From<$wire> for $target {
            fn from(w: $wire) -> Self {
                $target {
                    $key: w.$key,
                    summary: $crate::summary::Summary {
                        count: w.count,
                        rate_per_s: w.rate_per_s,
                        sum: w.sum,
                        min: w.min,
                        max: w.max,
                        mean: w.mean,
                        p50: w.p50,
                        p90: w.p90,
                        p99: w.p99,
                        p999: w.p999,
                    },
                }
            }
        }
    };
}
pub(crate) use summary_beside;

impl Summary {
    /// The quantiles of [`Summary::p50`], `p90`, `p99` and `p999`, in that order.
    pub const QUANTILES: [f64; 4] = [0.5, 0.9, 0.99, 0.999];

    /// The summary of `count` values adding up to `sum` between `min` and `max`, over
    /// `covered_s` seconds (at least 1 is assumed), with the histogram's values at
    /// [`Summary::QUANTILES`] (`None` for an empty histogram). `min` and `max` are ignored
    /// when `count` is 0.
    pub fn new(
        count: u64,
        sum: f64,
        min: f64,
        max: f64,
        covered_s: i64,
        [p50, p90, p99, p999]: [Option<u64>; 4],
    ) -> Self {
        let some = count > 0;
        Summary {
            count,
            rate_per_s: count as f64 / covered_s.max(1) as f64,
            sum,
            min: some.then_some(min),
            max: some.then_some(max),
            mean: some.then(|| sum / count as f64),
            p50,
            p90,
            p99,
            p999,
        }
    }

    /// The value of `statistic`; `None` when it is undefined for these values (mean, min, max
    /// and percentiles of an empty set). Count, rate and sum of an empty set are 0.
    pub fn statistic(&self, statistic: Statistic) -> Option<f64> {
        if self.count == 0 && !statistic.is_additive() {
            return None;
        }
        match statistic {
            Statistic::Count => Some(self.count as f64),
            Statistic::Rate => Some(self.rate_per_s),
            Statistic::Sum => Some(self.sum),
            Statistic::Mean => self.mean,
            Statistic::Min => self.min,
            Statistic::Max => self.max,
            Statistic::P50 => self.p50.map(|v| v as f64),
            Statistic::P90 => self.p90.map(|v| v as f64),
            Statistic::P99 => self.p99.map(|v| v as f64),
            Statistic::P999 => self.p999.map(|v| v as f64),
        }
    }
}

closed_set! {
    /// One figure of a [`Summary`], as an alert rule names it.
    pub enum Statistic ("statistic") {
        Count = "count",
        Rate = "rate",
        Sum = "sum",
        Mean = "mean",
        Min = "min",
        Max = "max",
        P50 = "p50",
        P90 = "p90",
        P99 = "p99",
        P999 = "p99.9",
    }
}

impl Statistic {
    /// Count, rate and sum of an empty set are zero; the others are undefined (no data).
    pub fn is_additive(self) -> bool {
        matches!(self, Statistic::Count | Statistic::Rate | Statistic::Sum)
    }
}

impl FromStr for Statistic {
    type Err = ParseError;

    /// Also reads `rate/s` (as the UI labels it) and `p999` (as the export names the column).
    fn from_str(text: &str) -> Result<Self, ParseError> {
        let name = match text {
            "rate/s" => "rate",
            "p999" => "p99.9",
            other => other,
        };
        Self::from_name(name).ok_or_else(|| {
            ParseError::new(format!(
                "{text:?} is not a statistic; use one of {}",
                Self::names()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_and_mean_come_from_count_sum_and_coverage() {
        let s = Summary::new(4, 10.0, 1.0, 4.0, 2, [Some(2), Some(4), Some(4), Some(4)]);
        assert_eq!(
            (s.rate_per_s, s.mean, s.min, s.max),
            (2.0, Some(2.5), Some(1.0), Some(4.0))
        );
        let empty = Summary::new(0, 0.0, f64::MAX, f64::MIN, 0, [None; 4]);
        assert_eq!(empty, Summary::default());
    }

    #[test]
    fn statistics_of_an_empty_summary() {
        let empty = Summary::default();
        assert_eq!(empty.statistic(Statistic::Count), Some(0.0));
        assert_eq!(empty.statistic(Statistic::Rate), Some(0.0));
        assert_eq!(empty.statistic(Statistic::P99), None);
        assert_eq!(empty.statistic(Statistic::Mean), None);
        let s = Summary {
            count: 3,
            p999: Some(7),
            ..Summary::default()
        };
        assert_eq!(s.statistic(Statistic::P999), Some(7.0));
    }

    #[test]
    fn statistic_names() {
        assert_eq!("p99.9".parse::<Statistic>(), Ok(Statistic::P999));
        assert_eq!("p999".parse::<Statistic>(), Ok(Statistic::P999));
        assert_eq!("rate/s".parse::<Statistic>(), Ok(Statistic::Rate));
        assert_eq!(serde_json::to_value(Statistic::P999).unwrap(), "p99.9");
        assert_eq!(
            "p42".parse::<Statistic>().unwrap_err().0,
            "\"p42\" is not a statistic; use one of count, rate, sum, mean, min, max, p50, p90, p99, p99.9"
        );
    }
}
