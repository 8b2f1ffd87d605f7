//! Every error convoy reports, with its message and exit code in one place.
//!
//! Exit codes (documented in the README): 0 all ok, 2 a host failed,
//! 3 bad input, 4 a host unreachable, 130 interrupted.

use thiserror::Error;

use crate::inventory::InventoryError;
use crate::playbook::PlaybookError;
use crate::source::SourceSpan;
use crate::template::TemplateError;
use crate::vars_file::VarsFileError;

pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED: i32 = 2;
pub const EXIT_BAD_INPUT: i32 = 3;
pub const EXIT_UNREACHABLE: i32 = 4;
pub const EXIT_INTERRUPTED: i32 = 130;

#[derive(Debug, Error)]
pub enum Error {
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error(transparent)]
    Playbook(#[from] PlaybookError),
    #[error(transparent)]
    VarsFile(#[from] VarsFileError),
    /// A template that cannot render for a host, found before any host is contacted.
    #[error("{error}\n  (task \"{task}\" for host {host})\n{}", span.snippet())]
    Template {
        error: TemplateError,
        span: SourceSpan,
        task: String,
        host: String,
    },
    /// The distribution section cannot be rendered or its artifact used.
    #[error("{message}\n  (distribution for host {host})\n{}", span.snippet())]
    Distribution {
        message: String,
        span: SourceSpan,
        host: String,
    },
    /// A file the playbook names that does not exist.
    #[error("{what} not found: {path}\n{}", span.snippet())]
    MissingFile {
        what: &'static str,
        path: String,
        span: SourceSpan,
    },
    /// A host pattern in a play or `--limit` that selects nothing.
    #[error("{source}\n{}", span.as_ref().map(SourceSpan::snippet).unwrap_or_default())]
    Pattern {
        source: InventoryError,
        span: Option<SourceSpan>,
    },
    /// A rule broken by the playbook as a whole, pointed at where it is set.
    #[error("{message}\n{}", span.snippet())]
    Located { message: String, span: SourceSpan },
    #[error("bad extra vars `{arg}`: {reason}")]
    ExtraVars { arg: String, reason: String },
    #[error(transparent)]
    Proxy(#[from] crate::proxy::ProxyError),
    /// A host's `ansible_become*` variables that convoy cannot honour.
    #[error(transparent)]
    Become(#[from] crate::run::BecomeError),
    /// `convoy ctl` could not reach the run, or the run refused.
    #[error(transparent)]
    Control(#[from] crate::run::control_client::ControlError),
    #[error(transparent)]
    Job(#[from] crate::job::JobError),
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// Every error that stops convoy before the run is bad input.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Io(_) => 1,
            Error::Proxy(e) => e.exit_code(),
            Error::Job(e) => e.exit_code(),
            _ => EXIT_BAD_INPUT,
        }
    }
}
