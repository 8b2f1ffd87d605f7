//! Everything that can go wrong while loading or querying an inventory.
//!
//! Each variant carries the path, program, pattern or group it is about, so
//! the one-line message tells the operator exactly what to fix without a
//! second look at the command line.

use std::path::PathBuf;

use crate::source::YamlError;

/// An inventory could not be loaded, or a query on it failed.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// A source path (or a vars file) could not be read or listed.
    #[error("cannot read inventory {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },

    /// A YAML inventory or vars file is malformed; the message points at the spot.
    #[error(transparent)]
    Yaml(#[from] YamlError),

    /// An INI inventory line that Ansible's INI format does not allow.
    #[error("{message}\n{}", span.snippet())]
    Ini {
        message: String,
        span: crate::source::SourceSpan,
    },

    /// An executable inventory could not be started at all.
    #[error("cannot run inventory script {}: {error}", path.display())]
    ScriptRun {
        path: PathBuf,
        error: std::io::Error,
    },

    /// An executable inventory exited unsuccessfully.
    #[error(
        "inventory script {} {args} failed ({status}): {}",
        path.display(),
        if stderr.is_empty() { "it printed nothing on stderr" } else { stderr }
    )]
    ScriptFailed {
        path: PathBuf,
        args: String,
        status: String,
        stderr: String,
    },

    /// An executable inventory printed something that is not JSON.
    #[error(
        "inventory script {} {args} printed invalid JSON at line {line} column {column}: {message}",
        path.display()
    )]
    ScriptJson {
        path: PathBuf,
        args: String,
        line: usize,
        column: usize,
        message: String,
    },

    /// An executable inventory printed JSON of the wrong shape.
    #[error("inventory script {} {args}: {message}", path.display())]
    ScriptData {
        path: PathBuf,
        args: String,
        message: String,
    },

    /// A host name, address or user that ssh would take for an option.
    #[error(
        "{owner}: {var} {value:?} starts with `-`, which ssh would read as an option; no host address or user starts with `-`"
    )]
    OptionLike {
        owner: String,
        var: &'static str,
        value: String,
    },

    /// Groups nest inside themselves, so no host could be placed.
    #[error("inventory groups form a loop: {}", cycle.join(" -> "))]
    GroupCycle { cycle: Vec<String> },

    /// A host pattern (or one part of it) selects nothing.
    #[error(
        "pattern \"{pattern}\" matches no host{}",
        hint.as_ref().map(|h| format!(" ({h})")).unwrap_or_default()
    )]
    NoMatch {
        pattern: String,
        hint: Option<String>,
    },

    /// A host pattern cannot be understood (bad regex, empty pattern).
    #[error("invalid host pattern \"{pattern}\": {reason}")]
    InvalidPattern { pattern: String, reason: String },

    /// A group asked for by name (e.g. `--graph web`) does not exist.
    #[error(
        "no group \"{group}\" in the inventory{}",
        suggestion.as_ref().map(|s| format!(" (did you mean \"{s}\"?)")).unwrap_or_default()
    )]
    UnknownGroup {
        group: String,
        suggestion: Option<String>,
    },
}
