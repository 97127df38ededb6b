//! User-built dashboards: a named grid of panels, each showing stored history of one or more
//! metrics, with a default time range, an auto refresh and label variables. The same
//! [`Dashboard`] document is the API's body (`/api/v1/dashboards`), what SQLite stores and the
//! shareable export file, so an export imported elsewhere is the same document.
//!
//! Pure: [`Dashboard::check`] validates a document (the caller says which metrics exist) and
//! names the field at fault as a path (`panels[2].queries[0].top`); [`settle`] resolves a grid
//! after a panel was added, moved or resized (by a button's [`step_panel`] or a drag's
//! [`drop_panel`]); [`dimension_index`] and [`series_pattern`] apply
//! a variable's value to a metric's dimensions.

use crate::{ParseError, closed_set, summary::Statistic};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// The document version this Streamboard writes and reads.
pub const DASHBOARD_VERSION: u32 = 1;
/// Columns of the panel grid.
pub const GRID_COLUMNS: u32 = 12;
/// Tallest panel, in grid rows.
pub const MAX_PANEL_HEIGHT: u32 = 12;
/// Lowest row a panel may start on.
pub const MAX_PANEL_ROW: u32 = 1_000;
pub const MAX_PANELS: usize = 50;
pub const MAX_QUERIES: usize = 8;
pub const MAX_STATISTICS: usize = 10;
pub const MAX_VARIABLES: usize = 8;
pub const MAX_THRESHOLDS: usize = 4;
/// Most series a query's `top` may pick.
pub const MAX_TOP: u32 = 20;
pub const MAX_NAME_CHARS: usize = 100;
pub const MAX_TEXT_CHARS: usize = 500;
/// The named ranges a dashboard may default to (the range picker's keys).
pub const RANGE_KEYS: [&str; 6] = ["5m", "15m", "1h", "6h", "24h", "7d"];

closed_set! {
    /// What a panel draws.
    pub enum PanelKind ("panel kind") {
        /// Lines over time: one per query, series and statistic, with axes, legend, tooltip
        /// and the metric's alert thresholds.
        Timeseries = "timeseries",
        /// One big number (a statistic over the range) with its unit and a sparkline,
        /// coloured by the panel's thresholds.
        Stat = "stat",
        /// Series × statistics over the range, sortable.
        Table = "table",
        /// The histogram of the metric's values over the range.
        Distribution = "distribution",
        /// The value distribution per time column.
        Heatmap = "heatmap",
    }
}

impl FromStr for PanelKind {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, ParseError> {
        Self::from_name(text).ok_or_else(|| {
            ParseError::new(format!(
                "unknown panel kind {text:?}; use one of {}",
                Self::names()
            ))
        })
    }
}

impl PanelKind {
    /// What a panel of this kind shows when its query names no statistic.
    pub fn default_statistics(self) -> &'static [Statistic] {
        match self {
            PanelKind::Timeseries | PanelKind::Stat => &[Statistic::Rate],
            PanelKind::Table => &[
                Statistic::Count,
                Statistic::Rate,
                Statistic::Mean,
                Statistic::P50,
                Statistic::P99,
            ],
            PanelKind::Distribution | PanelKind::Heatmap => &[],
        }
    }

    /// The width and height a new panel of this kind gets.
    pub fn default_size(self) -> (u32, u32) {
        match self {
            PanelKind::Stat => (3, 2),
            PanelKind::Table => (6, 4),
            _ => (6, 4),
        }
    }
}

closed_set! {
    /// How often a dashboard re-reads its panels. `auto`: as the other pages do (live ranges
    /// every few seconds, stored ranges never).
    #[derive(Default)]
    pub enum Refresh ("refresh interval") {
        #[default]
        Auto = "auto",
        Off = "off",
        S5 = "5s",
        S10 = "10s",
        S30 = "30s",
        M1 = "1m",
        M5 = "5m",
    }
    refused: ": use auto, off, 5s, 10s, 30s, 1m or 5m";
}

impl Refresh {
    /// The fixed interval, if this is one (`auto` and `off` have none).
    pub fn interval_ms(self) -> Option<u32> {
        match self {
            Refresh::Auto | Refresh::Off => None,
            Refresh::S5 => Some(5_000),
            Refresh::S10 => Some(10_000),
            Refresh::S30 => Some(30_000),
            Refresh::M1 => Some(60_000),
            Refresh::M5 => Some(300_000),
        }
    }
}

fn version_default() -> u32 {
    DASHBOARD_VERSION
}

fn range_default() -> String {
    "1h".to_string()
}

