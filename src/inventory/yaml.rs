//! Ansible's YAML inventory format.
//!
//! The file is parsed into typed documents rather than loose YAML values so
//! that every mistake (an unknown key such as `host:`, a list where a map of
//! hosts belongs, a malformed host range) is reported by `parse_yaml` with
//! `file:line:column` and a caret. The visitors are written by hand instead
//! of derived because Ansible's format has shorthands a derive cannot express
//! (`hosts: web1`, `web:` with no body) and because the order of `hosts`,
//! `children` and `vars` inside a group decides host order, which a derived
//! struct would lose.

use std::fmt;
use std::marker::PhantomData;
use std::path::Path;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Unexpected, Visitor};

use super::{Inventory, InventoryError};
use crate::source::{SourceSpan, YamlError, nearest, parse_yaml};
use crate::vars::{Value, VarMap};

/// The keys a group may have.
const GROUP_KEYS: [&str; 3] = ["hosts", "children", "vars"];

/// Expanding more hosts than this from one range is surely a typo (`[1:100000000]`).
const MAX_RANGE: u64 = 1_000_000;

/// Loads one YAML inventory file into `inventory`.
pub(super) fn load(
    inventory: &mut Inventory,
    path: &Path,
    text: &str,
) -> Result<(), InventoryError> {
    let doc: InventoryDoc = parse_yaml(path, text).map_err(|e| tidy(e, text))?;
    for (name, group) in doc.0 {
        add_group(inventory, path, &name, group);
    }
    Ok(())
}

/// Parses a `group_vars`/`host_vars` file: a map of variables, or nothing.
pub(super) fn parse_vars_file(path: &Path, text: &str) -> Result<VarMap, InventoryError> {
    let vars: VarsDoc = parse_yaml(path, text).map_err(|e| tidy(e, text))?;
    Ok(vars.0)
}

/// Adds a parsed group (and, recursively, its children) to the inventory.
fn add_group(inventory: &mut Inventory, path: &Path, name: &str, doc: GroupDoc) -> usize {
    let group = inventory.add_group(name);
    // Sections are applied in the order written, as Ansible does, so hosts
    // of children listed before `hosts:` come first in inventory order.
    for section in doc.sections {
        match section {
            Section::Vars(vars) => {
                for (key, value) in vars {
                    inventory.set_group_var(group, key, value);
                }
            }
            Section::Children(children) => {
                for (child_name, child) in children.0 {
                    let child = add_group(inventory, path, &child_name, child);
                    inventory.add_child(group, child);
                }
            }
            Section::Hosts(hosts) => {
                for (key, vars) in hosts.0 {
                    for host_name in &key.names {
                        let host = inventory.add_host(host_name, group, path);
                        if let Some(port) = key.port {
                            inventory.set_host_var(host, "ansible_port".into(), port.into());
                        }
                        for (var, value) in &vars.0 {
                            inventory.set_host_var(host, var.clone(), value.clone());
                        }
                    }
                }
            }
        }
    }
    group
}

/// Rewords parser messages that leak serde-saphyr internals.
fn tidy(mut error: YamlError, text: &str) -> YamlError {
    // serde-saphyr leaves type errors about the whole document unlocated;
    // the document starts at its first line of content, so point there.
    if error.span.is_none()
        && error.message.starts_with("invalid type")
        && let Some((index, line)) = text.lines().enumerate().find(|(_, l)| {
            let l = l.trim();
            !l.is_empty() && !l.starts_with('#') && l != "---"
        })
    {
        let column = line.len() - line.trim_start().len() + 1;
        error.span = Some(SourceSpan::new(&error.file, index + 1, column));
    }
    if let Some((head, _)) = error.message.split_once(", set DuplicateKeyPolicy") {
        let key = head.trim_start_matches("duplicate mapping key: ");
        error.message = format!("duplicate key `{key}`");
    }
    error
}

/// A whole inventory file: top-level group names and their groups.
struct InventoryDoc(Vec<(String, GroupDoc)>);

impl<'de> Deserialize<'de> for InventoryDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let expecting = "an inventory: a map of group names (usually just `all`)";
        entries(d, expecting, false).map(InventoryDoc)
    }
}

/// One group, keeping its sections in the order written.
#[derive(Default)]
struct GroupDoc {
    sections: Vec<Section>,
}

enum Section {
    Hosts(HostsDoc),
    Children(ChildrenDoc),
    Vars(VarMap),
}

