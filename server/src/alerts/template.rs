//! Notification templates: a rule's webhook body, Kinesis record data and in-app text written
//! in MiniJinja (Jinja2 syntax) over the transition's fields ([`fields`]: the documented
//! payload). Pure. A template is checked when its rule is saved by compiling it and rendering a
//! sample transition, so a syntax error or an unknown variable is refused at its field; the
//! rendering is bounded (fuel, output size), so a template cannot stall the evaluator or the
//! outbox worker.

use super::{machine::Transition, time::format_rfc3339_ms};
use contract::{
    alert::AlertState,
    api::{AlertRuleSpec, TargetKind},
};
use minijinja::{
    Environment, UndefinedBehavior,
    value::{Serde, Value},
};

/// Longest template source.
pub const MAX_TEMPLATE_BYTES: usize = 16 * 1024;
/// Longest rendered text.
pub const MAX_RENDERED_BYTES: usize = 256 * 1024;
/// Instructions one rendering may run (loops included).
const FUEL: u64 = 100_000;

/// Why a template was refused or failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    // A misspelt variable is an error, not an empty string.
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env
}

/// Renders `source` with `fields` as its variables.
pub fn render(source: &str, fields: &serde_json::Value) -> Result<String, TemplateError> {
    if source.len() > MAX_TEMPLATE_BYTES {
        return Err(TemplateError(format!(
            "the template is {} bytes; at most {MAX_TEMPLATE_BYTES}",
            source.len()
        )));
    }
    let text = environment()
        .render_str(source, Value::from(Serde(fields)))
        .map_err(|e| TemplateError(describe(&e)))?;
    if text.len() > MAX_RENDERED_BYTES {
        return Err(TemplateError(format!(
            "the rendered text is {} bytes; at most {MAX_RENDERED_BYTES}",
            text.len()
        )));
    }
    Ok(text)
}

/// The error's kind, detail and line, in one sentence.
fn describe(error: &minijinja::Error) -> String {
    let mut text = match error.detail() {
        Some(detail) => format!("{}: {detail}", error.kind()),
        None => error.kind().to_string(),
    };
    if let Some(line) = error.line() {
        text.push_str(&format!(" (line {line})"));
    }
    text
}

/// The fields of a notification (the documented payload without its `id`, which storage
/// adds): what a template sees, and the JSON sent without one.
pub fn fields(
    spec: &AlertRuleSpec,
    recovery_threshold: f64,
    instance: &str,
    transition: &Transition,
    error: Option<&str>,
) -> serde_json::Map<String, serde_json::Value> {
    let serde_json::Value::Object(fields) = serde_json::json!({
        "rule": spec.name,
        "instance": instance,
        "from": transition.from.as_str(),
        "to": transition.to.as_str(),
        "value": transition.value,
        "threshold": spec.threshold,
        "recovery_threshold": recovery_threshold,
        "at": format_rfc3339_ms(transition.at_ms),
        "metric": spec.metric,
        "statistic": spec.statistic,
        "window": spec.window,
        "comparison": spec.comparison,
        "severity": spec.severity.unwrap_or_default(),
        "description": spec.description,
        "runbook_url": spec.runbook_url,
        "error": error,
    }) else {
        unreachable!("a JSON object literal")
    };
    fields
}

/// A sample firing transition of a rule at `at_ms` (its value just past the threshold), for
/// checking and previewing templates.
pub fn sample_transition(spec: &AlertRuleSpec, at_ms: i64) -> Transition {
    let step = (spec.threshold.abs() * 0.1).max(1.0);
    let value = if spec.comparison.is_upward() {
        spec.threshold + step
    } else {
        spec.threshold - step
    };
    Transition {
        from: AlertState::Pending,
        to: AlertState::Firing,
        at_ms,
        value: Some(value),
    }
}

/// One transition of a grouped notification.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupMember {
    pub id: i64,
    pub instance: String,
    pub transition: Transition,
}

/// The fields of a grouped notification: those of its latest transition, its first
/// transition's id as `id`, `"group": true`, `count` and `transitions` (each with `id`,
/// `instance`, `from`, `to`, `value` and `at`), oldest first. `members` is not empty.
pub fn group_fields(
    spec: &AlertRuleSpec,
    recovery_threshold: f64,
    rule_id: i64,
    members: &[GroupMember],
) -> serde_json::Map<String, serde_json::Value> {
    let (Some(first), Some(last)) = (members.first(), members.last()) else {
        return serde_json::Map::new();
    };
    let mut out = fields(
        spec,
        recovery_threshold,
        &last.instance,
        &last.transition,
        None,
    );
    out.insert("id".into(), first.id.into());
    out.insert("rule_id".into(), rule_id.into());
    out.insert("group".into(), true.into());
    out.insert("count".into(), members.len().into());
    let list = members
        .iter()
        .map(|m| {
            serde_json::json!({
                "id": m.id,
                "instance": m.instance,
                "from": m.transition.from.as_str(),
                "to": m.transition.to.as_str(),
                "value": m.transition.value,
                "at": format_rfc3339_ms(m.transition.at_ms),
            })
        })
        .collect();
    out.insert("transitions".into(), serde_json::Value::Array(list));
    out
}