/// A dashboard document. See `docs/dashboards.md` for every field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dashboard {
    /// [`DASHBOARD_VERSION`].
    #[serde(default = "version_default")]
    pub version: u32,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The range shown when the URL names none: one of [`RANGE_KEYS`].
    #[serde(default = "range_default")]
    pub range: String,
    #[serde(default)]
    pub refresh: Refresh,
    /// Label variables: each one's chosen value filters every panel whose metric has a
    /// dimension of that name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<Variable>,
    #[serde(default)]
    pub panels: Vec<Panel>,
}

/// A label variable, e.g. `region`: matches the dimension `/region` (or `region`) of every
/// panel's metric.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    pub name: String,
    /// The value chosen when the URL names none; absent: every value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// One panel of the grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Panel {
    pub title: String,
    pub kind: PanelKind,
    /// Column (0-based, of [`GRID_COLUMNS`]) and row of the top left corner.
    pub x: u32,
    pub y: u32,
    /// Width in columns and height in rows.
    pub w: u32,
    pub h: u32,
    pub queries: Vec<PanelQuery>,
    /// Stat panels: from each threshold up the number turns amber, then red. Absent: the
    /// thresholds of the metric's alert rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thresholds: Vec<f64>,
    /// The axis unit, instead of the metric's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// What one panel query reads: a metric, its statistics, and which series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PanelQuery {
    pub metric: String,
    /// Absent: the panel kind's [`PanelKind::default_statistics`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statistics: Vec<Statistic>,
    /// One series by its labels (in dimension order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<Vec<String>>,
    /// The N series with the most records over the range, each on its own. Neither `series`
    /// nor `top`: all series merged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top: Option<u32>,
}

impl PanelQuery {
    /// The statistics shown for this query in a panel of `kind`.
    pub fn statistics_for(&self, kind: PanelKind) -> Vec<Statistic> {
        if self.statistics.is_empty() {
            kind.default_statistics().to_vec()
        } else {
            self.statistics.clone()
        }
    }
}

/// A refused document: the field as a path (`panels[2].kind`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct DashboardError {
    pub field: String,
    pub message: String,
}

impl DashboardError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        DashboardError {
            field: field.into(),
            message: message.into(),
        }
    }
}

fn text(field: String, value: &str, required: bool, max: usize) -> Result<(), DashboardError> {
    if required && value.trim().is_empty() {
        return Err(DashboardError::new(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(DashboardError::new(
            field,
            format!("at most {max} characters"),
        ));
    }
    Ok(())
}

impl Dashboard {
    /// An empty dashboard named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Dashboard {
            version: DASHBOARD_VERSION,
            name: name.into(),
            description: String::new(),
            range: range_default(),
            refresh: Refresh::Auto,
            variables: Vec::new(),
            panels: Vec::new(),
        }
    }

    /// Checks every field; `metric_exists` says which metric names are active. The first
    /// refusal is returned, naming its field.
    pub fn check(&self, metric_exists: impl Fn(&str) -> bool) -> Result<(), DashboardError> {
        if self.version != DASHBOARD_VERSION {
            return Err(DashboardError::new(
                "version",
                format!(
                    "unsupported version {}; this Streamboard reads version {DASHBOARD_VERSION}",
                    self.version
                ),
            ));
        }
        text("name".into(), &self.name, true, MAX_NAME_CHARS)?;
        text(
            "description".into(),
            &self.description,
            false,
            MAX_TEXT_CHARS,
        )?;
        if !RANGE_KEYS.contains(&self.range.as_str()) {
            return Err(DashboardError::new(
                "range",
                format!(
                    "unknown range {:?}; use one of {}",
                    self.range,
                    RANGE_KEYS.join(", ")
                ),
            ));
        }
        if self.variables.len() > MAX_VARIABLES {
            return Err(DashboardError::new(
                "variables",
                format!("at most {MAX_VARIABLES} variables"),
            ));
        }
        for (i, variable) in self.variables.iter().enumerate() {
            let field = |name: &str| format!("variables[{i}].{name}");
            let ok = !variable.name.is_empty()
                && variable.name.len() <= 64
                && variable
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !ok {
                return Err(DashboardError::new(
                    field("name"),
                    format!(
                        "{:?}: 1 to 64 letters, digits, '_' or '-' (a dimension's name)",
                        variable.name
                    ),
                ));
            }
            if self.variables[..i].iter().any(|v| v.name == variable.name) {
                return Err(DashboardError::new(
                    field("name"),
                    format!("variable {:?} is defined twice", variable.name),
                ));
            }
            if let Some(default) = &variable.default {
                text(field("default"), default, true, MAX_NAME_CHARS)?;
            }
        }
        if self.panels.len() > MAX_PANELS {
            return Err(DashboardError::new(
                "panels",
                format!("at most {MAX_PANELS} panels"),
            ));
        }
        for (i, panel) in self.panels.iter().enumerate() {
            panel.check(&format!("panels[{i}]"), &metric_exists)?;
        }
        Ok(())
    }
}

