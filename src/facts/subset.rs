//! `gather_subset`: which of Ansible's fact collectors run.
//!
//! As in Ansible: the entries are `all`, `min`, `hardware`, `network`,
//! `virtual` or a collector's name, each may be negated with `!`; with no
//! positive entry the start is `all`; `min`'s collectors are always kept
//! unless `!min` is given. `virtual` is accepted and gathers nothing here
//! (convoy has no virtualization facts); `ohai` and `facter` are refused,
//! as is any other name.

use std::collections::BTreeSet;

/// The minimal collectors (Ansible's `min`).
const MIN: &[&str] = &[
    "platform",
    "distribution",
    "date_time",
    "env",
    "user",
    "service_mgr",
    "pkg_mgr",
];

/// Every collector convoy has, with the group it belongs to.
const GROUPS: &[(&str, &[&str])] = &[
    ("hardware", &["hardware"]),
    ("network", &["network", "interfaces"]),
    ("virtual", &[]),
];

/// A `gather_subset` value that is not one.
#[derive(Debug, thiserror::Error)]
#[error(
    "unknown gather_subset `{0}`: use all, min, hardware, network, virtual or one of platform, distribution, date_time, env, user, service_mgr, pkg_mgr (each may be negated with `!`)"
)]
pub struct SubsetError(pub String);

/// The chosen collectors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subset {
    written: Vec<String>,
    collectors: BTreeSet<&'static str>,
}

impl Default for Subset {
    fn default() -> Self {
        Subset::parse(&["all".to_owned()]).expect("`all` is a subset")
    }
}

impl Subset {
    /// Reads the entries as Ansible does (see the module documentation).
    pub fn parse(entries: &[String]) -> Result<Subset, SubsetError> {
        let mut include = BTreeSet::new();
        let mut exclude = BTreeSet::new();
        let mut positive = false;
        for entry in entries {
            let entry = entry.trim();
            let (negated, name) = match entry.strip_prefix('!') {
                Some(n) => (true, n),
                None => (false, entry),
            };
            let members = members(name).ok_or_else(|| SubsetError(entry.to_owned()))?;
            if negated {
                // `!all` leaves `min`, as in Ansible.
                let members = if name == "all" {
                    members.into_iter().filter(|c| !MIN.contains(c)).collect()
                } else {
                    members
                };
                exclude.extend(members);
            } else {
                positive = true;
                include.extend(members);
            }
        }
        if !positive {
            include.extend(members("all").unwrap_or_default());
        }
        let keep_min = !entries.iter().any(|e| e.trim() == "!min");
        let mut collectors: BTreeSet<&'static str> =
            include.difference(&exclude).copied().collect();
        if keep_min {
            collectors.extend(MIN.iter().copied());
        }
        Ok(Subset {
            written: entries.iter().map(|e| e.trim().to_owned()).collect(),
            collectors,
        })
    }

    pub fn collectors(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.collectors.iter().copied()
    }

    pub fn has(&self, collector: &str) -> bool {
        self.collectors.contains(collector)
    }

    /// The entries as given (Ansible's `ansible_facts.gather_subset`).
    pub fn as_written(&self) -> Vec<String> {
        self.written.clone()
    }
}

/// The collectors a subset name stands for; `None` when it names none.
fn members(name: &str) -> Option<Vec<&'static str>> {
    match name {
        "all" => Some(
            MIN.iter()
                .copied()
                .chain(GROUPS.iter().flat_map(|(_, c)| c.iter().copied()))
                .collect(),
        ),
        "min" => Some(MIN.to_vec()),
        _ => GROUPS
            .iter()
            .find(|(g, _)| *g == name)
            .map(|(_, c)| c.to_vec())
            .or_else(|| {
                MIN.iter()
                    .chain(GROUPS.iter().flat_map(|(_, c)| c.iter()))
                    .find(|c| **c == name)
                    .map(|c| vec![*c])
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(entries: &[&str]) -> Vec<&'static str> {
        let owned: Vec<String> = entries.iter().map(|s| s.to_string()).collect();
        Subset::parse(&owned).unwrap().collectors().collect()
    }

    #[test]
    fn ansible_rules() {
        assert!(of(&["all"]).contains(&"hardware"));
        assert_eq!(of(&["min"]).len(), MIN.len());
        assert!(!of(&["!hardware"]).contains(&"hardware"));
        assert!(of(&["!hardware"]).contains(&"network"));
        assert_eq!(of(&["!all"]).len(), MIN.len());
        assert_eq!(of(&["network"]).len(), MIN.len() + 2);
        assert_eq!(of(&["!all", "!min"]), Vec::<&str>::new());
        assert!(Subset::parse(&["hardwre".into()]).is_err());
        assert!(Subset::parse(&["ohai".into()]).is_err());
    }
}
