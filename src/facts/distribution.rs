//! `distribution` facts from `/etc/os-release` (and `/etc/debian_version`,
//! which Ansible takes Debian's full version from), named as Ansible names
//! them: `distro`'s id, capitalised, with Ansible's own spellings, and
//! Ansible's `OS_FAMILY_MAP`.

use std::collections::BTreeMap;

use crate::vars::{Value, VarMap};

/// os-release `ID`s whose Ansible name is not the id capitalised.
const NAMES: &[(&str, &str)] = &[
    ("rhel", "RedHat"),
    ("amzn", "Amazon"),
    ("ol", "OracleLinux"),
    ("almalinux", "AlmaLinux"),
    ("opensuse-leap", "openSUSE Leap"),
    ("opensuse-tumbleweed", "openSUSE Tumbleweed"),
    ("sles", "SLES"),
    ("arch", "Archlinux"),
    ("linuxmint", "Linux Mint"),
    ("pop", "Pop!_OS"),
    ("centos", "CentOS"),
];

/// Ansible's `OS_FAMILY_MAP` (a distribution not in it is its own family).
const FAMILIES: &[(&str, &[&str])] = &[
    (
        "RedHat",
        &[
            "RedHat",
            "Fedora",
            "CentOS",
            "Scientific",
            "CloudLinux",
            "OracleLinux",
            "Amazon",
            "Virtuozzo",
            "XenServer",
            "Alibaba",
            "EulerOS",
            "openEuler",
            "AlmaLinux",
            "Rocky",
            "TencentOS",
            "EuroLinux",
        ],
    ),
    (
        "Debian",
        &[
            "Ubuntu",
            "Debian",
            "Raspbian",
            "Neon",
            "Linux Mint",
            "SteamOS",
            "Devuan",
            "Kali",
            "Cumulus Linux",
            "Pop!_OS",
            "Parrot",
            "Uos",
            "Deepin",
            "OSMC",
        ],
    ),
    (
        "Suse",
        &[
            "SuSE",
            "SLES",
            "SLED",
            "openSUSE",
            "openSUSE Tumbleweed",
            "openSUSE Leap",
            "SL-Micro",
        ],
    ),
    ("Archlinux", &["Archlinux", "Antergos", "Manjaro"]),
    ("Alpine", &["Alpine"]),
    ("Gentoo", &["Gentoo", "Funtoo"]),
];

/// `KEY=value` lines of an os-release file, quotes removed.
fn os_release(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            (k.trim().to_owned(), v.to_owned())
        })
        .collect()
}

fn capitalize(id: &str) -> String {
    let mut chars = id.chars();
    match chars.next() {
        Some(first) => first
            .to_uppercase()
            .chain(chars.flat_map(char::to_lowercase))
            .collect(),
        None => String::new(),
    }
}

/// `distribution`, `distribution_version`, `_major_version`,
/// `_minor_version`, `_release` and `os_family`.
pub fn facts(raw: &BTreeMap<&str, &str>) -> VarMap {
    let release = os_release(raw.get("os_release").copied().unwrap_or(""));
    let id = release.get("ID").map(String::as_str).unwrap_or("");
    let name = match NAMES.iter().find(|(i, _)| *i == id) {
        Some((_, n)) => n.to_string(),
        None if id.is_empty() => "OtherLinux".to_owned(),
        None => capitalize(id),
    };
    let mut version = release.get("VERSION_ID").cloned().unwrap_or_default();
    if name == "Debian" {
        let full = raw.get("debian_version").map(|v| v.trim()).unwrap_or("");
        if full.starts_with(|c: char| c.is_ascii_digit()) {
            version = full.to_owned();
        }
    }
    let mut parts = version.split('.');
    let major = parts.next().unwrap_or("").to_owned();
    let minor = parts.next().map(str::to_owned);
    let codename = release
        .get("VERSION_CODENAME")
        .or_else(|| release.get("UBUNTU_CODENAME"))
        .filter(|c| !c.is_empty())
        .cloned()
        .or_else(|| {
            // `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"`, as Ansible reads it.
            let pretty = release.get("PRETTY_NAME")?;
            let open = pretty.rfind('(')?;
            let close = pretty[open..].find(')')? + open;
            Some(pretty[open + 1..close].to_owned())
        })
        .unwrap_or_else(|| "NA".to_owned());
    let family = FAMILIES
        .iter()
        .find(|(_, members)| members.contains(&name.as_str()))
        .map(|(f, _)| f.to_string())
        .unwrap_or_else(|| name.clone());
    let mut facts = VarMap::new();
    facts.insert("distribution".into(), name.into());
    facts.insert("distribution_version".into(), version.into());
    facts.insert("distribution_major_version".into(), major.into());
    if let Some(minor) = minor {
        facts.insert("distribution_minor_version".into(), minor.into());
    }
    facts.insert("distribution_release".into(), codename.into());
    facts.insert("os_family".into(), Value::String(family));
    facts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(os_release: &str, debian_version: &str) -> VarMap {
        let raw = BTreeMap::from([
            ("os_release", os_release),
            ("debian_version", debian_version),
        ]);
        facts(&raw)
    }

    #[test]
    fn debian_takes_its_full_version_from_debian_version() {
        let f = of(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n",
            "12.11\n",
        );
        assert_eq!(f["distribution"], "Debian");
        assert_eq!(f["distribution_version"], "12.11");
        assert_eq!(f["distribution_major_version"], "12");
        assert_eq!(f["distribution_minor_version"], "11");
        assert_eq!(f["distribution_release"], "bookworm");
        assert_eq!(f["os_family"], "Debian");
    }

    #[test]
    fn names_and_families_as_ansible_spells_them() {
        let f = of("ID=rhel\nVERSION_ID=\"9.4\"\n", "");
        assert_eq!(f["distribution"], "RedHat");
        assert_eq!(f["os_family"], "RedHat");
        assert_eq!(f["distribution_release"], "NA");
        let f = of(
            "ID=ubuntu\nVERSION_ID=\"24.04\"\nUBUNTU_CODENAME=noble\n",
            "trixie/sid",
        );
        assert_eq!(f["distribution"], "Ubuntu");
        assert_eq!(f["distribution_version"], "24.04");
        assert_eq!(f["distribution_release"], "noble");
        assert_eq!(f["os_family"], "Debian");
        assert_eq!(
            of("ID=alpine\nVERSION_ID=3.20.1\n", "")["os_family"],
            "Alpine"
        );
    }
}