impl Panel {
    /// A new panel of `kind` reading `metric`, at the top left (see [`settle`]).
    pub fn new(kind: PanelKind, title: impl Into<String>, metric: impl Into<String>) -> Self {
        let (w, h) = kind.default_size();
        Panel {
            title: title.into(),
            kind,
            x: 0,
            y: 0,
            w,
            h,
            queries: vec![PanelQuery {
                metric: metric.into(),
                statistics: Vec::new(),
                series: None,
                top: None,
            }],
            thresholds: Vec::new(),
            unit: None,
        }
    }

    fn check(&self, at: &str, metric_exists: &impl Fn(&str) -> bool) -> Result<(), DashboardError> {
        let field = |name: &str| format!("{at}.{name}");
        text(field("title"), &self.title, false, MAX_NAME_CHARS)?;
        if !(1..=GRID_COLUMNS).contains(&self.w) {
            return Err(DashboardError::new(
                field("w"),
                format!("a width of 1 to {GRID_COLUMNS} columns"),
            ));
        }
        if self.x + self.w > GRID_COLUMNS {
            return Err(DashboardError::new(
                field("x"),
                format!(
                    "column {} with width {} passes the grid's {GRID_COLUMNS} columns",
                    self.x, self.w
                ),
            ));
        }
        if !(1..=MAX_PANEL_HEIGHT).contains(&self.h) {
            return Err(DashboardError::new(
                field("h"),
                format!("a height of 1 to {MAX_PANEL_HEIGHT} rows"),
            ));
        }
        if self.y > MAX_PANEL_ROW {
            return Err(DashboardError::new(
                field("y"),
                format!("row 0 to {MAX_PANEL_ROW}"),
            ));
        }
        let single = !matches!(self.kind, PanelKind::Timeseries | PanelKind::Table);
        if self.queries.is_empty() {
            return Err(DashboardError::new(
                field("queries"),
                "at least one query (a metric)",
            ));
        }
        if single && self.queries.len() > 1 {
            return Err(DashboardError::new(
                field("queries"),
                format!("a {} panel reads one query", self.kind),
            ));
        }
        if self.queries.len() > MAX_QUERIES {
            return Err(DashboardError::new(
                field("queries"),
                format!("at most {MAX_QUERIES} queries"),
            ));
        }
        for (j, query) in self.queries.iter().enumerate() {
            let field = |name: &str| format!("{at}.queries[{j}].{name}");
            if query.metric.trim().is_empty() {
                return Err(DashboardError::new(field("metric"), "must not be empty"));
            }
            if !metric_exists(&query.metric) {
                return Err(DashboardError::new(
                    field("metric"),
                    format!("no metric named {:?}", query.metric),
                ));
            }
            match self.kind {
                PanelKind::Distribution | PanelKind::Heatmap if !query.statistics.is_empty() => {
                    return Err(DashboardError::new(
                        field("statistics"),
                        format!("a {} panel shows the values themselves", self.kind),
                    ));
                }
                PanelKind::Stat if query.statistics.len() > 1 => {
                    return Err(DashboardError::new(
                        field("statistics"),
                        "a stat panel shows one statistic",
                    ));
                }
                _ => {}
            }
            if query.statistics.len() > MAX_STATISTICS {
                return Err(DashboardError::new(
                    field("statistics"),
                    format!("at most {MAX_STATISTICS} statistics"),
                ));
            }
            if query.series.is_some() && query.top.is_some() {
                return Err(DashboardError::new(
                    field("top"),
                    "name one series or the top N, not both",
                ));
            }
            if let Some(top) = query.top {
                if !(1..=MAX_TOP).contains(&top) {
                    return Err(DashboardError::new(
                        field("top"),
                        format!("1 to {MAX_TOP} series"),
                    ));
                }
                if single {
                    return Err(DashboardError::new(
                        field("top"),
                        format!("a {} panel shows one series (or all merged)", self.kind),
                    ));
                }
            }
        }
        if self.thresholds.len() > MAX_THRESHOLDS {
            return Err(DashboardError::new(
                field("thresholds"),
                format!("at most {MAX_THRESHOLDS} thresholds"),
            ));
        }
        if self.thresholds.iter().any(|t| !t.is_finite())
            || self.thresholds.windows(2).any(|w| w[0] >= w[1])
        {
            return Err(DashboardError::new(
                field("thresholds"),
                "finite numbers in ascending order",
            ));
        }
        if let Some(unit) = &self.unit {
            text(field("unit"), unit, false, 32)?;
        }
        Ok(())
    }

    fn overlaps(&self, other: &Panel) -> bool {
        self.x < other.x + other.w
            && other.x < self.x + self.w
            && self.y < other.y + other.h
            && other.y < self.y + self.h
    }
}

