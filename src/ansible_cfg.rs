//! The project's `ansible.cfg`, for the settings convoy shares with Ansible.
//!
//! An Ansible project names its inventory and roles directory there, and
//! runs with a bare `ansible-playbook site.yml`; convoy reads the same file
//! so `convoy run site.yml` finds the same inventory and roles. The file is
//! found as ansible-core finds it: `$ANSIBLE_CONFIG`, else `ansible.cfg` in
//! the current directory, else `~/.ansible.cfg`, else
//! `/etc/ansible/ansible.cfg`. Read from `[defaults]`: `inventory`
//! (comma-separated) and `roles_path` (`:`-separated), relative paths taken
//! from the file's directory; `remote_user`, `private_key_file`,
//! `host_key_checking` (the lowest-ranked connection settings, as in
//! Ansible: inventory variables beat them), `forks` (below `--forks`); and
//! from `[privilege_escalation]` `become`, `become_user`, `become_method`
//! (defaults for plays that set none), `become_ask_pass` and
//! `become_password_file` (where sudo's password comes from when no flag
//! says).
//!
//! `become_method` other than `sudo` is an error naming `file:line` (convoy
//! escalates with sudo only). Any other key of those two sections is named
//! in a warning (`file:line`), since convoy does not act on it and the
//! project may count on it; other sections are Ansible's own business
//! (`[ssh_connection]` and the like) and are passed over.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// What convoy takes from an ansible.cfg.
#[derive(Debug, Default)]
pub struct AnsibleCfg {
    pub inventory: Vec<PathBuf>,
    pub roles_path: Vec<PathBuf>,
    pub remote_user: Option<String>,
    pub private_key_file: Option<PathBuf>,
    /// `host_key_checking = False`: unknown host keys are recorded (changed
    /// ones are still refused, as with `--accept-new-host-keys`).
    pub host_key_checking: Option<bool>,
    pub forks: Option<usize>,
    pub become_: Option<bool>,
    pub become_user: Option<String>,
    /// `ansible_managed = ...`: the string `template` gives its templates
    /// as `ansible_managed` (`{host}`, `{uid}` and `{file}` filled in).
    pub ansible_managed: Option<String>,
    /// `vault_password_file = FILE`, used when no vault flag is given.
    pub vault_password_file: Option<PathBuf>,
    /// `become_password_file = FILE`, used when no become password flag is given.
    pub become_password_file: Option<PathBuf>,
    /// `become_ask_pass = True`: `-K` without saying it.
    pub become_ask_pass: Option<bool>,
    /// A setting convoy refuses: the file, the line, the message.
    pub error: Option<(PathBuf, usize, String)>,
    /// Keys convoy does not act on: `file:line: message`.
    pub warnings: Vec<String>,
}

/// Ansible's booleans as its config reads them.
fn boolean(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" | "y" | "t" => Some(true),
        "false" | "no" | "off" | "0" | "n" | "f" => Some(false),
        _ => None,
    }
}

/// Keys read without effect on what convoy does (output, retry files, ...).
const HARMLESS: &[&str] = &[
    "retry_files_enabled",
    "nocows",
    "nocolor",
    "stdout_callback",
    "callback_whitelist",
    "callbacks_enabled",
    "deprecation_warnings",
    "interpreter_python",
    "command_warnings",
    "localhost_warning",
    "display_skipped_hosts",
    "force_color",
    "local_tmp",
    "remote_tmp",
    "log_path",
];

