//! File attributes, Ansible's common file arguments `mode`, `owner` and
//! `group`, in one type that `file`, `copy`, `template` and `lineinfile`
//! all use to compare what a host has with what is wanted and to apply it.
//!
//! A mode is octal (`0644`, YAML's `0644` integer) or symbolic as chmod
//! takes it (`u+x,go-w`); it is compared by computing, with chmod's own
//! rules, the bits chmod would leave on the path, so `u+x` on a file that
//! already has it changes nothing, and on one that lacks it is applied even
//! when the content is the same. An owner or group is a name or a numeric
//! id, and matches the path's name or id.

use crate::transport::ShellScript;
use crate::transport::remote_fs::FileAttrs;
use crate::vars::Value;

/// Wanted attributes; `None` leaves one alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    /// Octal (four digits) or symbolic, as chmod takes it; checked.
    pub mode: Option<String>,
    pub owner: Option<String>,
    pub group: Option<String>,
}

/// What a path has now, as its `stat` reports it.
#[derive(Debug, Clone, Copy)]
pub struct Current<'a> {
    /// Permission bits (`st_mode & 07777`).
    pub perms: u32,
    pub is_dir: bool,
    pub owner: &'a str,
    pub group: &'a str,
    pub uid: u32,
    pub gid: u32,
}

/// Differences between wanted and current attributes (old, new).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Delta {
    pub mode: Option<(u32, u32)>,
    pub owner: Option<(String, String)>,
    pub group: Option<(String, String)>,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.mode.is_none() && self.owner.is_none() && self.group.is_none()
    }
}

impl Attributes {
    /// From module arguments; a mode chmod would reject is the error.
    pub fn from_args(
        mode: Option<&Value>,
        owner: Option<String>,
        group: Option<String>,
    ) -> Result<Attributes, String> {
        let mode = match mode {
            None => None,
            Some(m) => Some(normalize_mode(Some(m)).ok_or_else(|| format!("bad mode: {m}"))?),
        };
        if let Some(m) = &mode
            && mode_after(m, 0, false, 0).is_none()
        {
            return Err(format!("bad symbolic permission for mode: {m}"));
        }
        Ok(Attributes { mode, owner, group })
    }

    pub fn is_empty(&self) -> bool {
        self.mode.is_none() && self.owner.is_none() && self.group.is_none()
    }

    /// These attributes without the mode (a symlink's own, which has none).
    pub fn without_mode(&self) -> Attributes {
        Attributes {
            mode: None,
            ..self.clone()
        }
    }

    /// The permission bits the path gets: the mode applied to `current`
    /// (or to a new file's, `0666` under `umask`); `None` without a mode.
    pub fn perms_after(&self, current: Option<&Current>, umask: u32) -> Option<u32> {
        let spec = self.mode.as_deref()?;
        let (cur, is_dir) = current.map_or((0o666 & !umask, false), |c| (c.perms, c.is_dir));
        Some(mode_after(spec, cur, is_dir, umask).unwrap_or(cur))
    }

    /// What differs on a path that exists.
    pub fn delta(&self, current: &Current, umask: u32) -> Delta {
        let mut d = Delta::default();
        if let Some(new) = self.perms_after(Some(current), umask)
            && new != current.perms
        {
            d.mode = Some((current.perms, new));
        }
        if let Some(o) = &self.owner
            && !id_matches(o, current.owner, current.uid)
        {
            d.owner = Some((current.owner.to_owned(), o.clone()));
        }
        if let Some(g) = &self.group
            && !id_matches(g, current.group, current.gid)
        {
            d.group = Some((current.group.to_owned(), g.clone()));
        }
        d
    }

    /// For a file written whole (a temporary file renamed over the path):
    /// the mode as the octal bits it must end with, computed from the
    /// file it replaces, so a symbolic mode means what it would on the path.
    pub fn for_write(&self, current: Option<&Current>, umask: u32) -> FileAttrs {
        FileAttrs {
            mode: self.perms_after(current, umask).map(|m| format!("{m:04o}")),
            owner: self.owner.clone(),
            group: self.group.clone(),
        }
    }