/// Resolves the grid after panel `moved` (an index) was added, moved or resized: every panel
/// is kept inside the columns, panels it now overlaps are pushed down below it, and then every
/// panel floats up as far as it can without overlapping one above it (as Grafana's grid does).
/// The moved panel keeps its place against the others; the order of `panels` is unchanged.
pub fn settle(panels: &mut [Panel], moved: Option<usize>) {
    for panel in panels.iter_mut() {
        panel.w = panel.w.clamp(1, GRID_COLUMNS);
        panel.h = panel.h.clamp(1, MAX_PANEL_HEIGHT);
        panel.x = panel.x.min(GRID_COLUMNS - panel.w);
        panel.y = panel.y.min(MAX_PANEL_ROW);
    }
    // Place the moved panel first, then the others top to bottom; each goes down until it
    // overlaps nothing placed before it.
    let mut order: Vec<usize> = (0..panels.len()).filter(|i| Some(*i) != moved).collect();
    order.sort_by_key(|&i| (panels[i].y, panels[i].x, i));
    if let Some(m) = moved.filter(|m| *m < panels.len()) {
        order.insert(0, m);
    }
    let mut placed: Vec<usize> = Vec::with_capacity(panels.len());
    for &i in &order {
        while let Some(below) = placed
            .iter()
            .filter(|&&p| panels[p].overlaps(&panels[i]))
            .map(|&p| panels[p].y + panels[p].h)
            .max()
        {
            panels[i].y = below;
        }
        placed.push(i);
    }
    // Gravity: top to bottom, each panel rises while the row above it is free.
    let mut order: Vec<usize> = (0..panels.len()).collect();
    order.sort_by_key(|&i| (panels[i].y, panels[i].x, i));
    let mut placed: Vec<usize> = Vec::with_capacity(panels.len());
    for &i in &order {
        while panels[i].y > 0 {
            let mut up = panels[i].clone();
            up.y -= 1;
            if placed.iter().any(|&p| panels[p].overlaps(&up)) {
                break;
            }
            panels[i].y -= 1;
        }
        placed.push(i);
    }
}

/// A step of a panel on the grid (the dashboard's move and resize buttons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Left,
    Right,
    /// Above the nearest panel above it in its columns (they swap).
    Up,
    /// Below the nearest panel below it in its columns (they swap).
    Down,
    Narrower,
    Wider,
    Shorter,
    Taller,
}

/// Applies `step` to panel `i` and settles the grid (see [`settle`]).
pub fn step_panel(panels: &mut [Panel], i: usize, step: Step) {
    let Some(panel) = panels.get(i).cloned() else {
        return;
    };
    let columns = |other: &Panel| other.x < panel.x + panel.w && panel.x < other.x + other.w;
    let mut moved = panel.clone();
    match step {
        Step::Left => moved.x = panel.x.saturating_sub(1),
        Step::Right => moved.x = (panel.x + 1).min(GRID_COLUMNS - panel.w.min(GRID_COLUMNS)),
        Step::Up => {
            let above = panels
                .iter()
                .enumerate()
                .filter(|(j, o)| *j != i && columns(o) && o.y < panel.y)
                .map(|(_, o)| o.y)
                .max();
            moved.y = above.unwrap_or(0);
        }
        Step::Down => {
            let below = panels
                .iter()
                .enumerate()
                .filter(|(j, o)| {
                    *j != i && columns(o) && o.y >= panel.y && o.y + o.h > panel.y + panel.h
                })
                .min_by_key(|(_, o)| o.y)
                .map(|(_, o)| o.y + o.h);
            moved.y = below.unwrap_or(panel.y + 1);
        }
        Step::Narrower => moved.w = panel.w.saturating_sub(1).max(1),
        Step::Wider => moved.w = (panel.w + 1).min(GRID_COLUMNS),
        Step::Shorter => moved.h = panel.h.saturating_sub(1).max(1),
        Step::Taller => moved.h = (panel.h + 1).min(MAX_PANEL_HEIGHT),
    }
    panels[i] = moved;
    settle(panels, Some(i));
}

/// A panel's place on the grid: top left column and row, width in columns, height in rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl Place {
    pub fn of(panel: &Panel) -> Self {
        Place {
            x: panel.x,
            y: panel.y,
            w: panel.w,
            h: panel.h,
        }
    }
}

