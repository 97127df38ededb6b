//! Human-friendly units shared by the server (config, API) and the browser (forms).

use std::time::Duration;

/// Parses a duration written as a number and a unit: `250ms`, `30s`, `5m`, `2h`, `7d`.
/// Fractions are allowed (`1.5s`); a bare number, a negative value or an unknown unit is refused
/// with a message that says what is accepted.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("`{text}` has no unit; write e.g. 250ms, 30s, 5m, 2h or 7d"))?;
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(format!(
            "`{text}` does not start with a non-negative number; write e.g. 250ms, 30s, 5m, 2h or 7d"
        ));
    }
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{number}` is not a number"))?;
    let unit_secs = match unit.trim() {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3_600.0,
        "d" => 86_400.0,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}`; use ms, s, m, h or d"
            ));
        }
    };
    Duration::try_from_secs_f64(value * unit_secs).map_err(|_| format!("`{text}` is out of range"))
}

/// Formats a duration the way [`parse_duration`] reads it, choosing the largest exact unit.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if millis >= size && millis.is_multiple_of(size) {
            return format!("{}{unit}", millis / size);
        }
    }
    format!("{millis}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7_200)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_duration(" 1.5s "), Ok(Duration::from_millis(1_500)));
    }

    #[test]
    fn refuses_with_reasons() {
        assert!(parse_duration("5").unwrap_err().contains("no unit"));
        assert!(parse_duration("-5s").unwrap_err().contains("non-negative"));
        assert!(
            parse_duration("5w")
                .unwrap_err()
                .contains("unknown unit `w`")
        );
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn formats_round_trip() {
        for text in ["250ms", "30s", "5m", "2h", "7d", "90s"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }
}

/// A count or rate with three significant figures and a k/M/G suffix: `1.23k`, `45.6`, `0`.
pub fn format_number(value: f64) -> String {
    let abs = value.abs();
    let (scaled, suffix) = if abs >= 1e9 {
        (value / 1e9, "G")
    } else if abs >= 1e6 {
        (value / 1e6, "M")
    } else if abs >= 1e3 {
        (value / 1e3, "k")
    } else {
        (value, "")
    };
    let abs = scaled.abs();
    if value == 0.0 {
        "0".to_string()
    } else if abs >= 100.0 {
        format!("{scaled:.0}{suffix}")
    } else if abs >= 10.0 {
        format!("{scaled:.1}{suffix}")
    } else {
        format!("{scaled:.2}{suffix}")
    }
}

/// An exact count with thousands separators: `1,234,567`.
pub fn format_count(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Bytes per second: `12.3 KB/s` (decimal units, like Kinesis quotas).
pub fn format_bytes_per_s(value: f64) -> String {
    let abs = value.abs();
    let (scaled, unit) = if abs >= 1e6 {
        (value / 1e6, "MB/s")
    } else if abs >= 1e3 {
        (value / 1e3, "KB/s")
    } else {
        (value, "B/s")
    };
    format!("{scaled:.1} {unit}")
}

/// A lag in milliseconds: `350 ms`, `4.2 s`, `3.1 min`; `—` when unknown.
pub fn format_lag_ms(value: Option<i64>) -> String {
    match value {
        None => "—".to_string(),
        Some(ms) if ms < 1_000 => format!("{ms} ms"),
        Some(ms) if ms < 60_000 => format!("{:.1} s", ms as f64 / 1e3),
        Some(ms) => format!("{:.1} min", ms as f64 / 6e4),
    }
}

#[cfg(test)]
mod format_tests {
    use super::*;

    #[test]
    fn numbers_get_units_and_three_figures() {
        assert_eq!(format_number(0.0), "0");
        assert_eq!(format_number(4.5678), "4.57");
        assert_eq!(format_number(45.67), "45.7");
        assert_eq!(format_number(1234.0), "1.23k");
        assert_eq!(format_number(2_500_000.0), "2.50M");
        assert_eq!(format_bytes_per_s(12_345.0), "12.3 KB/s");
        assert_eq!(format_lag_ms(Some(350)), "350 ms");
        assert_eq!(format_lag_ms(Some(4_200)), "4.2 s");
        assert_eq!(format_lag_ms(None), "—");
        assert_eq!(format_count(0), "0");
        assert_eq!(format_count(999), "999");
        assert_eq!(format_count(1_000), "1,000");
        assert_eq!(format_count(1_234_567), "1,234,567");
    }
}
