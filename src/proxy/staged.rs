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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::config::RenderedFile;

    fn config(files: &[(&str, &str)]) -> ProxyConfig {
        ProxyConfig {
            files: files
                .iter()
                .map(|(dest, content)| RenderedFile {
                    dest: (*dest).into(),
                    content: (*content).into(),
                    mode: None,
                    template: "t.j2".into(),
                })
                .collect(),
            validate: None,
            reload: Some("reload".into()),
            manifest: "/m".into(),
            play: "p".into(),
        }
    }

    #[test]
    fn a_preview_starts_from_what_the_one_before_would_have_installed() {
        let mut staged = StagedFiles::probed(HostFiles::default());
        let first = config(&[("/a.conf", "one"), ("/b.conf", "b")]);
        let changes = ChangeSet::between(&first, staged.files());
        assert_eq!(changes.write.len(), 2);
        staged.install(&first, &changes);
        assert_eq!(staged.written("/a.conf"), Some("one"));
        assert_eq!(staged.files().managed, ["/a.conf", "/b.conf"]);

        // The same files again: nothing more to do.
        assert!(ChangeSet::between(&first, staged.files()).is_empty());

        // /a.conf changes and /b.conf is no longer rendered: only those.
        let second = config(&[("/a.conf", "two")]);
        let changes = ChangeSet::between(&second, staged.files());
        let written: Vec<&str> = changes.write.iter().map(|w| w.file.dest.as_str()).collect();
        assert_eq!(written, ["/a.conf"]);
        assert_eq!(changes.remove, ["/b.conf"]);
        staged.install(&second, &changes);
        assert_eq!(staged.written("/a.conf"), Some("two"));
        assert_eq!(staged.written("/b.conf"), Some(""));
        assert!(!staged.files().present.contains_key("/b.conf"));
        assert!(ChangeSet::between(&second, staged.files()).is_empty());
    }
}
