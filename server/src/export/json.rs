//! JSON rows: one array of objects with the keys of [`super::COLUMNS`] in that order, one
//! object per line. `series` is the label array itself, `bucket_start` an RFC 3339 string or
//! `"total"`, missing values `null`. Written by hand (not serde) so it streams row by row.

use super::{Row, RowWriter, write_rfc3339};
use std::io::Write;

/// The JSON writer: remembers whether a row was written (for the separating commas).
#[derive(Debug, Default)]
pub struct JsonWriter {
    wrote_row: bool,
}

fn string(out: &mut Vec<u8>, text: &str) {
    // serde_json escapes exactly as JSON requires; a &str always serialises.
    let _ = serde_json::to_writer(&mut *out, text);
}

fn num<T: std::fmt::Display>(out: &mut Vec<u8>, key: &str, value: Option<T>) {
    let _ = write!(out, ",\"{key}\":");
    match value {
        Some(v) => {
            let _ = write!(out, "{v}");
        }
        None => out.extend_from_slice(b"null"),
    }
}

fn float(out: &mut Vec<u8>, key: &str, value: Option<f64>) {
    num(out, key, value.filter(|v| v.is_finite()));
}

impl RowWriter for JsonWriter {
    fn begin(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"[");
    }

    fn row(&mut self, row: &Row<'_>, out: &mut Vec<u8>) {
        if self.wrote_row {
            out.extend_from_slice(b",\n");
        } else {
            out.extend_from_slice(b"\n");
            self.wrote_row = true;
        }
        out.extend_from_slice(b"{\"metric\":");
        string(out, row.metric);
        out.extend_from_slice(b",\"series\":");
        // Stored series are JSON arrays written by the engine; anything else becomes a string.
        if row.series.starts_with('[')
            && serde_json::from_str::<serde::de::IgnoredAny>(row.series).is_ok()
        {
            out.extend_from_slice(row.series.as_bytes());
        } else {
            string(out, row.series);
        }
        out.extend_from_slice(b",\"bucket_start\":\"");
        match row.bucket_start_s {
            Some(start) => write_rfc3339(out, start),
            None => out.extend_from_slice(b"total"),
        }
        out.push(b'"');
        let s = &row.summary;
        num(out, "resolution_s", Some(row.resolution_s));
        num(out, "count", Some(s.count));
        float(out, "sum", Some(s.sum));
        float(out, "min", s.min);
        float(out, "max", s.max);
        float(out, "mean", s.mean);
        num(out, "p50", s.p50);
        num(out, "p90", s.p90);
        num(out, "p99", s.p99);
        num(out, "p999", s.p999);
        out.extend_from_slice(b",\"unit\":");
        match row.unit {
            Some(unit) => string(out, unit),
            None => out.extend_from_slice(b"null"),
        }
        out.push(b'}');
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"\n]\n");
    }
}
