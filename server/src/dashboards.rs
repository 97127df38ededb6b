//! User-built dashboards: a request body or an imported file read into the contract's
//! [`Dashboard`] ([`parse`], refusals naming the field as a path like `panels[2].kind`), checked
//! against the active metrics ([`Dashboard::check`]), and stored as their JSON documents
//! (`storage::dashboards`). The HTTP layer's `/api/v1/dashboards` calls only this module.

use crate::storage::{Database, StorageError, dashboards::DashboardRow};
use contract::dashboard::{Dashboard, DashboardError, DashboardInfo, DashboardSummary};
use std::collections::HashSet;

/// Why a dashboard could not be read, stored or found.
#[derive(Debug, thiserror::Error)]
pub enum DashboardsError {
    #[error(transparent)]
    Invalid(#[from] DashboardError),
    #[error("no dashboard with id {0}")]
    NotFound(i64),
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A stored document that no longer reads (never written by this version's checks).
    #[error("stored dashboard {id} does not read: {message}")]
    Corrupt { id: i64, message: String },
}

/// The path of a serde error as the API names fields: `panels[2].queries[0].metric`.
fn field_path(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            serde_path_to_error::Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            serde_path_to_error::Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            serde_path_to_error::Segment::Enum { variant } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(variant);
            }
            serde_path_to_error::Segment::Unknown => {}
        }
    }
    out
}

/// Reads a document from JSON text; a value that does not read is refused at its path
/// (`body` when the text is not JSON, or not an object).
pub fn parse(text: &str) -> Result<Dashboard, DashboardError> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| DashboardError::new("body", format!("not JSON: {e}")))?;
    parse_value(value)
}

/// [`parse`] of an already decoded JSON value.
pub fn parse_value(value: serde_json::Value) -> Result<Dashboard, DashboardError> {
    if !value.is_object() {
        return Err(DashboardError::new(
            "body",
            "a dashboard is a JSON object with at least a name",
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|error| {
        let field = field_path(error.path());
        let message = error.inner().to_string();
        let field = if field.is_empty() {
            // serde names a missing field only in its message: "missing field `name`".
            message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split('`').next())
                .map_or_else(|| "body".to_string(), str::to_string)
        } else {
            field
        };
        DashboardError::new(field, message)
    })
}

/// The document as stored and exported: pretty JSON, fields in declaration order.
pub fn to_file(dashboard: &Dashboard) -> String {
    serde_json::to_string_pretty(dashboard).expect("a dashboard always serialises")
}

async fn checked(database: &Database, dashboard: &Dashboard) -> Result<(), DashboardsError> {
    let metrics: HashSet<String> = database
        .active_metrics()
        .await?
        .into_iter()
        .map(|m| m.name)
        .collect();
    dashboard.check(|m| metrics.contains(m))?;
    Ok(())
}

fn read_row(row: &DashboardRow) -> Result<Dashboard, DashboardsError> {
    parse(&row.spec).map_err(|e| DashboardsError::Corrupt {
        id: row.id,
        message: e.to_string(),
    })
}

fn info(row: &DashboardRow) -> Result<DashboardInfo, DashboardsError> {
    Ok(DashboardInfo {
        id: row.id,
        created_ms: row.created_ms,
        updated_ms: row.updated_ms,
        dashboard: read_row(row)?,
    })
}

/// Every dashboard, by name.
pub async fn list(database: &Database) -> Result<Vec<DashboardSummary>, DashboardsError> {
    database
        .dashboards()
        .await?
        .iter()
        .map(|row| {
            let d = read_row(row)?;
            Ok(DashboardSummary {
                id: row.id,
                name: d.name,
                description: d.description,
                panels: d.panels.len(),
                updated_ms: row.updated_ms,
            })
        })
        .collect()
}

pub async fn get(database: &Database, id: i64) -> Result<DashboardInfo, DashboardsError> {
    let row = database
        .dashboard(id)
        .await?
        .ok_or(DashboardsError::NotFound(id))?;
    info(&row)
}

/// Checks and stores a new dashboard; returns its id.
pub async fn create(
    database: &Database,
    dashboard: &Dashboard,
    now_ms: i64,
) -> Result<i64, DashboardsError> {
    checked(database, dashboard).await?;
    Ok(database
        .insert_dashboard(&dashboard.name, &to_file(dashboard), now_ms)
        .await?)
}

/// Checks and replaces a dashboard's document.
pub async fn update(
    database: &Database,
    id: i64,
    dashboard: &Dashboard,
    now_ms: i64,
) -> Result<DashboardInfo, DashboardsError> {
    checked(database, dashboard).await?;
    if !database
        .update_dashboard(id, &dashboard.name, &to_file(dashboard), now_ms)
        .await?
    {
        return Err(DashboardsError::NotFound(id));
    }
    get(database, id).await
}

pub async fn delete(database: &Database, id: i64) -> Result<(), DashboardsError> {
    if database.delete_dashboard(id).await? {
        Ok(())
    } else {
        Err(DashboardsError::NotFound(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_path() {
        let e = parse(
            r#"{"name":"x","panels":[
                {"title":"a","kind":"stat","x":0,"y":0,"w":1,"h":1,"queries":[{"metric":"m"}]},
                {"title":"b","kind":"stat","x":0,"y":0,"w":1,"h":1,"queries":[{"metric":"m"}]},
                {"title":"c","kind":"pie","x":0,"y":0,"w":1,"h":1,"queries":[]}]}"#,
        )
        .unwrap_err();
        assert_eq!(e.field, "panels[2].kind");
        assert!(e.message.starts_with("unknown panel kind \"pie\""), "{e}");
        let e = parse(r#"{"name":"x","panels":[{"title":"a","kind":"stat","x":0,"y":0,"w":1,"h":1,"queries":[{"metric":"m","top":"3"}]}]}"#).unwrap_err();
        assert_eq!(e.field, "panels[0].queries[0].top");
        let e = parse(r#"{"panels":[]}"#).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("name", "missing field `name`")
        );
        assert_eq!(parse("[1]").unwrap_err().field, "body");
        assert_eq!(parse("{nope").unwrap_err().field, "body");
        let e = parse(r#"{"name":"x","colour":"red"}"#).unwrap_err();
        assert!(e.message.contains("unknown field `colour`"), "{e}");
    }

    #[test]
    fn the_file_reads_back_as_the_same_document() {
        let d = parse(r#"{"name":"x","refresh":"1m","panels":[{"title":"a","kind":"table","x":0,"y":0,"w":6,"h":3,"queries":[{"metric":"m","top":5}]}]}"#).unwrap();
        assert_eq!(parse(&to_file(&d)).unwrap(), d);
    }
}
