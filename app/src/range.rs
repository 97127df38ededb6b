//! The time range a page shows, as kept in its URL: `?range=5m|15m|1h` (live windows),
//! `?range=6h|24h|7d` (history) or `?from=MS&to=MS` (a custom range, epoch milliseconds).
//!
//! Pure: parsing and printing the URL form, the range's bounds, the stored tier a chart reads
//! and how often a live view refreshes. The picker component (`components::range`) and the
//! pages use it; custom ranges are entered and shown in UTC so a shared link means the same
//! instant everywhere.

use contract::date::format_utc_minute;

/// One of the named ranges the picker offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    /// Its value in `?range=`.
    pub key: &'static str,
    pub label: &'static str,
    pub span_s: i64,
    /// Live windows follow the engine's rolling windows and refresh by themselves.
    pub live: bool,
}

/// Every named range, in picker order.
pub const PRESETS: [Preset; 6] = [
    Preset {
        key: "5m",
        label: "Last 5 min",
        span_s: 300,
        live: true,
    },
    Preset {
        key: "15m",
        label: "Last 15 min",
        span_s: 900,
        live: true,
    },
    Preset {
        key: "1h",
        label: "Last 1 h",
        span_s: 3600,
        live: true,
    },
    Preset {
        key: "6h",
        label: "Last 6 h",
        span_s: 6 * 3600,
        live: false,
    },
    Preset {
        key: "24h",
        label: "Last 24 h",
        span_s: 86_400,
        live: false,
    },
    Preset {
        key: "7d",
        label: "Last 7 d",
        span_s: 7 * 86_400,
        live: false,
    },
];

/// The range shown when the URL names none.
pub const DEFAULT_PRESET: Preset = PRESETS[0];

/// What a page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeRange {
    Preset(Preset),
    /// Fixed bounds, epoch milliseconds, `from_ms < to_ms`.
    Custom {
        from_ms: i64,
        to_ms: i64,
    },
}

impl Default for TimeRange {
    fn default() -> Self {
        TimeRange::Preset(DEFAULT_PRESET)
    }
}

impl TimeRange {
    /// Reads the URL's query values; anything unreadable falls back to the default.
    /// A valid `from`/`to` pair wins over `range`.
    pub fn from_query(range: Option<&str>, from_ms: Option<i64>, to_ms: Option<i64>) -> Self {
        if let (Some(from_ms), Some(to_ms)) = (from_ms, to_ms)
            && from_ms < to_ms
        {
            return TimeRange::Custom { from_ms, to_ms };
        }
        range
            .and_then(|key| PRESETS.iter().find(|p| p.key == key))
            .map_or_else(TimeRange::default, |p| TimeRange::Preset(*p))
    }

    /// The `(range, from, to)` query values that describe this range.
    pub fn to_query(&self) -> (Option<String>, Option<i64>, Option<i64>) {
        match self {
            TimeRange::Preset(p) => (Some(p.key.to_string()), None, None),
            TimeRange::Custom { from_ms, to_ms } => (None, Some(*from_ms), Some(*to_ms)),
        }
    }

    pub fn is_live(&self) -> bool {
        matches!(self, TimeRange::Preset(p) if p.live)
    }

    pub fn span_ms(&self) -> i64 {
        match self {
            TimeRange::Preset(p) => p.span_s * 1000,
            TimeRange::Custom { from_ms, to_ms } => to_ms - from_ms,
        }
    }

    /// Index of the live window (`MetricCard::windows`: 60 s, 5 min, 15 min, 1 h) that matches
    /// a live range.
    pub fn live_window_index(&self) -> Option<usize> {
        match self {
            TimeRange::Preset(p) if p.live => match p.span_s {
                300 => Some(1),
                900 => Some(2),
                _ => Some(3),
            },
            _ => None,
        }
    }

