//! The printable report: one self-contained HTML file (inline CSS and SVG, no scripts, no
//! external URLs) with a title, the range, and per metric a chart and a summary table. Print
//! styles put each metric on its own page so the browser's "Save as PDF" gives clean pages.
//!
//! The writer keeps one metric's points (for its chart) until the metric ends; the request
//! layer caps HTML exports at [`contract::api::ExportFormat::max_rows`] rows so that stays small.
//! Each metric's section lists the alerts that fired on it in the range (transitions into
//! `firing`, read once before the report starts).

use super::{Row, RowWriter, write_rfc3339};
use contract::protocol::AlertEvent;
use std::{collections::BTreeMap, fmt::Write as _};

/// The report lines of the alerts that fired on `metric`, oldest first.
pub fn alerts_fired(fired: &[AlertEvent], metric: &str) -> Vec<String> {
    fired
        .iter()
        .filter(|e| e.metric == metric)
        .map(|e| {
            let instance = if e.instance == "all" {
                String::new()
            } else {
                format!(" [{}]", e.instance)
            };
            let value = e.value.map(|v| format!("value {v}, ")).unwrap_or_default();
            format!(
                "{} UTC: {}{instance} fired ({value}threshold {}, {})",
                rfc(e.at_ms.div_euclid(1000)),
                e.rule,
                e.threshold,
                e.severity
            )
        })
        .collect()
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2rem;color:#111}\
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem}\
table{border-collapse:collapse;font-size:.85rem}th,td{border:1px solid #ccc;padding:.2rem .5rem;text-align:right}\
th:first-child,td:first-child{text-align:left}svg{max-width:100%;height:auto}\
.metric{break-inside:avoid}\
@media print{body{margin:0}.metric{break-before:page}.metric:first-of-type{break-before:auto}}";

const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf",
];

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn rfc(epoch_s: i64) -> String {
    let mut out = Vec::new();
    write_rfc3339(&mut out, epoch_s);
    String::from_utf8(out).unwrap_or_default()
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "–".into())
}

/// Summary of one series (its `total` row).
struct SeriesTotal {
    series: String,
    cells: [String; 9],
}

/// HTML report writer.
pub struct HtmlWriter {
    from_ms: i64,
    to_ms: i64,
    resolution_s: i64,
    metric: String,
    unit: Option<String>,
    /// Per series: (bucket start, mean) points.
    points: BTreeMap<String, Vec<(i64, f64)>>,
    totals: Vec<SeriesTotal>,
    /// Alerts that fired in the range, on any metric.
    fired: Vec<AlertEvent>,
}

impl HtmlWriter {
    pub fn new(from_ms: i64, to_ms: i64, resolution_s: i64, fired: Vec<AlertEvent>) -> Self {
        Self {
            from_ms,
            to_ms,
            resolution_s,
            metric: String::new(),
            unit: None,
            points: BTreeMap::new(),
            totals: Vec::new(),
            fired,
        }
    }

    fn chart(&self) -> String {
        let (w, h, pad) = (800.0, 240.0, 40.0);
        let x0 = self.from_ms as f64 / 1000.0;
        let x1 = (self.to_ms as f64 / 1000.0).max(x0 + 1.0);
        let max_y = self
            .points
            .values()
            .flatten()
            .map(|(_, y)| *y)
            .fold(0.0_f64, f64::max)
            .max(f64::MIN_POSITIVE);
        let mut svg = format!(
            "<svg viewBox=\"0 0 {w} {h}\" role=\"img\" \
             aria-label=\"mean of {} over the range\">\
             <rect x=\"{pad}\" y=\"10\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>\
             <text x=\"2\" y=\"20\" font-size=\"10\">{}</text><text x=\"2\" y=\"{}\" font-size=\"10\">0</text>",
            escape(&self.metric),
            w - pad - 10.0,
            h - 40.0,
            max_y,
            h - 30.0
        );
        for (i, points) in self.points.values().take(COLOURS.len()).enumerate() {
            let mut line = String::new();
            for (t, y) in points {
                let x = pad + (*t as f64 - x0) / (x1 - x0) * (w - pad - 10.0);
                let y = 10.0 + (1.0 - y / max_y) * (h - 40.0);
                let _ = write!(line, "{x:.1},{y:.1} ");
            }
            let _ = write!(
                svg,
                "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" points=\"{}\"/>",
                COLOURS[i],
                line.trim_end()
            );
        }
        let _ = write!(
            svg,
            "<text x=\"{pad}\" y=\"{}\" font-size=\"10\">{}</text>\
             <text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\">{}</text></svg>",
            h - 12.0,
            rfc(self.from_ms.div_euclid(1000)),
            w - 10.0,
            h - 12.0,
            rfc(self.to_ms.div_euclid(1000))
        );
        svg
    }
}

