//! How a component declares its settings, and the one merge that resolves them.
//!
//! A component's settings are one struct, owned by the component, that derives `clap::Args`
//! and serde's `Serialize` / `Deserialize` with `#[serde(default, deny_unknown_fields)]`. Each
//! field is one option: its type, its `///` doc (the `--help` text), `default_value`, value
//! parser and `env` are written once, on the field, and the field's name is at once the clap id,
//! the long flag (`_` written `-`) and the key in the config file. Durations are written as in
//! the CLI (`"250ms"`, `"6h"`) through [`duration`] and [`positive_duration`].
//!
//! [`merge`] resolves one component: the values clap parsed (flag, else environment variable,
//! else the declared default) are serialised to a TOML table, every option that neither a flag
//! nor the environment gave takes the config file's value when the file has the key, and the
//! table is deserialised back; then [`Settings::finish`] checks what only the whole struct can
//! (ranges, options that depend on each other). Data enters as clap's `ArgMatches` and the
//! file's top-level table and leaves as the component's struct.

use clap::{ArgMatches, Args, Command, FromArgMatches, ValueHint, parser::ValueSource};
use serde::{Serialize, de::DeserializeOwned};
use std::{collections::BTreeSet, time::Duration};

/// A component's settings struct (see the module documentation).
pub trait Settings: Args + FromArgMatches + Serialize + DeserializeOwned {
    /// Completes and checks the resolved settings: defaults that depend on another option,
    /// ranges, rules that span options. `given` tells which options a flag, the environment
    /// or the file set. The error names the option (see [`option`]).
    fn finish(&mut self, given: &Given) -> Result<(), String> {
        let _ = given;
        Ok(())
    }
}

/// The options of one component that a flag, an environment variable or the file set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Given(BTreeSet<String>);

impl Given {
    pub fn contains(&self, id: &str) -> bool {
        self.0.contains(id)
    }
}

/// The settings as declared: every default, no environment, no file.
pub fn defaults<S: Args + FromArgMatches>() -> S {
    let command = S::augment_args(Command::new("defaults")).mut_args(|arg| arg.env(None));
    let matches = command
        .try_get_matches_from(["defaults"])
        .expect("declared defaults parse with their own value parsers");
    S::from_arg_matches(&matches).expect("declared defaults fill every field")
}

/// The ids (= file keys) of the options `S` declares.
pub fn ids<S: Args>() -> Vec<String> {
    S::augment_args(Command::new("ids"))
        .get_arguments()
        .map(|arg| arg.get_id().to_string())
        .collect()
}

/// The ids of the options of `S` whose values are paths (a relative path in the config file is
/// relative to the file).
pub fn path_ids<S: Args>() -> Vec<String> {
    S::augment_args(Command::new("ids"))
        .get_arguments()
        .filter(|arg| {
            matches!(
                arg.get_value_hint(),
                ValueHint::AnyPath | ValueHint::DirPath | ValueHint::FilePath
            )
        })
        .map(|arg| arg.get_id().to_string())
        .collect()
}

/// How an error names an option: its file key and its flag, `live_tick (--live-tick)`.
pub fn option(id: &str) -> String {
    format!("{id} (--{})", id.replace('_', "-"))
}

/// Resolves `S` from what clap parsed into `matches` and the config file's top-level `file`
/// table: flag > environment variable > file > declared default. The file's values must have
/// been checked against `S` already (the config module does when it reads the file), so an
/// error here is one of [`Settings::finish`]'s.
pub fn merge<S: Settings>(matches: &ArgMatches, file: &toml::Table) -> Result<S, String> {
    let parsed = S::from_arg_matches(matches).map_err(|error| error.to_string())?;
    let mut table = toml::Table::try_from(&parsed).map_err(|error| error.to_string())?;
    let mut given = BTreeSet::new();
    for id in ids::<S>() {
        match matches.value_source(&id) {
            Some(ValueSource::CommandLine | ValueSource::EnvVariable) => {
                given.insert(id);
            }
            _ => {
                if let Some(value) = file.get(&id) {
                    table.insert(id.clone(), value.clone());
                    given.insert(id);
                }
            }
        }
    }
    let mut settings: S = table
        .try_into()
        .map_err(|error: toml::de::Error| error.to_string().trim_end().to_string())?;
    settings.finish(&Given(given))?;
    Ok(settings)
}

/// Resolves `S` from the config file alone: the file's values over the declared defaults
/// (no flags, no environment).
pub fn from_file<S: Settings>(file: &toml::Table) -> Result<S, String> {
    let command = S::augment_args(Command::new("file")).mut_args(|arg| arg.env(None));
    let matches = command
        .try_get_matches_from(["file"])
        .expect("declared defaults parse with their own value parsers");
    merge(&matches, file)
}

/// clap value parser: a duration such as `250ms`, `30s`, `5m`, `2h` or `7d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    contract::units::parse_duration(text)
}

/// clap value parser: a [`parse_duration`] duration that is not zero.
pub fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration.is_zero() {
        return Err(format!(
            "must be greater than zero (got {})",
            contract::units::format_duration(duration)
        ));
    }
    Ok(duration)
}

/// Writes a duration so that [`parse_duration`] reads back exactly the same value: whole
/// milliseconds with the largest exact unit, finer ones as fractional milliseconds.
fn write_duration(duration: Duration) -> String {
    let sub_millis = duration.subsec_nanos() % 1_000_000;
    if sub_millis == 0 {
        contract::units::format_duration(duration)
    } else {
        let text = format!("{}.{sub_millis:06}", duration.as_millis());
        format!("{}ms", text.trim_end_matches('0'))
    }
}

/// serde adapter (`#[serde(with = "crate::settings::duration")]`): a duration as its text.
pub mod duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::write_duration(*duration))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// serde adapter: a duration as its text, refused when zero.
pub mod positive_duration {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub use super::duration::serialize;

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::parse_positive_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// Checks that a number option is within `range`; the error names the option.
pub fn check_range<T: PartialOrd + std::fmt::Display>(
    id: &str,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<(), String> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "{}: must be between {} and {} (got {value})",
            option(id),
            range.start(),
            range.end()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_written_back_exactly() {
        for duration in [
            Duration::from_millis(250),
            Duration::from_secs(90),
            Duration::from_secs(6 * 3600),
            Duration::from_micros(500),
            Duration::from_micros(1_250),
            Duration::ZERO,
        ] {
            let text = write_duration(duration);
            assert_eq!(parse_duration(&text), Ok(duration), "{text}");
        }
        assert_eq!(write_duration(Duration::from_micros(1_250)), "1.25ms");
    }

    #[test]
    fn ranges_name_the_option() {
        assert_eq!(check_range("demo_rate", 5u32, 0..=10), Ok(()));
        let error = check_range("demo_rate", 11u32, 0..=10).unwrap_err();
        assert_eq!(
            error,
            "demo_rate (--demo-rate): must be between 0 and 10 (got 11)"
        );
    }
}
