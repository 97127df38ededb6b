//! Proleptic Gregorian date math on day numbers since 1970-01-01 (Howard Hinnant's
//! algorithms), and the UTC minute format of `<input type="datetime-local">` values. Pure and
//! clock-free: the browser formats and reads custom ranges with it, the server names export
//! files and formats report dates with it, both in UTC.

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `(year, month, day)` of a day number since 1970-01-01 (inverse of
/// [`days_from_civil`]; proleptic Gregorian, Howard Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `YYYY-MM-DDTHH:MM` in UTC: the value format of `<input type="datetime-local">`.
pub fn format_utc_minute(ms: i64) -> String {
    let minutes = ms.div_euclid(60_000);
    let (year, month, day) = civil_from_days(minutes.div_euclid(1440));
    let minute_of_day = minutes.rem_euclid(1440);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}",
        minute_of_day / 60,
        minute_of_day % 60
    )
}

/// Parses `YYYY-MM-DDTHH:MM` (optionally `:SS`) as UTC epoch milliseconds.
pub fn parse_utc_minute(text: &str) -> Option<i64> {
    let (date, time) = text.trim().split_once('T')?;
    let mut date = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (date.next()??, date.next()??, date.next()??);
    let mut time = time.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hour, minute) = (time.next()??, time.next()??);
    let second = time.next().flatten().unwrap_or(0);
    let valid = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && (0..24).contains(&hour)
        && (0..60).contains(&minute)
        && (0..60).contains(&second);
    valid.then(|| {
        ((days_from_civil(year, month, day) * 24 + hour) * 60 + minute) * 60_000 + second * 1000
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_minutes_round_trip() {
        assert_eq!(format_utc_minute(0), "1970-01-01T00:00");
        assert_eq!(
            parse_utc_minute("2024-01-02T03:04"),
            Some(1_704_164_640_000)
        );
        assert_eq!(format_utc_minute(1_704_164_640_000), "2024-01-02T03:04");
        assert_eq!(
            parse_utc_minute("2024-02-29T23:59:30"),
            Some(1_709_251_170_000)
        );
        assert_eq!(parse_utc_minute("2024-13-01T00:00"), None);
        assert_eq!(parse_utc_minute("yesterday"), None);
        for ms in [0, 951_782_400_000, 1_709_251_140_000, 4_102_444_800_000] {
            assert_eq!(parse_utc_minute(&format_utc_minute(ms)), Some(ms));
        }
    }
}
