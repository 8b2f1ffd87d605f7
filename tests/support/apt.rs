//! apt on fleet hosts without a network: each host's only apt source is
//! a local file repository (`deb [trusted=yes] file:DIR ./`), written in
//! the host's own /etc (an overlay, fleet.sh), with every proxy pointed at
//! a closed port of the host's loopback so that nothing apt is configured
//! with could leave the host. dpkg's and apt's state and /usr are the
//! host's own overlays too: [`restore_packages`] purges what a test
//! installed, for the next one to start from the machine's packages.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::Fleet;

/// Makes `repo` (a directory on the host) the host's only apt source.
pub fn offline(fleet: &Fleet, i: usize, repo: &str) {
    fleet.exec_ok(
        i,
        &format!(
            "printf 'deb [trusted=yes] file:{repo} ./\\n' > /etc/apt/sources.list && \
             rm -f /etc/apt/sources.list.d/* && \
             printf 'Acquire::http::Proxy \"http://127.0.0.1:9/\";\\nAcquire::https::Proxy \"http://127.0.0.1:9/\";\\nAcquire::ftp::Proxy \"http://127.0.0.1:9/\";\\n' \
             > /etc/apt/apt.conf.d/99convoy-offline"
        ),
    );
}

/// The packages installed on this machine, by name.
pub fn machine_packages() -> BTreeSet<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${db:Status-Status} ${Package}\n"])
        .output()
        .expect("run dpkg-query");
    installed(&String::from_utf8_lossy(&out.stdout))
}

fn installed(listing: &str) -> BTreeSet<String> {
    listing
        .lines()
        .filter_map(|l| l.strip_prefix("installed "))
        .map(str::to_owned)
        .collect()
}

/// Purges from host i every package the machine does not have (what a
/// test installed there), and forgets the apt lists it fetched. Cheap
/// when the host's dpkg state was never written. The lists' directory is
/// dated long ago: its time is the cache's age (`cache_valid_time`, and
/// whether an update changed it), which must not depend on how soon after
/// the reset a test runs.
pub fn restore_packages(fleet: &Fleet, i: usize, machine: &BTreeSet<String>) {
    let upper = fleet.dir().join(format!("h{i}/fs/var-lib-dpkg-upper"));
    let touched = std::fs::read_dir(&upper).is_ok_and(|mut d| d.next().is_some());
    if touched {
        let listing = fleet.exec_ok(i, "dpkg-query -W -f '${db:Status-Status} ${Package}\\n'");
        let mut extra: Vec<String> = installed(&listing).difference(machine).cloned().collect();
        // Removed but not purged: their conffiles stay until purged.
        let kept = fleet.exec_ok(
            i,
            "dpkg-query -W -f '${db:Status-Status} ${Package}\\n' | sed -n 's/^config-files //p'",
        );
        extra.extend(kept.lines().map(str::to_owned));
        if !extra.is_empty() {
            fleet.exec_ok(
                i,
                &format!(
                    "DEBIAN_FRONTEND=noninteractive apt-get -y -q purge {} >/dev/null",
                    extra.join(" ")
                ),
            );
        }
    }
    fleet.exec_ok(
        i,
        "find /var/lib/apt/lists -maxdepth 1 -type f ! -name lock -delete && \
         touch -d 2000-01-01T00:00:00Z /var/lib/apt/lists",
    );
}

/// Builds `NAME_VERSION_all.deb` in `dir` on this machine (dpkg-deb): it
/// ships `/usr/share/convoy-demo/NAME`, holding "NAME VERSION".
pub fn build_deb(dir: &Path, name: &str, version: &str, depends: Option<&str>) -> PathBuf {
    let tree = dir.join(format!("src-{name}-{version}"));
    let control = format!(
        "Package: {name}\nVersion: {version}\nArchitecture: all\n\
         Maintainer: convoy tests <tests@convoy.invalid>\n{}\
         Description: convoy's apt test package {name}\n",
        depends
            .map(|d| format!("Depends: {d}\n"))
            .unwrap_or_default()
    );
    super::write_file(&tree, "DEBIAN/control", &control);
    super::write_file(
        &tree,
        &format!("usr/share/convoy-demo/{name}"),
        &format!("{name} {version}\n"),
    );
    let deb = dir.join(format!("{name}_{version}_all.deb"));
    let out = Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&tree)
        .arg(&deb)
        .output()
        .expect("run dpkg-deb (package dpkg)");
    super::ok_stdout("dpkg-deb --build", out);
    deb
}

/// Puts `debs` into host i's repository `repo` (a host-private path, e.g.
/// under /srv) and indexes it (dpkg-scanpackages, run on this machine).
pub fn publish(fleet: &Fleet, i: usize, repo: &str, debs: &[PathBuf]) {
    let dir = fleet.host_path(i, repo);
    std::fs::create_dir_all(&dir).unwrap();
    for deb in debs {
        std::fs::copy(deb, dir.join(deb.file_name().unwrap())).unwrap();
    }
    let out = Command::new("dpkg-scanpackages")
        .args(["-m", ".", "/dev/null"])
        .current_dir(&dir)
        .output()
        .expect("run dpkg-scanpackages (package dpkg-dev)");
    assert!(out.status.success(), "dpkg-scanpackages failed");
    std::fs::write(dir.join("Packages"), out.stdout).unwrap();
}
