//! Targets: the names a job works through (databases, schemas, tenants).
//!
//! A target is a plain name: letters, digits and `._-:@/`, at most 200
//! bytes. That is checked wherever a target comes from (the playbook's
//! list, a file, a command's output), so `{{ target }}` rendered into a
//! job's `run:` command is always exactly one shell word and can never
//! become shell code; the same rule makes the host-side file name of a
//! target (`/` written `%2F`) unambiguous.

use std::collections::HashMap;

/// Why a name is not a target, or `None` when it is one.
pub fn invalid(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("is empty");
    }
    if name.len() > 200 {
        return Some("is longer than 200 bytes");
    }
    if name.starts_with('-') || name.starts_with('.') {
        return Some("starts with `-` or `.`");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-:@/".contains(&b))
    {
        return Some("holds a character other than letters, digits and `._-:@/`");
    }
    None
}

/// The target's file name in the host-side state directory.
pub fn file_name(target: &str) -> String {
    target.replace('/', "%2F")
}

/// The target a host-side file name stands for.
pub fn from_file_name(name: &str) -> String {
    name.replace("%2F", "/")
}

/// The first name seen twice, with the index of both occurrences.
pub fn duplicate<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<(usize, usize)> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, n) in names.into_iter().enumerate() {
        if let Some(first) = seen.insert(n, i) {
            return Some((first, i));
        }
    }
    None
}

/// The targets a `targets_command` printed: one per line, blank lines and
/// surrounding spaces ignored. `Err` says what is wrong.
pub fn from_command_output(out: &str) -> Result<Vec<String>, String> {
    let names: Vec<String> = out
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    if names.is_empty() {
        return Err("printed no target".into());
    }
    for n in &names {
        if let Some(why) = invalid(n) {
            return Err(format!("printed {n:?}, which {why}"));
        }
    }
    if let Some((_, i)) = duplicate(names.iter().map(String::as_str)) {
        return Err(format!("printed {:?} twice", names[i]));
    }
    Ok(names)
}

/// `--limit-targets`: comma-separated globs (`*`, `?`), a leading `!`
/// excludes. A target is selected when it matches some inclusion (or there
/// is none) and no exclusion.
#[derive(Debug, Clone)]
pub struct TargetFilter {
    include: Vec<String>,
    exclude: Vec<String>,
}

impl TargetFilter {
    pub fn parse(pattern: &str) -> TargetFilter {
        let mut f = TargetFilter {
            include: vec![],
            exclude: vec![],
        };
        for part in pattern.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.strip_prefix('!') {
                Some(p) => f.exclude.push(p.to_owned()),
                None => f.include.push(part.to_owned()),
            }
        }
        f
    }

    pub fn matches(&self, target: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|p| glob(p, target)))
            && !self.exclude.iter().any(|p| glob(p, target))
    }
}

/// Shell-style glob with `*` and `?` over bytes (targets are ASCII).
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_are_targets() {
        for good in ["t001", "db1/t_01", "acme.example:5432", "a@b"] {
            assert_eq!(invalid(good), None, "{good}");
        }
        for bad in ["", "-x", ".x", "a b", "a;b", "$(x)", "a'b", "é"] {
            assert!(invalid(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn file_names_round_trip() {
        assert_eq!(file_name("db1/t1"), "db1%2Ft1");
        assert_eq!(from_file_name(&file_name("db1/t1")), "db1/t1");
    }

    #[test]
    fn limit_targets_globs() {
        let f = TargetFilter::parse("db1/*,!db1/t05?");
        assert!(f.matches("db1/t001"));
        assert!(!f.matches("db1/t050"));
        assert!(!f.matches("db2/t001"));
        assert!(TargetFilter::parse("*").matches("x"));
    }

    #[test]
    fn command_output_is_checked() {
        assert_eq!(from_command_output("a\n\n b \n").unwrap(), ["a", "b"]);
        assert!(from_command_output("\n").is_err());
        assert!(from_command_output("a\na\n").unwrap_err().contains("twice"));
        assert!(from_command_output("a;b\n").is_err());
    }
}
