//! The differential oracle: one compat case run by ansible-core and by
//! convoy against the same fleet hosts, and what each left there.
//!
//! A case is a directory of `tests/compat/cases/` holding an ordinary
//! Ansible project (inventory, `site.yml`, templates, files) and a
//! `case.yml` saying what it covers. The hosts are reset (their
//! `/srv/compat` removed) before each tool's turn; each tool runs the case
//! twice (the second run must change nothing), then the hosts' `/srv/compat`
//! trees (paths, types, modes, owners, contents, link targets) and the
//! first runs' recaps (ok/changed/failed/skipped per host) and exit codes
//! are compared.
//!
//! Inventories name the fleet's hosts `h1`, `h2`, ... without addresses:
//! both tools are handed an ssh_config (fleet's, plus a `HostName` per host)
//! so that a case's inventory holds only what the case is about.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::http_server::HttpServer;
use super::{CLEAN_PATH, Fleet, fresh_home};

/// Where `.ci/run` creates the virtualenv with the pinned ansible-core.
pub const DEFAULT_VENV: &str = "/opt/convoy-compat-venv";

/// The directory every case writes into on the hosts, wiped between runs.
pub const TARGET: &str = "/srv/compat";

/// Where the cases' `www/` trees are served from on h1, and the port.
const WWW: &str = "/var/www/compat";
const WWW_PORT: u16 = 8088;
/// The apt cases' local repository on each host (its only apt source,
/// see `apt.rs`), removed between turns. Outside [`TARGET`]: the packages
/// each tool builds there differ in their time stamps.
pub const APT_REPO: &str = "/srv/compat-apt";
/// The `git` cases' repositories and clones, removed between turns:
/// outside [`TARGET`], since two clones' `.git` internals (time stamps,
/// the index, reflogs) differ; the cases write what the clones hold
/// under [`TARGET`].
pub const GIT_WORK: &str = "/srv/compat-git";
/// The files of a host's local users and groups, reset between turns.
const ACCOUNT_FILES: [&str; 4] = ["passwd", "group", "shadow", "gshadow"];
/// What the `cron` cases write, removed between turns: the host's users'
/// crontabs (its own spool, fleet.sh) and cron.d files named `compat-*`.
const CRON_FILES: &str = "/var/spool/cron/crontabs/* /etc/cron.d/compat-*";
/// What the become cases write, removed between turns: their users'
/// sudo rules (in each host's own /etc, fleet.sh).
const SUDO_RULES: &str = "/etc/sudoers.d/compat-*";

/// What `case.yml` says about a case.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseSpec {
    /// The area the score counts it in (inventory, precedence, templates, ...).
    pub area: String,
    /// What the case shows, in a sentence.
    pub about: String,
    /// `-i` arguments, relative to the case (default: `hosts`).
    #[serde(default = "default_inventory")]
    pub inventory: Vec<String>,
    /// The playbook (default: `site.yml`).
    #[serde(default = "default_playbook")]
    pub playbook: String,
    /// More arguments for both tools (`-e k=v`, `--limit h1`).
    #[serde(default)]
    pub args: Vec<String>,
    /// A known difference: why convoy's result differs from ansible-core's.
    pub known_difference: Option<String>,
    /// convoy refuses the case (bad input, exit 3): why.
    pub unsupported: Option<String>,
    /// A project kept elsewhere in the repository (e.g.
    /// `playbooks/ansible-project`), relative to the repository's root: it
    /// is copied first, the case's own files over it. The shipped example
    /// project is checked this way without a copy of it under `cases/`.
    pub project: Option<String>,
    /// The case's `www/` is served over HTTP from h1 (by
    /// `tests/compat/http_server.py`) and both tools get its URL as the
    /// extra var `http_base` (`http://ADDRESS:PORT/CASE`).
    #[serde(default)]
    pub http: bool,
}

fn default_inventory() -> Vec<String> {
    vec!["hosts".into()]
}

fn default_playbook() -> String {
    "site.yml".into()
}

/// One case, loaded.
pub struct Case {
    pub name: String,
    pub dir: PathBuf,
    pub spec: CaseSpec,
}

impl Case {
    pub fn load(dir: &Path) -> Case {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(dir.join("case.yml"))
            .unwrap_or_else(|e| panic!("case {name}: cannot read case.yml: {e}"));
        let spec: CaseSpec = serde_saphyr::from_str(&text)
            .unwrap_or_else(|e| panic!("case {name}: bad case.yml: {e}"));
        Case {
            name,
            dir: dir.to_owned(),
            spec,
        }
    }

