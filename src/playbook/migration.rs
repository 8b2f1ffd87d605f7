//! `migrations:` — converters that run once per rollout when the deploy
//! crosses into the version range they were written for.

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::load::{RawTask, convert_task};
use super::{PlaybookError, Task};
use crate::source::SourceSpan;

/// Where a migration runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationTarget {
    /// The first host of the rollout (a shared database needs it once).
    One,
    /// Every host.
    Every,
}

#[derive(Debug, Clone)]
pub struct Migration {
    /// Names it in output and in the record kept on the hosts.
    pub name: String,
    pub versions: semver::VersionReq,
    /// A shell command, run in the new release's directory.
    pub run: Option<String>,
    pub tasks: Vec<Task>,
    pub on: MigrationTarget,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMigration {
    name: Option<String>,
    versions: Spanned<String>,
    run: Option<String>,
    #[serde(default)]
    tasks: Vec<RawTask>,
    on: Option<Spanned<String>>,
}

pub(super) fn convert(
    file: &std::path::Path,
    raw: Spanned<RawMigration>,
) -> Result<Migration, PlaybookError> {
    let at = |l: &serde_saphyr::Location| {
        SourceSpan::from_location(file, l).unwrap_or_else(|| SourceSpan::new(file, 1, 1))
    };
    let span = at(&raw.referenced);
    let m = raw.value;
    let versions =
        semver::VersionReq::parse(&m.versions.value).map_err(|e| PlaybookError::Invalid {
            message: format!("`versions` is not a semver range (like \">=2.0.0, <3.0.0\"): {e}"),
            span: at(&m.versions.referenced),
        })?;
    let on = match m.on.as_ref().map(|o| o.value.as_str()) {
        None | Some("one") => MigrationTarget::One,
        Some("every") => MigrationTarget::Every,
        Some(other) => {
            return Err(PlaybookError::Invalid {
                message: format!("`on` must be one or every, not `{other}`"),
                span: at(&m.on.as_ref().expect("some").referenced),
            });
        }
    };
    if m.run.is_some() != m.tasks.is_empty() {
        return Err(PlaybookError::Invalid {
            message: "a migration has either `run` or `tasks`".into(),
            span,
        });
    }
    let tasks = m
        .tasks
        .into_iter()
        .map(|t| convert_task(file, t, 0))
        .collect::<Result<_, _>>()?;
    Ok(Migration {
        name: m.name.unwrap_or_else(|| m.versions.value.clone()),
        versions,
        run: m.run,
        tasks,
        on,
    })
}
