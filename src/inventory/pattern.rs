//! Host patterns, as in `hosts:` lines and `--limit`.
//!
//! Ansible's syntax is kept so playbooks port unchanged: `all`/`*`, host and
//! group names, shell globs, `~regex`, subscripts (`web[0]`, `web[1:3]`),
//! unions (`a:b`, `a,b`), intersections (`a:&b`) and exclusions (`a:!b`),
//! evaluated unions first, then intersections, then exclusions.
//!
//! Unlike Ansible, which warns and carries on, a pattern part that matches
//! nothing is an error: a typo in `hosts:` would otherwise silently skip a
//! play. Excluding something absent stays harmless, so `!x` may match nothing.
//!
//! Selections are kept as one flag per host, so each part costs one pass
//! over the inventory at most and 10,000 hosts stay cheap.

use regex::Regex;

use super::{Host, IMPLICIT_LOCALHOST, Inventory, InventoryError};
use crate::source::nearest;

impl Inventory {
    /// The hosts matching an Ansible host pattern, in inventory order, without repeats.
    pub fn select(&self, pattern: &str) -> Result<Vec<&Host>, InventoryError> {
        let parts = self.split(pattern);
        if parts.is_empty() {
            return Err(InventoryError::InvalidPattern {
                pattern: pattern.to_owned(),
                reason: "the pattern is empty".into(),
            });
        }
        let (mut unions, mut intersections, mut exclusions) = (Vec::new(), Vec::new(), Vec::new());
        for part in parts {
            if let Some(part) = part.strip_prefix('!') {
                exclusions.push(part);
            } else if let Some(part) = part.strip_prefix('&') {
                intersections.push(part);
            } else {
                unions.push(part);
            }
        }

        // One flag per host; the extra last slot is the implicit localhost.
        let mut selected = vec![false; self.hosts.len() + 1];
        if unions.is_empty() {
            // Only `&`/`!` parts: they narrow `all`, as in Ansible.
            selected[..self.hosts.len()].fill(true);
        }
        for part in unions {
            for slot in self.required(part)? {
                selected[slot] = true;
            }
        }
        for part in intersections {
            let mut keep = vec![false; selected.len()];
            for slot in self.required(part)? {
                keep[slot] = true;
            }
            for (flag, keep) in selected.iter_mut().zip(keep) {
                *flag &= keep;
            }
        }
        for part in exclusions {
            for slot in self.matching(part)? {
                selected[slot] = false;
            }
        }

        let hosts: Vec<&Host> = selected
            .iter()
            .enumerate()
            .filter(|&(_, &flag)| flag)
            .map(|(slot, _)| self.slot(slot))
            .collect();
        if hosts.is_empty() {
            return Err(InventoryError::NoMatch {
                pattern: pattern.trim().to_owned(),
                hint: None,
            });
        }
        Ok(hosts)
    }