    /// Copies what the tools run into `dest`: the project named by
    /// `project:` if any, then the case's own files.
    pub fn copy_into(&self, dest: &Path) {
        if let Some(project) = &self.spec.project {
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(project);
            assert!(
                root.is_dir(),
                "case {}: project {} is not a directory",
                self.name,
                root.display()
            );
            copy_tree(&root, dest);
        }
        copy_tree(&self.dir, dest);
    }

    /// Every case under `root`, in name order.
    pub fn all(root: &Path) -> Vec<Case> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", root.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.join("case.yml").is_file())
            .collect();
        dirs.sort();
        dirs.iter().map(|d| Case::load(d)).collect()
    }
}

/// Which tool ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    Ansible,
    Convoy,
}

impl fmt::Display for Tool {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Tool::Ansible => "ansible-playbook",
            Tool::Convoy => "convoy",
        })
    }
}

/// Per host: ok, changed, failed, skipped (the counts both recaps have and
/// mean the same by).
pub type Recap = BTreeMap<String, [u32; 4]>;

/// One run of one tool.
pub struct ToolRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub recap: Recap,
}

impl ToolRun {
    pub fn dump(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
    pub fn changed(&self) -> u32 {
        self.recap.values().map(|c| c[1]).sum()
    }
}

/// The fleet, the ansible venv and the ssh_config both tools use.
pub struct Oracle {
    pub fleet: Fleet,
    venv: PathBuf,
    ssh_config: PathBuf,
    /// Started by the first case that asks for one ([`CaseSpec::http`]).
    www: std::sync::OnceLock<HttpServer>,
    /// The machine's installed packages: what a host is restored to.
    packages: std::collections::BTreeSet<String>,
}

impl Oracle {
    /// A fleet of `hosts` hosts and the virtualenv (`$CONVOY_COMPAT_VENV`,
    /// else [`DEFAULT_VENV`]); panics, saying how to make it, when missing.
    pub fn start(hosts: usize) -> Oracle {
        let venv = std::env::var_os("CONVOY_COMPAT_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_VENV));
        assert!(
            venv.join("bin/ansible-playbook").is_file(),
            "no ansible-playbook in {}: `bash .ci/run` creates that virtualenv \
             (or set CONVOY_COMPAT_VENV to one with the pinned ansible-core)",
            venv.display()
        );
        let fleet = Fleet::start(hosts);
        let mut config = std::fs::read_to_string(fleet.ssh_config()).unwrap();
        for i in fleet.hosts() {
            config.push_str(&format!(
                "\nHost {}\n    HostName {}\n",
                fleet.name(i),
                fleet.addr(i)
            ));
        }
        let ssh_config = fleet.dir().join("compat_ssh_config");
        std::fs::write(&ssh_config, config).unwrap();
        for i in fleet.hosts() {
            super::apt::offline(&fleet, i, APT_REPO);
        }
        Oracle {
            fleet,
            venv,
            ssh_config,
            www: std::sync::OnceLock::new(),
            packages: super::apt::machine_packages(),
        }
    }

    /// `ansible-playbook --version`'s first line (`ansible-playbook [core 2.18.19]`).
    pub fn ansible_version(&self) -> String {
        let out = Command::new(self.venv.join("bin/ansible-playbook"))
            .arg("--version")
            .env("HOME", fresh_home())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("?")
            .to_owned()
    }

    /// Removes [`TARGET`], [`CRON_FILES`], [`SUDO_RULES`], [`APT_REPO`] and
    /// [`GIT_WORK`] on every host, and gives each host the machine's users
    /// and groups again (the `user` and `group` cases create some:
    /// the other tool must start from the same accounts). The host's
    /// /etc is its own overlay (fleet.sh), so the files are written there
    /// in place, through a copy in the host's /tmp. Packages a case
    /// installed are purged, its apt repository removed (the apt cases).
    pub fn reset(&self) {
        for i in self.fleet.hosts() {
            super::apt::restore_packages(&self.fleet, i, &self.packages);
            let mut restore =
                format!("rm -rf {TARGET} {CRON_FILES} {SUDO_RULES} {APT_REPO} {GIT_WORK}");
            for file in ACCOUNT_FILES {
                let Ok(content) = std::fs::read(format!("/etc/{file}")) else {
                    continue;
                };
                std::fs::write(
                    self.fleet.host_path(i, &format!("/tmp/compat-{file}")),
                    content,
                )
                .unwrap();
                restore.push_str(&format!(
                    " && cat /tmp/compat-{file} > /etc/{file} && rm /tmp/compat-{file}"
                ));
            }
            self.fleet.exec_ok(i, &restore);
        }
    }

    /// Runs `case` with `tool` in `project` (a copy of the case).
    pub fn run(&self, tool: Tool, case: &Case, project: &Path, home: &Path) -> ToolRun {
        let mut cmd = match tool {
            Tool::Ansible => self.ansible(project, home),
            Tool::Convoy => {
                let mut cmd = Command::new(env!("CARGO_BIN_EXE_convoy"));
                cmd.env_clear()
                    .env("PATH", CLEAN_PATH)
                    .env("HOME", home)
                    .env("NO_COLOR", "1")
                    .env("TERM", "dumb")
                    .args(["run", &case.spec.playbook, "--ssh-config"])
                    .arg(&self.ssh_config)
                    .args(["--output", "json"]);
                cmd
            }
        };
        if tool == Tool::Ansible {
            cmd.arg(&case.spec.playbook);
        }
        for inventory in &case.spec.inventory {
            cmd.arg("-i").arg(inventory);
        }
        cmd.args(&case.spec.args);
        if case.spec.http {
            cmd.arg("-e").arg(format!("http_base={}", self.serve(case)));
        }
        let out = cmd
            .current_dir(project)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let recap = match tool {
            Tool::Ansible => ansible_recap(&stdout),
            Tool::Convoy => convoy_recap(&stdout),
        };
        ToolRun {
            code: out.status.code().unwrap_or(-1),
            stdout,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            recap,
        }
    }

    /// ansible-playbook with its configuration isolated: a fresh HOME (no
    /// ~/.ansible of this machine), the case's own ansible.cfg or none, the
    /// fleet's ssh_config, python3 named on the hosts.
    fn ansible(&self, project: &Path, home: &Path) -> Command {
        let mut cmd = Command::new(self.venv.join("bin/ansible-playbook"));
        let config = if project.join("ansible.cfg").is_file() {
            project.join("ansible.cfg")
        } else {
            let empty = home.join("ansible.cfg");
            std::fs::write(&empty, "").unwrap();
            empty
        };
        let ssh_args = format!(
            "-F {} -o ControlMaster=auto -o ControlPersist=60s",
            self.ssh_config.display()
        );
        cmd.env_clear()
            .env(
                "PATH",
                format!("{}:{CLEAN_PATH}", self.venv.join("bin").display()),
            )
            .env("HOME", home)
            .env("LANG", "C.UTF-8")
            .env("ANSIBLE_CONFIG", config)
            .env("ANSIBLE_SSH_ARGS", ssh_args)
            .env("ANSIBLE_SSH_CONTROL_PATH_DIR", home.join("cp"))
            .env("ANSIBLE_HOST_KEY_CHECKING", "False")
            .env("ANSIBLE_PYTHON_INTERPRETER", "/usr/bin/python3")
            .env("ANSIBLE_PIPELINING", "True")
            .env("ANSIBLE_RETRY_FILES_ENABLED", "False")
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_NOCOWS", "1")
            .env("ANSIBLE_LOCAL_TEMP", home.join("ansible-tmp"))
            .env("ANSIBLE_FORKS", "10");
        cmd
    }

    /// The URL under which h1 serves `case`'s `www/` (copied there once,
    /// so that its files keep their mtimes between the runs).
    fn serve(&self, case: &Case) -> String {
        let dir = self.fleet.host_path(1, &format!("{WWW}/{}", case.name));
        if !dir.exists() {
            copy_tree(&case.dir.join("www"), &dir);
        }
        let server = self.www.get_or_init(|| {
            let script = self.fleet.host_path(1, &format!("{WWW}/http_server.py"));
            std::fs::copy(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat/http_server.py"),
                script,
            )
            .unwrap();
            let addr = self.fleet.addr(1);
            let cmd =
                format!("exec timeout 3600 python3 {WWW}/http_server.py {WWW} {addr} {WWW_PORT}");
            HttpServer::start_command(&self.fleet, 1, &cmd, WWW_PORT)
        });
        format!("{}/{}", server.url, case.name)
    }

    /// What [`TARGET`] holds on every host.
    pub fn snapshot(&self) -> BTreeMap<String, String> {
        let mut all = BTreeMap::new();
        for i in self.fleet.hosts() {
            let root = self.fleet.host_path(i, TARGET);
            walk(&root, &root, &self.fleet.name(i), &mut all);
        }
        all
    }
}

/// Records every entry under `dir` as `host:/srv/compat/rel` -> a line with
/// its type, mode, owner and content (or link target).
fn walk(root: &Path, dir: &Path, host: &str, out: &mut BTreeMap<String, String>) {
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return;
    };
    let rel = dir.strip_prefix(root).unwrap().display().to_string();
    let key = if rel.is_empty() {
        format!("{host}:{TARGET}")
    } else {
        format!("{host}:{TARGET}/{rel}")
    };
    let attrs = format!(
        "mode={:04o} owner={}:{}",
        meta.mode() & 0o7777,
        meta.uid(),
        meta.gid()
    );
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = std::fs::read_link(dir).unwrap();
        out.insert(key, format!("link -> {} {attrs}", target.display()));
    } else if ft.is_dir() {
        out.insert(key, format!("dir {attrs}"));
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for entry in entries {
            walk(root, &entry, host, out);
        }
    } else {
        let bytes = std::fs::read(dir).unwrap();
        // The content on the lines after the first, so that a difference
        // shows as a line diff.
        let content = match String::from_utf8(bytes.clone()) {
            Ok(text) if text.len() <= 64 * 1024 => text,
            _ => format!("sha256:{}", hex::encode(Sha256::digest(&bytes))),
        };
        out.insert(key, format!("file {attrs}\n{content}"));
    }
}