/// What a template sees for one transition of a rule (the stored notification's `id` is
/// given when known): its fields; for a grouped rule's webhook and Kinesis templates
/// (`grouped`), a group of that one transition.
pub fn context(
    spec: &AlertRuleSpec,
    recovery_threshold: f64,
    rule_id: i64,
    id: Option<i64>,
    instance: &str,
    transition: Transition,
    grouped: bool,
) -> serde_json::Value {
    let fields = if grouped {
        let member = GroupMember {
            id: id.unwrap_or_default(),
            instance: instance.to_string(),
            transition,
        };
        group_fields(spec, recovery_threshold, rule_id, &[member])
    } else {
        let mut fields = fields(spec, recovery_threshold, instance, &transition, None);
        fields.insert("id".into(), id.into());
        fields.insert("rule_id".into(), rule_id.into());
        fields
    };
    serde_json::Value::Object(fields)
}

/// What a template sees for a sample firing transition, as [`context`] (the in-app text has
/// no notification id: it is rendered before the transition is stored).
pub fn sample_fields(
    spec: &AlertRuleSpec,
    recovery_threshold: f64,
    grouped: bool,
    kind: TargetKind,
) -> serde_json::Value {
    let transition = sample_transition(spec, 1_767_225_600_000);
    let (id, instance) = match kind {
        TargetKind::InApp => (None, "all"),
        _ if grouped => (Some(0), "eu-west"),
        _ => (Some(0), "all"),
    };
    let grouped = grouped && kind != TargetKind::InApp;
    context(
        spec,
        recovery_threshold,
        0,
        id,
        instance,
        transition,
        grouped,
    )
}

/// The default in-app text of a transition (what the toast says without a template).
pub fn default_in_app_text(fields: &serde_json::Value) -> String {
    let rule = fields["rule"].as_str().unwrap_or_default();
    let to = fields["to"].as_str().unwrap_or_default();
    let instance = fields["instance"].as_str().unwrap_or_default();
    let instance = if instance == "all" {
        String::new()
    } else {
        format!(" [{instance}]")
    };
    format!(
        "{rule}{instance}: {} → {to}",
        fields["from"].as_str().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> AlertRuleSpec {
        serde_json::from_value(
            json!({"name": "slow", "metric": "latency", "statistic": "p99",
            "window": "5m", "comparison": ">", "threshold": 250.0}),
        )
        .unwrap()
    }

    #[test]
    fn templates_see_the_transition_fields() {
        let fields = sample_fields(&spec(), 200.0, false, TargetKind::Webhook);
        let text = render(
            "{{ rule }} {{ to }} at {{ value }} (> {{ threshold }}, {{ severity }})",
            &fields,
        )
        .unwrap();
        assert_eq!(text, "slow firing at 275.0 (> 250.0, warning)");
        let body = render(r#"{"text": {{ (rule ~ " is " ~ to)|tojson }}}"#, &fields).unwrap();
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&body).unwrap(),
            json!({"text": "slow is firing"})
        );
    }

    #[test]
    fn groups_list_their_transitions() {
        let fields = sample_fields(&spec(), 200.0, true, TargetKind::Kinesis);
        let text = render(
            "{{ count }}: {% for t in transitions %}{{ t.instance }} {{ t.to }}{% endfor %}",
            &fields,
        )
        .unwrap();
        assert_eq!(text, "1: eu-west firing");
        assert_eq!(fields["group"], true);
        let in_app = sample_fields(&spec(), 200.0, true, TargetKind::InApp);
        assert!(in_app.get("transitions").is_none() && in_app["id"].is_null());
    }

    #[test]
    fn errors_say_what_and_where() {
        let fields = sample_fields(&spec(), 200.0, false, TargetKind::Webhook);
        let e = render("line one\n{{ rule }\n", &fields).unwrap_err();
        assert!(
            e.0.contains("syntax error") && e.0.contains("line 2"),
            "{e}"
        );
        let e = render("{{ valeu }}", &fields).unwrap_err();
        assert!(e.0.contains("undefined"), "{e}");
        let e = render("{{ rule|nosuchfilter }}", &fields).unwrap_err();
        assert!(e.0.contains("filter"), "{e}");
        let e = render(
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            &fields,
        )
        .unwrap_err();
        assert!(e.0.contains("fuel"), "{e}");
        assert!(render(&"x".repeat(MAX_TEMPLATE_BYTES + 1), &fields).is_err());
    }
}