impl<'de> Deserialize<'de> for GroupDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct GroupVisitor;
        impl<'de> Visitor<'de> for GroupVisitor {
            type Value = GroupDoc;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a group: a map with `hosts`, `children` and/or `vars`")
            }
            fn visit_unit<E: de::Error>(self) -> Result<GroupDoc, E> {
                Ok(GroupDoc::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<GroupDoc, E> {
                Ok(GroupDoc::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<GroupDoc, A::Error> {
                let mut sections = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let section = match key.as_str() {
                        "hosts" => Section::Hosts(map.next_value()?),
                        "children" => Section::Children(map.next_value()?),
                        "vars" => Section::Vars(map.next_value::<VarsDoc>()?.0),
                        _ => {
                            let hint = nearest(&key, GROUP_KEYS)
                                .map(|s| format!(" (did you mean `{s}`?)"))
                                .unwrap_or_default();
                            return Err(de::Error::custom(format!(
                                "unknown key `{key}` in a group{hint}; \
                                 a group has only `hosts`, `children` and `vars`"
                            )));
                        }
                    };
                    sections.push(section);
                }
                Ok(GroupDoc { sections })
            }
        }
        d.deserialize_any(GroupVisitor)
    }
}

/// A group's `hosts:` map, host pattern -> the host's variables.
struct HostsDoc(Vec<(HostKey, VarsDoc)>);

impl<'de> Deserialize<'de> for HostsDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let expecting = "a map of host names to their variables (`web1:` or `web1: {var: value}`)";
        entries(d, expecting, true).map(HostsDoc)
    }
}

/// A group's `children:` map, group name -> group.
struct ChildrenDoc(Vec<(String, GroupDoc)>);

impl<'de> Deserialize<'de> for ChildrenDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        entries(d, "a map of child group names to groups", true).map(ChildrenDoc)
    }
}

/// A map of variables; null means none.
#[derive(Default)]
struct VarsDoc(VarMap);

impl<'de> Deserialize<'de> for VarsDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let pairs: Vec<(String, Value)> = entries(d, "a map of variables (`name: value`)", false)?;
        Ok(VarsDoc(pairs.into_iter().collect()))
    }
}

/// Reads a YAML map into ordered pairs, accepting null as empty and, where
/// Ansible does (`hosts: web1`, `children: web`), a lone string as a one-key map.
fn entries<'de, D, K, V>(
    d: D,
    expecting: &'static str,
    string_shorthand: bool,
) -> Result<Vec<(K, V)>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de>,
    V: Deserialize<'de> + Default,
{
    struct EntriesVisitor<K, V> {
        expecting: &'static str,
        string_shorthand: bool,
        marker: PhantomData<(K, V)>,
    }
    impl<'de, K, V> Visitor<'de> for EntriesVisitor<K, V>
    where
        K: Deserialize<'de>,
        V: Deserialize<'de> + Default,
    {
        type Value = Vec<(K, V)>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
            if !self.string_shorthand {
                return Err(E::invalid_type(Unexpected::Str(s), &self));
            }
            let key = K::deserialize(de::value::StrDeserializer::<E>::new(s))?;
            Ok(vec![(key, V::default())])
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(0));
            while let Some(key) = map.next_key()? {
                pairs.push((key, map.next_value()?));
            }
            Ok(pairs)
        }
    }
    d.deserialize_any(EntriesVisitor {
        expecting,
        string_shorthand,
        marker: PhantomData,
    })
}

/// A key of a `hosts:` map: a host name, possibly with a `:port` and ranges.
struct HostKey {
    names: Vec<String>,
    port: Option<u16>,
}

impl<'de> Deserialize<'de> for HostKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let key = String::deserialize(d)?;
        let (pattern, port) = split_port(&key).map_err(de::Error::custom)?;
        let names = expand_ranges(pattern).map_err(|reason| {
            de::Error::custom(format!("invalid host range in `{key}`: {reason}"))
        })?;
        Ok(HostKey { names, port })
    }
}

