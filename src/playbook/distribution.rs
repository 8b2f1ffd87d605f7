//! The `distribution:` and `hooks:` sections of a play, as written.
//!
//! Values stay templates here (they are rendered per host before the first
//! connection); only their shape is checked at load time.

use crate::source::SourceSpan;
use crate::vars::Value;

use super::Task;

/// A versioned artifact that becomes a release on every host.
#[derive(Debug, Clone)]
pub struct DistributionSpec {
    pub name: String,
    pub version: String,
    pub source: String,
    pub sha256: Option<String>,
    pub format: Option<String>,
    pub strip_components: u32,
    pub root: String,
    pub shared: Vec<String>,
    pub keep: u32,
    pub templates: Vec<ReleaseTemplate>,
    pub owner: Option<String>,
    pub group: Option<String>,
    /// Where the section starts, for errors found when it is rendered.
    pub span: SourceSpan,
}

/// A template rendered into the release before it goes live.
#[derive(Debug, Clone)]
pub struct ReleaseTemplate {
    pub src: String,
    /// Path inside the release.
    pub dest: String,
    pub mode: Option<Value>,
}

/// Task lists run at fixed points of the release cycle.
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    pub prepare: Vec<Task>,
    pub switch: Vec<Task>,
    pub confirm: Vec<Task>,
}
