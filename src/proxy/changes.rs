//! What an apply must do on one proxy host: the rendered files that differ
//! from the host's, the managed files no longer rendered, and whether the
//! manifest changes. Worked out locally from one probe, so a host where
//! nothing differs costs one round trip and is not reloaded.

use std::collections::HashSet;

use sha2::{Digest, Sha256};

use super::config::{ProxyConfig, RenderedFile};
use super::manifest;
use super::remote::HostFiles;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSet<'a> {
    /// Missing on the host, or different in content or (when given) mode.
    pub write: Vec<FileWrite<'a>>,
    /// Installed by this play before, no longer rendered, still there.
    pub remove: Vec<String>,
    /// The new manifest, when the set of installed files changes.
    pub manifest: Option<String>,
}

/// A file to write, with the mode it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileWrite<'a> {
    pub file: &'a RenderedFile,
    /// The section's `mode`, else the mode of the file it replaces, else 0644.
    pub mode: u32,
}

impl<'a> ChangeSet<'a> {
    pub fn between(config: &'a ProxyConfig, host: &HostFiles) -> ChangeSet<'a> {
        let octal = |mode: &str| u32::from_str_radix(mode, 8).ok();
        let write = config
            .files
            .iter()
            .filter_map(|file| {
                let wanted = file.mode.as_deref().and_then(octal);
                let present = host.present.get(&file.dest);
                let current = present.and_then(|p| octal(&p.mode));
                let differs = match present {
                    None => true,
                    Some(present) => {
                        present.sha256 != hex::encode(Sha256::digest(file.content.as_bytes()))
                            || wanted.is_some_and(|w| Some(w) != current)
                    }
                };
                differs.then(|| FileWrite {
                    file,
                    mode: wanted.or(current).unwrap_or(0o644),
                })
            })
            .collect();
        let rendered: HashSet<&str> = config.files.iter().map(|f| f.dest.as_str()).collect();
        let managed: HashSet<&str> = host.managed.iter().map(String::as_str).collect();
        let mut remove: Vec<String> = managed
            .difference(&rendered)
            .filter(|dest| host.present.contains_key(**dest))
            .map(|dest| (*dest).to_owned())
            .collect();
        remove.sort();
        let manifest = (managed != rendered).then(|| manifest::format(&config.play, rendered));
        ChangeSet {
            write,
            remove,
            manifest,
        }
    }

    /// Whether the proxy's config changes (so it is validated and reloaded).
    pub fn touches_config(&self) -> bool {
        !self.write.is_empty() || !self.remove.is_empty()
    }

    pub fn is_empty(&self) -> bool {
        !self.touches_config() && self.manifest.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::remote::PresentFile;

    fn config(files: &[(&str, &str, Option<&str>)]) -> ProxyConfig {
        ProxyConfig {
            files: files
                .iter()
                .map(|(dest, content, mode)| RenderedFile {
                    dest: (*dest).into(),
                    content: (*content).into(),
                    mode: mode.map(str::to_owned),
                    template: "t.j2".into(),
                })
                .collect(),
            validate: None,
            reload: None,
            manifest: "/m".into(),
            play: "p".into(),
        }
    }

    fn present(content: &str, mode: &str) -> PresentFile {
        PresentFile {
            sha256: hex::encode(Sha256::digest(content.as_bytes())),
            mode: mode.into(),
        }
    }

    #[test]
    fn only_what_differs_is_written_and_only_managed_leftovers_are_removed() {
        let config = config(&[
            ("/c/a.conf", "a", None),
            ("/c/b.conf", "b2", None),
            ("/c/new.conf", "n", None),
            ("/c/mode.conf", "m", Some("0640")),
        ]);
        let host = HostFiles {
            managed: vec![
                "/c/a.conf".into(),
                "/c/b.conf".into(),
                "/c/mode.conf".into(),
                "/c/gone.conf".into(),
                "/c/vanished.conf".into(),
            ],
            present: [
                ("/c/a.conf", present("a", "600")),
                ("/c/b.conf", present("b1", "600")),
                ("/c/mode.conf", present("m", "644")),
                ("/c/gone.conf", present("g", "644")),
                ("/c/other.conf", present("o", "644")),
            ]
            .into_iter()
            .map(|(p, f)| (p.to_owned(), f))
            .collect(),
        };
        let changes = ChangeSet::between(&config, &host);
        let written: Vec<(&str, u32)> = changes
            .write
            .iter()
            .map(|w| (w.file.dest.as_str(), w.mode))
            .collect();
        // a.conf: same content, no mode asked: kept. other.conf: not ours.
        // b.conf keeps its mode, new.conf gets the default.
        assert_eq!(
            written,
            [
                ("/c/b.conf", 0o600),
                ("/c/new.conf", 0o644),
                ("/c/mode.conf", 0o640)
            ]
        );
        assert_eq!(changes.remove, ["/c/gone.conf"]);
        assert_eq!(
            changes.manifest.as_deref(),
            Some(
                manifest::format(
                    "p",
                    ["/c/a.conf", "/c/b.conf", "/c/new.conf", "/c/mode.conf"]
                )
                .as_str()
            )
        );
        assert!(changes.touches_config());
    }

    #[test]
    fn identical_files_already_there_are_adopted_without_touching_the_config() {
        let config = config(&[("/c/a.conf", "a", Some("0644"))]);
        let host = HostFiles {
            managed: vec![],
            present: [("/c/a.conf".to_owned(), present("a", "644"))].into(),
        };
        let changes = ChangeSet::between(&config, &host);
        assert!(!changes.touches_config());
        assert!(changes.manifest.is_some());
        let adopted = HostFiles {
            managed: vec!["/c/a.conf".into()],
            ..host
        };
        assert!(ChangeSet::between(&config, &adopted).is_empty());
    }
}