/// Splits `host:port` (Ansible allows a port in the host key). A key with
/// several colons is an IPv6 address, not a port; `[v6addr]` or
/// `[v6addr]:port` is Ansible's bracketed IPv6 form.
pub(super) fn split_port(key: &str) -> Result<(&str, Option<u16>), String> {
    let parse_port = |port: &str| {
        port.parse::<u16>()
            .map_err(|_| format!("port {port} in host `{key}` is out of range"))
    };
    if let Some(rest) = key.strip_prefix('[')
        && let Some((address, after)) = rest.split_once(']')
        && address.parse::<std::net::Ipv6Addr>().is_ok()
    {
        return match after.strip_prefix(':') {
            None if after.is_empty() => Ok((address, None)),
            Some(port) if is_number(port) => Ok((address, Some(parse_port(port)?))),
            _ => Err(format!(
                "`{after}` after the address in host `{key}` is not a `:port`"
            )),
        };
    }
    let mut depth = 0usize;
    let mut colons = Vec::new();
    for (i, c) in key.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ':' if depth == 0 => colons.push(i),
            _ => {}
        }
    }
    match colons[..] {
        [colon] if is_number(&key[colon + 1..]) => {
            Ok((&key[..colon], Some(parse_port(&key[colon + 1..])?)))
        }
        _ => Ok((key, None)),
    }
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Expands Ansible host ranges: `web[01:20]` (zero-padded), `db-[a:f]`,
/// `[1:9:2]` with a step, several ranges in one name.
pub(super) fn expand_ranges(pattern: &str) -> Result<Vec<String>, String> {
    let Some(open) = pattern.find('[') else {
        if pattern.contains(']') {
            return Err("`]` without `[`".into());
        }
        return Ok(vec![pattern.to_owned()]);
    };
    let close = pattern[open..]
        .find(']')
        .map(|i| open + i)
        .ok_or("`[` without `]`")?;
    let (head, range, tail) = (
        &pattern[..open],
        &pattern[open + 1..close],
        &pattern[close + 1..],
    );
    let bounds: Vec<&str> = range.split(':').collect();
    let (begin, end, step) = match bounds[..] {
        [begin, end] => (begin, end, 1),
        [begin, end, step] => {
            let step: u64 = step
                .parse()
                .map_err(|_| format!("step `{step}` is not a number"))?;
            (begin, end, step)
        }
        _ => {
            return Err(format!(
                "`[{range}]` must be [begin:end] or [begin:end:step]"
            ));
        }
    };
    if step == 0 {
        return Err("step must be at least 1".into());
    }
    let begin = if begin.is_empty() { "0" } else { begin };
    if end.is_empty() {
        return Err(format!("`[{range}]` has no end"));
    }

    let values: Vec<String> = if let (Some(b), Some(e)) = (letter_index(begin), letter_index(end)) {
        if b > e {
            return Err(format!("`[{range}]` goes backwards"));
        }
        (b..=e)
            .step_by(step as usize)
            .map(|i| LETTERS[i..=i].to_owned())
            .collect()
    } else {
        let (Ok(b), Ok(e)) = (begin.parse::<u64>(), end.parse::<u64>()) else {
            return Err(format!("`[{range}]` must be two numbers or two letters"));
        };
        // A leading zero means fixed width, as Ansible does: [01:10] -> 01..10.
        let width = if begin.len() > 1 && begin.starts_with('0') {
            if begin.len() != end.len() {
                return Err(format!(
                    "`[{range}]`: zero-padded begin and end must have the same number of digits"
                ));
            }
            begin.len()
        } else {
            0
        };
        if b > e {
            return Err(format!("`[{range}]` goes backwards"));
        }
        if (e - b) / step >= MAX_RANGE {
            return Err(format!(
                "`[{range}]` would make more than {MAX_RANGE} hosts"
            ));
        }
        (b..=e)
            .step_by(step as usize)
            .map(|v| format!("{v:0width$}"))
            .collect()
    };

    let mut names = Vec::new();
    for value in values {
        // The tail may hold further ranges.
        names.extend(expand_ranges(&format!("{head}{value}{tail}"))?);
    }
    Ok(names)
}

/// Python's `string.ascii_letters`, which Ansible's alphabetic ranges walk.
const LETTERS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

