//! The project's `ansible.cfg`, for the settings convoy shares with Ansible.
//!
//! An Ansible project names its inventory and roles directory there, and
//! runs with a bare `ansible-playbook site.yml`; convoy reads the same file
//! so `convoy run site.yml` finds the same inventory and roles. The file is
//! found as ansible-core finds it: `$ANSIBLE_CONFIG`, else `ansible.cfg` in
//! the current directory, else `~/.ansible.cfg`, else
//! `/etc/ansible/ansible.cfg`. Read from `[defaults]`: `inventory`
//! (comma-separated) and `roles_path` (`:`-separated), relative paths taken
//! from the file's directory.

use std::path::{Path, PathBuf};

/// What convoy takes from an ansible.cfg.
#[derive(Debug, Default)]
pub struct AnsibleCfg {
    pub inventory: Vec<PathBuf>,
    pub roles_path: Vec<PathBuf>,
}

impl AnsibleCfg {
    /// The first config file ansible-core would use, read; empty if none.
    pub fn find() -> AnsibleCfg {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(path) = std::env::var_os("ANSIBLE_CONFIG") {
            candidates.push(path.into());
        }
        candidates.push("ansible.cfg".into());
        if let Some(home) = std::env::var_os("HOME") {
            candidates.push(Path::new(&home).join(".ansible.cfg"));
        }
        candidates.push("/etc/ansible/ansible.cfg".into());
        candidates
            .iter()
            .find(|p| p.is_file())
            .map(|p| AnsibleCfg::read(p))
            .unwrap_or_default()
    }

    /// Reads one file (a missing or unreadable one gives nothing).
    pub fn read(path: &Path) -> AnsibleCfg {
        let mut cfg = AnsibleCfg::default();
        let Ok(text) = std::fs::read_to_string(path) else {
            return cfg;
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &str| {
            let p = p.trim();
            let expanded = match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
                (Some(rest), Some(home)) => Path::new(&home).join(rest),
                _ => PathBuf::from(p),
            };
            if expanded.is_absolute() {
                expanded
            } else {
                dir.join(expanded)
            }
        };
        let mut section = String::new();
        for line in text.lines().map(str::trim) {
            if line.starts_with(['#', ';']) || line.is_empty() {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.trim().to_owned();
                continue;
            }
            if section != "defaults" {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            // ansible-core's configparser takes `;` (after whitespace) as an
            // inline comment, not `#`.
            let value = value.split(" ;").next().unwrap_or(value).trim();
            match key.trim() {
                "inventory" | "hostfile" => {
                    cfg.inventory = value
                        .split(',')
                        .filter(|p| !p.trim().is_empty())
                        .map(resolve)
                        .collect()
                }
                "roles_path" => {
                    cfg.roles_path = value
                        .split(':')
                        .filter(|p| !p.trim().is_empty())
                        .map(resolve)
                        .collect()
                }
                _ => {}
            }
        }
        cfg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_inventory_and_roles_path_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ansible.cfg");
        std::fs::write(
            &path,
            "[defaults]\ninventory = ./hosts, /abs/inv  ; two\nroles_path = roles:/usr/share/roles\n\
             [ssh_connection]\ninventory = ignored\n",
        )
        .unwrap();
        let cfg = AnsibleCfg::read(&path);
        assert_eq!(
            cfg.inventory,
            [dir.path().join("./hosts"), PathBuf::from("/abs/inv")]
        );
        assert_eq!(
            cfg.roles_path,
            [dir.path().join("roles"), PathBuf::from("/usr/share/roles")]
        );
    }
}
