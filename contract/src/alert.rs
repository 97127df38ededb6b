//! The closed sets of alerting: instance states, severities, comparisons, the no-data policy,
//! the extra states a rule can notify on, a rule's series scope, and the verdicts and
//! notification outcomes the API reports. Rules ([`crate::api::AlertRuleSpec`]), live alert
//! payloads ([`crate::protocol::AlertsLive`]) and stored transitions all use these types; the
//! server's state machine evaluates them, the browser shows them.

use crate::{ParseError, closed_set};
use std::str::FromStr;

closed_set! {
    /// The state of one rule instance, snake case on the wire and in SQLite.
    #[derive(Default)]
    pub enum AlertState ("alert state") {
        /// The condition does not hold.
        #[default]
        Ok = "ok",
        /// The condition holds, for less than the rule's `for` period so far.
        Pending = "pending",
        Firing = "firing",
        /// Recovered, for less than the rule's `keep_firing_for` period so far.
        Recovering = "recovering",
        /// No data for `no_data_after` (with the `no_data` policy).
        NoData = "no_data",
        /// The metric is gone.
        Error = "error",
    }
    refused: ": use ok, pending, firing, recovering, no_data or error";
}

impl AlertState {
    /// Counted in the badge.
    pub fn is_firing(self) -> bool {
        matches!(self, AlertState::Firing | AlertState::Recovering)
    }
}

closed_set! {
    /// Severity of a rule (shown and sent; it changes nothing in evaluation).
    #[derive(Default)]
    pub enum Severity ("severity") {
        Info = "info",
        #[default]
        Warning = "warning",
        Critical = "critical",
    }
    refused: ": use info, warning or critical";
}

closed_set! {
    /// How a rule compares its statistic with the threshold.
    pub enum Comparison ("comparison") {
        Gt = ">",
        Ge = ">=",
        Lt = "<",
        Le = "<=",
    }
}

impl Comparison {
    /// Whether `value <self> threshold`.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Gt => value > threshold,
            Comparison::Ge => value >= threshold,
            Comparison::Lt => value < threshold,
            Comparison::Le => value <= threshold,
        }
    }

    /// `>` and `>=`: the rule watches for high values.
    pub fn is_upward(self) -> bool {
        matches!(self, Comparison::Gt | Comparison::Ge)
    }
}

impl FromStr for Comparison {
    type Err = ParseError;

    /// Surrounding spaces are allowed (`" >= "`).
    fn from_str(text: &str) -> Result<Self, ParseError> {
        Self::from_name(text.trim()).ok_or_else(|| {
            ParseError::new(format!("{text:?} is not a comparison; use >, >=, < or <="))
        })
    }
}

closed_set! {
    /// What a rule does after `no_data_after` without data.
    #[derive(Default)]
    pub enum NoDataPolicy ("no-data policy") {
        /// Treat silence as fine (resolves a firing alert).
        Ok = "ok",
        /// Treat silence as a breach.
        Alerting = "alerting",
        /// Enter the `no_data` state.
        #[default]
        NoData = "no_data",
        /// Stay in whatever state the instance is in.
        KeepLast = "keep_last",
    }
    refused: " is not a policy; use ok, alerting, no_data or keep_last";
}

closed_set! {
    /// A state a rule can also notify on (entering `firing` and resolving always notify).
    pub enum NotifyOn ("state to notify on") {
        NoData = "no_data",
        Error = "error",
    }
    refused: ": only no_data and error can be added (firing and resolved always notify)";
}

closed_set! {
    /// What became of a transition's notification.
    #[derive(Default)]
    pub enum NotificationStatus ("notification status") {
        /// Queued for the rule's targets.
        Sent = "sent",
        /// Held back: the rule was silenced.
        Silenced = "silenced",
        /// Not a notifying transition.
        #[default]
        None = "none",
    }
    refused: ": use sent, silenced or none";
}

closed_set! {
    /// What a draft rule's instance would conclude now (`POST /api/v1/alerts/preview`).
    pub enum PreviewVerdict ("verdict") {
        Breaching = "breaching",
        Ok = "ok",
        NoData = "no_data",
    }
    refused: ": use breaching, ok or no_data";
}

