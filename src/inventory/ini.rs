//! Ansible's INI inventory format.
//!
//! Most existing Ansible projects keep their hosts in an INI file (often
//! `hosts`, no extension), so convoy reads it as ansible-core's `ini`
//! plugin does, rule for rule:
//!
//! - lines are stripped; empty ones and those starting with `;` or `#` are skipped;
//! - `[g]` lists hosts (before any section: `ungrouped`), `[g:vars]` sets
//!   `k=v` variables, `[g:children]` names child groups; another `[g:x]`,
//!   or a bracketed line that is no section, is an error;
//! - a host line is split like a shell line (quotes, `\`, `#` comments):
//!   `web[01:20]:2222 k=v k2="a b"`, ranges and a port as in YAML;
//! - values are typed by Python's `ast.literal_eval` (see `python_literal`):
//!   `22` is a number, `True` a boolean, `true`/`yes` strings;
//! - `[g:vars]` needs `g` defined somewhere in the file, and a group named
//!   in `[p:children]` must be defined too (by `[g]` or `[g:children]`),
//!   before or after; a child defined later joins its parents then.
//!
//! Errors name the file and line (and the column where it helps), never
//! quoting more than that line.

use std::collections::HashMap;
use std::path::Path;

use super::python_literal::ini_value;
use super::yaml::{expand_ranges, split_port};
use super::{Inventory, InventoryError};
use crate::source::SourceSpan;

/// What the lines of the current section define.
#[derive(Clone, Copy, PartialEq)]
enum State {
    Hosts,
    Vars,
    Children,
}

/// A group named before it was defined: where, and why it must be.
struct Pending {
    line: usize,
    /// `[g:vars]` of a group not defined (yet).
    vars: bool,
    /// Groups whose `[p:children]` named it, in order.
    parents: Vec<usize>,
}

/// Loads one INI inventory file into `inventory`.
pub(super) fn load(
    inventory: &mut Inventory,
    path: &Path,
    text: &str,
) -> Result<(), InventoryError> {
    let error = |line: usize, column: usize, message: String| InventoryError::Ini {
        message,
        span: SourceSpan::new(path, line, column),
    };
    let mut group = inventory.add_group("ungrouped");
    let mut state = State::Hosts;
    let mut pending: HashMap<String, Pending> = HashMap::new();
    // Groups this file defines, so that `[g:vars]` alone does not count.
    let defined = |inventory: &Inventory, pending: &HashMap<String, Pending>, name: &str| {
        inventory.group_index.contains_key(name) && !pending.contains_key(name)
    };

    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let line = raw.trim();
        let column = raw.len() - raw.trim_start().len() + 1;
        if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        if let Some((name, kind)) = section(line) {
            state = match kind {
                None | Some("hosts") => State::Hosts,
                Some("vars") => State::Vars,
                Some("children") => State::Children,
                Some(other) => {
                    return Err(error(
                        number,
                        column,
                        format!(
                            "section [{name}:{other}] has unknown type: {other} (a section is [group], [group:vars] or [group:children])"
                        ),
                    ));
                }
            };
            let known = inventory.group_index.contains_key(name);
            if !known && state == State::Vars {
                pending.entry(name.to_owned()).or_insert(Pending {
                    line: number,
                    vars: true,
                    parents: Vec::new(),
                });
            }
            group = inventory.add_group(name);
            if state != State::Vars
                && let Some(waiting) = pending.remove(name)
            {
                for parent in waiting.parents {
                    inventory.add_child(parent, group);
                }
            }
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            return Err(error(
                number,
                column,
                format!(
                    "invalid section `{line}`: a section is [group], [group:vars] or \
                     [group:children], with no spaces or other characters in it"
                ),
            ));
        }
        match state {
            State::Hosts => {
                let words = shell_words(line).map_err(|reason| error(number, column, reason))?;
                let Some((pattern, assignments)) = words.split_first() else {
                    continue; // only a comment
                };
                let (pattern, port) = split_port(pattern).map_err(|r| error(number, column, r))?;
                let names = expand_ranges(pattern).map_err(|reason| {
                    error(
                        number,
                        column,
                        format!("invalid host range in `{pattern}`: {reason}"),
                    )
                })?;
                let mut vars = Vec::new();
                for word in assignments {
                    let Some((key, value)) = word.split_once('=') else {
                        return Err(error(
                            number,
                            column,
                            format!("expected key=value host variable assignment, got: {word}"),
                        ));
                    };
                    vars.push((key.to_owned(), ini_value(value)));
                }
                for name in &names {
                    let host = inventory.add_host(name, group, path);
                    if let Some(port) = port {
                        inventory.set_host_var(host, "ansible_port".into(), port.into());
                    }
                    for (key, value) in &vars {
                        inventory.set_host_var(host, key.clone(), value.clone());
                    }
                }
            }
            State::Vars => {
                let Some((key, value)) = line.split_once('=') else {
                    return Err(error(
                        number,
                        column,
                        format!("expected key=value, got: {line}"),
                    ));
                };
                inventory.set_group_var(group, key.trim().to_owned(), ini_value(value.trim()));
            }
            State::Children => {
                let Some(child) = group_name(line) else {
                    return Err(error(
                        number,
                        column,
                        format!("`{line}` is not a valid group name"),
                    ));
                };
                if defined(inventory, &pending, child) {
                    let child = inventory.add_group(child);
                    inventory.add_child(group, child);
                } else {
                    let waiting = pending.entry(child.to_owned()).or_insert(Pending {
                        line: number,
                        vars: false,
                        parents: Vec::new(),
                    });
                    waiting.vars = false;
                    waiting.parents.push(group);
                }
            }
        }
    }

    // Whatever is still pending was named but never defined; report the first.
    if let Some((name, waiting)) = pending.iter().min_by_key(|(_, p)| p.line) {
        let message = if waiting.vars {
            format!("section [{name}:vars] is for a group this file does not define: {name}")
        } else {
            let parent = &inventory.groups[waiting.parents[0]].name;
            format!(
                "section [{parent}:children] names a group this file does not define: {name} \
                 (add a [{name}] section, even an empty one)"
            )
        };
        return Err(error(waiting.line, 1, message));
    }
    Ok(())
}