    /// Bounds at `now_ms` (named ranges end now).
    pub fn bounds(&self, now_ms: i64) -> (i64, i64) {
        match self {
            TimeRange::Preset(p) => (now_ms - p.span_s * 1000, now_ms),
            TimeRange::Custom { from_ms, to_ms } => (*from_ms, *to_ms),
        }
    }

    /// The stored tier a chart of this range reads (`tier=` of `/api/v1/query`): at most about
    /// 1,000 points, never below the engine's 1-s resolution.
    pub fn tier(&self) -> &'static str {
        let span_s = self.span_ms() / 1000;
        if span_s <= 15 * 60 {
            "1s"
        } else if span_s <= 3 * 86_400 {
            "1m"
        } else {
            "1h"
        }
    }

    /// How often a live view re-reads its history; `None` for fixed or historical ranges.
    pub fn refresh_ms(&self) -> Option<u32> {
        match self {
            TimeRange::Preset(p) if p.live => Some(if p.span_s <= 300 {
                2_000
            } else if p.span_s <= 900 {
                5_000
            } else {
                15_000
            }),
            _ => None,
        }
    }

    /// What the picker and page headings call it.
    pub fn label(&self) -> String {
        match self {
            TimeRange::Preset(p) => p.label.to_string(),
            TimeRange::Custom { from_ms, to_ms } => format!(
                "{} to {} UTC",
                format_utc_minute(*from_ms).replace('T', " "),
                format_utc_minute(*to_ms).replace('T', " ")
            ),
        }
    }

    /// `/api/v1/query` URL of `metric` over this range at `now_ms`.
    pub fn query_url(&self, metric: &str, now_ms: i64, bins: Option<u32>) -> String {
        let (from, to) = self.bounds(now_ms);
        let mut url = format!(
            "/api/v1/query?metric={metric}&from={from}&to={to}&tier={}",
            self.tier()
        );
        if let Some(bins) = bins {
            url.push_str(&format!("&bins={bins}"));
        }
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_round_trips() {
        for preset in PRESETS {
            let range = TimeRange::Preset(preset);
            let (r, f, t) = range.to_query();
            assert_eq!(TimeRange::from_query(r.as_deref(), f, t), range);
        }
        let custom = TimeRange::Custom {
            from_ms: 1_000,
            to_ms: 9_000,
        };
        let (r, f, t) = custom.to_query();
        assert_eq!(TimeRange::from_query(r.as_deref(), f, t), custom);
    }

    #[test]
    fn bad_queries_fall_back_to_the_default() {
        assert_eq!(
            TimeRange::from_query(None, None, None),
            TimeRange::default()
        );
        assert_eq!(
            TimeRange::from_query(Some("3y"), None, None),
            TimeRange::default()
        );
        // An empty or reversed custom range is not a range.
        assert_eq!(
            TimeRange::from_query(Some("6h"), Some(5), Some(5)),
            TimeRange::Preset(PRESETS[3])
        );
    }

    #[test]
    fn live_ranges_map_to_windows_and_refresh() {
        let by_key = |k: &str| TimeRange::from_query(Some(k), None, None);
        assert_eq!(by_key("5m").live_window_index(), Some(1));
        assert_eq!(by_key("15m").live_window_index(), Some(2));
        assert_eq!(by_key("1h").live_window_index(), Some(3));
        assert_eq!(by_key("6h").live_window_index(), None);
        assert!(by_key("1h").refresh_ms().is_some());
        assert!(by_key("24h").refresh_ms().is_none());
        assert_eq!(by_key("5m").tier(), "1s");
        assert_eq!(by_key("1h").tier(), "1m");
        assert_eq!(by_key("24h").tier(), "1m");
        assert_eq!(by_key("7d").tier(), "1h");
        assert_eq!(
            by_key("6h").query_url("lat", 100_000_000, Some(20)),
            "/api/v1/query?metric=lat&from=78400000&to=100000000&tier=1m&bins=20"
        );
    }
}