/// Puts panel `i` where a drag dropped it (`to`, brought inside the grid) and settles the grid
/// as the buttons do (see [`settle`]): panels it now overlaps move below it and every panel
/// floats up. Dragged down onto a panel, the dragged one takes its place when that panel fits
/// just above the drop (where the dragged one came from), so the two swap as in Grafana;
/// otherwise that panel too goes below.
pub fn drop_panel(panels: &mut [Panel], i: usize, to: Place) {
    let Some(from) = panels.get(i).map(Place::of) else {
        return;
    };
    let dropped = &mut panels[i];
    dropped.w = to.w.clamp(1, GRID_COLUMNS);
    dropped.h = to.h.clamp(1, MAX_PANEL_HEIGHT);
    dropped.x = to.x.min(GRID_COLUMNS - dropped.w);
    dropped.y = to.y.min(MAX_PANEL_ROW);
    if panels[i].y > from.y {
        let mut hit: Vec<usize> = (0..panels.len())
            .filter(|&j| j != i && panels[j].overlaps(&panels[i]))
            .collect();
        hit.sort_by_key(|&j| (panels[j].y, panels[j].x));
        for j in hit {
            let Some(y) = panels[i].y.checked_sub(panels[j].h) else {
                continue;
            };
            let mut above = panels[j].clone();
            above.y = y;
            let free = panels
                .iter()
                .enumerate()
                .all(|(k, other)| k == j || !other.overlaps(&above));
            if free {
                panels[j].y = y;
            }
        }
    }
    settle(panels, Some(i));
}

/// Where a new `w` × `h` panel goes: the first free place, row by row, left to right.
pub fn free_spot(panels: &[Panel], w: u32, h: u32) -> (u32, u32) {
    let w = w.clamp(1, GRID_COLUMNS);
    let mut probe = Panel::new(PanelKind::Stat, "", "");
    (probe.w, probe.h) = (w, h.max(1));
    for y in 0..=grid_rows(panels) {
        for x in 0..=GRID_COLUMNS - w {
            (probe.x, probe.y) = (x, y);
            if !panels.iter().any(|p| p.overlaps(&probe)) {
                return (x, y);
            }
        }
    }
    (0, grid_rows(panels))
}

/// The row below every panel (the grid's height in rows).
pub fn grid_rows(panels: &[Panel]) -> u32 {
    panels.iter().map(|p| p.y + p.h).max().unwrap_or(0)
}

/// Where a variable named `variable` sits among a metric's dimensions: a dimension matches
/// when it is the name itself or a JSON Pointer whose last token is the name (`/region`,
/// `/geo/region`).
pub fn dimension_index(dimensions: &[String], variable: &str) -> Option<usize> {
    dimensions
        .iter()
        .position(|d| d == variable || d.rsplit('/').next().is_some_and(|last| last == variable))
}

/// The series pattern of a query for the chosen variable values: one entry per dimension,
/// `None` for any value. A query's own `series` fixes every dimension; a chosen variable
/// overrides its dimension.
pub fn series_pattern(
    dimensions: &[String],
    series: Option<&[String]>,
    chosen: &[(String, String)],
) -> Vec<Option<String>> {
    let mut pattern: Vec<Option<String>> = match series {
        Some(labels) => labels.iter().cloned().map(Some).collect(),
        None => vec![None; dimensions.len()],
    };
    for (name, value) in chosen {
        if let Some(i) = dimension_index(dimensions, name)
            && let Some(slot) = pattern.get_mut(i)
        {
            *slot = Some(value.clone());
        }
    }
    pattern
}

/// Whether `labels` match `pattern` (`None` matches any value).
pub fn pattern_matches(pattern: &[Option<String>], labels: &[String]) -> bool {
    pattern.len() == labels.len()
        && pattern
            .iter()
            .zip(labels)
            .all(|(p, l)| p.as_ref().is_none_or(|p| p == l))
}

/// One dashboard as listed by `GET /api/v1/dashboards`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DashboardSummary {
    pub id: i64,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub panels: usize,
    pub updated_ms: i64,
}

/// `GET /api/v1/dashboards` body, by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DashboardList {
    pub dashboards: Vec<DashboardSummary>,
}

