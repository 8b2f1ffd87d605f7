//! `group_vars/` and `host_vars/` directories beside an inventory.
//!
//! Ansible keeps per-group and per-host variables in these directories so
//! they can be versioned and reviewed separately from the host list; its
//! `host_group_vars` plugin rules are followed exactly: for an entity named
//! `web`, the first of `web` (file or directory), `web.yml`, `web.yaml`,
//! `web.json` is used; a directory contributes all its files (recursively,
//! in name order, skipping hidden and backup files). Entries naming no known
//! group or host are ignored, as in Ansible.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::{Inventory, InventoryError, yaml};
use crate::vars::VarMap;

/// Extensions Ansible accepts for vars files, in the order it tries them.
const EXTENSIONS: [&str; 3] = [".yml", ".yaml", ".json"];

/// Whose variables a file holds.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Target {
    Group(usize),
    Host(usize),
    ImplicitLocalhost,
}

/// Which of Ansible's two vars-directory levels a directory is read at.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Level {
    /// Beside an inventory source (or inside an inventory directory).
    Inventory,
    /// Beside the playbook: one step above the inventory's, per kind.
    Playbook,
}

/// Loads `base/group_vars/` and `base/host_vars/` into the inventory.
pub(super) fn load(
    inventory: &mut Inventory,
    base: &Path,
    level: Level,
) -> Result<(), InventoryError> {
    load_dir(inventory, &base.join("group_vars"), level, |inv, name| {
        inv.group_index.get(name).map(|&g| Target::Group(g))
    })?;
    load_dir(
        inventory,
        &base.join("host_vars"),
        level,
        |inv, name| match inv.host_index.get(name) {
            Some(&h) => Some(Target::Host(h)),
            None if name == super::IMPLICIT_LOCALHOST => Some(Target::ImplicitLocalhost),
            None => None,
        },
    )
}

/// Loads one vars directory; `resolve` maps an entry's entity name to its target.
fn load_dir(
    inventory: &mut Inventory,
    dir: &Path,
    level: Level,
    resolve: impl Fn(&Inventory, &str) -> Option<Target>,
) -> Result<(), InventoryError> {
    if !dir.is_dir() {
        return Ok(());
    }
    let read_err = |error| InventoryError::Read {
        path: dir.to_owned(),
        error,
    };
    // One listing, matched against names: checking every host for every
    // candidate file would be 40,000 stat calls for 10,000 hosts.
    let mut chosen: HashMap<Target, (usize, PathBuf)> = HashMap::new();
    let mut order: Vec<Target> = Vec::new();
    for entry in fs::read_dir(dir).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        // Rank 0 is the bare name, then each extension in Ansible's order.
        let candidates = std::iter::once((name.as_str(), 0)).chain(
            EXTENSIONS
                .iter()
                .enumerate()
                .filter_map(|(i, ext)| name.strip_suffix(ext).map(|stem| (stem, i + 1))),
        );
        for (entity, rank) in candidates {
            let Some(target) = resolve(inventory, entity) else {
                continue;
            };
            match chosen.get(&target) {
                Some((best, _)) if *best <= rank => {}
                previous => {
                    if previous.is_none() {
                        order.push(target);
                    }
                    chosen.insert(target, (rank, entry.path()));
                }
            }
        }
    }
    for target in order {
        let path = &chosen[&target].1;
        let files = if path.is_dir() {
            dir_files(path)?
        } else {
            vec![path.clone()]
        };
        for file in files {
            let vars = read_vars_file(&file)?;
            let (group, host);
            let slots = match target {
                Target::Group(g) => {
                    group = &mut inventory.groups[g];
                    (&mut group.dir_vars, &mut group.play_vars)
                }
                Target::Host(h) => {
                    host = &mut inventory.hosts[h];
                    (&mut host.dir_vars, &mut host.play_vars)
                }
                Target::ImplicitLocalhost => {
                    let local = &mut inventory.implicit_localhost;
                    (&mut local.dir_vars, &mut local.play_vars)
                }
            };
            let slot = match level {
                Level::Inventory => slots.0,
                Level::Playbook => slots.1,
            };
            crate::vars::merge(slot, &vars);
        }
    }
    Ok(())
}