/// Which series of its metric a rule watches. On the wire: `"all"`, `"each"`, or the labels of
/// one series as an array (`["eu-west", "/cart"]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum SeriesScope {
    /// All series merged into one instance (histograms merged exactly).
    #[default]
    All,
    /// One instance per series.
    Each,
    /// One series, by its labels.
    One(Vec<String>),
}

impl SeriesScope {
    /// The scope as the form shows it: `all`, `each`, or the labels joined with `, `.
    pub fn label(&self) -> String {
        match self {
            SeriesScope::All => "all".to_string(),
            SeriesScope::Each => "each".to_string(),
            SeriesScope::One(labels) => labels.join(", "),
        }
    }

    /// A keyword scope (`all`, `each`).
    pub fn keyword(text: &str) -> Result<Self, ParseError> {
        match text {
            "all" => Ok(SeriesScope::All),
            "each" => Ok(SeriesScope::Each),
            other => Err(ParseError::new(format!(
                "{other:?} is not a scope: use \"all\", \"each\" or a list of labels"
            ))),
        }
    }
}

impl serde::Serialize for SeriesScope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            SeriesScope::All => serializer.serialize_str("all"),
            SeriesScope::Each => serializer.serialize_str("each"),
            SeriesScope::One(labels) => labels.serialize(serializer),
        }
    }
}

impl<'de> serde::Deserialize<'de> for SeriesScope {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Scope;

        impl<'de> serde::de::Visitor<'de> for Scope {
            type Value = SeriesScope;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("\"all\", \"each\" or a list of labels")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<SeriesScope, E> {
                SeriesScope::keyword(text).map_err(|e| E::custom(e.0))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<SeriesScope, A::Error> {
                let mut labels = Vec::new();
                while let Some(label) = seq.next_element::<String>()? {
                    labels.push(label);
                }
                Ok(SeriesScope::One(labels))
            }
        }

        deserializer.deserialize_any(Scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wire_names_round_trip() {
        for state in AlertState::ALL {
            let json = serde_json::to_value(state).unwrap();
            assert_eq!(json, json!(state.as_str()));
            assert_eq!(serde_json::from_value::<AlertState>(json).unwrap(), state);
            assert_eq!(state.as_str().parse::<AlertState>().unwrap(), state);
        }
        assert_eq!(serde_json::to_value(AlertState::NoData).unwrap(), "no_data");
        assert_eq!(serde_json::to_value(Comparison::Ge).unwrap(), ">=");
        assert_eq!(
            serde_json::to_value(NoDataPolicy::KeepLast).unwrap(),
            "keep_last"
        );
        assert_eq!(
            serde_json::to_value(NotificationStatus::None).unwrap(),
            "none"
        );
        assert_eq!(Severity::default(), Severity::Warning);
        assert_eq!(NoDataPolicy::default(), NoDataPolicy::NoData);
        assert!(AlertState::Recovering == "recovering");
    }

    #[test]
    fn refusals_say_what_is_accepted() {
        let message = |r: Result<Comparison, ParseError>| r.unwrap_err().0;
        assert_eq!(
            message("=>".parse()),
            "\"=>\" is not a comparison; use >, >=, < or <="
        );
        assert_eq!(" >= ".parse::<Comparison>().unwrap(), Comparison::Ge);
        let error = serde_json::from_value::<Severity>(json!("panic")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "\"panic\": use info, warning or critical"
        );
        let error = serde_json::from_value::<NotifyOn>(json!("firing")).unwrap_err();
        assert!(error.to_string().contains("only no_data and error"));
        assert!(serde_json::from_value::<AlertState>(json!(3)).is_err());
    }

    #[test]
    fn scopes_are_keywords_or_labels() {
        for (json, scope) in [
            (json!("all"), SeriesScope::All),
            (json!("each"), SeriesScope::Each),
            (
                json!(["eu", "/a"]),
                SeriesScope::One(vec!["eu".into(), "/a".into()]),
            ),
        ] {
            assert_eq!(serde_json::to_value(&scope).unwrap(), json);
            assert_eq!(serde_json::from_value::<SeriesScope>(json).unwrap(), scope);
        }
        let error = serde_json::from_value::<SeriesScope>(json!("some")).unwrap_err();
        assert!(error.to_string().contains("is not a scope"), "{error}");
        assert!(serde_json::from_value::<SeriesScope>(json!(5)).is_err());
        assert_eq!(
            SeriesScope::One(vec!["a".into(), "b".into()]).label(),
            "a, b"
        );
    }
}
