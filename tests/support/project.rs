//! A deploy project on a fleet: `deploy.yml` (a `distribution:` of `hello`
//! rooted at [`ROOT`]), `inventory.yml`, and what the hosts look like after
//! a run (where `current` points, releases, leftovers, history, locks,
//! audit records, hook logs). Each test file writes its own playbook and
//! artifacts and builds the `Project` in its own `impl Project` block.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::Fleet;
use super::run::{Run, run, run_in};

/// The distribution's root on every host.
pub const ROOT: &str = "/srv/hello";

pub struct Project {
    // Declared first: dropped (torn down) first.
    pub fleet: Fleet,
    pub work: tempfile::TempDir,
    pub playbook: PathBuf,
    pub inventory: PathBuf,
    /// Run convoy from the project dir (else from the test's own dir).
    pub in_dir: bool,
}

impl Project {
    pub fn dir(&self) -> &Path {
        self.work.path()
    }

    /// The arguments of `convoy SUB deploy.yml -i inventory.yml EXTRA...`.
    pub fn args<'a>(&'a self, sub: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            sub,
            self.playbook.to_str().unwrap(),
            "-i",
            self.inventory.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        args
    }

    /// `convoy SUB deploy.yml -i inventory.yml EXTRA...` (from the project
    /// dir when `in_dir`).
    pub fn convoy(&self, sub: &str, extra: &[&str]) -> Run {
        if self.in_dir {
            run_in(self.dir(), &self.args(sub, extra))
        } else {
            run(&self.args(sub, extra))
        }
    }

    /// `convoy run deploy.yml -i inventory.yml -e version=VERSION EXTRA...`
    pub fn deploy(&self, version: &str, extra: &[&str]) -> Run {
        let v = format!("version={version}");
        let mut args = vec!["-e", v.as_str()];
        args.extend_from_slice(extra);
        self.convoy("run", &args)
    }

    /// Like [`deploy`](Self::deploy), panicking unless the run exits 0.
    pub fn deploy_ok(&self, version: &str, extra: &[&str]) -> Run {
        let r = self.deploy(version, extra);
        assert_eq!(r.code, 0, "deploy {version}: {}", r.dump());
        r
    }

    /// The control-side path of `ROOT/rel` on host i.
    pub fn path(&self, i: usize, rel: &str) -> PathBuf {
        self.fleet.host_path(i, &format!("{ROOT}/{rel}"))
    }

    /// Where host i's `current` points (its raw target), if it is a symlink.
    pub fn current(&self, i: usize) -> Option<String> {
        std::fs::read_link(self.path(i, "current"))
            .ok()
            .map(|t| t.to_string_lossy().into_owned())
    }

    pub fn read(&self, i: usize, rel: &str) -> String {
        let p = self.path(i, rel);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("h{i}: read {}: {e}", p.display()))
    }

    /// Entries of ROOT/releases on host i (all names, hidden ones too).
    pub fn releases(&self, i: usize) -> BTreeSet<String> {
        match std::fs::read_dir(self.path(i, "releases")) {
            Ok(rd) => rd
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => BTreeSet::new(),
        }
    }

    pub fn ino(&self, i: usize, rel: &str) -> u64 {
        std::fs::metadata(self.path(i, rel))
            .unwrap_or_else(|e| panic!("h{i}: stat {rel}: {e}"))
            .ino()
    }

    /// Lines of /srv/hooks.log on host i (written by the playbook's hooks).
    pub fn hook_lines(&self, i: usize) -> Vec<String> {
        std::fs::read_to_string(self.fleet.host_path(i, "/srv/hooks.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Temporary names (`.tmp*`, `*.part`, and `*.part.*` in case an
    /// implementation suffixes them) anywhere under ROOT on host i,
    /// seen from inside the host (also works for mounts only the host sees).
    pub fn leftovers(&self, i: usize) -> String {
        let out = self.fleet.exec(
            i,
            &format!(
                "find {ROOT} \\( -name '.tmp*' -o -name '*.part' -o -name '*.part.*' \\) -print 2>/dev/null; true"
            ),
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn assert_no_leftovers(&self, i: usize) {
        let left = self.leftovers(i);
        assert!(
            left.trim().is_empty(),
            "h{i}: temporary files left under {ROOT}:\n{left}"
        );
    }

    /// Every file in the content-addressed store on host i has the sha256 it is named after.
    pub fn assert_store_consistent(&self, i: usize) {
        let out = self.fleet.exec_ok(
            i,
            &format!(
                "cd {ROOT}/.convoy/artifacts 2>/dev/null || exit 0; for f in *; do [ -f \"$f\" ] && sha256sum \"$f\"; done; true"
            ),
        );
        for line in out.lines() {
            let mut words = line.split_whitespace();
            let (sum, name) = (words.next().unwrap(), words.next().unwrap());
            assert_eq!(
                sum, name,
                "h{i}: {ROOT}/.convoy/artifacts/{name} does not have the sha256 it is named after"
            );
        }
    }

    pub fn srv(&self, i: usize, rel: &str) -> PathBuf {
        self.fleet.host_path(i, &format!("/srv/{rel}"))
    }

    /// Versions in ROOT/.convoy/history on host i (one line per switch:
    /// time, version, who), oldest first.
    pub fn history(&self, i: usize) -> Vec<String> {
        std::fs::read_to_string(self.path(i, ".convoy/history"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split('\t').nth(1).map(str::to_owned))
            .collect()
    }

    /// How many times host i's current was switched to `version`.
    pub fn switches_to(&self, i: usize, version: &str) -> usize {
        self.history(i).iter().filter(|v| *v == version).count()
    }

    /// The switch hook's lines on host i: (release.version, current, ns).
    pub fn switch_hooks(&self, i: usize) -> Vec<(String, String, u128)> {
        std::fs::read_to_string(self.srv(i, "hooks.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                (w.len() == 4 && w[0] == "switch")
                    .then(|| (w[1].to_owned(), w[2].to_owned(), w[3].parse().unwrap()))
            })
            .collect()
    }

    /// When host i's switch hook last ran with current on `version`.
    pub fn switched_at(&self, i: usize, version: &str) -> u128 {
        let target = format!("releases/{version}");
        self.switch_hooks(i)
            .into_iter()
            .rev()
            .find(|(_, cur, _)| *cur == target)
            .map(|(_, _, ns)| ns)
            .unwrap_or_else(|| {
                panic!(
                    "h{i}: no switch hook ran with current on {version}: {:?}",
                    self.switch_hooks(i)
                )
            })
    }

    pub fn lock_dir(&self, i: usize) -> PathBuf {
        self.path(i, ".convoy/lock")
    }

    pub fn assert_unlocked(&self, i: usize, when: &str) {
        let lock = self.lock_dir(i);
        assert!(
            std::fs::symlink_metadata(&lock).is_err(),
            "h{i}: {ROOT}/.convoy/lock still exists {when} (holder: {:?})",
            std::fs::read_to_string(lock.join("holder"))
        );
    }

    pub fn holder(&self, i: usize) -> Option<String> {
        std::fs::read_to_string(self.lock_dir(i).join("holder")).ok()
    }

    /// Lines of ROOT/.convoy/audit.log on host i.
    pub fn audit(&self, i: usize) -> Vec<String> {
        std::fs::read_to_string(self.path(i, ".convoy/audit.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    pub fn assert_one_audit_record(&self, i: usize, run_id: &str) {
        let audit = self.audit(i);
        assert_eq!(
            audit.iter().filter(|l| l.contains(run_id)).count(),
            1,
            "h{i}: one audit record for run {run_id} in {ROOT}/.convoy/audit.log: {audit:#?}"
        );
    }

    /// Lines of /srv/migrations.log on host i.
    pub fn migrations_log(&self, i: usize) -> Vec<String> {
        std::fs::read_to_string(self.srv(i, "migrations.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    pub fn touch(&self, i: usize, rel: &str, content: &str) {
        std::fs::write(self.srv(i, rel), content).unwrap();
    }
}