    /// Splits a pattern into parts at `:` and `,`, except inside `[...]`
    /// (ranges and subscripts hold colons). A whole pattern that is a host
    /// name is kept whole, so IPv6 addresses work.
    fn split<'p>(&self, pattern: &'p str) -> Vec<&'p str> {
        let pattern = pattern.trim();
        if self.host_index.contains_key(pattern) {
            return vec![pattern];
        }
        let mut parts = Vec::new();
        let (mut depth, mut start) = (0usize, 0);
        for (i, c) in pattern.char_indices() {
            match c {
                '[' => depth += 1,
                ']' => depth = depth.saturating_sub(1),
                ':' | ',' if depth == 0 => {
                    parts.push(&pattern[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(&pattern[start..]);
        parts
            .into_iter()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect()
    }

    fn slot(&self, slot: usize) -> &Host {
        self.hosts.get(slot).unwrap_or(&self.implicit_localhost)
    }

    /// Like `matching`, but matching nothing is an error naming the part.
    fn required(&self, part: &str) -> Result<Vec<usize>, InventoryError> {
        let found = self.matching(part)?;
        if found.is_empty() {
            return Err(InventoryError::NoMatch {
                pattern: part.to_owned(),
                hint: self.hint(part),
            });
        }
        Ok(found)
    }

    /// The host slots one pattern part (without `&`/`!`) selects, sorted.
    fn matching(&self, part: &str) -> Result<Vec<usize>, InventoryError> {
        // A host name is taken as is, even if it looks like a glob.
        if let Some(&host) = self.host_index.get(part) {
            return Ok(vec![host]);
        }
        if let Some((expr, subscript)) = subscript(part) {
            let hosts = self.enumerate(expr)?;
            // `db-[0:9]`-like globs only when the base matches nothing.
            if !hosts.is_empty() {
                return Ok(subscript.apply(&hosts).to_vec());
            }
        }
        self.enumerate(part)
    }

    /// Ansible's `_enumerate_matches`: matching groups' hosts, plus matching
    /// hosts when no group matched or the pattern is a glob/regex.
    fn enumerate(&self, expr: &str) -> Result<Vec<usize>, InventoryError> {
        if expr == "all" || expr == "*" {
            return Ok((0..self.hosts.len()).collect());
        }
        let matcher = Matcher::new(expr)?;
        let mut found = Vec::new();
        let mut group_matched = false;
        match &matcher {
            Matcher::Exact(name) => {
                if let Some(&g) = self.group_index.get(*name) {
                    found.extend_from_slice(&self.groups[g].members);
                    group_matched = true;
                }
            }
            Matcher::Regex(re) => {
                for group in self.groups.iter().filter(|g| re.is_match(&g.name)) {
                    found.extend_from_slice(&group.members);
                    group_matched = true;
                }
            }
        }
        let special = expr.starts_with('~') || expr.contains(['.', '?', '*', '[']);
        if !group_matched || special {
            match &matcher {
                Matcher::Exact(name) => found.extend(self.host_index.get(*name)),
                Matcher::Regex(re) => found.extend(
                    self.hosts
                        .iter()
                        .enumerate()
                        .filter(|(_, h)| re.is_match(&h.name))
                        .map(|(i, _)| i),
                ),
            }
        }
        if found.is_empty() && expr == IMPLICIT_LOCALHOST {
            found.push(self.hosts.len());
        }
        found.sort_unstable();
        found.dedup();
        Ok(found)
    }

    /// Why a part matched nothing, when something useful can be said.
    fn hint(&self, part: &str) -> Option<String> {
        if self.hosts.is_empty() {
            return Some("the inventory has no hosts".into());
        }
        if let Some((expr, _)) = subscript(part) {
            let count = self.enumerate(expr).map(|h| h.len()).unwrap_or(0);
            if count > 0 {
                let noun = if count == 1 { "host" } else { "hosts" };
                return Some(format!("\"{expr}\" has only {count} {noun}"));
            }
        }
        if self.group_index.contains_key(part) {
            return Some(format!("group \"{part}\" has no hosts"));
        }
        if part.starts_with('~') || part.contains(['?', '*', '[']) {
            return None;
        }
        let candidates = self.groups.iter().map(|g| g.name.as_str());
        let candidates = candidates.chain(self.hosts.iter().map(|h| h.name.as_str()));
        nearest(part, candidates).map(|s| format!("did you mean \"{s}\"?"))
    }
}

/// How one pattern part compares with names.
enum Matcher<'p> {
    Exact(&'p str),
    Regex(Regex),
}

impl<'p> Matcher<'p> {
    fn new(expr: &'p str) -> Result<Self, InventoryError> {
        let invalid = |e: regex::Error| InventoryError::InvalidPattern {
            pattern: expr.to_owned(),
            // regex's syntax errors draw their own multi-line caret; keep the reason.
            reason: e
                .to_string()
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim()
                .to_owned(),
        };
        if let Some(re) = expr.strip_prefix('~') {
            // Ansible uses `re.search`: unanchored.
            return Regex::new(re).map(Matcher::Regex).map_err(invalid);
        }
        if expr.contains(['*', '?', '[']) {
            return Regex::new(&glob_regex(expr))
                .map(Matcher::Regex)
                .map_err(invalid);
        }
        Ok(Matcher::Exact(expr))
    }
}

/// Translates a shell glob (`*`, `?`, `[abc]`, `[!a-z]`) to an anchored
/// regex, following Python's `fnmatch` as Ansible does.
pub(crate) fn glob_regex(glob: &str) -> String {
    let chars: Vec<char> = glob.chars().collect();
    let mut re = String::from("^");
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            '[' => {
                // A `]` right after `[` or `[!` is a literal member, as in fnmatch.
                let mut j = i + 1;
                if chars.get(j) == Some(&'!') {
                    j += 1;
                }
                if chars.get(j) == Some(&']') {
                    j += 1;
                }
                while j < chars.len() && chars[j] != ']' {
                    j += 1;
                }
                if j >= chars.len() {
                    re.push_str("\\[");
                } else {
                    let mut class = &chars[i + 1..j];
                    re.push('[');
                    if class.first() == Some(&'!') {
                        re.push('^');
                        class = &class[1..];
                    }
                    for (k, &c) in class.iter().enumerate() {
                        if c == '-' && k > 0 && k + 1 < class.len() {
                            re.push('-');
                        } else {
                            re.push_str(&regex::escape(c.encode_utf8(&mut [0; 4])));
                        }
                    }
                    re.push(']');
                    i = j;
                }
            }
            c => re.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
        }
        i += 1;
    }
    re.push('$');
    re
}

/// A `[n]` or `[start:end]` suffix picking hosts by position.
#[derive(Debug, PartialEq)]
enum Subscript {
    Index(i64),
    /// Inclusive; `None` end means through the last host.
    Range(usize, Option<usize>),
}

impl Subscript {
    /// The picked hosts; out of range gives none (ranges clamp, as Python slices do).
    fn apply<'h>(&self, hosts: &'h [usize]) -> &'h [usize] {
        let len = hosts.len();
        match *self {
            Subscript::Index(i) => {
                let i = if i < 0 { len as i64 + i } else { i };
                match usize::try_from(i) {
                    Ok(i) if i < len => &hosts[i..=i],
                    _ => &[],
                }
            }
            Subscript::Range(start, end) => {
                let end = end.map_or(len, |e| (e + 1).min(len));
                if start < end { &hosts[start..end] } else { &[] }
            }
        }
    }
}

