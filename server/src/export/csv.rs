//! CSV rows (RFC 4180: comma separated, CRLF line ends, fields with `"`, `,` or line breaks
//! quoted with `""` escapes). The header is [`super::COLUMNS`]; empty fields mean "no value"
//! (no samples, or no histogram); a series' total has `total` as `bucket_start`.

use super::{Row, RowWriter, write_rfc3339};
use std::io::Write;

/// The CSV writer (stateless).
#[derive(Debug, Default)]
pub struct CsvWriter;

pub(crate) fn field(out: &mut Vec<u8>, text: &str) {
    if text.contains([',', '"', '\r', '\n']) {
        out.push(b'"');
        for byte in text.bytes() {
            if byte == b'"' {
                out.push(b'"');
            }
            out.push(byte);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(text.as_bytes());
    }
}

fn opt<T: std::fmt::Display>(out: &mut Vec<u8>, value: Option<T>) {
    out.push(b',');
    if let Some(v) = value {
        // Writing into a Vec cannot fail.
        let _ = write!(out, "{v}");
    }
}

impl RowWriter for CsvWriter {
    fn begin(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(super::COLUMNS.join(",").as_bytes());
        out.extend_from_slice(b"\r\n");
    }

    fn row(&mut self, row: &Row<'_>, out: &mut Vec<u8>) {
        field(out, row.metric);
        out.push(b',');
        field(out, row.series);
        out.push(b',');
        match row.bucket_start_s {
            Some(start) => write_rfc3339(out, start),
            None => out.extend_from_slice(b"total"),
        }
        let s = &row.summary;
        let _ = write!(out, ",{},{},{}", row.resolution_s, s.count, s.sum);
        opt(out, s.min);
        opt(out, s.max);
        opt(out, s.mean);
        opt(out, s.p50);
        opt(out, s.p90);
        opt(out, s.p99);
        opt(out, s.p999);
        out.push(b',');
        if let Some(unit) = row.unit {
            field(out, unit);
        }
        out.extend_from_slice(b"\r\n");
    }

    fn end(&mut self, _out: &mut Vec<u8>) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use contract::summary::Summary;

    #[test]
    fn quotes_series_and_leaves_missing_values_empty() {
        let mut out = Vec::new();
        let mut w = CsvWriter;
        w.begin(&mut out);
        w.row(
            &Row {
                metric: "lat",
                series: "[\"eu\",\"a,\\\"b\"]",
                bucket_start_s: Some(60),
                resolution_s: 60,
                summary: Summary::default(),
                unit: None,
            },
            &mut out,
        );
        let text = String::from_utf8(out).expect("utf-8");
        assert_eq!(
            text,
            "metric,series,bucket_start,resolution_s,count,sum,min,max,mean,p50,p90,p99,p999,unit\r\n\
             lat,\"[\"\"eu\"\",\"\"a,\\\"\"b\"\"]\",1970-01-01T00:01:00Z,60,0,0,,,,,,,,\r\n"
        );
    }
}
