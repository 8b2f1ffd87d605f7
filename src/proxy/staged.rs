//! What a check run would have installed on a proxy host so far. A run
//! applies the proxy tier several times (before the first batch, after it,
//! then each traffic step), each apply starting from the files the one
//! before installed. `--check` installs nothing, so without this every
//! preview would compare against the host's files as they are, and each
//! traffic step's diff would repeat the steps before it. The first preview
//! of a host probes it; later ones start from what the previews before
//! would have left there.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::changes::ChangeSet;
use super::config::ProxyConfig;
use super::remote::{HostFiles, PresentFile};

/// A proxy host's files as the check run's previews would have left them.
#[derive(Debug, Clone, Default)]
pub struct StagedFiles {
    files: HostFiles,
    /// Content of the files a preview would have written, by path; files
    /// not here hold what the host holds.
    written: HashMap<String, String>,
}

impl StagedFiles {
    /// As the host holds them (its probe).
    pub fn probed(files: HostFiles) -> StagedFiles {
        StagedFiles {
            files,
            written: HashMap::new(),
        }
    }

    pub fn files(&self) -> &HostFiles {
        &self.files
    }

    /// What a preview before would have written at `dest`: `None` when no
    /// preview wrote it (the host's own file is the one to read), `Some("")`
    /// when one removed it.
    pub fn written(&self, dest: &str) -> Option<&str> {
        self.written.get(dest).map(String::as_str)
    }

    /// The host once `changes` (worked out against these files for
    /// `config`) would be installed.
    pub fn install(&mut self, config: &ProxyConfig, changes: &ChangeSet<'_>) {
        for w in &changes.write {
            let present = PresentFile {
                sha256: hex::encode(Sha256::digest(w.file.content.as_bytes())),
                mode: format!("{:o}", w.mode),
            };
            self.files.present.insert(w.file.dest.clone(), present);
            self.written
                .insert(w.file.dest.clone(), w.file.content.clone());
        }
        for dest in &changes.remove {
            self.files.present.remove(dest);
            self.written.insert(dest.clone(), String::new());
        }
        if changes.manifest.is_some() {
            self.files.managed = config.files.iter().map(|f| f.dest.clone()).collect();
        }
    }
}