impl RowWriter for HtmlWriter {
    fn begin(&mut self, out: &mut Vec<u8>) {
        let range = format!(
            "{} – {}",
            rfc(self.from_ms.div_euclid(1000)),
            rfc(self.to_ms.div_euclid(1000))
        );
        let _ = std::io::Write::write_all(
            out,
            format!(
                "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
                 <title>Streamboard report {range}</title><style>{STYLE}</style></head><body>\
                 <h1>Streamboard report</h1><p class=\"range\">Range: {range} (UTC), resolution {} s</p>",
                self.resolution_s
            )
            .as_bytes(),
        );
    }

    fn metric_start(&mut self, metric: &str, unit: Option<&str>, _out: &mut Vec<u8>) {
        self.metric = metric.to_string();
        self.unit = unit.map(String::from);
        self.points.clear();
        self.totals.clear();
    }

    fn row(&mut self, row: &Row<'_>, _out: &mut Vec<u8>) {
        let s = &row.summary;
        match row.bucket_start_s {
            Some(start) => {
                if let Some(mean) = s.mean {
                    self.points
                        .entry(row.series.to_string())
                        .or_default()
                        .push((start, mean));
                }
            }
            None => self.totals.push(SeriesTotal {
                series: row.series.to_string(),
                cells: [
                    s.count.to_string(),
                    s.sum.to_string(),
                    opt(s.min),
                    opt(s.max),
                    opt(s.mean.map(|m| format!("{m:.3}"))),
                    opt(s.p50),
                    opt(s.p90),
                    opt(s.p99),
                    opt(s.p999),
                ],
            }),
        }
    }

    fn metric_end(&mut self, out: &mut Vec<u8>) {
        let mut html = format!(
            "<section class=\"metric\"><h2>{}{}</h2>",
            escape(&self.metric),
            self.unit
                .as_deref()
                .map(|u| format!(" ({})", escape(u)))
                .unwrap_or_default()
        );
        if self.totals.is_empty() {
            html.push_str("<p>No data in this range.</p>");
        } else {
            html.push_str(&self.chart());
            html.push_str(
                "<table><thead><tr><th>series</th><th>count</th><th>sum</th><th>min</th>\
                 <th>max</th><th>mean</th><th>p50</th><th>p90</th><th>p99</th><th>p999</th></tr></thead><tbody>",
            );
            for (i, total) in self.totals.iter().enumerate() {
                let swatch = COLOURS
                    .get(i)
                    .map(|c| format!("<span style=\"color:{c}\">■</span> "))
                    .unwrap_or_default();
                let _ = write!(html, "<tr><td>{swatch}{}</td>", escape(&total.series));
                for cell in &total.cells {
                    let _ = write!(html, "<td>{}</td>", escape(cell));
                }
                html.push_str("</tr>");
            }
            html.push_str("</tbody></table>");
        }
        let alerts = alerts_fired(&self.fired, &self.metric);
        if !alerts.is_empty() {
            html.push_str("<h3>Alerts fired</h3><ul>");
            for alert in alerts {
                let _ = write!(html, "<li>{}</li>", escape(&alert));
            }
            html.push_str("</ul>");
        }
        html.push_str("</section>");
        out.extend_from_slice(html.as_bytes());
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"</body></html>\n");
    }
}