/// Splits `web[0]` / `web[1:3]` / `web[2:]` into the expression and subscript.
fn subscript(part: &str) -> Option<(&str, Subscript)> {
    if part.starts_with('~') {
        return None;
    }
    let inner = part.strip_suffix(']')?;
    let open = inner.rfind('[')?;
    let (expr, index) = (&inner[..open], &inner[open + 1..]);
    if expr.is_empty() {
        return None;
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let subscript = match index.split_once(':') {
        None => {
            let number = index.strip_prefix('-').unwrap_or(index);
            if !digits(number) {
                return None;
            }
            Subscript::Index(index.parse().ok()?)
        }
        Some((start, end)) => {
            if !digits(start) || !(end.is_empty() || digits(end)) {
                return None;
            }
            Subscript::Range(
                start.parse().ok()?,
                if end.is_empty() {
                    None
                } else {
                    end.parse().ok()
                },
            )
        }
    };
    Some((expr, subscript))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVENTORY: &str = "\
all:
  hosts:
    bastion:
  children:
    web:
      hosts:
        web1:
        web2:
        web3:
    db:
      hosts:
        db-1:
        db-2:
        web3:
    prod:
      children:
        web:
        db:
    empty:
";

    fn inventory() -> (tempfile::TempDir, Inventory) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts.yml");
        std::fs::write(&path, INVENTORY).unwrap();
        let inventory = Inventory::load(&[path]).unwrap();
        (dir, inventory)
    }

    fn select(inv: &Inventory, pattern: &str) -> Vec<String> {
        match inv.select(pattern) {
            Ok(hosts) => hosts.iter().map(|h| h.name.clone()).collect(),
            Err(e) => panic!("{pattern}: {e}"),
        }
    }

    fn error(inv: &Inventory, pattern: &str) -> String {
        inv.select(pattern).unwrap_err().to_string()
    }

    #[test]
    fn names_groups_and_all() {
        let (_d, inv) = inventory();
        let everyone = ["bastion", "web1", "web2", "web3", "db-1", "db-2"];
        assert_eq!(select(&inv, "all"), everyone);
        assert_eq!(select(&inv, "*"), everyone);
        assert_eq!(select(&inv, "web2"), ["web2"]);
        assert_eq!(select(&inv, "db"), ["web3", "db-1", "db-2"]);
        assert_eq!(select(&inv, "ungrouped"), ["bastion"]);
        assert_eq!(
            select(&inv, "prod"),
            ["web1", "web2", "web3", "db-1", "db-2"]
        );
    }

    #[test]
    fn globs_and_regexes() {
        let (_d, inv) = inventory();
        assert_eq!(select(&inv, "web*"), ["web1", "web2", "web3"]);
        assert_eq!(select(&inv, "db-?"), ["db-1", "db-2"]);
        // `web[13]` would be a subscript of group web, as in Ansible; a
        // bracket after something matching nothing is a glob class.
        assert_eq!(select(&inv, "db-[12]"), ["db-1", "db-2"]);
        assert_eq!(select(&inv, "web[!13]"), ["web2"]);
        assert_eq!(select(&inv, "db-[0-1]"), ["db-1"]);
        // A glob matching a group takes the group's hosts too.
        assert_eq!(select(&inv, "d*"), ["web3", "db-1", "db-2"]);
        assert_eq!(select(&inv, "~^web[12]$"), ["web1", "web2"]);
        assert_eq!(select(&inv, "~ion"), ["bastion"]);
    }

    #[test]
    fn unions_intersections_exclusions() {
        let (_d, inv) = inventory();
        assert_eq!(select(&inv, "db:web1"), ["web1", "web3", "db-1", "db-2"]);
        assert_eq!(select(&inv, "db,web1"), ["web1", "web3", "db-1", "db-2"]);
        assert_eq!(select(&inv, "web:&db"), ["web3"]);
        assert_eq!(select(&inv, "web:!db"), ["web1", "web2"]);
        // Exclusions apply last, whatever their position.
        assert_eq!(
            select(&inv, "!web3:web:db"),
            ["web1", "web2", "db-1", "db-2"]
        );
        // Only narrowing parts: they apply to `all`.
        assert_eq!(select(&inv, "!prod"), ["bastion"]);
        assert_eq!(select(&inv, "&db"), ["web3", "db-1", "db-2"]);
        assert_eq!(select(&inv, " web1 , web2 "), ["web1", "web2"]);
        // Excluding something absent is fine.
        assert_eq!(select(&inv, "web:!nothing"), ["web1", "web2", "web3"]);
    }

    #[test]
    fn subscripts() {
        let (_d, inv) = inventory();
        assert_eq!(select(&inv, "web[0]"), ["web1"]);
        assert_eq!(select(&inv, "web[-1]"), ["web3"]);
        assert_eq!(select(&inv, "web[1:2]"), ["web2", "web3"]);
        assert_eq!(select(&inv, "web[1:]"), ["web2", "web3"]);
        assert_eq!(select(&inv, "web[0:10]"), ["web1", "web2", "web3"]);
        assert_eq!(select(&inv, "web[0]:db[0]"), ["web1", "web3"]);
        assert_eq!(
            error(&inv, "web[5]"),
            "pattern \"web[5]\" matches no host (\"web\" has only 3 hosts)"
        );
    }

    #[test]
    fn error_messages() {
        let (_d, inv) = inventory();
        assert_eq!(
            error(&inv, "webz"),
            "pattern \"webz\" matches no host (did you mean \"web\"?)"
        );
        assert_eq!(
            error(&inv, "web:dbx"),
            "pattern \"dbx\" matches no host (did you mean \"db\"?)"
        );
        assert_eq!(
            error(&inv, "web:&dbx"),
            "pattern \"dbx\" matches no host (did you mean \"db\"?)"
        );
        assert_eq!(error(&inv, "zzzz"), "pattern \"zzzz\" matches no host");
        assert_eq!(
            error(&inv, "empty"),
            "pattern \"empty\" matches no host (group \"empty\" has no hosts)"
        );
        assert_eq!(error(&inv, "nope*"), "pattern \"nope*\" matches no host");
        assert_eq!(
            error(&inv, "web:!web"),
            "pattern \"web:!web\" matches no host"
        );
        assert_eq!(
            error(&inv, "web1:&db"),
            "pattern \"web1:&db\" matches no host"
        );
        assert_eq!(
            error(&inv, " "),
            "invalid host pattern \" \": the pattern is empty"
        );
        assert_eq!(
            error(&inv, "~web[1"),
            "invalid host pattern \"~web[1\": error: unclosed character class"
        );
    }

    #[test]
    fn implicit_localhost() {
        let (_d, inv) = inventory();
        assert_eq!(select(&inv, "localhost"), ["localhost"]);
        assert_eq!(select(&inv, "localhost:web1"), ["web1", "localhost"]);
        assert!(!select(&inv, "all").contains(&"localhost".to_owned()));
        assert_eq!(
            error(&inv, "localhost:!localhost"),
            "pattern \"localhost:!localhost\" matches no host"
        );
        assert_eq!(inv.host_vars("localhost")["ansible_connection"], "local");

        let empty = Inventory::localhost();
        assert_eq!(select(&empty, "localhost"), ["localhost"]);
        assert_eq!(empty.hosts().count(), 0);
        assert_eq!(
            error(&empty, "all"),
            "pattern \"all\" matches no host (the inventory has no hosts)"
        );
        assert_eq!(
            error(&empty, "web"),
            "pattern \"web\" matches no host (the inventory has no hosts)"
        );
    }

    #[test]
    fn glob_translation() {
        assert_eq!(glob_regex("a*b?"), "^a.*b.$");
        assert_eq!(glob_regex("x[]]"), "^x[\\]]$");
        assert_eq!(glob_regex("x[!a-c]"), "^x[^a-c]$");
        assert_eq!(glob_regex("x[a-]"), "^x[a\\-]$");
        assert_eq!(glob_regex("x[ab"), "^x\\[ab$");
        assert_eq!(glob_regex("a.b"), "^a\\.b$");
    }

    #[test]
    fn subscript_parsing() {
        assert_eq!(subscript("w[3]"), Some(("w", Subscript::Index(3))));
        assert_eq!(subscript("w[-1]"), Some(("w", Subscript::Index(-1))));
        assert_eq!(subscript("w[1:]"), Some(("w", Subscript::Range(1, None))));
        assert_eq!(
            subscript("w[1:4]"),
            Some(("w", Subscript::Range(1, Some(4))))
        );
        assert_eq!(subscript("w[0-9]"), None);
        assert_eq!(subscript("w[ab]"), None);
        assert_eq!(subscript("~w[1]"), None);
    }

    #[test]
    fn ten_thousand_hosts_stay_fast() {
        let mut text = String::from("all:\n  children:\n");
        for g in 0..50 {
            text.push_str(&format!(
                "    g{g}:\n      vars: {{v{g}: {g}}}\n      hosts:\n"
            ));
            for h in 0..200 {
                text.push_str(&format!("        h{}:\n", g * 200 + h));
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.yml");
        std::fs::write(&path, text).unwrap();
        let started = std::time::Instant::now();
        let inv = Inventory::load(&[path]).unwrap();
        assert_eq!(inv.select("all").unwrap().len(), 10_000);
        // h200..h299 are the hosts of g1/g2 containing "h2"; minus h250.
        assert_eq!(inv.select("g1:g2:!h250:&~h2").unwrap().len(), 99);
        assert_eq!(inv.select("h*:!g0").unwrap().len(), 9_800);
        for host in inv.hosts() {
            // v<group>, inventory_file/dir and the three magic variables.
            assert_eq!(inv.host_vars(&host.name).len(), 6);
        }
        let _ = inv.groups();
        let _ = inv.to_list_json();
        // Generous: debug builds on a slow machine; quadratic code would take minutes.
        assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
    }
}
