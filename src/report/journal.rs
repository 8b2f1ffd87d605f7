//! The run journal, `<project>/.convoy/runs/<run-id>.jsonl`: every event of
//! a run as a JSON line, for `convoy resume` and for the record.
//!
//! It records hosts, commands and their output, so it is the owner's alone:
//! the directories are 0700 and the file 0600, and directories left looser
//! by an older convoy (or a umask) are tightened when a run starts.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of `.convoy/` and `.convoy/runs/`.
const DIR_MODE: u32 = 0o700;
/// Mode of a journal file.
const FILE_MODE: u32 = 0o600;

/// A journal opened for writing.
pub struct Journal {
    pub path: PathBuf,
    pub file: File,
}

impl Journal {
    /// Creates the journal of run `run_id` in the project at `project`.
    pub fn create(project: &Path, run_id: &str) -> io::Result<Journal> {
        // Absolute: `NOTE journal:` must name it wherever the reader stands.
        let convoy = std::path::absolute(project)?.join(".convoy");
        let runs = convoy.join("runs");
        for dir in [&convoy, &runs] {
            private_dir(dir)?;
        }
        let path = runs.join(format!("{run_id}.jsonl"));
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(FILE_MODE)
            .open(&path)?;
        // `mode` applies only to a new file.
        file.set_permissions(Permissions::from_mode(FILE_MODE))?;
        Ok(Journal { path, file })
    }
}

/// What `convoy runs` and `convoy ctl` read back from a journal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalSummary {
    pub run_id: Option<String>,
    pub playbook: Option<String>,
    /// `run_end`'s outcome and exit code; `None`: the run has not ended, or
    /// it was killed before it could say.
    pub end: Option<(String, i64)>,
}

impl JournalSummary {
    /// Reads the journal at `path`; lines that are not JSON (a run killed
    /// mid-write) are skipped.
    pub fn read(path: &Path) -> io::Result<JournalSummary> {
        let text = std::fs::read_to_string(path)?;
        let mut summary = JournalSummary::default();
        for line in text.lines() {
            let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            match event["event"].as_str() {
                Some("run_start") => {
                    summary.run_id = event["run_id"].as_str().map(str::to_owned);
                    summary.playbook = event["playbook"].as_str().map(str::to_owned);
                }
                Some("run_end") => {
                    summary.end = Some((
                        event["outcome"].as_str().unwrap_or("?").to_owned(),
                        event["exit_code"].as_i64().unwrap_or(-1),
                    ));
                }
                _ => {}
            }
        }
        Ok(summary)
    }
}

/// Makes `dir` (0700), or tightens it to 0700 if it exists with more.
fn private_dir(dir: &Path) -> io::Result<()> {
    match DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode != DIR_MODE {
        std::fs::set_permissions(dir, Permissions::from_mode(DIR_MODE))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn journal_and_its_directories_are_private_even_if_they_existed() {
        let project = tempfile::tempdir().unwrap();
        let runs = project.path().join(".convoy/runs");
        std::fs::create_dir_all(&runs).unwrap();
        std::fs::set_permissions(
            project.path().join(".convoy"),
            Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::set_permissions(&runs, Permissions::from_mode(0o777)).unwrap();
        let journal = Journal::create(project.path(), "r1").unwrap();
        assert_eq!(journal.path, runs.join("r1.jsonl"));
        assert_eq!(mode(&journal.path), 0o600);
        assert_eq!(mode(&runs), 0o700);
        assert_eq!(mode(&project.path().join(".convoy")), 0o700);
    }
}
