//! `service_mgr` and `pkg_mgr`, decided as Ansible's collectors decide
//! them, from what the script found (PID 1's name, `/sbin/init`'s target,
//! which paths exist, which commands are on the PATH).

use std::collections::BTreeMap;

/// Ansible's names for some init systems' PID 1.
const PROC_1: &[(&str, &str)] = &[
    ("procd", "openwrt_init"),
    ("runit-init", "runit"),
    ("svscan", "svc"),
    ("openrc-init", "openrc"),
];

/// Ansible's `PKG_MGRS`, in its order: the last one present wins.
const PKG_MGRS: &[(&str, &str)] = &[
    ("/usr/bin/rpm-ostree", "atomic_container"),
    ("/usr/bin/yum", "yum"),
    ("/usr/bin/dnf", "dnf"),
    ("/usr/bin/dnf5", "dnf5"),
    ("/usr/bin/apt-get", "apt"),
    ("/usr/bin/zypper", "zypper"),
    ("/usr/sbin/urpmi", "urpmi"),
    ("/usr/bin/pacman", "pacman"),
    ("/bin/opkg", "opkg"),
    ("/sbin/apk", "apk"),
    ("/usr/bin/emerge", "portage"),
    ("/usr/bin/xbps-install", "xbps"),
    ("/usr/bin/swupd", "swupd"),
];

fn lines<'a>(raw: &BTreeMap<&str, &'a str>, section: &str) -> Vec<&'a str> {
    raw.get(section)
        .map(|s| s.lines().map(str::trim).filter(|l| !l.is_empty()).collect())
        .unwrap_or_default()
}

fn exists(raw: &BTreeMap<&str, &str>, path: &str) -> bool {
    lines(raw, "paths").contains(&path)
}

fn has_command(raw: &BTreeMap<&str, &str>, name: &str) -> bool {
    lines(raw, "bins")
        .iter()
        .any(|p| p.rsplit('/').next() == Some(name))
}

pub fn service_mgr(raw: &BTreeMap<&str, &str>) -> String {
    let basename = |s: &str| s.trim().rsplit('/').next().unwrap_or("").to_owned();
    let mut proc_1 = lines(raw, "pid1").first().map(|s| basename(s));
    if proc_1.is_none() {
        proc_1 = lines(raw, "init_link").first().map(|s| basename(s));
    }
    // "init", or a shell (a container's PID 1), says nothing.
    let proc_1 = proc_1.filter(|p| !p.is_empty() && p != "init" && !p.ends_with("sh"));
    if let Some(p) = proc_1 {
        return PROC_1
            .iter()
            .find(|(k, _)| *k == p)
            .map(|(_, v)| v.to_string())
            .unwrap_or(p);
    }
    let systemctl = has_command(raw, "systemctl");
    let canary = [
        "/run/systemd/system/",
        "/dev/.run/systemd/",
        "/dev/.systemd/",
    ]
    .iter()
    .any(|p| exists(raw, p));
    let init_is_systemd = lines(raw, "init_link")
        .first()
        .is_some_and(|t| t.ends_with("systemd"));
    if systemctl && canary {
        "systemd"
    } else if has_command(raw, "initctl") && exists(raw, "/etc/init/") {
        "upstart"
    } else if exists(raw, "/sbin/openrc") {
        "openrc"
    } else if systemctl && init_is_systemd {
        "systemd"
    } else if exists(raw, "/etc/init.d/") {
        "sysvinit"
    } else if exists(raw, "/etc/dinit.d/") {
        "dinit"
    } else {
        "service"
    }
    .to_owned()
}

pub fn pkg_mgr(raw: &BTreeMap<&str, &str>, os_family: &str) -> String {
    let found = PKG_MGRS
        .iter()
        .filter(|(path, _)| exists(raw, path))
        .map(|(_, name)| *name)
        .next_back()
        .unwrap_or("unknown");
    match os_family {
        // Another package manager installed on Debian is not its own.
        "Debian" => "apt",
        "RedHat" if exists(raw, "/usr/bin/dnf5") => "dnf5",
        "RedHat" if exists(raw, "/usr/bin/dnf") => "dnf",
        "RedHat" if exists(raw, "/usr/bin/yum") => "yum",
        _ => found,
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_1_decides_unless_it_is_init_or_a_shell() {
        let raw = BTreeMap::from([("pid1", "systemd\n")]);
        assert_eq!(service_mgr(&raw), "systemd");
        let raw = BTreeMap::from([("pid1", "procd\n")]);
        assert_eq!(service_mgr(&raw), "openwrt_init");
        let raw = BTreeMap::from([
            ("pid1", "bash\n"),
            ("paths", "/etc/init.d/\n/usr/bin/apt-get\n"),
        ]);
        assert_eq!(service_mgr(&raw), "sysvinit");
        assert_eq!(pkg_mgr(&raw, "Debian"), "apt");
        let raw = BTreeMap::from([
            ("pid1", "init\n"),
            ("paths", "/usr/bin/yum\n/usr/bin/dnf\n"),
        ]);
        assert_eq!(service_mgr(&raw), "service");
        assert_eq!(pkg_mgr(&raw, "RedHat"), "dnf");
    }
}