/// Ansible's `PLAY RECAP` lines: `h1 : ok=2 changed=1 unreachable=0 failed=0 skipped=0 ...`.
pub fn ansible_recap(stdout: &str) -> Recap {
    let mut recap = Recap::new();
    let Some(start) = stdout.find("PLAY RECAP") else {
        return recap;
    };
    for line in stdout[start..].lines().skip(1) {
        let Some((host, counts)) = line.split_once(" : ") else {
            continue;
        };
        let field = |name: &str| -> u32 {
            counts
                .split_whitespace()
                .find_map(|f| f.strip_prefix(&format!("{name}=")))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        recap.insert(
            host.trim().to_owned(),
            [
                field("ok"),
                field("changed"),
                field("failed"),
                field("skipped"),
            ],
        );
    }
    recap
}

/// convoy's `--output json` recap event.
pub fn convoy_recap(stdout: &str) -> Recap {
    let mut recap = Recap::new();
    let event = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "recap");
    let Some(event) = event else {
        return recap;
    };
    for (host, stats) in event["hosts"].as_object().into_iter().flatten() {
        let n = |k: &str| stats[k].as_u64().unwrap_or(0) as u32;
        recap.insert(
            host.clone(),
            [n("ok"), n("changed"), n("failed"), n("skipped")],
        );
    }
    recap
}

