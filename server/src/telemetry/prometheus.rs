//! A small writer for the Prometheus text exposition format (version 0.0.4): `# HELP`,
//! `# TYPE`, then samples with escaped label values. Pure; every part of the server that
//! exposes figures renders through it.

use std::fmt::Write;

/// `Content-Type` of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Debug, Clone, Copy)]
pub enum MetricType {
    Counter,
    Gauge,
}

/// The document being written.
#[derive(Debug, Default)]
pub struct Exposition {
    text: String,
}

/// One metric family; add samples to it.
pub struct Family<'a> {
    text: &'a mut String,
    name: &'static str,
}

impl Exposition {
    /// Starts a family: writes its HELP and TYPE lines.
    pub fn family(&mut self, name: &'static str, help: &str, kind: MetricType) -> Family<'_> {
        let kind = match kind {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
        };
        let _ = writeln!(
            self.text,
            "# HELP {name} {}",
            help.replace('\\', "\\\\").replace('\n', "\\n")
        );
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
        Family {
            text: &mut self.text,
            name,
        }
    }

    pub fn finish(self) -> String {
        self.text
    }
}

impl Family<'_> {
    /// Writes `name{label="value",...} value`.
    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.text.push_str(self.name);
        if !labels.is_empty() {
            self.text.push('{');
            for (index, (key, value)) in labels.iter().enumerate() {
                if index > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{key}=\"{}\"", escape_label(value));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {}", format_value(value));
        self
    }
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_families_samples_and_escapes() {
        let mut out = Exposition::default();
        out.family("x_total", "Things.", MetricType::Counter)
            .sample(&[("route", "/a\"b"), ("status", "200")], 3.0)
            .sample(&[], 1.5);
        assert_eq!(
            out.finish(),
            "# HELP x_total Things.\n# TYPE x_total counter\n\
             x_total{route=\"/a\\\"b\",status=\"200\"} 3\nx_total 1.5\n"
        );
    }

    #[test]
    fn special_values() {
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(-2.0), "-2");
    }
}