/// `GET /api/v1/dashboards/{id}` (and `PUT`) body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DashboardInfo {
    pub id: i64,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub dashboard: Dashboard,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn exists(name: &str) -> bool {
        name.starts_with("builtin:") || name == "latency"
    }

    fn sample() -> Dashboard {
        serde_json::from_value(json!({
            "name": "Checkout",
            "range": "6h",
            "refresh": "30s",
            "variables": [{"name": "region", "default": "eu"}],
            "panels": [
                {"title": "Latency", "kind": "timeseries", "x": 0, "y": 0, "w": 8, "h": 4,
                 "queries": [{"metric": "latency", "statistics": ["p50", "p99"], "top": 3}]},
                {"title": "Rate", "kind": "stat", "x": 8, "y": 0, "w": 4, "h": 2,
                 "queries": [{"metric": "latency", "statistics": ["rate"]}], "thresholds": [10, 20]},
                {"title": "Values", "kind": "heatmap", "x": 0, "y": 4, "w": 12, "h": 4,
                 "queries": [{"metric": "latency", "series": ["eu"]}]}
            ]
        }))
        .unwrap()
    }

    fn refused(dashboard: &Dashboard) -> (String, String) {
        let e = dashboard.check(exists).unwrap_err();
        (e.field, e.message)
    }

    #[test]
    fn a_good_document_passes_and_keeps_its_wire_form() {
        let d = sample();
        assert_eq!(d.check(exists), Ok(()));
        assert_eq!(d.version, 1);
        assert_eq!(d.refresh, Refresh::S30);
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(
            json["panels"][0]["queries"][0]["statistics"],
            json!(["p50", "p99"])
        );
        assert!(json["panels"][2]["queries"][0].get("top").is_none());
        assert_eq!(serde_json::from_value::<Dashboard>(json).unwrap(), d);
        // Defaults of a minimal document.
        let minimal: Dashboard = serde_json::from_value(json!({"name": "x"})).unwrap();
        assert_eq!(minimal, Dashboard::new("x"));
        assert_eq!(minimal.check(exists), Ok(()));
    }

    #[test]
    fn unknown_kinds_and_fields_are_refused_by_reading() {
        let e = serde_json::from_value::<Dashboard>(json!({"name": "x", "panels": [
            {"title": "", "kind": "pie", "x": 0, "y": 0, "w": 1, "h": 1, "queries": []}]}))
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("unknown panel kind \"pie\"; use one of timeseries, stat"),
            "{e}"
        );
        assert!(serde_json::from_value::<Dashboard>(json!({"name": "x", "colour": 1})).is_err());
        assert_eq!(
            "1h".parse::<Refresh>().unwrap_err().0,
            "\"1h\": use auto, off, 5s, 10s, 30s, 1m or 5m"
        );
    }

    #[test]
    fn each_refusal_names_its_field() {
        type Break = Box<dyn Fn(&mut Dashboard)>;
        let cases: Vec<(Break, &str, &str)> = vec![
            (
                Box::new(|d| d.version = 2),
                "version",
                "unsupported version 2",
            ),
            (
                Box::new(|d| d.name = " ".into()),
                "name",
                "must not be empty",
            ),
            (
                Box::new(|d| d.range = "3y".into()),
                "range",
                "unknown range \"3y\"",
            ),
            (
                Box::new(|d| d.variables[0].name = "a b".into()),
                "variables[0].name",
                "letters, digits",
            ),
            (
                Box::new(|d| d.variables.push(d.variables[0].clone())),
                "variables[1].name",
                "defined twice",
            ),
            (
                Box::new(|d| d.panels[1].w = 0),
                "panels[1].w",
                "a width of 1 to 12",
            ),
            (
                Box::new(|d| d.panels[1].x = 9),
                "panels[1].x",
                "passes the grid",
            ),
            (
                Box::new(|d| d.panels[0].h = 13),
                "panels[0].h",
                "a height of 1 to 12",
            ),
            (
                Box::new(|d| d.panels[2].queries.clear()),
                "panels[2].queries",
                "at least one",
            ),
            (
                Box::new(|d| {
                    let q = d.panels[1].queries[0].clone();
                    d.panels[1].queries.push(q);
                }),
                "panels[1].queries",
                "a stat panel reads one query",
            ),
            (
                Box::new(|d| d.panels[0].queries[0].metric = "nope".into()),
                "panels[0].queries[0].metric",
                "no metric named \"nope\"",
            ),
            (
                Box::new(|d| d.panels[0].queries[0].top = Some(21)),
                "panels[0].queries[0].top",
                "1 to 20 series",
            ),
            (
                Box::new(|d| d.panels[0].queries[0].series = Some(vec!["eu".into()])),
                "panels[0].queries[0].top",
                "not both",
            ),
            (
                Box::new(|d| d.panels[2].queries[0].statistics = vec![Statistic::P99]),
                "panels[2].queries[0].statistics",
                "values themselves",
            ),
            (
                Box::new(|d| d.panels[1].queries[0].statistics.push(Statistic::Mean)),
                "panels[1].queries[0].statistics",
                "one statistic",
            ),
            (
                Box::new(|d| d.panels[1].thresholds = vec![20.0, 10.0]),
                "panels[1].thresholds",
                "ascending",
            ),
            (
                Box::new(|d| d.panels[1].queries[0].top = Some(2)),
                "panels[1].queries[0].top",
                "one series",
            ),
        ];
        for (break_it, field, message) in cases {
            let mut d = sample();
            break_it(&mut d);
            let (f, m) = refused(&d);
            assert_eq!(f, field, "{m}");
            assert!(m.contains(message), "{field}: {m}");
        }
    }

    fn at(x: u32, y: u32, w: u32, h: u32) -> Panel {
        let mut p = Panel::new(PanelKind::Stat, "", "m");
        (p.x, p.y, p.w, p.h) = (x, y, w, h);
        p
    }

    fn places(panels: &[Panel]) -> Vec<(u32, u32, u32, u32)> {
        panels.iter().map(|p| (p.x, p.y, p.w, p.h)).collect()
    }

    #[test]
    fn settling_pushes_overlapped_panels_down_and_floats_gaps_up() {
        // B is moved onto A: A goes below B.
        let mut panels = vec![at(0, 0, 6, 2), at(0, 0, 6, 3)];
        settle(&mut panels, Some(1));
        assert_eq!(places(&panels), vec![(0, 3, 6, 2), (0, 0, 6, 3)]);
        // A gap above a panel closes.
        let mut panels = vec![at(0, 5, 4, 2), at(4, 9, 4, 2)];
        settle(&mut panels, None);
        assert_eq!(places(&panels), vec![(0, 0, 4, 2), (4, 0, 4, 2)]);
        // Out-of-grid sizes are brought inside.
        let mut panels = vec![at(10, 0, 6, 0)];
        settle(&mut panels, Some(0));
        assert_eq!(places(&panels), vec![(6, 0, 6, 1)]);
        // A growing panel pushes the one below it, which keeps clear of it.
        let mut panels = vec![at(0, 0, 12, 4), at(0, 2, 6, 2)];
        settle(&mut panels, Some(0));
        assert_eq!(places(&panels), vec![(0, 0, 12, 4), (0, 4, 6, 2)]);
        assert_eq!(grid_rows(&panels), 6);
        // No two panels overlap after settling, whatever the input.
        let mut panels: Vec<Panel> = (0..8)
            .map(|i| at(i % 5, i % 3, 4 + i % 3, 1 + i % 4))
            .collect();
        settle(&mut panels, Some(3));
        for (i, a) in panels.iter().enumerate() {
            for b in &panels[i + 1..] {
                assert!(!a.overlaps(b), "{:?}", places(&panels));
            }
        }
    }

    #[test]
    fn new_panels_take_the_first_free_place() {
        assert_eq!(free_spot(&[], 6, 4), (0, 0));
        let panels = vec![at(0, 0, 6, 4)];
        assert_eq!(free_spot(&panels, 3, 2), (6, 0));
        assert_eq!(free_spot(&panels, 8, 2), (0, 4));
        let panels = vec![at(0, 0, 6, 4), at(6, 0, 3, 2)];
        assert_eq!(free_spot(&panels, 3, 2), (9, 0));
        assert_eq!(free_spot(&panels, 6, 4), (6, 2));
    }

    #[test]
    fn steps_move_swap_and_resize() {
        // A above B in the same columns; C beside them.
        let mut panels = vec![at(0, 0, 6, 4), at(0, 4, 6, 2), at(6, 0, 6, 3)];
        step_panel(&mut panels, 1, Step::Up);
        assert_eq!(
            places(&panels),
            vec![(0, 2, 6, 4), (0, 0, 6, 2), (6, 0, 6, 3)]
        );
        step_panel(&mut panels, 1, Step::Down);
        assert_eq!(
            places(&panels),
            vec![(0, 0, 6, 4), (0, 4, 6, 2), (6, 0, 6, 3)]
        );
        // Nothing below: a step down floats back up.
        step_panel(&mut panels, 2, Step::Down);
        assert_eq!(panels[2].y, 0);
        step_panel(&mut panels, 2, Step::Right);
        assert_eq!(panels[2].x, 6, "already at the right edge");
        step_panel(&mut panels, 2, Step::Left);
        assert_eq!(panels[2].x, 5);
        // Overlapping A now: A is pushed below C.
        assert_eq!(places(&panels)[0], (0, 3, 6, 4));
        step_panel(&mut panels, 1, Step::Wider);
        step_panel(&mut panels, 1, Step::Taller);
        assert_eq!((panels[1].w, panels[1].h), (7, 3));
        step_panel(&mut panels, 1, Step::Shorter);
        step_panel(&mut panels, 1, Step::Narrower);
        assert_eq!((panels[1].w, panels[1].h), (6, 2));
        for (i, a) in panels.iter().enumerate() {
            for b in &panels[i + 1..] {
                assert!(!a.overlaps(b), "{:?}", places(&panels));
            }
        }
    }

    fn no_overlaps(panels: &[Panel]) {
        for (i, a) in panels.iter().enumerate() {
            for b in &panels[i + 1..] {
                assert!(!a.overlaps(b), "{:?}", places(panels));
            }
        }
    }

    fn to(x: u32, y: u32, w: u32, h: u32) -> Place {
        Place { x, y, w, h }
    }

    #[test]
    fn dropped_panels_take_their_cell_and_the_grid_settles() {
        // A and B side by side, C under A.
        let start = vec![at(0, 0, 6, 2), at(6, 0, 6, 2), at(0, 2, 6, 3)];
        // B dropped into the free cells under itself floats back up.
        let mut panels = start.clone();
        drop_panel(&mut panels, 1, to(6, 4, 6, 2));
        assert_eq!(places(&panels), places(&start));
        // C dropped beside A at row 0: B goes below C, C keeps its cell.
        let mut panels = start.clone();
        drop_panel(&mut panels, 2, to(6, 0, 6, 3));
        assert_eq!(
            places(&panels),
            vec![(0, 0, 6, 2), (6, 3, 6, 2), (6, 0, 6, 3)]
        );
        // A dragged down onto C: C fits where A was, so they swap.
        let mut panels = start.clone();
        drop_panel(&mut panels, 0, to(0, 3, 6, 2));
        assert_eq!(
            places(&panels),
            vec![(0, 3, 6, 2), (6, 0, 6, 2), (0, 0, 6, 3)]
        );
        // Dragged down less than C's height: C stays, A settles back.
        let mut panels = start.clone();
        drop_panel(&mut panels, 0, to(0, 1, 6, 2));
        assert_eq!(places(&panels), places(&start));
        // A dropped past the right edge is brought inside; it lands on B, which goes below.
        let mut panels = start.clone();
        drop_panel(&mut panels, 0, to(11, 0, 6, 2));
        assert_eq!(
            places(&panels),
            vec![(6, 0, 6, 2), (6, 2, 6, 2), (0, 0, 6, 3)]
        );
        no_overlaps(&panels);
    }

    #[test]
    fn resized_panels_push_their_neighbours_down() {
        let start = vec![at(0, 0, 6, 2), at(6, 0, 6, 2), at(0, 2, 6, 3)];
        // A made 8 wide and 3 high: B (beside it) and C (under it) go below.
        let mut panels = start.clone();
        drop_panel(&mut panels, 0, to(0, 0, 8, 3));
        assert_eq!(
            places(&panels),
            vec![(0, 0, 8, 3), (6, 3, 6, 2), (0, 3, 6, 3)]
        );
        // Sizes are kept within 1-12 columns and rows and inside the grid.
        let mut panels = start.clone();
        drop_panel(&mut panels, 1, to(6, 0, 0, 40));
        assert_eq!(places(&panels)[1], (6, 0, 1, 12));
        let mut panels = start.clone();
        drop_panel(&mut panels, 1, to(6, 0, 20, 1));
        assert_eq!(places(&panels)[1], (0, 0, 12, 1));
        no_overlaps(&panels);
        // An index out of range changes nothing.
        let mut panels = start.clone();
        drop_panel(&mut panels, 7, to(0, 0, 1, 1));
        assert_eq!(panels, start);
    }

    #[test]
    fn any_drop_leaves_no_overlaps() {
        let mut start: Vec<Panel> = (0..7)
            .map(|i| at((i * 5) % 9, i % 4, 3 + i % 4, 1 + i % 3))
            .collect();
        settle(&mut start, None);
        for i in 0..start.len() {
            for x in 0..12 {
                for y in 0..10 {
                    for (w, h) in [(1, 1), (4, 2), (12, 3)] {
                        let mut panels = start.clone();
                        drop_panel(&mut panels, i, to(x, y, w, h));
                        no_overlaps(&panels);
                        assert_eq!(panels.len(), start.len());
                        assert_eq!((panels[i].w, panels[i].h), (w, h));
                    }
                }
            }
        }
    }

    #[test]
    fn variables_pick_their_dimension() {
        let dims = vec!["/region".to_string(), "/path".to_string()];
        assert_eq!(dimension_index(&dims, "region"), Some(0));
        assert_eq!(dimension_index(&dims, "path"), Some(1));
        assert_eq!(dimension_index(&dims, "reg"), None);
        let chosen = vec![("region".to_string(), "eu".to_string())];
        let pattern = series_pattern(&dims, None, &chosen);
        assert_eq!(pattern, vec![Some("eu".to_string()), None]);
        assert!(pattern_matches(&pattern, &["eu".into(), "/cart".into()]));
        assert!(!pattern_matches(&pattern, &["us".into(), "/cart".into()]));
        assert!(!pattern_matches(&pattern, &["eu".into()]));
        // A query's own series is overridden at the variable's dimension only.
        let own = ["us".to_string(), "/a".to_string()];
        assert_eq!(
            series_pattern(&dims, Some(&own), &chosen),
            vec![Some("eu".to_string()), Some("/a".to_string())]
        );
        // A metric without the dimension is not filtered.
        assert_eq!(
            series_pattern(&[], None, &chosen),
            Vec::<Option<String>>::new()
        );
    }
}
