//! The config file's `[[streams]]` tables: a stream by `name` or `arn`, its `start`, and
//! whether it is read with enhanced fan-out (`efo`).

use crate::kinesis::streams::{StartPosition, StreamRef, StreamSpec};
use serde::Deserialize;

/// A `[[streams]]` table in the config file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileStream {
    pub name: Option<String>,
    pub arn: Option<String>,
    #[serde(default)]
    pub start: StartPosition,
    #[serde(default)]
    pub efo: bool,
}

impl FileStream {
    /// Checks that exactly one of `name` and `arn` is given and that it parses.
    pub fn to_spec(&self, index: usize) -> Result<StreamSpec, String> {
        let (key, text) = match (&self.name, &self.arn) {
            (Some(name), None) => ("name", name),
            (None, Some(arn)) => ("arn", arn),
            (Some(_), Some(_)) => {
                return Err(format!("streams[{index}]: give `name` or `arn`, not both"));
            }
            (None, None) => return Err(format!("streams[{index}]: `name` or `arn` is required")),
        };
        let name_or_arn = text
            .parse::<StreamRef>()
            .map_err(|error| format!("streams[{index}].{key}: {error}"))?;
        if key == "arn" && name_or_arn.arn().is_none() {
            return Err(format!("streams[{index}].arn: `{text}` is not an ARN"));
        }
        Ok(StreamSpec {
            name_or_arn,
            start: self.start,
            efo: self.efo,
        })
    }
}
