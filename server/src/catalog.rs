//! The definition catalogue: create, update, delete and install definitions with validation
//! against what is stored, then tell the running engine to reload. Used by the JSON API and at
//! start-up for the config file's `[[metrics]]`.
//!
//! Versioning: an update retires the stored row and stores the new definition under a new id,
//! so history rows keep describing the definition that produced them and the new definition
//! starts new buckets from the change on. A delete retires the row and *keeps* its history
//! (until retention ages it out); nothing stored is ever rewritten or cascaded.

use crate::{
    clock::now_ms,
    engine::EngineHandle,
    metric::{CompiledMetric, DefinitionError, MetricDefinition},
    storage::{Database, StorageError, metrics::MetricRecord},
};
use std::collections::HashSet;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(transparent)]
    Invalid(#[from] DefinitionError),
    #[error("no metric named {0:?}")]
    NotFound(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

async fn taken_names(
    database: &Database,
    except: Option<&str>,
) -> Result<HashSet<String>, StorageError> {
    Ok(database
        .active_metrics()
        .await?
        .into_iter()
        .map(|m| m.name)
        .filter(|n| Some(n.as_str()) != except)
        .collect())
}

async fn reload(engine: Option<&EngineHandle>) {
    if let Some(engine) = engine {
        match engine.reload_definitions().await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => tracing::error!(%error, "engine could not reload definitions"),
            Err(error) => tracing::warn!(%error, "definitions stored; engine not running"),
        }
    }
}

/// Validates and stores a new definition; returns the stored row.
pub async fn create(
    database: &Database,
    engine: Option<&EngineHandle>,
    definition: MetricDefinition,
) -> Result<MetricRecord, CatalogError> {
    let taken = taken_names(database, None).await?;
    definition.compile(engine.and_then(|e| e.known_streams()), &taken)?;
    database.insert_definition(&definition, now_ms()).await?;
    reload(engine).await;
    database
        .active_metric(&definition.name)
        .await?
        .ok_or(CatalogError::NotFound(definition.name))
}

/// Replaces the definition called `name` (the body's name must be `name`).
pub async fn update(
    database: &Database,
    engine: Option<&EngineHandle>,
    name: &str,
    definition: MetricDefinition,
) -> Result<MetricRecord, CatalogError> {
    let current = database
        .active_metric(name)
        .await?
        .ok_or_else(|| CatalogError::NotFound(name.to_string()))?;
    if current.builtin {
        return Err(DefinitionError::new("name", "built-in metrics cannot be changed").into());
    }
    if definition.name != name {
        return Err(DefinitionError::new(
            "name",
            "must equal the name in the URL (renaming is delete + create)",
        )
        .into());
    }
    let taken = taken_names(database, Some(name)).await?;
    definition.compile(engine.and_then(|e| e.known_streams()), &taken)?;
    if current.definition.as_ref() != Some(&definition) {
        database
            .replace_definition(name, &definition, now_ms())
            .await?
            .ok_or_else(|| CatalogError::NotFound(name.to_string()))?;
        reload(engine).await;
    }
    database
        .active_metric(name)
        .await?
        .ok_or_else(|| CatalogError::NotFound(name.to_string()))
}

/// Validates a draft exactly as [`create`] would (or [`update`] of `replaces`) and compiles it
/// without storing anything.
pub async fn compile_draft(
    database: &Database,
    engine: Option<&EngineHandle>,
    definition: MetricDefinition,
    replaces: Option<&str>,
) -> Result<CompiledMetric, CatalogError> {
    if let Some(name) = replaces
        && definition.name != name
    {
        return Err(DefinitionError::new(
            "name",
            "must equal the name of the metric being edited (renaming is delete + create)",
        )
        .into());
    }
    let taken = taken_names(database, replaces).await?;
    Ok(definition.compile(engine.and_then(|e| e.known_streams()), &taken)?)
}

/// Retires the definition called `name`; its history is kept.
pub async fn delete(
    database: &Database,
    engine: Option<&EngineHandle>,
    name: &str,
) -> Result<(), CatalogError> {
    let current = database
        .active_metric(name)
        .await?
        .ok_or_else(|| CatalogError::NotFound(name.to_string()))?;
    if current.builtin {
        return Err(DefinitionError::new("name", "built-in metrics cannot be deleted").into());
    }
    database.retire_definition(name, now_ms()).await?;
    reload(engine).await;
    Ok(())
}

/// Installs definitions from the config file (or the demo): new names are created, changed ones
/// replaced (a new version), identical ones left alone. The first invalid one is refused.
pub async fn install(
    database: &Database,
    definitions: &[MetricDefinition],
) -> Result<usize, CatalogError> {
    let mut changed = 0;
    let mut seen = HashSet::new();
    for definition in definitions {
        if !seen.insert(definition.name.clone()) {
            return Err(DefinitionError::new(
                "name",
                format!("{:?} is defined twice", definition.name),
            )
            .into());
        }
        match database.active_metric(&definition.name).await? {
            None => {
                create(database, None, definition.clone()).await?;
                changed += 1;
            }
            Some(current) if current.definition.as_ref() != Some(definition) => {
                update(database, None, &definition.name, definition.clone()).await?;
                changed += 1;
            }
            Some(_) => {}
        }
    }
    Ok(changed)
}
