//! `vars_files` and `-e @file`: a YAML (or JSON) mapping of variables.

use std::path::Path;

use crate::source::{YamlError, parse_yaml};
use crate::vars::VarMap;

#[derive(Debug, thiserror::Error)]
pub enum VarsFileError {
    #[error("cannot read vars file {}: {reason}", path.display())]
    Read {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error(transparent)]
    Yaml(#[from] YamlError),
}

pub fn load(path: &Path) -> Result<VarMap, VarsFileError> {
    let text = std::fs::read_to_string(path).map_err(|e| VarsFileError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    if text.trim().is_empty() {
        return Ok(VarMap::new());
    }
    Ok(parse_yaml(path, &text)?)
}
