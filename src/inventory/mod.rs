//! Inventories: which hosts exist, how they are grouped, and their variables.
//!
//! convoy reads Ansible's inventory formats (YAML and INI files, executable
//! inventory scripts, directories of any of them, plus `group_vars/` and
//! `host_vars/` beside the inventory and the playbook) and
//! reproduces Ansible's group semantics and variable precedence, so an
//! existing Ansible project can switch tools without touching its inventory.
//!
//! Loading happens in two steps: the source loaders (`yaml`, `ini`, `script`) add
//! hosts, groups and variables one by one, then [`Inventory::finish`] derives
//! everything that depends on the whole picture (implicit `all`/`ungrouped`
//! membership, group depths, each host's sorted group list, each group's full
//! member list). Queries then read those precomputed tables, which keeps
//! pattern selection and variable merging linear even for 10,000 hosts.

mod display;
mod error;
mod ini;
mod pattern;
pub(crate) use pattern::glob_regex;
pub(crate) mod python_literal;
mod script;
mod vars_dirs;
mod yaml;

pub use error::InventoryError;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::vars::{Value, VarMap};

/// Connection variables that reach ssh's command line as words.
pub const CONNECTION_WORDS: &[&str] = &[
    "ansible_host",
    "ansible_ssh_host",
    "ansible_user",
    "ansible_ssh_user",
];

/// Index of the `all` group; it is created first in every inventory.
const ALL: usize = 0;
/// Index of the `ungrouped` group; created second, as Ansible does.
const UNGROUPED: usize = 1;

/// Name of the host Ansible conjures up when a pattern asks for it but the
/// inventory does not define it.
const IMPLICIT_LOCALHOST: &str = "localhost";

/// Variables convoy computes itself; `--list` leaves them out like
/// ansible-inventory does, since they are not inventory data.
const MAGIC_VARS: &[&str] = &[
    "inventory_hostname",
    "inventory_hostname_short",
    "group_names",
    "inventory_file",
    "inventory_dir",
];

/// One host of the inventory.
#[derive(Debug, Clone)]
pub struct Host {
    pub name: String,
    /// Variables from inventory sources (YAML, scripts); later sources win.
    vars: VarMap,
    /// Variables from `host_vars/` beside an inventory, which outrank `vars`.
    dir_vars: VarMap,
    /// Variables from `host_vars/` beside the playbook, which outrank `dir_vars`.
    play_vars: VarMap,
    /// Groups that list this host themselves, in the order they did.
    direct_groups: Vec<usize>,
    /// Every group the host is in (ancestors included, `all` excluded),
    /// sorted by Ansible's precedence; filled in by `finish`.
    groups: Vec<usize>,
    /// The inventory source that first defined the host (`inventory_file`).
    source: Option<PathBuf>,
}

impl Host {
    fn new(name: &str, source: Option<&Path>) -> Self {
        Host {
            name: name.to_owned(),
            vars: VarMap::new(),
            dir_vars: VarMap::new(),
            play_vars: VarMap::new(),
            direct_groups: Vec::new(),
            groups: Vec::new(),
            source: source.map(Path::to_owned),
        }
    }
}

#[derive(Debug, Clone)]
struct Group {
    name: String,
    /// Variables from inventory sources.
    vars: VarMap,
    /// Variables from `group_vars/` beside an inventory, which outrank `vars`.
    dir_vars: VarMap,
    /// Variables from `group_vars/` beside the playbook, which outrank `dir_vars`.
    play_vars: VarMap,
    /// `ansible_group_priority`: breaks ties between groups of equal depth.
    priority: i64,
    /// Hosts listed directly in this group, in the order they were listed.
    hosts: Vec<usize>,
    children: Vec<usize>,
    parents: Vec<usize>,
    /// Longest distance from `all`; deeper groups' variables win.
    depth: usize,
    /// Every host in this group or a descendant, in inventory order; filled in by `finish`.
    members: Vec<usize>,
}

