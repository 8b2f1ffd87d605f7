use std::path::PathBuf;

use thiserror::Error;

use crate::source::{SourceSpan, YamlError};

#[derive(Debug, Error)]
pub enum PlaybookError {
    #[error("cannot read playbook {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error(transparent)]
    Yaml(#[from] YamlError),
    /// A key that is not part of the schema, with the closest valid one.
    #[error("unknown key `{key}` in {context}{}\n{}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default(), span.snippet())]
    UnknownKey {
        key: String,
        context: String,
        suggestion: Option<String>,
        span: SourceSpan,
    },
    /// A value of the wrong shape, or a rule of the schema broken.
    #[error("{message}\n{}", span.snippet())]
    Invalid { message: String, span: SourceSpan },
}
