//! Metric definitions: the serde shape shared by the TOML `[[metrics]]` tables and the JSON API,
//! their validation (every refusal names the field and the reason) and their compiled form used
//! on the hot path.
//!
//! Field paths are JSON Pointers (RFC 6901, `/latency_ms`). For `logfmt` and `regex` records a
//! path has one segment naming the key or the named capture (`/duration`).

use super::{
    field::Pointer,
    filter::{self, Filter},
};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Most dimensions (group-by fields) a metric may have.
pub const MAX_DIMENSIONS: usize = 3;

/// A metric definition as written by a person (TOML or JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricDefinition {
    pub name: String,
    pub stream: String,
    /// How records are decoded: `"json"` (default), `"logfmt"` or `{ "regex": "(?P<name>…)" }`.
    #[serde(default)]
    pub format: RecordFormat,
    /// Field path of the measured value; none counts records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Predicate a record must satisfy, e.g. `/status >= 500 and /region = "eu"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// Up to three field paths to group by.
    #[serde(default)]
    pub dimensions: Vec<String>,
    /// `ms`, `s`, `bytes`, `count`, `percent` or any free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Event time source; none means the Kinesis arrival time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<TimeField>,
    /// Histogram range and precision.
    #[serde(default)]
    pub histogram: HistogramSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordFormat {
    #[default]
    Json,
    Logfmt,
    /// Plain text matched by a regular expression with named captures.
    Regex(String),
}

/// Where a record's event time comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeField {
    pub field: String,
    pub format: TimeFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeFormat {
    Rfc3339,
    EpochS,
    EpochMs,
}

/// HdrHistogram bounds. Values are recorded rounded to integers and clamped to the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistogramSpec {
    pub lowest: u64,
    pub highest: u64,
    pub significant_figures: u8,
}

impl Default for HistogramSpec {
    fn default() -> Self {
        Self {
            lowest: 1,
            highest: 3_600_000,
            significant_figures: 2,
        }
    }
}

/// A refused definition: which field, and why. Rendered by the API as a 422.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct DefinitionError {
    pub field: String,
    pub message: String,
}

impl DefinitionError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

/// A validated definition, ready for the hot path.
#[derive(Debug, Clone)]
pub struct CompiledMetric {
    pub definition: MetricDefinition,
    pub format: CompiledFormat,
    pub value: Option<Pointer>,
    pub filter: Option<Filter>,
    pub dimensions: Vec<Pointer>,
    pub time: Option<(Pointer, TimeFormat)>,
}

impl CompiledMetric {
    /// Every field path the metric reads.
    pub fn paths(&self) -> impl Iterator<Item = &Pointer> {
        self.value
            .iter()
            .chain(&self.dimensions)
            .chain(self.time.iter().map(|(p, _)| p))
            .chain(self.filter.iter().flat_map(|f| f.paths()))
    }
}

#[derive(Debug, Clone)]
pub enum CompiledFormat {
    Json,
    Logfmt,
    Regex(regex::Regex),
}

