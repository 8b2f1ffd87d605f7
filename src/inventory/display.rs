//! `--list` and `--graph` output, byte-compatible with ansible-inventory.
//!
//! Operators compare convoy's view of an inventory with Ansible's while
//! migrating, and tooling parses `ansible-inventory --list`; matching its
//! shapes, ordering and sorted keys keeps both working.

use serde_json::json;

use super::{ALL, Inventory, InventoryError, MAGIC_VARS};
use crate::source::nearest;
use crate::vars::{Value, VarMap};

impl Inventory {
    /// ansible-inventory `--list` JSON: one entry per non-empty group with
    /// its direct `hosts` and `children`, plus `_meta.hostvars` holding each
    /// host's merged variables without the magic ones. Keys are sorted, as
    /// ansible-inventory prints them.
    pub fn to_list_json(&self) -> Value {
        let mut groups = VarMap::new();
        let mut seen = vec![false; self.groups.len()];
        self.list_group(ALL, &mut groups, &mut seen);

        let mut hostvars = VarMap::new();
        for host in &self.hosts {
            let mut vars = self.inventory_vars(host);
            for magic in MAGIC_VARS {
                vars.remove(*magic);
            }
            if !vars.is_empty() {
                hostvars.insert(host.name.clone(), Value::Object(vars));
            }
        }
        groups.insert("_meta".into(), json!({ "hostvars": hostvars }));
        sort_keys(Value::Object(groups))
    }

    /// Ansible's `format_group`: each group once, empty groups left out
    /// (though still named among their parent's children).
    fn list_group(&self, g: usize, out: &mut VarMap, seen: &mut [bool]) {
        let group = &self.groups[g];
        let mut entry = VarMap::new();
        if g != ALL && !group.hosts.is_empty() {
            let hosts = group
                .hosts
                .iter()
                .map(|&h| Value::String(self.hosts[h].name.clone()));
            entry.insert("hosts".into(), hosts.collect());
        }
        if !group.children.is_empty() {
            let children = group
                .children
                .iter()
                .map(|&c| Value::String(self.groups[c].name.clone()));
            entry.insert("children".into(), children.collect());
        }
        if !entry.is_empty() {
            out.insert(group.name.clone(), Value::Object(entry));
        }
        for &child in &group.children {
            if !seen[child] {
                seen[child] = true;
                self.list_group(child, out, seen);
            }
        }
    }

    /// ansible-inventory `--graph` text, from `group` (default `all`): child
    /// groups first, then the group's own hosts, in inventory order.
    pub fn graph(&self, group: Option<&str>) -> Result<String, InventoryError> {
        let name = group.unwrap_or("all");
        let Some(&g) = self.group_index.get(name) else {
            let names = self.groups.iter().map(|g| g.name.as_str());
            return Err(InventoryError::UnknownGroup {
                group: name.to_owned(),
                suggestion: nearest(name, names).map(str::to_owned),
            });
        };
        let mut out = String::new();
        self.graph_group(g, 0, &mut out);
        Ok(out)
    }

    fn graph_group(&self, g: usize, depth: usize, out: &mut String) {
        let group = &self.groups[g];
        graph_line(out, depth, &format!("@{}:", group.name));
        for &child in &group.children {
            self.graph_group(child, depth + 1, out);
        }
        // `all` lists its hosts through `ungrouped` and the other groups.
        if g != ALL {
            for &h in &group.hosts {
                graph_line(out, depth + 1, &self.hosts[h].name);
            }
        }
    }
}

/// One `--graph` line: `  |` per level, then `--`, as Ansible draws it.
fn graph_line(out: &mut String, depth: usize, text: &str) {
    if depth > 0 {
        out.push_str(&"  |".repeat(depth));
        out.push_str("--");
    }
    out.push_str(text);
    out.push('\n');
}

/// Sorts object keys at every level, as `json.dumps(sort_keys=True)` does.
fn sort_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVENTORY: &str = "\
all:
  vars:
    ntp: pool
  hosts:
    bastion:
      z: 1
      a: 2
  children:
    web:
      hosts:
        web2:
        web1:
    prod:
      children:
        web:
        db:
          hosts:
            db1:
    empty:
";

    fn inventory() -> (tempfile::TempDir, Inventory) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts.yml");
        std::fs::write(&path, INVENTORY).unwrap();
        let inventory = Inventory::load(&[path]).unwrap();
        (dir, inventory)
    }

    #[test]
    fn graph_matches_ansible() {
        let (_d, inv) = inventory();
        assert_eq!(
            inv.graph(None).unwrap(),
            "@all:\n  |--@ungrouped:\n  |  |--bastion\n  |--@web:\n  |  |--web2\n  |  |--web1\n  \
             |--@prod:\n  |  |--@web:\n  |  |  |--web2\n  |  |  |--web1\n  |  |--@db:\n  |  |  \
             |--db1\n  |--@empty:\n"
        );
        assert_eq!(
            inv.graph(Some("prod")).unwrap().lines().next(),
            Some("@prod:")
        );
        assert_eq!(inv.graph(Some("db")).unwrap(), "@db:\n  |--db1\n");
        assert_eq!(
            inv.graph(Some("dbs")).unwrap_err().to_string(),
            "no group \"dbs\" in the inventory (did you mean \"db\"?)"
        );
    }

    #[test]
    fn graph_of_an_empty_inventory() {
        assert_eq!(
            Inventory::localhost().graph(None).unwrap(),
            "@all:\n  |--@ungrouped:\n"
        );
    }

    #[test]
    fn list_matches_ansible() {
        let (_d, inv) = inventory();
        let list = inv.to_list_json();
        let expected = json!({
            "_meta": {"hostvars": {
                "bastion": {"a": 2, "ntp": "pool", "z": 1},
                "db1": {"ntp": "pool"},
                "web1": {"ntp": "pool"},
                "web2": {"ntp": "pool"},
            }},
            "all": {"children": ["ungrouped", "web", "prod", "empty"]},
            "db": {"hosts": ["db1"]},
            "prod": {"children": ["web", "db"]},
            "ungrouped": {"hosts": ["bastion"]},
            "web": {"hosts": ["web2", "web1"]},
        });
        assert_eq!(list, expected);
        // Key order too, since the output is printed as is.
        assert_eq!(
            serde_json::to_string(&list).unwrap(),
            serde_json::to_string(&expected).unwrap()
        );
        let bastion = &list["_meta"]["hostvars"]["bastion"];
        assert_eq!(
            bastion.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["a", "ntp", "z"]
        );
    }
}