fn letter_index(s: &str) -> Option<usize> {
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_alphabetic() => LETTERS.find(c),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// Writes `text` to a temp file (so error snippets can show the line) and loads it.
    fn load_text(
        text: &str,
    ) -> (
        tempfile::TempDir,
        PathBuf,
        Result<Inventory, InventoryError>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inventory.yml");
        std::fs::write(&path, text).unwrap();
        let result = Inventory::load(std::slice::from_ref(&path));
        (dir, path, result)
    }

    fn inventory(text: &str) -> Inventory {
        let (_dir, _path, result) = load_text(text);
        result.unwrap()
    }

    fn error(text: &str) -> String {
        let (_dir, path, result) = load_text(text);
        let message = result.unwrap_err().to_string();
        message.replace(&path.display().to_string(), "FILE")
    }

    fn names(inv: &Inventory) -> Vec<&str> {
        inv.hosts().map(|h| h.name.as_str()).collect()
    }

    #[test]
    fn parses_groups_children_and_vars() {
        let inv = inventory(
            "all:\n  vars:\n    ntp: pool\n  hosts:\n    bastion:\n      ansible_host: 10.0.0.1\n  \
             children:\n    web:\n      hosts:\n        web1:\n        web2: {port: 8080}\n      \
             vars:\n        tier: front\n    db:\n      hosts:\n        db1:\n",
        );
        assert_eq!(names(&inv), ["bastion", "web1", "web2", "db1"]);
        let groups = inv.groups();
        assert_eq!(
            groups.keys().collect::<Vec<_>>(),
            ["all", "ungrouped", "web", "db"]
        );
        assert_eq!(groups["ungrouped"], ["bastion"]);
        assert_eq!(groups["web"], ["web1", "web2"]);
        let vars = inv.host_vars("web2");
        assert_eq!(vars["ntp"], "pool");
        assert_eq!(vars["tier"], "front");
        assert_eq!(vars["port"], 8080);
        assert_eq!(inv.host_vars("bastion")["ansible_host"], "10.0.0.1");
    }

    #[test]
    fn top_level_groups_without_all_and_null_entries() {
        let inv = inventory("web:\n  hosts:\n    web1:\nempty:\ndb:\n  hosts:\n    db1: ~\n");
        assert_eq!(names(&inv), ["web1", "db1"]);
        let groups = inv.groups();
        assert_eq!(
            groups.keys().collect::<Vec<_>>(),
            ["all", "ungrouped", "web", "empty", "db"]
        );
        assert!(groups["empty"].is_empty());
        assert_eq!(groups["all"], ["web1", "db1"]);
    }

    #[test]
    fn nested_children_give_members_and_group_names() {
        let inv = inventory(
            "all:\n  children:\n    prod:\n      children:\n        web:\n          hosts:\n            \
             w1:\n        db:\n          hosts:\n            d1:\n    staging:\n      hosts:\n        s1:\n",
        );
        assert_eq!(inv.groups()["prod"], ["w1", "d1"]);
        assert_eq!(inv.group_names("w1"), ["prod", "web"]);
        assert_eq!(inv.group_names("s1"), ["staging"]);
    }

    #[test]
    fn host_in_several_groups_merges_vars_later_wins() {
        let inv = inventory(
            "web:\n  hosts:\n    h1: {a: 1, b: 1}\ndb:\n  hosts:\n    h1: {b: 2, c: 2}\n",
        );
        assert_eq!(names(&inv), ["h1"]);
        let vars = inv.host_vars("h1");
        assert_eq!(
            (&vars["a"], &vars["b"], &vars["c"]),
            (&1.into(), &2.into(), &2.into())
        );
        assert_eq!(inv.group_names("h1"), ["db", "web"]);
        assert!(inv.groups()["ungrouped"].is_empty());
    }

    #[test]
    fn section_order_decides_host_order() {
        let inv = inventory(
            "all:\n  children:\n    web:\n      hosts:\n        w1:\n  hosts:\n    b1:\n",
        );
        assert_eq!(names(&inv), ["w1", "b1"]);
    }

    #[test]
    fn string_shorthands() {
        let inv = inventory("web:\n  hosts: web1\nprod:\n  children: web\n");
        assert_eq!(inv.groups()["prod"], ["web1"]);
    }

    #[test]
    fn empty_file_is_an_empty_inventory() {
        let inv = inventory("# nothing yet\n");
        assert_eq!(inv.hosts().count(), 0);
    }

    #[test]
    fn numeric_ranges_with_leading_zeros() {
        let inv = inventory("web:\n  hosts:\n    web[01:03].example.com:\n      x: 1\n");
        assert_eq!(
            names(&inv),
            [
                "web01.example.com",
                "web02.example.com",
                "web03.example.com"
            ]
        );
        assert_eq!(inv.host_vars("web02.example.com")["x"], 1);
    }

    #[test]
    fn ranges_alphabetic_stepped_and_multiple() {
        assert_eq!(expand_ranges("db-[a:c]").unwrap(), ["db-a", "db-b", "db-c"]);
        assert_eq!(expand_ranges("n[1:9:4]").unwrap(), ["n1", "n5", "n9"]);
        assert_eq!(expand_ranges("n[8:10]").unwrap(), ["n8", "n9", "n10"]);
        assert_eq!(expand_ranges("n[:2]").unwrap(), ["n0", "n1", "n2"]);
        assert_eq!(
            expand_ranges("r[1:2]-[a:b]").unwrap(),
            ["r1-a", "r1-b", "r2-a", "r2-b"]
        );
        assert_eq!(expand_ranges("x[y:B]").unwrap(), ["xy", "xz", "xA", "xB"]);
        assert_eq!(expand_ranges("plain").unwrap(), ["plain"]);
    }

    #[test]
    fn range_errors() {
        assert_eq!(expand_ranges("w[1:]").unwrap_err(), "`[1:]` has no end");
        assert_eq!(
            expand_ranges("w[5:1]").unwrap_err(),
            "`[5:1]` goes backwards"
        );
        assert_eq!(
            expand_ranges("w[1]").unwrap_err(),
            "`[1]` must be [begin:end] or [begin:end:step]"
        );
        assert_eq!(expand_ranges("w[1:3").unwrap_err(), "`[` without `]`");
        assert_eq!(
            expand_ranges("w[a:3]").unwrap_err(),
            "`[a:3]` must be two numbers or two letters"
        );
        assert_eq!(
            expand_ranges("w[01:100]").unwrap_err(),
            "`[01:100]`: zero-padded begin and end must have the same number of digits"
        );
        assert_eq!(
            expand_ranges("w[1:4:0]").unwrap_err(),
            "step must be at least 1"
        );
    }

    #[test]
    fn bad_range_is_located() {
        let message = error("web:\n  hosts:\n    web[3:1]:\n");
        assert_eq!(
            message,
            "invalid host range in `web[3:1]`: `[3:1]` goes backwards\n  --> FILE:3:5\n   |\n \
             3 |     web[3:1]:\n   |     ^"
        );
    }

    #[test]
    fn host_port_sets_ansible_port() {
        let inv = inventory(
            "all:\n  hosts:\n    h1:2222:\n    '[fe80::1]':\n    fe80::2:\n    '[fe80::3]:2200':\n",
        );
        assert_eq!(names(&inv), ["h1", "fe80::1", "fe80::2", "fe80::3"]);
        assert_eq!(inv.host_vars("h1")["ansible_port"], 2222);
        assert_eq!(inv.host_vars("fe80::3")["ansible_port"], 2200);
        assert!(!inv.host_vars("fe80::2").contains_key("ansible_port"));
        assert_eq!(
            split_port("h:99999").unwrap_err(),
            "port 99999 in host `h:99999` is out of range"
        );
    }

    #[test]
    fn unknown_group_key_is_located_with_suggestion() {
        let message = error("all:\n  host:\n    a:\n");
        assert_eq!(
            message,
            "unknown key `host` in a group (did you mean `hosts`?); a group has only `hosts`, \
             `children` and `vars`\n  --> FILE:2:3\n   |\n 2 |   host:\n   |   ^"
        );
    }

    #[test]
    fn list_of_hosts_is_a_located_error() {
        let message = error("all:\n  hosts: [a, b]\n");
        assert!(
            message.starts_with(
                "invalid type: sequence, expected a map of host names to their variables"
            ),
            "{message}"
        );
        assert!(message.contains("--> FILE:2:"), "{message}");
    }

    #[test]
    fn wrong_types_elsewhere_are_located() {
        let message = error("all:\n  vars:\n    - a\n");
        assert!(
            message.starts_with("invalid type: sequence, expected a map of variables"),
            "{message}"
        );
        assert!(message.contains("--> FILE:2:"), "{message}");

        let message = error("web: abc\n");
        assert!(
            message.starts_with("invalid type: string \"abc\", expected a group"),
            "{message}"
        );
        assert!(message.contains("--> FILE:1:"), "{message}");

        let message = error("# hosts\n- web\n");
        assert_eq!(
            message,
            "invalid type: sequence, expected an inventory: a map of group names (usually just \
             `all`)\n  --> FILE:2:1\n   |\n 2 | - web\n   | ^"
        );
    }

    #[test]
    fn duplicate_keys_are_reworded() {
        let message = error("all:\n  hosts:\n    a:\n    a:\n");
        assert!(
            message.starts_with("duplicate key `a`\n  --> FILE:4:5"),
            "{message}"
        );
    }

    #[test]
    fn group_priority_is_not_a_variable() {
        let inv = inventory(
            "a:\n  vars: {ansible_group_priority: 5, x: a}\n  hosts: {h:}\nb:\n  vars: {x: b}\n  hosts: {h:}\n",
        );
        // Same depth: priority 5 beats b's default 1 despite the name order.
        let vars = inv.host_vars("h");
        assert_eq!(vars["x"], "a");
        assert!(!vars.contains_key("ansible_group_priority"));
    }
}