impl AnsibleCfg {
    /// The config of this process (found once: like ansible-core, a run
    /// has one).
    pub fn current() -> &'static AnsibleCfg {
        static CFG: OnceLock<AnsibleCfg> = OnceLock::new();
        CFG.get_or_init(AnsibleCfg::find)
    }

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
        for (number, line) in text.lines().map(str::trim).enumerate() {
            let at = format!("{}:{}", path.display(), number + 1);
            if line.starts_with(['#', ';']) || line.is_empty() {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.trim().to_owned();
                continue;
            }
            if section != "defaults" && section != "privilege_escalation" {
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
                "remote_user" => cfg.remote_user = Some(value.to_owned()),
                "private_key_file" => cfg.private_key_file = Some(resolve(value)),
                "host_key_checking" => match boolean(value) {
                    Some(b) => cfg.host_key_checking = Some(b),
                    None => cfg.warnings.push(format!(
                        "{at}: `host_key_checking = {value}` is not a boolean (ignored)"
                    )),
                },
                "forks" => match value.parse::<usize>() {
                    Ok(n) if n > 0 => cfg.forks = Some(n),
                    _ => {
                        cfg.error.get_or_insert((
                            path.to_path_buf(),
                            number + 1,
                            format!("`forks = {value}`: forks must be a number, at least 1"),
                        ));
                    }
                },
                "become" => match boolean(value) {
                    Some(b) => cfg.become_ = Some(b),
                    None => {
                        cfg.error.get_or_insert((
                            path.to_path_buf(),
                            number + 1,
                            format!("`become = {value}` is not a boolean"),
                        ));
                    }
                },
                "become_user" => cfg.become_user = Some(value.to_owned()),
                // ansible-core also passes the string through strftime with
                // the template's mtime; convoy does not, so a `%` directive
                // is refused rather than written out literally.
                "ansible_managed" if value.contains('%') => {
                    cfg.error.get_or_insert((
                        path.to_path_buf(),
                        number + 1,
                        format!(
                            "`ansible_managed = {value}`: strftime directives (%) are not supported; use {{host}}, {{uid}} and {{file}}"
                        ),
                    ));
                }
                "ansible_managed" => cfg.ansible_managed = Some(value.to_owned()),
                "vault_password_file" => cfg.vault_password_file = Some(resolve(value)),
                "become_password_file" => cfg.become_password_file = Some(resolve(value)),
                "become_ask_pass" => match boolean(value) {
                    Some(b) => cfg.become_ask_pass = Some(b),
                    None => {
                        cfg.error.get_or_insert((
                            path.to_path_buf(),
                            number + 1,
                            format!("`become_ask_pass = {value}` is not a boolean"),
                        ));
                    }
                },
                "become_method" => {
                    if value != "sudo" {
                        cfg.error.get_or_insert((
                            path.to_path_buf(),
                            number + 1,
                            format!(
                                "`become_method = {value}`: convoy escalates with sudo only; set `become_method = sudo` or remove the key"
                            ),
                        ));
                    }
                }
                key if HARMLESS.contains(&key) => {}
                key => cfg.warnings.push(format!(
                    "{at}: `{key}` in [{section}] is not read by convoy (ignored)"
                )),
            }
        }
        cfg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_connection_and_become_settings_and_names_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ansible.cfg");
        std::fs::write(
            &path,
            "[defaults]\nremote_user = deploy\nforks = 3\nhost_key_checking = False\n\
             private_key_file = keys/id\nstrategy = free\nnocows = 1\n\
             [privilege_escalation]\nbecome = True\nbecome_user = app\nbecome_method = sudo\n",
        )
        .unwrap();
        let cfg = AnsibleCfg::read(&path);
        assert_eq!(cfg.remote_user.as_deref(), Some("deploy"));
        assert_eq!(cfg.forks, Some(3));
        assert_eq!(cfg.host_key_checking, Some(false));
        assert_eq!(cfg.private_key_file, Some(dir.path().join("keys/id")));
        assert_eq!(cfg.become_, Some(true));
        assert_eq!(cfg.become_user.as_deref(), Some("app"));
        assert!(cfg.error.is_none());
        assert_eq!(
            cfg.warnings,
            [format!(
                "{}:6: `strategy` in [defaults] is not read by convoy (ignored)",
                path.display()
            )]
        );
        std::fs::write(&path, "[privilege_escalation]\n\nbecome_method = su\n").unwrap();
        let (file, line, message) = AnsibleCfg::read(&path).error.unwrap();
        assert_eq!((file, line), (path.clone(), 3));
        assert!(message.contains("sudo only"), "{message}");
    }

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

    #[test]
    fn reads_where_the_become_password_comes_from() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ansible.cfg");
        std::fs::write(
            &path,
            "[defaults]\nbecome_password_file = secrets/sudo\n\
             [privilege_escalation]\nbecome_ask_pass = True\n",
        )
        .unwrap();
        let cfg = AnsibleCfg::read(&path);
        assert_eq!(
            cfg.become_password_file,
            Some(dir.path().join("secrets/sudo"))
        );
        assert_eq!(cfg.become_ask_pass, Some(true));
        assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
    }
}
