//! Record extraction: decoding a record once per stream ([`Decoded`]) and applying a compiled
//! metric to it (filter, value, event time, dimension labels), for ingest and for the
//! definition editor's preview.

use super::{
    core::Engine,
    counters::BadReason,
    fields::{self, Logfmt},
    json_scan::FlatJson,
};
use crate::{
    kinesis::StreamName,
    metric::{
        CompiledMetric,
        definition::CompiledFormat,
        field::{FieldValue, Pointer},
        key::LABEL_SEPARATOR,
    },
};

/// One sampled record run through a draft definition by [`Engine::preview`].
#[derive(Debug, Clone, PartialEq)]
pub struct PreviewRow {
    pub arrival_ms: i64,
    /// `Ok(None)`: the filter skipped it; `Ok(Some(..))`: what the metric would record.
    pub outcome: Result<Option<Extracted>, BadReason>,
    /// The record's first 200 bytes (lossy UTF-8).
    pub excerpt: String,
}

/// What a metric takes from one record.
#[derive(Debug, Clone, PartialEq)]
pub struct Extracted {
    pub event_ms: i64,
    pub value: f64,
    pub labels: Vec<String>,
}

impl<P: Clone> Engine<P> {
    /// Runs `metric` (compiled, not installed) over the newest `limit` sampled records of its
    /// stream, newest first; `None` when the stream has sent nothing yet. Nothing is recorded.
    pub fn preview(&self, metric: &CompiledMetric, limit: usize) -> Option<Vec<PreviewRow>> {
        let state = self
            .streams
            .get(&StreamName::new(metric.definition.stream.as_str()))?;
        let mut label = String::new();
        Some(
            state
                .sample
                .iter()
                .rev()
                .take(limit)
                .map(|(arrival_ms, data)| {
                    // A lone metric decodes the full document, so nested paths resolve too.
                    let outcome = Decoded::new(data, true)
                        .extract(metric, *arrival_ms, &mut label)
                        .map(|found| {
                            found.map(|(event_ms, value)| Extracted {
                                event_ms,
                                value,
                                labels: if metric.dimensions.is_empty() {
                                    Vec::new()
                                } else {
                                    label.split(LABEL_SEPARATOR).map(str::to_string).collect()
                                },
                            })
                        });
                    let cut = data.len().min(200);
                    PreviewRow {
                        arrival_ms: *arrival_ms,
                        outcome,
                        excerpt: String::from_utf8_lossy(&data[..cut]).into_owned(),
                    }
                })
                .collect(),
        )
    }
}

/// One record's decoded forms, each built on first use and shared by every metric of the
/// stream: JSON is parsed once per stream, logfmt once, regex once per metric.
pub(super) struct Decoded<'a> {
    text: Result<&'a str, std::str::Utf8Error>,
    deep_json: bool,
    json: Option<Result<JsonDoc<'a>, ()>>,
    logfmt: Option<Result<Logfmt<'a>, ()>>,
}

impl<'a> Decoded<'a> {
    pub(super) fn new(data: &'a [u8], deep_json: bool) -> Self {
        Self {
            text: std::str::from_utf8(data),
            deep_json,
            json: None,
            logfmt: None,
        }
    }

    /// Applies `metric` to the record (see [`extract`]), decoding what it needs.
    pub(super) fn extract(
        &mut self,
        metric: &CompiledMetric,
        arrival_ms: i64,
        label: &mut String,
    ) -> Result<Option<(i64, f64)>, BadReason> {
        let Ok(text) = self.text else {
            return Err(BadReason::NotUtf8);
        };
        match &metric.format {
            CompiledFormat::Json => {
                let deep = self.deep_json;
                match self.json.get_or_insert_with(|| JsonDoc::parse(text, deep)) {
                    Ok(doc) => extract(metric, &|p| doc.get(p), arrival_ms, label),
                    Err(()) => Err(BadReason::InvalidJson),
                }
            }
            CompiledFormat::Logfmt => {
                match self
                    .logfmt
                    .get_or_insert_with(|| Logfmt::parse(text).map_err(|_| ()))
                {
                    Ok(doc) => extract(metric, &|p| doc.get(p), arrival_ms, label),
                    Err(()) => Err(BadReason::InvalidLogfmt),
                }
            }
            CompiledFormat::Regex(regex) => match regex.captures(text) {
                Some(caps) => extract(
                    metric,
                    &|p| fields::captures_get(&caps, p),
                    arrival_ms,
                    label,
                ),
                None => Err(BadReason::RegexNoMatch),
            },
        }
    }
}

/// A record decoded as JSON: one level deep (fast) or as a full document.
enum JsonDoc<'a> {
    Flat(FlatJson<'a>),
    Deep(serde_json::Value),
}

impl<'a> JsonDoc<'a> {
    fn parse(text: &'a str, deep: bool) -> Result<Self, ()> {
        if deep {
            serde_json::from_str(text)
                .map(JsonDoc::Deep)
                .map_err(|_| ())
        } else {
            FlatJson::parse(text).map(JsonDoc::Flat).map_err(|_| ())
        }
    }

    fn get(&self, pointer: &Pointer) -> FieldValue<'_> {
        match self {
            JsonDoc::Flat(doc) => doc.get(pointer),
            JsonDoc::Deep(doc) => fields::json_get(doc, pointer),
        }
    }
}

/// Applies one metric to one decoded record: `Ok(None)` when the filter rejects it,
/// `Ok(Some((event_ms, value)))` when it counts, with the series key written into `label`.
fn extract<'r>(
    metric: &CompiledMetric,
    get: &dyn Fn(&Pointer) -> FieldValue<'r>,
    arrival_ms: i64,
    label: &mut String,
) -> Result<Option<(i64, f64)>, BadReason> {
    if let Some(filter) = &metric.filter
        && !filter.eval(get)
    {
        return Ok(None);
    }
    let value = match &metric.value {
        None => 1.0,
        Some(pointer) => match get(pointer) {
            FieldValue::Missing | FieldValue::Null => return Err(BadReason::ValueMissing),
            field => field.as_number().ok_or(BadReason::ValueNotANumber)?,
        },
    };
    let event_ms = match &metric.time {
        None => arrival_ms,
        Some((pointer, format)) => match get(pointer) {
            FieldValue::Missing => return Err(BadReason::TimeMissing),
            field => fields::parse_time(&field, *format).ok_or(BadReason::TimeInvalid)?,
        },
    };
    label.clear();
    for (i, pointer) in metric.dimensions.iter().enumerate() {
        if i > 0 {
            label.push(LABEL_SEPARATOR);
        }
        let before = label.len();
        get(pointer).write_label(label);
        // Keep labels free of the separator so the key splits back exactly.
        if label[before..].contains(LABEL_SEPARATOR) {
            let cleaned = label[before..].replace(LABEL_SEPARATOR, " ");
            label.truncate(before);
            label.push_str(&cleaned);
        }
    }
    Ok(Some((event_ms, value)))
}