impl Group {
    fn new(name: &str) -> Self {
        Group {
            name: name.to_owned(),
            vars: VarMap::new(),
            dir_vars: VarMap::new(),
            play_vars: VarMap::new(),
            priority: 1,
            hosts: Vec::new(),
            children: Vec::new(),
            parents: Vec::new(),
            depth: 0,
            members: Vec::new(),
        }
    }
}

/// A loaded inventory: hosts, groups and their variables.
#[derive(Debug, Clone)]
pub struct Inventory {
    hosts: Vec<Host>,
    host_index: HashMap<String, usize>,
    groups: Vec<Group>,
    group_index: HashMap<String, usize>,
    /// Stands in for `localhost` when a pattern names it but the inventory
    /// does not define it; like Ansible's, it is in no group, not even `all`.
    implicit_localhost: Host,
    /// The directories whose `group_vars/`/`host_vars/` were read as the inventory's.
    vars_bases: Vec<PathBuf>,
}

impl Inventory {
    /// Loads and merges every source, in order.
    ///
    /// A source is a YAML or INI file (see `load_file`), an executable
    /// inventory script, or a directory of such files (read in
    /// name order, skipping hidden files, `group_vars/`, `host_vars/` and
    /// Ansible's ignored extensions). `group_vars/` and `host_vars/` beside
    /// each file source, or inside each directory source, are loaded too.
    pub fn load(sources: &[PathBuf]) -> Result<Inventory, InventoryError> {
        let mut inventory = Inventory::empty();
        // Where to look for group_vars/ and host_vars/, each directory once.
        let mut vars_bases: Vec<PathBuf> = Vec::new();
        for source in sources {
            let meta = fs::metadata(source).map_err(|error| InventoryError::Read {
                path: source.clone(),
                error,
            })?;
            let base = if meta.is_dir() {
                inventory.load_dir(source)?;
                source.clone()
            } else {
                inventory.load_file(source, &meta)?;
                match source.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
                    _ => PathBuf::from("."),
                }
            };
            if !vars_bases.contains(&base) {
                vars_bases.push(base);
            }
        }
        inventory.finish()?;
        for base in &vars_bases {
            vars_dirs::load(&mut inventory, base, vars_dirs::Level::Inventory)?;
        }
        inventory.vars_bases = vars_bases;
        inventory.check_addresses()?;
        Ok(inventory)
    }

    /// Refuses a host name, address or user that ssh would read as an
    /// option (`-oProxyCommand=...`): ssh takes the destination last, and
    /// no valid host or user starts with `-`.
    fn check_addresses(&self) -> Result<(), InventoryError> {
        let option_like = |v: &Value| matches!(v, Value::String(s) if s.starts_with('-'));
        for host in &self.hosts {
            if host.name.starts_with('-') {
                return Err(InventoryError::OptionLike {
                    owner: format!("host {}", host.name),
                    var: "its name (the address when ansible_host is not set)",
                    value: host.name.clone(),
                });
            }
            for vars in [&host.vars, &host.dir_vars, &host.play_vars] {
                if let Some((var, value)) = CONNECTION_WORDS
                    .iter()
                    .find_map(|k| vars.get(*k).filter(|v| option_like(v)).map(|v| (*k, v)))
                {
                    return Err(InventoryError::OptionLike {
                        owner: format!("host {}", host.name),
                        var,
                        value: value.as_str().unwrap_or_default().to_owned(),
                    });
                }
            }
        }
        for group in &self.groups {
            for vars in [&group.vars, &group.dir_vars, &group.play_vars] {
                if let Some((var, value)) = CONNECTION_WORDS
                    .iter()
                    .find_map(|k| vars.get(*k).filter(|v| option_like(v)).map(|v| (*k, v)))
                {
                    return Err(InventoryError::OptionLike {
                        owner: format!("group {} (for each of its hosts)", group.name),
                        var,
                        value: value.as_str().unwrap_or_default().to_owned(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Loads `group_vars/` and `host_vars/` beside the playbook (Ansible's
    /// "playbook group_vars"), each just above its inventory counterpart.
    /// A directory already read as an inventory's is not read twice: the
    /// same files at both levels would change no value.
    pub fn load_playbook_vars(&mut self, playbook_dir: &Path) -> Result<(), InventoryError> {
        let dir = if playbook_dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            playbook_dir
        };
        let same = |base: &PathBuf| {
            fs::canonicalize(base)
                .ok()
                .zip(fs::canonicalize(dir).ok())
                .is_some_and(|(a, b)| a == b)
        };
        if self.vars_bases.iter().any(same) {
            return Ok(());
        }
        vars_dirs::load(self, dir, vars_dirs::Level::Playbook)
    }

    /// An inventory with no hosts: only the implicit `localhost`
    /// (`ansible_connection=local`) is available, by naming it in a pattern.
    /// Used when no `-i` is given and no default inventory exists.
    pub fn localhost() -> Inventory {
        let mut inventory = Inventory::empty();
        inventory
            .finish()
            .expect("an empty inventory has no group loops");
        inventory
    }

    /// The host with this name; `localhost` is always found (the implicit one
    /// if the inventory does not define it).
    pub fn host(&self, name: &str) -> Option<&Host> {
        match self.host_index.get(name) {
            Some(&index) => Some(&self.hosts[index]),
            None if name == IMPLICIT_LOCALHOST => Some(&self.implicit_localhost),
            None => None,
        }
    }

    /// All hosts in inventory order (first appearance); excludes the implicit `localhost`.
    pub fn hosts(&self) -> impl Iterator<Item = &Host> {
        self.hosts.iter()
    }

    /// `groups` as Ansible exposes it to templates: every group (with `all`
    /// and `ungrouped`) mapped to its hosts, descendants' included, in inventory order.
    pub fn groups(&self) -> IndexMap<String, Vec<String>> {
        self.groups
            .iter()
            .map(|group| {
                let names = group
                    .members
                    .iter()
                    .map(|&h| self.hosts[h].name.clone())
                    .collect();
                (group.name.clone(), names)
            })
            .collect()
    }

    /// The groups a host is in, as Ansible's `group_names`: sorted, parents
    /// included, without `all` and (as convoy's contract) without `ungrouped`.
    pub fn group_names(&self, host: &str) -> Vec<String> {
        let Some(host) = self.host(host) else {
            return Vec::new();
        };
        let mut names: Vec<String> = host
            .groups
            .iter()
            .filter(|&&g| g != UNGROUPED)
            .map(|&g| self.groups[g].name.clone())
            .collect();
        names.sort();
        names
    }

    /// The host's inventory variables, merged with Ansible's precedence
    /// (lowest first; ansible-core's default `VARIABLE_PRECEDENCE`): `all`
    /// from inventory sources < other groups from inventory sources <
    /// `group_vars/all` beside the inventory < beside the playbook <
    /// `group_vars/<group>` beside the inventory < beside the playbook
    /// (groups by depth, then `ansible_group_priority`, then name) < the
    /// host's own inventory vars < `host_vars/<host>` beside the inventory <
    /// beside the playbook. So `group_vars/all` outranks a child group's
    /// vars written in the inventory file. Sets `inventory_hostname`,
    /// `inventory_hostname_short`, `group_names`, `inventory_file` and
    /// `inventory_dir`. An unknown host gets an empty map.
    pub fn host_vars(&self, host: &str) -> VarMap {
        let Some(host) = self.host(host) else {
            return VarMap::new();
        };
        let mut vars = self.inventory_vars(host);
        vars.insert(
            "inventory_hostname".into(),
            Value::String(host.name.clone()),
        );
        let short = host.name.split('.').next().unwrap_or(&host.name);
        vars.insert(
            "inventory_hostname_short".into(),
            Value::String(short.to_owned()),
        );
        let group_names = self
            .group_names(&host.name)
            .into_iter()
            .map(Value::String)
            .collect();
        vars.insert("group_names".into(), Value::Array(group_names));
        vars
    }

    /// The merged variables of `host` in precedence order. Of the magic
    /// variables only `inventory_file`/`inventory_dir` are here, because
    /// Ansible stores those as ordinary host variables.
    fn inventory_vars(&self, host: &Host) -> VarMap {
        let all = &self.groups[ALL];
        let mut vars = all.vars.clone();
        for &g in &host.groups {
            crate::vars::merge(&mut vars, &self.groups[g].vars);
        }
        crate::vars::merge(&mut vars, &all.dir_vars);
        crate::vars::merge(&mut vars, &all.play_vars);
        for &g in &host.groups {
            crate::vars::merge(&mut vars, &self.groups[g].dir_vars);
        }
        for &g in &host.groups {
            crate::vars::merge(&mut vars, &self.groups[g].play_vars);
        }
        // Ansible records these as the host's own variables when it first
        // sees the host, so the host's explicit variables may override them.
        if let Some(source) = &host.source {
            vars.insert(
                "inventory_file".into(),
                Value::String(source.display().to_string()),
            );
            let dir = source
                .parent()
                .map(|d| d.display().to_string())
                .unwrap_or_default();
            vars.insert("inventory_dir".into(), Value::String(dir));
        }
        crate::vars::merge(&mut vars, &host.vars);
        crate::vars::merge(&mut vars, &host.dir_vars);
        crate::vars::merge(&mut vars, &host.play_vars);
        vars
    }

    // ----- building, used by the loaders -----

    /// An inventory holding only `all` and its child `ungrouped`, as Ansible starts.
    fn empty() -> Inventory {
        let mut implicit_localhost = Host::new(IMPLICIT_LOCALHOST, None);
        implicit_localhost
            .vars
            .insert("ansible_connection".into(), Value::from("local"));
        let mut inventory = Inventory {
            hosts: Vec::new(),
            host_index: HashMap::new(),
            groups: Vec::new(),
            group_index: HashMap::new(),
            implicit_localhost,
            vars_bases: Vec::new(),
        };
        inventory.add_group("all");
        inventory.add_group("ungrouped");
        inventory.add_child(ALL, UNGROUPED);
        inventory
    }

    /// Reads a directory source as Ansible does: entries in name order,
    /// subdirectories recursively, skipping what Ansible skips.
    fn load_dir(&mut self, dir: &Path) -> Result<(), InventoryError> {
        let read_err = |error| InventoryError::Read {
            path: dir.to_owned(),
            error,
        };
        let mut entries = Vec::new();
        for entry in fs::read_dir(dir).map_err(read_err)? {
            let entry = entry.map_err(read_err)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !ignored_in_dir(&name) {
                entries.push((name, entry.path()));
            }
        }
        entries.sort();
        for (_, path) in entries {
            let meta = fs::metadata(&path).map_err(|error| InventoryError::Read {
                path: path.clone(),
                error,
            })?;
            if meta.is_dir() {
                self.load_dir(&path)?;
            } else {
                self.load_file(&path, &meta)?;
            }
        }
        Ok(())
    }

    /// Loads one file source as Ansible's plugins would take it: an
    /// executable is a script; `.yml`/`.yaml`/`.json` is YAML; `.ini` is
    /// INI; any other name (`hosts`) is YAML when it reads as a YAML
    /// inventory, else INI (Ansible tries its yaml plugin, then ini).
    fn load_file(&mut self, path: &Path, meta: &fs::Metadata) -> Result<(), InventoryError> {
        let extension = path.extension().and_then(|e| e.to_str());
        let yaml_named = matches!(extension, Some("yml" | "yaml" | "json"));
        // A .yml file is YAML even when executable: inventories checked out
        // on filesystems that mark everything +x must still load.
        if !yaml_named && is_executable(meta) {
            return script::load(self, path);
        }
        let text = fs::read_to_string(path).map_err(|error| InventoryError::Read {
            path: path.to_owned(),
            error,
        })?;
        if yaml_named {
            return yaml::load(self, path, &text);
        }
        if extension == Some("ini") || looks_like_ini(&text) {
            return ini::load(self, path, &text);
        }
        // Neither shape is certain (`h1` alone, a broken YAML map): try YAML
        // on a copy, and read INI when YAML fails, reporting YAML's error
        // only if INI fails too and the text is more YAML-like.
        let mut attempt = self.clone();
        match yaml::load(&mut attempt, path, &text) {
            Ok(()) => {
                *self = attempt;
                Ok(())
            }
            Err(yaml_error) => ini::load(self, path, &text).map_err(|ini_error| {
                if text.lines().any(|l| l.trim_end().ends_with(':')) {
                    yaml_error
                } else {
                    ini_error
                }
            }),
        }
    }

    /// The index of group `name`, created if new.
    fn add_group(&mut self, name: &str) -> usize {
        if let Some(&index) = self.group_index.get(name) {
            return index;
        }
        let index = self.groups.len();
        self.groups.push(Group::new(name));
        self.group_index.insert(name.to_owned(), index);
        index
    }

    /// The index of host `name`, created if new, now listed in `group`.
    fn add_host(&mut self, name: &str, group: usize, source: &Path) -> usize {
        let index = match self.host_index.get(name) {
            Some(&index) => index,
            None => {
                let index = self.hosts.len();
                self.hosts.push(Host::new(name, Some(source)));
                self.host_index.insert(name.to_owned(), index);
                index
            }
        };
        let host = &mut self.hosts[index];
        // A host is in few groups, so a linear check is cheap.
        if !host.direct_groups.contains(&group) {
            host.direct_groups.push(group);
            self.groups[group].hosts.push(index);
        }
        index
    }

    fn add_child(&mut self, parent: usize, child: usize) {
        if !self.groups[parent].children.contains(&child) {
            self.groups[parent].children.push(child);
            self.groups[child].parents.push(parent);
        }
    }

    /// Sets a group variable from an inventory source; `ansible_group_priority`
    /// is not a variable but the group's priority, as in Ansible.
    fn set_group_var(&mut self, group: usize, key: String, value: Value) {
        if key == "ansible_group_priority" {
            let priority = match &value {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            };
            if let Some(priority) = priority {
                self.groups[group].priority = priority;
                return;
            }
        }
        self.groups[group].vars.insert(key, value);
    }

    fn set_host_var(&mut self, host: usize, key: String, value: Value) {
        self.hosts[host].vars.insert(key, value);
    }

    /// Derives what depends on the whole inventory; run once all sources are in.
    fn finish(&mut self) -> Result<(), InventoryError> {
        // Top-level groups hang under `all`, in the order they were created.
        for g in 0..self.groups.len() {
            if g != ALL && self.groups[g].parents.is_empty() {
                self.add_child(ALL, g);
            }
        }

        // `ungrouped` holds exactly the hosts in no group but `all`.
        for (index, host) in self.hosts.iter_mut().enumerate() {
            let grouped = host
                .direct_groups
                .iter()
                .any(|&g| g != ALL && g != UNGROUPED);
            let listed = host.direct_groups.contains(&UNGROUPED);
            if grouped && listed {
                host.direct_groups.retain(|&g| g != UNGROUPED);
            } else if !grouped && !listed {
                host.direct_groups.push(UNGROUPED);
                self.groups[UNGROUPED].hosts.push(index);
            }
        }
        let hosts = &self.hosts;
        self.groups[UNGROUPED]
            .hosts
            .retain(|&h| hosts[h].direct_groups.contains(&UNGROUPED));

        let ancestors = self.ancestors()?;

        // Each host's groups, in precedence order, and each group's members
        // in inventory order (hosts are visited in order).
        for group in &mut self.groups {
            group.members.clear();
        }
        for index in 0..self.hosts.len() {
            let mut groups: Vec<usize> = self.hosts[index]
                .direct_groups
                .iter()
                .flat_map(|&g| ancestors[g].iter().copied())
                .collect();
            groups.sort_unstable();
            groups.dedup();
            for &g in &groups {
                self.groups[g].members.push(index);
            }
            groups.retain(|&g| g != ALL);
            let by_precedence = |&g: &usize| {
                let group = &self.groups[g];
                (group.depth, group.priority, group.name.as_str())
            };
            groups.sort_by(|a, b| by_precedence(a).cmp(&by_precedence(b)));
            self.hosts[index].groups = groups;
        }
        self.groups[ALL].members = (0..self.hosts.len()).collect();
        Ok(())
    }

    /// For each group, itself and every ancestor (sorted); also sets each
    /// group's depth. Fails if groups nest inside themselves.
    fn ancestors(&mut self) -> Result<Vec<Vec<usize>>, InventoryError> {
        #[derive(Clone, Copy, PartialEq)]
        enum State {
            New,
            Visiting,
            Done,
        }
        struct Walk<'a> {
            groups: &'a [Group],
            state: Vec<State>,
            depth: Vec<usize>,
            ancestors: Vec<Vec<usize>>,
            path: Vec<usize>,
        }
        impl Walk<'_> {
            fn visit(&mut self, g: usize) -> Result<(), Vec<usize>> {
                match self.state[g] {
                    State::Done => return Ok(()),
                    State::Visiting => {
                        // The loop is the stretch of the path from `g` back to `g`.
                        let start = self.path.iter().position(|&p| p == g).unwrap_or(0);
                        let mut cycle: Vec<usize> = self.path[start..].to_vec();
                        cycle.push(g);
                        // The path walks child -> parent; show parent -> child.
                        cycle.reverse();
                        return Err(cycle);
                    }
                    State::New => {}
                }
                self.state[g] = State::Visiting;
                self.path.push(g);
                let groups = self.groups;
                let mut set = vec![g];
                let mut depth = 0;
                for &parent in &groups[g].parents {
                    self.visit(parent)?;
                    depth = depth.max(self.depth[parent] + 1);
                    set.extend_from_slice(&self.ancestors[parent]);
                }
                set.sort_unstable();
                set.dedup();
                self.path.pop();
                self.ancestors[g] = set;
                self.depth[g] = depth;
                self.state[g] = State::Done;
                Ok(())
            }
        }
        let count = self.groups.len();
        let mut walk = Walk {
            groups: &self.groups,
            state: vec![State::New; count],
            depth: vec![0; count],
            ancestors: vec![Vec::new(); count],
            path: Vec::new(),
        };
        for g in 0..count {
            walk.visit(g).map_err(|cycle| InventoryError::GroupCycle {
                cycle: cycle.iter().map(|&c| self.groups[c].name.clone()).collect(),
            })?;
        }
        let (depth, ancestors) = (walk.depth, walk.ancestors);
        for (group, depth) in self.groups.iter_mut().zip(depth) {
            group.depth = depth;
        }
        Ok(ancestors)
    }
}

/// Whether an inventory's first line of content is an INI section header
/// (`[web]`, `[web:vars]`), which no YAML inventory starts with.
fn looks_like_ini(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .is_some_and(|l| {
            l.starts_with('[') && !l.starts_with("[{") && !l.contains(", ") && l.ends_with(']')
        })
}

/// Whether a directory inventory skips this entry: hidden files, the vars
/// directories, and Ansible's default `INVENTORY_IGNORE_EXTS`.
fn ignored_in_dir(name: &str) -> bool {
    const IGNORED_NAMES: &[&str] = &["group_vars", "host_vars", "vars_plugins"];
    const IGNORED_ENDINGS: &[&str] = &[
        ".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".ini",
        ".cfg", ".retry",
    ];
    name.starts_with('.')
        || IGNORED_NAMES.contains(&name)
        || IGNORED_ENDINGS.iter().any(|end| name.ends_with(end))
}

#[cfg(unix)]
fn is_executable(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &fs::Metadata) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> (tempfile::TempDir, Result<Inventory, InventoryError>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts.yml");
        fs::write(&path, text).unwrap();
        let result = Inventory::load(&[path]);
        (dir, result)
    }

    #[test]
    fn missing_source_names_path_and_reason() {
        let err = Inventory::load(&[PathBuf::from("/nonexistent/hosts.yml")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot read inventory /nonexistent/hosts.yml: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn groups_always_has_all_and_ungrouped() {
        let (_d, inv) = load("web:\n  hosts: {w1:, w2:}\nall:\n  hosts: {lone:, w2:}\n");
        let groups = inv.unwrap().groups();
        assert_eq!(
            groups.keys().collect::<Vec<_>>(),
            ["all", "ungrouped", "web"]
        );
        assert_eq!(groups["all"], ["w1", "w2", "lone"]);
        assert_eq!(groups["ungrouped"], ["lone"]);
        assert_eq!(Inventory::localhost().groups().len(), 2);
    }

    #[test]
    fn explicit_ungrouped_host_in_another_group_leaves_ungrouped() {
        let (_d, inv) = load("ungrouped:\n  hosts: {h:, u:}\nweb:\n  hosts: {h:}\n");
        let inv = inv.unwrap();
        assert_eq!(inv.groups()["ungrouped"], ["u"]);
        assert_eq!(inv.group_names("h"), ["web"]);
        // `ungrouped` is left out of group_names by convoy's contract.
        assert!(inv.group_names("u").is_empty());
    }

    #[test]
    fn magic_variables() {
        let (dir, inv) = load("all:\n  hosts:\n    web1.example.com: {inventory_dir: custom}\n");
        let vars = inv.unwrap().host_vars("web1.example.com");
        assert_eq!(vars["inventory_hostname"], "web1.example.com");
        assert_eq!(vars["inventory_hostname_short"], "web1");
        assert_eq!(vars["group_names"], Value::Array(vec![]));
        let file = dir.path().join("hosts.yml").display().to_string();
        assert_eq!(vars["inventory_file"], file.as_str());
        // Like Ansible, the host's own variables may override inventory_dir.
        assert_eq!(vars["inventory_dir"], "custom");
    }

    #[test]
    fn unknown_host_has_no_vars() {
        let inv = Inventory::localhost();
        assert!(inv.host_vars("nope").is_empty());
        assert!(inv.group_names("nope").is_empty());
        assert!(inv.host("nope").is_none());
    }

    #[test]
    fn explicit_localhost_replaces_the_implicit_one() {
        let (_d, inv) = load("all:\n  hosts:\n    localhost: {ansible_connection: ssh}\n");
        let inv = inv.unwrap();
        assert_eq!(inv.host_vars("localhost")["ansible_connection"], "ssh");
        assert_eq!(inv.select("all").unwrap().len(), 1);
    }

    #[test]
    fn group_loops_are_reported() {
        let (_d, inv) = load(
            "a:\n  children:\n    b:\n      children:\n        c:\n          children:\n            a:\n",
        );
        assert_eq!(
            inv.unwrap_err().to_string(),
            "inventory groups form a loop: a -> b -> c -> a"
        );
        let (_d, inv) = load("a:\n  children:\n    a:\n");
        assert_eq!(
            inv.unwrap_err().to_string(),
            "inventory groups form a loop: a -> a"
        );
    }

    #[test]
    fn deeper_groups_win_then_priority_then_name() {
        let (_d, inv) = load(
            "parent:\n  vars: {x: parent, y: parent}\n  children:\n    child:\n      vars: {x: child}\n      \
             hosts: {h:}\nbeta:\n  vars: {y: beta, z: beta}\n  hosts: {h:}\nalpha:\n  vars: {z: alpha}\n  \
             hosts: {h:}\n",
        );
        let vars = inv.unwrap().host_vars("h");
        // child (depth 2) beats parent (depth 1); beta beats parent and alpha by name.
        assert_eq!(
            (&vars["x"], &vars["y"], &vars["z"]),
            (&"child".into(), &"parent".into(), &"beta".into())
        );
    }

    #[test]
    fn ignored_directory_entries() {
        for name in [
            ".git",
            "group_vars",
            "host_vars",
            "notes.md",
            "a.txt",
            "x~",
            "hosts.ini",
            "ansible.cfg",
        ] {
            assert!(ignored_in_dir(name), "{name}");
        }
        for name in ["hosts", "hosts.yml", "ec2.py", "inventory.json"] {
            assert!(!ignored_in_dir(name), "{name}");
        }
    }
}