impl MetricDefinition {
    /// Validates and compiles. `known_streams`, when given, must contain `stream`;
    /// `taken_names` are the names of the other definitions (duplicates are refused).
    pub fn compile(
        &self,
        known_streams: Option<&HashSet<String>>,
        taken_names: &HashSet<String>,
    ) -> Result<CompiledMetric, DefinitionError> {
        let name = self.name.trim();
        if name.is_empty() || name.len() > 100 {
            return Err(DefinitionError::new("name", "must be 1 to 100 characters"));
        }
        if name != self.name
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
        {
            return Err(DefinitionError::new(
                "name",
                "may contain only letters, digits, '_', '-', '.' and ':'",
            ));
        }
        if name.starts_with("builtin:") {
            return Err(DefinitionError::new(
                "name",
                "names starting with 'builtin:' are reserved for built-in metrics",
            ));
        }
        if taken_names.contains(name) {
            return Err(DefinitionError::new(
                "name",
                format!("a metric named {name:?} already exists"),
            ));
        }
        if self.stream.is_empty() {
            return Err(DefinitionError::new("stream", "must not be empty"));
        }
        if let Some(streams) = known_streams
            && !streams.contains(&self.stream)
        {
            return Err(DefinitionError::new(
                "stream",
                format!("unknown stream {:?}", self.stream),
            ));
        }
        let format = match &self.format {
            RecordFormat::Json => CompiledFormat::Json,
            RecordFormat::Logfmt => CompiledFormat::Logfmt,
            RecordFormat::Regex(pattern) => {
                let regex = regex::Regex::new(pattern)
                    .map_err(|e| DefinitionError::new("format", format!("bad regex: {e}")))?;
                if regex.capture_names().flatten().next().is_none() {
                    return Err(DefinitionError::new(
                        "format",
                        "the regex has no named capture group such as (?P<latency>\\d+)",
                    ));
                }
                CompiledFormat::Regex(regex)
            }
        };
        let check_path = |field: &str, text: &str| -> Result<Pointer, DefinitionError> {
            let pointer = Pointer::parse(text).map_err(|m| DefinitionError::new(field, m))?;
            match &format {
                CompiledFormat::Json => {}
                CompiledFormat::Logfmt => {
                    if pointer.flat_key().is_none() {
                        return Err(DefinitionError::new(
                            field,
                            format!(
                                "{text:?}: logfmt records are flat; use one segment, e.g. /duration"
                            ),
                        ));
                    }
                }
                CompiledFormat::Regex(regex) => {
                    let key = pointer.flat_key().unwrap_or_default();
                    if !regex.capture_names().flatten().any(|n| n == key) {
                        return Err(DefinitionError::new(
                            field,
                            format!("{text:?} names no capture group of the regex"),
                        ));
                    }
                }
            }
            Ok(pointer)
        };
        let value = self
            .value
            .as_deref()
            .map(|v| check_path("value", v))
            .transpose()?;
        if self.dimensions.len() > MAX_DIMENSIONS {
            return Err(DefinitionError::new(
                "dimensions",
                format!(
                    "at most {MAX_DIMENSIONS} dimensions (got {})",
                    self.dimensions.len()
                ),
            ));
        }
        let dimensions = self
            .dimensions
            .iter()
            .map(|d| check_path("dimensions", d))
            .collect::<Result<Vec<_>, _>>()?;
        let time = self
            .time
            .as_ref()
            .map(|t| check_path("time", &t.field).map(|p| (p, t.format)))
            .transpose()?;
        let filter = match &self.filter {
            None => None,
            Some(text) => {
                let parsed = filter::parse(text)
                    .map_err(|e| DefinitionError::new("filter", e.to_string()))?;
                for pointer in parsed.paths() {
                    check_path("filter", &pointer.text)?;
                }
                Some(parsed)
            }
        };
        let h = self.histogram;
        if h.significant_figures > 5 {
            return Err(DefinitionError::new(
                "histogram",
                "significant_figures must be 0 to 5",
            ));
        }
        if h.lowest < 1 || h.highest < h.lowest.saturating_mul(2) {
            return Err(DefinitionError::new(
                "histogram",
                "need lowest >= 1 and highest >= 2 * lowest",
            ));
        }
        if hdrhistogram::Histogram::<u64>::new_with_bounds(
            h.lowest,
            h.highest,
            h.significant_figures,
        )
        .is_err()
        {
            return Err(DefinitionError::new(
                "histogram",
                "this range and precision cannot be tracked",
            ));
        }
        if let Some(unit) = &self.unit
            && unit.len() > 32
        {
            return Err(DefinitionError::new("unit", "at most 32 characters"));
        }
        Ok(CompiledMetric {
            definition: self.clone(),
            format,
            value,
            filter,
            dimensions,
            time,
        })
    }
}