/// The vars files inside a `group_vars/NAME/` directory, as Ansible picks
/// them: name order, recursing into subdirectories, skipping hidden files,
/// backups (`~`) and files with an extension other than YAML/JSON.
fn dir_files(dir: &Path) -> Result<Vec<PathBuf>, InventoryError> {
    let read_err = |error| InventoryError::Read {
        path: dir.to_owned(),
        error,
    };
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && !name.ends_with('~') {
            entries.push((name, entry.path()));
        }
    }
    entries.sort();
    let mut files = Vec::new();
    for (_, path) in entries {
        let extension = path
            .extension()
            .map(|e| format!(".{}", e.to_string_lossy()));
        if path.is_dir() {
            if extension.is_none() {
                files.extend(dir_files(&path)?);
            }
        } else if extension.as_deref().is_none_or(|e| EXTENSIONS.contains(&e)) {
            files.push(path);
        }
    }
    Ok(files)
}

fn read_vars_file(path: &Path) -> Result<VarMap, InventoryError> {
    let text = fs::read_to_string(path).map_err(|error| InventoryError::Read {
        path: path.to_owned(),
        error,
    })?;
    // An ansible-vault file is decrypted by the YAML loader (`crate::vault`).
    yaml::parse_vars_file(path, &text)
}

#[cfg(test)]
mod tests {
    use super::super::Inventory;
    use std::fs;
    use std::path::Path;

    fn write(base: &Path, rel: &str, text: &str) {
        let path = base.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    const INVENTORY: &str = "\
all:
  vars: {v: inv_all, only_inv_all: 1}
  children:
    prod:
      vars: {v: inv_prod}
      children:
        web:
          vars: {v: inv_web}
          hosts:
            web1: {v: inv_host}
            web2:
    zeta:
      hosts:
        web1:
";

    #[test]
    fn precedence_follows_ansible() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        write(base, "hosts.yml", INVENTORY);
        write(base, "group_vars/all.yml", "v: dir_all\nfrom_dir_all: 1\n");
        write(base, "group_vars/prod.yml", "v: dir_prod\n");
        write(base, "group_vars/zeta.yaml", "z: dir_zeta\n");
        write(base, "group_vars/unknown_group.yml", "not: loaded\n");
        write(base, "host_vars/web2", "h: dir_web2\n");
        let inv = Inventory::load(&[base.join("hosts.yml")]).unwrap();

        // web1: inventory host vars beat every group var.
        let web1 = inv.host_vars("web1");
        assert_eq!(web1["v"], "inv_host");
        assert_eq!(web1["z"], "dir_zeta");
        assert_eq!(web1["only_inv_all"], 1);
        assert_eq!(web1["from_dir_all"], 1);

        // web2: group_vars/prod (any group's dir vars) beat inventory vars of
        // the deeper web group, as Ansible applies all inventory group vars first.
        let web2 = inv.host_vars("web2");
        assert_eq!(web2["v"], "dir_prod");
        assert_eq!(web2["h"], "dir_web2");
        assert_eq!(web2["inventory_hostname"], "web2");
        assert_eq!(web2["group_names"], serde_json::json!(["prod", "web"]));
    }

