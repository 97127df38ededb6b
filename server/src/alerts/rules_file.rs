//! Rules as a file: `[[alerts]]` tables in TOML (the config file's format) or
//! `{"alerts": [...]}` in JSON, each table a rule with the API's field names. Export writes
//! them ([`export`]); import reads them ([`parse`]) and checks every rule ([`check_all`]),
//! refusing the whole file at the first bad rule with its position, its name and the field.
//! Pure; the caller stores the rules (by name: a rule of the same name is replaced) and installs
//! the config file's at start-up ([`install`]).

use super::{
    redact,
    rule::{RuleError, check, parse_spec},
};
use crate::storage::{Database, StorageError};
use contract::api::AlertRuleSpec;
use serde::Serialize;
use std::collections::HashSet;

/// A rules file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RulesFormat {
    Json,
    Toml,
}

impl RulesFormat {
    /// `json` or `toml`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "json" => Ok(Self::Json),
            "toml" => Ok(Self::Toml),
            other => Err(format!("{other:?} is not a rules format; use json or toml")),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Toml => "application/toml",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Toml => "toml",
        }
    }
}

/// A rule of a file refused: which one (0-based position and name, when it has one) and why.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {}", self.field(), self.message())]
pub struct FileRuleError {
    pub index: Option<usize>,
    pub name: Option<String>,
    pub error: RuleError,
}

impl FileRuleError {
    /// The field at fault, with the rule's position: `alerts[2].threshold`.
    pub fn field(&self) -> String {
        match self.index {
            Some(i) => format!("alerts[{i}].{}", self.error.field),
            None => self.error.field.to_string(),
        }
    }

    /// The reason, naming the rule.
    pub fn message(&self) -> String {
        match (&self.name, self.index) {
            (Some(name), _) => format!("rule {name:?}: {}", self.error.message),
            (None, Some(i)) => format!("rule {}: {}", i + 1, self.error.message),
            (None, None) => self.error.message.clone(),
        }
    }
}

fn file_error(field: &'static str, message: impl Into<String>) -> FileRuleError {
    FileRuleError {
        index: None,
        name: None,
        error: RuleError {
            field,
            message: message.into(),
        },
    }
}

#[derive(Serialize)]
struct RulesOut {
    alerts: Vec<AlertRuleSpec>,
}

/// The rules as a file. Silences are operational state, not part of a rule's definition, and
/// are left out.
pub fn export(specs: &[AlertRuleSpec], format: RulesFormat) -> Result<String, String> {
    let alerts = specs
        .iter()
        .map(|spec| AlertRuleSpec {
            silenced_until: None,
            ..spec.clone()
        })
        .collect();
    let out = RulesOut { alerts };
    match format {
        RulesFormat::Json => serde_json::to_string_pretty(&out)
            .map(|mut text| {
                text.push('\n');
                text
            })
            .map_err(|e| e.to_string()),
        RulesFormat::Toml => toml::to_string(&out).map_err(|e| e.to_string()),
    }
}

/// Reads a rules file into specs; a rule that does not read is refused at its position.
pub fn parse(text: &str, format: RulesFormat) -> Result<Vec<AlertRuleSpec>, FileRuleError> {
    let document: serde_json::Value = match format {
        RulesFormat::Json => {
            serde_json::from_str(text).map_err(|e| file_error("body", format!("not JSON: {e}")))?
        }
        RulesFormat::Toml => {
            let table: toml::Table =
                toml::from_str(text).map_err(|e| file_error("body", format!("not TOML: {e}")))?;
            serde_json::to_value(table).map_err(|e| file_error("body", e.to_string()))?
        }
    };
    let serde_json::Value::Object(mut document) = document else {
        return Err(file_error("body", "a rules file is a table with `alerts`"));
    };
    let alerts = document
        .remove("alerts")
        .unwrap_or(serde_json::Value::Array(Vec::new()));
    if let Some(key) = document.keys().next() {
        return Err(file_error(
            "body",
            format!("unknown key {key:?}; a rules file has only `alerts`"),
        ));
    }
    let serde_json::Value::Array(alerts) = alerts else {
        return Err(file_error(
            "alerts",
            "must be a list of rules ([[alerts]] tables)",
        ));
    };
    alerts
        .into_iter()
        .enumerate()
        .map(|(index, rule)| {
            let name = rule["name"].as_str().map(str::to_string);
            parse_spec(rule).map_err(|error| FileRuleError {
                index: Some(index),
                name,
                error,
            })
        })
        .collect()
}

/// Checks every rule (`metric_exists` says which metrics are active) and refuses a name used
/// twice; returns the normalised specs in file order.
pub fn check_all(
    specs: &[AlertRuleSpec],
    metric_exists: impl Fn(&str) -> bool,
) -> Result<Vec<AlertRuleSpec>, FileRuleError> {
    let mut names = HashSet::new();
    specs
        .iter()
        .enumerate()
        .map(|(index, spec)| {
            let at = |error| FileRuleError {
                index: Some(index),
                name: Some(spec.name.clone()),
                error,
            };
            let rule = check(0, spec, &metric_exists).map_err(at)?;
            if !names.insert(rule.spec.name.clone()) {
                return Err(at(RuleError {
                    field: "name",
                    message: "the file names this rule twice".into(),
                }));
            }
            Ok(rule.spec)
        })
        .collect()
}