/// Definitions for the embedded demo's streams (`clickstream`, `logs`, `market`).
pub fn demo_definitions() -> Vec<MetricDefinition> {
    let event_time = || {
        Some(TimeField {
            field: "/event_time".into(),
            format: TimeFormat::Rfc3339,
        })
    };
    let def = |name: &str,
               stream: &str,
               value: Option<&str>,
               filter: Option<&str>,
               dims: &[&str],
               unit: &str| {
        MetricDefinition {
            name: name.into(),
            stream: stream.into(),
            format: RecordFormat::Json,
            value: value.map(Into::into),
            filter: filter.map(Into::into),
            dimensions: dims.iter().map(|d| d.to_string()).collect(),
            unit: Some(unit.into()),
            time: event_time(),
            histogram: HistogramSpec::default(),
        }
    };
    vec![
        def(
            "request_latency",
            "clickstream",
            Some("/latency_ms"),
            None,
            &["/region", "/path"],
            "ms",
        ),
        def(
            "response_bytes",
            "clickstream",
            Some("/bytes"),
            None,
            &["/region"],
            "bytes",
        ),
        def(
            "server_errors",
            "clickstream",
            None,
            Some("/status >= 500"),
            &["/region", "/path"],
            "count",
        ),
        def("requests", "clickstream", None, None, &["/status"], "count"),
        def(
            "log_errors",
            "logs",
            None,
            Some(r#"/level = "ERROR""#),
            &["/service"],
            "count",
        ),
        def("log_lines", "logs", None, None, &["/level"], "count"),
        def(
            "log_duration",
            "logs",
            Some("/duration_ms"),
            Some("exists /duration_ms"),
            &["/service"],
            "ms",
        ),
        def(
            "price",
            "market",
            Some("/price"),
            None,
            &["/symbol"],
            "price",
        ),
        def(
            "volume",
            "market",
            Some("/volume"),
            None,
            &["/symbol"],
            "count",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> MetricDefinition {
        demo_definitions().remove(0)
    }

    fn refuse(def: &MetricDefinition) -> DefinitionError {
        let streams: HashSet<String> = ["clickstream".to_string()].into();
        def.compile(Some(&streams), &HashSet::new()).unwrap_err()
    }

    #[test]
    fn demo_definitions_compile() {
        for def in demo_definitions() {
            def.compile(None, &HashSet::new()).unwrap();
        }
    }

    #[test]
    fn toml_and_json_share_field_names() {
        let toml_text = r#"
            name = "lat"
            stream = "s"
            value = "/latency_ms"
            filter = '/status >= 500'
            dimensions = ["/region"]
            unit = "ms"
            time = { field = "/event_time", format = "epoch_ms" }
            histogram = { lowest = 1, highest = 60000, significant_figures = 3 }
        "#;
        let from_toml: MetricDefinition = toml::from_str(toml_text).unwrap();
        let json = serde_json::to_string(&from_toml).unwrap();
        let from_json: MetricDefinition = serde_json::from_str(&json).unwrap();
        assert_eq!(from_toml, from_json);
        let regex: MetricDefinition =
            serde_json::from_str(r#"{"name":"x","stream":"s","format":{"regex":"(?P<a>\\d+)"}}"#)
                .unwrap();
        assert_eq!(regex.format, RecordFormat::Regex("(?P<a>\\d+)".into()));
    }

    #[test]
    fn refusals_name_the_field() {
        let mut d = base();
        d.stream = "nope".into();
        assert_eq!(refuse(&d).field, "stream");
        let mut d = base();
        d.value = Some("latency".into());
        assert_eq!(refuse(&d).field, "value");
        let mut d = base();
        d.format = RecordFormat::Regex("(unclosed".into());
        let e = refuse(&d);
        assert_eq!(e.field, "format");
        assert!(e.message.contains("bad regex"), "{e}");
        let mut d = base();
        d.filter = Some("/a = ".into());
        let e = refuse(&d);
        assert_eq!(e.field, "filter");
        assert!(e.message.contains("position"), "{e}");
        let mut d = base();
        d.dimensions = vec!["/a".into(), "/b".into(), "/c".into(), "/d".into()];
        assert_eq!(refuse(&d).field, "dimensions");
        let d = base();
        let taken: HashSet<String> = [d.name.clone()].into();
        assert_eq!(d.compile(None, &taken).unwrap_err().field, "name");
        let mut d = base();
        d.format = RecordFormat::Regex(r"(?P<ms>\d+)".into());
        d.value = Some("/latency".into());
        d.dimensions.clear();
        d.time = None;
        assert_eq!(refuse(&d).field, "value");
    }

    #[test]
    fn pointers_unescape() {
        let p = Pointer::parse("/a~1b/c~0d").unwrap();
        assert_eq!(p.tokens, vec!["a/b", "c~d"]);
        assert!(Pointer::parse("a").is_err());
        assert!(Pointer::parse("/a~2").is_err());
    }
}