    /// Commands (each failing the script) that set these attributes on
    /// `word`, a variable of the script (`"$p"`); the values enter as variables.
    pub fn commands(&self, word: &'static str, recurse: bool, no_deref: bool) -> ShellScript {
        let r = if recurse { "-R " } else { "" };
        let h = if no_deref { "-h " } else { "" };
        let mut s = ShellScript::new();
        // chown first: it may clear set-id bits that the mode sets.
        let owner = match (&self.owner, &self.group) {
            (Some(o), Some(g)) => Some(("chown ", format!("{o}:{g}"))),
            (Some(o), None) => Some(("chown ", o.clone())),
            (None, Some(g)) => Some(("chgrp ", g.clone())),
            (None, None) => None,
        };
        if let Some((command, id)) = owner {
            s = s
                .var("ID", id)
                .fragment(command)
                .fragment(r)
                .fragment(h)
                .fragment("-- \"$ID\" ")
                .fragment(word)
                .code(" || exit 1");
        }
        if let Some(mode) = &self.mode
            && !no_deref
        {
            s = s
                .var("MODE", mode)
                .fragment("chmod ")
                .fragment(r)
                .fragment("-- \"$MODE\" ")
                .fragment(word)
                .code(" || exit 1");
        }
        s
    }
}

/// `owner`/`group` may be given by name or by number.
pub fn id_matches(wanted: &str, name: &str, id: u32) -> bool {
    wanted == name || wanted.parse::<u32>() == Ok(id)
}