    #[test]
    fn precedence_tiers_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        // Each tier sets `v`; removing tiers from the top shows the next one.
        let tiers = [
            ("host_vars/h.yml", "v: host_vars\n"),
            ("inv:host", ""),
            ("group_vars/child.yml", "v: group_vars_child\n"),
            ("group_vars/parent.yml", "v: group_vars_parent\n"),
            ("group_vars/all.yml", "v: group_vars_all\n"),
            ("inv:child", ""),
            ("inv:parent", ""),
            ("inv:all", ""),
        ];
        for skip in 0..tiers.len() {
            let _ = fs::remove_dir_all(base.join("host_vars"));
            let _ = fs::remove_dir_all(base.join("group_vars"));
            let active = &tiers[skip..];
            let has = |name: &str| active.iter().any(|(t, _)| *t == name);
            for (path, text) in active {
                if !path.starts_with("inv:") {
                    write(base, path, text);
                }
            }
            let vars = |name: &str| {
                if has(name) {
                    format!("{{v: {}}}", &name[4..])
                } else {
                    "{}".into()
                }
            };
            let inventory = format!(
                "all:\n  vars: {}\n  children:\n    parent:\n      vars: {}\n      children:\n        \
                 child:\n          vars: {}\n          hosts:\n            h: {}\n",
                vars("inv:all"),
                vars("inv:parent"),
                vars("inv:child"),
                vars("inv:host"),
            );
            write(base, "hosts.yml", &inventory);
            let inv = Inventory::load(&[base.join("hosts.yml")]).unwrap();
            let (top, text) = active[0];
            let expected = if let Some(name) = top.strip_prefix("inv:") {
                name.to_owned()
            } else {
                text.trim_start_matches("v: ").trim().to_owned()
            };
            assert_eq!(inv.host_vars("h")["v"], expected.as_str(), "top tier {top}");
        }
    }

    /// Regression: convoy ranked `group_vars/all` below the group vars
    /// written in the inventory file (as the README said); ansible-core's
    /// VARIABLE_PRECEDENCE applies every inventory-file group var first,
    /// then `group_vars/all`, then the other `group_vars/` files.
    #[test]
    fn group_vars_all_outranks_inventory_file_group_vars() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        write(
            base,
            "hosts.yml",
            "all:\n  vars: {v: inv_all}\n  children:\n    web:\n      vars: {v: inv_web, w: inv_web}\n      \
             hosts: {h:}\n",
        );
        write(
            base,
            "group_vars/all.yml",
            "v: group_vars_all\nw: group_vars_all\n",
        );
        write(base, "group_vars/web.yml", "w: group_vars_web\n");
        let vars = Inventory::load(&[base.join("hosts.yml")])
            .unwrap()
            .host_vars("h");
        assert_eq!(vars["v"], "group_vars_all");
        assert_eq!(vars["w"], "group_vars_web");
    }

    #[test]
    fn playbook_vars_dirs_sit_above_the_inventorys() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        write(base, "inventory/hosts.yml", "web:\n  hosts: {h:}\n");
        write(base, "inventory/group_vars/all.yml", "a: inv\nb: inv\n");
        write(base, "inventory/group_vars/web.yml", "c: inv\n");
        write(base, "inventory/host_vars/h.yml", "d: inv\n");
        write(base, "group_vars/all.yml", "a: play\n");
        write(base, "group_vars/web.yml", "b: play_web\nc: play\n");
        write(base, "host_vars/h.yml", "d: play\n");
        let mut inv = Inventory::load(&[base.join("inventory/hosts.yml")]).unwrap();
        inv.load_playbook_vars(base).unwrap();
        let vars = inv.host_vars("h");
        assert_eq!(
            (&vars["a"], &vars["b"], &vars["c"], &vars["d"]),
            (
                &"play".into(),
                &"play_web".into(),
                &"play".into(),
                &"play".into()
            )
        );
    }

    #[test]
    fn file_forms_and_their_order() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        write(
            base,
            "hosts.yml",
            "a:\n  hosts: {h1:}\nb:\n  hosts: {h2:}\nc:\n  hosts: {h3:}\nd:\n  hosts: {h4:}\n",
        );
        // Bare name beats .yml; only the first form found is read.
        write(base, "group_vars/a", "x: bare\n");
        write(base, "group_vars/a.yml", "x: yml\ny: yml\n");
        // .yml beats .yaml beats .json.
        write(base, "group_vars/b.yaml", "x: yaml\n");
        write(base, "group_vars/b.json", "{\"x\": \"json\"}\n");
        write(base, "group_vars/c.json", "{\"x\": \"json\"}\n");
        // A directory: files merged in name order, recursing, skipping junk.
        write(base, "group_vars/d/10-first.yml", "x: first\ny: first\n");
        write(base, "group_vars/d/20-second.yaml", "x: second\n");
        write(base, "group_vars/d/30-sub/z.yml", "z: sub\n");
        write(base, "group_vars/d/.hidden.yml", "x: hidden\n");
        write(base, "group_vars/d/99.yml~", "x: backup\n");
        write(base, "group_vars/d/99.txt", "x: text\n");
        write(base, "group_vars/d/empty.yml", "");
        let inv = Inventory::load(&[base.join("hosts.yml")]).unwrap();
        assert_eq!(inv.host_vars("h1")["x"], "bare");
        assert!(!inv.host_vars("h1").contains_key("y"));
        assert_eq!(inv.host_vars("h2")["x"], "yaml");
        assert_eq!(inv.host_vars("h3")["x"], "json");
        let h4 = inv.host_vars("h4");
        assert_eq!(
            (&h4["x"], &h4["y"], &h4["z"]),
            (&"second".into(), &"first".into(), &"sub".into())
        );
    }

    #[test]
    fn host_names_with_dots_and_implicit_localhost() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        write(base, "hosts.yml", "all:\n  hosts:\n    web1.example.com:\n");
        write(base, "host_vars/web1.example.com", "a: bare\n");
        write(base, "host_vars/localhost.yml", "b: local\n");
        let inv = Inventory::load(&[base.join("hosts.yml")]).unwrap();
        assert_eq!(inv.host_vars("web1.example.com")["a"], "bare");
        let local = inv.host_vars("localhost");
        assert_eq!(local["b"], "local");
        assert_eq!(local["ansible_connection"], "local");
    }

    #[test]
    fn directory_inventory_reads_files_in_order_with_its_vars_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        write(base, "02-db.yml", "db:\n  hosts: {db1: {x: later}}\n");
        write(
            base,
            "01-web.yaml",
            "web:\n  hosts: {web1:, db1: {x: early}}\n",
        );
        write(base, "sub/03-cache", "cache:\n  hosts: {c1:}\n");
        write(base, "README.md", "not: [an inventory\n");
        write(base, "notes.txt", "nope: [\n");
        write(base, "old.yml~", "nope: [\n");
        write(base, ".hidden.yml", "nope: [\n");
        write(base, "hosts.ini", "[web]\nweb1\n");
        write(base, "group_vars/web.yml", "g: web\n");
        write(base, "host_vars/c1.yml", "h: c1\n");
        let inv = Inventory::load(&[base.to_owned()]).unwrap();
        let names: Vec<&str> = inv.hosts().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["web1", "db1", "c1"]);
        assert_eq!(inv.host_vars("db1")["x"], "later");
        assert_eq!(inv.host_vars("db1")["g"], "web");
        assert_eq!(inv.host_vars("c1")["h"], "c1");
        assert_eq!(
            inv.host_vars("c1")["inventory_file"],
            base.join("sub/03-cache").display().to_string()
        );
    }

    #[test]
    fn several_sources_merge_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        write(
            base,
            "one/hosts.yml",
            "web:\n  vars: {x: one}\n  hosts: {w1: {h: one}}\n",
        );
        write(base, "one/group_vars/web.yml", "d: one\n");
        write(
            base,
            "two/hosts.yml",
            "web:\n  vars: {x: two}\n  hosts: {w2:, w1: {h: two}}\n",
        );
        write(base, "two/group_vars/web.yml", "d: two\n");
        let inv =
            Inventory::load(&[base.join("one/hosts.yml"), base.join("two/hosts.yml")]).unwrap();
        assert_eq!(inv.groups()["web"], ["w1", "w2"]);
        let w1 = inv.host_vars("w1");
        assert_eq!(
            (&w1["x"], &w1["h"], &w1["d"]),
            (&"two".into(), &"two".into(), &"two".into())
        );
    }

    #[test]
    fn bad_vars_files_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path();
        write(base, "hosts.yml", "web:\n  hosts: {w1:}\n");
        write(base, "group_vars/web.yml", "- not\n- a map\n");
        let err = Inventory::load(&[base.join("hosts.yml")])
            .unwrap_err()
            .to_string();
        let file = base.join("group_vars/web.yml").display().to_string();
        assert!(
            err.starts_with("invalid type: sequence, expected a map of variables"),
            "{err}"
        );
        assert!(err.contains(&format!("--> {file}:1:")), "{err}");

        write(
            base,
            "group_vars/web.yml",
            "$ANSIBLE_VAULT;1.1;AES256\n6162\n",
        );
        let err = Inventory::load(&[base.join("hosts.yml")])
            .unwrap_err()
            .to_string();
        // Not decryptable (no password here, and a malformed body): refused,
        // at the file's first line.
        assert!(err.contains("encrypted with ansible-vault"), "{err}");
        assert!(err.contains(&format!("--> {file}:1:1")), "{err}");
    }
}