/// Why rules could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{0}")]
    Refused(#[from] FileRuleError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Checks `specs` against the active metrics and stores them in one transaction, each
/// replacing the stored rule of its name; a silence already stored on a rule is kept when the
/// file sets none. Returns how many were (created, replaced).
pub async fn install(
    database: &Database,
    specs: &[AlertRuleSpec],
    now_ms: i64,
) -> Result<(usize, usize), InstallError> {
    if specs.is_empty() {
        return Ok((0, 0));
    }
    let metrics: HashSet<String> = database
        .active_metrics()
        .await?
        .into_iter()
        .map(|m| m.name)
        .collect();
    let mut checked = check_all(specs, |m| metrics.contains(m))?;
    let stored = database.alert_rules().await?;
    // A re-imported export shows webhook credentials masked: they stand for the stored ones.
    let stored_specs: Vec<AlertRuleSpec> = stored
        .iter()
        .filter_map(|row| serde_json::from_str(&row.spec).ok())
        .collect();
    for (index, spec) in checked.iter_mut().enumerate() {
        redact::unmask_spec(spec, &stored_specs).map_err(|url| FileRuleError {
            index: Some(index),
            name: Some(spec.name.clone()),
            error: RuleError {
                field: "targets",
                message: redact::unknown_mask_message(&url),
            },
        })?;
    }
    let rows = checked
        .into_iter()
        .map(|mut spec| {
            if spec.silenced_until.is_none() {
                spec.silenced_until = stored
                    .iter()
                    .find(|row| row.name == spec.name)
                    .and_then(|row| serde_json::from_str::<AlertRuleSpec>(&row.spec).ok())
                    .and_then(|old| old.silenced_until);
            }
            let json = serde_json::to_string(&spec).expect("a spec serialises");
            (spec.name, json)
        })
        .collect::<Vec<_>>();
    Ok(database.upsert_alert_rules(&rows, now_ms).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn specs() -> Vec<AlertRuleSpec> {
        [
            json!({"name": "slow", "metric": "latency", "statistic": "p99", "window": "5m",
                   "comparison": ">", "threshold": 250.0, "recovery_threshold": 200.0,
                   "for": "1m", "series": ["eu", "/cart"], "notify_on": ["no_data"],
                   "targets": [{"type": "in_app"}, {"type": "webhook", "url": "https://h.example/a"}],
                   "enabled": false, "silenced_until": "2030-01-01T00:00:00Z"}),
            json!({"name": "quiet", "metric": "latency", "statistic": "rate", "window": "30s",
                   "comparison": "<", "threshold": 1.5, "series": "each",
                   "datapoints_to_alarm": 3, "evaluation_periods": 5}),
        ]
        .into_iter()
        .map(|v| serde_json::from_value(v).unwrap())
        .collect()
    }

    #[test]
    fn both_formats_round_trip_without_silences() {
        let mut expected = specs();
        expected[0].silenced_until = None;
        for format in [RulesFormat::Json, RulesFormat::Toml] {
            let text = export(&specs(), format).unwrap();
            assert_eq!(parse(&text, format).unwrap(), expected, "{text}");
            assert_eq!(export(&expected, format).unwrap(), text);
        }
        let toml = export(&specs(), RulesFormat::Toml).unwrap();
        assert!(toml.contains("[[alerts]]"), "{toml}");
        assert!(toml.contains("for = \"1m\""), "{toml}");
    }

    #[test]
    fn a_bad_rule_is_named_with_its_position_and_field() {
        let text = "[[alerts]]\nname = \"ok\"\nmetric = \"latency\"\nstatistic = \"max\"\n\
                    window = \"1m\"\ncomparison = \">\"\nthreshold = 1\n\n\
                    [[alerts]]\nname = \"bad\"\nmetric = \"latency\"\nstatistic = \"p42\"\n\
                    window = \"1m\"\ncomparison = \">\"\nthreshold = 1\n";
        let error = parse(text, RulesFormat::Toml).unwrap_err();
        assert_eq!(error.field(), "alerts[1].statistic");
        assert!(
            error.message().starts_with("rule \"bad\": "),
            "{}",
            error.message()
        );

        let mut two = specs();
        two[1].window = "90s".into();
        let error = check_all(&two, |_| true).unwrap_err();
        assert_eq!(error.field(), "alerts[1].window");
        assert!(error.message().contains("\"quiet\""), "{}", error.message());
        let error = check_all(&specs(), |m| m == "nope").unwrap_err();
        assert_eq!(error.field(), "alerts[0].metric");
        let mut twice = specs();
        twice[1].name = "slow".into();
        assert_eq!(
            check_all(&twice, |_| true).unwrap_err().field(),
            "alerts[1].name"
        );

        assert_eq!(parse("{}", RulesFormat::Json).unwrap(), vec![]);
        assert_eq!(parse("[1]", RulesFormat::Json).unwrap_err().field(), "body");
        assert_eq!(
            parse("rules = []", RulesFormat::Toml).unwrap_err().field(),
            "body"
        );
        assert_eq!(
            parse("{\"alerts\": 3}", RulesFormat::Json)
                .unwrap_err()
                .field(),
            "alerts"
        );
    }
}