/// `[name]` or `[name:kind]`, an optional `# comment` after it.
fn section(line: &str) -> Option<(&str, Option<&str>)> {
    let rest = line.strip_prefix('[')?;
    let close = rest.find(']')?;
    let after = rest[close + 1..].trim_start();
    if !(after.is_empty() || after.starts_with('#')) {
        return None;
    }
    let inner = &rest[..close];
    let (name, kind) = match inner.split_once(':') {
        Some((name, kind)) => (name, Some(kind)),
        None => (inner, None),
    };
    let name_ok = !name.is_empty() && !name.contains(|c: char| c.is_whitespace() || c == ']');
    let kind_ok =
        kind.is_none_or(|k| !k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || c == '_'));
    (name_ok && kind_ok).then_some((name, kind))
}

/// A `[g:children]` line: one group name, an optional `# comment`.
fn group_name(line: &str) -> Option<&str> {
    let end = line
        .find(|c: char| c.is_whitespace() || c == '#')
        .unwrap_or(line.len());
    let (name, rest) = line.split_at(end);
    let rest = rest.trim_start();
    let valid = !name.is_empty() && !name.contains([':', ']']);
    (valid && (rest.is_empty() || rest.starts_with('#'))).then_some(name)
}

/// Python's `shlex.split(line, comments=True)` (POSIX mode), which
/// Ansible uses for host lines: quotes group and are removed, `\` escapes
/// outside single quotes, `#` starts a comment (also inside a word).
fn shell_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '#' => break,
            '\\' => {
                in_word = true;
                if let Some(next) = chars.next() {
                    word.push(next);
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => word.push(ch),
                        None => return Err("no closing quotation (')".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.peek() {
                            Some(&next @ ('"' | '\\')) => {
                                word.push(next);
                                chars.next();
                            }
                            _ => word.push('\\'),
                        },
                        Some(ch) => word.push(ch),
                        None => return Err("no closing quotation (\")".into()),
                    }
                }
            }
            other => {
                in_word = true;
                word.push(other);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::super::Inventory;
    use serde_json::json;
    use std::path::PathBuf;

    fn load(
        text: &str,
    ) -> (
        tempfile::TempDir,
        PathBuf,
        Result<Inventory, super::InventoryError>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        std::fs::write(&path, text).unwrap();
        let result = Inventory::load(std::slice::from_ref(&path));
        (dir, path, result)
    }

    fn error(text: &str) -> String {
        let (_dir, path, result) = load(text);
        let message = result.unwrap_err().to_string();
        message.replace(&path.display().to_string(), "FILE")
    }

    /// The same file ansible-inventory 2.18 was asked about; its answers.
    #[test]
    fn reads_what_ansible_inventory_reads() {
        let (_d, _p, inv) = load(
            "# comment\n; semicolon comment\n\
             lone a=1 b=true c=True d=yes e='1' f=\"x y\" g=[1,2] h={'k':1} i=1.5 j=0x1F k=None l=07 n=\"'q'\"\n\
             [web]\nh[1:2] ansible_port=22  # trailing comment\nh3:2222 x=1#notcomment\n\n\
             [web:vars]\nv1=1\nv2=true\nv3 = spaced value  \nv4=\"quoted\"\nv5=[1, 2]\nv6=True\nv7=a=b\n\
             [prod:children]\nweb\n[prod:vars]\np=1\n",
        );
        let inv = inv.unwrap();
        let lone = inv.host_vars("lone");
        let want = json!({"a": 1, "b": "true", "c": true, "d": "yes", "e": 1, "f": "x y",
            "g": [1, 2], "h": "{k:1}", "i": 1.5, "j": 31, "k": null, "l": "07", "n": "q"});
        for (k, v) in want.as_object().unwrap() {
            assert_eq!(&lone[k], v, "lone.{k}");
        }
        let h3 = inv.host_vars("h3");
        let want = json!({"ansible_port": 2222, "p": 1, "v1": 1, "v2": "true",
            "v3": "spaced value", "v4": "quoted", "v5": [1, 2], "v6": true, "v7": "a=b", "x": 1});
        for (k, v) in want.as_object().unwrap() {
            assert_eq!(&h3[k], v, "h3.{k}");
        }
        assert_eq!(inv.host_vars("h1")["ansible_port"], 22);
        assert_eq!(inv.groups()["prod"], ["h1", "h2", "h3"]);
        assert_eq!(inv.groups()["ungrouped"], ["lone"]);
    }

    #[test]
    fn children_defined_later_join_their_parents() {
        let (_d, _p, inv) =
            load("[prod:children]\nweb\n[web]\nw1\n[b:children]\nprod\n[b:vars]\nx=\"1\"\n");
        let inv = inv.unwrap();
        assert_eq!(inv.groups()["b"], ["w1"]);
        assert_eq!(inv.host_vars("w1")["x"], "1");
        assert_eq!(inv.group_names("w1"), ["b", "prod", "web"]);
    }

    #[test]
    fn errors_name_the_line_and_the_reason() {
        assert_eq!(
            error("[a:vars]\nx=1\n"),
            "section [a:vars] is for a group this file does not define: a\n  --> FILE:1:1\n   |\n 1 | [a:vars]\n   | ^"
        );
        assert_eq!(
            error("[a]\nh1 x\n"),
            "expected key=value host variable assignment, got: x\n  --> FILE:2:1\n   |\n 2 | h1 x\n   | ^"
        );
        assert!(error("[a:foo]\nh1\n").starts_with("section [a:foo] has unknown type: foo"));
        assert!(
            error("[a]\nh1\n[a:vars]\nnoeq\n")
                .starts_with("expected key=value, got: noeq\n  --> FILE:4:1")
        );
        assert!(
            error("[p:children]\nghost\n")
                .starts_with("section [p:children] names a group this file does not define: ghost")
        );
        assert!(error("[web servers]\n").starts_with("invalid section `[web servers]`"));
        assert!(error("h1 x='unclosed\n").starts_with("no closing quotation (')\n  --> FILE:1:1"));
    }
}