/// Mode as chmod takes it: `0644`, `644` and YAML's octal integer all become "0644";
/// symbolic modes (`u+x`) pass through.
pub fn normalize_mode(mode: Option<&Value>) -> Option<String> {
    match mode? {
        Value::Number(n) => n.as_u64().map(|n| format!("{n:04o}")),
        Value::String(s) if s.chars().all(|c| c.is_ascii_digit()) => {
            Some(format!("{:0>4}", s.trim_start_matches('0')))
        }
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// The permission bits `chmod spec` gives a file that has `current`, with
/// GNU chmod's rules (octal or symbolic `[ugoa]*[-+=][rwxXst]*|[ugo]`, comma
/// separated; without `ugoa` the umask applies; directories keep set-id bits
/// an octal mode does not mention). `None` for a mode chmod would reject.
pub fn mode_after(spec: &str, current: u32, is_dir: bool, umask: u32) -> Option<u32> {
    const ALL: u32 = 0o7777;
    const SET_ID: u32 = 0o6000;
    let current = current & ALL;
    if !spec.is_empty() && spec.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        let value = u32::from_str_radix(spec, 8).ok().filter(|v| *v <= ALL)?;
        let mentioned = if spec.len() < 5 {
            (value & SET_ID) | 0o1777
        } else {
            ALL
        };
        let omit = if is_dir { SET_ID & !mentioned } else { 0 };
        return Some((current & omit) | (value & !omit));
    }
    enum Flag {
        Ordinary,
        Copy,
        XIfAnyX,
    }
    let mut mode = current;
    for clause in spec.split(',') {
        let b = clause.as_bytes();
        let mut i = 0;
        let mut affected = 0;
        while let Some(c) = b.get(i) {
            match c {
                b'u' => affected |= 0o4700,
                b'g' => affected |= 0o2070,
                b'o' => affected |= 0o1007,
                b'a' => affected |= ALL,
                _ => break,
            }
            i += 1;
        }
        if i == b.len() {
            return None;
        }
        while i < b.len() {
            let op = b[i];
            if !matches!(op, b'+' | b'-' | b'=') {
                return None;
            }
            i += 1;
            let (mut value, flag) = match b.get(i) {
                Some(b'u') => (0o700, Flag::Copy),
                Some(b'g') => (0o070, Flag::Copy),
                Some(b'o') => (0o007, Flag::Copy),
                _ => {
                    let mut value = 0;
                    let mut flag = Flag::Ordinary;
                    while let Some(c) = b.get(i) {
                        match c {
                            b'r' => value |= 0o444,
                            b'w' => value |= 0o222,
                            b'x' => value |= 0o111,
                            b'X' => flag = Flag::XIfAnyX,
                            b's' => value |= SET_ID,
                            b't' => value |= 0o1000,
                            _ => break,
                        }
                        i += 1;
                    }
                    (value, flag)
                }
            };
            if matches!(flag, Flag::Copy) {
                i += 1;
            }
            let mentioned = if affected != 0 {
                affected & value
            } else {
                value
            };
            let omit = if is_dir { SET_ID & !mentioned } else { 0 };
            match flag {
                Flag::Ordinary => {}
                Flag::Copy => {
                    value &= mode;
                    let spread = |bits: u32| if value & bits != 0 { bits } else { 0 };
                    value |= spread(0o444) | spread(0o222) | spread(0o111);
                }
                Flag::XIfAnyX => {
                    if mode & 0o111 != 0 || is_dir {
                        value |= 0o111;
                    }
                }
            }
            value &= (if affected != 0 {
                affected
            } else {
                !umask & ALL
            }) & !omit;
            match op {
                b'=' => {
                    let preserved = (if affected != 0 { !affected & ALL } else { 0 }) | omit;
                    mode = (mode & preserved) | value;
                }
                b'+' => mode |= value,
                _ => mode &= !value,
            }
        }
    }
    Some(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn current(perms: u32) -> Current<'static> {
        Current {
            perms,
            is_dir: false,
            owner: "convoy",
            group: "convoy",
            uid: 1000,
            gid: 1000,
        }
    }

    fn attrs(mode: Option<&str>, owner: Option<&str>, group: Option<&str>) -> Attributes {
        Attributes::from_args(
            mode.map(Value::from).as_ref(),
            owner.map(str::to_owned),
            group.map(str::to_owned),
        )
        .unwrap()
    }

    #[test]
    fn owners_and_groups_match_by_name_or_id() {
        for (owner, group) in [("convoy", "convoy"), ("1000", "1000"), ("convoy", "1000")] {
            assert!(
                attrs(None, Some(owner), Some(group))
                    .delta(&current(0o644), 0o022)
                    .is_empty()
            );
        }
        let d = attrs(None, Some("0"), None).delta(&current(0o644), 0o022);
        assert_eq!(d.owner, Some(("convoy".into(), "0".into())));
    }

    #[test]
    fn symbolic_modes_compare_by_what_chmod_would_leave() {
        assert!(
            attrs(Some("u+x"), None, None)
                .delta(&current(0o744), 0o022)
                .is_empty()
        );
        let d = attrs(Some("u+x"), None, None).delta(&current(0o600), 0o022);
        assert_eq!(d.mode, Some((0o600, 0o700)));
        assert!(
            attrs(Some("0644"), None, None)
                .delta(&current(0o644), 0o022)
                .is_empty()
        );
        assert_eq!(
            attrs(Some("u+x"), None, None)
                .for_write(Some(&current(0o600)), 0o022)
                .mode
                .as_deref(),
            Some("0700")
        );
        // A new file: from 0666 under the umask.
        assert_eq!(
            attrs(Some("u+x"), None, None)
                .for_write(None, 0o022)
                .mode
                .as_deref(),
            Some("0744")
        );
    }

    #[test]
    fn modes_normalise_to_four_octal_digits() {
        assert_eq!(
            normalize_mode(Some(&Value::from(420))).as_deref(),
            Some("0644")
        );
        assert_eq!(
            normalize_mode(Some(&Value::from("644"))).as_deref(),
            Some("0644")
        );
        assert_eq!(
            normalize_mode(Some(&Value::from("0755"))).as_deref(),
            Some("0755")
        );
        assert_eq!(
            normalize_mode(Some(&Value::from("u+x"))).as_deref(),
            Some("u+x")
        );
        assert!(Attributes::from_args(Some(&Value::from("u+q")), None, None).is_err());
    }
}
