//! apt on fleet hosts without a network: each host's only apt source is
//! a local file repository (`deb [trusted=yes] file:DIR ./`), written in
//! the host's own /etc (an overlay, fleet.sh), with every proxy pointed at
//! a closed port of the host's loopback so that nothing apt is configured
//! with could leave the host. dpkg's and apt's state and /usr are the
//! host's own overlays too: [`restore_packages`] purges what a test
//! installed, for the next one to start from the machine's packages.

use std::collections::BTreeSet;
use std::path::Path;
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

/// Whether `path` exists on this machine (outside every host).
pub fn on_machine(path: &str) -> bool {
    Path::new(path).exists()
}