/// Copies a case's directory (recursively, links as links) into `dest`, so
/// that neither tool writes into the source tree (convoy's journals,
/// ansible's retry files).
pub fn copy_tree(src: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let (from, to) = (entry.path(), dest.join(entry.file_name()));
        let ft = entry.file_type().unwrap();
        if ft.is_dir() {
            copy_tree(&from, &to);
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from).unwrap(), &to).unwrap();
        } else {
            std::fs::copy(&from, &to).unwrap();
        }
    }
}

/// The lines in which two snapshots differ, `-` ansible's, `+` convoy's.
pub fn snapshot_diff(
    ansible: &BTreeMap<String, String>,
    convoy: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut lines = Vec::new();
    let keys: std::collections::BTreeSet<&String> = ansible.keys().chain(convoy.keys()).collect();
    for key in keys {
        match (ansible.get(key), convoy.get(key)) {
            (Some(a), Some(c)) if a == c => {}
            (Some(a), Some(c)) => {
                let (a_head, a_body) = a.split_once('\n').unwrap_or((a, ""));
                let (c_head, c_body) = c.split_once('\n').unwrap_or((c, ""));
                if a_head != c_head {
                    lines.push(format!("- {key} {a_head}"));
                    lines.push(format!("+ {key} {c_head}"));
                }
                if a_body != c_body {
                    lines.push(format!("  {key} content:"));
                    let diff = similar::TextDiff::from_lines(a_body, c_body);
                    for change in diff.iter_all_changes() {
                        let sign = match change.tag() {
                            similar::ChangeTag::Equal => continue,
                            similar::ChangeTag::Delete => '-',
                            similar::ChangeTag::Insert => '+',
                        };
                        lines.push(format!("  {sign} {:?}", change.value()));
                    }
                }
            }
            (a, c) => {
                if let Some(a) = a {
                    lines.push(format!("- {key} {a:?}"));
                }
                if let Some(c) = c {
                    lines.push(format!("+ {key} {c:?}"));
                }
            }
        }
    }
    lines
}
